//! The bridge's description of a room it bridges, which Matrix clients show as "bridged to
//! XMPP" (MSC2346, <https://github.com/matrix-org/matrix-spec-proposals/pull/2346>). Core terms
//! only: the Matrix adapter writes it as `m.bridge` and `uk.half-shot.bridge` state events.

use crate::core::ids::{BareJid, MatrixUserId};

/// The remote side of a bridged room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeInfo {
    /// The bridge's bot.
    pub bridgebot: MatrixUserId,
    /// Who had the room bridged (the bot when the bridge did it on its own).
    pub creator: MatrixUserId,
    /// The MUC the room is bridged to.
    pub channel: BareJid,
    /// How people know the room (its alias or name), if it has one.
    pub channel_name: Option<String>,
}

/// The protocol's id and name in the event.
pub const PROTOCOL_ID: &str = "xmpp";
pub const PROTOCOL_NAME: &str = "XMPP";

impl BridgeInfo {
    /// The network: the XMPP service hosting the MUC (its domain).
    pub fn network(&self) -> &str {
        self.channel.domain()
    }

    /// The state key: this bridge (its registration id) and the channel, so that several
    /// bridges, or one bridging a room twice, never overwrite each other's event.
    pub fn state_key(&self, bridge_id: &str) -> String {
        format!("{bridge_id}/{PROTOCOL_ID}/{}/{}", self.network(), self.channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_key_names_the_bridge_and_the_channel() {
        let info = BridgeInfo {
            bridgebot: MatrixUserId::parse("@ucbridge:hs").unwrap(),
            creator: MatrixUserId::parse("@alice:hs").unwrap(),
            channel: BareJid::parse("team@conference.example").unwrap(),
            channel_name: None,
        };
        assert_eq!(info.network(), "conference.example");
        assert_eq!(info.state_key("ucbridge"), "ucbridge/xmpp/conference.example/team@conference.example");
    }
}
