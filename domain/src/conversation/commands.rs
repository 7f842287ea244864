//! Commands of the Conversation aggregate and the rules that turn them into events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{Conversation, ConversationError, ConversationEvent, ConversationStatus, TransferKind};
use crate::kernel::channel::Channel;
use crate::kernel::message::{
    InboundContent, MessageStatus, MessageTag, MessageType, ProviderStatus, ReceiptBound,
    HUMAN_AGENT_WINDOW_DAYS, STANDARD_WINDOW_HOURS,
};

/// Who sent an outbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sender {
    /// `agent`, `ai` or `system`.
    pub sender_type: String,
    pub id: Option<Uuid>,
    pub name: Option<String>,
}

/// What a new conversation starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenConversation {
    pub conversation_id: Uuid,
    pub tenant_id: Uuid,
    pub channel: Channel,
    pub integration_account_id: Uuid,
    pub contact_id: Uuid,
    pub division_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// A customer's message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub message_id: Uuid,
    pub provider_message_id: Option<String>,
    pub content: InboundContent,
    pub sender_name: Option<String>,
    pub sent_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub raw: Value,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub message_id: Uuid,
    pub sender: Sender,
    pub message_type: MessageType,
    pub content: Option<String>,
    pub media_url: Option<String>,
    pub filename: Option<String>,
    pub template: Option<Value>,
    pub reply_to_message_id: Option<String>,
    /// The subject of an email reply (`None`: `Re:` the customer's latest subject).
    pub subject: Option<String>,
    pub queued_at: DateTime<Utc>,
    /// The channel's customer-service window (`None`: no window, e.g. email).
    pub window_hours: Option<u32>,
    /// Assign the conversation to this agent when it has no assignee.
    pub auto_assign: Option<Uuid>,
}

/// A message the business sent from another app, reported back by the provider as an echo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EchoedMessage {
    pub message_id: Uuid,
    pub provider_message_id: String,
    pub content: InboundContent,
    pub sent_at: DateTime<Utc>,
    pub raw: Value,
}

/// Everything one can ask of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversationCommand {
    /// Open without a message (an agent starting a conversation); no-op when open.
    Open(OpenConversation),
    /// Record a customer's message, opening or reopening the conversation as needed.
    ReceiveInbound {
        open: OpenConversation,
        message: InboundMessage,
    },
    QueueOutbound(OutboundMessage),
    /// Record an echo of a message the business sent elsewhere, opening the conversation if
    /// needed; a no-op for our own sends and for repeats.
    RecordEcho {
        open: OpenConversation,
        message: EchoedMessage,
    },
    /// A read or delivery receipt covering every sent message up to `up_to`.
    RecordReceipt {
        status: MessageStatus,
        up_to: ReceiptBound,
        occurred_at: DateTime<Utc>,
    },
    MarkSent {
        message_id: Uuid,
        provider_message_id: String,
        at: DateTime<Utc>,
    },
    MarkFailed {
        message_id: Uuid,
        error_code: Option<i64>,
        reason: String,
        at: DateTime<Utc>,
    },
    RecordProviderStatus(ProviderStatus),
    RetryOutbound {
        message_id: Uuid,
        at: DateTime<Utc>,
    },
    Assign {
        agent_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
    ChangeStatus {
        status: ConversationStatus,
        at: DateTime<Utc>,
    },
    /// Expire an open or pending conversation whose customer last wrote (else which opened)
    /// before `cutoff`.
    Expire {
        at: DateTime<Utc>,
        cutoff: DateTime<Utc>,
    },
    UpdateTags {
        tags: Vec<String>,
        at: DateTime<Utc>,
    },
    MarkRead {
        at: DateTime<Utc>,
    },
    /// Record an internal note.
    AddNote {
        note_id: Uuid,
        agent_id: Uuid,
        content: String,
        at: DateTime<Utc>,
    },
    /// Replace a note's text. Who may (its author) is checked by the caller against the notes
    /// read model; the conversation records the change.
    EditNote {
        note_id: Uuid,
        agent_id: Uuid,
        content: String,
        at: DateTime<Utc>,
    },
    /// Delete a note (its author, or a manager: checked by the caller).
    DeleteNote {
        note_id: Uuid,
        agent_id: Uuid,
        at: DateTime<Utc>,
    },
    Transfer {
        transfer_id: Uuid,
        to_agent_id: Option<Uuid>,
        to_division_id: Option<Uuid>,
        reason: Option<String>,
        by: Uuid,
        at: DateTime<Utc>,
    },
    Takeover {
        transfer_id: Uuid,
        agent_id: Uuid,
        may_take_from_human: bool,
        at: DateTime<Utc>,
    },
}

