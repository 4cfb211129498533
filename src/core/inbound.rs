//! What the adapters report from the networks, in the core's terms.

use crate::core::action::{Extras, Text};
use crate::core::ids::{BareJid, MatrixUserId, RoomId, StanzaId};
use crate::core::presence::MatrixState;

/// A membership state of a Matrix user in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Invite,
    Join,
    Leave,
    Ban,
    Knock,
}

/// A Matrix room event (or ephemeral event) the bridge cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatrixIn {
    /// `sender` changed `user`'s membership (an invite when `membership` is `Invite`).
    Membership {
        room: RoomId,
        sender: MatrixUserId,
        user: MatrixUserId,
        membership: Membership,
        displayname: Option<String>,
        /// The avatar (`mxc://` URL) the member event shows, if any.
        avatar_url: Option<String>,
        reason: Option<String>,
        /// An invitation to a direct chat (`is_direct`), not into a room of several people.
        is_direct: bool,
    },
    /// The power levels of a room (`m.room.power_levels`).
    PowerLevels {
        room: RoomId,
        sender: MatrixUserId,
        users: std::collections::BTreeMap<MatrixUserId, i64>,
        users_default: i64,
    },
    /// The room's topic changed.
    Topic { room: RoomId, sender: MatrixUserId, topic: String },
    /// The room's name changed.
    Name { room: RoomId, sender: MatrixUserId, name: String },
    /// The room's join rule changed: `open` when anyone may join.
    JoinRule { room: RoomId, sender: MatrixUserId, open: bool },
    /// The room's avatar changed (`m.room.avatar`): its `mxc://` URL, `None` when removed.
    Avatar { room: RoomId, sender: MatrixUserId, url: Option<String> },
    Message {
        room: RoomId,
        sender: MatrixUserId,
        event_id: String,
        text: Text,
        /// The event this message answers (`m.in_reply_to`), if any.
        reply_to: Option<String>,
        /// The event this one corrects (`m.replace`; `text` is the new content), if any.
        replaces: Option<String>,
        /// The users it mentions (`m.mentions`), e.g. with a mention pill.
        mentions: Vec<MatrixUserId>,
        /// When it was sent (`origin_server_ts`, ms since the Unix epoch; `core::delay`).
        sent_at: Option<i64>,
    },
    /// A file (`m.file`, `m.image`, `m.video`, `m.audio`) someone posted.
    File { room: RoomId, sender: MatrixUserId, file: FileRef, reply_to: Option<String> },
    /// An `m.reaction` (annotation) with `key` to the event `target`.
    Reaction { room: RoomId, sender: MatrixUserId, event_id: String, target: String, key: String },
    /// `sender` redacted the event `redacts`.
    Redaction { room: RoomId, sender: MatrixUserId, redacts: String },
    /// Encryption was switched on (`m.room.encryption`).
    EncryptionEnabled { room: RoomId, sender: MatrixUserId },
    /// An encrypted event the bridge cannot read.
    Encrypted { room: RoomId, sender: MatrixUserId },
    /// A message the bridge cannot carry yet (e.g. a file); `what` describes it for a notice.
    Unsupported {
        room: RoomId,
        sender: MatrixUserId,
        what: String,
        /// For an `m.file`: where to fetch it (contact imports in the control room).
        file: Option<FileRef>,
    },
    /// Ephemeral: a user's presence changed.
    Presence { user: MatrixUserId, state: MatrixState, status_msg: Option<String> },
    /// Ephemeral: who is typing in a room now.
    Typing { room: RoomId, users: Vec<MatrixUserId> },
    /// Ephemeral: `user` has read up to `event_id`.
    Read { room: RoomId, user: MatrixUserId, event_id: String },
}

/// A file someone posted in a Matrix room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub event_id: String,
    /// The file name (the event's `filename`, else its `body`).
    pub name: String,
    /// `mxc://` URI of the content.
    pub mxc: String,
    pub size: Option<u64>,
    pub mimetype: Option<String>,
}

impl MatrixIn {
    /// The room the event happened in (presence has none).
    pub fn room(&self) -> Option<&RoomId> {
        match self {
            Self::Membership { room, .. }
            | Self::PowerLevels { room, .. }
            | Self::Topic { room, .. }
            | Self::Name { room, .. }
            | Self::JoinRule { room, .. }
            | Self::Avatar { room, .. }
            | Self::Message { room, .. }
            | Self::File { room, .. }
            | Self::Reaction { room, .. }
            | Self::Redaction { room, .. }
            | Self::EncryptionEnabled { room, .. }
            | Self::Encrypted { room, .. }
            | Self::Unsupported { room, .. }
            | Self::Typing { room, .. }
            | Self::Read { room, .. } => Some(room),
            Self::Presence { .. } => None,
        }
    }

    /// Ephemeral events change no stored state that a retried transaction could double.
    pub fn is_ephemeral(&self) -> bool {
        matches!(self, Self::Presence { .. } | Self::Typing { .. } | Self::Read { .. })
    }
}

/// A 1:1 message from an XMPP user to an address under the component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmppChatIn {
    pub from: BareJid,
    /// The localpart of the address written to (escaped Matrix ID).
    pub to_local: String,
    pub stanza_id: Option<StanzaId>,
    pub body: String,
    pub nick: Option<String>,
    /// The sender asked for a delivery receipt (XEP-0184).
    pub wants_receipt: bool,
    /// The sender asked for chat markers (XEP-0333).
    pub markable: bool,
    /// Reply (XEP-0461) and correction (XEP-0308) by the sender's ids, a file (XEP-0066).
    pub extras: Extras<StanzaId>,
}

/// What an XMPP message does to an earlier message instead of saying something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmppAct {
    /// The sender's full set of reactions (XEP-0444) to the message `id`.
    Reactions { id: String, keys: Vec<String> },
    /// The sender retracts their message `id` (XEP-0424).
    Retract { id: String },
}
