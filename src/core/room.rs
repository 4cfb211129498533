//! The suite's rules for a conversation with 2 to N participants, as plain state: who is in it,
//! with which role, and which requests the rules allow. The adapters map roles to Matrix power
//! levels and MUC affiliations and carry out (or undo) what this module decides; the bridge
//! enforces these rules in the rooms it hosts (issue 3 wires them to both networks).
//!
//! - The initiator is the owner and a moderator; the owner cannot be removed or demoted.
//! - Moderators add and remove participants and appoint or revoke moderators.
//! - Participants may leave; they cannot change anyone else. When the owner leaves, another
//!   moderator becomes the owner, else the longest-standing participant.
//! - At most `cap` people are in a room (default 30); adding past the cap is refused.

use std::collections::BTreeMap;

use crate::core::watch::Party;

/// Default participant cap of the suite.
pub const DEFAULT_CAP: usize = 30;

/// Matrix power level of a moderator.
pub const MODERATOR_LEVEL: i64 = 50;

/// A participant's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Participant,
    Moderator,
    /// The initiator: a moderator nobody can remove or demote.
    Owner,
}

impl Role {
    pub fn is_moderator(self) -> bool {
        self >= Role::Moderator
    }

    /// Matrix power level for the role. The initiator is a moderator like any other on Matrix
    /// (the bridge bot, which created the room, ranks above everyone); that they own the room
    /// is the bridge's record.
    pub fn power_level(self) -> i64 {
        match self {
            Role::Participant => 0,
            Role::Moderator | Role::Owner => MODERATOR_LEVEL,
        }
    }

    /// The role a Matrix power level stands for (never the owner: that is not a level).
    pub fn from_power_level(level: i64) -> Self {
        if level >= MODERATOR_LEVEL { Role::Moderator } else { Role::Participant }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::Moderator => "moderator",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "participant" => Role::Participant,
            "moderator" => Role::Moderator,
            "owner" => Role::Owner,
            _ => return None,
        })
    }

    /// MUC affiliation (XEP-0045) for the role.
    pub fn affiliation(self) -> &'static str {
        match self {
            Role::Participant => "member",
            Role::Moderator => "admin",
            Role::Owner => "owner",
        }
    }
}

/// What someone asks of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Add(Party),
    Remove(Party),
    Appoint(Party),
    Revoke(Party),
    Leave,
    /// Joining on one's own (an open room, or a room one was invited to).
    Join,
}

/// Why a request is refused; the text is shown to the person who asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("only moderators can {0}")]
    NotModerator(&'static str),
    #[error("{0} is not in this conversation")]
    NotMember(Party),
    #[error("{0} is already in this conversation")]
    AlreadyMember(Party),
    #[error("the conversation is full: at most {0} participants")]
    Full(usize),
    #[error("{0} started this conversation and stays its moderator")]
    Owner(Party),
    #[error("you are not in this conversation")]
    NotInRoom,
}

/// A change to carry out on both networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Joined(Party, Role),
    Left(Party),
    RoleChanged(Party, Role),
}

/// A conversation's members and roles.
#[derive(Debug, Clone)]
pub struct Room {
    members: BTreeMap<String, (Party, Role)>,
    /// Member keys, longest-standing first (who inherits the room from a leaving owner).
    order: Vec<String>,
    cap: usize,
}

impl Room {
    /// A new conversation started by `initiator`.
    pub fn new(initiator: Party, cap: usize) -> Self {
        Self::from_members([(initiator, Role::Owner)], cap)
    }

    /// A room as stored: its members with their roles, longest-standing first.
    pub fn from_members(members: impl IntoIterator<Item = (Party, Role)>, cap: usize) -> Self {
        let mut room = Self { members: BTreeMap::new(), order: vec![], cap: cap.max(2) };
        for (p, r) in members {
            room.insert(p, r);
        }
        room
    }

    fn insert(&mut self, who: Party, role: Role) {
        let key = who.key();
        if self.members.insert(key.clone(), (who, role)).is_none() {
            self.order.push(key);
        }
    }

    fn remove(&mut self, who: &Party) {
        let key = who.key();
        self.members.remove(&key);
        self.order.retain(|k| *k != key);
    }

    /// Who takes over from a leaving owner: the longest-standing moderator, else the
    /// longest-standing participant.
    fn successor(&self) -> Option<Party> {
        let in_order = || self.order.iter().filter_map(|k| self.members.get(k));
        in_order().find(|(_, r)| r.is_moderator()).or_else(|| in_order().next()).map(|(p, _)| p.clone())
    }

