//! Request and response bodies of the Roles tag, the stored role row and its API form, and the
//! checks of role names and permission codes.

use chrono::{DateTime, Utc};
use omnistream_domain::{AgentRole, Permission};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::Violations;
use crate::http::extract::{check_optional_text, check_text, nullable, present, Validate};

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

/// A `roles` row with the codes of its `role_permissions` (empty for system roles, whose
/// permissions are the domain's).
#[derive(sqlx::FromRow)]
pub(super) struct RoleRow {
    pub(super) id: Uuid,
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) is_system: bool,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) permissions: Vec<String>,
}

impl RoleRow {
    /// The API form: a system role's permissions come from [`AgentRole::permissions`], a custom
    /// role's from its stored codes (unknown codes dropped), in catalogue order.
    pub(super) fn into_api(self, agent_count: Option<i64>) -> RoleWithPermissions {
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
    pub(super) name: String,
    /// At most 500 characters.
    #[serde(default)]
    pub(super) description: Option<String>,
    /// Codes from `GET /api/permissions`.
    permissions: Vec<String>,
    /// `permissions` parsed by validation.
    #[serde(skip)]
    pub(super) parsed: Vec<Permission>,
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
    pub(super) name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub(super) description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    permissions: Option<Vec<String>>,
    /// `permissions` parsed by validation.
    #[serde(skip)]
    pub(super) parsed: Option<Vec<Permission>>,
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
