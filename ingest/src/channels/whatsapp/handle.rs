//! WhatsApp payloads into conversations: each change belongs to the account of its business
//! number (`wa-<phone_number_id>`); a customer's message is received into the one conversation of
//! that customer's contact on that account, and a status report moves our message it names.

use omnistream_commands::store::{ids, CommandContext};
use omnistream_domain::conversation::ConversationCommand;
use omnistream_domain::{Channel, TenantId};

use super::{parse_whatsapp, WhatsAppChange, WhatsAppInbound, WhatsAppStatus};
use crate::channels::{provider_context, Account, CustomerMessage, Disposition, StoredPayload};
use crate::InboundProcessor;

/// Turns a stored WhatsApp payload into contact and conversation commands.
pub(super) async fn handle(
    processor: &InboundProcessor,
    payload: StoredPayload,
) -> anyhow::Result<Disposition> {
    let batch = payload.json().map(parse_whatsapp).unwrap_or_default();
    let mut handled = 0;
    for change in &batch.changes {
        handled += handle_change(processor, payload.id, change).await?;
    }
    if handled == 0 {
        return Ok(Disposition::Ignored(
            "nothing for a known, active account".into(),
        ));
    }
    Ok(Disposition::Processed)
}

/// Handles the messages and statuses of one business number; returns how many there were, or
/// 0 when the number's account is unknown or inactive.
async fn handle_change(
    processor: &InboundProcessor,
    id: i64,
    change: &WhatsAppChange,
) -> anyhow::Result<usize> {
    let key = Channel::Whatsapp.account_key(&change.phone_number_id);
    let Some(account) = processor.active_account(Channel::Whatsapp, &key).await? else {
        tracing::info!(phone_number_id = %change.phone_number_id, "webhook for an unknown or inactive account; kept in the raw log");
        return Ok(0);
    };
    let tenant = TenantId(account.tenant_id);
    let context = provider_context(tenant, "whatsapp", id);
    for message in &change.messages {
        receive(processor, &context, &account, message).await?;
    }
    for status in &change.statuses {
        record_status(processor, &context, &account, status).await?;
    }
    Ok(change.messages.len() + change.statuses.len())
}

/// Records the customer's contact (with their profile name and number) and receives their
/// message.
async fn receive(
    processor: &InboundProcessor,
    context: &CommandContext,
    account: &Account,
    message: &WhatsAppInbound,
) -> anyhow::Result<()> {
    let tenant = context.tenant_id;
    let contact_id = processor
        .record_contact(
            context,
            Channel::Whatsapp,
            &message.from,
            message.profile_name.clone(),
            Some(message.from.clone()),
        )
        .await?;
    let conversation_id = ids::conversation(tenant, account.id, contact_id);
    let message_id = ids::inbound_message(tenant, account.id, &message.provider_message_id);
    let received = CustomerMessage {
        provider_message_id: message.provider_message_id.clone(),
        content: message.content_for(message_id),
        sender_name: message.profile_name.clone(),
        sent_at: message.sent_at,
        raw: message.raw.clone(),
    };
    processor
        .receive(
            context,
            account,
            Channel::Whatsapp,
            conversation_id,
            contact_id,
            received,
        )
        .await
}

/// Records a status report on the conversation with its recipient.
async fn record_status(
    processor: &InboundProcessor,
    context: &CommandContext,
    account: &Account,
    status: &WhatsAppStatus,
) -> anyhow::Result<()> {
    let tenant = context.tenant_id;
    let contact_id = ids::contact(tenant, Channel::Whatsapp, &status.recipient_id);
    let conversation_id = ids::conversation(tenant, account.id, contact_id);
    let command = ConversationCommand::RecordProviderStatus(status.status.clone());
    processor.execute(context, conversation_id, command).await
}
