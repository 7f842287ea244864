//! Internal notes on a conversation: add, edit, delete. Who may change a note is the notes
//! policy's decision; this service looks up the note's author and issues the command. The notes
//! projector keeps the `notes` table.

use chrono::Utc;
use omnistream_domain::conversation::policy::notes;
use omnistream_domain::conversation::ConversationCommand;
use uuid::Uuid;

use super::manage::ensure_visible;
use super::{ConversationDeps, ServiceError};
use crate::store::CommandContext;

const NOT_AUTHOR: ServiceError = ServiceError::Forbidden {
    code: "not_note_author",
    message: "only the note's author can do this",
};

/// Adds a note with `content` (1..5000 characters, checked by the caller) for the context's
/// agent; returns its id.
#[tracing::instrument(skip_all, fields(conversation_id = %id), err)]
pub async fn add(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
    content: String,
) -> Result<Uuid, ServiceError> {
    let agent = context.agent.as_ref().ok_or(ServiceError::AgentRequired)?;
    ensure_visible(deps, context, id).await?;
    let note_id = Uuid::new_v4();
    let command = ConversationCommand::AddNote {
        note_id,
        agent_id: agent.id,
        content,
        at: Utc::now(),
    };
    deps.conversations.execute(context, id, command).await?;
    Ok(note_id)
}

/// Replaces the text of note `note_id` of conversation `id` (its author only).
#[tracing::instrument(skip_all, fields(conversation_id = %id, %note_id), err)]
pub async fn edit(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
    note_id: Uuid,
    content: String,
) -> Result<(), ServiceError> {
    let agent = context.agent.as_ref().ok_or(ServiceError::AgentRequired)?;
    ensure_visible(deps, context, id).await?;
    if !notes::may_edit(agent.id, author(deps, context, id, note_id).await?) {
        return Err(NOT_AUTHOR);
    }
    let command = ConversationCommand::EditNote {
        note_id,
        agent_id: agent.id,
        content,
        at: Utc::now(),
    };
    Ok(deps.conversations.execute(context, id, command).await?)
}

/// Deletes note `note_id` of conversation `id` (its author, or a manager).
#[tracing::instrument(skip_all, fields(conversation_id = %id, %note_id), err)]
pub async fn delete(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
    note_id: Uuid,
) -> Result<(), ServiceError> {
    let agent = context.agent.as_ref().ok_or(ServiceError::AgentRequired)?;
    ensure_visible(deps, context, id).await?;
    let author = author(deps, context, id, note_id).await?;
    if !notes::may_delete(agent.id, &agent.permissions, author) {
        return Err(NOT_AUTHOR);
    }
    let command = ConversationCommand::DeleteNote {
        note_id,
        agent_id: agent.id,
        at: Utc::now(),
    };
    Ok(deps.conversations.execute(context, id, command).await?)
}

/// The author of note `note_id` on conversation `id`, or not found.
async fn author(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
    note_id: Uuid,
) -> Result<Uuid, ServiceError> {
    sqlx::query_scalar(
        "SELECT agent_id FROM notes WHERE tenant_id = $1 AND conversation_id = $2 AND id = $3",
    )
    .bind(context.tenant_id.as_uuid())
    .bind(id)
    .bind(note_id)
    .fetch_optional(&deps.pool)
    .await?
    .ok_or(ServiceError::NotFound)
}
