//! People's notification choices (seed 002: "enable/disable what kind of communication actions
//! you receive notifications for"): per kind of notice, on or off, the channel, and the address.
//!
//! The decision every notifier asks is [`choice`]: given the person's stored row (if any) and the
//! kind's default, what applies. The bridge wraps it as `Bridge::choice(party, kind)`, reading the
//! row from the store (table `notification_choice`). Which channels a person may pick is the
//! admins' (`notifications.allowed_channels`, narrowed at run time to what is set up), checked
//! when a choice is made; addresses are checked here ([`check_email`]) or by the SMS module's
//! number rules (mobile numbers).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A call that rang at your phone and was not answered (`calls::rules`).
    MissedCalls,
    /// A message that stayed unread while you were away.
    MissedChats,
    /// A call waits to be picked up at a watched contact's phone.
    Pickup,
    /// A watched contact became available again or logged off (`core::watch`).
    StatusChanges,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::MissedCalls, Kind::MissedChats, Kind::Pickup, Kind::StatusChanges];

    /// The name people type and the store keeps.
    pub fn name(self) -> &'static str {
        match self {
            Kind::MissedCalls => "missed-calls",
            Kind::MissedChats => "missed-chats",
            Kind::Pickup => "pickup",
            Kind::StatusChanges => "status-changes",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The channels the bridge can deliver this kind on at all; the admins' allowed channels
    /// must be among them (checked with the config). Status changes and pickup alerts are
    /// short-lived news, so they come only as a chat notice.
    pub fn deliverable(self) -> &'static [Channel] {
        match self {
            Kind::MissedCalls => &[Channel::Chat, Channel::Email, Channel::Sms],
            Kind::MissedChats => &[Channel::Chat, Channel::Email],
            Kind::Pickup | Kind::StatusChanges => &[Channel::Chat],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a notice reaches the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Their chat with the bridge bot (Matrix) or a message from the component (XMPP).
    Chat,
    Email,
    Sms,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    pub fn parse(name: &str) -> Option<Channel> {
        [Channel::Chat, Channel::Email, Channel::Sms].into_iter().find(|c| c.name() == name)
    }

    /// Whether the channel needs an address (the chat is the person's own).
    pub fn takes_address(self) -> bool {
        self != Channel::Chat
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a person chose for one kind, as stored. `channel` `None`: the kind's usual channels;
/// `address` `None`: the address the bridge knows (e.g. `missed_calls.users[].email`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub enabled: bool,
    pub channel: Option<Channel>,
    pub address: Option<String>,
}

/// What applies to a person for one kind of notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Whether they get this kind of notice at all.
    pub enabled: bool,
    /// The one channel they chose; `None`: the kind's usual channels (for missed calls, every
    /// channel the rules use that can reach them; for the others, the chat).
    pub channel: Option<Channel>,
    /// Where to send on `channel` (an e-mail address, a mobile number in E.164); `None`: the
    /// address the bridge knows for them.
    pub address: Option<String>,
    /// The person chose (a stored row), rather than the default applying.
    pub chosen: bool,
}

/// The choice in effect: the stored one, else the kind's default (`default_on`: for missed
/// calls the rules' `default_opt_in` or the config's `opt_in`, otherwise on).
pub fn choice(stored: Option<&Stored>, default_on: bool) -> Choice {
    match stored {
        Some(s) => Choice { enabled: s.enabled, channel: s.channel, address: s.address.clone(), chosen: true },
        None => Choice { enabled: default_on, channel: None, address: None, chosen: false },
    }
}

/// The longest address kept (RFC 5321's limit of a forward path).
pub const MAX_ADDRESS: usize = 254;

/// Why an address cannot be used; said to the person as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("'{0}' is not an e-mail address (write it as name@example.org)")]
    NotEmail(String),
    #[error("an address has at most {} characters", MAX_ADDRESS)]
    TooLong,
    #[error("the chat needs no address (leave out --to)")]
    NotNeeded,
}

/// Check an e-mail address's syntax (the common form `local@domain.tld`, no display name, no
/// quoting, no spaces or control characters, at most [`MAX_ADDRESS`] characters); `Ok` is the
/// address trimmed. Deliverability is the SMTP server's to judge.
pub fn check_email(text: &str) -> Result<String, AddressError> {
    let address = text.trim();
    if address.chars().count() > MAX_ADDRESS {
        return Err(AddressError::TooLong);
    }
    let shown: String = address.chars().take(64).filter(|c| !c.is_control()).collect();
    let bad = || AddressError::NotEmail(shown.clone());
    let (local, domain) = address.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok { Ok(address.to_owned()) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name()), Some(k));
            assert!(k.deliverable().contains(&Channel::Chat), "{k}: every kind can come by chat");
        }
        for c in [Channel::Chat, Channel::Email, Channel::Sms] {
            assert_eq!(Channel::parse(c.name()), Some(c));
        }
        assert_eq!(Kind::parse("missed_calls"), None);
        assert!(!Kind::StatusChanges.deliverable().contains(&Channel::Email));
        assert!(Kind::MissedChats.deliverable().contains(&Channel::Email));
        assert!(!Kind::MissedChats.deliverable().contains(&Channel::Sms));
    }

    #[test]
    fn the_stored_choice_wins_over_the_default() {
        let none = choice(None, true);
        assert!(none.enabled && none.channel.is_none() && !none.chosen);
        assert!(!choice(None, false).enabled, "the kind's default (e.g. default_opt_in off)");
        let stored = Stored { enabled: false, channel: Some(Channel::Email), address: Some("a@b.org".into()) };
        let c = choice(Some(&stored), true);
        assert_eq!(
            (c.enabled, c.channel, c.address.as_deref(), c.chosen),
            (false, Some(Channel::Email), Some("a@b.org"), true)
        );
    }

    #[test]
    fn e_mail_addresses_are_checked() {
        assert_eq!(check_email("  ivo@calls.test "), Ok("ivo@calls.test".into()));
        assert!(check_email("first.last+tag@sub.example.org").is_ok());
        for bad in [
            "",
            "ivo",
            "ivo@",
            "@calls.test",
            "ivo@calls",
            "i vo@calls.test",
            "ivo@calls..test",
            "ivo@-calls.test",
            ".ivo@calls.test",
            "ivo..x@calls.test",
            "Ivo <ivo@calls.test>",
            "ivo@calls.test\nBcc: x@y.org",
        ] {
            assert!(matches!(check_email(bad), Err(AddressError::NotEmail(_))), "{bad:?}");
        }
        let long = format!("{}@example.org", "a".repeat(300));
        assert_eq!(check_email(&long), Err(AddressError::TooLong));
        let err = check_email("no-at-sign").unwrap_err().to_string();
        assert!(err.contains("'no-at-sign'") && err.contains("name@example.org"), "{err}");
    }
}
