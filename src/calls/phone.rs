//! What the phone tells the chat: who is on the phone (presence from the phone) and which calls
//! ring at whom (pickup alerts). A connected call occupies whoever answered it and, for a call
//! made from inside, the caller; ringing occupies nobody. [`Phones`] is plain state the event
//! processor (`service.rs`) updates after each event, webhook or AMI alike; the bridge hears of
//! the changes through [`CallsHost`](super::service::CallsHost).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::event::{CallId, Extension};
use super::model::{Call, CallTracker};
use super::rules::{Directory, UserEntry, UserId};
use super::service::CallsService;
use crate::core::watch::Party;

/// A call started or stopped showing someone busy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneChange {
    pub call: String,
    /// The person's chat accounts.
    pub accounts: Vec<Party>,
    /// The note to show with the busy state; `None`: the call no longer occupies them.
    pub busy: Option<String>,
}

/// A call rang anew at a line owner's phone (for pickup alerts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupRing {
    pub call: String,
    pub extension: String,
    /// The phone's owner's chat accounts.
    pub contact: Vec<Party>,
    /// From the contacts, else as the PBX named the caller.
    pub caller_name: Option<String>,
    /// `None`: withheld.
    pub caller_number: Option<String>,
}

/// Who each call in progress occupies, and where it has rung.
#[derive(Debug, Default)]
pub struct Phones {
    occupied: HashMap<CallId, BTreeSet<UserId>>,
    rang: HashMap<CallId, HashSet<Extension>>,
}

impl Phones {
    /// `call` occupies `now` (empty once it is over or was never answered): who became busy
    /// (`true`) or free (`false`) by it.
    pub fn occupy(&mut self, call: &CallId, now: BTreeSet<UserId>) -> Vec<(UserId, bool)> {
        let before = self.occupied.remove(call).unwrap_or_default();
        let mut changes: Vec<(UserId, bool)> = now.difference(&before).map(|u| (u.clone(), true)).collect();
        changes.extend(before.difference(&now).map(|u| (u.clone(), false)));
        if !now.is_empty() {
            self.occupied.insert(call.clone(), now);
        }
        changes
    }

    /// `extension` rang for `call`: `true` the first time in this call (an alert is due).
    pub fn rang(&mut self, call: &CallId, extension: &Extension) -> bool {
        self.rang.entry(call.clone()).or_default().insert(extension.clone())
    }

    /// `call` is over: forget where it rang.
    pub fn forget(&mut self, call: &CallId) {
        self.rang.remove(call);
    }

    /// Every (call, person) that shows someone busy now.
    pub fn busy(&self) -> Vec<(CallId, UserId)> {
        let mut all: Vec<_> =
            self.occupied.iter().flat_map(|(c, users)| users.iter().map(|u| (c.clone(), u.clone()))).collect();
        all.sort();
        all
    }
}

/// Who `call` occupies: whoever answered it and, for a call made from inside, the caller; nobody
/// while it only rings.
pub fn occupants(directory: &Directory, call: &Call) -> BTreeSet<UserId> {
    let Some(answer) = call.answer() else { return BTreeSet::new() };
    let mut out = BTreeSet::new();
    if let Some(owner) = directory.owner_of_extension(&answer.by) {
        out.insert(owner.id.clone());
    }
    if call.direction() != super::event::Direction::Inbound
        && let Some(owner) = call.caller().visible_number().and_then(|n| directory.owner_of_number(n))
    {
        out.insert(owner.id.clone());
    }
    out
}

/// The line owner one of whose chat accounts `who` is.
fn line_of<'a>(directory: &'a Directory, who: &Party) -> Option<&'a UserEntry> {
    let key = who.key();
    directory.users().iter().find(|u| u.logon_keys().contains(&key))
}

/// A line owner's chat accounts.
pub fn accounts(entry: &UserEntry) -> Vec<Party> {
    entry.logon_keys().iter().filter_map(|k| Party::from_key(k)).collect()
}

impl CallsService {
    /// After an event of `call` was applied (`live`: not a replay at start): who the call
    /// occupies now, and a new ring at `ring` for pickup alerts.
    pub(super) fn phone_after_event(
        &self,
        tracker: &CallTracker,
        phones: &mut Phones,
        call: &CallId,
        ring: Option<Extension>,
        live: bool,
    ) {
        let current = self.live();
        let base = self.base();
        let on = base.presence_from_calls.enabled;
        let now = match tracker.get(call) {
            Some(c) if on => occupants(&current.directory, c),
            _ => BTreeSet::new(),
        };
        let changes = phones.occupy(call, now);
        if tracker.get(call).is_none() {
            phones.forget(call);
        }
        if !live {
            return;
        }
        let changes: Vec<PhoneChange> = changes
            .into_iter()
            .filter_map(|(user, busy)| {
                let entry = current.directory.get(&user)?;
                let note = busy.then(|| self.busy_note(entry));
                Some(PhoneChange { call: call.to_string(), accounts: accounts(entry), busy: note })
                    .filter(|c| !c.accounts.is_empty())
            })
            .collect();
        if !changes.is_empty() {
            self.host.phone_presence(changes);
        }
        let Some(extension) = ring else { return };
        if !phones.rang(call, &extension) {
            return;
        }
        let (Some(c), Some(owner)) = (tracker.get(call), current.directory.owner_of_extension(&extension)) else {
            return;
        };
        let number = c.caller().visible_number().map(str::to_owned);
        let contact_name = number.as_deref().and_then(|n| current.contacts.lookup(n)).and_then(|k| k.display_name());
        self.host.call_ringing(PickupRing {
            call: call.to_string(),
            extension: extension.to_string(),
            contact: accounts(owner),
            caller_name: contact_name.map(str::to_owned).or_else(|| c.caller().name.clone()),
            caller_number: number,
        });
    }

