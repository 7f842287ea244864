//! Roles tag and permission enforcement.

use omnistream_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn the_permission_catalogue_is_the_contracts_table_in_order() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let permissions = admin.client(&app).get("/api/permissions").await;
    assert_eq!(permissions.status, StatusCode::OK);
    let codes: Vec<&str> = permissions
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 25);
    assert_eq!(
        &codes[..4],
        [
            "conversations.view",
            "conversations.view_all",
            "conversations.reply",
            "conversations.manage"
        ]
    );
    assert_eq!(codes[24], "billing.manage");
    assert_eq!(permissions.body[7]["group"], "agents");
    assert!(permissions.body[7]["description"].as_str().unwrap().len() > 10);
}

#[tokio::test]
async fn system_roles_come_first_and_cannot_be_changed() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    api.post(
        "/api/roles",
        json!({"name": "Auditor", "permissions": ["activity_logs.view"]}),
    )
    .await;
    api.post(
        "/api/roles",
        json!({"name": "analyst", "permissions": ["analytics.view"]}),
    )
    .await;
    let roles = api.get("/api/roles").await.body;
    let names: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["admin", "supervisor", "agent", "analyst", "Auditor"]
    );
    assert_eq!(roles[0]["is_system"], true);
    assert_eq!(roles[0]["permissions"].as_array().unwrap().len(), 25);
    assert_eq!(roles[2]["permissions"].as_array().unwrap().len(), 6);

    let admin_role = roles[0]["id"].as_str().unwrap();
    let single = api.get(&format!("/api/roles/{admin_role}")).await;
    assert_eq!(single.body["agent_count"], 1);
    for response in [
        api.patch(&format!("/api/roles/{admin_role}"), json!({"name": "boss"}))
            .await,
        api.delete(&format!("/api/roles/{admin_role}")).await,
    ] {
        assert_eq!(response.status, StatusCode::FORBIDDEN);
        assert_eq!(response.error_code(), "system_role_immutable");
    }
}

#[tokio::test]
async fn custom_roles_are_validated() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let unknown = api
        .post(
            "/api/roles",
            json!({"name": "X", "permissions": ["agents.view", "root.everything", "nope"]}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let problem = unknown.body["error"]["details"]["permissions"]
        .as_str()
        .unwrap();
    assert!(
        problem.contains("root.everything") && problem.contains("nope"),
        "{problem}"
    );

    let reserved = api
        .post(
            "/api/roles",
            json!({"name": "Supervisor", "permissions": []}),
        )
        .await;
    assert_eq!(reserved.error_code(), "validation_error");
    assert!(reserved.body["error"]["details"]["name"].is_string());

    let created = api.post("/api/roles", json!({"name": "Night shift", "description": "after hours", "permissions": ["conversations.view", "conversations.view"]})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["is_system"], false);
    assert_eq!(created.body["permissions"], json!(["conversations.view"]));
    let duplicate = api
        .post(
            "/api/roles",
            json!({"name": "NIGHT SHIFT", "permissions": []}),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(duplicate.error_code(), "role_name_taken");
}

#[tokio::test]
async fn a_custom_role_grants_exactly_its_codes_and_changes_apply_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let role = api
        .post(
            "/api/roles",
            json!({"name": "Division lead", "permissions": ["divisions.manage"]}),
        )
        .await
        .body;
    let role_id = role["id"].as_str().unwrap();
    // A system `admin` role plus a custom role: the custom role's codes replace the admin's.
    let lead = app
        .create_agent(&admin, "admin", json!({"custom_role_id": role_id}))
        .await;
    let client = lead.client(&app);
    let me = client.get("/api/auth/me").await.body;
    assert_eq!(me["permissions"], json!(["divisions.manage"]));
    assert_eq!(me["role_name"], "Division lead");
    assert_eq!(client.get("/api/divisions").await.status, StatusCode::OK);
    assert_eq!(
        client.get("/api/agents").await.status,
        StatusCode::FORBIDDEN
    );

    let updated = api
        .patch(
            &format!("/api/roles/{role_id}"),
            json!({"permissions": ["agents.view"]}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(
        client.get("/api/divisions").await.status,
        StatusCode::FORBIDDEN,
        "removed at once"
    );
    assert_eq!(
        client.get("/api/agents").await.status,
        StatusCode::OK,
        "granted at once"
    );

    let in_use = api.delete(&format!("/api/roles/{role_id}")).await;
    assert_eq!(in_use.status, StatusCode::CONFLICT);
    assert_eq!(in_use.error_code(), "role_in_use");
    api.delete(&format!("/api/agents/{}", lead.agent_id)).await;
    let deleted = api.delete(&format!("/api/roles/{role_id}")).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(
        api.get(&format!("/api/roles/{role_id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn nobody_grants_a_permission_they_do_not_hold() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let role = api
        .post("/api/roles", json!({"name": "Role admin", "permissions": ["roles.manage", "agents.manage", "agents.view"]}))
        .await
        .body["id"]
        .clone();
    let delegate = app
        .create_agent(&admin, "agent", json!({"custom_role_id": role}))
        .await;
    let client = delegate.client(&app);

    let escalate = client
        .post(
            "/api/roles",
            json!({"name": "Escalated", "permissions": ["billing.manage"]}),
        )
        .await;
    assert_eq!(escalate.status, StatusCode::FORBIDDEN);
    assert_eq!(escalate.error_code(), "forbidden");
    let within = client
        .post(
            "/api/roles",
            json!({"name": "Viewer", "permissions": ["agents.view"]}),
        )
        .await;
    assert_eq!(within.status, StatusCode::CREATED);

    let make_admin = client
        .post("/api/agents", json!({"name": "New", "email": "new@example.com", "password": "password123", "role": "admin"}))
        .await;
    assert_eq!(make_admin.status, StatusCode::FORBIDDEN);
    let promote_self = client
        .patch(
            &format!("/api/agents/{}", delegate.agent_id),
            json!({"custom_role_id": null, "role": "admin"}),
        )
        .await;
    assert_eq!(promote_self.status, StatusCode::FORBIDDEN);
    let grow_own_role = client
        .patch(
            &format!("/api/roles/{}", role.as_str().unwrap()),
            json!({"permissions": ["billing.manage"]}),
        )
        .await;
    assert_eq!(grow_own_role.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn only_admins_manage_roles() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let supervisor = app.create_agent(&admin, "supervisor", json!({})).await;
    for path in ["/api/roles", "/api/permissions"] {
        assert_eq!(
            supervisor.client(&app).get(path).await.status,
            StatusCode::FORBIDDEN
        );
    }
}
