//! Waiting in tests: a wait fails when progress stops — nothing new observed for a while — never
//! after a fixed total, so a loaded machine makes the suite slower but not red.

use std::time::Duration;

use tokio::time::Instant;

/// Tracks what a wait observes and says when it has stopped changing for too long.
#[derive(Debug)]
pub struct Patience<T> {
    stall: Duration,
    last: Option<T>,
    since: Instant,
}

impl<T: PartialEq> Patience<T> {
    /// Gives up after `stall` without any change.
    pub fn new(stall: Duration) -> Self {
        Self {
            stall,
            last: None,
            since: Instant::now(),
        }
    }

    /// Records `observed`; false once it has stayed the same for the whole stall period.
    pub fn progressing(&mut self, observed: T) -> bool {
        if self.last.as_ref() != Some(&observed) {
            self.last = Some(observed);
            self.since = Instant::now();
            return true;
        }
        self.since.elapsed() < self.stall
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_gives_up_only_when_nothing_changes() {
        let mut patience = Patience::new(Duration::from_millis(300));
        for n in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(patience.progressing(n), "progress keeps the wait alive");
        }
        assert!(patience.progressing(9), "not stalled yet");
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(!patience.progressing(9), "stalled");
    }
}
