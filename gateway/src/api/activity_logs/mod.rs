//! The activity log endpoint. Configuration changes write their rows with
//! [`omnistream_commands::audit::record`] (re-exported here as [`record`]) in the same
//! transaction as the change; conversation and note actions' rows are derived from their events
//! by the activity projector (`omnistream_projections::ActivityProjector`).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use omnistream_domain::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::app::AppState;
use crate::http::auth::{perm, Authorized, Caller, RequestOrigin};
use crate::http::error::{ErrorResponse, Result, Violations};
use crate::http::extract::{check_text, PageRequest, Paginated, ValidQuery, Validate};

pub use omnistream_commands::audit::{record, Activity, Actor};

/// An API caller as the actor of an activity row: its agent and the request's origin.
impl<'a> From<&'a Caller> for Actor<'a> {
    fn from(caller: &'a Caller) -> Self {
        actor(
            caller.tenant_id,
            caller.agent_id.as_uuid(),
            &caller.agent_name,
            &caller.origin,
        )
    }
}

/// Agent `agent_id` (named `agent_name`) of `tenant_id`, acting through a request from `origin`
/// (for changes made before a [`Caller`] exists: registration, login, logout).
pub(crate) fn actor<'a>(
    tenant_id: TenantId,
    agent_id: Uuid,
    agent_name: &'a str,
    origin: &'a RequestOrigin,
) -> Actor<'a> {
    Actor {
        tenant_id,
        agent_id: Some(agent_id),
        agent_name: Some(agent_name),
        ip: origin.ip.as_deref(),
        user_agent: origin.user_agent.as_deref(),
    }
}

/// One audit row.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ActivityLog {
    id: Uuid,
    agent_id: Option<Uuid>,
    agent_name: Option<String>,
    action: String,
    entity_type: String,
    entity_id: Option<String>,
    #[schema(value_type = Object)]
    details: Value,
    ip_address: Option<String>,
    user_agent: Option<String>,
    created_at: DateTime<Utc>,
}

/// Filters of `GET /api/activity-logs`. `from`/`to` take RFC 3339 or `YYYY-MM-DD` (tenant
/// timezone; a `to` date is inclusive).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityLogQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    agent_id: Option<Uuid>,
    action: Option<String>,
    entity_type: Option<String>,
    entity_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[serde(skip)]
    #[param(ignore)]
    parsed: Option<(PageRequest, Option<TimeBound>, Option<TimeBound>)>,
}

/// A `from`/`to` filter value.
#[derive(Debug, Clone)]
pub(crate) enum TimeBound {
    Instant(DateTime<Utc>),
    Date(NaiveDate),
}

pub(crate) fn parse_time_bound(
    violations: &mut Violations,
    field: &str,
    raw: &Option<String>,
) -> Option<TimeBound> {
    let raw = raw.as_deref()?.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(raw) {
        return Some(TimeBound::Instant(instant.with_timezone(&Utc)));
    }
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Some(TimeBound::Date(date));
    }
    violations.add(field, "must be an RFC 3339 timestamp or a YYYY-MM-DD date");
    None
}

impl Validate for ActivityLogQuery {
    fn validate(&mut self, violations: &mut Violations) {
        let page = PageRequest::checked(self.page, self.per_page, 20, 100, violations);
        for (field, value) in [
            ("action", &mut self.action),
            ("entity_type", &mut self.entity_type),
            ("entity_id", &mut self.entity_id),
        ] {
            if let Some(text) = value {
                check_text(violations, field, text, 0, 200);
            }
        }
        let from = parse_time_bound(violations, "from", &self.from);
        let to = parse_time_bound(violations, "to", &self.to);
        self.parsed = Some((page, from, to));
    }
}

/// Adds the time filter; dates are read in the tenant's timezone.
pub(crate) fn push_time_bound(
    query: &mut QueryBuilder<'_, Postgres>,
    column: &'static str,
    bound: &TimeBound,
    is_upper: bool,
    tenant: TenantId,
) {
    match (bound, is_upper) {
        (TimeBound::Instant(at), false) => {
            query.push(format!(" AND {column} >= ")).push_bind(*at);
        }
        (TimeBound::Instant(at), true) => {
            query.push(format!(" AND {column} <= ")).push_bind(*at);
        }
        (TimeBound::Date(date), upper) => {
            let day = if upper {
                *date + chrono::Days::new(1)
            } else {
                *date
            };
            query
                .push(format!(" AND {column} {} ", if upper { "<" } else { ">=" }))
                .push("(")
                .push_bind(day)
                .push("::timestamp AT TIME ZONE (SELECT timezone FROM tenants WHERE id = ")
                .push_bind(tenant.as_uuid())
                .push("))");
        }
    }
}

/// List activity logs
#[utoipa::path(
    get, path = "/api/activity-logs", tag = "Activity Logs",
    params(ActivityLogQuery),
    responses(
        (status = 200, description = "Newest first. Rows of conversation and note actions are derived from the conversation's events, so an action that changed nothing (assigning the current assignee) records none.", body = Paginated<ActivityLog>),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
    ),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_activity_logs(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ActivityLogsView>,
    ValidQuery(query): ValidQuery<ActivityLogQuery>,
) -> Result<Json<Paginated<ActivityLog>>> {
    let Some((page, from, to)) = query.parsed.clone() else {
        return Err(anyhow::anyhow!("query was not validated").into());
    };
    let filtered = |select: &str| {
        let mut builder = QueryBuilder::<Postgres>::new(select);
        builder
            .push(" FROM activity_logs l WHERE l.tenant_id = ")
            .push_bind(caller.tenant_id.as_uuid());
        if let Some(agent_id) = query.agent_id {
            builder.push(" AND l.agent_id = ").push_bind(agent_id);
        }
        if let Some(action) = &query.action {
            builder
                .push(" AND l.action = ")
                .push_bind(action.trim().to_owned());
        }
        if let Some(entity_type) = &query.entity_type {
            builder
                .push(" AND l.entity_type = ")
                .push_bind(entity_type.trim().to_owned());
        }
        if let Some(entity_id) = &query.entity_id {
            builder
                .push(" AND l.entity_id = ")
                .push_bind(entity_id.trim().to_owned());
        }
        if let Some(bound) = &from {
            push_time_bound(&mut builder, "l.created_at", bound, false, caller.tenant_id);
        }
        if let Some(bound) = &to {
            push_time_bound(&mut builder, "l.created_at", bound, true, caller.tenant_id);
        }
        builder
    };
    let select =
        "SELECT l.id, l.agent_id, l.agent_name, l.action, l.entity_type, l.entity_id, l.details, \
                  l.ip_address, l.user_agent, l.created_at";
    Ok(Json(
        crate::http::extract::fetch_page(
            &state.pool,
            filtered,
            select,
            "l.created_at DESC, l.id DESC",
            page,
        )
        .await?,
    ))
}

/// Routes of the Activity Logs tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_activity_logs))
}
