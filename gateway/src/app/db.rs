//! Database connection and the embedded migrations.

use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// The migrations of `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Opens a pool, retrying for up to `patience` while the server is starting.
pub async fn connect(
    url: &str,
    max_connections: u32,
    patience: Duration,
) -> anyhow::Result<PgPool> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let attempt = pool_options(max_connections).connect(url).await;
        match attempt {
            Ok(pool) => return Ok(pool),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%error, "database not ready yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => return Err(error).context("cannot connect to PostgreSQL (DATABASE_URL)"),
        }
    }
}

/// Connections idle longer than this are checked with a round trip before they are handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Pool options: sqlx pings every connection on checkout by default, a round trip per use
/// (it pings again on release, which cannot be turned off). Only a connection that sat idle
/// for a while (and may have been cut, e.g. by a server restart) is pinged; one in steady use
/// has just passed its release ping.
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_AFTER_IDLE {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("applying database migrations")
}
