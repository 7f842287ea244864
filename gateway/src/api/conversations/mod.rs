//! Conversations tag (and Transfers, and the conversation extensions): the inbox.
//!
//! Reads come from the inbox read model (`omnistream_projections::inbox::queries`); every
//! change is a `commands::conversation` service call, after which the handler waits for the
//! inbox projection (read-your-writes). The handlers are split by concern: [`list`], [`audit`]
//! (one conversation, now or as of a time, and its events), [`actions`] (assign, status, read,
//! tags), [`transfers`] (transfer, takeover, expiry), [`bulk`] and [`start`]; their bodies are
//! in [`dto`]. [`commands`] and [`read`] hold what the other inbox resources share.

mod actions;
mod audit;
mod bulk;
mod commands;
mod dto;
mod list;
mod read;
mod start;
mod transfers;

use utoipa_axum::{router::OpenApiRouter, routes};

pub use dto::{check_tags, ConversationWithContact};

pub(crate) use commands::{command_context, service_error};
pub(crate) use read::{load_visible, viewer, wait_for, wait_for_inbox};

use crate::app::AppState;

/// Routes of the Conversations and Transfers tags and the conversation extensions.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list::list_conversations, start::start_conversation))
        .routes(routes!(audit::get_conversation))
        .routes(routes!(audit::conversation_events))
        .routes(routes!(actions::assign))
        .routes(routes!(actions::update_status))
        .routes(routes!(actions::mark_read))
        .routes(routes!(transfers::expire))
        .routes(routes!(actions::update_tags))
        .routes(routes!(transfers::takeover))
        .routes(routes!(bulk::bulk))
        .routes(routes!(transfers::transfer))
        .routes(routes!(transfers::list_transfers))
}
