//! Runs a projector: read a batch after its checkpoint, apply, advance the checkpoint, commit.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use omnistream_commands::infra::stages;
use omnistream_commands::infra::wakeup::Wakeup;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::log::{read_after_with, LogCursor};
use crate::Projector;

/// Tuning of a projector loop.
#[derive(Debug, Clone, Copy)]
pub struct ProjectorSettings {
    /// Events applied per transaction.
    pub batch_size: i64,
    /// The longest pause when the log has nothing new: new events wake the loop at once.
    pub idle_poll: Duration,
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            idle_poll: Duration::from_millis(50),
        }
    }
}

/// Reads the stored checkpoint of `projection` (the start of the log when there is none).
pub async fn load_checkpoint(
    conn: &mut PgConnection,
    projection: &str,
) -> Result<LogCursor, sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT last_transaction_id::text::bigint, last_position FROM projection_checkpoints WHERE projection = $1",
    )
    .bind(projection)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(
        row.map_or(LogCursor::START, |(transaction_id, position)| LogCursor {
            transaction_id,
            position,
        }),
    )
}

/// Stores `cursor` as the checkpoint of `projection`, counting `applied` more events.
pub async fn store_checkpoint(
    conn: &mut PgConnection,
    projection: &str,
    cursor: LogCursor,
    applied: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"
        INSERT INTO projection_checkpoints (projection, last_transaction_id, last_position, events_applied, updated_at)
        VALUES ($1, $2::bigint::text::xid8, $3, $4, now())
        ON CONFLICT (projection) DO UPDATE
           SET last_transaction_id = EXCLUDED.last_transaction_id,
               last_position = EXCLUDED.last_position,
               events_applied = projection_checkpoints.events_applied + EXCLUDED.events_applied,
               updated_at = now()
        "#,
    )
    .bind(projection)
    .bind(cursor.transaction_id)
    .bind(cursor.position)
    .bind(applied)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the projector's transaction-scoped advisory lock, so only one instance applies its
/// events at a time. The lock assigns no transaction id, which the reader relies on.
pub(crate) async fn lock_projection(
    conn: &mut PgConnection,
    projection: &str,
    wait: bool,
) -> Result<bool, sqlx::Error> {
    let sql = if wait {
        "SELECT true FROM pg_advisory_xact_lock(hashtextextended('projection:' || $1, 0))"
    } else {
        "SELECT pg_try_advisory_xact_lock(hashtextextended('projection:' || $1, 0))"
    };
    sqlx::query_scalar(sql)
        .bind(projection)
        .fetch_one(conn)
        .await
}

/// Applies at most one batch of new events in one transaction; returns how many were applied.
/// Returns 0 when another instance holds the projector.
#[tracing::instrument(skip_all, fields(projection = projector.name()), err)]
pub async fn catch_up_once(
    pool: &PgPool,
    projector: &dyn Projector,
    batch_size: i64,
) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    if !lock_projection(&mut tx, projector.name(), false).await? {
        return Ok(0);
    }
    if projector.replayable() {
        // A rebuildable read model commits without waiting for its WAL flush: a crash loses at
        // most its last fraction of a second, checkpoint included, which is applied again.
        // Projectors with side effects (the outbound queue) keep synchronous commits.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
    }
    let from = load_checkpoint(&mut tx, projector.name()).await?;
    let events = read_after_with(&mut tx, from, batch_size, projector.reads_bodies()).await?;
    let Some(last) = events.last() else {
        return Ok(0);
    };
    projector.apply_batch(&mut tx, &events).await?;
    store_checkpoint(
        &mut tx,
        projector.name(),
        last.cursor(),
        events.len() as i64,
    )
    .await?;
    let lag = (Utc::now() - last.recorded_at).num_milliseconds().max(0) as f64 / 1000.0;
    tx.commit().await?;
    for event in &events {
        stages::record_projected(projector.name(), event.recorded_at);
    }
    metrics::counter!("omnistream_projection_events_applied_total", "projection" => projector.name())
        .increment(events.len() as u64);
    metrics::gauge!("omnistream_projection_lag_seconds", "projection" => projector.name()).set(lag);
    Ok(events.len())
}

/// Tails the log for one projector until `shutdown` is cancelled. Catch-up and live updates are
/// the same loop: full batches are followed at once; otherwise it waits for `wakeup` (new
/// events) or, at the longest, the idle poll.
pub async fn run_projector(
    pool: PgPool,
    projector: Arc<dyn Projector>,
    settings: ProjectorSettings,
    mut wakeup: Wakeup,
    shutdown: CancellationToken,
) {
    let mut failures: u32 = 0;
    loop {
        let pause = match catch_up_once(&pool, projector.as_ref(), settings.batch_size).await {
            Ok(applied) if applied as i64 >= settings.batch_size => {
                failures = 0;
                Duration::ZERO
            }
            Ok(applied) => {
                failures = 0;
                if applied == 0 {
                    metrics::gauge!("omnistream_projection_lag_seconds", "projection" => projector.name()).set(0.0);
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = wakeup.wait(settings.idle_poll) => {}
                }
                continue;
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(projection = projector.name(), %error, "projector batch failed; retrying");
                Duration::from_millis(100 * u64::from(failures.min(50)))
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Read-your-writes for the API: waits until `projector` has applied the latest event of stream
/// `aggregate_id`, helping along with a batch of its own when the worker is busy. Best effort:
/// after `patience`, or when the read model cannot be updated right now, it logs and returns
/// (the write has succeeded; the read model then shows the state a moment earlier).
pub async fn wait_until_applied(
    pool: &PgPool,
    projector: &dyn Projector,
    aggregate_type: &str,
    aggregate_id: &str,
    patience: Duration,
) -> anyhow::Result<()> {
    if let Err(error) =
        try_wait_until_applied(pool, projector, aggregate_type, aggregate_id, patience).await
    {
        tracing::warn!(projection = projector.name(), aggregate_id, %error, "could not wait for the read model");
    }
    Ok(())
}

async fn try_wait_until_applied(
    pool: &PgPool,
    projector: &dyn Projector,
    aggregate_type: &str,
    aggregate_id: &str,
    patience: Duration,
) -> anyhow::Result<()> {
    let Some(target) = crate::log::stream_head(pool, aggregate_type, aggregate_id).await? else {
        return Ok(());
    };
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let mut conn = pool.acquire().await?;
        if load_checkpoint(&mut conn, projector.name()).await? >= target {
            return Ok(());
        }
        drop(conn);
        catch_up_once(pool, projector, 500).await?;
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                projection = projector.name(),
                aggregate_id,
                "read model still behind the write"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}
