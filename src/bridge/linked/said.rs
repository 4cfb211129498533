//! What occupants of a linked MUC say, carried to its Matrix room: messages with their reply,
//! correction, file and mentions, reactions and retractions. Every Matrix occupant receives a
//! copy of each; the first one accepted wins (the room's stanza id, else the sender's id). The
//! MUC reflecting a Matrix user's own message gives it the room's stanza id.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::action::{Action, Extras, Text, XmppTarget};
use crate::core::ids::{BareJid, MatrixUserId, RoomId, StanzaId};
use crate::core::inbound::XmppAct;
use crate::core::mentions;
use crate::core::muc_features;
use crate::core::outbox::DeliveryError;
use crate::core::xmpp_in::LinkedSaid;
use crate::matrix::client::{MatrixError, Relations};
use crate::store::LinkedMessage;

/// An occupant's message as the linked room's action carries it.
pub(in crate::bridge) struct LinkedSay<'a> {
    pub room: &'a RoomId,
    pub user: &'a MatrixUserId,
    pub muc: &'a BareJid,
    pub nick: &'a str,
    pub text: &'a Text,
    pub stanza_id: Option<&'a StanzaId>,
    pub message_id: Option<&'a StanzaId>,
    pub extras: &'a Extras<StanzaId>,
    pub mentions: &'a [(MatrixUserId, String)],
}

