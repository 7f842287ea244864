//! Fault tests: concurrency and crashes never lose or duplicate an acknowledged write.

use std::time::Duration;

use chrono::Utc;
use omnistream_commands::store::{CommandContext, ConversationService};
use omnistream_domain::conversation::{ConversationCommand, InboundMessage, OpenConversation};
use omnistream_domain::{Channel, InboundContent, MessageType, TenantId};
use omnistream_gateway::app::db;
use omnistream_tests::create_test_database;
use uuid::Uuid;

#[tokio::test]
async fn fifty_concurrent_writers_on_one_conversation_lose_nothing() {
    let url = create_test_database().await;
    let pool = db::connect(&url, 20, Duration::from_secs(10))
        .await
        .unwrap();
    db::migrate(&pool).await.unwrap();
    let service = ConversationService::new(pool.clone());
    let tenant = TenantId::new();
    let conversation = Uuid::new_v4();
    let open = OpenConversation {
        conversation_id: conversation,
        tenant_id: tenant.as_uuid(),
        channel: Channel::Whatsapp,
        integration_account_id: Uuid::new_v4(),
        contact_id: Uuid::new_v4(),
        division_id: None,
        at: Utc::now(),
    };
    let writers = (0..50).map(|n| {
        let (service, open) = (service.clone(), open.clone());
        tokio::spawn(async move {
            let message = InboundMessage {
                message_id: Uuid::new_v4(),
                provider_message_id: Some(format!("wamid.concurrent.{n}")),
                content: InboundContent {
                    message_type: MessageType::Text,
                    content: Some(format!("writer {n}")),
                    media: None,
                    reply_to_provider_id: None,
                    data: None,
                },
                sender_name: None,
                sent_at: Utc::now(),
                received_at: Utc::now(),
                raw: serde_json::Value::Null,
            };
            service
                .execute(
                    &CommandContext::system(tenant),
                    conversation,
                    ConversationCommand::ReceiveInbound { open, message },
                )
                .await
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer
            .unwrap()
            .expect("every writer succeeds: conflicts are retried by the server");
    }
    let stream = format!("{tenant}:{conversation}");
    let sequences: Vec<i64> =
        sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_id = $1 ORDER BY sequence")
            .bind(&stream)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        sequences,
        (1..=51).collect::<Vec<i64>>(),
        "opened once, 50 messages, a contiguous sequence"
    );
}

#[tokio::test]
async fn a_postgres_restart_is_survived_without_losing_acknowledged_writes() {
    use omnistream_gateway::app::devstack::{DevStack, Probe};
    use omnistream_tests::TestApp;
    use reqwest::StatusCode;
    use serde_json::json;

    let data_dir = tempfile::tempdir().unwrap();
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nats: std::net::SocketAddr = omnistream_tests::nats_url()
        .trim_start_matches("nats://")
        .parse()
        .unwrap();
    let mut stack = DevStack::ensure(
        data_dir.path(),
        Probe {
            postgres: unused,
            nats,
        },
    )
    .await
    .unwrap();
    assert!(stack.started_postgres);
    let app = TestApp::spawn_on(
        stack.database_url.clone(),
        omnistream_gateway::app::Roles::ALL,
        |_| {},
    )
    .await;
    let admin = app.register("Resilient").await;
    let api = admin.client(&app);

    let mut acknowledged = Vec::new();
    for n in 0..5 {
        let created = api
            .post("/api/divisions", json!({"name": format!("before {n}")}))
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        acknowledged.push(created.body["name"].as_str().unwrap().to_owned());
    }
    stack.stop_postgres().await;
    let down = app.anonymous().get("/api/health").await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.body["checks"]["postgres"], "error");
    let refused = api.post("/api/divisions", json!({"name": "during"})).await;
    assert!(
        refused.status.is_server_error(),
        "a write without a database is refused, not acknowledged"
    );
    assert!(
        refused.body["error"]["code"].is_string(),
        "still the error JSON: {}",
        refused.body
    );

    stack.start_postgres().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.anonymous().get("/api/health").await.status != StatusCode::OK {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never recovered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for n in 0..5 {
        let created = api
            .post("/api/divisions", json!({"name": format!("after {n}")}))
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "recovered without a restart: {}",
            created.body
        );
        acknowledged.push(created.body["name"].as_str().unwrap().to_owned());
    }
    let divisions = api.get("/api/divisions").await.body;
    let names: Vec<String> = divisions
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    for name in &acknowledged {
        assert!(
            names.contains(name),
            "{name} was acknowledged and must survive"
        );
    }
    app.stop();
    drop(app);
    stack.stop().await;
}
