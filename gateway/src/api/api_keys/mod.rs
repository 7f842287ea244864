//! API Keys tag: long-lived credentials that act as the agent who created them.
//!
//! A key is `osk_` + 40 random base62 characters. Only its SHA-256 is stored; the key itself is
//! returned once, at creation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_domain::Permission;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::api::activity_logs::{self as activity, Activity};
use crate::app::AppState;
use crate::http::auth::{hash_api_key, perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{check_text, DeleteResponse, IdPath, ValidJson, Validate};

/// `ApiKey` (never the key itself).
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// First 12 characters of the key, e.g. `osk_AbCd1234`.
    pub prefix: String,
    pub agent_id: Uuid,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// `ApiKeyCreateResponse`: the key, shown only this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreateResponse {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The full key. Store it now: it is never shown again.
    pub key: String,
}

/// Body of `POST /api/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// 1..100 characters.
    name: String,
    /// Optional; must be in the future.
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

impl Validate for CreateApiKeyRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(violations, "name", &mut self.name, 1, 100);
        if self.expires_at.is_some_and(|at| at <= Utc::now()) {
            violations.add("expires_at", "must be in the future");
        }
    }
}

const API_KEY_COLUMNS: &str =
    "id, name, prefix, agent_id, last_used_at, expires_at, revoked_at, created_at";

fn generate_key() -> String {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("osk_{random}")
}

/// List caller's API keys
#[utoipa::path(
    get, path = "/api/api-keys", tag = "API Keys",
    responses((status = 200, description = "The caller's keys, revoked and expired included, newest first", body = Vec<ApiKey>),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_api_keys(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::DeveloperAccess>,
) -> Result<Json<Vec<ApiKey>>> {
    let keys = sqlx::query_as(&format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND agent_id = $2 ORDER BY created_at DESC, id DESC"
    ))
    .bind(caller.tenant_id.as_uuid())
    .bind(caller.agent_id.as_uuid())
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(keys))
}

/// Create a new API key
#[utoipa::path(
    post, path = "/api/api-keys", tag = "API Keys", request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyCreateResponse), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, description = "forbidden, or session_required when called with an API key", body = ErrorResponse)),
    security(("bearer" = []), ("cookie" = []))
)]
async fn create_api_key(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::DeveloperAccess>,
    ValidJson(body): ValidJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<ApiKeyCreateResponse>)> {
    caller.session()?;
    let key = generate_key();
    let mut tx = state.pool.begin().await?;
    let api_key: ApiKey = sqlx::query_as(&format!(
        "INSERT INTO api_keys (id, tenant_id, agent_id, name, prefix, key_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {API_KEY_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(caller.tenant_id.as_uuid())
    .bind(caller.agent_id.as_uuid())
    .bind(&body.name)
    .bind(&key[..12])
    .bind(hash_api_key(&key))
    .bind(body.expires_at)
    .fetch_one(&mut *tx)
    .await?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "api_key.created",
            entity_type: "api_key",
            entity_id: Some(api_key.id.to_string()),
            details: json!({ "name": api_key.name, "prefix": api_key.prefix, "expires_at": api_key.expires_at }),
        },
    )
    .await?;
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
async fn revoke_api_key(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::DeveloperAccess>,
    IdPath(id): IdPath,
) -> Result<Json<DeleteResponse>> {
    let any_key = caller.holds(Permission::AgentsManage);
    let mut tx = state.pool.begin().await?;
    let key: ApiKey = sqlx::query_as(&format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2 AND ($3 OR agent_id = $4) FOR UPDATE"
    ))
    .bind(caller.tenant_id.as_uuid())
    .bind(id)
    .bind(any_key)
    .bind(caller.agent_id.as_uuid())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound)?;
    if key.revoked_at.is_none() {
        sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        activity::record(
            &mut tx,
            &caller,
            Activity {
                action: "api_key.revoked",
                entity_type: "api_key",
                entity_id: Some(id.to_string()),
                details: json!({ "name": key.name, "prefix": key.prefix, "owner_agent_id": key.agent_id }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(DeleteResponse {
        message: "API key revoked".into(),
        id,
    }))
}

/// Routes of the API Keys tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_osk_and_40_base62_characters() {
        let key = generate_key();
        assert_eq!(key.len(), 44);
        assert!(key.starts_with("osk_"));
        assert!(key[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(generate_key(), key);
    }
}
