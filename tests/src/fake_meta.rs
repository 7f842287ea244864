//! A fake Meta Graph API (WhatsApp Cloud API) for end-to-end tests, speaking Meta's real request
//! and response formats, plus builders of signed inbound webhook payloads.
//!
//! Point the application at [`FakeMeta::base_url`] (it takes the place of
//! `https://graph.facebook.com/v21.0`; a leading version segment such as `/v21.0` is accepted
//! too). Every request is recorded, in order. All routes except `GET /oauth/access_token` need a
//! token (`Authorization: Bearer …`, or Meta's `access_token` query parameter) and answer 401
//! with Meta's code 190 otherwise.
//!
//! | route | answer |
//! |---|---|
//! | `POST /{phone_number_id}/messages` | `{"messaging_product":"whatsapp","contacts":[…],"messages":[{"id":"wamid.…"}]}`, or the next canned failure |
//! | `POST /{phone_number_id}/register` | `{"success":true}` |
//! | `POST /{waba_id}/subscribed_apps` | `{"success":true}` |
//! | `GET /{waba_id}/subscribed_apps` | `{"data":[{"whatsapp_business_api_data":{"id":"1","name":"OmniStream"}}]}` |
//! | `GET /{id}` | the union of a phone-number and a WABA object |
//! | `GET /oauth/access_token` | `{"access_token":"EAAG-exchanged","token_type":"bearer"}` (Embedded Signup: no `grant_type`, no `redirect_uri`) |
//!
//! WhatsApp media (`GET /{media_id}` and its download URL, both needing the media's token) and
//! the Messenger/Instagram CDN (`GET /cdn/{name}`) are served by [`media`]
//! ([`FakeMeta::add_whatsapp_media`], [`FakeMeta::serve_cdn`], [`FakeMeta::expire_cdn`]).
//!
//! The OAuth routes of Facebook Login and Instagram Login live in [`oauth`] (fixed tokens, each
//! checked; codes work once, codes starting with `bad` never):
//!
//! | route | answer |
//! |---|---|
//! | `GET /oauth/access_token?client_id&client_secret&redirect_uri&code` | `{"access_token":`[`FAKE_FB_SHORT_USER_TOKEN`]`,…}` |
//! | `GET /oauth/access_token?grant_type=fb_exchange_token&client_id&client_secret&fb_exchange_token` | `{"access_token":`[`FAKE_FB_LONG_USER_TOKEN`]`,"expires_in"}` |
//! | `GET /me/accounts` (user token) | one of [`FAKE_PAGES`] per result page, with `paging.cursors.after` and `paging.next` |
//! | `GET /{page_id}?fields=access_token,name` (user token) | `{"access_token":`[`fake_page_token`]`,"name","id"}` |
//! | `POST`/`DELETE /{page_id}/subscribed_apps` (that Page's token; POST needs `subscribed_fields`) | `{"success":true}`, else 403 code 210 |
//! | `GET`/`POST`/`DELETE /me/messenger_profile` (a Page token) | `{"data":[{"persistent_menu":[…]}]}` or `{"data":[]}`; `{"result":"success"}` |
//! | `POST /oauth/access_token` (form: client_id, client_secret, grant_type=authorization_code, redirect_uri, code) | `{"data":[{"access_token":`[`FAKE_IG_SHORT_LIVED_TOKEN`]`,"user_id","permissions"}]}` (flat for codes starting with `legacy`); errors in api.instagram.com's `{"error_type","code","error_message"}` |
//! | `GET /access_token?grant_type=ig_exchange_token&client_secret&access_token` | `{"access_token":`[`FAKE_IG_LONG_LIVED_TOKEN`]`,"token_type","expires_in"}` |
//! | `GET /me` (Instagram token) | `{"id":`[`FAKE_IG_APP_SCOPED_ID`]`,"user_id":`[`FAKE_IG_USER_ID`]`,"username",…}` |
//! | `POST /me/subscribed_apps?subscribed_fields=…` (Instagram token) | `{"success":true}` |
//!
//! The server runs in a background task of the current tokio runtime and stops with it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

mod media;
mod oauth;

