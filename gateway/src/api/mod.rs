//! The REST resources, one folder each: `mod.rs` (the router), `handlers.rs`, `dto.rs`.

pub mod outgoing_webhooks;
