//! Conversations and lanes: what the bridge carries, and the unit it keeps in order.
//!
//! A conversation is one exchange the bridge carries between the networks (a direct chat, a
//! hosted room, a linked MUC, a chat with a phone number) or one of the bridge's own streams (room
//! creation, notices, mail). A [`Lane`] is one direction of one conversation: the outbox runs a
//! lane's actions one after another, and different lanes concurrently. A lane's text form
//! ([`Lane`]'s `Display`) is the key stored with every outbox row, so it must never change.

use std::fmt;

use crate::core::ids::{BareJid, MatrixUserId, PhoneNumber, RoomId};
use crate::core::watch::Party;

/// What an outbox action belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Conversation {
    /// A 1:1 chat between an XMPP user and a Matrix user.
    DirectChat { xmpp: BareJid, matrix: MatrixUserId },
    /// A Matrix room as the bridge writes into it: the room of a hosted room, of a direct chat,
    /// the bot chat or the control room (an action that posts into a room names only the room).
    MatrixRoom(RoomId),
    /// A room the bridge hosts, as its XMPP occupants see it (the MUC on the component).
    HostedRoom(RoomId),
    /// An XMPP MUC elsewhere that a Matrix room is linked to (the bridge joins it for Matrix users).
    LinkedMuc(RoomId),
    /// A chat with a mobile number; `party` is the bridge user in it (none: the bridge itself).
    SmsChat { phone: PhoneNumber, party: Option<Party> },
    /// Creating a Matrix room under an alias (one at a time per alias).
    RoomCreation { alias: String },
    /// The bridge's own notices to an XMPP user (from the component address).
    BridgeNotices { to: BareJid },
    /// Mail to one list of recipients.
    Mail { to: Vec<String> },
    /// A person's one-to-one conversation with the chatbot (questions and answers, both ways).
    Chatbot { party: Party },
}

/// Which way a lane carries its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    ToMatrix,
    ToXmpp,
    ToPhone,
    ToMail,
}

/// One direction of one conversation: actions on a lane are delivered strictly in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lane {
    pub conversation: Conversation,
    pub direction: Direction,
}

impl Lane {
    pub fn new(conversation: Conversation, direction: Direction) -> Self {
        Self { conversation, direction }
    }
}

/// The stored key (outbox `lane` column). Rows written by earlier versions carry these exact
/// strings, so each form is fixed.
impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Conversation as C;
        use Direction as D;
        match (&self.conversation, self.direction) {
            (C::DirectChat { xmpp, matrix }, D::ToMatrix) => write!(f, "x2m:{xmpp}>{matrix}"),
            (C::DirectChat { xmpp, matrix }, _) => write!(f, "m2x:{matrix}>{xmpp}"),
            (C::MatrixRoom(room), _) => write!(f, "room:{room}"),
            (C::HostedRoom(room), _) => write!(f, "muc:{room}"),
            (C::LinkedMuc(room), _) => write!(f, "portal:{room}"),
            (C::SmsChat { phone, party }, D::ToPhone) => {
                write!(f, "sms:{}>{phone}", party.as_ref().map_or_else(|| "bridge".to_owned(), Party::key))
            }
            (C::SmsChat { phone, party: Some(Party::Matrix(user)) }, _) => write!(f, "sms2m:{phone}>{user}"),
            (C::SmsChat { phone, party: Some(Party::Xmpp(jid)) }, _) => write!(f, "sms2x:{phone}>{jid}"),
            // Nothing is sent from a phone number to nobody; a stable key all the same.
            (C::SmsChat { phone, party: None }, _) => write!(f, "sms2?:{phone}"),
            (C::RoomCreation { alias }, _) => write!(f, "create:{alias}"),
            (C::BridgeNotices { to }, _) => write!(f, "bridge>{to}"),
            (C::Mail { to }, _) => write!(f, "mail>{}", to.join(",")),
            (C::Chatbot { party }, _) => write!(f, "chatbot:{}", party.key()),
        }
    }
}
