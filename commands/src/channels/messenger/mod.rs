//! The Messenger channel: its Page setup through the Graph API ([`page`]) and the `metadata` our
//! sends carry so that their echoes are recognised as ours. Sending goes through the Send API
//! adapter it shares with Instagram, [`crate::channels::meta::send::PageAdapter`]; Facebook
//! Login is in [`crate::channels::meta::login`].

pub mod page;

/// The `metadata` of our Messenger sends; their echoes carry it back.
pub fn echo_metadata(message_id: uuid::Uuid) -> String {
    format!("{ECHO_METADATA_PREFIX}{message_id}")
}

/// How the `metadata` of our own sends starts.
pub const ECHO_METADATA_PREFIX: &str = "omnistream:";
