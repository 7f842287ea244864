//! Auth tag: registration, login, sessions, cookies, tokens, refusals.

use omnistream_tests::{TestApp, TEST_JWT_SECRET};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn register_creates_an_organization_and_its_admin_with_a_session_cookie() {
    let app = TestApp::spawn().await;
    let response = app
        .anonymous()
        .post(
            "/api/auth/register",
            json!({"organization_name": "  PT Maju Jaya ", "name": "Sari", "email": "Sari@Example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    let body = &response.body;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["agent"]["email"], "sari@example.com");
    assert_eq!(body["agent"]["role"], "admin");
    assert_eq!(body["agent"]["can_broadcast"], true);
    assert_eq!(body["organization"]["name"], "PT Maju Jaya");
    assert_eq!(body["organization"]["slug"], "pt-maju-jaya");
    assert_eq!(body["organization"]["timezone"], "Asia/Jakarta");
    assert_eq!(body["organization"]["status"], "active");
    assert!(
        body["organization"]["plan_id"].is_null() && body["organization"]["suspended_at"].is_null()
    );
    assert!(body["agent"].get("password_hash").is_none());
    let cookie = response.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("omnistream_token="));
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain-http test runs do not set Secure"
    );

    let again = app
        .anonymous()
        .post(
            "/api/auth/register",
            json!({"organization_name": "Other", "name": "Sari", "email": "sari@example.COM", "password": "password123"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "email_taken");
}

#[tokio::test]
async fn cookies_are_secure_behind_https() {
    let app =
        TestApp::spawn_with(|config| config.public_base_url = "https://chat.example.com".into())
            .await;
    let response = app
        .anonymous()
        .post("/api/auth/register", json!({"organization_name": "Org", "name": "A", "email": "a@example.com", "password": "password123"}))
        .await;
    assert!(response.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));
}

#[tokio::test]
async fn register_validates_every_field() {
    let app = TestApp::spawn().await;
    let response = app
        .anonymous()
        .post("/api/auth/register", json!({"organization_name": " ", "name": "x".repeat(101), "email": "nope", "password": "short", "role": "admin"}))
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error_code(), "validation_error");
    let details = &response.body["error"]["details"];
    assert_eq!(details["role"], "unknown field");
    assert!(
        details["email"].as_str().unwrap().contains("email"),
        "{details}"
    );
}

#[tokio::test]
async fn login_works_with_any_case_and_failures_share_one_message() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let ok = app
        .anonymous()
        .post(
            "/api/auth/login",
            json!({"email": admin.email.to_uppercase(), "password": admin.password}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(ok.body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(ok.headers.contains_key("set-cookie"));

    let wrong_password = app
        .anonymous()
        .post(
            "/api/auth/login",
            json!({"email": admin.email, "password": "wrong-password"}),
        )
        .await;
    let unknown_email = app
        .anonymous()
        .post(
            "/api/auth/login",
            json!({"email": "ghost@example.com", "password": "wrong-password"}),
        )
        .await;
    for response in [&wrong_password, &unknown_email] {
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert_eq!(response.error_code(), "invalid_credentials");
    }
    assert_eq!(
        wrong_password.body["error"]["message"],
        unknown_email.body["error"]["message"]
    );
}

#[tokio::test]
async fn repeated_login_failures_are_rate_limited_with_retry_after() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    for _ in 0..10 {
        let response = app
            .anonymous()
            .post(
                "/api/auth/login",
                json!({"email": admin.email, "password": "bad-password"}),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    }
    let limited = app
        .anonymous()
        .post(
            "/api/auth/login",
            json!({"email": admin.email, "password": admin.password}),
        )
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.error_code(), "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after));
    let other_email = app
        .anonymous()
        .post(
            "/api/auth/login",
            json!({"email": "x@example.com", "password": "bad-password"}),
        )
        .await;
    assert_eq!(
        other_email.status,
        StatusCode::UNAUTHORIZED,
        "the per-email limit does not block other emails"
    );
}

#[tokio::test]
async fn me_answers_to_bearer_cookie_and_api_key() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let key = admin
        .client(&app)
        .post("/api/api-keys", json!({"name": "ci"}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for client in [
        app.bearer(&admin.token),
        app.cookie(&admin.token),
        app.api_key(&key),
    ] {
        let me = client.get("/api/auth/me").await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
        assert_eq!(me.body["id"], admin.agent_id.as_str());
        assert_eq!(
            me.body["organization"]["id"],
            admin.organization_id.as_str()
        );
        assert_eq!(me.body["permissions"].as_array().unwrap().len(), 25);
    }
    assert_eq!(
        app.anonymous().get("/api/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_first_credential_present_decides() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let response = app
        .http
        .get(format!("{}/api/auth/me", app.base_url))
        .bearer_auth("not-a-jwt")
        .header("cookie", format!("omnistream_token={}", admin.token))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "an invalid bearer is not rescued by a valid cookie"
    );
}

#[tokio::test]
async fn logout_revokes_only_that_session_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let second = app.login(&admin.email, &admin.password).await;

    let logout = app
        .bearer(&admin.token)
        .send(reqwest::Method::POST, "/api/auth/logout", None)
        .await;
    assert_eq!(logout.status, StatusCode::OK);
    assert!(logout.body["message"].is_string());
    assert!(logout.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));

    assert_eq!(
        app.bearer(&admin.token).get("/api/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.cookie(&admin.token).get("/api/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.bearer(&second.token).get("/api/auth/me").await.status,
        StatusCode::OK
    );

    let anonymous = app
        .anonymous()
        .send(reqwest::Method::POST, "/api/auth/logout", None)
        .await;
    assert_eq!(
        anonymous.status,
        StatusCode::OK,
        "logout without a session is fine"
    );
}

#[tokio::test]
async fn token_refresh_needs_a_session_not_an_api_key() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let refreshed = app.cookie(&admin.token).get("/api/auth/token").await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let fresh = refreshed.body["token"].as_str().unwrap();
    assert!(refreshed.headers.contains_key("set-cookie"));
    assert_eq!(
        app.bearer(fresh).get("/api/auth/me").await.status,
        StatusCode::OK
    );

    let key = admin
        .client(&app)
        .post("/api/api-keys", json!({"name": "k"}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_key = app.api_key(&key).get("/api/auth/token").await;
    assert_eq!(with_key.status, StatusCode::FORBIDDEN);
    assert_eq!(with_key.error_code(), "session_required");

    // Logging out the session kills the refreshed token too: it is the same session.
    app.bearer(fresh)
        .send(reqwest::Method::POST, "/api/auth/logout", None)
        .await;
    assert_eq!(
        app.bearer(&admin.token).get("/api/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_password_change_refuses_older_tokens() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let agent = app.create_agent(&admin, "agent", json!({})).await;
    let changed = admin
        .client(&app)
        .patch(
            &format!("/api/agents/{}", agent.agent_id),
            json!({"password": "new-password-1"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        app.bearer(&agent.token).get("/api/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = app.login(&agent.email, "new-password-1").await;
    assert_eq!(
        app.bearer(&again.token).get("/api/auth/me").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn deactivated_agents_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let agent = app.create_agent(&admin, "supervisor", json!({})).await;
    let key = agent
        .client(&app)
        .post("/api/api-keys", json!({"name": "k"}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = admin
        .client(&app)
        .patch(
            &format!("/api/agents/{}", agent.agent_id),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["is_active"], false);

    for client in [
        app.bearer(&agent.token),
        app.cookie(&agent.token),
        app.api_key(&key),
    ] {
        assert_eq!(
            client.get("/api/agents").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let login = app
        .anonymous()
        .post(
            "/api/auth/login",
            json!({"email": agent.email, "password": agent.password}),
        )
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
    assert_eq!(login.error_code(), "account_suspended");
    let wrong = app
        .anonymous()
        .post(
            "/api/auth/login",
            json!({"email": agent.email, "password": "not-the-password"}),
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNAUTHORIZED,
        "suspension is not revealed without the password"
    );
}

#[tokio::test]
async fn suspended_organizations_are_refused_on_every_tenant_endpoint() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let key = admin
        .client(&app)
        .post("/api/api-keys", json!({"name": "k"}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    sqlx::query("UPDATE tenants SET status = 'suspended' WHERE id = $1::uuid")
        .bind(&admin.organization_id)
        .execute(&app.pool)
        .await
        .unwrap();
    for client in [app.bearer(&admin.token), app.api_key(&key)] {
        let response = client.get("/api/auth/me").await;
        assert_eq!(response.status, StatusCode::FORBIDDEN);
        assert_eq!(response.error_code(), "organization_suspended");
    }
    let login = app
        .anonymous()
        .post(
            "/api/auth/login",
            json!({"email": admin.email, "password": admin.password}),
        )
        .await;
    assert_eq!(login.error_code(), "organization_suspended");
}

fn sign(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_or_foreign_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let payload = admin.token.split('.').nth(1).unwrap();
    let decoded =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
    let genuine: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
    let now = chrono::Utc::now().timestamp();
    let with = |key: &str, value: serde_json::Value| {
        let mut claims = genuine.clone();
        claims[key] = value;
        claims
    };
    let cases = [
        (
            sign(with("aud", json!("someone-else")), TEST_JWT_SECRET),
            StatusCode::UNAUTHORIZED,
        ),
        (
            sign(with("iss", json!("someone-else")), TEST_JWT_SECRET),
            StatusCode::UNAUTHORIZED,
        ),
        (
            sign(with("exp", json!(now - 3600)), TEST_JWT_SECRET),
            StatusCode::UNAUTHORIZED,
        ),
        (
            sign(with("nbf", json!(now + 3600)), TEST_JWT_SECRET),
            StatusCode::UNAUTHORIZED,
        ),
        (
            sign(with("sid", json!(uuid::Uuid::new_v4())), TEST_JWT_SECRET),
            StatusCode::UNAUTHORIZED,
        ),
        (
            sign(genuine.clone(), "a-different-secret-entirely"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            sign(with("typ", json!("super_admin")), TEST_JWT_SECRET),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (token, expected) in cases {
        assert_eq!(
            app.bearer(&token).get("/api/auth/me").await.status,
            expected
        );
    }
    assert_eq!(
        app.bearer(&sign(genuine, TEST_JWT_SECRET))
            .get("/api/auth/me")
            .await
            .status,
        StatusCode::OK
    );
}