    pub fn role(&self, who: &Party) -> Option<Role> {
        self.members.get(&who.key()).map(|(_, r)| *r)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Apply a request by `actor` if the rules allow it.
    pub fn apply(&mut self, actor: &Party, request: Request) -> Result<Vec<Effect>, Refused> {
        if request == Request::Join {
            if self.role(actor).is_some() {
                return Ok(vec![]);
            }
            if self.members.len() >= self.cap {
                return Err(Refused::Full(self.cap));
            }
            self.insert(actor.clone(), Role::Participant);
            return Ok(vec![Effect::Joined(actor.clone(), Role::Participant)]);
        }
        let actor_role = self.role(actor).ok_or(Refused::NotInRoom)?;
        let need_moderator = |what| if actor_role.is_moderator() { Ok(()) } else { Err(Refused::NotModerator(what)) };
        match request {
            Request::Leave => {
                self.remove(actor);
                let mut effects = vec![Effect::Left(actor.clone())];
                if actor_role == Role::Owner
                    && let Some(next) = self.successor()
                {
                    effects.extend(self.set_role(next, Role::Owner));
                }
                Ok(effects)
            }
            Request::Join => Ok(vec![]),
            Request::Add(who) => {
                need_moderator("add participants")?;
                if self.role(&who).is_some() {
                    return Err(Refused::AlreadyMember(who));
                }
                if self.members.len() >= self.cap {
                    return Err(Refused::Full(self.cap));
                }
                self.insert(who.clone(), Role::Participant);
                Ok(vec![Effect::Joined(who, Role::Participant)])
            }
            Request::Remove(who) => {
                need_moderator("remove participants")?;
                match self.role(&who) {
                    None => Err(Refused::NotMember(who)),
                    Some(Role::Owner) => Err(Refused::Owner(who)),
                    Some(_) => {
                        self.remove(&who);
                        Ok(vec![Effect::Left(who)])
                    }
                }
            }
            Request::Appoint(who) => {
                need_moderator("appoint moderators")?;
                match self.role(&who) {
                    None => Err(Refused::NotMember(who)),
                    Some(r) if r.is_moderator() => Ok(vec![]),
                    Some(_) => Ok(self.set_role(who, Role::Moderator)),
                }
            }
            Request::Revoke(who) => {
                need_moderator("revoke moderators")?;
                match self.role(&who) {
                    None => Err(Refused::NotMember(who)),
                    Some(Role::Owner) => Err(Refused::Owner(who)),
                    Some(Role::Participant) => Ok(vec![]),
                    Some(Role::Moderator) => Ok(self.set_role(who, Role::Participant)),
                }
            }
        }
    }

    fn set_role(&mut self, who: Party, role: Role) -> Vec<Effect> {
        self.insert(who.clone(), role);
        vec![Effect::RoleChanged(who, role)]
    }
}

/// A nick for `me` that no other participant has: `wanted` if free, else `wanted (2)`,
/// `wanted (3)`, … Nicks are compared case-insensitively, as people read them.
pub fn unique_nick<'a>(taken_by_others: impl IntoIterator<Item = &'a str> + Clone, wanted: &str) -> String {
    let wanted = clean_nick(wanted);
    let free = |n: &str| !taken_by_others.clone().into_iter().any(|t| t.eq_ignore_ascii_case(n) || t == n);
    if free(&wanted) {
        return wanted;
    }
    (2..).map(|i| format!("{wanted} ({i})")).find(|n| free(n)).unwrap_or(wanted)
}

