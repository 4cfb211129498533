//! Message content beyond text in direct chats: replies, corrections, reactions, retractions
//! and files, both ways. References travel as the ids of the network they come from and are
//! resolved through the stored pairs (`message_map`) when the action runs, after everything
//! before it on its lane: a correction right after its original finds it. The Matrix side of
//! XMPP reactions and retractions serves hosted rooms too (`XmppTarget::Room`); carrying files
//! is shared by every kind (`bridge/media.rs`).

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::action::{Action, Extras, Reply, Text, XmppTarget};
use crate::core::ids::{BareJid, EventId, MatrixUserId, RoomId, StanzaId};
use crate::core::inbound::{FileRef, XmppAct};
use crate::core::outbox::DeliveryError;
use crate::core::refusal::Refusal;
use crate::matrix::client::MatrixError;
use crate::store::{DirectChat, MappedMessage, Reaction, StoreError, StoreTx};
use crate::xmpp::out::Outgoing;

impl Bridge {
    // ------------------------------------------------------------------ XMPP → Matrix --

    /// Reactions or a retraction an XMPP user sent to a Matrix user's address.
    pub async fn accept_xmpp_act(
        self: &Arc<Self>,
        from: &BareJid,
        to_local: &str,
        stanza_id: Option<String>,
        act: XmppAct,
    ) -> Result<(), Refusal> {
        let to = self.map.matrix_for_jid(to_local).map_err(|e| Refusal::bad_address(e.to_string()))?;
        let user = self.map.ghost_for(from);
        // Checked now, to answer the client that sent it; checked again when it is carried out.
        let target = match &act {
            XmppAct::Reactions { id, .. } | XmppAct::Retract { id } => id,
        };
        let known = self.dm_message_by_stanza(from, &to, target).await.map_err(|e| Refusal::internal(e.to_string()))?;
        match (&act, known) {
            (_, None) => return Err(Refusal::not_found(format!("The bridge knows no message with the id {target}."))),
            (XmppAct::Retract { .. }, Some(m)) if !m.from_xmpp => {
                return Err(Refusal::forbidden("You can only retract your own messages."));
            }
            _ => {}
        }
        let own_id = stanza_id.clone().map(StanzaId::new);
        let action = match act {
            XmppAct::Reactions { id, keys } => Action::MatrixReactions {
                target: XmppTarget::Dm { from: from.clone(), to, stanza_id: StanzaId::new(id) },
                user,
                keys,
                stanza_id: own_id,
            },
            XmppAct::Retract { id } => Action::MatrixRetract {
                target: XmppTarget::Dm { from: from.clone(), to, stanza_id: StanzaId::new(id) },
                user,
                stanza_id: own_id,
            },
        };
        let internal = |e: StoreError| crate::bridge::store_refusal(&e, "an XMPP message");
        let mut tx = self.store.begin().await.map_err(internal)?;
        if let Some(id) = &stanza_id
            && !tx.claim_stanza(&from.to_string(), id).await.map_err(internal)?
        {
            return Ok(());
        }
        let row = tx.enqueue_row(action).await.map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        self.dispatch(vec![row]);
        Ok(())
    }

    /// The event (and its room) an XMPP reference names, for `ghost` acting on it.
    async fn resolve_xmpp_target(&self, target: &XmppTarget) -> Result<(RoomId, String, bool), DeliveryError> {
        match target {
            XmppTarget::Dm { from, to, stanza_id } => {
                let m = self.dm_message_by_stanza(from, to, stanza_id.as_str()).await?.ok_or_else(|| {
                    DeliveryError::Permanent(format!("the bridge knows no message with the id {stanza_id}"))
                })?;
                Ok((m.room, m.event_id, m.from_xmpp))
            }
            XmppTarget::Room { room, archive_id } => {
                // Also a message retracted meanwhile (a tombstone): its retraction is what comes now.
                let (event, _) = self.store.event_of_archived(room, archive_id.get()).await?.ok_or_else(|| {
                    DeliveryError::Permanent(format!("message {archive_id} is not in the room or never reached Matrix"))
                })?;
                Ok((room.clone(), event, true))
            }
            XmppTarget::Linked { room, muc, stanza_id, nick } => {
                let m = self.store.linked_message_by_stanza(muc, stanza_id.as_str()).await?.ok_or_else(|| {
                    DeliveryError::Permanent(format!("{muc} has no message {stanza_id} the bridge knows"))
                })?;
                Ok((room.clone(), m.event_id, m.from_xmpp && &m.nick == nick))
            }
        }
    }

