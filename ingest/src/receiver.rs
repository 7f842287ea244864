//! The HTTP side: `GET/POST /webhooks/{meta,messenger,instagram}` and `POST /webhooks/email`.
//!
//! Every receiver authenticates before it holds a body: a Meta post without its signature
//! header, and an email post with a wrong or missing `X-Webhook-Secret` that cannot be a
//! Mailgun form, are refused from their headers alone; bodies that can only be authenticated
//! once read (Mailgun's signature is a form field) share a fixed memory budget.
//!
//! One file of a little over 600 lines (a fifth of it tests): the Meta and email receivers share
//! the body reading, the admission limits and the store, and what differs per channel is short;
//! the parsing itself is in [`crate::channels`].

use omnistream_commands::infra::stages::{self, Stage};
use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, MethodRouter};
use axum::{Json, Router};
use bytes::Bytes;
use omnistream_commands::infra::secrets::constant_time_eq;
use omnistream_domain::Channel;
use sqlx::PgPool;
use tokio::sync::Semaphore;

use crate::channels::email;
use crate::channels::meta::verify_signature;
use crate::intake::{InboundPayload, Intake};

/// Webhook requests being read, checked and stored at once, at most; more would only wait for
/// the CPU or a database connection.
pub const MAX_STORING: usize = 1024;

/// What the receivers need.
#[derive(Clone)]
pub struct IngestState {
    pub pool: PgPool,
    /// Where acknowledged payloads are stored, many to a commit.
    pub intake: Intake,
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

/// Longest Mailgun `token` kept for replay detection (Mailgun's are 50 characters).
const MAILGUN_MAX_TOKEN_CHARS: usize = 128;

/// Largest Meta webhook body (Meta batches at most 1,000 updates, far below this).
pub const MAX_META_BYTES: usize = 2 * 1024 * 1024;

/// MiB of not yet authenticated email bodies (Mailgun posts, whose signature is inside the
/// body) read at once, across all requests: two of the largest emails. A post over the budget
/// is refused with 429 and `Retry-After` before its body is read (Mailgun retries), so
/// unauthenticated senders cannot make the server hold more than this.
pub const UNAUTHENTICATED_EMAIL_MIB: u32 = 80;

/// Inbound emails parsed at once by the receiver (to answer `ok` or `ignored`); the others wait.
/// A parse holds a multiple of the body in memory, so this bounds the receiver's parsing memory.
pub const PARSING_AT_ONCE: usize = 2;

/// A Mailgun post's signature fields, once the signature verified: the `token` may be used
/// once, until its `timestamp` is older than the window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MailgunToken {
    token: String,
    timestamp: i64,
}

/// The `token` and `timestamp` of a Mailgun form whose signature verifies with `key`, whose
/// timestamp is recent and whose token is no longer than [`MAILGUN_MAX_TOKEN_CHARS`].
fn mailgun_authentic(key: &str, content_type: Option<&str>, body: &[u8]) -> Option<MailgunToken> {
    let fields = content_type.and_then(|c| email::form_fields(c, body))?;
    let value = |name: &str| {
        fields
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| std::str::from_utf8(&f.data).ok())
            .map(str::trim)
    };
    let timestamp = value("timestamp")?.parse::<i64>().ok()?;
    let token = value("token").filter(|t| !t.is_empty() && t.len() <= MAILGUN_MAX_TOKEN_CHARS)?;
    let recent = (chrono::Utc::now().timestamp() - timestamp).abs() <= MAILGUN_MAX_AGE_SECONDS;
    (recent && email::mailgun_signature_valid(key, &fields)).then(|| MailgunToken {
        token: token.to_owned(),
        timestamp,
    })
}

/// The receivers' state: the configuration and the admission limits that bound how much
/// memory requests of each class can hold at once.
#[derive(Clone)]
struct Receivers {
    config: IngestState,
    /// One permit per MiB of unauthenticated email body being read ([`UNAUTHENTICATED_EMAIL_MIB`]).
    unauthenticated: Arc<Semaphore>,
    /// One permit per email being parsed by the receiver ([`PARSING_AT_ONCE`]).
    parsing: Arc<Semaphore>,
}

