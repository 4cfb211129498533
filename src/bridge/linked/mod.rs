//! Linked MUCs: a MUC on an XMPP server (`team@conference.example`) seen from Matrix as the
//! room `#_xmpp_team=40conference.example:hs`. The room is created when the homeserver first
//! asks about the alias; a Matrix user who joins it becomes an occupant of the MUC from their
//! address under the component, and the MUC's occupants appear as their ghosts. The MUC is the
//! authority here: its rules apply, the bridge only carries what happens.

use crate::xmpp::out::Outgoing;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::bridge::Bridge;
use crate::core::action::{Action, Text};
use crate::core::budget::Budget;
use crate::core::ids::{BareJid, MappingError, MatrixUserId, RoomId};
use crate::core::inbound::{MatrixIn, Membership};
use crate::core::room;
use crate::matrix::client::MatrixError;
use crate::store::{StoreError, StoreTx};
use crate::xmpp::linked_muc::DiscoError;

/// Occupants of one remote MUC the bridge keeps track of (each may be a ghost in the room).
const MAX_REMOTE_OCCUPANTS: usize = 1000;

/// Someone in a remote MUC, as its presence said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOccupant {
    /// The real address, where the room shows it (non-anonymous rooms, or to moderators).
    pub jid: Option<BareJid>,
}

/// Linked MUCs' rooms by room and by MUC, loaded once from the store.
#[derive(Default)]
struct LinkedIndex {
    loaded: bool,
    by_room: HashMap<RoomId, BareJid>,
    by_muc: HashMap<BareJid, RoomId>,
    /// Who is in each MUC (other than our own occupants), by nick.
    occupants: HashMap<BareJid, HashMap<String, RemoteOccupant>>,
}

/// What the bridge keeps in memory about linked MUCs.
pub(in crate::bridge) struct State {
    /// Their rooms, and who is in those MUCs.
    index: Mutex<LinkedIndex>,
    /// New linked rooms (created on alias lookups anyone can make): a burst, then a few an hour.
    budget: Mutex<Budget>,
}

impl Default for State {
    fn default() -> Self {
        Self { index: Mutex::default(), budget: Mutex::new(Budget::per_hour(20, 60)) }
    }
}

pub use crate::core::xmpp_in::RemotePresence;

/// Why the room of a linked MUC could not be opened (reported to the homeserver as text).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Alias(#[from] MappingError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Disco(#[from] DiscoError),
    #[error("too many new linked rooms; {0} can be joined later")]
    Busy(BareJid),
    #[error(transparent)]
    Matrix(#[from] MatrixError),
}

impl Bridge {
    async fn load_linked_mucs(&self) -> crate::store::Result<()> {
        if self.linked.index.lock().map(|p| p.loaded).unwrap_or(true) {
            return Ok(());
        }
        let rooms = self.store.linked_mucs().await?;
        if let Ok(mut p) = self.linked.index.lock() {
            for (room, muc) in rooms {
                p.by_muc.insert(muc.clone(), room.clone());
                p.by_room.insert(room, muc);
            }
            p.loaded = true;
        }
        Ok(())
    }

    /// The MUC a room is linked to, if it is one's room.
    pub(in crate::bridge) async fn linked_muc_of(&self, room: &RoomId) -> crate::store::Result<Option<BareJid>> {
        self.load_linked_mucs().await?;
        Ok(self.linked.index.lock().ok().and_then(|p| p.by_room.get(room).cloned()))
    }

    /// The room of a linked MUC, if there is one.
    pub async fn linked_room_of(&self, muc: &BareJid) -> crate::store::Result<Option<RoomId>> {
        self.load_linked_mucs().await?;
        Ok(self.linked.index.lock().ok().and_then(|p| p.by_muc.get(muc).cloned()))
    }

    /// Record a link made by `rooms link`.
    pub(in crate::bridge) fn index_link(&self, room: &RoomId, muc: &BareJid) {
        if let Ok(mut p) = self.linked.index.lock() {
            p.by_muc.insert(muc.clone(), room.clone());
            p.by_room.insert(room.clone(), muc.clone());
        }
    }

