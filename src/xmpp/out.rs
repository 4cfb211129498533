//! The XMPP out-port: what the bridge sends on XMPP on its own account, in the core's terms.
//! The bridge says *what* to send ([`Outgoing`]); this module builds the stanzas
//! (`outbound`, `hosted_muc_out`, `linked_muc`) and [`XmppOut`] sends them. The bridge holds an
//! `Arc<dyn XmppOut>`, so its decisions can be tested against an in-memory fake that records
//! the `Outgoing` values.

use xmpp_parsers::stanza::Stanza;

use crate::core::action::{Extras, Text};
use crate::core::ids::{ArchiveId, BareJid, StanzaId};
use crate::core::inbound::XmppAct;
use crate::core::muc_features::MucFeatures;
use crate::core::outbox::DeliveryError;
use crate::core::presence::{PhotoHash, Presence};
use crate::core::room::Role;
use crate::store::ArchivedMessage;
use crate::xmpp::connection::XmppSender;
use crate::xmpp::linked_muc::DiscoError;
use crate::xmpp::reply::{Answer, Envelope};
use crate::xmpp::{hosted_muc_out, linked_muc, outbound};

/// What an occupant presence in a hosted room says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OccupantPresence {
    /// `None`: the occupant left (unavailable).
    pub role: Option<Role>,
    /// The participant's real address (the room is non-anonymous).
    pub real_jid: Option<String>,
    /// XEP-0045 status codes (110 self, 210 nick changed, 303 new nick, ...).
    pub statuses: Vec<u16>,
    /// For a nick change (303): the new nick.
    pub new_nick: Option<String>,
    pub reason: Option<String>,
    /// The person's presence (show and status), for a present occupant.
    pub presence: Option<Presence>,
}

impl OccupantPresence {
    /// A participant present in the room, with their role and (if known) their presence.
    pub fn present(role: Role, real_jid: String, presence: Option<Presence>) -> Self {
        Self { role: Some(role), real_jid: Some(real_jid), presence, ..Self::default() }
    }

    /// A client (or the person's last client) left.
    pub fn gone(real_jid: String) -> Self {
        Self { real_jid: Some(real_jid), ..Self::default() }
    }

    /// With XEP-0045 status codes.
    pub fn with_statuses(self, statuses: &[u16]) -> Self {
        Self { statuses: statuses.to_vec(), ..self }
    }
}

