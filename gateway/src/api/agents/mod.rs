//! Agents tag: the people (and API keys' owners) who work a tenant's inbox.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_domain::{AgentRole, EmailAddress, Permission, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::activity::{self, Activity};
use crate::app::AppState;
use crate::auth::{password, perm, Authorized, Caller};
use crate::error::{ApiError, ErrorResponse, Result, ResultExt, Violations};
use crate::extract::{
    check_password, check_text, nullable, present, DeleteResponse, IdPath, ValidJson, ValidQuery,
    Validate,
};
use crate::roles;

/// System role names, for the OpenAPI document.
#[derive(ToSchema)]
#[schema(as = AgentRole)]
#[allow(non_camel_case_types, dead_code)]
enum AgentRoleDoc {
    admin,
    supervisor,
    agent,
}

/// `AgentPublic`: an agent as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct AgentPublic {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub email: String,
    #[schema(value_type = AgentRoleDoc)]
    pub role: String,
    pub custom_role_id: Option<Uuid>,
    /// The custom role's name, else the system role.
    pub role_name: String,
    pub division_ids: Vec<Uuid>,
    pub is_online: bool,
    pub is_active: bool,
    pub can_broadcast: bool,
    pub avatar_url: Option<String>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

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

/// Body of `POST /api/agents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// 1..100 characters.
    name: String,
    #[schema(value_type = String, format = Email)]
    email: EmailAddress,
    /// At least 8 characters.
    password: String,
    /// Default `agent`.
    #[serde(default)]
    #[schema(value_type = Option<AgentRoleDoc>)]
    role: Option<AgentRole>,
    /// A custom role of the tenant.
    #[serde(default)]
    custom_role_id: Option<Uuid>,
    #[serde(default)]
    division_ids: Vec<Uuid>,
    #[serde(default)]
    can_broadcast: bool,
}

impl Validate for CreateAgent {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(violations, "name", &mut self.name, 1, 100);
        check_password(violations, "password", &self.password);
        check_division_ids(violations, &mut self.division_ids);
    }
}

fn check_division_ids(violations: &mut Violations, ids: &mut Vec<Uuid>) {
    ids.sort();
    ids.dedup();
    if ids.len() > 100 {
        violations.add("division_ids", "must have at most 100 items");
    }
}

/// Body of `PATCH /api/agents/{id}`; every field optional, `custom_role_id: null` clears it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Email)]
    email: Option<EmailAddress>,
    #[serde(default, deserialize_with = "present")]
    password: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<AgentRoleDoc>)]
    role: Option<AgentRole>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    custom_role_id: Option<Option<Uuid>>,
    /// Replaces the agent's divisions.
    #[serde(default, deserialize_with = "present")]
    division_ids: Option<Vec<Uuid>>,
    #[serde(default, deserialize_with = "present")]
    can_broadcast: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    is_active: Option<bool>,
}

impl Validate for UpdateAgent {
    fn validate(&mut self, violations: &mut Violations) {
        if let Some(name) = &mut self.name {
            check_text(violations, "name", name, 1, 100);
        }
        if let Some(password) = &self.password {
            check_password(violations, "password", password);
        }
        if let Some(ids) = &mut self.division_ids {
            check_division_ids(violations, ids);
        }
    }
}

/// Body of `PATCH /api/agents/{id}/status`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentStatusRequest {
    is_online: bool,
}

impl Validate for UpdateAgentStatusRequest {
    fn validate(&mut self, _violations: &mut Violations) {}
}

/// Filters of `GET /api/agents`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentListQuery {
    division_id: Option<Uuid>,
    #[param(value_type = Option<String>)]
    role: Option<AgentRole>,
    is_online: Option<bool>,
    is_active: Option<bool>,
    /// Matches name or email (case-insensitive substring).
    q: Option<String>,
}

impl Validate for AgentListQuery {
    fn validate(&mut self, violations: &mut Violations) {
        if let Some(q) = &mut self.q {
            check_text(violations, "q", q, 0, 200);
        }
    }
}

