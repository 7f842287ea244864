//! The background work of one process, started by role: for `worker`, every registered
//! worker of the three registries (`ingest::workers::all`, `commands::workers::all`,
//! `projections::workers::all`); for `api`, the realtime stream's log reader and the pruning of
//! sessions and login attempts; for every role, the metrics upkeep.

use std::sync::Arc;
use std::time::Duration;

use omnistream_commands::channels::email::reply_address::ReplyTokens;
use omnistream_commands::infra::wakeup::{self, Wakeups};
use omnistream_ingest::InboundProcessor;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::outgoing_webhooks;
use crate::app::{AppState, Roles};

/// Starts what `roles` asks for; each task ends once `shutdown` is cancelled.
pub async fn start(
    state: &AppState,
    roles: Roles,
    reply_tokens: ReplyTokens,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    // One listener connection wakes every stage of this process.
    let wakeups = Wakeups::listen(state.pool.clone(), shutdown.clone()).await;
    if roles.worker {
        let deps = omnistream_commands::workers::Deps {
            pool: state.pool.clone(),
            conversations: state.conversation.conversations.clone(),
            secrets: state.channels.secrets.clone(),
            media: state.conversation.media.clone(),
            media_links: state.media_links.clone(),
            graph: state.channels.graph.clone(),
            instagram: state.channels.instagram.clone(),
            reply_tokens: reply_tokens.clone(),
            smtp_url: state
                .config
                .smtp_url
                .as_ref()
                .map(|url| url.expose().to_owned()),
            allow_private: state.config.outgoing_webhooks_allow_private,
            retry_schedule: state.config.outgoing_webhooks_retry_schedule.clone(),
            nats: state.telemetry.nats.clone(),
            nats_prefix: state.config.nats_prefix.clone(),
            stored_events: Arc::new(outgoing_webhooks::StoredEventLog(state.pool.clone())),
            wakeups: wakeups.clone(),
        };
        let inbound = InboundProcessor {
            pool: state.pool.clone(),
            conversations: state.conversation.conversations.clone(),
            contacts: state.contacts.clone(),
            media: state.conversation.media.clone(),
            reply_tokens: reply_tokens.clone(),
            wakeups: wakeups.clone(),
        };
        let registered = omnistream_ingest::workers::all(inbound)
            .into_iter()
            .chain(omnistream_commands::workers::all(&deps))
            .chain(omnistream_projections::workers::all(
                &state.pool,
                &state.telemetry.nats,
                &state.config.nats_prefix,
                state.config.nats_stream_replicas,
                &wakeups,
            ));
        for worker in registered {
            tracing::debug!(worker = worker.name(), "starting");
            workers.push(tokio::spawn(worker.run(shutdown.clone())));
        }
    }
    if roles.api {
        workers.push(tokio::spawn(state.stream_hub.clone().run(
            state.pool.clone(),
            wakeups.subscribe(wakeup::EVENTS),
            shutdown.clone(),
        )));
        let pool = state.pool.clone();
        let stop = shutdown.clone();
        workers.push(tokio::spawn(async move {
            loop {
                if let Err(error) = crate::http::auth::prune(&pool).await {
                    tracing::warn!(%error, "pruning sessions and login attempts failed");
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(600)) => {}
                }
            }
        }));
    }
    let metrics = state.telemetry.metrics.clone();
    let upkeep_stop = shutdown.clone();
    workers.push(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = upkeep_stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => metrics.run_upkeep(),
            }
        }
    }));
    workers
}
