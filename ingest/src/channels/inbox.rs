//! The recording steps every channel's handler shares: finding the integration account a payload
//! is for, recording the customer's contact, receiving a customer's message (opening or
//! reopening its conversation) and issuing a conversation command, all with the processor's
//! services and all idempotent.

use chrono::{DateTime, Utc};
use omnistream_commands::store::{ids, CommandContext, CommandError};
use omnistream_domain::contact::ContactCommand;
use omnistream_domain::conversation::{ConversationCommand, InboundMessage, OpenConversation};
use omnistream_domain::{Channel, InboundContent, TenantId};
use uuid::Uuid;

use crate::InboundProcessor;

/// An integration account, as inbound routing needs it.
#[derive(sqlx::FromRow)]
pub(crate) struct Account {
    pub(crate) id: Uuid,
    pub(crate) tenant_id: Uuid,
    pub(crate) division_id: Option<Uuid>,
    pub(crate) is_active: bool,
}

impl Account {
    /// How a customer's first message on this account opens `conversation_id`.
    pub(crate) fn open(
        &self,
        channel: Channel,
        conversation_id: Uuid,
        contact_id: Uuid,
        at: DateTime<Utc>,
    ) -> OpenConversation {
        OpenConversation {
            conversation_id,
            tenant_id: self.tenant_id,
            channel,
            integration_account_id: self.id,
            contact_id,
            division_id: self.division_id,
            at,
        }
    }
}

/// A customer's message as a channel delivered it, before it is recorded.
pub(crate) struct CustomerMessage {
    /// The provider's id for it (wamid, mid, Message-ID): the idempotency key.
    pub(crate) provider_message_id: String,
    pub(crate) content: InboundContent,
    pub(crate) sender_name: Option<String>,
    /// When the customer sent it, per the provider.
    pub(crate) sent_at: DateTime<Utc>,
    /// The provider's payload of it, as received.
    pub(crate) raw: serde_json::Value,
}

/// Who acts for commands from a provider's payload `id` in `tenant`.
pub(crate) fn provider_context(tenant: TenantId, provider: &str, id: i64) -> CommandContext {
    CommandContext {
        tenant_id: tenant,
        actor_type: "provider",
        actor_id: Some(provider.to_owned()),
        request_id: None,
        causation_id: Some(format!("inbound_webhook:{id}")),
        ..CommandContext::system(tenant)
    }
}

impl InboundProcessor {
    /// Records a customer's message into `conversation_id` (opened or reopened as needed),
    /// unless it was already received.
    pub(crate) async fn receive(
        &self,
        context: &CommandContext,
        account: &Account,
        channel: Channel,
        conversation_id: Uuid,
        contact_id: Uuid,
        message: CustomerMessage,
    ) -> anyhow::Result<()> {
        let tenant = context.tenant_id;
        let message_id = ids::inbound_message(tenant, account.id, &message.provider_message_id);
        if self.already_received(tenant, message_id).await? {
            return Ok(());
        }
        let open = account.open(channel, conversation_id, contact_id, Utc::now());
        self.receive_new(context, open, message_id, message).await
    }

    /// Records a customer's message as `message_id` into the conversation `open` names (opened
    /// or reopened as needed), once [`Self::already_received`] has said it is new; received now
    /// (`open.at`).
    pub(crate) async fn receive_new(
        &self,
        context: &CommandContext,
        open: OpenConversation,
        message_id: Uuid,
        message: CustomerMessage,
    ) -> anyhow::Result<()> {
        let conversation_id = open.conversation_id;
        let command = ConversationCommand::ReceiveInbound {
            message: InboundMessage {
                message_id,
                provider_message_id: Some(message.provider_message_id),
                content: message.content,
                sender_name: message.sender_name,
                sent_at: message.sent_at,
                received_at: open.at,
                raw: message.raw,
            },
            open,
        };
        self.execute(context, conversation_id, command).await
    }

    /// The account of `channel` with this `account_key`, unless it is unknown or inactive.
    pub(crate) async fn active_account(
        &self,
        channel: Channel,
        key: &str,
    ) -> anyhow::Result<Option<Account>> {
        let account: Option<Account> = sqlx::query_as(
            "SELECT id, tenant_id, division_id, is_active FROM integration_accounts
             WHERE channel = $1 AND account_key = $2",
        )
        .bind(channel.as_str())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(account.filter(|a| a.is_active))
    }

    /// Records the customer's identity on `channel` on their contact (created on first sight);
    /// returns the contact's id.
    pub(crate) async fn record_contact(
        &self,
        context: &CommandContext,
        channel: Channel,
        external_id: &str,
        profile_name: Option<String>,
        phone_number: Option<String>,
    ) -> anyhow::Result<Uuid> {
        let contact_id = ids::contact(context.tenant_id, channel, external_id);
        let identity = ContactCommand::RecordIdentity {
            tenant_id: context.tenant_id.as_uuid(),
            channel,
            external_id: external_id.to_owned(),
            profile_name,
            phone_number,
            at: Utc::now(),
        };
        match self.contacts.execute(context, contact_id, identity).await {
            Ok(()) | Err(CommandError::Rule(_)) => Ok(contact_id),
            Err(other) => Err(other.into()),
        }
    }

    /// Whether the inbound message with this deterministic id is already in the read model. The
    /// aggregate remembers only recent provider ids; a much later repeat of an old message is
    /// recognised here.
    pub(crate) async fn already_received(
        &self,
        tenant: TenantId,
        message_id: Uuid,
    ) -> anyhow::Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE id = $1 AND tenant_id = $2)",
        )
        .bind(message_id)
        .bind(tenant.as_uuid())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Executes a conversation command; a rule refusal is final, so it is logged, not retried.
    pub(crate) async fn execute(
        &self,
        context: &CommandContext,
        conversation_id: Uuid,
        command: ConversationCommand,
    ) -> anyhow::Result<()> {
        match self
            .conversations
            .execute(context, conversation_id, command)
            .await
        {
            Ok(()) => Ok(()),
            // A rule refusal is final (e.g. a status for a conversation that never existed).
            Err(CommandError::Rule(rule)) => {
                tracing::info!(%conversation_id, %rule, "inbound command refused");
                Ok(())
            }
            Err(other) => Err(other.into()),
        }
    }
}
