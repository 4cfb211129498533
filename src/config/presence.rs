//! `presence:` — how presence changes what the bridge does: messages from XMPP to a Matrix user
//! in "do not disturb" (`core::presence::DndDelivery`).

use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::core::presence::DndDelivery;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Presence {
    /// A message from XMPP to a Matrix user in do-not-disturb: `now` (as usual), `quiet` (as an
    /// `m.notice`, which clients do not push) or `later` (held until DND ends).
    pub dnd_delivery: DndDelivery,
    /// With `later`: the longest a message is held, in minutes; then it goes as with `quiet`.
    pub dnd_max_hold_minutes: u32,
}

impl Default for Presence {
    fn default() -> Self {
        Self { dnd_delivery: DndDelivery::Quiet, dnd_max_hold_minutes: 8 * 60 }
    }
}

impl Presence {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=7 * 24 * 60).contains(&self.dnd_max_hold_minutes) {
            return Err(invalid("presence.dnd_max_hold_minutes", "must be between 1 and 10080 (a week)"));
        }
        Ok(())
    }

    /// The longest hold, in ms.
    pub fn max_hold_ms(&self) -> i64 {
        i64::from(self.dnd_max_hold_minutes) * 60 * 1000
    }
}