pub use oauth::{
    fake_ig_token, fake_page_token, FAKE_FB_LONG_USER_TOKEN, FAKE_FB_SHORT_USER_TOKEN,
    FAKE_IG_APP_SCOPED_ID, FAKE_IG_LONG_LIVED_EXPIRES_IN, FAKE_IG_LONG_LIVED_TOKEN,
    FAKE_IG_REFRESHED_TOKEN, FAKE_IG_SHORT_LIVED_TOKEN, FAKE_IG_USERNAME, FAKE_IG_USER_ID,
    FAKE_PAGES,
};

/// The WABA id used by [`whatsapp_webhook`] as `entry[].id`.
pub const FAKE_WABA_ID: &str = "100000000000001";

/// `metadata.display_phone_number` in built webhooks (digits of the fake's display number).
pub const FAKE_DISPLAY_PHONE_NUMBER: &str = "62811000";

/// The token `GET /oauth/access_token` hands out.
pub const FAKE_EXCHANGED_TOKEN: &str = "EAAG-exchanged";

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path as received, e.g. `/1061/messages`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// The `Authorization` header, e.g. `Bearer EAAG…`.
    pub authorization: Option<String>,
    /// The JSON body; `null` when empty, a JSON string holding the raw text when not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// The bearer token, without the `Bearer ` prefix.
    pub fn bearer_token(&self) -> Option<&str> {
        bearer(self.authorization.as_deref())
    }

    /// The phone number id of a `POST /{phone_number_id}/messages`.
    pub fn phone_number_id(&self) -> Option<&str> {
        match route_segments(&self.path).as_slice() {
            [id, "messages"] => Some(id),
            _ => None,
        }
    }
}

#[derive(Default)]
struct State {
    requests: Vec<RecordedRequest>,
    failures: VecDeque<(u16, Value)>,
    sends: u64,
    oauth: oauth::OAuthState,
    media: media::MediaState,
    /// The fake's own base URL (download URLs point back at it).
    base_url: String,
}

