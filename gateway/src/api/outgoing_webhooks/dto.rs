//! Request and response bodies of the Outgoing Webhooks tag, and their validation.

use chrono::{DateTime, Utc};
use omnistream_commands::infra::secrets::SecretBox;
use omnistream_commands::webhooks::admin::Delivery;
use omnistream_commands::webhooks::wire;
use omnistream_domain::catalogue::{is_public_event_type, TEST_EVENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::{ApiError, Result, Violations};
use crate::http::extract::Paged;
use crate::http::extract::{check_text, present, Validate};

/// `OutgoingWebhook` (the secret masked, except in the create response).
#[derive(Debug, Serialize, ToSchema)]
pub struct OutgoingWebhook {
    pub id: Uuid,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    /// `****` + the last 4 characters (the full `whsec_` secret only when created).
    pub secret: String,
    pub is_active: bool,
    #[schema(value_type = Object)]
    pub headers: Value,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct WebhookRow {
    pub(super) id: Uuid,
    pub(super) tenant_id: Uuid,
    pub(super) name: String,
    pub(super) url: String,
    pub(super) events: Vec<String>,
    pub(super) secret: String,
    pub(super) is_active: bool,
    pub(super) headers: Value,
    pub(super) last_delivery_at: Option<DateTime<Utc>>,
    pub(super) consecutive_failures: i32,
    pub(super) created_by: Uuid,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

pub(super) const WEBHOOK_COLUMNS: &str =
    "id, tenant_id, name, url, events, secret, is_active, headers, last_delivery_at, consecutive_failures, created_by, created_at, updated_at";

impl WebhookRow {
    pub(super) fn into_api(self, secrets: &SecretBox, reveal: bool) -> Result<OutgoingWebhook> {
        let plain = secrets
            .decrypt(self.tenant_id, wire::WEBHOOK_SECRET_FIELD, &self.secret)
            .map_err(|e| ApiError::Internal(e.into()))?;
        Ok(OutgoingWebhook {
            id: self.id,
            name: self.name,
            url: self.url,
            events: self.events,
            secret: if reveal {
                plain
            } else {
                omnistream_commands::infra::secrets::mask(&plain)
            },
            is_active: self.is_active,
            headers: wire::mask_headers(secrets, self.tenant_id, &self.headers),
            last_delivery_at: self.last_delivery_at,
            consecutive_failures: self.consecutive_failures,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `WebhookDelivery`: one row per attempt.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// Stable across retries; sent as `webhook-id`.
    pub event_id: String,
    pub event_type: String,
    #[schema(value_type = Object)]
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

fn check_events(violations: &mut Violations, events: &mut Vec<String>) {
    events.iter_mut().for_each(|e| *e = e.trim().to_owned());
    events.dedup();
    if events.is_empty() {
        violations.add("events", "must name at least one event type, or [\"*\"]");
    } else if events.iter().any(|e| e == "*") {
        if events.len() > 1 {
            violations.add("events", "\"*\" stands alone");
        }
    } else {
        let unknown: Vec<&str> = events
            .iter()
            .filter(|e| !is_public_event_type(e))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            violations.add(
                "events",
                format!("unknown event types: {}", unknown.join(", ")),
            );
        }
    }
}

/// Headers a webhook may not set: the delivery's own.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

fn check_headers(violations: &mut Violations, headers: &Value) {
    let Some(map) = headers.as_object() else {
        violations.add("headers", "must be an object of strings");
        return;
    };
    for (name, value) in map {
        let lower = name.to_lowercase();
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name
            || RESERVED_HEADERS.contains(&lower.as_str())
            || lower.starts_with("x-omnistream")
        {
            violations.add(
                format!("headers.{name}"),
                "is not a header a webhook may set",
            );
        } else if !value
            .as_str()
            .is_some_and(|v| v.chars().all(|c| !c.is_control()) && v.len() <= 1024)
        {
            violations.add(
                format!("headers.{name}"),
                "must be a string of at most 1024 characters",
            );
        } else if value
            .as_str()
            .is_some_and(omnistream_commands::infra::secrets::is_sealed)
        {
            // Only the server seals values: a ciphertext pasted from elsewhere is refused.
            violations.add(format!("headers.{name}"), "must not start with `enc:`");
        }
    }
}

/// `CreateOutgoingWebhook`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOutgoingWebhook {
    /// 1..100 characters.
    pub(super) name: String,
    /// Absolute https URL (http only when `OUTGOING_WEBHOOKS_ALLOW_PRIVATE` is set).
    pub(super) url: String,
    /// Catalogue types, or `["*"]` for all.
    pub(super) events: Vec<String>,
    /// `whsec_` + base64 of 24..64 bytes; generated when omitted.
    #[serde(default)]
    pub(super) secret: Option<String>,
    #[serde(default)]
    pub(super) is_active: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub(super) headers: Option<Value>,
}

impl Validate for CreateOutgoingWebhook {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(violations, "name", &mut self.name, 1, 100);
        check_text(violations, "url", &mut self.url, 1, 2000);
        check_events(violations, &mut self.events);
        if self
            .secret
            .as_deref()
            .is_some_and(|s| !wire::valid_secret(s))
        {
            violations.add(
                "secret",
                "must be `whsec_` followed by base64 of 24 to 64 random bytes",
            );
        }
        if let Some(headers) = &self.headers {
            check_headers(violations, headers);
        }
    }
}

/// `UpdateOutgoingWebhook`: the create fields, all optional; a new secret replaces the old one
/// (deliveries are signed with both for 24 hours).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOutgoingWebhook {
    #[serde(default, deserialize_with = "present")]
    pub(super) name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(super) url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(super) events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub(super) secret: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(super) is_active: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub(super) headers: Option<Value>,
}

impl Validate for UpdateOutgoingWebhook {
    fn validate(&mut self, violations: &mut Violations) {
        if let Some(name) = &mut self.name {
            check_text(violations, "name", name, 1, 100);
        }
        if let Some(url) = &mut self.url {
            check_text(violations, "url", url, 1, 2000);
        }
        if let Some(events) = &mut self.events {
            check_events(violations, events);
        }
        if self
            .secret
            .as_deref()
            .is_some_and(|s| !wire::valid_secret(s))
        {
            violations.add(
                "secret",
                "must be `whsec_` followed by base64 of 24 to 64 random bytes",
            );
        }
        if let Some(headers) = &self.headers {
            check_headers(violations, headers);
        }
    }
}

/// One catalogue entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeInfo {
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub description: &'static str,
    /// An example `data` object, produced by the real domain events; null for types no part of
    /// the platform emits yet.
    #[schema(value_type = Option<Object>)]
    pub example: Option<Value>,
}

/// Filters of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    pub(super) page: Option<i64>,
    pub(super) per_page: Option<i64>,
    /// `pending`, `success`, `failed` or `exhausted`.
    pub(super) status: Option<String>,
    pub(super) event_type: Option<String>,
}

impl Paged for DeliveryQuery {
    fn paging(&self) -> (Option<i64>, Option<i64>) {
        (self.page, self.per_page)
    }
}

impl Validate for DeliveryQuery {
    fn validate(&mut self, violations: &mut Violations) {
        self.check_paging(violations);
        if self
            .status
            .as_deref()
            .is_some_and(|s| !["pending", "success", "failed", "exhausted"].contains(&s))
        {
            violations.add("status", "must be pending, success, failed or exhausted");
        }
        if let Some(event_type) = &mut self.event_type {
            check_text(violations, "event_type", event_type, 1, 100);
        }
    }
}

/// Optional body of the test endpoint.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestWebhookRequest {
    /// Default `webhook.test`.
    #[serde(default)]
    pub(super) event_type: Option<String>,
}

