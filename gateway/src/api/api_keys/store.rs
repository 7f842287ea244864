//! The SQL of the API Keys tag: the `api_keys` row (only the key's SHA-256 and its prefix are
//! stored) and the activity row written in the same transaction as each change.

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::dto::{ApiKey, CreateApiKeyRequest};
use crate::api::activity_logs::{self as activity, Activity};
use crate::http::auth::{hash_api_key, Caller};
use crate::http::error::{ApiError, Result};

/// Columns of [`ApiKey`].
const API_KEY_COLUMNS: &str =
    "id, name, prefix, agent_id, last_used_at, expires_at, revoked_at, created_at";

/// A new key: `osk_` + 40 random base62 characters.
fn generate_key() -> String {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("osk_{random}")
}

/// The caller's keys, revoked and expired included, newest first.
pub(super) async fn list_own(pool: &PgPool, caller: &Caller) -> Result<Vec<ApiKey>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND agent_id = $2 ORDER BY created_at DESC, id DESC"
    ))
    .bind(caller.tenant_id.as_uuid())
    .bind(caller.agent_id.as_uuid())
    .fetch_all(pool)
    .await?)
}

/// Creates a key acting as the caller and stores its hash; returns the row and the key itself,
/// which exists nowhere else once the response is sent.
pub(super) async fn insert(
    conn: &mut PgConnection,
    caller: &Caller,
    body: &CreateApiKeyRequest,
) -> Result<(ApiKey, String)> {
    let key = generate_key();
    let api_key = sqlx::query_as(&format!(
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
    .fetch_one(conn)
    .await?;
    Ok((api_key, key))
}

/// Key `id` of the caller's tenant, locked for the revocation: any key when `any_owner`, else
/// only the caller's own; 404 otherwise.
pub(super) async fn lock(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    any_owner: bool,
) -> Result<ApiKey> {
    sqlx::query_as(&format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2 AND ($3 OR agent_id = $4) FOR UPDATE"
    ))
    .bind(caller.tenant_id.as_uuid())
    .bind(id)
    .bind(any_owner)
    .bind(caller.agent_id.as_uuid())
    .fetch_optional(conn)
    .await?
    .ok_or(ApiError::NotFound)
}

/// Revokes key `id` (found by [`lock`]).
pub(super) async fn revoke(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes the activity row of a change to key `id`.
pub(super) async fn record(
    conn: &mut PgConnection,
    caller: &Caller,
    action: &str,
    id: Uuid,
    details: Value,
) -> Result<()> {
    activity::record(
        conn,
        caller,
        Activity {
            action,
            entity_type: "api_key",
            entity_id: Some(id.to_string()),
            details,
        },
    )
    .await?;
    Ok(())
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
