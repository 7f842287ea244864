//! The Conversation aggregate: one customer's thread on one integration account.
//!
//! Its state is kept small so a command costs the same on a conversation with ten thousand
//! messages as on a new one: message bodies live only in events and read models; the aggregate
//! remembers just what its rules need (status, assignee, the customer-service window, the
//! provider ids it has seen within the provider's retry horizon, and outbound delivery states).

mod commands;
mod events;
pub mod policy;
mod public;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use commands::{
    ConversationCommand, EchoedMessage, InboundMessage, OpenConversation, OutboundMessage, Sender,
};
pub use events::{ConversationEvent, TransferKind};
pub use public::public_events;

use crate::kernel::channel::Channel;
use crate::kernel::message::{MessageStatus, ProviderStatus, UnknownValue};

/// `ConversationStatus` of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    #[default]
    Open,
    Pending,
    Resolved,
    Closed,
    /// Set only by expiry.
    Expired,
}

impl ConversationStatus {
    /// Every status.
    pub const ALL: [ConversationStatus; 5] = [
        ConversationStatus::Open,
        ConversationStatus::Pending,
        ConversationStatus::Resolved,
        ConversationStatus::Closed,
        ConversationStatus::Expired,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Pending => "pending",
            ConversationStatus::Resolved => "resolved",
            ConversationStatus::Closed => "closed",
            ConversationStatus::Expired => "expired",
        }
    }

    /// Whether the conversation is finished (an inbound message reopens it).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            ConversationStatus::Resolved | ConversationStatus::Closed | ConversationStatus::Expired
        )
    }
}

impl std::str::FromStr for ConversationStatus {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownValue(s.to_owned()))
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    /// The conversation has not been opened yet.
    #[error("conversation not found")]
    NotOpened,
    /// A free-form message outside the customer-service window.
    #[error("the messaging window is closed: only template messages can be sent")]
    MessagingWindowClosed,
    /// No outbound message with that id.
    #[error("message not found")]
    UnknownMessage,
    /// Retry of a message that has not failed.
    #[error("only failed messages can be retried")]
    MessageNotFailed,
    /// `expired` cannot be set by hand.
    #[error("status `expired` is set only by expiry")]
    ExpiredIsSystemOnly,
    /// Taking over another human agent's conversation without the right.
    #[error("the conversation is assigned to another agent")]
    AssignedToAnotherAgent,
}

/// Delivery state of one outbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OutboundState {
    status: MessageStatus,
    provider_message_id: Option<String>,
    queued_at: DateTime<Utc>,
    /// When the provider accepted it (receipts with a watermark cover messages sent by then).
    #[serde(default)]
    sent_at: Option<DateTime<Utc>>,
    /// Recorded from a provider echo, not sent by us.
    #[serde(default)]
    echo: bool,
}

/// How long provider ids are remembered for deduplication: Meta retries for up to 7 days.
const DEDUPE_HORIZON_DAYS: i64 = 8;
/// How long outbound messages keep their delivery state (late read receipts).
const OUTBOUND_HORIZON_DAYS: i64 = 30;
/// Pruning runs once per this many remembered ids.
const PRUNE_EVERY: usize = 64;
/// At most this many recent ids (inbound) and messages (outbound) are kept, whatever their age, so
/// loading a conversation costs the same however busy it is. Older repeats are caught before the
/// command by the ingest worker (deterministic message ids in the messages read model).
const RECENT_LIMIT: usize = 128;

/// Keeps the `RECENT_LIMIT` newest entries of `map` by `time`.
fn keep_newest<K: Ord + Clone, V>(
    map: &mut BTreeMap<K, V>,
    time: impl Fn(&V) -> DateTime<Utc>,
) -> Vec<(K, V)> {
    if map.len() <= RECENT_LIMIT {
        return Vec::new();
    }
    let mut times: Vec<DateTime<Utc>> = map.values().map(&time).collect();
    times.sort_unstable();
    let cutoff = times[times.len() - RECENT_LIMIT];
    let old: Vec<K> = map
        .iter()
        .filter(|(_, v)| time(v) < cutoff)
        .map(|(k, _)| k.clone())
        .collect();
    old.into_iter()
        .filter_map(|k| map.remove(&k).map(|v| (k, v)))
        .collect()
}

