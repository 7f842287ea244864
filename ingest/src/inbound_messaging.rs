//! Messenger and Instagram messages into conversations: the Page or Instagram account they were
//! sent to (`fb-<page_id>`, `ig-<ig_user_id>`), the customer's contact (PSID or IGSID), and the
//! one conversation of that contact on that account.

use omnistream_commands::service::ids;
use omnistream_domain::{Channel, TenantId};

use crate::meta::{parse_messaging, MessagingInbound};
use crate::processor::{provider_context, Account, CustomerMessage, Disposition, InboundProcessor};

/// The `account_key` of the account a message was sent to.
fn account_key(message: &MessagingInbound) -> String {
    match message.channel {
        Channel::Instagram => format!("ig-{}", message.business_id),
        _ => format!("fb-{}", message.business_id),
    }
}

impl InboundProcessor {
    /// Turns a stored Messenger or Instagram payload into contact and conversation commands.
    pub(crate) async fn process_messaging(
        &self,
        id: i64,
        payload: &serde_json::Value,
    ) -> anyhow::Result<Disposition> {
        let messages = parse_messaging(payload);
        let mut handled = 0;
        for message in &messages {
            let account: Option<Account> = sqlx::query_as(
                "SELECT id, tenant_id, division_id, is_active FROM integration_accounts
                 WHERE channel = $1 AND account_key = $2",
            )
            .bind(message.channel.as_str())
            .bind(account_key(message))
            .fetch_optional(&self.pool)
            .await?;
            let Some(account) = account.filter(|a| a.is_active) else {
                tracing::info!(account_key = %account_key(message), "message for an unknown or inactive account; kept in the raw log");
                continue;
            };
            self.messaging_inbound(id, &account, message).await?;
            handled += 1;
        }
        if handled == 0 {
            return Ok(Disposition::Ignored(
                "no customer message for a known, active account".into(),
            ));
        }
        Ok(Disposition::Processed)
    }

    async fn messaging_inbound(
        &self,
        id: i64,
        account: &Account,
        message: &MessagingInbound,
    ) -> anyhow::Result<()> {
        let tenant = TenantId(account.tenant_id);
        let context = provider_context(tenant, message.channel.as_str(), id);
        let contact_id = self
            .record_contact(&context, message.channel, &message.sender_id, None, None)
            .await?;
        let conversation_id = ids::conversation(tenant, account.id, contact_id);
        let received = CustomerMessage {
            provider_message_id: message.provider_message_id.clone(),
            content: message.content.clone(),
            sender_name: None,
            sent_at: message.sent_at,
            raw: message.raw.clone(),
        };
        self.receive(
            &context,
            account,
            message.channel,
            conversation_id,
            contact_id,
            received,
        )
        .await
    }
}
