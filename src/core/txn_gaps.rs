//! Spotting appservice transactions the homeserver stranded.
//!
//! Synapse numbers transactions from one increasing sequence and, for one appservice, sends
//! them one at a time. While it considers the bridge down it only queues them, and a
//! "recoverer" sends the queue oldest first. It has a race at the end of that flush: a
//! transaction created just before the recoverer declares the bridge up is left in the
//! queue, unsent, until the next time a send to the bridge fails (seen in the SIGKILL test:
//! one message missing minutes after the restart, with later ones delivered).
//!
//! The bridge sees that as a gap in the transaction ids. Shortly after a recovery (the
//! bridge's start, or a transaction it failed), a gap is answered by refusing the
//! transaction that reveals it: Synapse then starts a recoverer, which sends its queue oldest
//! first, so the stranded transaction arrives before the refused one and order is kept. If
//! the refused id comes back with the gap still open, the missing ids were not ours (the
//! sequence is shared by every appservice of the homeserver) and it is accepted.
//! Refusals are bounded per window, so a homeserver with several appservices costs at most a
//! few short delays after a restart.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// How long after a recovery a gap counts as a possible strand.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most refusals in one window.
pub const REFUSALS_PER_WINDOW: u32 = 3;

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Refuse it (a 5xx) so that the homeserver re-sends its queue, oldest first.
    Refuse {
        missing_from: u64,
        missing_to: u64,
    },
}

#[derive(Debug, Default)]
pub struct StrandGuard {
    highest: Option<u64>,
    armed_until: Option<Instant>,
    refusals_left: u32,
    refused: HashSet<u64>,
}

impl StrandGuard {
    /// A guard armed from `now` (the bridge just started: the homeserver may be flushing).
    pub fn armed(now: Instant) -> StrandGuard {
        let mut guard = StrandGuard::default();
        guard.arm(now);
        guard
    }

    /// The homeserver is (or will be) recovering: it retried a transaction, or the bridge
    /// answered one with an error.
    pub fn arm(&mut self, now: Instant) {
        self.armed_until = Some(now + WINDOW);
        self.refusals_left = REFUSALS_PER_WINDOW;
    }

    /// Decide on a transaction id as it arrives (before anything in it is processed).
    pub fn on_transaction(&mut self, txn_id: &str, now: Instant) -> Verdict {
        // Only homeservers with numeric ids (Synapse) can be reasoned about.
        let Ok(id) = txn_id.parse::<u64>() else { return Verdict::Accept };
        let Some(highest) = self.highest else {
            self.highest = Some(id);
            return Verdict::Accept;
        };
        if id <= highest {
            // A repeat or an old one: the homeserver is retrying, so a flush is under way.
            self.arm(now);
            return Verdict::Accept;
        }
        let armed = self.armed_until.is_some_and(|until| now < until);
        if id > highest + 1 && armed && self.refusals_left > 0 && self.refused.insert(id) {
            self.refusals_left -= 1;
            // Our refusal starts a new recovery, which can strand again at its end.
            self.armed_until = Some(now + WINDOW);
            return Verdict::Refuse { missing_from: highest + 1, missing_to: id - 1 };
        }
        self.highest = Some(id);
        self.refused.retain(|r| *r > id);
        Verdict::Accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(guard: &mut StrandGuard, ids: &[&str], now: Instant) -> Vec<bool> {
        ids.iter().map(|id| guard.on_transaction(id, now) == Verdict::Accept).collect()
    }

    #[test]
    fn consecutive_ids_pass() {
        let now = Instant::now();
        let mut g = StrandGuard::armed(now);
        assert_eq!(run(&mut g, &["5", "6", "7", "8"], now), [true; 4]);
    }

    #[test]
    fn a_stranded_transaction_is_fetched_in_order() {
        let now = Instant::now();
        let mut g = StrandGuard::armed(now);
        assert_eq!(run(&mut g, &["185", "186"], now), [true, true]);
        // 187 stranded; 188 reveals it and is refused.
        assert_eq!(g.on_transaction("188", now), Verdict::Refuse { missing_from: 187, missing_to: 187 });
        // The recovery sends the queue oldest first.
        assert_eq!(run(&mut g, &["187", "188", "189"], now), [true, true, true]);
    }

    #[test]
    fn a_foreign_gap_costs_one_refusal() {
        let now = Instant::now();
        let mut g = StrandGuard::armed(now);
        assert!(g.on_transaction("10", now) == Verdict::Accept);
        assert!(matches!(g.on_transaction("12", now), Verdict::Refuse { .. }));
        // 11 belonged to another appservice: 12 comes again with the gap still open.
        assert_eq!(g.on_transaction("12", now), Verdict::Accept);
        assert_eq!(g.on_transaction("13", now), Verdict::Accept);
    }

    #[test]
    fn refusals_are_bounded_per_window() {
        let now = Instant::now();
        let mut g = StrandGuard::armed(now);
        g.on_transaction("1", now);
        let verdicts: Vec<bool> =
            ["3", "3", "5", "5", "7", "7", "9"].iter().map(|id| g.on_transaction(id, now) == Verdict::Accept).collect();
        assert_eq!(verdicts, [false, true, false, true, false, true, true]);
    }

    #[test]
    fn gaps_outside_a_recovery_window_are_accepted() {
        let start = Instant::now();
        let mut g = StrandGuard::armed(start);
        g.on_transaction("1", start);
        let later = start + WINDOW + Duration::from_secs(1);
        assert_eq!(g.on_transaction("4", later), Verdict::Accept);
        // A failed transaction arms it again.
        g.arm(later);
        assert!(matches!(g.on_transaction("6", later), Verdict::Refuse { missing_from: 5, missing_to: 5 }));
    }

    #[test]
    fn a_retried_transaction_arms_the_guard() {
        let start = Instant::now();
        let mut g = StrandGuard::armed(start);
        g.on_transaction("1", start);
        g.on_transaction("2", start);
        let later = start + WINDOW * 2;
        assert_eq!(g.on_transaction("2", later), Verdict::Accept);
        assert!(matches!(g.on_transaction("4", later), Verdict::Refuse { .. }));
    }

    #[test]
    fn non_numeric_ids_are_not_tracked() {
        let now = Instant::now();
        let mut g = StrandGuard::armed(now);
        assert_eq!(run(&mut g, &["abc", "1", "x9", "3"], now), [true, true, true, false]);
    }
}
