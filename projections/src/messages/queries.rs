//! Reads of the messages read model: a conversation's messages by page, one message, and
//! the search across the conversations an agent may see.
//!
//! A message's media details come from the stored media row (`media`, owned by
//! `omnistream_commands::infra::media`) when the message itself does not carry them.

use chrono::{DateTime, Utc};
use omnistream_domain::{Channel, TenantId};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::inbox::queries::{push_visible_to, Viewer};
use crate::sql::{fetch_page, like_pattern, Page, TimeRange, Window};

/// A message as the API shows it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MessageRow {
    /// The message id, as text.
    pub id: String,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `text`, `image`, `template`, ….
    #[sqlx(rename = "type")]
    pub message_type: String,
    /// `pending`, `sent`, `delivered`, `read`, `failed` or `received`.
    pub status: String,
    /// The text, or a media caption.
    pub content: Option<String>,
    /// An email's subject.
    pub subject: Option<String>,
    /// Stored media (derived from a `media_url` of `/api/media/{id}`).
    pub media_id: Option<Uuid>,
    /// Where the media is.
    pub media_url: Option<String>,
    /// The media's type (the stored media's, when the message has none).
    pub media_mime_type: Option<String>,
    /// The media's file name.
    pub filename: Option<String>,
    /// Always `NULL`: stored templates are not built yet.
    pub template_id: Option<Uuid>,
    /// The template sent, if any.
    pub template_name: Option<String>,
    /// `contact`, `agent`, `ai` or `system`.
    pub sender_type: String,
    /// The sending agent, if any.
    pub sender_id: Option<Uuid>,
    /// The sender's display name.
    pub sender_name: Option<String>,
    /// The provider's message id.
    pub external_id: Option<String>,
    /// The message this one answers.
    pub reply_to_message_id: Option<String>,
    /// Always `NULL`: campaigns are not built yet.
    pub campaign_id: Option<Uuid>,
    /// Why sending failed.
    pub error_message: Option<String>,
    /// When it was received or queued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// An email's sanitised HTML.
    pub content_html: Option<String>,
    /// A JSON array: an email's attachments, or the one stored media of an outbound message.
    pub attachments: Value,
    /// Channel-specific extras.
    pub data: Option<Value>,
}

/// The columns of [`MessageRow`] over `messages m`. An email's subject, sanitised HTML and
/// attachment list are kept under `data.email` by the messages projector. `media_id` is derived
/// from a `media_url` of `/api/media/{id}` (migration 0008); an outbound message's stored media
/// gives its MIME type and its one-entry attachment list. Public for the inbox benchmark, which
/// runs the same SQL directly.
pub const MESSAGE_COLUMNS: &str = "m.id::text AS id, m.conversation_id, m.direction, m.type, m.status, m.content, \
    m.data->'email'->>'subject' AS subject, m.media_id, m.media_url, \
    COALESCE(m.media_mime_type, (SELECT md.mime_type FROM media md WHERE md.id = m.media_id AND md.tenant_id = m.tenant_id)) AS media_mime_type, \
    m.filename, NULL::uuid AS template_id, \
    m.template_name, m.sender_type, m.sender_id, m.sender_name, m.external_id, m.reply_to_message_id, NULL::uuid AS campaign_id, \
    m.error_message, m.created_at, m.updated_at, m.data->'email'->>'html' AS content_html, \
    COALESCE(m.data->'email'->'attachments', (SELECT jsonb_build_array(jsonb_build_object('media_id', md.id, 'filename', md.filename, \
        'mime_type', md.mime_type, 'size', md.size)) FROM media md WHERE md.id = m.media_id AND md.tenant_id = m.tenant_id), \
        '[]'::jsonb) AS attachments, m.data";

