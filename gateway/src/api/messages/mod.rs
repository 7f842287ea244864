//! Messages tag (and the message extensions): read, send, search, retry.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_commands::conversation::send;
use omnistream_domain::{Channel, MessageType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::api::activity_logs::{parse_time_bound, push_time_bound};
use crate::api::conversations::{
    command_context, load_visible, push_visibility, service_error, wait_for_inbox,
    ConversationWithContact,
};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized, Caller};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{
    check_text, IdPath, PageRequest, Paginated, ValidJson, ValidQuery, Validate,
};

/// `Message`.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Message {
    /// Opaque (a UUID here).
    pub id: String,
    pub conversation_id: Uuid,
    /// `inbound` or `outbound`.
    pub direction: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
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

/// Columns of [`Message`] over `messages m`. An email's subject, sanitised HTML and attachment
/// list are kept under `data.email` by the messages projector. `media_id` is derived from a
/// `media_url` of `/api/media/{id}` (migration 0008); an outbound message's stored media gives
/// its MIME type and its one-entry attachment list.
pub const MESSAGE_COLUMNS: &str = "m.id::text AS id, m.conversation_id, m.direction, m.type, m.status, m.content, \
    m.data->'email'->>'subject' AS subject, m.media_id, m.media_url, \
    COALESCE(m.media_mime_type, (SELECT md.mime_type FROM media md WHERE md.id = m.media_id AND md.tenant_id = m.tenant_id)) AS media_mime_type, \
    m.filename, NULL::uuid AS template_id, \
    m.template_name, m.sender_type, m.sender_id, m.sender_name, m.external_id, m.reply_to_message_id, NULL::uuid AS campaign_id, \
    m.error_message, m.created_at, m.updated_at, m.data->'email'->>'html' AS content_html, \
    COALESCE(m.data->'email'->'attachments', (SELECT jsonb_build_array(jsonb_build_object('media_id', md.id, 'filename', md.filename, \
        'mime_type', md.mime_type, 'size', md.size)) FROM media md WHERE md.id = m.media_id AND md.tenant_id = m.tenant_id), \
        '[]'::jsonb) AS attachments, m.data";

/// Pagination of a conversation's messages (default 50 per page).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
}

impl Validate for MessageListQuery {
    fn validate(&mut self, violations: &mut Violations) {
        PageRequest::checked(self.page, self.per_page, 50, 100, violations);
    }
}

