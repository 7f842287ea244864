//! Media tag: `POST /api/media/upload` stores a file in the media store
//! ([`omnistream_commands::infra::media`]), `GET /api/media/{id}` streams it back.
//!
//! Reading follows the conversation visibility rule: media attached to a conversation the
//! caller cannot see, or of another tenant, is 404. A signed, time-limited link
//! (`?t=&e=&s=`, issued by the outbound sender for providers that fetch media by URL) is a
//! credential of its own for that one file. Every response carries `X-Content-Type-Options:
//! nosniff` and a sandboxing CSP, and types outside the upload allow-list (e.g. HTML or SVG that
//! arrived by email) are always served as downloads, so stored files can never run script on
//! the API's origin.
//!
//! Inbound WhatsApp media is named by its `/api/media/{id}` URL before it is stored: the first
//! read fetches it from the Graph API with the account's token
//! ([`omnistream_commands::channels::meta::media`]), stores it, then streams it; the provider
//! failing is 502 `upstream_error`.
//!
//! [`handlers`] holds the two handlers, [`dto`] their bodies.

mod dto;
mod handlers;

use axum::extract::DefaultBodyLimit;
use omnistream_commands::infra::media::MAX_MEDIA_BYTES;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) use dto::attachment;

use crate::app::AppState;

/// Routes of the Media tag. Uploads may be up to 25 MiB (plus the multipart framing); every
/// other route keeps the API's 2 MiB body limit.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::upload_media))
        .layer(DefaultBodyLimit::max(
            MAX_MEDIA_BYTES as usize + 1024 * 1024,
        ))
        .merge(OpenApiRouter::new().routes(routes!(handlers::get_media)))
}