/// Routes of the webhook-ingestor role.
pub fn router<S: Clone + Send + Sync + 'static>(state: IngestState) -> Router<S> {
    let receivers = Receivers {
        config: state,
        unauthenticated: Arc::new(Semaphore::new(UNAUTHENTICATED_EMAIL_MIB as usize)),
        parsing: Arc::new(Semaphore::new(PARSING_AT_ONCE)),
    };
    Router::new()
        .route("/webhooks/meta", meta_webhook("meta", Channel::Whatsapp))
        .route("/webhooks/email", post(receive_email))
        .route(
            "/webhooks/messenger",
            meta_webhook("messenger", Channel::Messenger),
        )
        .route(
            "/webhooks/instagram",
            meta_webhook("instagram", Channel::Instagram),
        )
        .route("/webhooks/{*channel}", any(unknown_channel))
        .with_state(receivers)
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
fn meta_webhook(provider: &'static str, channel: Channel) -> MethodRouter<Receivers> {
    get(
        move |State(state): State<Receivers>,
              Query(query): Query<HashMap<String, String>>| async move {
            verify_meta(&state.config, channel, &query).await
        },
    )
    .post(
        move |State(state): State<Receivers>, request: Request| async move {
            receive_signed(&state.config, provider, request).await
        },
    )
}

fn unsigned() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        "X-Hub-Signature-256 is missing or does not match",
    )
}

/// Reads the whole body, at most `limit` bytes: 413 `payload_too_large` beyond it, answered
/// from a larger `Content-Length` before anything is read; 400 when the body breaks off.
async fn read_body(request: Request, limit: usize) -> Result<Bytes, Response> {
    use futures::StreamExt;
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = header(
        request.headers(),
        axum::http::header::CONTENT_LENGTH.as_str(),
    )
    .and_then(|length| length.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let mut body = bytes::BytesMut::with_capacity(declared.unwrap_or(0));
    let mut chunks = request.into_body().into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the body could not be read",
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A Meta-signed payload (`X-Hub-Signature-256` over the raw bytes): checked, stored, then
/// acknowledged with 200. A request without the header is refused before its body is read.
async fn receive_signed(state: &IngestState, provider: &str, request: Request) -> Response {
    let Some(signature) = header(request.headers(), "x-hub-signature-256").map(str::to_owned)
    else {
        return unsigned();
    };
    let Some(_admitted) = admit(state) else {
        return too_many_at_once();
    };
    let body = match read_body(request, MAX_META_BYTES).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let secrets: Vec<&[u8]> = state.app_secrets.iter().map(Vec::as_slice).collect();
    if !verify_signature(&secrets, &body, Some(&signature)) {
        return unsigned();
    }
    match store(state, provider, None, &body, None).await {
        Ok(()) => (StatusCode::OK, "EVENT_RECEIVED").into_response(),
        Err(refusal) => refusal,
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Admits one more webhook request within [`MAX_STORING`], before its body is read; `None`
/// beyond it ([`too_many_at_once`]). Counted from the body's first byte to the stored row, so
/// an overloaded server refuses quickly instead of holding every waiting request's connection
/// and body while the CPU catches up.
fn admit(state: &IngestState) -> Option<tokio::sync::SemaphorePermit<'_>> {
    state.storing.try_acquire().ok()
}

/// The answer to a request beyond [`MAX_STORING`]: 429 with `Retry-After`.
fn too_many_at_once() -> Response {
    overloaded("too many webhooks at once; retry")
}

/// 429 `overloaded` with `Retry-After: 1`.
fn overloaded(message: &str) -> Response {
    let mut busy = error(StatusCode::TOO_MANY_REQUESTS, "overloaded", message);
    busy.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    busy
}

/// Why a payload was not recorded: the response to give instead.
enum StoreRefusal {
    /// The Mailgun token was already used: a replayed (or re-signed) post.
    Replayed,
    /// Over the admission limit, or the database failed.
    Unavailable(Response),
}

/// Records a payload in the raw inbound log (the request was [admitted](admit) before its body
/// was read). The error is the response to give instead (503 when the database fails): the
/// provider retries, so nothing is lost.
///
/// With a Mailgun `token`, the token is recorded in the same transaction and the payload is
/// refused when the token was already used ([`StoreRefusal::Replayed`]): Mailgun signs only the
/// timestamp and token, not the message, so a captured signature must not carry a second
/// message. A post that could not be stored leaves its token unused, so Mailgun's retry passes.
async fn store(
    state: &IngestState,
    provider: &str,
    content_type: Option<&str>,
    body: &[u8],
    token: Option<&MailgunToken>,
) -> Result<(), Response> {
    store_once(state, provider, content_type, body, token)
        .await
        .map_err(|refusal| match refusal {
            StoreRefusal::Replayed => error(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "this Mailgun signature was already used",
            ),
            StoreRefusal::Unavailable(response) => response,
        })
}

async fn store_once(
    state: &IngestState,
    provider: &str,
    content_type: Option<&str>,
    body: &[u8],
    token: Option<&MailgunToken>,
) -> Result<(), StoreRefusal> {
    let admitted_at = std::time::Instant::now();
    let unavailable = |cause: sqlx::Error| {
        tracing::error!(error = %cause, provider, "could not store an inbound webhook");
        StoreRefusal::Unavailable(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the payload could not be stored; retry",
        ))
    };
    // Worked out before the transaction opens: it parses the payload.
    let ordering_key = crate::channels::ordering_key_of(provider, content_type, body);
    let Some(token) = token else {
        let payload = InboundPayload {
            provider: provider.to_owned(),
            body: body.to_vec(),
            content_type: content_type.map(str::to_owned),
            ordering_key,
        };
        state.intake.store(payload).await.map_err(|cause| {
            tracing::error!(error = %cause, provider, "could not store an inbound webhook");
            StoreRefusal::Unavailable(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "the payload could not be stored; retry",
            ))
        })?;
        stages::record(Stage::Stored, admitted_at.elapsed());
        return Ok(());
    };
    // A Mailgun post: its token is claimed in the transaction that stores it.
    let mut tx = state.pool.begin().await.map_err(unavailable)?;
    if !claim_mailgun_token(&mut tx, token)
        .await
        .map_err(unavailable)?
    {
        return Err(StoreRefusal::Replayed);
    }
    sqlx::query(
        "INSERT INTO inbound_webhooks (provider, body, content_type, ordering_key) VALUES ($1, $2, $3, $4)",
    )
    .bind(provider)
    .bind(body)
    .bind(content_type)
    .bind(ordering_key)
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)?;
    stages::record(Stage::Stored, admitted_at.elapsed());
    Ok(())
}

