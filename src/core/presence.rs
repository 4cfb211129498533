//! Presence: the suite's six states with an absence note, and how they are written on Matrix
//! (three states plus `status_msg`) and on XMPP (`<show/>` plus `<status/>`).
//!
//! Where a network cannot say a state, a marker at the start of the status text keeps it, so
//! every state survives a round trip in both directions:
//!
//! | state | Matrix | Matrix `status_msg` | XMPP `<show/>` | XMPP `<status/>` |
//! | --- | --- | --- | --- | --- |
//! | available | online | note | none | note |
//! | away | unavailable | note | away | note |
//! | inactive | unavailable | `💤 note` | xa | note |
//! | busy | online | `📞 note` | dnd | `📞 note` |
//! | do not disturb | unavailable | `⛔ note` | dnd | note |
//! | offline | offline | note | (unavailable) | note |
//!
//! A note that itself begins with a marker is read as that marker's state.

/// How a message reaches someone in "do not disturb" (the suite: "may deliver later").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DndDelivery {
    /// As to anyone else.
    Now,
    /// As a notice, which clients do not push.
    Quiet,
    /// Held until DND ends (or for a longest time, then quietly).
    Later,
}

/// What to do now with a message for someone whose presence is `state`, written at `written`
/// (ms), under `rule` with a longest hold of `max_hold` ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DndAction {
    /// Deliver it as it is.
    Deliver,
    /// Deliver it as a notice.
    Quietly,
    /// Keep it and try again later.
    Hold,
}

/// The delivery rule for a recipient in do-not-disturb, as plain code: nothing is lost, a held
/// message goes quietly once it was held for `max_hold`.
pub fn dnd_action(state: Option<State>, rule: DndDelivery, written: i64, now: i64, max_hold: i64) -> DndAction {
    if state != Some(State::DoNotDisturb) {
        return DndAction::Deliver;
    }
    match rule {
        DndDelivery::Now => DndAction::Deliver,
        DndDelivery::Quiet => DndAction::Quietly,
        DndDelivery::Later if now.saturating_sub(written) < max_hold => DndAction::Hold,
        DndDelivery::Later => DndAction::Quietly,
    }
}

/// The suite's presence states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Available,
    Away,
    Inactive,
    Busy,
    DoNotDisturb,
    Offline,
}

/// A person's presence: state and absence note.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Presence {
    pub state: State,
    pub note: Option<String>,
}

/// What a Matrix user's XMPP presence says of their avatar (XEP-0153): clients fetch the
/// address's vCard when the hash is new to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PhotoHash {
    /// Not known now (the homeserver did not answer): the presence promises nothing.
    #[default]
    Unknown,
    /// No avatar.
    None,
    /// SHA-1 of the photo the vCard carries.
    Sha1([u8; 20]),
}

/// Matrix's presence values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixState {
    Online,
    Unavailable,
    Offline,
}

/// XMPP's `<show/>` values; `None` is a plain available presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    None,
    Chat,
    Away,
    Xa,
    Dnd,
}

/// How a presence is written in XMPP: available (with show) or unavailable, and a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmppPresence {
    pub available: bool,
    pub show: Show,
    pub status: Option<String>,
}

const INACTIVE: &str = "💤";
const BUSY: &str = "📞";
const DND: &str = "⛔";

fn marked(marker: &str, note: &Option<String>) -> String {
    match note {
        Some(n) if !n.is_empty() => format!("{marker} {n}"),
        _ => marker.to_owned(),
    }
}

/// Split a leading marker off a status text: `(marker found, rest as note)`.
fn unmark(marker: &str, text: &str) -> Option<Option<String>> {
    let rest = text.strip_prefix(marker)?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    Some(Some(rest.to_owned()).filter(|r| !r.is_empty()))
}

fn note_of(text: Option<&str>) -> Option<String> {
    text.filter(|t| !t.is_empty()).map(str::to_owned)
}