/// List messages in a conversation
#[utoipa::path(
    get, path = "/api/conversations/{id}/messages", tag = "Messages", params(("id" = Uuid, Path), MessageListQuery),
    responses((status = 200, description = "Page 1 holds the newest messages; each page is in ascending created_at order", body = Paginated<Message>),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_messages(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    IdPath(id): IdPath,
    ValidQuery(query): ValidQuery<MessageListQuery>,
) -> Result<Json<Paginated<Message>>> {
    let page = PageRequest::checked(
        query.page,
        query.per_page,
        50,
        100,
        &mut Violations::default(),
    );
    let mut conn = state.pool.acquire().await?;
    load_visible(&mut conn, &caller, id).await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages WHERE tenant_id = $1 AND conversation_id = $2",
    )
    .bind(caller.tenant_id.as_uuid())
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let mut data: Vec<Message> = sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.tenant_id = $1 AND m.conversation_id = $2
         ORDER BY m.created_at DESC, m.id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(caller.tenant_id.as_uuid())
    .bind(id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&mut *conn)
    .await?;
    data.reverse();
    Ok(Json(Paginated::new(data, total, page)))
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
    fn kind(&self) -> MessageType {
        match self.message_type.as_deref().unwrap_or("text") {
            "image" => MessageType::Image,
            "video" => MessageType::Video,
            "audio" => MessageType::Audio,
            "document" => MessageType::Document,
            "template" => MessageType::Template,
            _ => MessageType::Text,
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

/// Queues an outbound message on a visible conversation through
/// [`send::queue_message`], waits until the inbox shows it, and answers with the stored
/// message.
pub(crate) async fn queue_message(
    state: &AppState,
    caller: &Caller,
    conversation: &ConversationWithContact,
    request: SendMessageRequest,
) -> Result<Message> {
    let target = send::Target {
        id: conversation.id,
        channel: conversation.channel.parse().map_err(anyhow::Error::from)?,
    };
    let request = send::NewMessage {
        kind: request.kind(),
        content: request.content,
        media_id: request.media_id,
        media_url: request.media_url,
        filename: request.filename,
        template: request.template,
        subject: request.subject,
        reply_to_message_id: request.reply_to_message_id,
    };
    let queued = send::queue_message(
        &state.conversation,
        &command_context(caller),
        target,
        request,
    )
    .await
    .map_err(service_error)?;
    wait_for_inbox(state, caller.tenant_id, conversation.id).await?;
    Ok(Message::queued(conversation.id, queued))
}

impl Message {
    /// The API shape of a message just queued (status `pending`).
    fn queued(conversation_id: Uuid, queued: send::QueuedMessage) -> Self {
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

/// Send an outbound message
#[utoipa::path(
    post, path = "/api/conversations/{id}/messages", tag = "Messages", params(("id" = Uuid, Path)), request_body = SendMessageRequest,
    responses((status = 201, description = "Stored in status `pending`; a worker hands it to the channel", body = Message),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 422, description = "messaging_window_closed (free-form message outside the channel's window: its active chat-expiration rule, else 24 h; on Messenger and Instagram a human agent's reply after 24 h and within 7 days is accepted and sent with the HUMAN_AGENT message tag, recorded as `data.message_tag`), invalid_reply_to, or invalid_media (media_id is not a media file of the organization the caller can read)", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn send_message(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<SendMessageRequest>,
) -> Result<(StatusCode, Json<Message>)> {
    let conversation = load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    let message = queue_message(&state, &caller, &conversation, body).await?;
    Ok((StatusCode::CREATED, Json(message)))
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
    page: Option<i64>,
    per_page: Option<i64>,
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
            parse_time_bound(violations, field, value);
        }
        PageRequest::checked(self.page, self.per_page, 20, 100, violations);
    }
}

/// A search hit: the message with its contact and channel.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct MessageSearchHit {
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub message: Message,
    pub contact_id: Uuid,
    pub contact_name: String,
    pub channel: String,
}

/// Search messages across conversations
#[utoipa::path(
    get, path = "/api/messages/search", tag = "Messages", params(SearchQuery),
    responses((status = 200, description = "Case-insensitive substring of the content (trigram-indexed); newest first; only visible conversations; dates in the tenant timezone", body = Paginated<MessageSearchHit>),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn search_messages(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    ValidQuery(query): ValidQuery<SearchQuery>,
) -> Result<Json<Paginated<MessageSearchHit>>> {
    let page = PageRequest::checked(
        query.page,
        query.per_page,
        20,
        100,
        &mut Violations::default(),
    );
    let pattern = crate::api::conversations::like_pattern(query.q.as_deref().unwrap_or_default());
    let mut ignored = Violations::default();
    let from = parse_time_bound(&mut ignored, "from", &query.from);
    let to = parse_time_bound(&mut ignored, "to", &query.to);
    let filtered = |select: &str| {
        let mut builder = QueryBuilder::<Postgres>::new(select);
        builder.push(
            " FROM messages m JOIN conversations c ON c.id = m.conversation_id AND c.tenant_id = m.tenant_id
              LEFT JOIN contacts ct ON ct.id = c.contact_id AND ct.tenant_id = c.tenant_id WHERE m.content ILIKE ",
        );
        builder.push_bind(pattern.clone());
        push_visibility(&mut builder, &caller);
        builder
            .push(" AND m.tenant_id = ")
            .push_bind(caller.tenant_id.as_uuid());
        if let Some(channel) = &query.channel {
            builder.push(" AND c.channel = ").push_bind(channel.clone());
        }
        if let Some(id) = query.conversation_id {
            builder.push(" AND m.conversation_id = ").push_bind(id);
        }
        if let Some(id) = query.contact_id {
            builder.push(" AND c.contact_id = ").push_bind(id);
        }
        if let Some(direction) = &query.direction {
            builder
                .push(" AND m.direction = ")
                .push_bind(direction.clone());
        }
        if let Some(bound) = &from {
            push_time_bound(&mut builder, "m.created_at", bound, false, caller.tenant_id);
        }
        if let Some(bound) = &to {
            push_time_bound(&mut builder, "m.created_at", bound, true, caller.tenant_id);
        }
        builder
    };
    Ok(Json(
        crate::http::extract::fetch_page::<MessageSearchHit>(
            &state.pool,
            filtered,
            &format!(
        "SELECT {MESSAGE_COLUMNS}, c.contact_id, COALESCE(ct.name, '') AS contact_name, c.channel"
    ),
            "m.created_at DESC, m.id DESC",
            page,
        )
        .await?,
    ))
}

async fn load_visible_message(state: &AppState, caller: &Caller, raw_id: &str) -> Result<Message> {
    let id =
        Uuid::parse_str(raw_id).map_err(|_| ApiError::invalid_field("id", "must be a UUID"))?;
    let mut builder = QueryBuilder::<Postgres>::new(format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id AND c.tenant_id = m.tenant_id WHERE m.id = "
    ));
    builder.push_bind(id);
    push_visibility(&mut builder, caller);
    builder
        .build_query_as::<Message>()
        .fetch_optional(&state.pool)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Read one message
#[utoipa::path(
    get, path = "/api/messages/{id}", tag = "Messages", params(("id" = String, Path)),
    responses((status = 200, body = Message), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn get_message(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    Path(id): Path<String>,
) -> Result<Json<Message>> {
    Ok(Json(load_visible_message(&state, &caller, &id).await?))
}

/// Re-send a failed outbound message
#[utoipa::path(
    post, path = "/api/messages/{id}/retry", tag = "Messages", params(("id" = String, Path)),
    responses((status = 200, description = "Status back to `pending`", body = Message), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, description = "message_not_failed", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn retry_message(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    Path(id): Path<String>,
) -> Result<Json<Message>> {
    let message = load_visible_message(&state, &caller, &id).await?;
    let message_id = Uuid::parse_str(&message.id).map_err(anyhow::Error::from)?;
    send::retry(
        &state.conversation,
        &command_context(&caller),
        message.conversation_id,
        message_id,
    )
    .await
    .map_err(service_error)?;
    let stream =
        omnistream_domain::StreamId::new(caller.tenant_id, message.conversation_id).to_string();
    omnistream_projections::wait_until_applied(
        &state.pool,
        &omnistream_projections::MessagesProjector,
        omnistream_domain::conversation::AGGREGATE_TYPE,
        &stream,
        std::time::Duration::from_secs(5),
    )
    .await?;
    Ok(Json(load_visible_message(&state, &caller, &id).await?))
}

/// Routes of the Messages tag and the message extensions.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages, send_message))
        .routes(routes!(search_messages))
        .routes(routes!(get_message))
        .routes(routes!(retry_message))
}
