//! Stream reads of a [`super::UnitOfWork`], batched: loads that the unit's concurrent commands
//! ask for at about the same time are answered by one statement (each stream's snapshot and
//! the events after it), instead of two round trips per load.
//!
//! The first load to arrive leads: it lets the other ready commands run up to their own loads,
//! then reads every stream asked for so far and hands each its answer. A load whose leader
//! went away reads its stream alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use cqrs_es::persist::{PersistenceError, SerializedEvent, SerializedSnapshot};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::oneshot;

/// A stream of the log: its aggregate type and id.
pub(super) type StreamKey = (String, String);

/// What the log holds of one stream: its latest snapshot, and the events after it.
#[derive(Default)]
pub(super) struct StreamRead {
    pub(super) snapshot: Option<SerializedSnapshot>,
    pub(super) events: Vec<SerializedEvent>,
}

type Reply = oneshot::Sender<Result<StreamRead, String>>;

/// Batches the loads of one unit.
pub(super) struct StreamReads {
    pool: PgPool,
    queue: Mutex<Queue>,
    /// Statements made so far.
    statements: AtomicUsize,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<(StreamKey, Reply)>,
    /// A load is gathering the next batch.
    leading: bool,
}

impl StreamReads {
    pub(super) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queue: Mutex::default(),
            statements: AtomicUsize::new(0),
        }
    }

    /// How many statements the loads so far took.
    pub(super) fn statements(&self) -> usize {
        self.statements.load(Ordering::Relaxed)
    }

    async fn read_streams(
        &self,
        keys: &[&StreamKey],
    ) -> sqlx::Result<HashMap<StreamKey, StreamRead>> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        read_streams(&self.pool, keys).await
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The snapshot and the events after it of stream `key`.
    pub(super) async fn read(&self, key: StreamKey) -> Result<StreamRead, PersistenceError> {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut queue = self.queue();
            queue.waiting.push((key.clone(), reply));
            !std::mem::replace(&mut queue.leading, true)
        };
        if lead {
            let mut leader = Leader {
                reads: self,
                gathered: false,
            };
            // The unit's other commands that are ready run up to their loads meanwhile.
            tokio::task::yield_now().await;
            let batch = leader.gather();
            let keys: Vec<&StreamKey> = batch.iter().map(|(key, _)| key).collect();
            match self.read_streams(&keys).await {
                Ok(mut streams) => {
                    for (key, reply) in batch {
                        let _ = reply.send(Ok(streams.remove(&key).unwrap_or_default()));
                    }
                }
                Err(error) => {
                    for (_, reply) in batch {
                        let _ = reply.send(Err(error.to_string()));
                    }
                }
            }
        }
        match answer.await {
            Ok(Ok(read)) => Ok(read),
            Ok(Err(error)) => Err(PersistenceError::ConnectionError(error.into())),
            // The leader went away before reading: read alone.
            Err(_) => self
                .read_streams(&[&key])
                .await
                .map(|mut streams| streams.remove(&key).unwrap_or_default())
                .map_err(|error| PersistenceError::ConnectionError(Box::new(error))),
        }
    }
}

/// The load gathering a batch. Dropped before it gathered (its command was cancelled), it
/// lets the waiting loads go, to read alone.
struct Leader<'a> {
    reads: &'a StreamReads,
    gathered: bool,
}

impl Leader<'_> {
    fn gather(&mut self) -> Vec<(StreamKey, Reply)> {
        self.gathered = true;
        let mut queue = self.reads.queue();
        queue.leading = false;
        std::mem::take(&mut queue.waiting)
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.gathered {
            drop(self.gather());
        }
    }
}

/// A row of [`read_streams`]: a snapshot, or an event after it.
#[derive(sqlx::FromRow)]
struct StreamRow {
    aggregate_type: String,
    aggregate_id: String,
    is_snapshot: bool,
    sequence: i64,
    current_snapshot: Option<i64>,
    event_type: Option<String>,
    event_version: Option<String>,
    payload: Value,
    metadata: Option<Value>,
}

/// Each stream's latest snapshot and the events after it, in one statement.
async fn read_streams(
    pool: &PgPool,
    keys: &[&StreamKey],
) -> sqlx::Result<HashMap<StreamKey, StreamRead>> {
    let types: Vec<&str> = keys.iter().map(|(t, _)| t.as_str()).collect();
    let ids: Vec<&str> = keys.iter().map(|(_, i)| i.as_str()).collect();
    let rows: Vec<StreamRow> = sqlx::query_as(
        "WITH wanted AS (SELECT DISTINCT t, i FROM UNNEST($1::text[], $2::text[]) AS w(t, i)),
         snapshot AS (
             SELECT DISTINCT ON (s.aggregate_type, s.aggregate_id)
                    s.aggregate_type, s.aggregate_id, s.last_sequence, s.current_snapshot, s.payload
               FROM wanted w
               JOIN snapshots s ON s.aggregate_type = w.t AND s.aggregate_id = w.i
              ORDER BY s.aggregate_type, s.aggregate_id, s.last_sequence DESC)
         SELECT aggregate_type, aggregate_id, true AS is_snapshot, last_sequence AS sequence,
                current_snapshot, NULL::text AS event_type, NULL::text AS event_version, payload,
                NULL::json AS metadata
           FROM snapshot
         UNION ALL
         SELECT e.aggregate_type, e.aggregate_id, false, e.sequence, NULL, e.event_type,
                e.event_version, e.payload, e.metadata
           FROM wanted w
           JOIN events e ON e.aggregate_type = w.t AND e.aggregate_id = w.i
           LEFT JOIN snapshot s ON s.aggregate_type = w.t AND s.aggregate_id = w.i
          WHERE e.sequence > COALESCE(s.last_sequence, 0)
         ORDER BY 1, 2, 3 DESC, 4",
    )
    .bind(types)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut streams: HashMap<StreamKey, StreamRead> = HashMap::new();
    for row in rows {
        let key = (row.aggregate_type, row.aggregate_id);
        let stream = streams.entry(key.clone()).or_default();
        if row.is_snapshot {
            stream.snapshot = Some(SerializedSnapshot {
                aggregate_id: key.1,
                aggregate: row.payload,
                current_sequence: row.sequence as usize,
                current_snapshot: row.current_snapshot.unwrap_or_default() as usize,
            });
        } else {
            stream.events.push(SerializedEvent::new(
                key.1,
                row.sequence as usize,
                key.0,
                row.event_type.unwrap_or_default(),
                row.event_version.unwrap_or_default(),
                row.payload,
                row.metadata.unwrap_or_default(),
            ));
        }
    }
    Ok(streams)
}
