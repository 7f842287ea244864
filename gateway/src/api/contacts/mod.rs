//! Contacts tag: the customers behind conversations.
//!
//! [`handlers`] reads the contacts read model, changes contacts through `commands::contact`,
//! and lists a contact's visible conversations from the inbox; [`dto`] holds the bodies.

mod dto;
mod handlers;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;

/// Routes of the Contacts tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list_contacts))
        .routes(routes!(handlers::get_contact, handlers::update_contact))
        .routes(routes!(handlers::contact_conversations))
}
