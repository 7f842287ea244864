//! Messages: the value types every channel adapter and projection shares. The channel itself
//! is [`super::channel::Channel`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A string that names no variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value `{0}`")]
pub struct UnknownValue(pub String);

/// The kind of a message (contract `MessageType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    Text,
    Image,
    Video,
    Audio,
    Document,
    Sticker,
    Location,
    Contacts,
    Order,
    Reaction,
    Button,
    Interactive,
    Template,
    Unsupported,
    System,
}

impl MessageType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Text => "text",
            MessageType::Image => "image",
            MessageType::Video => "video",
            MessageType::Audio => "audio",
            MessageType::Document => "document",
            MessageType::Sticker => "sticker",
            MessageType::Location => "location",
            MessageType::Contacts => "contacts",
            MessageType::Order => "order",
            MessageType::Reaction => "reaction",
            MessageType::Button => "button",
            MessageType::Interactive => "interactive",
            MessageType::Template => "template",
            MessageType::Unsupported => "unsupported",
            MessageType::System => "system",
        }
    }

    /// Whether the type carries a media file.
    pub fn is_media(self) -> bool {
        matches!(
            self,
            MessageType::Image
                | MessageType::Video
                | MessageType::Audio
                | MessageType::Document
                | MessageType::Sticker
        )
    }
}

/// Delivery state of a message. Outbound statuses only move forward:
/// `pending < sent < delivered < read`; `failed` is final; `received` marks inbound messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Pending,
    Sent,
    Delivered,
    Read,
    Failed,
    Received,
}

impl MessageStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
            MessageStatus::Received => "received",
        }
    }

    fn rank(self) -> u8 {
        match self {
            MessageStatus::Pending => 0,
            MessageStatus::Sent => 1,
            MessageStatus::Delivered => 2,
            MessageStatus::Read => 3,
            MessageStatus::Failed => 4,
            MessageStatus::Received => 0,
        }
    }

    /// Whether an outbound message in status `self` may move to `next`: only forward, never out
    /// of `failed` or `read`, and `delivered` may be skipped.
    pub fn can_advance_to(self, next: MessageStatus) -> bool {
        if matches!(
            self,
            MessageStatus::Failed | MessageStatus::Read | MessageStatus::Received
        ) {
            return false;
        }
        match next {
            MessageStatus::Failed => true,
            MessageStatus::Received | MessageStatus::Pending => false,
            _ => next.rank() > self.rank(),
        }
    }
}

/// Media attached to an inbound message, as the provider describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InboundMedia {
    /// The provider's media id (WhatsApp `image.id`, …).
    pub provider_media_id: Option<String>,
    /// A direct URL when the provider gives one (Instagram, Messenger).
    pub url: Option<String>,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    pub filename: Option<String>,
}

/// What a customer sent, normalised from any channel's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundContent {
    pub message_type: MessageType,
    /// Text, caption, emoji of a reaction, title of a button reply…
    pub content: Option<String>,
    pub media: Option<InboundMedia>,
    /// The provider id of the message this one replies or reacts to (WhatsApp `context.id`,
    /// `reaction.message_id`).
    pub reply_to_provider_id: Option<String>,
    /// Structured content of non-text types (location, contacts, order, interactive/button reply,
    /// referral, the provider's raw type for unsupported ones).
    pub data: Option<serde_json::Value>,
}

/// Meta's standard messaging window, after which Messenger and Instagram need a message tag.
pub const STANDARD_WINDOW_HOURS: u32 = 24;

/// How long after the customer's last message a human agent may still answer on Messenger and
/// Instagram, with the `HUMAN_AGENT` tag.
pub const HUMAN_AGENT_WINDOW_DAYS: u32 = 7;

/// A Meta message tag, sent as `messaging_type: MESSAGE_TAG` with `tag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageTag {
    /// A human agent's answer between 24 hours and 7 days after the customer's last message.
    HumanAgent,
}

impl MessageTag {
    /// The wire name (`HUMAN_AGENT`).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageTag::HumanAgent => "HUMAN_AGENT",
        }
    }
}

/// How far a read or delivery receipt reaches: Messenger reports a watermark (every message
/// sent up to then), Instagram names the message read (and so every earlier one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReceiptBound {
    Watermark(DateTime<Utc>),
    Message(String),
}

/// A provider's report about an outbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderStatus {
    /// The provider message id (`wamid…`).
    pub provider_message_id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: MessageStatus,
    /// When the provider says it happened.
    pub occurred_at: DateTime<Utc>,
    /// Provider error code and title, for `failed`.
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward_and_may_skip_delivered() {
        use MessageStatus::*;
        assert!(Pending.can_advance_to(Sent));
        assert!(Sent.can_advance_to(Read));
        assert!(Sent.can_advance_to(Delivered));
        assert!(!Read.can_advance_to(Delivered));
        assert!(!Delivered.can_advance_to(Sent));
        assert!(Delivered.can_advance_to(Failed));
        assert!(!Failed.can_advance_to(Read));
        assert!(!Sent.can_advance_to(Sent));
    }
}
