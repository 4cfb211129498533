//! Reading what the bridge needs to know of a room it is asked to host (`core::adopt`): its
//! power levels, canonical alias, name, topic and join rule, as the bot sees them now. The
//! state is the room's: every value is checked, and what does not parse counts as absent.

use std::collections::BTreeMap;

use ruma::api::client::state::get_state_event_for_key::v3::StateEventFormat::{Content, Event};
use serde_json::Value;

use crate::core::adopt::{PowerLevels, RoomSetup};
use crate::core::ids::{MatrixUserId, RoomId};
use crate::matrix::client::MatrixError;

/// Power levels are integers; room versions before 10 also allowed them as strings.
fn level(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The power levels of a room from the content of its `m.room.power_levels` (defaults as the
/// specification has them where a key is missing).
pub fn power_levels(content: &Value) -> PowerLevels {
    let field = |key: &str, default: i64| content.get(key).and_then(level).unwrap_or(default);
    let map = |key: &str| content.get(key).and_then(Value::as_object).into_iter().flatten();
    PowerLevels {
        users: map("users").filter_map(|(u, l)| Some((MatrixUserId::parse(u).ok()?, level(l)?))).collect(),
        users_default: field("users_default", 0),
        invite: field("invite", 0),
        kick: field("kick", 50),
        state_default: field("state_default", 50),
        events: map("events").filter_map(|(k, l)| Some((k.clone(), level(l)?))).collect::<BTreeMap<_, _>>(),
        creators: vec![],
    }
}

/// The creators of a room from its `m.room.create` event, where its version ranks them above
/// every power level (12 and later, and the `hydra` test versions): the sender and the
/// `additional_creators`. Older versions: none (their creators hold a level like anyone).
pub fn privileged_creators(create: &Value) -> Vec<MatrixUserId> {
    let content = &create["content"];
    let version = content["room_version"].as_str().unwrap_or("1");
    let privileged =
        version.parse::<u32>().map(|v| v >= 12).unwrap_or(false) || version.starts_with("org.matrix.hydra");
    if !privileged {
        return vec![];
    }
    let extra = content["additional_creators"].as_array().into_iter().flatten().take(100);
    std::iter::once(&create["sender"]).chain(extra).filter_map(|u| MatrixUserId::parse(u.as_str()?).ok()).collect()
}

/// A short text of a state event, if it is one.
fn text(content: Option<Value>, key: &str) -> Option<String> {
    let s = content?.get(key)?.as_str()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

impl super::MatrixClient {
    /// The room's setup as the bot reads it (`None`: the bot cannot read its power levels).
    pub(super) async fn read_room_setup(&self, room: &RoomId) -> Result<Option<RoomSetup>, MatrixError> {
        let Some(pl) = self.state(room, "m.room.power_levels", "", Content).await? else { return Ok(None) };
        let alias = text(self.state(room, "m.room.canonical_alias", "", Content).await?, "alias");
        let name = text(self.state(room, "m.room.name", "", Content).await?, "name");
        let topic = text(self.state(room, "m.room.topic", "", Content).await?, "topic");
        let open =
            text(self.state(room, "m.room.join_rules", "", Content).await?, "join_rule").as_deref() == Some("public");
        let mut power = power_levels(&pl);
        if let Some(create) = self.state(room, "m.room.create", "", Event).await? {
            power.creators = privileged_creators(&create);
        }
        Ok(Some(RoomSetup { power, alias, name, topic, open }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_levels_are_read_with_the_specifications_defaults_and_bad_entries_dropped() {
        let pl = power_levels(&serde_json::json!({
            "users": {"@ann:hs": 100, "@old:hs": "50", "not a user": 100, "@bad:hs": "high"},
            "events": {"m.room.power_levels": 100, "m.bridge": null},
            "kick": 75,
        }));
        assert_eq!(pl.users.len(), 2);
        assert_eq!(pl.level(&MatrixUserId::parse("@old:hs").unwrap()), 50);
        assert_eq!((pl.invite, pl.kick, pl.state_default, pl.users_default), (0, 75, 50, 0));
        assert_eq!(pl.events.len(), 1);
        assert_eq!(pl.needed_by_bridge(), 100);
        assert_eq!(power_levels(&serde_json::json!("nonsense")), power_levels(&serde_json::json!({})));
    }

    #[test]
    fn creators_rank_above_every_level_from_room_version_12() {
        let create = |v: &str| serde_json::json!({"sender": "@ann:hs", "content": {"room_version": v, "additional_creators": ["@bob:hs", 7]}});
        let names = |v: &str| privileged_creators(&create(v)).iter().map(|u| u.to_string()).collect::<Vec<_>>();
        assert_eq!(names("12"), ["@ann:hs", "@bob:hs"]);
        assert!(names("11").is_empty() && names("10").is_empty());
        assert!(privileged_creators(&serde_json::json!({"sender": "@ann:hs", "content": {}})).is_empty());
    }
}