/// The fake Graph API server. Clones share the same server and records.
#[derive(Clone)]
pub struct FakeMeta {
    /// `http://127.0.0.1:PORT`, to use as the Graph API base URL.
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMeta")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl FakeMeta {
    /// Binds 127.0.0.1:0 and serves in a background tokio task.
    pub async fn start() -> FakeMeta {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake Meta: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake Meta: local address");
        lock(&state).base_url = format!("http://{addr}");
        let handler_state = state.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = handler_state.clone();
                async move { handle(&state, method, uri, headers, body) }
            },
        );
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("fake Meta server stopped: {error}");
            }
        });
        FakeMeta {
            base_url: format!("http://{addr}"),
            state,
        }
    }

    /// Every request received, in order.
    pub async fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Only the `POST /{id}/messages` requests (answered with success or not), in order.
    pub async fn sent_messages(&self) -> Vec<RecordedRequest> {
        lock(&self.state)
            .requests
            .iter()
            .filter(|r| is_send(r))
            .cloned()
            .collect()
    }

    /// Polls until at least `n` sends were received and returns them all (possibly more than
    /// `n`). Panics, listing what was received, once no request has arrived for `timeout`.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let mut patience = crate::patience::Patience::new(timeout);
        loop {
            let sent = self.sent_messages().await;
            if sent.len() >= n {
                return sent;
            }
            if !patience.progressing(self.requests().await.len()) {
                let seen: Vec<String> = self
                    .requests()
                    .await
                    .iter()
                    .map(|r| format!("{} {} {}", r.method, r.path, r.body))
                    .collect();
                panic!(
                    "fake Meta: expected at least {n} sent message(s) (nothing new for {timeout:?}), got {}; \
                     all requests received ({}):\n{}",
                    sent.len(),
                    seen.len(),
                    seen.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Queues canned answers for the next authorized sends, in order, e.g.
    /// `[(429, graph_error_body(130429, "…")), (400, graph_error_body(131026, "…"))]`. A 429
    /// answer also carries `Retry-After: 1`.
    pub async fn fail_next_sends(&self, responses: Vec<(u16, Value)>) {
        lock(&self.state).failures.extend(responses);
    }

    /// Forgets the recorded requests (queued failures stay).
    pub async fn clear_requests(&self) {
        lock(&self.state).requests.clear();
    }
}

/// Meta's error body: `{"error":{"message":"(#code) message","type":"OAuthException","code",
/// "fbtrace_id"}}`.
pub fn graph_error_body(code: i64, message: &str) -> Value {
    json!({
        "error": {
            "message": format!("(#{code}) {message}"),
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "AFakeTraceId"
        }
    })
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Path segments without empty ones and without a leading Graph version (`v21.0`).
fn route_segments(path: &str) -> Vec<&str> {
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is_version = |s: &str| {
        s.strip_prefix('v').is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
    };
    if segments.len() > 1 && is_version(segments[0]) {
        segments.remove(0);
    }
    segments
}

fn is_send(request: &RecordedRequest) -> bool {
    request.method == "POST" && request.phone_number_id().is_some()
}

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    let query = query?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(value: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (status, Json(graph_error_body(code, message))).into_response()
}

/// Meta's 400 for a bad request (code 100).
fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, 100, message)
}

/// Meta's answer to a missing parameter, for the first of `keys` that is missing.
fn missing(param: &impl Fn(&str) -> Option<String>, keys: &[&str]) -> Option<Response> {
    keys.iter()
        .find(|key| param(key).is_none())
        .map(|key| bad_request(&format!("Missing {key} parameter.")))
}

fn ok(body: Value) -> Response {
    Json(body).into_response()
}

fn handle(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body_json = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let request = RecordedRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        authorization: headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body_json,
    };
    let mut state = lock(state);
    state.requests.push(request.clone());

    let segments = route_segments(&request.path);
    let query = request.query.as_deref();

    let base_url = state.base_url.clone();
    if let Some(response) = media::route(&state, &base_url, &method, &segments, &request) {
        return response;
    }

    if let Some(response) = oauth::route(&mut state, &method, &segments, &request) {
        return response;
    }

    if let ["oauth", "access_token"] = segments.as_slice() {
        if method != Method::GET {
            return bad_request("Unsupported request method");
        }
        let param = |key: &str| query_param(query, key).filter(|v| !v.is_empty());
        return missing(&param, &["client_id", "client_secret", "code"]).unwrap_or_else(|| {
            ok(json!({"access_token": FAKE_EXCHANGED_TOKEN, "token_type": "bearer"}))
        });
    }

    let authorized = request.bearer_token().is_some()
        || query_param(query, "access_token").is_some_and(|t| !t.is_empty());
    if !authorized {
        return error(
            StatusCode::UNAUTHORIZED,
            190,
            "An access token is required to request this resource.",
        );
    }

    match (&method, segments.as_slice()) {
        (&Method::POST, [_, "messages"]) => send(&mut state, &request.body),
        (&Method::POST, [_, "register" | "subscribed_apps"]) => ok(json!({"success": true})),
        (&Method::GET, [_, "subscribed_apps"]) => ok(json!({
            "data": [{"whatsapp_business_api_data": {"id": "1", "name": "OmniStream"}}]
        })),
        (&Method::GET, [id]) => ok(json!({
            "id": id,
            "display_phone_number": "+62 811-000",
            "verified_name": "Test",
            "quality_rating": "GREEN",
            "code_verification_status": "VERIFIED",
            "name_status": "APPROVED",
            "status": "CONNECTED",
            "name": "Test",
            "currency": "USD",
            "timezone_id": "1",
            "message_template_namespace": "fake_template_namespace"
        })),
        _ => bad_request(&format!(
            "Unsupported {} request. Object with ID '{}' does not exist (fake Meta)",
            method, request.path
        )),
    }
}

/// `POST /{phone_number_id}/messages`: validates the basics, then answers with the next canned
/// failure or with a fresh wamid.
fn send(state: &mut State, body: &Value) -> Response {
    // Messenger / Instagram Send API: `{"recipient": {"id"}, "messaging_type", "message"}`.
    if let Some(recipient) = body.pointer("/recipient/id").and_then(Value::as_str) {
        if body.get("message").is_none() {
            return bad_request("The parameter message is required.");
        }
        state.sends += 1;
        return ok(
            json!({"recipient_id": recipient, "message_id": format!("m_fake{:06}", state.sends)}),
        );
    }
    if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return bad_request("The parameter messaging_product is required.");
    }
    let Some(to) = body
        .get("to")
        .and_then(Value::as_str)
        .filter(|to| !to.is_empty())
    else {
        return bad_request("The parameter to is required.");
    };
    if let Some((status, body)) = state.failures.pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        return response;
    }
    state.sends += 1;
    let wa_id = to.trim_start_matches('+');
    let wamid = format!(
        "wamid.HBgL{}{:06}",
        uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
        state.sends
    );
    ok(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": wa_id}],
        "messages": [{"id": wamid}]
    }))
}

