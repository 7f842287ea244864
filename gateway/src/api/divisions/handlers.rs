//! The handlers of the Divisions tag: each parses, calls [`super::store`] inside one transaction
//! (the row and its activity row together), and maps the result.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::json;
use sqlx::PgPool;

use super::dto::*;
use super::store::{self, division_agents, load_division};
use crate::api::agents::AgentPublic;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ErrorResponse, Result};
use crate::http::extract::{DeleteResponse, IdPath, ValidJson};

/// List divisions
#[utoipa::path(
    get, path = "/api/divisions", tag = "Divisions",
    responses((status = 200, description = "Sorted by name", body = Vec<DivisionWithCount>),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_divisions(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
) -> Result<Json<Vec<DivisionWithCount>>> {
    Ok(Json(store::list(&pool, caller.tenant_id).await?))
}

/// Create a division
#[utoipa::path(
    post, path = "/api/divisions", tag = "Divisions", request_body = CreateDivision,
    responses((status = 201, body = Division), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 409, description = "division_name_taken", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn create_division(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    ValidJson(body): ValidJson<CreateDivision>,
) -> Result<(StatusCode, Json<Division>)> {
    let mut tx = pool.begin().await?;
    let division = store::insert(&mut tx, caller.tenant_id, &body).await?;
    let details = json!({ "name": division.name, "description": division.description });
    store::record(&mut tx, &caller, "division.created", division.id, details).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(division)))
}

/// Get a division with agents
#[utoipa::path(
    get, path = "/api/divisions/{id}", tag = "Divisions", params(("id" = Uuid, Path)),
    responses((status = 200, body = DivisionWithAgents), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn get_division(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    IdPath(id): IdPath,
) -> Result<Json<DivisionWithAgents>> {
    let mut conn = pool.acquire().await?;
    let division = load_division(&mut conn, caller.tenant_id, id).await?;
    let agents = division_agents(&mut conn, caller.tenant_id, id).await?;
    Ok(Json(DivisionWithAgents {
        division,
        agent_count: agents.len() as i64,
        agents,
    }))
}

/// Update a division
#[utoipa::path(
    patch, path = "/api/divisions/{id}", tag = "Divisions", params(("id" = Uuid, Path)), request_body = UpdateDivision,
    responses((status = 200, body = Division), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 409, description = "division_name_taken", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn update_division(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateDivision>,
) -> Result<Json<Division>> {
    let mut tx = pool.begin().await?;
    let before = load_division(&mut tx, caller.tenant_id, id).await?;
    let division = store::update(&mut tx, caller.tenant_id, id, &body).await?;
    let details = json!({
        "name": { "from": before.name, "to": division.name },
        "description": { "from": before.description, "to": division.description },
    });
    store::record(&mut tx, &caller, "division.updated", id, details).await?;
    tx.commit().await?;
    Ok(Json(division))
}

/// Delete a division
#[utoipa::path(
    delete, path = "/api/divisions/{id}", tag = "Divisions", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Memberships are removed", body = DeleteResponse), (status = 400, body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn delete_division(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    IdPath(id): IdPath,
) -> Result<Json<DeleteResponse>> {
    let mut tx = pool.begin().await?;
    let division = load_division(&mut tx, caller.tenant_id, id).await?;
    store::delete(&mut tx, caller.tenant_id, id).await?;
    let details = json!({ "name": division.name });
    store::record(&mut tx, &caller, "division.deleted", id, details).await?;
    tx.commit().await?;
    Ok(Json(DeleteResponse {
        message: "division deleted".into(),
        id,
    }))
}

/// List agents in a division
#[utoipa::path(
    get, path = "/api/divisions/{id}/agents", tag = "Divisions", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<AgentPublic>), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_division_agents(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    IdPath(id): IdPath,
) -> Result<Json<Vec<AgentPublic>>> {
    let mut conn = pool.acquire().await?;
    load_division(&mut conn, caller.tenant_id, id).await?;
    Ok(Json(
        division_agents(&mut conn, caller.tenant_id, id).await?,
    ))
}

/// Assign agents to a division
#[utoipa::path(
    post, path = "/api/divisions/{id}/agents", tag = "Divisions", params(("id" = Uuid, Path)), request_body = AgentIdsRequest,
    responses((status = 200, description = "Idempotent; existing members are not counted", body = AgentsAdded),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse),
              (status = 422, description = "invalid_agent: unknown or inactive agent; nothing applied", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn add_division_agents(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<AgentIdsRequest>,
) -> Result<Json<AgentsAdded>> {
    let mut tx = pool.begin().await?;
    load_division(&mut tx, caller.tenant_id, id).await?;
    let added = store::add_agents(&mut tx, caller.tenant_id, id, &body.agent_ids).await?;
    let details = json!({ "agent_ids": body.agent_ids, "added": added });
    store::record(&mut tx, &caller, "division.agents_added", id, details).await?;
    tx.commit().await?;
    Ok(Json(AgentsAdded {
        message: "agents assigned".into(),
        added,
    }))
}

/// Remove agents from a division
#[utoipa::path(
    delete, path = "/api/divisions/{id}/agents", tag = "Divisions", params(("id" = Uuid, Path)), request_body = AgentIdsRequest,
    responses((status = 200, description = "Ids that are not members are ignored", body = AgentsRemoved),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn remove_division_agents(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<AgentIdsRequest>,
) -> Result<Json<AgentsRemoved>> {
    let mut tx = pool.begin().await?;
    load_division(&mut tx, caller.tenant_id, id).await?;
    let removed = store::remove_agents(&mut tx, caller.tenant_id, id, &body.agent_ids).await?;
    let details = json!({ "agent_ids": body.agent_ids, "removed": removed });
    store::record(&mut tx, &caller, "division.agents_removed", id, details).await?;
    tx.commit().await?;
    Ok(Json(AgentsRemoved {
        message: "agents removed".into(),
        removed,
    }))
}
