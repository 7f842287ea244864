//! Wake-ups instead of sleeps. A queue's writer announces new work once per committed batch
//! (an intake batch of stored webhooks, a processor round's events, a projector batch of
//! outbound jobs, a dispatcher batch of deliveries) with a `NOTIFY` that PostgreSQL delivers to
//! every process listening. Busy writers announce after their commit through an
//! [`Announcer`], so their commits never queue for the notification lock. One listener connection per process
//! ([`Wakeups::listen`]) feeds every stage of that process, and each stage waits on its
//! [`Wakeup`]: woken at once when its queue gets work, else after a fallback poll (which also
//! covers a notification missed while the listener reconnects).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// New events in the log.
pub const EVENTS: &str = "omnistream_events";
/// New raw inbound payloads.
pub const INBOUND: &str = "omnistream_inbound";
/// New outbound jobs.
pub const OUTBOUND: &str = "omnistream_outbound";
/// New outgoing-webhook deliveries.
pub const DELIVERIES: &str = "omnistream_deliveries";
/// Every channel a process listens to.
pub const CHANNELS: [&str; 4] = [EVENTS, INBOUND, OUTBOUND, DELIVERIES];

/// The wake-up signals of one process, one per channel.
#[derive(Clone, Default)]
pub struct Wakeups {
    senders: Arc<HashMap<&'static str, watch::Sender<u64>>>,
    announcer: Option<Announcer>,
}

impl Wakeups {
    /// Listens to every channel on one connection taken from `pool` until `shutdown`,
    /// reconnecting after a failure. Returns once it listens (or, when PostgreSQL cannot be
    /// reached now, at once: the stages poll until the listener connects).
    pub async fn listen(pool: PgPool, shutdown: CancellationToken) -> Self {
        let senders: HashMap<&'static str, watch::Sender<u64>> = CHANNELS
            .into_iter()
            .map(|channel| (channel, watch::Sender::new(0)))
            .collect();
        let wakeups = Self {
            senders: Arc::new(senders),
            announcer: Some(Announcer::start(pool.clone())),
        };
        let listening = connect(&pool).await;
        if let Err(error) = &listening {
            tracing::warn!(%error, "wake-up listener cannot connect yet; stages poll meanwhile");
        }
        tokio::spawn(wakeups.clone().relay(pool, listening.ok(), shutdown));
        wakeups
    }

    /// Signals that wake nobody: every stage polls (for tools and tests that start a stage
    /// without a listener).
    pub fn polling() -> Self {
        Self::default()
    }

    /// The wake-up of a stage that waits for work on `channel`.
    pub fn subscribe(&self, channel: &'static str) -> Wakeup {
        Wakeup {
            signal: self.senders.get(channel).map(watch::Sender::subscribe),
        }
    }

