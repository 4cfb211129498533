//! Token buckets, where remote input could otherwise make the bridge create things without
//! limit: one [`Budget`] (linked MUCs' rooms), or one per key with [`Budgets`] (ghosts per remote
//! domain). What exceeds a budget is refused, not queued.

use std::collections::HashMap;
use std::time::Instant;

/// `capacity` at once, then refilled at a steady rate.
#[derive(Debug, Clone)]
pub struct Budget {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl Budget {
    pub fn per_hour(capacity: u32, per_hour: u32) -> Self {
        Self::per_second(capacity, f64::from(per_hour) / 3600.0)
    }

    pub fn per_second(capacity: u32, per_sec: f64) -> Self {
        Self { capacity: f64::from(capacity), per_sec, tokens: f64::from(capacity), last: None }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        }
        self.last = Some(now);
    }

    /// Take one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Refilled completely by `now`: it remembers nothing a fresh budget would not.
    fn full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }
}

/// One [`Budget`] per key (a remote domain). Keys come from remote input, so at most
/// `max_keys` are kept: full budgets are forgotten to make room, and a new key past that is
/// refused.
pub struct Budgets {
    fresh: Budget,
    max_keys: usize,
    budgets: HashMap<String, Budget>,
}

impl Budgets {
    pub fn per_second(capacity: u32, per_sec: f64, max_keys: usize) -> Self {
        Self { fresh: Budget::per_second(capacity, per_sec), max_keys, budgets: HashMap::new() }
    }

    /// Take one token of `key`'s budget; `false`: over the rate (or too many keys), refuse.
    pub fn take(&mut self, key: &str, now: Instant) -> bool {
        if !self.budgets.contains_key(key) && self.budgets.len() >= self.max_keys {
            self.budgets.retain(|_, b| !b.full(now));
            if self.budgets.len() >= self.max_keys {
                return false;
            }
        }
        self.budgets.entry(key.to_owned()).or_insert_with(|| self.fresh.clone()).take(now)
    }

    pub fn len(&self) -> usize {
        self.budgets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_refill_rate() {
        let t0 = Instant::now();
        let mut b = Budget::per_hour(3, 60); // one a minute
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0), "the burst is spent");
        assert!(!b.take(t0 + Duration::from_secs(30)));
        assert!(b.take(t0 + Duration::from_secs(61)));
        // Never more than the capacity, however long it rested.
        let later = t0 + Duration::from_secs(100_000);
        assert!(b.take(later) && b.take(later) && b.take(later));
        assert!(!b.take(later));
    }

    #[test]
    fn budgets_per_key_refuse_past_the_rate_and_stay_bounded() {
        let t0 = Instant::now();
        let mut b = Budgets::per_second(3, 1.0, 2);
        assert!(b.take("evil.example", t0));
        assert!(b.take("evil.example", t0));
        assert!(b.take("evil.example", t0));
        assert!(!b.take("evil.example", t0), "a fourth at once is refused");
        // Another domain has its own budget.
        for _ in 0..3 {
            assert!(b.take("good.example", t0));
        }
        // One token back per second.
        let t1 = t0 + Duration::from_millis(1100);
        assert!(b.take("evil.example", t1));
        assert!(!b.take("evil.example", t1));
        // A third domain while both budgets are in use: refused, the map does not grow.
        assert!(!b.take("third.example", t1));
        assert_eq!(b.len(), 2);
        // Once the others refilled, they are forgotten and make room.
        let t2 = t0 + Duration::from_secs(10);
        assert!(b.take("third.example", t2));
        assert_eq!(b.len(), 1);
    }
}
