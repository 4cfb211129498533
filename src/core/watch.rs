//! Status-change notifications: who watches whom, and which presence changes they hear of;
//! pickup alerts ("a call rings at X, who is not there: you may pick it up").

use std::fmt;

use crate::core::ids::{BareJid, MappingError, MatrixUserId};
use crate::core::mapping::IdentityMap;
use crate::core::presence::{Presence, State};

/// A person on either network. Serialized as its stored key (`matrix:@bob:hs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Party {
    Matrix(MatrixUserId),
    Xmpp(BareJid),
}

impl Party {
    /// The stored form: `matrix:@bob:hs` or `xmpp:alice@example.org`.
    pub fn key(&self) -> String {
        match self {
            Party::Matrix(u) => format!("matrix:{u}"),
            Party::Xmpp(j) => format!("xmpp:{j}"),
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        if let Some(u) = key.strip_prefix("matrix:") {
            return MatrixUserId::parse(u).ok().map(Party::Matrix);
        }
        key.strip_prefix("xmpp:").and_then(|j| BareJid::parse(j).ok()).map(Party::Xmpp)
    }

    /// Read what a person typed as a contact: a Matrix ID or a JID, on either network; the
    /// bridge's own addresses (ghosts, escaped JIDs) mean the person behind them.
    pub fn parse_contact(text: &str, map: &IdentityMap) -> Result<Self, ContactError> {
        if text.starts_with('@') {
            let user = MatrixUserId::parse(text)?;
            return Ok(match map.jid_for_ghost(&user) {
                Some(Ok(jid)) => Party::Xmpp(jid),
                _ => Party::Matrix(user),
            });
        }
        let jid = BareJid::parse(text)?;
        match (jid.local(), jid.domain() == map.component) {
            (Some(local), true) => Ok(map.matrix_for_jid(local).map(Party::Matrix)?),
            (Some(_), false) => Ok(Party::Xmpp(jid)),
            (None, _) => Err(ContactError::Server(text.to_owned())),
        }
    }
}

/// Why what a person typed is not a contact (said to them as it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error(transparent)]
    Address(#[from] MappingError),
    #[error("{0} is a server, not a person; write user@server or @user:server")]
    Server(String),
}

/// A stored party key (`matrix:@a:hs`, `xmpp:a@x`) that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a party key: {0}")]
pub struct BadPartyKey(String);

impl TryFrom<String> for Party {
    type Error = BadPartyKey;
    fn try_from(s: String) -> Result<Self, BadPartyKey> {
        Party::from_key(&s).ok_or(BadPartyKey(s))
    }
}

impl From<Party> for String {
    fn from(p: Party) -> String {
        p.key()
    }
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Party::Matrix(u) => write!(f, "{u}"),
            Party::Xmpp(j) => write!(f, "{j}"),
        }
    }
}

/// A presence change someone can ask to hear of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Became available (from any other state).
    Available,
    /// Logged off (from any other state).
    Offline,
}

/// The change from `before` to `after`, if it is one watches report. Without a known
/// `before` (just started) nothing is reported: it may be no change at all.
pub fn change(before: Option<&Presence>, after: &Presence) -> Option<Change> {
    let before = before?.state;
    match (before, after.state) {
        (b, State::Available) if b != State::Available => Some(Change::Available),
        (b, State::Offline) if b != State::Offline => Some(Change::Offline),
        _ => None,
    }
}

/// The notice for a change.
pub fn notice(target: &Party, change: Change, after: &Presence) -> String {
    let note = after.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
    match change {
        Change::Available => format!("{target} is available again{note}."),
        Change::Offline => format!("{target} has logged off{note}."),
    }
}

/// Is a call ringing at someone in this presence one for colleagues to pick up? Only when they
/// are not available (away, inactive, busy, do not disturb, offline).
pub fn calls_for_pickup(contact: &Presence) -> bool {
    contact.state != State::Available
}

/// Does a watcher get pickup alerts about a contact: their watch asks for them, and they may pick
/// up the contact's calls (the pickup groups). The one place this is decided; a person's own
/// notification choices belong here too.
pub fn wants_pickup_alert(watch_asks: bool, may_pick_up: bool) -> bool {
    watch_asks && may_pick_up
}

/// A call ringing at a watched contact, as the pickup alert names it.
#[derive(Debug, Clone, Copy)]
pub struct PickupCall<'a> {
    /// The caller's name from the contacts (else as the PBX gave it).
    pub caller_name: Option<&'a str>,
    /// The caller's number; `None`: withheld.
    pub caller_number: Option<&'a str>,
    pub contact: &'a Party,
    pub extension: &'a str,
    /// The contact's presence (not available).
    pub contact_presence: &'a Presence,
}

