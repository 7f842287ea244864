//! Ingest's worker, for the binary's worker role: the inbound processor that turns stored
//! webhook payloads into contact and conversation commands.

use omnistream_commands::workers::Worker;

use crate::InboundProcessor;

omnistream_commands::worker!(InboundProcessor, "inbound processor");

/// Every worker of ingest.
pub fn all(processor: InboundProcessor) -> Vec<Box<dyn Worker>> {
    vec![Box::new(processor)]
}
