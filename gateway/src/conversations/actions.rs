//! Conversation actions: assign, status, read, tags, takeover, bulk, expiry and transfers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_commands::conversation::bulk::{self, BulkAction};
use omnistream_commands::conversation::{expire, transfer};
use omnistream_commands::service::CommandContext;
use omnistream_domain::conversation::{policy, ConversationCommand, ConversationStatus};
use omnistream_domain::Channel;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    command_context, conversation_deps, execute_and_wait, load_visible, service_error,
    wait_for_inbox, ConversationWithContact,
};
use crate::activity::{self, Activity};
use crate::app::AppState;
use crate::auth::{perm, Authorized, Caller};
use crate::error::{ApiError, ErrorResponse, Result, Violations};
use crate::extract::{check_optional_text, nullable, IdPath, ValidJson, Validate};

/// Writes the activity-log row of a conversation change (after the event is stored: the event
/// log itself is the authoritative audit of conversations).
async fn log_change(
    state: &AppState,
    caller: &Caller,
    action: &str,
    id: Uuid,
    details: Value,
) -> Result<()> {
    let mut conn = state.pool.acquire().await?;
    activity::record(
        &mut conn,
        caller,
        Activity {
            action,
            entity_type: "conversation",
            entity_id: Some(id.to_string()),
            details,
        },
    )
    .await?;
    Ok(())
}

async fn reload(
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
    let agent = body.agent_id.flatten();
    let before = load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    if let Some(agent) = agent {
        transfer::ensure_active_agent(&state.pool, caller.tenant_id, agent)
            .await
            .map_err(service_error)?;
    }
    execute_and_wait(
        &state,
        &caller,
        id,
        ConversationCommand::Assign {
            agent_id: agent,
            at: Utc::now(),
        },
    )
    .await?;
    log_change(
        &state,
        &caller,
        "conversation.assigned",
        id,
        json!({"from": before.assigned_agent_id, "to": agent}),
    )
    .await?;
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
    let before = load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    execute_and_wait(
        &state,
        &caller,
        id,
        ConversationCommand::ChangeStatus {
            status,
            at: Utc::now(),
        },
    )
    .await?;
    log_change(
        &state,
        &caller,
        "conversation.status_changed",
        id,
        json!({"from": before.status, "to": status.as_str()}),
    )
    .await?;
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
    load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    execute_and_wait(
        &state,
        &caller,
        id,
        ConversationCommand::MarkRead { at: Utc::now() },
    )
    .await?;
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
    let commanded =
        expire::expire_stale(&conversation_deps(state), &command_context(caller), channel)
            .await
            .map_err(service_error)?;
    let mut expired = Vec::new();
    for id in commanded {
        wait_for_inbox(state, caller.tenant_id, id).await?;
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
        crate::extract::parse_body(&body)?
    };
    let channel = request.channel.and_then(|c| c.parse::<Channel>().ok());
    let result = expire_stale(&state, &caller, channel).await?;
    for id in &result.conversation_ids {
        log_change(
            &state,
            &caller,
            "conversation.status_changed",
            *id,
            json!({"to": "expired"}),
        )
        .await?;
    }
    Ok(Json(result))
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
    load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    execute_and_wait(
        &state,
        &caller,
        id,
        ConversationCommand::UpdateTags {
            tags: body.tags.clone(),
            at: Utc::now(),
        },
    )
    .await?;
    log_change(
        &state,
        &caller,
        "conversation.tags_updated",
        id,
        json!({"tags": body.tags}),
    )
    .await?;
    reload(&state, &caller, id).await
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
    transfer::takeover(&conversation_deps(&state), &command_context(&caller), id)
        .await
        .map_err(service_error)?;
    wait_for_inbox(&state, caller.tenant_id, id).await?;
    log_change(
        &state,
        &caller,
        "conversation.taken_over",
        id,
        json!({"agent_id": caller.agent_id}),
    )
    .await?;
    reload(&state, &caller, id).await
}

/// `BulkConversationRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkConversationRequest {
    /// 1..100 ids.
    conversation_ids: Vec<Uuid>,
    /// `assign`, `unassign`, `update_status`, `add_tags`, `remove_tags` or `mark_read`.
    action: String,
    #[serde(default)]
    agent_id: Option<Uuid>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Validate for BulkConversationRequest {
    fn validate(&mut self, violations: &mut Violations) {
        if self.conversation_ids.is_empty() || self.conversation_ids.len() > 100 {
            violations.add("conversation_ids", "must have between 1 and 100 items");
        }
        match self.action.as_str() {
            "assign" if self.agent_id.is_none() => {
                violations.add("agent_id", "is required for assign")
            }
            "update_status" => match self.status.as_deref().map(str::parse::<ConversationStatus>) {
                Some(Ok(ConversationStatus::Expired)) => {
                    violations.add("status", "`expired` is set only by expiry")
                }
                Some(Ok(_)) => {}
                _ => violations.add(
                    "status",
                    "is required for update_status: open, pending, resolved or closed",
                ),
            },
            "add_tags" | "remove_tags" => match &mut self.tags {
                Some(tags) if !tags.is_empty() => check_tags(violations, "tags", tags),
                _ => violations.add("tags", "is required for add_tags and remove_tags"),
            },
            "assign" | "unassign" | "mark_read" => {}
            _ => violations.add(
                "action",
                "must be assign, unassign, update_status, add_tags, remove_tags or mark_read",
            ),
        }
    }
}

