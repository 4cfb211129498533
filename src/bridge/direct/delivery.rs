//! Carrying out the actions of direct chats: an XMPP message posted by its ghost (the chat
//! created on first use, the Matrix user re-invited if they left), and a Matrix message sent
//! as a stanza (recorded in `message_map` first, for markers and corrections).

use crate::bridge::Bridge;
use crate::core::action::{Action, Extras, Text, TextKind};
use crate::core::ids::{BareJid, MatrixUserId, StanzaId};
use crate::core::outbox::DeliveryError;
use crate::core::presence::{DndAction, DndDelivery, dnd_action};
use crate::matrix::client::{MatrixError, Relations};
use crate::store::{DirectChat, MappedMessage, PeerMembership};
use crate::xmpp::out::Outgoing;

/// What the XMPP sender of a message asked for.
#[derive(Clone, Copy)]
pub(in crate::bridge) struct Asked<'a> {
    pub stanza_id: Option<&'a str>,
    pub receipt: bool,
    pub markable: bool,
    /// The message is a correction of this event.
    pub edit_of: Option<&'a str>,
}

impl Bridge {
    /// Carry out `Action::MatrixDirect` (XMPP to Matrix) or `Action::XmppChat` (Matrix to XMPP).
    pub(in crate::bridge) async fn deliver_direct(&self, id: i64, action: &Action) -> Result<(), DeliveryError> {
        match action {
            Action::MatrixDirect { from, to, nick, text, stanza_id, wants_receipt, markable, extras } => {
                let (reply_to, replaces) = self.resolve_dm_extras(from, to, extras).await?;
                let asked = Asked {
                    stanza_id: stanza_id.as_ref().map(StanzaId::as_str),
                    receipt: *wants_receipt,
                    markable: *markable,
                    edit_of: replaces.as_deref(),
                };
                let (reply_to, replaces) = (reply_to.as_deref(), replaces.as_deref());
                let relations = Relations { reply_to, replaces, sent_at: extras.sent_at, ..Relations::default() };
                let text = self.dnd_text(to, text, extras.sent_at).await?;
                self.direct_to_matrix(id, from, to, nick.as_deref(), &text, asked, relations, extras.file.as_ref())
                    .await
            }
            Action::XmppChat { from: sender, to, nick, text, event, extras } => {
                let (mut extras, edit_of) = match event {
                    Some((room, _)) if !extras.is_empty() => {
                        self.resolve_matrix_extras(room, sender, to, extras).await?
                    }
                    // Nothing to resolve (a file alone, or no event to resolve in).
                    _ => (Extras { file: extras.file.clone(), sent_at: extras.sent_at, ..Extras::default() }, None),
                };
                // A message that waited (outbox retries, the homeserver's backlog) carries its
                // original time; one on time carries none.
                extras.sent_at = crate::core::delay::late_stamp(extras.sent_at, crate::store::now_ms());
                let nick = match nick {
                    Some(n) => Some(n.clone()),
                    None => self.matrix_displayname(sender).await,
                };
                let stanza_id = self.stanza_id(id);
                if let Some((room, event_id)) = event {
                    // Recorded before sending, so a read marker that comes back at once finds it.
                    let mapped = MappedMessage {
                        room: room.clone(),
                        event_id: event_id.to_string(),
                        xmpp: to.clone(),
                        matrix: sender.clone(),
                        stanza_id: stanza_id.clone(),
                        from_xmpp: false,
                        markable: true,
                        edit_of,
                    };
                    self.store.map_message(&mapped).await?;
                }
                let from = self.map.jid_for_matrix(sender);
                let (to, text, nick) = (to.clone(), text.clone(), nick.clone());
                self.xmpp.deliver(Outgoing::Chat { from, to, text, id: stanza_id, nick, extras }).await
            }
            _ => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn direct_to_matrix(
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
        let chat = self.ensure_dm(&ghost, from, to).await?;
        match self.post_content(id, &chat.room, &ghost, text, relations, file).await {
            Ok(event_id) => {
                self.delivered_to_matrix(id, &chat, event_id, asked).await;
                Ok(())
            }
            Err(e) if e.errcode() == Some("M_FORBIDDEN") => {
                // The ghost is no longer in that room (kicked, room gone): forget it, so the
                // retry opens a fresh direct chat instead of failing forever.
                self.store.forget_dm(&chat.room).await?;
                self.cache_dm(0, None, from, to);
                Err(DeliveryError::Transient(format!("ghost cannot post in {}: {e}", chat.room)))
            }
            Err(e) => Err(e.into_delivery()),
        }
    }

    /// The text as it reaches `to` now, by `presence.dnd_delivery` when they are in
    /// do-not-disturb: as it is, as a notice (no push), or not yet (held in the outbox: the
    /// retry finds them out of DND, or the longest hold over).
    async fn dnd_text(&self, to: &MatrixUserId, text: &Text, written: Option<i64>) -> Result<Text, DeliveryError> {
        let config = self.current_config();
        let rules = &config.presence;
        if rules.dnd_delivery == DndDelivery::Now {
            return Ok(text.clone());
        }
        let state = self.known_matrix_state(to).await;
        let now = crate::store::now_ms();
        let max_hold = rules.max_hold_ms();
        match dnd_action(state, rules.dnd_delivery, written.unwrap_or(now), now, max_hold) {
            DndAction::Deliver => Ok(text.clone()),
            DndAction::Quietly if text.kind == TextKind::Text => Ok(Text::notice(text.body.clone())),
            DndAction::Quietly => Ok(text.clone()),
            DndAction::Hold => Err(DeliveryError::Transient(format!("held while {to} is in do-not-disturb"))),
        }
    }

    /// The pair's direct chat: created on first use, the Matrix user re-invited if they left.
    async fn ensure_dm(
        &self,
        ghost: &MatrixUserId,
        from: &BareJid,
        to: &MatrixUserId,
    ) -> Result<DirectChat, DeliveryError> {
        let (generation, current) = self.current_dm(from, to).await?;
        let chat = match current {
            Some(chat) if chat.peer == PeerMembership::Left => match self.matrix.invite(&chat.room, ghost, to).await {
                Ok(()) => {
                    let chat = DirectChat { peer: PeerMembership::Invited, ..chat };
                    self.store.save_dm(&chat).await?;
                    chat
                }
                Err(e) if e.errcode() == Some("M_FORBIDDEN") => {
                    self.store.forget_dm(&chat.room).await?;
                    self.create_dm(ghost, from, to).await?
                }
                Err(e) => return Err(e.into_delivery()),
            },
            Some(chat) => chat,
            None => self.create_dm(ghost, from, to).await?,
        };
        self.cache_dm(generation, Some(&chat), from, to);
        Ok(chat)
    }

    async fn create_dm(
        &self,
        ghost: &MatrixUserId,
        from: &BareJid,
        to: &MatrixUserId,
    ) -> Result<DirectChat, DeliveryError> {
        let room = self.matrix.create_direct_room(ghost, to).await.map_err(MatrixError::into_delivery)?;
        tracing::info!(%room, xmpp = %from, matrix = %to, "created direct chat");
        let chat = DirectChat { room, xmpp: from.clone(), matrix: to.clone(), peer: PeerMembership::Invited };
        self.store.save_dm(&chat).await?;
        Ok(chat)
    }
}
