//! The activity-log rows of conversation actions (assign, status, tags, transfer, takeover,
//! notes, bulk actions), derived from the conversation's events and the metadata the command
//! stored with them (the acting agent, the request's IP and user agent). The row exists exactly
//! when the change does: there is no second write after the command commits, so a change can
//! never be answered with an error, or left without its row.
//!
//! `activity_logs` is shared with configuration entities, which write their rows in their own
//! transaction through `omnistream_commands::audit`; this projector only adds rows, each with an
//! id derived from its event, so applying an event twice leaves one row.

use async_trait::async_trait;
use omnistream_commands::audit::{self, metadata_keys, Activity};
use omnistream_domain::conversation::{ConversationEvent, TransferKind};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::inbox::conversation_event;
use crate::{Projector, RecordedEvent};

/// Namespace of the rows' deterministic ids.
const ROW_NAMESPACE: Uuid = Uuid::from_u128(0x6f6d_6e69_7374_7265_616d_0000_0000_00a1);

/// Writes the activity-log rows of conversation actions taken by agents.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActivityProjector;

#[async_trait]
impl Projector for ActivityProjector {
    fn name(&self) -> &'static str {
        "activity"
    }

    /// None of its own: it appends to the shared `activity_logs`.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// An audit trail is appended to, never rebuilt.
    fn replayable(&self) -> bool {
        false
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        let Some((stream, parsed)) = conversation_event(event) else {
            return Ok(());
        };
        let Some(actor) = audit::actor_from_metadata(stream.tenant_id, &event.metadata) else {
            return Ok(());
        };
        let action = event
            .metadata
            .get(metadata_keys::ACTIVITY_ACTION)
            .and_then(Value::as_str);
        let Some(row) = derive(stream.id, &parsed, action) else {
            return Ok(());
        };
        let id = Uuid::new_v5(
            &ROW_NAMESPACE,
            format!("{}:{}", event.aggregate_id, event.sequence).as_bytes(),
        );
        audit::record_once(
            conn,
            id,
            event.recorded_at,
            actor,
            Activity {
                action: &row.action,
                entity_type: row.entity_type,
                entity_id: Some(row.entity_id.to_string()),
                details: row.details,
            },
        )
        .await?;
        Ok(())
    }
}

/// The activity row an event implies.
#[derive(Debug, PartialEq)]
struct Row {
    action: String,
    entity_type: &'static str,
    entity_id: Uuid,
    details: Value,
}

/// The row of `event` on conversation `conversation`: the action it implies, or `action` when
/// the command named one (a bulk action records every event under the bulk action's name).
/// `None` for events that are not agents' actions (messages, reads, provider statuses).
fn derive(conversation: Uuid, event: &ConversationEvent, action: Option<&str>) -> Option<Row> {
    use ConversationEvent as E;
    let on_conversation = |implied: &str, details: Value| Row {
        action: action.unwrap_or(implied).to_owned(),
        entity_type: "conversation",
        entity_id: conversation,
        details,
    };
    let on_note = |implied: &str, note_id: Uuid| Row {
        action: action.unwrap_or(implied).to_owned(),
        entity_type: "note",
        entity_id: note_id,
        details: json!({"conversation_id": conversation}),
    };
    Some(match event {
        E::AgentAssigned {
            from_agent_id,
            to_agent_id,
            ..
        } => on_conversation(
            "conversation.assigned",
            json!({"from": from_agent_id, "to": to_agent_id}),
        ),
        E::StatusChanged { from, to, .. } => on_conversation(
            "conversation.status_changed",
            json!({"from": from.as_str(), "to": to.as_str()}),
        ),
        E::TagsUpdated { tags, .. } => {
            on_conversation("conversation.tags_updated", json!({"tags": tags}))
        }
        E::ConversationTransferred {
            kind: TransferKind::Takeover,
            to_agent_id,
            ..
        } => on_conversation("conversation.taken_over", json!({"agent_id": to_agent_id})),
        E::ConversationTransferred {
            kind: TransferKind::Transfer,
            to_agent_id,
            to_division_id,
            ..
        } => on_conversation(
            "conversation.transferred",
            json!({"to_agent_id": to_agent_id, "to_division_id": to_division_id}),
        ),
        E::NoteAdded { note_id, .. } => on_note("note.created", *note_id),
        E::NoteEdited { note_id, .. } => on_note("note.updated", *note_id),
        E::NoteDeleted { note_id, .. } => on_note("note.deleted", *note_id),
        E::ConversationRead { .. } if action.is_some() => on_conversation("", json!({})),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use omnistream_domain::conversation::ConversationStatus;

    use super::*;

    #[test]
    fn an_assignment_is_recorded_with_both_assignees() {
        let conversation = Uuid::new_v4();
        let to = Uuid::new_v4();
        let row = derive(
            conversation,
            &ConversationEvent::AgentAssigned {
                from_agent_id: None,
                to_agent_id: Some(to),
                at: Utc::now(),
            },
            None,
        )
        .unwrap();
        assert_eq!(row.action, "conversation.assigned");
        assert_eq!(row.entity_id, conversation);
        assert_eq!(row.details, json!({"from": null, "to": to}));
    }

    #[test]
    fn a_bulk_action_names_the_row_and_keeps_the_details() {
        let row = derive(
            Uuid::new_v4(),
            &ConversationEvent::StatusChanged {
                from: ConversationStatus::Open,
                to: ConversationStatus::Resolved,
                resolved_at: Some(Utc::now()),
                at: Utc::now(),
            },
            Some("conversation.bulk_update_status"),
        )
        .unwrap();
        assert_eq!(row.action, "conversation.bulk_update_status");
        assert_eq!(row.details, json!({"from": "open", "to": "resolved"}));
    }

    #[test]
    fn a_note_change_is_recorded_on_the_note() {
        let conversation = Uuid::new_v4();
        let note = Uuid::new_v4();
        let row = derive(
            conversation,
            &ConversationEvent::NoteDeleted {
                note_id: note,
                agent_id: Uuid::new_v4(),
                at: Utc::now(),
            },
            None,
        )
        .unwrap();
        assert_eq!(
            (row.action.as_str(), row.entity_type, row.entity_id),
            ("note.deleted", "note", note)
        );
        assert_eq!(row.details, json!({"conversation_id": conversation}));
    }

    #[test]
    fn reads_and_messages_are_not_actions_unless_a_bulk_action_names_them() {
        let read = ConversationEvent::ConversationRead { at: Utc::now() };
        assert_eq!(derive(Uuid::new_v4(), &read, None), None);
        let row = derive(Uuid::new_v4(), &read, Some("conversation.bulk_mark_read")).unwrap();
        assert_eq!(row.action, "conversation.bulk_mark_read");
    }
}