/// One page of conversation `conversation`'s messages, newest page first, each page in
/// ascending `created_at` order. The caller checks that the conversation is visible.
#[tracing::instrument(skip(conn), level = "debug", err)]
pub async fn page_of_conversation(
    conn: &mut PgConnection,
    tenant: TenantId,
    conversation: Uuid,
    window: Window,
) -> Result<Page<MessageRow>, sqlx::Error> {
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages WHERE tenant_id = $1 AND conversation_id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(conversation)
    .fetch_one(&mut *conn)
    .await?;
    let mut rows: Vec<MessageRow> = sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.tenant_id = $1 AND m.conversation_id = $2
         ORDER BY m.created_at DESC, m.id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(tenant.as_uuid())
    .bind(conversation)
    .bind(window.limit)
    .bind(window.offset)
    .fetch_all(&mut *conn)
    .await?;
    rows.reverse();
    Ok(Page { rows, total })
}

/// Message `id` of `tenant`, if `viewer` may see its conversation.
#[tracing::instrument(skip(executor), level = "debug", err)]
pub async fn find_visible(
    executor: impl PgExecutor<'_>,
    tenant: TenantId,
    viewer: Viewer,
    id: Uuid,
) -> Result<Option<MessageRow>, sqlx::Error> {
    let mut builder = QueryBuilder::<Postgres>::new(format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id AND c.tenant_id = m.tenant_id WHERE m.id = "
    ));
    builder.push_bind(id);
    push_visible_to(&mut builder, tenant, viewer);
    builder
        .build_query_as::<MessageRow>()
        .fetch_optional(executor)
        .await
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the contact.
    Inbound,
    /// To the contact.
    Outbound,
}

impl Direction {
    /// As stored in `messages.direction`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// What a message search looks for.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchFilter {
    /// Text the content contains, case-insensitively.
    pub text: String,
    /// Only messages of conversations on this channel.
    pub channel: Option<Channel>,
    /// Only messages of this conversation.
    pub conversation_id: Option<Uuid>,
    /// Only messages of this contact's conversations.
    pub contact_id: Option<Uuid>,
    /// Only messages going this way.
    pub direction: Option<Direction>,
    /// Only messages created within this range.
    pub created: TimeRange,
}

/// A search hit: the message, with its conversation's contact and channel.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SearchHitRow {
    /// The message.
    #[sqlx(flatten)]
    pub message: MessageRow,
    /// The conversation's contact.
    pub contact_id: Uuid,
    /// The contact's name (empty when unknown).
    pub contact_name: String,
    /// The conversation's channel.
    pub channel: String,
}

/// One page of the messages of `tenant` that `filter` selects, in conversations `viewer` may
/// see, newest first. The content match uses the trigram index on `messages.content`.
#[tracing::instrument(skip(pool), level = "debug", err)]
pub async fn search(
    pool: &PgPool,
    tenant: TenantId,
    viewer: Viewer,
    filter: &SearchFilter,
    window: Window,
) -> Result<Page<SearchHitRow>, sqlx::Error> {
    let pattern = like_pattern(&filter.text);
    let filtered = |prefix: &str| {
        let mut builder = QueryBuilder::<Postgres>::new(prefix);
        builder.push(
            " FROM messages m JOIN conversations c ON c.id = m.conversation_id AND c.tenant_id = m.tenant_id
              LEFT JOIN contacts ct ON ct.id = c.contact_id AND ct.tenant_id = c.tenant_id WHERE m.content ILIKE ",
        );
        builder.push_bind(pattern.clone());
        push_visible_to(&mut builder, tenant, viewer);
        builder
            .push(" AND m.tenant_id = ")
            .push_bind(tenant.as_uuid());
        if let Some(channel) = filter.channel {
            builder
                .push(" AND c.channel = ")
                .push_bind(channel.as_str());
        }
        if let Some(id) = filter.conversation_id {
            builder.push(" AND m.conversation_id = ").push_bind(id);
        }
        if let Some(id) = filter.contact_id {
            builder.push(" AND c.contact_id = ").push_bind(id);
        }
        if let Some(direction) = filter.direction {
            builder
                .push(" AND m.direction = ")
                .push_bind(direction.as_str());
        }
        filter.created.push(&mut builder, "m.created_at", tenant);
        builder
    };
    fetch_page(
        pool,
        filtered,
        "SELECT count(*)",
        &format!(
            "SELECT {MESSAGE_COLUMNS}, c.contact_id, COALESCE(ct.name, '') AS contact_name, c.channel"
        ),
        "m.created_at DESC, m.id DESC",
        window,
    )
    .await
}
