//! How long work spends between the pipeline's stages, as one Prometheus histogram
//! (`omnistream_pipeline_stage_seconds{stage}`) with a closed set of stage labels:
//!
//! | stage | measured from → to |
//! |---|---|
//! | `stored` | a webhook's request admitted → its row committed (before the 200) |
//! | `appended` | stored → its events committed by the processor |
//! | `projected` | an event committed → applied by a projector (label `projection` too) |
//! | `published` | an event committed → acknowledged by JetStream |
//! | `delivered` | an outgoing-webhook delivery queued → accepted by its endpoint |

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The histogram's name (its buckets are set where the recorder is built).
pub const METRIC: &str = "omnistream_pipeline_stage_seconds";

/// Bucket bounds, in seconds: 1 ms to 30 s.
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A stage of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Stored,
    Appended,
    Projected,
    Published,
    Delivered,
}

impl Stage {
    /// The `stage` label.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Stored => "stored",
            Stage::Appended => "appended",
            Stage::Projected => "projected",
            Stage::Published => "published",
            Stage::Delivered => "delivered",
        }
    }
}

/// Records `took` for `stage`.
pub fn record(stage: Stage, took: Duration) {
    metrics::histogram!(METRIC, "stage" => stage.label()).record(took.as_secs_f64());
}

/// Records the time from `since` until now for `stage` (zero if the clocks disagree).
pub fn record_since(stage: Stage, since: DateTime<Utc>) {
    record(stage, (Utc::now() - since).to_std().unwrap_or_default());
}

/// Records the time from `since` until now for a projector's `projected` stage.
pub fn record_projected(projection: &'static str, since: DateTime<Utc>) {
    let took = (Utc::now() - since).to_std().unwrap_or_default();
    metrics::histogram!(METRIC, "stage" => Stage::Projected.label(), "projection" => projection)
        .record(took.as_secs_f64());
}
