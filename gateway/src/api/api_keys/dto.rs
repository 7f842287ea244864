//! Request and response bodies of the API Keys tag, and their validation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::Violations;
use crate::http::extract::{check_text, Validate};

/// `ApiKey` (never the key itself).
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// First 12 characters of the key, e.g. `osk_AbCd1234`.
    pub prefix: String,
    pub agent_id: Uuid,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// `ApiKeyCreateResponse`: the key, shown only this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreateResponse {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The full key. Store it now: it is never shown again.
    pub key: String,
}

/// Body of `POST /api/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// 1..100 characters.
    pub(super) name: String,
    /// Optional; must be in the future.
    #[serde(default)]
    pub(super) expires_at: Option<DateTime<Utc>>,
}

impl Validate for CreateApiKeyRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(violations, "name", &mut self.name, 1, 100);
        if self.expires_at.is_some_and(|at| at <= Utc::now()) {
            violations.add("expires_at", "must be in the future");
        }
    }
}
