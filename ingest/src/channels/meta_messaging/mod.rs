//! Messenger (`object = "page"`) and Instagram (`object = "instagram"`) messaging webhooks.

mod handle;
mod parse;

pub use parse::{
    parse_messaging, MessagingEvent, MessagingKind, INSTAGRAM_OBJECT, MESSENGER_OBJECT,
};
