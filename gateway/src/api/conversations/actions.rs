//! Conversation actions on one conversation: assign, status, read and tags. Transfers, takeover
//! and expiry are in [`super::transfers`], bulk actions in [`super::bulk`].

use axum::extract::State;
use axum::Json;
use omnistream_commands::conversation::manage;
use omnistream_domain::conversation::{policy, ConversationStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    command_context, load_visible, service_error, wait_for_change, wait_for_inbox,
    ConversationWithContact,
};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized, Caller};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{nullable, IdPath, ValidJson, Validate};

/// The conversation as the caller now sees it (after [`wait_for_change`]).
pub(super) async fn reload(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<Json<ConversationWithContact>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(load_visible(&mut conn, caller, id).await?))
}

/// `AssignAgentRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignAgentRequest {
    /// `null` unassigns.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    agent_id: Option<Option<Uuid>>,
}

impl Validate for AssignAgentRequest {
    fn validate(&mut self, violations: &mut Violations) {
        if self.agent_id.is_none() {
            violations.add("agent_id", "is required (null unassigns)");
        }
    }
}

/// Assign or unassign an agent
#[utoipa::path(
    patch, path = "/api/conversations/{id}/assign", tag = "Conversations", params(("id" = Uuid, Path)), request_body = AssignAgentRequest,
    responses((status = 200, body = ConversationWithContact), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 422, description = "invalid_agent", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn assign(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<AssignAgentRequest>,
) -> Result<Json<ConversationWithContact>> {
    let context = command_context(&caller);
    manage::assign(&state.conversation, &context, id, body.agent_id.flatten())
        .await
        .map_err(service_error)?;
    wait_for_change(&state, caller.tenant_id, id).await?;
    reload(&state, &caller, id).await
}

/// `UpdateStatusRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStatusRequest {
    /// `open`, `pending`, `resolved` or `closed`.
    status: String,
}

impl Validate for UpdateStatusRequest {
    fn validate(&mut self, violations: &mut Violations) {
        match self.status.parse::<ConversationStatus>() {
            Ok(ConversationStatus::Expired) => {
                violations.add("status", "`expired` is set only by expiry")
            }
            Ok(_) => {}
            Err(_) => violations.add("status", "must be open, pending, resolved or closed"),
        }
    }
}

/// Update conversation status
#[utoipa::path(
    patch, path = "/api/conversations/{id}/status", tag = "Conversations", params(("id" = Uuid, Path)), request_body = UpdateStatusRequest,
    responses((status = 200, body = ConversationWithContact), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn update_status(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateStatusRequest>,
) -> Result<Json<ConversationWithContact>> {
    let status: ConversationStatus = body
        .status
        .parse()
        .map_err(|_| ApiError::invalid_field("status", "unknown status"))?;
    let context = command_context(&caller);
    manage::change_status(&state.conversation, &context, id, status)
        .await
        .map_err(service_error)?;
    wait_for_change(&state, caller.tenant_id, id).await?;
    reload(&state, &caller, id).await
}

/// Result of marking a conversation read.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarkReadResponse {
    pub conversation_id: Uuid,
    /// Always 0.
    pub unread_count: i32,
}

/// Mark conversation as read
#[utoipa::path(
    post, path = "/api/conversations/{id}/read", tag = "Conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = MarkReadResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn mark_read(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
) -> Result<Json<MarkReadResponse>> {
    let context = command_context(&caller);
    manage::mark_read(&state.conversation, &context, id)
        .await
        .map_err(service_error)?;
    wait_for_inbox(&state, caller.tenant_id, id).await?;
    let stream = omnistream_domain::StreamId::new(caller.tenant_id, id).to_string();
    omnistream_projections::wait_until_applied(
        &state.pool,
        &omnistream_projections::MessagesProjector,
        omnistream_domain::conversation::AGGREGATE_TYPE,
        &stream,
        std::time::Duration::from_secs(5),
    )
    .await?;
    Ok(Json(MarkReadResponse {
        conversation_id: id,
        unread_count: 0,
    }))
}

/// Normalises `tags` in place by the tag policy (trimmed, lower-cased, 1..50 characters, at
/// most 20, no duplicates), or reports why they are refused.
pub fn check_tags(violations: &mut Violations, field: &str, tags: &mut Vec<String>) {
    match policy::tags::normalise(tags) {
        Ok(normalised) => *tags = normalised,
        Err(error) => violations.add(field, error.to_string()),
    }
}

/// `UpdateTagsRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTagsRequest {
    /// Replaces the whole set.
    tags: Vec<String>,
}

impl Validate for UpdateTagsRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_tags(violations, "tags", &mut self.tags);
    }
}

/// Update conversation tags
#[utoipa::path(
    patch, path = "/api/conversations/{id}/tags", tag = "Conversations", params(("id" = Uuid, Path)), request_body = UpdateTagsRequest,
    responses((status = 200, body = ConversationWithContact), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn update_tags(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateTagsRequest>,
) -> Result<Json<ConversationWithContact>> {
    let context = command_context(&caller);
    manage::update_tags(&state.conversation, &context, id, body.tags)
        .await
        .map_err(service_error)?;
    wait_for_change(&state, caller.tenant_id, id).await?;
    reload(&state, &caller, id).await
}
