//! The event log, owned by the read side: every read of the `events` table in the platform goes
//! through this module.
//!
//! - [`reader`]: the one commit-order-safe tailing read that projectors, the relay and the
//!   realtime hub use.
//! - [`queries`]: its variants (a stream's page, a stream as of a time, one event, a tenant's
//!   range, the committed head).
//! - [`relay`]: the publisher of the log to NATS JetStream.

pub mod queries;
pub mod reader;
pub mod relay;

pub use queries::*;
pub use reader::{read_after, read_after_with, LogCursor, RecordedEvent};
