//! Application services of contacts: what HTTP handlers, workers and the automation engine call
//! to change a contact, with a [`CommandContext`] saying who acts.

use chrono::Utc;
use omnistream_domain::contact::{ContactChanges, ContactCommand, ContactError};
use uuid::Uuid;

use crate::store::{CommandContext, CommandError, ContactService};

/// Why a contact service did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such contact in the context's tenant (the aggregate refused the command).
    #[error("contact not found: {0}")]
    NotFound(ContactError),
    /// Still conflicting after every retry, or the event store failed.
    #[error("{0}")]
    Store(String),
}

impl From<CommandError<ContactError>> for ServiceError {
    fn from(error: CommandError<ContactError>) -> Self {
        match error {
            CommandError::Rule(rule) => ServiceError::NotFound(rule),
            other => ServiceError::Store(other.to_string()),
        }
    }
}

/// Applies `changes` (already normalised: tags by the tag policy, email and phone parsed) to
/// contact `id` of the context's tenant.
#[tracing::instrument(skip_all, fields(contact_id = %id), err)]
pub async fn update(
    contacts: &ContactService,
    context: &CommandContext,
    id: Uuid,
    changes: ContactChanges,
) -> Result<(), ServiceError> {
    contacts
        .execute(
            context,
            id,
            ContactCommand::Update {
                changes,
                at: Utc::now(),
            },
        )
        .await?;
    Ok(())
}
