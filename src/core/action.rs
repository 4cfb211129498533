//! Outbound actions: what the bridge has promised to do on one of the networks.
//!
//! Every action is written to the outbox (as JSON) before it is attempted, so a crash or an
//! outage delays it but never loses it. Actions on the same lane run strictly in order.

use serde::{Deserialize, Serialize};

use crate::core::conversation::{Conversation, Direction, Lane};
use crate::core::ids::{ArchiveId, BareJid, EventId, MatrixUserId, PhoneNumber, RoomId, StanzaId};
use crate::core::refusal::RefusalKind;
use crate::core::room::Role;
use crate::core::watch::Party;

/// How a text is meant: a normal message, an automatic notice, or an action ("/me waves").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextKind {
    Text,
    Notice,
    Emote,
}

/// Plain text with its kind. Formatting is derived by the adapters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub body: String,
    pub kind: TextKind,
}

impl Text {
    pub fn plain(body: impl Into<String>) -> Self {
        Self { body: body.into(), kind: TextKind::Text }
    }

    pub fn notice(body: impl Into<String>) -> Self {
        Self { body: body.into(), kind: TextKind::Notice }
    }
}

/// What a message carries besides its text: the message it answers (XEP-0461 / `m.in_reply_to`),
/// the earlier message it corrects (XEP-0308 / `m.replace`), a file (XEP-0066 / Matrix media).
/// `Id` is the network the references are in: [`StanzaId`] for what XMPP sent and what goes to
/// XMPP (in a hosted room, the room's stanza ids, i.e. archive ids as text), [`EventId`] for
/// what Matrix sent (resolved to stanza ids when delivered). The action that carries them says
/// whose ids they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extras<Id> {
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Reply<Id>>,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub replaces: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Attachment>,
    /// When the message was written (ms since the Unix epoch; `core::delay`), so that one that
    /// waited shows its original time on the other side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
}

// `#[serde(default)]` on a generic field would ask `Id: Default`.
fn none<T>() -> Option<T> {
    None
}

impl<Id> Default for Extras<Id> {
    fn default() -> Self {
        Self { reply_to: None, replaces: None, file: None, sent_at: None }
    }
}

impl<Id> Extras<Id> {
    pub fn is_empty(&self) -> bool {
        self.reply_to.is_none() && self.replaces.is_none() && self.file.is_none()
    }

    /// Nothing to store: no references, no file, no time (the outbox row leaves it out).
    pub fn is_unset(&self) -> bool {
        self.is_empty() && self.sent_at.is_none()
    }
}

/// The message a reply answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply<Id> {
    pub id: Id,
    /// Who wrote it, as the receiving network addresses them (XEP-0461 `to`), when known.
    #[serde(default)]
    pub author: Option<String>,
    /// Its text, quoted as the fallback for clients without replies, when known.
    #[serde(default)]
    pub quote: Option<String>,
}

/// A file, by the URL it can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub url: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub mimetype: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
}

/// A message reactions or a retraction from XMPP refer to, resolved when the action runs (the
/// message may still be on its way to Matrix when they are accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "in", rename_all = "snake_case")]
pub enum XmppTarget {
    /// In the direct chat of `from` with `to`: the id the XMPP user knows the message by.
    Dm { from: BareJid, to: MatrixUserId, stanza_id: StanzaId },
    /// In a hosted room: the archive id (the room's XEP-0359 stanza id).
    Room { room: RoomId, archive_id: ArchiveId },
    /// In a linked MUC's room: the MUC's stanza id, acted on by its occupant `nick`.
    Linked { room: RoomId, muc: BareJid, stanza_id: StanzaId, nick: String },
}

