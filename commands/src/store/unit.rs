//! A unit of work over the event log: commands executed in it read the log as usual, but the
//! events they produce are kept in memory and later loads in the unit see them; then
//! [`UnitOfWork::append_in`] writes all of them with one statement inside the caller's
//! transaction, next to whatever else that transaction records. Many commands, one commit.
//!
//! Conflicts are caught twice: in memory (two commands of the unit on one stream, retried by
//! [`super::AggregateService`] like any conflict) and by the log's primary key when the unit is
//! appended (a writer outside the unit got there first: the caller's transaction fails and the
//! unit's commands must be run again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::reads::{StreamKey, StreamReads};

/// Commands' events held back for one commit. Cheap to clone: clones share the unit.
#[derive(Clone)]
pub struct UnitOfWork {
    inner: Arc<Inner>,
}

struct Inner {
    /// Reads what is already in the log.
    log: PostgresEventRepository,
    reads: StreamReads,
    pending: Mutex<Pending>,
    /// Events read with a stream's snapshot, kept for the load that asks for them next:
    /// by aggregate type and id, with the sequence they follow.
    loaded: Mutex<HashMap<StreamKey, (usize, Vec<SerializedEvent>)>>,
}

/// What the unit's commands appended so far.
#[derive(Default)]
struct Pending {
    /// In the order they were appended (the log's positions keep it).
    events: Vec<SerializedEvent>,
    /// The last sequence appended to each stream, by aggregate type and id.
    heads: HashMap<StreamKey, usize>,
    snapshots: HashMap<StreamKey, SnapshotUpdate>,
}

/// A snapshot to write with the unit (postgres-es's layout and rules).
struct SnapshotUpdate {
    payload: Value,
    current_snapshot: usize,
    last_sequence: usize,
}

/// Why appending a unit failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// A writer outside the unit appended to one of its streams first.
    #[error("a stream of the unit changed meanwhile")]
    Conflict,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl UnitOfWork {
    /// An empty unit reading the log through `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            inner: Arc::new(Inner {
                log: PostgresEventRepository::new(pool.clone()),
                reads: StreamReads::new(pool),
                pending: Mutex::default(),
                loaded: Mutex::default(),
            }),
        }
    }

    /// How many events the unit holds.
    pub fn len(&self) -> usize {
        self.pending().events.len()
    }

    /// How many statements the unit's loads took: loads made at about the same time share one.
    pub fn read_statements(&self) -> usize {
        self.inner.reads.statements()
    }

    /// Whether the unit holds no events.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn loaded(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<StreamKey, (usize, Vec<SerializedEvent>)>> {
        self.inner
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends the unit's events (one statement, in the order they were produced) and
    /// snapshots on `connection`, inside the caller's transaction. Returns how many events were
    /// appended; the unit is empty afterwards.
    pub async fn append_in(&self, connection: &mut PgConnection) -> Result<usize, AppendError> {
        let Pending {
            events, snapshots, ..
        } = std::mem::take(&mut *self.pending());
        if events.is_empty() {
            return Ok(0);
        }
        let count = events.len();
        let mut columns = EventColumns::default();
        for event in events {
            columns.push(event);
        }
        let appended = sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT t, i, s, e, v, p::json, m::json
             FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
                  WITH ORDINALITY AS u(t, i, s, e, v, p, m, n)
             ORDER BY n",
        )
        .bind(columns.aggregate_types)
        .bind(columns.aggregate_ids)
        .bind(columns.sequences)
        .bind(columns.event_types)
        .bind(columns.event_versions)
        .bind(columns.payloads)
        .bind(columns.metadata)
        .execute(&mut *connection)
        .await;
        match appended {
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                return Err(AppendError::Conflict)
            }
            other => other?,
        };
        for ((aggregate_type, aggregate_id), snapshot) in snapshots {
            write_snapshot(&mut *connection, &aggregate_type, &aggregate_id, snapshot).await?;
        }
        Ok(count)
    }
}

/// The unit's events as one array per column of the log.
#[derive(Default)]
struct EventColumns {
    aggregate_types: Vec<String>,
    aggregate_ids: Vec<String>,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    event_versions: Vec<String>,
    payloads: Vec<Value>,
    metadata: Vec<Value>,
}

