//! B2: a signed webhook until its new conversation is visible in the inbox API and on the
//! realtime stream, at half of B1's best rate, against the machine's own PostgreSQL commit p99
//! plus NATS publish→receive p99, measured in the same run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::ingest::{connect_whatsapp, signed_webhook};
use crate::load::{open_loop_for, Percentiles, Section};
use crate::server::ServeProcess;

const PHONE: &str = "900000000000077";
const DURATION: Duration = Duration::from_secs(5);

/// The `n` of the first `b2-<n>` marker in `text`.
fn marker(text: &str) -> Option<usize> {
    let start = text.find("b2-")? + 3;
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Sequential single-row INSERT commits: their latency.
async fn commit_latency(pool: &sqlx::PgPool) -> Percentiles {
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw_inserts (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, provider TEXT NOT NULL, body BYTEA NOT NULL, received_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        .execute(pool)
        .await
        .unwrap();
    let mut samples = Vec::new();
    for _ in 0..1000 {
        let started = Instant::now();
        sqlx::query("INSERT INTO bench_raw_inserts (provider, body) VALUES ('meta', $1)")
            .bind(vec![b'x'; 700])
            .execute(pool)
            .await
            .unwrap();
        samples.push(started.elapsed());
    }
    Percentiles::of(samples)
}

/// Core NATS publish → receive on one subject, 1,000 messages 1 ms apart.
async fn nats_latency() -> Percentiles {
    let client = async_nats::connect(omnistream_tests::nats_url())
        .await
        .unwrap();
    let subject = format!("bench.latency.{}", uuid::Uuid::new_v4().simple());
    let mut subscription = client.subscribe(subject.clone()).await.unwrap();
    client.flush().await.unwrap();
    let origin = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut samples = Vec::new();
        while samples.len() < 1000 {
            let Ok(Some(message)) =
                tokio::time::timeout(Duration::from_secs(5), subscription.next()).await
            else {
                break;
            };
            let sent_nanos: u64 = String::from_utf8_lossy(&message.payload).parse().unwrap();
            samples.push(origin.elapsed() - Duration::from_nanos(sent_nanos));
        }
        samples
    });
    for _ in 0..1000 {
        let nanos = origin.elapsed().as_nanos() as u64;
        client
            .publish(subject.clone(), nanos.to_string().into())
            .await
            .unwrap();
        client.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Percentiles::of(receiver.await.unwrap())
}

/// A label's value in a Prometheus sample line.
fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let end = line[start..].find('"')?;
    Some(&line[start..start + end])
}

/// The pipeline's stages as `/metrics` reports them: per stage (and projection), the number of
/// samples and the upper bounds of the buckets holding the median and the 99th percentile.
async fn stage_breakdown(client: &reqwest::Client, base_url: &str) -> Vec<(String, u64, f64, f64)> {
    let text = client
        .get(format!("{base_url}/metrics"))
        .send()
        .await
        .map(|r| r.text())
        .ok();
    let text = match text {
        Some(body) => body.await.unwrap_or_default(),
        None => String::new(),
    };
    let mut buckets: std::collections::BTreeMap<String, Vec<(f64, u64)>> = Default::default();
    for line in text.lines() {
        if !line.starts_with("omnistream_pipeline_stage_seconds_bucket{") {
            continue;
        }
        let (Some(stage), Some(le)) = (label(line, "stage"), label(line, "le")) else {
            continue;
        };
        let key = match label(line, "projection") {
            Some(projection) => format!("{stage} ({projection})"),
            None => stage.to_owned(),
        };
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::INFINITY)
        };
        let count = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        buckets.entry(key).or_default().push((bound, count));
    }
    buckets
        .into_iter()
        .map(|(key, mut cumulative)| {
            cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
            let total = cumulative.last().map_or(0, |b| b.1);
            let at = |q: f64| {
                cumulative
                    .iter()
                    .find(|(_, count)| *count as f64 >= q * total as f64)
                    .map_or(f64::INFINITY, |(bound, _)| *bound * 1000.0)
            };
            (key, total, at(0.5), at(0.99))
        })
        .collect()
}