fn opened_event(open: OpenConversation) -> ConversationEvent {
    ConversationEvent::ConversationOpened {
        conversation_id: open.conversation_id,
        tenant_id: open.tenant_id,
        channel: open.channel,
        integration_account_id: open.integration_account_id,
        contact_id: open.contact_id,
        division_id: open.division_id,
        opened_at: open.at,
    }
}

/// The rules: which events a command produces on the current state.
pub(super) fn decide(
    state: &Conversation,
    command: ConversationCommand,
) -> Result<Vec<ConversationEvent>, ConversationError> {
    use ConversationCommand as C;
    use ConversationEvent as E;
    Ok(match command {
        C::Open(open) => {
            if state.opened {
                vec![]
            } else {
                vec![opened_event(open)]
            }
        }
        C::ReceiveInbound { open, message } => {
            if message
                .provider_message_id
                .as_ref()
                .is_some_and(|id| state.seen.contains_key(id))
            {
                return Ok(vec![]);
            }
            let mut events = Vec::new();
            if !state.opened {
                events.push(opened_event(open));
            } else if state.status.is_finished() {
                events.push(E::ConversationReopened {
                    at: message.received_at,
                });
            }
            events.push(E::InboundMessageReceived {
                message_id: message.message_id,
                provider_message_id: message.provider_message_id,
                content: message.content,
                sender_name: message.sender_name,
                sent_at: message.sent_at,
                received_at: message.received_at,
                raw: message.raw,
            });
            events
        }
        C::QueueOutbound(message) => {
            state.require_opened()?;
            let message_tag = state.window_policy(&message)?;
            let mut events = vec![E::OutboundMessageQueued {
                message_id: message.message_id,
                sender: message.sender,
                message_type: message.message_type,
                content: message.content,
                media_url: message.media_url,
                filename: message.filename,
                template: message.template,
                reply_to_message_id: message.reply_to_message_id,
                subject: message.subject,
                message_tag,
                queued_at: message.queued_at,
            }];
            if let (None, Some(agent)) = (state.assigned_agent_id, message.auto_assign) {
                events.push(E::AgentAssigned {
                    from_agent_id: None,
                    to_agent_id: Some(agent),
                    at: message.queued_at,
                });
            }
            events
        }
        C::MarkSent {
            message_id,
            provider_message_id,
            at,
        } => {
            let outbound = state
                .outbound
                .get(&message_id)
                .ok_or(ConversationError::UnknownMessage)?;
            if outbound.status != MessageStatus::Pending {
                return Ok(vec![]);
            }
            let mut events = vec![E::OutboundMessageSent {
                message_id,
                provider_message_id: provider_message_id.clone(),
                at,
            }];
            // The provider's echo of this send can overtake the send's own answer.
            if let Some(echo_message_id) = state
                .by_provider_id
                .get(&provider_message_id)
                .filter(|id| state.outbound.get(id).is_some_and(|o| o.echo))
            {
                events.push(E::EchoMatched {
                    echo_message_id: *echo_message_id,
                    message_id,
                });
            }
            let mut current = MessageStatus::Sent;
            let mut early = state
                .early_statuses
                .get(&provider_message_id)
                .cloned()
                .unwrap_or_default();
            early.sort_by_key(|s| s.occurred_at);
            for status in early {
                if current.can_advance_to(status.status) {
                    current = status.status;
                    events.push(status_changed(message_id, status));
                }
            }
            events
        }
        C::MarkFailed {
            message_id,
            error_code,
            reason,
            at,
        } => {
            let outbound = state
                .outbound
                .get(&message_id)
                .ok_or(ConversationError::UnknownMessage)?;
            if outbound.status != MessageStatus::Pending {
                return Ok(vec![]);
            }
            vec![E::OutboundMessageFailed {
                message_id,
                error_code,
                reason,
                at,
            }]
        }
        C::RecordProviderStatus(status) => {
            state.require_opened()?;
            match state.by_provider_id.get(&status.provider_message_id) {
                None => vec![E::OutboundStatusDeferred { status }],
                Some(message_id) => {
                    let current = state
                        .outbound
                        .get(message_id)
                        .map_or(MessageStatus::Read, |s| s.status);
                    if current.can_advance_to(status.status) {
                        vec![status_changed(*message_id, status)]
                    } else {
                        vec![]
                    }
                }
            }
        }
        C::RecordEcho { open, message } => {
            let ours = state
                .by_provider_id
                .contains_key(&message.provider_message_id);
            if ours || state.seen.contains_key(&message.provider_message_id) {
                return Ok(vec![]);
            }
            let mut events = Vec::new();
            if !state.opened {
                events.push(opened_event(open));
            }
            events.push(E::OutboundMessageEchoed {
                message_id: message.message_id,
                provider_message_id: message.provider_message_id,
                content: message.content,
                sent_at: message.sent_at,
                raw: message.raw,
            });
            events
        }
        C::RecordReceipt {
            status,
            up_to,
            occurred_at,
        } => {
            state.require_opened()?;
            state.receipt(status, &up_to, occurred_at)
        }
        C::RetryOutbound { message_id, at } => {
            let outbound = state
                .outbound
                .get(&message_id)
                .ok_or(ConversationError::UnknownMessage)?;
            if outbound.status != MessageStatus::Failed {
                return Err(ConversationError::MessageNotFailed);
            }
            vec![E::OutboundMessageRetried { message_id, at }]
        }
        C::Assign { agent_id, at } => {
            state.require_opened()?;
            if state.assigned_agent_id == agent_id {
                vec![]
            } else {
                vec![E::AgentAssigned {
                    from_agent_id: state.assigned_agent_id,
                    to_agent_id: agent_id,
                    at,
                }]
            }
        }
        C::ChangeStatus { status, at } => {
            state.require_opened()?;
            if status == ConversationStatus::Expired {
                return Err(ConversationError::ExpiredIsSystemOnly);
            }
            if status == state.status {
                return Ok(vec![]);
            }
            let resolved_at = match status {
                ConversationStatus::Resolved | ConversationStatus::Closed => {
                    Some(state.resolved_at.unwrap_or(at))
                }
                _ => None,
            };
            vec![E::StatusChanged {
                from: state.status,
                to: status,
                resolved_at,
                at,
            }]
        }
        C::Expire { at, cutoff } => {
            state.require_opened()?;
            let last_activity = state.last_customer_message_at.or(state.opened_at);
            if super::policy::expiry::is_stale(last_activity, cutoff)
                && matches!(
                    state.status,
                    ConversationStatus::Open | ConversationStatus::Pending
                )
            {
                vec![E::StatusChanged {
                    from: state.status,
                    to: ConversationStatus::Expired,
                    resolved_at: state.resolved_at,
                    at,
                }]
            } else {
                vec![]
            }
        }
        C::UpdateTags { tags, at } => {
            state.require_opened()?;
            if tags == state.tags {
                vec![]
            } else {
                vec![E::TagsUpdated { tags, at }]
            }
        }
        C::MarkRead { at } => {
            state.require_opened()?;
            if state.unread == 0 {
                vec![]
            } else {
                vec![E::ConversationRead { at }]
            }
        }
        C::AddNote {
            note_id,
            agent_id,
            content,
            at,
        } => {
            state.require_opened()?;
            vec![E::NoteAdded {
                note_id,
                agent_id,
                content,
                at,
            }]
        }
        C::EditNote {
            note_id,
            agent_id,
            content,
            at,
        } => {
            state.require_opened()?;
            vec![E::NoteEdited {
                note_id,
                agent_id,
                content,
                at,
            }]
        }
        C::DeleteNote {
            note_id,
            agent_id,
            at,
        } => {
            state.require_opened()?;
            vec![E::NoteDeleted {
                note_id,
                agent_id,
                at,
            }]
        }
        C::Transfer {
            transfer_id,
            to_agent_id,
            to_division_id,
            reason,
            by,
            at,
        } => {
            state.require_opened()?;
            vec![E::ConversationTransferred {
                transfer_id,
                kind: TransferKind::Transfer,
                from_agent_id: state.assigned_agent_id,
                to_agent_id,
                from_division_id: state.division_id,
                to_division_id,
                reason,
                transferred_by: by,
                at,
            }]
        }
        C::Takeover {
            transfer_id,
            agent_id,
            may_take_from_human,
            at,
        } => {
            state.require_opened()?;
            let held_by_other_human = state
                .assigned_agent_id
                .is_some_and(|current| current != agent_id)
                && !state.ai_active;
            if held_by_other_human && !may_take_from_human {
                return Err(ConversationError::AssignedToAnotherAgent);
            }
            vec![E::ConversationTransferred {
                transfer_id,
                kind: TransferKind::Takeover,
                from_agent_id: state.assigned_agent_id,
                to_agent_id: Some(agent_id),
                from_division_id: state.division_id,
                to_division_id: None,
                reason: None,
                transferred_by: agent_id,
                at,
            }]
        }
    })
}

