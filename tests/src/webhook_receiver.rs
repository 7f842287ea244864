//! A webhook receiver for tests: verifies Standard Webhooks signatures with the reference
//! library, records what it got, and fails on demand.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::sync::Mutex;

/// One received request.
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    pub event_type: String,
    pub body: Value,
    /// Whether the signature verified with the configured secret.
    pub verified: bool,
    pub headers: HeaderMap,
    /// Whether the receiver answered 2xx.
    pub ok: bool,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    secret: Option<String>,
    /// Answer this status instead of 200 while set.
    failing: Option<u16>,
}

/// A receiver on 127.0.0.1.
#[derive(Clone)]
pub struct Receiver {
    /// Where to point a webhook.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut inner = inner.lock().await;
    let verified = inner
        .secret
        .as_deref()
        .and_then(|secret| standardwebhooks::Webhook::new(secret).ok())
        .is_some_and(|hook| hook.verify(&body, &headers).is_ok());
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let ok = inner.failing.is_none();
    inner.received.push(Received {
        id: text("webhook-id"),
        event_type: text("x-omnistream-event"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        verified,
        headers: headers.clone(),
        ok,
    });
    match inner.failing {
        Some(status) => StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        None => StatusCode::OK,
    }
}

impl Receiver {
    /// Starts a receiver.
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, inner }
    }

    /// Subscribes this receiver to `events` through `api` and checks signatures with the
    /// secret the API returned.
    pub async fn subscribe(&self, api: &crate::Client, events: &[&str]) {
        let created = api
            .post(
                "/api/outgoing-webhooks",
                serde_json::json!({"name": "r", "url": self.url, "events": events}),
            )
            .await;
        assert_eq!(created.status.as_u16(), 201, "{}", created.body);
        self.set_secret(created.body["secret"].as_str().expect("the secret, once"))
            .await;
    }

    /// The secret signatures are checked with.
    pub async fn set_secret(&self, secret: &str) {
        self.inner.lock().await.secret = Some(secret.to_owned());
    }

    /// Answer `status` from now on (`None`: 200 again).
    pub async fn fail_with(&self, status: Option<u16>) {
        self.inner.lock().await.failing = status;
    }

    /// Everything received so far.
    pub async fn received(&self) -> Vec<Received> {
        self.inner.lock().await.received.clone()
    }

    /// Waits until `accept` holds for what was received (panics once no attempt, successful or
    /// not, has arrived for 30 s).
    pub async fn wait_until(
        &self,
        what: &str,
        accept: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        self.wait_until_within(what, Duration::from_secs(30), accept)
            .await
    }

    /// Like [`Self::wait_until`], giving up after `stall` without a new attempt (longer when a
    /// killed sender's leases must run out first).
    pub async fn wait_until_within(
        &self,
        what: &str,
        stall: Duration,
        accept: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let mut patience = crate::patience::Patience::new(stall);
        loop {
            let received = self.received().await;
            if accept(&received) {
                return received;
            }
            assert!(
                patience.progressing(received.len()),
                "receiver never got {what}; got {:?}",
                received
                    .iter()
                    .map(|r| r.event_type.clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
