//! B7: the inbox list and message search of one tenant holding 1,000,000 conversations and
//! 5,000,000 messages, through the API and as the same SQL run directly.
//!
//! The read models are seeded directly (the projectors' tables, in bulk), since replaying five
//! million events is what B5 measures. `BENCH_B7_SCALE` (default 1.0) shrinks the data set for
//! a quick run.

use std::time::{Duration, Instant};

use omnistream_gateway::app::Roles;
use omnistream_projections::inbox::queries::CONVERSATION_SELECT;
use omnistream_projections::messages::queries::MESSAGE_COLUMNS;
use omnistream_tests::TestApp;
use serde_json::json;

use crate::load::{Percentiles, Section};

const SAMPLES: usize = 200;
const SEARCH: &str = "order 4242";

fn scale() -> f64 {
    std::env::var("BENCH_B7_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

async fn seed(pool: &sqlx::PgPool, tenant: uuid::Uuid, conversations: i64, messages: i64) {
    let mut conn = pool.acquire().await.unwrap();
    for statement in [
        "SET maintenance_work_mem = '512MB'",
        "DROP INDEX messages_content_trgm_idx",
        "DROP INDEX messages_conversation_idx",
        "DROP INDEX conversations_inbox_idx",
    ] {
        sqlx::query(statement).execute(&mut *conn).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO contacts (id, tenant_id, name, phone_number, wa_id)
         SELECT md5('contact' || i)::uuid, $1, 'Contact ' || i, '+62' || (800000000 + i), (62800000000 + i)::text
         FROM generate_series(1, $2) AS i",
    )
    .bind(tenant)
    .bind(conversations)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO conversations (id, tenant_id, contact_id, channel, status, last_message_at, last_message_preview,
                                    last_customer_message_at, created_at, updated_at)
         SELECT md5('conversation' || i)::uuid, $1, md5('contact' || i)::uuid, 'whatsapp', 'open',
                now() - make_interval(secs => i), 'message about order ' || (i % 100000),
                now() - make_interval(secs => i), now() - make_interval(secs => i), now()
         FROM generate_series(1, $2) AS i",
    )
    .bind(tenant)
    .bind(conversations)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, direction, type, status, content, sender_type,
                               external_id, created_at, updated_at)
         SELECT md5('message' || i)::uuid, $1, md5('conversation' || (1 + i % $3))::uuid, 'inbound', 'text', 'delivered',
                'message ' || i || ' about order ' || (i % 100000), 'contact', 'wamid.' || i,
                now() - make_interval(secs => i), now()
         FROM generate_series(1, $2) AS i",
    )
    .bind(tenant)
    .bind(messages)
    .bind(conversations)
    .execute(&mut *conn)
    .await
    .unwrap();
    for statement in [
        "CREATE INDEX conversations_inbox_idx ON conversations (tenant_id, last_message_at DESC NULLS LAST, id)",
        "CREATE INDEX messages_conversation_idx ON messages (conversation_id, created_at, id)",
        "CREATE INDEX messages_content_trgm_idx ON messages USING GIN (content gin_trgm_ops)",
        "ANALYZE contacts",
        "ANALYZE conversations",
        "ANALYZE messages",
    ] {
        sqlx::query(statement).execute(&mut *conn).await.unwrap();
    }
}

/// `SAMPLES` sequential runs of `run`; their latencies.
async fn sample<F, Fut>(run: F) -> Percentiles
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    run().await;
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        run().await;
        samples.push(started.elapsed());
    }
    Percentiles::of(samples)
}