/// One unit of outbound work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// An XMPP user's 1:1 message to a Matrix user: delivered by the XMPP user's ghost into
    /// their direct chat, which is created (or the Matrix user re-invited) on demand.
    MatrixDirect {
        from: BareJid,
        to: MatrixUserId,
        /// Display name to give the ghost (XEP-0172 nick), if the XMPP side told us one.
        nick: Option<String>,
        /// The sender's stanza id, to address an error if delivery is refused.
        stanza_id: Option<StanzaId>,
        text: Text,
        /// The sender asked for a delivery receipt (XEP-0184).
        #[serde(default)]
        wants_receipt: bool,
        /// The sender asked for chat markers (XEP-0333).
        #[serde(default)]
        markable: bool,
        /// Reply and correction by the sender's stanza ids (resolved to events when delivered),
        /// a file by its URL.
        #[serde(default, skip_serializing_if = "Extras::is_unset")]
        extras: Extras<StanzaId>,
    },
    /// An XMPP user's full set of reactions (XEP-0444) to a message: the ghost's `m.reaction`
    /// events are made to match it (adds and redactions).
    MatrixReactions { target: XmppTarget, user: MatrixUserId, keys: Vec<String>, stanza_id: Option<StanzaId> },
    /// An XMPP user retracted a message of theirs (XEP-0424): the ghost redacts its event.
    MatrixRetract { target: XmppTarget, user: MatrixUserId, stanza_id: Option<StanzaId> },
    /// A bridge user (a ghost or the bot) joins a room it was invited to.
    MatrixJoin { room: RoomId, user: MatrixUserId },
    /// A ghost's display name in one room only (a remote MUC occupant's nick): a MUC's say-so
    /// never changes the name the ghost has everywhere else.
    MatrixRoomName { room: RoomId, user: MatrixUserId, name: String },
    /// A bridge user posts a text in a room (notices about what the bridge cannot do, and an
    /// XMPP occupant's message in a bridged room, posted by their ghost).
    MatrixPost {
        room: RoomId,
        user: MatrixUserId,
        text: Text,
        /// For a ghost: the display name to give it (the occupant's nick).
        #[serde(default)]
        nick: Option<String>,
    },
    /// A notice from the bridge bot, optionally with HTML and as a reply to an event.
    MatrixNotice { room: RoomId, body: String, html: Option<String>, reply_to: Option<EventId> },
    /// An XMPP occupant's message in a hosted room, posted by their ghost; the event ID it gets
    /// is recorded with the archived message (for read markers).
    /// `extras` refer to archive ids of the room (resolved to events when delivered).
    MatrixRoomSay {
        room: RoomId,
        user: MatrixUserId,
        text: Text,
        nick: String,
        archive_id: ArchiveId,
        #[serde(default, skip_serializing_if = "Extras::is_unset")]
        extras: Extras<StanzaId>,
        /// Whom it mentions (the nick it starts with), with the name the text calls them by.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<(MatrixUserId, String)>,
    },
    /// The bridge bot creates a group conversation for `initiator`, who becomes its owner.
    MatrixCreateRoom {
        initiator: Party,
        name: String,
        /// Alias localpart (`sales` for `#sales:hs`).
        alias: String,
        /// Anyone may join (public join rule / open MUC).
        open: bool,
        /// Where to tell the initiator the result (their chat with the bot), if on Matrix.
        #[serde(default)]
        reply_room: Option<RoomId>,
        /// People to invite once the room exists (`start-chat GROUP`).
        #[serde(default)]
        members: Vec<Party>,
    },
    /// The bridge bot changes something in a bridged room on someone's behalf.
    MatrixRoomAct { room: RoomId, op: RoomOp },
    /// The bot was invited into a room made elsewhere (`core::adopt`): it joins and, if
    /// `inviter` is one of the room's admins, offers to bridge it; otherwise it says why not
    /// and leaves (`invited`; asked with `!bridge` by someone in the room, it only answers).
    MatrixAdoptOffer { room: RoomId, inviter: MatrixUserId, invited: bool },
    /// `by` confirmed the offer: the room becomes a hosted room (the checks run again).
    MatrixAdopt { room: RoomId, by: MatrixUserId },
    /// A message said in a bridged room, sent to every XMPP client joined to its MUC.
    XmppGroupchat {
        room: RoomId,
        nick: String,
        text: Text,
        /// Archive id: the XEP-0359 stanza id, and the MAM result id.
        archive_id: ArchiveId,
        /// The XMPP sender's own stanza id (echoed back to them, as XEP-0045 asks).
        #[serde(default)]
        origin_id: Option<StanzaId>,
        /// In the MUC's terms: reply to an archive id, correction of a message id.
        #[serde(default, skip_serializing_if = "Extras::is_unset")]
        extras: Extras<StanzaId>,
        /// The occupants it mentions, where `text` names them (XEP-0372 references).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<crate::core::mentions::Span>,
    },
    /// An occupant's full set of reactions to an archived message, to every client in the MUC.
    XmppGroupReactions { room: RoomId, nick: String, archive_id: ArchiveId, keys: Vec<String> },
    /// An occupant retracted an archived message of theirs, to every client in the MUC.
    XmppGroupRetract { room: RoomId, nick: String, archive_id: ArchiveId },
    /// A change of someone's place in a bridged room, as occupant presence to the MUC.
    XmppOccupant { room: RoomId, who: Party, nick: String, change: OccupantChange },
    /// A room's subject, to every XMPP client joined to its MUC.
    XmppSubject { room: RoomId, subject: String },
    /// A room's configuration changed (its avatar): every XMPP client joined to its MUC is told
    /// (status 104), so it asks for the room's avatar again (XEP-0486).
    XmppRoomChanged { room: RoomId },
    /// A Matrix user in a linked MUC's room becomes an occupant of the MUC it stands for. (The
    /// serde names of the linked-MUC actions are their first ones: they are stored in the outbox.)
    #[serde(rename = "xmpp_portal_join")]
    LinkedMucJoin { room: RoomId, muc: BareJid, user: MatrixUserId, nick: String },
    /// A Matrix user left a linked MUC's room: they leave the MUC.
    #[serde(rename = "xmpp_portal_leave")]
    LinkedMucLeave { room: RoomId, muc: BareJid, user: MatrixUserId, nick: String },
    /// A Matrix user's message in a linked MUC's room, said in the MUC.
    #[serde(rename = "xmpp_portal_message")]
    LinkedMucMessage {
        room: RoomId,
        muc: BareJid,
        from: MatrixUserId,
        text: Text,
        /// The event it is (recorded with the id it gets in the MUC).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<EventId>,
        /// Reply and correction by events of `room` (resolved to the MUC's ids when delivered).
        #[serde(default, skip_serializing_if = "Extras::is_empty")]
        extras: Extras<EventId>,
        /// Whom it mentions (`m.mentions`): named by their nick in the MUC.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<MatrixUserId>,
    },
    /// A Matrix user's full set of reactions to a message of a linked MUC (`target`: its event).
    LinkedMucReactions { room: RoomId, muc: BareJid, from: MatrixUserId, target: EventId, keys: Vec<String> },
    /// A Matrix user redacted their message in a linked MUC's room: retracted in the MUC.
    LinkedMucRetract { room: RoomId, muc: BareJid, from: MatrixUserId, target: EventId },
    /// An occupant's message in a linked MUC, posted by their ghost (or, where the MUC hides who
    /// they are, by the bot with their nick); the event is recorded with the MUC's ids.
    MatrixLinkedSay {
        room: RoomId,
        user: MatrixUserId,
        muc: BareJid,
        nick: String,
        text: Text,
        /// The room's stanza id and the sender's own id of the message.
        stanza_id: Option<StanzaId>,
        message_id: Option<StanzaId>,
        /// Reply by the room's stanza id, correction by the sender's id.
        #[serde(default, skip_serializing_if = "Extras::is_empty")]
        extras: Extras<StanzaId>,
        /// Whom it mentions, with the name the text calls them by (made a pill).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<(MatrixUserId, String)>,
    },
    /// A ghost leaves a room (its XMPP user left the MUC the room stands for).
    MatrixLeave { room: RoomId, user: MatrixUserId },
    /// A MUC invitation (XEP-0045 mediated invite) for an XMPP user.
    XmppMucInvite { room: RoomId, to: BareJid, from: Party, reason: Option<String> },
    /// A Matrix user's message to an XMPP user, sent from the Matrix user's address under the
    /// component.
    XmppChat {
        from: MatrixUserId,
        to: BareJid,
        /// The Matrix user's display name, sent as XEP-0172 nick.
        nick: Option<String>,
        text: Text,
        /// The Matrix event this is (for read markers coming back).
        #[serde(default)]
        event: Option<(RoomId, EventId)>,
        /// Reply and correction by Matrix event ids of `event`'s room (resolved to stanza ids
        /// when delivered), a file by the bridge's URL for it.
        #[serde(default, skip_serializing_if = "Extras::is_unset")]
        extras: Extras<EventId>,
    },
    /// A Matrix user's full set of reactions (XEP-0444) to the message `target` (an event of
    /// `room`, resolved to its stanza id when delivered).
    XmppReactions { from: MatrixUserId, to: BareJid, room: RoomId, target: EventId, keys: Vec<String> },
    /// A Matrix user redacted a message of theirs: an XEP-0424 retraction.
    XmppRetract { from: MatrixUserId, to: BareJid, room: RoomId, target: EventId },
    /// A message from the bridge itself (the component) to an XMPP user.
    XmppNotice { to: BareJid, text: Text },
    /// Tell an XMPP user that a message of theirs, accepted earlier, was finally refused: a chat
    /// message from the address they wrote to, with the reason and the start of what they wrote.
    /// (Not an error stanza: it could only go to their bare JID, where servers drop errors,
    /// RFC 6121 §8.5.2.1.1.) `stanza_id` and `refusal` are kept for rows queued before.
    XmppBounce {
        from: MatrixUserId,
        to: BareJid,
        stanza_id: Option<StanzaId>,
        refusal: RefusalKind,
        reason: String,
        #[serde(default)]
        quote: Option<String>,
    },
    /// An e-mail (a missed-call notice), built when it was queued: retries send the same bytes,
    /// with the same `Message-ID`.
    Mail {
        message_id: String,
        /// Envelope sender (bounces go there).
        from: String,
        /// Envelope recipients.
        to: Vec<String>,
        /// The whole RFC 5322 message.
        raw: String,
    },
    /// An SMS through the gateway: a person's message to a phone number, or a missed-call
    /// notice. Leaves the outbox only once the gateway accepted it.
    SmsSend {
        /// Who wrote it (`None`: the bridge itself, e.g. a missed-call notice).
        author: Option<Party>,
        /// The number (or alphanumeric sender) it goes out from.
        sender: String,
        to: PhoneNumber,
        text: String,
        /// How many SMS the gateway will make of `text`.
        parts: u32,
        /// Where its delivery status is shown.
        origin: Option<SmsOrigin>,
    },
    /// An incoming SMS (or a notice about the conversation), posted by the number's ghost in the
    /// Matrix user's room with it, which is created on demand.
    SmsToMatrix { phone: PhoneNumber, to: MatrixUserId, text: Text },
    /// An incoming SMS (or a notice about the conversation) to an XMPP user, from the number's
    /// address under the component.
    XmppFromPhone { phone: PhoneNumber, to: BareJid, text: Text },
    /// An SMS an XMPP user wrote could not be sent: an error reply to their stanza.
    XmppPhoneBounce { phone: PhoneNumber, to: BareJid, stanza_id: Option<StanzaId>, reason: String },
    /// A person's message to the chatbot in their one-to-one chat with it: answered by the
    /// provider with their context (or `/clear`, or refused), the answer sent back where it came
    /// from (`room` on Matrix; `None`: the person's XMPP address). On the person's own lane, so
    /// their questions are answered in order. In a room of several people (`in_room`: the
    /// message's event) the context is the room's, and the answer replies to the message.
    /// In a MUC on an XMPP server it was invited into (`muc`), the context is the MUC's and the
    /// answer is said there; `from` is who invited it.
    ChatbotMessage {
        from: Party,
        room: Option<RoomId>,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_room: Option<EventId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        muc: Option<BareJid>,
    },
}

