//! A Matrix user's message content in a linked MUC's room, carried to the MUC: replies,
//! corrections, reactions, retractions and files, naming messages as the MUC's clients do (the
//! room's XEP-0359 stanza id; a correction names the sender's own id), and mentions as the
//! occupant's nick in the text with a XEP-0372 reference. What the MUC cannot carry (its
//! disco#info features, `core::muc_features`) goes as a text that says what it is.

use crate::bridge::Bridge;
use crate::core::action::{Action, Extras, Reply, Text};
use crate::core::ids::{BareJid, EventId, MatrixUserId, RoomId, StanzaId};
use crate::core::inbound::{FileRef, XmppAct};
use crate::core::mentions::{self, Addressee};
use crate::core::muc_features;
use crate::core::outbox::DeliveryError;
use crate::store::{LinkedMessage, Reaction, StoreTx};
use crate::xmpp::out::Outgoing;

impl Bridge {
    // ---------------------------------------------------------------------- accepting --

    /// A file: the link the bridge serves it under, as text and as XEP-0066 data.
    pub(super) async fn linked_file(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        muc: BareJid,
        from: MatrixUserId,
        file: FileRef,
        reply_to: Option<String>,
    ) -> crate::store::Result<Vec<Action>> {
        let event = Some(EventId::new(file.event_id.clone()));
        let (text, file) = match self.media_link(tx, &room, &file).await? {
            Some(link) => (Text::plain(link.url.clone()), Some(link)),
            None => (Text::plain(format!("[a file too large for the bridge: {}]", file.name)), None),
        };
        let extras = Extras {
            reply_to: reply_to.map(|id| Reply { id: EventId::new(id), author: None, quote: None }),
            replaces: None,
            file,
            sent_at: None,
        };
        Ok(vec![Action::LinkedMucMessage { room, muc, from, text, event, extras, mentions: vec![] }])
    }

