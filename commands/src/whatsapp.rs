//! WhatsApp Cloud API client (Meta Graph API) and the pure builder of send-message bodies.
//!
//! The base URL is configurable so tests can point the client at a local fake:
//! [`GraphClient::from_env`] reads `META_GRAPH_BASE_URL` and falls back to
//! [`DEFAULT_GRAPH_BASE_URL`].
//!
//! Errors keep what a worker needs to decide about retries: the HTTP status, Meta's `error.code`,
//! a readable message and the `Retry-After` seconds. Tokens, app secrets and URLs with query
//! strings never appear in errors or logs.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Url};
use serde_json::{json, Map, Value};

use crate::graph_errors::{api_error, retry_after_seconds};

/// Graph API base URL used when `META_GRAPH_BASE_URL` is not set.
pub const DEFAULT_GRAPH_BASE_URL: &str = "https://graph.facebook.com/v21.0";

/// Environment variable that overrides the Graph API base URL.
pub const GRAPH_BASE_URL_ENV: &str = "META_GRAPH_BASE_URL";

/// Timeout for a whole Graph API request (connect, send, read the body).
pub const GRAPH_TIMEOUT: Duration = Duration::from_secs(15);

/// Fields read by [`GraphClient::phone_number`].
const PHONE_NUMBER_FIELDS: &str =
    "display_phone_number,verified_name,quality_rating,code_verification_status,name_status,status";

/// Fields read by [`GraphClient::waba`].
const WABA_FIELDS: &str = "id,name,currency,timezone_id,message_template_namespace";

/// The base URL from `META_GRAPH_BASE_URL`, else [`DEFAULT_GRAPH_BASE_URL`].
pub fn graph_base_url_from_env() -> String {
    std::env::var(GRAPH_BASE_URL_ENV)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| DEFAULT_GRAPH_BASE_URL.to_owned())
}

/// A failed Graph API call.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Meta answered with an error status. `code` is Meta's `error.code` (0 when the body was not
    /// Meta's error JSON, e.g. a proxy's HTML page); `message` is `error.message`, else
    /// `error_user_title` / `error_user_msg`, else the start of the body; `retry_after` is the
    /// `Retry-After` header in seconds when sent.
    #[error("graph error {status}: ({code}) {message}")]
    Api {
        status: u16,
        code: i64,
        message: String,
        retry_after: Option<u64>,
    },
    /// Network, timeout, or an unreadable body.
    #[error("graph request failed: {0}")]
    Transport(String),
}

impl GraphError {
    /// Whether trying the same request again later may succeed: throttling (HTTP 429, codes 4,
    /// 80007, 130429), Meta-side failures (HTTP 5xx, codes 131000, 131016) and transport errors.
    /// Every other 4xx (bad parameters, undeliverable, outside the 24 h window, expired token…)
    /// is permanent.
    pub fn is_retryable(&self) -> bool {
        match self {
            GraphError::Transport(_) => true,
            GraphError::Api { status, code, .. } => {
                *status == 429
                    || *status >= 500
                    || matches!(code, 4 | 80007 | 130429 | 131000 | 131016)
            }
        }
    }

    /// Meta's `error.code`, when Meta answered.
    pub fn code(&self) -> Option<i64> {
        match self {
            GraphError::Api { code, .. } => Some(*code),
            GraphError::Transport(_) => None,
        }
    }

    /// The `Retry-After` seconds Meta sent, if any.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            GraphError::Api { retry_after, .. } => *retry_after,
            GraphError::Transport(_) => None,
        }
    }
}

impl From<reqwest::Error> for GraphError {
    fn from(error: reqwest::Error) -> Self {
        // The URL may carry a client secret or an OAuth code in its query: never keep it.
        GraphError::Transport(error.without_url().to_string())
    }
}

/// WhatsApp Cloud API client over one pooled HTTP client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GraphClient {
    /// 15 s timeout, no redirects; what it builds is sent with [`Self::execute`].
    pub(crate) http: reqwest::Client,
    base_url: String,
}

