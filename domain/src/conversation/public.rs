//! The public event catalogue (contract §15) as produced by conversation events: what outgoing
//! webhooks, automation triggers and the realtime stream see.

use serde_json::{json, Value};
use uuid::Uuid;

use super::{ConversationEvent, TransferKind};

/// The public events of one stored conversation event: `(type, data)` pairs, in order.
pub fn public_events(
    conversation_id: Uuid,
    event: &ConversationEvent,
) -> Vec<(&'static str, Value)> {
    use ConversationEvent as E;
    let with_id = |mut data: Value| {
        if let Value::Object(map) = &mut data {
            map.insert("conversation_id".into(), json!(conversation_id));
        }
        data
    };
    match event {
        E::ConversationOpened {
            channel,
            integration_account_id,
            contact_id,
            division_id,
            opened_at,
            ..
        } => vec![(
            "conversation.created",
            with_id(
                json!({"channel": channel, "integration_account_id": integration_account_id, "contact_id": contact_id,
                           "division_id": division_id, "created_at": opened_at}),
            ),
        )],
        E::ConversationReopened { at } => {
            vec![(
                "conversation.status_changed",
                with_id(json!({"from": null, "to": "open", "reopened": true, "at": at})),
            )]
        }
        E::InboundMessageReceived {
            message_id,
            provider_message_id,
            content,
            sender_name,
            sent_at,
            received_at,
            ..
        } => vec![(
            "message.received",
            with_id(
                json!({"message_id": message_id, "external_id": provider_message_id, "type": content.message_type,
                           "content": content.content, "data": content.data, "sender_name": sender_name,
                           "sent_at": sent_at, "created_at": received_at}),
            ),
        )],
        E::OutboundMessageQueued {
            message_id,
            sender,
            message_type,
            content,
            media_url,
            template,
            message_tag,
            queued_at,
            ..
        } => vec![(
            "message.sent",
            with_id(
                json!({"message_id": message_id, "type": message_type, "content": content, "media_url": media_url,
                           "template": template, "sender_type": sender.sender_type, "sender_id": sender.id,
                           "message_tag": message_tag, "status": "pending", "created_at": queued_at}),
            ),
        )],
        E::OutboundMessageEchoed {
            message_id,
            provider_message_id,
            content,
            sent_at,
            ..
        } => vec![(
            "message.sent",
            with_id(
                json!({"message_id": message_id, "external_id": provider_message_id, "type": content.message_type,
                           "content": content.content, "media_url": content.media.as_ref().and_then(|m| m.url.clone()),
                           "data": content.data, "sender_type": "agent", "sender_id": null, "echo": true,
                           "status": "sent", "created_at": sent_at}),
            ),
        )],
        E::OutboundMessageSent {
            message_id,
            provider_message_id,
            at,
        } => vec![(
            "message.status_updated",
            with_id(
                json!({"message_id": message_id, "external_id": provider_message_id, "status": "sent", "at": at}),
            ),
        )],
        E::OutboundStatusChanged {
            message_id,
            provider_message_id,
            status,
            at,
            error_code,
            error_title,
        } => vec![(
            "message.status_updated",
            with_id(
                json!({"message_id": message_id, "external_id": provider_message_id, "status": status, "at": at,
                           "error_code": error_code, "error_title": error_title}),
            ),
        )],
        E::OutboundMessageFailed {
            message_id,
            error_code,
            reason,
            at,
        } => vec![(
            "message.status_updated",
            with_id(
                json!({"message_id": message_id, "status": "failed", "error_code": error_code, "error_title": reason, "at": at}),
            ),
        )],
        E::OutboundMessageRetried { message_id, at } => {
            vec![(
                "message.status_updated",
                with_id(json!({"message_id": message_id, "status": "pending", "at": at})),
            )]
        }
        E::AgentAssigned {
            from_agent_id,
            to_agent_id,
            at,
        } => {
            vec![(
                "conversation.assigned",
                with_id(
                    json!({"from_agent_id": from_agent_id, "to_agent_id": to_agent_id, "at": at}),
                ),
            )]
        }
        E::StatusChanged {
            from,
            to,
            resolved_at,
            at,
        } => vec![(
            "conversation.status_changed",
            with_id(json!({"from": from, "to": to, "resolved_at": resolved_at, "at": at})),
        )],
        E::TagsUpdated { tags, at } => vec![(
            "conversation.tags_updated",
            with_id(json!({"tags": tags, "at": at})),
        )],
        E::ConversationTransferred {
            transfer_id,
            kind,
            from_agent_id,
            to_agent_id,
            from_division_id,
            to_division_id,
            reason,
            transferred_by,
            at,
        } => {
            let mut events = Vec::new();
            if *kind == TransferKind::Transfer {
                events.push((
                    "conversation.transferred",
                    with_id(json!({"transfer_id": transfer_id, "from_agent_id": from_agent_id, "to_agent_id": to_agent_id,
                                   "from_division_id": from_division_id, "to_division_id": to_division_id, "reason": reason,
                                   "transferred_by": transferred_by, "at": at})),
                ));
            }
            events.push((
                "conversation.assigned",
                with_id(json!({"from_agent_id": from_agent_id, "to_agent_id": to_agent_id, "at": at,
                               "via": if *kind == TransferKind::Takeover { "takeover" } else { "transfer" }})),
            ));
            events
        }
        E::NoteAdded {
            note_id,
            agent_id,
            content,
            at,
        } => vec![(
            "note.created",
            with_id(
                json!({"note_id": note_id, "agent_id": agent_id, "content": content, "created_at": at}),
            ),
        )],
        // The catalogue (contract §15) has no note.updated or note.deleted.
        E::ConversationRead { .. }
        | E::OutboundStatusDeferred { .. }
        | E::EchoMatched { .. }
        | E::NoteEdited { .. }
        | E::NoteDeleted { .. } => vec![],
    }
}
