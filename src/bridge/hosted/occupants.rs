//! XMPP clients in the MUCs of hosted rooms: joining (with the history they asked for),
//! re-announcing or renaming themselves, leaving, and the presence of Matrix participants shown
//! to them.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::bridge::hosted::muc::internal;
use crate::core::action::Action;
use crate::core::ids::BareJid;
use crate::core::presence::Presence;
use crate::core::refusal::Refusal;
use crate::core::room::{Request, Role};
use crate::core::watch::Party;
use crate::store::{HostedRoom, Page, RoomMember};
use crate::xmpp::out::{OccupantPresence, Outgoing};

pub use crate::core::xmpp_in::MucJoin;

/// Clients (full JIDs) one participant may have in a hosted room at once.
const MAX_CLIENTS_PER_OCCUPANT: usize = 10;

impl Bridge {
    /// The presence to show for a Matrix participant (their last known Matrix presence; busy
    /// while on the phone).
    pub(in crate::bridge) async fn shown_presence(&self, p: &Party) -> Option<Presence> {
        match p {
            Party::Matrix(u) => match self.store.matrix_presence(u).await.ok().flatten() {
                Some(own) => Some(self.phone_shown(p, own)),
                None => self.phone_busy_presence(p),
            },
            Party::Xmpp(_) => None,
        }
    }

    /// An XMPP client joins (or re-announces itself in) a room.
    pub async fn muc_join(self: &Arc<Self>, join: MucJoin) -> Result<(), Refusal> {
        let r = self.muc_room(&join.room_local).await?;
        let room = r.room.clone();
        let muc = self.muc_of(&r);
        let me = Party::Xmpp(join.bare.clone());
        let members = self.store.room_members(&room).await.map_err(internal)?;
        let existing = members.iter().find(|m| m.party == me).cloned();
        let mut actions = vec![];
        if existing.is_none() {
            if !r.open {
                return Err(Refusal::members_only(
                    "This room is for invited participants; ask one of its moderators to invite you.",
                ));
            }
            let mut model = self.room_model(&members);
            if let Err(refused) = model.apply(&me, Request::Join) {
                return Err(Refusal::full(format!("The room is full: {refused}.")));
            }
            actions.push(Action::MatrixJoin { room: room.clone(), user: self.map.ghost_for(&join.bare) });
        } else if existing.as_ref().is_some_and(|m| !m.joined) {
            // Invited from Matrix: the ghost is in the room already; make sure of it.
            actions.push(Action::MatrixJoin { room: room.clone(), user: self.map.ghost_for(&join.bare) });
        }
        let occupants = self.store.occupants(&room).await.map_err(internal)?;
        let already_here = occupants.iter().any(|(_, p)| p == &me);
        if let Some(m) = existing.as_ref().filter(|_| occupants.iter().any(|(f, _)| f == &join.full)) {
            // A client already in the room: a status change, or a new nick (XEP-0045 §7.6).
            return self.muc_update(&r, m, &join, &members).await;
        }
        // Every message fans out to each client: one person's clients are bounded.
        if occupants.iter().filter(|(_, p)| p == &me).count() >= MAX_CLIENTS_PER_OCCUPANT {
            return Err(Refusal::policy(format!(
                "At most {MAX_CLIENTS_PER_OCCUPANT} of your clients can be in this room at once."
            )));
        }
        // All of a person's clients share one nick; a first client may ask for a new one.
        let nick = match (&existing, already_here) {
            (Some(m), true) => m.nick.clone(),
            _ => self.new_nick(&members, &me, Some(&join.nick)),
        };
        let role = existing.as_ref().map(|m| m.role).unwrap_or(Role::Participant);
        let member = RoomMember { party: me.clone(), role, joined: true, nick: nick.clone() };
        if existing.as_ref() != Some(&member) {
            self.store.save_member(&room, &member).await.map_err(internal)?;
        }
        self.store.add_occupant(&room, &join.full, &me).await.map_err(internal)?;
        self.queue(actions).await?;

        // 1. Who is here: Matrix participants who joined, XMPP participants with a client in.
        let mut out = vec![];
        for m in members.iter().filter(|m| m.party != me && m.joined) {
            let present = match &m.party {
                Party::Matrix(_) => true,
                Party::Xmpp(_) => occupants.iter().any(|(_, p)| p == &m.party),
            };
            if !present {
                continue;
            }
            let p = OccupantPresence::present(m.role, self.real_jid_of(&m.party), self.shown_presence(&m.party).await);
            out.push(occupant(&muc, &m.nick, &join.full, p));
        }
        // 2. The client's own presence (110), saying if the room changed the nick (210).
        let mut statuses = vec![100, 110];
        if nick != join.nick {
            statuses.push(210);
        }
        let own = OccupantPresence::present(role, join.full.clone(), None).with_statuses(&statuses);
        out.push(occupant(&muc, &nick, &join.full, own));
        // 3. Recent history, 4. the subject.
        let wanted = join.max_history.unwrap_or(u32::MAX).min(self.current_config().rooms.history_on_join);
        if wanted > 0 {
            let (history, _) =
                self.store.archive_page(&room, Page::Before(i64::MAX, i64::from(wanted))).await.map_err(internal)?;
            out.extend(history.into_iter().map(|message| Outgoing::History {
                room: muc.clone(),
                to: join.full.clone(),
                message,
            }));
        }
        let subject = r.topic.clone().unwrap_or_default();
        out.push(Outgoing::Subject { room: muc.clone(), to: join.full.clone(), subject });
        self.send_all(out).await;
        // Tell the others, unless another client of the same person was already in.
        if !already_here {
            let shown = join.presence.as_ref().map(Presence::from_xmpp);
            let p = OccupantPresence::present(role, join.bare.to_string(), shown);
            let others: Vec<_> = occupants
                .iter()
                .filter(|(_, party)| party != &me)
                .map(|(full, _)| occupant(&muc, &nick, full, p.clone()))
                .collect();
            self.send_all(others).await;
        }
        Ok(())
    }