impl Bridge {
    /// A message (or reactions, or a retraction) said in a linked MUC, received at a Matrix
    /// user's address.
    pub async fn linked_message(self: &Arc<Self>, mut said: LinkedSaid) -> crate::store::Result<()> {
        let muc = said.muc.clone();
        let nick = said.nick.clone();
        let Some(room) = self.linked_room_of(&muc).await? else { return Ok(()) };
        let occupants = self.store.xmpp_occupants(&room).await?;
        if occupants.iter().any(|(_, n)| n == &nick) {
            // The MUC reflecting a Matrix user's own message: now it has the room's id.
            if let (Some(own), Some(sid)) = (&said.message_id, &said.stanza_id) {
                self.store.set_linked_stanza_id(&muc, own, sid).await?;
            }
            return Ok(());
        }
        // When it was written: the sender's `<delay>` if believable, never before the link.
        let received = crate::store::now_ms();
        let since = self.store.linked_since(&room).await?.unwrap_or(received).min(received);
        said.extras.sent_at = Some(crate::core::delay::written_at(said.extras.sent_at, received).max(since));
        let real = self.remote_real_jid(&muc, &nick);
        let dedupe = said.stanza_id.clone().or_else(|| said.message_id.clone());
        let action = match (said.act.clone(), &real) {
            (Some(act), Some(jid)) => {
                let user = self.map.ghost_for(jid);
                let by = |id: String| XmppTarget::Linked {
                    room: room.clone(),
                    muc: muc.clone(),
                    stanza_id: StanzaId::new(id),
                    nick: nick.clone(),
                };
                let own_id = said.message_id.clone().map(StanzaId::new);
                match act {
                    XmppAct::Reactions { id, keys } => {
                        Action::MatrixReactions { target: by(id), user, keys, stanza_id: own_id }
                    }
                    XmppAct::Retract { id } => Action::MatrixRetract { target: by(id), user, stanza_id: own_id },
                }
            }
            // A semi-anonymous room hides who is behind a nick: the bot says what they did.
            (Some(act), None) => {
                let what = match act {
                    XmppAct::Reactions { keys, .. } => muc_features::reaction_text(&keys, None),
                    XmppAct::Retract { .. } => muc_features::retraction_text(None),
                };
                let text = Text::notice(format!("{nick} {what}"));
                Action::MatrixPost { room: room.clone(), user: self.map.bot(), text, nick: None }
            }
            (None, _) => self.linked_say_action(&room, &occupants, said, real.as_ref()),
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

    /// The action posting an occupant's message: by their ghost, or by the bot with their nick.
    fn linked_say_action(
        &self,
        room: &RoomId,
        occupants: &[(MatrixUserId, String)],
        said: LinkedSaid,
        real: Option<&BareJid>,
    ) -> Action {
        let LinkedSaid { muc, nick, stanza_id, message_id, body, extras, mentions: uris, .. } = said;
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
        let mentioned = self.linked_mentions(&muc, occupants, &body, &uris);
        let (user, text) = match real {
            Some(jid) => (self.map.ghost_for(jid), Text::plain(body)),
            None => (poster, Text::plain(format!("{nick}: {body}"))),
        };
        Action::MatrixLinkedSay {
            room: room.clone(),
            user,
            muc,
            nick,
            text,
            stanza_id: stanza_id.map(StanzaId::new),
            message_id: message_id.map(StanzaId::new),
            extras,
            mentions: mentioned,
        }
    }

    /// Whom a MUC message mentions, on Matrix, with the name it calls them by: its XEP-0372
    /// references (an occupant, a Matrix user's address, an XMPP user as their ghost) and the
    /// nick it starts with.
    fn linked_mentions(
        &self,
        muc: &BareJid,
        occupants: &[(MatrixUserId, String)],
        body: &str,
        uris: &[String],
    ) -> Vec<(MatrixUserId, String)> {
        let by_nick = |nick: &str| -> Option<MatrixUserId> {
            match occupants.iter().find(|(_, n)| n == nick) {
                Some((user, _)) => Some(user.clone()),
                None => self.remote_real_jid(muc, nick).map(|jid| self.map.ghost_for(&jid)),
            }
        };
        let mut found: Vec<(MatrixUserId, String)> = vec![];
        for uri in uris.iter().take(mentions::MAX_MENTIONS) {
            let Some(address) = mentions::xmpp_uri_address(uri) else { continue };
            let (bare, resource) = match address.split_once('/') {
                Some((b, r)) => (b, Some(r)),
                None => (address.as_str(), None),
            };
            let Ok(jid) = BareJid::parse(bare) else { continue };
            let hit = match resource {
                Some(nick) if &jid == muc => by_nick(nick).map(|u| (u, nick.to_owned())),
                _ if jid.domain() == self.map.component => {
                    let user = jid.local().and_then(|l| self.map.matrix_for_jid(l).ok());
                    user.map(|u| {
                        let name = occupants.iter().find(|(o, _)| o == &u).map(|(_, n)| n.clone());
                        (u, name.unwrap_or_else(|| jid.to_string()))
                    })
                }
                _ => {
                    let name = self.remote_nick_of(muc, &jid).unwrap_or_else(|| jid.to_string());
                    Some((self.map.ghost_for(&jid), name))
                }
            };
            if let Some(hit) = hit
                && !found.iter().any(|(u, _)| u == &hit.0)
            {
                found.push(hit);
            }
        }
        if let Some(nick) = mentions::nick_at_start(body)
            && let Some(user) = by_nick(nick)
            && !found.iter().any(|(u, _)| u == &user)
            && found.len() < mentions::MAX_MENTIONS
        {
            found.push((user, nick.to_owned()));
        }
        found
    }

    /// Post an occupant's message, its references resolved to events now, and record it.
    pub(in crate::bridge) async fn deliver_linked_say(&self, id: i64, say: LinkedSay<'_>) -> Result<(), DeliveryError> {
        if self.map.jid_for_ghost(say.user).is_some() {
            // Under its own name: a MUC nick names the ghost in this room only (its member
            // event), never in its profile, which every room shows.
            self.ensure_xmpp_ghost(say.user).await?;
        }
        let reply_to = match &say.extras.reply_to {
            Some(r) => self.store.linked_message_by_stanza(say.muc, r.id.as_str()).await?.map(|m| m.event_id),
            None => None,
        };
        let replaces = match &say.extras.replaces {
            Some(own) => match self.store.linked_message_by_own_id(say.muc, say.nick, own.as_str()).await? {
                Some(m) if m.from_xmpp => Some(m.event_id),
                _ => None,
            },
            None => None,
        };
        let users: Vec<MatrixUserId> = say.mentions.iter().map(|(u, _)| u.clone()).collect();
        let sent_at = say.extras.sent_at;
        let relations =
            Relations { reply_to: reply_to.as_deref(), replaces: replaces.as_deref(), mentions: &users, sent_at };
        let file = say.extras.file.as_ref();
        let event_id = self
            .post_mentioning(id, say.room, say.user, say.text, relations, file, say.mentions)
            .await
            .map_err(MatrixError::into_delivery)?;
        if replaces.is_none() {
            let m = LinkedMessage {
                room: say.room.clone(),
                event_id,
                muc: say.muc.clone(),
                nick: say.nick.to_owned(),
                matrix_user: say.user.clone(),
                message_id: say.message_id.map(|s| s.to_string()),
                stanza_id: say.stanza_id.map(|s| s.to_string()),
                from_xmpp: true,
            };
            self.store.save_linked_message(&m).await?;
        }
        Ok(())
    }
}
