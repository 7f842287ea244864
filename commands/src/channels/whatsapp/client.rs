//! The WhatsApp Cloud API calls of the Graph client: sending a message, and the Embedded
//! Signup onboarding (code exchange, number registration, webhook subscription, number and WABA
//! details).
//!
//! Errors keep what a worker needs to decide about retries: the HTTP status, Meta's `error.code`,
//! a readable message and the `Retry-After` seconds (see [`GraphError`]).

use reqwest::Method;
use serde_json::{json, Value};

use crate::channels::meta::{GraphClient, GraphError};

/// Fields read by [`GraphClient::phone_number`].
const PHONE_NUMBER_FIELDS: &str =
    "display_phone_number,verified_name,quality_rating,code_verification_status,name_status,status";

/// Fields read by [`GraphClient::waba`].
const WABA_FIELDS: &str = "id,name,currency,timezone_id,message_template_namespace";
impl GraphClient {
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
    use crate::channels::whatsapp::message::{message_body, OutboundPayload};

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
}
