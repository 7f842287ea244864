//! Rebuilds a projector's read model from the start of the log, into shadow tables, then swaps.
//!
//! The live tables keep serving reads while the shadow copies are filled. The swap runs in one
//! transaction that holds the projector's lock (the live loop waits), applies whatever arrived
//! meanwhile, replaces the live tables and stores the shadow's cursor as the checkpoint.

use sqlx::{Connection, PgConnection, PgPool};

use crate::log::{read_after_with, LogCursor};
use crate::runner::{lock_projection, store_checkpoint};
use crate::Projector;

/// Events applied per transaction while filling the shadow tables.
const REPLAY_BATCH: i64 = 10_000;

/// Rebuilds `projector`'s tables from the whole log; returns how many events were applied.
#[tracing::instrument(skip_all, fields(projection = projector.name()), err)]
pub async fn replay(pool: &PgPool, projector: &dyn Projector) -> anyhow::Result<u64> {
    let name = projector.name();
    anyhow::ensure!(
        projector.replayable(),
        "projection `{name}` triggers side effects and cannot be replayed"
    );
    anyhow::ensure!(
        name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "projection names must be lower-case identifiers"
    );
    let shadow = format!("replay_{name}");
    let mut conn = pool.acquire().await?;
    prepare_shadow(&mut conn, &shadow, projector.tables()).await?;
    sqlx::query(&format!("SET search_path TO {shadow}, public"))
        .execute(&mut *conn)
        .await?;

    let result = fill_and_swap(&mut conn, projector, &shadow).await;
    let reset = sqlx::query("RESET search_path").execute(&mut *conn).await;
    if result.is_err() || reset.is_err() {
        // A connection with a stray search_path must never go back to the pool.
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {shadow} CASCADE"))
            .execute(&mut *conn)
            .await;
        conn.detach();
    }
    result
}

async fn prepare_shadow(
    conn: &mut PgConnection,
    shadow: &str,
    tables: &[&str],
) -> anyhow::Result<()> {
    let mut tx = conn.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {shadow} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {shadow}"))
        .execute(&mut *tx)
        .await?;
    for table in tables {
        sqlx::query(&format!(
            "CREATE TABLE {shadow}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn fill_and_swap(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    shadow: &str,
) -> anyhow::Result<u64> {
    let mut cursor = LogCursor::START;
    let mut applied: u64 = 0;
    loop {
        let mut tx = conn.begin().await?;
        let events =
            read_after_with(&mut tx, cursor, REPLAY_BATCH, projector.reads_bodies()).await?;
        projector.apply_batch(&mut tx, &events).await?;
        tx.commit().await?;
        let Some(last) = events.last() else { break };
        cursor = last.cursor();
        applied += events.len() as u64;
        if (events.len() as i64) < REPLAY_BATCH {
            break;
        }
    }

    let mut tx = conn.begin().await?;
    lock_projection(&mut tx, projector.name(), true).await?;
    // Reads before writes in this transaction, so the reader sees every committed event.
    let mut late = Vec::new();
    loop {
        let batch = read_after_with(
            &mut tx,
            late.last()
                .map_or(cursor, |e: &crate::RecordedEvent| e.cursor()),
            REPLAY_BATCH,
            projector.reads_bodies(),
        )
        .await?;
        let done = (batch.len() as i64) < REPLAY_BATCH;
        late.extend(batch);
        if done {
            break;
        }
    }
    projector.apply_batch(&mut tx, &late).await?;
    if let Some(last) = late.last() {
        cursor = last.cursor();
        applied += late.len() as u64;
    }
    for table in projector.tables() {
        sqlx::query(&format!("DROP TABLE public.{table}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {shadow}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&format!("DROP SCHEMA {shadow}"))
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM projection_checkpoints WHERE projection = $1")
        .bind(projector.name())
        .execute(&mut *tx)
        .await?;
    store_checkpoint(&mut tx, projector.name(), cursor, applied as i64).await?;
    tx.commit().await?;
    Ok(applied)
}
