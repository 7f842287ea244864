//! Messenger (`object: page`) and Instagram (`object: instagram`) webhook payloads: the
//! `entry[].messaging[]` events, normalised into [`MessagingEvent`]s:
//! - what a customer sends — text, attachments (image, video, audio, file), shares, story
//!   replies and story mentions (text with a `media_url`), quick replies, postbacks, reactions;
//! - echoes of what the business sent (from OmniStream, recognised by our `metadata`, or from
//!   another app such as the Instagram app or the Page inbox);
//! - delivery and read receipts (Messenger's `watermark`, Instagram's `read.mid`).
//!
//! Deleted (unsent) messages and anything else are left out; the payload stays in the raw
//! inbound log.

use chrono::{DateTime, Utc};
use omnistream_commands::channels::messenger::ECHO_METADATA_PREFIX;
use omnistream_domain::{
    Channel, InboundContent, InboundMedia, MessageStatus, MessageType, ReceiptBound,
};
use serde_json::{json, Value};

/// The `object` of Messenger webhooks.
pub const MESSENGER_OBJECT: &str = "page";
/// The `object` of Instagram messaging webhooks.
pub const INSTAGRAM_OBJECT: &str = "instagram";

/// One event between a customer and a Page or Instagram account.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagingEvent {
    pub channel: Channel,
    /// The Page id or Instagram account id (`recipient.id` of a customer's message, `sender.id`
    /// of an echo).
    pub business_id: String,
    /// The customer's PSID or IGSID.
    pub customer_id: String,
    /// The provider's timestamp of the event.
    pub at: DateTime<Utc>,
    pub kind: MessagingKind,
    /// The event as received.
    pub raw: Value,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum MessagingKind {
    /// The customer sent a message (reactions and postbacks included).
    Customer {
        /// `message.mid` (or a postback's or reaction's own key): the idempotency key.
        provider_message_id: String,
        content: InboundContent,
    },
    /// The business sent a message; `ours` when OmniStream sent it (its echo names our message
    /// in `metadata`).
    Echo {
        provider_message_id: String,
        content: InboundContent,
        ours: bool,
    },
    /// The customer's app received or read the business's messages up to `up_to`.
    Receipt {
        status: MessageStatus,
        up_to: ReceiptBound,
    },
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

fn millis(value: Option<&Value>) -> Option<DateTime<Utc>> {
    value
        .and_then(Value::as_i64)
        .and_then(DateTime::from_timestamp_millis)
}

/// The events of a Messenger or Instagram payload (nothing for other objects).
pub fn parse_messaging(payload: &Value) -> Vec<MessagingEvent> {
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
        .flat_map(|event| parse_event(channel, event))
        .collect()
}

fn parse_event(channel: Channel, event: &Value) -> Vec<MessagingEvent> {
    let (Some(sender), Some(recipient)) = (text(event, "/sender/id"), text(event, "/recipient/id"))
    else {
        return Vec::new();
    };
    let at = millis(event.get("timestamp")).unwrap_or_else(Utc::now);
    let is_echo = event.pointer("/message/is_echo").and_then(Value::as_bool) == Some(true);
    let (business_id, customer_id) = if is_echo {
        (sender, recipient)
    } else {
        (recipient, sender)
    };
    let kinds = event_kinds(event, &customer_id, at);
    kinds
        .into_iter()
        .map(|kind| MessagingEvent {
            channel,
            business_id: business_id.clone(),
            customer_id: customer_id.clone(),
            at,
            kind,
            raw: event.clone(),
        })
        .collect()
}

fn event_kinds(event: &Value, customer_id: &str, at: DateTime<Utc>) -> Vec<MessagingKind> {
    if let Some(message) = event.get("message") {
        if message.get("is_deleted").and_then(Value::as_bool) == Some(true) {
            return Vec::new();
        }
        let Some(provider_message_id) = text(message, "/mid") else {
            return Vec::new();
        };
        let content = message_content(message);
        if message.get("is_echo").and_then(Value::as_bool) == Some(true) {
            let ours =
                text(message, "/metadata").is_some_and(|m| m.starts_with(ECHO_METADATA_PREFIX));
            return vec![MessagingKind::Echo {
                provider_message_id,
                content,
                ours,
            }];
        }
        return vec![MessagingKind::Customer {
            provider_message_id,
            content,
        }];
    }
    if let Some(postback) = event.get("postback") {
        let provider_message_id = text(postback, "/mid")
            .unwrap_or_else(|| format!("postback:{customer_id}:{}", at.timestamp_millis()));
        let content = InboundContent {
            message_type: MessageType::Button,
            content: text(postback, "/title"),
            media: None,
            reply_to_provider_id: None,
            data: Some(
                json!({"postback": {"payload": postback.get("payload"), "title": postback.get("title")}}),
            ),
        };
        return vec![MessagingKind::Customer {
            provider_message_id,
            content,
        }];
    }
    if let Some(reaction) = event.get("reaction") {
        let Some(mid) = text(reaction, "/mid") else {
            return Vec::new();
        };
        let removed = text(reaction, "/action").as_deref() == Some("unreact");
        let emoji = if removed {
            String::new()
        } else {
            text(reaction, "/emoji")
                .or_else(|| text(reaction, "/reaction"))
                .unwrap_or_default()
        };
        let content = InboundContent {
            message_type: MessageType::Reaction,
            content: Some(emoji),
            media: None,
            reply_to_provider_id: Some(mid.clone()),
            data: Some(json!({"reaction": reaction})),
        };
        return vec![MessagingKind::Customer {
            provider_message_id: format!("reaction:{mid}:{customer_id}:{}", at.timestamp_millis()),
            content,
        }];
    }
    if let Some(receipt) = event.get("read").or_else(|| event.get("delivery")) {
        let status = if event.get("read").is_some() {
            MessageStatus::Read
        } else {
            MessageStatus::Delivered
        };
        if let Some(watermark) = millis(receipt.get("watermark")) {
            return vec![MessagingKind::Receipt {
                status,
                up_to: ReceiptBound::Watermark(watermark),
            }];
        }
        let mids = receipt
            .get("mids")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .chain(text(receipt, "/mid"));
        return mids
            .filter(|mid| !mid.is_empty())
            .map(|mid| MessagingKind::Receipt {
                status,
                up_to: ReceiptBound::Message(mid),
            })
            .collect();
    }
    Vec::new()
}

/// Attachment types that point at Instagram or web content rather than carry media of their
/// own; they arrive as text with a `media_url` (the contract's rule for story mentions).
const LINKED_CONTENT: [&str; 6] = [
    "share",
    "story_mention",
    "ig_reel",
    "reel",
    "ig_post",
    "fallback",
];

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
                linked if LINKED_CONTENT.contains(&linked) => {
                    data.insert(
                        linked.into(),
                        attachment.get("payload").cloned().unwrap_or(Value::Null),
                    );
                    MessageType::Text
                }
                _ => {
                    // Templates, locations and anything new: kept as data.
                    data.insert("attachment".into(), attachment.clone());
                    MessageType::Unsupported
                }
            };
            let url = text(attachment, "/payload/url")
                .filter(|_| message_type != MessageType::Unsupported);
            let media = url.map(|url| InboundMedia {
                provider_media_id: None,
                url: Some(url),
                mime_type: None,
                sha256: None,
                filename: None,
            });
            (message_type, media)
        }
        None if message.get("quick_reply").is_some() => (MessageType::Button, None),
        None => (MessageType::Text, None),
    };
    // A story reply is text about the customer's view of a story: the story is its media.
    let media = media.or_else(|| {
        text(message, "/reply_to/story/url").map(|url| InboundMedia {
            provider_media_id: None,
            url: Some(url),
            mime_type: None,
            sha256: None,
            filename: None,
        })
    });
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

    fn customer(event: &MessagingEvent) -> (&str, &InboundContent) {
        match &event.kind {
            MessagingKind::Customer {
                provider_message_id,
                content,
            } => (provider_message_id, content),
            other => panic!("expected a customer message, got {other:?}"),
        }
    }

    #[test]
    fn texts_attachments_quick_replies_and_postbacks_are_customer_messages() {
        let payload = page(json!([
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000000000_i64,
             "message": {"mid": "m_1", "text": "hello"}},
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000001000_i64,
             "message": {"mid": "m_2", "attachments": [{"type": "image", "payload": {"url": "https://cdn.example/a.jpg"}}]}},
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000002000_i64,
             "message": {"mid": "m_3", "text": "Red", "quick_reply": {"payload": "COLOR_RED"}}},
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000003000_i64,
             "postback": {"mid": "m_4", "title": "Get started", "payload": "START"}},
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000004000_i64,
             "message": {"mid": "m_5", "is_deleted": true}}
        ]));
        let parsed = parse_messaging(&payload);
        assert_eq!(parsed.len(), 4);
        assert!(parsed.iter().all(|e| e.business_id == "PAGE1"
            && e.customer_id == "PSID1"
            && e.channel == Channel::Messenger));
        assert_eq!(
            customer(&parsed[0]),
            (
                "m_1",
                &InboundContent {
                    message_type: MessageType::Text,
                    content: Some("hello".into()),
                    media: None,
                    reply_to_provider_id: None,
                    data: None,
                }
            )
        );
        let (_, image) = customer(&parsed[1]);
        assert_eq!(image.message_type, MessageType::Image);
        assert_eq!(
            image.media.as_ref().and_then(|m| m.url.as_deref()),
            Some("https://cdn.example/a.jpg")
        );
        let (_, quick) = customer(&parsed[2]);
        assert_eq!(quick.message_type, MessageType::Button);
        assert_eq!(
            quick.data.as_ref().unwrap()["quick_reply"]["payload"],
            "COLOR_RED"
        );
        let (_, postback) = customer(&parsed[3]);
        assert_eq!(postback.message_type, MessageType::Button);
        assert_eq!(postback.content.as_deref(), Some("Get started"));
    }

    #[test]
    fn echoes_are_the_businesss_messages_and_ours_are_recognised() {
        let payload = page(json!([
            {"sender": {"id": "PAGE1"}, "recipient": {"id": "PSID1"}, "timestamp": 1700000004000_i64,
             "message": {"mid": "m_5", "text": "sent from the Page inbox", "is_echo": true, "app_id": 1517776481860111_i64}},
            {"sender": {"id": "PAGE1"}, "recipient": {"id": "PSID1"}, "timestamp": 1700000005000_i64,
             "message": {"mid": "m_6", "text": "ours", "is_echo": true,
                         "metadata": "omnistream:7d1f3a9e-0000-0000-0000-000000000000"}}
        ]));
        let parsed = parse_messaging(&payload);
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            (
                parsed[0].business_id.as_str(),
                parsed[0].customer_id.as_str()
            ),
            ("PAGE1", "PSID1")
        );
        let MessagingKind::Echo {
            provider_message_id,
            content,
            ours,
        } = &parsed[0].kind
        else {
            panic!("{:?}", parsed[0].kind);
        };
        assert_eq!((provider_message_id.as_str(), *ours), ("m_5", false));
        assert_eq!(content.content.as_deref(), Some("sent from the Page inbox"));
        assert!(matches!(
            parsed[1].kind,
            MessagingKind::Echo { ours: true, .. }
        ));
    }

    #[test]
    fn deliveries_and_reads_are_receipts() {
        let payload = page(json!([
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000006000_i64,
             "delivery": {"mids": ["m_5"], "watermark": 1700000005500_i64}},
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000007000_i64,
             "read": {"watermark": 1700000006500_i64}}
        ]));
        let parsed = parse_messaging(&payload);
        assert_eq!(
            parsed.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(),
            vec![
                MessagingKind::Receipt {
                    status: MessageStatus::Delivered,
                    up_to: ReceiptBound::Watermark(
                        DateTime::from_timestamp_millis(1700000005500).unwrap()
                    ),
                },
                MessagingKind::Receipt {
                    status: MessageStatus::Read,
                    up_to: ReceiptBound::Watermark(
                        DateTime::from_timestamp_millis(1700000006500).unwrap()
                    ),
                },
            ]
        );
    }

    #[test]
    fn instagram_story_replies_mentions_shares_reactions_and_reads() {
        let payload = json!({"object": "instagram", "entry": [{"id": "IG1", "messaging": [
            {"sender": {"id": "IGSID1"}, "recipient": {"id": "IG1"}, "timestamp": 1700000000000_i64,
             "message": {"mid": "ig_1", "text": "love it", "reply_to": {"story": {"url": "https://cdn.example/s", "id": "S1"}}}},
            {"sender": {"id": "IGSID1"}, "recipient": {"id": "IG1"}, "timestamp": 1700000001000_i64,
             "message": {"mid": "ig_2", "attachments": [{"type": "story_mention", "payload": {"url": "https://cdn.example/m"}}]}},
            {"sender": {"id": "IGSID1"}, "recipient": {"id": "IG1"}, "timestamp": 1700000002000_i64,
             "message": {"mid": "ig_3", "attachments": [{"type": "share", "payload": {"url": "https://cdn.example/p"}}]}},
            {"sender": {"id": "IGSID1"}, "recipient": {"id": "IG1"}, "timestamp": 1700000003000_i64,
             "reaction": {"mid": "ig_out", "action": "react", "reaction": "love", "emoji": "\u{2764}"}},
            {"sender": {"id": "IGSID1"}, "recipient": {"id": "IG1"}, "timestamp": 1700000004000_i64,
             "reaction": {"mid": "ig_out", "action": "unreact"}},
            {"sender": {"id": "IGSID1"}, "recipient": {"id": "IG1"}, "timestamp": 1700000005000_i64,
             "read": {"mid": "ig_out"}}
        ]}]});
        let parsed = parse_messaging(&payload);
        assert_eq!(parsed.len(), 6);
        assert!(parsed.iter().all(|e| e.channel == Channel::Instagram));
        let (_, story) = customer(&parsed[0]);
        assert_eq!(story.data.as_ref().unwrap()["story_reply"]["id"], "S1");
        assert_eq!(story.message_type, MessageType::Text);
        assert_eq!(
            story.media.as_ref().and_then(|m| m.url.as_deref()),
            Some("https://cdn.example/s"),
            "a story reply carries the story's URL as its media"
        );
        for (event, key, url) in [
            (&parsed[1], "story_mention", "https://cdn.example/m"),
            (&parsed[2], "share", "https://cdn.example/p"),
        ] {
            let (_, content) = customer(event);
            assert_eq!(content.message_type, MessageType::Text);
            assert_eq!(
                content.media.as_ref().and_then(|m| m.url.as_deref()),
                Some(url)
            );
            assert!(content.data.as_ref().unwrap().get(key).is_some(), "{key}");
        }
        let (react_id, reaction) = customer(&parsed[3]);
        assert_eq!(reaction.message_type, MessageType::Reaction);
        assert_eq!(reaction.content.as_deref(), Some("\u{2764}"));
        assert_eq!(reaction.reply_to_provider_id.as_deref(), Some("ig_out"));
        let (unreact_id, removed) = customer(&parsed[4]);
        assert_eq!(removed.content.as_deref(), Some(""));
        assert_ne!(react_id, unreact_id);
        assert_eq!(
            parsed[5].kind,
            MessagingKind::Receipt {
                status: MessageStatus::Read,
                up_to: ReceiptBound::Message("ig_out".into()),
            }
        );
        assert!(
            parse_messaging(&json!({"object": "whatsapp_business_account", "entry": []}))
                .is_empty()
        );
    }
}
