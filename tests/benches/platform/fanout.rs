//! B6: outgoing-webhook fan-out to 10 healthy local receivers, then again with an 11th receiver
//! that accepts connections and never answers, against raw pooled reqwest POSTs to the same
//! receivers with the same concurrency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use omnistream_commands::infra::secrets::SecretBox;
use omnistream_commands::webhooks::fanout::{fan_out, EventRef};
use omnistream_commands::webhooks::sender::WebhookSender;
use omnistream_gateway::app::Roles;
use omnistream_tests::{TestApp, TEST_ENCRYPTION_KEY};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::load::Section;

const RECEIVERS: usize = 10;
/// Events per run; each is delivered to every receiver.
const EVENTS: usize = 1000;
/// The wide run: this many receivers, each getting [`WIDE_EVENTS`] events.
const WIDE_RECEIVERS: usize = 100;
const WIDE_EVENTS: usize = 100;
/// Customer messages (new customers) behind the end-to-end run.
const E2E_MESSAGES: usize = 500;
/// The sender's own limit of attempts in flight, used for the raw client too.
const CONCURRENCY: usize = 64;

/// A local endpoint answering 204 and counting what it received.
struct Receiver {
    url: String,
    count: Arc<AtomicUsize>,
}

async fn healthy_receiver() -> Receiver {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let router = axum::Router::new().route(
        "/",
        axum::routing::post(move |_: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Receiver { url, count }
}

/// An endpoint that accepts connections and never answers.
async fn dead_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

fn total(receivers: &[Receiver]) -> usize {
    receivers
        .iter()
        .map(|r| r.count.load(Ordering::Relaxed))
        .sum()
}

/// Records `EVENTS` pending deliveries per subscribed endpoint (one conversation each, so no
/// ordering constraint serialises them).
async fn enqueue(pool: &sqlx::PgPool, tenant: uuid::Uuid, events: usize) {
    let payload = json!({"TagsUpdated": {"tags": ["bench"], "at": "2026-11-29T00:00:00Z"}});
    for _ in 0..events {
        let aggregate_id = format!("{tenant}:{}", uuid::Uuid::new_v4());
        let message_id = format!("Conversation:{aggregate_id}:2");
        let event = EventRef {
            tenant,
            aggregate_type: "Conversation",
            aggregate_id: &aggregate_id,
            message_id: &message_id,
            payload: &payload,
            recorded_at: chrono::Utc::now(),
        };
        fan_out(pool, event, None).await.unwrap();
    }
}

/// Runs the real sender until the healthy receivers hold `expected` more deliveries; their rate.
async fn drain(pool: &sqlx::PgPool, receivers: &[Receiver], expected: usize) -> f64 {
    let before = total(receivers);
    let sender = WebhookSender {
        pool: pool.clone(),
        secrets: SecretBox::new(TEST_ENCRYPTION_KEY),
        allow_private: true,
        schedule: Arc::new(vec![Duration::from_secs(60)]),
        in_flight: Arc::default(),
        wakeups: omnistream_commands::infra::wakeup::Wakeups::polling(),
    };
    let stop = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(sender.run(stop.clone()));
    let deadline = started + Duration::from_secs(300);
    while total(receivers) - before < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = (total(receivers) - before) as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    let _ = task.await;
    rate
}

/// Pooled reqwest POSTs of the same size to the same receivers, `CONCURRENCY` in flight.
async fn raw_rate(receivers: &[Receiver], events: usize) -> f64 {
    let client = reqwest::Client::new();
    let body = vec![b'x'; 400];
    let started = Instant::now();
    let requests = (0..events * receivers.len()).map(|n| {
        let (client, body, url) = (
            client.clone(),
            body.clone(),
            receivers[n % receivers.len()].url.clone(),
        );
        async move {
            let _ = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
        }
    });
    futures::StreamExt::for_each_concurrent(futures::stream::iter(requests), CONCURRENCY, |r| r)
        .await;
    (events * receivers.len()) as f64 / started.elapsed().as_secs_f64()
}

/// Subscribes `count` new healthy receivers to every event of `api`'s organization.
async fn subscribe_receivers(api: &omnistream_tests::Client, count: usize) -> Vec<Receiver> {
    let mut receivers = Vec::new();
    for n in 0..count {
        let receiver = healthy_receiver().await;
        let created = api
            .post(
                "/api/outgoing-webhooks",
                json!({"name": format!("healthy {n}"), "url": receiver.url, "events": ["*"]}),
            )
            .await;
        assert!(created.status.is_success(), "{}", created.body);
        receivers.push(receiver);
    }
    receivers
}

/// The sender alone at [`WIDE_RECEIVERS`] endpoints: (raw POSTs/s, deliveries/s).
async fn wide() -> (f64, f64) {
    let app = TestApp::spawn_on(
        omnistream_tests::create_test_database().await,
        Roles::GATEWAY,
        |config| config.database_max_connections = 16,
    )
    .await;
    let admin = app.register("Fan-out wide").await;
    let tenant: uuid::Uuid = admin.organization_id.parse().unwrap();
    let receivers = subscribe_receivers(&admin.client(&app), WIDE_RECEIVERS).await;
    let raw = raw_rate(&receivers, WIDE_EVENTS).await;
    enqueue(&app.pool, tenant, WIDE_EVENTS).await;
    let ours = drain(&app.pool, &receivers, WIDE_EVENTS * WIDE_RECEIVERS).await;
    app.stop();
    (raw, ours)
}

/// Appended → delivered: customer messages are processed into the event log while NATS is
/// out of reach (so nothing is relayed yet), then the platform restarts with NATS and the
/// relay, the dispatcher and the sender carry the backlog to [`RECEIVERS`] endpoints. Returns
/// (deliveries, deliveries/s from the restart to the last delivery).
async fn end_to_end() -> (usize, f64) {
    let database_url = omnistream_tests::create_test_database().await;
    let prefix = format!("bench_e2e_{}", uuid::Uuid::new_v4().simple());
    let offline = TestApp::spawn_on_nats(
        database_url.clone(),
        "nats://127.0.0.1:1".into(),
        |config| {
            config.database_max_connections = 16;
            config.nats_prefix = prefix.clone();
        },
    )
    .await;
    let admin = offline.register("Fan-out end to end").await;
    crate::ingest::connect_whatsapp(&offline.pool, &admin.organization_id, "900000000000066").await;
    let receivers = subscribe_receivers(&admin.client(&offline), RECEIVERS).await;
    for n in 0..E2E_MESSAGES {
        let webhook = omnistream_tests::fake_meta::whatsapp_text_webhook(
            "900000000000066",
            &format!("626{n:09}"),
            "Bench",
            &format!("wamid.e2e.{n}"),
            "hello",
            chrono::Utc::now().timestamp(),
        );
        assert!(offline
            .post_meta_webhook(&webhook)
            .await
            .status()
            .is_success());
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM inbound_webhooks WHERE status = 'pending'")
                .fetch_one(&offline.pool)
                .await
                .unwrap();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The offline platform lets go of its locks (its relay may still be waiting for NATS).
    let pool = offline.pool.clone();
    offline.stop();
    drop(offline);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND a.datname = current_database()",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
        if held == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.close().await;

    let started = Instant::now();
    let online = TestApp::spawn_on_nats(database_url, omnistream_tests::nats_url(), |config| {
        config.database_max_connections = 16;
        config.nats_prefix = prefix.clone();
    })
    .await;
    // Until deliveries stop arriving for 5 s (the first may take the relay's and the
    // dispatcher's start-up, up to a minute).
    let mut last_change = started;
    let mut seen = 0;
    while last_change.elapsed() < Duration::from_secs(if seen == 0 { 60 } else { 5 }) {
        let now = total(&receivers);
        if now != seen {
            seen = now;
            last_change = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let spread: (f64, f64, f64) = sqlx::query_as(
        "SELECT extract(epoch FROM max(created_at) - min(created_at))::float8,
                extract(epoch FROM max(delivered_at) - min(delivered_at))::float8,
                extract(epoch FROM min(delivered_at) - min(created_at))::float8
           FROM webhook_deliveries",
    )
    .fetch_one(&online.pool)
    .await
    .unwrap_or_default();
    eprintln!(
        "B6 end to end: deliveries created over {:.2} s, delivered over {:.2} s, first {:.2} s after the first was created",
        spread.0, spread.1, spread.2
    );
    online.stop();
    if let Ok(client) = async_nats::connect(omnistream_tests::nats_url()).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(format!("{}_EVENTS", prefix.to_uppercase()))
            .await;
    }
    let elapsed = last_change.saturating_duration_since(started).as_secs_f64();
    (seen, seen as f64 / elapsed.max(0.001))
}

pub async fn run() -> Section {
    let app = TestApp::spawn_on(
        omnistream_tests::create_test_database().await,
        Roles::GATEWAY,
        |config| config.database_max_connections = 16,
    )
    .await;
    let admin = app.register("Fan-out").await;
    let api = admin.client(&app);
    let tenant: uuid::Uuid = admin.organization_id.parse().unwrap();
    let receivers = subscribe_receivers(&api, RECEIVERS).await;
    let raw = raw_rate(&receivers, EVENTS).await;

    enqueue(&app.pool, tenant, EVENTS).await;
    let healthy = drain(&app.pool, &receivers, EVENTS * RECEIVERS).await;

    let dead = dead_receiver().await;
    let created = api
        .post(
            "/api/outgoing-webhooks",
            json!({"name": "never answers", "url": dead, "events": ["*"]}),
        )
        .await;
    assert!(created.status.is_success(), "{}", created.body);
    enqueue(&app.pool, tenant, EVENTS).await;
    let with_dead = drain(&app.pool, &receivers, EVENTS * RECEIVERS).await;

    let ratio = healthy / raw;
    let cost = 1.0 - with_dead / healthy;
    eprintln!("B6: raw {raw:.0}/s, ours {healthy:.0}/s, with a dead receiver {with_dead:.0}/s");
    app.stop();
    let (wide_raw, wide_ours) = wide().await;
    let wide_ratio = wide_ours / wide_raw;
    let (e2e_deliveries, e2e_rate) = end_to_end().await;
    let e2e_share = e2e_rate / healthy;
    eprintln!("B6 wide: raw {wide_raw:.0}/s, ours {wide_ours:.0}/s; end to end {e2e_rate:.0}/s");
    let markdown = format!(
        "## B6: outgoing-webhook fan-out\n\n\
         {EVENTS} events to {RECEIVERS} healthy local receivers ({} signed deliveries, the real sender: up to 128 in flight, 8 per endpoint), \
         then {EVENTS} more with an 11th receiver that accepts connections and never answers. Limit measured in the same run: \
         pooled reqwest POSTs of the same size to the same receivers, {CONCURRENCY} in flight. Targets: ≥ 0.7× the raw rate; \
         the dead receiver costs the healthy ones ≤ 10 %.\n\n\
         | raw POSTs/s | ours, healthy only (deliveries/s) | ratio | ours, with the dead receiver (healthy deliveries/s) | cost of the dead receiver |\n\
         |---|---|---|---|---|\n| {raw:.0} | {healthy:.0} | {ratio:.2} | {with_dead:.0} | {:.1} % |\n\n\
         At {WIDE_RECEIVERS} endpoints ({WIDE_EVENTS} events each, the sender alone): raw {wide_raw:.0} POSTs/s, ours \
         {wide_ours:.0} deliveries/s = {wide_ratio:.2}×.\n\n\
         End to end, appended → delivered: {E2E_MESSAGES} new-customer messages processed into the log while NATS is out of \
         reach, then the platform restarted with NATS; the relay, the dispatcher and the sender carried {e2e_deliveries} \
         deliveries to {RECEIVERS} endpoints at **{e2e_rate:.0}/s** = {e2e_share:.2}× the sender-only row (target ≥ 0.5×).\n",
        EVENTS * RECEIVERS,
        cost * 100.0
    );
    Section {
        key: "b6_webhook_fanout",
        json: json!({"events": EVENTS, "receivers": RECEIVERS, "raw_posts_per_second": raw,
                     "deliveries_per_second": healthy, "ratio": ratio,
                     "deliveries_per_second_with_dead_receiver": with_dead, "dead_receiver_cost": cost,
                     "wide": {"receivers": WIDE_RECEIVERS, "events": WIDE_EVENTS, "raw_posts_per_second": wide_raw,
                              "deliveries_per_second": wide_ours, "ratio": wide_ratio},
                     "end_to_end": {"messages": E2E_MESSAGES, "deliveries": e2e_deliveries,
                                    "deliveries_per_second": e2e_rate, "share_of_sender_only": e2e_share}}),
        markdown,
    }
}
