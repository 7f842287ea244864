//! What the Meta channels (WhatsApp Cloud API, Messenger, Instagram) share: the
//! `X-Hub-Signature-256` check their receivers run before a payload is stored.

mod signature;

pub use signature::verify_signature;
