//! The OpenAPI document's frame: title, security schemes and tags. Paths and schemas come from
//! the handlers' annotations, merged in `app::build_router`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document root.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "OmniStream API",
        description = "Omnichannel customer conversations (WhatsApp, Instagram, Messenger, Email) in one event-sourced inbox.\n\n\
Conventions (contract §0): every error is `{\"error\": {code, message, details?}}`; malformed UUIDs, unknown body fields, \
bad types and out-of-range pagination are 400 `validation_error` with per-field `details`; ids of another organization are 404. \
Where the contract is silent this implementation: rejects unknown query parameters like unknown body fields; rejects `null` for \
PATCH fields that are not nullable; answers unknown paths with 404 `not_found` and wrong methods with 405 `method_not_allowed`; \
limits bodies to 2 MiB, media uploads to 25 MiB (413 `payload_too_large`); requires `Content-Type: application/json` on JSON bodies (415 `unsupported_media_type`).",
        version = env!("CARGO_PKG_VERSION"),
        license(name = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "Auth", description = "Login, registration, sessions"),
        (name = "Agents", description = "The organization's agents"),
        (name = "Divisions", description = "Teams of agents (supervisor/admin only)"),
        (name = "Roles", description = "System and custom roles, and the permission catalogue (admin only)"),
        (name = "API Keys", description = "Long-lived credentials acting as their creator"),
        (name = "Activity Logs", description = "Audit trail of every change (supervisor/admin only)"),
        (name = "Conversations", description = "The shared inbox"),
        (name = "Messages", description = "Messages of conversations: read, send, search"),
        (name = "Media", description = "Uploaded and received files (≤ 25 MiB), streamed back to callers who can see their conversation"),
        (name = "Contacts", description = "Customers"),
        (name = "Notes", description = "Internal notes on conversations"),
        (name = "Transfers", description = "Conversation transfers and takeovers"),
        (name = "Chat Expiration", description = "Per-channel messaging windows"),
        (name = "Integrations", description = "Channel integrations and accounts; WhatsApp, Instagram and Messenger onboarding"),
        (name = "Outgoing Webhooks", description = "Signed (Standard Webhooks) event deliveries to your endpoints"),
        (name = "Realtime", description = "Server-sent events of the caller's visible events"),
        (name = "Health", description = "Health and metrics")
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("omnistream_token"))),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
