//! What unauthenticated auth traffic may cost: login attempts reserved before they are checked,
//! bounded password hashing, registration limits, the session's absolute lifetime, and the
//! cookie-write guard.

use std::time::Duration;

use futures::future::join_all;
use omnistream_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

/// 120 concurrent wrong-password logins for one email from one address: exactly the allowed 10
/// are checked; the rest are refused before any password work.
#[tokio::test]
async fn concurrent_guesses_cannot_outrun_the_login_limit() {
    let app = TestApp::spawn().await;
    let admin = app.register("Guessed Co").await;
    let attempts = (0..120).map(|_| {
        let http = app.http.clone();
        let url = format!("{}/api/auth/login", app.base_url);
        let email = admin.email.clone();
        async move {
            http.post(url)
                .json(&json!({"email": email, "password": "wrong-password"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = join_all(attempts).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(checked, 10, "{statuses:?}");
    assert!(statuses.iter().all(|s| matches!(
        *s,
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    )));
    let counted: i64 = sqlx::query_scalar("SELECT count(*) FROM login_failures")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(counted, 10);
}

/// A successful login does not count against the limit; failures do.
#[tokio::test]
async fn successful_logins_release_their_reservation() {
    let app = TestApp::spawn().await;
    let admin = app.register("Busy Co").await;
    for _ in 0..12 {
        app.login(&admin.email, "password123").await;
    }
    let counted: i64 = sqlx::query_scalar("SELECT count(*) FROM login_failures")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(counted, 0);
}

/// Registration is limited per address, and a burst of sign-ups never fails with a server
/// error nor starves a signed-in user of another tenant.
#[tokio::test]
async fn registration_is_limited_per_address_and_a_burst_starves_nobody() {
    let app = TestApp::spawn().await;
    let member = app.register("Existing Co").await;
    let register = |n: usize| {
        let http = app.http.clone();
        let url = format!("{}/api/auth/register", app.base_url);
        async move {
            http.post(url)
                .json(&json!({"organization_name": format!("Org {n}"), "name": "A",
                              "email": format!("burst-{n}-{}@example.com", uuid::Uuid::new_v4().simple()),
                              "password": "password123"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let burst = join_all((0..80).map(register));
    let signed_in = async {
        let mut statuses = Vec::new();
        for _ in 0..10 {
            statuses.push(member.client(&app).get("/api/auth/me").await.status);
        }
        statuses
    };
    let (statuses, member_statuses) = tokio::join!(burst, signed_in);
    assert!(
        member_statuses.iter().all(|s| *s == StatusCode::OK),
        "{member_statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(
            *s,
            StatusCode::CREATED | StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        )),
        "{statuses:?}"
    );
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    // The first registration (Existing Co) counts too: 10 per address per hour by default.
    assert!(created <= 9, "{created} sign-ups from one address");
    let refused = app
        .anonymous()
        .post(
            "/api/auth/register",
            json!({"organization_name": "One more", "name": "A", "email": "one-more@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers.contains_key("retry-after"));
}

/// A session ends at its absolute lifetime, however often its token is refreshed.
#[tokio::test]
async fn refreshing_never_extends_a_session_past_its_absolute_lifetime() {
    let app = TestApp::spawn_with(|config| {
        config.session_max_lifetime = Duration::from_secs(3);
    })
    .await;
    let admin = app.register("Short Co").await;
    let logged_in = chrono::Utc::now();
    let refreshed = admin.client(&app).post("/api/auth/token", json!({})).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let expires_at: chrono::DateTime<chrono::Utc> = refreshed.body["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expires_at <= logged_in + chrono::Duration::seconds(4));
    let token = refreshed.body["token"].as_str().unwrap().to_owned();
    let until_expired = (expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(until_expired + Duration::from_millis(1100)).await;
    assert_eq!(
        app.bearer(&token).get("/api/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.bearer(&token).get("/api/auth/token").await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// A cookie-authenticated write must prove it is not a cross-site form: JSON or
/// X-Requested-With. Bearer requests are unaffected.
#[tokio::test]
async fn cookie_writes_need_json_or_a_custom_header() {
    let app = TestApp::spawn().await;
    let admin = app.register("Cookie Co").await;
    let url = format!("{}/api/auth/token", app.base_url);
    let cookie = format!("omnistream_token={}", admin.token);
    let form = app
        .http
        .post(&url)
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = form.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    let json_write = app
        .http
        .post(&url)
        .header("cookie", &cookie)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_write.status(), StatusCode::OK);
    let marked = app
        .http
        .post(&url)
        .header("cookie", &cookie)
        .header("x-requested-with", "XMLHttpRequest")
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), StatusCode::OK);
    let bearer = app
        .http
        .post(&url)
        .bearer_auth(&admin.token)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    // The contract's GET still issues a token for a cookie client.
    let get = app
        .http
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
}