/// A display name made fit to be a nick (an XMPP resource): no control characters, trimmed,
/// at most 64 characters, never empty.
pub fn clean_nick(name: &str) -> String {
    let cleaned: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() { "someone".to_owned() } else { cleaned.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::{BareJid, MatrixUserId};

    fn m(s: &str) -> Party {
        Party::Matrix(MatrixUserId::parse(&format!("@{s}:hs")).unwrap())
    }
    fn x(s: &str) -> Party {
        Party::Xmpp(BareJid::parse(&format!("{s}@x")).unwrap())
    }

    #[test]
    fn the_initiator_is_moderator_and_moderators_manage_the_room() {
        let mut room = Room::new(m("ann"), DEFAULT_CAP);
        assert_eq!(room.role(&m("ann")), Some(Role::Owner));
        assert_eq!(
            room.apply(&m("ann"), Request::Add(x("bea"))),
            Ok(vec![Effect::Joined(x("bea"), Role::Participant)])
        );
        assert_eq!(room.apply(&m("ann"), Request::Add(m("cid"))).map(|e| e.len()), Ok(1));
        assert_eq!(
            room.apply(&m("ann"), Request::Appoint(x("bea"))),
            Ok(vec![Effect::RoleChanged(x("bea"), Role::Moderator)])
        );
        // A moderator adds, removes, appoints and revokes — including an equal.
        assert!(room.apply(&x("bea"), Request::Appoint(m("cid"))).is_ok());
        assert_eq!(
            room.apply(&x("bea"), Request::Revoke(m("cid"))),
            Ok(vec![Effect::RoleChanged(m("cid"), Role::Participant)])
        );
        assert_eq!(room.apply(&x("bea"), Request::Remove(m("cid"))), Ok(vec![Effect::Left(m("cid"))]));
        assert_eq!(room.len(), 2);
    }

    #[test]
    fn participants_are_refused_with_a_reason() {
        let mut room = Room::new(m("ann"), DEFAULT_CAP);
        room.apply(&m("ann"), Request::Add(x("bea"))).unwrap();
        room.apply(&m("ann"), Request::Add(m("cid"))).unwrap();
        for (req, what) in [
            (Request::Add(m("dan")), "add participants"),
            (Request::Remove(m("cid")), "remove participants"),
            (Request::Appoint(x("bea")), "appoint moderators"),
            (Request::Revoke(m("ann")), "revoke moderators"),
        ] {
            let err = room.apply(&x("bea"), req).unwrap_err();
            assert_eq!(err, Refused::NotModerator(what));
            assert_eq!(err.to_string(), format!("only moderators can {what}"));
        }
        assert_eq!(room.apply(&m("zed"), Request::Leave), Err(Refused::NotInRoom));
        assert_eq!(room.apply(&x("bea"), Request::Leave), Ok(vec![Effect::Left(x("bea"))]));
    }

    #[test]
    fn the_owner_stays() {
        let mut room = Room::new(m("ann"), DEFAULT_CAP);
        room.apply(&m("ann"), Request::Add(x("bea"))).unwrap();
        room.apply(&m("ann"), Request::Appoint(x("bea"))).unwrap();
        assert_eq!(room.apply(&x("bea"), Request::Remove(m("ann"))), Err(Refused::Owner(m("ann"))));
        assert_eq!(room.apply(&x("bea"), Request::Revoke(m("ann"))), Err(Refused::Owner(m("ann"))));
    }

    #[test]
    fn a_leaving_owner_hands_the_room_to_a_moderator_else_the_longest_standing() {
        let mut room = Room::new(m("ann"), DEFAULT_CAP);
        for p in [x("zoe"), m("bob"), x("cat")] {
            room.apply(&m("ann"), Request::Add(p)).unwrap();
        }
        room.apply(&m("ann"), Request::Appoint(x("cat"))).unwrap();
        assert_eq!(
            room.apply(&m("ann"), Request::Leave),
            Ok(vec![Effect::Left(m("ann")), Effect::RoleChanged(x("cat"), Role::Owner)])
        );
        // No moderator left: the one who came first (not the first by name).
        assert_eq!(
            room.apply(&x("cat"), Request::Leave),
            Ok(vec![Effect::Left(x("cat")), Effect::RoleChanged(x("zoe"), Role::Owner)])
        );
        assert_eq!(room.apply(&x("zoe"), Request::Leave).map(|e| e.len()), Ok(2));
        // The last one leaves an empty room.
        assert_eq!(room.apply(&m("bob"), Request::Leave), Ok(vec![Effect::Left(m("bob"))]));
        assert!(room.is_empty());
    }

    #[test]
    fn the_cap_holds() {
        let mut room = Room::new(m("p0"), DEFAULT_CAP);
        for i in 1..DEFAULT_CAP {
            room.apply(&m("p0"), Request::Add(x(&format!("p{i}")))).unwrap();
        }
        assert_eq!(room.len(), 30);
        assert_eq!(room.apply(&m("p0"), Request::Add(x("p30"))), Err(Refused::Full(30)));
        assert_eq!(Refused::Full(30).to_string(), "the conversation is full: at most 30 participants");
        room.apply(&m("p0"), Request::Remove(x("p7"))).unwrap();
        assert!(room.apply(&m("p0"), Request::Add(x("p30"))).is_ok());
        assert_eq!(room.apply(&m("p0"), Request::Add(x("p30"))), Err(Refused::AlreadyMember(x("p30"))));
        assert_eq!(room.apply(&m("late"), Request::Join), Err(Refused::Full(30)));
        room.apply(&m("p0"), Request::Remove(x("p8"))).unwrap();
        assert_eq!(room.apply(&m("late"), Request::Join), Ok(vec![Effect::Joined(m("late"), Role::Participant)]));
        assert_eq!(room.apply(&m("late"), Request::Join), Ok(vec![]));
    }

    #[test]
    fn nicks_are_made_unique() {
        assert_eq!(unique_nick(["Ann", "Bea"], "Cid"), "Cid");
        assert_eq!(unique_nick(["Ann", "Bea"], "ann"), "ann (2)");
        assert_eq!(unique_nick(["Ann", "Ann (2)"], "Ann"), "Ann (3)");
        assert_eq!(unique_nick(Vec::<&str>::new(), " \u{7}Zoë "), "Zoë");
        assert_eq!(clean_nick("\n"), "someone");
    }

    #[test]
    fn roles_map_to_both_networks() {
        assert_eq!((Role::Owner.power_level(), Role::Owner.affiliation()), (50, "owner"));
        assert_eq!(Role::from_power_level(100), Role::Moderator);
        assert_eq!(Role::from_power_level(49), Role::Participant);
        for r in [Role::Owner, Role::Moderator, Role::Participant] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!((Role::Moderator.power_level(), Role::Moderator.affiliation()), (50, "admin"));
        assert_eq!((Role::Participant.power_level(), Role::Participant.affiliation()), (0, "member"));
    }
}
