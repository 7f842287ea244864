//! The handlers of the Outgoing Webhooks tag: each parses, calls the store or a
//! `webhooks::admin` service, and maps the result.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use omnistream_commands::infra::secrets::SecretBox;
use omnistream_commands::webhooks::admin::{self, AdminError, ReplayedEvent, DELIVERY_COLUMNS};
use omnistream_commands::webhooks::wire::{self, UrlRefused};
use omnistream_domain::catalogue::{PUBLIC_EVENT_TYPES, TEST_EVENT_TYPE};
use omnistream_projections::log;
use serde_json::json;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::dto::*;
use crate::api::activity_logs::{self as activity, Activity};
use crate::app::config::Config;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::Paged;
use crate::http::extract::{DeleteResponse, IdPath, Paginated, ValidJson, ValidQuery};

fn url_not_allowed(refused: UrlRefused) -> ApiError {
    match refused {
        UrlRefused::Invalid => ApiError::invalid_field("url", "must be an absolute http(s) URL"),
        other => ApiError::unprocessable("url_not_allowed", other.to_string()),
    }
}

/// What an administration call's failure answers: 404, else a logged 500.
fn admin_error(error: AdminError) -> ApiError {
    match error {
        AdminError::NotFound => ApiError::NotFound,
        AdminError::Secret(e) => ApiError::Internal(e.into()),
        AdminError::Database(e) => e.into(),
        AdminError::Other(e) => ApiError::Internal(e),
    }
}

/// The tenant's webhook `id`, or 404.
pub(super) async fn load_webhook(pool: &PgPool, tenant: Uuid, id: Uuid) -> Result<WebhookRow> {
    sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM outgoing_webhooks WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(ApiError::NotFound)
}

