//! Request and response bodies of the Auth tag, and their validation.

use chrono::{DateTime, Utc};
use omnistream_domain::EmailAddress;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::agents::AgentPublic;
use crate::api::tenants::Organization;
use crate::http::error::Violations;
use crate::http::extract::{check_password, check_text, Validate};

/// Body of `POST /api/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub(super) email: String,
    pub(super) password: String,
}

impl Validate for LoginRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(violations, "email", &mut self.email, 1, 254);
        if self.password.is_empty() {
            violations.add("password", "must not be empty");
        }
    }
}

/// Body of `POST /api/auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 1..200 characters.
    pub(super) organization_name: String,
    /// The first admin's name, 1..100 characters.
    pub(super) name: String,
    #[schema(value_type = String, format = Email)]
    pub(super) email: EmailAddress,
    /// At least 8 characters.
    pub(super) password: String,
}

impl Validate for RegisterRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(
            violations,
            "organization_name",
            &mut self.organization_name,
            1,
            200,
        );
        check_text(violations, "name", &mut self.name, 1, 100);
        check_password(violations, "password", &self.password);
    }
}

/// `LoginResponse` (register adds `organization`).
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_at: DateTime<Utc>,
    pub agent: AgentPublic,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
}

/// `GET /api/auth/token` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_at: DateTime<Utc>,
}

/// `GET /api/auth/me` response: the agent, its effective permissions and its organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    #[serde(flatten)]
    pub agent: AgentPublic,
    /// Effective permission codes.
    pub permissions: Vec<String>,
    pub organization: Organization,
}
