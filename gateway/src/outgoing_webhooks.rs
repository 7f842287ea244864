//! Outgoing Webhooks tag: endpoints that receive the tenant's events, signed per the Standard
//! Webhooks specification, and their delivery log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_commands::webhooks::{self as wire, UrlRefused};
use omnistream_domain::catalogue::{is_public_event_type, PUBLIC_EVENT_TYPES, TEST_EVENT_TYPE};
use omnistream_projections::log;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::activity::{self, Activity};
use crate::app::AppState;
use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ErrorResponse, Result, Violations};
use crate::extract::{
    check_text, present, DeleteResponse, IdPath, PageRequest, Paginated, ValidJson, ValidQuery,
    Validate,
};

/// The event store as the webhook dispatcher reads it (through the read side's log reader).
pub struct StoredEventLog(pub sqlx::PgPool);

#[async_trait::async_trait]
impl omnistream_commands::webhook_dispatch::StoredEvents for StoredEventLog {
    async fn find(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
    ) -> anyhow::Result<Option<omnistream_commands::webhook_dispatch::StoredEvent>> {
        let found = omnistream_projections::log::find_event(
            &self.0,
            aggregate_type,
            aggregate_id,
            sequence,
        )
        .await?;
        Ok(
            found.map(|event| omnistream_commands::webhook_dispatch::StoredEvent {
                payload: event.payload,
                recorded_at: event.recorded_at,
            }),
        )
    }
}

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
struct WebhookRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    url: String,
    events: Vec<String>,
    secret: String,
    is_active: bool,
    headers: Value,
    last_delivery_at: Option<DateTime<Utc>>,
    consecutive_failures: i32,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

const WEBHOOK_COLUMNS: &str =
    "id, tenant_id, name, url, events, secret, is_active, headers, last_delivery_at, consecutive_failures, created_by, created_at, updated_at";

