//! Counted slots per key, capped: open connections per client, open streams per agent.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// How many slots each key holds now.
pub struct CountedSlots<K>(Arc<Mutex<HashMap<K, usize>>>);

impl<K> Clone for CountedSlots<K> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<K> Default for CountedSlots<K> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

/// One slot of a key; given back when dropped.
pub struct Slot<K: Eq + Hash> {
    counts: Arc<Mutex<HashMap<K, usize>>>,
    key: K,
}

impl<K: Eq + Hash + Clone> CountedSlots<K> {
    /// A slot for `key`, unless it already holds `cap`.
    pub fn try_take(&self, key: K, cap: usize) -> Option<Slot<K>> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key.clone()).or_default();
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Slot {
            counts: Arc::clone(&self.0),
            key,
        })
    }
}

impl<K: Eq + Hash> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_cap_and_dropped_slots_free_room() {
        let slots = CountedSlots::default();
        let first = slots.try_take("a", 2).unwrap();
        let _second = slots.try_take("a", 2).unwrap();
        assert!(slots.try_take("a", 2).is_none());
        assert!(slots.try_take("b", 2).is_some());
        drop(first);
        assert!(slots.try_take("a", 2).is_some());
        assert!(
            slots.0.lock().unwrap().get("b").is_none(),
            "an empty key is forgotten"
        );
    }
}
