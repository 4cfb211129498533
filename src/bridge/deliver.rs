//! Carrying out one outbox action. Retries are idempotent: Matrix sends use the txnId
//! `ucb<row id>`, stanzas the id `ucb-<row id>`.

use crate::bridge::Bridge;
use crate::core::action::{Action, Text};
use crate::core::ids::{BareJid, MatrixUserId};
use crate::core::outbox::DeliveryError;
use crate::matrix::client::{MatrixError, Relations};
use crate::store::{DmPortal, MappedMessage, PeerMembership, StoreError};
use crate::xmpp::outbound;

/// What the XMPP sender of a message asked for.
#[derive(Clone, Copy)]
pub(super) struct Asked<'a> {
    pub stanza_id: Option<&'a str>,
    pub receipt: bool,
    pub markable: bool,
    /// The message is a correction of this event.
    pub edit_of: Option<&'a str>,
}

fn store_err(e: StoreError) -> DeliveryError {
    DeliveryError::Transient(e.to_string())
}

impl Bridge {
    pub(super) async fn deliver(self: &std::sync::Arc<Self>, id: i64, action: &Action) -> Result<(), DeliveryError> {
        match action {
            Action::MatrixDirect { from, to, nick, text, stanza_id, wants_receipt, markable, extras } => {
                let (reply_to, replaces) = self.resolve_dm_extras(from, to, extras).await?;
                let asked = Asked {
                    stanza_id: stanza_id.as_deref(),
                    receipt: *wants_receipt,
                    markable: *markable,
                    edit_of: replaces.as_deref(),
                };
                let relations = Relations { reply_to: reply_to.as_deref(), replaces: replaces.as_deref() };
                self.deliver_direct(id, from, to, nick.as_deref(), text, asked, relations, extras.file.as_ref()).await
            }
            Action::MatrixReactions { target, user, keys, .. } => {
                self.ensure_xmpp_ghost(user).await?;
                self.deliver_reactions(id, target, user, keys).await
            }
            Action::MatrixRetract { target, user, .. } => self.deliver_retract(id, target, user).await,
            Action::MatrixRoomName { room, user, name } => {
                self.matrix.set_room_displayname(room, user, name).await.map_err(MatrixError::into_delivery)
            }
            Action::MatrixJoin { room, user } => {
                if let Some(Ok(jid)) = self.map.jid_for_ghost(user) {
                    self.ensure_ghost(user, &jid.to_string()).await?;
                } else if let Some(phone) = self.map.phone_for_ghost(user) {
                    // The contact's name only in a permitted person's SMS chat (L4).
                    self.prepare_sms_ghost(room, user, &phone).await?;
                }
                match self.matrix.join(room, user).await {
                    // A portal room that is not public (linked with `rooms link`): the bot
                    // invites the MUC occupant's ghost first.
                    Err(e)
                        if e.errcode() == Some("M_FORBIDDEN")
                            && self.portal_muc(room).await.map_err(store_err)?.is_some() =>
                    {
                        if let Err(e) = self.matrix.invite(room, &self.map.bot(), user).await {
                            tracing::info!(%room, %user, error = %e, "cannot invite a ghost into a portal room");
                        }
                        self.matrix.join(room, user).await.map_err(MatrixError::into_delivery)
                    }
                    other => other.map_err(MatrixError::into_delivery),
                }
            }
            Action::MatrixPost { room, user, text, nick } => {
                if let Some(Ok(jid)) = self.map.jid_for_ghost(user) {
                    let name = match (nick, self.cached_ghost(user)) {
                        (Some(n), _) => n.clone(),
                        (None, Some(Some(known))) => known,
                        (None, _) => jid.to_string(),
                    };
                    self.ensure_ghost(user, &name).await?;
                    return self.post_as_ghost(id, room, user, text).await.map(|_| ());
                }
                self.matrix
                    .send_text(room, user, text, &self.txn_id(id))
                    .await
                    .map(|_| ())
                    .map_err(MatrixError::into_delivery)
            }
            Action::MatrixNotice { room, body, html, reply_to } => self
                .matrix
                .send_notice(room, &self.map.bot(), body, html.as_deref(), reply_to.as_deref(), &self.txn_id(id))
                .await
                .map_err(MatrixError::into_delivery),
            Action::MatrixRoomSay { room, user, text, nick, archive_id, extras } => {
                self.ensure_ghost(user, nick).await?;
                let event_id = self.room_say(id, room, user, text, extras).await?;
                if let Err(e) = self.store.set_archive_event(room, *archive_id, &event_id).await {
                    tracing::warn!(%room, error = %e, "cannot record the event of an archived message");
                }
                Ok(())
            }
            Action::MatrixCreateRoom { initiator, name, alias, open, reply_room, members } => {
                self.create_room(initiator, name, alias, *open, reply_room.as_ref(), members, id).await
            }
            Action::MatrixRoomAct { room, op } => self.room_act(room, op).await,
            Action::XmppGroupchat { room, nick, text, archive_id, origin_id, extras } => {
                self.send_groupchat(room, nick, text, *archive_id, origin_id.as_deref(), extras).await
            }
            Action::XmppGroupReactions { room, nick, archive_id, keys } => {
                self.send_group_act(id, room, nick, *archive_id, Some(keys)).await
            }
            Action::XmppGroupRetract { room, nick, archive_id } => {
                self.send_group_act(id, room, nick, *archive_id, None).await
            }
            Action::XmppReactions { from, to, room, target, keys } => {
                self.send_xmpp_reactions(id, from, to, room, target, keys).await
            }
            Action::XmppRetract { from, to, room, target } => self.send_xmpp_retract(id, from, to, room, target).await,
            Action::XmppOccupant { room, who, nick, change } => {
                self.send_occupant_change(room, who, nick, change).await
            }
            Action::XmppSubject { room, subject } => self.send_subject(room, subject).await,
            Action::XmppPortalJoin { .. }
            | Action::XmppPortalLeave { .. }
            | Action::XmppPortalMessage { .. }
            | Action::MatrixLeave { .. } => self.deliver_portal(id, action).await,
            Action::XmppMucInvite { room, to, from, reason } => {
                self.send_muc_invite(room, to, from, reason.as_deref()).await
            }
            Action::XmppChat { from: sender, to, nick, text, event, extras } => {
                let (extras, edit_of) = match event {
                    Some((room, _)) if !extras.is_empty() => {
                        self.resolve_matrix_extras(room, sender, to, extras).await?
                    }
                    _ => (extras.clone(), None),
                };
                let nick = match nick {
                    Some(n) => Some(n.clone()),
                    None => self.matrix_displayname(sender).await,
                };
                let stanza_id = self.stanza_id(id);
                if let Some((room, event_id)) = event {
                    // Recorded before sending, so a read marker that comes back at once finds it.
                    let mapped = MappedMessage {
                        room: room.clone(),
                        event_id: event_id.clone(),
                        xmpp: to.clone(),
                        matrix: sender.clone(),
                        stanza_id: stanza_id.clone(),
                        from_xmpp: false,
                        markable: true,
                        edit_of,
                    };
                    self.store.map_message(&mapped).await.map_err(store_err)?;
                }
                let from = self.map.jid_for_matrix(sender);
                self.xmpp.send(outbound::chat_with(&from, to, text, stanza_id, nick.as_deref(), &extras)?).await
            }
            Action::XmppNotice { to, text } => {
                let from = crate::core::ids::BareJid::parse(&self.map.component)
                    .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
                self.xmpp.send(outbound::chat_between(&from, to, text, self.stanza_id(id), None)?).await
            }
            Action::XmppBounce { from, to, reason, quote, .. } => {
                let from = self.map.jid_for_matrix(from);
                let body = match quote {
                    Some(q) => format!("{reason}\nYour message: “{q}”"),
                    None => reason.clone(),
                };
                self.xmpp.send(outbound::chat_between(&from, to, &Text::notice(body), self.stanza_id(id), None)?).await
            }
            Action::Mail { from, to, raw, .. } => self.deliver_mail(from, to, raw).await,
            Action::SmsSend { .. }
            | Action::SmsToMatrix { .. }
            | Action::XmppFromPhone { .. }
            | Action::XmppPhoneBounce { .. } => self.deliver_sms(id, action).await,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn deliver_direct(
        &self,
        id: i64,
        from: &BareJid,
        to: &MatrixUserId,
        nick: Option<&str>,
        text: &Text,
        asked: Asked<'_>,
        relations: Relations<'_>,
        file: Option<&crate::core::action::Attachment>,
    ) -> Result<(), DeliveryError> {
        let ghost = self.map.ghost_for(from);
        let name = nick.map(str::to_owned).unwrap_or_else(|| from.to_string());
        self.ensure_ghost(&ghost, &name).await?;
        let portal = self.ensure_dm(&ghost, from, to).await?;
        match self.post_content(id, &portal.room, &ghost, text, relations, file).await {
            Ok(event_id) => {
                self.delivered_to_matrix(&portal, event_id, asked).await;
                Ok(())
            }
            Err(e) if e.errcode() == Some("M_FORBIDDEN") => {
                // The ghost is no longer in that room (kicked, room gone): forget it, so the
                // retry opens a fresh direct chat instead of failing forever.
                self.store.forget_dm(&portal.room).await.map_err(store_err)?;
                self.cache_dm(0, None, from, to);
                Err(DeliveryError::Transient(format!("ghost cannot post in {}: {e}", portal.room)))
            }
            Err(e) => Err(e.into_delivery()),
        }
    }

    /// A Matrix user's display name: as seen in membership events, else from their profile
    /// (once; a failure only costs the nick).
    async fn matrix_displayname(&self, user: &MatrixUserId) -> Option<String> {
        if let Some(known) = self.known_displayname(user) {
            return known;
        }
        match self.matrix.displayname(user).await {
            Ok(name) => {
                self.remember_displayname(user, Some(name.as_deref().unwrap_or_default()));
                name
            }
            Err(e) => {
                tracing::debug!(%user, error = %e, "no display name");
                None
            }
        }
    }

    /// Register an XMPP user's ghost (under its current name) before it acts.
    async fn ensure_xmpp_ghost(&self, ghost: &MatrixUserId) -> Result<(), DeliveryError> {
        let name = match (self.cached_ghost(ghost), self.map.jid_for_ghost(ghost)) {
            (Some(Some(known)), _) => known,
            (_, Some(Ok(jid))) => jid.to_string(),
            _ => ghost.to_string(),
        };
        self.ensure_ghost(ghost, &name).await
    }

    /// Register a ghost once and keep its display name current.
    pub async fn ensure_ghost(&self, ghost: &MatrixUserId, displayname: &str) -> Result<(), DeliveryError> {
        let known = match self.cached_ghost(ghost) {
            Some(cached) => Some(cached),
            None => self.store.ghost(ghost).await.map_err(store_err)?,
        };
        if known.is_none() {
            self.matrix.register_ghost(ghost).await.map_err(MatrixError::into_delivery)?;
        }
        if known.flatten().as_deref() != Some(displayname) {
            if let Err(e) = self.matrix.set_displayname(ghost, displayname).await {
                // A missing display name is cosmetic; the message matters more.
                tracing::warn!(%ghost, error = %e, "could not set the ghost's display name");
                self.store.save_ghost(ghost, None).await.map_err(store_err)?;
                self.cache_ghost(ghost, None);
                return Ok(());
            }
            self.store.save_ghost(ghost, Some(displayname)).await.map_err(store_err)?;
            self.cache_ghost(ghost, Some(displayname.to_owned()));
        } else if self.cached_ghost(ghost).is_none() {
            self.cache_ghost(ghost, Some(displayname.to_owned()));
        }
        Ok(())
    }

    /// The pair's direct chat: created on first use, the Matrix user re-invited if they left.
    async fn ensure_dm(
        &self,
        ghost: &MatrixUserId,
        from: &BareJid,
        to: &MatrixUserId,
    ) -> Result<DmPortal, DeliveryError> {
        let (generation, current) = self.current_dm(from, to).await.map_err(store_err)?;
        let portal = match current {
            Some(portal) if portal.peer == PeerMembership::Left => {
                match self.matrix.invite(&portal.room, ghost, to).await {
                    Ok(()) => {
                        let portal = DmPortal { peer: PeerMembership::Invited, ..portal };
                        self.store.save_dm(&portal).await.map_err(store_err)?;
                        portal
                    }
                    Err(e) if e.errcode() == Some("M_FORBIDDEN") => {
                        self.store.forget_dm(&portal.room).await.map_err(store_err)?;
                        self.create_dm(ghost, from, to).await?
                    }
                    Err(e) => return Err(e.into_delivery()),
                }
            }
            Some(portal) => portal,
            None => self.create_dm(ghost, from, to).await?,
        };
        self.cache_dm(generation, Some(&portal), from, to);
        Ok(portal)
    }

    async fn create_dm(
        &self,
        ghost: &MatrixUserId,
        from: &BareJid,
        to: &MatrixUserId,
    ) -> Result<DmPortal, DeliveryError> {
        let room = self.matrix.create_direct_room(ghost, to).await.map_err(MatrixError::into_delivery)?;
        tracing::info!(%room, xmpp = %from, matrix = %to, "created direct chat");
        let portal = DmPortal { room, xmpp: from.clone(), matrix: to.clone(), peer: PeerMembership::Invited };
        self.store.save_dm(&portal).await.map_err(store_err)?;
        Ok(portal)
    }
}
