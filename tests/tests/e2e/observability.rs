//! Health, metrics, request ids, the OpenAPI document and the docs page.

use std::collections::BTreeSet;

use omnistream_tests::TestApp;
use reqwest::StatusCode;

#[tokio::test]
async fn health_checks_postgres_and_nats() {
    let app = TestApp::spawn().await;
    let health = app.anonymous().get("/api/health").await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.body);
    assert_eq!(health.body["status"], "ok");
    assert_eq!(health.body["service"], "api-gateway");
    assert_eq!(health.body["checks"]["postgres"], "ok");
    assert_eq!(health.body["checks"]["nats"], "ok");
    assert!(health.body["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(health.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn health_names_nats_when_it_is_unreachable() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let database_url = omnistream_tests::create_test_database().await;
    let config = omnistream_gateway::Config::from_lookup(|name| {
        (name == "BIND_ADDR").then(|| "127.0.0.1:0".to_owned())
    })
    .unwrap();
    let app = omnistream_gateway::Application::build(omnistream_gateway::Settings {
        config,
        database_url,
        nats_url: format!("nats://{unused}"),
        jwt_secret: omnistream_gateway::app::config::Secret::new(omnistream_tests::TEST_JWT_SECRET),
        encryption_key: omnistream_gateway::app::config::Secret::new(
            omnistream_tests::TEST_ENCRYPTION_KEY,
        ),
        roles: omnistream_gateway::Roles::ALL,
    })
    .await
    .expect("the API starts while NATS is down");
    let address = app.local_addr().unwrap();
    let stop = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    let response = reqwest::get(format!("http://{address}/api/health"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["nats"], "error");
    assert_eq!(body["checks"]["postgres"], "ok");
    stop.cancel();
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_metrics_are_exposed() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let me = admin.client(&app).get("/api/auth/me").await;
    assert!(!me.headers["x-request-id"].to_str().unwrap().is_empty());
    let propagated = app
        .http
        .get(format!("{}/api/nothing", app.base_url))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(propagated.headers()["x-request-id"], "trace-me-42");

    let metrics = app
        .http
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    assert!(text.contains("omnistream_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/api/auth/me\""));
}

#[tokio::test]
async fn metrics_require_the_token_when_one_is_configured() {
    let app = TestApp::spawn_with(|config| {
        config.metrics_token = Some(omnistream_gateway::app::config::Secret::new("scrape-me"))
    })
    .await;
    let url = format!("{}/metrics", app.base_url);
    assert_eq!(
        app.http.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.http
            .get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.http
            .get(&url)
            .bearer_auth("scrape-me")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint_and_the_docs_page_works_offline() {
    let app = TestApp::spawn().await;
    let document = app.anonymous().get("/api/openapi.json").await;
    assert_eq!(document.status, StatusCode::OK);
    assert!(document.body["openapi"]
        .as_str()
        .unwrap()
        .starts_with("3.1"));
    let mut operations = BTreeSet::new();
    for (path, item) in document.body["paths"].as_object().unwrap() {
        for method in ["get", "post", "patch", "put", "delete"] {
            if let Some(operation) = item.get(method) {
                operations.insert(format!("{} {path}", method.to_uppercase()));
                assert!(
                    operation["responses"]
                        .as_object()
                        .is_some_and(|r| !r.is_empty()),
                    "{method} {path} documents responses"
                );
            }
        }
    }
    let expected: BTreeSet<String> = [
        "POST /api/auth/login",
        "GET /api/auth/me",
        "POST /api/auth/logout",
        "GET /api/auth/token",
        "POST /api/auth/token",
        "POST /api/auth/register",
        "GET /api/agents",
        "POST /api/agents",
        "GET /api/agents/{id}",
        "DELETE /api/agents/{id}",
        "PATCH /api/agents/{id}",
        "PATCH /api/agents/{id}/status",
        "GET /api/divisions",
        "POST /api/divisions",
        "GET /api/divisions/{id}",
        "DELETE /api/divisions/{id}",
        "PATCH /api/divisions/{id}",
        "GET /api/divisions/{id}/agents",
        "POST /api/divisions/{id}/agents",
        "DELETE /api/divisions/{id}/agents",
        "GET /api/roles",
        "POST /api/roles",
        "GET /api/roles/{id}",
        "DELETE /api/roles/{id}",
        "PATCH /api/roles/{id}",
        "GET /api/permissions",
        "GET /api/api-keys",
        "POST /api/api-keys",
        "DELETE /api/api-keys/{id}",
        "GET /api/activity-logs",
        "GET /api/health",
        "GET /metrics",
        "GET /api/conversations",
        "POST /api/conversations",
        "GET /api/conversations/{id}",
        "PATCH /api/conversations/{id}/assign",
        "PATCH /api/conversations/{id}/status",
        "POST /api/conversations/{id}/read",
        "POST /api/conversations/expire",
        "PATCH /api/conversations/{id}/tags",
        "POST /api/conversations/{id}/takeover",
        "POST /api/conversations/bulk",
        "GET /api/conversations/{id}/events",
        "POST /api/conversations/{id}/transfer",
        "GET /api/conversations/{id}/transfers",
        "GET /api/conversations/{id}/messages",
        "POST /api/conversations/{id}/messages",
        "GET /api/messages/search",
        "GET /api/messages/{id}",
        "POST /api/messages/{id}/retry",
        "POST /api/media/upload",
        "GET /api/media/{id}",
        "GET /api/contacts",
        "GET /api/contacts/{id}",
        "PATCH /api/contacts/{id}",
        "GET /api/contacts/{id}/conversations",
        "GET /api/conversations/{id}/notes",
        "POST /api/conversations/{id}/notes",
        "PATCH /api/conversations/{id}/notes/{note_id}",
        "DELETE /api/conversations/{id}/notes/{note_id}",
        "GET /api/chat-expiration-rules",
        "PUT /api/chat-expiration-rules/{channel}",
        "GET /api/integrations",
        "GET /api/integrations/{channel}",
        "PUT /api/integrations/{channel}",
        "DELETE /api/integrations/{channel}",
        "GET /api/integrations/accounts",
        "POST /api/integrations/accounts",
        "GET /api/integrations/accounts/{id}",
        "PATCH /api/integrations/accounts/{id}",
        "DELETE /api/integrations/accounts/{id}",
        "POST /api/integrations/accounts/{id}/set-default",
        "GET /api/integrations/accounts/{id}/whatsapp-status",
        "GET /api/integrations/whatsapp/embedded-signup-config",
        "POST /api/integrations/whatsapp/embedded-signup",
        "GET /api/integrations/instagram/auth-config",
        "POST /api/integrations/instagram/connect",
        "GET /api/integrations/messenger/auth-config",
        "POST /api/integrations/messenger/connect",
        "POST /api/integrations/messenger/pages",
        "POST /api/integrations/messenger/disconnect/{account_id}",
        "GET /api/integrations/messenger/{account_id}/persistent-menu",
        "POST /api/integrations/messenger/{account_id}/persistent-menu",
        "GET /api/stream",
        "GET /api/outgoing-webhooks",
        "POST /api/outgoing-webhooks",
        "PATCH /api/outgoing-webhooks/{id}",
        "DELETE /api/outgoing-webhooks/{id}",
        "GET /api/outgoing-webhooks/event-types",
        "GET /api/outgoing-webhooks/{id}/deliveries",
        "POST /api/outgoing-webhooks/{id}/test",
        "POST /api/outgoing-webhooks/{id}/deliveries/{delivery_id}/redeliver",
        "POST /api/outgoing-webhooks/{id}/replay",
        "GET /webhooks/meta",
        "POST /webhooks/meta",
        "POST /webhooks/email",
        "GET /webhooks/messenger",
        "POST /webhooks/messenger",
        "GET /webhooks/instagram",
        "POST /webhooks/instagram",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(operations, expected);
    let schemas = document.body["components"]["schemas"].as_object().unwrap();
    for schema in [
        "AgentPublic",
        "ErrorResponse",
        "LoginResponse",
        "RoleWithPermissions",
        "Division",
        "ApiKey",
        "ActivityLog",
        "MediaUploadResponse",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }

    let docs = app
        .http
        .get(format!("{}/docs/", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "the docs page is Swagger UI");
    assert!(
        !html.contains("https://"),
        "no CDN: every asset is served locally"
    );
    let redirect = app
        .http
        .get(format!("{}/docs", app.base_url))
        .send()
        .await
        .unwrap();
    assert!(redirect.status().is_redirection() || redirect.status().is_success());
}

#[tokio::test]
async fn metric_labels_come_from_closed_sets_whatever_the_client_sends() {
    let app = TestApp::spawn().await;
    for n in 0..50 {
        let method = reqwest::Method::from_bytes(format!("RANDOM{n}X").as_bytes()).unwrap();
        let response = app
            .http
            .request(
                method,
                format!("{}/api/health/{n}/no-such-path", app.base_url),
            )
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error());
    }
    let text = app
        .http
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("RANDOM"), "a raw method became a label");
    assert!(!text.contains("no-such-path"), "a raw path became a label");
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(text.contains("route=\"unmatched\""), "{text}");
}

/// The samples of `omnistream_pipeline_stage_seconds` recorded for `stage` so far (the process
/// shares one registry among the tests running in it, so tests compare before and after).
async fn stage_count(app: &TestApp, stage: &str) -> u64 {
    let text = app
        .http
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| {
            line.starts_with("omnistream_pipeline_stage_seconds_count")
                && line.contains(&format!("stage=\"{stage}\""))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn each_stage_of_the_pipeline_is_timed_in_the_metrics() {
    // Its own NATS stream: the dispatcher of an app sharing one would take the events.
    let (crate::whatsapp::Spine { app, admin, .. }, prefix) =
        crate::webhooks::isolated_spine("700000000000004").await;
    let receiver = omnistream_tests::webhook_receiver::Receiver::start().await;
    receiver
        .subscribe(&admin.client(&app), &["message.received"])
        .await;
    let stages = ["stored", "appended", "projected", "published", "delivered"];
    let mut before = Vec::new();
    for stage in stages {
        before.push(stage_count(&app, stage).await);
    }
    let webhook = omnistream_tests::fake_meta::whatsapp_text_webhook(
        "700000000000004",
        "6281700005",
        "Customer",
        "wamid.M1",
        "timed",
        chrono::Utc::now().timestamp(),
    );
    assert_eq!(
        app.post_meta_webhook(&webhook).await.status(),
        StatusCode::OK
    );
    receiver
        .wait_until("the delivery", |r| r.iter().any(|e| e.ok))
        .await;
    for (stage, before) in stages.into_iter().zip(before) {
        let mut patience =
            omnistream_tests::patience::Patience::new(std::time::Duration::from_secs(20));
        loop {
            let now = stage_count(&app, stage).await;
            if now > before {
                break;
            }
            assert!(patience.progressing(now), "no `{stage}` sample recorded");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let text = app
        .http
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("omnistream_pipeline_stage_seconds_bucket{stage=\"stored\",le=\"0.001\"}"),
        "a histogram with buckets"
    );
    crate::webhooks::drop_stream(&prefix).await;
}