    /// A 1:1 message the XMPP user `from` knows by `stanza_id` (theirs or the bridge's), in
    /// their chat with `to`; a correction stands for its original.
    async fn dm_message_by_stanza(
        &self,
        from: &BareJid,
        to: &MatrixUserId,
        stanza_id: &str,
    ) -> Result<Option<MappedMessage>, DeliveryError> {
        match self.store.message_by_stanza(from, stanza_id).await? {
            Some(m) if &m.matrix == to => Ok(Some(self.store.original(m).await?)),
            _ => Ok(None),
        }
    }

    /// Make the ghost's `m.reaction` events match the XMPP user's full set of reactions.
    pub(in crate::bridge) async fn deliver_reactions(
        &self,
        id: i64,
        target: &XmppTarget,
        ghost: &MatrixUserId,
        keys: &[String],
    ) -> Result<(), DeliveryError> {
        let (room, event, _) = self.resolve_xmpp_target(target).await?;
        let current = self.store.reactions_of(&room, &event, &ghost.to_string()).await?;
        let current_keys: Vec<String> = current.iter().map(|r| r.key.clone()).collect();
        let (add, remove) = crate::core::reactions::changes(&current_keys, keys);
        let txn = self.txn_id(id);
        for key in remove {
            let Some(r) = current.iter().find(|r| r.key == key) else { continue };
            if let Some(reaction_event) = &r.event_id {
                let redaction = format!("{txn}-x{}", hex::encode(key.as_bytes()));
                match self.matrix.redact(&room, ghost, reaction_event, &redaction).await {
                    Ok(()) => {}
                    Err(e) if e.errcode() == Some("M_NOT_FOUND") => {}
                    Err(e) => return Err(e.into_delivery()),
                }
            }
            self.store.remove_reaction(r).await?;
        }
        for key in add {
            let reaction = format!("{txn}-r{}", hex::encode(key.as_bytes()));
            let event_id = self
                .matrix
                .send_reaction(&room, ghost, &event, &key, &reaction)
                .await
                .map_err(MatrixError::into_delivery)?;
            let r = Reaction {
                room: room.clone(),
                target_event: event.clone(),
                reactor: ghost.to_string(),
                key,
                event_id: Some(event_id),
            };
            self.store.save_reaction(&r).await?;
        }
        Ok(())
    }

    /// An XMPP user retracted a message: their ghost redacts it (theirs only).
    pub(in crate::bridge) async fn deliver_retract(
        &self,
        id: i64,
        target: &XmppTarget,
        ghost: &MatrixUserId,
    ) -> Result<(), DeliveryError> {
        let (room, event, own) = self.resolve_xmpp_target(target).await?;
        if !own {
            return Err(DeliveryError::Permanent("only your own messages can be retracted".into()));
        }
        match self.matrix.redact(&room, ghost, &event, &self.txn_id(id)).await {
            Err(e) if e.errcode() == Some("M_NOT_FOUND") => Ok(()),
            other => other.map_err(MatrixError::into_delivery),
        }
    }

    /// Refuse at once a correction of someone else's message (the client gets the error).
    pub(in crate::bridge) async fn check_dm_correction(
        &self,
        from: &BareJid,
        to: &MatrixUserId,
        extras: &Extras<StanzaId>,
    ) -> Result<(), Refusal> {
        let Some(id) = &extras.replaces else { return Ok(()) };
        match self.dm_message_by_stanza(from, to, id.as_str()).await {
            Ok(Some(m)) if !m.from_xmpp => Err(Refusal::forbidden("You can only correct your own messages.")),
            _ => Ok(()),
        }
    }