/// One thing to send. Addresses are the core's; `to` of the hosted-room variants is one
/// client's full JID (a room's messages fan out to each client).
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    // ------------------------------------------------------------------------------ 1:1 --
    /// A message (with reply, correction or file) from a Matrix user's or number's address.
    Chat { from: BareJid, to: BareJid, text: Text, id: String, nick: Option<String>, extras: Extras<StanzaId> },
    /// Reactions or a retraction in a 1:1 chat.
    ChatAct { from: BareJid, to: BareJid, id: String, act: XmppAct },
    /// Composing (or paused).
    ChatState { from: BareJid, to: BareJid, composing: bool },
    /// A delivery receipt (XEP-0184) for message `id`.
    Receipt { from: BareJid, to: BareJid, id: String },
    /// A displayed marker (XEP-0333) for message `id`.
    Displayed { from: BareJid, to: BareJid, id: String },
    /// `from`'s presence, written as the presence table says, with their avatar's hash.
    Presence { from: BareJid, to: BareJid, presence: Presence, photo: PhotoHash },
    /// `contact` grants `subscriber`'s subscription (and asks for theirs), with its presence.
    SubscriptionGranted { contact: BareJid, subscriber: BareJid, current: Presence, photo: PhotoHash },
    /// `contact` ends `subscriber`'s subscription.
    SubscriptionWithdrawn { contact: BareJid, subscriber: BareJid },
    /// `from` asks to see `to`'s presence.
    SubscriptionRequest { from: BareJid, to: BareJid },
    /// The component asks `to` for their vCard (the answer comes back under `id`).
    VCardQuery { to: BareJid, id: String },

    // ---------------------------------------------------------------------- hosted rooms --
    /// A message said in the room by `nick`; `archive_id` is the room's stanza id.
    RoomMessage {
        room: BareJid,
        nick: String,
        to: String,
        text: Text,
        id: String,
        archive_id: ArchiveId,
        extras: Extras<StanzaId>,
        /// Whom it mentions (XEP-0372 references), where `text` names them.
        mentions: Vec<crate::core::mentions::Span>,
    },
    /// An occupant's reactions to (`keys`), or retraction of (`None`), archived message `archive_id`.
    RoomAct { room: BareJid, nick: String, to: String, id: String, archive_id: ArchiveId, keys: Option<Vec<String>> },
    /// An occupant's presence.
    Occupant { room: BareJid, nick: String, to: String, presence: OccupantPresence },
    /// A message from the archive, as history on join.
    History { room: BareJid, to: String, message: ArchivedMessage },
    /// The room's subject.
    Subject { room: BareJid, to: String, subject: String },
    /// The room's configuration (its avatar) changed (status 104).
    RoomChanged { room: BareJid, to: String },
    /// A mediated invitation (XEP-0045 §7.8.2) from `from` (a real address).
    Invite { room: BareJid, to: BareJid, from: String, reason: Option<String> },
    /// An occupant is composing (or stopped).
    RoomChatState { room: BareJid, nick: String, to: String, composing: bool },
    /// An occupant has seen archived message `id`.
    RoomDisplayed { room: BareJid, nick: String, to: String, id: String },
    /// A private message between occupants.
    Private { room: BareJid, nick: String, to: String, text: Text, id: Option<String> },

    // ----------------------------------------------------------------------- linked MUCs --
    /// A Matrix user joins a MUC on another server.
    JoinRemote { user: BareJid, muc: BareJid, nick: String },
    /// A Matrix user leaves it.
    LeaveRemote { user: BareJid, muc: BareJid, nick: String },
    /// A Matrix user's message in it (references in the room's terms), naming whom it mentions.
    SayRemote {
        user: BareJid,
        muc: BareJid,
        text: Text,
        id: String,
        extras: Extras<StanzaId>,
        mentions: Vec<crate::core::mentions::Span>,
    },
    /// A Matrix user (the assistant, while it thinks) is composing in it, or stopped.
    ChatStateRemote { user: BareJid, muc: BareJid, composing: bool },
    /// A Matrix user's reactions or retraction in it (by the room's stanza id).
    ActRemote { user: BareJid, muc: BareJid, id: String, act: XmppAct },
}

impl Outgoing {
    /// A plain message: no nick, reply, correction or file.
    pub fn chat(from: BareJid, to: BareJid, text: Text, id: String) -> Self {
        Outgoing::Chat { from, to, text, id, nick: None, extras: Extras::default() }
    }

    /// The stanzas this stands for (`component`: the component's own address).
    pub fn stanzas(&self, component: &str) -> Result<Vec<Stanza>, DeliveryError> {
        use Outgoing::*;
        let one = |s: Result<Stanza, DeliveryError>| s.map(|s| vec![s]);
        match self {
            Chat { from, to, text, id, nick, extras } => {
                one(outbound::chat_with(from, to, text, id.clone(), nick.as_deref(), extras))
            }
            ChatAct { from, to, id, act } => one(outbound::chat_act(from, to, id.clone(), act)),
            ChatState { from, to, composing } => one(outbound::chat_state_between(from, to, *composing)),
            Receipt { from, to, id } => one(outbound::receipt_between(from, to, id)),
            Displayed { from, to, id } => one(outbound::displayed_between(from, to, id)),
            Presence { from, to, presence, photo } => one(outbound::presence_between(from, to, presence, *photo)),
            SubscriptionGranted { contact, subscriber, current, photo } => {
                Ok(outbound::subscription_granted(contact, subscriber, current, *photo))
            }
            SubscriptionWithdrawn { contact, subscriber } => Ok(outbound::subscription_withdrawn(contact, subscriber)),
            SubscriptionRequest { from, to } => one(outbound::subscription_request(from, to)),
            VCardQuery { to, id } => one(outbound::vcard_query(component, to, id)),
            RoomMessage { room, nick, to, text, id, archive_id, extras, mentions } => {
                one(hosted_muc_out::groupchat(room, nick, to, text, id, *archive_id, extras, mentions))
            }
            RoomAct { room, nick, to, id, archive_id, keys } => {
                one(hosted_muc_out::group_act(room, nick, to, id, *archive_id, keys.as_deref()))
            }
            Occupant { room, nick, to, presence } => one(hosted_muc_out::occupant_presence(room, nick, to, presence)),
            History { room, to, message } => one(hosted_muc_out::history(room, to, message)),
            Subject { room, to, subject } => one(hosted_muc_out::subject(room, to, subject)),
            RoomChanged { room, to } => one(hosted_muc_out::config_changed(room, to)),
            Invite { room, to, from, reason } => one(hosted_muc_out::invite(room, to, from, reason.as_deref())),
            RoomChatState { room, nick, to, composing } => one(hosted_muc_out::chat_state(room, nick, to, *composing)),
            RoomDisplayed { room, nick, to, id } => one(hosted_muc_out::displayed_in_room(room, nick, to, id)),
            Private { room, nick, to, text, id } => one(hosted_muc_out::private(room, nick, to, text, id.as_deref())),
            JoinRemote { user, muc, nick } => one(linked_muc::join_remote(user, muc, nick)),
            LeaveRemote { user, muc, nick } => one(linked_muc::leave_remote(user, muc, nick)),
            SayRemote { user, muc, text, id, extras, mentions } => {
                one(linked_muc::say_remote(user, muc, text, id, extras, mentions))
            }
            ActRemote { user, muc, id, act } => one(linked_muc::act_remote(user, muc, id, act)),
            ChatStateRemote { user, muc, composing } => one(linked_muc::chat_state_remote(user, muc, *composing)),
        }
    }
}

