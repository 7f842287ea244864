//! The projector trait: how one read model reacts to events.

use async_trait::async_trait;
use sqlx::PgConnection;

use crate::RecordedEvent;

/// Builds one read model from the event log.
///
/// `apply` runs inside the transaction that also advances the projector's checkpoint. Its SQL must
/// name the projector's tables unqualified (no `public.`), so that replay can rebuild them in a
/// shadow schema placed first on the `search_path`.
#[async_trait]
pub trait Projector: Send + Sync + 'static {
    /// Stable name: the checkpoint key and the argument of `omnistream replay`.
    fn name(&self) -> &'static str;

    /// The tables this projector owns and replay rebuilds. Nothing else may write them.
    fn tables(&self) -> &'static [&'static str];

    /// Whether `omnistream replay` may rebuild it (false for projectors that trigger side effects).
    fn replayable(&self) -> bool {
        true
    }

    /// Whether it reads events' `payload` and `metadata`. A projector that uses only the
    /// envelope (stream, type, time) says false, and is handed events whose bodies are `null`.
    fn reads_bodies(&self) -> bool {
        true
    }

    /// Applies one event. Errors abort the batch; it is retried from the last checkpoint.
    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()>;

    /// Applies a batch of consecutive events, in log order. Override it to write a whole batch
    /// in a few statements (replay and catch-up speed); the default applies one at a time.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()> {
        for event in events {
            self.apply(conn, event).await?;
        }
        Ok(())
    }
}
