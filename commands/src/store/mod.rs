//! The event store, as the application services use it: the [`CommandContext`] a command runs
//! in, the [`AggregateService`] that executes it with retries, the [`UnitOfWork`] that commits
//! many commands at once, and the deterministic [`ids`] of contacts, conversations and inbound
//! messages.

mod context;
pub mod ids;
mod reads;
mod service;
mod unit;

pub use context::{AgentActor, CommandContext};
pub use service::{AggregateService, CommandError, ContactService, ConversationService};
pub use unit::{AppendError, UnitOfWork};
