//! The Messages tag's handlers: a conversation's messages, sending, search, one message and
//! retry. Reads come from the messages read model (`omnistream_projections::messages::queries`);
//! sending and retrying are `commands::conversation::send` services.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use omnistream_commands::conversation::{send, ConversationDeps};
use omnistream_domain::conversation;
use omnistream_projections::messages::queries;
use omnistream_projections::{MessagesProjector, Projector};
use sqlx::PgPool;
use uuid::Uuid;

use super::dto::{Message, MessageListQuery, MessageSearchHit, SearchQuery, SendMessageRequest};
use crate::api::conversations::{
    command_context, load_visible, service_error, viewer, wait_for, wait_for_inbox,
    ConversationWithContact,
};
use crate::http::auth::{perm, Authorized, Caller};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::Paged;
use crate::http::extract::{IdPath, Paginated, ValidJson, ValidQuery};

/// List messages in a conversation
#[utoipa::path(
    get, path = "/api/conversations/{id}/messages", tag = "Messages", params(("id" = Uuid, Path), MessageListQuery),
    responses((status = 200, description = "Page 1 holds the newest messages; each page is in ascending created_at order", body = Paginated<Message>),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_messages(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    IdPath(id): IdPath,
    ValidQuery(query): ValidQuery<MessageListQuery>,
) -> Result<Json<Paginated<Message>>> {
    let page = query.page_request();
    let window = page.window();
    let mut conn = pool.acquire().await?;
    load_visible(&mut *conn, &caller, id).await?;
    let found = queries::page_of_conversation(&mut conn, caller.tenant_id, id, window).await?;
    let data = found.rows.into_iter().map(Into::into).collect();
    Ok(Json(Paginated::new(data, found.total, page)))
}

/// Queues an outbound message on a visible conversation through
/// [`send::queue_message`], waits until the inbox shows it, and answers with the stored
/// message.
pub(crate) async fn queue_message(
    deps: &ConversationDeps,
    caller: &Caller,
    conversation: &ConversationWithContact,
    request: SendMessageRequest,
) -> Result<Message> {
    let target = send::Target {
        id: conversation.id,
        channel: conversation.channel.parse().map_err(anyhow::Error::from)?,
    };
    let queued = send::queue_message(
        deps,
        &command_context(caller),
        target,
        request.into_new_message(),
    )
    .await
    .map_err(service_error)?;
    wait_for_inbox(&deps.pool, caller.tenant_id, conversation.id).await?;
    Ok(Message::queued(conversation.id, queued))
}

/// Send an outbound message
#[utoipa::path(
    post, path = "/api/conversations/{id}/messages", tag = "Messages", params(("id" = Uuid, Path)), request_body = SendMessageRequest,
    responses((status = 201, description = "Stored in status `pending`; a worker hands it to the channel", body = Message),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 422, description = "messaging_window_closed (free-form message outside the channel's window: its active chat-expiration rule, else 24 h; on Messenger and Instagram a human agent's reply after 24 h and within 7 days is accepted and sent with the HUMAN_AGENT message tag, recorded as `data.message_tag`), invalid_reply_to, or invalid_media (media_id is not a media file of the organization the caller can read)", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn send_message(
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<SendMessageRequest>,
) -> Result<(StatusCode, Json<Message>)> {
    let conversation = load_visible(&pool, &caller, id).await?;
    let message = queue_message(&deps, &caller, &conversation, body).await?;
    Ok((StatusCode::CREATED, Json(message)))
}

/// Search messages across conversations
#[utoipa::path(
    get, path = "/api/messages/search", tag = "Messages", params(SearchQuery),
    responses((status = 200, description = "Case-insensitive substring of the content (trigram-indexed); newest first; only visible conversations; dates in the tenant timezone", body = Paginated<MessageSearchHit>),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn search_messages(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    ValidQuery(query): ValidQuery<SearchQuery>,
) -> Result<Json<Paginated<MessageSearchHit>>> {
    let page = query.page_request();
    let window = page.window();
    let found = queries::search(
        &pool,
        caller.tenant_id,
        viewer(&caller),
        &query.filter(),
        window,
    )
    .await?;
    let data = found.rows.into_iter().map(Into::into).collect();
    Ok(Json(Paginated::new(data, found.total, page)))
}

/// Message `raw_id` if its conversation is visible to `caller`: 400 for an id that is not a
/// UUID, 404 for one it cannot see.
async fn load_visible_message(pool: &PgPool, caller: &Caller, raw_id: &str) -> Result<Message> {
    let id =
        Uuid::parse_str(raw_id).map_err(|_| ApiError::invalid_field("id", "must be a UUID"))?;
    queries::find_visible(pool, caller.tenant_id, viewer(caller), id)
        .await?
        .map(Message::from)
        .ok_or(ApiError::NotFound)
}

/// Read one message
#[utoipa::path(
    get, path = "/api/messages/{id}", tag = "Messages", params(("id" = String, Path)),
    responses((status = 200, body = Message), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn get_message(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    Path(id): Path<String>,
) -> Result<Json<Message>> {
    Ok(Json(load_visible_message(&pool, &caller, &id).await?))
}

/// Re-send a failed outbound message
#[utoipa::path(
    post, path = "/api/messages/{id}/retry", tag = "Messages", params(("id" = String, Path)),
    responses((status = 200, description = "Status back to `pending`", body = Message), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, description = "message_not_failed", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn retry_message(
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    Path(id): Path<String>,
) -> Result<Json<Message>> {
    let message = load_visible_message(&pool, &caller, &id).await?;
    let message_id = Uuid::parse_str(&message.id).map_err(anyhow::Error::from)?;
    send::retry(
        &deps,
        &command_context(&caller),
        message.conversation_id,
        message_id,
    )
    .await
    .map_err(service_error)?;
    let messages: [&dyn Projector; 1] = [&MessagesProjector];
    let (tenant, conversation) = (caller.tenant_id, message.conversation_id);
    wait_for(
        &pool,
        &messages,
        conversation::AGGREGATE_TYPE,
        tenant,
        conversation,
    )
    .await?;
    Ok(Json(load_visible_message(&pool, &caller, &id).await?))
}