impl WebhookRow {
    fn into_api(self, state: &AppState, reveal: bool) -> Result<OutgoingWebhook> {
        let plain = state
            .secrets
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
                omnistream_commands::secrets::mask(&plain)
            },
            is_active: self.is_active,
            headers: wire::mask_headers(&state.secrets, self.tenant_id, &self.headers),
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

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, payload, status, attempt, next_retry_at, response_status, \
    response_body, error_message, duration_ms, created_at, delivered_at";

fn url_not_allowed(refused: UrlRefused) -> ApiError {
    match refused {
        UrlRefused::Invalid => ApiError::invalid_field("url", "must be an absolute http(s) URL"),
        other => ApiError::unprocessable("url_not_allowed", other.to_string()),
    }
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
            .is_some_and(omnistream_commands::secrets::is_sealed)
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
    name: String,
    /// Absolute https URL (http only when `OUTGOING_WEBHOOKS_ALLOW_PRIVATE` is set).
    url: String,
    /// Catalogue types, or `["*"]` for all.
    events: Vec<String>,
    /// `whsec_` + base64 of 24..64 bytes; generated when omitted.
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    headers: Option<Value>,
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
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    secret: Option<String>,
    #[serde(default, deserialize_with = "present")]
    is_active: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    headers: Option<Value>,
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

async fn load_webhook(state: &AppState, tenant: Uuid, id: Uuid) -> Result<WebhookRow> {
    sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM outgoing_webhooks WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::NotFound)
}

/// List outgoing webhooks
#[utoipa::path(
    get, path = "/api/outgoing-webhooks", tag = "Outgoing Webhooks",
    responses((status = 200, description = "Secrets masked", body = Vec<OutgoingWebhook>), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_webhooks(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
) -> Result<Json<Vec<OutgoingWebhook>>> {
    let rows: Vec<WebhookRow> =
        sqlx::query_as(&format!("SELECT {WEBHOOK_COLUMNS} FROM outgoing_webhooks WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(caller.tenant_id.as_uuid())
            .fetch_all(&state.pool)
            .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| r.into_api(&state, false))
            .collect::<Result<_>>()?,
    ))
}

/// Create an outgoing webhook
#[utoipa::path(
    post, path = "/api/outgoing-webhooks", tag = "Outgoing Webhooks", request_body = CreateOutgoingWebhook,
    responses((status = 201, description = "The only response that shows the plain secret", body = OutgoingWebhook),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 422, description = "url_not_allowed: private, loopback, link-local or metadata address, or plain http", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn create_webhook(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    ValidJson(body): ValidJson<CreateOutgoingWebhook>,
) -> Result<(StatusCode, Json<OutgoingWebhook>)> {
    wire::resolve_allowed(&body.url, state.config.outgoing_webhooks_allow_private)
        .await
        .map_err(url_not_allowed)?;
    let secret = body.secret.clone().unwrap_or_else(wire::generate_secret);
    let mut tx = state.pool.begin().await?;
    let row: WebhookRow = sqlx::query_as(&format!(
        "INSERT INTO outgoing_webhooks (id, tenant_id, name, url, events, secret, is_active, headers, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(caller.tenant_id.as_uuid())
    .bind(&body.name)
    .bind(&body.url)
    .bind(&body.events)
    .bind(state.secrets.encrypt(caller.tenant_id.as_uuid(), wire::WEBHOOK_SECRET_FIELD, &secret))
    .bind(body.is_active.unwrap_or(true))
    .bind(wire::seal_headers(&state.secrets, caller.tenant_id.as_uuid(), &body.headers.clone().unwrap_or_else(|| json!({}))))
    .bind(caller.agent_id.as_uuid())
    .fetch_one(&mut *tx)
    .await?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "webhook.created",
            entity_type: "outgoing_webhook",
            entity_id: Some(row.id.to_string()),
            details: json!({"name": row.name, "url": row.url, "events": row.events}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.into_api(&state, true)?)))
}

/// Update an outgoing webhook
#[utoipa::path(
    patch, path = "/api/outgoing-webhooks/{id}", tag = "Outgoing Webhooks", params(("id" = Uuid, Path)), request_body = UpdateOutgoingWebhook,
    responses((status = 200, body = OutgoingWebhook), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 422, description = "url_not_allowed", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn update_webhook(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateOutgoingWebhook>,
) -> Result<Json<OutgoingWebhook>> {
    let tenant = caller.tenant_id.as_uuid();
    let current = load_webhook(&state, tenant, id).await?;
    if let Some(url) = &body.url {
        wire::resolve_allowed(url, state.config.outgoing_webhooks_allow_private)
            .await
            .map_err(url_not_allowed)?;
    }
    let new_secret = body
        .secret
        .as_ref()
        .map(|s| state.secrets.encrypt(tenant, wire::WEBHOOK_SECRET_FIELD, s));
    let mut tx = state.pool.begin().await?;
    let row: WebhookRow = sqlx::query_as(&format!(
        "UPDATE outgoing_webhooks SET name = COALESCE($3, name), url = COALESCE($4, url), events = COALESCE($5, events),
             previous_secret = CASE WHEN $6::text IS NULL THEN previous_secret ELSE secret END,
             previous_secret_expires_at = CASE WHEN $6::text IS NULL THEN previous_secret_expires_at ELSE now() + interval '24 hours' END,
             secret = COALESCE($6, secret),
             is_active = COALESCE($7, is_active),
             consecutive_failures = CASE WHEN $7 THEN 0 ELSE consecutive_failures END,
             failing_since = CASE WHEN $7 THEN NULL ELSE failing_since END,
             headers = COALESCE($8, headers), updated_at = now()
         WHERE tenant_id = $1 AND id = $2 RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(body.name.as_deref())
    .bind(body.url.as_deref())
    .bind(body.events.clone())
    .bind(new_secret)
    .bind(body.is_active)
    .bind(body.headers.as_ref().map(|h| wire::seal_headers(&state.secrets, tenant, h)))
    .fetch_one(&mut *tx)
    .await?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "webhook.updated",
            entity_type: "outgoing_webhook",
            entity_id: Some(id.to_string()),
            details: json!({"name": {"from": current.name, "to": row.name}, "url": {"from": current.url, "to": row.url},
                            "events": row.events, "is_active": row.is_active, "secret_rotated": body.secret.is_some()}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(row.into_api(&state, false)?))
}

/// Delete an outgoing webhook
#[utoipa::path(
    delete, path = "/api/outgoing-webhooks/{id}", tag = "Outgoing Webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Its deliveries are deleted too", body = DeleteResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn delete_webhook(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    IdPath(id): IdPath,
) -> Result<Json<DeleteResponse>> {
    let tenant = caller.tenant_id.as_uuid();
    let mut tx = state.pool.begin().await?;
    let deleted: Option<String> = sqlx::query_scalar(
        "DELETE FROM outgoing_webhooks WHERE tenant_id = $1 AND id = $2 RETURNING name",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let name = deleted.ok_or(ApiError::NotFound)?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "webhook.deleted",
            entity_type: "outgoing_webhook",
            entity_id: Some(id.to_string()),
            details: json!({"name": name}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(DeleteResponse {
        message: "webhook deleted".into(),
        id,
    }))
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

/// List available webhook event types
#[utoipa::path(
    get, path = "/api/outgoing-webhooks/event-types", tag = "Outgoing Webhooks",
    responses((status = 200, body = Vec<EventTypeInfo>), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn event_types(_caller: Authorized<perm::WebhooksManage>) -> Json<Vec<EventTypeInfo>> {
    Json(
        PUBLIC_EVENT_TYPES
            .iter()
            .map(|t| EventTypeInfo {
                event_type: t.name,
                description: t.description,
                example: omnistream_domain::catalogue::example(t.name),
            })
            .collect(),
    )
}

/// Filters of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    /// `pending`, `success`, `failed` or `exhausted`.
    status: Option<String>,
    event_type: Option<String>,
}

impl Validate for DeliveryQuery {
    fn validate(&mut self, violations: &mut Violations) {
        PageRequest::checked(self.page, self.per_page, 20, 100, violations);
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

/// List deliveries for a webhook
#[utoipa::path(
    get, path = "/api/outgoing-webhooks/{id}/deliveries", tag = "Outgoing Webhooks", params(("id" = Uuid, Path), DeliveryQuery),
    responses((status = 200, description = "One row per attempt, newest first", body = Paginated<WebhookDelivery>),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_deliveries(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    IdPath(id): IdPath,
    ValidQuery(query): ValidQuery<DeliveryQuery>,
) -> Result<Json<Paginated<WebhookDelivery>>> {
    let tenant = caller.tenant_id.as_uuid();
    load_webhook(&state, tenant, id).await?;
    let page = PageRequest::checked(
        query.page,
        query.per_page,
        20,
        100,
        &mut Violations::default(),
    );
    let filtered = |select: &str| {
        let mut builder = QueryBuilder::<Postgres>::new(select);
        builder
            .push(" FROM webhook_deliveries WHERE tenant_id = ")
            .push_bind(tenant)
            .push(" AND webhook_id = ")
            .push_bind(id);
        if let Some(status) = &query.status {
            builder.push(" AND status = ").push_bind(status.clone());
        }
        if let Some(event_type) = &query.event_type {
            builder
                .push(" AND event_type = ")
                .push_bind(event_type.clone());
        }
        builder
    };
    Ok(Json(
        crate::extract::fetch_page::<WebhookDelivery>(
            &state.pool,
            filtered,
            &format!("SELECT {DELIVERY_COLUMNS}"),
            "created_at DESC, id DESC",
            page,
        )
        .await?,
    ))
}

/// Optional body of the test endpoint.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestWebhookRequest {
    /// Default `webhook.test`.
    #[serde(default)]
    event_type: Option<String>,
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

/// Send a test event to the webhook
#[utoipa::path(
    post, path = "/api/outgoing-webhooks/{id}/test", tag = "Outgoing Webhooks", params(("id" = Uuid, Path)),
    request_body(content = Option<TestWebhookRequest>),
    responses((status = 200, description = "Delivered synchronously (even when inactive), no retries; the receiver's failure is in the delivery", body = WebhookDelivery),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn test_webhook(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    IdPath(id): IdPath,
    body: axum::body::Bytes,
) -> Result<Json<WebhookDelivery>> {
    let request: TestWebhookRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TestWebhookRequest::default()
    } else {
        crate::extract::parse_body(&body)?
    };
    let tenant = caller.tenant_id.as_uuid();
    let webhook = load_webhook(&state, tenant, id).await?;
    let event_type = request
        .event_type
        .unwrap_or_else(|| TEST_EVENT_TYPE.to_owned());
    let event_id = format!("evt_test_{}", Uuid::new_v4().simple());
    let envelope = json!({
        "id": event_id,
        "type": event_type,
        "timestamp": Utc::now(),
        "organization_id": tenant,
        "data": {"test": true, "message": "A test event from OmniStream"},
    });
    let mut secrets = vec![state
        .secrets
        .decrypt(tenant, wire::WEBHOOK_SECRET_FIELD, &webhook.secret)
        .map_err(|e| ApiError::Internal(e.into()))?];
    // While a rotation settles, deliveries carry both signatures.
    let previous: Option<String> =
        sqlx::query_scalar("SELECT previous_secret FROM outgoing_webhooks WHERE id = $1 AND previous_secret_expires_at > now()")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?
            .flatten();
    if let Some(previous) = previous {
        secrets.push(
            state
                .secrets
                .decrypt(tenant, wire::WEBHOOK_SECRET_FIELD, &previous)
                .map_err(|e| ApiError::Internal(e.into()))?,
        );
    }
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let headers = wire::open_headers(&state.secrets, tenant, &webhook.headers);
    let bytes = serde_json::to_vec(&envelope).map_err(anyhow::Error::from)?;
    let outcome = wire::attempt(
        &webhook.url,
        state.config.outgoing_webhooks_allow_private,
        &secret_refs,
        &event_id,
        &event_type,
        &headers,
        &bytes,
    )
    .await;
    let delivery: WebhookDelivery = sqlx::query_as(&format!(
        "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, payload, ordering_key, status, attempt,
             response_status, response_body, error_message, duration_ms, delivered_at)
         VALUES ($1, $2, $3, $4, $5, $6, $4, $7, 1, $8, $9, $10, $11, CASE WHEN $7 = 'success' THEN now() END)
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(tenant)
    .bind(id)
    .bind(&event_id)
    .bind(&event_type)
    .bind(&envelope)
    .bind(if outcome.succeeded() { "success" } else { "failed" })
    .bind(outcome.status.map(i32::from))
    .bind(outcome.body)
    .bind(outcome.error)
    .bind(outcome.duration.as_millis().min(i32::MAX as u128) as i32)
    .fetch_one(&state.pool)
    .await?;
    Ok(Json(delivery))
}

/// Re-send one delivery
#[utoipa::path(
    post, path = "/api/outgoing-webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "Outgoing Webhooks",
    params(("id" = Uuid, Path), ("delivery_id" = Uuid, Path)),
    responses((status = 202, description = "A new pending attempt with the same webhook-id", body = WebhookDelivery),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn redeliver(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    axum::extract::Path((id, delivery_id)): axum::extract::Path<(String, String)>,
) -> Result<(StatusCode, Json<WebhookDelivery>)> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::invalid_field("id", "must be a UUID"))?;
    let delivery_id = Uuid::parse_str(&delivery_id)
        .map_err(|_| ApiError::invalid_field("delivery_id", "must be a UUID"))?;
    let tenant = caller.tenant_id.as_uuid();
    load_webhook(&state, tenant, id).await?;
    let delivery: WebhookDelivery = sqlx::query_as(&format!(
        "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, payload, ordering_key, status, attempt,
             next_retry_at, source_event)
         SELECT $1, tenant_id, webhook_id, event_id, event_type, payload, ordering_key, 'pending', 1, now(), source_event
         FROM webhook_deliveries WHERE tenant_id = $2 AND webhook_id = $3 AND id = $4
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(tenant)
    .bind(id)
    .bind(delivery_id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    activity::record(
        &mut conn,
        &caller,
        Activity {
            action: "webhook.redelivered",
            entity_type: "outgoing_webhook",
            entity_id: Some(id.to_string()),
            details: json!({"delivery_id": delivery_id, "event_id": delivery.event_id}),
        },
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}

/// Body of the replay endpoint: a time range, or everything after an event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Start of the range (inclusive), by the time the event was recorded.
    #[serde(default)]
    since: Option<DateTime<Utc>>,
    /// End of the range (exclusive); default now.
    #[serde(default)]
    until: Option<DateTime<Utc>>,
    /// Instead of a range: every event recorded after this one (an `id` seen in a delivery).
    #[serde(default)]
    after_event_id: Option<String>,
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

/// Events a replay reads per query.
const REPLAY_PAGE: i64 = 500;
/// The longest a time-range replay waits for writers that were still open when it began.
const REPLAY_WRITER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
/// The most events one replay request reads; a longer history is replayed in several requests
/// (`after_event_id` of the last one delivered).
const REPLAY_MAX_EVENTS: usize = 100_000;

/// Re-send every subscribed event of a range to this webhook
#[utoipa::path(
    post, path = "/api/outgoing-webhooks/{id}/replay", tag = "Outgoing Webhooks", params(("id" = Uuid, Path)), request_body = ReplayRequest,
    responses((status = 202, description = "Every subscribed event recorded in [since, until), or after `after_event_id`, queued again with its original webhook-id", body = ReplayResponse),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn replay(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<ReplayRequest>,
) -> Result<(StatusCode, Json<ReplayResponse>)> {
    let tenant = caller.tenant_id.as_uuid();
    load_webhook(&state, tenant, id).await?;
    let mut range = match (&body.after_event_id, body.since) {
        (Some(event_id), _) => {
            let source: String = sqlx::query_scalar(
                "SELECT source_event FROM webhook_deliveries WHERE tenant_id = $1 AND event_id = $2 AND source_event IS NOT NULL LIMIT 1",
            )
            .bind(tenant)
            .bind(event_id)
            .fetch_optional(&state.pool)
            .await?
            .ok_or_else(|| ApiError::invalid_field("after_event_id", "no delivered event has this id"))?;
            let unknown = || ApiError::invalid_field("after_event_id", "unknown");
            let (aggregate_type, rest) = source.split_once(':').ok_or_else(unknown)?;
            let (aggregate_id, sequence) = rest.rsplit_once(':').ok_or_else(unknown)?;
            let sequence: i64 = sequence.parse().map_err(|_| unknown())?;
            let source = log::find_event(&state.pool, aggregate_type, aggregate_id, sequence)
                .await?
                .ok_or_else(unknown)?;
            log::TenantRange {
                after: Some(source.cursor()),
                ..Default::default()
            }
        }
        (None, since) => {
            let until = body.until.unwrap_or_else(Utc::now);
            // Writers still open now may hold events recorded before `until`: they are waited
            // for (briefly), or the range would skip them.
            if until <= Utc::now() {
                log::wait_for_open_writers(&state.pool, REPLAY_WRITER_PATIENCE).await?;
            }
            log::TenantRange {
                after: None,
                since,
                until: Some(until),
            }
        }
    };
    // Read and queued a page at a time: a replay of a long range never holds it all in memory.
    let prefix = format!("{tenant}:");
    let mut queued = 0;
    let mut read = 0;
    loop {
        let page = log::read_tenant_page(&state.pool, &prefix, range, REPLAY_PAGE).await?;
        for event in &page {
            let message_id = format!(
                "{}:{}:{}",
                event.aggregate_type, event.aggregate_id, event.sequence
            );
            queued += omnistream_commands::webhook_dispatch::fan_out(
                &state.pool,
                omnistream_commands::webhook_dispatch::EventRef {
                    tenant,
                    aggregate_type: &event.aggregate_type,
                    aggregate_id: &event.aggregate_id,
                    message_id: &message_id,
                    payload: &event.payload,
                    recorded_at: event.recorded_at,
                },
                Some(id),
            )
            .await?;
        }
        read += page.len();
        match page.last() {
            Some(last) if page.len() as i64 == REPLAY_PAGE && read < REPLAY_MAX_EVENTS => {
                range.after = Some(last.cursor());
            }
            _ => break,
        }
    }
    let mut conn = state.pool.acquire().await?;
    activity::record(
        &mut conn,
        &caller,
        Activity {
            action: "webhook.replayed",
            entity_type: "outgoing_webhook",
            entity_id: Some(id.to_string()),
            details: json!({"since": body.since, "until": body.until, "after_event_id": body.after_event_id, "queued": queued}),
        },
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(ReplayResponse { queued })))
}

/// Routes of the Outgoing Webhooks tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(update_webhook, delete_webhook))
        .routes(routes!(event_types))
        .routes(routes!(list_deliveries))
        .routes(routes!(test_webhook))
        .routes(routes!(redeliver))
        .routes(routes!(replay))
}
