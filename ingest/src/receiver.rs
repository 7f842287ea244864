//! The HTTP side: `GET/POST /webhooks/meta` and `POST /webhooks/email`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use omnistream_commands::secrets::constant_time_eq;
use omnistream_domain::Channel;
use sqlx::PgPool;

use crate::meta::verify_signature;

/// Webhooks being stored at once, at most; more would only wait for a database connection.
pub const MAX_STORING: usize = 1024;

/// What the receivers need.
#[derive(Clone)]
pub struct IngestState {
    pub pool: PgPool,
    /// Admits at most [`MAX_STORING`] webhooks at once: beyond that a burst is refused with 429
    /// and `Retry-After` (Meta retries anything but a 200) instead of queueing without bound,
    /// which held every waiting request's connection and body in memory (hundreds of MB at
    /// 6,000 webhooks/s). 429 rather than 503: shedding load is not a server failure, and is
    /// not logged as one for every refused request.
    pub storing: Arc<tokio::sync::Semaphore>,
    /// App secrets whose `X-Hub-Signature-256` is accepted (`META_APP_SECRET`, `INSTAGRAM_APP_SECRET`).
    pub app_secrets: Arc<Vec<Vec<u8>>>,
    /// The platform verify token (`META_VERIFY_TOKEN`).
    pub verify_token: Option<String>,
    /// The `X-Webhook-Secret` inbound email must carry (`EMAIL_WEBHOOK_SECRET`).
    pub email_secret: Option<String>,
    /// Mailgun's webhook signing key (`MAILGUN_WEBHOOK_SIGNING_KEY`): a Mailgun route post
    /// whose signature verifies needs no `X-Webhook-Secret`.
    pub mailgun_signing_key: Option<String>,
}

/// How far a Mailgun post's `timestamp` may be from now (a replayed old post is refused).
const MAILGUN_MAX_AGE_SECONDS: i64 = 15 * 60;

/// Whether the body is a Mailgun form whose signature verifies with `key` and whose
/// timestamp is recent.
fn mailgun_authentic(key: &str, content_type: Option<&str>, body: &[u8]) -> bool {
    let Some(fields) = content_type.and_then(|c| crate::email::form_fields(c, body)) else {
        return false;
    };
    let recent = fields
        .iter()
        .find(|f| f.name == "timestamp")
        .and_then(|f| {
            std::str::from_utf8(&f.data)
                .ok()?
                .trim()
                .parse::<i64>()
                .ok()
        })
        .is_some_and(|at| (chrono::Utc::now().timestamp() - at).abs() <= MAILGUN_MAX_AGE_SECONDS);
    recent && crate::email::mailgun_signature_valid(key, &fields)
}

/// Routes of the webhook-ingestor role.
pub fn router<S: Clone + Send + Sync + 'static>(state: IngestState) -> Router<S> {
    Router::new()
        .route("/webhooks/meta", meta_webhook("meta", Channel::Whatsapp))
        .route(
            "/webhooks/email",
            post(receive_email).layer(DefaultBodyLimit::max(crate::email::MAX_EMAIL_BYTES)),
        )
        .route(
            "/webhooks/messenger",
            meta_webhook("messenger", Channel::Messenger),
        )
        .route(
            "/webhooks/instagram",
            meta_webhook("instagram", Channel::Instagram),
        )
        .route("/webhooks/{*channel}", any(unknown_channel))
        .with_state(state)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn unknown_channel() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no webhook receiver for this channel",
    )
}

/// Meta's subscription handshake: echo `hub.challenge` for the platform verify token or the
/// `verify_token` of an account of `channel` (the channel whose receiver is being subscribed).
async fn verify_meta(
    state: &IngestState,
    channel: Channel,
    query: &HashMap<String, String>,
) -> Response {
    let (Some(mode), Some(token), Some(challenge)) = (
        query.get("hub.mode"),
        query.get("hub.verify_token"),
        query.get("hub.challenge"),
    ) else {
        return error(StatusCode::FORBIDDEN, "forbidden", "verification refused");
    };
    if mode != "subscribe" || token.is_empty() {
        return error(StatusCode::FORBIDDEN, "forbidden", "verification refused");
    }
    let platform = state
        .verify_token
        .as_deref()
        .is_some_and(|expected| constant_time_eq(expected.as_bytes(), token.as_bytes()));
    let account = match platform {
        true => true,
        false => sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM integration_accounts WHERE channel = $1 AND verify_token = $2)",
        )
        .bind(channel.as_str())
        .bind(token)
        .fetch_one(&state.pool)
        .await
        .unwrap_or(false),
    };
    if !account {
        return error(StatusCode::FORBIDDEN, "forbidden", "verification refused");
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        challenge.clone(),
    )
        .into_response()
}

