//! `just bench`: measures the platform against limits measured on the same machine in the same
//! run, and writes `bench/results/latest.md` and `latest.json`.
//!
//! Each scenario is a module returning its [`load::Section`]; the ingest scenarios (B1, B2, M)
//! run against `omnistream serve` in its own process, the others against the platform started
//! in this process. Open-loop scenarios count latency from each request's scheduled time, so a
//! slow server cannot slow the generator down (no coordinated omission).

mod api;
mod command_cost;
mod fanout;
mod inbox_scale;
mod ingest;
mod load;
mod outbound;
mod pgstats;
mod replay;
mod server;
mod visibility;

use std::fmt::Write as _;

use omnistream_tests::TestApp;
use serde_json::{json, Map, Value};

use crate::load::{memory_mb, Section};

/// `BENCH_ONLY=b4,b6` runs just those scenarios (for working on them) and writes
/// `partial.md` instead of `latest.md`.
fn wanted(key: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| {
        only.split(',').any(|k| key.starts_with(k.trim()))
    })
}

#[tokio::main]
async fn main() {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let mut sections: Vec<Section> = Vec::new();
    // Every scenario runs on a private PostgreSQL with `pg_stat_statements` and default
    // settings, when the binaries are installed and `BENCH_PRIVATE_PG` is not `0` (else on the
    // server of `TEST_DATABASE_URL`, without statement counts).
    let private = match std::env::var("BENCH_PRIVATE_PG").as_deref() {
        Ok("0") => None,
        _ => pgstats::PrivatePostgres::start().await,
    };
    match &private {
        Some(private) => std::env::set_var("TEST_DATABASE_URL", &private.url),
        None => eprintln!("no private PostgreSQL: statements per webhook are not measured"),
    }

    if wanted("api") || wanted("b3") || wanted("b5") {
        // The load generator is one peer: the per-peer cap would close its extra connections.
        let app = TestApp::spawn_with(|config| {
            config.database_max_connections = 16;
            config.server_limits.max_connections_per_peer = 8192;
        })
        .await;
        let admin = app.register("Bench").await;
        for _ in 0..20 {
            app.create_agent(&admin, "agent", json!({})).await;
        }
        if wanted("api") {
            sections.extend(api::run(&app, &admin, &client).await);
        }
        if wanted("b3") {
            sections.push(command_cost::run(&app.pool).await);
        }
        if wanted("b5") {
            sections.push(replay::run(&app.pool).await);
        }
        app.stop();
    }
    // `BENCH_B2_RATE` fixes B2's rate; otherwise it is half of B1's best (250/s without B1).
    let b2_rate_set: Option<u32> = std::env::var("BENCH_B2_RATE")
        .ok()
        .and_then(|r| r.parse().ok());
    let mut b2_rate = b2_rate_set.unwrap_or(250);
    if wanted("b1") {
        let server = server::ServeProcess::start("ingest").await;
        let (b1, best_ingest) = ingest::run(&server, &client).await;
        sections.push(b1);
        b2_rate = b2_rate_set.unwrap_or((best_ingest / 2).max(50));
        let database = server.database_url.clone();
        server.stop().await;
        pgstats::clean_up_after(&database).await;
    }
    if wanted("b2") {
        // A fresh server: B1's backlog of acknowledged webhooks would otherwise be measured too.
        let server = server::ServeProcess::start("visibility").await;
        sections.push(visibility::run(&server, &client, b2_rate).await);
        let database = server.database_url.clone();
        server.stop().await;
        pgstats::clean_up_after(&database).await;
    }
    if wanted("b4") {
        sections.push(outbound::run().await);
    }
    if wanted("b6") {
        sections.push(fanout::run().await);
    }
    if wanted("b7") {
        sections.push(inbox_scale::run().await);
    }

    let order = [
        "api_list_agents",
        "b1_webhook_ingest",
        "b2_visibility",
        "b3_command_cost",
        "b4_outbound_burst",
        "b5_replay",
        "b6_webhook_fanout",
        "b7_inbox_at_scale",
        "login_per_second",
    ];
    sections.sort_by_key(|s| order.iter().position(|k| *k == s.key));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut json = Map::new();
    json.insert("cores".into(), json!(cores));
    let mut md = format!(
        "# OmniStream benchmarks\n\nReproduce with `just bench` (a release build; `cargo bench -p omnistream-tests --bench platform` \
         after `cargo build --release --bin omnistream`). Machine: {cores} cores, shared by the server, PostgreSQL, NATS and the \
         load generator, so every figure is a floor.\n\n"
    );
    for section in sections {
        json.insert(section.key.into(), section.json);
        let _ = writeln!(md, "{}", section.markdown);
    }
    let peak = memory_mb("self", "VmHWM:");
    json.insert("bench_process_peak_rss_mb".into(), json!(peak));
    let _ = writeln!(
        md,
        "Peak RSS of the bench process itself (in-process scenarios and load generator): {peak:.0} MB."
    );

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results");
    std::fs::create_dir_all(&dir).unwrap();
    let name = if std::env::var("BENCH_ONLY").is_ok() {
        "partial"
    } else {
        "latest"
    };
    std::fs::write(dir.join(format!("{name}.md")), &md).unwrap();
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(&Value::Object(json)).unwrap(),
    )
    .unwrap();
    print!("{md}");
    if let Some(private) = private {
        private.stop().await;
    }
}
