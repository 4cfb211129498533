//! Waits between retries, for every retry loop of the bridge: the delay doubles from a first
//! value up to a cap (the `backon` crate's exponential backoff). Loops that run until they
//! succeed hold a [`Backoff`] and reset it after a success; retries whose attempt count is
//! stored (outbox rows) or counted by the caller (chatbot requests) take [`delay`] of attempt n.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

fn builder(first: Duration, max: Duration) -> ExponentialBuilder {
    ExponentialBuilder::new().with_factor(2.0).with_min_delay(first).with_max_delay(max).without_max_times()
}

/// The delays of one reconnect loop: `first`, twice that, … up to `max`, then `max` for ever.
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    max: Duration,
    delays: ExponentialBackoff,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        let builder = builder(first, max);
        Backoff { builder, max, delays: builder.build() }
    }

    /// How long to wait before the next attempt (each call doubles the next one).
    pub fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max)
    }

    /// Start again from the first delay (after a success).
    pub fn reset(&mut self) {
        self.delays = self.builder.build();
    }
}

/// The delay after failed attempt `attempt` (1 for the first): `first` · 2^(attempt−1), at
/// most `max`.
pub fn delay(first: Duration, max: Duration, attempt: u32) -> Duration {
    // From the 40th doubling on every delay is capped: no need to walk further.
    let steps = attempt.saturating_sub(1).min(40) as usize;
    builder(first, max).build().nth(steps).unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(500 * MS, 3000 * MS);
        let seen: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(seen, [500 * MS, 1000 * MS, 2000 * MS, 3000 * MS, 3000 * MS, 3000 * MS]);
        b.reset();
        assert_eq!(b.next_delay(), 500 * MS);
    }

    #[test]
    fn delay_of_an_attempt() {
        assert_eq!(delay(250 * MS, Duration::from_secs(30), 1), 250 * MS);
        assert_eq!(delay(250 * MS, Duration::from_secs(30), 0), 250 * MS);
        assert_eq!(delay(250 * MS, Duration::from_secs(30), 3), 1000 * MS);
        assert_eq!(delay(250 * MS, Duration::from_secs(30), u32::MAX), Duration::from_secs(30));
        assert_eq!(delay(Duration::from_secs(1), Duration::MAX, 5), Duration::from_secs(16));
    }
}
