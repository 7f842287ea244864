//! Bulk updates: one action applied to many conversations, each on its own (one failing does
//! not stop the others). The caller iterates and reports per conversation; this service checks
//! the action once ([`check`]) and applies it to one conversation at a time ([`apply`]).

use chrono::Utc;
use omnistream_domain::conversation::policy::tags;
use omnistream_domain::conversation::{ConversationCommand, ConversationStatus};
use uuid::Uuid;

use super::transfer::ensure_active_agent;
use super::{visible_to, ConversationDeps, ServiceError};
use crate::store::CommandContext;

/// What a bulk request does to each conversation.
#[derive(Debug, Clone)]
pub enum BulkAction {
    /// Assign to this agent.
    Assign(Uuid),
    /// Remove the assignee.
    Unassign,
    /// Change the status (never to `expired`: the aggregate refuses it).
    UpdateStatus(ConversationStatus),
    /// Add these (normalised) tags.
    AddTags(Vec<String>),
    /// Remove these tags.
    RemoveTags(Vec<String>),
    /// Mark read.
    MarkRead,
}

/// Checks what does not depend on the conversation (an assignee must be an active agent of the
/// tenant), once for the whole request.
pub async fn check(
    deps: &ConversationDeps,
    context: &CommandContext,
    action: &BulkAction,
) -> Result<(), ServiceError> {
    if let BulkAction::Assign(agent) = action {
        ensure_active_agent(&deps.pool, context.tenant_id, *agent).await?;
    }
    Ok(())
}

/// Applies `action` to conversation `id`: not found unless the context's agent may see it.
#[tracing::instrument(skip_all, fields(conversation_id = %id), err)]
pub async fn apply(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
    action: &BulkAction,
) -> Result<(), ServiceError> {
    let agent = context.agent.as_ref().ok_or(ServiceError::AgentRequired)?;
    if !visible_to(&deps.pool, context.tenant_id, agent, id).await? {
        return Err(ServiceError::NotFound);
    }
    let at = Utc::now();
    let command = match action {
        BulkAction::Assign(agent_id) => ConversationCommand::Assign {
            agent_id: Some(*agent_id),
            at,
        },
        BulkAction::Unassign => ConversationCommand::Assign { agent_id: None, at },
        BulkAction::UpdateStatus(status) => ConversationCommand::ChangeStatus {
            status: *status,
            at,
        },
        BulkAction::AddTags(added) => {
            let current = current_tags(deps, context, id).await?;
            let tags = tags::add(&current, added).map_err(|_| ServiceError::InvalidField {
                field: "tags",
                message: "at most 20 tags",
            })?;
            ConversationCommand::UpdateTags { tags, at }
        }
        BulkAction::RemoveTags(removed) => {
            let current = current_tags(deps, context, id).await?;
            ConversationCommand::UpdateTags {
                tags: tags::remove(&current, removed),
                at,
            }
        }
        BulkAction::MarkRead => ConversationCommand::MarkRead { at },
    };
    deps.conversations.execute(context, id, command).await?;
    Ok(())
}

/// The conversation's tags as the inbox shows them.
async fn current_tags(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
) -> Result<Vec<String>, ServiceError> {
    sqlx::query_scalar("SELECT tags FROM conversations WHERE tenant_id = $1 AND id = $2")
        .bind(context.tenant_id.as_uuid())
        .bind(id)
        .fetch_optional(&deps.pool)
        .await?
        .ok_or(ServiceError::NotFound)
}
