//! Matrix events in direct chats, turned into XMPP traffic: messages (with their length
//! limit), files, reactions, redactions, encryption notices, and the invitation of a ghost that
//! makes a room a direct chat.

use crate::bridge::Bridge;
use crate::core::action::{Action, Text};
use crate::core::ids::{EventId, MatrixUserId, RoomId};
use crate::core::inbound::MatrixIn;
use crate::store::{DirectChat, PeerMembership, StoreTx};

impl Bridge {
    /// A Matrix user invited a ghost: that room becomes their direct chat.
    pub(in crate::bridge) async fn direct_invite(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        sender: MatrixUserId,
        user: MatrixUserId,
    ) -> crate::store::Result<Vec<Action>> {
        let Some(Ok(jid)) = self.map.jid_for_ghost(&user) else {
            return Ok(vec![]);
        };
        // A direct chat stays between its two people: another ghost invited into it,
        // or the same one invited by someone else, does not take it over.
        if let Some(existing) = tx.dm_by_room(&room).await?
            && (existing.xmpp != jid || existing.matrix != sender)
        {
            if existing.matrix == sender {
                // Its Matrix side adds a party: a room of their own for the three.
                return Ok(self.grow_direct_chat(&existing, &user).await);
            }
            tracing::info!(%room, %sender, %user, "an invitation would re-target a direct chat; declined");
            let notice = self.notice_in(
                &existing,
                &room,
                format!(
                    "This is {}'s chat with {}; {jid} can be reached in a direct chat of its own.",
                    existing.matrix, existing.xmpp
                ),
            );
            return Ok(if existing.xmpp == jid {
                vec![notice]
            } else {
                vec![Action::MatrixLeave { room, user }, notice]
            });
        }
        tx.save_dm(&DirectChat { room: room.clone(), xmpp: jid, matrix: sender, peer: PeerMembership::Joined }).await?;
        Ok(vec![Action::MatrixJoin { room, user }])
    }

    /// Joining a direct chat starts a conversation: a presence request of the XMPP side that
    /// overtook the join needs no approval any more.
    pub(in crate::bridge) async fn direct_joins(
        &self,
        joined: Vec<(RoomId, MatrixUserId)>,
    ) -> crate::store::Result<()> {
        for (room, user) in joined {
            if let Some(dm) = self.store.dm_by_room(&room).await?
                && dm.matrix == user
            {
                self.conversation_started(&user, &dm.xmpp).await;
            }
        }
        Ok(())
    }

    /// The actions for an event in `chat`, sent by its Matrix side.
    pub(in crate::bridge) async fn direct_actions(
        &self,
        tx: &mut StoreTx,
        chat: DirectChat,
        event: MatrixIn,
    ) -> crate::store::Result<Vec<Action>> {
        Ok(match event {
            MatrixIn::File { room, sender, file, reply_to } => {
                return self.dm_file(tx, &chat, room, sender, file, reply_to).await;
            }
            MatrixIn::Reaction { room, sender, event_id, target, key } => {
                let r = crate::store::Reaction {
                    room,
                    target_event: target,
                    reactor: sender.to_string(),
                    key,
                    event_id: Some(event_id),
                };
                return self.dm_reaction(tx, &chat, r).await;
            }
            MatrixIn::Redaction { room, sender, redacts } => {
                return self.dm_redaction(tx, &chat, room, sender, redacts).await;
            }
            MatrixIn::Message { room, sender, event_id, text, reply_to, replaces, sent_at, .. } => {
                if let Some(why) = self.too_large_for_xmpp(&text.body, &self.map.jid_for_matrix(&sender), &chat.xmpp) {
                    let notice = format!("Your message was not delivered to {}: {why}.", chat.xmpp);
                    return Ok(vec![self.notice_in(&chat, &room, notice)]);
                }
                let nick = self.displayname(&sender);
                let event = Some((room, EventId::new(event_id)));
                let extras = crate::core::action::Extras {
                    reply_to: reply_to.map(|id| crate::core::action::Reply {
                        id: id.into(),
                        author: None,
                        quote: None,
                    }),
                    replaces: replaces.map(EventId::new),
                    file: None,
                    sent_at,
                };
                vec![Action::XmppChat { from: sender, to: chat.xmpp, nick, text, event, extras }]
            }
            MatrixIn::EncryptionEnabled { room, sender } => {
                let in_room = format!(
                    "This chat is now end-to-end encrypted. The bridge cannot read encrypted messages, so they will not reach {} on XMPP. Start a new chat without encryption to keep talking through the bridge.",
                    chat.xmpp
                );
                let to_xmpp = format!(
                    "[{sender} turned on end-to-end encryption; their encrypted messages cannot be bridged to you.]"
                );
                vec![self.notice_in(&chat, &room, in_room), self.notice_to_xmpp(&chat, &sender, to_xmpp)]
            }
            MatrixIn::Encrypted { room, sender } => {
                let in_room = format!(
                    "The bridge cannot read encrypted messages; your last message was not delivered to {}.",
                    chat.xmpp
                );
                let to_xmpp = format!("[{sender} sent an encrypted message that the bridge cannot read.]");
                vec![self.notice_in(&chat, &room, in_room), self.notice_to_xmpp(&chat, &sender, to_xmpp)]
            }
            MatrixIn::Unsupported { room, sender, what, .. } => {
                let to_xmpp = format!("[{sender} sent {what}, which the bridge cannot forward yet.]");
                let in_room =
                    format!("The bridge cannot forward {what} to {} yet; they were told that you sent it.", chat.xmpp);
                vec![self.notice_in(&chat, &room, in_room), self.notice_to_xmpp(&chat, &sender, to_xmpp)]
            }
            // Routed elsewhere (`Bridge::actions_for`): not a message of a direct chat.
            _ => vec![],
        })
    }

    /// The direct chat a room stands for, if the sender is its Matrix side (not an echo).
    pub(in crate::bridge) async fn direct_chat_for(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        sender: &MatrixUserId,
    ) -> crate::store::Result<Option<DirectChat>> {
        if self.map.is_bridge_user(sender) {
            return Ok(None);
        }
        // The cache holds only what is committed; a transaction with memberships in it cleared
        // it before its first event (`accept_matrix_transaction`), so its own changes are read
        // from the database.
        if let Some(chat) = self.cached_dm_in(room) {
            return Ok(Some(chat));
        }
        tx.dm_by_room(room).await
    }

    /// A notice in a direct chat, from the ghost (the bot is not in it).
    pub(super) fn notice_in(&self, chat: &DirectChat, room: &RoomId, body: String) -> Action {
        Action::MatrixPost {
            room: room.clone(),
            user: self.map.ghost_for(&chat.xmpp),
            text: Text::notice(body),
            nick: None,
        }
    }

    /// A text to the XMPP side of a direct chat, from the Matrix user.
    pub(super) fn notice_to_xmpp(&self, chat: &DirectChat, sender: &MatrixUserId, body: String) -> Action {
        Action::XmppChat {
            from: sender.clone(),
            to: chat.xmpp.clone(),
            nick: self.displayname(sender),
            text: Text::plain(body),
            event: None,
            extras: crate::core::action::Extras::default(),
        }
    }
}
