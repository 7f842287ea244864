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
        // A batch usually holds many events of one account: each account is looked up once.
        let mut accounts: Vec<(String, Option<Account>)> = Vec::new();
        let mut handled = 0;
        for event in parse_messaging(payload) {
            if matches!(event.kind, MessagingKind::Echo { ours: true, .. }) {
                continue;
            }
            let key = account_key(&event);
            let index = match accounts.iter().position(|(known, _)| *known == key) {
                Some(index) => index,
                None => {
                    let account = self.active_account(event.channel, &key).await?;
                    accounts.push((key, account));
                    accounts.len() - 1
                }
            };
            let (key, account) = &accounts[index];
            let Some(account) = account else {
                tracing::info!(account_key = %key, "event for an unknown or inactive account; kept in the raw log");
                continue;
            };
            self.messaging_event(id, account, event).await?;
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
        event: MessagingEvent,
    ) -> anyhow::Result<()> {
        let tenant = TenantId(account.tenant_id);
        let channel = event.channel;
        let context = provider_context(tenant, channel.as_str(), id);
        let contact_id = ids::contact(tenant, channel, &event.customer_id);
        let conversation_id = ids::conversation(tenant, account.id, contact_id);
        if !matches!(event.kind, MessagingKind::Receipt { .. }) {
            self.record_contact(&context, channel, &event.customer_id, None, None)
                .await?;
        }
        match event.kind {
            MessagingKind::Customer {
                provider_message_id,
                content,
            } => {
                let received = CustomerMessage {
                    provider_message_id,
                    content,
                    sender_name: None,
                    sent_at: event.at,
                    raw: event.raw,
                };
                self.receive(
                    &context,
                    account,
                    channel,
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
                let message_id = ids::inbound_message(tenant, account.id, &provider_message_id);
                if self.already_received(tenant, message_id).await? {
                    return Ok(());
                }
                let command = ConversationCommand::RecordEcho {
                    open: account.open(channel, conversation_id, contact_id, event.at),
                    message: EchoedMessage {
                        message_id,
                        provider_message_id,
                        content,
                        sent_at: event.at,
                        raw: event.raw,
                    },
                };
                self.execute(&context, conversation_id, command).await
            }
            MessagingKind::Receipt { status, up_to } => {
                let command = ConversationCommand::RecordReceipt {
                    status,
                    up_to,
                    occurred_at: event.at,
                };
                self.execute(&context, conversation_id, command).await
            }
        }
    }
}