/// Records a Mailgun token as used until its signature's window has passed; `false` when it
/// was already recorded. A concurrent post with the same token waits on the row until this
/// transaction ends, then sees it. Expired tokens are pruned here, a bounded batch at a time,
/// skipping rows another instance is pruning.
async fn claim_mailgun_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    token: &MailgunToken,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "DELETE FROM mailgun_webhook_tokens WHERE token = ANY (ARRAY(
             SELECT token FROM mailgun_webhook_tokens WHERE expires_at < now()
             LIMIT 100 FOR UPDATE SKIP LOCKED))",
    )
    .execute(&mut **tx)
    .await?;
    let claimed = sqlx::query(
        "INSERT INTO mailgun_webhook_tokens (token, expires_at)
         VALUES ($1, to_timestamp($2) + make_interval(secs => $3))
         ON CONFLICT (token) DO NOTHING",
    )
    .bind(&token.token)
    .bind(token.timestamp as f64)
    .bind(MAILGUN_MAX_AGE_SECONDS as f64)
    .execute(&mut **tx)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// How an inbound email post claims to be authentic, judged from its headers alone.
enum EmailCredential {
    /// `X-Webhook-Secret` matched.
    Secret,
    /// No secret header, but a form post that may carry a Mailgun signature in its body.
    MaybeMailgun(String),
}

fn email_unauthorised() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        "X-Webhook-Secret is missing or does not match, and the post carries no valid Mailgun signature",
    )
}

