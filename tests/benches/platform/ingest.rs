//! B1: signed WhatsApp webhooks (one message each, unique `wamid`, many contacts and tenants)
//! acknowledged once durably stored, against raw single-row INSERTs of the same row shape with
//! the same connection count. M: the peak RSS of the `omnistream serve` process meanwhile.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::load::{best_rate, latency_table, memory_mb, open_loop, open_loop_for, Section};
use crate::pgstats::{self, Cost};
use crate::server::ServeProcess;

const INGEST_RATES: [u32; 6] = [500, 1000, 2000, 4000, 6000, 8000];
const CONNECTIONS: usize = 16;
const RSS_TARGET_MB: f64 = 150.0;

/// Raw single-row INSERT transactions per second into an inbound-log-shaped table, with
/// `connections` concurrent writers for `duration`.
pub async fn raw_insert_rate(pool: &sqlx::PgPool, connections: usize, duration: Duration) -> f64 {
    raw_rows_per_second(pool, connections, duration, 1).await
}

/// Rows per second written by raw multi-row INSERTs ([`BATCH_ROWS`] rows a statement, one
/// statement a transaction) of the same row shape, with `connections` concurrent writers: the
/// limit for a receiver that commits acknowledgements in groups.
pub async fn raw_batched_insert_rate(
    pool: &sqlx::PgPool,
    connections: usize,
    duration: Duration,
) -> f64 {
    raw_rows_per_second(pool, connections, duration, BATCH_ROWS).await
}

