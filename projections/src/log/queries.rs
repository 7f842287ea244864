//! The event log's queries beside the tailing read ([`super::reader`]): one stream's page and
//! count, a stream as of a time, one event by id, a tenant's events from a cursor or within a
//! time range, and the committed head. Every other crate reads the log through these functions.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

use super::reader::{LogCursor, RecordedEvent};

/// The columns of [`RecordedEvent`].
const EVENT_COLUMNS: &str = "transaction_id::text::bigint AS transaction_id, global_position, \
     aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at";

/// Reads up to `limit` committed events of one tenant from `from` on (that event included, for
/// a reader that had sent only part of it), in log order. `tenant_prefix` is `"<tenant_id>:"`.
#[tracing::instrument(skip(pool), level = "debug", err)]
pub async fn read_tenant_from(
    pool: &PgPool,
    tenant_prefix: &str,
    from: LogCursor,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    sqlx::query_as::<_, RecordedEvent>(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e
         WHERE (e.transaction_id, e.global_position) >= ($1::bigint::text::xid8, $2)
           AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
           AND e.aggregate_id LIKE $3
         ORDER BY e.transaction_id, e.global_position
         LIMIT $4"
    ))
    .bind(from.transaction_id)
    .bind(from.position)
    .bind(format!("{tenant_prefix}%"))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Which of a tenant's events [`read_tenant_page`] reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct TenantRange {
    /// Only events after this one.
    pub after: Option<LogCursor>,
    /// Only events recorded at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events recorded before this time.
    pub until: Option<DateTime<Utc>>,
}

/// Reads the next `limit` committed events of one tenant within `range`, in log order: a caller
/// pages through a long range by passing the last event's cursor as the next `after`.
///
/// Call [`wait_for_open_writers`] once before the first page of a range that ends in the past: a
/// transaction still open then may hold events recorded inside the range, which the commit-order
/// guard leaves out until it commits.
#[tracing::instrument(skip(pool), level = "debug", err)]
pub async fn read_tenant_page(
    pool: &PgPool,
    tenant_prefix: &str,
    range: TenantRange,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    sqlx::query_as::<_, RecordedEvent>(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e
         WHERE e.aggregate_id LIKE $1
           AND ($2::bigint IS NULL OR (e.transaction_id, e.global_position) > ($2::bigint::text::xid8, $3))
           AND ($4::timestamptz IS NULL OR e.recorded_at >= $4)
           AND ($5::timestamptz IS NULL OR e.recorded_at < $5)
           AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY e.transaction_id, e.global_position
         LIMIT $6"
    ))
    .bind(format!("{tenant_prefix}%"))
    .bind(range.after.map(|cursor| cursor.transaction_id))
    .bind(range.after.map_or(0, |cursor| cursor.position))
    .bind(range.since)
    .bind(range.until)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Waits (at most `patience`) until every transaction running now has ended, so that events they
/// wrote are visible to the commit-order guard; whether they all ended.
pub async fn wait_for_open_writers(pool: &PgPool, patience: Duration) -> Result<bool, sqlx::Error> {
    // A transaction id of our own, taken now: every transaction running now has a lower one.
    // (A snapshot's `xmax` would not do: it is one past the highest *completed* id, and a writer
    // in progress may hold an id above it.)
    let horizon: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(pool)
        .await?;
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let oldest_running: i64 =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
                .fetch_one(pool)
                .await?;
        if oldest_running >= horizon {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stored event `sequence` of the stream `aggregate_type`/`aggregate_id`, if there is one: a
/// point lookup by the events table's primary key, for consumers that must trust only what the
/// store holds (the webhook dispatcher re-reads each event it is handed by NATS).
#[tracing::instrument(skip(pool), level = "debug", err)]
pub async fn find_event(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
) -> Result<Option<RecordedEvent>, sqlx::Error> {
    sqlx::query_as::<_, RecordedEvent>(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3"
    ))
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(sequence)
    .fetch_optional(pool)
    .await
}

/// Where the latest event of a stream sits in the log (`None` for an empty stream): what a
/// read model must have passed to show the stream's last write.
pub async fn stream_head(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<LogCursor>, sqlx::Error> {
    let head: Option<(i64, i64)> = sqlx::query_as(
        "SELECT transaction_id::text::bigint, global_position FROM events
         WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(pool)
    .await?;
    Ok(head.map(|(transaction_id, position)| LogCursor {
        transaction_id,
        position,
    }))
}

/// How many events the stream has.
pub async fn stream_len(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(pool)
    .await
}

/// One page of a stream's events, by sequence.
pub async fn stream_page(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    sqlx::query_as::<_, RecordedEvent>(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence LIMIT $3 OFFSET $4"
    ))
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// The payloads of a stream's events recorded up to `as_of`, by sequence: what folds into the
/// stream's state at that time.
pub async fn stream_payloads_as_of(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    as_of: DateTime<Utc>,
) -> Result<Vec<Value>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT payload FROM events
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND recorded_at <= $3 ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(as_of)
    .fetch_all(pool)
    .await
}

/// The cursor of the last event below every running transaction: anything that commits later
/// sorts after it, so a reader starting here misses nothing that commits from now on.
#[tracing::instrument(skip(pool), level = "debug", err)]
pub async fn committed_head(pool: &PgPool) -> Result<LogCursor, sqlx::Error> {
    let latest: Option<(i64, i64)> = sqlx::query_as(
        "SELECT transaction_id::text::bigint, global_position FROM events
         WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    Ok(
        latest.map_or(LogCursor::START, |(transaction_id, position)| LogCursor {
            transaction_id,
            position,
        }),
    )
}
