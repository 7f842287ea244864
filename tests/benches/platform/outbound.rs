//! B4: an outbound burst of 20,000 queued template messages to a fake Graph API that enforces
//! 1,000 messages/s per number (Meta's top tier), answers 130429 on excess and takes 50 ± 20 ms.
//!
//! The messages are queued through the API while the fake holds its answers back. Like Meta,
//! the fake counts a send against the number's rate when the request arrives (held requests
//! included); the measurement starts when it opens and counts what it accepted per second until
//! the last one. `BENCH_B4_MESSAGES` shrinks the burst for working on it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use omnistream_tests::TestApp;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::ingest::signed_webhook;
use crate::load::Section;

const MESSAGES: usize = 20_000;

fn messages() -> usize {
    std::env::var("BENCH_B4_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(MESSAGES)
}
const LIMIT_PER_SECOND: f64 = 1000.0;
/// The fake's tolerance for bunching: a token bucket this deep.
const BURST: f64 = 50.0;
const PHONE: &str = "900000000000044";

/// The fake Graph API's state.
#[derive(Clone)]
struct Fake {
    open: watch::Receiver<bool>,
    bucket: Arc<Mutex<(f64, Instant)>>,
    accepted: Arc<AtomicUsize>,
    throttled: Arc<AtomicUsize>,
    /// Sends admitted while the fake was still closed (sent before the measurement started).
    admitted_closed: Arc<AtomicUsize>,
    last_accepted: Arc<Mutex<Option<Instant>>>,
}

impl Fake {
    /// Takes a token from the per-number bucket (1,000/s, 50 deep).
    fn admit(&self) -> bool {
        let mut bucket = self.bucket.lock().unwrap();
        let (tokens, at) = *bucket;
        let now = Instant::now();
        let refilled =
            (tokens + now.duration_since(at).as_secs_f64() * LIMIT_PER_SECOND).min(BURST);
        if refilled >= 1.0 {
            *bucket = (refilled - 1.0, now);
            true
        } else {
            *bucket = (refilled, now);
            false
        }
    }
}

async fn graph(State(fake): State<Fake>, uri: Uri, body: axum::body::Bytes) -> Response {
    if !uri.path().ends_with("/messages") {
        return Json(json!({"success": true})).into_response();
    }
    let admitted = fake.admit();
    if admitted && !*fake.open.borrow() {
        fake.admitted_closed.fetch_add(1, Ordering::Relaxed);
    }
    let mut open = fake.open.clone();
    let _ = open.wait_for(|open| *open).await;
    let latency = rand::thread_rng().gen_range(30..=70);
    tokio::time::sleep(Duration::from_millis(latency)).await;
    if !admitted {
        fake.throttled.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429,
                                  "error_data": {"messaging_product": "whatsapp",
                                                 "details": "Cloud API message throughput has been reached."},
                                  "fbtrace_id": "Bench"}})),
        )
            .into_response();
    }
    fake.accepted.fetch_add(1, Ordering::Relaxed);
    *fake.last_accepted.lock().unwrap() = Some(Instant::now());
    let to = serde_json::from_slice::<Value>(&body).unwrap_or_default()["to"].clone();
    Json(
        json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": format!("wamid.{}", uuid::Uuid::new_v4().simple())}]}),
    )
    .into_response()
}

async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap_or(0)
}