    /// After the replay at start: everyone the calls in progress show busy (the bridge undoes
    /// what it stored for calls that ended meanwhile).
    pub(super) fn phone_after_replay(&self, phones: &Phones) {
        let current = self.live();
        let busy = phones
            .busy()
            .into_iter()
            .filter_map(|(call, user)| {
                let entry = current.directory.get(&user)?;
                Some(PhoneChange {
                    call: call.to_string(),
                    accounts: accounts(entry),
                    busy: Some(self.busy_note(entry)),
                })
            })
            .collect();
        self.host.phone_presence_now(busy);
    }

    /// The note shown with a line owner's busy state, in their language.
    fn busy_note(&self, entry: &UserEntry) -> String {
        let language = entry.language.clone().unwrap_or_else(|| self.live().render.default_language.clone());
        self.base().presence_from_calls.note_in(&language)
    }

    /// The language of a chat account's notices: their line's (their own choice or the
    /// config's), else the default.
    pub fn language_of(&self, who: &Party) -> String {
        let live = self.live();
        line_of(&live.directory, who)
            .and_then(|u| u.language.clone())
            .unwrap_or_else(|| live.render.default_language.clone())
    }

    /// The extensions of a chat account's line owner (none: not in the directory).
    pub fn extensions_of(&self, who: &Party) -> Vec<Extension> {
        line_of(&self.live().directory, who).map(|u| u.extensions.clone()).unwrap_or_default()
    }

    /// May `watcher` pick up a call ringing at `extension` (`missed_calls.pickup_groups`)?
    pub fn may_pick_up(&self, watcher: &Party, extension: &str) -> bool {
        self.base().pickup_groups.may_pick_up(&self.extensions_of(watcher), &Extension::new(extension))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::event::{CallEvent, Caller, Direction};
    use crate::calls::model::script::*;

    fn directory() -> Directory {
        Directory::new(vec![UserEntry::new("pia", &["211"]), UserEntry::new("quinn", &["212"])])
    }

    fn users(names: &[&str]) -> BTreeSet<UserId> {
        names.iter().map(|n| UserId::new(*n)).collect()
    }

    #[test]
    fn a_call_occupies_who_answered_and_an_inside_caller_once_connected() {
        let d = directory();
        let mut t = CallTracker::new();
        t.apply(created("c", Some("+4930123"), Direction::Inbound, 0)).unwrap();
        t.apply(ring("c", "1", "211", 0)).unwrap();
        let call = CallId::new("c");
        assert!(occupants(&d, t.get(&call).unwrap()).is_empty(), "ringing is not a state");
        t.apply(answer("c", "211", false, 3)).unwrap();
        assert_eq!(occupants(&d, t.get(&call).unwrap()), users(&["pia"]));
        // Quinn calls Pia internally: both are on the phone once she answers.
        let internal = CallEvent::CallCreated {
            call_id: CallId::new("i"),
            caller: Caller::with_number("212"),
            called: "211".into(),
            direction: Direction::Internal,
            original_call_id: None,
            at: T0,
        };
        t.apply(internal).unwrap();
        t.apply(ring("i", "1", "211", 0)).unwrap();
        assert!(occupants(&d, t.get(&CallId::new("i")).unwrap()).is_empty());
        t.apply(answer("i", "211", false, 2)).unwrap();
        assert_eq!(occupants(&d, t.get(&CallId::new("i")).unwrap()), users(&["pia", "quinn"]));
    }

    #[test]
    fn phones_report_each_change_once() {
        let mut p = Phones::default();
        let c = CallId::new("c");
        assert_eq!(p.occupy(&c, users(&[])), vec![]);
        assert_eq!(p.occupy(&c, users(&["pia"])), vec![(UserId::new("pia"), true)]);
        assert_eq!(p.occupy(&c, users(&["pia"])), vec![], "a repeated answer changes nothing");
        assert_eq!(p.busy(), vec![(c.clone(), UserId::new("pia"))]);
        assert_eq!(p.occupy(&c, users(&[])), vec![(UserId::new("pia"), false)]);
        assert!(p.busy().is_empty());
        assert!(p.rang(&c, &Extension::new("211")));
        assert!(!p.rang(&c, &Extension::new("211")), "cyclic ringing alerts once per call");
        p.forget(&c);
        assert!(p.rang(&c, &Extension::new("211")));
    }

    #[test]
    fn new_rings_are_told_apart_from_repeats() {
        let mut t = CallTracker::new();
        t.apply(created("c", Some("+4930123"), Direction::Inbound, 0)).unwrap();
        let first = ring("c", "1", "211", 0);
        assert_eq!(t.new_ring(&first), Some(Extension::new("211")));
        t.apply(first.clone()).unwrap();
        assert_eq!(t.new_ring(&first), None, "the same leg again");
        t.apply(answer("c", "212", true, 2)).unwrap();
        assert_eq!(t.new_ring(&ring("c", "2", "213", 3)), None, "after the answer nothing is to pick up");
        assert_eq!(t.new_ring(&ring("x", "1", "211", 0)), None, "an unknown call");
    }
}
