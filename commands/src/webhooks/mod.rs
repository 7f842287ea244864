//! Outgoing webhooks: the wire protocol ([`wire`]: signatures, the SSRF guard, one attempt) and
//! the administration calls behind the API ([`admin`]: test events, redeliveries, replays).
//! The dispatcher and sender that deliver events live in [`crate::webhook_dispatch`].

pub mod admin;
pub mod wire;