    /// Resolve a 1:1 message's reply and correction (the XMPP user's stanza ids) to events:
    /// `(reply_to, replaces)`. An unknown reply target leaves a plain message; correcting
    /// someone else's message is refused.
    pub(in crate::bridge) async fn resolve_dm_extras(
        &self,
        from: &BareJid,
        to: &MatrixUserId,
        extras: &Extras<StanzaId>,
    ) -> Result<(Option<String>, Option<String>), DeliveryError> {
        let reply = match &extras.reply_to {
            Some(r) => self.dm_message_by_stanza(from, to, r.id.as_str()).await?.map(|m| m.event_id),
            None => None,
        };
        let replaces = match &extras.replaces {
            Some(id) => match self.dm_message_by_stanza(from, to, id.as_str()).await? {
                Some(m) if m.from_xmpp => Some(m.event_id),
                Some(_) => return Err(DeliveryError::Permanent("only your own messages can be corrected".into())),
                None => None,
            },
            None => None,
        };
        Ok((reply, replaces))
    }

    // ------------------------------------------------------------------ Matrix → XMPP --

    /// The actions for a Matrix user's file in their direct chat.
    pub(in crate::bridge) async fn dm_file(
        &self,
        tx: &mut StoreTx,
        chat: &DirectChat,
        room: RoomId,
        sender: MatrixUserId,
        file: FileRef,
        reply_to: Option<String>,
    ) -> crate::store::Result<Vec<Action>> {
        let Some(link) = self.media_link(tx, &room, &file).await? else {
            let max = self.current_config().media.max_bytes;
            let in_room = format!(
                "{} is larger than the bridge's limit of {max} bytes and was not sent to {}; they were told.",
                file.name, chat.xmpp
            );
            let to_xmpp = format!(
                "[{sender} sent the file {} ({} bytes), too large for the bridge.]",
                file.name,
                file.size.unwrap_or(0)
            );
            return Ok(vec![self.notice_in(chat, &room, in_room), self.notice_to_xmpp(chat, &sender, to_xmpp)]);
        };
        let extras = Extras {
            reply_to: reply_to.map(|id| Reply { id: EventId::new(id), author: None, quote: None }),
            replaces: None,
            file: Some(link.clone()),
            sent_at: None,
        };
        let nick = self.displayname(&sender);
        let event = Some((room, EventId::new(file.event_id)));
        Ok(vec![Action::XmppChat {
            from: sender,
            to: chat.xmpp.clone(),
            nick,
            text: Text::plain(link.url),
            event,
            extras,
        }])
    }

    /// A Matrix user reacted in their direct chat: the new full set goes to XMPP.
    pub(in crate::bridge) async fn dm_reaction(
        &self,
        tx: &mut StoreTx,
        chat: &DirectChat,
        r: Reaction,
    ) -> crate::store::Result<Vec<Action>> {
        tx.save_reaction(&r).await?;
        let keys = tx.reactions_of(&r.room, &r.target_event, &r.reactor).await?.into_iter().map(|r| r.key).collect();
        let Ok(from) = MatrixUserId::parse(&r.reactor) else { return Ok(vec![]) };
        let target = EventId::new(r.target_event);
        Ok(vec![Action::XmppReactions { from, to: chat.xmpp.clone(), room: r.room, target, keys }])
    }

    /// A Matrix user redacted an event in their direct chat: a reaction taken back (the new
    /// set goes to XMPP), or their message (retracted on XMPP).
    pub(in crate::bridge) async fn dm_redaction(
        &self,
        tx: &mut StoreTx,
        chat: &DirectChat,
        room: RoomId,
        sender: MatrixUserId,
        redacts: String,
    ) -> crate::store::Result<Vec<Action>> {
        if let Some(r) = tx.reaction_by_event(&room, &redacts).await? {
            tx.remove_reaction(&r).await?;
            let keys = tx.reactions_of(&room, &r.target_event, &r.reactor).await?.into_iter().map(|r| r.key).collect();
            return Ok(match MatrixUserId::parse(&r.reactor) {
                Ok(from) if from == sender => {
                    let target = EventId::new(r.target_event);
                    vec![Action::XmppReactions { from, to: chat.xmpp.clone(), room, target, keys }]
                }
                _ => vec![],
            });
        }
        tx.forget_media(&room, &redacts).await?;
        let target = EventId::new(redacts);
        Ok(vec![Action::XmppRetract { from: sender, to: chat.xmpp.clone(), room, target }])
    }

