//! A Matrix room made elsewhere (in Element) becoming a hosted room: who may ask for it, what
//! the bot needs in the room to host it, and the roles its members get. The rules are checked
//! against the room's power levels as the homeserver has them now, never against what an
//! invitation claims.

use std::collections::BTreeMap;

use crate::core::ids::MatrixUserId;
use crate::core::room::{MODERATOR_LEVEL, Role};

/// Power level of a room's admins: they may have it bridged, and own it as a hosted room.
pub const ADMIN_LEVEL: i64 = 100;

/// Minutes the inviter has to confirm the offer.
pub const OFFER_MINUTES: u64 = 10;

/// State event types the bridge writes in a hosted room (its bridge info, roles, topic).
const STATE_WRITTEN: [&str; 3] = ["m.bridge", "m.room.power_levels", "m.room.topic"];

/// A room's `m.room.power_levels`, as far as the bridge needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PowerLevels {
    pub users: BTreeMap<MatrixUserId, i64>,
    pub users_default: i64,
    pub invite: i64,
    pub kick: i64,
    pub state_default: i64,
    /// Levels of single event types (`events`).
    pub events: BTreeMap<String, i64>,
    /// The room's creators where the room version ranks them above every level (version 12
    /// on); they are not in `users` then.
    pub creators: Vec<MatrixUserId>,
}

impl PowerLevels {
    pub fn level(&self, user: &MatrixUserId) -> i64 {
        if self.creators.contains(user) {
            return i64::MAX;
        }
        self.users.get(user).copied().unwrap_or(self.users_default)
    }

    fn for_state(&self, kind: &str) -> i64 {
        self.events.get(kind).copied().unwrap_or(self.state_default)
    }

    /// The level the bot needs to host the room: to invite, to remove people, and to write the
    /// room's bridge info, roles and topic.
    pub fn needed_by_bridge(&self) -> i64 {
        STATE_WRITTEN.iter().map(|k| self.for_state(k)).fold(self.invite.max(self.kick), i64::max)
    }

    /// A member's role in the hosted room: admins own it, moderators moderate it.
    pub fn role_of(&self, user: &MatrixUserId) -> Role {
        match self.level(user) {
            l if l >= ADMIN_LEVEL => Role::Owner,
            l if l >= MODERATOR_LEVEL => Role::Moderator,
            _ => Role::Participant,
        }
    }
}

/// What the bridge reads of a room before hosting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSetup {
    pub power: PowerLevels,
    /// `m.room.canonical_alias`.
    pub alias: Option<String>,
    pub name: Option<String>,
    pub topic: Option<String>,
    /// Join rule `public`.
    pub open: bool,
}

/// Why a room is not adopted; the text is shown in the room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("only the room's admins (power level {ADMIN_LEVEL}) can have it bridged to XMPP; {0} has power level {1}")]
    NotAdmin(MatrixUserId, i64),
    #[error(
        "I need power level {needed} in this room to host it (to invite, remove people and set its state); I have {has}. Raise my power level, then confirm again"
    )]
    BotTooLow { needed: i64, has: i64 },
    #[error("the room has {0} members; a bridged room has at most {1}")]
    TooMany(usize, usize),
}

/// May `asker` have the room adopted (an admin by the room's current power levels)?
pub fn may_ask(power: &PowerLevels, asker: &MatrixUserId) -> Result<(), Refused> {
    let level = power.level(asker);
    if level < ADMIN_LEVEL {
        return Err(Refused::NotAdmin(asker.clone(), level));
    }
    Ok(())
}

/// Everything checked at confirmation: the asker is an admin, the bot can run the room, and
/// its `members` (people, the bridge's own users not counted) fit under the cap.
pub fn check(
    power: &PowerLevels,
    asker: &MatrixUserId,
    bot: &MatrixUserId,
    members: usize,
    cap: usize,
) -> Result<(), Refused> {
    may_ask(power, asker)?;
    let (needed, has) = (power.needed_by_bridge(), power.level(bot));
    if has < needed {
        return Err(Refused::BotTooLow { needed, has });
    }
    if members > cap {
        return Err(Refused::TooMany(members, cap));
    }
    Ok(())
}

