//! The server's limits on what one request or one client may hold: request deadlines and the
//! client address behind a trusted proxy.

use std::time::Duration;

use omnistream_tests::TestApp;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A request whose body never finishes arriving is abandoned with 503 at the request deadline,
/// instead of holding its connection and handler forever.
#[tokio::test]
async fn a_body_that_never_finishes_is_abandoned_at_the_request_deadline() {
    let app = TestApp::spawn_with(|config| config.request_timeout = Duration::from_secs(1)).await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    // Whatever the machine's load, the server answers by itself; the test only stops waiting
    // if nothing at all arrives for a minute.
    loop {
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buffer))
            .await
            .expect("the server answers a stalled body");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}}") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("service_unavailable"), "{text}");
}

/// Behind a trusted proxy, login throttling counts the forwarded client, not the proxy: one
/// client locked out does not lock out another behind the same proxy; an untrusted peer's
/// `X-Forwarded-For` is ignored.
#[tokio::test]
async fn login_throttling_counts_the_client_behind_a_trusted_proxy() {
    let app = TestApp::spawn_with(|config| {
        config.trusted_proxies =
            omnistream_gateway::http::peer::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    let admin = app.register("Proxy Co").await;
    let login = |forwarded: &'static str, password: &'static str| {
        let app_url = app.base_url.clone();
        let http = app.http.clone();
        let email = admin.email.clone();
        async move {
            http.post(format!("{app_url}/api/auth/login"))
                .header("x-forwarded-for", forwarded)
                .json(&serde_json::json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for _ in 0..10 {
        assert_eq!(
            login("203.0.113.1", "wrong-password").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login("203.0.113.1", "password123").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the forwarded client is locked out"
    );
    assert_eq!(
        login("198.51.100.2", "password123").await,
        StatusCode::OK,
        "another client behind the same proxy is not"
    );
    let rows: Vec<String> = sqlx::query_scalar("SELECT DISTINCT ip FROM login_failures")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, vec!["203.0.113.1".to_owned()]);
}

/// Without `TRUSTED_PROXIES`, a client cannot dodge the per-address limit by writing
/// `X-Forwarded-For` itself.
#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::spawn().await;
    let admin = app.register("Direct Co").await;
    for n in 0..10 {
        let status = app
            .http
            .post(format!("{}/api/auth/login", app.base_url))
            .header("x-forwarded-for", format!("203.0.113.{n}"))
            .json(&serde_json::json!({"email": admin.email, "password": "wrong-password"}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let locked = app
        .http
        .post(format!("{}/api/auth/login", app.base_url))
        .header("x-forwarded-for", "203.0.113.99")
        .json(&serde_json::json!({"email": admin.email, "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
}