/// The pickup alert in the watcher's language (`de`; anything else is English).
pub fn pickup_notice(language: &str, call: &PickupCall<'_>) -> String {
    let german = language.eq_ignore_ascii_case("de");
    let caller = match (call.caller_name, call.caller_number) {
        (Some(name), Some(number)) => format!("{name} ({number})"),
        (None, Some(number)) => number.to_owned(),
        (Some(name), None) if german => format!("{name} (Nummer unterdrückt)"),
        (Some(name), None) => format!("{name} (number withheld)"),
        (None, None) if german => "Eine unterdrückte Nummer".to_owned(),
        (None, None) => "A withheld number".to_owned(),
    };
    let (contact, ext) = (call.contact, call.extension);
    if german {
        let state = match call.contact_presence.state {
            State::Away => "abwesend",
            State::Inactive => "inaktiv",
            State::Busy => "beschäftigt",
            State::DoNotDisturb => "auf „Nicht stören“",
            State::Offline | State::Available => "nicht angemeldet",
        };
        format!("📞 Anruf zum Heranholen: {caller} ruft {contact} an (Nebenstelle {ext}), {contact} ist {state}.")
    } else {
        let state = match call.contact_presence.state {
            State::Away => "away",
            State::Inactive => "inactive",
            State::Busy => "busy",
            State::DoNotDisturb => "on do not disturb",
            State::Offline | State::Available => "offline",
        };
        format!("📞 Call to pick up: {caller} is calling {contact} (extension {ext}), who is {state}.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickup_alerts_only_for_absent_contacts_and_entitled_watchers() {
        assert!(!calls_for_pickup(&Presence::new(State::Available, Some("here"))));
        for s in [State::Away, State::Inactive, State::Busy, State::DoNotDisturb, State::Offline] {
            assert!(calls_for_pickup(&Presence::new(s, None)), "{s:?}");
        }
        assert!(wants_pickup_alert(true, true));
        assert!(!wants_pickup_alert(true, false), "outside the contact's pickup group");
        assert!(!wants_pickup_alert(false, true), "the watch did not ask for pickup alerts");
        let pia = Party::Matrix(MatrixUserId::parse("@pia:hs").unwrap());
        let away = Presence::new(State::Away, None);
        let call = PickupCall {
            caller_name: Some("Erika Mustermann"),
            caller_number: Some("+49 30 1234567"),
            contact: &pia,
            extension: "211",
            contact_presence: &away,
        };
        assert_eq!(
            pickup_notice("en", &call),
            "📞 Call to pick up: Erika Mustermann (+49 30 1234567) is calling @pia:hs (extension 211), who is away."
        );
        assert!(pickup_notice("de", &call).contains("ruft @pia:hs an (Nebenstelle 211), @pia:hs ist abwesend"));
        let hidden = PickupCall { caller_name: None, caller_number: None, ..call };
        assert!(pickup_notice("en", &hidden).starts_with("📞 Call to pick up: A withheld number is calling"));
    }

    fn map() -> IdentityMap {
        IdentityMap {
            homeserver: "hs".into(),
            component: "bridge.x".into(),
            ghost_prefix: "_xmpp_".into(),
            bot_localpart: "ucbridge".into(),
            chatbot_localpart: None,
        }
    }

    #[test]
    fn contacts_resolve_to_the_person_behind_bridge_addresses() {
        let m = map();
        let alice = Party::Xmpp(BareJid::parse("alice@x").unwrap());
        let bob = Party::Matrix(MatrixUserId::parse("@bob:hs").unwrap());
        assert_eq!(Party::parse_contact("alice@x", &m).unwrap(), alice);
        assert_eq!(Party::parse_contact("@_xmpp_alice=40x:hs", &m).unwrap(), alice);
        assert_eq!(Party::parse_contact("@bob:hs", &m).unwrap(), bob);
        assert_eq!(Party::parse_contact("bob\\40hs@bridge.x", &m).unwrap(), bob);
        assert!(Party::parse_contact("x", &m).is_err());
        assert!(Party::parse_contact("@nope", &m).is_err());
        for p in [alice, bob] {
            assert_eq!(Party::from_key(&p.key()), Some(p));
        }
    }

    #[test]
    fn only_known_transitions_are_changes() {
        let p = |s| Presence::new(s, None);
        assert_eq!(change(Some(&p(State::Away)), &p(State::Available)), Some(Change::Available));
        assert_eq!(change(Some(&p(State::Offline)), &p(State::Available)), Some(Change::Available));
        assert_eq!(change(Some(&p(State::DoNotDisturb)), &p(State::Offline)), Some(Change::Offline));
        assert_eq!(change(Some(&p(State::Available)), &p(State::Available)), None);
        assert_eq!(change(Some(&p(State::Available)), &p(State::Away)), None);
        assert_eq!(change(None, &p(State::Available)), None);
        let n = notice(
            &Party::Xmpp(BareJid::parse("a@x").unwrap()),
            Change::Available,
            &Presence::new(State::Available, Some("back")),
        );
        assert_eq!(n, "a@x is available again (back).");
    }
}
