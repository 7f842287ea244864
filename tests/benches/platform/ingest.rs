//! B1: signed WhatsApp webhooks (one message each, unique `wamid`, many contacts and tenants)
//! acknowledged once durably stored, against raw single-row INSERTs of the same row shape with
//! the same connection count. M: the peak RSS of the `omnistream serve` process meanwhile.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::load::{best_rate, latency_table, memory_mb, open_loop, Section};
use crate::server::ServeProcess;

const INGEST_RATES: [u32; 6] = [500, 1000, 2000, 4000, 6000, 8000];
const CONNECTIONS: usize = 16;
const RSS_TARGET_MB: f64 = 150.0;

/// Raw single-row INSERT transactions per second into an inbound-log-shaped table, with
/// `connections` concurrent writers for `duration`.
pub async fn raw_insert_rate(pool: &sqlx::PgPool, connections: usize, duration: Duration) -> f64 {
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
    let rss_idle = memory_mb(&server.pid, "VmRSS:");
    let url = format!("{}/webhooks/meta", server.base_url);
    let mut runs = Vec::new();
    let mut sequence = 0usize;
    for rate in INGEST_RATES {
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
    let markdown = format!(
        "## B1: signed WhatsApp webhooks, acknowledged once durably stored\n\n\
         `omnistream serve` (release build) in its own process. Limit measured in the same run: raw single-row INSERT \
         transactions of the same row shape, {CONNECTIONS} connections: {raw_rate:.0}/s. Target: ≥ 0.5× that rate, ack p99 < 50 ms.\n\n\
         {}\nHighest rate holding the target: **{best}/s** = {ratio:.2}× the raw INSERT rate.\n\n\
         ## M: peak RSS of `omnistream serve` during B1\n\n\
         | idle after start (MB) | peak during B1 (MB) | target |\n|---|---|---|\n| {rss_idle:.0} | {rss_peak:.0} | < {RSS_TARGET_MB:.0} MB |\n",
        latency_table(&runs)
    );
    let json = json!({"runs": runs, "highest_rate_within_target": best, "raw_insert_per_second": raw_rate,
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