/// The aggregate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    opened: bool,
    #[serde(default)]
    opened_at: Option<DateTime<Utc>>,
    channel: Option<Channel>,
    status: ConversationStatus,
    assigned_agent_id: Option<Uuid>,
    division_id: Option<Uuid>,
    tags: Vec<String>,
    unread: u32,
    ai_active: bool,
    last_customer_message_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    /// Inbound provider message ids seen recently, with when they arrived.
    seen: BTreeMap<String, DateTime<Utc>>,
    /// Outbound messages still able to change state.
    outbound: BTreeMap<Uuid, OutboundState>,
    /// Provider message id → our message id, for status webhooks.
    by_provider_id: BTreeMap<String, Uuid>,
    /// Statuses that arrived before we learnt the provider id (Meta can be faster than us).
    early_statuses: BTreeMap<String, Vec<ProviderStatus>>,
}

impl Conversation {
    /// The current status.
    pub fn status(&self) -> ConversationStatus {
        self.status
    }

    /// The assignee.
    pub fn assigned_agent_id(&self) -> Option<Uuid> {
        self.assigned_agent_id
    }

    /// Whether the conversation exists.
    pub fn is_opened(&self) -> bool {
        self.opened
    }

    /// Whether `at` is within the customer-service window of `window_hours` since the customer's
    /// last message (by the provider's timestamp). `None` means the channel has no window.
    pub fn window_open(&self, window_hours: Option<u32>, at: DateTime<Utc>) -> bool {
        match window_hours {
            None => true,
            Some(hours) => self
                .last_customer_message_at
                .is_some_and(|last| at - last <= Duration::hours(i64::from(hours))),
        }
    }

    fn require_opened(&self) -> Result<(), ConversationError> {
        if self.opened {
            Ok(())
        } else {
            Err(ConversationError::NotOpened)
        }
    }
}

/// The aggregate type of conversation streams in the event log.
pub const AGGREGATE_TYPE: &str = "Conversation";

