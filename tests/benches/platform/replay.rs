//! B5: `omnistream replay` of a projection over many events, against a raw
//! `COPY (SELECT … FROM events ORDER BY …) TO STDOUT` of the same rows; memory stays flat.

use std::time::Instant;

use futures::StreamExt;
use omnistream_projections::{Projector, TenantUsageProjector};
use serde_json::json;

use crate::load::{memory_mb, Section};

const REPLAY_EVENTS: i64 = 1_000_000;

pub async fn run(pool: &sqlx::PgPool) -> Section {
    let tenants: Vec<uuid::Uuid> = (0..50).map(|_| uuid::Uuid::new_v4()).collect();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'Bench', ($1::uuid[])[1 + (i % 50)]::text || ':' || md5(i::text)::uuid, 1, 'Opened', '1.0',
                '{\"Opened\": {}}', '{}'
         FROM generate_series(1, $2) AS i",
    )
    .bind(&tenants)
    .bind(REPLAY_EVENTS)
    .execute(pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let copy_started = Instant::now();
    let mut copied = 0usize;
    // The same columns as the replay reads: the envelope only when the projector does not read
    // event bodies.
    let bodies = if TenantUsageProjector.reads_bodies() {
        "payload, metadata"
    } else {
        "NULL, NULL"
    };
    let mut stream = conn
        .copy_out_raw(&format!(
            "COPY (SELECT transaction_id, global_position, aggregate_type, aggregate_id, sequence, event_type,
                          event_version, {bodies}, recorded_at
                   FROM events ORDER BY transaction_id, global_position) TO STDOUT"
        ))
        .await
        .unwrap();
    while let Some(chunk) = stream.next().await {
        copied += chunk.unwrap().iter().filter(|b| **b == b'\n').count();
    }
    drop(stream);
    drop(conn);
    let copy_rate = copied as f64 / copy_started.elapsed().as_secs_f64();
    let rss_before = memory_mb("self", "VmRSS:");
    let replay_started = Instant::now();
    let replayed = omnistream_projections::replay::replay(pool, &TenantUsageProjector)
        .await
        .unwrap();
    let replay_rate = replayed as f64 / replay_started.elapsed().as_secs_f64();
    let rss_after = memory_mb("self", "VmRSS:");
    let ratio = replay_rate / copy_rate;
    eprintln!("B5: replay {replay_rate:.0}/s vs COPY {copy_rate:.0}/s");
    Section {
        key: "b5_replay",
        json: json!({"projection": TenantUsageProjector.name(), "events": replayed, "events_per_second": replay_rate,
                     "raw_copy_rows_per_second": copy_rate, "ratio": ratio,
                     "rss_before_mb": rss_before, "rss_after_mb": rss_after}),
        markdown: format!(
            "## B5: replay of `{}` over {replayed} events\n\n\
             Limit measured in the same run: `COPY (SELECT … FROM events ORDER BY transaction_id, global_position) TO STDOUT` \
             of the columns the projector reads ({}). \
             Target: ≥ 0.3× the raw rate, memory flat (the bench process's RSS before and after).\n\n\
             | ours (events/s) | raw COPY (rows/s) | ratio | RSS before → after (MB) |\n|---|---|---|---|\n\
             | {replay_rate:.0} | {copy_rate:.0} | {ratio:.2} | {rss_before:.0} → {rss_after:.0} |\n",
            TenantUsageProjector.name(),
            if TenantUsageProjector.reads_bodies() { "every column" } else { "the envelope: stream, type and time, not the JSON bodies" }
        ),
    }
}