    /// A reaction: the sender's new full set goes to the MUC.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn linked_reaction(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        muc: BareJid,
        from: MatrixUserId,
        event_id: String,
        target: String,
        key: String,
    ) -> crate::store::Result<Vec<Action>> {
        let r = Reaction {
            room: room.clone(),
            target_event: target.clone(),
            reactor: from.to_string(),
            key,
            event_id: Some(event_id),
        };
        tx.save_reaction(&r).await?;
        let keys = tx.reactions_of(&room, &target, &r.reactor).await?.into_iter().map(|r| r.key).collect();
        Ok(vec![Action::LinkedMucReactions { room, muc, from, target: EventId::new(target), keys }])
    }

    /// A redaction: a reaction taken back (the new set goes to the MUC), or the sender's
    /// message (retracted in the MUC).
    pub(super) async fn linked_redaction(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        muc: BareJid,
        from: MatrixUserId,
        redacts: String,
    ) -> crate::store::Result<Vec<Action>> {
        if let Some(r) = tx.reaction_by_event(&room, &redacts).await? {
            tx.remove_reaction(&r).await?;
            if r.reactor != from.to_string() {
                return Ok(vec![]);
            }
            let keys = tx.reactions_of(&room, &r.target_event, &r.reactor).await?.into_iter().map(|r| r.key).collect();
            let target = EventId::new(r.target_event);
            return Ok(vec![Action::LinkedMucReactions { room, muc, from, target, keys }]);
        }
        tx.forget_media(&room, &redacts).await?;
        Ok(vec![Action::LinkedMucRetract { room, muc, from, target: EventId::new(redacts) }])
    }

    // ---------------------------------------------------------------------- delivering --

    /// The nick `user` has in the linked MUC of `room`: a Matrix occupant's own, or a remote
    /// occupant's (for their ghost).
    async fn nick_in_linked(
        &self,
        room: &RoomId,
        muc: &BareJid,
        user: &MatrixUserId,
    ) -> crate::store::Result<Option<String>> {
        if let Some((_, nick)) = self.store.xmpp_occupants(room).await?.into_iter().find(|(u, _)| u == user) {
            return Ok(Some(nick));
        }
        Ok(self.map.jid_for_ghost(user).and_then(Result::ok).and_then(|jid| self.remote_nick_of(muc, &jid)))
    }

    /// The text of a message of the room, to quote in a reply or a fallback.
    async fn linked_quote(&self, room: &RoomId, event: &str) -> Option<String> {
        match self.matrix.room_event(room, event).await {
            Ok(Some(crate::core::inbound::MatrixIn::Message { text, .. })) => Some(text.body),
            Ok(Some(crate::core::inbound::MatrixIn::File { file, .. })) => Some(file.name),
            _ => None,
        }
    }

    /// The id the MUC's clients know a message by (its stanza id; until the MUC has reflected
    /// one of ours, the id we sent it with).
    fn muc_id_of(m: &LinkedMessage) -> Option<StanzaId> {
        m.stanza_id.clone().or_else(|| m.message_id.clone()).map(StanzaId::new)
    }

    /// Say a Matrix user's message in the MUC; it is recorded first, so that the MUC's
    /// reflection finds it and gives it the room's stanza id.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn say_in_linked(
        &self,
        id: i64,
        room: &RoomId,
        muc: &BareJid,
        from: &MatrixUserId,
        text: &Text,
        event: Option<&EventId>,
        extras: &Extras<EventId>,
        mentioned: &[MatrixUserId],
    ) -> Result<(), DeliveryError> {
        let features = self.linked_features(muc).await;
        let mut text = text.clone();
        // A message that waited (outbox retries, the homeserver's backlog) carries its original
        // time; one on time carries none.
        let sent_at = crate::core::delay::late_stamp(extras.sent_at, crate::store::now_ms());
        let mut out = Extras { file: extras.file.clone(), sent_at, ..Extras::default() };
        if let Some(r) = &extras.reply_to
            && let Some(m) = self.store.linked_message_by_event(room, r.id.as_str()).await?
            && let Some(target) = Self::muc_id_of(&m)
        {
            let quote = self.linked_quote(room, &m.event_id).await;
            out.reply_to = Some(Reply { id: target, author: Some(format!("{muc}/{}", m.nick)), quote });
        }
        let mut correction = false;
        if let Some(original) = &extras.replaces
            && let Some(m) = self.store.linked_message_by_event(room, original.as_str()).await?
        {
            if m.from_xmpp || &m.matrix_user != from {
                return Err(DeliveryError::Permanent(format!(
                    "only your own messages can be edited; the edit did not reach {muc}"
                )));
            }
            correction = true;
            match m.message_id {
                Some(own) if features.correction => out.replaces = Some(StanzaId::new(own)),
                _ => text.body = muc_features::correction_text(&text.body),
            }
        }
        let mut addressees = vec![];
        for user in mentioned.iter().take(mentions::MAX_MENTIONS) {
            if let Some(nick) = self.nick_in_linked(room, muc, user).await? {
                addressees.push(Addressee { uri: mentions::occupant_uri(&muc.to_string(), &nick), nick });
            }
        }
        let (body, spans) = mentions::address(&text.body, &addressees);
        text.body = body;
        let message_id = self.stanza_id(id);
        if let Some(event) = event
            && !correction
        {
            let nick = self.nick_in_linked(room, muc, from).await?.unwrap_or_else(|| from.localpart().to_owned());
            let m = LinkedMessage {
                room: room.clone(),
                event_id: event.to_string(),
                muc: muc.clone(),
                nick,
                matrix_user: from.clone(),
                message_id: Some(message_id.clone()),
                stanza_id: None,
                from_xmpp: false,
            };
            self.store.save_linked_message(&m).await?;
        }
        let user = self.map.jid_for_matrix(from);
        let say = Outgoing::SayRemote { user, muc: muc.clone(), text, id: message_id, extras: out, mentions: spans };
        self.xmpp.deliver(say).await
    }

    /// A Matrix user's reactions (the full set) to a message, in the MUC.
    pub(super) async fn react_in_linked(
        &self,
        id: i64,
        room: &RoomId,
        muc: &BareJid,
        from: &MatrixUserId,
        target: &EventId,
        keys: &[String],
    ) -> Result<(), DeliveryError> {
        let Some(m) = self.store.linked_message_by_event(room, target.as_str()).await? else {
            return Err(DeliveryError::Permanent(format!("the reaction is to a message {muc} does not know")));
        };
        let user = self.map.jid_for_matrix(from);
        match m.stanza_id {
            Some(stanza_id) if self.linked_features(muc).await.reactions => {
                let act = XmppAct::Reactions { id: stanza_id, keys: keys.to_vec() };
                self.xmpp.deliver(Outgoing::ActRemote { user, muc: muc.clone(), id: self.stanza_id(id), act }).await
            }
            _ => {
                let quote = self.linked_quote(room, &m.event_id).await;
                let text = Text::plain(muc_features::reaction_text(keys, quote.as_deref()));
                self.say_fallback(id, user, muc, text).await
            }
        }
    }

    /// A Matrix user's redaction of their message, retracted in the MUC.
    pub(super) async fn retract_in_linked(
        &self,
        id: i64,
        room: &RoomId,
        muc: &BareJid,
        from: &MatrixUserId,
        target: &EventId,
    ) -> Result<(), DeliveryError> {
        let Some(m) = self.store.linked_message_by_event(room, target.as_str()).await? else {
            return Ok(()); // not a bridged message (a notice, say): nothing to retract
        };
        if m.from_xmpp || &m.matrix_user != from {
            return Err(DeliveryError::Permanent(format!(
                "only your own messages are retracted on XMPP; {muc} still shows the message you removed"
            )));
        }
        let user = self.map.jid_for_matrix(from);
        match m.stanza_id {
            Some(stanza_id) if self.linked_features(muc).await.retraction => {
                let act = XmppAct::Retract { id: stanza_id };
                self.xmpp.deliver(Outgoing::ActRemote { user, muc: muc.clone(), id: self.stanza_id(id), act }).await
            }
            // The redacted text is gone on Matrix: the fallback cannot quote it.
            _ => self.say_fallback(id, user, muc, Text::plain(muc_features::retraction_text(None))).await,
        }
    }

    async fn say_fallback(&self, id: i64, user: BareJid, muc: &BareJid, text: Text) -> Result<(), DeliveryError> {
        let say = Outgoing::SayRemote {
            user,
            muc: muc.clone(),
            text,
            id: self.stanza_id(id),
            extras: Extras::default(),
            mentions: vec![],
        };
        self.xmpp.deliver(say).await
    }
}