/// The routes of a Meta webhook: the `hub.*` handshake on GET (with the verify tokens of
/// `channel`'s accounts), and on POST payloads signed with `X-Hub-Signature-256`, stored as
/// `provider` (`meta` for WhatsApp, `messenger`, `instagram`).
fn meta_webhook(
    provider: &'static str,
    channel: Channel,
) -> axum::routing::MethodRouter<IngestState> {
    get(
        move |State(state): State<IngestState>,
              Query(query): Query<HashMap<String, String>>| async move {
            verify_meta(&state, channel, &query).await
        },
    )
    .post(
        move |State(state): State<IngestState>, headers: HeaderMap, body: Bytes| async move {
            receive_signed(&state, provider, &headers, &body).await
        },
    )
}

/// A Meta-signed payload (`X-Hub-Signature-256` over the raw bytes): checked, stored, then
/// acknowledged with 200.
async fn receive_signed(
    state: &IngestState,
    provider: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let secrets: Vec<&[u8]> = state.app_secrets.iter().map(Vec::as_slice).collect();
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !verify_signature(&secrets, body, signature) {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "X-Hub-Signature-256 is missing or does not match",
        );
    }
    match store(state, provider, None, body).await {
        Ok(()) => (StatusCode::OK, "EVENT_RECEIVED").into_response(),
        Err(refusal) => refusal,
    }
}

/// Records a payload in the raw inbound log, within the [`MAX_STORING`] admission limit. The
/// error is the response to give instead (429 over the limit, 503 when the database fails):
/// the provider retries either, so nothing is lost.
async fn store(
    state: &IngestState,
    provider: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), Response> {
    let Ok(_admitted) = state.storing.try_acquire() else {
        let mut busy = error(
            StatusCode::TOO_MANY_REQUESTS,
            "overloaded",
            "too many webhooks at once; retry",
        );
        busy.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        return Err(busy);
    };
    sqlx::query("INSERT INTO inbound_webhooks (provider, body, content_type) VALUES ($1, $2, $3)")
        .bind(provider)
        .bind(body)
        .bind(content_type)
        .execute(&state.pool)
        .await
        .map(|_| ())
        .map_err(|cause| {
            tracing::error!(error = %cause, provider, "could not store an inbound webhook");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "the payload could not be stored; retry",
            )
        })
}

/// Inbound email (raw MIME, the contract's JSON, Postmark's JSON, SendGrid's or Mailgun's form
/// post): checks `X-Webhook-Secret` (or a Mailgun post's own signature),
/// stores the payload, then says whether it is addressed to a known email account
/// (`{"status": "ok"}`) or not (`{"status": "ignored"}`; it stays in the raw log).
async fn receive_email(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let given = headers
        .get("x-webhook-secret")
        .and_then(|v| v.to_str().ok());
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let authorised = match (&state.email_secret, given) {
        (Some(expected), Some(given)) => constant_time_eq(expected.as_bytes(), given.as_bytes()),
        _ => false,
    } || state
        .mailgun_signing_key
        .as_deref()
        .is_some_and(|key| mailgun_authentic(key, content_type, &body));
    if !authorised {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "X-Webhook-Secret is missing or does not match, and the post carries no valid Mailgun signature",
        );
    }
    if let Err(refusal) = store(&state, "email", content_type, &body).await {
        return refusal;
    }
    // Parsing (MIME, HTML sanitising) can take a while for a large message: off the runtime.
    let declared = content_type.map(str::to_owned);
    let recipients: Vec<String> = tokio::task::spawn_blocking(move || {
        crate::email::parse_inbound(declared.as_deref(), &body)
            .map(|email| {
                email
                    .to
                    .iter()
                    .chain(&email.cc)
                    .map(|m| m.address.clone())
                    .collect()
            })
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    let known = sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM integration_accounts WHERE channel = 'email' AND is_active AND account_key = ANY($1))",
    )
    .bind(&recipients)
    .fetch_one(&state.pool)
    .await
    .unwrap_or(true);
    Json(serde_json::json!({"status": if known { "ok" } else { "ignored" }})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    use tower::ServiceExt;

    const SECRET: &[u8] = b"receiver-test-secret";

    fn signed(body: &'static str) -> Request<Body> {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        Request::post("/webhooks/meta")
            .header("x-hub-signature-256", signature)
            .body(Body::from(body))
            .expect("a valid request")
    }

    #[tokio::test]
    async fn a_burst_beyond_the_storing_limit_is_refused_with_retry_after() {
        // No permit is free, so the handler answers before it would touch the (lazy) pool.
        let state = IngestState {
            pool: PgPool::connect_lazy("postgres://127.0.0.1:1/unused").expect("a lazy pool"),
            storing: Arc::new(tokio::sync::Semaphore::new(0)),
            app_secrets: Arc::new(vec![SECRET.to_vec()]),
            verify_token: None,
            email_secret: None,
            mailgun_signing_key: None,
        };
        let app: Router = router(state);
        let response = app
            .oneshot(signed(
                r#"{"object":"whatsapp_business_account","entry":[]}"#,
            ))
            .await
            .expect("a response");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers().get(axum::http::header::RETRY_AFTER),
            Some(&axum::http::HeaderValue::from_static("1"))
        );
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("a body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(json["error"]["code"], "overloaded");
    }
}
