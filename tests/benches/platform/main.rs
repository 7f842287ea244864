//! `just bench`: measures the platform against limits measured on the same machine in the same
//! run, and writes `bench/results/latest.md` and `latest.json`.
//!
//! Scenarios so far (the conversation and webhook scenarios arrive with their features):
//! - API: authenticated `GET /api/agents` under open-loop load at fixed arrival rates
//!   (latency measured from each request's scheduled time, so there is no coordinated omission),
//!   against the same SQL run directly.
//! - Replay: `omnistream replay tenant_usage` over N events, against a raw
//!   `COPY (SELECT … FROM events ORDER BY …) TO STDOUT` of the same rows.
//! - Login: argon2id password checks per second (a deliberate cost, reported for capacity planning).
//!
//! The load generator runs in the same process as the server, so both share the machine's cores;
//! the figures are a floor, not a ceiling.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use omnistream_projections::{Projector, TenantUsageProjector};
use omnistream_tests::TestApp;
use serde_json::{json, Value};
use tokio::sync::Mutex;

const REPLAY_EVENTS: i64 = 300_000;
const RATES: [u32; 5] = [250, 500, 1000, 2000, 4000];
const INGEST_RATES: [u32; 6] = [500, 1000, 2000, 4000, 6000, 8000];
const STEP: Duration = Duration::from_secs(5);
const P99_TARGET_MS: f64 = 50.0;

