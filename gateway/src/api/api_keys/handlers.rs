//! The handlers of the API Keys tag: each parses, calls [`super::store`] inside one transaction
//! (the row and its activity row together), and maps the result.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omnistream_domain::Permission;
use serde_json::json;
use sqlx::PgPool;

use super::dto::*;
use super::store;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ErrorResponse, Result};
use crate::http::extract::{DeleteResponse, IdPath, ValidJson};

/// List caller's API keys
#[utoipa::path(
    get, path = "/api/api-keys", tag = "API Keys",
    responses((status = 200, description = "The caller's keys, revoked and expired included, newest first", body = Vec<ApiKey>),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_api_keys(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::DeveloperAccess>,
) -> Result<Json<Vec<ApiKey>>> {
    Ok(Json(store::list_own(&pool, &caller).await?))
}

/// Create a new API key
#[utoipa::path(
    post, path = "/api/api-keys", tag = "API Keys", request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyCreateResponse), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, description = "forbidden, or session_required when called with an API key", body = ErrorResponse)),
    security(("bearer" = []), ("cookie" = []))
)]
pub(super) async fn create_api_key(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::DeveloperAccess>,
    ValidJson(body): ValidJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<ApiKeyCreateResponse>)> {
    caller.session()?;
    let mut tx = pool.begin().await?;
    let (api_key, key) = store::insert(&mut tx, &caller, &body).await?;
    let details =
        json!({ "name": api_key.name, "prefix": api_key.prefix, "expires_at": api_key.expires_at });
    store::record(&mut tx, &caller, "api_key.created", api_key.id, details).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyCreateResponse { api_key, key }),
    ))
}

/// Revoke an API key
#[utoipa::path(
    delete, path = "/api/api-keys/{id}", tag = "API Keys", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Idempotent. The caller's own keys; holders of agents.manage (admins) may revoke any key of the organization; other keys are 404",
               body = DeleteResponse),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn revoke_api_key(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::DeveloperAccess>,
    IdPath(id): IdPath,
) -> Result<Json<DeleteResponse>> {
    let any_owner = caller.holds(Permission::AgentsManage);
    let mut tx = pool.begin().await?;
    let key = store::lock(&mut tx, &caller, id, any_owner).await?;
    if key.revoked_at.is_none() {
        store::revoke(&mut tx, id).await?;
        let details =
            json!({ "name": key.name, "prefix": key.prefix, "owner_agent_id": key.agent_id });
        store::record(&mut tx, &caller, "api_key.revoked", id, details).await?;
    }
    tx.commit().await?;
    Ok(Json(DeleteResponse {
        message: "API key revoked".into(),
        id,
    }))
}
