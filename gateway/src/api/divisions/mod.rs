//! Divisions tag: teams of agents that conversations can be routed to.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_domain::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::api::activity_logs::{self as activity, Activity};
use crate::api::agents::{AgentPublic, AGENT_PUBLIC_SELECT};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result, ResultExt, Violations};
use crate::http::extract::{
    check_optional_text, check_text, nullable, present, DeleteResponse, IdPath, ValidJson, Validate,
};

/// `Division`.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Division {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `DivisionWithCount`: a division and how many live agents it has.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct DivisionWithCount {
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub division: Division,
    pub agent_count: i64,
}

/// A division with its agents.
#[derive(Debug, Serialize, ToSchema)]
pub struct DivisionWithAgents {
    #[serde(flatten)]
    pub division: Division,
    pub agent_count: i64,
    pub agents: Vec<AgentPublic>,
}

/// Body of `POST /api/divisions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDivision {
    /// 1..100, unique per tenant (case-insensitive).
    name: String,
    /// At most 500 characters.
    #[serde(default)]
    description: Option<String>,
}

impl Validate for CreateDivision {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(violations, "name", &mut self.name, 1, 100);
        check_optional_text(violations, "description", &mut self.description, 500);
    }
}

/// Body of `PATCH /api/divisions/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDivision {
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
}

impl Validate for UpdateDivision {
    fn validate(&mut self, violations: &mut Violations) {
        if let Some(name) = &mut self.name {
            check_text(violations, "name", name, 1, 100);
        }
        if let Some(description) = &mut self.description {
            check_optional_text(violations, "description", description, 500);
        }
    }
}

/// `{agent_ids}` of the membership endpoints.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentIdsRequest {
    /// 1..100 agent ids.
    agent_ids: Vec<Uuid>,
}

impl Validate for AgentIdsRequest {
    fn validate(&mut self, violations: &mut Violations) {
        if self.agent_ids.is_empty() || self.agent_ids.len() > 100 {
            violations.add("agent_ids", "must have between 1 and 100 items");
        }
        self.agent_ids.sort();
        self.agent_ids.dedup();
    }
}

/// Result of adding members.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentsAdded {
    pub message: String,
    /// Agents that were not members before.
    pub added: i64,
}

/// Result of removing members.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentsRemoved {
    pub message: String,
    /// Agents that were members.
    pub removed: i64,
}

fn name_taken() -> ApiError {
    ApiError::conflict(
        "division_name_taken",
        "a division with this name already exists",
    )
}

