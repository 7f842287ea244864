//! Events of the Conversation aggregate. They are facts: renamed or reshaped only through a new
//! `event_version` and an upcaster.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::commands::Sender;
use super::ConversationStatus;
use crate::kernel::channel::Channel;
use crate::kernel::message::{
    InboundContent, MessageStatus, MessageTag, MessageType, ProviderStatus,
};

/// A transfer or a takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    Transfer,
    Takeover,
}

/// Everything that can happen to a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConversationEvent {
    /// The first contact on (contact, integration account).
    ConversationOpened {
        conversation_id: Uuid,
        tenant_id: Uuid,
        channel: Channel,
        integration_account_id: Uuid,
        contact_id: Uuid,
        division_id: Option<Uuid>,
        opened_at: DateTime<Utc>,
    },
    /// A finished conversation was opened again by a new inbound message.
    ConversationReopened { at: DateTime<Utc> },
    /// The customer wrote.
    InboundMessageReceived {
        message_id: Uuid,
        provider_message_id: Option<String>,
        content: InboundContent,
        sender_name: Option<String>,
        /// When the customer sent it (provider timestamp): the customer-service window counts from here.
        sent_at: DateTime<Utc>,
        received_at: DateTime<Utc>,
        /// The provider's payload for this message, as received.
        raw: Value,
    },
    /// An outbound message was accepted and waits for the channel worker.
    OutboundMessageQueued {
        message_id: Uuid,
        sender: Sender,
        message_type: MessageType,
        content: Option<String>,
        media_url: Option<String>,
        filename: Option<String>,
        /// Meta's template-message object, passed through.
        template: Option<Value>,
        reply_to_message_id: Option<String>,
        /// An email reply's own subject; absent on other channels (and in events stored before
        /// it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// The Meta message tag it must be sent with: a human agent's reply on Messenger or
        /// Instagram after the 24-hour window.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_tag: Option<MessageTag>,
        queued_at: DateTime<Utc>,
    },
    /// A message the business sent from outside OmniStream (the Instagram app, the Page inbox),
    /// reported back by the provider as an echo; it is recorded as sent, never sent again.
    OutboundMessageEchoed {
        message_id: Uuid,
        provider_message_id: String,
        content: InboundContent,
        sent_at: DateTime<Utc>,
        /// The provider's payload for this message, as received.
        raw: Value,
    },
    /// An echo recorded as a message from another app was of our own send, whose provider id
    /// we learnt only afterwards: that record is withdrawn in favour of ours.
    EchoMatched {
        echo_message_id: Uuid,
        message_id: Uuid,
    },
    /// The provider accepted the message.
    OutboundMessageSent {
        message_id: Uuid,
        provider_message_id: String,
        at: DateTime<Utc>,
    },
    /// The provider reported progress (delivered, read) or a late failure.
    OutboundStatusChanged {
        message_id: Uuid,
        provider_message_id: String,
        status: MessageStatus,
        at: DateTime<Utc>,
        error_code: Option<i64>,
        error_title: Option<String>,
    },
    /// A status for a provider id we have not recorded yet; applied when we do.
    OutboundStatusDeferred { status: ProviderStatus },
    /// The provider refused the message.
    OutboundMessageFailed {
        message_id: Uuid,
        error_code: Option<i64>,
        reason: String,
        at: DateTime<Utc>,
    },
    /// A failed message was queued again.
    OutboundMessageRetried { message_id: Uuid, at: DateTime<Utc> },
    /// The assignee changed (`None`: unassigned).
    AgentAssigned {
        from_agent_id: Option<Uuid>,
        to_agent_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
    /// The status changed, expiry included.
    StatusChanged {
        from: ConversationStatus,
        to: ConversationStatus,
        resolved_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    /// The tag set was replaced.
    TagsUpdated {
        tags: Vec<String>,
        at: DateTime<Utc>,
    },
    /// An agent read the conversation.
    ConversationRead { at: DateTime<Utc> },
    /// An agent added an internal note (the notes projector keeps the `notes` table).
    NoteAdded {
        note_id: Uuid,
        agent_id: Uuid,
        content: String,
        at: DateTime<Utc>,
    },
    /// An internal note's text was replaced (by its author).
    NoteEdited {
        note_id: Uuid,
        agent_id: Uuid,
        content: String,
        at: DateTime<Utc>,
    },
    /// An internal note was deleted; `agent_id` is who deleted it.
    NoteDeleted {
        note_id: Uuid,
        agent_id: Uuid,
        at: DateTime<Utc>,
    },
    /// A transfer or takeover was recorded.
    ConversationTransferred {
        transfer_id: Uuid,
        kind: TransferKind,
        from_agent_id: Option<Uuid>,
        to_agent_id: Option<Uuid>,
        from_division_id: Option<Uuid>,
        to_division_id: Option<Uuid>,
        reason: Option<String>,
        transferred_by: Uuid,
        at: DateTime<Utc>,
    },
}

impl ConversationEvent {
    /// The variant name, as stored in `events.event_type`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ConversationOpened { .. } => "ConversationOpened",
            Self::ConversationReopened { .. } => "ConversationReopened",
            Self::InboundMessageReceived { .. } => "InboundMessageReceived",
            Self::OutboundMessageQueued { .. } => "OutboundMessageQueued",
            Self::OutboundMessageEchoed { .. } => "OutboundMessageEchoed",
            Self::EchoMatched { .. } => "EchoMatched",
            Self::OutboundMessageSent { .. } => "OutboundMessageSent",
            Self::OutboundStatusChanged { .. } => "OutboundStatusChanged",
            Self::OutboundStatusDeferred { .. } => "OutboundStatusDeferred",
            Self::OutboundMessageFailed { .. } => "OutboundMessageFailed",
            Self::OutboundMessageRetried { .. } => "OutboundMessageRetried",
            Self::AgentAssigned { .. } => "AgentAssigned",
            Self::StatusChanged { .. } => "StatusChanged",
            Self::TagsUpdated { .. } => "TagsUpdated",
            Self::ConversationRead { .. } => "ConversationRead",
            Self::NoteAdded { .. } => "NoteAdded",
            Self::NoteEdited { .. } => "NoteEdited",
            Self::NoteDeleted { .. } => "NoteDeleted",
            Self::ConversationTransferred { .. } => "ConversationTransferred",
        }
    }
}

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
