//! The handlers of the Roles tag: each parses, checks that the caller grants only what it holds,
//! calls [`super::store`] inside one transaction (the row and its activity row together), and
//! maps the result.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omnistream_domain::Permission;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::dto::*;
use super::store::{self, load_role};
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::{DeleteResponse, IdPath, ValidJson};

fn system_role_immutable() -> ApiError {
    ApiError::Forbidden {
        code: "system_role_immutable",
        message: "system roles cannot be changed or deleted".into(),
    }
}

/// List all roles with permissions
#[utoipa::path(
    get, path = "/api/roles", tag = "Roles",
    responses((status = 200, description = "System roles first, then custom roles by name", body = Vec<RoleWithPermissions>),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_roles(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::RolesManage>,
) -> Result<Json<Vec<RoleWithPermissions>>> {
    let rows = store::list(&pool, caller.tenant_id).await?;
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
pub(super) async fn create_role(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::RolesManage>,
    ValidJson(body): ValidJson<CreateRole>,
) -> Result<(StatusCode, Json<RoleWithPermissions>)> {
    caller.require_all(&body.parsed)?;
    let id = Uuid::new_v4();
    let mut tx = pool.begin().await?;
    store::insert(&mut tx, caller.tenant_id, id, &body).await?;
    let role = load_role(&mut tx, caller.tenant_id, id)
        .await?
        .into_api(None);
    let details = json!({ "name": role.name, "permissions": role.permissions });
    store::record(&mut tx, &caller, "role.created", id, details).await?;
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
pub(super) async fn get_role(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::RolesManage>,
    IdPath(id): IdPath,
) -> Result<Json<RoleWithPermissions>> {
    let mut conn = pool.acquire().await?;
    let row = load_role(&mut conn, caller.tenant_id, id).await?;
    let count = store::agent_count(&mut conn, caller.tenant_id, &row).await?;
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
pub(super) async fn update_role(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::RolesManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateRole>,
) -> Result<Json<RoleWithPermissions>> {
    let mut tx = pool.begin().await?;
    let current = load_role(&mut tx, caller.tenant_id, id).await?;
    if current.is_system {
        return Err(system_role_immutable());
    }
    if let Some(permissions) = &body.parsed {
        caller.require_all(permissions)?;
    }
    store::update(&mut tx, caller.tenant_id, id, &body).await?;
    let before = current.into_api(None);
    let role = load_role(&mut tx, caller.tenant_id, id)
        .await?
        .into_api(None);
    let details = json!({
        "name": { "from": before.name, "to": role.name },
        "permissions": { "from": before.permissions, "to": role.permissions },
    });
    store::record(&mut tx, &caller, "role.updated", id, details).await?;
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
pub(super) async fn delete_role(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::RolesManage>,
    IdPath(id): IdPath,
) -> Result<Json<DeleteResponse>> {
    let mut tx = pool.begin().await?;
    let role = load_role(&mut tx, caller.tenant_id, id).await?;
    if role.is_system {
        return Err(system_role_immutable());
    }
    if store::agent_count(&mut tx, caller.tenant_id, &role).await? > 0 {
        return Err(store::role_in_use());
    }
    store::delete(&mut tx, caller.tenant_id, id).await?;
    let details = json!({ "name": role.name });
    store::record(&mut tx, &caller, "role.deleted", id, details).await?;
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
pub(super) async fn list_permissions(
    _: Authorized<perm::RolesManage>,
) -> Result<Json<Vec<PermissionInfo>>> {
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
