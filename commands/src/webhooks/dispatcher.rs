//! The dispatcher: reads the NATS events stream in order and fans each event out to the
//! subscribed endpoints ([`crate::webhooks::fanout`]), many events per transaction.
//!
//! One dispatcher leads per stream (a PostgreSQL advisory lock on a session it holds; the
//! others stand by and take over within a second of the leader's connection going away). The
//! leader reads through the durable pull consumer `<prefix>_webhook_dispatcher` (explicit
//! acknowledgements, bounded redeliveries with backoff), commits each batch's deliveries
//! together with the batch's last stream position (the processed-event key of ARCHITECTURE.md),
//! and only then acknowledges the batch. A new leader, or one whose batch failed, makes the
//! consumer anew from the committed position: no message waits for an acknowledgement timeout
//! behind a dead leader, none is fanned out twice, and events are fanned out in the log's order
//! whoever leads.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::{FutureExt, StreamExt};
use omnistream_domain::StreamId;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::webhooks::admin::parse_message_id;
use crate::webhooks::fanout::{fan_out_in, EventRef, PublishedEvent, StoredEvent, StoredEvents};

/// Messages fanned out in one transaction, at most.
const BATCH: usize = 256;

/// The JetStream reader that turns events into deliveries.
pub struct Dispatcher {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub prefix: String,
    /// Where each relayed event is read back from before it is fanned out.
    pub events: Arc<dyn StoredEvents>,
}

/// One message of a batch, resolved against the event store.
struct Resolved {
    tenant: uuid::Uuid,
    aggregate_type: String,
    aggregate_id: String,
    message_id: String,
    stored: StoredEvent,
}

impl Dispatcher {
    /// Dispatches until `shutdown`: stands by until it leads, resumes after errors.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.lead(&shutdown).await {
                tracing::warn!(%error, "webhook dispatcher paused; retrying");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// The name of this dispatcher's position (and of its lock).
    fn position_name(&self) -> String {
        format!("webhook_dispatcher:{}", self.prefix)
    }

    /// Holds the leader lock on one session and dispatches while it can.
    async fn lead(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let mut session = self.pool.acquire().await?;
        let leader: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(self.position_name())
                .fetch_one(&mut *session)
                .await?;
        if !leader {
            return Ok(());
        }
        let outcome = self.dispatch(shutdown).await;
        let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(self.position_name())
            .execute(&mut *session)
            .await;
        outcome
    }

