//! OmniStream read side.
//!
//! Every read model is built by a [`Projector`] fed by the [`log`] reader, which walks the event log
//! in commit-safe order; the projector's checkpoint is written in the same transaction as its
//! rows, so each event takes effect exactly once, across crashes and restarts. Live tailing,
//! catch-up and [`replay`] all use that same code.

pub mod activity;
pub mod contacts;
pub mod inbox;
pub mod log;
pub mod messages;
pub mod notes;
pub mod outbound;
pub mod projector;
pub mod replay;
pub mod runner;
pub mod sql;
pub mod statistics;
pub mod usage;
pub mod workers;

pub use activity::ActivityProjector;
pub use contacts::ContactsProjector;
pub use inbox::InboxProjector;
pub use log::{LogCursor, RecordedEvent};
pub use messages::MessagesProjector;
pub use notes::NotesProjector;
pub use outbound::OutboundQueueProjector;
pub use projector::Projector;
pub use runner::{catch_up_once, run_projector, wait_until_applied, ProjectorSettings};
pub use usage::TenantUsageProjector;

use std::sync::Arc;

/// Every projector of the platform, in the order the worker starts them.
pub fn all_projectors() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(TenantUsageProjector),
        Arc::new(InboxProjector),
        Arc::new(MessagesProjector),
        Arc::new(OutboundQueueProjector),
        Arc::new(NotesProjector),
        Arc::new(ActivityProjector),
    ]
}

/// Finds a projector by its name (as used by `omnistream replay <name>`).
pub fn projector_by_name(name: &str) -> Option<Arc<dyn Projector>> {
    all_projectors().into_iter().find(|p| p.name() == name)
}
