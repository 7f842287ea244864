//! Internal notes (`notes`), built from the conversation aggregate's note events: the table is
//! this projector's alone, so a note's history (added, edited, deleted) is in the conversation's
//! event stream and `omnistream replay notes` rebuilds the table from it. Its reads are in
//! [`queries`].

pub mod queries;

use async_trait::async_trait;
use omnistream_domain::conversation::ConversationEvent;
use sqlx::PgConnection;

use crate::inbox::conversation_event;
use crate::{Projector, RecordedEvent};

/// Maintains `notes`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotesProjector;

#[async_trait]
impl Projector for NotesProjector {
    fn name(&self) -> &'static str {
        "notes"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["notes"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        let Some((stream, parsed)) = conversation_event(event) else {
            return Ok(());
        };
        let tenant = stream.tenant_id.as_uuid();
        match parsed {
            ConversationEvent::NoteAdded {
                note_id,
                agent_id,
                content,
                at,
            } => {
                sqlx::query(
                    "INSERT INTO notes (id, tenant_id, conversation_id, agent_id, content, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING",
                )
                .bind(note_id)
                .bind(tenant)
                .bind(stream.id)
                .bind(agent_id)
                .bind(content)
                .bind(at)
                .execute(conn)
                .await?;
            }
            ConversationEvent::NoteEdited {
                note_id,
                content,
                at,
                ..
            } => {
                sqlx::query(
                    "UPDATE notes SET content = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant)
                .bind(note_id)
                .bind(content)
                .bind(at)
                .execute(conn)
                .await?;
            }
            ConversationEvent::NoteDeleted { note_id, .. } => {
                sqlx::query("DELETE FROM notes WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(note_id)
                    .execute(conn)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
