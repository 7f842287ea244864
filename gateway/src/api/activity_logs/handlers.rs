//! The handler of the Activity Logs tag.

use axum::extract::State;
use axum::Json;
use sqlx::PgPool;

use super::dto::*;
use super::store;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ErrorResponse, Result};
use crate::http::extract::{Paginated, ValidQuery};

/// List activity logs
#[utoipa::path(
    get, path = "/api/activity-logs", tag = "Activity Logs",
    params(ActivityLogQuery),
    responses(
        (status = 200, description = "Newest first. Rows of conversation and note actions are derived from the conversation's events, so an action that changed nothing (assigning the current assignee) records none.", body = Paginated<ActivityLog>),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
    ),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_activity_logs(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::ActivityLogsView>,
    ValidQuery(query): ValidQuery<ActivityLogQuery>,
) -> Result<Json<Paginated<ActivityLog>>> {
    let Some((page, range)) = query.parsed else {
        return Err(anyhow::anyhow!("query was not validated").into());
    };
    Ok(Json(
        store::page(&pool, caller.tenant_id, &query, page, range).await?,
    ))
}
