//! Per-key send pacing: at most `rate` sends per second for each key (a WhatsApp business
//! number), spaced evenly, so a burst never trips the provider's throughput limit (Meta's 130429).
//!
//! The pacing is per process; it is exact when one process sends for a number, which is how
//! `omnistream serve` runs its sender.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Keys remembered before finished ones are forgotten.
const PRUNE_ABOVE: usize = 1024;

/// Hands out evenly spaced send slots per key.
#[derive(Clone, Default)]
pub struct Pacer {
    next_free: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Pacer {
    /// Waits for the next free slot of `key` at `rate` per second (at least 1).
    pub async fn wait(&self, key: &str, rate: u32) {
        let spacing = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        let slot = {
            let now = Instant::now();
            let mut next_free = self.next_free.lock().unwrap_or_else(|e| e.into_inner());
            if next_free.len() > PRUNE_ABOVE {
                next_free.retain(|_, free| *free > now);
            }
            let free = next_free.entry(key.to_owned()).or_insert(now);
            let slot = (*free).max(now);
            *free = slot + spacing;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_of_one_key_are_spaced_and_keys_are_independent() {
        let pacer = Pacer::default();
        let started = Instant::now();
        for _ in 0..11 {
            pacer.wait("a", 10).await;
        }
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(1),
            "11 slots at 10/s"
        );
        let other = Instant::now();
        pacer.wait("b", 10).await;
        assert_eq!(
            other.elapsed(),
            Duration::ZERO,
            "another key is not held back"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_key_does_not_bank_a_burst() {
        let pacer = Pacer::default();
        pacer.wait("a", 100).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let started = Instant::now();
        pacer.wait("a", 100).await;
        pacer.wait("a", 100).await;
        assert_eq!(started.elapsed(), Duration::from_millis(10));
    }
}
