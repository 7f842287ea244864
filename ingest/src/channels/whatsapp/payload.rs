//! What a WhatsApp webhook carries once parsed: the batch of one POST, its changes (one business
//! number each), the customers' messages and the status reports about ours.

use chrono::{DateTime, Utc};
use omnistream_commands::infra::media::{attachment_id, media_url};
use omnistream_domain::{InboundContent, ProviderStatus};
use serde_json::Value;
use uuid::Uuid;

/// Everything one webhook POST carried.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WhatsAppBatch {
    /// The `field == "messages"` changes that held at least one usable message or status.
    pub changes: Vec<WhatsAppChange>,
    /// Entries, changes, messages and statuses not understood, as received, for the raw log.
    pub ignored: Vec<Value>,
}

/// One `entry[].changes[]` item: the traffic of one business phone number.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatsAppChange {
    /// `value.metadata.phone_number_id`: the business number the traffic belongs to.
    pub phone_number_id: String,
    /// `value.metadata.display_phone_number`.
    pub display_phone_number: Option<String>,
    /// Inbound customer messages, in payload order.
    pub messages: Vec<WhatsAppInbound>,
    /// Status reports about outbound messages, in payload order.
    pub statuses: Vec<WhatsAppStatus>,
}

/// One inbound customer message (`value.messages[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct WhatsAppInbound {
    /// `messages[].id` (the `wamid…`), the idempotency key.
    pub provider_message_id: String,
    /// `messages[].from`: the customer's `wa_id` (digits, no `+`).
    pub from: String,
    /// The customer's profile name from `value.contacts[]` whose `wa_id` equals `from`.
    pub profile_name: Option<String>,
    /// `messages[].timestamp` (unix seconds).
    pub sent_at: DateTime<Utc>,
    /// The normalised content.
    pub content: InboundContent,
    /// The message object as received.
    pub raw: Value,
}

impl WhatsAppInbound {
    /// Its content as recorded as message `message_id`. Meta keeps media behind an id (fetched
    /// with the account's token, see `omnistream_commands::channels::meta::media`): the media is
    /// named by the `/api/media/{id}` URL it is stored under when first read, its id derived
    /// from the message so every attempt names the same one. The provider's media id stays in
    /// the media description.
    pub fn content_for(&self, message_id: Uuid) -> InboundContent {
        let mut content = self.content.clone();
        if let Some(media) = content.media.as_mut() {
            if media.provider_media_id.is_some() && media.url.is_none() {
                media.url = Some(media_url(attachment_id(message_id, 0)));
            }
        }
        content
    }
}

/// One status report about an outbound message (`value.statuses[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct WhatsAppStatus {
    /// `statuses[].recipient_id`: the customer the message was sent to.
    pub recipient_id: String,
    /// The normalised status (`played` is reported as `read`).
    pub status: ProviderStatus,
    /// The status object as received.
    pub raw: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::fixtures::single;
    use serde_json::json;

    #[test]
    fn media_is_named_by_the_url_it_is_stored_under() {
        let m = single(json!({"type": "image", "image": {
            "mime_type": "image/jpeg", "sha256": "abc=", "id": "1479537139650973"
        }}));
        let message_id = Uuid::from_u128(7);
        let content = m.content_for(message_id);
        let media = content.media.expect("media");
        assert_eq!(
            media.url,
            Some(media_url(attachment_id(message_id, 0))),
            "the same on every attempt"
        );
        assert_eq!(media.provider_media_id.as_deref(), Some("1479537139650973"));
        let text = single(json!({"type": "text", "text": {"body": "hi"}}));
        assert_eq!(text.content_for(message_id), text.content);
    }
}
