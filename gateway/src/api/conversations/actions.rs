//! Conversation actions on one conversation: assign, status, read and tags. Transfers, takeover
//! and expiry are in [`super::transfers`], bulk actions in [`super::bulk`].

use axum::extract::State;
use axum::Json;
use omnistream_commands::conversation::{manage, ConversationDeps};
use omnistream_domain::conversation::{self, ConversationStatus};
use omnistream_projections::{InboxProjector, MessagesProjector, Projector};
use sqlx::PgPool;

use super::commands::{command_context, service_error};
use super::dto::{
    AssignAgentRequest, ConversationWithContact, MarkReadResponse, UpdateStatusRequest,
    UpdateTagsRequest,
};
use super::read::{reload, wait_for, wait_for_change};
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::{IdPath, ValidJson};

/// Assign or unassign an agent
#[utoipa::path(
    patch, path = "/api/conversations/{id}/assign", tag = "Conversations", params(("id" = Uuid, Path)), request_body = AssignAgentRequest,
    responses((status = 200, body = ConversationWithContact), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 422, description = "invalid_agent", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn assign(
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    Authorized { caller, .. }: Authorized<perm::ConversationsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<AssignAgentRequest>,
) -> Result<Json<ConversationWithContact>> {
    let context = command_context(&caller);
    manage::assign(&deps, &context, id, body.agent_id.flatten())
        .await
        .map_err(service_error)?;
    wait_for_change(&pool, caller.tenant_id, id).await?;
    reload(&pool, &caller, id).await
}

/// Update conversation status
#[utoipa::path(
    patch, path = "/api/conversations/{id}/status", tag = "Conversations", params(("id" = Uuid, Path)), request_body = UpdateStatusRequest,
    responses((status = 200, body = ConversationWithContact), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn update_status(
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateStatusRequest>,
) -> Result<Json<ConversationWithContact>> {
    let status: ConversationStatus = body
        .status
        .parse()
        .map_err(|_| ApiError::invalid_field("status", "unknown status"))?;
    let context = command_context(&caller);
    manage::change_status(&deps, &context, id, status)
        .await
        .map_err(service_error)?;
    wait_for_change(&pool, caller.tenant_id, id).await?;
    reload(&pool, &caller, id).await
}

/// Mark conversation as read
#[utoipa::path(
    post, path = "/api/conversations/{id}/read", tag = "Conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = MarkReadResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn mark_read(
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
) -> Result<Json<MarkReadResponse>> {
    let context = command_context(&caller);
    manage::mark_read(&deps, &context, id)
        .await
        .map_err(service_error)?;
    let projectors: [&dyn Projector; 2] = [&InboxProjector, &MessagesProjector];
    wait_for(
        &pool,
        &projectors,
        conversation::AGGREGATE_TYPE,
        caller.tenant_id,
        id,
    )
    .await?;
    Ok(Json(MarkReadResponse {
        conversation_id: id,
        unread_count: 0,
    }))
}

/// Update conversation tags
#[utoipa::path(
    patch, path = "/api/conversations/{id}/tags", tag = "Conversations", params(("id" = Uuid, Path)), request_body = UpdateTagsRequest,
    responses((status = 200, body = ConversationWithContact), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn update_tags(
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateTagsRequest>,
) -> Result<Json<ConversationWithContact>> {
    let context = command_context(&caller);
    manage::update_tags(&deps, &context, id, body.tags)
        .await
        .map_err(service_error)?;
    wait_for_change(&pool, caller.tenant_id, id).await?;
    reload(&pool, &caller, id).await
}
