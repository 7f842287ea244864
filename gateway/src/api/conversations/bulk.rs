//! Bulk conversation actions: one action applied to up to 100 conversations, each through the
//! `commands::conversation::bulk` service, with failures reported per item.

use axum::extract::State;
use axum::Json;
use omnistream_commands::conversation::bulk::{self, BulkAction};
use omnistream_commands::store::CommandContext;
use omnistream_domain::conversation::ConversationStatus;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::actions::check_tags;
use super::{command_context, service_error, wait_for_change};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized, Caller};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{ValidJson, Validate};

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
    let deps = state.conversation.clone();
    let context = CommandContext {
        activity_action: Some(format!("conversation.bulk_{}", body.action)),
        ..command_context(&caller)
    };
    bulk::check(&deps, &context, &action)
        .await
        .map_err(service_error)?;
    let mut ids = body.conversation_ids.clone();
    ids.dedup();
    let mut updated = 0;
    let mut failed = Vec::new();
    for id in &ids {
        match bulk_one(&state, &caller, &context, *id, &action).await {
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

/// Applies `action` to conversation `id` and waits until the inbox shows it and the activity
/// log holds its row.
async fn bulk_one(
    state: &AppState,
    caller: &Caller,
    context: &CommandContext,
    id: Uuid,
    action: &BulkAction,
) -> Result<()> {
    bulk::apply(&state.conversation, context, id, action)
        .await
        .map_err(service_error)?;
    wait_for_change(state, caller.tenant_id, id).await
}
