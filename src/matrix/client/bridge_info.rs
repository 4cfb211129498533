//! The content of the bridge-info state events (MSC2346,
//! <https://github.com/matrix-org/matrix-spec-proposals/pull/2346>): `m.bridge`, and the same
//! content as `uk.half-shot.bridge`, the name clients read before the MSC settled; and whether
//! a room has them.

use serde_json::{Value, json};

use crate::core::bridge_info::{BridgeInfo, PROTOCOL_ID, PROTOCOL_NAME};
use crate::core::ids::RoomId;
use crate::matrix::client::MatrixError;

/// Both event types, written with the same content and state key.
pub const EVENT_TYPES: [&str; 2] = ["m.bridge", "uk.half-shot.bridge"];

/// The event content for `info`.
pub fn content(info: &BridgeInfo) -> Value {
    let mut channel = json!({"id": info.channel.to_string()});
    if let Some(name) = &info.channel_name {
        channel["displayname"] = json!(name);
    }
    json!({
        "bridgebot": info.bridgebot.to_string(),
        "creator": info.creator.to_string(),
        "protocol": {"id": PROTOCOL_ID, "displayname": PROTOCOL_NAME},
        "network": {"id": info.network(), "displayname": info.network()},
        "channel": channel,
    })
}

impl super::MatrixClient {
    /// Do both events hold `info` now? Read as the bot: two cheap state reads, so a room whose
    /// events are missing, emptied or stale can be given them again.
    pub(super) async fn bridge_info_matches(
        &self,
        room: &RoomId,
        bridge_id: &str,
        info: &BridgeInfo,
    ) -> Result<bool, MatrixError> {
        use ruma::api::client::state::get_state_event_for_key::v3::StateEventFormat;
        let want = content(info);
        let key = info.state_key(bridge_id);
        for kind in EVENT_TYPES {
            if self.state(room, kind, &key, StateEventFormat::Content).await?.as_ref() != Some(&want) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::{BareJid, MatrixUserId};

    #[test]
    fn the_content_names_the_bot_the_creator_and_the_muc() {
        let info = BridgeInfo {
            bridgebot: MatrixUserId::parse("@ucbridge:hs").unwrap(),
            creator: MatrixUserId::parse("@alice:hs").unwrap(),
            channel: BareJid::parse("team@conference.example").unwrap(),
            channel_name: Some("#team:hs".into()),
        };
        let c = content(&info);
        assert_eq!(c["bridgebot"], "@ucbridge:hs");
        assert_eq!(c["creator"], "@alice:hs");
        assert_eq!(c["protocol"], json!({"id": "xmpp", "displayname": "XMPP"}));
        assert_eq!(c["network"]["id"], "conference.example");
        assert_eq!(c["channel"], json!({"id": "team@conference.example", "displayname": "#team:hs"}));
    }
}
