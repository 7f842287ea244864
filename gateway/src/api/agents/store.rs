//! The SQL of the Agents tag: the `agents` row, its divisions, the sessions and API keys an agent
//! loses, and the activity row written in the same transaction as each change.

use omnistream_domain::{AgentRole, EmailAddress, Permission, TenantId};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::dto::{AgentListQuery, AgentPublic, CreateAgent, UpdateAgent};
use crate::api::activity_logs::{self as activity, Activity};
use crate::api::roles;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, Result, ResultExt};

/// Columns of [`AgentPublic`], over `agents a LEFT JOIN roles r`; callers add `WHERE …`.
pub const AGENT_PUBLIC_SELECT: &str = r#"
    SELECT a.id, a.tenant_id AS organization_id, a.name, a.email, a.role, a.custom_role_id,
           COALESCE(r.name, a.role) AS role_name,
           ARRAY(SELECT ad.division_id FROM agent_divisions ad WHERE ad.agent_id = a.id ORDER BY ad.division_id) AS division_ids,
           a.is_online, a.is_active, a.can_broadcast, a.avatar_url, a.last_seen_at, a.created_at, a.updated_at
    FROM agents a LEFT JOIN roles r ON r.id = a.custom_role_id
    WHERE a.deleted_at IS NULL
"#;

/// One live agent of `tenant`, or 404.
pub async fn load_agent(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<AgentPublic> {
    sqlx::query_as::<_, AgentPublic>(&format!(
        "{AGENT_PUBLIC_SELECT} AND a.tenant_id = $1 AND a.id = $2"
    ))
    .bind(tenant.as_uuid())
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(ApiError::NotFound)
}

/// The permissions an agent would hold with `role` and `custom_role_id`; 422 `invalid_role`
/// when the custom role is not a custom role of the tenant.
pub(super) async fn granted_permissions(
    conn: &mut PgConnection,
    tenant: TenantId,
    role: AgentRole,
    custom_role_id: Option<Uuid>,
) -> Result<Vec<Permission>> {
    match custom_role_id {
        None => Ok(role.permissions()),
        Some(id) => roles::custom_role_permissions(conn, tenant, id)
            .await?
            .ok_or_else(invalid_role),
    }
}

/// 422 `invalid_division` unless every id is a division of the tenant.
pub(super) async fn ensure_divisions_exist(
    conn: &mut PgConnection,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let found: i64 =
        sqlx::query_scalar("SELECT count(*) FROM divisions WHERE tenant_id = $1 AND id = ANY($2)")
            .bind(tenant.as_uuid())
            .bind(ids)
            .fetch_one(conn)
            .await?;
    if found != ids.len() as i64 {
        return Err(invalid_division());
    }
    Ok(())
}

pub(super) async fn replace_divisions(
    conn: &mut PgConnection,
    tenant: TenantId,
    agent: Uuid,
    ids: &[Uuid],
) -> Result<()> {
    sqlx::query("DELETE FROM agent_divisions WHERE tenant_id = $1 AND agent_id = $2")
        .bind(tenant.as_uuid())
        .bind(agent)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO agent_divisions (tenant_id, agent_id, division_id) SELECT $1, $2, unnest($3::uuid[]) ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_uuid())
    .bind(agent)
    .bind(ids)
    .execute(conn)
    .await
    .on_constraint("agent_divisions_division_fkey", invalid_division)?;
    Ok(())
}

fn invalid_division() -> ApiError {
    ApiError::unprocessable(
        "invalid_division",
        "division_ids names a division that does not exist",
    )
}

fn invalid_role() -> ApiError {
    ApiError::unprocessable(
        "invalid_role",
        "custom_role_id is not a custom role of this organization",
    )
}

/// 409 `last_admin` unless the tenant keeps another active admin besides `agent`.
/// Locks the tenant row so two concurrent demotions cannot both pass.
pub(super) async fn ensure_another_admin(
    conn: &mut PgConnection,
    tenant: TenantId,
    agent: Uuid,
) -> Result<()> {
    sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE")
        .bind(tenant.as_uuid())
        .execute(&mut *conn)
        .await?;
    let others: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM agents WHERE tenant_id = $1 AND id <> $2 AND role = 'admin'
           AND custom_role_id IS NULL AND is_active AND deleted_at IS NULL",
    )
    .bind(tenant.as_uuid())
    .bind(agent)
    .fetch_one(conn)
    .await?;
    if others == 0 {
        return Err(ApiError::conflict(
            "last_admin",
            "the organization must keep at least one active admin",
        ));
    }
    Ok(())
}

/// Revokes every session of `agent` (after a password change, deactivation or deletion).
pub async fn revoke_sessions(conn: &mut PgConnection, agent: Uuid) -> Result<()> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = now() WHERE agent_id = $1 AND revoked_at IS NULL",
    )
    .bind(agent)
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes every API key `agent` created: keys made with a password that has since changed
/// (perhaps by whoever stole it) must not outlive it.
pub async fn revoke_api_keys(
    conn: &mut PgConnection,
    tenant: TenantId,
    agent: Uuid,
) -> Result<u64> {
    let revoked = sqlx::query(
        "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND agent_id = $2 AND revoked_at IS NULL",
    )
    .bind(tenant.as_uuid())
    .bind(agent)
    .execute(conn)
    .await?;
    Ok(revoked.rows_affected())
}

