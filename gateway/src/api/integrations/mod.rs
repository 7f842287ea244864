//! Integrations tag: channel-level settings, integration accounts, and the connect flows of
//! WhatsApp (Embedded Signup), Instagram (Instagram Login) and Messenger (Facebook Login).
//!
//! Sensitive config values are encrypted at rest and masked in every response; a merge never
//! overwrites a stored secret with its masked form (contract §17).
//!
//! The router is here; the settings and account handlers are in [`handlers`], their bodies in
//! [`dto`], and the SQL (the `integrations` and `integration_accounts` rows with their activity
//! rows) in [`store`]. Each onboarding flow keeps its handlers and bodies in its channel's
//! module ([`whatsapp`], [`instagram`], [`messenger`]), beside what they share ([`connect`]) and
//! the proof that an account key is the tenant's to claim ([`ownership`]).

mod connect;
mod dto;
mod handlers;
mod instagram;
mod messenger;
mod ownership;
mod store;
mod whatsapp;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;
use handlers::*;

pub use dto::{
    AccountDeleted, CreateIntegrationAccount, Integration, IntegrationAccount, IntegrationDeleted,
    UpdateIntegrationAccount, UpsertIntegration,
};

/// Routes of the Integrations tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_integrations))
        .routes(routes!(
            get_integration,
            upsert_integration,
            delete_integration
        ))
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(get_account, update_account, delete_account))
        .routes(routes!(set_default))
        .routes(routes!(whatsapp::whatsapp_status))
        .routes(routes!(whatsapp::embedded_signup_config))
        .routes(routes!(whatsapp::embedded_signup))
        .routes(routes!(instagram::auth_config))
        .routes(routes!(instagram::connect))
        .routes(routes!(messenger::auth_config))
        .routes(routes!(messenger::connect))
        .routes(routes!(messenger::connect_pages))
        .routes(routes!(messenger::disconnect))
        .routes(routes!(
            messenger::get_persistent_menu,
            messenger::set_persistent_menu
        ))
}
