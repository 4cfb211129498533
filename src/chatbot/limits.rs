//! The assistant's limits (`chatbot.limits`): messages per minute per person (kept in memory: a
//! restart forgiving a minute is harmless), and daily token budgets per person and for everyone
//! together (counted in the store per UTC day, so they hold across restarts). Plain code: the
//! bridge passes the counts in.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// `chatbot.limits:` — each is off when not given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Messages one person may send the assistant per minute.
    #[serde(default)]
    pub messages_per_minute: Option<u32>,
    /// Tokens (as the provider counts them) one person may use per UTC day.
    #[serde(default)]
    pub daily_tokens_per_user: Option<u64>,
    /// Tokens everyone together may use per UTC day.
    #[serde(default)]
    pub daily_tokens_total: Option<u64>,
}

/// Why a message is refused, told to the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitRefusal {
    #[error("Sorry, that is too many messages: at most {0} a minute. Please wait a moment.")]
    Rate(u32),
    #[error("Sorry, you have used your daily budget of {0} tokens for the AI assistant. It renews at midnight UTC.")]
    UserBudget(u64),
    #[error("Sorry, the AI assistant's daily budget of {0} tokens for everyone is used up. It renews at midnight UTC.")]
    TotalBudget(u64),
}

/// Messages per person in the last minute.
#[derive(Debug, Default)]
pub struct RateLimiter {
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    /// Count a message of `who` at `now`; `false` when it is over `per_minute` (then it is not
    /// counted, so a refused burst does not extend the wait).
    pub fn allow(&self, who: &str, per_minute: u32, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let times = seen.entry(who.to_owned()).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60)) {
            times.pop_front();
        }
        if times.len() >= per_minute as usize {
            return false;
        }
        times.push_back(now);
        true
    }
}

impl Limits {
    /// Refuse a question when a budget is used up: `used_by_them` and `used_total` are today's
    /// tokens so far.
    pub fn check_budget(&self, used_by_them: u64, used_total: u64) -> Result<(), LimitRefusal> {
        if let Some(max) = self.daily_tokens_per_user
            && used_by_them >= max
        {
            return Err(LimitRefusal::UserBudget(max));
        }
        if let Some(max) = self.daily_tokens_total
            && used_total >= max
        {
            return Err(LimitRefusal::TotalBudget(max));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), &'static str> {
        if self.messages_per_minute == Some(0) {
            return Err("chatbot.limits.messages_per_minute must be at least 1");
        }
        if self.daily_tokens_per_user == Some(0) || self.daily_tokens_total == Some(0) {
            return Err("chatbot.limits: a daily token budget must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_counts_the_last_minute_per_person() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        assert!(limiter.allow("a", 2, t0));
        assert!(limiter.allow("a", 2, t0 + Duration::from_secs(1)));
        assert!(!limiter.allow("a", 2, t0 + Duration::from_secs(2)), "the third within a minute");
        assert!(limiter.allow("b", 2, t0 + Duration::from_secs(2)), "someone else is not affected");
        assert!(!limiter.allow("a", 2, t0 + Duration::from_secs(59)));
        // A minute after the first, one more.
        assert!(limiter.allow("a", 2, t0 + Duration::from_secs(60)));
        assert!(!limiter.allow("a", 2, t0 + Duration::from_secs(60)));
    }

    #[test]
    fn budgets_refuse_once_used_up() {
        let limits =
            Limits { messages_per_minute: None, daily_tokens_per_user: Some(100), daily_tokens_total: Some(500) };
        assert_eq!(limits.check_budget(99, 499), Ok(()));
        assert_eq!(limits.check_budget(100, 0), Err(LimitRefusal::UserBudget(100)));
        assert_eq!(limits.check_budget(0, 500), Err(LimitRefusal::TotalBudget(500)));
        assert_eq!(Limits::default().check_budget(u64::MAX, u64::MAX), Ok(()));
        assert!(LimitRefusal::UserBudget(100).to_string().contains("daily budget of 100 tokens"));
    }
}
