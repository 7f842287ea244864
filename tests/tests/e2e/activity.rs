//! Activity Logs tag: every change leaves a row; filters and pagination.

use omnistream_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn every_change_through_the_api_is_logged_with_its_actor() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let division = api
        .post("/api/divisions", json!({"name": "Sales"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = app.create_agent(&admin, "agent", json!({})).await;
    api.patch(
        &format!("/api/agents/{}", agent.agent_id),
        json!({"name": "Renamed", "password": "another-pass"}),
    )
    .await;
    let role = api
        .post("/api/roles", json!({"name": "R", "permissions": []}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.post(
        &format!("/api/divisions/{division}/agents"),
        json!({"agent_ids": [agent.agent_id]}),
    )
    .await;
    let key = api.post("/api/api-keys", json!({"name": "k"})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.delete(&format!("/api/api-keys/{key}")).await;
    api.delete(&format!("/api/roles/{role}")).await;

    let logs = api.get("/api/activity-logs?per_page=100").await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.body);
    let actions: Vec<&str> = logs.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    for expected in [
        "organization.registered",
        "division.created",
        "agent.created",
        "auth.login",
        "agent.updated",
        "role.created",
        "division.agents_added",
        "api_key.created",
        "api_key.revoked",
        "role.deleted",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert_eq!(actions[0], "role.deleted", "newest first");

    let updated = api
        .get(&format!(
            "/api/activity-logs?action=agent.updated&entity_id={}",
            agent.agent_id
        ))
        .await
        .body;
    assert_eq!(updated["total"], 1);
    let row = &updated["data"][0];
    assert_eq!(row["agent_id"], admin.agent_id.as_str());
    assert_eq!(row["agent_name"], "Admin");
    assert_eq!(row["entity_type"], "agent");
    assert_eq!(row["ip_address"], "127.0.0.1");
    assert_eq!(row["details"]["changes"]["name"]["to"], "Renamed");
    assert_eq!(row["details"]["changes"]["password"], "changed");
    assert!(
        !row.to_string().contains("another-pass"),
        "secrets are never logged"
    );
}

#[tokio::test]
async fn activity_logs_filter_and_paginate() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    for i in 0..5 {
        api.post("/api/divisions", json!({"name": format!("D{i}")}))
            .await;
    }
    let page = api
        .get("/api/activity-logs?entity_type=division&per_page=2&page=2")
        .await
        .body;
    assert_eq!(page["total"], 5);
    assert_eq!(page["total_pages"], 3);
    assert_eq!(page["page"], 2);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let past_end = api
        .get("/api/activity-logs?entity_type=division&per_page=2&page=9")
        .await
        .body;
    assert_eq!(past_end["data"], json!([]));

    let today = chrono::Utc::now().date_naive();
    let tomorrow = today + chrono::Days::new(2);
    let by_date = api
        .get(&format!(
            "/api/activity-logs?entity_type=division&from={today}&to={tomorrow}"
        ))
        .await
        .body;
    assert_eq!(by_date["total"], 5);
    let future = api
        .get(&format!("/api/activity-logs?from={tomorrow}"))
        .await
        .body;
    assert_eq!(future["total"], 0);
    let by_agent = api
        .get(&format!(
            "/api/activity-logs?agent_id={}",
            uuid::Uuid::new_v4()
        ))
        .await
        .body;
    assert_eq!(by_agent["total"], 0);

    for bad in [
        "per_page=0",
        "per_page=101",
        "page=0",
        "page=x",
        "from=yesterday",
        "agent_id=42",
    ] {
        let response = api.get(&format!("/api/activity-logs?{bad}")).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(response.error_code(), "validation_error");
    }
    let agent = app.create_agent(&admin, "agent", json!({})).await;
    assert_eq!(
        agent.client(&app).get("/api/activity-logs").await.status,
        StatusCode::FORBIDDEN
    );
}
