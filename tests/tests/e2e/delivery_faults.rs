//! Fault tests of event delivery: a long NATS outage and a relay crash between the NATS ack and
//! its checkpoint lose nothing and deliver nothing twice to outgoing-webhook endpoints.

use std::collections::HashSet;
use std::time::Duration;

use omnistream_projections::log::relay::{stream_name, RELAY_CHECKPOINT};
use omnistream_tests::fake_meta::{whatsapp_text_webhook, FakeMeta};
use omnistream_tests::webhook_receiver::{Received, Receiver};
use omnistream_tests::{create_test_database, nats_url, TestApp};
use reqwest::StatusCode;
use serde_json::json;

const OUTAGE: Duration = Duration::from_secs(30);

fn start_private_nats(port: u16, store: &std::path::Path) -> std::process::Child {
    let binary = [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .unwrap_or("nats-server");
    std::process::Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nats-server starts")
}

async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on {port}");
}

/// The distinct event ids delivered successfully, and how many deliveries there were.
fn delivered(received: &[Received]) -> (HashSet<String>, usize) {
    let ok: Vec<&Received> = received.iter().filter(|r| r.ok).collect();
    (ok.iter().map(|r| r.id.clone()).collect(), ok.len())
}

/// A WhatsApp account on `app` and an endpoint subscribed to `message.received`.
async fn subscribed(app: &TestApp, phone_number_id: &str) -> Receiver {
    let admin = app.register("Org").await;
    let api = admin.client(app);
    let account = api
        .post(
            "/api/integrations/accounts",
            json!({"channel": "whatsapp", "is_active": true,
                   "config": {"phone_number_id": phone_number_id, "waba_id": "1", "access_token": "EAAG-token-9999"}}),
        )
        .await;
    assert_eq!(account.status, StatusCode::CREATED, "{}", account.body);
    let receiver = Receiver::start().await;
    receiver.subscribe(&api, &["message.received"]).await;
    receiver
}

async fn send(app: &TestApp, phone_number_id: &str, n: u32) {
    let webhook = whatsapp_text_webhook(
        phone_number_id,
        "62809006",
        "Maya",
        &format!("wamid.N{n}"),
        &format!("n{n}"),
        chrono::Utc::now().timestamp(),
    );
    assert_eq!(
        app.post_meta_webhook(&webhook).await.status(),
        StatusCode::OK,
        "webhook {n} is acknowledged"
    );
}

#[tokio::test]
async fn a_thirty_second_nats_outage_loses_nothing_and_publishes_and_delivers_everything_once() {
    const PHONE: &str = "500000000000006";
    let store = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut nats = start_private_nats(port, store.path());
    wait_for_port(port).await;
    let fake = FakeMeta::start().await;
    let base = fake.base_url.clone();
    let app = TestApp::spawn_on_nats(
        create_test_database().await,
        format!("nats://127.0.0.1:{port}"),
        move |config| {
            config.meta_graph_base_url = base;
            config.nats_prefix = "outage".into();
        },
    )
    .await;
    let receiver = subscribed(&app, PHONE).await;
    let mut sent = 0;
    while sent < 5 {
        send(&app, PHONE, sent).await;
        sent += 1;
    }
    receiver
        .wait_until("the first five", |r| delivered(r).0.len() == 5)
        .await;

    nats.kill().unwrap();
    nats.wait().unwrap();
    let outage_ends = tokio::time::Instant::now() + OUTAGE;
    let mut health_checked = false;
    while tokio::time::Instant::now() < outage_ends {
        send(&app, PHONE, sent).await;
        sent += 1;
        if !health_checked {
            let health = app.anonymous().get("/api/health").await;
            assert_eq!(
                health.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{}",
                health.body
            );
            assert_eq!(health.body["checks"]["nats"], "error");
            assert_eq!(health.body["checks"]["postgres"], "ok");
            health_checked = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        sent > 50,
        "traffic continued through the outage ({sent} webhooks)"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if messages == i64::from(sent) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the inbox kept working without NATS: {messages} of {sent} messages"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut nats = start_private_nats(port, store.path());
    wait_for_port(port).await;
    let expected = sent as usize;
    receiver
        .wait_until("every message after NATS returned", |r| {
            delivered(r).0.len() == expected
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (ids, deliveries) = delivered(&receiver.received().await);
    assert_eq!(ids.len(), expected);
    assert_eq!(deliveries, expected, "nothing was delivered twice");

    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let jetstream = async_nats::jetstream::new(
        async_nats::connect(format!("nats://127.0.0.1:{port}"))
            .await
            .unwrap(),
    );
    let mut stream = jetstream.get_stream(stream_name("outage")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while stream.info().await.unwrap().state.messages < events as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "every stored event reaches JetStream"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        events as u64,
        "each event published once"
    );
    app.stop();
    nats.kill().unwrap();
    let _ = nats.wait();
}

#[tokio::test]
async fn a_relay_crash_between_the_nats_ack_and_its_checkpoint_delivers_nothing_twice() {
    const PHONE: &str = "500000000000016";
    let prefix = format!("crash_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let fake = FakeMeta::start().await;
    let database_url = create_test_database().await;
    let start = |prefix: String, base: String| {
        TestApp::spawn_on(
            database_url.clone(),
            omnistream_gateway::app::Roles::ALL,
            move |config| {
                config.meta_graph_base_url = base;
                config.nats_prefix = prefix;
            },
        )
    };
    let app = start(prefix.clone(), fake.base_url.clone()).await;
    let receiver = subscribed(&app, PHONE).await;
    for n in 0..3 {
        send(&app, PHONE, n).await;
    }
    receiver
        .wait_until("the first three", |r| delivered(r).0.len() == 3)
        .await;
    let relayed = app.events_applied(RELAY_CHECKPOINT).await.unwrap_or(0);
    assert!(relayed > 0);
    app.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The crash: everything was acknowledged by NATS, but the checkpoint never moved.
    sqlx::query("DELETE FROM projection_checkpoints WHERE projection = $1")
        .bind(RELAY_CHECKPOINT)
        .execute(&app.pool)
        .await
        .unwrap();
    let restarted = start(prefix.clone(), fake.base_url.clone()).await;
    send(&restarted, PHONE, 3).await;
    receiver
        .wait_until("the fourth, after the restart", |r| {
            delivered(r).0.len() == 4
        })
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let applied = restarted.events_applied(RELAY_CHECKPOINT).await;
        if applied.is_some_and(|n| n > relayed) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay re-published the whole log"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (ids, deliveries) = delivered(&receiver.received().await);
    assert_eq!(ids.len(), 4);
    assert_eq!(
        deliveries, 4,
        "the re-published events were not delivered again"
    );
    restarted.stop();
    if let Ok(client) = async_nats::connect(nats_url()).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(stream_name(&prefix))
            .await;
    }
}
