//! Starting a WhatsApp conversation with a customer: find (or record) the contact and open the
//! conversation on the account (reusing the one that exists: ids are deterministic). The caller
//! then queues the template message that opens it with [`super::send::queue_message`] (an agent
//! only once it sees the conversation). Agents call it through the API; campaigns will too.

use chrono::Utc;
use omnistream_domain::contact::ContactCommand;
use omnistream_domain::conversation::{ConversationCommand, OpenConversation};
use omnistream_domain::{Channel, PhoneNumber};
use uuid::Uuid;

use super::{ConversationDeps, ServiceError};
use crate::store::{ids, CommandContext, ContactService};

/// Who the conversation is with.
#[derive(Debug, Clone)]
pub enum Recipient {
    /// A WhatsApp number (a contact is recorded for it if there is none).
    Phone(PhoneNumber),
    /// An existing contact that has a WhatsApp number.
    Contact(Uuid),
}

/// The conversation opened.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    /// The new or reused conversation.
    pub conversation_id: Uuid,
    /// Its contact.
    pub contact_id: Uuid,
}

/// Opens (or reuses) the conversation of `recipient` on WhatsApp account `account_id`.
#[tracing::instrument(skip_all, fields(%account_id), err)]
pub async fn open(
    deps: &ConversationDeps,
    contacts: &ContactService,
    context: &CommandContext,
    account_id: Uuid,
    recipient: Recipient,
) -> Result<Opened, ServiceError> {
    let tenant = context.tenant_id;
    let division_id: Option<Uuid> = sqlx::query_scalar(
        "SELECT division_id FROM integration_accounts
         WHERE tenant_id = $1 AND id = $2 AND channel = 'whatsapp' AND is_active",
    )
    .bind(tenant.as_uuid())
    .bind(account_id)
    .fetch_optional(&deps.pool)
    .await?
    .ok_or(ServiceError::Unprocessable {
        code: "invalid_integration_account",
        message: "not an active WhatsApp account of this organization",
    })?;
    let contact_id = match recipient {
        Recipient::Phone(phone) => {
            let id = ids::contact(tenant, Channel::Whatsapp, phone.as_str());
            let identity = ContactCommand::RecordIdentity {
                tenant_id: tenant.as_uuid(),
                channel: Channel::Whatsapp,
                external_id: phone.to_string(),
                profile_name: None,
                phone_number: Some(phone.to_string()),
                at: Utc::now(),
            };
            contacts
                .execute(context, id, identity)
                .await
                .map_err(|error| ServiceError::Contact(error.to_string()))?;
            id
        }
        Recipient::Contact(id) => {
            let wa_id: Option<Option<String>> =
                sqlx::query_scalar("SELECT wa_id FROM contacts WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_uuid())
                    .bind(id)
                    .fetch_optional(&deps.pool)
                    .await?;
            if !matches!(wa_id, Some(Some(_))) {
                return Err(ServiceError::Unprocessable {
                    code: "invalid_contact",
                    message: "the contact does not exist or has no WhatsApp number",
                });
            }
            id
        }
    };
    let conversation_id = ids::conversation(tenant, account_id, contact_id);
    let open = OpenConversation {
        conversation_id,
        tenant_id: tenant.as_uuid(),
        channel: Channel::Whatsapp,
        integration_account_id: account_id,
        contact_id,
        division_id,
        at: Utc::now(),
    };
    deps.conversations
        .execute(context, conversation_id, ConversationCommand::Open(open))
        .await?;
    Ok(Opened {
        conversation_id,
        contact_id,
    })
}
