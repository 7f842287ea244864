//! Messenger (`object: page`) and Instagram (`object: instagram`) webhook payloads: the
//! `entry[].messaging[]` events a customer causes — text, attachments (image, video, audio,
//! file), quick replies, story replies and postbacks — normalised into [`MessagingInbound`].
//!
//! Echoes (messages the business sent itself), deliveries, reads and reactions are recognised
//! and left out for now; the payload stays in the raw inbound log.

use chrono::{DateTime, Utc};
use omnistream_domain::{Channel, InboundContent, InboundMedia, MessageType};
use serde_json::{json, Value};

/// The `object` of Messenger webhooks.
pub const MESSENGER_OBJECT: &str = "page";
/// The `object` of Instagram messaging webhooks.
pub const INSTAGRAM_OBJECT: &str = "instagram";

/// One message a customer sent to a Page or an Instagram account.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagingInbound {
    pub channel: Channel,
    /// The Page id or Instagram account id the message was sent to (`recipient.id`).
    pub business_id: String,
    /// The customer's PSID or IGSID (`sender.id`).
    pub sender_id: String,
    /// `message.mid` (or the postback's), the idempotency key.
    pub provider_message_id: String,
    pub sent_at: DateTime<Utc>,
    pub content: InboundContent,
    /// The event as received.
    pub raw: Value,
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

/// The customer messages of a Messenger or Instagram payload (nothing for other objects).
pub fn parse_messaging(payload: &Value) -> Vec<MessagingInbound> {
    let channel = match payload.get("object").and_then(Value::as_str) {
        Some(MESSENGER_OBJECT) => Channel::Messenger,
        Some(INSTAGRAM_OBJECT) => Channel::Instagram,
        _ => return Vec::new(),
    };
    let events = payload
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|entry| {
            entry
                .get("messaging")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        });
    events
        .filter_map(|event| parse_event(channel, event))
        .collect()
}

fn parse_event(channel: Channel, event: &Value) -> Option<MessagingInbound> {
    let sender_id = text(event, "/sender/id")?;
    let business_id = text(event, "/recipient/id")?;
    let sent_at = event
        .get("timestamp")
        .and_then(Value::as_i64)
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_else(Utc::now);
    let (provider_message_id, content) = if let Some(message) = event.get("message") {
        if message.get("is_echo").and_then(Value::as_bool) == Some(true)
            || message.get("is_deleted").and_then(Value::as_bool) == Some(true)
        {
            return None;
        }
        (text(message, "/mid")?, message_content(message))
    } else if let Some(postback) = event.get("postback") {
        let mid = text(postback, "/mid")
            .unwrap_or_else(|| format!("postback:{sender_id}:{}", sent_at.timestamp_millis()));
        let content = InboundContent {
            message_type: MessageType::Button,
            content: text(postback, "/title"),
            media: None,
            reply_to_provider_id: None,
            data: Some(
                json!({"postback": {"payload": postback.get("payload"), "title": postback.get("title")}}),
            ),
        };
        (mid, content)
    } else {
        return None;
    };
    Some(MessagingInbound {
        channel,
        business_id,
        sender_id,
        provider_message_id,
        sent_at,
        content,
        raw: event.clone(),
    })
}

fn message_content(message: &Value) -> InboundContent {
    let reply_to_provider_id = text(message, "/reply_to/mid");
    let mut data = serde_json::Map::new();
    if let Some(story) = message.pointer("/reply_to/story") {
        data.insert("story_reply".into(), story.clone());
    }
    if let Some(quick) = message.get("quick_reply") {
        data.insert("quick_reply".into(), quick.clone());
    }
    let attachment = message
        .get("attachments")
        .and_then(Value::as_array)
        .and_then(|a| a.first());
    let (message_type, media) = match attachment {
        Some(attachment) => {
            let kind = attachment
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let message_type = match kind {
                "image" => MessageType::Image,
                "video" => MessageType::Video,
                "audio" => MessageType::Audio,
                "file" => MessageType::Document,
                _ => {
                    // Shares, story mentions, templates, fallbacks: kept as data.
                    data.insert("attachment".into(), attachment.clone());
                    MessageType::Unsupported
                }
            };
            let media = (message_type != MessageType::Unsupported).then(|| InboundMedia {
                provider_media_id: None,
                url: text(attachment, "/payload/url"),
                mime_type: None,
                sha256: None,
                filename: None,
            });
            (message_type, media)
        }
        None if message.get("quick_reply").is_some() => (MessageType::Button, None),
        None => (MessageType::Text, None),
    };
    InboundContent {
        message_type,
        content: text(message, "/text"),
        media,
        reply_to_provider_id,
        data: (!data.is_empty()).then_some(Value::Object(data)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(messaging: Value) -> Value {
        json!({"object": "page", "entry": [{"id": "PAGE1", "time": 1700000000000_i64, "messaging": messaging}]})
    }

    #[test]
    fn texts_attachments_quick_replies_and_postbacks_are_read_and_echoes_are_not() {
        let payload = page(json!([
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000000000_i64,
             "message": {"mid": "m_1", "text": "hello"}},
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000001000_i64,
             "message": {"mid": "m_2", "attachments": [{"type": "image", "payload": {"url": "https://cdn.example/a.jpg"}}]}},
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000002000_i64,
             "message": {"mid": "m_3", "text": "Red", "quick_reply": {"payload": "COLOR_RED"}}},
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000003000_i64,
             "postback": {"mid": "m_4", "title": "Get started", "payload": "START"}},
            {"sender": {"id": "PAGE1"}, "recipient": {"id": "PSID1"}, "timestamp": 1700000004000_i64,
             "message": {"mid": "m_5", "text": "sent from the inbox app", "is_echo": true}},
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000005000_i64,
             "read": {"watermark": 1700000004000_i64}}
        ]));
        let parsed = parse_messaging(&payload);
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[0].content.content.as_deref(), Some("hello"));
        assert_eq!(parsed[0].channel, Channel::Messenger);
        assert_eq!(parsed[0].business_id, "PAGE1");
        assert_eq!(parsed[1].content.message_type, MessageType::Image);
        assert_eq!(
            parsed[1]
                .content
                .media
                .as_ref()
                .and_then(|m| m.url.as_deref()),
            Some("https://cdn.example/a.jpg")
        );
        assert_eq!(parsed[2].content.message_type, MessageType::Button);
        assert_eq!(
            parsed[2].content.data.as_ref().unwrap()["quick_reply"]["payload"],
            "COLOR_RED"
        );
        assert_eq!(parsed[3].content.message_type, MessageType::Button);
        assert_eq!(parsed[3].content.content.as_deref(), Some("Get started"));
    }

    #[test]
    fn instagram_story_replies_are_read_and_other_objects_are_not() {
        let payload = json!({"object": "instagram", "entry": [{"id": "IG1", "messaging": [
            {"sender": {"id": "IGSID1"}, "recipient": {"id": "IG1"}, "timestamp": 1700000000000_i64,
             "message": {"mid": "ig_1", "text": "love it", "reply_to": {"story": {"url": "https://cdn.example/s", "id": "S1"}}}}
        ]}]});
        let parsed = parse_messaging(&payload);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].channel, Channel::Instagram);
        assert_eq!(
            parsed[0].content.data.as_ref().unwrap()["story_reply"]["id"],
            "S1"
        );
        assert!(
            parse_messaging(&json!({"object": "whatsapp_business_account", "entry": []}))
                .is_empty()
        );
    }
}
