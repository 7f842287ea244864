//! API Keys tag.

use omnistream_tests::{Member, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// A new API key of `member`.
async fn new_key(app: &TestApp, member: &Member) -> String {
    member
        .client(app)
        .post("/api/api-keys", json!({"name": "k"}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_key_is_shown_once_and_acts_as_its_creator() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let created = api.post("/api/api-keys", json!({"name": "Zapier"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let key = created.body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("osk_") && key.len() == 44);
    assert_eq!(created.body["prefix"], &key[..12]);
    assert!(created.body["last_used_at"].is_null());

    let me = app.api_key(&key).get("/api/auth/me").await;
    assert_eq!(me.body["id"], admin.agent_id.as_str());
    let listed = api.get("/api/api-keys").await.body;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("key").is_none(), "the key is never listed");
    assert!(listed[0]["last_used_at"].is_string(), "use is recorded");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(stored, key.as_bytes(), "only a hash is stored");

    let via_key = app
        .api_key(&key)
        .post("/api/api-keys", json!({"name": "child"}))
        .await;
    assert_eq!(via_key.status, StatusCode::FORBIDDEN);
    assert_eq!(via_key.error_code(), "session_required");

    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        api.delete(&format!("/api/api-keys/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.api_key(&key).get("/api/auth/me").await.status,
        StatusCode::UNAUTHORIZED,
        "revoked at once"
    );
    assert_eq!(
        api.delete(&format!("/api/api-keys/{id}")).await.status,
        StatusCode::OK,
        "idempotent"
    );
    assert!(api.get("/api/api-keys").await.body[0]["revoked_at"].is_string());
    assert_eq!(
        app.api_key("osk_notakey").get("/api/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn expiry_must_be_future_and_expired_keys_stop_working() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let past = api
        .post(
            "/api/api-keys",
            json!({"name": "old", "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);
    assert!(past.body["error"]["details"]["expires_at"].is_string());
    let soon = api
        .post(
            "/api/api-keys",
            json!({"name": "soon", "expires_at": "2999-01-01T07:00:00+07:00"}),
        )
        .await;
    assert_eq!(soon.status, StatusCode::CREATED);
    assert_eq!(
        soon.body["expires_at"], "2999-01-01T00:00:00Z",
        "offsets are normalised to UTC"
    );
    let key = soon.body["key"].as_str().unwrap();
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        app.api_key(key).get("/api/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn keys_are_private_to_their_creator_except_for_admins() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let first = app.create_agent(&admin, "supervisor", json!({})).await;
    let second = app.create_agent(&admin, "supervisor", json!({})).await;
    let created = first
        .client(&app)
        .post("/api/api-keys", json!({"name": "mine"}))
        .await
        .body;
    let id = created["id"].as_str().unwrap();
    assert!(second
        .client(&app)
        .get("/api/api-keys")
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        second
            .client(&app)
            .delete(&format!("/api/api-keys/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin
            .client(&app)
            .delete(&format!("/api/api-keys/{id}"))
            .await
            .status,
        StatusCode::OK
    );
    let agent = app.create_agent(&admin, "agent", json!({})).await;
    assert_eq!(
        agent.client(&app).get("/api/api-keys").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn deleting_an_agent_revokes_its_keys() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let supervisor = app.create_agent(&admin, "supervisor", json!({})).await;
    let key = new_key(&app, &supervisor).await;
    assert_eq!(
        app.api_key(&key).get("/api/auth/me").await.status,
        StatusCode::OK
    );
    admin
        .client(&app)
        .delete(&format!("/api/agents/{}", supervisor.agent_id))
        .await;
    assert_eq!(
        app.api_key(&key).get("/api/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.bearer(&supervisor.token)
            .get("/api/auth/me")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

/// A password change revokes the agent's API keys along with its sessions: keys created by
/// whoever held the old password stop working; a change of anything else keeps them.
#[tokio::test]
async fn a_password_change_revokes_the_agents_keys() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let supervisor = app.create_agent(&admin, "supervisor", json!({})).await;
    let key = new_key(&app, &supervisor).await;
    let path = format!("/api/agents/{}", supervisor.agent_id);
    let renamed = admin
        .client(&app)
        .patch(&path, json!({"name": "Renamed"}))
        .await;
    assert_eq!(renamed.status, StatusCode::OK);
    assert_eq!(
        app.api_key(&key).get("/api/auth/me").await.status,
        StatusCode::OK
    );
    let changed = admin
        .client(&app)
        .patch(&path, json!({"password": "a-new-password"}))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        app.api_key(&key).get("/api/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let relogged = app.login(&supervisor.email, "a-new-password").await;
    let keys = relogged.client(&app).get("/api/api-keys").await;
    assert!(
        keys.body.as_array().unwrap()[0]["revoked_at"].is_string(),
        "{}",
        keys.body
    );
}
