//! Request and response bodies of the Messages tag, and their validation.

use chrono::{DateTime, Utc};
use omnistream_commands::conversation::send;
use omnistream_domain::{Channel, MessageType};
use omnistream_projections::messages::queries::{
    Direction, MessageRow, SearchFilter, SearchHitRow,
};
use omnistream_projections::sql::{TimeBound, TimeRange};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::Violations;
use crate::http::extract::Paged;
use crate::http::extract::{check_text, Validate};

/// `Message`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Message {
    /// Opaque (a UUID here).
    pub id: String,
    pub conversation_id: Uuid,
    /// `inbound` or `outbound`.
    pub direction: String,
    #[serde(rename = "type")]
    pub message_type: String,
    /// `pending`, `sent`, `delivered`, `read`, `failed` or `received`.
    pub status: String,
    pub content: Option<String>,
    pub subject: Option<String>,
    pub media_id: Option<Uuid>,
    pub media_url: Option<String>,
    pub media_mime_type: Option<String>,
    pub filename: Option<String>,
    pub template_id: Option<Uuid>,
    pub template_name: Option<String>,
    /// `contact`, `agent`, `ai` or `system`.
    pub sender_type: String,
    pub sender_id: Option<Uuid>,
    pub sender_name: Option<String>,
    /// The provider's message id.
    pub external_id: Option<String>,
    pub reply_to_message_id: Option<String>,
    pub campaign_id: Option<Uuid>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub content_html: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub attachments: Value,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

impl From<MessageRow> for Message {
    fn from(row: MessageRow) -> Self {
        Self {
            id: row.id,
            conversation_id: row.conversation_id,
            direction: row.direction,
            message_type: row.message_type,
            status: row.status,
            content: row.content,
            subject: row.subject,
            media_id: row.media_id,
            media_url: row.media_url,
            media_mime_type: row.media_mime_type,
            filename: row.filename,
            template_id: row.template_id,
            template_name: row.template_name,
            sender_type: row.sender_type,
            sender_id: row.sender_id,
            sender_name: row.sender_name,
            external_id: row.external_id,
            reply_to_message_id: row.reply_to_message_id,
            campaign_id: row.campaign_id,
            error_message: row.error_message,
            created_at: row.created_at,
            updated_at: row.updated_at,
            content_html: row.content_html,
            attachments: row.attachments,
            data: row.data,
        }
    }
}

impl Message {
    /// The API shape of a message just queued (status `pending`).
    pub(super) fn queued(conversation_id: Uuid, queued: send::QueuedMessage) -> Self {
        let send::QueuedMessage { message, media } = queued;
        let at = message.queued_at;
        Self {
            id: message.message_id.to_string(),
            conversation_id,
            direction: "outbound".into(),
            message_type: message.message_type.as_str().into(),
            status: "pending".into(),
            template_name: message
                .template
                .as_ref()
                .and_then(|t| t.get("name"))
                .and_then(|n| n.as_str())
                .map(str::to_owned),
            content: message.content,
            subject: message.subject,
            media_id: media.as_ref().map(|m| m.id),
            media_url: message.media_url,
            media_mime_type: media.as_ref().map(|m| m.mime_type.clone()),
            filename: message.filename,
            template_id: None,
            sender_type: message.sender.sender_type,
            sender_id: message.sender.id,
            sender_name: message.sender.name,
            external_id: None,
            reply_to_message_id: message.reply_to_message_id,
            campaign_id: None,
            error_message: None,
            created_at: at,
            updated_at: at,
            content_html: None,
            attachments: Value::Array(media.iter().map(crate::api::media::attachment).collect()),
            data: None,
        }
    }
}

/// Pagination of a conversation's messages (default 50 per page).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageListQuery {
    pub(super) page: Option<i64>,
    pub(super) per_page: Option<i64>,
}

impl Paged for MessageListQuery {
    const DEFAULT_PER_PAGE: u32 = 50;

    fn paging(&self) -> (Option<i64>, Option<i64>) {
        (self.page, self.per_page)
    }
}

impl Validate for MessageListQuery {
    fn validate(&mut self, violations: &mut Violations) {
        self.check_paging(violations);
    }
}

/// `SendMessageRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// `text` (default), `image`, `video`, `audio`, `document` or `template`.
    #[serde(default, rename = "type")]
    pub message_type: Option<String>,
    /// Required for text (1..4096); the caption of media.
    #[serde(default)]
    pub content: Option<String>,
    /// Media uploaded with `POST /api/media/upload` (or received): sent as an attachment by
    /// email, as a signed link to Meta. Alternatively `media_url`.
    #[serde(default)]
    pub media_id: Option<Uuid>,
    #[serde(default)]
    pub media_url: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    /// Meta's template-message object {name, language, components}, passed through; or
    /// {template_id, variables} naming a stored template (stored templates are not built yet).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub template: Option<Value>,
    /// Email only.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub reply_to_message_id: Option<String>,
}

