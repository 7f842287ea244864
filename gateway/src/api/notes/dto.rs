//! Request and response bodies of the Notes tag, and their validation.

use chrono::{DateTime, Utc};
use omnistream_projections::notes::queries::NoteRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::Violations;
use crate::http::extract::{check_text, Validate};

/// `NoteResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoteResponse {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub agent_id: Uuid,
    pub content: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub agent_name: String,
}

impl From<NoteRow> for NoteResponse {
    fn from(row: NoteRow) -> Self {
        Self {
            id: row.id,
            conversation_id: row.conversation_id,
            agent_id: row.agent_id,
            content: row.content,
            created_at: row.created_at,
            updated_at: row.updated_at,
            agent_name: row.agent_name,
        }
    }
}

/// `CreateNote` and `UpdateNote`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// 1..5000 characters.
    pub(super) content: String,
}

impl Validate for NoteRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(violations, "content", &mut self.content, 1, 5000);
    }
}
