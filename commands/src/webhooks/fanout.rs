//! Outgoing-webhook fan-out: the dispatcher is a durable JetStream pull consumer on the events
//! stream; for each event it records one pending delivery per subscribed, active endpoint,
//! together with a fan-out record (event, endpoint) in the same transaction, and acknowledges the
//! message only after the commit, so a redelivered message never creates a second delivery.
//!
//! NATS is a notification, not a source of truth: the dispatcher signs only what the event store
//! holds. Each message's id (`<aggregate_type>:<aggregate_id>:<sequence>`) is looked up in the
//! store ([`StoredEvents`]) and the stored payload and time are fanned out; a message naming an
//! event the store does not hold, or a stream other than its id's, is dropped with a warning and
//! acknowledged. So access to NATS alone cannot forge a tenant's webhooks.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use omnistream_domain::StreamId;
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::webhooks::admin::{envelope, parse_message_id};

/// How the relay publishes an event (see `projections::relay`): only its identity is used; the
/// body and time are read back from the event store.
/// How the relay publishes an event (see `projections::relay`): only its identity is used; the
/// body and time are read back from the event store.
#[derive(Debug, Deserialize)]
struct PublishedEvent {
    id: String,
    aggregate_type: String,
    aggregate_id: String,
}

/// One event as the event store holds it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub payload: Value,
    pub recorded_at: chrono::DateTime<Utc>,
}

/// The event store, as the dispatcher reads it: one event by its stream and sequence.
#[async_trait]
pub trait StoredEvents: Send + Sync {
    /// The stored event `sequence` of stream `aggregate_type`/`aggregate_id`; `None` when the
    /// store holds no such event.
    async fn find(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
    ) -> anyhow::Result<Option<StoredEvent>>;
}

const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6f6d_6e69_7374_7265_616d_0000_0000_00e7);

/// The public events of one stored event, each with its stable id: `(id, type, data, ordering key)`.
pub fn public_events_of(
    aggregate_type: &str,
    aggregate_id: &str,
    message_id: &str,
    payload: &Value,
) -> Vec<(String, &'static str, Value, String)> {
    let public = omnistream_domain::catalogue::public_events(aggregate_type, aggregate_id, payload);
    public
        .into_iter()
        .enumerate()
        .map(|(index, (event_type, data))| {
            let id = format!(
                "evt_{}",
                Uuid::new_v5(&EVENT_NAMESPACE, format!("{message_id}:{index}").as_bytes()).simple()
            );
            (id, event_type, data, aggregate_id.to_owned())
        })
        .collect()
}

/// One stored event, as the fan-out needs it.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub tenant: Uuid,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    /// `<aggregate_type>:<aggregate_id>:<sequence>`.
    pub message_id: &'a str,
    pub payload: &'a Value,
    pub recorded_at: chrono::DateTime<Utc>,
}

/// Records the deliveries of one stored event (idempotent); returns how many were created.
/// With `only_webhook`, fans out to that endpoint alone, even again (replay).
pub async fn fan_out(
    pool: &PgPool,
    event: EventRef<'_>,
    only_webhook: Option<Uuid>,
) -> anyhow::Result<usize> {
    let EventRef {
        tenant,
        aggregate_type,
        aggregate_id,
        message_id,
        payload,
        recorded_at,
    } = event;
    let public = public_events_of(aggregate_type, aggregate_id, message_id, payload);
    if public.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let webhooks: Vec<(Uuid, Vec<String>)> = sqlx::query_as(
        "SELECT id, events FROM outgoing_webhooks WHERE tenant_id = $1 AND is_active AND ($2::uuid IS NULL OR id = $2)",
    )
    .bind(tenant)
    .bind(only_webhook)
    .fetch_all(&mut *tx)
    .await?;
    let mut created = 0;
    for (event_id, event_type, data, ordering_key) in &public {
        let envelope = envelope(event_id, event_type, recorded_at, tenant, data);
        for (webhook, events) in &webhooks {
            if !events.iter().any(|e| e == "*" || e == event_type) {
                continue;
            }
            let fresh = sqlx::query("INSERT INTO webhook_fanout (event_id, webhook_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(event_id)
                .bind(webhook)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if !fresh && only_webhook.is_none() {
                continue;
            }
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, payload, ordering_key, status, attempt,
                     next_retry_at, source_event)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 1, now(), $8)",
            )
            .bind(Uuid::new_v4())
            .bind(tenant)
            .bind(webhook)
            .bind(event_id)
            .bind(event_type)
            .bind(&envelope)
            .bind(ordering_key)
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
            created += 1;
        }
    }
    tx.commit().await?;
    Ok(created)
}

