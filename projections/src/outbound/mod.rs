//! The outbound queue: one job per message waiting for its channel worker (`outbound_jobs`).
//!
//! A job is created in the same transaction as the projector's checkpoint, so every queued
//! message gets exactly one job; the sender removes it once the provider has answered.

use async_trait::async_trait;
use omnistream_domain::conversation::ConversationEvent;
use sqlx::PgConnection;

use crate::inbox::conversation_event;
use crate::{Projector, RecordedEvent};

/// Maintains `outbound_jobs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboundQueueProjector;

#[async_trait]
impl Projector for OutboundQueueProjector {
    fn name(&self) -> &'static str {
        "outbound_queue"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["outbound_jobs"]
    }

    /// Rebuilding would queue every historical message again.
    fn replayable(&self) -> bool {
        false
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        let Some((stream, parsed)) = conversation_event(event) else {
            return Ok(());
        };
        match parsed {
            ConversationEvent::OutboundMessageQueued { message_id, .. }
            | ConversationEvent::OutboundMessageRetried { message_id, .. } => {
                sqlx::query(
                    "INSERT INTO outbound_jobs (message_id, tenant_id, conversation_id) VALUES ($1, $2, $3)
                     ON CONFLICT (message_id) DO UPDATE SET attempts = 0, next_attempt_at = now(), last_error = NULL",
                )
                .bind(message_id)
                .bind(stream.tenant_id.as_uuid())
                .bind(stream.id)
                .execute(conn)
                .await?;
            }
            ConversationEvent::OutboundMessageSent { message_id, .. }
            | ConversationEvent::OutboundMessageFailed { message_id, .. } => {
                sqlx::query("DELETE FROM outbound_jobs WHERE message_id = $1")
                    .bind(message_id)
                    .execute(conn)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
