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
    let created = fan_out_in(&mut tx, &[event], only_webhook).await?;
    tx.commit().await?;
    Ok(created)
}

/// One delivery to record.
struct Planned {
    webhook: Uuid,
    tenant: Uuid,
    event_id: String,
    event_type: &'static str,
    envelope: Value,
    ordering_key: String,
    source_event: String,
}

/// [`fan_out`] of several events, in order, inside the caller's transaction (the dispatcher
/// fans out a batch and records its position in one): three statements however many events
/// and endpoints (the endpoints, the fan-out records, the deliveries).
pub async fn fan_out_in(
    tx: &mut PgConnection,
    events: &[EventRef<'_>],
    only_webhook: Option<Uuid>,
) -> anyhow::Result<usize> {
    let public: Vec<_> = events
        .iter()
        .map(|event| {
            let public = public_events_of(
                event.aggregate_type,
                event.aggregate_id,
                event.message_id,
                event.payload,
            );
            (event, public)
        })
        .filter(|(_, public)| !public.is_empty())
        .collect();
    if public.is_empty() {
        return Ok(0);
    }
    let mut tenants: Vec<Uuid> = public.iter().map(|(event, _)| event.tenant).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let webhooks: Vec<(Uuid, Uuid, Vec<String>)> = sqlx::query_as(
        "SELECT tenant_id, id, events FROM outgoing_webhooks
          WHERE tenant_id = ANY($1) AND is_active AND ($2::uuid IS NULL OR id = $2)
          ORDER BY tenant_id, id",
    )
    .bind(&tenants)
    .bind(only_webhook)
    .fetch_all(&mut *tx)
    .await?;
    let mut planned = Vec::new();
    // An event twice in one batch (relayed again after the duplicate window) is planned once.
    let mut seen = std::collections::HashSet::new();
    for (event, public) in public {
        for (event_id, event_type, data, ordering_key) in public {
            let subscribed = webhooks.iter().filter(|(tenant, _, subscriptions)| {
                *tenant == event.tenant && subscriptions.iter().any(|e| e == "*" || e == event_type)
            });
            let mut envelope_of_event = None;
            for (_, webhook, _) in subscribed {
                if !seen.insert((event_id.clone(), *webhook)) {
                    continue;
                }
                let envelope = envelope_of_event
                    .get_or_insert_with(|| {
                        envelope(
                            &event_id,
                            event_type,
                            event.recorded_at,
                            event.tenant,
                            &data,
                        )
                    })
                    .clone();
                planned.push(Planned {
                    webhook: *webhook,
                    tenant: event.tenant,
                    event_id: event_id.clone(),
                    event_type,
                    envelope,
                    ordering_key: ordering_key.clone(),
                    source_event: event.message_id.to_owned(),
                });
            }
        }
    }
    if planned.is_empty() {
        return Ok(0);
    }
    let fresh: std::collections::HashSet<(String, Uuid)> = sqlx::query_as(
        "INSERT INTO webhook_fanout (event_id, webhook_id)
         SELECT * FROM UNNEST($1::text[], $2::uuid[])
         ON CONFLICT DO NOTHING RETURNING event_id, webhook_id",
    )
    .bind(
        planned
            .iter()
            .map(|p| p.event_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(planned.iter().map(|p| p.webhook).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    // A replay to one endpoint delivers again what was fanned out before.
    planned.retain(|p| only_webhook.is_some() || fresh.contains(&(p.event_id.clone(), p.webhook)));
    if planned.is_empty() {
        return Ok(0);
    }
    // In the order planned, so a conversation's deliveries take ascending `order_seq`.
    // One notification per batch wakes the senders of every process at its commit.
    sqlx::query(
        "WITH queued AS (
             INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, payload, ordering_key, status, attempt,
                 next_retry_at, source_event)
             SELECT id, tenant_id, webhook_id, event_id, event_type, payload, ordering_key, 'pending', 1, now(), source_event
               FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[], $7::text[], $8::text[])
                    WITH ORDINALITY AS p(id, tenant_id, webhook_id, event_id, event_type, payload, ordering_key, source_event, n)
              ORDER BY n
             RETURNING 1)
         SELECT pg_notify($9, count(*)::text) FROM queued",
    )
    .bind(planned.iter().map(|_| Uuid::new_v4()).collect::<Vec<_>>())
    .bind(planned.iter().map(|p| p.tenant).collect::<Vec<_>>())
    .bind(planned.iter().map(|p| p.webhook).collect::<Vec<_>>())
    .bind(planned.iter().map(|p| p.event_id.as_str()).collect::<Vec<_>>())
    .bind(planned.iter().map(|p| p.event_type).collect::<Vec<_>>())
    .bind(planned.iter().map(|p| &p.envelope).collect::<Vec<_>>())
    .bind(planned.iter().map(|p| p.ordering_key.as_str()).collect::<Vec<_>>())
    .bind(planned.iter().map(|p| p.source_event.as_str()).collect::<Vec<_>>())
    .bind(crate::infra::wakeup::DELIVERIES)
    .execute(&mut *tx)
    .await?;
    Ok(planned.len())
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
