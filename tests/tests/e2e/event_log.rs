//! The event-log reader and projections: commit-order safety, exactly-once checkpoints, replay.

use std::collections::HashSet;
use std::time::Duration;

use omnistream_gateway::app::db;
use omnistream_projections::log::read_after;
use omnistream_projections::{catch_up_once, LogCursor, Projector, TenantUsageProjector};
use omnistream_tests::create_test_database;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

async fn migrated_pool() -> PgPool {
    let url = create_test_database().await;
    let pool = db::connect(&url, 8, Duration::from_secs(10)).await.unwrap();
    db::migrate(&pool).await.unwrap();
    pool
}

/// Appends an event the way postgres-es does (its INSERT names these columns only).
async fn append(conn: &mut PgConnection, stream: &str, sequence: i64, event_type: &str) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Conversation', $1, $2, $3, '1.0', $4, '{}')",
    )
    .bind(stream)
    .bind(sequence)
    .bind(event_type)
    .bind(json!({ event_type: {} }))
    .execute(conn)
    .await
    .unwrap();
}

fn stream(tenant: Uuid) -> String {
    format!("{tenant}:{}", Uuid::new_v4())
}

async fn read_types(pool: &PgPool, after: LogCursor) -> Vec<String> {
    let mut conn = pool.acquire().await.unwrap();
    read_after(&mut conn, after, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

/// Transaction ids are cluster-wide, so a transaction of a test running in parallel (in another
/// database) can also hold the reader back for a moment: wait until the log shows `expected`.
async fn assert_log_eventually(pool: &PgPool, expected: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen = read_types(pool, LogCursor::START).await;
        if seen == expected {
            return;
        }
        assert!(
            expected.starts_with(&seen.iter().map(String::as_str).collect::<Vec<_>>()),
            "unexpected order: {seen:?}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log never showed {expected:?}; last saw {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the projector until it has applied `expected` events in total.
async fn project_eventually(pool: &PgPool, projector: &dyn Projector, batch: i64, expected: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut applied = 0;
    while applied < expected {
        applied += catch_up_once(pool, projector, batch).await.unwrap();
        assert!(
            tokio::time::Instant::now() < deadline,
            "projected {applied} of {expected}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(applied, expected, "nothing applied twice");
}

#[tokio::test]
async fn a_transaction_held_open_stalls_the_reader_but_is_never_skipped() {
    let pool = migrated_pool().await;
    let tenant = Uuid::new_v4();
    let mut early = pool.begin().await.unwrap();
    append(&mut early, &stream(tenant), 1, "EarlyButSlow").await;

    let mut late = pool.begin().await.unwrap();
    append(&mut late, &stream(tenant), 1, "LateButFast").await;
    late.commit().await.unwrap();

    assert!(
        read_types(&pool, LogCursor::START).await.is_empty(),
        "the reader must wait for the open transaction"
    );

    early.commit().await.unwrap();
    assert_log_eventually(&pool, &["EarlyButSlow", "LateButFast"]).await;
}

#[tokio::test]
async fn a_lower_position_committed_later_is_still_delivered_in_order() {
    let pool = migrated_pool().await;
    let tenant = Uuid::new_v4();
    // `first` takes its transaction id before `second`, but its event a higher position.
    let mut first = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *first)
        .await
        .unwrap();
    let mut second = pool.begin().await.unwrap();
    append(&mut second, &stream(tenant), 1, "LowerPosition").await;
    append(&mut first, &stream(tenant), 1, "HigherPosition").await;
    second.commit().await.unwrap();
    assert!(read_types(&pool, LogCursor::START).await.is_empty());
    first.commit().await.unwrap();
    assert_log_eventually(&pool, &["HigherPosition", "LowerPosition"]).await;
}

#[tokio::test]
async fn a_rolled_back_transaction_releases_the_reader_and_leaves_nothing() {
    let pool = migrated_pool().await;
    let tenant = Uuid::new_v4();
    let mut doomed = pool.begin().await.unwrap();
    append(&mut doomed, &stream(tenant), 1, "RolledBack").await;
    let mut kept = pool.begin().await.unwrap();
    append(&mut kept, &stream(tenant), 1, "Kept").await;
    kept.commit().await.unwrap();

    assert!(read_types(&pool, LogCursor::START).await.is_empty());
    doomed.rollback().await.unwrap();
    assert_log_eventually(&pool, &["Kept"]).await;
}

#[tokio::test]
async fn concurrent_writers_are_each_read_exactly_once() {
    let pool = migrated_pool().await;
    let tenant = Uuid::new_v4();
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for batch in 0..10 {
                    let mut tx = pool.begin().await.unwrap();
                    let stream = stream(tenant);
                    for seq in 1..=3 {
                        append(&mut tx, &stream, seq, &format!("w{writer}b{batch}s{seq}")).await;
                    }
                    tokio::time::sleep(Duration::from_millis((writer * 3 + batch) % 7)).await;
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();

    let mut seen = Vec::new();
    let mut cursor = LogCursor::START;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 240 && tokio::time::Instant::now() < deadline {
        let mut conn = pool.acquire().await.unwrap();
        let batch = read_after(&mut conn, cursor, 17).await.unwrap();
        if let Some(last) = batch.last() {
            assert!(last.cursor() > cursor, "the cursor only moves forward");
            cursor = last.cursor();
        }
        seen.extend(batch.into_iter().map(|e| e.event_type));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let mut conn = pool.acquire().await.unwrap();
    seen.extend(
        read_after(&mut conn, cursor, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type),
    );
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), 240, "every event once");
    assert_eq!(unique.len(), 240, "no event twice");
}

#[tokio::test]
async fn events_are_immutable() {
    let pool = migrated_pool().await;
    let mut conn = pool.acquire().await.unwrap();
    append(&mut conn, &stream(Uuid::new_v4()), 1, "Fact").await;
    for statement in [
        "UPDATE events SET event_type = 'Changed'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let error = sqlx::query(statement)
            .execute(&mut *conn)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("immutable"),
            "{statement}: {error}"
        );
    }
}

async fn usage_rows(pool: &PgPool) -> Vec<(Uuid, String, i64)> {
    sqlx::query_as("SELECT tenant_id, aggregate_type, event_count FROM tenant_event_counters ORDER BY tenant_id, aggregate_type")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_usage_projection_applies_each_event_once_and_waits_for_open_transactions() {
    let pool = migrated_pool().await;
    let projector = TenantUsageProjector;
    let (tenant_a, tenant_b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut conn = pool.acquire().await.unwrap();
    append(&mut conn, &stream(tenant_a), 1, "Opened").await;
    append(&mut conn, &stream(tenant_a), 1, "Opened").await;
    drop(conn);
    let mut open = pool.begin().await.unwrap();
    append(&mut open, &stream(tenant_b), 1, "Opened").await;

    project_eventually(&pool, &projector, 100, 2).await;
    assert_eq!(
        catch_up_once(&pool, &projector, 100).await.unwrap(),
        0,
        "the open transaction holds the projector back"
    );
    open.commit().await.unwrap();
    project_eventually(&pool, &projector, 100, 1).await;

    let mut expected = vec![
        (tenant_a, "Conversation".to_owned(), 2),
        (tenant_b, "Conversation".to_owned(), 1),
    ];
    expected.sort();
    assert_eq!(usage_rows(&pool).await, expected);
    let applied: i64 = sqlx::query_scalar(
        "SELECT events_applied FROM projection_checkpoints WHERE projection = $1",
    )
    .bind(projector.name())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(applied, 3);
}

#[tokio::test]
async fn replay_rebuilds_tables_equal_to_the_live_ones() {
    let pool = migrated_pool().await;
    let projector = TenantUsageProjector;
    let tenants: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    let mut conn = pool.acquire().await.unwrap();
    for (i, tenant) in tenants.iter().enumerate() {
        for _ in 0..=i {
            append(&mut conn, &stream(*tenant), 1, "Opened").await;
        }
    }
    drop(conn);
    project_eventually(&pool, &projector, 4, 15).await;
    let live = usage_rows(&pool).await;
    assert_eq!(live.len(), 5);

    // A transaction open elsewhere on the server can hold the replay short of the live table;
    // the live loop then continues from the replay's checkpoint.
    let applied = omnistream_projections::replay::replay(&pool, &projector)
        .await
        .unwrap() as usize;
    assert!(applied <= 15);
    project_eventually(&pool, &projector, 100, 15 - applied).await;
    assert_eq!(
        usage_rows(&pool).await,
        live,
        "the rebuilt table equals the live one"
    );

    // The live loop continues from the replay's checkpoint: new events only.
    let mut conn = pool.acquire().await.unwrap();
    append(&mut conn, &stream(tenants[0]), 1, "Opened").await;
    drop(conn);
    project_eventually(&pool, &projector, 100, 1).await;
    let leftover: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'replay_tenant_usage')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(!leftover, "the shadow schema is gone after the swap");
}

#[tokio::test]
async fn the_running_worker_projects_events_appended_through_the_api_database() {
    let app = omnistream_tests::TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let mut conn = app.pool.acquire().await.unwrap();
    append(&mut conn, &stream(tenant), 1, "Opened").await;
    drop(conn);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let count: Option<i64> = sqlx::query_scalar(
            "SELECT event_count FROM tenant_event_counters WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        if count == Some(1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker did not project the event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_young_table_that_grows_is_analyzed_without_waiting_for_autovacuum() {
    let pool = migrated_pool().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let keeper = tokio::spawn(omnistream_projections::statistics::keep_statistics(
        pool.clone(),
        stop.clone(),
    ));
    let analyzed = || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'webhook_fanout'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    assert!(!analyzed().await, "a new table starts unanalyzed");
    sqlx::query(
        "INSERT INTO webhook_fanout (event_id, webhook_id) SELECT 'evt_' || g, gen_random_uuid() FROM generate_series(1, 2000) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !analyzed().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the grown table was never analyzed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let estimate: f32 =
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'webhook_fanout'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        estimate >= 1000.0,
        "the planner now knows the table's size: {estimate}"
    );
    stop.cancel();
    keeper.await.unwrap();
}