fn email_taken() -> ApiError {
    ApiError::conflict("email_taken", "an account with this email already exists")
}

/// The tenant's live agents matching `query`, sorted by name.
pub(super) async fn list(
    pool: &PgPool,
    tenant: TenantId,
    query: AgentListQuery,
) -> Result<Vec<AgentPublic>> {
    let mut builder = QueryBuilder::<Postgres>::new(AGENT_PUBLIC_SELECT);
    builder
        .push(" AND a.tenant_id = ")
        .push_bind(tenant.as_uuid());
    if let Some(division) = query.division_id {
        builder
            .push(" AND EXISTS (SELECT 1 FROM agent_divisions ad WHERE ad.agent_id = a.id AND ad.division_id = ")
            .push_bind(division)
            .push(")");
    }
    if let Some(role) = query.role {
        builder.push(" AND a.role = ").push_bind(role.as_str());
    }
    if let Some(online) = query.is_online {
        builder.push(" AND a.is_online = ").push_bind(online);
    }
    if let Some(active) = query.is_active {
        builder.push(" AND a.is_active = ").push_bind(active);
    }
    if let Some(q) = query.q.filter(|q| !q.is_empty()) {
        let pattern = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        builder
            .push(" AND (a.name ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR a.email ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
    builder.push(" ORDER BY lower(a.name), a.id");
    Ok(builder
        .build_query_as::<AgentPublic>()
        .fetch_all(pool)
        .await?)
}

/// Inserts agent `id` (without its divisions).
pub(super) async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    body: &CreateAgent,
    role: AgentRole,
    password_hash: &str,
) -> Result<()> {
    sqlx::query(
        r#"INSERT INTO agents (id, tenant_id, name, email, password_hash, role, custom_role_id, can_broadcast)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"#,
    )
    .bind(id)
    .bind(tenant.as_uuid())
    .bind(&body.name)
    .bind(body.email.as_str())
    .bind(password_hash)
    .bind(role.as_str())
    .bind(body.custom_role_id)
    .bind(body.can_broadcast)
    .execute(conn)
    .await
    .on_constraint("agents_email_key", email_taken)
    .on_constraint("agents_custom_role_fkey", invalid_role)?;
    Ok(())
}

/// An agent's role, custom role and activity after an update, resolved against the stored row.
pub(super) struct Access {
    pub role: AgentRole,
    pub custom_role_id: Option<Uuid>,
    pub is_active: bool,
}

/// Writes an update of agent `id`: the given fields of `body` (the password already hashed) and
/// the resolved `access`; a deactivated agent goes offline.
pub(super) async fn update(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    body: &UpdateAgent,
    password_hash: Option<&str>,
    access: &Access,
) -> Result<()> {
    sqlx::query(
        r#"UPDATE agents SET
               name = COALESCE($3, name),
               email = COALESCE($4, email),
               password_hash = COALESCE($5, password_hash),
               password_changed_at = CASE WHEN $5 IS NULL THEN password_changed_at ELSE now() END,
               role = $6, custom_role_id = $7,
               can_broadcast = COALESCE($8, can_broadcast),
               is_active = $9,
               is_online = CASE WHEN $9 THEN is_online ELSE false END,
               updated_at = now()
           WHERE tenant_id = $1 AND id = $2"#,
    )
    .bind(tenant.as_uuid())
    .bind(id)
    .bind(body.name.as_deref())
    .bind(body.email.as_ref().map(EmailAddress::as_str))
    .bind(password_hash)
    .bind(access.role.as_str())
    .bind(access.custom_role_id)
    .bind(body.can_broadcast)
    .bind(access.is_active)
    .execute(conn)
    .await
    .on_constraint("agents_email_key", email_taken)
    .on_constraint("agents_custom_role_fkey", invalid_role)?;
    Ok(())
}

/// Soft-deletes agent `id` and removes it from its divisions.
pub(super) async fn soft_delete(conn: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<()> {
    sqlx::query("UPDATE agents SET deleted_at = now(), is_online = false, updated_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_uuid())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM agent_divisions WHERE tenant_id = $1 AND agent_id = $2")
        .bind(tenant.as_uuid())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets agent `id` online or offline and stamps `last_seen_at`.
pub(super) async fn set_online(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    is_online: bool,
) -> Result<()> {
    sqlx::query("UPDATE agents SET is_online = $3, last_seen_at = now(), updated_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_uuid())
        .bind(id)
        .bind(is_online)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes the activity row of a change to agent `id`.
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
            entity_type: "agent",
            entity_id: Some(id.to_string()),
            details,
        },
    )
    .await?;
    Ok(())
}
