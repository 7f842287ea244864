//! The public event catalogue (contract §15): what outgoing webhooks, automation triggers and
//! the realtime stream can carry.

/// One public event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicEventType {
    /// e.g. `message.received`.
    pub name: &'static str,
    /// When it is emitted.
    pub description: &'static str,
}

/// Every public event type, in the contract's order (without `webhook.test`).
pub const PUBLIC_EVENT_TYPES: &[PublicEventType] = &[
    PublicEventType {
        name: "conversation.created",
        description: "A new conversation is created",
    },
    PublicEventType {
        name: "conversation.assigned",
        description: "The assignee changes (assign, unassign, transfer, takeover, auto-assign)",
    },
    PublicEventType {
        name: "conversation.status_changed",
        description: "The status changes, including expiry",
    },
    PublicEventType {
        name: "conversation.tags_updated",
        description: "The tags change",
    },
    PublicEventType {
        name: "conversation.transferred",
        description: "A transfer is recorded",
    },
    PublicEventType {
        name: "message.received",
        description: "An inbound message is stored",
    },
    PublicEventType {
        name: "message.sent",
        description:
            "An outbound message is sent by an agent, AI, automation, schedule or campaign",
    },
    PublicEventType {
        name: "message.status_updated",
        description: "A delivery status changes (sent, delivered, read or failed)",
    },
    PublicEventType {
        name: "contact.created",
        description: "A contact is created (usually by an inbound message)",
    },
    PublicEventType {
        name: "contact.updated",
        description: "A contact is updated",
    },
    PublicEventType {
        name: "note.created",
        description: "An internal note is added",
    },
    PublicEventType {
        name: "csat.submitted",
        description: "A CSAT rating is submitted",
    },
    PublicEventType {
        name: "sla.breached",
        description: "An SLA breach is logged",
    },
    PublicEventType {
        name: "campaign.completed",
        description: "A campaign ends as completed or failed",
    },
];

/// The test event type of `POST /api/outgoing-webhooks/{id}/test`.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// Whether `name` is a catalogue event type.
pub fn is_public_event_type(name: &str) -> bool {
    PUBLIC_EVENT_TYPES.iter().any(|t| t.name == name)
}

/// An example `data` object of `name`, produced by the real domain events (`None` for types no
/// aggregate emits yet).
pub fn example(name: &str) -> Option<serde_json::Value> {
    use chrono::TimeZone;
    use uuid::Uuid;

    use crate::contact::{self, ContactChanges, ContactEvent};
    use crate::conversation::{self, ConversationEvent, ConversationStatus, Sender, TransferKind};
    use crate::kernel::channel::Channel;
    use crate::kernel::message::{InboundContent, MessageStatus, MessageType};

    let at = chrono::Utc
        .with_ymd_and_hms(2026, 1, 15, 9, 30, 0)
        .single()?;
    let (conversation, contact_id, agent) = (
        Uuid::from_u128(0xc0),
        Uuid::from_u128(0xc1),
        Uuid::from_u128(0xa1),
    );
    let conversation_events = [
        ConversationEvent::ConversationOpened {
            conversation_id: conversation,
            tenant_id: Uuid::from_u128(0x01),
            channel: Channel::Whatsapp,
            integration_account_id: Uuid::from_u128(0x1a),
            contact_id,
            division_id: None,
            opened_at: at,
        },
        ConversationEvent::InboundMessageReceived {
            message_id: Uuid::from_u128(0xe1),
            provider_message_id: Some("wamid.HBgLNjI4MTIzNDU2Nzg5MBUCABIYIDNFQjA".into()),
            content: InboundContent {
                message_type: MessageType::Text,
                content: Some("Halo, pesanan saya belum sampai".into()),
                media: None,
                reply_to_provider_id: None,
                data: None,
            },
            sender_name: Some("Sari".into()),
            sent_at: at,
            received_at: at,
            raw: serde_json::Value::Null,
        },
        ConversationEvent::OutboundMessageQueued {
            message_id: Uuid::from_u128(0xe2),
            sender: Sender {
                sender_type: "agent".into(),
                id: Some(agent),
                name: Some("Budi".into()),
            },
            message_type: MessageType::Text,
            content: Some("Kami cek dulu ya".into()),
            media_url: None,
            filename: None,
            template: None,
            reply_to_message_id: None,
            subject: None,
            message_tag: None,
            queued_at: at,
        },
        ConversationEvent::OutboundStatusChanged {
            message_id: Uuid::from_u128(0xe2),
            provider_message_id: "wamid.HBgLNjI4MTIzNDU2Nzg5MBUCABEYEjQ".into(),
            status: MessageStatus::Delivered,
            at,
            error_code: None,
            error_title: None,
        },
        ConversationEvent::StatusChanged {
            from: ConversationStatus::Open,
            to: ConversationStatus::Resolved,
            resolved_at: Some(at),
            at,
        },
        ConversationEvent::NoteAdded {
            note_id: Uuid::from_u128(0x40),
            agent_id: agent,
            content: "Customer prefers a call back".into(),
            at,
        },
        ConversationEvent::TagsUpdated {
            tags: vec!["vip".into()],
            at,
        },
        ConversationEvent::ConversationTransferred {
            transfer_id: Uuid::from_u128(0x7f),
            kind: TransferKind::Transfer,
            from_agent_id: Some(agent),
            to_agent_id: Some(Uuid::from_u128(0xa2)),
            from_division_id: None,
            to_division_id: None,
            reason: Some("billing question".into()),
            transferred_by: agent,
            at,
        },
    ];
    let contact_events = [
        ContactEvent::ContactCreated {
            tenant_id: Uuid::from_u128(0x01),
            channel: Channel::Whatsapp,
            external_id: "6281234567890".into(),
            name: "Sari".into(),
            phone_number: Some("6281234567890".into()),
            at,
        },
        ContactEvent::ContactUpdated {
            changes: ContactChanges {
                name: Some("Ibu Sari".into()),
                ..Default::default()
            },
            at,
        },
    ];
    conversation_events
        .iter()
        .flat_map(|event| conversation::public_events(conversation, event))
        .chain(
            contact_events
                .iter()
                .flat_map(|event| contact::public_events(contact_id, event)),
        )
        .find(|(event_type, _)| *event_type == name)
        .map(|(_, data)| data)
}

