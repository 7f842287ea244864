//! `GET /api/stream`: the caller's visible events as server-sent events, resumable.
//!
//! The stream tails the event log with the same commit-safe cursor as the projectors, so a
//! client that reconnects with `Last-Event-ID` (or `?after=`) misses nothing and sees nothing
//! twice. Event ids are `<transaction id>-<position>-<index>` (opaque to clients).

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::SecondsFormat;
use futures::Stream;
use omnistream_domain::contact::{public_events as contact_public_events, ContactEvent};
use omnistream_domain::conversation::public_events;
use omnistream_domain::StreamId;
use omnistream_projections::inbox::conversation_event;
use omnistream_projections::LogCursor;
use serde::Deserialize;
use serde_json::json;
use sqlx::{Postgres, QueryBuilder};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::Caller;
use crate::conversations::push_visibility;
use crate::error::{ApiError, ErrorResponse, Result};

/// How often an open stream re-checks the caller's credential.
const REVALIDATE_EVERY: Duration = Duration::from_secs(5);

/// Where to resume.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The id of the last event seen (as `Last-Event-ID`); absent: only new events.
    after: Option<String>,
}

/// A position in the stream: after public event `index` of the log event at `cursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StreamPosition {
    cursor: LogCursor,
    index: usize,
}

fn parse_position(raw: &str) -> Option<StreamPosition> {
    let mut parts = raw.trim().split('-');
    let transaction_id = parts.next()?.parse().ok()?;
    let position = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some(StreamPosition {
        cursor: LogCursor {
            transaction_id,
            position,
        },
        index,
    })
}

#[derive(sqlx::FromRow)]
struct TenantEvent {
    #[sqlx(flatten)]
    event: omnistream_projections::RecordedEvent,
}

