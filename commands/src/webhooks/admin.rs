//! Outgoing-webhook administration beyond the configuration row: a test event, a redelivery and
//! a replay, with what they share with the dispatcher (the event envelope, the delivery row, and
//! signing with both secrets while a rotation settles, through `wire::signing_secrets`).
//!
//! A replay reads the event log through the read side; this module is handed the events and
//! queues their deliveries.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::infra::secrets::{DecryptError, SecretBox};
use crate::webhooks::fanout::{fan_out, EventRef};
use crate::webhooks::wire;

/// A failed administration call.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The tenant has no such webhook or delivery.
    #[error("not found")]
    NotFound,
    /// A stored secret could not be opened.
    #[error(transparent)]
    Secret(#[from] DecryptError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Anything else (serialising a payload).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The body every delivery carries: `{id, type, timestamp, organization_id, data}`.
pub fn envelope(
    event_id: &str,
    event_type: &str,
    timestamp: DateTime<Utc>,
    tenant: Uuid,
    data: &Value,
) -> Value {
    json!({"id": event_id, "type": event_type, "timestamp": timestamp, "organization_id": tenant, "data": data})
}

/// The parts of a stored event's message id, `<aggregate_type>:<aggregate_id>:<sequence>` (the
/// aggregate id itself holds a colon: `<tenant>:<uuid>`).
pub fn parse_message_id(id: &str) -> Option<(&str, &str, i64)> {
    let (aggregate_type, rest) = id.split_once(':')?;
    let (aggregate_id, sequence) = rest.rsplit_once(':')?;
    Some((aggregate_type, aggregate_id, sequence.parse().ok()?))
}

/// One delivery attempt as `webhook_deliveries` holds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// Stable across retries; sent as `webhook-id`.
    pub event_id: String,
    pub event_type: String,
    pub payload: Value,
    /// `pending`, `success`, `failed` or `exhausted`.
    pub status: String,
    pub attempt: i32,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub response_status: Option<i32>,
    /// The first 2 KB.
    pub response_body: Option<String>,
    pub error_message: Option<String>,
    pub duration_ms: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The columns of a [`Delivery`].
pub const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, payload, status, attempt, next_retry_at, response_status, \
    response_body, error_message, duration_ms, created_at, delivered_at";

/// Where a webhook delivers, as a test needs it.
#[derive(sqlx::FromRow)]
struct Endpoint {
    url: String,
    secret: String,
    previous_secret: Option<String>,
    headers: Value,
}

/// Sends a test event of `event_type` to the tenant's webhook now, whether or not it is active,
/// without retries, and records the attempt (the receiver's failure is in the delivery).
pub async fn send_test(
    pool: &PgPool,
    secrets: &SecretBox,
    allow_private: bool,
    tenant: Uuid,
    webhook: Uuid,
    event_type: &str,
) -> Result<Delivery, AdminError> {
    let endpoint: Endpoint = sqlx::query_as(
        "SELECT url, secret, CASE WHEN previous_secret_expires_at > now() THEN previous_secret END AS previous_secret, headers
         FROM outgoing_webhooks WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(webhook)
    .fetch_optional(pool)
    .await?
    .ok_or(AdminError::NotFound)?;
    let event_id = format!("evt_test_{}", Uuid::new_v4().simple());
    let data = json!({"test": true, "message": "A test event from OmniStream"});
    let envelope = envelope(&event_id, event_type, Utc::now(), tenant, &data);
    let signing = wire::signing_secrets(
        secrets,
        tenant,
        &endpoint.secret,
        endpoint.previous_secret.as_deref(),
    )?;
    let secret_refs: Vec<&str> = signing.iter().map(String::as_str).collect();
    let headers = wire::open_headers(secrets, tenant, &endpoint.headers);
    let bytes = serde_json::to_vec(&envelope).map_err(anyhow::Error::from)?;
    let outcome = wire::attempt(
        &endpoint.url,
        allow_private,
        &secret_refs,
        &event_id,
        event_type,
        &headers,
        &bytes,
    )
    .await;
    Ok(sqlx::query_as(&format!(
        "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, payload, ordering_key, status, attempt,
             response_status, response_body, error_message, duration_ms, delivered_at)
         VALUES ($1, $2, $3, $4, $5, $6, $4, $7, 1, $8, $9, $10, $11, CASE WHEN $7 = 'success' THEN now() END)
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(tenant)
    .bind(webhook)
    .bind(&event_id)
    .bind(event_type)
    .bind(&envelope)
    .bind(if outcome.succeeded() { "success" } else { "failed" })
    .bind(outcome.status.map(i32::from))
    .bind(outcome.body)
    .bind(outcome.error)
    .bind(outcome.duration.as_millis().min(i32::MAX as u128) as i32)
    .fetch_one(pool)
    .await?)
}

/// Queues `delivery` of the tenant's `webhook` again as a new pending attempt with the same
/// `webhook-id`.
pub async fn redeliver(
    pool: &PgPool,
    tenant: Uuid,
    webhook: Uuid,
    delivery: Uuid,
) -> Result<Delivery, AdminError> {
    sqlx::query_as(&format!(
        "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, payload, ordering_key, status, attempt,
             next_retry_at, source_event)
         SELECT $1, tenant_id, webhook_id, event_id, event_type, payload, ordering_key, 'pending', 1, now(), source_event
         FROM webhook_deliveries WHERE tenant_id = $2 AND webhook_id = $3 AND id = $4
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(tenant)
    .bind(webhook)
    .bind(delivery)
    .fetch_optional(pool)
    .await?
    .ok_or(AdminError::NotFound)
}

/// The message id (`<aggregate_type>:<aggregate_id>:<sequence>`) of the stored event a delivered
/// public event `event_id` of the tenant came from, if one was delivered.
pub async fn delivered_source(
    pool: &PgPool,
    tenant: Uuid,
    event_id: &str,
) -> Result<Option<String>, AdminError> {
    Ok(sqlx::query_scalar(
        "SELECT source_event FROM webhook_deliveries WHERE tenant_id = $1 AND event_id = $2 AND source_event IS NOT NULL LIMIT 1",
    )
    .bind(tenant)
    .bind(event_id)
    .fetch_optional(pool)
    .await?)
}

/// A stored event handed to a replay.
#[derive(Debug, Clone, Copy)]
pub struct ReplayedEvent<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub payload: &'a Value,
    pub recorded_at: DateTime<Utc>,
}

/// Queues the subscribed public events of `event` again for the tenant's `webhook` alone, with
/// their original ids; returns how many deliveries were queued.
pub async fn replay_event(
    pool: &PgPool,
    tenant: Uuid,
    webhook: Uuid,
    event: ReplayedEvent<'_>,
) -> Result<usize, AdminError> {
    let message_id = format!(
        "{}:{}:{}",
        event.aggregate_type, event.aggregate_id, event.sequence
    );
    Ok(fan_out(
        pool,
        EventRef {
            tenant,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            message_id: &message_id,
            payload: event.payload,
            recorded_at: event.recorded_at,
        },
        Some(webhook),
    )
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_split_at_the_first_and_last_colon() {
        assert_eq!(
            parse_message_id("Conversation:t1:c1:7"),
            Some(("Conversation", "t1:c1", 7))
        );
        assert_eq!(parse_message_id("Conversation:t1:c1:x"), None);
        assert_eq!(parse_message_id("Conversation"), None);
    }

    #[test]
    fn the_envelope_names_the_event_and_the_organization() {
        let tenant = Uuid::nil();
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let body = envelope("evt_1", "webhook.test", at, tenant, &json!({"a": 1}));
        assert_eq!(
            body,
            json!({"id": "evt_1", "type": "webhook.test", "timestamp": at, "organization_id": tenant, "data": {"a": 1}})
        );
    }
}
