//! Managing one conversation: assign it, change its status, replace its tags, mark it read.
//! Each service first checks that the acting agent may see the conversation (else not found);
//! the system acts on any conversation of its tenant.

use chrono::Utc;
use omnistream_domain::conversation::{ConversationCommand, ConversationStatus};
use uuid::Uuid;

use super::transfer::ensure_active_agent;
use super::{visible_to, ConversationDeps, ServiceError};
use crate::store::CommandContext;

/// Fails with not found unless the context's agent (if any) may see conversation `id`.
pub async fn ensure_visible(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
) -> Result<(), ServiceError> {
    match &context.agent {
        Some(agent) if !visible_to(&deps.pool, context.tenant_id, agent, id).await? => {
            Err(ServiceError::NotFound)
        }
        _ => Ok(()),
    }
}

/// Assigns conversation `id` to `agent_id` (an active agent of the tenant), or unassigns it.
#[tracing::instrument(skip_all, fields(conversation_id = %id), err)]
pub async fn assign(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
    agent_id: Option<Uuid>,
) -> Result<(), ServiceError> {
    ensure_visible(deps, context, id).await?;
    if let Some(agent) = agent_id {
        ensure_active_agent(&deps.pool, context.tenant_id, agent).await?;
    }
    let command = ConversationCommand::Assign {
        agent_id,
        at: Utc::now(),
    };
    Ok(deps.conversations.execute(context, id, command).await?)
}

/// Sets conversation `id`'s status (the aggregate refuses `expired`: only expiry sets it).
#[tracing::instrument(skip_all, fields(conversation_id = %id), err)]
pub async fn change_status(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
    status: ConversationStatus,
) -> Result<(), ServiceError> {
    ensure_visible(deps, context, id).await?;
    let command = ConversationCommand::ChangeStatus {
        status,
        at: Utc::now(),
    };
    Ok(deps.conversations.execute(context, id, command).await?)
}

/// Replaces conversation `id`'s tags with `tags` (already normalised by the tag policy).
#[tracing::instrument(skip_all, fields(conversation_id = %id), err)]
pub async fn update_tags(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
    tags: Vec<String>,
) -> Result<(), ServiceError> {
    ensure_visible(deps, context, id).await?;
    let command = ConversationCommand::UpdateTags {
        tags,
        at: Utc::now(),
    };
    Ok(deps.conversations.execute(context, id, command).await?)
}

/// Marks conversation `id` read (its unread count drops to zero).
#[tracing::instrument(skip_all, fields(conversation_id = %id), err)]
pub async fn mark_read(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
) -> Result<(), ServiceError> {
    ensure_visible(deps, context, id).await?;
    let command = ConversationCommand::MarkRead { at: Utc::now() };
    Ok(deps.conversations.execute(context, id, command).await?)
}
