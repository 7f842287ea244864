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
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

mod oauth;

pub use oauth::{
    fake_page_token, FAKE_FB_LONG_USER_TOKEN, FAKE_FB_SHORT_USER_TOKEN, FAKE_IG_APP_SCOPED_ID,
    FAKE_IG_LONG_LIVED_EXPIRES_IN, FAKE_IG_LONG_LIVED_TOKEN, FAKE_IG_REFRESHED_TOKEN,
    FAKE_IG_SHORT_LIVED_TOKEN, FAKE_IG_USERNAME, FAKE_IG_USER_ID, FAKE_PAGES,
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
    /// `n`). Panics, listing what was received, when `timeout` passes first.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let sent = self.sent_messages().await;
            if sent.len() >= n {
                return sent;
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = self
                    .requests()
                    .await
                    .iter()
                    .map(|r| format!("{} {} {}", r.method, r.path, r.body))
                    .collect();
                panic!(
                    "fake Meta: expected at least {n} sent message(s) within {timeout:?}, got {}; \
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

    if let Some(response) = oauth::route(&mut state, &method, &segments, &request) {
        return response;
    }

    if let ["oauth", "access_token"] = segments.as_slice() {
        if method != Method::GET {
            return error(StatusCode::BAD_REQUEST, 100, "Unsupported request method");
        }
        for key in ["client_id", "client_secret", "code"] {
            if query_param(query, key).is_none_or(|v| v.is_empty()) {
                return error(
                    StatusCode::BAD_REQUEST,
                    100,
                    &format!("Missing {key} parameter."),
                );
            }
        }
        return Json(json!({"access_token": FAKE_EXCHANGED_TOKEN, "token_type": "bearer"}))
            .into_response();
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
        (&Method::POST, [_, "register"]) => Json(json!({"success": true})).into_response(),
        (&Method::POST, [_, "subscribed_apps"]) => Json(json!({"success": true})).into_response(),
        (&Method::GET, [_, "subscribed_apps"]) => Json(json!({
            "data": [{"whatsapp_business_api_data": {"id": "1", "name": "OmniStream"}}]
        }))
        .into_response(),
        (&Method::GET, [id]) => Json(json!({
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
        }))
        .into_response(),
        _ => error(
            StatusCode::BAD_REQUEST,
            100,
            &format!(
                "Unsupported {} request. Object with ID '{}' does not exist (fake Meta)",
                method, request.path
            ),
        ),
    }
}

/// `POST /{phone_number_id}/messages`: validates the basics, then answers with the next canned
/// failure or with a fresh wamid.
fn send(state: &mut State, body: &Value) -> Response {
    // Messenger / Instagram Send API: `{"recipient": {"id"}, "messaging_type", "message"}`.
    if let Some(recipient) = body.pointer("/recipient/id").and_then(Value::as_str) {
        if body.get("message").is_none() {
            return error(
                StatusCode::BAD_REQUEST,
                100,
                "The parameter message is required.",
            );
        }
        state.sends += 1;
        return Json(
            json!({"recipient_id": recipient, "message_id": format!("m_fake{:06}", state.sends)}),
        )
        .into_response();
    }
    if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return error(
            StatusCode::BAD_REQUEST,
            100,
            "The parameter messaging_product is required.",
        );
    }
    let Some(to) = body
        .get("to")
        .and_then(Value::as_str)
        .filter(|to| !to.is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            100,
            "The parameter to is required.",
        );
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
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": wa_id}],
        "messages": [{"id": wamid}]
    }))
    .into_response()
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
mod tests {
    use super::*;

