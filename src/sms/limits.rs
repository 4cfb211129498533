//! Rate limits for sending SMS: per person and for everyone together, per minute (a sliding
//! window kept in memory: a restart forgets at most a minute), and a daily cap per person counted
//! in SMS parts from the database (so it holds across restarts).

use std::collections::{HashMap, VecDeque};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Why a message may not go now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Limited {
    #[error("you sent {0} SMS in the last minute, the most allowed; try again in a minute")]
    PerUser(u32),
    #[error("the bridge is sending too many SMS right now ({0} a minute); try again in a minute")]
    Global(u32),
    #[error("this message ({parts} SMS) would exceed your daily limit of {cap} SMS ({used} sent today)")]
    Daily { used: u32, parts: u32, cap: u32 },
}

/// Per-minute windows. 0 switches a limit off.
#[derive(Debug, Default)]
pub struct RateLimiter {
    per_user: u32,
    global: u32,
    users: HashMap<String, VecDeque<i64>>,
    all: VecDeque<i64>,
}

fn prune(q: &mut VecDeque<i64>, now: i64) {
    while q.front().is_some_and(|&t| t <= now - MINUTE_MS) {
        q.pop_front();
    }
}

impl RateLimiter {
    pub fn new(per_user: u32, global: u32) -> Self {
        Self { per_user, global, ..Default::default() }
    }

    /// Take one message for `user` at `now_ms`, or say which limit stops it (nothing is taken then).
    pub fn take(&mut self, user: &str, now_ms: i64) -> Result<(), Limited> {
        prune(&mut self.all, now_ms);
        let mine = self.users.entry(user.to_owned()).or_default();
        prune(mine, now_ms);
        if self.per_user > 0 && mine.len() >= self.per_user as usize {
            return Err(Limited::PerUser(self.per_user));
        }
        if self.global > 0 && self.all.len() >= self.global as usize {
            return Err(Limited::Global(self.global));
        }
        mine.push_back(now_ms);
        self.all.push_back(now_ms);
        // Forget people who have been quiet for a minute, so the map does not grow forever.
        self.users.retain(|_, q| q.back().is_some_and(|&t| t > now_ms - MINUTE_MS));
        Ok(())
    }
}

/// The daily cap: `used` parts sent today, `parts` more asked for.
pub fn check_daily(used: u32, parts: u32, cap: u32) -> Result<(), Limited> {
    if cap > 0 && used.saturating_add(parts) > cap { Err(Limited::Daily { used, parts, cap }) } else { Ok(()) }
}

/// Start of the UTC day that contains `now_ms`.
pub fn day_start(now_ms: i64) -> i64 {
    now_ms.div_euclid(DAY_MS) * DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_window_slides() {
        let mut r = RateLimiter::new(2, 0);
        assert!(r.take("a", 0).is_ok());
        assert!(r.take("a", 10).is_ok());
        assert_eq!(r.take("a", 20), Err(Limited::PerUser(2)));
        assert!(r.take("b", 20).is_ok(), "others are not affected");
        assert!(r.take("a", MINUTE_MS + 1).is_ok(), "the first one left the window");
    }

    #[test]
    fn global_limit_counts_everyone_and_refusals_take_nothing() {
        let mut r = RateLimiter::new(0, 3);
        for u in ["a", "b", "c"] {
            assert!(r.take(u, 0).is_ok());
        }
        assert_eq!(r.take("d", 1), Err(Limited::Global(3)));
        assert_eq!(r.take("d", 2), Err(Limited::Global(3)));
        assert!(r.take("d", MINUTE_MS).is_ok());
    }

    #[test]
    fn daily_cap_counts_parts() {
        assert!(check_daily(8, 2, 10).is_ok());
        assert_eq!(check_daily(9, 2, 10), Err(Limited::Daily { used: 9, parts: 2, cap: 10 }));
        assert!(check_daily(1000, 5, 0).is_ok(), "0 = off");
        assert_eq!(day_start(DAY_MS + 5), DAY_MS);
    }
}