#[derive(Debug, Clone, serde::Serialize)]
struct LatencyReport {
    rate: u32,
    sent: usize,
    errors: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// Fires requests at `rate`/s for `STEP`, each on its own schedule (latency counted from the
/// scheduled time, so a slow server cannot slow the generator down: no coordinated omission).
async fn open_loop(rate: u32, request: impl Fn(usize) -> reqwest::RequestBuilder) -> LatencyReport {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let total = (STEP.as_secs_f64() * f64::from(rate)) as usize;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let pending = request(i);
        let (latencies, errors) = (latencies.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let ok = matches!(pending.send().await, Ok(r) if r.status().is_success());
            if !ok {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            latencies.lock().await.push(scheduled.elapsed());
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut sorted = latencies.lock().await.clone();
    sorted.sort();
    LatencyReport {
        rate,
        sent: total,
        errors: errors.load(std::sync::atomic::Ordering::Relaxed),
        p50_ms: percentile(&sorted, 0.50),
        p99_ms: percentile(&sorted, 0.99),
        max_ms: sorted.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    }
}

/// The SQL of one authenticated list request, run directly, sequentially.
async fn raw_sql_p99(pool: &sqlx::PgPool, session: uuid::Uuid, tenant: uuid::Uuid) -> f64 {
    let mut samples = Vec::new();
    for _ in 0..2000 {
        let started = Instant::now();
        sqlx::query(
            "SELECT a.id, t.status, s.revoked_at FROM sessions s JOIN agents a ON a.id = s.agent_id
             JOIN tenants t ON t.id = a.tenant_id WHERE s.id = $1",
        )
        .bind(session)
        .fetch_one(pool)
        .await
        .unwrap();
        sqlx::query(
            "SELECT a.*, ARRAY(SELECT division_id FROM agent_divisions ad WHERE ad.agent_id = a.id) FROM agents a
             WHERE a.tenant_id = $1 AND a.deleted_at IS NULL ORDER BY lower(a.name)",
        )
        .bind(tenant)
        .fetch_all(pool)
        .await
        .unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    percentile(&samples, 0.99)
}

/// A memory figure of this process from /proc (`VmRSS` now, `VmHWM` the peak), in MB.
/// Raw single-row INSERT transactions per second into an inbound-log-shaped table, with
/// `connections` concurrent writers for `duration`.
async fn raw_insert_rate(pool: &sqlx::PgPool, connections: usize, duration: Duration) -> f64 {
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw_inserts (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, provider TEXT NOT NULL, body BYTEA NOT NULL, received_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        .execute(pool)
        .await
        .unwrap();
    let body = vec![b'x'; 700];
    let deadline = Instant::now() + duration;
    let writers = (0..connections).map(|_| {
        let (pool, body) = (pool.clone(), body.clone());
        tokio::spawn(async move {
            let mut count = 0u64;
            while Instant::now() < deadline {
                sqlx::query("INSERT INTO bench_raw_inserts (provider, body) VALUES ('meta', $1)")
                    .bind(&body)
                    .execute(&pool)
                    .await
                    .unwrap();
                count += 1;
            }
            count
        })
    });
    let total: u64 = futures::future::join_all(writers)
        .await
        .into_iter()
        .map(|r| r.unwrap_or(0))
        .sum();
    total as f64 / duration.as_secs_f64()
}

/// Mean milliseconds per `ReceiveInbound` on a conversation already holding 10,000 messages and
/// on a new one (300 commands each, sequential, through the real event store).
async fn b3_command_cost(pool: &sqlx::PgPool) -> (f64, f64) {
    use omnistream_commands::service::{CommandContext, ConversationService};
    use omnistream_domain::conversation::{ConversationCommand, InboundMessage, OpenConversation};
    use omnistream_domain::{Channel, InboundContent, MessageType, TenantId};

    let service = ConversationService::new(pool.clone());
    let tenant = TenantId::new();
    let context = CommandContext::system(tenant);
    let command = |conversation: uuid::Uuid, n: usize| ConversationCommand::ReceiveInbound {
        open: OpenConversation {
            conversation_id: conversation,
            tenant_id: tenant.as_uuid(),
            channel: Channel::Whatsapp,
            integration_account_id: uuid::Uuid::nil(),
            contact_id: uuid::Uuid::nil(),
            division_id: None,
            at: chrono::Utc::now(),
        },
        message: InboundMessage {
            message_id: uuid::Uuid::new_v4(),
            provider_message_id: Some(format!("wamid.{conversation}.{n}")),
            content: InboundContent {
                message_type: MessageType::Text,
                content: Some(format!("message {n}")),
                media: None,
                reply_to_provider_id: None,
                data: None,
            },
            sender_name: None,
            sent_at: chrono::Utc::now(),
            received_at: chrono::Utc::now(),
            raw: serde_json::Value::Null,
        },
    };
    let big = uuid::Uuid::new_v4();
    for n in 0..10_000 {
        service
            .execute(&context, big, command(big, n))
            .await
            .unwrap();
    }
    let measure = |conversation: uuid::Uuid, from: usize| {
        let service = service.clone();
        let context = context.clone();
        let command = &command;
        async move {
            let started = Instant::now();
            for n in from..from + 300 {
                service
                    .execute(&context, conversation, command(conversation, n))
                    .await
                    .unwrap();
            }
            started.elapsed().as_secs_f64() * 1000.0 / 300.0
        }
    };
    let fresh = uuid::Uuid::new_v4();
    let new_ms = measure(fresh, 0).await;
    let big_ms = measure(big, 10_000).await;
    (big_ms, new_ms)
}

fn memory_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_owned))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let app = TestApp::spawn_with(|config| config.database_max_connections = 16).await;
    let admin = app.register("Bench").await;
    for _ in 0..20 {
        app.create_agent(&admin, "agent", json!({})).await;
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let url = format!("{}/api/agents", app.base_url);

    // API read path.
    let claims: Value = {
        let payload = admin.token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap()
    };
    let session: uuid::Uuid = claims["sid"].as_str().unwrap().parse().unwrap();
    let tenant: uuid::Uuid = admin.organization_id.parse().unwrap();
    let raw_p99 = raw_sql_p99(&app.pool, session, tenant).await;
    let mut api = Vec::new();
    for rate in RATES {
        let report = open_loop(rate, |_| client.get(&url).bearer_auth(&admin.token)).await;
        eprintln!("GET /api/agents at {rate}/s: {report:?}");
        let saturated = report.p99_ms > 10.0 * P99_TARGET_MS;
        api.push(report);
        if saturated {
            break;
        }
    }
    let best = api
        .iter()
        .filter(|r| r.p99_ms <= P99_TARGET_MS && (r.errors as f64) < 0.001 * r.sent as f64)
        .map(|r| r.rate)
        .max()
        .unwrap_or(0);

    // Login cost.
    let login_started = Instant::now();
    let logins = 20;
    futures::stream::iter(0..logins)
        .for_each_concurrent(4, |_| async {
            app.login(&admin.email, &admin.password).await;
        })
        .await;
    let logins_per_second = f64::from(logins) / login_started.elapsed().as_secs_f64();

    // Replay against raw COPY.
    let tenants: Vec<uuid::Uuid> = (0..50).map(|_| uuid::Uuid::new_v4()).collect();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'Bench', ($1::uuid[])[1 + (i % 50)]::text || ':' || md5(i::text)::uuid, 1, 'Opened', '1.0',
                '{\"Opened\": {}}', '{}'
         FROM generate_series(1, $2) AS i",
    )
    .bind(&tenants)
    .bind(REPLAY_EVENTS)
    .execute(&app.pool)
    .await
    .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let copy_started = Instant::now();
    let mut copied = 0usize;
    let mut stream = conn
        .copy_out_raw(
            "COPY (SELECT transaction_id, global_position, aggregate_type, aggregate_id, sequence, event_type,
                          event_version, payload, metadata, recorded_at
                   FROM events ORDER BY transaction_id, global_position) TO STDOUT",
        )
        .await
        .unwrap();
    while let Some(chunk) = stream.next().await {
        copied += chunk.unwrap().iter().filter(|b| **b == b'\n').count();
    }
    drop(stream);
    drop(conn);
    let copy_rate = copied as f64 / copy_started.elapsed().as_secs_f64();
    let rss_before = memory_mb("VmRSS:");
    let replay_started = Instant::now();
    let replayed = omnistream_projections::replay::replay(&app.pool, &TenantUsageProjector)
        .await
        .unwrap();
    let replay_rate = replayed as f64 / replay_started.elapsed().as_secs_f64();
    let rss_after = memory_mb("VmRSS:");

    // B1: signed WhatsApp webhooks (one message each, unique wamid, many contacts and tenants)
    // acknowledged once durably stored, against raw single-row INSERTs of the same shape.
    let mut phone_ids = Vec::new();
    for t in 0..5 {
        let owner = app.register(&format!("Ingest {t}")).await;
        let phone_number_id = format!("90000000000000{t}");
        sqlx::query(
            "INSERT INTO integration_accounts (id, tenant_id, channel, account_key, display_name, is_active, is_default, verify_token)
             VALUES ($1, $2::uuid, 'whatsapp', $3, 'bench', true, true, 'token')",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(&owner.organization_id)
        .bind(format!("wa-{phone_number_id}"))
        .execute(&app.pool)
        .await
        .unwrap();
        phone_ids.push(phone_number_id);
    }
    let raw_rate = raw_insert_rate(&app.pool, 16, Duration::from_secs(3)).await;
    let webhook_url = format!("{}/webhooks/meta", app.base_url);
    let mut ingest = Vec::new();
    let mut sequence = 0usize;
    for rate in INGEST_RATES {
        let offset = sequence;
        let report = open_loop(rate, |i| {
            let n = offset + i;
            let payload = omnistream_tests::fake_meta::whatsapp_text_webhook(
                &phone_ids[n % phone_ids.len()],
                &format!("628{:09}", n % 5000),
                "Bench",
                &format!("wamid.bench.{n}"),
                "hello",
                chrono::Utc::now().timestamp(),
            );
            let body = serde_json::to_vec(&payload).unwrap();
            let signature =
                omnistream_tests::fake_meta::sign(omnistream_tests::TEST_META_APP_SECRET, &body);
            client
                .post(&webhook_url)
                .header("x-hub-signature-256", signature)
                .body(body)
        })
        .await;
        sequence += report.sent;
        eprintln!("POST /webhooks/meta at {rate}/s: {report:?}");
        let saturated = report.p99_ms > 10.0 * P99_TARGET_MS;
        ingest.push(report);
        if saturated {
            break;
        }
    }
    let best_ingest = ingest
        .iter()
        .filter(|r| r.p99_ms <= P99_TARGET_MS && (r.errors as f64) < 0.001 * r.sent as f64)
        .map(|r| r.rate)
        .max()
        .unwrap_or(0);

    // B3: a command on a conversation that already holds 10,000 messages vs. on a new one.
    let (big_ms, new_ms) = b3_command_cost(&app.pool).await;
    let b3_ratio = big_ms / new_ms;
    eprintln!("B3: {big_ms:.3} ms vs {new_ms:.3} ms per command (ratio {b3_ratio:.2})");

    let json = json!({
        "api_list_agents": {"runs": api, "highest_rate_within_target": best, "p99_target_ms": P99_TARGET_MS,
                            "raw_sql_p99_ms": raw_p99},
        "b1_webhook_ingest": {"runs": ingest, "highest_rate_within_target": best_ingest, "raw_insert_per_second": raw_rate,
                              "ratio": f64::from(best_ingest) / raw_rate},
        "b3_command_cost": {"ms_per_command_at_10000_messages": big_ms, "ms_per_command_new": new_ms, "ratio": b3_ratio},
        "login_per_second": logins_per_second,
        "replay": {"projection": TenantUsageProjector.name(), "events": replayed, "events_per_second": replay_rate,
                   "raw_copy_rows_per_second": copy_rate, "ratio": replay_rate / copy_rate,
                   "rss_before_mb": rss_before, "rss_after_mb": rss_after},
        "peak_rss_mb": memory_mb("VmHWM:"),
    });

    let mut md = String::new();
    let _ = writeln!(md, "# OmniStream benchmarks\n");
    let _ = writeln!(md, "Reproduce with `just bench` (`cargo bench -p omnistream-tests --bench platform`). Machine: {} cores. Server and load generator share the process.\n", std::thread::available_parallelism().map_or(0, |n| n.get()));
    let _ = writeln!(
        md,
        "## Authenticated `GET /api/agents` (21 agents), open loop\n"
    );
    let _ = writeln!(md, "Limit measured in the same run: the request's SQL run directly, p99 {raw_p99:.2} ms. Target: p99 < {P99_TARGET_MS} ms with < 0.1 % errors.\n");
    let _ = writeln!(md, "| rate/s | sent | errors | p50 ms | p99 ms | max ms | p99 / raw SQL p99 |\n|---|---|---|---|---|---|---|");
    for r in &api {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1}× |",
            r.rate,
            r.sent,
            r.errors,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.p99_ms / raw_p99
        );
    }
    let _ = writeln!(md, "\nHighest rate holding the target: **{best}/s**.\n");
    let _ = writeln!(
        md,
        "## Replay of `{}` over {replayed} events\n",
        TenantUsageProjector.name()
    );
    let _ = writeln!(md, "| ours (events/s) | raw COPY (rows/s) | ratio | RSS before → after (MB) |\n|---|---|---|---|");
    let _ = writeln!(
        md,
        "| {replay_rate:.0} | {copy_rate:.0} | {:.2} | {rss_before:.0} → {rss_after:.0} |\n",
        replay_rate / copy_rate
    );
    let _ = writeln!(
        md,
        "## B1: signed WhatsApp webhooks, acknowledged once durably stored\n"
    );
    let _ = writeln!(md, "Limit measured in the same run: raw single-row INSERT transactions of the same row shape, 16 connections: {raw_rate:.0}/s. Target: ≥ 0.5× that rate with ack p99 < 50 ms.\n");
    let _ = writeln!(
        md,
        "| rate/s | sent | errors | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|"
    );
    for r in &ingest {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} |",
            r.rate, r.sent, r.errors, r.p50_ms, r.p99_ms, r.max_ms
        );
    }
    let _ = writeln!(
        md,
        "\nHighest rate holding the target: **{best_ingest}/s** = {:.2}× the raw INSERT rate.\n",
        f64::from(best_ingest) / raw_rate
    );
    let _ = writeln!(
        md,
        "## B3: inbound message into a conversation holding 10,000 messages vs. a new one\n"
    );
    let _ = writeln!(md, "| at 10,000 messages (ms/command) | new conversation (ms/command) | ratio (target ≤ 1.1) |\n|---|---|---|");
    let _ = writeln!(md, "| {big_ms:.3} | {new_ms:.3} | {b3_ratio:.2} |\n");
    let _ = writeln!(md, "## Login (argon2id)\n\n{logins_per_second:.1} logins/s with 4 concurrent clients (deliberately expensive hashing).\n");
    let _ = writeln!(
        md,
        "Peak RSS of the whole bench process: {:.0} MB.",
        memory_mb("VmHWM:")
    );

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("latest.md"), &md).unwrap();
    std::fs::write(
        dir.join("latest.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    print!("{md}");
}