/// Whether an invitation from `inviter` may make the bridge adopt a room: its own homeserver's
/// users, and those of the servers the operator named (`rooms.adopt_from_servers`).
pub fn inviter_allowed(inviter: &MatrixUserId, homeserver: &str, servers: &[String]) -> bool {
    inviter.server() == homeserver || servers.iter().any(|s| s == inviter.server())
}

/// Is this a confirmation (`confirm` or `!bridge confirm`, any case)?
pub fn is_confirmation(body: &str) -> bool {
    let words: Vec<&str> = body.split_whitespace().take(3).collect();
    matches!(words.as_slice(), [w] if w.eq_ignore_ascii_case("confirm"))
        || matches!(words.as_slice(), [b, w] if b.eq_ignore_ascii_case("!bridge") && w.eq_ignore_ascii_case("confirm"))
}

/// Is this a request to bridge the room (`!bridge`)?
pub fn is_request(body: &str) -> bool {
    body.trim().eq_ignore_ascii_case("!bridge")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> MatrixUserId {
        MatrixUserId::parse(s).unwrap()
    }

    /// What Element makes: the creator at 100, state and kicks at 50, power levels at 100.
    fn element_room(bot_level: Option<i64>) -> PowerLevels {
        let mut users = BTreeMap::from([(user("@ann:hs"), 100), (user("@mod:hs"), 50)]);
        if let Some(l) = bot_level {
            users.insert(user("@bot:hs"), l);
        }
        PowerLevels {
            users,
            users_default: 0,
            invite: 0,
            kick: 50,
            state_default: 50,
            events: BTreeMap::from([("m.room.power_levels".into(), 100)]),
            creators: vec![],
        }
    }

    #[test]
    fn only_an_admin_may_ask_and_the_bot_needs_the_power_to_run_the_room() {
        let (ann, moderator, bot) = (user("@ann:hs"), user("@mod:hs"), user("@bot:hs"));
        let pl = element_room(Some(100));
        assert_eq!(check(&pl, &ann, &bot, 3, 30), Ok(()));
        assert_eq!(check(&pl, &moderator, &bot, 3, 30), Err(Refused::NotAdmin(moderator.clone(), 50)));
        assert_eq!(check(&element_room(Some(50)), &ann, &bot, 3, 30), Err(Refused::BotTooLow { needed: 100, has: 50 }));
        assert_eq!(check(&element_room(None), &ann, &bot, 3, 30), Err(Refused::BotTooLow { needed: 100, has: 0 }));
        assert_eq!(check(&pl, &ann, &bot, 31, 30), Err(Refused::TooMany(31, 30)));
        assert!(Refused::BotTooLow { needed: 100, has: 0 }.to_string().contains("power level 100"));
    }

    #[test]
    fn roles_follow_the_power_levels() {
        let mut pl = element_room(None);
        assert_eq!(pl.role_of(&user("@ann:hs")), Role::Owner);
        pl.creators.push(user("@creator:hs"));
        assert_eq!(pl.role_of(&user("@creator:hs")), Role::Owner);
        assert_eq!(may_ask(&pl, &user("@creator:hs")), Ok(()));
        assert_eq!(pl.role_of(&user("@mod:hs")), Role::Moderator);
        assert_eq!(pl.role_of(&user("@someone:hs")), Role::Participant);
    }

    #[test]
    fn only_local_inviters_unless_configured() {
        assert!(inviter_allowed(&user("@ann:hs"), "hs", &[]));
        assert!(!inviter_allowed(&user("@ann:evil.example"), "hs", &[]));
        assert!(inviter_allowed(&user("@ann:friend.example"), "hs", &["friend.example".into()]));
    }

    #[test]
    fn confirmations_and_requests() {
        for yes in ["confirm", " Confirm ", "!bridge confirm", "!BRIDGE   confirm"] {
            assert!(is_confirmation(yes), "{yes}");
        }
        for no in ["confirmed", "confirm please", "!bridge", "please confirm", ""] {
            assert!(!is_confirmation(no), "{no}");
        }
        assert!(is_request("!bridge") && !is_request("!bridge now"));
    }
}