    async fn muc_update(
        self: &Arc<Self>,
        r: &HostedRoom,
        m: &RoomMember,
        join: &MucJoin,
        members: &[RoomMember],
    ) -> Result<(), Refusal> {
        let muc = self.muc_of(r);
        if join.nick != m.nick {
            let nick = self.new_nick(members, &m.party, Some(&join.nick));
            if nick != join.nick {
                return Err(Refusal::conflict(format!("The nick {} is taken in this room.", join.nick)));
            }
            self.store.save_member(&r.room, &RoomMember { nick: nick.clone(), ..m.clone() }).await.map_err(internal)?;
            return self
                .queue(vec![Action::XmppOccupant {
                    room: r.room.clone(),
                    who: m.party.clone(),
                    nick: m.nick.clone(),
                    change: crate::core::action::OccupantChange::Renamed { role: m.role, new_nick: nick },
                }])
                .await;
        }
        let shown = join.presence.as_ref().map(Presence::from_xmpp);
        let p = OccupantPresence::present(m.role, join.bare.to_string(), shown);
        let occupants = self.store.occupants(&r.room).await.map_err(internal)?;
        let out = occupants
            .iter()
            .map(|(full, party)| {
                let own = if party == &m.party { p.clone().with_statuses(&[110]) } else { p.clone() };
                occupant(&muc, &m.nick, full, own)
            })
            .collect();
        self.send_all(out).await;
        Ok(())
    }

    /// A Matrix participant's presence changed: show it to the XMPP clients in their rooms.
    pub(in crate::bridge) async fn show_presence_in_rooms(
        &self,
        user: &crate::core::ids::MatrixUserId,
        presence: &Presence,
    ) {
        let who = Party::Matrix(user.clone());
        let rooms = match self.store.rooms_of(&who).await {
            Ok(r) => r,
            Err(e) => return tracing::warn!(%user, error = %e, "cannot read the rooms of a user"),
        };
        let real = self.real_jid_of(&who);
        for (room, m) in rooms {
            let Ok(Some(r)) = self.hosted_room(&room).await else { continue };
            let muc = self.muc_of(&r);
            let p = OccupantPresence::present(m.role, real.clone(), Some(presence.clone()));
            let occupants = self.store.occupants(&room).await.unwrap_or_default();
            let out = occupants.iter().map(|(full, _)| occupant(&muc, &m.nick, full, p.clone())).collect();
            self.send_all(out).await;
        }
    }

    /// An XMPP client leaves a room. The person stays a participant (offline), as in the
    /// suite: they see what they missed when they come back.
    pub async fn muc_leave(self: &Arc<Self>, room_local: &str, full: &str, bare: &BareJid) {
        let Ok(r) = self.muc_room(room_local).await else { return };
        let room = r.room.clone();
        let muc = self.muc_of(&r);
        let me = Party::Xmpp(bare.clone());
        let Ok(removed) = self.store.remove_occupants(&room, &me, Some(full)).await else { return };
        if removed == 0 {
            return;
        }
        let Ok(members) = self.store.room_members(&room).await else { return };
        let Some(m) = members.iter().find(|m| m.party == me) else { return };
        let mut out = vec![];
        out.push(occupant(&muc, &m.nick, full, OccupantPresence::gone(full.to_owned()).with_statuses(&[110])));
        let occupants = self.store.occupants(&room).await.unwrap_or_default();
        if !occupants.iter().any(|(_, p)| p == &me) {
            let gone = OccupantPresence::gone(bare.to_string());
            out.extend(occupants.iter().map(|(f, _)| occupant(&muc, &m.nick, f, gone.clone())));
        }
        self.send_all(out).await;
    }
}

/// `nick`'s presence in `muc`, to the client `to`.
fn occupant(muc: &BareJid, nick: &str, to: &str, presence: OccupantPresence) -> Outgoing {
    Outgoing::Occupant { room: muc.clone(), nick: nick.to_owned(), to: to.to_owned(), presence }
}
