//! Divisions tag.

use omnistream_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn divisions_are_managed_with_their_members() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let created = api
        .post(
            "/api/divisions",
            json!({"name": "Support", "description": "  Tier 1 "}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["description"], "Tier 1");
    let id = created.body["id"].as_str().unwrap().to_owned();
    api.post("/api/divisions", json!({"name": "billing"})).await;
    let taken = api.post("/api/divisions", json!({"name": "SUPPORT"})).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(taken.error_code(), "division_name_taken");

    let a = app.create_agent(&admin, "agent", json!({})).await;
    let b = app.create_agent(&admin, "agent", json!({})).await;
    let members = format!("/api/divisions/{id}/agents");
    let added = api
        .post(&members, json!({"agent_ids": [a.agent_id, b.agent_id]}))
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.body["added"], 2);
    let again = api.post(&members, json!({"agent_ids": [a.agent_id]})).await;
    assert_eq!(again.body["added"], 0, "idempotent");

    let unknown = api
        .post(
            &members,
            json!({"agent_ids": [admin.agent_id, uuid::Uuid::new_v4()]}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.error_code(), "invalid_agent");
    assert_eq!(
        api.get(&members).await.body.as_array().unwrap().len(),
        2,
        "nothing applied"
    );
    let empty = api.post(&members, json!({"agent_ids": []})).await;
    assert_eq!(empty.error_code(), "validation_error");

    let list = api.get("/api/divisions").await.body;
    assert_eq!(
        list[0]["name"], "billing",
        "sorted by name, case-insensitively"
    );
    assert_eq!(list[1]["agent_count"], 2);
    let single = api.get(&format!("/api/divisions/{id}")).await.body;
    assert_eq!(single["agent_count"], 2);
    assert_eq!(single["agents"].as_array().unwrap().len(), 2);

    let removed = api
        .delete_with(&members, json!({"agent_ids": [a.agent_id, admin.agent_id]}))
        .await;
    assert_eq!(removed.body["removed"], 1);
    let renamed = api
        .patch(
            &format!("/api/divisions/{id}"),
            json!({"name": "Care", "description": null}),
        )
        .await;
    assert_eq!(renamed.body["name"], "Care");
    assert!(renamed.body["description"].is_null());

    let deleted = api.delete(&format!("/api/divisions/{id}")).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        api.get(&format!("/api/divisions/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let agent = api.get(&format!("/api/agents/{}", b.agent_id)).await.body;
    assert_eq!(agent["division_ids"], json!([]), "memberships removed");
}

#[tokio::test]
async fn plain_agents_cannot_manage_divisions() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let agent = app.create_agent(&admin, "agent", json!({})).await;
    let supervisor = app.create_agent(&admin, "supervisor", json!({})).await;
    assert_eq!(
        agent.client(&app).get("/api/divisions").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        supervisor
            .client(&app)
            .post("/api/divisions", json!({"name": "Ops"}))
            .await
            .status,
        StatusCode::CREATED
    );
}
