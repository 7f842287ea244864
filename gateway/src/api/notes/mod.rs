//! Notes tag: internal notes on a conversation, never sent to the contact.
//!
//! [`handlers`] adds, edits and deletes notes through `commands::conversation::notes` and reads
//! them back from the notes read model; [`dto`] holds the bodies.

mod dto;
mod handlers;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;

/// Routes of the Notes tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list_notes, handlers::create_note))
        .routes(routes!(handlers::update_note, handlers::delete_note))
}