impl Presence {
    pub fn new(state: State, note: Option<&str>) -> Self {
        Self { state, note: note_of(note) }
    }

    /// The Matrix presence and `status_msg` for this presence.
    pub fn to_matrix(&self) -> (MatrixState, Option<String>) {
        match self.state {
            State::Available => (MatrixState::Online, self.note.clone()),
            State::Away => (MatrixState::Unavailable, self.note.clone()),
            State::Inactive => (MatrixState::Unavailable, Some(marked(INACTIVE, &self.note))),
            State::Busy => (MatrixState::Online, Some(marked(BUSY, &self.note))),
            State::DoNotDisturb => (MatrixState::Unavailable, Some(marked(DND, &self.note))),
            State::Offline => (MatrixState::Offline, self.note.clone()),
        }
    }

    /// Read a Matrix presence and `status_msg`.
    pub fn from_matrix(state: MatrixState, status_msg: Option<&str>) -> Self {
        let text = status_msg.unwrap_or_default();
        match state {
            MatrixState::Online => match unmark(BUSY, text) {
                Some(note) => Self { state: State::Busy, note },
                None => Self { state: State::Available, note: note_of(status_msg) },
            },
            MatrixState::Unavailable => {
                if let Some(note) = unmark(DND, text) {
                    Self { state: State::DoNotDisturb, note }
                } else if let Some(note) = unmark(INACTIVE, text) {
                    Self { state: State::Inactive, note }
                } else {
                    Self { state: State::Away, note: note_of(status_msg) }
                }
            }
            MatrixState::Offline => Self { state: State::Offline, note: note_of(status_msg) },
        }
    }

    /// The XMPP presence for this presence.
    pub fn to_xmpp(&self) -> XmppPresence {
        let (available, show, status) = match self.state {
            State::Available => (true, Show::None, self.note.clone()),
            State::Away => (true, Show::Away, self.note.clone()),
            State::Inactive => (true, Show::Xa, self.note.clone()),
            State::Busy => (true, Show::Dnd, Some(marked(BUSY, &self.note))),
            State::DoNotDisturb => (true, Show::Dnd, self.note.clone()),
            State::Offline => (false, Show::None, self.note.clone()),
        };
        XmppPresence { available, show, status }
    }

    /// Read an XMPP presence.
    pub fn from_xmpp(p: &XmppPresence) -> Self {
        let status = p.status.as_deref();
        if !p.available {
            return Self { state: State::Offline, note: note_of(status) };
        }
        match p.show {
            Show::None | Show::Chat => Self { state: State::Available, note: note_of(status) },
            Show::Away => Self { state: State::Away, note: note_of(status) },
            Show::Xa => Self { state: State::Inactive, note: note_of(status) },
            Show::Dnd => match unmark(BUSY, status.unwrap_or_default()) {
                Some(note) => Self { state: State::Busy, note },
                None => Self { state: State::DoNotDisturb, note: note_of(status) },
            },
        }
    }
}

/// Where a Matrix user stands towards an XMPP user who asked to see their presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Asked, not answered yet.
    Pending,
    Approved,
    Denied,
}

impl Consent {
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Pending => "pending",
            Consent::Approved => "approved",
            Consent::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Consent::Pending,
            "approved" => Consent::Approved,
            "denied" => Consent::Denied,
            _ => return None,
        })
    }
}

/// Bounds on open consent prompts, so that asking cannot be used to flood a Matrix user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptLimits {
    /// Open prompts per Matrix user.
    pub per_user: u64,
    /// Open prompts from one XMPP domain, over all Matrix users.
    pub per_domain: u64,
}

