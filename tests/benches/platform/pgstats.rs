//! What a step costs the database and the machine: commits, WAL records and syncs, statements
//! (`pg_stat_statements`, so the round trips that carry SQL) and the CPU's system time and
//! context switches, read before and after the step.
//!
//! The ingest scenarios run on a private PostgreSQL started from the installed binaries with
//! `pg_stat_statements` loaded ([`PrivatePostgres`]), so counters are this run's alone; without
//! the binaries they run on the shared server and statements are reported as unavailable.

use std::time::Duration;

use omnistream_gateway::app::devstack::{DevStack, Probe};
use sqlx::PgPool;

/// A private PostgreSQL for the bench, with `pg_stat_statements`.
pub struct PrivatePostgres {
    stack: DevStack,
    _dir: tempfile::TempDir,
    /// Its admin URL (test databases are created through it).
    pub url: String,
}

impl PrivatePostgres {
    /// Starts it; `None` when PostgreSQL's binaries are not installed.
    pub async fn start() -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let unused = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?;
        let nats: std::net::SocketAddr = omnistream_tests::nats_url()
            .trim_start_matches("nats://")
            .parse()
            .ok()?;
        let mut stack = DevStack::ensure(
            dir.path(),
            Probe {
                postgres: unused,
                nats,
            },
        )
        .await
        .ok()?;
        if !stack.started_postgres {
            return None;
        }
        stack.stop_postgres().await;
        let conf = dir.path().join("postgres").join("postgresql.auto.conf");
        let mut settings = std::fs::read_to_string(&conf).unwrap_or_default();
        settings.push_str("shared_preload_libraries = 'pg_stat_statements'\n");
        settings.push_str("pg_stat_statements.track = all\n");
        std::fs::write(&conf, settings).ok()?;
        stack.start_postgres().await.ok()?;
        let url = stack.database_url.clone();
        Some(Self {
            stack,
            _dir: dir,
            url,
        })
    }

    /// Stops it.
    pub async fn stop(self) {
        self.stack.stop().await;
    }
}

/// Cumulative counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    commits: i64,
    wal_records: i64,
    wal_syncs: i64,
    statements: Option<i64>,
    cpu_system: u64,
    cpu_total: u64,
    context_switches: u64,
}

/// A step's cost per item (per acknowledged webhook, say).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Cost {
    pub items: usize,
    pub commits: f64,
    pub wal_records: f64,
    pub wal_syncs: f64,
    /// Statements sent (each a round trip at least); `None` without `pg_stat_statements`.
    pub statements: Option<f64>,
    /// Share of the machine's CPU time spent in the kernel during the step, in %.
    pub cpu_system_percent: f64,
    pub context_switches: f64,
}

/// `cpu` system and total jiffies and context switches since boot, from `/proc/stat`.
fn machine() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut system = 0;
    let mut total = 0;
    let mut switches = 0;
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let values: Vec<u64> = fields.filter_map(|v| v.parse().ok()).collect();
                system = values.get(2).copied().unwrap_or(0);
                total = values.iter().sum();
            }
            Some("ctxt") => switches = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            _ => {}
        }
    }
    (system, total, switches)
}

/// Waits until the server's backends have reported their statistics (an idle backend reports
/// within 10 s), then reads the counters of `pool`'s database.
pub async fn settled_snapshot(pool: &PgPool) -> Counters {
    tokio::time::sleep(Duration::from_secs(11)).await;
    snapshot(pool).await
}

