//! `missed_chats:` — a summary to people who left a message unread while away or offline.

use serde::Deserialize;

use super::{ConfigError, invalid};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MissedChats {
    /// Send summaries at all (each person can still switch theirs off: `missed-chats off`).
    pub enabled: bool,
    /// How long a message stays unread before its summary (default 900: 15 minutes).
    pub after_secs: u64,
    /// How often the stored unread state is checked (default 30 seconds).
    pub sweep_secs: u64,
}

impl Default for MissedChats {
    fn default() -> Self {
        Self { enabled: true, after_secs: 900, sweep_secs: 30 }
    }
}

impl MissedChats {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.after_secs == 0 || self.after_secs > 7 * 86_400 {
            return Err(invalid("missed_chats.after_secs", "expected 1 second to 7 days"));
        }
        if self.sweep_secs == 0 || self.sweep_secs > 3_600 {
            return Err(invalid("missed_chats.sweep_secs", "expected 1 to 3600 seconds"));
        }
        Ok(())
    }
}