/// The message an SMS was written as, for its delivery ticks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "network", rename_all = "snake_case")]
pub enum SmsOrigin {
    Matrix { room: RoomId, user: MatrixUserId, event_id: EventId },
    Xmpp { jid: BareJid, stanza_id: Option<StanzaId>, wants_receipt: bool },
}

/// What the bridge bot does in a bridged room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RoomOp {
    Invite {
        user: MatrixUserId,
    },
    Kick {
        user: MatrixUserId,
        reason: String,
    },
    /// Withdraw `user`'s invitation as `by`, a member of the room (a ghost in its direct chat,
    /// where the bot is not).
    Withdraw {
        user: MatrixUserId,
        by: MatrixUserId,
        reason: String,
    },
    SetPower {
        user: MatrixUserId,
        level: i64,
    },
    SetTopic {
        topic: String,
    },
    SetName {
        name: String,
    },
    /// The room's avatar (`m.room.avatar`): an `mxc://` URL, `None` to remove it.
    SetAvatar {
        url: Option<String>,
    },
}

/// How an occupant's presence in a MUC changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum OccupantChange {
    /// Present with this role (joined, or the role changed).
    Present { role: Role },
    /// Gone: left on their own, or removed by a moderator (`kicked`).
    Gone {
        kicked: bool,
        reason: Option<String>,
        /// Banned rather than only removed (XEP-0045 status 301).
        #[serde(default)]
        banned: bool,
    },
    /// Known under a new nick (XEP-0045 status 303).
    Renamed { role: Role, new_nick: String },
}

