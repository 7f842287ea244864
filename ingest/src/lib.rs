//! Inbound webhook receivers (served under `/webhooks`), one folder per channel in [`channels`]
//! (the parser for what its provider posts and its handler), and the processor that turns the
//! stored payloads into conversation commands.
//!
//! A receiver checks the provider's signature over the raw bytes, stores the body in the raw
//! inbound log and only then answers 200: an acknowledged webhook is never lost. The processor
//! works through the log in order; every command it issues is idempotent, so a payload processed
//! twice (after a crash, or redelivered by the provider) has no second effect.

pub mod channels;
pub mod intake;
pub mod processor;
pub mod receiver;
pub mod workers;

pub use processor::InboundProcessor;
pub use receiver::{router, IngestState};
