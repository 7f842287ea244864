//! The event store, as the application services use it: the [`CommandContext`] a command runs
//! in, the [`AggregateService`] that executes it with retries, and the deterministic [`ids`] of
//! contacts, conversations and inbound messages.

mod context;
pub mod ids;
mod service;

pub use context::{AgentActor, CommandContext};
pub use service::{AggregateService, CommandError, ContactService, ConversationService};
