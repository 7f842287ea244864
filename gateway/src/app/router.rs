//! The router: every resource's routes (one `.merge` per resource), the OpenAPI document and
//! docs, the webhook receivers for the ingest role, fallbacks and the layers every request
//! passes (body limit, deadline, CSRF, client address, metrics, panics, request ids, tracing).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use omnistream_ingest::IngestState;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::api::{
    activity_logs, agents, api_keys, auth, chat_expiration_rules, contacts, conversations,
    divisions, integrations, media, messages, notes, outgoing_webhooks, roles, stream,
};
use crate::app::{health, AppState, Roles};
use crate::http::error::ApiError;
use crate::http::openapi::ApiDoc;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The full router for `roles`: routes, OpenAPI, docs, fallbacks and layers.
pub fn build(state: AppState, roles: Roles) -> Router {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(health::router());
    if roles.api {
        api = api
            .merge(auth::router())
            .merge(agents::router())
            .merge(divisions::router())
            .merge(roles::router())
            .merge(api_keys::router())
            .merge(activity_logs::router())
            .merge(integrations::router())
            .merge(contacts::router())
            .merge(conversations::router())
            .merge(messages::router())
            .merge(media::router())
            .merge(notes::router())
            .merge(chat_expiration_rules::router())
            .merge(stream::router())
            .merge(outgoing_webhooks::router());
    }
    let (mut router, openapi) = api.split_for_parts();
    if roles.ingest {
        let secrets: Vec<Vec<u8>> = [
            &state.config.meta_app_secret,
            &state.config.instagram_app_secret,
        ]
        .into_iter()
        .flatten()
        .map(|secret| secret.expose().as_bytes().to_vec())
        .collect();
        router = router.merge(omnistream_ingest::router(IngestState {
            pool: state.pool.clone(),
            intake: omnistream_ingest::intake::Intake::with_own_pool(&state.pool),
            storing: Arc::new(tokio::sync::Semaphore::new(
                omnistream_ingest::receiver::MAX_STORING,
            )),
            app_secrets: Arc::new(secrets),
            verify_token: state
                .config
                .meta_verify_token
                .as_ref()
                .map(|t| t.expose().to_owned()),
            email_secret: state
                .config
                .email_webhook_secret
                .as_ref()
                .map(|t| t.expose().to_owned()),
            mailgun_signing_key: state
                .config
                .mailgun_webhook_signing_key
                .as_ref()
                .map(|t| t.expose().to_owned()),
        }));
    }
    if roles.api {
        router = router.merge(SwaggerUi::new("/docs").url("/api/openapi.json", openapi));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(2 * 1024 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::app::server::request_deadline,
        ))
        .layer(axum::middleware::from_fn(crate::http::auth::csrf::guard))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::peer::record_client_ip,
        ))
        .layer(axum::middleware::from_fn(health::track_requests))
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let request_id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> Response {
    ApiError::Status {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this method is not allowed on this path".into(),
    }
    .into_response()
}
