//! Outgoing-webhook delivery: the sender delivers due attempts, each on its own task, so a slow
//! or dead endpoint never delays the others, and the deliveries of one conversation reach an
//! endpoint in order; successes are recorded in batches.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::infra::secrets::SecretBox;
use crate::infra::stages::{self, Stage};
use crate::infra::wakeup::{self, Wakeups};
use crate::webhooks::wire::attempt;

/// How the relay publishes an event (see `projections::relay`): only its identity is used; the
/// body and time are read back from the event store.
#[derive(Debug, sqlx::FromRow)]
struct DueDelivery {
    id: Uuid,
    /// When the dispatcher queued it.
    created_at: chrono::DateTime<chrono::Utc>,
    tenant_id: Uuid,
    webhook_id: Uuid,
    event_id: String,
    event_type: String,
    payload: Value,
    ordering_key: String,
    order_seq: i64,
    source_event: Option<String>,
    attempt: i32,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    headers: Value,
}

/// Delivers due attempts.
#[derive(Clone)]
pub struct WebhookSender {
    pub pool: PgPool,
    pub secrets: SecretBox,
    pub allow_private: bool,
    pub schedule: Arc<Vec<Duration>>,
    /// Attempts in flight per endpoint.
    pub in_flight: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, usize>>>,
    /// Wakes the sender when deliveries are queued.
    pub wakeups: Wakeups,
}

/// Claimed deliveries waiting for a slot, one queue per endpoint in claim order, taken in
/// turns so that one busy endpoint cannot hold the slots.
#[derive(Default)]
struct ClaimedQueue {
    endpoints: std::collections::VecDeque<(Uuid, std::collections::VecDeque<Queued>)>,
    len: usize,
}

struct Queued {
    delivery: DueDelivery,
    claimed: std::time::Instant,
}

impl ClaimedQueue {
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn endpoints(&self) -> impl Iterator<Item = &Uuid> {
        self.endpoints.iter().map(|(webhook, _)| webhook)
    }

    fn queued_for(&self, webhook: Uuid) -> usize {
        self.endpoints
            .iter()
            .find(|(id, _)| *id == webhook)
            .map_or(0, |(_, queued)| queued.len())
    }

    fn extend(&mut self, claimed: Vec<DueDelivery>) {
        let claimed_at = std::time::Instant::now();
        for delivery in claimed {
            let queued = Queued {
                claimed: claimed_at,
                delivery,
            };
            let webhook = queued.delivery.webhook_id;
            match self.endpoints.iter_mut().find(|(id, _)| *id == webhook) {
                Some((_, deliveries)) => deliveries.push_back(queued),
                None => self.endpoints.push_back((webhook, [queued].into())),
            }
            self.len += 1;
        }
    }

    /// The first delivery of the next endpoint (in turn) with fewer than
    /// [`MAX_IN_FLIGHT_PER_ENDPOINT`] attempts in flight; deliveries queued too long are dropped.
    fn next_startable(&mut self, in_flight: impl Fn(Uuid) -> usize) -> Option<DueDelivery> {
        for _ in 0..self.endpoints.len() {
            let (webhook, mut deliveries) = self.endpoints.pop_front()?;
            if in_flight(webhook) >= MAX_IN_FLIGHT_PER_ENDPOINT {
                self.endpoints.push_back((webhook, deliveries));
                continue;
            }
            while let Some(queued) = deliveries.pop_front() {
                self.len -= 1;
                if queued.claimed.elapsed() <= QUEUED_AT_MOST {
                    if !deliveries.is_empty() {
                        self.endpoints.push_back((webhook, deliveries));
                    }
                    return Some(queued.delivery);
                }
            }
        }
        None
    }
}

/// The longest wait a receiver's `Retry-After` can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Attempts one endpoint may have in flight in this process.
const MAX_IN_FLIGHT_PER_ENDPOINT: usize = 8;

/// Attempts in flight in this process.
const MAX_IN_FLIGHT: usize = 128;

/// Claimed deliveries waiting for a slot, at most (after a claim).
const QUEUE_TARGET: usize = 4 * MAX_IN_FLIGHT;