/// Realtime stream of the caller's visible events
#[utoipa::path(
    get, path = "/api/stream", tag = "Realtime", params(StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id")),
    responses((status = 200, description = "text/event-stream: `id` (resume token), `event` (public event type), `data` (the outgoing-webhook envelope)", content_type = "text/event-stream", body = String),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.after);
    let start = match resume {
        Some(raw) => parse_position(&raw)
            .ok_or_else(|| ApiError::invalid_field("after", "not an event id of this stream"))?,
        None => {
            let latest: Option<(i64, i64)> = sqlx::query_as(
                // Only what is committed and below every running transaction: an open transaction
                // with a lower id commits after this cursor and is still delivered.
                "SELECT transaction_id::text::bigint, global_position FROM events
                 WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                 ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
            )
            .fetch_optional(&state.pool)
            .await?;
            let cursor = latest.map_or(LogCursor::START, |(transaction_id, position)| LogCursor {
                transaction_id,
                position,
            });
            StreamPosition {
                cursor,
                index: usize::MAX,
            }
        }
    };
    let prefix = format!("{}:%", caller.tenant_id);
    let checked = tokio::time::Instant::now();
    let events = futures::stream::unfold(
        (state, caller, prefix, start, Vec::<Event>::new(), checked),
        |(state, caller, prefix, mut position, mut pending, mut checked)| async move {
            loop {
                // Credentials are re-checked while the stream is open: a logout, a revoked key,
                // a deactivated agent or a suspended organization ends it.
                if checked.elapsed() >= REVALIDATE_EVERY {
                    if !crate::auth::still_valid(&state, &caller)
                        .await
                        .unwrap_or(true)
                    {
                        return None;
                    }
                    checked = tokio::time::Instant::now();
                }
                if let Some(event) = pending.pop() {
                    return Some((
                        Ok(event),
                        (state, caller, prefix, position, pending, checked),
                    ));
                }
                match next_batch(&state, &caller, &prefix, &mut position).await {
                    Ok(batch) if !batch.is_empty() => {
                        pending = batch;
                        pending.reverse();
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    Err(error) => {
                        tracing::warn!(?error, "realtime stream read failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Reads the next committed events of the tenant and turns them into SSE events the caller may see.
async fn next_batch(
    state: &AppState,
    caller: &Caller,
    prefix: &str,
    position: &mut StreamPosition,
) -> Result<Vec<Event>> {
    let mut conn = state.pool.acquire().await?;
    let rows: Vec<TenantEvent> = sqlx::query_as(
        "SELECT transaction_id::text::bigint AS transaction_id, global_position, aggregate_type, aggregate_id, sequence,
                event_type, event_version, payload, metadata, recorded_at
         FROM events e
         WHERE (e.transaction_id, e.global_position) >= ($1::bigint::text::xid8, $2)
           AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
           AND e.aggregate_id LIKE $3
         ORDER BY e.transaction_id, e.global_position LIMIT 200",
    )
    .bind(position.cursor.transaction_id)
    .bind(position.cursor.position)
    .bind(prefix)
    .fetch_all(&mut *conn)
    .await?;
    drop(conn);
    let mut visible: HashMap<Uuid, bool> = HashMap::new();
    let mut out = Vec::new();
    for TenantEvent { event } in rows {
        let cursor = event.cursor();
        let skip_through = if cursor == position.cursor {
            Some(position.index)
        } else {
            None
        };
        if skip_through == Some(usize::MAX) {
            continue;
        }
        let public = match public_of(state, caller, &event, &mut visible).await? {
            Some(public) => public,
            None => {
                *position = StreamPosition {
                    cursor,
                    index: usize::MAX,
                };
                continue;
            }
        };
        for (index, (event_type, data)) in public.into_iter().enumerate() {
            if skip_through.is_some_and(|last| index <= last) {
                continue;
            }
            let id = format!("{}-{}-{index}", cursor.transaction_id, cursor.position);
            let envelope = json!({
                "id": format!("{}:{}:{}:{index}", event.aggregate_type, event.aggregate_id, event.sequence),
                "type": event_type,
                "timestamp": event.recorded_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "organization_id": caller.tenant_id,
                "data": data,
            });
            out.push(
                Event::default()
                    .id(id)
                    .event(event_type)
                    .data(envelope.to_string()),
            );
        }
        *position = StreamPosition {
            cursor,
            index: usize::MAX,
        };
    }
    Ok(out)
}

/// The public events of a stored event that the caller may see (`None`: nothing to send).
async fn public_of(
    state: &AppState,
    caller: &Caller,
    event: &omnistream_projections::RecordedEvent,
    visible: &mut HashMap<Uuid, bool>,
) -> Result<Option<Vec<(&'static str, serde_json::Value)>>> {
    if event.aggregate_type == "Contact" {
        let Ok(stream) = event.aggregate_id.parse::<StreamId>() else {
            return Ok(None);
        };
        let Ok(parsed) = ContactEvent::deserialize(&event.payload) else {
            return Ok(None);
        };
        let public = contact_public_events(stream.id, &parsed);
        let allowed = caller.holds(omnistream_domain::Permission::ContactsView);
        return Ok((allowed && !public.is_empty()).then_some(public));
    }
    let Some((stream, parsed)) = conversation_event(event) else {
        return Ok(None);
    };
    let public = public_events(stream.id, &parsed);
    if public.is_empty() || !is_visible(state, caller, &stream, visible).await? {
        return Ok(None);
    }
    Ok(Some(public))
}

async fn is_visible(
    state: &AppState,
    caller: &Caller,
    stream: &StreamId,
    cache: &mut HashMap<Uuid, bool>,
) -> Result<bool> {
    if caller.holds(omnistream_domain::Permission::ConversationsViewAll) {
        return Ok(caller.holds(omnistream_domain::Permission::ConversationsView));
    }
    if let Some(known) = cache.get(&stream.id) {
        return Ok(*known);
    }
    crate::conversations::wait_for_inbox(state, caller.tenant_id, stream.id).await?;
    let mut builder =
        QueryBuilder::<Postgres>::new("SELECT EXISTS (SELECT 1 FROM conversations c WHERE c.id = ");
    builder.push_bind(stream.id);
    push_visibility(&mut builder, caller);
    builder.push(")");
    let visible = caller.holds(omnistream_domain::Permission::ConversationsView)
        && builder
            .build_query_scalar::<bool>()
            .fetch_one(&state.pool)
            .await?;
    cache.insert(stream.id, visible);
    Ok(visible)
}

/// Routes of the realtime stream.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}
