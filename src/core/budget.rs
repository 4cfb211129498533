//! A token bucket: `capacity` at once, refilled at `per_hour`. Used where remote input could
//! otherwise make the bridge create things without limit (portal rooms).

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Budget {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl Budget {
    pub fn new(capacity: u32, per_hour: u32) -> Self {
        Self {
            capacity: f64::from(capacity),
            per_sec: f64::from(per_hour) / 3600.0,
            tokens: f64::from(capacity),
            last: None,
        }
    }

    /// Take one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the next token.
    pub fn wait(&self) -> Duration {
        if self.tokens >= 1.0 || self.per_sec == 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_refill_rate() {
        let t0 = Instant::now();
        let mut b = Budget::new(3, 60); // one a minute
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0), "the burst is spent");
        assert!(b.wait() > Duration::from_secs(59));
        assert!(!b.take(t0 + Duration::from_secs(30)));
        assert!(b.take(t0 + Duration::from_secs(61)));
        // Never more than the capacity, however long it rested.
        let later = t0 + Duration::from_secs(100_000);
        assert!(b.take(later) && b.take(later) && b.take(later));
        assert!(!b.take(later));
    }
}