impl Action {
    /// Actions on one lane are delivered one after another in order; different lanes run
    /// concurrently. A lane is one direction of one conversation.
    pub fn lane(&self) -> Lane {
        use Conversation as C;
        use Direction as D;
        let direct =
            |xmpp: &BareJid, matrix: &MatrixUserId| C::DirectChat { xmpp: xmpp.clone(), matrix: matrix.clone() };
        let (conversation, direction) = match self {
            Action::MatrixDirect { from, to, .. } => (direct(from, to), D::ToMatrix),
            Action::MatrixReactions { target, .. } | Action::MatrixRetract { target, .. } => match target {
                XmppTarget::Dm { from, to, .. } => (direct(from, to), D::ToMatrix),
                XmppTarget::Room { room, .. } | XmppTarget::Linked { room, .. } => {
                    (C::MatrixRoom(room.clone()), D::ToMatrix)
                }
            },
            Action::MatrixJoin { room, .. }
            | Action::MatrixRoomName { room, .. }
            | Action::MatrixLeave { room, .. }
            | Action::MatrixPost { room, .. }
            | Action::MatrixRoomSay { room, .. }
            | Action::MatrixLinkedSay { room, .. }
            | Action::MatrixNotice { room, .. }
            | Action::MatrixRoomAct { room, .. }
            | Action::MatrixAdoptOffer { room, .. }
            | Action::MatrixAdopt { room, .. } => (C::MatrixRoom(room.clone()), D::ToMatrix),
            Action::MatrixCreateRoom { alias, .. } => (C::RoomCreation { alias: alias.clone() }, D::ToMatrix),
            Action::LinkedMucJoin { room, .. }
            | Action::LinkedMucLeave { room, .. }
            | Action::LinkedMucMessage { room, .. }
            | Action::LinkedMucReactions { room, .. }
            | Action::LinkedMucRetract { room, .. } => (C::LinkedMuc(room.clone()), D::ToXmpp),
            Action::XmppGroupchat { room, .. }
            | Action::XmppOccupant { room, .. }
            | Action::XmppSubject { room, .. }
            | Action::XmppRoomChanged { room }
            | Action::XmppMucInvite { room, .. }
            | Action::XmppGroupReactions { room, .. }
            | Action::XmppGroupRetract { room, .. } => (C::HostedRoom(room.clone()), D::ToXmpp),
            Action::XmppChat { from, to, .. }
            | Action::XmppReactions { from, to, .. }
            | Action::XmppRetract { from, to, .. }
            | Action::XmppBounce { from, to, .. } => (direct(to, from), D::ToXmpp),
            Action::XmppNotice { to, .. } => (C::BridgeNotices { to: to.clone() }, D::ToXmpp),
            Action::Mail { to, .. } => (C::Mail { to: to.clone() }, D::ToMail),
            Action::SmsSend { author, to, .. } => (C::SmsChat { phone: to.clone(), party: author.clone() }, D::ToPhone),
            Action::SmsToMatrix { phone, to, .. } => {
                (C::SmsChat { phone: phone.clone(), party: Some(Party::Matrix(to.clone())) }, D::ToMatrix)
            }
            Action::XmppFromPhone { phone, to, .. } | Action::XmppPhoneBounce { phone, to, .. } => {
                (C::SmsChat { phone: phone.clone(), party: Some(Party::Xmpp(to.clone())) }, D::ToXmpp)
            }
            Action::ChatbotMessage { from, room, .. } => {
                (C::Chatbot { party: from.clone() }, if room.is_some() { D::ToMatrix } else { D::ToXmpp })
            }
        };
        Lane::new(conversation, direction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_survive_a_json_round_trip() {
        let a = Action::MatrixDirect {
            from: BareJid::parse("alice@localhost").unwrap(),
            to: MatrixUserId::parse("@bob:localhost").unwrap(),
            nick: Some("Alice".into()),
            stanza_id: Some("abc".into()),
            text: Text::plain("hi\nthere 👋"),
            wants_receipt: true,
            markable: false,
            extras: Extras::default(),
        };
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), a);
        assert_eq!(a.lane().to_string(), "x2m:alice@localhost>@bob:localhost");
    }

