//! What the adapters report from the networks, in the core's terms.

use crate::core::action::Text;
use crate::core::ids::{BareJid, MatrixUserId, RoomId};

/// A membership state of a Matrix user in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Invite,
    Join,
    Leave,
    Ban,
    Knock,
}

/// A Matrix room event the bridge cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatrixIn {
    /// `sender` changed `user`'s membership (an invite when `membership` is `Invite`).
    Membership {
        room: RoomId,
        sender: MatrixUserId,
        user: MatrixUserId,
        membership: Membership,
        displayname: Option<String>,
    },
    Message {
        room: RoomId,
        sender: MatrixUserId,
        text: Text,
    },
    /// Encryption was switched on (`m.room.encryption`).
    EncryptionEnabled {
        room: RoomId,
        sender: MatrixUserId,
    },
    /// An encrypted event the bridge cannot read.
    Encrypted {
        room: RoomId,
        sender: MatrixUserId,
    },
    /// A message the bridge cannot carry yet (e.g. a file); `what` describes it for a notice.
    Unsupported {
        room: RoomId,
        sender: MatrixUserId,
        what: String,
    },
}

/// A 1:1 message from an XMPP user to an address under the component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmppChatIn {
    pub from: BareJid,
    /// The localpart of the address written to (escaped Matrix ID).
    pub to_local: String,
    pub stanza_id: Option<String>,
    pub body: String,
    pub nick: Option<String>,
}
