//! One reader of the event log per process, fanning committed events out to every open
//! realtime stream, and the per-agent cap on open streams.
//!
//! A stream subscribes first, then catches up from the database on its own until a read comes
//! back empty, then takes the hub's batches (skipping what it already sent). Nothing is missed:
//! the hub tails without pause from its start, with the same commit-order guard, so an event that
//! became visible after the stream's last empty read is published after the subscription. A
//! stream that falls behind the hub's buffer catches up from the database again.

use omnistream_commands::infra::wakeup::Wakeup;
use std::sync::Arc;
use std::time::Duration;

use omnistream_domain::AgentId;
use omnistream_projections::{LogCursor, RecordedEvent};
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::http::slots::{CountedSlots, Slot};

/// Batches the hub keeps for slow streams before they must catch up from the database.
const BUFFERED_BATCHES: usize = 256;
/// Events the hub reads per query.
const BATCH: i64 = 500;

/// Committed events, in log order, as the hub read them.
pub type Batch = Arc<[RecordedEvent]>;

/// The process's shared log reader and its open streams.
#[derive(Clone)]
pub struct StreamHub {
    sender: broadcast::Sender<Batch>,
    open: CountedSlots<AgentId>,
}

impl Default for StreamHub {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BUFFERED_BATCHES).0,
            open: CountedSlots::default(),
        }
    }
}

/// One open stream of an agent; the count drops when the stream is dropped.
pub type StreamSlot = Slot<AgentId>;

impl StreamHub {
    /// Counts a new stream of `agent`, unless it already has `cap` open.
    pub fn open_slot(&self, agent: AgentId, cap: usize) -> Option<StreamSlot> {
        self.open.try_take(agent, cap)
    }

    /// A receiver of every batch the hub publishes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Batch> {
        self.sender.subscribe()
    }

    /// Tails the log until `stop`. It reads on whether or not a stream listens: a hub that
    /// paused and restarted at the head could skip what committed between a stream's last
    /// catch-up read and its own restart.
    /// Events appended by this process wake it at once (`wakeup`); it polls every 100 ms
    /// besides.
    pub async fn run(self, pool: PgPool, mut wakeup: Wakeup, stop: CancellationToken) {
        let mut cursor: Option<LogCursor> = None;
        loop {
            let pause = match self.publish_next(&pool, &mut cursor).await {
                Ok(true) => Duration::ZERO,
                Ok(false) => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = wakeup.wait(Duration::from_millis(100)) => {}
                    }
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "the realtime hub could not read the log");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Publishes the next batch after `cursor` (starting at the log's committed head); whether
    /// a full batch was read, so more may follow at once.
    async fn publish_next(
        &self,
        pool: &PgPool,
        cursor: &mut Option<LogCursor>,
    ) -> Result<bool, sqlx::Error> {
        let after = match *cursor {
            Some(after) => after,
            None => {
                let head = omnistream_projections::log::committed_head(pool).await?;
                *cursor = Some(head);
                head
            }
        };
        let mut conn = pool.acquire().await?;
        let events = omnistream_projections::log::read_after(&mut conn, after, BATCH).await?;
        drop(conn);
        let Some(last) = events.last() else {
            return Ok(false);
        };
        *cursor = Some(last.cursor());
        let full = events.len() as i64 == BATCH;
        let _ = self.sender.send(events.into());
        Ok(full)
    }
}
