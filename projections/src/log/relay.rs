//! The NATS relay: publishes every event of the log to JetStream, in log order, exactly once in
//! effect.
//!
//! One relay is active per database (a PostgreSQL advisory lock held on its connection; other
//! instances stand by and take over when it goes away). It reads with the commit-safe cursor,
//! publishes a batch asynchronously (bounded in-flight acknowledgements), and advances its
//! checkpoint only once JetStream has acknowledged every message of the batch. Each message
//! carries `Nats-Msg-Id: <aggregate_type>:<aggregate_id>:<sequence>`, so a batch re-published
//! after a crash is deduplicated by the stream within its duplicate window. If NATS is down,
//! nothing is lost: the relay resumes from its checkpoint.

use omnistream_commands::infra::stages::{self, Stage};
use omnistream_commands::infra::wakeup::{self, Wakeups};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use omnistream_domain::StreamId;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::log::read_after;
use crate::runner::{load_checkpoint, store_checkpoint};

/// The relay's checkpoint name.
pub const RELAY_CHECKPOINT: &str = "nats_relay";
/// Messages published before waiting for their acknowledgements.
const BATCH: i64 = 256;

/// Publishes the event log to JetStream.
#[derive(Clone)]
pub struct NatsRelay {
    pool: PgPool,
    jetstream: jetstream::Context,
    prefix: String,
    replicas: usize,
    wakeups: Wakeups,
}

/// The JetStream stream name for a prefix: `<PREFIX>_EVENTS`.
pub fn stream_name(prefix: &str) -> String {
    format!("{}_EVENTS", prefix.to_uppercase())
}

/// The subject of one event: `<prefix>.events.<tenant>.<aggregate_type>.<event_type>`.
pub fn subject(prefix: &str, tenant: &str, aggregate_type: &str, event_type: &str) -> String {
    format!("{prefix}.events.{tenant}.{aggregate_type}.{event_type}")
}

impl NatsRelay {
    /// A relay over `pool` publishing through `client` under `prefix` (`NATS_PREFIX`).
    pub fn new(pool: PgPool, client: async_nats::Client, prefix: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !prefix.is_empty()
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "NATS_PREFIX may contain only letters, digits, `_` and `-`"
        );
        Ok(Self {
            pool,
            jetstream: jetstream::new(client),
            prefix: prefix.to_owned(),
            replicas: 1,
            wakeups: Wakeups::polling(),
        })
    }

    /// The relay, woken by `wakeups` when events arrive instead of only polling.
    pub fn woken_by(self, wakeups: Wakeups) -> Self {
        Self { wakeups, ..self }
    }

    /// The relay, keeping `replicas` copies of the stream on a NATS cluster
    /// (`NATS_STREAM_REPLICAS`).
    pub fn with_replicas(self, replicas: usize) -> Self {
        Self { replicas, ..self }
    }

    /// Creates the stream when it does not exist yet, and brings an existing one to the
    /// configured number of replicas.
    pub async fn ensure_stream(&self) -> anyhow::Result<()> {
        let config = stream::Config {
            name: stream_name(&self.prefix),
            subjects: vec![format!("{}.events.>", self.prefix)],
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            num_replicas: self.replicas,
            ..Default::default()
        };
        let mut existing = match self.jetstream.get_or_create_stream(config.clone()).await {
            Ok(existing) => existing,
            // Another instance may have created it at the same moment.
            Err(_) => self
                .jetstream
                .get_or_create_stream(config.clone())
                .await
                .map_err(|e| anyhow::anyhow!("creating the JetStream stream: {e}"))?,
        };
        let current = existing
            .info()
            .await
            .map_err(|e| anyhow::anyhow!("reading the JetStream stream: {e}"))?
            .config
            .clone();
        if current.num_replicas != self.replicas {
            self.jetstream
                .update_stream(stream::Config {
                    num_replicas: self.replicas,
                    ..current
                })
                .await
                .map_err(|e| anyhow::anyhow!("changing the stream's replicas: {e}"))?;
        }
        Ok(())
    }

    /// Runs until `shutdown`: stands by until it holds the relay lock, then publishes.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.lead(&shutdown).await {
                tracing::warn!(%error, "NATS relay paused; retrying");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Holds the lock on one connection and relays while it can.
    async fn lead(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let mut conn = self.pool.acquire().await?;
        let leader: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtextextended('omnistream:nats-relay', 0))",
        )
        .fetch_one(&mut *conn)
        .await?;
        if !leader {
            return Ok(());
        }
        let mut wakeup = self.wakeups.subscribe(wakeup::EVENTS);
        let outcome = async {
            self.ensure_stream().await?;
            loop {
                let published = self.relay_batch(&mut conn).await?;
                if published as i64 >= BATCH && !shutdown.is_cancelled() {
                    continue;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return anyhow::Ok(()),
                    _ = wakeup.wait(Duration::from_millis(50)) => {}
                }
            }
        }
        .await;
        let _ =
            sqlx::query("SELECT pg_advisory_unlock(hashtextextended('omnistream:nats-relay', 0))")
                .execute(&mut *conn)
                .await;
        outcome
    }

    /// Publishes the next batch and, once every message is acknowledged, advances the checkpoint.
    pub async fn relay_batch(&self, conn: &mut PgConnection) -> anyhow::Result<usize> {
        let from = load_checkpoint(conn, RELAY_CHECKPOINT).await?;
        let events = read_after(conn, from, BATCH).await?;
        let Some(last) = events.last() else {
            return Ok(0);
        };
        let mut acks = Vec::with_capacity(events.len());
        for event in &events {
            let tenant = event
                .aggregate_id
                .parse::<StreamId>()
                .map(|s| s.tenant_id.to_string())
                .unwrap_or_else(|_| "unknown".to_owned());
            let message_id = format!(
                "{}:{}:{}",
                event.aggregate_type, event.aggregate_id, event.sequence
            );
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", message_id.as_str());
            let body = json!({
                "id": message_id,
                "tenant_id": tenant,
                "aggregate_type": event.aggregate_type,
                "aggregate_id": event.aggregate_id,
                "sequence": event.sequence,
                "event_type": event.event_type,
                "event_version": event.event_version,
                "payload": event.payload,
                "metadata": event.metadata,
                "recorded_at": event.recorded_at,
            });
            let subject = subject(
                &self.prefix,
                &tenant,
                &event.aggregate_type,
                &event.event_type,
            );
            let ack = self
                .jetstream
                .publish_with_headers(subject, headers, serde_json::to_vec(&body)?.into())
                .await
                .map_err(|e| anyhow::anyhow!("publishing to JetStream: {e}"))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .map_err(|e| anyhow::anyhow!("JetStream did not acknowledge: {e}"))?;
        }
        store_checkpoint(conn, RELAY_CHECKPOINT, last.cursor(), events.len() as i64).await?;
        for event in &events {
            stages::record_since(Stage::Published, event.recorded_at);
        }
        metrics::counter!("omnistream_relay_events_published_total").increment(events.len() as u64);
        let lag = (chrono::Utc::now() - last.recorded_at)
            .num_milliseconds()
            .max(0) as f64
            / 1000.0;
        metrics::gauge!("omnistream_relay_lag_seconds").set(lag);
        Ok(events.len())
    }
}
