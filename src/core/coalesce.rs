//! Coalescing of state updates (presence): per key, at most one update goes out per window,
//! it carries the latest value, and nothing goes out if the value did not change.
//!
//! Plain state; the caller owns the timer: when [`Coalescer::offer`] returns `true`, it waits
//! the window and then calls [`Coalescer::take`].

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

struct Slot<V> {
    sent: Option<V>,
    pending: Option<V>,
    scheduled: bool,
}

pub struct Coalescer<K, V> {
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K, V> Default for Coalescer<K, V> {
    fn default() -> Self {
        Self { slots: Mutex::new(HashMap::new()) }
    }
}

impl<K: Eq + Hash + Clone, V: Clone + PartialEq> Coalescer<K, V> {
    /// Note a new value. `true`: the caller must schedule a [`Coalescer::take`] after the window.
    pub fn offer(&self, key: K, value: V) -> bool {
        let Ok(mut slots) = self.slots.lock() else { return false };
        let slot = slots.entry(key).or_insert(Slot { sent: None, pending: None, scheduled: false });
        if slot.pending.is_none() && slot.sent.as_ref() == Some(&value) {
            return false;
        }
        slot.pending = Some(value);
        !std::mem::replace(&mut slot.scheduled, true)
    }

    /// At the end of the window: the value sent before (if any) and the value to send now, if
    /// it differs from the last one sent.
    pub fn take(&self, key: &K) -> Option<(Option<V>, V)> {
        let mut slots = self.slots.lock().ok()?;
        let slot = slots.get_mut(key)?;
        slot.scheduled = false;
        let value = slot.pending.take()?;
        if slot.sent.as_ref() == Some(&value) {
            return None;
        }
        let before = slot.sent.replace(value.clone());
        Some((before, value))
    }

    /// Every key with the last value sent for it.
    pub fn all_sent(&self) -> Vec<(K, V)> {
        match self.slots.lock() {
            Ok(slots) => slots.iter().filter_map(|(k, s)| s.sent.clone().map(|v| (k.clone(), v))).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The last value sent for a key.
    pub fn last(&self, key: &K) -> Option<V> {
        self.slots.lock().ok()?.get(key).and_then(|s| s.sent.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_becomes_one_update_with_the_latest_value() {
        let c = Coalescer::default();
        assert!(c.offer("bob", 1));
        assert!(!c.offer("bob", 2));
        assert!(!c.offer("bob", 3));
        assert_eq!(c.take(&"bob"), Some((None, 3)));
        assert_eq!(c.last(&"bob"), Some(3));
    }

    #[test]
    fn unchanged_values_are_not_sent_again() {
        let c = Coalescer::default();
        assert!(c.offer("bob", 1));
        assert_eq!(c.take(&"bob"), Some((None, 1)));
        assert!(!c.offer("bob", 1));
        // A change and its reversal within one window cancel out.
        assert!(c.offer("bob", 2));
        assert!(!c.offer("bob", 1));
        assert_eq!(c.take(&"bob"), None);
        // Keys are independent.
        assert!(c.offer("alice", 1));
        assert_eq!(c.take(&"alice"), Some((None, 1)));
        assert!(c.offer("alice", 2));
        assert_eq!(c.take(&"alice"), Some((Some(1), 2)));
    }
}
