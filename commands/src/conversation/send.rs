//! Queue a message in a conversation: checks what the request names (the message it replies
//! to, its media), sizes the messaging window from the tenant's rule, and issues
//! `QueueOutbound`, whose aggregate decides whether the window allows it. A worker then hands
//! the message to the channel.

use chrono::Utc;
use omnistream_domain::conversation::policy::window;
use omnistream_domain::conversation::{
    ConversationCommand, ConversationError, OutboundMessage, Sender,
};
use omnistream_domain::{Channel, MessageType, TenantId};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::{visible_to, ConversationDeps, ServiceError};
use crate::infra::media::{media_url, StoredMedia};
use crate::store::{AgentActor, CommandContext, CommandError};

/// A conversation the acting agent has already been shown to see.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The conversation.
    pub id: Uuid,
    /// Its channel.
    pub channel: Channel,
}

/// A message to queue, as parsed from a request (already validated for its own shape).
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Text, a kind of media, or a template.
    pub kind: MessageType,
    /// The text, or the caption of media; empty counts as none.
    pub content: Option<String>,
    /// Stored media to attach (media kinds only).
    pub media_id: Option<Uuid>,
    /// Media by URL instead.
    pub media_url: Option<String>,
    /// The attachment's name.
    pub filename: Option<String>,
    /// Meta's template-message object, passed through.
    pub template: Option<Value>,
    /// Email only.
    pub subject: Option<String>,
    /// A message of the same conversation this replies to.
    pub reply_to_message_id: Option<String>,
}

/// What was queued: the command as issued and the stored media it sends.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// The `QueueOutbound` payload (message id, sender, content, times…).
    pub message: OutboundMessage,
    /// The stored media attached, if any.
    pub media: Option<StoredMedia>,
}

/// Queues `request` on conversation `target` for the context's agent, who is also assigned
/// the conversation if it has no assignee.
#[tracing::instrument(skip_all, fields(conversation_id = %target.id), err)]
pub async fn queue_message(
    deps: &ConversationDeps,
    context: &CommandContext,
    target: Target,
    request: NewMessage,
) -> Result<QueuedMessage, ServiceError> {
    let agent = context.agent.as_ref().ok_or(ServiceError::AgentRequired)?;
    let tenant = context.tenant_id;
    if request.subject.is_some() && target.channel != Channel::Email {
        return Err(ServiceError::InvalidField {
            field: "subject",
            message: "is only for email conversations",
        });
    }
    if let Some(reply_to) = &request.reply_to_message_id {
        if !is_message_of(&deps.pool, tenant, target.id, reply_to).await? {
            return Err(ServiceError::Unprocessable {
                code: "invalid_reply_to",
                message: "reply_to_message_id is not a message of this conversation",
            });
        }
    }
    let window = window_hours(&deps.pool, tenant, target.channel).await?;
    let media = match (request.kind.is_media(), request.media_id) {
        (true, Some(id)) => Some(media_for_message(deps, tenant, agent, target.id, id).await?),
        _ => None,
    };
    let message = OutboundMessage {
        message_id: Uuid::new_v4(),
        sender: Sender {
            sender_type: "agent".into(),
            id: Some(agent.id),
            name: Some(agent.name.clone()),
        },
        message_type: request.kind,
        content: request.content.filter(|c| !c.is_empty()),
        media_url: media
            .as_ref()
            .map(|m| media_url(m.id))
            .or(request.media_url),
        filename: request
            .filename
            .or_else(|| media.as_ref().map(|m| m.filename.clone())),
        template: request.template,
        reply_to_message_id: request.reply_to_message_id,
        subject: request.subject,
        queued_at: Utc::now(),
        window_hours: window,
        auto_assign: Some(agent.id),
    };
    deps.conversations
        .execute(
            context,
            target.id,
            ConversationCommand::QueueOutbound(message.clone()),
        )
        .await?;
    Ok(QueuedMessage { message, media })
}

/// Whether `message_id` is a message of `conversation` (looked up by primary key: a
/// conversation may hold many thousands of messages).
async fn is_message_of(
    pool: &PgPool,
    tenant: TenantId,
    conversation: Uuid,
    message_id: &str,
) -> Result<bool, sqlx::Error> {
    let Ok(message_id) = message_id.parse::<Uuid>() else {
        return Ok(false);
    };
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE id = $3 AND tenant_id = $1 AND conversation_id = $2)",
    )
    .bind(tenant.as_uuid())
    .bind(conversation)
    .bind(message_id)
    .fetch_one(pool)
    .await
}

/// The messaging window of `channel` for `tenant`: its active chat-expiration rule, judged by
/// the window policy.
pub async fn window_hours(
    pool: &PgPool,
    tenant: TenantId,
    channel: Channel,
) -> Result<Option<u32>, sqlx::Error> {
    let rule: Option<i32> = sqlx::query_scalar(
        "SELECT expiration_hours FROM chat_expiration_rules WHERE tenant_id = $1 AND channel = $2 AND is_active",
    )
    .bind(tenant.as_uuid())
    .bind(channel.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(window::window_hours(
        channel,
        rule.map(|hours| hours as u32),
    ))
}

/// The stored media `id` for a message `agent` sends on `conversation`: `invalid_media` unless
/// it is the tenant's and readable by the agent (the same answer for foreign and missing ids).
async fn media_for_message(
    deps: &ConversationDeps,
    tenant: TenantId,
    agent: &AgentActor,
    conversation: Uuid,
    id: Uuid,
) -> Result<StoredMedia, ServiceError> {
    let invalid = || ServiceError::Unprocessable {
        code: "invalid_media",
        message: "media_id is not a media file you can use",
    };
    let media = deps.media.find(tenant, id).await?.ok_or_else(invalid)?;
    // Media of the conversation being replied to (the usual case) needs no second look.
    let readable = match media.conversation_id {
        Some(owner) if owner == conversation => true,
        Some(owner) => visible_to(&deps.pool, tenant, agent, owner).await?,
        None => media.tenant_id == tenant.as_uuid(),
    };
    if readable {
        Ok(media)
    } else {
        Err(invalid())
    }
}

/// Queues failed outbound message `message_id` of conversation `conversation` again (its
/// status goes back to `pending`). Only a failed outbound message may be retried: anything
/// else is the aggregate's `MessageNotFailed`.
#[tracing::instrument(skip_all, fields(conversation_id = %conversation, %message_id), err)]
pub async fn retry(
    deps: &ConversationDeps,
    context: &CommandContext,
    conversation: Uuid,
    message_id: Uuid,
) -> Result<(), ServiceError> {
    super::manage::ensure_visible(deps, context, conversation).await?;
    let retryable: Option<bool> = sqlx::query_scalar(
        "SELECT status = 'failed' AND direction = 'outbound' FROM messages
         WHERE tenant_id = $1 AND conversation_id = $2 AND id = $3",
    )
    .bind(context.tenant_id.as_uuid())
    .bind(conversation)
    .bind(message_id)
    .fetch_optional(&deps.pool)
    .await?;
    match retryable {
        None => return Err(ServiceError::NotFound),
        Some(false) => {
            return Err(ServiceError::Command(CommandError::Rule(
                ConversationError::MessageNotFailed,
            )))
        }
        Some(true) => {}
    }
    let command = ConversationCommand::RetryOutbound {
        message_id,
        at: Utc::now(),
    };
    Ok(deps
        .conversations
        .execute(context, conversation, command)
        .await?)
}
