//! OmniStream gateway: the REST API (axum), authentication and RBAC, the OpenAPI document, and
//! the process wiring behind the `omnistream` binary.

pub mod activity;
pub mod api;
pub mod api_keys;
pub mod app;
pub mod auth;
pub mod chat_expiration;
pub mod config;
pub mod contacts;
pub mod conversations;
pub mod db;
pub mod devstack;
pub mod divisions;
pub mod error;
pub mod extract;
pub mod health;
pub mod integrations;
pub mod media;
pub mod messages;
pub mod notes;
pub mod openapi;
pub mod peer;
pub mod roles;
pub mod server;
pub mod slots;
pub mod startup;
pub mod stream;
pub mod tenants;

pub use app::{AppState, Application, Roles, Settings};
pub use config::Config;
