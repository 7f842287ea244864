//! Request and response bodies of the Agents tag, and their validation.

use chrono::{DateTime, Utc};
use omnistream_domain::{AgentRole, EmailAddress};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::Violations;
use crate::http::extract::{check_password, check_text, nullable, present, Validate};

/// System role names, for the OpenAPI document.
#[derive(ToSchema)]
#[schema(as = AgentRole)]
#[allow(non_camel_case_types, dead_code)]
pub(super) enum AgentRoleDoc {
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

/// Body of `POST /api/agents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// 1..100 characters.
    pub(super) name: String,
    #[schema(value_type = String, format = Email)]
    pub(super) email: EmailAddress,
    /// At least 8 characters.
    pub(super) password: String,
    /// Default `agent`.
    #[serde(default)]
    #[schema(value_type = Option<AgentRoleDoc>)]
    pub(super) role: Option<AgentRole>,
    /// A custom role of the tenant.
    #[serde(default)]
    pub(super) custom_role_id: Option<Uuid>,
    #[serde(default)]
    pub(super) division_ids: Vec<Uuid>,
    #[serde(default)]
    pub(super) can_broadcast: bool,
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
    pub(super) name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Email)]
    pub(super) email: Option<EmailAddress>,
    #[serde(default, deserialize_with = "present")]
    pub(super) password: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<AgentRoleDoc>)]
    pub(super) role: Option<AgentRole>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub(super) custom_role_id: Option<Option<Uuid>>,
    /// Replaces the agent's divisions.
    #[serde(default, deserialize_with = "present")]
    pub(super) division_ids: Option<Vec<Uuid>>,
    #[serde(default, deserialize_with = "present")]
    pub(super) can_broadcast: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub(super) is_active: Option<bool>,
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
    pub(super) is_online: bool,
}

impl Validate for UpdateAgentStatusRequest {
    fn validate(&mut self, _violations: &mut Violations) {}
}

/// Filters of `GET /api/agents`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentListQuery {
    pub(super) division_id: Option<Uuid>,
    #[param(value_type = Option<String>)]
    pub(super) role: Option<AgentRole>,
    pub(super) is_online: Option<bool>,
    pub(super) is_active: Option<bool>,
    /// Matches name or email (case-insensitive substring).
    pub(super) q: Option<String>,
}

impl Validate for AgentListQuery {
    fn validate(&mut self, violations: &mut Violations) {
        if let Some(q) = &mut self.q {
            check_text(violations, "q", q, 0, 200);
        }
    }
}
