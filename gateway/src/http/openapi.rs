//! The OpenAPI document's frame: title, security schemes and tags, and the `/webhooks/*`
//! receivers of the ingest crate (contract §20), which have no annotated handlers. The other
//! paths and schemas come from the handlers' annotations, merged in `app::router::build`.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, Ref, RefOr, Required, ResponseBuilder, Schema, Type,
};
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
    modifiers(&SecuritySchemes, &WebhookReceivers),
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
        (name = "Health", description = "Health and metrics"),
        (name = "Webhooks", description = "Inbound receivers of the webhook-ingestor role, outside `/api`: no tenant credential, a verify token or signature instead")
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

/// The seven `/webhooks/*` receivers (served by `omnistream_ingest::router`).
struct WebhookReceivers;

fn string_schema() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorResponse")))
                .build(),
        )
        .build()
}

fn text_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "text/plain",
            ContentBuilder::new().schema(Some(string_schema())).build(),
        )
        .build()
}

/// `GET <path>`: Meta's subscription handshake, with the verify tokens of `channel`'s accounts.
fn handshake(summary: &str, channel: &str) -> utoipa::openapi::path::Operation {
    let query = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(string_schema()))
            .build()
    };
    OperationBuilder::new()
        .tag("Webhooks")
        .summary(Some(summary))
        .description(Some(format!(
            "When `hub.mode` is `subscribe` and `hub.verify_token` equals the platform Meta verify token \
             (`META_VERIFY_TOKEN`) or the `verify_token` of a {channel} account, answers `hub.challenge` as is; \
             otherwise 403."
        )))
        .parameter(query("hub.mode", "`subscribe`"))
        .parameter(query("hub.verify_token", "The token configured in Meta's app dashboard"))
        .parameter(query("hub.challenge", "Echoed back on success"))
        .response("200", text_response("Exactly `hub.challenge`"))
        .response("403", error_response("forbidden: wrong mode or unknown token"))
        .build()
}

/// `POST <path>`: a payload signed with `X-Hub-Signature-256`.
fn signed_post(summary: &str, objects: &str) -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .tag("Webhooks")
        .summary(Some(summary))
        .description(Some(format!(
            "{objects} The signature is checked over the raw body before anything else (a request without \
             the header is refused before its body is read); the payload is recorded, then acknowledged. \
             Unknown or inactive accounts and unsupported fields are acknowledged too, and not processed."
        )))
        .parameter(
            ParameterBuilder::new()
                .name("X-Hub-Signature-256")
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(
                    "`sha256=` + hex HMAC-SHA256 of the raw body under `META_APP_SECRET` or `INSTAGRAM_APP_SECRET`",
                ))
                .schema(Some(string_schema())),
        )
        .request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                        .build(),
                )
                .build(),
        ))
        .response("200", text_response("`EVENT_RECEIVED`: durably recorded"))
        .response("401", error_response("invalid_signature"))
        .response("413", error_response("payload_too_large: over 2 MiB"))
        .response(
            "429",
            error_response("overloaded, with `Retry-After`: too many webhooks at once; Meta retries"),
        )
        .response("503", error_response("service_unavailable: not recorded; Meta retries"))
        .build()
}

/// `POST /webhooks/email`.
fn email_post() -> utoipa::openapi::path::Operation {
    let any = || {
        ContentBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
            .build()
    };
    let raw = || {
        ContentBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String).format(
                Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Binary,
                )),
            )))
            .build()
    };
    let status = ObjectBuilder::new()
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["ok", "ignored"])),
        )
        .required("status");
    OperationBuilder::new()
        .tag("Webhooks")
        .summary(Some("Receive inbound email webhook"))
        .description(Some(
            "Raw MIME (`message/rfc822`), the contract's JSON {from, to, cc, subject, text, html, message_id, \
             in_reply_to, references, attachments: [{filename, content_type, content_base64}]}, Postmark's inbound \
             JSON, SendGrid Inbound Parse and Mailgun route posts, up to 40 MiB. `X-Webhook-Secret` must equal \
             `EMAIL_WEBHOOK_SECRET` and is checked before the body is read; a form post without it is accepted \
             when its Mailgun `signature` verifies with `MAILGUN_WEBHOOK_SIGNING_KEY`, its `timestamp` is within \
             15 minutes and its `token` has not been used before. Routed by the `to`/`cc` address to an email \
             account; `ignored` when no account matches (the payload is kept).",
        ))
        .parameter(
            ParameterBuilder::new()
                .name("X-Webhook-Secret")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some("`EMAIL_WEBHOOK_SECRET`; required unless the post is a signed Mailgun form"))
                .schema(Some(string_schema())),
        )
        .request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", any())
                .content("message/rfc822", raw())
                .content("multipart/form-data", any())
                .content("application/x-www-form-urlencoded", any())
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("Recorded: `ok` for a known recipient, `ignored` otherwise")
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(status)).build(),
                )
                .build(),
        )
        .response(
            "401",
            error_response("invalid_signature: wrong or missing secret, invalid, old or reused Mailgun signature"),
        )
        .response("413", error_response("payload_too_large: over 40 MiB"))
        .response(
            "429",
            error_response("overloaded, with `Retry-After`: too many webhooks, or too many unauthenticated bodies, at once"),
        )
        .response("503", error_response("service_unavailable: not recorded; retry"))
        .build()
}

impl Modify for WebhookReceivers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = &mut openapi.paths;
        paths.add_path_operation(
            "/webhooks/meta",
            vec![HttpMethod::Get],
            handshake("Meta webhook verification", "WhatsApp"),
        );
        paths.add_path_operation(
            "/webhooks/meta",
            vec![HttpMethod::Post],
            signed_post(
                "Receive Meta webhook (WhatsApp + Instagram)",
                "`object` = `whatsapp_business_account` (routed by `wa-<metadata.phone_number_id>`) or `instagram` (`ig-<entry.id>`).",
            ),
        );
        paths.add_path_operation("/webhooks/email", vec![HttpMethod::Post], email_post());
        paths.add_path_operation(
            "/webhooks/messenger",
            vec![HttpMethod::Get],
            handshake("Meta webhook verification for Messenger", "Messenger"),
        );
        paths.add_path_operation(
            "/webhooks/messenger",
            vec![HttpMethod::Post],
            signed_post(
                "Receive Messenger inbound webhook events",
                "`object` = `page`, routed by `fb-<entry.id>`: messages, postbacks, deliveries, reads, echoes and reactions.",
            ),
        );
        paths.add_path_operation(
            "/webhooks/instagram",
            vec![HttpMethod::Get],
            handshake("Meta webhook verification for Instagram", "Instagram"),
        );
        paths.add_path_operation(
            "/webhooks/instagram",
            vec![HttpMethod::Post],
            signed_post(
                "Receive Instagram inbound webhook events",
                "`object` = `instagram`, routed by `ig-<entry.id>`: messages (story replies and mentions as text with `media_url`), reads and reactions.",
            ),
        );
    }
}
