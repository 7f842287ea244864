//! Outgoing-webhook fan-out: for each event, one pending delivery per subscribed, active
//! endpoint, together with a fan-out record (event, endpoint) in the same transaction, so an
//! event fanned out again never creates a second delivery. The [`crate::webhooks::dispatcher`]
//! feeds it from the NATS events stream.
//!
//! NATS is a notification, not a source of truth: the dispatcher signs only what the event store
//! holds. Each message's id (`<aggregate_type>:<aggregate_id>:<sequence>`) is looked up in the
//! store ([`StoredEvents`]) and the stored payload and time are fanned out; a message naming an
//! event the store does not hold, or a stream other than its id's, is dropped with a warning.
//! So access to NATS alone cannot forge a tenant's webhooks.

use async_trait::async_trait;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::webhooks::admin::envelope;

/// How the relay publishes an event (see `projections::relay`): only its identity is used; the
/// body and time are read back from the event store.
#[derive(Debug, Deserialize)]
pub(crate) struct PublishedEvent {
    pub id: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
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
    let mut tx = pool.begin().await?;
    let created = fan_out_in(&mut tx, event, only_webhook).await?;
    tx.commit().await?;
    Ok(created)
}

/// [`fan_out`] inside the caller's transaction (the dispatcher fans out a batch of events and
/// records its position in one).
pub async fn fan_out_in(
    tx: &mut PgConnection,
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
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::admin::parse_message_id;

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