/// Runs B2 against `server` at `rate`/s.
pub async fn run(server: &ServeProcess, client: &reqwest::Client, rate: u32) -> Section {
    let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let (token, organization) = server.register("Visibility").await;
    connect_whatsapp(&pool, &organization, PHONE).await;
    let commit = commit_latency(&pool).await;
    let nats = nats_latency().await;
    let limit_ms = commit.p99_ms + nats.p99_ms;
    let target_ms = 3.0 * limit_ms + 10.0;

    let sent_at: Arc<std::sync::Mutex<HashMap<usize, Instant>>> = Arc::default();
    let on_stream: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let in_inbox: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let done = tokio_util::sync::CancellationToken::new();

    let mut stream =
        omnistream_tests::sse::SseClient::connect(&server.base_url, &token, None).await;
    let stream_task = {
        let (on_stream, done) = (on_stream.clone(), done.clone());
        tokio::spawn(async move {
            while !done.is_cancelled() {
                if let Some(event) = stream.next(Duration::from_millis(200)).await {
                    let seen = Instant::now();
                    if let Some(n) = marker(&event.data.to_string()) {
                        on_stream.lock().await.entry(n).or_insert(seen);
                    }
                }
            }
        })
    };
    let inbox_task = {
        let (in_inbox, done, client, token) = (
            in_inbox.clone(),
            done.clone(),
            client.clone(),
            token.clone(),
        );
        let url = format!("{}/api/conversations?per_page=100", server.base_url);
        tokio::spawn(async move {
            while !done.is_cancelled() {
                let Ok(response) = client.get(&url).bearer_auth(&token).send().await else {
                    continue;
                };
                let seen = Instant::now();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let mut found = in_inbox.lock().await;
                for conversation in body["data"].as_array().into_iter().flatten() {
                    if let Some(n) = conversation["last_message_preview"]
                        .as_str()
                        .and_then(marker)
                    {
                        found.entry(n).or_insert(seen);
                    }
                }
                drop(found);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let url = format!("{}/webhooks/meta", server.base_url);
    let report = open_loop_for(rate, DURATION, |n| {
        sent_at
            .lock()
            .expect("not poisoned")
            .insert(n, Instant::now());
        signed_webhook(
            client,
            &url,
            PHONE,
            &format!("629{n:09}"),
            &format!("wamid.b2.{n}"),
            &format!("b2-{n}"),
        )
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline
        && (on_stream.lock().await.len() < report.sent || in_inbox.lock().await.len() < report.sent)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done.cancel();
    let _ = tokio::join!(stream_task, inbox_task);

    let sent_at = sent_at.lock().expect("not poisoned").clone();
    let latencies = |seen: &HashMap<usize, Instant>| {
        Percentiles::of(
            seen.iter()
                .filter_map(|(n, at)| {
                    sent_at
                        .get(n)
                        .map(|sent| at.saturating_duration_since(*sent))
                })
                .collect(),
        )
    };
    let stages = stage_breakdown(client, &server.base_url).await;
    let stage_rows: String = stages
        .iter()
        .map(|(stage, count, p50, p99)| format!("| {stage} | {count} | ≤ {p50} | ≤ {p99} |\n"))
        .collect();
    let stream = latencies(&*on_stream.lock().await);
    let inbox = latencies(&*in_inbox.lock().await);
    let verdict = |p: &Percentiles| {
        if p.count == report.sent && p.p99_ms <= target_ms {
            "met"
        } else {
            "missed"
        }
    };
    let markdown = format!(
        "## B2: webhook → new conversation visible in the inbox API and on the realtime stream\n\n\
         {rate} webhooks/s (half of B1's best) for {}s, each a new contact, so a new conversation. Limit measured in the same run: \
         PostgreSQL single-row commit p99 {:.2} ms + core NATS publish→receive p99 {:.2} ms = {limit_ms:.2} ms; \
         target p99 ≤ 3 × that + 10 ms = **{target_ms:.1} ms**. The inbox is polled (`GET /api/conversations?per_page=100`, \
         a request every 5 ms after the previous answer), so its figure includes up to one polling interval.\n\n\
         | seen on | seen / sent | p50 ms | p99 ms | max ms | target |\n|---|---|---|---|---|---|\n\
         | realtime stream (`GET /api/stream`) | {} / {} | {:.2} | {:.2} | {:.2} | {} |\n\
         | inbox API | {} / {} | {:.2} | {:.2} | {:.2} | {} |\n\n\
         Webhook acks meanwhile: p99 {:.2} ms, {} errors.\n\n\
         The p99 by stage (`omnistream_pipeline_stage_seconds` of the server, bucket bounds in ms; `appended` counts \
         from the webhook stored, the others from the event committed):\n\n\
         | stage | samples | p50 ms | p99 ms |\n|---|---|---|---|\n{stage_rows}",
        DURATION.as_secs(),
        commit.p99_ms,
        nats.p99_ms,
        stream.count,
        report.sent,
        stream.p50_ms,
        stream.p99_ms,
        stream.max_ms,
        verdict(&stream),
        inbox.count,
        report.sent,
        inbox.p50_ms,
        inbox.p99_ms,
        inbox.max_ms,
        verdict(&inbox),
        report.p99_ms,
        report.errors,
    );
    Section {
        key: "b2_visibility",
        json: json!({"rate": rate, "sent": report.sent, "ack": report, "postgres_commit": commit, "nats_publish_receive": nats,
                     "limit_ms": limit_ms, "target_p99_ms": target_ms, "stream": stream, "inbox": inbox,
                     "stages": stages.iter().map(|(stage, count, p50, p99)| json!({"stage": stage, "samples": count, "p50_ms_at_most": p50, "p99_ms_at_most": p99})).collect::<Vec<_>>()}),
        markdown,
    }
}
