//! `notifications:` — what people may choose for their notices (`notifications` user command;
//! `core::notify_choice` holds the kinds and channels).

use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::core::notify_choice::{Channel, Kind};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notifications {
    pub allowed_channels: AllowedChannels,
}

/// `notifications.allowed_channels:` — per kind, the channels people may pick (still only where
/// set up: e-mail needs `missed_calls.mail`, SMS the `sms:` section and the person's `sms`
/// permission; missed calls also only the channels of `missed_calls.rules.channels`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllowedChannels {
    pub missed_calls: Vec<Channel>,
    pub missed_chats: Vec<Channel>,
    pub pickup: Vec<Channel>,
    pub status_changes: Vec<Channel>,
}

impl Default for AllowedChannels {
    fn default() -> Self {
        Self {
            missed_calls: vec![Channel::Chat, Channel::Email, Channel::Sms],
            missed_chats: vec![Channel::Chat, Channel::Email],
            pickup: vec![Channel::Chat],
            status_changes: vec![Channel::Chat],
        }
    }
}

impl AllowedChannels {
    /// The channels admins allow for a kind.
    pub fn of(&self, kind: Kind) -> &[Channel] {
        match kind {
            Kind::MissedCalls => &self.missed_calls,
            Kind::MissedChats => &self.missed_chats,
            Kind::Pickup => &self.pickup,
            Kind::StatusChanges => &self.status_changes,
        }
    }
}

impl Notifications {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for kind in Kind::ALL {
            for channel in self.allowed_channels.of(kind) {
                if !kind.deliverable().contains(channel) {
                    let can: Vec<&str> = kind.deliverable().iter().map(|c| c.name()).collect();
                    return Err(invalid(
                        key(kind),
                        format!("{kind} notices cannot go by {channel}; possible: {}", can.join(", ")),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn key(kind: Kind) -> &'static str {
    match kind {
        Kind::MissedCalls => "notifications.allowed_channels.missed_calls",
        Kind::MissedChats => "notifications.allowed_channels.missed_chats",
        Kind::Pickup => "notifications.allowed_channels.pickup",
        Kind::StatusChanges => "notifications.allowed_channels.status_changes",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_deliverable_and_others_are_refused_by_key() {
        assert!(Notifications::default().validate().is_ok());
        let mut n = Notifications::default();
        n.allowed_channels.status_changes.push(Channel::Email);
        let err = n.validate().unwrap_err().to_string();
        assert!(err.contains("notifications.allowed_channels.status_changes") && err.contains("email"), "{err}");
        let parsed: Notifications = yaml_serde::from_str("allowed_channels: {missed_calls: [chat]}").unwrap();
        assert_eq!(parsed.allowed_channels.of(Kind::MissedCalls), [Channel::Chat]);
        assert_eq!(parsed.allowed_channels.of(Kind::Pickup), [Channel::Chat], "unnamed kinds keep their default");
        assert!(yaml_serde::from_str::<Notifications>("allowed_channels: {missed_calls: [fax]}").is_err());
    }
}
