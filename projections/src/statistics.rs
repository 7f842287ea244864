//! Keeps the planner's statistics of young, fast-growing tables current.
//!
//! PostgreSQL's autovacuum analyzes a table once about 10 % of it has changed, but looks only
//! once a minute. A new deployment (or a new database) that takes a burst of traffic therefore
//! plans for a minute on statistics that say its tables hold a handful of rows, and picks plans
//! that are quadratic at a few thousand (a tenant-only index scan per joined row, an anti-join
//! that scans a whole backlog per probe). This task analyzes such a table as soon as it has grown
//! by half since its last analysis; on mature tables it never fires before autovacuum does.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// How often the counters are read.
const EVERY: Duration = Duration::from_secs(2);

/// Changes since the last analysis below which a table is left to autovacuum.
const MIN_CHANGES: i64 = 500;

/// Tables whose plans matter on the hot paths (read models, queues, the event log).
const TABLES: &[&str] = &[
    "events",
    "snapshots",
    "conversations",
    "contacts",
    "messages",
    "outbound_jobs",
    "inbound_webhooks",
    "webhook_deliveries",
    "webhook_fanout",
];

/// The tables that have changed by more than half since they were last analyzed.
async fn stale_tables(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT relname::text FROM pg_stat_user_tables
         WHERE schemaname = current_schema() AND relname = ANY($1)
           AND n_mod_since_analyze > greatest($2, n_live_tup / 2)",
    )
    .bind(TABLES)
    .bind(MIN_CHANGES)
    .fetch_all(pool)
    .await
}

/// Analyzes stale hot tables every couple of seconds until `shutdown`.
pub async fn keep_statistics(pool: PgPool, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        let stale = match stale_tables(&pool).await {
            Ok(stale) => stale,
            Err(error) => {
                tracing::debug!(%error, "reading table statistics failed");
                continue;
            }
        };
        for table in stale {
            // The name comes from the fixed list above, never from input.
            if !TABLES.contains(&table.as_str()) {
                continue;
            }
            if let Err(error) = sqlx::query(&format!("ANALYZE {table}"))
                .execute(&pool)
                .await
            {
                tracing::debug!(%error, table, "analyzing a table failed");
            }
        }
    }
}
