//! Agents tag.

use omnistream_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn admins_create_list_read_update_and_delete_agents() {
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

    let created = api
        .post(
            "/api/agents",
            json!({"name": " Budi ", "email": "Budi@Example.com", "password": "password123", "division_ids": [division], "can_broadcast": true}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let agent = &created.body;
    assert_eq!(agent["name"], "Budi");
    assert_eq!(agent["email"], "budi@example.com");
    assert_eq!(agent["role"], "agent", "role defaults to agent");
    assert_eq!(agent["role_name"], "agent");
    assert_eq!(agent["division_ids"], json!([division]));
    assert_eq!(agent["is_active"], true);
    assert_eq!(agent["is_online"], false);
    for field in ["custom_role_id", "avatar_url", "last_seen_at"] {
        assert!(agent[field].is_null(), "{field}");
    }
    assert!(agent.get("password_hash").is_none() && agent.get("password").is_none());
    let id = agent["id"].as_str().unwrap();

    let fetched = api.get(&format!("/api/agents/{id}")).await;
    assert_eq!(fetched.body, created.body);

    let list = api.get("/api/agents").await.body;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Admin", "Budi"], "sorted by name");
    assert_eq!(
        api.get(&format!("/api/agents?division_id={division}"))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/api/agents?role=admin")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/api/agents?q=BUDI")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/api/agents?q=example.com&is_active=true")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        api.get("/api/agents?is_online=true")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        api.get("/api/agents?role=owner").await.status,
        StatusCode::BAD_REQUEST
    );

    let updated = api
        .patch(&format!("/api/agents/{id}"), json!({"name": "Budi S", "role": "supervisor", "division_ids": [], "can_broadcast": false}))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["role"], "supervisor");
    assert_eq!(updated.body["division_ids"], json!([]));
    assert_eq!(
        updated.body["email"], "budi@example.com",
        "fields not sent keep their value"
    );

    let deleted = api.delete(&format!("/api/agents/{id}")).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["id"], id);
    assert_eq!(
        api.get(&format!("/api/agents/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/api/agents").await.body.as_array().unwrap().len(),
        1
    );
    let login = app
        .anonymous()
        .post(
            "/api/auth/login",
            json!({"email": "budi@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(login.error_code(), "account_suspended");
}

#[tokio::test]
async fn emails_are_unique_across_the_platform() {
    let app = TestApp::spawn().await;
    let first = app.register("First").await;
    let second = app.register("Second").await;
    let taken = second
        .client(&app)
        .post(
            "/api/agents",
            json!({"name": "Dup", "email": first.email.to_uppercase(), "password": "password123"}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(taken.error_code(), "email_taken");
    let agent = app.create_agent(&second, "agent", json!({})).await;
    let rename = second
        .client(&app)
        .patch(
            &format!("/api/agents/{}", agent.agent_id),
            json!({"email": first.email}),
        )
        .await;
    assert_eq!(rename.error_code(), "email_taken");
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_deactivated_or_deleted() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let me = &admin.agent_id;
    for body in [json!({"role": "agent"}), json!({"is_active": false})] {
        let response = api.patch(&format!("/api/agents/{me}"), body).await;
        assert_eq!(response.status, StatusCode::CONFLICT);
        assert_eq!(response.error_code(), "last_admin");
    }
    let myself = api.delete(&format!("/api/agents/{me}")).await;
    assert_eq!(myself.error_code(), "cannot_delete_self");

    let other = app.create_agent(&admin, "admin", json!({})).await;
    let demoted = api
        .patch(&format!("/api/agents/{me}"), json!({"role": "supervisor"}))
        .await;
    assert_eq!(
        demoted.status,
        StatusCode::OK,
        "another admin remains: {}",
        demoted.body
    );
    let last = other
        .client(&app)
        .delete(&format!("/api/agents/{}", other.agent_id))
        .await;
    assert_eq!(last.error_code(), "cannot_delete_self");
    let deactivate_last = other
        .client(&app)
        .patch(
            &format!("/api/agents/{}", other.agent_id),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(deactivate_last.error_code(), "last_admin");
}

#[tokio::test]
async fn referenced_roles_and_divisions_must_exist_in_the_tenant() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let system_role_id = api.get("/api/roles").await.body[0]["id"].clone();
    for (body, code) in [
        (
            json!({"custom_role_id": uuid::Uuid::new_v4()}),
            "invalid_role",
        ),
        (json!({"custom_role_id": system_role_id}), "invalid_role"),
        (
            json!({"division_ids": [uuid::Uuid::new_v4()]}),
            "invalid_division",
        ),
    ] {
        let mut request = json!({"name": "X", "email": format!("{}@example.com", uuid::Uuid::new_v4().simple()), "password": "password123"});
        request
            .as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let response = api.post("/api/agents", request).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            response.body
        );
        assert_eq!(response.error_code(), code);
    }
}

#[tokio::test]
async fn agents_set_their_own_status_and_only_admins_set_others() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let agent = app.create_agent(&admin, "agent", json!({})).await;
    let own = agent
        .client(&app)
        .patch(
            &format!("/api/agents/{}/status", agent.agent_id),
            json!({"is_online": true}),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.body["is_online"], true);
    assert!(own.body["last_seen_at"].is_string());

    let others = agent
        .client(&app)
        .patch(
            &format!("/api/agents/{}/status", admin.agent_id),
            json!({"is_online": true}),
        )
        .await;
    assert_eq!(others.status, StatusCode::FORBIDDEN);
    let by_admin = admin
        .client(&app)
        .patch(
            &format!("/api/agents/{}/status", agent.agent_id),
            json!({"is_online": false}),
        )
        .await;
    assert_eq!(by_admin.body["is_online"], false);
    let bad = agent
        .client(&app)
        .patch(
            &format!("/api/agents/{}/status", agent.agent_id),
            json!({"is_online": "yes"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body["error"]["details"]["is_online"].is_string());
}

#[tokio::test]
async fn plain_agents_can_read_but_not_manage_agents() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let agent = app.create_agent(&admin, "agent", json!({})).await;
    let supervisor = app.create_agent(&admin, "supervisor", json!({})).await;
    let api = agent.client(&app);
    assert_eq!(api.get("/api/agents").await.status, StatusCode::OK);
    assert_eq!(
        api.get(&format!("/api/agents/{}", admin.agent_id))
            .await
            .status,
        StatusCode::OK
    );
    for client in [api, supervisor.client(&app)] {
        let create = client
            .post(
                "/api/agents",
                json!({"name": "X", "email": "x@example.com", "password": "password123"}),
            )
            .await;
        assert_eq!(create.status, StatusCode::FORBIDDEN);
        assert_eq!(create.error_code(), "forbidden");
        assert_eq!(
            client
                .delete(&format!("/api/agents/{}", admin.agent_id))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn patch_clears_nullable_fields_and_rejects_null_for_others() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let role = api
        .post(
            "/api/roles",
            json!({"name": "Helper", "permissions": ["agents.view"]}),
        )
        .await
        .body["id"]
        .clone();
    let agent = app
        .create_agent(&admin, "agent", json!({"custom_role_id": role}))
        .await;
    let path = format!("/api/agents/{}", agent.agent_id);
    assert_eq!(api.get(&path).await.body["role_name"], "Helper");
    let cleared = api.patch(&path, json!({"custom_role_id": null})).await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert!(cleared.body["custom_role_id"].is_null());
    assert_eq!(cleared.body["role_name"], "agent");
    let null_name = api.patch(&path, json!({"name": null})).await;
    assert_eq!(null_name.status, StatusCode::BAD_REQUEST);
    assert!(null_name.body["error"]["details"]["name"].is_string());
}

#[tokio::test]
async fn agent_managers_cannot_take_over_more_powerful_agents() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let permissions = [
        "agents.manage",
        "agents.view",
        "conversations.view",
        "conversations.reply",
        "contacts.view",
        "contacts.manage",
        "templates.view",
    ];
    let role = admin
        .client(&app)
        .post(
            "/api/roles",
            json!({"name": "HR", "permissions": permissions}),
        )
        .await
        .body["id"]
        .clone();
    let hr = app
        .create_agent(&admin, "agent", json!({"custom_role_id": role}))
        .await;
    let plain = app.create_agent(&admin, "agent", json!({})).await;
    let client = hr.client(&app);
    let admin_path = format!("/api/agents/{}", admin.agent_id);
    for response in [
        client
            .patch(&admin_path, json!({"password": "hijacked-password"}))
            .await,
        client
            .patch(&admin_path, json!({"email": "hr-owned@example.com"}))
            .await,
        client.patch(&admin_path, json!({"is_active": false})).await,
        client.delete(&admin_path).await,
    ] {
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{}", response.body);
    }
    let renamed = client
        .patch(
            &format!("/api/agents/{}", plain.agent_id),
            json!({"name": "Renamed"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(
        app.bearer(&admin.token).get("/api/auth/me").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_query_parameters_are_rejected() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let response = admin.client(&app).get("/api/agents?rol=admin&q=x").await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.body["error"]["details"]["rol"],
        "unknown query parameter"
    );
}
