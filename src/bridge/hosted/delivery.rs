//! Carrying out the actions of hosted rooms: creating rooms, the bot's moderation on Matrix,
//! and the MUC traffic to XMPP clients (sent to every client joined when the action runs).

use crate::bridge::Bridge;
use crate::core::action::{Action, OccupantChange, RoomOp, Text};
use crate::core::ids::{ArchiveId, MatrixUserId, RoomId, StanzaId};
use crate::core::outbox::DeliveryError;
use crate::core::room::Role;
use crate::core::watch::Party;
use crate::matrix::client::MatrixError;
use crate::store::{HostedRoom, RoomMember};
use crate::xmpp::out::{OccupantPresence, Outgoing};

fn room_gone(room: &RoomId) -> DeliveryError {
    DeliveryError::Permanent(format!("{room} is not a bridged room"))
}

impl Bridge {
    pub(super) async fn room_for_delivery(&self, room: &RoomId) -> Result<HostedRoom, DeliveryError> {
        self.hosted_room(room).await?.ok_or_else(|| room_gone(room))
    }

    /// A ghost posts in a hosted room; if it is not in the room (yet), the bot lets it in.
    pub(in crate::bridge) async fn post_as_ghost(
        &self,
        id: i64,
        room: &RoomId,
        ghost: &MatrixUserId,
        text: &Text,
    ) -> Result<String, DeliveryError> {
        let txn = self.txn_id(id);
        let html = self.html_of(text);
        match self.matrix.send_text(room, ghost, text, html.as_deref(), &txn).await {
            Ok(event_id) => Ok(event_id),
            Err(e) if e.errcode() == Some("M_FORBIDDEN") && self.hosted_room(room).await.ok().flatten().is_some() => {
                if let Err(e) = self.matrix.invite(room, &self.map.bot(), ghost).await {
                    tracing::debug!(%room, %ghost, error = %e, "invite before posting");
                }
                self.matrix.join(room, ghost).await.map_err(MatrixError::into_delivery)?;
                self.matrix
                    .send_text(room, ghost, text, html.as_deref(), &txn)
                    .await
                    .map_err(MatrixError::into_delivery)
            }
            Err(e) => Err(e.into_delivery()),
        }
    }

