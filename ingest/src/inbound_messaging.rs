//! Messenger and Instagram events into conversations: the Page or Instagram account involved
//! (`fb-<page_id>`, `ig-<ig_user_id>`), the customer's contact (PSID or IGSID), and the one
//! conversation of that contact on that account. Customer messages are received, echoes of the
//! business's messages sent elsewhere are recorded as sent (ours are already there), and
//! receipts move our messages to delivered or read.

use omnistream_commands::service::ids;
use omnistream_domain::conversation::{ConversationCommand, EchoedMessage};
use omnistream_domain::{Channel, TenantId};

use crate::meta::{parse_messaging, MessagingEvent, MessagingKind};
use crate::processor::{provider_context, Account, CustomerMessage, Disposition, InboundProcessor};

/// The `account_key` of the account an event belongs to.
fn account_key(event: &MessagingEvent) -> String {
    match event.channel {
        Channel::Instagram => format!("ig-{}", event.business_id),
        _ => format!("fb-{}", event.business_id),
    }
}

impl InboundProcessor {
    /// Turns a stored Messenger or Instagram payload into contact and conversation commands.
    pub(crate) async fn process_messaging(
        &self,
        id: i64,
        payload: &serde_json::Value,
    ) -> anyhow::Result<Disposition> {
        let events = parse_messaging(payload);
        let mut handled = 0;
        for event in &events {
            if matches!(event.kind, MessagingKind::Echo { ours: true, .. }) {
                continue;
            }
            let account: Option<Account> = sqlx::query_as(
                "SELECT id, tenant_id, division_id, is_active FROM integration_accounts
                 WHERE channel = $1 AND account_key = $2",
            )
            .bind(event.channel.as_str())
            .bind(account_key(event))
            .fetch_optional(&self.pool)
            .await?;
            let Some(account) = account.filter(|a| a.is_active) else {
                tracing::info!(account_key = %account_key(event), "event for an unknown or inactive account; kept in the raw log");
                continue;
            };
            self.messaging_event(id, &account, event).await?;
            handled += 1;
        }
        if handled == 0 {
            return Ok(Disposition::Ignored(
                "no event for a known, active account".into(),
            ));
        }
        Ok(Disposition::Processed)
    }

    async fn messaging_event(
        &self,
        id: i64,
        account: &Account,
        event: &MessagingEvent,
    ) -> anyhow::Result<()> {
        let tenant = TenantId(account.tenant_id);
        let context = provider_context(tenant, event.channel.as_str(), id);
        let contact_id = ids::contact(tenant, event.channel, &event.customer_id);
        let conversation_id = ids::conversation(tenant, account.id, contact_id);
        match &event.kind {
            MessagingKind::Customer {
                provider_message_id,
                content,
            } => {
                self.record_contact(&context, event.channel, &event.customer_id, None, None)
                    .await?;
                let received = CustomerMessage {
                    provider_message_id: provider_message_id.clone(),
                    content: content.clone(),
                    sender_name: None,
                    sent_at: event.at,
                    raw: event.raw.clone(),
                };
                self.receive(
                    &context,
                    account,
                    event.channel,
                    conversation_id,
                    contact_id,
                    received,
                )
                .await
            }
            MessagingKind::Echo {
                provider_message_id,
                content,
                ..
            } => {
                self.record_contact(&context, event.channel, &event.customer_id, None, None)
                    .await?;
                let message_id = ids::inbound_message(tenant, account.id, provider_message_id);
                if self.already_received(tenant, message_id).await? {
                    return Ok(());
                }
                let command = ConversationCommand::RecordEcho {
                    open: account.open(event.channel, conversation_id, contact_id, event.at),
                    message: EchoedMessage {
                        message_id,
                        provider_message_id: provider_message_id.clone(),
                        content: content.clone(),
                        sent_at: event.at,
                        raw: event.raw.clone(),
                    },
                };
                self.execute(&context, conversation_id, command).await
            }
            MessagingKind::Receipt { status, up_to } => {
                let command = ConversationCommand::RecordReceipt {
                    status: *status,
                    up_to: up_to.clone(),
                    occurred_at: event.at,
                };
                self.execute(&context, conversation_id, command).await
            }
        }
    }
}