impl GraphClient {
    /// A client for `base_url` (e.g. `https://graph.facebook.com/v21.0`; a trailing `/` is
    /// ignored), with a 15 s timeout and redirects disabled.
    pub fn new(base_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(GRAPH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the Graph API HTTP client configuration is valid");
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        GraphClient { http, base_url }
    }

    /// A client for [`graph_base_url_from_env`].
    pub fn from_env() -> Self {
        Self::new(graph_base_url_from_env())
    }

    /// The base URL requests go to (no trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// POST `{base}/{phone_number_id}/messages` with a Bearer token; returns the wamid
    /// (`messages[0].id`). A 200 means accepted, not delivered: delivery arrives as status
    /// webhooks.
    pub async fn send_message(
        &self,
        token: &str,
        phone_number_id: &str,
        body: &Value,
    ) -> Result<String, GraphError> {
        self.post_message(token, phone_number_id, body, "/messages/0/id")
            .await
    }

    /// POST `{base}/{page_id}/messages` (Messenger and Instagram Send API) with the Page access
    /// token; returns the new message's `message_id`.
    pub async fn send_page_message(
        &self,
        token: &str,
        page_id: &str,
        body: &Value,
    ) -> Result<String, GraphError> {
        self.post_message(token, page_id, body, "/message_id").await
    }

    /// POST `{base}/{sender_id}/messages`; the new message's id is at `id_pointer` of the answer.
    async fn post_message(
        &self,
        token: &str,
        sender_id: &str,
        body: &Value,
        id_pointer: &str,
    ) -> Result<String, GraphError> {
        let url = self.url(&[sender_id, "messages"], &[])?;
        let response = self
            .call(Method::POST, url, Some(token), Some(body))
            .await?;
        response
            .pointer(id_pointer)
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| GraphError::Transport(format!("send response without {id_pointer}")))
    }

    /// POST `{base}/{phone_number_id}/register` `{"messaging_product":"whatsapp","pin": pin}`.
    pub async fn register_phone_number(
        &self,
        token: &str,
        phone_number_id: &str,
        pin: &str,
    ) -> Result<(), GraphError> {
        let url = self.url(&[phone_number_id, "register"], &[])?;
        let body = json!({ "messaging_product": "whatsapp", "pin": pin });
        self.call(Method::POST, url, Some(token), Some(&body))
            .await
            .map(drop)
    }

    /// POST `{base}/{waba_id}/subscribed_apps`: subscribes the app to the WABA's webhooks.
    pub async fn subscribe_app(&self, token: &str, waba_id: &str) -> Result<(), GraphError> {
        let url = self.url(&[waba_id, "subscribed_apps"], &[])?;
        self.call(Method::POST, url, Some(token), None)
            .await
            .map(drop)
    }

    /// GET `{base}/{phone_number_id}?fields=display_phone_number,verified_name,quality_rating,
    /// code_verification_status,name_status,status`.
    pub async fn phone_number(
        &self,
        token: &str,
        phone_number_id: &str,
    ) -> Result<Value, GraphError> {
        let url = self.url(&[phone_number_id], &[("fields", PHONE_NUMBER_FIELDS)])?;
        self.call(Method::GET, url, Some(token), None).await
    }

    /// GET `{base}/{waba_id}?fields=id,name,currency,timezone_id,message_template_namespace`.
    pub async fn waba(&self, token: &str, waba_id: &str) -> Result<Value, GraphError> {
        let url = self.url(&[waba_id], &[("fields", WABA_FIELDS)])?;
        self.call(Method::GET, url, Some(token), None).await
    }

    /// GET `{base}/{waba_id}/subscribed_apps`.
    pub async fn subscribed_apps(&self, token: &str, waba_id: &str) -> Result<Value, GraphError> {
        let url = self.url(&[waba_id, "subscribed_apps"], &[])?;
        self.call(Method::GET, url, Some(token), None).await
    }

