//! Linked MUCs: a MUC on an XMPP server (`team@conference.example`) seen from Matrix as the
//! room `#_xmpp_team=40conference.example:hs`. The room is created when the homeserver first
//! asks about the alias; a Matrix user who joins it becomes an occupant of the MUC from their
//! address under the component, and the MUC's occupants appear as their ghosts. The MUC is the
//! authority here: its rules apply, the bridge only carries what happens.

mod avatar;
mod content;
mod said;

pub(in crate::bridge) use said::LinkedSay;

use crate::xmpp::out::Outgoing;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::bridge::Bridge;
use crate::core::action::{Action, Text};
use crate::core::budget::Budget;
use crate::core::ids::{BareJid, MappingError, MatrixUserId, RoomId};
use crate::core::inbound::{MatrixIn, Membership};
use crate::core::muc_features::MucFeatures;
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
    /// What each MUC supports (disco#info), asked once per run.
    features: HashMap<BareJid, MucFeatures>,
}

/// What the bridge keeps in memory about linked MUCs.
pub(in crate::bridge) struct State {
    /// Their rooms, and who is in those MUCs.
    index: Mutex<LinkedIndex>,
    /// New linked rooms (created on alias lookups anyone can make): a burst, then a few an hour.
    budget: Mutex<Budget>,
    /// The MUCs' avatars, checked one at a time.
    avatars: Mutex<avatar::AvatarChecks>,
}

impl Default for State {
    fn default() -> Self {
        Self { index: Mutex::default(), budget: Mutex::new(Budget::per_hour(20, 60)), avatars: Mutex::default() }
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

    /// What a linked MUC supports: asked once (disco#info), then remembered for this run. A
    /// MUC that does not answer is taken to support nothing beyond text (fallbacks are sent).
    pub(in crate::bridge) async fn linked_features(&self, muc: &BareJid) -> MucFeatures {
        if let Some(known) = self.linked.index.lock().ok().and_then(|p| p.features.get(muc).copied()) {
            return known;
        }
        match self.xmpp.muc_features(muc).await {
            Ok(Some(features)) => {
                if let Ok(mut p) = self.linked.index.lock() {
                    p.features.insert(muc.clone(), features);
                }
                features
            }
            Ok(None) => MucFeatures::default(),
            Err(e) => {
                tracing::info!(%muc, error = %e, "cannot ask a linked MUC what it supports");
                MucFeatures::default()
            }
        }
    }

    /// The real address behind a remote occupant's nick, where the MUC shows it.
    pub(in crate::bridge) fn remote_real_jid(&self, muc: &BareJid, nick: &str) -> Option<BareJid> {
        let p = self.linked.index.lock().ok()?;
        p.occupants.get(muc)?.get(nick)?.jid.clone()
    }

    /// The nick of the remote occupant with the real address `jid`.
    pub(in crate::bridge) fn remote_nick_of(&self, muc: &BareJid, jid: &BareJid) -> Option<String> {
        let p = self.linked.index.lock().ok()?;
        p.occupants.get(muc)?.iter().find(|(_, o)| o.jid.as_ref() == Some(jid)).map(|(n, _)| n.clone())
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
        let Some(features) = self.xmpp.muc_features(&muc).await? else {
            tracing::info!(%muc, alias, "not linked: the address is not a MUC room");
            return Ok(false);
        };
        if let Ok(mut p) = self.linked.index.lock() {
            p.features.insert(muc.clone(), features);
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
            MatrixIn::File { sender, file, reply_to, .. } if !self.map.is_bridge_user(&sender) => {
                self.linked_file(tx, room, muc, sender, file, reply_to).await?
            }
            MatrixIn::Message { sender, text, event_id, reply_to, replaces, mentions, sent_at, .. }
                if !self.map.is_bridge_user(&sender) =>
            {
                if let Some(why) = self.too_large_for_xmpp(&text.body, &self.map.jid_for_matrix(&sender), &muc) {
                    let notice = format!("{sender}: your message did not reach {muc}: {why}.");
                    return Ok(vec![self.bot_notice(&room, notice)]);
                }
                let extras = crate::core::action::Extras {
                    reply_to: reply_to.map(|id| crate::core::action::Reply {
                        id: crate::core::ids::EventId::new(id),
                        author: None,
                        quote: None,
                    }),
                    replaces: replaces.map(crate::core::ids::EventId::new),
                    file: None,
                    sent_at,
                };
                let event = Some(crate::core::ids::EventId::new(event_id));
                vec![Action::LinkedMucMessage { room, muc, from: sender, text, event, extras, mentions }]
            }
            MatrixIn::Reaction { sender, event_id, target, key, .. } if !self.map.is_bridge_user(&sender) => {
                self.linked_reaction(tx, room, muc, sender, event_id, target, key).await?
            }
            MatrixIn::Redaction { sender, redacts, .. } if !self.map.is_bridge_user(&sender) => {
                self.linked_redaction(tx, room, muc, sender, redacts).await?
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
            // A Matrix user is in: the MUC's avatar is checked (once for all who join).
            RemotePresence::Available { own: true, .. } => self.linked_avatar_check(muc.clone()),
            RemotePresence::Unavailable { own: true } => {}
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
            Action::LinkedMucMessage { room, muc, from, text, event, extras, mentions } => {
                self.say_in_linked(id, room, muc, from, text, event.as_ref(), extras, mentions).await
            }
            Action::LinkedMucReactions { room, muc, from, target, keys } => {
                self.react_in_linked(id, room, muc, from, target, keys).await
            }
            Action::LinkedMucRetract { room, muc, from, target } => {
                self.retract_in_linked(id, room, muc, from, target).await
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
