//! Bulk conversation actions: one action applied to up to 100 conversations, each through the
//! `commands::conversation::bulk` service, with failures reported per item.

use axum::extract::State;
use axum::Json;
use omnistream_commands::conversation::bulk::{self, BulkAction};
use omnistream_commands::conversation::ConversationDeps;
use omnistream_commands::store::CommandContext;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::commands::{command_context, service_error};
use super::dto::{BulkConversationRequest, BulkFailure, BulkResponse};
use super::read::wait_for_change;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::ValidJson;

/// Bulk conversation actions
#[utoipa::path(
    post, path = "/api/conversations/bulk", tag = "Conversations", request_body = BulkConversationRequest,
    responses((status = 200, description = "Applied per id; failures listed per item", body = BulkResponse),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 422, description = "invalid_agent", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn bulk(
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    Authorized { caller, .. }: Authorized<perm::ConversationsManage>,
    ValidJson(body): ValidJson<BulkConversationRequest>,
) -> Result<Json<BulkResponse>> {
    let action = body.bulk_action()?;
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
        match bulk_one(&deps, &pool, &context, *id, &action).await {
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

/// The code of a failed item's error, as the API would answer it alone.
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
    deps: &ConversationDeps,
    pool: &PgPool,
    context: &CommandContext,
    id: Uuid,
    action: &BulkAction,
) -> Result<()> {
    bulk::apply(deps, context, id, action)
        .await
        .map_err(service_error)?;
    wait_for_change(pool, context.tenant_id, id).await
}