/// Where the bridge's XMPP output goes.
#[async_trait::async_trait]
pub trait XmppOut: Send + Sync {
    /// Answer the stanza that `envelope` addresses with `answer`.
    async fn answer(&self, envelope: &Envelope, answer: Answer);
    /// Send and wait until the server has taken it (the outbox's delivery step).
    async fn deliver(&self, out: Outgoing) -> Result<(), DeliveryError>;
    /// Send without waiting (answers and notices whose loss on a disconnect is harmless);
    /// what cannot be built is logged.
    async fn post(&self, out: Outgoing);
    /// Is the component connected to its server?
    fn is_connected(&self) -> bool;
    /// Is `muc` a multi-user chat (disco#info says so), and what does it support? `None`: not one.
    async fn muc_features(&self, muc: &BareJid) -> Result<Option<MucFeatures>, DiscoError>;
    /// The hash of `muc`'s avatar (XEP-0486: in its disco#info), `None` when it shows none.
    async fn muc_avatar_hash(&self, muc: &BareJid) -> Result<Option<[u8; 20]>, DiscoError>;
    /// The photo of `muc`'s vCard, as sent (not checked).
    async fn muc_photo(&self, muc: &BareJid) -> Result<Option<Vec<u8>>, DiscoError>;
}

/// The real port: the component connection, and the component's address to send from.
#[derive(Clone)]
pub struct ComponentOut {
    pub sender: XmppSender,
    pub component: String,
}

#[async_trait::async_trait]
impl XmppOut for ComponentOut {
    async fn answer(&self, envelope: &Envelope, answer: Answer) {
        for stanza in envelope.stanzas(answer) {
            self.sender.send_reply(stanza).await;
        }
    }

    async fn deliver(&self, out: Outgoing) -> Result<(), DeliveryError> {
        for stanza in out.stanzas(&self.component)? {
            self.sender.send(stanza).await?;
        }
        Ok(())
    }

    async fn post(&self, out: Outgoing) {
        match out.stanzas(&self.component) {
            Ok(stanzas) => {
                for stanza in stanzas {
                    self.sender.send_reply(stanza).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot build a stanza"),
        }
    }

    fn is_connected(&self) -> bool {
        self.sender.is_connected()
    }

    async fn muc_features(&self, muc: &BareJid) -> Result<Option<MucFeatures>, DiscoError> {
        linked_muc::muc_features(&self.sender, &self.component, muc).await
    }

    async fn muc_avatar_hash(&self, muc: &BareJid) -> Result<Option<[u8; 20]>, DiscoError> {
        linked_muc::avatar_hash(&self.sender, &self.component, muc).await
    }

    async fn muc_photo(&self, muc: &BareJid) -> Result<Option<Vec<u8>>, DiscoError> {
        linked_muc::vcard_photo(&self.sender, &self.component, muc).await
    }
}
