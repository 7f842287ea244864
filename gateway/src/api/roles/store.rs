//! The SQL of the Roles tag: the `roles` rows (three system roles per tenant, and custom roles
//! with their `role_permissions`), and the activity row written in the same transaction as each
//! change.

use omnistream_domain::{AgentRole, Permission, TenantId};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::dto::{CreateRole, RoleRow, UpdateRole};
use crate::api::activity_logs::{self as activity, Activity};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, Result, ResultExt};

/// Columns of [`RoleRow`], over `roles r`; callers add `WHERE …`.
const ROLE_SELECT: &str = r#"
    SELECT r.id, r.name, r.description, r.is_system, r.created_at, r.updated_at,
           ARRAY(SELECT rp.permission FROM role_permissions rp WHERE rp.role_id = r.id) AS permissions
    FROM roles r
"#;

/// Creates the three system-role rows of a new tenant.
pub async fn create_system_roles(conn: &mut PgConnection, tenant: TenantId) -> Result<()> {
    for role in AgentRole::ALL {
        sqlx::query("INSERT INTO roles (id, tenant_id, name, description, is_system) VALUES ($1, $2, $3, $4, true)")
            .bind(Uuid::new_v4())
            .bind(tenant.as_uuid())
            .bind(role.as_str())
            .bind(format!("System role: {}", role.as_str()))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The codes of a custom role of `tenant`; `None` when `id` is not one.
pub async fn custom_role_permissions(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<Vec<Permission>>> {
    let row: Option<RoleRow> = sqlx::query_as(&format!(
        "{ROLE_SELECT} WHERE r.tenant_id = $1 AND r.id = $2 AND NOT r.is_system"
    ))
    .bind(tenant.as_uuid())
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| {
        r.permissions
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect()
    }))
}

/// The tenant's roles: system roles first (admin, supervisor, agent), then custom roles by name.
pub(super) async fn list(pool: &PgPool, tenant: TenantId) -> Result<Vec<RoleRow>> {
    Ok(sqlx::query_as(&format!(
        "{ROLE_SELECT} WHERE r.tenant_id = $1
         ORDER BY r.is_system DESC,
                  CASE r.name WHEN 'admin' THEN 0 WHEN 'supervisor' THEN 1 WHEN 'agent' THEN 2 ELSE 3 END,
                  lower(r.name), r.id"
    ))
    .bind(tenant.as_uuid())
    .fetch_all(pool)
    .await?)
}

/// The tenant's role `id`, or 404.
pub(super) async fn load_role(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<RoleRow> {
    sqlx::query_as(&format!(
        "{ROLE_SELECT} WHERE r.tenant_id = $1 AND r.id = $2"
    ))
    .bind(tenant.as_uuid())
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(ApiError::NotFound)
}

/// How many live agents hold `role`: a system role counts agents without a custom role.
pub(super) async fn agent_count(
    conn: &mut PgConnection,
    tenant: TenantId,
    role: &RoleRow,
) -> Result<i64> {
    let count = if role.is_system {
        sqlx::query_scalar(
            "SELECT count(*) FROM agents WHERE tenant_id = $1 AND role = $2 AND custom_role_id IS NULL AND deleted_at IS NULL",
        )
        .bind(tenant.as_uuid())
        .bind(&role.name)
        .fetch_one(conn)
        .await?
    } else {
        sqlx::query_scalar("SELECT count(*) FROM agents WHERE tenant_id = $1 AND custom_role_id = $2 AND deleted_at IS NULL")
            .bind(tenant.as_uuid())
            .bind(role.id)
            .fetch_one(conn)
            .await?
    };
    Ok(count)
}

fn role_name_taken() -> ApiError {
    ApiError::conflict("role_name_taken", "a role with this name already exists")
}

/// 409 `role_in_use`.
pub(super) fn role_in_use() -> ApiError {
    ApiError::conflict("role_in_use", "agents still hold this role")
}

/// Inserts custom role `id` with its permissions; 409 `role_name_taken`.
pub(super) async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    body: &CreateRole,
) -> Result<()> {
    sqlx::query("INSERT INTO roles (id, tenant_id, name, description, is_system) VALUES ($1, $2, $3, $4, false)")
        .bind(id)
        .bind(tenant.as_uuid())
        .bind(&body.name)
        .bind(&body.description)
        .execute(&mut *conn)
        .await
        .on_constraint("roles_tenant_name_key", role_name_taken)?;
    replace_permissions(conn, id, &body.parsed).await
}

/// Writes the given fields of `body` to role `id` (a `permissions` set replaces the stored
/// one); 409 `role_name_taken`.
pub(super) async fn update(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    body: &UpdateRole,
) -> Result<()> {
    sqlx::query(
        "UPDATE roles SET name = COALESCE($3, name), description = CASE WHEN $4 THEN $5 ELSE description END, updated_at = now()
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(id)
    .bind(body.name.as_deref())
    .bind(body.description.is_some())
    .bind(body.description.clone().flatten())
    .execute(&mut *conn)
    .await
    .on_constraint("roles_tenant_name_key", role_name_taken)?;
    if let Some(permissions) = &body.parsed {
        replace_permissions(conn, id, permissions).await?;
    }
    Ok(())
}

async fn replace_permissions(
    conn: &mut PgConnection,
    role: Uuid,
    permissions: &[Permission],
) -> Result<()> {
    sqlx::query("DELETE FROM role_permissions WHERE role_id = $1")
        .bind(role)
        .execute(&mut *conn)
        .await?;
    let codes: Vec<&str> = permissions.iter().map(|p| p.code()).collect();
    sqlx::query("INSERT INTO role_permissions (role_id, permission) SELECT $1, unnest($2::text[])")
        .bind(role)
        .bind(&codes)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes custom role `id`; 409 `role_in_use` when a live agent still holds it.
pub(super) async fn delete(conn: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<()> {
    // Deleted agents may still point at the role; they keep no access, so the link is dropped.
    sqlx::query("UPDATE agents SET custom_role_id = NULL WHERE tenant_id = $1 AND custom_role_id = $2 AND deleted_at IS NOT NULL")
        .bind(tenant.as_uuid())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM roles WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_uuid())
        .bind(id)
        .execute(conn)
        .await
        .on_constraint("agents_custom_role_fkey", role_in_use)?;
    Ok(())
}

/// Writes the activity row of a change to role `id`.
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
            entity_type: "role",
            entity_id: Some(id.to_string()),
            details,
        },
    )
    .await?;
    Ok(())
}