    /// Raises `channel`'s signal in this process (work this process queued itself).
    pub fn raise(&self, channel: &str) {
        if let Some(sender) = self.senders.get(channel) {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Raises `channel`'s signal in this process at once and announces the work to the other
    /// listening processes ([`Announcer`]), after the commit that queued it.
    pub fn announce(&self, channel: &str) {
        self.raise(channel);
        if let Some(announcer) = &self.announcer {
            announcer.announce(channel);
        }
    }

    async fn relay(
        self,
        pool: PgPool,
        mut listening: Option<PgListener>,
        shutdown: CancellationToken,
    ) {
        loop {
            let listener = match listening.take() {
                Some(listener) => Ok(listener),
                None => connect(&pool).await,
            };
            let outcome = match listener {
                Ok(listener) => self.forward(listener, &shutdown).await,
                Err(error) => Err(error),
            };
            if shutdown.is_cancelled() {
                return;
            }
            if let Err(error) = outcome {
                tracing::warn!(%error, "wake-up listener lost its connection; reconnecting");
            }
            // A notification may have been missed meanwhile: wake every stage to look.
            for channel in CHANNELS {
                self.raise(channel);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn forward(
        &self,
        mut listener: PgListener,
        shutdown: &CancellationToken,
    ) -> sqlx::Result<()> {
        loop {
            let notification = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                notification = listener.recv() => notification?,
            };
            self.raise(notification.channel());
        }
    }
}

/// A listener on every channel.
async fn connect(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all(CHANNELS).await?;
    Ok(listener)
}

/// Announces work on a channel after the commit that queued it: one `SELECT pg_notify` in
/// flight per channel, whatever the number of commits meanwhile (a burst costs a few
/// notifications), sent in a transaction of its own that writes nothing, so no committing
/// writer waits for PostgreSQL's notification-queue lock (which a transaction that notifies
/// holds through its WAL flush). Cheap to clone.
#[derive(Clone)]
pub struct Announcer {
    pending: Arc<HashMap<&'static str, Arc<tokio::sync::Notify>>>,
}

impl Announcer {
    /// Announces through `pool`, one task per channel. Call within a Tokio runtime; the tasks
    /// end when every clone is dropped.
    pub fn start(pool: PgPool) -> Self {
        let pending: HashMap<&'static str, Arc<tokio::sync::Notify>> = CHANNELS
            .into_iter()
            .map(|channel| (channel, Arc::new(tokio::sync::Notify::new())))
            .collect();
        for (channel, notify) in &pending {
            let (channel, notify, pool) = (*channel, notify.clone(), pool.clone());
            tokio::spawn(async move {
                loop {
                    let woken =
                        tokio::time::timeout(Duration::from_secs(60), notify.notified()).await;
                    if Arc::strong_count(&notify) == 1 {
                        return; // Every announcer is gone.
                    }
                    if woken.is_err() {
                        continue;
                    }
                    if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
                        .bind(channel)
                        .execute(&pool)
                        .await
                    {
                        tracing::debug!(%error, channel, "could not announce; listeners poll");
                    }
                }
            });
        }
        Self {
            pending: Arc::new(pending),
        }
    }

    /// Announces work on `channel` to every listening process, soon.
    pub fn announce(&self, channel: &str) {
        if let Some(notify) = self.pending.get(channel) {
            notify.notify_one();
        }
    }
}

/// What one stage waits on.
pub struct Wakeup {
    signal: Option<watch::Receiver<u64>>,
}

impl Wakeup {
    /// Waits until work may have arrived: a signal since the last wait, or `fallback` passed.
    pub async fn wait(&mut self, fallback: Duration) {
        match &mut self.signal {
            Some(signal) => {
                tokio::select! {
                    changed = signal.changed() => {
                        if changed.is_err() {
                            tokio::time::sleep(fallback).await;
                        }
                    }
                    _ = tokio::time::sleep(fallback) => {}
                }
            }
            None => tokio::time::sleep(fallback).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paused time: a wait that is woken takes no time at all, a poll its whole fallback.
    #[tokio::test(start_paused = true)]
    async fn a_raised_signal_wakes_its_stage_at_once_and_others_poll() {
        let wakeups = Wakeups {
            senders: Arc::new(
                CHANNELS
                    .into_iter()
                    .map(|channel| (channel, watch::Sender::new(0)))
                    .collect(),
            ),
            announcer: None,
        };
        let mut inbound = wakeups.subscribe(INBOUND);
        let mut events = wakeups.subscribe(EVENTS);
        wakeups.raise(INBOUND);
        let started = tokio::time::Instant::now();
        inbound.wait(Duration::from_secs(3600)).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "woken");
        inbound.wait(Duration::from_secs(3600)).await;
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(3600),
            "a signal wakes once"
        );
        let started = tokio::time::Instant::now();
        events.wait(Duration::from_millis(50)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(50), "polled");
        let mut polling = Wakeups::polling().subscribe(EVENTS);
        let started = tokio::time::Instant::now();
        polling.wait(Duration::from_millis(10)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(10));
    }
}