    /// Actions are stored as JSON in the outbox: a variant renamed in the code keeps its stored
    /// name (rows written by earlier versions must still be read).
    #[test]
    fn stored_action_names_never_change() {
        let stored = r#"{"action":"xmpp_portal_message","room":"!r:hs","muc":"team@conference.example","from":"@a:hs","text":{"body":"hi","kind":"text"}}"#;
        let action: Action = serde_json::from_str(stored).expect("a stored linked-MUC message still reads");
        assert!(matches!(action, Action::LinkedMucMessage { .. }));
        let json = serde_json::to_value(&action).unwrap();
        assert_eq!(json["action"], "xmpp_portal_message");
    }

    /// The outbox stores each row's lane as text and finds rows by it: these forms are frozen
    /// (rows written by earlier versions must still match their lane).
    #[test]
    fn stored_lane_keys_never_change() {
        let jid = |s: &str| BareJid::parse(s).unwrap();
        let mx = |s: &str| MatrixUserId::parse(s).unwrap();
        let room = RoomId::parse("!r:hs").unwrap();
        let phone = PhoneNumber::parse("+4930123456").unwrap();
        let text = Text::plain("x");
        let cases: Vec<(Action, &str)> = vec![
            (
                Action::MatrixReactions {
                    target: XmppTarget::Dm { from: jid("a@x"), to: mx("@b:hs"), stanza_id: "1".into() },
                    user: mx("@b:hs"),
                    keys: vec![],
                    stanza_id: None,
                },
                "x2m:a@x>@b:hs",
            ),
            (
                Action::MatrixRetract {
                    target: XmppTarget::Room { room: room.clone(), archive_id: ArchiveId(1) },
                    user: mx("@b:hs"),
                    stanza_id: None,
                },
                "room:!r:hs",
            ),
            (
                Action::MatrixPost { room: room.clone(), user: mx("@b:hs"), text: text.clone(), nick: None },
                "room:!r:hs",
            ),
            (
                Action::MatrixCreateRoom {
                    initiator: Party::Matrix(mx("@b:hs")),
                    name: "Sales".into(),
                    alias: "ucb-sales".into(),
                    open: false,
                    reply_room: None,
                    members: vec![],
                },
                "create:ucb-sales",
            ),
            (
                Action::LinkedMucMessage {
                    room: room.clone(),
                    muc: jid("m@conf.x"),
                    from: mx("@b:hs"),
                    text: text.clone(),
                    event: None,
                    extras: Extras::default(),
                    mentions: vec![],
                },
                "portal:!r:hs",
            ),
            (Action::XmppSubject { room: room.clone(), subject: "s".into() }, "muc:!r:hs"),
            (Action::XmppRoomChanged { room: room.clone() }, "muc:!r:hs"),
            (
                Action::XmppRetract { from: mx("@b:hs"), to: jid("a@x"), room: room.clone(), target: "$e".into() },
                "m2x:@b:hs>a@x",
            ),
            (
                Action::XmppBounce {
                    from: mx("@b:hs"),
                    to: jid("a@x"),
                    stanza_id: None,
                    refusal: RefusalKind::NotFound,
                    reason: "r".into(),
                    quote: None,
                },
                "m2x:@b:hs>a@x",
            ),
            (Action::XmppNotice { to: jid("a@x"), text: text.clone() }, "bridge>a@x"),
            (
                Action::ChatbotMessage {
                    from: Party::Xmpp(jid("a@x")),
                    room: None,
                    text: "hi".into(),
                    in_room: None,
                    muc: None,
                },
                "chatbot:xmpp:a@x",
            ),
            (
                Action::ChatbotMessage {
                    from: Party::Matrix(mx("@b:hs")),
                    room: Some(room.clone()),
                    text: "hi".into(),
                    in_room: None,
                    muc: None,
                },
                "chatbot:matrix:@b:hs",
            ),
            (
                Action::Mail {
                    message_id: "m".into(),
                    from: "f@x".into(),
                    to: vec!["a@x".into(), "b@x".into()],
                    raw: String::new(),
                },
                "mail>a@x,b@x",
            ),
            (
                Action::SmsSend {
                    author: None,
                    sender: "UCB".into(),
                    to: phone.clone(),
                    text: "t".into(),
                    parts: 1,
                    origin: None,
                },
                "sms:bridge>+4930123456",
            ),
            (
                Action::SmsSend {
                    author: Some(Party::Matrix(mx("@b:hs"))),
                    sender: "UCB".into(),
                    to: phone.clone(),
                    text: "t".into(),
                    parts: 1,
                    origin: None,
                },
                "sms:matrix:@b:hs>+4930123456",
            ),
            (
                Action::SmsToMatrix { phone: phone.clone(), to: mx("@b:hs"), text: text.clone() },
                "sms2m:+4930123456>@b:hs",
            ),
            (Action::XmppFromPhone { phone: phone.clone(), to: jid("a@x"), text }, "sms2x:+4930123456>a@x"),
        ];
        for (action, key) in cases {
            assert_eq!(action.lane().to_string(), key, "{action:?}");
        }
    }