impl Validate for TestWebhookRequest {
    fn validate(&mut self, violations: &mut Violations) {
        if self
            .event_type
            .as_deref()
            .is_some_and(|t| t != TEST_EVENT_TYPE && !is_public_event_type(t))
        {
            violations.add(
                "event_type",
                "must be webhook.test or a catalogue event type",
            );
        }
    }
}

/// Body of the replay endpoint: a time range, or everything after an event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Start of the range (inclusive), by the time the event was recorded.
    #[serde(default)]
    pub(super) since: Option<DateTime<Utc>>,
    /// End of the range (exclusive); default now.
    #[serde(default)]
    pub(super) until: Option<DateTime<Utc>>,
    /// Instead of a range: every event recorded after this one (an `id` seen in a delivery).
    #[serde(default)]
    pub(super) after_event_id: Option<String>,
}

impl Validate for ReplayRequest {
    fn validate(&mut self, violations: &mut Violations) {
        match (&self.since, &self.after_event_id) {
            (None, None) => violations.add(
                "since",
                "give since (and optionally until), or after_event_id",
            ),
            (Some(_), Some(_)) => violations.add(
                "after_event_id",
                "give a time range or after_event_id, not both",
            ),
            _ => {}
        }
        if let (Some(since), Some(until)) = (self.since, self.until) {
            if until <= since {
                violations.add("until", "must be after since");
            }
        }
    }
}

/// How many deliveries a replay queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayResponse {
    pub queued: usize,
}

impl From<Delivery> for WebhookDelivery {
    fn from(d: Delivery) -> Self {
        WebhookDelivery {
            id: d.id,
            webhook_id: d.webhook_id,
            event_id: d.event_id,
            event_type: d.event_type,
            payload: d.payload,
            status: d.status,
            attempt: d.attempt,
            next_retry_at: d.next_retry_at,
            response_status: d.response_status,
            response_body: d.response_body,
            error_message: d.error_message,
            duration_ms: d.duration_ms,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}