/// What the bridge does with an XMPP user's `subscribe` to a Matrix user's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSubscribe {
    /// They talk already (or the Matrix user approved): `subscribed` and the current presence.
    Accept,
    /// The Matrix user said no: `unsubscribed`.
    Refuse,
    /// Asked already: nothing new (no second prompt), the request stays pending.
    Wait,
    /// Ask the Matrix user (store a pending request, post the prompt).
    Ask,
    /// Too many open requests (for this user or from this domain): nothing stored, nothing asked.
    Drop,
}

/// The subscription rule: someone the Matrix user has a conversation with is accepted; anyone
/// else needs the Matrix user's approval, asked once, within the prompt limits.
/// `open` is (open prompts of the Matrix user, open prompts from the requester's domain).
pub fn on_subscribe(related: bool, consent: Option<Consent>, open: (u64, u64), limits: PromptLimits) -> OnSubscribe {
    if related {
        return OnSubscribe::Accept;
    }
    match consent {
        Some(Consent::Approved) => OnSubscribe::Accept,
        Some(Consent::Denied) => OnSubscribe::Refuse,
        Some(Consent::Pending) => OnSubscribe::Wait,
        None if open.0 >= limits.per_user || open.1 >= limits.per_domain => OnSubscribe::Drop,
        None => OnSubscribe::Ask,
    }
}

/// How available a state is, to pick one among an XMPP user's resources.
pub fn rank(state: State) -> u8 {
    match state {
        State::Available => 5,
        State::Busy => 4,
        State::DoNotDisturb => 3,
        State::Away => 2,
        State::Inactive => 1,
        State::Offline => 0,
    }
}

/// One XMPP user's online resources (resource name → presence).
pub type Resources = std::collections::HashMap<String, Presence>;

/// A resource's presence changed (`None` or offline: it went away). Resource names are chosen
/// remotely, so at most `cap` are kept: a new resource past it is ignored, and the person is
/// shown by the resources already known.
pub fn update_resources(online: &mut Resources, resource: &str, presence: Option<Presence>, cap: usize) {
    match presence {
        Some(p) if p.state != State::Offline => {
            if online.len() < cap || online.contains_key(resource) {
                online.insert(resource.to_owned(), p);
            }
        }
        _ => {
            online.remove(resource);
        }
    }
}