    /// A bounce row queued by an earlier version (its `refusal` is a kind only) still reads, and
    /// is written the same way.
    #[test]
    fn stored_bounce_rows_still_read() {
        let stored = r#"{"action":"xmpp_bounce","from":"@b:hs","to":"a@x","stanza_id":"s1","refusal":"not_found","reason":"Your message could not be delivered.","quote":"hi"}"#;
        let action: Action = serde_json::from_str(stored).expect("a stored bounce still reads");
        let Action::XmppBounce { refusal, .. } = &action else { panic!("a bounce: {action:?}") };
        assert_eq!(*refusal, RefusalKind::NotFound);
        assert_eq!(serde_json::to_string(&action).unwrap(), stored);
    }

    /// Event, stanza and archive ids are newtypes in the code but plain strings and numbers in
    /// stored rows: rows written before the newtypes read, and are written byte for byte alike.
    #[test]
    fn stored_ids_keep_their_json_form() {
        let jid = |s: &str| BareJid::parse(s).unwrap();
        let mx = |s: &str| MatrixUserId::parse(s).unwrap();
        let room = RoomId::parse("!r:hs").unwrap();
        let phone = PhoneNumber::parse("+4930123456").unwrap();
        fn reply<Id: From<&'static str>>(id: &'static str) -> Reply<Id> {
            Reply { id: id.into(), author: None, quote: None }
        }
        let cases: Vec<(Action, &str)> = vec![
            (
                Action::MatrixDirect {
                    from: jid("a@x"),
                    to: mx("@b:hs"),
                    nick: None,
                    stanza_id: Some("s1".into()),
                    text: Text::plain("hi"),
                    wants_receipt: false,
                    markable: false,
                    extras: Extras {
                        reply_to: Some(reply("s0")),
                        replaces: Some("s0".into()),
                        file: None,
                        sent_at: None,
                    },
                },
                r#"{"action":"matrix_direct","from":"a@x","to":"@b:hs","nick":null,"stanza_id":"s1","text":{"body":"hi","kind":"text"},"wants_receipt":false,"markable":false,"extras":{"reply_to":{"id":"s0","author":null,"quote":null},"replaces":"s0"}}"#,
            ),
            (
                Action::MatrixReactions {
                    target: XmppTarget::Dm { from: jid("a@x"), to: mx("@b:hs"), stanza_id: "s0".into() },
                    user: mx("@g:hs"),
                    keys: vec!["👍".into()],
                    stanza_id: Some("s2".into()),
                },
                r#"{"action":"matrix_reactions","target":{"in":"dm","from":"a@x","to":"@b:hs","stanza_id":"s0"},"user":"@g:hs","keys":["👍"],"stanza_id":"s2"}"#,
            ),
            (
                Action::MatrixRetract {
                    target: XmppTarget::Room { room: room.clone(), archive_id: ArchiveId(7) },
                    user: mx("@g:hs"),
                    stanza_id: None,
                },
                r#"{"action":"matrix_retract","target":{"in":"room","room":"!r:hs","archive_id":7},"user":"@g:hs","stanza_id":null}"#,
            ),
            (
                Action::MatrixNotice { room: room.clone(), body: "b".into(), html: None, reply_to: Some("$e1".into()) },
                r#"{"action":"matrix_notice","room":"!r:hs","body":"b","html":null,"reply_to":"$e1"}"#,
            ),
            (
                Action::MatrixRoomSay {
                    room: room.clone(),
                    user: mx("@g:hs"),
                    text: Text::plain("hi"),
                    nick: "ann".into(),
                    archive_id: ArchiveId(8),
                    extras: Extras { reply_to: Some(reply("7")), replaces: None, file: None, sent_at: None },
                    mentions: vec![],
                },
                r#"{"action":"matrix_room_say","room":"!r:hs","user":"@g:hs","text":{"body":"hi","kind":"text"},"nick":"ann","archive_id":8,"extras":{"reply_to":{"id":"7","author":null,"quote":null}}}"#,
            ),
            (
                Action::XmppGroupchat {
                    room: room.clone(),
                    nick: "ann".into(),
                    text: Text::plain("hi"),
                    archive_id: ArchiveId(8),
                    origin_id: Some("o1".into()),
                    extras: Extras { reply_to: None, replaces: Some("ucb-a7".into()), file: None, sent_at: None },
                    mentions: vec![],
                },
                r#"{"action":"xmpp_groupchat","room":"!r:hs","nick":"ann","text":{"body":"hi","kind":"text"},"archive_id":8,"origin_id":"o1","extras":{"replaces":"ucb-a7"}}"#,
            ),
            (
                Action::XmppGroupReactions {
                    room: room.clone(),
                    nick: "ann".into(),
                    archive_id: ArchiveId(8),
                    keys: vec![],
                },
                r#"{"action":"xmpp_group_reactions","room":"!r:hs","nick":"ann","archive_id":8,"keys":[]}"#,
            ),
            (
                Action::XmppChat {
                    from: mx("@b:hs"),
                    to: jid("a@x"),
                    nick: None,
                    text: Text::plain("hi"),
                    event: Some((room.clone(), "$e2".into())),
                    extras: Extras { reply_to: Some(reply("$e1")), replaces: None, file: None, sent_at: None },
                },
                r#"{"action":"xmpp_chat","from":"@b:hs","to":"a@x","nick":null,"text":{"body":"hi","kind":"text"},"event":["!r:hs","$e2"],"extras":{"reply_to":{"id":"$e1","author":null,"quote":null}}}"#,
            ),
            (
                Action::XmppRetract { from: mx("@b:hs"), to: jid("a@x"), room: room.clone(), target: "$e1".into() },
                r#"{"action":"xmpp_retract","from":"@b:hs","to":"a@x","room":"!r:hs","target":"$e1"}"#,
            ),
            (
                Action::SmsSend {
                    author: None,
                    sender: "UCB".into(),
                    to: phone.clone(),
                    text: "t".into(),
                    parts: 1,
                    origin: Some(SmsOrigin::Matrix { room: room.clone(), user: mx("@b:hs"), event_id: "$e3".into() }),
                },
                r#"{"action":"sms_send","author":null,"sender":"UCB","to":"+4930123456","text":"t","parts":1,"origin":{"network":"matrix","room":"!r:hs","user":"@b:hs","event_id":"$e3"}}"#,
            ),
            (
                Action::XmppPhoneBounce { phone, to: jid("a@x"), stanza_id: Some("s3".into()), reason: "r".into() },
                r#"{"action":"xmpp_phone_bounce","phone":"+4930123456","to":"a@x","stanza_id":"s3","reason":"r"}"#,
            ),
        ];
        for (action, stored) in cases {
            assert_eq!(serde_json::to_string(&action).unwrap(), stored);
            assert_eq!(serde_json::from_str::<Action>(stored).unwrap(), action, "{stored}");
        }
    }

    #[test]
    fn invalid_ids_in_stored_json_are_rejected() {
        let json = r#"{"action":"xmpp_chat","from":"bob","to":"a@b","text":{"body":"x","kind":"text"}}"#;
        assert!(serde_json::from_str::<Action>(json).is_err());
    }
}
