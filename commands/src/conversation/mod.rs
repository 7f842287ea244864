//! Application services of conversations: what HTTP handlers, workers, the automation engine
//! and AI agents all call to act on a conversation, with a [`CommandContext`] saying who acts.
//! Lookups happen here; the rules they feed live in `omnistream_domain::conversation::policy`
//! and in the aggregate.
//!
//! [`CommandContext`]: crate::store::CommandContext

pub mod bulk;
pub mod expire;
pub mod manage;
pub mod notes;
pub mod send;
pub mod start;
pub mod transfer;

use omnistream_domain::conversation::policy::visibility::{self, Placement, Viewer};
use omnistream_domain::conversation::ConversationError;
use omnistream_domain::TenantId;
use sqlx::PgPool;
use uuid::Uuid;

use crate::infra::media::{MediaError, MediaStore};
use crate::store::{AgentActor, CommandError, ConversationService};

/// What the conversation services need: the database, the conversation commands, the media
/// store.
#[derive(Clone)]
pub struct ConversationDeps {
    /// PostgreSQL (configuration tables and the read models the services look facts up in).
    pub pool: PgPool,
    /// Runs conversation commands.
    pub conversations: ConversationService,
    /// Uploaded and inbound media.
    pub media: MediaStore,
}

/// Why a conversation service did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The aggregate refused the command, or the store failed.
    #[error(transparent)]
    Command(#[from] CommandError<ConversationError>),
    /// A field of the request is invalid for this conversation.
    #[error("{field} {message}")]
    InvalidField {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        message: &'static str,
    },
    /// The request names something it may not use (a stable machine-readable `code`).
    #[error("{message}")]
    Unprocessable {
        /// e.g. `invalid_reply_to`.
        code: &'static str,
        /// For people.
        message: &'static str,
    },
    /// No such conversation, or not one the acting agent may see.
    #[error("conversation not found")]
    NotFound,
    /// The acting agent may not do this (a stable machine-readable `code`).
    #[error("{message}")]
    Forbidden {
        /// e.g. `not_note_author`.
        code: &'static str,
        /// For people.
        message: &'static str,
    },
    /// The service needs an acting agent and the context has none.
    #[error("this action needs an acting agent")]
    AgentRequired,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The media store failed.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// A contact command failed.
    #[error("contact command failed: {0}")]
    Contact(String),
}

/// Whether `agent` may see conversation `id` of `tenant` (false when there is no such
/// conversation): its placement and the agent's divisions, judged by the visibility policy.
pub async fn visible_to(
    pool: &PgPool,
    tenant: TenantId,
    agent: &AgentActor,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let placement: Option<(Option<Uuid>, Option<Uuid>)> = sqlx::query_as(
        "SELECT assigned_agent_id, division_id FROM conversations WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some((assigned_agent_id, division_id)) = placement else {
        return Ok(false);
    };
    let divisions: Vec<Uuid> =
        sqlx::query_scalar("SELECT division_id FROM agent_divisions WHERE agent_id = $1")
            .bind(agent.id)
            .fetch_all(pool)
            .await?;
    Ok(visibility::may_see(
        &Viewer::new(agent.id, &agent.permissions, &divisions),
        &Placement {
            assigned_agent_id,
            division_id,
        },
    ))
}
