//! Group commit for acknowledged webhooks: concurrent receivers hand their payloads to one
//! intake, which writes whatever has gathered as one multi-row `INSERT` (one statement, one
//! commit, one WAL flush) and answers each request only after the commit that holds its row.
//!
//! A few batches are written at once ([`WRITERS`]); while they are, new payloads gather for the
//! next, so batches grow with the load and a lone webhook still goes out at once. The intake
//! writes through its own small pool, so acknowledgements never wait behind the workers or the
//! API for a connection.

use std::time::Duration;

use omnistream_commands::infra::wakeup::{self, Announcer};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Batches written at once (and connections of the intake's pool).
pub const WRITERS: usize = 4;
/// Most payloads in one `INSERT`.
const MAX_BATCH: usize = 512;
/// Payloads waiting for a batch before receivers wait to hand theirs over.
const QUEUE: usize = 4096;

/// One payload to store in `inbound_webhooks`.
#[derive(Debug, Clone)]
pub struct InboundPayload {
    pub provider: String,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    /// Who the payload is about ([`crate::channels::ordering_key_of`]).
    pub ordering_key: String,
}

/// Why a payload was not stored; the receiver answers 503 and the provider retries.
#[derive(Debug, thiserror::Error)]
#[error("the payload could not be stored: {0}")]
pub struct NotStored(String);

struct Pending {
    payload: InboundPayload,
    stored: oneshot::Sender<Result<(), NotStored>>,
}

/// The handle receivers store through; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    queue: mpsc::Sender<Pending>,
}

impl Intake {
    /// Starts the intake writing through `pool`. Call within a Tokio runtime.
    pub fn start(pool: PgPool) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        let announcer = Announcer::start(pool.clone());
        tokio::spawn(gather(pool, pending, announcer));
        Self { queue }
    }

    /// Starts the intake on a pool of its own: [`WRITERS`] connections (and one to announce
    /// stored batches) made like `shared`'s, without sqlx's ping before each use (a connection
    /// broken since is retried once instead).
    pub fn with_own_pool(shared: &PgPool) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(WRITERS as u32 + 1)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false)
            .connect_lazy_with((*shared.connect_options()).clone());
        Self::start(pool)
    }

    /// Stores `payload`; returns once the commit holding it has succeeded.
    pub async fn store(&self, payload: InboundPayload) -> Result<(), NotStored> {
        let (stored, outcome) = oneshot::channel();
        self.queue
            .send(Pending { payload, stored })
            .await
            .map_err(|_| NotStored("the intake has stopped".into()))?;
        outcome
            .await
            .map_err(|_| NotStored("the intake has stopped".into()))?
    }
}

/// Gathers pending payloads into batches and writes up to [`WRITERS`] of them at once.
async fn gather(pool: PgPool, mut pending: mpsc::Receiver<Pending>, announcer: Announcer) {
    let writers = std::sync::Arc::new(Semaphore::new(WRITERS));
    while let Some(first) = pending.recv().await {
        // Wait for a writer first: the payloads that arrive meanwhile join this batch.
        let Ok(writer) = writers.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (pool, announcer) = (pool.clone(), announcer.clone());
        tokio::spawn(async move {
            let outcome = write(&pool, &batch).await;
            if outcome.is_ok() {
                // Processors of every process wake once per batch, after its commit.
                announcer.announce(wakeup::INBOUND);
            }
            metrics::histogram!("omnistream_ingest_batch_size").record(batch.len() as f64);
            for pending in batch {
                let _ = pending.stored.send(
                    outcome
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| NotStored(e.to_string())),
                );
            }
            drop(writer);
        });
    }
}

/// Inserts `batch` in one statement, retrying once when the connection turned out broken
/// (a second row of a payload whose first commit was lost is harmless: processing is
/// idempotent per provider message id).
async fn write(pool: &PgPool, batch: &[Pending]) -> Result<(), sqlx::Error> {
    match insert(pool, batch).await {
        Err(sqlx::Error::Io(error)) => {
            tracing::warn!(%error, "an intake connection was broken; writing the batch again");
            insert(pool, batch).await
        }
        outcome => outcome,
    }
}

async fn insert(pool: &PgPool, batch: &[Pending]) -> Result<(), sqlx::Error> {
    let mut providers = Vec::with_capacity(batch.len());
    let mut bodies = Vec::with_capacity(batch.len());
    let mut content_types = Vec::with_capacity(batch.len());
    let mut ordering_keys = Vec::with_capacity(batch.len());
    for pending in batch {
        let payload = &pending.payload;
        providers.push(payload.provider.as_str());
        bodies.push(payload.body.as_slice());
        content_types.push(payload.content_type.as_deref());
        ordering_keys.push(payload.ordering_key.as_str());
    }
    sqlx::query(
        "INSERT INTO inbound_webhooks (provider, body, content_type, ordering_key)
         SELECT provider, body, content_type, ordering_key
           FROM UNNEST($1::text[], $2::bytea[], $3::text[], $4::text[])
                WITH ORDINALITY AS p(provider, body, content_type, ordering_key, n)
          ORDER BY n",
    )
    .bind(providers)
    .bind(bodies)
    .bind(content_types)
    .bind(ordering_keys)
    .execute(pool)
    .await?;
    Ok(())
}
