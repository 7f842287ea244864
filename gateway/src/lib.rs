//! OmniStream gateway: the REST API (axum), authentication and RBAC, the OpenAPI document, and
//! the process wiring behind the `omnistream` binary.
//!
//! - [`app`]: the process — state, router, workers by role, configuration, the embedded
//!   development stack, health, the HTTP server.
//! - [`http`]: what every endpoint shares — the error type, extractors, authentication and
//!   permissions, the OpenAPI document, client addresses.
//! - [`api`]: one folder per REST resource.

pub mod api;
pub mod app;
pub mod http;

pub use app::config::Config;
pub use app::{AppState, Application, Roles, Settings};
