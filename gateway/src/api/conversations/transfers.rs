//! Who holds a conversation: transfers (and their history), takeover, and expiry of stale
//! conversations, each a `commands::conversation` service call.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omnistream_commands::conversation::{expire, transfer, ConversationDeps};
use omnistream_domain::Channel;
use omnistream_projections::inbox::queries;
use sqlx::PgPool;

use super::commands::{command_context, service_error};
use super::dto::{
    ConversationTransfer, ConversationWithContact, ExpireRequest, ExpireResponse,
    TransferConversationRequest,
};
use super::read::{load_visible, reload, wait_for_change};
use crate::http::auth::{perm, Authorized, Caller};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::{IdPath, ValidJson};

/// Expires the tenant's stale conversations through [`expire::expire_stale`] and reads back,
/// once the inbox shows each change, which ones are now expired.
async fn expire_stale(
    deps: &ConversationDeps,
    pool: &PgPool,
    caller: &Caller,
    channel: Option<Channel>,
) -> Result<ExpireResponse> {
    let commanded = expire::expire_stale(deps, &command_context(caller), channel)
        .await
        .map_err(service_error)?;
    let mut expired = Vec::new();
    for id in commanded {
        wait_for_change(pool, caller.tenant_id, id).await?;
        let status = queries::status_of(pool, caller.tenant_id, id).await?;
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
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
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
    Ok(Json(expire_stale(&deps, &pool, &caller, channel).await?))
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
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
) -> Result<Json<ConversationWithContact>> {
    load_visible(&pool, &caller, id).await?;
    transfer::takeover(&deps, &command_context(&caller), id)
        .await
        .map_err(service_error)?;
    wait_for_change(&pool, caller.tenant_id, id).await?;
    reload(&pool, &caller, id).await
}

/// Transfer a conversation
#[utoipa::path(
    post, path = "/api/conversations/{id}/transfer", tag = "Transfers", params(("id" = Uuid, Path)), request_body = TransferConversationRequest,
    responses((status = 201, body = ConversationTransfer), (status = 400, body = ErrorResponse),
              (status = 403, description = "Not the assignee and no conversations.manage", body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 422, description = "invalid_agent, invalid_division or agent_not_in_division", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn transfer(
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<TransferConversationRequest>,
) -> Result<(StatusCode, Json<ConversationTransfer>)> {
    let current = load_visible(&pool, &caller, id).await?;
    let request = transfer::Transfer {
        to_agent_id: body.to_agent_id,
        to_division_id: body.to_division_id,
        reason: body.reason,
    };
    let transfer_id = transfer::transfer(
        &deps,
        &command_context(&caller),
        id,
        current.assigned_agent_id,
        request,
    )
    .await
    .map_err(service_error)?;
    wait_for_change(&pool, caller.tenant_id, id).await?;
    let row = queries::find_transfer(&pool, caller.tenant_id, transfer_id)
        .await?
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "transfer {transfer_id} is not in the inbox after its command"
            ))
        })?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// List transfer history for a conversation
#[utoipa::path(
    get, path = "/api/conversations/{id}/transfers", tag = "Transfers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Newest first; takeovers included", body = Vec<ConversationTransfer>),
              (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_transfers(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    IdPath(id): IdPath,
) -> Result<Json<Vec<ConversationTransfer>>> {
    load_visible(&pool, &caller, id).await?;
    let rows = queries::transfers_of(&pool, caller.tenant_id, id).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}
