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
async fn enqueue(pool: &sqlx::PgPool, tenant: uuid::Uuid) {
    let payload = json!({"TagsUpdated": {"tags": ["bench"], "at": "2026-11-29T00:00:00Z"}});
    for _ in 0..EVENTS {
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
async fn raw_rate(receivers: &[Receiver]) -> f64 {
    let client = reqwest::Client::new();
    let body = vec![b'x'; 400];
    let started = Instant::now();
    let requests = (0..EVENTS * RECEIVERS).map(|n| {
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
    (EVENTS * RECEIVERS) as f64 / started.elapsed().as_secs_f64()
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
    let mut receivers = Vec::new();
    for n in 0..RECEIVERS {
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
    let raw = raw_rate(&receivers).await;

    enqueue(&app.pool, tenant).await;
    let healthy = drain(&app.pool, &receivers, EVENTS * RECEIVERS).await;

    let dead = dead_receiver().await;
    let created = api
        .post(
            "/api/outgoing-webhooks",
            json!({"name": "never answers", "url": dead, "events": ["*"]}),
        )
        .await;
    assert!(created.status.is_success(), "{}", created.body);
    enqueue(&app.pool, tenant).await;
    let with_dead = drain(&app.pool, &receivers, EVENTS * RECEIVERS).await;

    let ratio = healthy / raw;
    let cost = 1.0 - with_dead / healthy;
    eprintln!("B6: raw {raw:.0}/s, ours {healthy:.0}/s, with a dead receiver {with_dead:.0}/s");
    app.stop();
    let markdown = format!(
        "## B6: outgoing-webhook fan-out\n\n\
         {EVENTS} events to {RECEIVERS} healthy local receivers ({} signed deliveries, the real sender, {CONCURRENCY} in flight), \
         then {EVENTS} more with an 11th receiver that accepts connections and never answers. Limit measured in the same run: \
         pooled reqwest POSTs of the same size to the same receivers, {CONCURRENCY} in flight. Targets: ≥ 0.7× the raw rate; \
         the dead receiver costs the healthy ones ≤ 10 %.\n\n\
         | raw POSTs/s | ours, healthy only (deliveries/s) | ratio | ours, with the dead receiver (healthy deliveries/s) | cost of the dead receiver |\n\
         |---|---|---|---|---|\n| {raw:.0} | {healthy:.0} | {ratio:.2} | {with_dead:.0} | {:.1} % |\n",
        EVENTS * RECEIVERS,
        cost * 100.0
    );
    Section {
        key: "b6_webhook_fanout",
        json: json!({"events": EVENTS, "receivers": RECEIVERS, "raw_posts_per_second": raw,
                     "deliveries_per_second": healthy, "ratio": ratio,
                     "deliveries_per_second_with_dead_receiver": with_dead, "dead_receiver_cost": cost}),
        markdown,
    }
}
