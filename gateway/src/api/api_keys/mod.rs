//! API Keys tag: long-lived credentials that act as the agent who created them.
//!
//! A key is `osk_` + 40 random base62 characters. Only its SHA-256 is stored; the key itself is
//! returned once, at creation. The router is here, the handlers in [`handlers`], the bodies in
//! [`dto`], and the SQL (the `api_keys` row with its activity row) in [`store`].

mod dto;
mod handlers;
mod store;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;
use handlers::*;

pub use dto::{ApiKey, ApiKeyCreateResponse, CreateApiKeyRequest};

/// Routes of the API Keys tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
}