/// The permissions an agent would hold with `role` and `custom_role_id`; 422 `invalid_role`
/// when the custom role is not a custom role of the tenant.
async fn granted_permissions(
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
async fn ensure_divisions_exist(
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

async fn replace_divisions(
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
    let held = granted_permissions(conn, caller.tenant_id, role, target.custom_role_id).await?;
    caller.require_all(&held).map_err(|_| ApiError::Forbidden {
        code: "forbidden",
        message: "you cannot manage an agent who holds permissions you do not hold".into(),
    })
}

/// 409 `last_admin` unless the tenant keeps another active admin besides `agent`.
/// Locks the tenant row so two concurrent demotions cannot both pass.
async fn ensure_another_admin(
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

/// Whether a loaded agent is an active admin (system role, no custom role).
fn is_active_admin(agent: &AgentPublic) -> bool {
    agent.role == "admin" && agent.custom_role_id.is_none() && agent.is_active
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

/// List all agents
#[utoipa::path(
    get, path = "/api/agents", tag = "Agents", params(AgentListQuery),
    responses((status = 200, description = "Sorted by name; deleted agents excluded", body = Vec<AgentPublic>),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_agents(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::AgentsView>,
    ValidQuery(query): ValidQuery<AgentListQuery>,
) -> Result<Json<Vec<AgentPublic>>> {
    let mut builder = QueryBuilder::<Postgres>::new(AGENT_PUBLIC_SELECT);
    builder
        .push(" AND a.tenant_id = ")
        .push_bind(caller.tenant_id.as_uuid());
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
    let agents = builder
        .build_query_as::<AgentPublic>()
        .fetch_all(&state.pool)
        .await?;
    Ok(Json(agents))
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
async fn create_agent(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::AgentsManage>,
    ValidJson(body): ValidJson<CreateAgent>,
) -> Result<(StatusCode, Json<AgentPublic>)> {
    let role = body.role.unwrap_or(AgentRole::Agent);
    let password_hash = password::hash(body.password).await?;
    let mut tx = state.pool.begin().await?;
    let granted = granted_permissions(&mut tx, caller.tenant_id, role, body.custom_role_id).await?;
    caller.require_all(&granted)?;
    ensure_divisions_exist(&mut tx, caller.tenant_id, &body.division_ids).await?;
    let id = Uuid::new_v4();
    sqlx::query(
        r#"INSERT INTO agents (id, tenant_id, name, email, password_hash, role, custom_role_id, can_broadcast)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"#,
    )
    .bind(id)
    .bind(caller.tenant_id.as_uuid())
    .bind(&body.name)
    .bind(body.email.as_str())
    .bind(&password_hash)
    .bind(role.as_str())
    .bind(body.custom_role_id)
    .bind(body.can_broadcast)
    .execute(&mut *tx)
    .await
    .on_constraint("agents_email_key", email_taken)
    .on_constraint("agents_custom_role_fkey", invalid_role)?;
    replace_divisions(&mut tx, caller.tenant_id, id, &body.division_ids).await?;
    let agent = load_agent(&mut tx, caller.tenant_id, id).await?;
    let details = json!({
        "name": agent.name, "email": agent.email, "role": agent.role, "custom_role_id": agent.custom_role_id,
        "division_ids": agent.division_ids, "can_broadcast": agent.can_broadcast,
    });
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "agent.created",
            entity_type: "agent",
            entity_id: Some(id.to_string()),
            details,
        },
    )
    .await?;
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
async fn get_agent(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::AgentsView>,
    IdPath(id): IdPath,
) -> Result<Json<AgentPublic>> {
    let mut conn = state.pool.acquire().await?;
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
async fn update_agent(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::AgentsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateAgent>,
) -> Result<Json<AgentPublic>> {
    let password_hash = match &body.password {
        Some(password) => Some(password::hash(password.clone()).await?),
        None => None,
    };
    let tenant = caller.tenant_id;
    let mut tx = state.pool.begin().await?;
    let current = load_agent(&mut tx, tenant, id).await?;
    ensure_not_more_powerful(&mut tx, &caller, &current).await?;
    let current_role: AgentRole = current.role.parse().map_err(anyhow::Error::from)?;
    let role = body.role.unwrap_or(current_role);
    let custom_role_id = body.custom_role_id.unwrap_or(current.custom_role_id);
    if body.role.is_some() || body.custom_role_id.is_some() {
        let granted = granted_permissions(&mut tx, tenant, role, custom_role_id).await?;
        caller.require_all(&granted)?;
    }
    let is_active = body.is_active.unwrap_or(current.is_active);
    let stays_admin = role == AgentRole::Admin && custom_role_id.is_none() && is_active;
    if is_active_admin(&current) && !stays_admin {
        ensure_another_admin(&mut tx, tenant, id).await?;
    }
    if let Some(ids) = &body.division_ids {
        ensure_divisions_exist(&mut tx, tenant, ids).await?;
        replace_divisions(&mut tx, tenant, id, ids).await?;
    }
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
    .bind(password_hash.as_deref())
    .bind(role.as_str())
    .bind(custom_role_id)
    .bind(body.can_broadcast)
    .bind(is_active)
    .execute(&mut *tx)
    .await
    .on_constraint("agents_email_key", email_taken)
    .on_constraint("agents_custom_role_fkey", invalid_role)?;
    if password_hash.is_some() || !is_active {
        revoke_sessions(&mut tx, id).await?;
    }
    let api_keys_revoked = match password_hash {
        Some(_) => revoke_api_keys(&mut tx, tenant, id).await?,
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
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "agent.updated",
            entity_type: "agent",
            entity_id: Some(id.to_string()),
            details: json!({ "changes": changes }),
        },
    )
    .await?;
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
async fn delete_agent(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::AgentsManage>,
    IdPath(id): IdPath,
) -> Result<Json<DeleteResponse>> {
    let tenant = caller.tenant_id;
    let mut tx = state.pool.begin().await?;
    let agent = load_agent(&mut tx, tenant, id).await?;
    if id == caller.agent_id.as_uuid() {
        return Err(ApiError::conflict(
            "cannot_delete_self",
            "you cannot delete your own account",
        ));
    }
    ensure_not_more_powerful(&mut tx, &caller, &agent).await?;
    if is_active_admin(&agent) {
        ensure_another_admin(&mut tx, tenant, id).await?;
    }
    sqlx::query("UPDATE agents SET deleted_at = now(), is_online = false, updated_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_uuid())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM agent_divisions WHERE tenant_id = $1 AND agent_id = $2")
        .bind(tenant.as_uuid())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    revoke_api_keys(&mut tx, tenant, id).await?;
    revoke_sessions(&mut tx, id).await?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "agent.deleted",
            entity_type: "agent",
            entity_id: Some(id.to_string()),
            details: json!({ "name": agent.name, "email": agent.email }),
        },
    )
    .await?;
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
async fn update_agent_status(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateAgentStatusRequest>,
) -> Result<Json<AgentPublic>> {
    let mut tx = state.pool.begin().await?;
    let current = load_agent(&mut tx, caller.tenant_id, id).await?;
    if id != caller.agent_id.as_uuid() {
        caller.require(Permission::AgentsManage)?;
    }
    sqlx::query("UPDATE agents SET is_online = $3, last_seen_at = now(), updated_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(caller.tenant_id.as_uuid())
        .bind(id)
        .bind(body.is_online)
        .execute(&mut *tx)
        .await?;
    let updated = load_agent(&mut tx, caller.tenant_id, id).await?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "agent.status_changed",
            entity_type: "agent",
            entity_id: Some(id.to_string()),
            details: json!({ "is_online": { "from": current.is_online, "to": updated.is_online } }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(updated))
}

/// Routes of the Agents tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_agents, create_agent))
        .routes(routes!(get_agent, update_agent, delete_agent))
        .routes(routes!(update_agent_status))
}