    /// An XMPP occupant's message, with its reply, correction or file, posted by their ghost;
    /// the references (archive ids) are resolved to events now.
    pub(in crate::bridge) async fn room_say(
        &self,
        id: i64,
        room: &RoomId,
        ghost: &MatrixUserId,
        text: &Text,
        extras: &crate::core::action::Extras<StanzaId>,
        mentions: &[(MatrixUserId, String)],
    ) -> Result<String, DeliveryError> {
        if extras.is_unset() && mentions.is_empty() {
            return self.post_as_ghost(id, room, ghost, text).await;
        }
        let event_of = |r: Option<&StanzaId>| {
            let key = r.and_then(|r| ArchiveId::from_stanza_id(r.as_str()));
            async move {
                match key {
                    Some(k) => self
                        .store
                        .archived(room, crate::store::ArchiveKey::Id(k.get()))
                        .await
                        .map(|m| m.and_then(|m| m.event_id))
                        .map_err(DeliveryError::from),
                    None => Ok(None),
                }
            }
        };
        let reply_to = event_of(extras.reply_to.as_ref().map(|r| &r.id)).await?;
        let replaces = event_of(extras.replaces.as_ref()).await?;
        let users: Vec<MatrixUserId> = mentions.iter().map(|(u, _)| u.clone()).collect();
        let relations = crate::matrix::client::Relations {
            reply_to: reply_to.as_deref(),
            replaces: replaces.as_deref(),
            sent_at: extras.sent_at,
            mentions: &users,
        };
        let file = extras.file.as_ref();
        match self.post_mentioning(id, room, ghost, text, relations, file, mentions).await {
            Ok(event_id) => Ok(event_id),
            Err(e) if e.errcode() == Some("M_FORBIDDEN") => {
                if let Err(e) = self.matrix.invite(room, &self.map.bot(), ghost).await {
                    tracing::debug!(%room, %ghost, error = %e, "invite before posting");
                }
                self.matrix.join(room, ghost).await.map_err(MatrixError::into_delivery)?;
                self.post_mentioning(id, room, ghost, text, relations, file, mentions)
                    .await
                    .map_err(MatrixError::into_delivery)
            }
            Err(e) => Err(e.into_delivery()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(in crate::bridge) async fn create_room(
        self: &std::sync::Arc<Self>,
        initiator: &Party,
        name: &str,
        alias: &str,
        open: bool,
        reply_room: Option<&RoomId>,
        members: &[Party],
        id: i64,
    ) -> Result<(), DeliveryError> {
        let full_alias = format!("#{alias}:{}", self.map.homeserver);
        let initiator_id = self.matrix_id_of(initiator);
        let marker = self.txn_id(id);
        let outcome = if let Some(bridged) = self.store.room_by_alias(&full_alias).await? {
            // Saved already: by this very action before it failed later on (a retry goes on
            // with the invitations), or someone else's room.
            let origin = self.matrix.room_origin(&bridged.room).await.map_err(MatrixError::into_delivery)?;
            if origin.is_some_and(|o| o.marker.as_deref() == Some(marker.as_str())) {
                Ok(Some(bridged.room))
            } else {
                Err(format!("{full_alias} is already in use; choose another name."))
            }
        } else if alias == self.current_config().admins.control_room {
            Err(format!("{full_alias} is the bridge's control room; choose another name."))
        } else {
            match self.matrix.resolve_alias(&full_alias).await.map_err(MatrixError::into_delivery)? {
                // Taken. Adopted only when it is the room this very action created before a
                // crash kept it from being saved (the bot's marker names the action); any other
                // room behind the alias, even one the bot is powerful in, is someone else's.
                Some(existing) => {
                    let origin = self.matrix.room_origin(&existing).await.map_err(MatrixError::into_delivery)?;
                    if origin
                        .is_some_and(|o| o.creator == self.map.bot().to_string() && o.marker == Some(marker.clone()))
                    {
                        self.save_new_room(existing.clone(), initiator, name, &full_alias, open).await?;
                        Ok(Some(existing))
                    } else {
                        tracing::info!(alias = full_alias, %initiator, "room create refused: the alias is taken");
                        Err(format!("{full_alias} is already in use; choose another name."))
                    }
                }
                None => {
                    if let Party::Xmpp(jid) = initiator {
                        self.ensure_ghost(&initiator_id, &jid.to_string()).await?;
                    }
                    let invite = match initiator {
                        Party::Matrix(u) => vec![u.clone()],
                        Party::Xmpp(_) => vec![],
                    };
                    let room = self
                        .matrix
                        .create_group_room(name, alias, open, &invite, std::slice::from_ref(&initiator_id), &marker)
                        .await
                        .map_err(MatrixError::into_delivery)?;
                    tracing::info!(%room, alias = full_alias, %initiator, "created a hosted room");
                    self.save_new_room(room.clone(), initiator, name, &full_alias, open).await?;
                    let muc = self.map.muc_for_room(&full_alias);
                    self.announce_bridge(&room, muc, initiator_id.clone(), Some(full_alias.clone())).await;
                    Ok(Some(room))
                }
            }
        };
        if let Ok(Some(room)) = &outcome
            && !members.is_empty()
        {
            self.invite_members(room, initiator, name, members).await?;
        }
        let reply = match outcome {
            Ok(_) => {
                let muc = self.map.muc_for_room(&full_alias);
                format!(
                    "Room {full_alias} is ready; you are its moderator. XMPP users join it at {muc}; invite people there or in Matrix."
                )
            }
            Err(why) => format!("Could not create the room: {why}"),
        };
        match (initiator, reply_room) {
            (Party::Matrix(_), Some(dm)) => {
                // A room grown from a direct chat is announced there, by the ghost (the bot is
                // not in it); otherwise in the initiator's chat with the bot.
                let poster = match self.store.dm_by_room(dm).await? {
                    Some(chat) => self.map.ghost_for(&chat.xmpp),
                    None => self.map.bot(),
                };
                let text = Text::notice(reply);
                self.matrix
                    .send_text(dm, &poster, &text, self.html_of(&text).as_deref(), &format!("{}r", self.txn_id(id)))
                    .await
                    .map_err(MatrixError::into_delivery)?;
            }
            (Party::Xmpp(jid), _) => {
                let from = crate::core::ids::BareJid::parse(&self.map.component)
                    .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
                let id = format!("{}r", self.stanza_id(id));
                self.xmpp.deliver(Outgoing::chat(from, jid.clone(), Text::notice(reply), id)).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Invite the people named on creation into the room just made for them (`start-chat`,
    /// `room create --with`, a direct chat grown into a room): Matrix users by the bot, XMPP
    /// users with a MUC invitation (their ghosts join the room).
    async fn invite_members(
        self: &std::sync::Arc<Self>,
        room: &RoomId,
        initiator: &Party,
        name: &str,
        members: &[Party],
    ) -> Result<(), DeliveryError> {
        let mut tx = self.store.begin().await?;
        let mut current = tx.room_members(room).await?;
        let mut actions = vec![];
        for who in members {
            if current.iter().any(|m| &m.party == who) {
                continue;
            }
            let nick = self.new_nick(&current, who, None);
            let m = RoomMember { party: who.clone(), role: Role::Participant, joined: false, nick };
            tx.save_member(room, &m).await?;
            current.push(m);
            let user = self.matrix_id_of(who);
            actions.push(Action::MatrixRoomAct { room: room.clone(), op: RoomOp::Invite { user: user.clone() } });
            if let Party::Xmpp(jid) = who {
                actions.push(Action::MatrixJoin { room: room.clone(), user });
                actions.push(Action::XmppMucInvite {
                    room: room.clone(),
                    to: jid.clone(),
                    from: initiator.clone(),
                    reason: Some(format!("{name}: a group conversation started by {initiator}")),
                });
            }
        }
        let rows = tx.enqueue_all(actions).await?;
        tx.commit().await?;
        self.dispatch(rows);
        Ok(())
    }

    async fn save_new_room(
        &self,
        room: RoomId,
        initiator: &Party,
        name: &str,
        alias: &str,
        open: bool,
    ) -> Result<(), DeliveryError> {
        if let Party::Xmpp(_) = initiator {
            let ghost = self.matrix_id_of(initiator);
            if !open && let Err(e) = self.matrix.invite(&room, &self.map.bot(), &ghost).await {
                tracing::debug!(%room, error = %e, "invite the initiator's ghost");
            }
            self.matrix.join(&room, &ghost).await.map_err(MatrixError::into_delivery)?;
        }
        let r = HostedRoom {
            room: room.clone(),
            alias: Some(alias.to_owned()),
            name: Some(name.to_owned()),
            topic: None,
            owner: initiator.clone(),
            open,
        };
        let nick = self.new_nick(&[], initiator, None);
        let owner = RoomMember {
            party: initiator.clone(),
            role: Role::Owner,
            // A Matrix initiator is invited and joins; a ghost is in already.
            joined: matches!(initiator, Party::Xmpp(_)),
            nick,
        };
        let mut tx = self.store.begin().await?;
        tx.save_room(&r).await?;
        tx.save_member(&room, &owner).await?;
        tx.commit().await?;
        self.cache_room(&r);
        Ok(())
    }

    pub(in crate::bridge) async fn room_act(&self, room: &RoomId, op: &RoomOp) -> Result<(), DeliveryError> {
        let bot = self.map.bot();
        let result = match op {
            RoomOp::Invite { user } => {
                if let Some(Ok(jid)) = self.map.jid_for_ghost(user) {
                    self.ensure_ghost(user, &jid.to_string()).await?;
                }
                self.matrix.invite(room, &bot, user).await
            }
            RoomOp::Kick { user, reason } => self.matrix.kick(room, None, user, reason).await,
            RoomOp::Withdraw { user, by, reason } => self.matrix.kick(room, Some(by), user, reason).await,
            RoomOp::SetPower { user, level } => self.matrix.set_power_level(room, user, *level).await,
            RoomOp::SetTopic { topic } => self.matrix.set_topic(room, topic).await,
            RoomOp::SetName { name } => self.matrix.set_name(room, name).await,
            RoomOp::SetAvatar { url } => self.matrix.set_room_avatar(room, url.as_deref()).await,
        };
        match result {
            Ok(()) => Ok(()),
            // Already done (invited or joined already, gone already): nothing left to do.
            Err(e) if e.errcode() == Some("M_FORBIDDEN") => {
                tracing::info!(%room, ?op, error = %e, "room action not needed or not allowed");
                Ok(())
            }
            Err(e) => Err(e.into_delivery()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(in crate::bridge) async fn send_groupchat(
        &self,
        room: &RoomId,
        nick: &str,
        text: &Text,
        archive_id: ArchiveId,
        origin_id: Option<&StanzaId>,
        extras: &crate::core::action::Extras<StanzaId>,
        mentions: &[crate::core::mentions::Span],
    ) -> Result<(), DeliveryError> {
        let r = self.room_for_delivery(room).await?;
        let muc = self.muc_of(&r);
        // The same id as in the archive (MAM), so a correction can name it.
        let stanza_id = origin_id.map(StanzaId::to_string).unwrap_or_else(|| format!("ucb-a{archive_id}"));
        // A message that waited (outbox retries, the homeserver's backlog) carries its original
        // time; one on time carries none.
        let mut extras = extras.clone();
        extras.sent_at = crate::core::delay::late_stamp(extras.sent_at, crate::store::now_ms());
        for (to, _) in self.store.occupants(room).await? {
            let (room, nick, text, id, extras) =
                (muc.clone(), nick.to_owned(), text.clone(), stanza_id.clone(), extras.clone());
            let mentions = mentions.to_vec();
            self.xmpp.deliver(Outgoing::RoomMessage { room, nick, to, text, id, archive_id, extras, mentions }).await?;
        }
        Ok(())
    }

    /// An occupant's reactions (`keys`) or retraction (`None`) of an archived message, to
    /// every client in the MUC.
    pub(in crate::bridge) async fn send_group_act(
        &self,
        id: i64,
        room: &RoomId,
        nick: &str,
        archive_id: ArchiveId,
        keys: Option<&[String]>,
    ) -> Result<(), DeliveryError> {
        let r = self.room_for_delivery(room).await?;
        let muc = self.muc_of(&r);
        let stanza_id = self.stanza_id(id);
        for (to, _) in self.store.occupants(room).await? {
            let (room, nick, id, keys) =
                (muc.clone(), nick.to_owned(), stanza_id.clone(), keys.map(<[String]>::to_vec));
            self.xmpp.deliver(Outgoing::RoomAct { room, nick, to, id, archive_id, keys }).await?;
        }
        Ok(())
    }

    pub(in crate::bridge) async fn send_occupant_change(
        &self,
        room: &RoomId,
        who: &Party,
        nick: &str,
        change: &OccupantChange,
    ) -> Result<(), DeliveryError> {
        let r = self.room_for_delivery(room).await?;
        let muc = self.muc_of(&r);
        let real = self.real_jid_of(who);
        let shown = match change {
            OccupantChange::Present { .. } => self.shown_presence(who).await,
            _ => None,
        };
        for (full, party) in self.store.occupants(room).await? {
            let own = &party == who;
            let mut statuses = vec![];
            if own {
                statuses.push(110);
            }
            let p = match change {
                OccupantChange::Present { role } => OccupantPresence::present(*role, real.clone(), shown.clone()),
                OccupantChange::Gone { kicked, reason, banned } => {
                    if *banned {
                        statuses.push(301);
                    } else if *kicked {
                        statuses.push(307);
                    }
                    OccupantPresence { reason: reason.clone(), ..OccupantPresence::gone(real.clone()) }
                }
                OccupantChange::Renamed { role, new_nick } => {
                    statuses.push(303);
                    let p = OccupantPresence::present(*role, real.clone(), None);
                    OccupantPresence { new_nick: Some(new_nick.clone()), ..p }
                }
            };
            let (room, to) = (muc.clone(), full.clone());
            let presence = p.with_statuses(&statuses);
            self.xmpp.deliver(Outgoing::Occupant { room, nick: nick.to_owned(), to, presence }).await?;
            if let OccupantChange::Renamed { role, new_nick } = change {
                let p = OccupantPresence::present(*role, real.clone(), shown.clone());
                let presence = if own { p.with_statuses(&[110]) } else { p };
                let (room, nick) = (muc.clone(), new_nick.clone());
                self.xmpp.deliver(Outgoing::Occupant { room, nick, to: full, presence }).await?;
            }
        }
        if matches!(change, OccupantChange::Gone { .. }) {
            self.store.remove_occupants(room, who, None).await?;
        }
        Ok(())
    }

    pub(in crate::bridge) async fn send_subject(&self, room: &RoomId, subject: &str) -> Result<(), DeliveryError> {
        let r = self.room_for_delivery(room).await?;
        let muc = self.muc_of(&r);
        for (to, _) in self.store.occupants(room).await? {
            self.xmpp.deliver(Outgoing::Subject { room: muc.clone(), to, subject: subject.to_owned() }).await?;
        }
        Ok(())
    }

    pub(in crate::bridge) async fn send_muc_invite(
        &self,
        room: &RoomId,
        to: &crate::core::ids::BareJid,
        from: &Party,
        reason: Option<&str>,
    ) -> Result<(), DeliveryError> {
        let r = self.room_for_delivery(room).await?;
        let muc = self.muc_of(&r);
        let (to, from, reason) = (to.clone(), self.real_jid_of(from), reason.map(str::to_owned));
        self.xmpp.deliver(Outgoing::Invite { room: muc, to, from, reason }).await
    }
}