impl EventColumns {
    fn push(&mut self, event: SerializedEvent) {
        self.aggregate_types.push(event.aggregate_type);
        self.aggregate_ids.push(event.aggregate_id);
        self.sequences.push(event.sequence as i64);
        self.event_types.push(event.event_type);
        self.event_versions.push(event.event_version);
        self.payloads.push(event.payload);
        self.metadata.push(event.metadata);
    }
}

/// Writes a snapshot as postgres-es does: the first is inserted, later ones replace the one
/// before them only if it is still the current one.
async fn write_snapshot(
    connection: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
    snapshot: SnapshotUpdate,
) -> Result<(), AppendError> {
    let sql = if snapshot.current_snapshot == 1 {
        "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
         VALUES ($1, $2, $3, $4, $5::json)"
    } else {
        "UPDATE snapshots SET last_sequence = $3, payload = $5::json, current_snapshot = $4
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND current_snapshot = $4 - 1"
    };
    let written = sqlx::query(sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(snapshot.last_sequence as i64)
        .bind(snapshot.current_snapshot as i64)
        .bind(&snapshot.payload)
        .execute(&mut *connection)
        .await;
    match written {
        Ok(done) if done.rows_affected() == 1 => Ok(()),
        Ok(_) => Err(AppendError::Conflict),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            Err(AppendError::Conflict)
        }
        Err(other) => Err(other.into()),
    }
}

impl PersistedEventRepository for UnitOfWork {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let logged = self.inner.log.get_events::<A>(aggregate_id).await?;
        self.with_pending::<A>(aggregate_id, 0, logged)
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let key = (A::TYPE.to_owned(), aggregate_id.to_owned());
        let loaded = self.loaded().remove(&key);
        let logged = match loaded {
            Some((after, events)) if after == last_sequence => events,
            _ => {
                self.inner
                    .log
                    .get_last_events::<A>(aggregate_id, last_sequence)
                    .await?
            }
        };
        self.with_pending::<A>(aggregate_id, last_sequence, logged)
    }

    /// The snapshot in the log, read with the events after it (which the next
    /// [`get_last_events`](Self::get_last_events) of the stream returns without another round
    /// trip), in one statement with the other loads the unit's commands make meanwhile
    /// ([`StreamReads`]). A snapshot written by this unit is not read back (the unit's events
    /// after the logged snapshot are, which yields the same aggregate).
    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let key = (A::TYPE.to_owned(), aggregate_id.to_owned());
        let read = self.inner.reads.read(key.clone()).await?;
        let after = read.snapshot.as_ref().map_or(0, |s| s.current_sequence);
        self.loaded().insert(key, (after, read.events));
        Ok(read.snapshot)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let key = (A::TYPE.to_owned(), first.aggregate_id.clone());
        let mut pending = self.pending();
        if let Some(head) = pending.heads.get(&key) {
            if first.sequence != head + 1 {
                return Err(PersistenceError::OptimisticLockError);
            }
        }
        pending.heads.insert(key.clone(), last.sequence);
        pending.events.extend(events.iter().cloned());
        if let Some((_, payload, current_snapshot)) = snapshot_update {
            let last_sequence = last.sequence;
            let update = pending.snapshots.entry(key).or_insert(SnapshotUpdate {
                payload: Value::Null,
                current_snapshot,
                last_sequence,
            });
            // Several snapshots of one stream in a unit: the first one's predecessor must
            // still be current when the last one is written.
            update.payload = payload;
            update.last_sequence = last_sequence;
        }
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.inner.log.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.log.stream_all_events::<A>().await
    }
}

impl UnitOfWork {
    /// `logged` (the log's events of a stream after `last_sequence`) followed by the unit's
    /// own. If the log has moved past what the unit appended to, the unit is stale: a conflict.
    fn with_pending<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
        mut logged: Vec<SerializedEvent>,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let pending = self.pending();
        let key = (A::TYPE.to_owned(), aggregate_id.to_owned());
        if !pending.heads.contains_key(&key) {
            return Ok(logged);
        }
        let mut own = pending
            .events
            .iter()
            .filter(|event| event.aggregate_type == A::TYPE && event.aggregate_id == aggregate_id)
            .filter(|event| event.sequence > last_sequence)
            .peekable();
        let logged_head = logged.last().map_or(last_sequence, |event| event.sequence);
        if let Some(first) = own.peek() {
            if first.sequence != logged_head + 1 {
                return Err(PersistenceError::OptimisticLockError);
            }
        }
        logged.extend(own.cloned());
        Ok(logged)
    }
}
