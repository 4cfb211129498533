//! A room made in a Matrix client becoming a hosted room (`core::adopt` has the rules): the
//! bot's invitation into a room that is not a direct chat is an offer, which the bot answers in
//! the room after reading its power levels; the inviter's confirmation adopts it, after the
//! checks again on the power levels as they are then. A ghost invited into a room that is not
//! bridged explains this instead of joining. Offers live in memory: after a restart, or once
//! lapsed, `!bridge` asks again.

use std::time::{Duration, Instant};

use crate::bridge::Bridge;
use crate::core::action::{Action, Text};
use crate::core::adopt::{self, OFFER_MINUTES, Refused};
use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::outbox::DeliveryError;
use crate::core::room::Role;
use crate::core::watch::Party;
use crate::matrix::client::MatrixError;
use crate::store::{HostedRoom, RoomMember};

/// Offers waiting at most (a flood of invitations cannot grow the map without bound).
const MAX_OFFERS: usize = 1000;

fn lapsed(at: Instant) -> bool {
    at.elapsed() > Duration::from_secs(OFFER_MINUTES * 60)
}

impl Bridge {
    /// A Matrix user invited the bot into a room that is neither a direct chat nor bridged:
    /// an offer, if the inviter's server may make one (otherwise declined, without joining).
    pub(in crate::bridge) fn bot_invited_to_room(&self, room: RoomId, inviter: MatrixUserId) -> Vec<Action> {
        let config = self.current_config();
        if !adopt::inviter_allowed(&inviter, &self.map.homeserver, &config.rooms.adopt_from_servers) {
            tracing::info!(%room, %inviter, "invitation into a room from another server declined");
            return vec![Action::MatrixLeave { room, user: self.map.bot() }];
        }
        vec![Action::MatrixAdoptOffer { room, inviter, invited: true }]
    }

    /// A message in a room the bot is in but does not bridge: a confirmation of the offer, or
    /// `!bridge` to be asked again (`None`: neither).
    pub(in crate::bridge) fn adoption_reply(
        &self,
        room: &RoomId,
        sender: &MatrixUserId,
        body: &str,
    ) -> Option<Vec<Action>> {
        let config = self.current_config();
        if adopt::is_request(body)
            && adopt::inviter_allowed(sender, &self.map.homeserver, &config.rooms.adopt_from_servers)
        {
            return Some(vec![Action::MatrixAdoptOffer {
                room: room.clone(),
                inviter: sender.clone(),
                invited: false,
            }]);
        }
        if !adopt::is_confirmation(body) {
            return None;
        }
        let mut offers = self.hosted.offers.lock().ok()?;
        let (inviter, at) = offers.get(room)?.clone();
        if &inviter != sender {
            let notice =
                format!("{sender}: only {inviter}, who asked for it, can confirm; or type !bridge to ask yourself.");
            return Some(vec![self.bot_notice(room, notice)]);
        }
        offers.remove(room);
        if lapsed(at) {
            let notice =
                format!("{sender}: the offer lapsed after {OFFER_MINUTES} minutes; type !bridge to be asked again.");
            return Some(vec![self.bot_notice(room, notice)]);
        }
        Some(vec![Action::MatrixAdopt { room: room.clone(), by: sender.clone() }])
    }

    fn remember_offer(&self, room: &RoomId, inviter: &MatrixUserId) {
        if let Ok(mut offers) = self.hosted.offers.lock() {
            offers.retain(|_, (_, at)| !lapsed(*at));
            if offers.len() < MAX_OFFERS || offers.contains_key(room) {
                offers.insert(room.clone(), (inviter.clone(), Instant::now()));
            }
        }
    }

    async fn say_as_bot(&self, id: i64, room: &RoomId, body: String) -> Result<(), DeliveryError> {
        let text = Text::notice(body);
        self.matrix
            .send_text(room, &self.map.bot(), &text, self.html_of(&text).as_deref(), &self.txn_id(id))
            .await
            .map(|_| ())
            .map_err(MatrixError::into_delivery)
    }

    /// Whether the room is bridged already (hosted, or linked with a MUC on an XMPP server).
    async fn bridged_already(&self, room: &RoomId) -> Result<bool, DeliveryError> {
        Ok(self.hosted_room(room).await?.is_some() || self.linked_muc_of(room).await?.is_some())
    }

    /// Carry out an offer: join (the room's state can be read from inside only), check the
    /// inviter against the power levels, and ask them to confirm, saying what power the bot
    /// needs. A refused invitation is left; a refused `!bridge` only answered.
    pub(in crate::bridge) async fn adoption_offer(
        &self,
        id: i64,
        room: &RoomId,
        inviter: &MatrixUserId,
        invited: bool,
    ) -> Result<(), DeliveryError> {
        let bot = self.map.bot();
        if invited {
            self.matrix.join(room, &bot).await.map_err(MatrixError::into_delivery)?;
        }
        if self.bridged_already(room).await? {
            return Ok(());
        }
        let setup = self.matrix.room_setup(room).await.map_err(MatrixError::into_delivery)?;
        let refusal = match &setup {
            None => Some("I cannot read this room's power levels".to_owned()),
            Some(s) => adopt::may_ask(&s.power, inviter).err().map(|e| e.to_string()),
        };
        let setup = match (setup, refusal) {
            (Some(setup), None) => setup,
            (_, why) => {
                let why = why.unwrap_or_default();
                tracing::info!(%room, %inviter, why, "room not offered for bridging");
                self.say_as_bot(id, room, format!("{inviter}: I cannot bridge this room to XMPP: {why}.")).await?;
                if invited {
                    self.matrix.leave(room, &bot).await.map_err(MatrixError::into_delivery)?;
                }
                return Ok(());
            }
        };
        self.remember_offer(room, inviter);
        let (needed, has) = (setup.power.needed_by_bridge(), setup.power.level(&bot));
        let power = if has < needed {
            format!(
                " First give me power level {needed} (I need it to invite, remove people and set the room's state; I have {has})."
            )
        } else {
            String::new()
        };
        let example =
            self.map.ghost_for(&crate::core::ids::BareJid::new_unchecked(Some("alice".into()), "example.org".into()));
        let offer = format!(
            "{inviter}: I can bridge this room to XMPP: it becomes a room XMPP users can be invited to \
             (alice@example.org is {example} here), its admins own it and its moderators moderate it, \
             for XMPP users too.{power} To go ahead, {inviter} types confirm here within {OFFER_MINUTES} minutes. \
             (For commands, start a direct chat with me instead.)"
        );
        self.say_as_bot(id, room, offer).await
    }

