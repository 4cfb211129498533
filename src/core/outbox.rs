//! The outbox's retry rules, as plain code.
//!
//! An attempt either succeeds (the row is removed), fails for a reason that may pass (the
//! peer is down, rate limited, a 5xx: retry the same row later, keeping the lane blocked so
//! order holds), or fails for good (the request itself is refused: the row is removed and
//! its sender is told, so nothing disappears silently).

use std::time::Duration;

/// Result of one delivery attempt, as the adapters classify it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying: network error, peer down, 5xx, rate limit.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Retrying cannot help: the peer refused the request itself.
    #[error("refused: {0}")]
    Permanent(String),
}

/// What to do with an outbox row after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Delivered: remove the row.
    Done,
    /// Try the same row again after this delay.
    RetryAfter(Duration),
    /// Give up on this row and tell the sender why.
    GiveUp(String),
}

/// First retry delay; doubles per attempt up to [`MAX_DELAY`].
pub const BASE_DELAY: Duration = Duration::from_millis(250);
/// Longest wait between attempts while a peer is down.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// Decide what follows an attempt. `attempts` counts this attempt (1 for the first).
pub fn after_attempt(attempts: u32, result: Result<(), DeliveryError>) -> Next {
    match result {
        Ok(()) => Next::Done,
        Err(DeliveryError::Permanent(reason)) => Next::GiveUp(reason),
        Err(DeliveryError::Transient(_)) => Next::RetryAfter(backoff(attempts)),
    }
}

/// Exponential backoff: 250 ms, 500 ms, 1 s, … capped at 30 s. Transient failures are
/// retried for as long as it takes: an accepted message is never dropped for an outage.
pub fn backoff(attempts: u32) -> Duration {
    super::backoff::delay(BASE_DELAY, MAX_DELAY, attempts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_removes_the_row() {
        assert_eq!(after_attempt(1, Ok(())), Next::Done);
    }

    #[test]
    fn transient_failures_back_off_and_never_give_up() {
        let delays: Vec<_> = (1..=10)
            .map(|n| match after_attempt(n, Err(DeliveryError::Transient("down".into()))) {
                Next::RetryAfter(d) => d,
                other => panic!("attempt {n}: {other:?}"),
            })
            .collect();
        assert_eq!(delays[0], Duration::from_millis(250));
        assert_eq!(delays[1], Duration::from_millis(500));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*delays.last().unwrap(), MAX_DELAY);
        assert_eq!(backoff(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn permanent_failures_give_up_with_the_reason() {
        assert_eq!(
            after_attempt(1, Err(DeliveryError::Permanent("no such user".into()))),
            Next::GiveUp("no such user".into())
        );
    }
}
