//! Roles tag: the fixed system roles and tenants' custom roles, and the permission catalogue.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_domain::{AgentRole, Permission, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::api::activity_logs::{self as activity, Activity};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result, ResultExt, Violations};
use crate::http::extract::{
    check_optional_text, check_text, nullable, present, DeleteResponse, IdPath, ValidJson, Validate,
};

/// `RoleWithPermissions` (plus `agent_count` on single reads).
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleWithPermissions {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub is_system: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Permission codes, in catalogue order.
    pub permissions: Vec<String>,
    /// Agents holding the role (single-role reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_count: Option<i64>,
}

/// `Permission` of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionInfo {
    /// e.g. `agents.manage`.
    pub code: &'static str,
    /// e.g. `agents`.
    pub group: &'static str,
    pub description: &'static str,
}

#[derive(sqlx::FromRow)]
struct RoleRow {
    id: Uuid,
    name: String,
    description: Option<String>,
    is_system: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    permissions: Vec<String>,
}

impl RoleRow {
    fn into_api(self, agent_count: Option<i64>) -> RoleWithPermissions {
        let permissions = if self.is_system {
            self.name
                .parse::<AgentRole>()
                .map(|r| r.permissions())
                .unwrap_or_default()
        } else {
            let mut codes: Vec<Permission> = self
                .permissions
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect();
            codes.sort();
            codes
        };
        RoleWithPermissions {
            id: self.id,
            name: self.name,
            description: self.description,
            is_system: self.is_system,
            created_at: self.created_at,
            updated_at: self.updated_at,
            permissions: permissions.iter().map(|p| p.code().to_owned()).collect(),
            agent_count,
        }
    }
}

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

async fn load_role(conn: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<RoleRow> {
    sqlx::query_as(&format!(
        "{ROLE_SELECT} WHERE r.tenant_id = $1 AND r.id = $2"
    ))
    .bind(tenant.as_uuid())
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(ApiError::NotFound)
}

async fn agent_count(conn: &mut PgConnection, tenant: TenantId, role: &RoleRow) -> Result<i64> {
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

/// Checks a role name: 1..50 characters and not a system role's name.
fn check_role_name(violations: &mut Violations, name: &mut String) {
    check_text(violations, "name", name, 1, 50);
    if AgentRole::is_reserved_name(name) {
        violations.add("name", "is reserved for a system role");
    }
}

/// Parses permission codes, naming every unknown one; duplicates are dropped.
fn check_permissions(violations: &mut Violations, codes: &[String]) -> Vec<Permission> {
    let mut unknown = Vec::new();
    let mut parsed: Vec<Permission> = Vec::new();
    for code in codes {
        match code.trim().parse::<Permission>() {
            Ok(permission) => parsed.push(permission),
            Err(_) => unknown.push(code.as_str()),
        }
    }
    if !unknown.is_empty() {
        violations.add(
            "permissions",
            format!("unknown permission codes: {}", unknown.join(", ")),
        );
    }
    parsed.sort();
    parsed.dedup();
    parsed
}

/// Body of `POST /api/roles`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// 1..50, unique per tenant (case-insensitive), not `admin`, `supervisor` or `agent`.
    name: String,
    /// At most 500 characters.
    #[serde(default)]
    description: Option<String>,
    /// Codes from `GET /api/permissions`.
    permissions: Vec<String>,
    #[serde(skip)]
    parsed: Vec<Permission>,
}

impl Validate for CreateRole {
    fn validate(&mut self, violations: &mut Violations) {
        check_role_name(violations, &mut self.name);
        check_optional_text(violations, "description", &mut self.description, 500);
        self.parsed = check_permissions(violations, &self.permissions);
    }
}

/// Body of `PATCH /api/roles/{id}`; `permissions` replaces the set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    permissions: Option<Vec<String>>,
    #[serde(skip)]
    parsed: Option<Vec<Permission>>,
}

impl Validate for UpdateRole {
    fn validate(&mut self, violations: &mut Violations) {
        if let Some(name) = &mut self.name {
            check_role_name(violations, name);
        }
        if let Some(description) = &mut self.description {
            check_optional_text(violations, "description", description, 500);
        }
        self.parsed = self
            .permissions
            .as_deref()
            .map(|codes| check_permissions(violations, codes));
    }
}

fn role_name_taken() -> ApiError {
    ApiError::conflict("role_name_taken", "a role with this name already exists")
}

fn system_role_immutable() -> ApiError {
    ApiError::Forbidden {
        code: "system_role_immutable",
        message: "system roles cannot be changed or deleted".into(),
    }
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

/// List all roles with permissions
#[utoipa::path(
    get, path = "/api/roles", tag = "Roles",
    responses((status = 200, description = "System roles first, then custom roles by name", body = Vec<RoleWithPermissions>),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_roles(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::RolesManage>,
) -> Result<Json<Vec<RoleWithPermissions>>> {
    let rows: Vec<RoleRow> = sqlx::query_as(&format!(
        "{ROLE_SELECT} WHERE r.tenant_id = $1
         ORDER BY r.is_system DESC,
                  CASE r.name WHEN 'admin' THEN 0 WHEN 'supervisor' THEN 1 WHEN 'agent' THEN 2 ELSE 3 END,
                  lower(r.name), r.id"
    ))
    .bind(caller.tenant_id.as_uuid())
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows.into_iter().map(|r| r.into_api(None)).collect()))
}