/// List outgoing webhooks
#[utoipa::path(
    get, path = "/api/outgoing-webhooks", tag = "Outgoing Webhooks",
    responses((status = 200, description = "Secrets masked", body = Vec<OutgoingWebhook>), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_webhooks(
    State(pool): State<PgPool>,
    State(secrets): State<SecretBox>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
) -> Result<Json<Vec<OutgoingWebhook>>> {
    let rows: Vec<WebhookRow> =
        sqlx::query_as(&format!("SELECT {WEBHOOK_COLUMNS} FROM outgoing_webhooks WHERE tenant_id = $1 ORDER BY created_at, id"))
            .bind(caller.tenant_id.as_uuid())
            .fetch_all(&pool)
            .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| r.into_api(&secrets, false))
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
pub(super) async fn create_webhook(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(secrets): State<SecretBox>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    ValidJson(body): ValidJson<CreateOutgoingWebhook>,
) -> Result<(StatusCode, Json<OutgoingWebhook>)> {
    wire::resolve_allowed(&body.url, config.outgoing_webhooks_allow_private)
        .await
        .map_err(url_not_allowed)?;
    let secret = body.secret.clone().unwrap_or_else(wire::generate_secret);
    let mut tx = pool.begin().await?;
    let row: WebhookRow = sqlx::query_as(&format!(
        "INSERT INTO outgoing_webhooks (id, tenant_id, name, url, events, secret, is_active, headers, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(caller.tenant_id.as_uuid())
    .bind(&body.name)
    .bind(&body.url)
    .bind(&body.events)
    .bind(secrets.encrypt(caller.tenant_id.as_uuid(), wire::WEBHOOK_SECRET_FIELD, &secret))
    .bind(body.is_active.unwrap_or(true))
    .bind(wire::seal_headers(&secrets, caller.tenant_id.as_uuid(), &body.headers.clone().unwrap_or_else(|| json!({}))))
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
    Ok((StatusCode::CREATED, Json(row.into_api(&secrets, true)?)))
}

/// Update an outgoing webhook
#[utoipa::path(
    patch, path = "/api/outgoing-webhooks/{id}", tag = "Outgoing Webhooks", params(("id" = Uuid, Path)), request_body = UpdateOutgoingWebhook,
    responses((status = 200, body = OutgoingWebhook), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 422, description = "url_not_allowed", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn update_webhook(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(secrets): State<SecretBox>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateOutgoingWebhook>,
) -> Result<Json<OutgoingWebhook>> {
    let tenant = caller.tenant_id.as_uuid();
    let current = load_webhook(&pool, tenant, id).await?;
    if let Some(url) = &body.url {
        wire::resolve_allowed(url, config.outgoing_webhooks_allow_private)
            .await
            .map_err(url_not_allowed)?;
    }
    let new_secret = body
        .secret
        .as_ref()
        .map(|s| secrets.encrypt(tenant, wire::WEBHOOK_SECRET_FIELD, s));
    let mut tx = pool.begin().await?;
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
    .bind(body.headers.as_ref().map(|h| wire::seal_headers(&secrets, tenant, h)))
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
    Ok(Json(row.into_api(&secrets, false)?))
}

/// Delete an outgoing webhook
#[utoipa::path(
    delete, path = "/api/outgoing-webhooks/{id}", tag = "Outgoing Webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Its deliveries are deleted too", body = DeleteResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn delete_webhook(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    IdPath(id): IdPath,
) -> Result<Json<DeleteResponse>> {
    let tenant = caller.tenant_id.as_uuid();
    let mut tx = pool.begin().await?;
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

/// List available webhook event types
#[utoipa::path(
    get, path = "/api/outgoing-webhooks/event-types", tag = "Outgoing Webhooks",
    responses((status = 200, body = Vec<EventTypeInfo>), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn event_types(
    _caller: Authorized<perm::WebhooksManage>,
) -> Json<Vec<EventTypeInfo>> {
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

/// List deliveries for a webhook
#[utoipa::path(
    get, path = "/api/outgoing-webhooks/{id}/deliveries", tag = "Outgoing Webhooks", params(("id" = Uuid, Path), DeliveryQuery),
    responses((status = 200, description = "One row per attempt, newest first", body = Paginated<WebhookDelivery>),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_deliveries(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    IdPath(id): IdPath,
    ValidQuery(query): ValidQuery<DeliveryQuery>,
) -> Result<Json<Paginated<WebhookDelivery>>> {
    let tenant = caller.tenant_id.as_uuid();
    load_webhook(&pool, tenant, id).await?;
    let page = query.page_request();
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
        crate::http::extract::fetch_page::<WebhookDelivery>(
            &pool,
            filtered,
            &format!("SELECT {DELIVERY_COLUMNS}"),
            "created_at DESC, id DESC",
            page,
        )
        .await?,
    ))
}

/// Send a test event to the webhook
#[utoipa::path(
    post, path = "/api/outgoing-webhooks/{id}/test", tag = "Outgoing Webhooks", params(("id" = Uuid, Path)),
    request_body(content = Option<TestWebhookRequest>),
    responses((status = 200, description = "Delivered synchronously (even when inactive), no retries; the receiver's failure is in the delivery", body = WebhookDelivery),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn test_webhook(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(secrets): State<SecretBox>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    IdPath(id): IdPath,
    body: axum::body::Bytes,
) -> Result<Json<WebhookDelivery>> {
    let request: TestWebhookRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TestWebhookRequest::default()
    } else {
        crate::http::extract::parse_body(&body)?
    };
    let event_type = request
        .event_type
        .unwrap_or_else(|| TEST_EVENT_TYPE.to_owned());
    let delivery = admin::send_test(
        &pool,
        &secrets,
        config.outgoing_webhooks_allow_private,
        caller.tenant_id.as_uuid(),
        id,
        &event_type,
    )
    .await
    .map_err(admin_error)?;
    Ok(Json(delivery.into()))
}

/// Re-send one delivery
#[utoipa::path(
    post, path = "/api/outgoing-webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "Outgoing Webhooks",
    params(("id" = Uuid, Path), ("delivery_id" = Uuid, Path)),
    responses((status = 202, description = "A new pending attempt with the same webhook-id", body = WebhookDelivery),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn redeliver(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    axum::extract::Path((id, delivery_id)): axum::extract::Path<(String, String)>,
) -> Result<(StatusCode, Json<WebhookDelivery>)> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::invalid_field("id", "must be a UUID"))?;
    let delivery_id = Uuid::parse_str(&delivery_id)
        .map_err(|_| ApiError::invalid_field("delivery_id", "must be a UUID"))?;
    let tenant = caller.tenant_id.as_uuid();
    load_webhook(&pool, tenant, id).await?;
    let delivery: WebhookDelivery = admin::redeliver(&pool, tenant, id, delivery_id)
        .await
        .map_err(admin_error)?
        .into();
    let mut conn = pool.acquire().await?;
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
pub(super) async fn replay(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::WebhooksManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<ReplayRequest>,
) -> Result<(StatusCode, Json<ReplayResponse>)> {
    let tenant = caller.tenant_id.as_uuid();
    load_webhook(&pool, tenant, id).await?;
    let mut range = match (&body.after_event_id, body.since) {
        (Some(event_id), _) => {
            let source = admin::delivered_source(&pool, tenant, event_id)
                .await
                .map_err(admin_error)?
                .ok_or_else(|| {
                    ApiError::invalid_field("after_event_id", "no delivered event has this id")
                })?;
            let unknown = || ApiError::invalid_field("after_event_id", "unknown");
            let (aggregate_type, aggregate_id, sequence) =
                admin::parse_message_id(&source).ok_or_else(unknown)?;
            let source = log::find_event(&pool, aggregate_type, aggregate_id, sequence)
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
                log::wait_for_open_writers(&pool, REPLAY_WRITER_PATIENCE).await?;
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
        let page = log::read_tenant_page(&pool, &prefix, range, REPLAY_PAGE).await?;
        for event in &page {
            let replayed = ReplayedEvent {
                aggregate_type: &event.aggregate_type,
                aggregate_id: &event.aggregate_id,
                sequence: event.sequence,
                payload: &event.payload,
                recorded_at: event.recorded_at,
            };
            queued += admin::replay_event(&pool, tenant, id, replayed)
                .await
                .map_err(admin_error)?;
        }
        read += page.len();
        match page.last() {
            Some(last) if page.len() as i64 == REPLAY_PAGE && read < REPLAY_MAX_EVENTS => {
                range.after = Some(last.cursor());
            }
            _ => break,
        }
    }
    let mut conn = pool.acquire().await?;
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