/// Rows per second of INSERTs of `rows` rows each (a plain single-row INSERT for one).
async fn raw_rows_per_second(
    pool: &sqlx::PgPool,
    connections: usize,
    duration: Duration,
    rows: usize,
) -> f64 {
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw_inserts (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, provider TEXT NOT NULL, body BYTEA NOT NULL, received_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        .execute(pool)
        .await
        .unwrap();
    let statement = if rows == 1 {
        "INSERT INTO bench_raw_inserts (provider, body) SELECT 'meta', ($1::bytea[])[1]"
    } else {
        "INSERT INTO bench_raw_inserts (provider, body) SELECT 'meta', b FROM UNNEST($1::bytea[]) b"
    };
    let bodies = vec![vec![b'x'; 700]; rows];
    let deadline = Instant::now() + duration;
    let writers = (0..connections).map(|_| {
        let (pool, bodies) = (pool.clone(), bodies.clone());
        tokio::spawn(async move {
            let mut count = 0u64;
            while Instant::now() < deadline {
                sqlx::query(statement)
                    .bind(&bodies)
                    .execute(&pool)
                    .await
                    .unwrap();
                count += rows as u64;
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

/// Rows per statement of [`raw_batched_insert_rate`].
const BATCH_ROWS: usize = 64;
/// Rate and length of the cost steps.
const COST_RATE: u32 = 300;
const COST_DURATION: Duration = Duration::from_secs(5);
/// Rate of the cost step under load: batches fill (at [`COST_RATE`] most hold one webhook).
const LOADED_COST_RATE: u32 = 1500;

/// Waits until no stored webhook is pending (at most 300 s).
async fn wait_until_processed(pool: &sqlx::PgPool, poll: Duration) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM inbound_webhooks WHERE status = 'pending'")
                .fetch_one(pool)
                .await
                .unwrap_or(0);
        if pending == 0 {
            break;
        }
        tokio::time::sleep(poll).await;
    }
}

/// Waits until every stored webhook is processed and the read side has caught up.
async fn drain(pool: &sqlx::PgPool) {
    wait_until_processed(pool, Duration::from_millis(200)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// Sends `rate`/s for `COST_DURATION` from customers `first..`, drains, and returns what
/// each acknowledged webhook cost end to end (ack, processing, projections, relay).
async fn cost_step(
    server: &ServeProcess,
    pool: &sqlx::PgPool,
    client: &reqwest::Client,
    phone_number_id: &str,
    (label, rate): (&str, u32),
) -> (Cost, Vec<(f64, String)>) {
    let url = format!("{}/webhooks/meta", server.base_url);
    let statements = pgstats::reset_statements(pool).await;
    let before = pgstats::settled_snapshot(pool).await;
    let report = open_loop_for(rate, COST_DURATION, |n| {
        signed_webhook(
            client,
            &url,
            phone_number_id,
            &format!("627{n:09}"),
            &format!("wamid.cost.{label}.{n}"),
            "hello",
        )
    })
    .await;
    drain(pool).await;
    let after = pgstats::settled_snapshot(pool).await;
    let acknowledged = report.sent - report.errors;
    let top = if statements {
        pgstats::top_statements(pool, acknowledged, 12).await
    } else {
        Vec::new()
    };
    (before.cost_until(&after, acknowledged), top)
}

/// Rate and length of the processor step: faster than the processor, so that it lags and its
/// own rate shows.
const PROCESSOR_RATE: u32 = 5000;
const PROCESSOR_DURATION: Duration = Duration::from_secs(2);

/// New customers' webhooks acknowledged at [`PROCESSOR_RATE`]; returns how many, and how many a
/// second were processed into conversations, from the first ack to the last one processed.
async fn processor_rate(
    server: &ServeProcess,
    pool: &sqlx::PgPool,
    client: &reqwest::Client,
    phone_number_id: &str,
) -> (usize, f64) {
    let url = format!("{}/webhooks/meta", server.base_url);
    let statements = pgstats::reset_statements(pool).await;
    let started = Instant::now();
    let report = open_loop_for(PROCESSOR_RATE, PROCESSOR_DURATION, |n| {
        signed_webhook(
            client,
            &url,
            phone_number_id,
            &format!("629{n:09}"),
            &format!("wamid.rate.{n}"),
            "hello",
        )
    })
    .await;
    wait_until_processed(pool, Duration::from_millis(20)).await;
    let acknowledged = report.sent - report.errors;
    let rate = acknowledged as f64 / started.elapsed().as_secs_f64();
    if statements {
        for (ms, query) in pgstats::slowest_statements(pool, acknowledged, 8).await {
            eprintln!("B1 processor step, slowest: {ms:.3} ms/webhook {query}");
        }
    }
    drain(pool).await;
    (acknowledged, rate)
}

/// Connects WhatsApp number `phone_number_id` to the organization directly in its database.
pub async fn connect_whatsapp(pool: &sqlx::PgPool, organization: &str, phone_number_id: &str) {
    sqlx::query(
        "INSERT INTO integration_accounts (id, tenant_id, channel, account_key, display_name, is_active, is_default, verify_token)
         VALUES ($1, $2::uuid, 'whatsapp', $3, 'bench', true, true, 'token')",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(organization)
    .bind(format!("wa-{phone_number_id}"))
    .execute(pool)
    .await
    .unwrap();
}

/// One signed webhook POST of a text message.
pub fn signed_webhook(
    client: &reqwest::Client,
    url: &str,
    phone_number_id: &str,
    from: &str,
    wamid: &str,
    text: &str,
) -> reqwest::RequestBuilder {
    let payload = omnistream_tests::fake_meta::whatsapp_text_webhook(
        phone_number_id,
        from,
        "Bench",
        wamid,
        text,
        chrono::Utc::now().timestamp(),
    );
    let body = serde_json::to_vec(&payload).unwrap();
    let signature =
        omnistream_tests::fake_meta::sign(omnistream_tests::TEST_META_APP_SECRET, &body);
    client
        .post(url)
        .header("x-hub-signature-256", signature)
        .body(body)
}

/// Runs B1 and M against `server`; returns the section and the best rate.
pub async fn run(server: &ServeProcess, client: &reqwest::Client) -> (Section, u32) {
    let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let mut phone_ids = Vec::new();
    for t in 0..5 {
        let (_, organization) = server.register(&format!("Ingest {t}")).await;
        let phone_number_id = format!("90000000000000{t}");
        connect_whatsapp(&pool, &organization, &phone_number_id).await;
        phone_ids.push(phone_number_id);
    }
    let raw_rate = raw_insert_rate(&pool, CONNECTIONS, Duration::from_secs(3)).await;
    let raw_batched_rate =
        raw_batched_insert_rate(&pool, CONNECTIONS, Duration::from_secs(3)).await;
    let rss_idle = memory_mb(&server.pid, "VmRSS:");
    // What one webhook costs, from a customer new to the platform and then from the same
    // customers again (their conversations exist).
    let (new_cost, new_top) =
        cost_step(server, &pool, client, &phone_ids[0], ("new", COST_RATE)).await;
    let (existing_cost, _) = cost_step(
        server,
        &pool,
        client,
        &phone_ids[0],
        ("existing", COST_RATE),
    )
    .await;
    let (loaded_cost, loaded_top) = cost_step(
        server,
        &pool,
        client,
        &phone_ids[1],
        ("loaded", LOADED_COST_RATE),
    )
    .await;
    eprintln!("B1 cost: new {new_cost:?}, existing {existing_cost:?}, loaded {loaded_cost:?}");
    let (processed, processor_rate) = processor_rate(server, &pool, client, &phone_ids[2]).await;
    eprintln!("B1 processor: {processed} new customers at {processor_rate:.0}/s");
    let url = format!("{}/webhooks/meta", server.base_url);
    let mut runs = Vec::new();
    let mut sequence = 0usize;
    // `BENCH_B1_MAX_RATE` stops the ladder early (to see M at a given load).
    let max_rate: u32 = std::env::var("BENCH_B1_MAX_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(u32::MAX);
    for rate in INGEST_RATES.into_iter().filter(|rate| *rate <= max_rate) {
        let offset = sequence;
        let report = open_loop(rate, |i| {
            let n = offset + i;
            signed_webhook(
                client,
                &url,
                &phone_ids[n % phone_ids.len()],
                &format!("628{:09}", n % 5000),
                &format!("wamid.bench.{n}"),
                "hello",
            )
        })
        .await;
        sequence += report.sent;
        eprintln!("B1 POST /webhooks/meta at {rate}/s: {report:?}");
        let saturated = report.saturated();
        runs.push(report);
        if saturated {
            break;
        }
    }
    // Let the processor and projectors drain what was acknowledged, still inside the peak.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_peak = memory_mb(&server.pid, "VmHWM:");
    let best = best_rate(&runs);
    let ratio = f64::from(best) / raw_rate;
    let batched_ratio = f64::from(best) / raw_batched_rate;
    let top_table = |top: &[(f64, String)]| -> String {
        top.iter()
            .map(|(calls, query)| format!("| {calls:.2} | `{}` |\n", query.replace('|', "\\|")))
            .collect()
    };
    let (top_table, loaded_top_table) = (top_table(&new_top), top_table(&loaded_top));
    let markdown = format!(
        "## B1: signed WhatsApp webhooks, acknowledged once durably stored\n\n\
         `omnistream serve` (release build) in its own process. Limit measured in the same run: raw single-row INSERT \
         transactions of the same row shape, {CONNECTIONS} connections: {raw_rate:.0}/s. Target: ≥ 0.5× that rate, ack p99 < 50 ms.\n\n\
         Raw multi-row INSERTs ({BATCH_ROWS} rows a statement, same connections), the limit for group commit: \
         {raw_batched_rate:.0} rows/s.\n\n\
         {}\nHighest rate holding the target: **{best}/s** = {ratio:.2}× the raw single-row INSERT rate, \
         {batched_ratio:.2}× the raw batched rate.\n\n\
         ### B1 cost per acknowledged webhook, end to end\n\n\
         {COST_RATE} webhooks/s for {}s (the last step: {LOADED_COST_RATE}/s from new customers, where batches fill), \
         then drained (processed, projected, relayed). Counters of this database \
         (`pg_stat_database`), of the server (`pg_stat_wal`, `pg_stat_statements`) and of the machine (`/proc/stat`).\n\n\
         {}{}{}{}\n\
         The processor: {processed} new customers' webhooks acknowledged at {PROCESSOR_RATE}/s for {}s were processed \
         into conversations at **{processor_rate:.0}/s** (from the first ack to the last payload processed; \
         target ≥ 2,000/s).\n\n\
         Statements called most per new-customer webhook:\n\n| calls / webhook | statement |\n|---|---|\n{top_table}\n\
         Statements called most per new-customer webhook at {LOADED_COST_RATE}/s:\n\n| calls / webhook | statement |\n|---|---|\n{loaded_top_table}\n\
         ## M: peak RSS of `omnistream serve` during B1\n\n\
         | idle after start (MB) | peak during B1 (MB) | target |\n|---|---|---|\n| {rss_idle:.0} | {rss_peak:.0} | < {RSS_TARGET_MB:.0} MB |\n",
        latency_table(&runs),
        COST_DURATION.as_secs(),
        pgstats::COST_HEADER,
        pgstats::cost_row("new customer", &new_cost),
        pgstats::cost_row("existing customer", &existing_cost),
        pgstats::cost_row(&format!("new customer at {LOADED_COST_RATE}/s"), &loaded_cost),
        PROCESSOR_DURATION.as_secs(),
    );
    let json = json!({"runs": runs, "highest_rate_within_target": best, "raw_insert_per_second": raw_rate,
                      "raw_batched_insert_rows_per_second": raw_batched_rate, "batched_ratio": batched_ratio,
                      "cost_new_customer": new_cost, "cost_existing_customer": existing_cost,
                      "cost_new_customer_loaded": loaded_cost,
                      "processor_new_customers_per_second": processor_rate,
                      "ratio": ratio, "serve_rss_idle_mb": rss_idle, "serve_peak_rss_mb": rss_peak,
                      "peak_rss_target_mb": RSS_TARGET_MB});
    (
        Section {
            key: "b1_webhook_ingest",
            json,
            markdown,
        },
        best,
    )
}