    /// GET `{base}/oauth/access_token?client_id=..&client_secret=..&code=..`; returns
    /// `access_token` (Embedded Signup code exchange).
    pub async fn exchange_code(
        &self,
        app_id: &str,
        app_secret: &str,
        code: &str,
    ) -> Result<String, GraphError> {
        let response = self
            .token_exchange(
                &["oauth", "access_token"],
                &[
                    ("client_id", app_id),
                    ("client_secret", app_secret),
                    ("code", code),
                ],
            )
            .await?;
        response
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| GraphError::Transport("token response without access_token".into()))
    }

    /// GET `{base}/{segments…}?{query}` without a token (the OAuth token endpoints take their
    /// credentials in the query); the JSON answer.
    pub(crate) async fn token_exchange(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Value, GraphError> {
        let url = self.url(segments, query)?;
        self.call(Method::GET, url, None, None).await
    }

    /// `{base}/{segments…}?{query}`, each segment percent-encoded as one path segment.
    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, GraphError> {
        if segments.iter().any(|segment| segment.is_empty()) {
            return Err(GraphError::Transport("empty Graph API path segment".into()));
        }
        let mut url = Url::parse(&self.base_url)
            .map_err(|e| GraphError::Transport(format!("invalid Graph API base URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| GraphError::Transport("Graph API base URL cannot have a path".into()))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends one request and returns the JSON body of a 2xx answer (`null` for an empty body).
    pub(crate) async fn call(
        &self,
        method: Method,
        url: Url,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, GraphError> {
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.execute(request).await
    }

    /// Sends a request built on `self.http`; the JSON body of a 2xx answer.
    pub(crate) async fn execute(&self, request: RequestBuilder) -> Result<Value, GraphError> {
        let request = request.build()?;
        let (method, path) = (request.method().clone(), request.url().path().to_owned());
        let response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(error) => {
                let error = GraphError::from(error);
                tracing::debug!(%method, %path, %error, "graph request failed");
                return Err(error);
            }
        };
        let status = response.status();
        let retry_after = retry_after_seconds(response.headers());
        let bytes = response.bytes().await?;
        tracing::debug!(%method, %path, status = status.as_u16(), "graph response");
        if status.is_success() {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .map_err(|e| GraphError::Transport(format!("unreadable Graph API response: {e}")));
        }
        Err(api_error(status.as_u16(), &bytes, retry_after))
    }
}

/// What to send, before addressing.
#[derive(Debug, Clone, Copy)]
pub enum OutboundPayload<'a> {
    /// Plain text; link previews are off.
    Text { body: &'a str },
    /// Media by public link. `kind` is `image`, `video`, `audio`, `document` or `sticker`.
    /// `caption` is sent for image, video and document only (Meta rejects it on audio and
    /// sticker); `filename` for document only.
    Media {
        kind: &'a str,
        link: &'a str,
        caption: Option<&'a str>,
        filename: Option<&'a str>,
    },
    /// An approved template: Meta's `{name, language, components}` object, passed through.
    Template { template: &'a Value },
}

/// The `POST /{phone_number_id}/messages` body:
/// `{"messaging_product":"whatsapp","recipient_type":"individual","to":…,"type":…,<type>:{…}}`,
/// plus `"context":{"message_id":…}` when replying to (quoting) a message.
pub fn message_body(
    to: &str,
    payload: &OutboundPayload<'_>,
    reply_to_wamid: Option<&str>,
) -> Value {
    let (kind, content) = match *payload {
        OutboundPayload::Text { body } => ("text", json!({ "preview_url": false, "body": body })),
        OutboundPayload::Media {
            kind,
            link,
            caption,
            filename,
        } => {
            let mut media = Map::new();
            media.insert("link".into(), link.into());
            if let Some(caption) =
                caption.filter(|_| matches!(kind, "image" | "video" | "document"))
            {
                media.insert("caption".into(), caption.into());
            }
            if let Some(filename) = filename.filter(|_| kind == "document") {
                media.insert("filename".into(), filename.into());
            }
            (kind, Value::Object(media))
        }
        OutboundPayload::Template { template } => ("template", template.clone()),
    };
    let mut body = Map::new();
    body.insert("messaging_product".into(), "whatsapp".into());
    body.insert("recipient_type".into(), "individual".into());
    body.insert("to".into(), to.into());
    body.insert("type".into(), kind.into());
    body.insert(kind.to_owned(), content);
    if let Some(wamid) = reply_to_wamid {
        body.insert("context".into(), json!({ "message_id": wamid }));
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use axum::{Json, Router};

    use super::*;

    /// What the fake Graph server saw: method, path, query, Authorization, body.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        query: Option<String>,
        authorization: Option<String>,
        body: Value,
    }

    type Log = Arc<Mutex<Vec<Seen>>>;

    fn record(
        log: &Log,
        method: &str,
        path: String,
        query: Option<String>,
        headers: &HeaderMap,
        body: Value,
    ) {
        log.lock().unwrap().push(Seen {
            method: method.to_owned(),
            path,
            query,
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body,
        });
    }

    /// `POST /{id}/messages`: the phone number id picks the answer.
    async fn messages(
        State(log): State<Log>,
        Path(id): Path<String>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> Response {
        record(
            &log,
            "POST",
            format!("/{id}/messages"),
            None,
            &headers,
            body.clone(),
        );
        match id.as_str() {
            "undeliverable" => (
                StatusCode::BAD_REQUEST,
                Json(json!({"error":{"message":"(#131026) Message undeliverable","type":"OAuthException","code":131026,"error_subcode":2494010,"fbtrace_id":"A"}})),
            )
                .into_response(),
            "throttled" => (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "2")],
                Json(json!({"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"error_data":{"messaging_product":"whatsapp","details":"Cloud API message throughput has been reached."},"fbtrace_id":"B"}})),
            )
                .into_response(),
            "gateway" => (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>").into_response(),
            "noid" => Json(json!({"messaging_product":"whatsapp","messages":[]})).into_response(),
            _ => Json(json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": "wamid.TEST1"}]
            }))
            .into_response(),
        }
    }

    async fn register(
        State(log): State<Log>,
        Path(id): Path<String>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> Json<Value> {
        record(
            &log,
            "POST",
            format!("/{id}/register"),
            None,
            &headers,
            body,
        );
        Json(json!({"success": true}))
    }

    async fn subscribe(
        State(log): State<Log>,
        Path(id): Path<String>,
        headers: HeaderMap,
    ) -> Json<Value> {
        record(
            &log,
            "POST",
            format!("/{id}/subscribed_apps"),
            None,
            &headers,
            Value::Null,
        );
        Json(json!({"success": true}))
    }

    async fn subscribed(
        State(log): State<Log>,
        Path(id): Path<String>,
        headers: HeaderMap,
    ) -> Json<Value> {
        record(
            &log,
            "GET",
            format!("/{id}/subscribed_apps"),
            None,
            &headers,
            Value::Null,
        );
        Json(json!({"data":[{"whatsapp_business_api_data":{"id":"1","name":"OmniStream"}}]}))
    }

    async fn node(
        State(log): State<Log>,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
    ) -> Response {
        record(&log, "GET", format!("/{id}"), query, &headers, Value::Null);
        if id == "expired" {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error":{"message":"Error validating access token","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"C"}})),
            )
                .into_response();
        }
        Json(json!({"id": id, "display_phone_number": "+62 811-000", "verified_name": "Test", "quality_rating": "GREEN", "status": "CONNECTED", "name": "Test WABA", "currency": "IDR"})).into_response()
    }

    async fn oauth(
        State(log): State<Log>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
    ) -> Json<Value> {
        record(
            &log,
            "GET",
            "/oauth/access_token".into(),
            query,
            &headers,
            Value::Null,
        );
        Json(json!({"access_token": "EAAG-exchanged", "token_type": "bearer"}))
    }

    async fn start() -> (GraphClient, Log) {
        let log: Log = Arc::default();
        let app = Router::new()
            .route("/oauth/access_token", get(oauth))
            .route("/{id}/messages", post(messages))
            .route("/{id}/register", post(register))
            .route("/{id}/subscribed_apps", post(subscribe).get(subscribed))
            .route("/{id}", get(node))
            .with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        // A trailing slash on the base URL must not matter.
        (GraphClient::new(format!("http://{addr}/")), log)
    }

    fn text_body() -> Value {
        message_body("6281100000", &OutboundPayload::Text { body: "hi" }, None)
    }

    #[tokio::test]
    async fn send_returns_the_wamid_and_sends_the_bearer_token() {
        let (client, log) = start().await;
        let wamid = client
            .send_message("EAAG-token", "1061", &text_body())
            .await
            .unwrap();
        assert_eq!(wamid, "wamid.TEST1");

        let seen = log.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].path, "/1061/messages");
        assert_eq!(seen[0].authorization.as_deref(), Some("Bearer EAAG-token"));
        assert_eq!(seen[0].body, text_body());
    }

    #[tokio::test]
    async fn undeliverable_is_a_permanent_api_error() {
        let (client, _log) = start().await;
        let error = client
            .send_message("t", "undeliverable", &text_body())
            .await
            .unwrap_err();
        match &error {
            GraphError::Api {
                status,
                code,
                message,
                retry_after,
            } => {
                assert_eq!(*status, 400);
                assert_eq!(*code, 131026);
                assert!(message.contains("Message undeliverable"), "{message}");
                assert_eq!(*retry_after, None);
            }
            other => panic!("expected an API error, got {other:?}"),
        }
        assert!(!error.is_retryable());
        assert_eq!(error.code(), Some(131026));
        assert_eq!(
            error.to_string(),
            "graph error 400: (131026) (#131026) Message undeliverable"
        );
    }

    #[tokio::test]
    async fn throughput_limit_is_retryable_with_retry_after() {
        let (client, _log) = start().await;
        let error = client
            .send_message("t", "throttled", &text_body())
            .await
            .unwrap_err();
        match &error {
            GraphError::Api {
                status,
                code,
                message,
                retry_after,
            } => {
                assert_eq!(*status, 429);
                assert_eq!(*code, 130429);
                assert_eq!(*retry_after, Some(2));
                assert!(message.contains("throughput has been reached"), "{message}");
            }
            other => panic!("expected an API error, got {other:?}"),
        }
        assert!(error.is_retryable());
        assert_eq!(error.retry_after(), Some(2));
    }

    #[tokio::test]
    async fn non_json_5xx_is_a_retryable_api_error() {
        let (client, _log) = start().await;
        let error = client
            .send_message("t", "gateway", &text_body())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, GraphError::Api { status: 502, code: 0, message, .. } if message.contains("bad gateway")),
            "{error:?}"
        );
        assert!(error.is_retryable());
    }

    #[tokio::test]
    async fn success_without_wamid_is_a_transport_error() {
        let (client, _log) = start().await;
        let error = client
            .send_message("t", "noid", &text_body())
            .await
            .unwrap_err();
        assert!(matches!(error, GraphError::Transport(_)), "{error:?}");
    }

    #[tokio::test]
    async fn connection_refused_is_a_retryable_transport_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = GraphClient::new(format!("http://{addr}"));
        let error = client
            .exchange_code("app", "very-secret", "code")
            .await
            .unwrap_err();
        assert!(matches!(error, GraphError::Transport(_)), "{error:?}");
        assert!(error.is_retryable());
        assert!(!error.to_string().contains("very-secret"), "{error}");
    }

    #[tokio::test]
    async fn expired_token_is_not_retryable() {
        let (client, _log) = start().await;
        let error = client.phone_number("old", "expired").await.unwrap_err();
        assert_eq!(error.code(), Some(190));
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn onboarding_calls_hit_the_documented_endpoints() {
        let (client, log) = start().await;
        client
            .register_phone_number("tok", "1061", "123456")
            .await
            .unwrap();
        client.subscribe_app("tok", "2002").await.unwrap();
        let phone = client.phone_number("tok", "1061").await.unwrap();
        assert_eq!(phone["quality_rating"], "GREEN");
        let waba = client.waba("tok", "2002").await.unwrap();
        assert_eq!(waba["id"], "2002");
        let apps = client.subscribed_apps("tok", "2002").await.unwrap();
        assert_eq!(
            apps["data"][0]["whatsapp_business_api_data"]["name"],
            "OmniStream"
        );
        let token = client
            .exchange_code("app-1", "s3cret", "the code")
            .await
            .unwrap();
        assert_eq!(token, "EAAG-exchanged");

        let seen = log.lock().unwrap().clone();
        let summary: Vec<(&str, &str)> = seen
            .iter()
            .map(|s| (s.method.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("POST", "/1061/register"),
                ("POST", "/2002/subscribed_apps"),
                ("GET", "/1061"),
                ("GET", "/2002"),
                ("GET", "/2002/subscribed_apps"),
                ("GET", "/oauth/access_token"),
            ]
        );
        assert_eq!(
            seen[0].body,
            json!({"messaging_product": "whatsapp", "pin": "123456"})
        );
        for s in &seen[..5] {
            assert_eq!(s.authorization.as_deref(), Some("Bearer tok"), "{s:?}");
        }
        assert_eq!(seen[5].authorization, None);
        assert_eq!(
            seen[2].query.as_deref(),
            Some("fields=display_phone_number%2Cverified_name%2Cquality_rating%2Ccode_verification_status%2Cname_status%2Cstatus")
        );
        assert_eq!(
            seen[3].query.as_deref(),
            Some("fields=id%2Cname%2Ccurrency%2Ctimezone_id%2Cmessage_template_namespace")
        );
        assert_eq!(
            seen[5].query.as_deref(),
            Some("client_id=app-1&client_secret=s3cret&code=the+code")
        );
    }

    #[test]
    fn retryable_classification() {
        let api = |status, code| GraphError::Api {
            status,
            code,
            message: String::new(),
            retry_after: None,
        };
        for (status, code) in [
            (400, 4),
            (400, 80007),
            (429, 130429),
            (500, 131000),
            (503, 131016),
            (500, 0),
            (429, 0),
            (400, 131016),
        ] {
            assert!(api(status, code).is_retryable(), "{status} {code}");
        }
        for (status, code) in [
            (400, 131026),
            (400, 131047),
            (400, 132000),
            (401, 190),
            (400, 131008),
            (404, 0),
        ] {
            assert!(!api(status, code).is_retryable(), "{status} {code}");
        }
        assert!(GraphError::Transport("timeout".into()).is_retryable());
    }

    #[test]
    fn text_body_shape() {
        assert_eq!(
            message_body("628111", &OutboundPayload::Text { body: "Hello" }, None),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "628111",
                "type": "text",
                "text": {"preview_url": false, "body": "Hello"}
            })
        );
    }

    #[test]
    fn reply_adds_context() {
        let body = message_body(
            "628111",
            &OutboundPayload::Text { body: "Yes" },
            Some("wamid.ABC"),
        );
        assert_eq!(body["context"], json!({"message_id": "wamid.ABC"}));
        assert_eq!(body["text"]["body"], "Yes");
    }

    #[test]
    fn media_body_shapes() {
        let image = message_body(
            "628111",
            &OutboundPayload::Media {
                kind: "image",
                link: "https://cdn.example/a.jpg",
                caption: Some("look"),
                filename: Some("ignored.jpg"),
            },
            None,
        );
        assert_eq!(
            image,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "628111",
                "type": "image",
                "image": {"link": "https://cdn.example/a.jpg", "caption": "look"}
            })
        );

        let document = message_body(
            "628111",
            &OutboundPayload::Media {
                kind: "document",
                link: "https://cdn.example/invoice.pdf",
                caption: Some("Invoice"),
                filename: Some("invoice.pdf"),
            },
            Some("wamid.Q"),
        );
        assert_eq!(document["type"], "document");
        assert_eq!(
            document["document"],
            json!({"link": "https://cdn.example/invoice.pdf", "caption": "Invoice", "filename": "invoice.pdf"})
        );
        assert_eq!(document["context"]["message_id"], "wamid.Q");

        let sticker = message_body(
            "628111",
            &OutboundPayload::Media {
                kind: "sticker",
                link: "https://cdn.example/s.webp",
                caption: Some("dropped"),
                filename: None,
            },
            None,
        );
        assert_eq!(
            sticker["sticker"],
            json!({"link": "https://cdn.example/s.webp"})
        );

        let audio = message_body(
            "628111",
            &OutboundPayload::Media {
                kind: "audio",
                link: "https://cdn.example/v.ogg",
                caption: None,
                filename: None,
            },
            None,
        );
        assert_eq!(audio["type"], "audio");
        assert_eq!(audio["audio"], json!({"link": "https://cdn.example/v.ogg"}));

        let video = message_body(
            "628111",
            &OutboundPayload::Media {
                kind: "video",
                link: "https://cdn.example/v.mp4",
                caption: None,
                filename: None,
            },
            None,
        );
        assert_eq!(video["video"], json!({"link": "https://cdn.example/v.mp4"}));
    }

    #[test]
    fn template_body_passes_the_template_through() {
        let template = json!({
            "name": "order_update",
            "language": {"policy": "deterministic", "code": "id"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "A-1"}]}]
        });
        let body = message_body(
            "628111",
            &OutboundPayload::Template {
                template: &template,
            },
            None,
        );
        assert_eq!(
            body,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "628111",
                "type": "template",
                "template": template
            })
        );
    }

    #[test]
    fn base_url_defaults_and_trims() {
        assert_eq!(GraphClient::new("http://x/v1/").base_url(), "http://x/v1");
        let url = GraphClient::new("http://x/v21.0")
            .url(&["1/2", "messages"], &[])
            .unwrap();
        assert_eq!(url.as_str(), "http://x/v21.0/1%2F2/messages");
        assert!(GraphClient::new("http://x")
            .url(&["", "messages"], &[])
            .is_err());
    }
}