/// Create a custom role
#[utoipa::path(
    post, path = "/api/roles", tag = "Roles", request_body = CreateRole,
    responses((status = 201, body = RoleWithPermissions), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, description = "Missing roles.manage, or granting codes the caller lacks", body = ErrorResponse),
              (status = 409, description = "role_name_taken", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn create_role(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::RolesManage>,
    ValidJson(body): ValidJson<CreateRole>,
) -> Result<(StatusCode, Json<RoleWithPermissions>)> {
    caller.require_all(&body.parsed)?;
    let id = Uuid::new_v4();
    let mut tx = state.pool.begin().await?;
    sqlx::query("INSERT INTO roles (id, tenant_id, name, description, is_system) VALUES ($1, $2, $3, $4, false)")
        .bind(id)
        .bind(caller.tenant_id.as_uuid())
        .bind(&body.name)
        .bind(&body.description)
        .execute(&mut *tx)
        .await
        .on_constraint("roles_tenant_name_key", role_name_taken)?;
    replace_permissions(&mut tx, id, &body.parsed).await?;
    let role = load_role(&mut tx, caller.tenant_id, id)
        .await?
        .into_api(None);
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "role.created",
            entity_type: "role",
            entity_id: Some(id.to_string()),
            details: json!({ "name": role.name, "permissions": role.permissions }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(role)))
}

/// Get a single role with permissions
#[utoipa::path(
    get, path = "/api/roles/{id}", tag = "Roles", params(("id" = Uuid, Path)),
    responses((status = 200, description = "With agent_count", body = RoleWithPermissions), (status = 400, body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn get_role(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::RolesManage>,
    IdPath(id): IdPath,
) -> Result<Json<RoleWithPermissions>> {
    let mut conn = state.pool.acquire().await?;
    let row = load_role(&mut conn, caller.tenant_id, id).await?;
    let count = agent_count(&mut conn, caller.tenant_id, &row).await?;
    Ok(Json(row.into_api(Some(count))))
}

/// Update a role
#[utoipa::path(
    patch, path = "/api/roles/{id}", tag = "Roles", params(("id" = Uuid, Path)), request_body = UpdateRole,
    responses((status = 200, body = RoleWithPermissions), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, description = "forbidden or system_role_immutable", body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, description = "role_name_taken", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn update_role(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::RolesManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateRole>,
) -> Result<Json<RoleWithPermissions>> {
    let mut tx = state.pool.begin().await?;
    let current = load_role(&mut tx, caller.tenant_id, id).await?;
    if current.is_system {
        return Err(system_role_immutable());
    }
    if let Some(permissions) = &body.parsed {
        caller.require_all(permissions)?;
    }
    sqlx::query(
        "UPDATE roles SET name = COALESCE($3, name), description = CASE WHEN $4 THEN $5 ELSE description END, updated_at = now()
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(caller.tenant_id.as_uuid())
    .bind(id)
    .bind(body.name.as_deref())
    .bind(body.description.is_some())
    .bind(body.description.clone().flatten())
    .execute(&mut *tx)
    .await
    .on_constraint("roles_tenant_name_key", role_name_taken)?;
    if let Some(permissions) = &body.parsed {
        replace_permissions(&mut tx, id, permissions).await?;
    }
    let before = current.into_api(None);
    let role = load_role(&mut tx, caller.tenant_id, id)
        .await?
        .into_api(None);
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "role.updated",
            entity_type: "role",
            entity_id: Some(id.to_string()),
            details: json!({
                "name": { "from": before.name, "to": role.name },
                "permissions": { "from": before.permissions, "to": role.permissions },
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(role))
}

/// Delete a custom role
#[utoipa::path(
    delete, path = "/api/roles/{id}", tag = "Roles", params(("id" = Uuid, Path)),
    responses((status = 200, body = DeleteResponse), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, description = "forbidden or system_role_immutable", body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, description = "role_in_use", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn delete_role(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::RolesManage>,
    IdPath(id): IdPath,
) -> Result<Json<DeleteResponse>> {
    let mut tx = state.pool.begin().await?;
    let role = load_role(&mut tx, caller.tenant_id, id).await?;
    if role.is_system {
        return Err(system_role_immutable());
    }
    if agent_count(&mut tx, caller.tenant_id, &role).await? > 0 {
        return Err(ApiError::conflict(
            "role_in_use",
            "agents still hold this role",
        ));
    }
    // Deleted agents may still point at the role; they keep no access, so the link is dropped.
    sqlx::query("UPDATE agents SET custom_role_id = NULL WHERE tenant_id = $1 AND custom_role_id = $2 AND deleted_at IS NOT NULL")
        .bind(caller.tenant_id.as_uuid())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM roles WHERE tenant_id = $1 AND id = $2")
        .bind(caller.tenant_id.as_uuid())
        .bind(id)
        .execute(&mut *tx)
        .await
        .on_constraint("agents_custom_role_fkey", || {
            ApiError::conflict("role_in_use", "agents still hold this role")
        })?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "role.deleted",
            entity_type: "role",
            entity_id: Some(id.to_string()),
            details: json!({ "name": role.name }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(DeleteResponse {
        message: "role deleted".into(),
        id,
    }))
}

/// List all available permissions
#[utoipa::path(
    get, path = "/api/permissions", tag = "Roles",
    responses((status = 200, description = "The catalogue of table 0.3, in order", body = Vec<PermissionInfo>),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_permissions(_: Authorized<perm::RolesManage>) -> Result<Json<Vec<PermissionInfo>>> {
    Ok(Json(
        Permission::ALL
            .iter()
            .map(|p| PermissionInfo {
                code: p.code(),
                group: p.group(),
                description: p.description(),
            })
            .collect(),
    ))
}

/// Routes of the Roles tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles, create_role))
        .routes(routes!(get_role, update_role, delete_role))
        .routes(routes!(list_permissions))
}