impl Conversation {
    /// Whether `message` may be sent now, and with which Meta tag: templates always; other
    /// messages within the channel's window, or, from a human agent on Messenger and Instagram,
    /// after Meta's 24 hours and within 7 days with `HUMAN_AGENT`.
    fn window_policy(
        &self,
        message: &OutboundMessage,
    ) -> Result<Option<MessageTag>, ConversationError> {
        if message.message_type == MessageType::Template {
            return Ok(None);
        }
        let at = message.queued_at;
        let human_agent = message.sender.sender_type == "agent"
            && self.channel.is_some_and(Channel::has_human_agent_tag)
            && !self.window_open(Some(STANDARD_WINDOW_HOURS), at)
            && self.window_open(Some(HUMAN_AGENT_WINDOW_DAYS * 24), at);
        if human_agent {
            Ok(Some(MessageTag::HumanAgent))
        } else if self.window_open(message.window_hours, at) {
            Ok(None)
        } else {
            Err(ConversationError::MessagingWindowClosed)
        }
    }

    /// The status changes a receipt causes: every sent message up to the bound whose status it
    /// advances. A bound naming a message we do not know covers nothing.
    fn receipt(
        &self,
        status: MessageStatus,
        up_to: &ReceiptBound,
        occurred_at: DateTime<Utc>,
    ) -> Vec<ConversationEvent> {
        let bound = match up_to {
            ReceiptBound::Watermark(at) => Some(*at),
            ReceiptBound::Message(provider_id) => self
                .by_provider_id
                .get(provider_id)
                .and_then(|id| self.outbound.get(id))
                .and_then(|state| state.sent_at),
        };
        let Some(bound) = bound else {
            return Vec::new();
        };
        self.outbound
            .iter()
            .filter(|(_, state)| {
                state.sent_at.is_some_and(|sent| sent <= bound)
                    && state.status.can_advance_to(status)
            })
            .filter_map(|(message_id, state)| {
                let provider_message_id = state.provider_message_id.clone()?;
                Some(status_changed(
                    *message_id,
                    ProviderStatus {
                        provider_message_id,
                        status,
                        occurred_at,
                        error_code: None,
                        error_title: None,
                    },
                ))
            })
            .collect()
    }
}

fn status_changed(message_id: Uuid, status: ProviderStatus) -> ConversationEvent {
    ConversationEvent::OutboundStatusChanged {
        message_id,
        provider_message_id: status.provider_message_id,
        status: status.status,
        at: status.occurred_at,
        error_code: status.error_code,
        error_title: status.error_title,
    }
}
