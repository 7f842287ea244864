//! Audit: a conversation's full event history, and its state as of any time (rebuilt from its
//! events with the inbox projection's own fold).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_domain::conversation::{self, ConversationEvent};
use omnistream_domain::StreamId;
use omnistream_projections::inbox::fold;
use omnistream_projections::log;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{load_visible, ConversationWithContact};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{IdPath, PageRequest, Paginated, ValidQuery, Validate};

/// `?as_of=` of `GET /api/conversations/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// RFC 3339: the conversation as it was at that time, rebuilt from its events.
    as_of: Option<String>,
}

impl Validate for AsOfQuery {
    fn validate(&mut self, violations: &mut Violations) {
        if self
            .as_of
            .as_deref()
            .is_some_and(|t| DateTime::parse_from_rfc3339(t).is_err())
        {
            violations.add("as_of", "must be an RFC 3339 timestamp");
        }
    }
}

/// Get a single conversation
#[utoipa::path(
    get, path = "/api/conversations/{id}", tag = "Conversations", params(("id" = Uuid, Path), AsOfQuery),
    responses((status = 200, body = ConversationWithContact), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, description = "Unknown, foreign, not visible, or not yet opened at `as_of`", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn get_conversation(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    IdPath(id): IdPath,
    ValidQuery(query): ValidQuery<AsOfQuery>,
) -> Result<Json<ConversationWithContact>> {
    let current = load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    let Some(as_of) = query
        .as_of
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    else {
        return Ok(Json(current));
    };
    let stream = StreamId::new(caller.tenant_id, id).to_string();
    let payloads = log::stream_payloads_as_of(
        &state.pool,
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
                .fetch_optional(&state.pool)
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

/// Who caused an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventMetadata {
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub request_id: Option<String>,
    pub causation_id: Option<String>,
    pub correlation_id: Option<String>,
}

/// One stored event of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationEventRecord {
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub metadata: EventMetadata,
    pub recorded_at: DateTime<Utc>,
}

/// Pagination of the event history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    page: Option<i64>,
    /// 1..100, default 50.
    per_page: Option<i64>,
}

impl Validate for EventsQuery {
    fn validate(&mut self, violations: &mut Violations) {
        PageRequest::checked(self.page, self.per_page, 50, 100, violations);
    }
}

/// The conversation's full event history
#[utoipa::path(
    get, path = "/api/conversations/{id}/events", tag = "Conversations", params(("id" = Uuid, Path), EventsQuery),
    responses((status = 200, description = "Oldest first", body = Paginated<ConversationEventRecord>),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn conversation_events(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    IdPath(id): IdPath,
    ValidQuery(query): ValidQuery<EventsQuery>,
) -> Result<Json<Paginated<ConversationEventRecord>>> {
    let page = PageRequest::checked(
        query.page,
        query.per_page,
        50,
        100,
        &mut Violations::default(),
    );
    load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    let stream = StreamId::new(caller.tenant_id, id).to_string();
    let total = log::stream_len(&state.pool, conversation::AGGREGATE_TYPE, &stream).await?;
    let rows = log::stream_page(
        &state.pool,
        conversation::AGGREGATE_TYPE,
        &stream,
        page.limit(),
        page.offset(),
    )
    .await?;
    let text = |metadata: &Value, key: &str| {
        metadata
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let data = rows
        .into_iter()
        .map(|row| ConversationEventRecord {
            metadata: EventMetadata {
                actor_type: text(&row.metadata, "actor_type"),
                actor_id: text(&row.metadata, "actor_id"),
                request_id: text(&row.metadata, "request_id"),
                causation_id: text(&row.metadata, "causation_id"),
                correlation_id: text(&row.metadata, "correlation_id"),
            },
            sequence: row.sequence,
            event_type: row.event_type,
            event_version: row.event_version,
            payload: row.payload,
            recorded_at: row.recorded_at,
        })
        .collect();
    Ok(Json(Paginated::new(data, total, page)))
}
