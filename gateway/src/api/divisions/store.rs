//! The SQL of the Divisions tag: the `divisions` row, its members (`agent_divisions`), and the
//! activity row written in the same transaction as each change.

use omnistream_domain::TenantId;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::dto::{CreateDivision, Division, DivisionWithCount, UpdateDivision};
use crate::api::activity_logs::{self as activity, Activity};
use crate::api::agents::{AgentPublic, AGENT_PUBLIC_SELECT};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, Result, ResultExt};

/// Columns of [`Division`].
const DIVISION_COLUMNS: &str = "id, name, description, created_at, updated_at";

fn name_taken() -> ApiError {
    ApiError::conflict(
        "division_name_taken",
        "a division with this name already exists",
    )
}

fn invalid_agent() -> ApiError {
    ApiError::unprocessable(
        "invalid_agent",
        "agent_ids names an unknown or inactive agent",
    )
}

/// The tenant's divisions with their live agents' count, sorted by name.
pub(super) async fn list(pool: &PgPool, tenant: TenantId) -> Result<Vec<DivisionWithCount>> {
    Ok(sqlx::query_as(
        r#"SELECT d.id, d.name, d.description, d.created_at, d.updated_at,
                  (SELECT count(*) FROM agent_divisions ad JOIN agents a ON a.id = ad.agent_id
                    WHERE ad.division_id = d.id AND a.deleted_at IS NULL) AS agent_count
           FROM divisions d WHERE d.tenant_id = $1 ORDER BY lower(d.name), d.id"#,
    )
    .bind(tenant.as_uuid())
    .fetch_all(pool)
    .await?)
}

/// The tenant's division `id`, or 404.
pub(super) async fn load_division(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Division> {
    sqlx::query_as(&format!(
        "SELECT {DIVISION_COLUMNS} FROM divisions WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant.as_uuid())
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(ApiError::NotFound)
}

/// The live agents of division `id`, sorted by name.
pub(super) async fn division_agents(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Vec<AgentPublic>> {
    Ok(sqlx::query_as(&format!(
        "{AGENT_PUBLIC_SELECT} AND a.tenant_id = $1
           AND EXISTS (SELECT 1 FROM agent_divisions ad WHERE ad.agent_id = a.id AND ad.division_id = $2)
         ORDER BY lower(a.name), a.id"
    ))
    .bind(tenant.as_uuid())
    .bind(id)
    .fetch_all(conn)
    .await?)
}

/// Inserts a division; 409 `division_name_taken`.
pub(super) async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    body: &CreateDivision,
) -> Result<Division> {
    sqlx::query_as(&format!(
        "INSERT INTO divisions (id, tenant_id, name, description) VALUES ($1, $2, $3, $4)
         RETURNING {DIVISION_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(tenant.as_uuid())
    .bind(&body.name)
    .bind(&body.description)
    .fetch_one(conn)
    .await
    .on_constraint("divisions_tenant_name_key", name_taken)
}

/// Writes the given fields of `body` to division `id`; 409 `division_name_taken`.
pub(super) async fn update(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    body: &UpdateDivision,
) -> Result<Division> {
    sqlx::query_as(&format!(
        "UPDATE divisions SET name = COALESCE($3, name), description = CASE WHEN $4 THEN $5 ELSE description END, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 RETURNING {DIVISION_COLUMNS}"
    ))
    .bind(tenant.as_uuid())
    .bind(id)
    .bind(body.name.as_deref())
    .bind(body.description.is_some())
    .bind(body.description.clone().flatten())
    .fetch_one(conn)
    .await
    .on_constraint("divisions_tenant_name_key", name_taken)
}

/// Deletes division `id` (its memberships go with it).
pub(super) async fn delete(conn: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<()> {
    sqlx::query("DELETE FROM divisions WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_uuid())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds `agents` to division `id`; returns how many were not members before. 422
/// `invalid_agent`, with nothing added, unless every agent is an active agent of the tenant.
pub(super) async fn add_agents(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    agents: &[Uuid],
) -> Result<i64> {
    let usable: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM agents WHERE tenant_id = $1 AND id = ANY($2) AND is_active AND deleted_at IS NULL",
    )
    .bind(tenant.as_uuid())
    .bind(agents)
    .fetch_one(&mut *conn)
    .await?;
    if usable != agents.len() as i64 {
        return Err(invalid_agent());
    }
    let added = sqlx::query(
        "INSERT INTO agent_divisions (tenant_id, agent_id, division_id) SELECT $1, unnest($2::uuid[]), $3 ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_uuid())
    .bind(agents)
    .bind(id)
    .execute(conn)
    .await
    .on_constraint("agent_divisions_agent_fkey", invalid_agent)
    .on_constraint("agent_divisions_division_fkey", || ApiError::NotFound)?
    .rows_affected();
    Ok(added as i64)
}

/// Removes `agents` from division `id`; returns how many were members.
pub(super) async fn remove_agents(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    agents: &[Uuid],
) -> Result<i64> {
    let removed = sqlx::query(
        "DELETE FROM agent_divisions WHERE tenant_id = $1 AND division_id = $2 AND agent_id = ANY($3)",
    )
    .bind(tenant.as_uuid())
    .bind(id)
    .bind(agents)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(removed as i64)
}

/// Writes the activity row of a change to division `id`.
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
            entity_type: "division",
            entity_id: Some(id.to_string()),
            details,
        },
    )
    .await?;
    Ok(())
}
