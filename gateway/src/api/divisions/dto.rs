//! Request and response bodies of the Divisions tag, and their validation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::agents::AgentPublic;
use crate::http::error::Violations;
use crate::http::extract::{check_optional_text, check_text, nullable, present, Validate};

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
    pub(super) name: String,
    /// At most 500 characters.
    #[serde(default)]
    pub(super) description: Option<String>,
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
    pub(super) name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub(super) description: Option<Option<String>>,
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
    pub(super) agent_ids: Vec<Uuid>,
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