/// The counters now (statistics not yet reported by busy backends are missing).
pub async fn snapshot(pool: &PgPool) -> Counters {
    let _ = sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await;
    let commits: i64 = sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .unwrap_or(0);
    let (wal_records, wal_syncs): (i64, i64) =
        sqlx::query_as("SELECT wal_records, wal_sync FROM pg_stat_wal")
            .fetch_one(pool)
            .await
            .unwrap_or((0, 0));
    let statements: Option<i64> = sqlx::query_scalar(
        "SELECT sum(calls)::bigint FROM pg_stat_statements
          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(pool)
    .await
    .ok()
    .flatten();
    let (cpu_system, cpu_total, context_switches) = machine();
    Counters {
        commits,
        wal_records,
        wal_syncs,
        statements,
        cpu_system,
        cpu_total,
        context_switches,
    }
}

impl Counters {
    /// What happened between `self` and `later`, per item of `items`.
    pub fn cost_until(&self, later: &Counters, items: usize) -> Cost {
        let per = |delta: i64| delta as f64 / items.max(1) as f64;
        let cpu_total = later.cpu_total.saturating_sub(self.cpu_total).max(1) as f64;
        Cost {
            items,
            commits: per(later.commits - self.commits),
            wal_records: per(later.wal_records - self.wal_records),
            wal_syncs: per(later.wal_syncs - self.wal_syncs),
            statements: match (self.statements, later.statements) {
                (Some(before), Some(after)) => Some(per(after - before)),
                _ => None,
            },
            cpu_system_percent: 100.0 * later.cpu_system.saturating_sub(self.cpu_system) as f64
                / cpu_total,
            context_switches: per(
                later.context_switches.saturating_sub(self.context_switches) as i64
            ),
        }
    }
}

/// Makes `pg_stat_statements` available in `pool`'s database and empties it; false without it.
pub async fn reset_statements(pool: &PgPool) -> bool {
    let _ = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(pool)
        .await;
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(pool)
        .await
        .is_ok()
}

/// The `limit` statements of `pool`'s database called most often, with their calls per item.
pub async fn top_statements(pool: &PgPool, items: usize, limit: i64) -> Vec<(f64, String)> {
    ranked_statements(pool, "calls", items, limit).await
}

/// The `limit` statements of `pool`'s database that took the most time, with milliseconds per
/// item.
pub async fn slowest_statements(pool: &PgPool, items: usize, limit: i64) -> Vec<(f64, String)> {
    ranked_statements(pool, "total_exec_time", items, limit).await
}

/// The `limit` statements ranked by `column` of `pg_stat_statements` (one of ours, never
/// input), with that column per item.
async fn ranked_statements(
    pool: &PgPool,
    column: &'static str,
    items: usize,
    limit: i64,
) -> Vec<(f64, String)> {
    let rows: Vec<(f64, String)> = sqlx::query_as(&format!(
        "SELECT {column}::float8, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements
          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          ORDER BY {column} DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    rows.into_iter()
        .map(|(value, query)| {
            let short: String = query.chars().take(110).collect();
            (value / items.max(1) as f64, short)
        })
        .collect()
}

/// A markdown table row of `cost` labelled `step`.
pub fn cost_row(step: &str, cost: &Cost) -> String {
    format!(
        "| {step} | {} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.1} |\n",
        cost.items,
        cost.commits,
        cost.wal_syncs,
        cost.wal_records,
        cost.statements
            .map_or_else(|| "n/a".to_owned(), |s| format!("{s:.1}")),
        cost.cpu_system_percent,
        cost.context_switches,
    )
}

/// The header of [`cost_row`]'s table.
pub const COST_HEADER: &str = "| step | items | commits / item | WAL syncs / item | WAL records / item | statements / item | CPU %sys | context switches / item |\n|---|---|---|---|---|---|---|---|\n";

/// Between scenarios: the finished scenario's database is dropped and a `CHECKPOINT` taken, so
/// the next starts without its predecessor's dirty pages and autovacuum work.
pub async fn clean_up_after(database_url: &str) {
    let admin = omnistream_tests::admin_database_url();
    let Some(name) = database_url
        .split('?')
        .next()
        .and_then(|base| base.rsplit('/').next())
    else {
        return;
    };
    if let Ok(pool) = PgPool::connect(&admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&pool)
            .await;
        let _ = sqlx::query("CHECKPOINT").execute(&pool).await;
        pool.close().await;
    }
}
