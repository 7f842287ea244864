//! Who holds a conversation: transfers (and their history), takeover, and expiry of stale
//! conversations, each a `commands::conversation` service call.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_commands::conversation::{expire, transfer};
use omnistream_domain::Channel;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::actions::reload;
use super::{
    command_context, load_visible, service_error, wait_for_change, ConversationWithContact,
};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized, Caller};
use crate::http::error::{ErrorResponse, Result, Violations};
use crate::http::extract::{check_optional_text, IdPath, ValidJson, Validate};

/// Optional body of `POST /api/conversations/expire`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpireRequest {
    /// Only this channel's rule.
    #[serde(default)]
    channel: Option<String>,
}

impl Validate for ExpireRequest {
    fn validate(&mut self, violations: &mut Violations) {
        if self
            .channel
            .as_deref()
            .is_some_and(|c| c.parse::<Channel>().is_err())
        {
            violations.add("channel", "must be whatsapp, instagram, email or messenger");
        }
    }
}

/// Result of an expiry run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpireResponse {
    pub expired: usize,
    pub conversation_ids: Vec<Uuid>,
}

/// Expires the tenant's stale conversations through [`expire::expire_stale`] and reads back,
/// once the inbox shows each change, which ones are now expired.
async fn expire_stale(
    state: &AppState,
    caller: &Caller,
    channel: Option<Channel>,
) -> Result<ExpireResponse> {
    let commanded = expire::expire_stale(&state.conversation, &command_context(caller), channel)
        .await
        .map_err(service_error)?;
    let mut expired = Vec::new();
    for id in commanded {
        wait_for_change(state, caller.tenant_id, id).await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM conversations WHERE tenant_id = $1 AND id = $2")
                .bind(caller.tenant_id.as_uuid())
                .bind(id)
                .fetch_optional(&state.pool)
                .await?;
        if status.as_deref() == Some("expired") {
            expired.push(id);
        }
    }
    Ok(ExpireResponse {
        expired: expired.len(),
        conversation_ids: expired,
    })
}

/// Expire stale conversations
#[utoipa::path(
    post, path = "/api/conversations/expire", tag = "Conversations", request_body(content = Option<ExpireRequest>),
    responses((status = 200, body = ExpireResponse), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn expire(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsManage>,
    body: axum::body::Bytes,
) -> Result<Json<ExpireResponse>> {
    // The body is optional: empty means every channel.
    let request: ExpireRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ExpireRequest::default()
    } else {
        crate::http::extract::parse_body(&body)?
    };
    let channel = request.channel.and_then(|c| c.parse::<Channel>().ok());
    Ok(Json(expire_stale(&state, &caller, channel).await?))
}

/// Takeover a conversation
#[utoipa::path(
    post, path = "/api/conversations/{id}/takeover", tag = "Conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConversationWithContact),
              (status = 403, description = "Held by another human agent and the caller lacks conversations.manage", body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn takeover(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
) -> Result<Json<ConversationWithContact>> {
    load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    transfer::takeover(&state.conversation, &command_context(&caller), id)
        .await
        .map_err(service_error)?;
    wait_for_change(&state, caller.tenant_id, id).await?;
    reload(&state, &caller, id).await
}

/// `TransferConversationRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferConversationRequest {
    #[serde(default)]
    to_agent_id: Option<Uuid>,
    #[serde(default)]
    to_division_id: Option<Uuid>,
    /// At most 500 characters.
    #[serde(default)]
    reason: Option<String>,
}

impl Validate for TransferConversationRequest {
    fn validate(&mut self, violations: &mut Violations) {
        if self.to_agent_id.is_none() && self.to_division_id.is_none() {
            violations.add("to_agent_id", "give to_agent_id, to_division_id or both");
        }
        check_optional_text(violations, "reason", &mut self.reason, 500);
    }
}

/// `ConversationTransfer`.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ConversationTransfer {
    pub id: Uuid,
    pub conversation_id: Uuid,
    /// `transfer` or `takeover`.
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub from_agent_id: Option<Uuid>,
    pub to_agent_id: Option<Uuid>,
    pub from_division_id: Option<Uuid>,
    pub to_division_id: Option<Uuid>,
    pub reason: Option<String>,
    pub transferred_by: Uuid,
    pub created_at: DateTime<Utc>,
}

const TRANSFER_COLUMNS: &str =
    "id, conversation_id, type, from_agent_id, to_agent_id, from_division_id, to_division_id, reason, transferred_by, created_at";

/// Transfer a conversation
#[utoipa::path(
    post, path = "/api/conversations/{id}/transfer", tag = "Transfers", params(("id" = Uuid, Path)), request_body = TransferConversationRequest,
    responses((status = 201, body = ConversationTransfer), (status = 400, body = ErrorResponse),
              (status = 403, description = "Not the assignee and no conversations.manage", body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 422, description = "invalid_agent, invalid_division or agent_not_in_division", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn transfer(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<TransferConversationRequest>,
) -> Result<(StatusCode, Json<ConversationTransfer>)> {
    let current = load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    let request = transfer::Transfer {
        to_agent_id: body.to_agent_id,
        to_division_id: body.to_division_id,
        reason: body.reason.clone(),
    };
    let transfer_id = transfer::transfer(
        &state.conversation,
        &command_context(&caller),
        id,
        current.assigned_agent_id,
        request,
    )
    .await
    .map_err(service_error)?;
    wait_for_change(&state, caller.tenant_id, id).await?;
    let row = sqlx::query_as(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM conversation_transfers WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(caller.tenant_id.as_uuid())
    .bind(transfer_id)
    .fetch_one(&state.pool)
    .await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// List transfer history for a conversation
#[utoipa::path(
    get, path = "/api/conversations/{id}/transfers", tag = "Transfers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Newest first; takeovers included", body = Vec<ConversationTransfer>),
              (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_transfers(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    IdPath(id): IdPath,
) -> Result<Json<Vec<ConversationTransfer>>> {
    load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    let rows = sqlx::query_as(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM conversation_transfers WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY created_at DESC, id"
    ))
    .bind(caller.tenant_id.as_uuid())
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}