impl BulkConversationRequest {
    /// The validated action as the bulk service takes it.
    fn action(&self) -> Result<BulkAction> {
        Ok(match self.action.as_str() {
            "assign" => BulkAction::Assign(
                self.agent_id
                    .ok_or_else(|| ApiError::invalid_field("agent_id", "is required for assign"))?,
            ),
            "unassign" => BulkAction::Unassign,
            "update_status" => BulkAction::UpdateStatus(
                self.status
                    .as_deref()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|_| ApiError::invalid_field("status", "unknown"))?,
            ),
            "add_tags" => BulkAction::AddTags(self.tags.clone().unwrap_or_default()),
            "remove_tags" => BulkAction::RemoveTags(self.tags.clone().unwrap_or_default()),
            _ => BulkAction::MarkRead,
        })
    }
}

/// One failed item of a bulk action.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkFailure {
    pub id: Uuid,
    #[schema(value_type = Object)]
    pub error: Value,
}

/// Result of a bulk action.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResponse {
    pub action: String,
    pub requested: usize,
    pub updated: usize,
    pub failed: Vec<BulkFailure>,
}

/// Bulk conversation actions
#[utoipa::path(
    post, path = "/api/conversations/bulk", tag = "Conversations", request_body = BulkConversationRequest,
    responses((status = 200, description = "Applied per id; failures listed per item", body = BulkResponse),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 422, description = "invalid_agent", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn bulk(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsManage>,
    ValidJson(body): ValidJson<BulkConversationRequest>,
) -> Result<Json<BulkResponse>> {
    let action = body.action()?;
    let deps = conversation_deps(&state);
    let context = command_context(&caller);
    bulk::check(&deps, &context, &action)
        .await
        .map_err(service_error)?;
    let mut ids = body.conversation_ids.clone();
    ids.dedup();
    let mut updated = 0;
    let mut failed = Vec::new();
    for id in &ids {
        match bulk_one(&state, &caller, &context, *id, &body.action, &action).await {
            Ok(()) => updated += 1,
            Err(error) => {
                let (code, message) = match &error {
                    ApiError::NotFound => ("not_found", "resource not found".to_owned()),
                    ApiError::Internal(cause) => {
                        tracing::error!(conversation_id = %id, error = ?cause, "bulk action failed");
                        ("internal_error", "an internal error occurred".to_owned())
                    }
                    other => (error_code(other), other.to_string()),
                };
                failed.push(BulkFailure {
                    id: *id,
                    error: json!({"code": code, "message": message}),
                });
            }
        }
    }
    Ok(Json(BulkResponse {
        action: body.action,
        requested: ids.len(),
        updated,
        failed,
    }))
}

fn error_code(error: &ApiError) -> &'static str {
    match error {
        ApiError::Conflict { code, .. }
        | ApiError::Unprocessable { code, .. }
        | ApiError::Forbidden { code, .. } => code,
        ApiError::Validation(_) => "validation_error",
        _ => "internal_error",
    }
}

/// Applies `action` to conversation `id`, waits until the inbox shows it and writes its
/// activity row.
async fn bulk_one(
    state: &AppState,
    caller: &Caller,
    context: &CommandContext,
    id: Uuid,
    name: &str,
    action: &BulkAction,
) -> Result<()> {
    bulk::apply(&conversation_deps(state), context, id, action)
        .await
        .map_err(service_error)?;
    wait_for_inbox(state, caller.tenant_id, id).await?;
    log_change(
        state,
        caller,
        &format!("conversation.bulk_{name}"),
        id,
        json!({}),
    )
    .await
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
        &conversation_deps(&state),
        &command_context(&caller),
        id,
        current.assigned_agent_id,
        request,
    )
    .await
    .map_err(service_error)?;
    wait_for_inbox(&state, caller.tenant_id, id).await?;
    log_change(
        &state,
        &caller,
        "conversation.transferred",
        id,
        json!({"to_agent_id": body.to_agent_id, "to_division_id": body.to_division_id}),
    )
    .await?;
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
