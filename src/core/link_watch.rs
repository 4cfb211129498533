//! Whether a peer link (the homeserver, the XMPP server) is up, as the bridge's admins are told:
//! a link that was up and is lost is reported once, and again when it is back with how long it
//! was away. Plain code fed by a periodic check (`bridge/status.rs`).

use std::time::Duration;

/// What changed, worth a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The link was up and is now down (after `misses` failed checks in a row).
    Lost,
    /// The link is back after being reported lost; it was away this long.
    Back { after: Duration },
}

/// One link's state.
#[derive(Debug, Clone)]
pub struct LinkWatch {
    /// Failed checks in a row before the link counts as lost (one slow answer is no outage).
    misses_to_lose: u32,
    /// Never up yet: failures before the first success are the start-up, not an outage.
    seen_up: bool,
    misses: u32,
    /// When the link was reported lost (ms), while it is.
    lost_at: Option<i64>,
    /// When the first failed check of the current run was seen (ms).
    first_miss_at: Option<i64>,
}

impl LinkWatch {
    pub fn new(misses_to_lose: u32) -> Self {
        Self { misses_to_lose: misses_to_lose.max(1), seen_up: false, misses: 0, lost_at: None, first_miss_at: None }
    }

    /// Whether the link counts as up now (not yet seen up: not up).
    pub fn is_up(&self) -> bool {
        self.seen_up && self.lost_at.is_none() && self.misses < self.misses_to_lose
    }

    /// Record a check's outcome at `now_ms`; what changed, if anything is worth telling.
    pub fn observe(&mut self, up: bool, now_ms: i64) -> Option<Change> {
        if up {
            self.seen_up = true;
            self.misses = 0;
            self.first_miss_at = None;
            let lost_at = self.lost_at.take()?;
            let after = Duration::from_millis(now_ms.saturating_sub(lost_at).max(0).unsigned_abs());
            return Some(Change::Back { after });
        }
        if !self.seen_up || self.lost_at.is_some() {
            return None;
        }
        self.misses += 1;
        let first = *self.first_miss_at.get_or_insert(now_ms);
        if self.misses >= self.misses_to_lose {
            self.lost_at = Some(first);
            return Some(Change::Lost);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_before_the_first_success_are_the_start_up() {
        let mut w = LinkWatch::new(1);
        assert_eq!(w.observe(false, 0), None);
        assert!(!w.is_up());
        assert_eq!(w.observe(true, 10), None, "coming up the first time is no news");
        assert!(w.is_up());
    }

    #[test]
    fn a_lost_link_is_told_once_and_its_return_with_the_time_away() {
        let mut w = LinkWatch::new(1);
        w.observe(true, 0);
        assert_eq!(w.observe(false, 1_000), Some(Change::Lost));
        assert!(!w.is_up());
        assert_eq!(w.observe(false, 2_000), None, "still down: said already");
        assert_eq!(w.observe(true, 6_000), Some(Change::Back { after: Duration::from_secs(5) }));
        assert_eq!(w.observe(true, 7_000), None);
    }

    #[test]
    fn one_slow_answer_is_no_outage_when_two_misses_are_needed() {
        let mut w = LinkWatch::new(2);
        w.observe(true, 0);
        assert_eq!(w.observe(false, 1_000), None);
        assert!(w.is_up(), "one miss is not yet down");
        assert_eq!(w.observe(true, 2_000), None, "recovered before it counted: nothing to tell");
        assert_eq!(w.observe(false, 3_000), None);
        assert_eq!(w.observe(false, 4_000), Some(Change::Lost));
        assert_eq!(w.observe(true, 9_000), Some(Change::Back { after: Duration::from_secs(6) }), "from the first miss");
    }
}