/// The queue is refilled when it holds fewer than this.
const REFILL_BELOW: usize = 2 * MAX_IN_FLIGHT;

/// Deliveries of one endpoint queued and in flight in this process, at most.
const QUEUED_PER_ENDPOINT: usize = 4 * MAX_IN_FLIGHT_PER_ENDPOINT;

/// How long a claimed delivery may wait in the queue before it is started: one waiting
/// longer is dropped (its lease, 20 s, may be close to running out) and claimed again once its
/// lease has ended.
const QUEUED_AT_MOST: Duration = Duration::from_secs(5);

/// The longest pause with nothing to do when no wake-up comes.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Successes waiting to be recorded, at most (a full queue holds the attempts back).
const SUCCESS_QUEUE: usize = 4096;

/// Successes recorded by one statement, at most.
const RECORD_BATCH: usize = 512;

/// A successful attempt, waiting to be recorded.
struct Success {
    id: Uuid,
    status: i32,
    body: String,
    duration_ms: i32,
}

impl WebhookSender {
    /// Delivers until `shutdown`; at most [`MAX_IN_FLIGHT`] attempts in flight.
    ///
    /// A queue of claimed deliveries runs ahead of the slots: it is refilled when it runs low
    /// (not when a slot frees), so a slot that frees starts the next attempt at once. A claim
    /// is made when new deliveries were queued (a wake-up), when recorded successes may have
    /// made a conversation's next delivery due, or every 50 ms.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let ended = Arc::new(Notify::new());
        let recorded = Arc::new(Notify::new());
        let (successes, to_record) = mpsc::channel(SUCCESS_QUEUE);
        tokio::spawn(self.clone().record_successes(to_record, recorded.clone()));
        let mut wakeup = self.wakeups.subscribe(wakeup::DELIVERIES);
        let mut queue = ClaimedQueue::default();
        let mut may_claim = true;
        loop {
            if may_claim && queue.len() < REFILL_BELOW {
                let full = self.endpoints_at_queue_limit(&queue);
                match self.claim((QUEUE_TARGET - queue.len()) as i64, &full).await {
                    Ok(claimed) => {
                        may_claim = claimed.len() as i64 >= (QUEUE_TARGET - queue.len()) as i64;
                        queue.extend(claimed);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "claiming webhook deliveries failed");
                        may_claim = false;
                    }
                }
            }
            while let Some(permit) = (!queue.is_empty())
                .then(|| slots.clone().try_acquire_owned().ok())
                .flatten()
            {
                let Some(delivery) = queue.next_startable(|webhook| self.in_flight_of(webhook))
                else {
                    break;
                };
                let (sender, successes, ended) = (self.clone(), successes.clone(), ended.clone());
                let webhook = delivery.webhook_id;
                sender.track(webhook, 1);
                tokio::spawn(async move {
                    if let Err(error) = sender.deliver(delivery, &successes).await {
                        tracing::warn!(%error, "recording a webhook attempt failed");
                    }
                    sender.track(webhook, -1);
                    drop(permit);
                    ended.notify_one();
                });
            }
            if may_claim && queue.len() < REFILL_BELOW {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ended.notified() => {}
                _ = recorded.notified() => may_claim = true,
                _ = wakeup.wait(IDLE_POLL) => may_claim = true,
            }
        }
        // Attempts still in flight go on; the recorder ends once they have all reported. Queued
        // deliveries not started are taken again when their lease ends.
    }

    /// Endpoints with as many deliveries queued and in flight here as they may have.
    fn endpoints_at_queue_limit(&self, queue: &ClaimedQueue) -> Vec<Uuid> {
        let in_flight = self.in_flight.lock().map(|c| c.clone()).unwrap_or_default();
        let mut endpoints: Vec<Uuid> = in_flight.keys().chain(queue.endpoints()).copied().collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        endpoints
            .into_iter()
            .filter(|webhook| {
                in_flight.get(webhook).copied().unwrap_or(0) + queue.queued_for(*webhook)
                    >= QUEUED_PER_ENDPOINT
            })
            .collect()
    }

    /// Records successful attempts in batches: one statement for everything that arrived
    /// meanwhile, instead of a transaction (and a pooled connection) per delivery. A success
    /// not yet recorded when the process dies is delivered again after its lease, with the same
    /// `webhook-id` (Standard Webhooks receivers deduplicate on it).
    async fn record_successes(self, mut recorded: mpsc::Receiver<Success>, progress: Arc<Notify>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while recorded.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            let mut failures: u32 = 0;
            while let Err(error) = self.record_batch(&batch).await {
                failures = failures.saturating_add(1);
                tracing::warn!(%error, count = batch.len(), "recording webhook successes failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(failures.min(50)))).await;
            }
            metrics::counter!("omnistream_webhook_deliveries_total", "outcome" => "success")
                .increment(batch.len() as u64);
            batch.clear();
            progress.notify_one();
        }
    }

    async fn record_batch(&self, batch: &[Success]) -> anyhow::Result<()> {
        let ids: Vec<Uuid> = batch.iter().map(|s| s.id).collect();
        let statuses: Vec<i32> = batch.iter().map(|s| s.status).collect();
        let bodies: Vec<&str> = batch.iter().map(|s| s.body.as_str()).collect();
        let durations: Vec<i32> = batch.iter().map(|s| s.duration_ms).collect();
        sqlx::query(
            "WITH done AS (
                 UPDATE webhook_deliveries d SET status = 'success', response_status = u.status, response_body = u.body,
                        duration_ms = u.duration_ms, delivered_at = now(), next_retry_at = NULL
                 FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[]) AS u(id, status, body, duration_ms)
                 WHERE d.id = u.id AND d.status = 'pending'
                 RETURNING d.webhook_id)
             UPDATE outgoing_webhooks SET consecutive_failures = 0, failing_since = NULL, last_delivery_at = now()
             WHERE id IN (SELECT webhook_id FROM done)",
        )
        .bind(&ids)
        .bind(&statuses)
        .bind(&bodies)
        .bind(&durations)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims due deliveries, never one that has an earlier pending delivery of the same
    /// conversation to the same endpoint. The lease (20 s) outlasts an attempt (15 s at most)
    /// and is how long a dead worker's deliveries wait before another worker takes them.
    async fn claim(&self, limit: i64, full: &[Uuid]) -> anyhow::Result<Vec<DueDelivery>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Endpoints take turns: each active endpoint not at its in-flight limit offers its
        // first few due deliveries (an index scan in order_seq order that stops after
        // QUEUED_PER_ENDPOINT rows), so one slow endpoint cannot take every slot and a
        // round costs a few index probes per endpoint, however large the backlog. `OFFSET 0`
        // keeps the ordering probe a per-row subplan on webhook_deliveries_order_idx: as an
        // anti-join, planned on a young table's statistics, it scanned the endpoint's whole
        // backlog for every row (50 ms claims at 10,000 pending deliveries).
        Ok(sqlx::query_as(
            "WITH offered AS (
                 SELECT d.id, d.order_seq,
                        row_number() OVER (PARTITION BY w.id ORDER BY d.order_seq) AS turn
                 FROM outgoing_webhooks w
                 CROSS JOIN LATERAL (
                     SELECT d.id, d.order_seq FROM webhook_deliveries d
                     WHERE d.webhook_id = w.id AND d.status = 'pending' AND d.next_retry_at <= now()
                       AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
                                       WHERE e.webhook_id = d.webhook_id AND e.ordering_key = d.ordering_key
                                         AND e.status = 'pending' AND e.order_seq < d.order_seq OFFSET 0)
                     ORDER BY d.order_seq
                     LIMIT $2
                     FOR UPDATE OF d SKIP LOCKED) d
                 WHERE w.is_active AND NOT (w.id = ANY($3))),
             due AS (SELECT id FROM offered ORDER BY turn, order_seq LIMIT $1)
             UPDATE webhook_deliveries d SET next_retry_at = now() + interval '20 seconds'
             FROM due, outgoing_webhooks w
             WHERE d.id = due.id AND w.id = d.webhook_id
             RETURNING d.id, d.created_at, d.tenant_id, d.webhook_id, d.event_id, d.event_type, d.payload, d.ordering_key, d.order_seq, d.source_event,
                       d.attempt, w.url, w.secret,
                       CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END AS previous_secret, w.headers",
        )
        .bind(limit)
        .bind(QUEUED_PER_ENDPOINT as i64)
        .bind(full)
        .fetch_all(&self.pool)
        .await?)
    }

    fn track(&self, webhook: Uuid, change: isize) {
        if let Ok(mut counts) = self.in_flight.lock() {
            let count = counts.entry(webhook).or_default();
            *count = count.saturating_add_signed(change);
            if *count == 0 {
                counts.remove(&webhook);
            }
        }
    }

    fn in_flight_of(&self, webhook: Uuid) -> usize {
        self.in_flight
            .lock()
            .map(|counts| counts.get(&webhook).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    async fn deliver(
        &self,
        delivery: DueDelivery,
        successes: &mpsc::Sender<Success>,
    ) -> anyhow::Result<()> {
        let tenant = delivery.tenant_id;
        let secrets = crate::webhooks::wire::signing_secrets(
            &self.secrets,
            tenant,
            &delivery.secret,
            delivery.previous_secret.as_deref(),
        )?;
        let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let headers = crate::webhooks::wire::open_headers(&self.secrets, tenant, &delivery.headers);
        let body = serde_json::to_vec(&delivery.payload)?;
        let outcome = attempt(
            &delivery.url,
            self.allow_private,
            &secret_refs,
            &delivery.event_id,
            &delivery.event_type,
            &headers,
            &body,
        )
        .await;
        let duration_ms = outcome.duration.as_millis().min(i32::MAX as u128) as i32;
        if outcome.succeeded() {
            stages::record_since(Stage::Delivered, delivery.created_at);
            let success = Success {
                id: delivery.id,
                status: outcome.status.map_or(0, i32::from),
                body: outcome.body.unwrap_or_default(),
                duration_ms,
            };
            // The recorder is gone only when the sender is stopping: the lease then expires
            // and the delivery is sent again.
            let _ = successes.send(success).await;
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let gone = outcome.status == Some(410);
        let retry_index = delivery.attempt as usize - 1;
        let next = (!gone)
            .then(|| self.schedule.get(retry_index).copied())
            .flatten();
        let status = if next.is_some() || gone {
            "failed"
        } else {
            "exhausted"
        };
        let next_retry_at = next.map(|wait| {
            let jitter = rand::thread_rng().gen_range(0.9..1.1);
            let mut wait = wait.mul_f64(jitter);
            let honours = outcome.status.is_some_and(|s| s == 429 || s >= 500);
            if let (true, Some(after)) = (honours, outcome.retry_after) {
                wait = wait.max(after.min(MAX_RETRY_AFTER));
            }
            Utc::now() + chrono::Duration::from_std(wait.min(MAX_RETRY_AFTER)).unwrap_or_default()
        });
        let updated = sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, response_status = $3, response_body = $4, error_message = $5,
                 duration_ms = $6, next_retry_at = $7 WHERE id = $1 AND status = 'pending'",
        )
        .bind(delivery.id)
        .bind(status)
        .bind(outcome.status.map(i32::from))
        .bind(&outcome.body)
        .bind(&outcome.error)
        .bind(duration_ms)
        .bind(next_retry_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            // Another sender already recorded this attempt (its lease ran out under us).
            return Ok(());
        }
        if let Some(at) = next_retry_at {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, payload, ordering_key, order_seq,
                     status, attempt, next_retry_at, source_event)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11)",
            )
            .bind(Uuid::new_v4())
            .bind(delivery.tenant_id)
            .bind(delivery.webhook_id)
            .bind(&delivery.event_id)
            .bind(&delivery.event_type)
            .bind(&delivery.payload)
            .bind(&delivery.ordering_key)
            .bind(delivery.order_seq)
            .bind(delivery.attempt + 1)
            .bind(at)
            .bind(&delivery.source_event)
            .execute(&mut *tx)
            .await?;
        }
        // Only a change from active to inactive is logged (not a webhook disabled by hand meanwhile).
        let disabled: Option<String> = sqlx::query_scalar(
            "WITH before AS (SELECT is_active FROM outgoing_webhooks WHERE id = $1)
             UPDATE outgoing_webhooks SET consecutive_failures = consecutive_failures + 1,
                 failing_since = COALESCE(failing_since, now()),
                 is_active = CASE WHEN $2 OR COALESCE(failing_since, now()) < now() - interval '5 days' THEN false ELSE is_active END
             WHERE id = $1
             RETURNING CASE WHEN NOT is_active AND (SELECT is_active FROM before)
                            THEN CASE WHEN $2 THEN 'the endpoint answered 410 Gone' ELSE 'the endpoint kept failing for 5 days' END END",
        )
        .bind(delivery.webhook_id)
        .bind(gone)
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        if let Some(reason) = disabled {
            sqlx::query(
                "INSERT INTO activity_logs (id, tenant_id, action, entity_type, entity_id, details)
                 VALUES ($1, $2, 'webhook.disabled', 'outgoing_webhook', $3, $4)",
            )
            .bind(Uuid::new_v4())
            .bind(delivery.tenant_id)
            .bind(delivery.webhook_id.to_string())
            .bind(json!({"reason": reason}))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        metrics::counter!("omnistream_webhook_deliveries_total", "outcome" => status).increment(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(webhook: Uuid, seq: i64) -> DueDelivery {
        DueDelivery {
            id: Uuid::new_v4(),
            created_at: Utc::now(),
            tenant_id: Uuid::nil(),
            webhook_id: webhook,
            event_id: format!("evt_{seq}"),
            event_type: "message.received".into(),
            payload: Value::Null,
            ordering_key: format!("conversation {seq}"),
            order_seq: seq,
            source_event: None,
            attempt: 1,
            url: "http://127.0.0.1:9/".into(),
            secret: String::new(),
            previous_secret: None,
            headers: Value::Null,
        }
    }

    #[test]
    fn endpoints_take_turns_in_claim_order_and_a_full_one_is_passed_over() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut queue = ClaimedQueue::default();
        queue.extend(vec![due(a, 1), due(a, 2), due(a, 3), due(b, 4)]);
        assert_eq!(queue.len(), 4);
        assert_eq!(queue.queued_for(a), 3);
        let none_in_flight = |_| 0;
        let order: Vec<i64> = std::iter::from_fn(|| queue.next_startable(none_in_flight))
            .map(|d| d.order_seq)
            .collect();
        assert_eq!(order, [1, 4, 2, 3], "a, b, then a's rest");
        assert!(queue.is_empty());

        queue.extend(vec![due(a, 5), due(b, 6)]);
        let a_full = |webhook| {
            if webhook == a {
                MAX_IN_FLIGHT_PER_ENDPOINT
            } else {
                0
            }
        };
        assert_eq!(queue.next_startable(a_full).map(|d| d.order_seq), Some(6));
        assert!(queue.next_startable(a_full).is_none(), "a waits for a slot");
        assert_eq!(queue.len(), 1);
        assert_eq!(
            queue.next_startable(none_in_flight).map(|d| d.order_seq),
            Some(5)
        );
    }

    #[test]
    fn a_delivery_queued_too_long_is_dropped_for_its_lease_to_end() {
        let a = Uuid::from_u128(1);
        let mut queue = ClaimedQueue::default();
        queue.extend(vec![due(a, 1), due(a, 2)]);
        if let Some((_, deliveries)) = queue.endpoints.front_mut() {
            deliveries[0].claimed -= QUEUED_AT_MOST + Duration::from_secs(1);
        }
        assert_eq!(queue.next_startable(|_| 0).map(|d| d.order_seq), Some(2));
        assert!(queue.is_empty());
    }
}
