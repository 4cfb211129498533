//! What the XMPP adapter asks of the bridge, in the core's terms (the XMPP side's `MatrixIn`):
//! `xmpp/` reads a stanza into an [`XmppIn`], `bridge/xmpp_in` decides what it means. No
//! xmpp-parsers types: addresses are the core's ids, affiliations and roles are enums.

use crate::core::action::Extras;
use crate::core::ids::{BareJid, MatrixUserId, StanzaId};
use crate::core::inbound::{XmppAct, XmppChatIn};
use crate::core::presence::XmppPresence;

/// One request the XMPP side makes of the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmppIn {
    /// The component (re)connected: announce presence, rejoin linked MUCs.
    Connected,

    // ---------------------------------------------------------------- 1:1 and the component --
    /// A 1:1 message to a Matrix user's address.
    Chat(XmppChatIn),
    /// Reactions or a retraction sent to a Matrix user's address.
    DirectAct {
        from: BareJid,
        to_local: String,
        id: Option<String>,
        act: XmppAct,
    },
    /// A direct invitation (XEP-0249) of the Matrix user behind `to_local` into `room`.
    DirectInvite {
        from: BareJid,
        to_local: String,
        room: BareJid,
    },
    /// Chat states, read markers and receipts sent to an address (no body).
    DirectMarkers {
        from: BareJid,
        to_local: Option<String>,
        markers: Vec<Marker>,
    },
    /// An ad-hoc command (XEP-0050) to the component.
    AdhocCommand(AdhocCommand),
    /// A message to the component itself: a command line.
    Command {
        from: BareJid,
        body: String,
    },
    /// An error came back for a message the bridge sent to `from`.
    Bounce {
        from: BareJid,
        to_local: String,
        reason: String,
    },
    /// A subscription request, answer or probe from `sender` about `user`. `subscriber` and
    /// `contact` are the two bare addresses as written.
    Subscription {
        kind: SubscriptionKind,
        sender: BareJid,
        user: MatrixUserId,
        subscriber: String,
        contact: String,
    },
    /// An XMPP user's own presence (available or not) sent to a Matrix user's address.
    Availability {
        sender: BareJid,
        user: MatrixUserId,
        resource: String,
        state: XmppPresence,
        photo: Option<[u8; 20]>,
    },
    /// An XMPP user searches the Matrix user directory (XEP-0055) for `term` (checked: not
    /// empty, bounded).
    UserSearch {
        sender: BareJid,
        term: String,
    },
    /// A vCard request for a Matrix user.
    VCardRequest {
        user: MatrixUserId,
    },
    /// An answer (or error, `photo` `None`) to an iq the bridge sent (its vCard requests).
    IqAnswer {
        id: String,
        from: Option<BareJid>,
        photo: Option<(Vec<u8>, String)>,
    },
    /// The list of ad-hoc commands (disco#items on the commands node), shown to `from`.
    CommandList {
        from: Option<BareJid>,
    },

    // ------------------------------------------------ the AI assistant (assistant@component) --
    /// What the assistant says about itself (disco#info; `node` as asked).
    AssistantInfo {
        node: Option<String>,
    },
    /// The assistant's vCard.
    AssistantCard,
    /// A subscription request, answer or probe from `sender` to the assistant's address.
    AssistantPresence {
        kind: SubscriptionKind,
        sender: BareJid,
    },
    /// An invitation of the assistant into the MUC `muc` on an XMPP server (XEP-0249 direct or,
    /// `mediated`, XEP-0045's through the MUC, which names the inviter), from `inviter`.
    AssistantInvite {
        muc: BareJid,
        inviter: BareJid,
        mediated: bool,
    },
    /// A live message (not history) in a MUC the assistant is in, from the occupant `nick`.
    AssistantMucMessage {
        muc: BareJid,
        nick: String,
        id: Option<String>,
        body: String,
    },
    /// The assistant is out of the MUC `muc`: kicked, banned, or its joining refused (`why`).
    AssistantMucGone {
        muc: BareJid,
        why: String,
    },

    // ---------------------------------------------------------------- hosted rooms --
    /// An XMPP client joins a hosted room.
    MucJoin {
        join: MucJoin,
        photo: Option<[u8; 20]>,
    },
    /// An XMPP client (`full`) leaves a hosted room.
    MucLeave {
        room_local: String,
        full: String,
        sender: BareJid,
    },
    MucMessage {
        room_local: String,
        full: String,
        sender: BareJid,
        id: Option<String>,
        body: String,
        extras: Extras<StanzaId>,
        /// The URIs its XEP-0372 mention references name.
        mentions: Vec<String>,
    },
    MucAct {
        room_local: String,
        full: String,
        sender: BareJid,
        id: Option<String>,
        act: XmppAct,
    },
    MucSubject {
        room_local: String,
        full: String,
        sender: BareJid,
        subject: String,
    },
    /// Chat states and displayed markers in a hosted room.
    MucMarkers {
        room_local: String,
        full: String,
        sender: BareJid,
        markers: Vec<Marker>,
    },
    /// A private message to the occupant `nick`.
    MucPrivate {
        room_local: String,
        full: String,
        sender: BareJid,
        nick: String,
        id: Option<String>,
        body: String,
    },
    /// A mediated invitation of `invitee` (a bare JID as written).
    MucInvite {
        room_local: String,
        sender: BareJid,
        invitee: String,
    },
    /// `muc#owner` set: a new name and description.
    MucConfigure {
        room_local: String,
        sender: BareJid,
        name: Option<String>,
        desc: Option<String>,
    },
    /// `muc#owner` get: the configuration form.
    MucConfig {
        room_local: String,
        sender: BareJid,
    },
    /// `muc#admin` set.
    MucAdmin {
        room_local: String,
        sender: BareJid,
        items: Vec<AdminItem>,
    },
    /// `muc#admin` get.
    MucAdminList {
        room_local: String,
        sender: BareJid,
    },
    /// disco#info about a room.
    MucInfo {
        room_local: String,
    },
    /// The room's vCard (XEP-0486: its avatar), asked by anyone.
    MucAvatar {
        room_local: String,
    },
    /// A new avatar for the room (a vCard set, XEP-0486): the picture's bytes as sent (not
    /// checked yet), `None` to remove it.
    MucSetAvatar {
        room_local: String,
        sender: BareJid,
        photo: Option<Vec<u8>>,
    },
    /// A MAM query on a room's archive.
    MucArchive {
        room_local: String,
        sender: BareJid,
        query: ArchiveQuery,
    },

    // ---------------------------------------------------------------- linked MUCs --
    /// A linked MUC's presence for its occupant `nick`, received at `user`'s address.
    LinkedPresence {
        muc: BareJid,
        nick: String,
        user: MatrixUserId,
        presence: RemotePresence,
    },
    /// A linked MUC's room message: said, or reactions or a retraction.
    LinkedMessage(Box<LinkedSaid>),
    /// A linked MUC says its configuration (its avatar) may have changed: a status 104
    /// message, or a presence from the room itself with an avatar hash.
    LinkedRoomChanged {
        muc: BareJid,
    },
}

