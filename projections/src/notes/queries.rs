//! Reads of the notes read model: a conversation's notes, and one note, with their authors'
//! names.

use chrono::{DateTime, Utc};
use omnistream_domain::TenantId;
use sqlx::PgExecutor;
use uuid::Uuid;

/// A note, with its author's name.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct NoteRow {
    /// The note.
    pub id: Uuid,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// Its author.
    pub agent_id: Uuid,
    /// What it says.
    pub content: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it was last edited.
    pub updated_at: DateTime<Utc>,
    /// The author's name (empty when the agent is gone).
    pub agent_name: String,
}

const NOTE_SELECT: &str = "SELECT n.id, n.conversation_id, n.agent_id, n.content, n.created_at, n.updated_at, \
    COALESCE(a.name, '') AS agent_name FROM notes n LEFT JOIN agents a ON a.id = n.agent_id AND a.tenant_id = n.tenant_id";

/// The notes of conversation `conversation` of `tenant`, oldest first. The caller checks that
/// the conversation is visible.
#[tracing::instrument(skip(executor), level = "debug", err)]
pub async fn notes_of(
    executor: impl PgExecutor<'_>,
    tenant: TenantId,
    conversation: Uuid,
) -> Result<Vec<NoteRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{NOTE_SELECT} WHERE n.tenant_id = $1 AND n.conversation_id = $2 ORDER BY n.created_at, n.id"
    ))
    .bind(tenant.as_uuid())
    .bind(conversation)
    .fetch_all(executor)
    .await
}

/// Note `note` of conversation `conversation` of `tenant`.
#[tracing::instrument(skip(executor), level = "debug", err)]
pub async fn find(
    executor: impl PgExecutor<'_>,
    tenant: TenantId,
    conversation: Uuid,
    note: Uuid,
) -> Result<Option<NoteRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{NOTE_SELECT} WHERE n.tenant_id = $1 AND n.conversation_id = $2 AND n.id = $3"
    ))
    .bind(tenant.as_uuid())
    .bind(conversation)
    .bind(note)
    .fetch_optional(executor)
    .await
}
