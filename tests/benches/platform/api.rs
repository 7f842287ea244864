//! The API read path: authenticated `GET /api/agents` under open-loop load at fixed arrival
//! rates, against the same SQL run directly; and the cost of a login (argon2id).

use std::time::Instant;

use futures::StreamExt;
use omnistream_tests::{Member, TestApp};
use serde_json::{json, Value};

use crate::load::{best_rate, open_loop, Section, P99_TARGET_MS};

const RATES: [u32; 5] = [250, 500, 1000, 2000, 4000];

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
    crate::load::percentile(&samples, 0.99)
}

pub async fn run(app: &TestApp, admin: &Member, client: &reqwest::Client) -> Vec<Section> {
    let url = format!("{}/api/agents", app.base_url);
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
    let mut runs = Vec::new();
    for rate in RATES {
        let report = open_loop(rate, |_| client.get(&url).bearer_auth(&admin.token)).await;
        eprintln!("GET /api/agents at {rate}/s: {report:?}");
        let saturated = report.saturated();
        runs.push(report);
        if saturated {
            break;
        }
    }
    let best = best_rate(&runs);
    let mut markdown = format!(
        "## Authenticated `GET /api/agents` (21 agents), open loop\n\n\
         Limit measured in the same run: the request's SQL run directly, p99 {raw_p99:.2} ms. Target: p99 < {P99_TARGET_MS} ms with < 0.1 % errors.\n\n\
         | rate/s | sent | errors | p50 ms | p99 ms | max ms | p99 / raw SQL p99 |\n|---|---|---|---|---|---|---|\n"
    );
    for r in &runs {
        markdown.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1}× |\n",
            r.rate,
            r.sent,
            r.errors,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.p99_ms / raw_p99
        ));
    }
    markdown.push_str(&format!(
        "\nHighest rate holding the target: **{best}/s**.\n"
    ));

    let login_started = Instant::now();
    let logins = 20;
    futures::stream::iter(0..logins)
        .for_each_concurrent(4, |_| async {
            app.login(&admin.email, &admin.password).await;
        })
        .await;
    let logins_per_second = f64::from(logins) / login_started.elapsed().as_secs_f64();
    vec![
        Section {
            key: "api_list_agents",
            json: json!({"runs": runs, "highest_rate_within_target": best, "p99_target_ms": P99_TARGET_MS,
                         "raw_sql_p99_ms": raw_p99}),
            markdown,
        },
        Section {
            key: "login_per_second",
            json: json!(logins_per_second),
            markdown: format!(
                "## Login (argon2id)\n\n{logins_per_second:.1} logins/s with 4 concurrent clients (deliberately expensive hashing).\n"
            ),
        },
    ]
}
