//! The REST resources, one folder each: `mod.rs` (the router), `handlers.rs`, `dto.rs`.

pub mod agents;
pub mod outgoing_webhooks;