/// Decides from the headers, before any of the body is read: a matching `X-Webhook-Secret`
/// authenticates; a wrong one is refused (`None`); without one only a form post can still be
/// authentic (Mailgun signs inside the form), and only when a Mailgun key is configured.
fn email_credential(state: &IngestState, headers: &HeaderMap) -> Option<EmailCredential> {
    if let Some(given) = header(headers, "x-webhook-secret") {
        return match &state.email_secret {
            Some(expected) if constant_time_eq(expected.as_bytes(), given.as_bytes()) => {
                Some(EmailCredential::Secret)
            }
            _ => None,
        };
    }
    let form = header(headers, axum::http::header::CONTENT_TYPE.as_str()).is_some_and(|c| {
        let media_type = c.split(';').next().unwrap_or_default().trim();
        media_type.eq_ignore_ascii_case("multipart/form-data")
            || media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    match &state.mailgun_signing_key {
        Some(key) if form => Some(EmailCredential::MaybeMailgun(key.clone())),
        _ => None,
    }
}

/// MiB permits an unauthenticated body of `declared` bytes takes from the budget (the largest
/// email when the length is not declared, as with a chunked body).
fn unauthenticated_permits(declared: Option<u64>) -> u32 {
    const MIB: u64 = 1024 * 1024;
    let most = email::MAX_EMAIL_BYTES as u64;
    let bytes = declared.unwrap_or(most).min(most);
    u32::try_from(bytes.div_ceil(MIB).max(1)).unwrap_or(UNAUTHENTICATED_EMAIL_MIB)
}

/// Inbound email (raw MIME, the contract's JSON, Postmark's JSON, SendGrid's or Mailgun's form
/// post): checks `X-Webhook-Secret` before reading the body (or, for a Mailgun post, reads it
/// within the unauthenticated budget and checks its signature and that its token is new),
/// stores the payload, then says whether it is addressed to a known email account
/// (`{"status": "ok"}`) or not (`{"status": "ignored"}`; it stays in the raw log).
async fn receive_email(State(state): State<Receivers>, request: Request) -> Response {
    let Some(credential) = email_credential(&state.config, request.headers()) else {
        return email_unauthorised();
    };
    let content_type =
        header(request.headers(), axum::http::header::CONTENT_TYPE.as_str()).map(str::to_owned);
    let Some(_admitted) = admit(&state.config) else {
        return too_many_at_once();
    };
    let (body, token) = match credential {
        EmailCredential::Secret => match read_body(request, email::MAX_EMAIL_BYTES).await {
            Ok(body) => (body, None),
            Err(refusal) => return refusal,
        },
        EmailCredential::MaybeMailgun(key) => {
            let declared = header(
                request.headers(),
                axum::http::header::CONTENT_LENGTH.as_str(),
            )
            .and_then(|length| length.parse::<u64>().ok());
            let Ok(_reading) = Arc::clone(&state.unauthenticated)
                .try_acquire_many_owned(unauthenticated_permits(declared))
            else {
                return overloaded("too many unauthenticated emails being received; retry");
            };
            let body = match read_body(request, email::MAX_EMAIL_BYTES).await {
                Ok(body) => body,
                Err(refusal) => return refusal,
            };
            let authentic = mailgun_authentic(&key, content_type.as_deref(), &body);
            match authentic {
                Some(token) => (body, Some(token)),
                None => return email_unauthorised(),
            }
        }
    };
    if let Err(refusal) = store(
        &state.config,
        email::PROVIDER,
        content_type.as_deref(),
        &body,
        token.as_ref(),
    )
    .await
    {
        return refusal;
    }
    let Ok(_parsing) = state.parsing.acquire().await else {
        return Json(serde_json::json!({"status": "ok"})).into_response();
    };
    // Parsing (MIME, HTML sanitising) can take a while for a large message: off the runtime.
    let recipients: Vec<String> =
        tokio::task::spawn_blocking(move || email::recipients(content_type.as_deref(), &body))
            .await
            .unwrap_or_default();
    let known = sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM integration_accounts WHERE channel = 'email' AND is_active AND account_key = ANY($1))",
    )
    .bind(&recipients)
    .fetch_one(&state.config.pool)
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
            intake: Intake::start(
                PgPool::connect_lazy("postgres://127.0.0.1:1/unused").expect("a lazy pool"),
            ),
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

    fn email_state(secret: Option<&str>, mailgun: Option<&str>) -> IngestState {
        IngestState {
            pool: PgPool::connect_lazy("postgres://127.0.0.1:1/unused").expect("a lazy pool"),
            intake: Intake::start(
                PgPool::connect_lazy("postgres://127.0.0.1:1/unused").expect("a lazy pool"),
            ),
            storing: Arc::new(Semaphore::new(1)),
            app_secrets: Arc::new(Vec::new()),
            verify_token: None,
            email_secret: secret.map(str::to_owned),
            mailgun_signing_key: mailgun.map(str::to_owned),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    axum::http::HeaderName::from_static(name),
                    axum::http::HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn an_email_post_is_judged_by_its_headers_before_its_body() {
        let both = email_state(Some("s3cret"), Some("mg-key"));
        let form = ("content-type", "multipart/form-data; boundary=x");
        fn secret(state: &IngestState, pairs: &[(&'static str, &'static str)]) -> bool {
            matches!(
                email_credential(state, &headers(pairs)),
                Some(EmailCredential::Secret)
            )
        }
        fn maybe_mailgun(state: &IngestState, pairs: &[(&'static str, &'static str)]) -> bool {
            matches!(
                email_credential(state, &headers(pairs)),
                Some(EmailCredential::MaybeMailgun(_))
            )
        }
        assert!(secret(&both, &[("x-webhook-secret", "s3cret")]));
        assert!(
            email_credential(&both, &headers(&[("x-webhook-secret", "wrong"), form])).is_none()
        );
        assert!(maybe_mailgun(&both, &[form]));
        assert!(maybe_mailgun(
            &both,
            &[("content-type", "application/x-www-form-urlencoded")]
        ));
        assert!(email_credential(&both, &headers(&[("content-type", "message/rfc822")])).is_none());
        let no_mailgun = email_state(Some("s3cret"), None);
        assert!(email_credential(&no_mailgun, &headers(&[form])).is_none());
    }

    #[test]
    fn unauthenticated_bodies_take_their_declared_size_from_the_budget() {
        assert_eq!(unauthenticated_permits(Some(10)), 1);
        assert_eq!(unauthenticated_permits(Some(3 * 1024 * 1024 + 1)), 4);
        assert_eq!(
            unauthenticated_permits(None),
            40,
            "undeclared: the largest email"
        );
        assert_eq!(unauthenticated_permits(Some(u64::MAX)), 40);
    }
}