/// `X-Hub-Signature-256` value for `body`: `sha256=` + lowercase hex HMAC-SHA256 keyed with the
/// app secret.
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Serialises `payload` and signs the exact bytes: `(body, X-Hub-Signature-256 value)`.
pub fn signed(app_secret: &str, payload: &Value) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(payload).expect("JSON serialises");
    let signature = sign(app_secret, &body);
    (body, signature)
}

/// The full WhatsApp webhook envelope around one change, with `entry[].id` = [`FAKE_WABA_ID`]:
/// `{"object":"whatsapp_business_account","entry":[{"id",changes:[{"field":"messages","value"}]}]}`
/// where `value` is `{"messaging_product":"whatsapp","metadata":{display_phone_number,
/// phone_number_id}}` merged with the fields of `value_extra` (which win).
pub fn whatsapp_webhook(phone_number_id: &str, value_extra: Value) -> Value {
    whatsapp_webhook_for(FAKE_WABA_ID, phone_number_id, value_extra)
}

/// [`whatsapp_webhook`] with an explicit WABA id.
pub fn whatsapp_webhook_for(waba_id: &str, phone_number_id: &str, value_extra: Value) -> Value {
    let mut value = Map::new();
    value.insert("messaging_product".into(), json!("whatsapp"));
    value.insert(
        "metadata".into(),
        json!({
            "display_phone_number": FAKE_DISPLAY_PHONE_NUMBER,
            "phone_number_id": phone_number_id
        }),
    );
    match value_extra {
        Value::Object(extra) => value.extend(extra),
        Value::Null => {}
        other => panic!("whatsapp_webhook: value_extra must be a JSON object, got {other}"),
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": waba_id,
            "changes": [{"field": "messages", "value": Value::Object(value)}]
        }]
    })
}

/// An inbound text message webhook, as Meta sends it (timestamps are decimal strings).
pub fn whatsapp_text_webhook(
    phone_number_id: &str,
    from_wa_id: &str,
    profile_name: &str,
    wamid: &str,
    text: &str,
    unix_ts: i64,
) -> Value {
    whatsapp_webhook(
        phone_number_id,
        json!({
            "contacts": [{"profile": {"name": profile_name}, "wa_id": from_wa_id}],
            "messages": [{
                "from": from_wa_id,
                "id": wamid,
                "timestamp": unix_ts.to_string(),
                "text": {"body": text},
                "type": "text"
            }]
        }),
    )
}

/// An outbound message status webhook (`sent`, `delivered`, `read`, `failed`, …). `failed` adds
/// `errors[{code:131026,title:"Message undeliverable",…}]`; the others carry `conversation` and
/// `pricing` like Meta's.
pub fn whatsapp_status_webhook(
    phone_number_id: &str,
    recipient_wa_id: &str,
    wamid: &str,
    status: &str,
    unix_ts: i64,
) -> Value {
    let mut entry = json!({
        "id": wamid,
        "status": status,
        "timestamp": unix_ts.to_string(),
        "recipient_id": recipient_wa_id
    });
    if status == "failed" {
        entry["errors"] = json!([{
            "code": 131026,
            "title": "Message undeliverable",
            "message": "Message undeliverable",
            "error_data": {"details": "Message Undeliverable."},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
        }]);
    } else {
        entry["conversation"] = json!({
            "id": format!("conv-{recipient_wa_id}"),
            "origin": {"type": "service"}
        });
        entry["pricing"] = json!({"billable": true, "pricing_model": "CBP", "category": "service"});
    }
    whatsapp_webhook(phone_number_id, json!({ "statuses": [entry] }))
}

#[cfg(test)]
mod tests;