    /// `by` confirmed: check again on the room as it is now, then make it a hosted room whose
    /// members are the people in it, with the roles their power levels give them.
    pub(in crate::bridge) async fn adopt_room(
        &self,
        id: i64,
        room: &RoomId,
        by: &MatrixUserId,
    ) -> Result<(), DeliveryError> {
        if self.bridged_already(room).await? {
            return Ok(());
        }
        let bot = self.map.bot();
        let Some(setup) = self.matrix.room_setup(room).await.map_err(MatrixError::into_delivery)? else {
            return self
                .say_as_bot(id, room, format!("{by}: I cannot read this room's power levels; it is not bridged."))
                .await;
        };
        let mut people: Vec<(MatrixUserId, Option<String>)> = self
            .matrix
            .joined_members(room)
            .await
            .map_err(MatrixError::into_delivery)?
            .into_iter()
            .filter(|(u, _)| !self.map.is_bridge_user(u))
            .collect();
        if let Err(why) = adopt::check(&setup.power, by, &bot, people.len(), self.room_cap()) {
            if matches!(why, Refused::BotTooLow { .. }) {
                // Fixable in the room: the confirmation may come again.
                self.remember_offer(room, by);
            }
            tracing::info!(%room, %by, %why, "room not adopted");
            return self.say_as_bot(id, room, format!("{by}: the room is not bridged: {why}.")).await;
        }
        // The canonical alias names the MUC when it is one of this homeserver's and free.
        let local = format!(":{}", self.map.homeserver);
        let alias = match setup.alias {
            Some(a) if a.ends_with(&local) && self.store.room_by_alias(&a).await?.is_none() => Some(a),
            _ => None,
        };
        let r = HostedRoom {
            room: room.clone(),
            alias,
            name: setup.name,
            topic: setup.topic,
            owner: Party::Matrix(by.clone()),
            open: setup.open,
        };
        // The one who confirmed first: the longest-standing member inherits the room.
        people.sort_by_key(|(u, _)| u != by);
        let mut members: Vec<RoomMember> = vec![];
        let mut tx = self.store.begin().await?;
        tx.save_room(&r).await?;
        for (user, displayname) in people {
            self.remember_displayname(&user, displayname.as_deref());
            let role = if &user == by { Role::Owner } else { setup.power.role_of(&user) };
            let party = Party::Matrix(user);
            let nick = self.new_nick(&members, &party, displayname.as_deref());
            let m = RoomMember { party, role, joined: true, nick };
            tx.save_member(room, &m).await?;
            members.push(m);
        }
        tx.commit().await?;
        self.cache_room(&r);
        let muc = self.muc_of(&r);
        tracing::info!(%room, %by, %muc, members = members.len(), "a Matrix room became a hosted room");
        self.announce_bridge(room, muc.clone(), by.clone(), r.alias.clone()).await;
        let owners: Vec<String> =
            members.iter().filter(|m| m.role == Role::Owner).map(|m| self.matrix_id_of(&m.party).to_string()).collect();
        self.say_as_bot(
            id,
            room,
            format!(
                "This room is bridged to XMPP now, as {muc}. Invite XMPP users here by their Matrix address; \
                 they get an invitation to the MUC. Owners: {}.",
                owners.join(", ")
            ),
        )
        .await
    }

    /// A Matrix user invited a ghost into a room that is neither a direct chat nor bridged:
    /// the ghost comes in only to say how the room can be bridged, and leaves.
    pub(in crate::bridge) fn ghost_invited_to_room(
        &self,
        room: RoomId,
        sender: &MatrixUserId,
        ghost: MatrixUserId,
    ) -> Vec<Action> {
        let Some(Ok(jid)) = self.map.jid_for_ghost(&ghost) else { return vec![] };
        tracing::info!(%room, %sender, %ghost, "a ghost invited into a room that is not bridged explains and leaves");
        let text = Text::notice(format!(
            "{jid} is on XMPP and can join this room only once it is bridged: one of the room's admins \
             invites {} and confirms. For a chat with {jid} alone, start a direct chat with {ghost}.",
            self.map.bot()
        ));
        vec![
            Action::MatrixJoin { room: room.clone(), user: ghost.clone() },
            Action::MatrixPost { room: room.clone(), user: ghost.clone(), text, nick: None },
            Action::MatrixLeave { room, user: ghost },
        ]
    }
}
