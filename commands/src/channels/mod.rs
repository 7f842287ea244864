//! Channel adapters: how one queued message is handed to its channel's real API. The outbound
//! sender loads the message and its conversation's context once, finds the adapter of the
//! conversation's channel and turns what the adapter reports into `MarkSent`/`MarkFailed`
//! commands or a retry.

pub mod email;
pub mod instagram;
pub mod messenger;
pub mod meta;
pub mod outbound;
pub mod whatsapp;

use std::time::Duration;

use async_trait::async_trait;
use omnistream_domain::Channel;
use serde_json::{Map, Value};
use uuid::Uuid;

pub use email::EmailAdapter;
pub use meta::send::PageAdapter;
pub use whatsapp::WhatsAppAdapter;

use meta::GraphError;

/// A queued message with what a channel needs to send it, read from the read models.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboundDelivery {
    /// Not read from the database: the sender fills it in.
    #[sqlx(skip)]
    pub message_id: Uuid,
    /// The message's tenant (filled in by the sender).
    #[sqlx(skip)]
    pub tenant_id: Uuid,
    /// The message's conversation (filled in by the sender).
    #[sqlx(skip)]
    pub conversation_id: Uuid,
    /// The stored media the message sends, read by the sender for channels that send files
    /// themselves (email); Meta channels get a signed public `media_url` instead.
    #[sqlx(skip)]
    pub attachment: Option<OutboundAttachment>,
    pub message_type: String,
    /// The subject an email reply was given, if any.
    pub subject: Option<String>,
    /// The Meta message tag to send with (`HUMAN_AGENT`), decided when the message was queued.
    pub message_tag: Option<String>,
    pub content: Option<String>,
    pub media_url: Option<String>,
    pub filename: Option<String>,
    pub template: Option<Value>,
    /// The provider id of the message this one replies to.
    pub reply_to_external_id: Option<String>,
    pub channel: String,
    pub account_key: Option<String>,
    pub account_config: Option<Value>,
    /// Whether the contacts read model holds the conversation's contact yet.
    pub contact_known: bool,
    pub wa_id: Option<String>,
    /// The contact's Messenger PSID.
    pub messenger_psid: Option<String>,
    /// The contact's Instagram IGSID.
    pub instagram_id: Option<String>,
    pub contact_email: Option<String>,
    pub contact_name: Option<String>,
    /// `data.email` of the conversation's latest inbound email, for threading an email reply.
    pub last_email: Option<Value>,
}

/// A file sent with a message.
#[derive(Clone, Default)]
pub struct OutboundAttachment {
    pub filename: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for OutboundAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundAttachment")
            .field("filename", &self.filename)
            .field("mime_type", &self.mime_type)
            .field("size", &self.bytes.len())
            .finish()
    }
}

/// What a channel made of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// Accepted, with the provider's id for the message.
    Sent(String),
    /// Worth trying again (rate limits, 5xx, network), after the provider's wait if it gave one.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Refused for good.
    Failed { code: Option<i64>, reason: String },
}

impl SendOutcome {
    /// A final failure without a provider code.
    pub fn failed(reason: impl Into<String>) -> Self {
        SendOutcome::Failed {
            code: None,
            reason: reason.into(),
        }
    }
}

impl From<GraphError> for SendOutcome {
    /// What a failed Send API call means for the Meta channels: retryable errors are retried
    /// (after Meta's `Retry-After`, kept within 1 s to 5 min); others fail with Meta's code.
    fn from(error: GraphError) -> Self {
        if error.is_retryable() {
            return SendOutcome::Retry {
                after: error
                    .retry_after()
                    .map(|secs| Duration::from_secs(secs.clamp(1, 300))),
                error: error.to_string(),
            };
        }
        match error {
            GraphError::Api { code, message, .. } => SendOutcome::Failed {
                code: Some(code),
                reason: message,
            },
            other => SendOutcome::failed(other.to_string()),
        }
    }
}

/// Sends messages on one channel.
#[async_trait]
pub trait ChannelAdapter: Send + Sync {
    /// The channel it sends on.
    fn channel(&self) -> Channel;

    /// Sends `delivery` with its integration account's decrypted `config`. Never panics or
    /// errors: every problem is a [`SendOutcome`].
    async fn send(&self, config: &Map<String, Value>, delivery: &OutboundDelivery) -> SendOutcome;
}

/// The text value of `key` in an account's config, trimmed, if not empty.
pub(crate) fn config_text(config: &Map<String, Value>, key: &str) -> Option<String> {
    config
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
