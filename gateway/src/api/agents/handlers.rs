//! The handlers of the Agents tag: each parses, checks who may do what, calls [`super::store`]
//! inside one transaction (the row and its activity row together), and maps the result.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omnistream_domain::{AgentRole, Permission};
use serde_json::{json, Map, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::dto::*;
use super::store::{self, load_agent, Access};
use crate::http::auth::{password, perm, Authorized, Caller};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::{DeleteResponse, IdPath, ValidJson, ValidQuery};

/// 403 unless the caller holds every permission `target` holds: nobody manages an agent more
/// powerful than themselves (changing their password or email would hand over those rights).
async fn ensure_not_more_powerful(
    conn: &mut PgConnection,
    caller: &Caller,
    target: &AgentPublic,
) -> Result<()> {
    if target.id == caller.agent_id.as_uuid() {
        return Ok(());
    }
    let role: AgentRole = target.role.parse().map_err(anyhow::Error::from)?;
    let held =
        store::granted_permissions(conn, caller.tenant_id, role, target.custom_role_id).await?;
    caller.require_all(&held).map_err(|_| ApiError::Forbidden {
        code: "forbidden",
        message: "you cannot manage an agent who holds permissions you do not hold".into(),
    })
}

/// Whether a loaded agent is an active admin (system role, no custom role).
fn is_active_admin(agent: &AgentPublic) -> bool {
    agent.role == "admin" && agent.custom_role_id.is_none() && agent.is_active
}

/// List all agents
#[utoipa::path(
    get, path = "/api/agents", tag = "Agents", params(AgentListQuery),
    responses((status = 200, description = "Sorted by name; deleted agents excluded", body = Vec<AgentPublic>),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_agents(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::AgentsView>,
    ValidQuery(query): ValidQuery<AgentListQuery>,
) -> Result<Json<Vec<AgentPublic>>> {
    Ok(Json(store::list(&pool, caller.tenant_id, query).await?))
}

/// Create a new agent
#[utoipa::path(
    post, path = "/api/agents", tag = "Agents", request_body = CreateAgent,
    responses((status = 201, body = AgentPublic),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, description = "Missing agents.manage, or granting permissions the caller lacks", body = ErrorResponse),
              (status = 409, description = "email_taken", body = ErrorResponse),
              (status = 422, description = "invalid_role or invalid_division", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn create_agent(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::AgentsManage>,
    ValidJson(mut body): ValidJson<CreateAgent>,
) -> Result<(StatusCode, Json<AgentPublic>)> {
    let role = body.role.unwrap_or(AgentRole::Agent);
    let password_hash = password::hash(std::mem::take(&mut body.password)).await?;
    let mut tx = pool.begin().await?;
    let granted =
        store::granted_permissions(&mut tx, caller.tenant_id, role, body.custom_role_id).await?;
    caller.require_all(&granted)?;
    store::ensure_divisions_exist(&mut tx, caller.tenant_id, &body.division_ids).await?;
    let id = Uuid::new_v4();
    store::insert(&mut tx, caller.tenant_id, id, &body, role, &password_hash).await?;
    store::replace_divisions(&mut tx, caller.tenant_id, id, &body.division_ids).await?;
    let agent = load_agent(&mut tx, caller.tenant_id, id).await?;
    let details = json!({
        "name": agent.name, "email": agent.email, "role": agent.role, "custom_role_id": agent.custom_role_id,
        "division_ids": agent.division_ids, "can_broadcast": agent.can_broadcast,
    });
    store::record(&mut tx, &caller, "agent.created", id, details).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

/// Get an agent by ID
#[utoipa::path(
    get, path = "/api/agents/{id}", tag = "Agents", params(("id" = Uuid, Path)),
    responses((status = 200, body = AgentPublic), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn get_agent(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::AgentsView>,
    IdPath(id): IdPath,
) -> Result<Json<AgentPublic>> {
    let mut conn = pool.acquire().await?;
    Ok(Json(load_agent(&mut conn, caller.tenant_id, id).await?))
}

/// Update an agent
#[utoipa::path(
    patch, path = "/api/agents/{id}", tag = "Agents", params(("id" = Uuid, Path)), request_body = UpdateAgent,
    responses((status = 200, description = "A new password revokes the agent's sessions and API keys", body = AgentPublic), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 409, description = "email_taken or last_admin", body = ErrorResponse),
              (status = 422, description = "invalid_role or invalid_division", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn update_agent(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::AgentsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateAgent>,
) -> Result<Json<AgentPublic>> {
    let password_hash = match &body.password {
        Some(password) => Some(password::hash(password.clone()).await?),
        None => None,
    };
    let tenant = caller.tenant_id;
    let mut tx = pool.begin().await?;
    let current = load_agent(&mut tx, tenant, id).await?;
    ensure_not_more_powerful(&mut tx, &caller, &current).await?;
    let current_role: AgentRole = current.role.parse().map_err(anyhow::Error::from)?;
    let role = body.role.unwrap_or(current_role);
    let custom_role_id = body.custom_role_id.unwrap_or(current.custom_role_id);
    if body.role.is_some() || body.custom_role_id.is_some() {
        let granted = store::granted_permissions(&mut tx, tenant, role, custom_role_id).await?;
        caller.require_all(&granted)?;
    }
    let is_active = body.is_active.unwrap_or(current.is_active);
    let stays_admin = role == AgentRole::Admin && custom_role_id.is_none() && is_active;
    if is_active_admin(&current) && !stays_admin {
        store::ensure_another_admin(&mut tx, tenant, id).await?;
    }
    if let Some(ids) = &body.division_ids {
        store::ensure_divisions_exist(&mut tx, tenant, ids).await?;
        store::replace_divisions(&mut tx, tenant, id, ids).await?;
    }
    let access = Access {
        role,
        custom_role_id,
        is_active,
    };
    store::update(
        &mut tx,
        tenant,
        id,
        &body,
        password_hash.as_deref(),
        &access,
    )
    .await?;
    if password_hash.is_some() || !is_active {
        store::revoke_sessions(&mut tx, id).await?;
    }
    let api_keys_revoked = match password_hash {
        Some(_) => store::revoke_api_keys(&mut tx, tenant, id).await?,
        None => 0,
    };
    let updated = load_agent(&mut tx, tenant, id).await?;
    let mut changes = Map::new();
    let mut note = |field: &str, before: Value, after: Value| {
        if before != after {
            changes.insert(field.to_owned(), json!({ "from": before, "to": after }));
        }
    };
    note("name", json!(current.name), json!(updated.name));
    note("email", json!(current.email), json!(updated.email));
    note("role", json!(current.role), json!(updated.role));
    note(
        "custom_role_id",
        json!(current.custom_role_id),
        json!(updated.custom_role_id),
    );
    note(
        "division_ids",
        json!(current.division_ids),
        json!(updated.division_ids),
    );
    note(
        "can_broadcast",
        json!(current.can_broadcast),
        json!(updated.can_broadcast),
    );
    note(
        "is_active",
        json!(current.is_active),
        json!(updated.is_active),
    );
    if body.password.is_some() {
        changes.insert("password".into(), json!("changed"));
        changes.insert("api_keys_revoked".into(), json!(api_keys_revoked));
    }
    let details = json!({ "changes": changes });
    store::record(&mut tx, &caller, "agent.updated", id, details).await?;
    tx.commit().await?;
    Ok(Json(updated))
}

/// Delete an agent
#[utoipa::path(
    delete, path = "/api/agents/{id}", tag = "Agents", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Soft delete: sessions and API keys revoked", body = DeleteResponse),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, description = "cannot_delete_self or last_admin", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn delete_agent(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::AgentsManage>,
    IdPath(id): IdPath,
) -> Result<Json<DeleteResponse>> {
    let tenant = caller.tenant_id;
    let mut tx = pool.begin().await?;
    let agent = load_agent(&mut tx, tenant, id).await?;
    if id == caller.agent_id.as_uuid() {
        return Err(ApiError::conflict(
            "cannot_delete_self",
            "you cannot delete your own account",
        ));
    }
    ensure_not_more_powerful(&mut tx, &caller, &agent).await?;
    if is_active_admin(&agent) {
        store::ensure_another_admin(&mut tx, tenant, id).await?;
    }
    store::soft_delete(&mut tx, tenant, id).await?;
    store::revoke_api_keys(&mut tx, tenant, id).await?;
    store::revoke_sessions(&mut tx, id).await?;
    let details = json!({ "name": agent.name, "email": agent.email });
    store::record(&mut tx, &caller, "agent.deleted", id, details).await?;
    tx.commit().await?;
    Ok(Json(DeleteResponse {
        message: "agent deleted".into(),
        id,
    }))
}

/// Toggle agent online/offline status
#[utoipa::path(
    patch, path = "/api/agents/{id}/status", tag = "Agents", params(("id" = Uuid, Path)), request_body = UpdateAgentStatusRequest,
    responses((status = 200, body = AgentPublic), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, description = "Another agent's status needs agents.manage", body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn update_agent_status(
    State(pool): State<PgPool>,
    caller: Caller,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateAgentStatusRequest>,
) -> Result<Json<AgentPublic>> {
    let mut tx = pool.begin().await?;
    let current = load_agent(&mut tx, caller.tenant_id, id).await?;
    if id != caller.agent_id.as_uuid() {
        caller.require(Permission::AgentsManage)?;
    }
    store::set_online(&mut tx, caller.tenant_id, id, body.is_online).await?;
    let updated = load_agent(&mut tx, caller.tenant_id, id).await?;
    let details = json!({ "is_online": { "from": current.is_online, "to": updated.is_online } });
    store::record(&mut tx, &caller, "agent.status_changed", id, details).await?;
    tx.commit().await?;
    Ok(Json(updated))
}