    /// Reads the stream from the committed position and fans it out batch by batch.
    async fn dispatch(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let jetstream = jetstream::new(self.nats.clone());
        let mut stream = jetstream
            .get_stream(format!("{}_EVENTS", self.prefix.to_uppercase()))
            .await
            .map_err(|e| anyhow::anyhow!("events stream not available yet: {e}"))?;
        let last_in_stream = stream
            .info()
            .await
            .map_err(|e| anyhow::anyhow!("reading the events stream: {e}"))?
            .state
            .last_sequence;
        let mut position = load_position(&self.pool, &self.position_name()).await?;
        if position > last_in_stream {
            // The stream was made anew (its sequences restarted): read it from its start; the
            // fan-out records keep events already fanned out from being sent twice.
            tracing::warn!(
                position,
                last_in_stream,
                "the events stream restarted; dispatching it from its start"
            );
            position = 0;
        }
        // Made anew from the committed position: what an earlier leader had in flight is
        // neither waited for nor fanned out twice.
        let name = format!("{}_webhook_dispatcher", self.prefix);
        let _ = stream.delete_consumer(&name).await;
        let reader = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: position + 1,
                },
                // A batch is acknowledged by acknowledging its last message.
                ack_policy: consumer::AckPolicy::All,
                max_ack_pending: (2 * BATCH) as i64,
                // Practically never dropped (NATS needs a bound above the backoff list); a
                // failed batch makes the consumer anew anyway.
                max_deliver: 100_000,
                backoff: vec![
                    Duration::from_secs(1),
                    Duration::from_secs(5),
                    Duration::from_secs(30),
                ],
                ack_wait: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("creating the dispatcher's consumer: {e}"))?;
        let mut messages = reader
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("reading the events stream: {e}"))?;
        // The stream position the next message must have (the first may be later than the
        // committed one, when older messages have aged out of the stream).
        let mut expected: Option<u64> = None;
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                next = messages.next() => next,
            };
            let Some(first) = next else { return Ok(()) };
            let mut batch = vec![first.map_err(|e| anyhow::anyhow!("{e}"))?];
            // Whatever else has arrived joins the batch.
            while batch.len() < BATCH {
                match messages.next().now_or_never() {
                    Some(Some(message)) => batch.push(message.map_err(|e| anyhow::anyhow!("{e}"))?),
                    _ => break,
                }
            }
            // Anything but the next position (a redelivery, or a gap) means the consumer and
            // the committed position disagree: start again from the position.
            let first_position = position_of(&batch[0])?;
            if expected.is_some_and(|next| first_position != next) {
                anyhow::bail!("the events stream skipped from {expected:?} to {first_position}; resuming from the committed position");
            }
            let last = self.fan_out_batch(&batch).await?;
            expected = Some(last + 1);
            if let Some(message) = batch.last() {
                message
                    .ack()
                    .await
                    .map_err(|e| anyhow::anyhow!("acknowledging a batch: {e}"))?;
            }
        }
    }

    /// Fans out `batch` and records its last position, in one transaction; returns that
    /// position.
    async fn fan_out_batch(&self, batch: &[jetstream::Message]) -> anyhow::Result<u64> {
        let mut last = 0;
        let mut resolved = Vec::with_capacity(batch.len());
        for message in batch {
            let position = position_of(message)?;
            anyhow::ensure!(
                last == 0 || position == last + 1,
                "the events stream skipped from {last} to {position}"
            );
            last = position;
            match serde_json::from_slice::<PublishedEvent>(&message.payload) {
                Ok(event) => resolved.extend(self.resolve(event).await?),
                Err(error) => tracing::warn!(%error, "unreadable event on the stream; skipped"),
            }
        }
        let events: Vec<EventRef<'_>> = resolved
            .iter()
            .map(|event| EventRef {
                tenant: event.tenant,
                aggregate_type: &event.aggregate_type,
                aggregate_id: &event.aggregate_id,
                message_id: &event.message_id,
                payload: &event.stored.payload,
                recorded_at: event.stored.recorded_at,
            })
            .collect();
        let mut tx = self.pool.begin().await?;
        fan_out_in(&mut tx, &events, None).await?;
        store_position(&mut tx, &self.position_name(), last).await?;
        tx.commit().await?;
        metrics::counter!("omnistream_dispatcher_events_total").increment(batch.len() as u64);
        Ok(last)
    }

    /// The stored event a relayed message names; `None` (with a warning) for a message that
    /// names no stored event, or a stream other than its id's: NATS alone cannot forge a
    /// tenant's webhooks.
    async fn resolve(&self, event: PublishedEvent) -> anyhow::Result<Option<Resolved>> {
        let named = parse_message_id(&event.id).filter(|(aggregate_type, aggregate_id, _)| {
            *aggregate_type == event.aggregate_type && *aggregate_id == event.aggregate_id
        });
        let Some((aggregate_type, aggregate_id, sequence)) = named else {
            tracing::warn!(id = %event.id, aggregate_id = %event.aggregate_id,
                "a message on the events stream does not match its id; dropped");
            return Ok(None);
        };
        let Ok(stream) = aggregate_id.parse::<StreamId>() else {
            return Ok(None);
        };
        let Some(stored) = self
            .events
            .find(aggregate_type, aggregate_id, sequence)
            .await?
        else {
            tracing::warn!(id = %event.id,
                "a message on the events stream names no stored event (forged?); dropped");
            return Ok(None);
        };
        Ok(Some(Resolved {
            tenant: stream.tenant_id.as_uuid(),
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            message_id: event.id.clone(),
            stored,
        }))
    }
}

/// A message's position in the events stream.
fn position_of(message: &jetstream::Message) -> anyhow::Result<u64> {
    Ok(message
        .info()
        .map_err(|e| anyhow::anyhow!("a message without its stream position: {e}"))?
        .stream_sequence)
}

/// The last stream sequence `name` has dealt with (0: none).
async fn load_position(pool: &PgPool, name: &str) -> sqlx::Result<u64> {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM stream_positions WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(position.unwrap_or(0).max(0) as u64)
}

/// Records that `name` has dealt with the stream up to `position`.
async fn store_position(conn: &mut PgConnection, name: &str, position: u64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO stream_positions (name, position) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
    )
    .bind(name)
    .bind(position as i64)
    .execute(conn)
    .await?;
    Ok(())
}