/// The JetStream consumer that turns events into deliveries.
pub struct Dispatcher {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub prefix: String,
    /// Where each relayed event is read back from before it is fanned out.
    pub events: Arc<dyn StoredEvents>,
}

impl Dispatcher {
    /// Consumes until `shutdown`, reconnecting after errors.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.consume(&shutdown).await {
                tracing::warn!(%error, "webhook dispatcher paused; retrying");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn consume(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let jetstream = jetstream::new(self.nats.clone());
        let stream = jetstream
            .get_stream(format!("{}_EVENTS", self.prefix.to_uppercase()))
            .await
            .map_err(|e| anyhow::anyhow!("events stream not available yet: {e}"))?;
        let name = format!("{}_webhook_dispatcher", self.prefix);
        let consumer = stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    // Practically never dropped (the relay's checkpoint is past it: with the
                    // 2-minute backoff this is months of retries; NATS needs a bound above the
                    // backoff list), and one event in flight across every dispatcher instance, so
                    // fan-out keeps the log's order.
                    max_deliver: 100_000,
                    max_ack_pending: 1,
                    backoff: vec![
                        Duration::from_secs(1),
                        Duration::from_secs(5),
                        Duration::from_secs(30),
                        Duration::from_secs(120),
                    ],
                    ack_wait: Duration::from_secs(30),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("creating the dispatcher consumer: {e}"))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                next = messages.next() => next,
            };
            let Some(message) = next else { return Ok(()) };
            let message = message.map_err(|e| anyhow::anyhow!("{e}"))?;
            let handled = match serde_json::from_slice::<PublishedEvent>(&message.payload) {
                Ok(event) => self.fan_out_stored(&event).await,
                Err(error) => {
                    tracing::warn!(%error, "unreadable event on the stream; skipped");
                    Ok(())
                }
            };
            match handled {
                Ok(()) => message.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?,
                // Not acknowledged: JetStream redelivers it after its backoff.
                Err(error) => {
                    tracing::warn!(%error, "fan-out failed; the event will be redelivered");
                    let _ = message
                        .ack_with(jetstream::AckKind::Nak(Some(Duration::from_secs(1))))
                        .await;
                    return Err(error);
                }
            }
        }
    }
}

impl Dispatcher {
    /// Fans out the stored event a relayed message names; a message that names no stored event,
    /// or whose stream differs from its id's, is dropped (acknowledged) with a warning.
    async fn fan_out_stored(&self, event: &PublishedEvent) -> anyhow::Result<()> {
        let named = parse_message_id(&event.id).filter(|(aggregate_type, aggregate_id, _)| {
            *aggregate_type == event.aggregate_type && *aggregate_id == event.aggregate_id
        });
        let Some((aggregate_type, aggregate_id, sequence)) = named else {
            tracing::warn!(id = %event.id, aggregate_id = %event.aggregate_id,
                "a message on the events stream does not match its id; dropped");
            return Ok(());
        };
        let Ok(stream) = aggregate_id.parse::<StreamId>() else {
            return Ok(());
        };
        let Some(stored) = self
            .events
            .find(aggregate_type, aggregate_id, sequence)
            .await?
        else {
            tracing::warn!(id = %event.id,
                "a message on the events stream names no stored event (forged?); dropped");
            return Ok(());
        };
        fan_out(
            &self.pool,
            EventRef {
                tenant: stream.tenant_id.as_uuid(),
                aggregate_type,
                aggregate_id,
                message_id: &event.id,
                payload: &stored.payload,
                recorded_at: stored.recorded_at,
            },
            None,
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_message_id_names_its_stream_and_sequence() {
        let tenant = Uuid::new_v4();
        let id = format!("Conversation:{tenant}:{}:12", Uuid::nil());
        assert_eq!(
            parse_message_id(&id),
            Some((
                "Conversation",
                format!("{tenant}:{}", Uuid::nil()).as_str(),
                12
            ))
        );
        assert_eq!(parse_message_id("Conversation:abc"), None);
        assert_eq!(parse_message_id("Conversation:a:b:x"), None);
    }
}