impl SendMessageRequest {
    /// The message to queue, as the send service takes it.
    pub(super) fn into_new_message(self) -> send::NewMessage {
        let kind = match self.message_type.as_deref().unwrap_or("text") {
            "image" => MessageType::Image,
            "video" => MessageType::Video,
            "audio" => MessageType::Audio,
            "document" => MessageType::Document,
            "template" => MessageType::Template,
            _ => MessageType::Text,
        };
        send::NewMessage {
            kind,
            content: self.content,
            media_id: self.media_id,
            media_url: self.media_url,
            filename: self.filename,
            template: self.template,
            subject: self.subject,
            reply_to_message_id: self.reply_to_message_id,
        }
    }
}

impl Validate for SendMessageRequest {
    fn validate(&mut self, violations: &mut Violations) {
        let kind = self
            .message_type
            .get_or_insert_with(|| "text".to_owned())
            .clone();
        if !["text", "image", "video", "audio", "document", "template"].contains(&kind.as_str()) {
            violations.add(
                "type",
                "must be text, image, video, audio, document or template",
            );
            return;
        }
        if let Some(content) = &mut self.content {
            check_text(violations, "content", content, 0, 4096);
        }
        match kind.as_str() {
            "text" => {
                if self.content.as_deref().is_none_or(str::is_empty) {
                    violations.add("content", "is required for text messages");
                }
            }
            "template" => match &self.template {
                Some(Value::Object(template)) if template.contains_key("template_id") => {
                    violations.add("template", "stored templates (template_id) are not available yet; send Meta's {name, language, components}")
                }
                Some(Value::Object(template)) => {
                    if !template.get("name").is_some_and(Value::is_string) {
                        violations.add("template.name", "is required");
                    }
                    if !template.get("language").is_some_and(|l| l.is_object() || l.is_string()) {
                        violations.add("template.language", "is required");
                    }
                }
                _ => violations.add("template", "is required for template messages"),
            },
            _ => {
                match (&self.media_id, &self.media_url) {
                    (Some(_), Some(_)) => violations.add("media_url", "give media_id or media_url, not both"),
                    (Some(_), None) => {}
                    (None, Some(url)) if url.starts_with("https://") || url.starts_with("http://") => {}
                    (None, Some(_)) => violations.add("media_url", "must be an http(s) URL"),
                    (None, None) => violations.add("media_id", "media_id or media_url is required for media messages"),
                }
            }
        }
        if let Some(subject) = &mut self.subject {
            check_text(violations, "subject", subject, 1, 998);
        }
    }
}

/// Filters of `GET /api/messages/search`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// 2..200 characters: a case-insensitive substring of the content.
    q: Option<String>,
    channel: Option<String>,
    conversation_id: Option<Uuid>,
    contact_id: Option<Uuid>,
    /// `inbound` or `outbound`.
    direction: Option<String>,
    /// RFC 3339 or YYYY-MM-DD.
    from: Option<String>,
    to: Option<String>,
    pub(super) page: Option<i64>,
    pub(super) per_page: Option<i64>,
}

impl Paged for SearchQuery {
    fn paging(&self) -> (Option<i64>, Option<i64>) {
        (self.page, self.per_page)
    }
}

impl Validate for SearchQuery {
    fn validate(&mut self, violations: &mut Violations) {
        match &mut self.q {
            Some(q) => check_text(violations, "q", q, 2, 200),
            None => violations.add("q", "is required"),
        }
        if self
            .channel
            .as_deref()
            .is_some_and(|c| c.parse::<Channel>().is_err())
        {
            violations.add("channel", "must be whatsapp, instagram, email or messenger");
        }
        if self
            .direction
            .as_deref()
            .is_some_and(|d| d != "inbound" && d != "outbound")
        {
            violations.add("direction", "must be inbound or outbound");
        }
        for (field, value) in [("from", &self.from), ("to", &self.to)] {
            if value
                .as_deref()
                .is_some_and(|raw| TimeBound::parse(raw).is_none())
            {
                violations.add(field, "must be an RFC 3339 timestamp or a YYYY-MM-DD date");
            }
        }
        self.check_paging(violations);
    }
}

impl SearchQuery {
    /// The read model's search for these (validated) parameters.
    pub(super) fn filter(&self) -> SearchFilter {
        SearchFilter {
            text: self.q.clone().unwrap_or_default(),
            channel: self.channel.as_deref().and_then(|c| c.parse().ok()),
            conversation_id: self.conversation_id,
            contact_id: self.contact_id,
            direction: match self.direction.as_deref() {
                Some("inbound") => Some(Direction::Inbound),
                Some("outbound") => Some(Direction::Outbound),
                _ => None,
            },
            created: TimeRange {
                from: self.from.as_deref().and_then(TimeBound::parse),
                to: self.to.as_deref().and_then(TimeBound::parse),
            },
        }
    }
}

/// A search hit: the message with its contact and channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageSearchHit {
    #[serde(flatten)]
    pub message: Message,
    pub contact_id: Uuid,
    pub contact_name: String,
    pub channel: String,
}

impl From<SearchHitRow> for MessageSearchHit {
    fn from(row: SearchHitRow) -> Self {
        Self {
            message: row.message.into(),
            contact_id: row.contact_id,
            contact_name: row.contact_name,
            channel: row.channel,
        }
    }
}
