//! Bad input never produces a 500, a panic or a non-JSON body.

use omnistream_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn malformed_bodies_get_the_contracts_error_json() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);

    let broken = api
        .send_raw(
            Method::POST,
            "/api/divisions",
            "application/json",
            b"{\"name\": ".to_vec(),
        )
        .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert_eq!(broken.error_code(), "invalid_json");

    let not_object = api
        .send_raw(
            Method::POST,
            "/api/divisions",
            "application/json",
            b"[1,2]".to_vec(),
        )
        .await;
    assert_eq!(not_object.error_code(), "validation_error");

    let wrong_type = api
        .send_raw(
            Method::POST,
            "/api/divisions",
            "text/plain",
            b"{\"name\":\"x\"}".to_vec(),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(wrong_type.error_code(), "unsupported_media_type");

    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let too_large = api
        .send_raw(
            Method::POST,
            "/api/divisions",
            "application/json",
            huge.into_bytes(),
        )
        .await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.error_code(), "payload_too_large");

    let mass_assignment = api
        .post(
            "/api/divisions",
            json!({"name": "X", "organization_id": admin.organization_id, "id": "x"}),
        )
        .await;
    assert_eq!(mass_assignment.status, StatusCode::BAD_REQUEST);
    let details = &mass_assignment.body["error"]["details"];
    assert_eq!(details["organization_id"], "unknown field");
    assert_eq!(details["id"], "unknown field");

    let missing = api
        .post("/api/agents", json!({"email": "a@example.com"}))
        .await;
    assert_eq!(missing.body["error"]["details"]["name"], "is required");

    // Every offending field is named, not only the first one serde met.
    let both = app
        .anonymous()
        .post("/api/auth/login", json!({"email": 5}))
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    let details = &both.body["error"]["details"];
    assert!(details["email"].is_string(), "{}", both.body);
    assert_eq!(details["password"], "is required", "{}", both.body);
    let all = api
        .post(
            "/api/agents",
            json!({"name": 1, "email": [], "password": true, "can_broadcast": "yes"}),
        )
        .await;
    let named: Vec<&String> = all.body["error"]["details"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        named,
        ["can_broadcast", "email", "name", "password"],
        "{}",
        all.body
    );
}

#[tokio::test]
async fn unknown_paths_methods_and_malformed_ids_answer_in_json() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let missing = api.get("/api/nothing-here").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "not_found");
    let wrong_method = api.send(Method::PUT, "/api/agents", Some(json!({}))).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.error_code(), "method_not_allowed");
    for path in [
        "/api/agents/not-a-uuid",
        "/api/divisions/1",
        "/api/roles/%27%3B--",
        "/api/api-keys/x",
    ] {
        let method = if path.starts_with("/api/api-keys") {
            Method::DELETE
        } else {
            Method::GET
        };
        let response = api.send(method, path, None).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(response.body["error"]["details"]["id"], "must be a UUID");
    }
}

#[tokio::test]
async fn hostile_input_never_causes_a_server_error() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let agent_id = admin.agent_id.clone();
    let payloads = [
        json!(null),
        json!("string"),
        json!({"name": null}),
        json!({"name": 12, "email": [], "password": {}}),
        json!({"name": "'; DROP TABLE agents; --", "email": "x@x.io", "password": "password123"}),
        json!({"name": "\u{0000}", "description": "\u{0000}"}),
        json!({"agent_ids": ["not-a-uuid"]}),
        json!({"agent_ids": [null]}),
        json!({"permissions": "agents.view", "name": "x"}),
        json!({"is_online": null}),
        json!({"expires_at": "tomorrow", "name": "k"}),
        json!({"role": "root", "custom_role_id": 5}),
        json!({"name": "x".repeat(10_000)}),
    ];
    let endpoints = [
        (Method::POST, "/api/agents".to_owned()),
        (Method::PATCH, format!("/api/agents/{agent_id}")),
        (Method::PATCH, format!("/api/agents/{agent_id}/status")),
        (Method::POST, "/api/divisions".to_owned()),
        (Method::POST, "/api/roles".to_owned()),
        (Method::POST, "/api/api-keys".to_owned()),
        (Method::POST, "/api/auth/login".to_owned()),
        (Method::POST, "/api/auth/register".to_owned()),
    ];
    for (method, path) in &endpoints {
        for payload in &payloads {
            let response = api.send(method.clone(), path, Some(payload.clone())).await;
            assert!(
                response.status.is_client_error() || response.status.is_success(),
                "{method} {path} with {payload} gave {}: {}",
                response.status,
                response.body
            );
            assert!(
                response.body.get("_text").is_none(),
                "{method} {path}: non-JSON body {}",
                response.body
            );
        }
    }
    let still_there: i64 = sqlx::query_scalar("SELECT count(*) FROM agents")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(still_there >= 1);
}
