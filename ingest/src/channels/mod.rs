//! One folder per inbound channel: the parser for what its provider posts and the handler that
//! turns it into contact and conversation commands. Code shared by the Meta channels (the
//! webhook signature) is in [`meta`].

pub mod email;
pub mod meta;
pub mod meta_messaging;
pub mod whatsapp;