    /// Forget a link (`rooms unlink`); the MUC's occupants that showed their address.
    pub(in crate::bridge) fn index_unlink(&self, room: &RoomId, muc: &BareJid) -> Vec<BareJid> {
        let Ok(mut p) = self.linked.index.lock() else { return vec![] };
        p.by_room.remove(room);
        p.by_muc.remove(muc);
        p.occupants.remove(muc).map(|o| o.into_values().filter_map(|o| o.jid).collect()).unwrap_or_default()
    }

    /// The homeserver asks whether an alias exists: for `#_xmpp_<MUC>` create the MUC's room.
    /// `Ok(false)`: not an alias the bridge provides.
    pub async fn open_linked_muc(&self, alias: &str) -> Result<bool, LinkError> {
        let muc = match self.map.muc_for_linked_alias(alias) {
            None => return Ok(false),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(muc)) => muc,
        };
        if self.linked_room_of(&muc).await?.is_some() {
            return Ok(true);
        }
        // Only a real room becomes a linked MUC: a person's address made into one would swallow
        // their direct messages (everything from a linked MUC's address takes the linked path).
        if !self.xmpp.is_muc(&muc).await? {
            tracing::info!(%muc, alias, "not linked: the address is not a MUC room");
            return Ok(false);
        }
        if !self.linked.budget.lock().map(|mut b| b.take(std::time::Instant::now())).unwrap_or(false) {
            return Err(LinkError::Busy(muc));
        }
        let localpart = alias.trim_start_matches('#').split(':').next().unwrap_or_default();
        let room = self.matrix.create_linked_room(&muc.to_string(), localpart).await?;
        self.store.save_linked_muc(&room, &muc).await?;
        if let Ok(mut p) = self.linked.index.lock() {
            p.by_muc.insert(muc.clone(), room.clone());
            p.by_room.insert(room.clone(), muc.clone());
        }
        tracing::info!(%room, %muc, "created the room of a linked MUC");
        self.announce_bridge(&room, muc, self.map.bot(), Some(alias.to_owned())).await;
        Ok(true)
    }

    /// What a Matrix event in a linked MUC's room means for the MUC.
    pub(in crate::bridge) async fn linked_actions(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        muc: BareJid,
        event: MatrixIn,
    ) -> crate::store::Result<Vec<Action>> {
        Ok(match event {
            // A file: its link (served by the bridge) as text; the MUC's clients see the URL.
            MatrixIn::File { sender, file, .. } if !self.map.is_bridge_user(&sender) => {
                let text = match self.media_link(tx, &room, &file).await? {
                    Some(link) => crate::core::action::Text::plain(link.url),
                    None => {
                        crate::core::action::Text::plain(format!("[a file too large for the bridge: {}]", file.name))
                    }
                };
                vec![Action::LinkedMucMessage { room, muc, from: sender, text }]
            }
            MatrixIn::Message { sender, text, .. } if !self.map.is_bridge_user(&sender) => {
                if let Some(why) = self.too_large_for_xmpp(&text.body, &self.map.jid_for_matrix(&sender), &muc) {
                    let notice = format!("{sender}: your message did not reach {muc}: {why}.");
                    return Ok(vec![self.bot_notice(&room, notice)]);
                }
                vec![Action::LinkedMucMessage { room, muc, from: sender, text }]
            }
            MatrixIn::Membership { user, membership, displayname, .. } if !self.map.is_bridge_user(&user) => {
                self.remember_displayname(&user, displayname.as_deref());
                match membership {
                    Membership::Join => {
                        let nick = room::clean_nick(&displayname.unwrap_or_else(|| user.localpart().to_owned()));
                        vec![Action::LinkedMucJoin { room, muc, user, nick }]
                    }
                    Membership::Leave | Membership::Ban => {
                        let occupants = self.store.xmpp_occupants(&room).await?;
                        match occupants.into_iter().find(|(u, _)| u == &user) {
                            Some((_, nick)) => vec![Action::LinkedMucLeave { room, muc, user, nick }],
                            None => vec![],
                        }
                    }
                    _ => vec![],
                }
            }
            _ => vec![],
        })
    }

    /// A presence from `muc/nick`, received at a Matrix user's address.
    pub async fn linked_presence(
        self: &std::sync::Arc<Self>,
        muc: &BareJid,
        nick: &str,
        to: &MatrixUserId,
        presence: RemotePresence,
    ) {
        let Ok(Some(room)) = self.linked_room_of(muc).await else { return };
        let mut actions = vec![];
        match presence {
            RemotePresence::Available { own: true, .. } | RemotePresence::Unavailable { own: true } => {}
            RemotePresence::Available { real, own: false } => {
                // A real address the MUC cannot vouch for is dropped: the occupant is shown as
                // a nick (the bot says who spoke), never as that person's own ghost.
                let config = self.current_config();
                let real = real.filter(|jid| {
                    let ok = crate::core::access::muc_vouches_for(muc.domain(), jid.domain(), |d| {
                        config.xmpp_domain_allowed(d)
                    });
                    if !ok {
                        tracing::info!(%muc, nick, claimed = %jid, "a MUC claims an address it cannot vouch for");
                    }
                    ok
                });
                let new = self.linked.index.lock().ok().map(|mut p| {
                    let occupants = p.occupants.entry(muc.clone()).or_default();
                    if occupants.len() >= MAX_REMOTE_OCCUPANTS && !occupants.contains_key(nick) {
                        // A MUC inventing occupants must not make ghosts without end.
                        tracing::info!(%muc, nick, "too many occupants in a remote MUC; not shown");
                        return false;
                    }
                    occupants.insert(nick.to_owned(), RemoteOccupant { jid: real.clone() }).is_none()
                });
                if new == Some(true)
                    && let Some(jid) = real
                {
                    let user = self.map.ghost_for(&jid);
                    actions.push(Action::MatrixJoin { room: room.clone(), user: user.clone() });
                    // The nick names the ghost in this room only.
                    actions.push(Action::MatrixRoomName { room: room.clone(), user, name: nick.to_owned() });
                }
            }
            RemotePresence::Unavailable { own: false } => {
                let gone = self.linked.index.lock().ok().and_then(|mut p| p.occupants.get_mut(muc)?.remove(nick));
                if let Some(RemoteOccupant { jid: Some(jid) }) = gone {
                    actions.push(Action::MatrixLeave { room: room.clone(), user: self.map.ghost_for(&jid) });
                }
            }
            RemotePresence::Error { condition, text } => {
                let body = format!("{to} could not join {muc} as {nick}: {condition} {text}");
                tracing::info!(%muc, nick, %to, condition, text, "MUC join refused");
                if condition == "conflict" && !nick.ends_with("(Matrix)") {
                    // The nick is taken in the MUC: try once more with a mark that tells them apart.
                    actions.push(Action::LinkedMucJoin {
                        room: room.clone(),
                        muc: muc.clone(),
                        user: to.clone(),
                        nick: format!("{nick} (Matrix)"),
                    });
                } else {
                    actions.push(Action::MatrixPost {
                        room: room.clone(),
                        user: self.map.bot(),
                        text: Text::notice(body),
                        nick: None,
                    });
                }
            }
        }
        if let Err(e) = self.queue_all(actions).await {
            tracing::warn!(%muc, error = %e, "cannot queue a linked MUC change");
        }
    }

    /// A message said in a remote MUC, received at a Matrix user's address. Every Matrix
    /// occupant receives a copy; the first one accepted wins (`dedupe` is the room's stanza id
    /// or the sender's message id).
    pub async fn linked_message(
        self: &std::sync::Arc<Self>,
        muc: &BareJid,
        nick: &str,
        dedupe: Option<String>,
        body: String,
    ) -> crate::store::Result<()> {
        let Some(room) = self.linked_room_of(muc).await? else { return Ok(()) };
        // Bounded like every other body (with the nick it may be posted with); the room learns
        // that something was not carried.
        let poster = self.map.bot();
        let body = match self.too_large_for_matrix(&Text::plain(format!("{nick}: {body}")), &poster, false, false) {
            Some(why) => {
                tracing::info!(%muc, nick, bytes = body.len(), "a MUC message is larger than the bridge carries");
                format!("[a message of {} bytes was not carried: {why}]", body.len())
            }
            None => body,
        };
        let ours = self.store.xmpp_occupants(&room).await?.iter().any(|(_, n)| n == nick);
        if ours {
            return Ok(()); // the MUC reflecting a Matrix user's own message
        }
        let real = self
            .linked
            .index
            .lock()
            .ok()
            .and_then(|p| p.occupants.get(muc).and_then(|o| o.get(nick)).and_then(|o| o.jid.clone()));
        let action = match real {
            Some(jid) => Action::MatrixPost {
                room: room.clone(),
                user: self.map.ghost_for(&jid),
                text: Text::plain(body),
                nick: None,
            },
            // A semi-anonymous room hides who is behind a nick: the bot says who spoke.
            None => Action::MatrixPost {
                room: room.clone(),
                user: self.map.bot(),
                text: Text::plain(format!("{nick}: {body}")),
                nick: None,
            },
        };
        let mut tx = self.store.begin().await?;
        if let Some(key) = &dedupe
            && !tx.claim_stanza(&format!("{muc}/{nick}"), key).await?
        {
            return Ok(());
        }
        let row = tx.enqueue_row(action).await?;
        tx.commit().await?;
        self.dispatch(vec![row]);
        Ok(())
    }

    /// After (re)connecting: every Matrix occupant of a linked MUC joins it again.
    pub async fn rejoin_linked_mucs(&self) {
        let Ok(rooms) = self.store.linked_mucs().await else { return };
        for (room, muc) in rooms {
            let Ok(occupants) = self.store.xmpp_occupants(&room).await else { continue };
            for (user, nick) in occupants {
                let (user, muc) = (self.map.jid_for_matrix(&user), muc.clone());
                self.xmpp.post(Outgoing::JoinRemote { user, muc, nick }).await;
            }
        }
    }

    pub(in crate::bridge) async fn deliver_linked(
        &self,
        id: i64,
        action: &Action,
    ) -> Result<(), crate::core::outbox::DeliveryError> {
        match action {
            Action::LinkedMucJoin { room, muc, user, nick } => {
                self.store.save_xmpp_occupant(room, user, nick).await?;
                let (user, muc, nick) = (self.map.jid_for_matrix(user), muc.clone(), nick.clone());
                self.xmpp.deliver(Outgoing::JoinRemote { user, muc, nick }).await
            }
            Action::LinkedMucLeave { room, muc, user, nick } => {
                self.store.remove_xmpp_occupant(room, user).await?;
                let (user, muc, nick) = (self.map.jid_for_matrix(user), muc.clone(), nick.clone());
                self.xmpp.deliver(Outgoing::LeaveRemote { user, muc, nick }).await
            }
            Action::LinkedMucMessage { muc, from, text, .. } => {
                let (user, muc, text) = (self.map.jid_for_matrix(from), muc.clone(), text.clone());
                self.xmpp.deliver(Outgoing::SayRemote { user, muc, text, id: self.stanza_id(id) }).await
            }
            Action::MatrixLeave { room, user } => match self.matrix.leave(room, user).await {
                Ok(()) => Ok(()),
                // A ghost that declines an invitation may never have been registered (the
                // homeserver then refuses to act as it): register it, and decline.
                Err(e)
                    if e.errcode() == Some("M_FORBIDDEN")
                        && self.map.jid_for_ghost(user).is_some()
                        && self.store.ghost(user).await?.is_none() =>
                {
                    self.matrix.register_ghost(user).await.map_err(MatrixError::into_delivery)?;
                    match self.matrix.leave(room, user).await {
                        Err(e) if e.errcode() != Some("M_FORBIDDEN") => Err(MatrixError::into_delivery(e)),
                        _ => Ok(()),
                    }
                }
                Err(e) if e.errcode() == Some("M_FORBIDDEN") => Ok(()),
                Err(e) => Err(MatrixError::into_delivery(e)),
            },
            _ => Ok(()),
        }
    }
}
