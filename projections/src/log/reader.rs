//! The event-log reader: commit-order-safe iteration over the `events` table.
//!
//! An identity value (`global_position`) is taken when a row is inserted but becomes visible only
//! when its transaction commits, so a lower position can appear after a higher one has been read.
//! The reader therefore orders by `(transaction_id, global_position)` and only returns events of
//! transactions older than the oldest transaction still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`). A transaction that is still open stalls the reader
//! at its position; it can never be skipped, whether it later commits or rolls back.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

/// A position in the event log. `LogCursor::START` is before the first event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LogCursor {
    /// The `xid8` of the transaction that appended the event.
    pub transaction_id: i64,
    /// The event's `global_position`.
    pub position: i64,
}

impl LogCursor {
    /// Before the first event.
    pub const START: LogCursor = LogCursor {
        transaction_id: 0,
        position: 0,
    };
}

/// One event as stored, with its place in the log.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RecordedEvent {
    /// Transaction id of the appending transaction (`xid8`, as a number).
    pub transaction_id: i64,
    /// Identity value taken at insert.
    pub global_position: i64,
    /// Aggregate type, e.g. `Conversation`.
    pub aggregate_type: String,
    /// `"<tenant_id>:<uuid>"`.
    pub aggregate_id: String,
    /// Position of the event within its stream.
    pub sequence: i64,
    /// Event type name.
    pub event_type: String,
    /// Event schema version.
    pub event_version: String,
    /// The event body.
    pub payload: Value,
    /// Tenant, actor, request and causation metadata.
    pub metadata: Value,
    /// When the event row was written.
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The cursor just after this event.
    pub fn cursor(&self) -> LogCursor {
        LogCursor {
            transaction_id: self.transaction_id,
            position: self.global_position,
        }
    }
}

/// Reads up to `limit` committed events after `after`, in log order.
///
/// Run it before the calling transaction writes anything: a transaction that holds an xid is
/// itself "still running", which holds back (never skips) events of later transactions.
pub async fn read_after(
    conn: &mut PgConnection,
    after: LogCursor,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    read_after_with(conn, after, limit, true).await
}

/// [`read_after`], leaving each event's `payload` and `metadata` out (as `null`) unless
/// `with_bodies`: a reader that needs only the envelope (stream, type, time) then neither
/// transfers nor decodes the JSON, most of the cost of reading the log.
#[tracing::instrument(skip(conn), level = "debug", err)]
pub async fn read_after_with(
    conn: &mut PgConnection,
    after: LogCursor,
    limit: i64,
    with_bodies: bool,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let bodies = if with_bodies {
        "payload, metadata"
    } else {
        "'null'::jsonb AS payload, 'null'::jsonb AS metadata"
    };
    sqlx::query_as::<_, RecordedEvent>(&format!(
        r#"
        SELECT transaction_id::text::bigint AS transaction_id, global_position, aggregate_type,
               aggregate_id, sequence, event_type, event_version, {bodies}, recorded_at
        FROM events e
        WHERE (e.transaction_id, e.global_position) > ($1::bigint::text::xid8, $2)
          AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        -- Qualified: the bare names would sort by the output aliases, bypassing the index.
        ORDER BY e.transaction_id, e.global_position
        LIMIT $3
        "#
    ))
    .bind(after.transaction_id)
    .bind(after.position)
    .bind(limit)
    .fetch_all(conn)
    .await
}