async fn load_division(conn: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<Division> {
    sqlx::query_as("SELECT id, name, description, created_at, updated_at FROM divisions WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_uuid())
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(ApiError::NotFound)
}

async fn division_agents(
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

/// List divisions
#[utoipa::path(
    get, path = "/api/divisions", tag = "Divisions",
    responses((status = 200, description = "Sorted by name", body = Vec<DivisionWithCount>),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_divisions(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
) -> Result<Json<Vec<DivisionWithCount>>> {
    let rows = sqlx::query_as(
        r#"SELECT d.id, d.name, d.description, d.created_at, d.updated_at,
                  (SELECT count(*) FROM agent_divisions ad JOIN agents a ON a.id = ad.agent_id
                    WHERE ad.division_id = d.id AND a.deleted_at IS NULL) AS agent_count
           FROM divisions d WHERE d.tenant_id = $1 ORDER BY lower(d.name), d.id"#,
    )
    .bind(caller.tenant_id.as_uuid())
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}

/// Create a division
#[utoipa::path(
    post, path = "/api/divisions", tag = "Divisions", request_body = CreateDivision,
    responses((status = 201, body = Division), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 409, description = "division_name_taken", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn create_division(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    ValidJson(body): ValidJson<CreateDivision>,
) -> Result<(StatusCode, Json<Division>)> {
    let mut tx = state.pool.begin().await?;
    let division: Division = sqlx::query_as(
        "INSERT INTO divisions (id, tenant_id, name, description) VALUES ($1, $2, $3, $4)
         RETURNING id, name, description, created_at, updated_at",
    )
    .bind(Uuid::new_v4())
    .bind(caller.tenant_id.as_uuid())
    .bind(&body.name)
    .bind(&body.description)
    .fetch_one(&mut *tx)
    .await
    .on_constraint("divisions_tenant_name_key", name_taken)?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "division.created",
            entity_type: "division",
            entity_id: Some(division.id.to_string()),
            details: json!({ "name": division.name, "description": division.description }),
        },
    )
    .await?;
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
async fn get_division(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    IdPath(id): IdPath,
) -> Result<Json<DivisionWithAgents>> {
    let mut conn = state.pool.acquire().await?;
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
async fn update_division(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateDivision>,
) -> Result<Json<Division>> {
    let mut tx = state.pool.begin().await?;
    let before = load_division(&mut tx, caller.tenant_id, id).await?;
    let division: Division = sqlx::query_as(
        "UPDATE divisions SET name = COALESCE($3, name), description = CASE WHEN $4 THEN $5 ELSE description END, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 RETURNING id, name, description, created_at, updated_at",
    )
    .bind(caller.tenant_id.as_uuid())
    .bind(id)
    .bind(body.name.as_deref())
    .bind(body.description.is_some())
    .bind(body.description.clone().flatten())
    .fetch_one(&mut *tx)
    .await
    .on_constraint("divisions_tenant_name_key", name_taken)?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "division.updated",
            entity_type: "division",
            entity_id: Some(id.to_string()),
            details: json!({
                "name": { "from": before.name, "to": division.name },
                "description": { "from": before.description, "to": division.description },
            }),
        },
    )
    .await?;
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
async fn delete_division(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    IdPath(id): IdPath,
) -> Result<Json<DeleteResponse>> {
    let mut tx = state.pool.begin().await?;
    let division = load_division(&mut tx, caller.tenant_id, id).await?;
    sqlx::query("DELETE FROM divisions WHERE tenant_id = $1 AND id = $2")
        .bind(caller.tenant_id.as_uuid())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "division.deleted",
            entity_type: "division",
            entity_id: Some(id.to_string()),
            details: json!({ "name": division.name }),
        },
    )
    .await?;
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
async fn list_division_agents(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    IdPath(id): IdPath,
) -> Result<Json<Vec<AgentPublic>>> {
    let mut conn = state.pool.acquire().await?;
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
async fn add_division_agents(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<AgentIdsRequest>,
) -> Result<Json<AgentsAdded>> {
    let tenant = caller.tenant_id.as_uuid();
    let mut tx = state.pool.begin().await?;
    load_division(&mut tx, caller.tenant_id, id).await?;
    let usable: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM agents WHERE tenant_id = $1 AND id = ANY($2) AND is_active AND deleted_at IS NULL",
    )
    .bind(tenant)
    .bind(&body.agent_ids)
    .fetch_one(&mut *tx)
    .await?;
    if usable != body.agent_ids.len() as i64 {
        return Err(ApiError::unprocessable(
            "invalid_agent",
            "agent_ids names an unknown or inactive agent",
        ));
    }
    let added = sqlx::query(
        "INSERT INTO agent_divisions (tenant_id, agent_id, division_id) SELECT $1, unnest($2::uuid[]), $3 ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(&body.agent_ids)
    .bind(id)
    .execute(&mut *tx)
    .await
    .on_constraint("agent_divisions_agent_fkey", || {
        ApiError::unprocessable("invalid_agent", "agent_ids names an unknown or inactive agent")
    })
    .on_constraint("agent_divisions_division_fkey", || ApiError::NotFound)?
    .rows_affected() as i64;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "division.agents_added",
            entity_type: "division",
            entity_id: Some(id.to_string()),
            details: json!({ "agent_ids": body.agent_ids, "added": added }),
        },
    )
    .await?;
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
async fn remove_division_agents(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::DivisionsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<AgentIdsRequest>,
) -> Result<Json<AgentsRemoved>> {
    let mut tx = state.pool.begin().await?;
    load_division(&mut tx, caller.tenant_id, id).await?;
    let removed = sqlx::query("DELETE FROM agent_divisions WHERE tenant_id = $1 AND division_id = $2 AND agent_id = ANY($3)")
        .bind(caller.tenant_id.as_uuid())
        .bind(id)
        .bind(&body.agent_ids)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "division.agents_removed",
            entity_type: "division",
            entity_id: Some(id.to_string()),
            details: json!({ "agent_ids": body.agent_ids, "removed": removed }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(AgentsRemoved {
        message: "agents removed".into(),
        removed,
    }))
}

/// Routes of the Divisions tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_divisions, create_division))
        .routes(routes!(get_division, update_division, delete_division))
        .routes(routes!(
            list_division_agents,
            add_division_agents,
            remove_division_agents
        ))
}