/// The most available resource's presence, if any is online.
pub fn best_resource(online: &Resources) -> Option<Presence> {
    online.values().max_by_key(|p| rank(p.state)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strangers_are_asked_once_within_the_limits() {
        let l = PromptLimits { per_user: 2, per_domain: 3 };
        // A conversation partner needs no approval, whatever was answered before.
        assert_eq!(on_subscribe(true, None, (9, 9), l), OnSubscribe::Accept);
        assert_eq!(on_subscribe(true, Some(Consent::Denied), (0, 0), l), OnSubscribe::Accept);
        assert_eq!(on_subscribe(false, None, (0, 0), l), OnSubscribe::Ask);
        assert_eq!(on_subscribe(false, Some(Consent::Pending), (0, 0), l), OnSubscribe::Wait);
        assert_eq!(on_subscribe(false, Some(Consent::Approved), (5, 5), l), OnSubscribe::Accept);
        assert_eq!(on_subscribe(false, Some(Consent::Denied), (0, 0), l), OnSubscribe::Refuse);
        // The caps: per Matrix user, and per requesting domain.
        assert_eq!(on_subscribe(false, None, (2, 0), l), OnSubscribe::Drop);
        assert_eq!(on_subscribe(false, None, (1, 3), l), OnSubscribe::Drop);
        assert_eq!(on_subscribe(false, None, (1, 2), l), OnSubscribe::Ask);
        for c in [Consent::Pending, Consent::Approved, Consent::Denied] {
            assert_eq!(Consent::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn resources_are_capped_and_the_most_available_wins() {
        let mut r = Resources::new();
        update_resources(&mut r, "phone", Some(Presence::new(State::Away, Some("train"))), 2);
        update_resources(&mut r, "desk", Some(Presence::new(State::Available, None)), 2);
        assert_eq!(best_resource(&r).map(|p| p.state), Some(State::Available));
        // A third resource past the cap is ignored; a known one still updates.
        update_resources(&mut r, "spam1", Some(Presence::new(State::Available, Some("x"))), 2);
        assert_eq!(r.len(), 2);
        update_resources(&mut r, "desk", Some(Presence::new(State::Busy, None)), 2);
        assert_eq!(best_resource(&r).map(|p| p.state), Some(State::Busy));
        update_resources(&mut r, "desk", None, 2);
        update_resources(&mut r, "phone", Some(Presence::new(State::Offline, None)), 2);
        assert!(r.is_empty());
        assert_eq!(best_resource(&r), None);
        // Many resources coming and going never leave more than the cap.
        for i in 0..1000 {
            update_resources(&mut r, &format!("r{i}"), Some(Presence::new(State::Available, None)), 8);
        }
        assert_eq!(r.len(), 8);
    }

    const STATES: [State; 6] =
        [State::Available, State::Away, State::Inactive, State::Busy, State::DoNotDisturb, State::Offline];

    #[test]
    fn every_state_survives_both_round_trips() {
        for state in STATES {
            for note in [None, Some("in a meeting"), Some("odd 📞 ⛔ note")] {
                let p = Presence::new(state, note);
                let (m, msg) = p.to_matrix();
                assert_eq!(Presence::from_matrix(m, msg.as_deref()), p, "via Matrix: {p:?}");
                assert_eq!(Presence::from_xmpp(&p.to_xmpp()), p, "via XMPP: {p:?}");
                // And across: XMPP -> Matrix -> XMPP.
                let (m, msg) = Presence::from_xmpp(&p.to_xmpp()).to_matrix();
                assert_eq!(Presence::from_matrix(m, msg.as_deref()).to_xmpp(), p.to_xmpp());
            }
        }
    }

    #[test]
    fn messages_to_someone_in_dnd_go_quietly_or_wait_but_are_never_lost() {
        let (dnd, hour) = (Some(State::DoNotDisturb), 3_600_000);
        for state in [None, Some(State::Available), Some(State::Busy), Some(State::Away)] {
            for rule in [DndDelivery::Now, DndDelivery::Quiet, DndDelivery::Later] {
                assert_eq!(dnd_action(state, rule, 0, 0, hour), DndAction::Deliver, "{state:?} {rule:?}");
            }
        }
        assert_eq!(dnd_action(dnd, DndDelivery::Now, 0, 0, hour), DndAction::Deliver);
        assert_eq!(dnd_action(dnd, DndDelivery::Quiet, 0, 0, hour), DndAction::Quietly);
        assert_eq!(dnd_action(dnd, DndDelivery::Later, 0, hour - 1, hour), DndAction::Hold);
        assert_eq!(dnd_action(dnd, DndDelivery::Later, 0, hour, hour), DndAction::Quietly, "held long enough");
    }

    #[test]
    fn dnd_from_xmpp_shows_its_note_on_matrix() {
        let p = Presence::from_xmpp(&XmppPresence {
            available: true,
            show: Show::Dnd,
            status: Some("in a meeting".into()),
        });
        assert_eq!(p.state, State::DoNotDisturb);
        assert_eq!(p.to_matrix(), (MatrixState::Unavailable, Some("⛔ in a meeting".into())));
    }

    #[test]
    fn plain_matrix_states() {
        assert_eq!(
            Presence::from_matrix(MatrixState::Unavailable, Some("lunch")),
            Presence::new(State::Away, Some("lunch"))
        );
        assert_eq!(Presence::from_matrix(MatrixState::Online, Some("")), Presence::new(State::Available, None));
        assert!(!Presence::from_matrix(MatrixState::Offline, None).to_xmpp().available);
        assert_eq!(Presence::new(State::Inactive, None).to_matrix().1.as_deref(), Some("💤"));
    }
}