/// The public events (type, data) a stored event carries, by its aggregate type: the one
/// registry the outgoing-webhook dispatcher and the realtime stream both read. A new aggregate
/// with public events adds one arm here. Unknown aggregate types, stream ids and payloads carry
/// none.
pub fn public_events(
    aggregate_type: &str,
    aggregate_id: &str,
    payload: &serde_json::Value,
) -> Vec<(&'static str, serde_json::Value)> {
    use serde::Deserialize;

    let Ok(stream) = aggregate_id.parse::<crate::StreamId>() else {
        return Vec::new();
    };
    match aggregate_type {
        crate::conversation::AGGREGATE_TYPE => {
            crate::conversation::ConversationEvent::deserialize(payload)
                .map(|event| crate::conversation::public_events(stream.id, &event))
                .unwrap_or_default()
        }
        crate::contact::AGGREGATE_TYPE => crate::contact::ContactEvent::deserialize(payload)
            .map(|event| crate::contact::public_events(stream.id, &event))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_reads_each_aggregates_events_and_nothing_else() {
        let stream = format!("{}:{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let note = serde_json::json!({"NoteAdded": {"note_id": uuid::Uuid::new_v4(), "agent_id": uuid::Uuid::new_v4(),
                                                    "content": "hi", "at": "2026-01-01T00:00:00Z"}});
        let public = public_events(crate::conversation::AGGREGATE_TYPE, &stream, &note);
        assert_eq!(
            public.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            ["note.created"],
            "{public:?}"
        );
        assert!(public_events("Campaign", &stream, &note).is_empty());
        assert!(
            public_events(crate::conversation::AGGREGATE_TYPE, "not-a-stream", &note).is_empty()
        );
        assert!(public_events(
            crate::contact::AGGREGATE_TYPE,
            &stream,
            &serde_json::json!({"x": 1})
        )
        .is_empty());
    }

    #[test]
    fn emitted_types_have_examples_from_real_events() {
        for name in [
            "conversation.created",
            "conversation.assigned",
            "conversation.status_changed",
            "conversation.tags_updated",
            "conversation.transferred",
            "message.received",
            "message.sent",
            "message.status_updated",
            "contact.created",
            "contact.updated",
            "note.created",
        ] {
            assert!(example(name).is_some(), "{name}");
            assert!(is_public_event_type(name));
        }
        assert!(example("csat.submitted").is_none());
    }
}