    /// Resolve a Matrix message's reply and correction (events of `room`) to what the XMPP
    /// side knows: the extras to send, and the original event a correction stands for.
    pub(in crate::bridge) async fn resolve_matrix_extras(
        &self,
        room: &RoomId,
        sender: &MatrixUserId,
        to: &BareJid,
        extras: &Extras<EventId>,
    ) -> Result<(Extras<StanzaId>, Option<String>), DeliveryError> {
        let mut out = Extras { file: extras.file.clone(), sent_at: extras.sent_at, ..Extras::default() };
        if let Some(r) = &extras.reply_to
            && let Some(m) = self.store.original_by_event(room, r.id.as_str()).await?
        {
            let author = if m.from_xmpp { m.xmpp.to_string() } else { self.map.jid_for_matrix(&m.matrix).to_string() };
            let ghost = self.map.ghost_for(to);
            let quote = match self.matrix.room_event_as(room, &m.event_id, Some(&ghost)).await {
                Ok(Some(crate::core::inbound::MatrixIn::Message { text, .. })) => Some(text.body),
                Ok(Some(crate::core::inbound::MatrixIn::File { file, .. })) => Some(file.name),
                _ => None,
            };
            out.reply_to = Some(Reply { id: StanzaId::new(m.stanza_id), author: Some(author), quote });
        }
        let mut edit_of = None;
        if let Some(original) = &extras.replaces
            && let Some(m) = self.store.original_by_event(room, original.as_str()).await?
        {
            if m.from_xmpp || &m.matrix != sender {
                return Err(DeliveryError::Permanent(
                    "only your own messages can be edited; the edit did not reach XMPP".into(),
                ));
            }
            out.replaces = Some(StanzaId::new(m.stanza_id));
            edit_of = Some(m.event_id);
        }
        Ok((out, edit_of))
    }

    /// A Matrix user's reactions (the full set) to a message in their direct chat.
    pub(in crate::bridge) async fn send_xmpp_reactions(
        &self,
        id: i64,
        from: &MatrixUserId,
        to: &BareJid,
        room: &RoomId,
        target: &EventId,
        keys: &[String],
    ) -> Result<(), DeliveryError> {
        let Some(m) = self.store.original_by_event(room, target.as_str()).await? else {
            return Err(DeliveryError::Permanent("the reaction is to a message XMPP does not know".into()));
        };
        let act = XmppAct::Reactions { id: m.stanza_id, keys: keys.to_vec() };
        let (from, to, id) = (self.map.jid_for_matrix(from), to.clone(), self.stanza_id(id));
        self.xmpp.deliver(Outgoing::ChatAct { from, to, id, act }).await
    }

    /// A Matrix user's redaction of a message in their direct chat, retracted on XMPP if it
    /// was theirs and bridged.
    pub(in crate::bridge) async fn send_xmpp_retract(
        &self,
        id: i64,
        from: &MatrixUserId,
        to: &BareJid,
        room: &RoomId,
        target: &EventId,
    ) -> Result<(), DeliveryError> {
        let Some(m) = self.store.message_by_event(room, target.as_str()).await? else {
            // Not a bridged message (a notice, say): nothing to retract.
            return Ok(());
        };
        if m.from_xmpp || &m.matrix != from {
            return Err(DeliveryError::Permanent(format!(
                "only your own messages are retracted on XMPP; {to} still sees the message you removed"
            )));
        }
        let m = self.store.original(m).await?;
        let act = XmppAct::Retract { id: m.stanza_id };
        let (from, to, id) = (self.map.jid_for_matrix(from), to.clone(), self.stanza_id(id));
        self.xmpp.deliver(Outgoing::ChatAct { from, to, id, act }).await
    }
}
