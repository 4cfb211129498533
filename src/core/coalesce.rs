//! Coalescing of state updates (presence): per key, at most one update goes out per window,
//! it carries the latest value, and nothing goes out if the value did not change.
//!
//! Plain state; the caller owns the timer: when [`Coalescer::offer`] returns `true`, it waits
//! the window and then calls [`Coalescer::take`].
//!
//! Keys come from remote input, so the map is bounded: at most `cap` slots (a new key past it is
//! refused), and [`Coalescer::sweep`] drops slots idle for a while whose last value no longer
//! needs remembering (e.g. offline).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Slot<V> {
    sent: Option<V>,
    pending: Option<V>,
    scheduled: bool,
    touched: Instant,
}

pub struct Coalescer<K, V> {
    slots: Mutex<HashMap<K, Slot<V>>>,
    cap: usize,
}

/// Default bound on the number of keys.
pub const DEFAULT_CAP: usize = 50_000;

impl<K, V> Default for Coalescer<K, V> {
    fn default() -> Self {
        Self::with_cap(DEFAULT_CAP)
    }
}

impl<K, V> Coalescer<K, V> {
    pub fn with_cap(cap: usize) -> Self {
        Self { slots: Mutex::new(HashMap::new()), cap }
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Eq + Hash + Clone, V: Clone + PartialEq> Coalescer<K, V> {
    /// Note a new value. `true`: the caller must schedule a [`Coalescer::take`] after the window.
    pub fn offer(&self, key: K, value: V) -> bool {
        let Ok(mut slots) = self.slots.lock() else { return false };
        if !slots.contains_key(&key) && slots.len() >= self.cap {
            return false;
        }
        let now = Instant::now();
        let slot = slots.entry(key).or_insert(Slot { sent: None, pending: None, scheduled: false, touched: now });
        slot.touched = now;
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

    /// Drop the slots untouched for `idle` whose last value `keep` does not need kept, and
    /// that have nothing pending. Returns how many were dropped.
    pub fn sweep(&self, idle: Duration, keep: impl Fn(&V) -> bool) -> usize {
        let Ok(mut slots) = self.slots.lock() else { return 0 };
        let before = slots.len();
        let now = Instant::now();
        slots.retain(|_, s| {
            s.scheduled
                || s.pending.is_some()
                || now.saturating_duration_since(s.touched) < idle
                || s.sent.as_ref().is_some_and(&keep)
        });
        before - slots.len()
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

    #[test]
    fn keys_are_bounded_and_idle_slots_are_swept() {
        let c = Coalescer::with_cap(2);
        assert!(c.offer("a", 1));
        assert!(c.offer("b", 0));
        // A third key past the cap is refused; known keys still work.
        assert!(!c.offer("c", 1));
        assert_eq!(c.len(), 2);
        assert_eq!(c.take(&"a"), Some((None, 1)));
        assert_eq!(c.take(&"b"), Some((None, 0)));
        // Nothing is swept while fresh.
        assert_eq!(c.sweep(Duration::from_secs(60), |v| *v != 0), 0);
        // Idle: the slot whose last value is "0" (offline) goes, the other is kept.
        assert_eq!(c.sweep(Duration::ZERO, |v| *v != 0), 1);
        assert_eq!(c.len(), 1);
        assert_eq!(c.last(&"b"), None);
        assert_eq!(c.last(&"a"), Some(1));
        // A slot with an update in flight is never swept.
        assert!(c.offer("c", 0));
        assert_eq!(c.sweep(Duration::ZERO, |_| false), 1);
        assert_eq!(c.take(&"c"), Some((None, 0)));
    }
}