/// A message from occupant `nick` of the linked MUC `muc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedSaid {
    pub muc: BareJid,
    pub nick: String,
    /// The room's XEP-0359 stanza id (only one whose `by` is the room itself): replies,
    /// reactions and retractions in the room name messages by it.
    pub stanza_id: Option<String>,
    /// The sender's own id (`origin-id`, else the stanza's `id`): corrections name it.
    pub message_id: Option<String>,
    /// The text (without a reply's fallback quote); empty for reactions.
    pub body: String,
    /// Reply (room stanza id), correction (sender's message id), file.
    pub extras: Extras<StanzaId>,
    /// Reactions or a retraction instead of a text.
    pub act: Option<XmppAct>,
    /// The URIs its XEP-0372 mention references name (validated, bounded).
    pub mentions: Vec<String>,
}

/// A chat state, read marker or delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// XEP-0085: composing (`true`) or any other state.
    ChatState { composing: bool },
    /// XEP-0333: read up to the message `id`.
    Displayed { id: String },
    /// XEP-0184: the message `id` was delivered.
    Received { id: String },
}

/// A subscription-related presence type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionKind {
    Subscribe,
    Unsubscribe,
    Subscribed,
    Unsubscribed,
    Probe,
}

/// An XMPP client entering a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MucJoin {
    pub room_local: String,
    pub full: String,
    pub bare: BareJid,
    pub nick: String,
    /// `<history maxstanzas=…/>` if the client asked.
    pub max_history: Option<u32>,
    /// The client's presence (show and status), shown to the other occupants.
    pub presence: Option<XmppPresence>,
}

