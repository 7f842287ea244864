//! The realtime stream's handler and the open stream it returns: it catches up from the log,
//! then follows the [`hub`](super::hub), sending only the public events the caller may see.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::SecondsFormat;
use futures::Stream;
use omnistream_domain::{catalogue, contact, conversation, StreamId};
use omnistream_projections::inbox::queries;
use omnistream_projections::RecordedEvent;
use serde_json::json;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::dto::{event_id, parse_position, StreamPosition, StreamQuery};
use super::hub::{self, StreamSlot};
use crate::api::conversations::{viewer, wait_for_inbox};
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorResponse, Result};

/// How often an open stream re-checks the caller's credential.
const REVALIDATE_EVERY: Duration = Duration::from_secs(5);

/// Realtime stream of the caller's visible events
#[utoipa::path(
    get, path = "/api/stream", tag = "Realtime", params(StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id")),
    responses((status = 200, description = "text/event-stream: `id` (resume token), `event` (public event type), `data` (the outgoing-webhook envelope)", content_type = "text/event-stream", body = String),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 429, description = "rate_limited: the agent already has STREAMS_PER_AGENT (default 8) streams open on this instance", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn stream(
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
    let Some(slot) = state
        .stream_hub
        .open_slot(caller.agent_id, state.config.streams_per_agent)
    else {
        return Err(ApiError::RateLimited {
            retry_after_secs: 5,
        });
    };
    let start = match resume {
        Some(raw) => parse_position(&raw)
            .ok_or_else(|| ApiError::invalid_field("after", "not an event id of this stream"))?,
        None => StreamPosition {
            cursor: omnistream_projections::log::committed_head(&state.pool).await?,
            index: usize::MAX,
        },
    };
    // Subscribed before catching up, so nothing committed after the catch-up is missed.
    let live = state.stream_hub.subscribe();
    let tail = Tail {
        prefix: format!("{}:", caller.tenant_id),
        state,
        caller,
        position: start,
        pending: Vec::new(),
        checked: tokio::time::Instant::now(),
        live,
        caught_up: false,
        _slot: slot,
    };
    let events = futures::stream::unfold(tail, |mut tail| async move {
        let event = tail.next_event().await?;
        Some((Ok(event), tail))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One open stream: where it is, what it still has to send, and its feed.
struct Tail {
    state: AppState,
    caller: Caller,
    /// `<tenant_id>:`, the prefix of the tenant's stream ids.
    prefix: String,
    position: StreamPosition,
    /// Events to send, last first.
    pending: Vec<Event>,
    checked: tokio::time::Instant,
    live: broadcast::Receiver<hub::Batch>,
    /// Whether the database had nothing more at the last read, so the hub's batches follow.
    caught_up: bool,
    _slot: StreamSlot,
}

impl Tail {
    /// The next event to send; `None` ends the stream (the credential no longer holds, or the
    /// hub stopped).
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            // Credentials are re-checked while the stream is open: a logout, a revoked key,
            // a deactivated agent or a suspended organization ends it.
            if self.checked.elapsed() >= REVALIDATE_EVERY {
                if !crate::http::auth::still_valid(&self.state, &self.caller)
                    .await
                    .unwrap_or(true)
                {
                    return None;
                }
                self.checked = tokio::time::Instant::now();
            }
            if let Some(event) = self.pending.pop() {
                return Some(event);
            }
            let batch = if self.caught_up {
                match tokio::time::timeout(REVALIDATE_EVERY, self.live.recv()).await {
                    Err(_) => continue,
                    Ok(Ok(batch)) => {
                        let start = self.position.cursor;
                        let theirs: Vec<RecordedEvent> = batch
                            .iter()
                            .filter(|e| {
                                e.cursor() >= start && e.aggregate_id.starts_with(&self.prefix)
                            })
                            .cloned()
                            .collect();
                        Ok(theirs)
                    }
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                        self.caught_up = false;
                        continue;
                    }
                    Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                }
            } else {
                let read = self.read_from_log().await;
                if matches!(&read, Ok(rows) if rows.is_empty()) {
                    self.caught_up = true;
                }
                read
            };
            let converted = match batch {
                Ok(rows) => to_events(&self.state, &self.caller, rows, &mut self.position).await,
                Err(error) => Err(error),
            };
            match converted {
                Ok(mut events) => {
                    events.reverse();
                    self.pending = events;
                }
                Err(error) => {
                    tracing::warn!(?error, "realtime stream read failed");
                    self.caught_up = false;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// The tenant's next committed events from the position on, from the database.
    async fn read_from_log(&self) -> Result<Vec<RecordedEvent>> {
        let rows = omnistream_projections::log::read_tenant_from(
            &self.state.pool,
            &self.prefix,
            self.position.cursor,
            200,
        )
        .await?;
        // The event at the position itself comes back while it was only partly sent.
        Ok(rows
            .into_iter()
            .filter(|e| !(e.cursor() == self.position.cursor && self.position.index == usize::MAX))
            .collect())
    }
}

/// Turns the tenant's stored events into the SSE events the caller may see, advancing
/// `position` past each.
async fn to_events(
    state: &AppState,
    caller: &Caller,
    rows: Vec<RecordedEvent>,
    position: &mut StreamPosition,
) -> Result<Vec<Event>> {
    let mut visible: HashMap<Uuid, bool> = HashMap::new();
    let mut out = Vec::new();
    for event in rows {
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
            let id = event_id(cursor, index);
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
    let public =
        catalogue::public_events(&event.aggregate_type, &event.aggregate_id, &event.payload);
    if public.is_empty() {
        return Ok(None);
    }
    let allowed = match event.aggregate_type.as_str() {
        contact::AGGREGATE_TYPE => caller.holds(omnistream_domain::Permission::ContactsView),
        conversation::AGGREGATE_TYPE => match event.aggregate_id.parse::<StreamId>() {
            Ok(stream) => is_visible(state, caller, &stream, visible).await?,
            Err(_) => false,
        },
        _ => false,
    };
    Ok(allowed.then_some(public))
}

/// Whether `caller` may see the conversation of `stream` (cached per stream in `cache`), once
/// the inbox shows its latest event.
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
    wait_for_inbox(&state.pool, caller.tenant_id, stream.id).await?;
    let visible = caller.holds(omnistream_domain::Permission::ConversationsView)
        && queries::is_visible(&state.pool, caller.tenant_id, viewer(caller), stream.id).await?;
    cache.insert(stream.id, visible);
    Ok(visible)
}