    fn text(to: &str) -> Value {
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"preview_url": false, "body": "hello"}
        })
    }

    #[tokio::test]
    async fn records_a_sent_message_and_answers_like_meta() {
        let fake = FakeMeta::start().await;
        let http = reqwest::Client::new();

        let response = http
            .post(format!("{}/1061/messages", fake.base_url))
            .bearer_auth("EAAG-token")
            .json(&text("6281100001"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["messaging_product"], "whatsapp");
        assert_eq!(
            answer["contacts"],
            json!([{"input": "6281100001", "wa_id": "6281100001"}])
        );
        let first = answer["messages"][0]["id"].as_str().unwrap().to_owned();
        assert!(first.starts_with("wamid."), "{first}");

        let second: Value = http
            .post(format!("{}/v21.0/1061/messages", fake.base_url))
            .bearer_auth("EAAG-token")
            .json(&text("6281100002"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_ne!(second["messages"][0]["id"], first, "wamids are unique");

        let sent = fake.wait_for_messages(2, Duration::from_secs(2)).await;
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].method, "POST");
        assert_eq!(sent[0].path, "/1061/messages");
        assert_eq!(sent[0].query, None);
        assert_eq!(sent[0].authorization.as_deref(), Some("Bearer EAAG-token"));
        assert_eq!(sent[0].bearer_token(), Some("EAAG-token"));
        assert_eq!(sent[0].phone_number_id(), Some("1061"));
        assert_eq!(sent[0].body, text("6281100001"));
        assert_eq!(sent[1].phone_number_id(), Some("1061"));
        assert_eq!(fake.requests().await.len(), 2);
    }

    #[tokio::test]
    async fn missing_token_is_401_with_code_190() {
        let fake = FakeMeta::start().await;
        let response = reqwest::Client::new()
            .post(format!("{}/1061/messages", fake.base_url))
            .json(&text("62811"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], 190);
        assert_eq!(body["error"]["type"], "OAuthException");
        // Recorded, and still counted as a send attempt.
        assert_eq!(fake.sent_messages().await.len(), 1);
    }

    #[tokio::test]
    async fn canned_failures_come_first_then_success() {
        let fake = FakeMeta::start().await;
        fake.fail_next_sends(vec![
            (429, graph_error_body(130429, "Rate limit hit")),
            (400, graph_error_body(131026, "Message undeliverable")),
        ])
        .await;
        let http = reqwest::Client::new();
        let send = || {
            http.post(format!("{}/1061/messages", fake.base_url))
                .bearer_auth("t")
                .json(&text("62811"))
                .send()
        };

        let first = send().await.unwrap();
        assert_eq!(first.status(), 429);
        assert_eq!(first.headers()["retry-after"], "1");
        let body: Value = first.json().await.unwrap();
        assert_eq!(body["error"]["code"], 130429);

        let second = send().await.unwrap();
        assert_eq!(second.status(), 400);
        let body: Value = second.json().await.unwrap();
        assert_eq!(body["error"]["code"], 131026);
        assert_eq!(body["error"]["message"], "(#131026) Message undeliverable");

        assert_eq!(send().await.unwrap().status(), 200);
        assert_eq!(fake.sent_messages().await.len(), 3);
    }

    #[tokio::test]
    async fn onboarding_routes() {
        let fake = FakeMeta::start().await;
        let http = reqwest::Client::new();
        let base = &fake.base_url;

        let register: Value = http
            .post(format!("{base}/1061/register"))
            .bearer_auth("t")
            .json(&json!({"messaging_product": "whatsapp", "pin": "123456"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(register, json!({"success": true}));

        let subscribe = http
            .post(format!("{base}/2002/subscribed_apps"))
            .bearer_auth("t")
            .send()
            .await
            .unwrap();
        assert_eq!(subscribe.status(), 200);

        let apps: Value = http
            .get(format!("{base}/2002/subscribed_apps"))
            .bearer_auth("t")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            apps["data"][0]["whatsapp_business_api_data"]["name"],
            "OmniStream"
        );

        let phone: Value = http
            .get(format!("{base}/1061?fields=display_phone_number,status"))
            .bearer_auth("t")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(phone["id"], "1061");
        assert_eq!(phone["quality_rating"], "GREEN");
        assert_eq!(phone["status"], "CONNECTED");

        let token: Value = http
            .get(format!(
                "{base}/oauth/access_token?client_id=1&client_secret=s&code=abc"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(token["access_token"], FAKE_EXCHANGED_TOKEN);

        let no_code = http
            .get(format!(
                "{base}/oauth/access_token?client_id=1&client_secret=s"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(no_code.status(), 400);

        let unauthorized = http
            .post(format!("{base}/1061/register"))
            .json(&json!({"messaging_product": "whatsapp", "pin": "1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(unauthorized.status(), 401);

        let requests = fake.requests().await;
        assert_eq!(requests.len(), 7);
        assert_eq!(
            requests[3].query.as_deref(),
            Some("fields=display_phone_number,status")
        );
        assert!(fake.sent_messages().await.is_empty());
    }

    #[test]
    fn sign_matches_metas_real_example() {
        // pywa tests/test_server.py (the secret has been reset), see meta-protocol.md §2.
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}"#;
        assert_eq!(
            sign("1222e786b144d0e85b9f365372d93676", body.as_bytes()),
            "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441"
        );
        let (bytes, signature) = signed("k", &json!({"a": 1}));
        assert_eq!(bytes, br#"{"a":1}"#);
        assert_eq!(signature, sign("k", br#"{"a":1}"#));
    }

    #[test]
    fn webhook_shapes() {
        let inbound =
            whatsapp_text_webhook("1061", "6281234", "Budi", "wamid.IN1", "halo", 1730231903);
        assert_eq!(
            inbound,
            json!({
                "object": "whatsapp_business_account",
                "entry": [{
                    "id": FAKE_WABA_ID,
                    "changes": [{
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": FAKE_DISPLAY_PHONE_NUMBER, "phone_number_id": "1061"},
                            "contacts": [{"profile": {"name": "Budi"}, "wa_id": "6281234"}],
                            "messages": [{
                                "from": "6281234",
                                "id": "wamid.IN1",
                                "timestamp": "1730231903",
                                "text": {"body": "halo"},
                                "type": "text"
                            }]
                        }
                    }]
                }]
            })
        );

        let failed = whatsapp_status_webhook("1061", "6281234", "wamid.OUT1", "failed", 1730231999);
        let status = &failed["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!(status["id"], "wamid.OUT1");
        assert_eq!(status["status"], "failed");
        assert_eq!(status["timestamp"], "1730231999");
        assert_eq!(status["recipient_id"], "6281234");
        assert_eq!(status["errors"][0]["code"], 131026);
        assert_eq!(status["errors"][0]["title"], "Message undeliverable");

        let read = whatsapp_status_webhook("1061", "6281234", "wamid.OUT1", "read", 1);
        let status = &read["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!(status["status"], "read");
        assert!(status.get("errors").is_none());

        let custom = whatsapp_webhook(
            "1061",
            json!({"metadata": {"phone_number_id": "x"}, "k": 1}),
        );
        let value = &custom["entry"][0]["changes"][0]["value"];
        assert_eq!(value["messaging_product"], "whatsapp");
        assert_eq!(value["metadata"]["phone_number_id"], "x");
        assert_eq!(value["k"], 1);
    }

    #[test]
    fn helpers() {
        assert_eq!(route_segments("/v21.0/1061/messages"), ["1061", "messages"]);
        assert_eq!(route_segments("/1061"), ["1061"]);
        assert_eq!(
            query_param(Some("a=1&code=x%2By+z"), "code").as_deref(),
            Some("x+y z")
        );
        assert_eq!(query_param(Some("a=%zz"), "a").as_deref(), Some("%zz"));
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
    }
}