pub async fn run() -> Section {
    let conversations = (1_000_000.0 * scale()) as i64;
    let messages = (5_000_000.0 * scale()) as i64;
    let app = TestApp::spawn_on(
        omnistream_tests::create_test_database().await,
        Roles::GATEWAY,
        |_| {},
    )
    .await;
    let admin = app.register("Big tenant").await;
    let tenant: uuid::Uuid = admin.organization_id.parse().unwrap();
    let seeding = Instant::now();
    seed(&app.pool, tenant, conversations, messages).await;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    eprintln!(
        "B7: seeded {conversations} conversations and {messages} messages in {seed_seconds:.0}s"
    );

    let client = reqwest::Client::new();
    let api = |path: String| {
        let (client, token) = (client.clone(), admin.token.clone());
        let url = format!("{}{path}", app.base_url);
        move || {
            let request = client.get(url.clone()).bearer_auth(token.clone());
            async move {
                let response = request.send().await.unwrap();
                assert!(response.status().is_success());
                response.bytes().await.unwrap();
            }
        }
    };
    let pool = &app.pool;
    let list_sql = format!(
        "{CONVERSATION_SELECT} WHERE true AND c.tenant_id = $1 ORDER BY c.last_message_at DESC NULLS LAST, c.id LIMIT 20 OFFSET 0"
    );
    let count_sql = "SELECT count(*) FROM conversations c LEFT JOIN contacts ct ON ct.id = c.contact_id AND ct.tenant_id = c.tenant_id
                     WHERE true AND c.tenant_id = $1";
    let search_from = "FROM messages m JOIN conversations c ON c.id = m.conversation_id AND c.tenant_id = m.tenant_id
                       LEFT JOIN contacts ct ON ct.id = c.contact_id AND ct.tenant_id = c.tenant_id
                       WHERE m.content ILIKE $1 AND c.tenant_id = $2 AND m.tenant_id = $2";
    let search_count_sql = format!("SELECT count(*) {search_from}");
    let search_sql = format!(
        "SELECT {MESSAGE_COLUMNS}, c.contact_id, COALESCE(ct.name, '') AS contact_name, c.channel {search_from}
         ORDER BY m.created_at DESC, m.id DESC LIMIT 20 OFFSET 0"
    );
    let pattern = format!("%{SEARCH}%");

    let list_api = sample(api("/api/conversations?page=1&per_page=20".into())).await;
    let list_raw = sample(|| async {
        sqlx::query_scalar::<_, i64>(count_sql)
            .bind(tenant)
            .fetch_one(pool)
            .await
            .unwrap();
        sqlx::query(&list_sql)
            .bind(tenant)
            .fetch_all(pool)
            .await
            .unwrap();
    })
    .await;
    let search_api = sample(api(format!(
        "/api/messages/search?q={}&per_page=20",
        SEARCH.replace(' ', "%20")
    )))
    .await;
    let search_raw = sample(|| async {
        sqlx::query_scalar::<_, i64>(&search_count_sql)
            .bind(&pattern)
            .bind(tenant)
            .fetch_one(pool)
            .await
            .unwrap();
        sqlx::query(&search_sql)
            .bind(&pattern)
            .bind(tenant)
            .fetch_all(pool)
            .await
            .unwrap();
    })
    .await;
    app.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let row = |name: &str, api: &Percentiles, raw: &Percentiles| {
        let target = 1.5 * raw.p99_ms + 5.0;
        format!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {target:.2} | {} |\n",
            api.p50_ms,
            api.p99_ms,
            raw.p50_ms,
            raw.p99_ms,
            if api.p99_ms <= target {
                "met"
            } else {
                "missed"
            }
        )
    };
    let markdown = format!(
        "## B7: inbox list and message search at scale\n\n\
         One tenant with {conversations} conversations (and as many contacts) and {messages} messages, seeded into the read models \
         in {seed_seconds:.0} s. {SAMPLES} sequential requests each (one warm-up first), through the API and as the same SQL (count \
         and page) run directly. Target: API p99 ≤ 1.5 × raw p99 + 5 ms.\n\n\
         | request | API p50 ms | API p99 ms | raw SQL p50 ms | raw SQL p99 ms | target p99 ms | |\n|---|---|---|---|---|---|---|\n{}{}",
        row("`GET /api/conversations?per_page=20` (page 1)", &list_api, &list_raw),
        row(&format!("`GET /api/messages/search?q={SEARCH}`"), &search_api, &search_raw),
    );
    Section {
        key: "b7_inbox_at_scale",
        json: json!({"conversations": conversations, "messages": messages, "seed_seconds": seed_seconds,
                     "list": {"api": list_api, "raw_sql": list_raw},
                     "search": {"query": SEARCH, "api": search_api, "raw_sql": search_raw}}),
        markdown,
    }
}
