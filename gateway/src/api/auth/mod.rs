//! Auth tag: register, login, current profile, logout and token refresh. The router is here,
//! the handlers (with the session cookie) in [`handlers`], the bodies in [`dto`], and the SQL
//! (the `sessions` row with its activity row, the account a login names) in [`store`].

mod dto;
mod handlers;
mod store;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;
use handlers::*;

pub use dto::{LoginRequest, LoginResponse, MeResponse, RegisterRequest, TokenResponse};

/// Routes of the Auth tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(me))
        .routes(routes!(logout))
        .routes(routes!(refresh_token, refresh_token_post))
        .routes(routes!(register))
}
