//! Messenger and Instagram events into conversations: the Page or Instagram account involved
//! (`fb-<page_id>`, `ig-<ig_user_id>`), the customer's contact (PSID or IGSID), and the one
//! conversation of that contact on that account. Customer messages are received, echoes of the
//! business's messages sent elsewhere are recorded as sent (ours are already there), and
//! receipts move our messages to delivered or read.
//!
//! The image, video, audio or file of a customer's message arrives as a CDN URL that expires:
//! it is copied into the media store before the message is recorded, under an id derived from
//! the message (so a retried payload finds the copy it already made), and the message's
//! `media_url` is then `/api/media/{id}`. A copy that fails (the CDN refuses, the file is over
//! the limit, the address is not allowed) leaves the provider's URL on the message.

use chrono::Utc;
use omnistream_commands::channels::meta::media::{
    attachment_filename, copy_attachment, FetchError,
};
use omnistream_commands::infra::media::{attachment_id, media_url, MediaError, NewMedia};
use omnistream_commands::store::ids;
use omnistream_domain::conversation::{ConversationCommand, EchoedMessage};
use omnistream_domain::{Channel, InboundContent, MessageType, TenantId};
use uuid::Uuid;

use super::{parse_messaging, MessagingEvent, MessagingKind};
use crate::channels::{provider_context, Account, CustomerMessage, Disposition, StoredPayload};
use crate::InboundProcessor;

/// The `account_key` of the account an event belongs to.
fn account_key(event: &MessagingEvent) -> String {
    match event.channel {
        Channel::Instagram => Channel::Instagram.account_key(&event.business_id),
        _ => Channel::Messenger.account_key(&event.business_id),
    }
}

/// Turns a stored Messenger or Instagram payload into contact and conversation commands.
pub(super) async fn handle(
    processor: &InboundProcessor,
    payload: StoredPayload,
) -> anyhow::Result<Disposition> {
    let events = payload.json().map(parse_messaging).unwrap_or_default();
    // A batch usually holds many events of one account: each account is looked up once.
    let mut accounts: Vec<(String, Option<Account>)> = Vec::new();
    let mut handled = 0;
    for event in events {
        if matches!(event.kind, MessagingKind::Echo { ours: true, .. }) {
            continue;
        }
        let key = account_key(&event);
        let index = match accounts.iter().position(|(known, _)| *known == key) {
            Some(index) => index,
            None => {
                let account = processor.active_account(event.channel, &key).await?;
                accounts.push((key, account));
                accounts.len() - 1
            }
        };
        let (key, account) = &accounts[index];
        let Some(account) = account else {
            tracing::info!(account_key = %key, "event for an unknown or inactive account; kept in the raw log");
            continue;
        };
        handle_event(processor, payload.id, account, event).await?;
        handled += 1;
    }
    if handled == 0 {
        return Ok(Disposition::Ignored(
            "no event for a known, active account".into(),
        ));
    }
    Ok(Disposition::Processed)
}

/// Records one event on the conversation of its customer's contact on `account`.
async fn handle_event(
    processor: &InboundProcessor,
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
        processor
            .record_contact(&context, channel, &event.customer_id, None, None)
            .await?;
    }
    match event.kind {
        MessagingKind::Customer {
            provider_message_id,
            mut content,
        } => {
            let message_id = ids::inbound_message(tenant, account.id, &provider_message_id);
            if processor.already_received(tenant, message_id).await? {
                return Ok(());
            }
            copy_media(processor, tenant, conversation_id, message_id, &mut content).await?;
            let received = CustomerMessage {
                provider_message_id,
                content,
                sender_name: None,
                sent_at: event.at,
                raw: event.raw,
            };
            let open = account.open(channel, conversation_id, contact_id, Utc::now());
            processor
                .receive_new(&context, open, message_id, received)
                .await
        }
        MessagingKind::Echo {
            provider_message_id,
            content,
            ..
        } => {
            let message_id = ids::inbound_message(tenant, account.id, &provider_message_id);
            if processor.already_received(tenant, message_id).await? {
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
            processor.execute(&context, conversation_id, command).await
        }
        MessagingKind::Receipt { status, up_to } => {
            let command = ConversationCommand::RecordReceipt {
                status,
                up_to,
                occurred_at: event.at,
            };
            processor.execute(&context, conversation_id, command).await
        }
    }
}

/// Copies the media of customer message `message_id` into the store (see the module
/// documentation) and points the content at the copy. Only a storage failure is an error
/// (the payload is retried); a download that fails leaves the provider's URL.
async fn copy_media(
    processor: &InboundProcessor,
    tenant: TenantId,
    conversation_id: Uuid,
    message_id: Uuid,
    content: &mut InboundContent,
) -> anyhow::Result<()> {
    if !matches!(
        content.message_type,
        MessageType::Image | MessageType::Video | MessageType::Audio | MessageType::Document
    ) {
        return Ok(());
    }
    let Some(media) = content.media.as_mut() else {
        return Ok(());
    };
    let Some(url) = media.url.clone() else {
        return Ok(());
    };
    let new = NewMedia {
        id: attachment_id(message_id, 0),
        tenant,
        conversation_id: Some(conversation_id),
        filename: attachment_filename(&url),
        mime_type: "application/octet-stream".to_owned(),
    };
    match copy_attachment(&processor.media, &url, new).await {
        Ok(stored) => {
            media.url = Some(media_url(stored.id));
            media.mime_type = Some(stored.mime_type);
            media.filename = Some(stored.filename);
        }
        Err(FetchError::Storage(error)) if !matches!(error, MediaError::TooLarge { .. }) => {
            return Err(error.into());
        }
        Err(error) => {
            tracing::warn!(%message_id, %error, "attachment not copied; the message keeps the provider's URL");
        }
    }
    Ok(())
}