impl Aggregate for Conversation {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = ConversationCommand;
    type Event = ConversationEvent;
    type Error = ConversationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in commands::decide(self, command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use ConversationEvent as E;
        match event {
            E::ConversationOpened {
                channel,
                division_id,
                opened_at,
                ..
            } => {
                self.opened = true;
                self.opened_at = Some(opened_at);
                self.channel = Some(channel);
                self.division_id = division_id;
                self.status = ConversationStatus::Open;
            }
            E::ConversationReopened { .. } => {
                self.status = ConversationStatus::Open;
                self.resolved_at = None;
            }
            E::InboundMessageReceived {
                provider_message_id,
                sent_at,
                received_at,
                ..
            } => {
                self.unread = self.unread.saturating_add(1);
                self.last_customer_message_at = Some(
                    self.last_customer_message_at
                        .map_or(sent_at, |last| last.max(sent_at)),
                );
                if let Some(id) = provider_message_id {
                    self.seen.insert(id, received_at);
                }
                // Pruned in rounds, so applying an event stays O(log n) amortised.
                if self.seen.len().is_multiple_of(PRUNE_EVERY) {
                    let horizon = received_at - Duration::days(DEDUPE_HORIZON_DAYS);
                    self.seen.retain(|_, at| *at >= horizon);
                    keep_newest(&mut self.seen, |at| *at);
                }
            }
            E::OutboundMessageQueued {
                message_id,
                queued_at,
                ..
            } => {
                self.outbound.insert(
                    message_id,
                    OutboundState {
                        status: MessageStatus::Pending,
                        provider_message_id: None,
                        queued_at,
                        sent_at: None,
                        echo: false,
                    },
                );
                if self.outbound.len().is_multiple_of(PRUNE_EVERY) {
                    let horizon = queued_at - Duration::days(OUTBOUND_HORIZON_DAYS);
                    let stale: Vec<Uuid> = self
                        .outbound
                        .iter()
                        .filter(|(_, s)| s.queued_at < horizon)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in stale {
                        if let Some(provider_id) = self
                            .outbound
                            .remove(&id)
                            .and_then(|s| s.provider_message_id)
                        {
                            self.by_provider_id.remove(&provider_id);
                        }
                    }
                    for (_, state) in keep_newest(&mut self.outbound, |s| s.queued_at) {
                        if let Some(provider_id) = state.provider_message_id {
                            self.by_provider_id.remove(&provider_id);
                        }
                    }
                }
            }
            E::OutboundMessageEchoed {
                message_id,
                provider_message_id,
                sent_at,
                ..
            } => {
                self.outbound.insert(
                    message_id,
                    OutboundState {
                        status: MessageStatus::Sent,
                        provider_message_id: Some(provider_message_id.clone()),
                        queued_at: sent_at,
                        sent_at: Some(sent_at),
                        echo: true,
                    },
                );
                self.by_provider_id.insert(provider_message_id, message_id);
            }
            E::EchoMatched {
                echo_message_id, ..
            } => {
                self.outbound.remove(&echo_message_id);
            }
            E::OutboundMessageSent {
                message_id,
                provider_message_id,
                at,
            } => {
                if let Some(state) = self.outbound.get_mut(&message_id) {
                    state.status = MessageStatus::Sent;
                    state.provider_message_id = Some(provider_message_id.clone());
                    state.sent_at = Some(at);
                }
                self.early_statuses.remove(&provider_message_id);
                self.by_provider_id.insert(provider_message_id, message_id);
            }
            E::OutboundStatusChanged {
                message_id, status, ..
            } => {
                if let Some(state) = self.outbound.get_mut(&message_id) {
                    state.status = status;
                }
            }
            E::OutboundStatusDeferred { status } => {
                let horizon = status.occurred_at - Duration::days(DEDUPE_HORIZON_DAYS);
                self.early_statuses
                    .retain(|_, pending| pending.iter().any(|s| s.occurred_at >= horizon));
                self.early_statuses
                    .entry(status.provider_message_id.clone())
                    .or_default()
                    .push(status);
            }
            E::OutboundMessageFailed { message_id, .. } => {
                if let Some(state) = self.outbound.get_mut(&message_id) {
                    state.status = MessageStatus::Failed;
                }
            }
            E::OutboundMessageRetried { message_id, .. } => {
                // A new attempt gets a new provider id; the old one no longer names it.
                if let Some(state) = self.outbound.get_mut(&message_id) {
                    state.status = MessageStatus::Pending;
                    if let Some(old) = state.provider_message_id.take() {
                        self.by_provider_id.remove(&old);
                    }
                }
            }
            E::AgentAssigned { to_agent_id, .. } => self.assigned_agent_id = to_agent_id,
            E::StatusChanged {
                to, resolved_at, ..
            } => {
                self.status = to;
                self.resolved_at = resolved_at;
            }
            E::TagsUpdated { tags, .. } => self.tags = tags,
            E::ConversationRead { .. } => self.unread = 0,
            E::NoteAdded { .. } | E::NoteEdited { .. } | E::NoteDeleted { .. } => {}
            E::ConversationTransferred {
                to_agent_id,
                to_division_id,
                kind,
                ..
            } => {
                self.assigned_agent_id = to_agent_id;
                if to_division_id.is_some() {
                    self.division_id = to_division_id;
                }
                if kind == TransferKind::Takeover {
                    self.ai_active = false;
                }
            }
        }
    }
}
