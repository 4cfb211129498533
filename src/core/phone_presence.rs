//! Presence from the phone: while a phone call of theirs is connected, a person is shown busy
//! (`📞 note`: Matrix `online`, XMPP `dnd`; see `presence.rs`) whatever their own presence. When
//! their last call ends, their own presence shows again: the latest one, so a change they made
//! during the call wins over what they had before it. Ringing is not a state.
//!
//! Plain state: the bridge (`bridge/phone.rs`) feeds it what the missed-call module reports,
//! stores each row so a restart can undo it, and shows [`PhoneCalls::shown`] wherever a
//! presence goes out.

use std::collections::{BTreeMap, HashMap};

use super::presence::{Presence, State};
use super::watch::Party;

/// Who is on the phone now: per person, their connected calls (call id → note to show).
#[derive(Debug, Default)]
pub struct PhoneCalls {
    people: HashMap<Party, BTreeMap<String, String>>,
}

impl PhoneCalls {
    /// Call `call` connected for `who`. `true`: they were not on the phone before (what is shown
    /// changes now).
    pub fn connected(&mut self, who: &Party, call: &str, note: &str) -> bool {
        let calls = self.people.entry(who.clone()).or_default();
        let first = calls.is_empty();
        calls.insert(call.to_owned(), note.to_owned());
        first
    }

    /// Call `call` no longer occupies `who`. `true`: it was their last one, so their own
    /// presence shows again.
    pub fn ended(&mut self, who: &Party, call: &str) -> bool {
        let Some(calls) = self.people.get_mut(who) else { return false };
        if calls.remove(call).is_none() {
            return false;
        }
        if calls.is_empty() {
            self.people.remove(who);
            return true;
        }
        false
    }

    /// The busy presence shown while `who` is on the phone.
    pub fn busy(&self, who: &Party) -> Option<Presence> {
        let note = self.people.get(who)?.values().next()?;
        Some(Presence::new(State::Busy, Some(note)))
    }

    /// What to show for `who`, whose own presence is `own`.
    pub fn shown(&self, who: &Party, own: Presence) -> Presence {
        self.busy(who).unwrap_or(own)
    }

    /// Everyone on the phone now.
    pub fn people(&self) -> Vec<Party> {
        self.people.keys().cloned().collect()
    }
}

/// What to show when someone's last call ended: their own presence as known now (they may have
/// changed it during the call: that wins), else as it was stored with the call (after a restart,
/// before they were heard from again), else offline.
pub fn after_call(known_now: Option<Presence>, stored: Option<Presence>) -> Presence {
    known_now.or(stored).unwrap_or(Presence { state: State::Offline, note: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::MatrixUserId;

    fn anna() -> Party {
        Party::Matrix(MatrixUserId::parse("@anna:hs").unwrap())
    }

    #[test]
    fn a_connected_call_shows_busy_until_the_last_call_ends() {
        let mut p = PhoneCalls::default();
        let own = Presence::new(State::Away, Some("lunch"));
        assert_eq!(p.shown(&anna(), own.clone()), own);
        assert!(p.connected(&anna(), "c1", "On the phone"));
        assert_eq!(p.shown(&anna(), own.clone()), Presence::new(State::Busy, Some("On the phone")));
        // A second call at once (call waiting): still busy, and the first end does not free her.
        assert!(!p.connected(&anna(), "c2", "On the phone"));
        assert!(!p.connected(&anna(), "c1", "On the phone"), "a repeated report changes nothing");
        assert!(!p.ended(&anna(), "c1"));
        assert_eq!(p.busy(&anna()).map(|b| b.state), Some(State::Busy));
        assert!(!p.ended(&anna(), "nope"), "an unknown call ends nothing");
        assert!(p.ended(&anna(), "c2"));
        assert_eq!(p.shown(&anna(), own.clone()), own);
        assert!(!p.ended(&anna(), "c2"), "ending twice is nothing");
        assert!(p.people().is_empty());
    }

    #[test]
    fn after_the_call_the_latest_own_presence_wins() {
        let before = Presence::new(State::Available, Some("at my desk"));
        let changed = Presence::new(State::DoNotDisturb, Some("writing"));
        // She changed her presence during the call: that is shown, not what she had before.
        assert_eq!(after_call(Some(changed.clone()), Some(before.clone())), changed);
        // Nothing heard since a restart: what was stored with the call.
        assert_eq!(after_call(None, Some(before.clone())), before);
        assert_eq!(after_call(None, None).state, State::Offline);
    }
}
