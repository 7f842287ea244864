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
