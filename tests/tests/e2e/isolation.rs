//! Tenant isolation: with its JWT, cookie or API key, tenant B can neither read, list, change
//! nor detect tenant A's agents, divisions, roles, API keys or activity.

use omnistream_tests::{Client, Member, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct TenantA {
    admin: Member,
    agent_id: String,
    division_id: String,
    role_id: String,
    system_role_id: String,
    api_key_id: String,
}

async fn populate(app: &TestApp) -> TenantA {
    let admin = app.register("Tenant A").await;
    let api = admin.client(app);
    let division_id = api
        .post("/api/divisions", json!({"name": "A-Sales"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role_id = api
        .post("/api/roles", json!({"name": "A-Role", "permissions": []}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let system_role_id = api.get("/api/roles").await.body[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = app
        .create_agent(&admin, "agent", json!({"division_ids": [division_id]}))
        .await;
    let api_key_id = api
        .post("/api/api-keys", json!({"name": "A-key"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    TenantA {
        admin,
        agent_id: agent.agent_id,
        division_id,
        role_id,
        system_role_id,
        api_key_id,
    }
}

fn assert_not_found(response: &omnistream_tests::Response, what: &str) {
    assert_eq!(
        response.status,
        StatusCode::NOT_FOUND,
        "{what}: {}",
        response.body
    );
    assert_eq!(response.error_code(), "not_found", "{what}");
}

async fn probe_as(b: &Client, a: &TenantA, b_agent_id: &str) {
    let agent = format!("/api/agents/{}", a.agent_id);
    let division = format!("/api/divisions/{}", a.division_id);
    let members = format!("{division}/agents");
    let requests: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, agent.clone(), None),
        (Method::PATCH, agent.clone(), Some(json!({"name": "pwned"}))),
        (Method::DELETE, agent.clone(), None),
        (
            Method::PATCH,
            format!("{agent}/status"),
            Some(json!({"is_online": true})),
        ),
        (Method::GET, division.clone(), None),
        (
            Method::PATCH,
            division.clone(),
            Some(json!({"name": "pwned"})),
        ),
        (Method::DELETE, division.clone(), None),
        (Method::GET, members.clone(), None),
        (
            Method::POST,
            members.clone(),
            Some(json!({"agent_ids": [b_agent_id]})),
        ),
        (
            Method::DELETE,
            members.clone(),
            Some(json!({"agent_ids": [a.agent_id]})),
        ),
        (Method::GET, format!("/api/roles/{}", a.role_id), None),
        (
            Method::PATCH,
            format!("/api/roles/{}", a.role_id),
            Some(json!({"name": "pwned"})),
        ),
        (Method::DELETE, format!("/api/roles/{}", a.role_id), None),
        (
            Method::GET,
            format!("/api/roles/{}", a.system_role_id),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/roles/{}", a.system_role_id),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/api-keys/{}", a.api_key_id),
            None,
        ),
    ];
    for (method, path, body) in requests {
        let response = b.send(method.clone(), &path, body).await;
        assert_not_found(&response, &format!("{method} {path}"));
    }
    // References to A's resources from B's own writes are unusable, not applied.
    let with_role = b
        .post(
            "/api/agents",
            json!({"name": "X", "email": format!("{}@example.com", uuid::Uuid::new_v4().simple()), "password": "password123", "custom_role_id": a.role_id}),
        )
        .await;
    assert_eq!(with_role.error_code(), "invalid_role");
    let with_division = b
        .patch(
            &format!("/api/agents/{b_agent_id}"),
            json!({"division_ids": [a.division_id]}),
        )
        .await;
    assert_eq!(with_division.error_code(), "invalid_division");

    // Lists and filters show nothing of A.
    let everything = [
        b.get("/api/agents").await.body,
        b.get(&format!("/api/agents?division_id={}", a.division_id))
            .await
            .body,
        b.get("/api/divisions").await.body,
        b.get("/api/roles").await.body,
        b.get("/api/api-keys").await.body,
        b.get("/api/activity-logs?per_page=100").await.body,
        b.get(&format!("/api/activity-logs?agent_id={}", a.admin.agent_id))
            .await
            .body,
    ]
    .map(|v| v.to_string())
    .join("\n");
    for secret in [
        &a.agent_id,
        &a.division_id,
        &a.role_id,
        &a.system_role_id,
        &a.api_key_id,
        &a.admin.agent_id,
        &a.admin.organization_id,
    ] {
        assert!(
            !everything.contains(secret.as_str()),
            "tenant B saw {secret}"
        );
    }
    for name in ["A-Sales", "A-Role", "A-key", "Tenant A"] {
        assert!(!everything.contains(name), "tenant B saw {name}");
    }
}

#[tokio::test]
async fn tenant_b_cannot_reach_tenant_a_with_any_credential() {
    let app = TestApp::spawn().await;
    let a = populate(&app).await;
    let b = app.register("Tenant B").await;
    let key = b
        .client(&app)
        .post("/api/api-keys", json!({"name": "b"}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for client in [
        app.bearer(&b.token),
        app.cookie(&b.token),
        app.api_key(&key),
    ] {
        probe_as(&client, &a, &b.agent_id).await;
    }

    // And A's data is untouched.
    let api = a.admin.client(&app);
    let agent = api.get(&format!("/api/agents/{}", a.agent_id)).await;
    assert_eq!(agent.status, StatusCode::OK);
    assert_ne!(agent.body["name"], "pwned");
    assert_eq!(agent.body["division_ids"], json!([a.division_id]));
    assert_eq!(
        api.get(&format!("/api/divisions/{}/agents", a.division_id))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get(&format!("/api/roles/{}", a.role_id)).await.body["name"],
        "A-Role"
    );
    assert!(api.get("/api/api-keys").await.body[0]["revoked_at"].is_null());
}
