//! The SQL of the Auth tag: the `sessions` row of each sign-in, the account a login names, and
//! the activity row written in the same transaction as each session change.

use chrono::{DateTime, Utc};
use omnistream_domain::{AgentId, SessionId, TenantId};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::api::activity_logs::{self as activity, Activity, Actor};
use crate::http::error::Result;

/// The account a login email names, and whether it may sign in.
#[derive(sqlx::FromRow)]
pub(super) struct LoginCandidate {
    pub(super) id: Uuid,
    pub(super) tenant_id: Uuid,
    pub(super) password_hash: String,
    pub(super) role: String,
    /// Active and not deleted.
    pub(super) usable: bool,
    pub(super) tenant_active: bool,
}

/// The account with the lower-cased `email`. A live account wins over deleted ones that once
/// used the same address.
pub(super) async fn login_candidate(pool: &PgPool, email: &str) -> Result<Option<LoginCandidate>> {
    Ok(sqlx::query_as(
        r#"SELECT a.id, a.tenant_id, a.password_hash, a.role, a.is_active AND a.deleted_at IS NULL AS usable,
                  t.status = 'active' AS tenant_active
           FROM agents a JOIN tenants t ON t.id = a.tenant_id
           WHERE lower(a.email) = $1
           ORDER BY a.deleted_at IS NULL DESC, a.deleted_at DESC LIMIT 1"#,
    )
    .bind(email)
    .fetch_optional(pool)
    .await?)
}

/// Inserts session `sid` of `agent`, valid until `expires_at`.
pub(super) async fn insert_session(
    conn: &mut PgConnection,
    sid: SessionId,
    tenant: TenantId,
    agent: AgentId,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, tenant_id, agent_id, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(sid.as_uuid())
    .bind(tenant.as_uuid())
    .bind(agent.as_uuid())
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes session `sid` of `agent` if it is still live; returns the agent's name when it was.
pub(super) async fn revoke_session(
    conn: &mut PgConnection,
    sid: Uuid,
    agent: Uuid,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        r#"UPDATE sessions s SET revoked_at = now() FROM agents a
           WHERE s.id = $1 AND s.agent_id = $2 AND s.revoked_at IS NULL AND a.id = s.agent_id
           RETURNING a.name"#,
    )
    .bind(sid)
    .bind(agent)
    .fetch_optional(conn)
    .await?)
}

/// When session `sid` began; `None` when there is no such session.
pub(super) async fn session_started_at(
    pool: &PgPool,
    sid: SessionId,
) -> Result<Option<DateTime<Utc>>> {
    Ok(
        sqlx::query_scalar("SELECT created_at FROM sessions WHERE id = $1")
            .bind(sid.as_uuid())
            .fetch_optional(pool)
            .await?,
    )
}

/// Moves the end of session `sid` to `expires_at`.
pub(super) async fn extend_session(
    conn: &mut PgConnection,
    sid: SessionId,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("UPDATE sessions SET expires_at = $2 WHERE id = $1")
        .bind(sid.as_uuid())
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes the activity row of a sign-in event: `action` on the `entity_type` row `entity_id`.
pub(super) async fn record<'a>(
    conn: &mut PgConnection,
    actor: impl Into<Actor<'a>>,
    action: &str,
    entity_type: &str,
    entity_id: Uuid,
    details: Value,
) -> Result<()> {
    activity::record(
        conn,
        actor,
        Activity {
            action,
            entity_type,
            entity_id: Some(entity_id.to_string()),
            details,
        },
    )
    .await?;
    Ok(())
}
