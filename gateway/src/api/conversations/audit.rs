//! Audit: a conversation's full event history, and its state as of any time (rebuilt from its
//! events with the inbox projection's own fold).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_domain::conversation::{self, ConversationEvent};
use omnistream_domain::StreamId;
use omnistream_projections::inbox::fold;
use omnistream_projections::log;
use sqlx::PgPool;

use super::dto::{
    AsOfQuery, ConversationEventRecord, ConversationWithContact, EventMetadata, EventsQuery,
};
use super::read::load_visible;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::Paged;
use crate::http::extract::{IdPath, Paginated, ValidQuery};

/// Get a single conversation
#[utoipa::path(
    get, path = "/api/conversations/{id}", tag = "Conversations", params(("id" = Uuid, Path), AsOfQuery),
    responses((status = 200, body = ConversationWithContact), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, description = "Unknown, foreign, not visible, or not yet opened at `as_of`", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn get_conversation(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    IdPath(id): IdPath,
    ValidQuery(query): ValidQuery<AsOfQuery>,
) -> Result<Json<ConversationWithContact>> {
    let current = load_visible(&pool, &caller, id).await?;
    let Some(as_of) = query
        .as_of
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    else {
        return Ok(Json(current));
    };
    let stream = StreamId::new(caller.tenant_id, id).to_string();
    let payloads = log::stream_payloads_as_of(
        &pool,
        conversation::AGGREGATE_TYPE,
        &stream,
        as_of.with_timezone(&Utc),
    )
    .await?;
    let mut row = None;
    for payload in payloads {
        let event: ConversationEvent =
            serde_json::from_value(payload).map_err(anyhow::Error::from)?;
        row = fold(row, &event);
    }
    let row = row.ok_or(ApiError::NotFound)?;
    let assigned_agent_name = match row.assigned_agent_id {
        Some(agent) => {
            sqlx::query_scalar("SELECT name FROM agents WHERE tenant_id = $1 AND id = $2")
                .bind(caller.tenant_id.as_uuid())
                .bind(agent)
                .fetch_optional(&pool)
                .await?
        }
        None => None,
    };
    Ok(Json(ConversationWithContact::compose(
        row,
        assigned_agent_name,
        current.contact,
    )))
}

/// The conversation's full event history
#[utoipa::path(
    get, path = "/api/conversations/{id}/events", tag = "Conversations", params(("id" = Uuid, Path), EventsQuery),
    responses((status = 200, description = "Oldest first", body = Paginated<ConversationEventRecord>),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn conversation_events(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    IdPath(id): IdPath,
    ValidQuery(query): ValidQuery<EventsQuery>,
) -> Result<Json<Paginated<ConversationEventRecord>>> {
    let page = query.page_request();
    load_visible(&pool, &caller, id).await?;
    let stream = StreamId::new(caller.tenant_id, id).to_string();
    let total = log::stream_len(&pool, conversation::AGGREGATE_TYPE, &stream).await?;
    let rows = log::stream_page(
        &pool,
        conversation::AGGREGATE_TYPE,
        &stream,
        page.limit(),
        page.offset(),
    )
    .await?;
    let data = rows
        .into_iter()
        .map(|row| ConversationEventRecord {
            metadata: EventMetadata::of(&row.metadata),
            sequence: row.sequence,
            event_type: row.event_type,
            event_version: row.event_version,
            payload: row.payload,
            recorded_at: row.recorded_at,
        })
        .collect();
    Ok(Json(Paginated::new(data, total, page)))
}
