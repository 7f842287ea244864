//! `GET /api/stream`: the caller's visible events as server-sent events, resumable.
//!
//! The stream tails the event log with the same commit-safe cursor as the projectors, so a
//! client that reconnects with `Last-Event-ID` (or `?after=`) misses nothing and sees nothing
//! twice. Event ids are `<transaction id>-<position>-<index>` (opaque to clients).
//!
//! [`handlers`] holds the handler and the open stream, [`dto`] the query and the event ids,
//! [`hub`] the process's one log reader that every open stream follows.

mod dto;
mod handlers;
pub mod hub;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;

/// Routes of the realtime stream.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(handlers::stream))
}
