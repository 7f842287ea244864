//! Chat Expiration tag: per-channel messaging windows and expiry. One small file (router,
//! handlers, bodies and the SQL of the rule with its activity row): split, it would be four
//! files of a few dozen lines each.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_domain::Channel;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::api::activity_logs::{self as activity, Activity};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized, Caller};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{ValidJson, Validate};

/// `ChatExpirationRule`.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ChatExpirationRule {
    pub id: Uuid,
    pub channel: String,
    pub expiration_hours: i32,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `UpsertChatExpirationRule`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertChatExpirationRule {
    /// 1..720.
    expiration_hours: i64,
    /// Default true.
    #[serde(default)]
    is_active: Option<bool>,
}

impl Validate for UpsertChatExpirationRule {
    fn validate(&mut self, violations: &mut Violations) {
        if !(1..=720).contains(&self.expiration_hours) {
            violations.add("expiration_hours", "must be between 1 and 720");
        }
    }
}

/// List chat expiration rules
#[utoipa::path(
    get, path = "/api/chat-expiration-rules", tag = "Chat Expiration",
    responses((status = 200, description = "One per configured channel: whatsapp, instagram, email, messenger", body = Vec<ChatExpirationRule>),
              (status = 401, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_rules(
    State(pool): State<PgPool>,
    caller: Caller,
) -> Result<Json<Vec<ChatExpirationRule>>> {
    let rules = sqlx::query_as(
        "SELECT id, channel, expiration_hours, is_active, created_at, updated_at FROM chat_expiration_rules WHERE tenant_id = $1
         ORDER BY array_position(ARRAY['whatsapp', 'instagram', 'email', 'messenger'], channel)",
    )
    .bind(caller.tenant_id.as_uuid())
    .fetch_all(&pool)
    .await?;
    Ok(Json(rules))
}

/// Upsert a chat expiration rule for a channel
#[utoipa::path(
    put, path = "/api/chat-expiration-rules/{channel}", tag = "Chat Expiration",
    params(("channel" = String, Path, description = "whatsapp, instagram, email or messenger")), request_body = UpsertChatExpirationRule,
    responses((status = 200, body = ChatExpirationRule), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn upsert_rule(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::SettingsManage>,
    Path(channel): Path<String>,
    ValidJson(body): ValidJson<UpsertChatExpirationRule>,
) -> Result<Json<ChatExpirationRule>> {
    let channel: Channel = channel.parse().map_err(|_| {
        ApiError::invalid_field("channel", "must be whatsapp, instagram, email or messenger")
    })?;
    let mut tx = pool.begin().await?;
    let rule: ChatExpirationRule = sqlx::query_as(
        "INSERT INTO chat_expiration_rules (id, tenant_id, channel, expiration_hours, is_active) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, channel) DO UPDATE SET expiration_hours = EXCLUDED.expiration_hours,
             is_active = EXCLUDED.is_active, updated_at = now()
         RETURNING id, channel, expiration_hours, is_active, created_at, updated_at",
    )
    .bind(Uuid::new_v4())
    .bind(caller.tenant_id.as_uuid())
    .bind(channel.as_str())
    .bind(body.expiration_hours as i32)
    .bind(body.is_active.unwrap_or(true))
    .fetch_one(&mut *tx)
    .await?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "chat_expiration_rule.updated",
            entity_type: "chat_expiration_rule",
            entity_id: Some(rule.id.to_string()),
            details: json!({"channel": rule.channel, "expiration_hours": rule.expiration_hours, "is_active": rule.is_active}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(rule))
}

/// Routes of the Chat Expiration tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules))
        .routes(routes!(upsert_rule))
}
