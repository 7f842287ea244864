//! The REST resources, one folder each: `mod.rs` (the router), and where a resource is large,
//! `handlers.rs`, `dto.rs` and (for configuration entities) `store.rs`.

pub mod activity_logs;
pub mod agents;
pub mod api_keys;
pub mod auth;
pub mod chat_expiration_rules;
pub mod contacts;
pub mod conversations;
pub mod divisions;
pub mod integrations;
pub mod media;
pub mod messages;
pub mod notes;
pub mod outgoing_webhooks;
pub mod roles;
pub mod stream;
pub mod tenants;
