//! Messages tag (and the message extensions): read, send, search, retry.
//!
//! [`handlers`] reads the messages read model and calls the `commands::conversation::send`
//! services; [`dto`] holds the bodies. Starting a conversation (`api::conversations`) queues
//! its first message through [`queue_message`].

mod dto;
mod handlers;

use utoipa_axum::{router::OpenApiRouter, routes};

pub use dto::{Message, SendMessageRequest};
pub(crate) use handlers::queue_message;

use crate::app::AppState;

/// Routes of the Messages tag and the message extensions.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list_messages, handlers::send_message))
        .routes(routes!(handlers::search_messages))
        .routes(routes!(handlers::get_message))
        .routes(routes!(handlers::retry_message))
}