/// A MUC affiliation (XEP-0045) as an admin request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Affiliation {
    Owner,
    Admin,
    Member,
    Outcast,
    None,
    /// A value XEP-0045 does not define (refused, and named in the refusal).
    Other(String),
}

/// A MUC role (XEP-0045) as an admin request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MucRole {
    Moderator,
    Participant,
    Visitor,
    None,
    Other(String),
}

impl Affiliation {
    pub fn parse(s: &str) -> Self {
        match s {
            "owner" => Self::Owner,
            "admin" => Self::Admin,
            "member" => Self::Member,
            "outcast" => Self::Outcast,
            "none" => Self::None,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Outcast => "outcast",
            Self::None => "none",
            Self::Other(s) => s,
        }
    }
}

impl MucRole {
    pub fn parse(s: &str) -> Self {
        match s {
            "moderator" => Self::Moderator,
            "participant" => Self::Participant,
            "visitor" => Self::Visitor,
            "none" => Self::None,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Moderator => "moderator",
            Self::Participant => "participant",
            Self::Visitor => "visitor",
            Self::None => "none",
            Self::Other(s) => s,
        }
    }
}

/// One `<item/>` of a `muc#admin` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminItem {
    pub nick: Option<String>,
    pub jid: Option<String>,
    pub affiliation: Option<Affiliation>,
    pub role: Option<MucRole>,
    pub reason: Option<String>,
}

/// A MAM query: its filters (XEP-0313) and paging (XEP-0059).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveQuery {
    pub max: Option<usize>,
    pub after: Option<String>,
    pub before: Option<String>,
    /// Sent at or after / at or before (ms since the epoch).
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// Sent by this address: an occupant (`room/nick`) or a participant's bare JID.
    pub with: Option<String>,
    /// Only messages after / before these archive ids (exclusive).
    pub after_id: Option<String>,
    pub before_id: Option<String>,
    /// The page's messages newest first (`flip-page`).
    pub flip: bool,
}

/// How a remote MUC's presence for one of its occupants reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemotePresence {
    Available { real: Option<BareJid>, own: bool },
    Unavailable { own: bool },
    Error { condition: String, text: String },
}

/// An ad-hoc command (XEP-0050) sent to the component, read from its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdhocCommand {
    pub sender: BareJid,
    pub node: String,
    /// Whether the node is an admin command; `None`: there is no such command.
    pub admin: Option<bool>,
    /// What was tried (the command line, else the node), for the audit of a refusal.
    pub attempted: String,
    pub step: AdhocStep,
}

/// Where an ad-hoc command is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdhocStep {
    /// The sender cancelled it.
    Cancel,
    /// It was started: the form comes next.
    Form,
    /// Its form was submitted: the command it stands for, or what is wrong with the form.
    Submitted(Result<Submission, String>),
}

/// What a submitted form asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// An admin command line (the `admin` node).
    Line(String),
    /// A command of the user tree, as its words.
    User { words: Vec<String> },
    /// A command of the admin tree, as its words; `line` is how it reads typed (for the audit),
    /// `file` a file given with it (name and content).
    Admin { words: Vec<String>, line: String, file: Option<(String, String)> },
}