async fn wait_for(pool: &sqlx::PgPool, sql: &str, expected: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while count(pool, sql).await < expected {
        assert!(
            Instant::now() < deadline,
            "B4: {what} never reached {expected}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run() -> Section {
    let messages = messages();
    let (open_gate, open) = watch::channel(false);
    let fake = Fake {
        open,
        bucket: Arc::new(Mutex::new((BURST, Instant::now()))),
        accepted: Arc::default(),
        throttled: Arc::default(),
        admitted_closed: Arc::default(),
        last_accepted: Arc::default(),
    };
    let router = axum::Router::new().fallback(graph).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let graph_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let app = TestApp::spawn_with(move |config| {
        config.meta_graph_base_url = graph_url;
        config.database_max_connections = 16;
    })
    .await;
    let admin = app.register("Burst").await;
    let api = admin.client(&app);
    let account = api
        .post(
            "/api/integrations/accounts",
            json!({"channel": "whatsapp", "is_active": true,
                   "config": {"phone_number_id": PHONE, "waba_id": "1", "access_token": "EAAG-bench", "throughput_mps": 1000}}),
        )
        .await;
    assert!(account.status.is_success(), "{}", account.body);

    let client = reqwest::Client::new();
    let webhooks = format!("{}/webhooks/meta", app.base_url);
    let queueing = Instant::now();
    // Like Meta, retry a webhook until it is acknowledged.
    futures::StreamExt::for_each_concurrent(futures::stream::iter(0..messages), 16, |n| {
        let (client, webhooks) = (&client, &webhooks);
        async move {
            loop {
                let request = signed_webhook(
                    client,
                    webhooks,
                    PHONE,
                    &format!("627{n:09}"),
                    &format!("wamid.b4.{n}"),
                    "hi",
                );
                if matches!(request.send().await, Ok(r) if r.status().is_success()) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    })
    .await;
    eprintln!(
        "B4: webhooks acknowledged after {:.0}s",
        queueing.elapsed().as_secs_f64()
    );
    wait_for(
        &app.pool,
        "SELECT count(*) FROM conversations",
        messages as i64,
        "conversations",
    )
    .await;
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM conversations")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let template = json!({"type": "template",
                          "template": {"name": "hello_world", "language": {"code": "en_US"}}});
    let retried = AtomicUsize::new(0);
    futures::StreamExt::for_each_concurrent(futures::stream::iter(ids), 16, |id| {
        let (api, template, retried) = (&api, template.clone(), &retried);
        async move {
            while !api
                .post(
                    &format!("/api/conversations/{id}/messages"),
                    template.clone(),
                )
                .await
                .status
                .is_success()
            {
                retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    })
    .await;
    eprintln!(
        "B4: sends retried by the client: {}",
        retried.load(Ordering::Relaxed)
    );
    wait_for(
        &app.pool,
        "SELECT count(*) FROM outbound_jobs",
        messages as i64,
        "queued jobs",
    )
    .await;
    let queue_seconds = queueing.elapsed().as_secs_f64();
    eprintln!("B4: {messages} conversations and template messages queued in {queue_seconds:.0}s");

    let opened = Instant::now();
    open_gate.send(true).unwrap();
    let deadline = opened + Duration::from_secs(300);
    while fake.accepted.load(Ordering::Relaxed) < messages && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let accepted = fake.accepted.load(Ordering::Relaxed);
    let throttled = fake.throttled.load(Ordering::Relaxed);
    let last = fake.last_accepted.lock().unwrap().unwrap_or(opened);
    let sent_before_open = fake.admitted_closed.load(Ordering::Relaxed);
    let rate = accepted.saturating_sub(sent_before_open) as f64
        / last.duration_since(opened).as_secs_f64();
    let ratio = rate / LIMIT_PER_SECOND;
    let throttled_share = throttled as f64 / (accepted + throttled).max(1) as f64;
    let marked_deadline = Instant::now() + Duration::from_secs(120);
    let sent_sql = "SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'sent'";
    while count(&app.pool, sent_sql).await < accepted as i64 && Instant::now() < marked_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let marked = count(&app.pool, sent_sql).await;
    let recorded = opened.elapsed().as_secs_f64();
    eprintln!("B4: {accepted} accepted at {rate:.0}/s, {throttled} throttled");
    app.stop();
    let markdown = format!(
        "## B4: outbound burst of {messages} template messages\n\n\
         {messages} conversations (inbound webhooks) and one template message each (`POST /api/conversations/{{id}}/messages`), \
         queued in {queue_seconds:.0} s while the fake Graph API held its answers; then the fake opens. It enforces \
         {LIMIT_PER_SECOND:.0} messages/s for the number (token bucket, {BURST:.0} deep, counted on arrival like Meta), answers 130429 beyond it and takes \
         50 ± 20 ms. The {sent_before_open} sends admitted while it was closed are left out of the rate. The account is configured with `throughput_mps: 1000`. Targets: ≥ 0.95× the fake's rate; 130429 < 0.1 % of sends.\n\n\
         | accepted by the fake | sends/s (open → last accepted) | ratio to 1,000/s | 130429 answers | share of sends | marked `sent` in the inbox, after |\n\
         |---|---|---|---|---|---|\n| {accepted} | {rate:.0} | {ratio:.2} | {throttled} | {:.3} % | {marked} after {recorded:.1} s |\n",
        throttled_share * 100.0
    );
    Section {
        key: "b4_outbound_burst",
        json: json!({"messages": messages, "accepted": accepted, "sends_per_second": rate, "limit_per_second": LIMIT_PER_SECOND,
                     "ratio": ratio, "throttled": throttled, "throttled_share": throttled_share,
                     "queue_seconds": queue_seconds, "sent_before_open": sent_before_open, "marked_sent": marked, "marked_sent_after_seconds": recorded}),
        markdown,
    }
}
