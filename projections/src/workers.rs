//! The read side's workers, for the binary's worker role: one runner per projector
//! ([`crate::all_projectors`]), the NATS relay, and the planner-statistics keeper.

use std::sync::Arc;

use async_trait::async_trait;
use omnistream_commands::infra::wakeup::{self, Wakeups};
use omnistream_commands::workers::Worker;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::log::relay::NatsRelay;
use crate::{all_projectors, run_projector, Projector, ProjectorSettings};

omnistream_commands::worker!(NatsRelay, "nats relay");

/// Runs one projector.
struct ProjectorRunner {
    pool: PgPool,
    projector: Arc<dyn Projector>,
    wakeups: Wakeups,
}

#[async_trait]
impl Worker for ProjectorRunner {
    fn name(&self) -> &'static str {
        self.projector.name()
    }

    async fn run(self: Box<Self>, stop: CancellationToken) {
        run_projector(
            self.pool,
            self.projector,
            ProjectorSettings::default(),
            self.wakeups.subscribe(wakeup::EVENTS),
            stop,
        )
        .await
    }
}

/// Keeps hot tables' planner statistics fresh.
struct StatisticsKeeper(PgPool);

#[async_trait]
impl Worker for StatisticsKeeper {
    fn name(&self) -> &'static str {
        "statistics"
    }

    async fn run(self: Box<Self>, stop: CancellationToken) {
        crate::statistics::keep_statistics(self.0, stop).await
    }
}

/// Every worker of the read side, woken by `wakeups` when events arrive. The relay keeps
/// `stream_replicas` copies of the events stream; it is left out (with an error logged) when the
/// NATS prefix is unusable.
pub fn all(
    pool: &PgPool,
    nats: &async_nats::Client,
    nats_prefix: &str,
    stream_replicas: usize,
    wakeups: &Wakeups,
) -> Vec<Box<dyn Worker>> {
    let mut workers: Vec<Box<dyn Worker>> = Vec::new();
    match NatsRelay::new(pool.clone(), nats.clone(), nats_prefix) {
        Ok(relay) => workers.push(Box::new(
            relay
                .with_replicas(stream_replicas)
                .woken_by(wakeups.clone()),
        )),
        Err(error) => tracing::error!(%error, "the NATS relay cannot start"),
    }
    workers.push(Box::new(StatisticsKeeper(pool.clone())));
    for projector in all_projectors() {
        workers.push(Box::new(ProjectorRunner {
            pool: pool.clone(),
            projector,
            wakeups: wakeups.clone(),
        }));
    }
    workers
}
