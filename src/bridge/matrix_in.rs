//! Handling a transaction of Matrix events: decide what each means for XMPP and queue it,
//! atomically with the record of the transaction id (so a retried transaction is a no-op).

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::action::{Action, Text};
use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::inbound::{MatrixIn, Membership};
use crate::core::watch::Party;
use crate::store::{DmPortal, PeerMembership, StoreTx};

impl Bridge {
    pub async fn accept_matrix_transaction(
        self: &Arc<Self>,
        txn_id: &str,
        mut events: Vec<MatrixIn>,
    ) -> crate::store::Result<()> {
        // Most transactions only echo what the bridge's own users did; they cause nothing, so
        // they need neither de-duplication nor a database round trip.
        events.retain(|e| self.matters(e));
        let (ephemeral, events): (Vec<_>, Vec<_>) = events.into_iter().partition(MatrixIn::is_ephemeral);
        // Presence, typing and read markers are passed on at once and not de-duplicated: a
        // repeat of one is harmless, and losing one in a crash costs only a moment's state.
        for event in ephemeral {
            self.on_ephemeral(event).await;
        }
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.begin().await?;
        if !tx.claim_transaction(txn_id).await? {
            tracing::debug!(txn_id, "transaction already processed");
            return Ok(());
        }
        let mut rows = Vec::new();
        let mut membership_changed = false;
        let control = self.control_room();
        let mut commands = vec![];
        let mut joined = vec![];
        for event in events {
            membership_changed |= matches!(event, MatrixIn::Membership { .. });
            if let MatrixIn::Membership { room, user, membership: Membership::Join, .. } = &event
                && !self.map.is_bridge_user(user)
            {
                joined.push((room.clone(), user.clone()));
            }
            if let MatrixIn::Message { room, sender, text, event_id, reply_to, .. } = &event
                && Some(room) == control.as_ref()
            {
                // Run after the commit: commands write through their own transactions.
                commands.push((sender.clone(), text.body.clone(), event_id.clone(), reply_to.clone()));
                continue;
            }
            if let MatrixIn::File { room, sender, file, .. } = &event
                && Some(room) == control.as_ref()
            {
                commands.push((sender.clone(), String::new(), file.event_id.clone(), None));
                self.remember_upload(sender, file.clone());
                continue;
            }
            for action in self.actions_for(&mut tx, event).await? {
                rows.push(tx.enqueue_row(action).await?);
            }
        }
        tx.commit().await?;
        let mut replies = vec![];
        for (sender, body, event_id, reply_to) in commands {
            let reply = if body.is_empty() {
                self.control_room_upload(&sender, &event_id)
            } else {
                self.control_room_message(&sender, &body, &event_id, reply_to).await
            };
            replies.extend(reply);
        }
        self.queue_all(replies).await?;
        self.after_commands().await;
        if membership_changed {
            self.forget_cached_dms();
        }
        // Joining a direct chat starts a conversation: a presence request of the XMPP side
        // that overtook the join needs no approval any more.
        for (room, user) in joined {
            if let Some(dm) = self.store.dm_by_room(&room).await?
                && dm.matrix == user
            {
                self.conversation_started(&user, &dm.xmpp).await;
            }
        }
        self.dispatch(rows);
        Ok(())
    }

    /// Can this event lead to an action or a state change? What the bridge's own users did to
    /// themselves (their messages, a ghost joining) cannot: those are echoes.
    fn matters(&self, event: &MatrixIn) -> bool {
        match event {
            MatrixIn::Membership { sender, user, .. } => {
                !self.map.is_bridge_user(user) || !self.map.is_bridge_user(sender)
            }
            MatrixIn::Message { sender, .. }
            | MatrixIn::File { sender, .. }
            | MatrixIn::Reaction { sender, .. }
            | MatrixIn::Redaction { sender, .. }
            | MatrixIn::EncryptionEnabled { sender, .. }
            | MatrixIn::Encrypted { sender, .. }
            | MatrixIn::Unsupported { sender, .. } => !self.map.is_bridge_user(sender),
            MatrixIn::Presence { user, .. } | MatrixIn::Read { user, .. } => !self.map.is_bridge_user(user),
            MatrixIn::Typing { .. } => true,
            // Room state matters to bridged rooms only; the handler ignores what it already knows.
            MatrixIn::PowerLevels { .. }
            | MatrixIn::Topic { .. }
            | MatrixIn::Name { .. }
            | MatrixIn::JoinRule { .. } => true,
        }
    }

    async fn actions_for(&self, tx: &mut StoreTx, event: MatrixIn) -> crate::store::Result<Vec<Action>> {
        let max = self.current_config().limits.max_message_bytes;
        if let Some(room) = event.room()
            && let Some(bridged) = self.bridged_room(room).await?
        {
            return self.room_actions(tx, bridged, event).await;
        }
        if let Some(room) = event.room()
            && let Some(muc) = self.portal_muc(room).await?
        {
            return self.portal_actions(tx, room.clone(), muc, event).await;
        }
        Ok(match event {
            // Handled before the transaction (`on_ephemeral`).
            MatrixIn::Presence { .. } | MatrixIn::Typing { .. } | MatrixIn::Read { .. } => vec![],
            // State of rooms the bridge does not host.
            MatrixIn::PowerLevels { .. }
            | MatrixIn::Topic { .. }
            | MatrixIn::Name { .. }
            | MatrixIn::JoinRule { .. } => {
                vec![]
            }
            MatrixIn::Membership { room, sender, user, membership, displayname, .. } => {
                if self.map.is_bridge_user(&user) {
                    if membership != Membership::Invite || self.map.is_bridge_user(&sender) {
                        return Ok(vec![]);
                    }
                    // The usage policy: an account on a server the bridge does not serve gets
                    // neither the bot nor a ghost; the invitation is declined.
                    if !self.may_use(&crate::core::watch::Party::Matrix(sender.clone())).await {
                        tracing::info!(%sender, %user, %room, "invitation declined by the usage policy");
                        return Ok(vec![Action::MatrixLeave { room, user }]);
                    }
                    if user == self.map.bot() {
                        // A Matrix user invited the bot: their chat with it, for commands.
                        tx.save_bot_dm(&sender, &room).await?;
                        let welcome = Text::notice(format!(
                            "Hello! I am the bridge to XMPP. To write to alice@example.org, start a chat with {}.\n{}",
                            self.map.ghost_for(&crate::core::ids::BareJid::new_unchecked(
                                Some("alice".into()),
                                "example.org".into()
                            )),
                            crate::commands::user::help()
                        ));
                        return Ok(vec![
                            Action::MatrixJoin { room: room.clone(), user: user.clone() },
                            Action::MatrixPost { room, user, text: welcome, nick: None },
                        ]);
                    }
                    if let Some(phone) = self.map.phone_for_ghost(&user) {
                        return self.sms_invite(tx, room, sender, user, phone).await;
                    }
                    // A Matrix user invited a ghost: that room becomes their direct chat.
                    let Some(Ok(jid)) = self.map.jid_for_ghost(&user) else {
                        return Ok(vec![]);
                    };
                    // A direct chat stays between its two people: another ghost invited into it,
                    // or the same one invited by someone else, does not take it over.
                    if let Some(existing) = tx.dm_by_room(&room).await?
                        && (existing.xmpp != jid || existing.matrix != sender)
                    {
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
                    tx.save_dm(&DmPortal {
                        room: room.clone(),
                        xmpp: jid,
                        matrix: sender,
                        peer: PeerMembership::Joined,
                    })
                    .await?;
                    return Ok(vec![Action::MatrixJoin { room, user }]);
                }
                self.remember_displayname(&user, displayname.as_deref());
                let peer = match membership {
                    Membership::Join => PeerMembership::Joined,
                    Membership::Invite => PeerMembership::Invited,
                    Membership::Leave | Membership::Ban => PeerMembership::Left,
                    Membership::Knock => return Ok(vec![]),
                };
                if peer == PeerMembership::Left && tx.sms_by_room(&room).await?.is_some() {
                    // Their SMS chat is gone: the next incoming SMS opens a new one.
                    tx.forget_sms_room(&room).await?;
                }
                tx.set_peer_membership(&room, &user, peer).await?;
                vec![]
            }
            MatrixIn::File { room, sender, file, reply_to } => {
                let Some(portal) = self.portal_for(tx, &room, &sender).await? else {
                    return Ok(vec![]);
                };
                return self.dm_file(tx, &portal, room, sender, file, reply_to).await;
            }
            MatrixIn::Reaction { room, sender, event_id, target, key } => {
                let Some(portal) = self.portal_for(tx, &room, &sender).await? else {
                    return Ok(vec![]);
                };
                let r = crate::store::Reaction {
                    room,
                    target_event: target,
                    reactor: sender.to_string(),
                    key,
                    event_id: Some(event_id),
                };
                return self.dm_reaction(tx, &portal, r).await;
            }
            MatrixIn::Redaction { room, sender, redacts } => {
                let Some(portal) = self.portal_for(tx, &room, &sender).await? else {
                    return Ok(vec![]);
                };
                return self.dm_redaction(tx, &portal, room, sender, redacts).await;
            }
            MatrixIn::Message { room, sender, event_id, text, reply_to, replaces } => {
                let Some(portal) = self.portal_for(tx, &room, &sender).await? else {
                    if !self.map.is_bridge_user(&sender)
                        && let Some(conversation) = tx.sms_by_room(&room).await?
                    {
                        return self.sms_from_matrix(tx, room, sender, event_id, text, conversation).await;
                    }
                    // Not a direct chat with a ghost: perhaps the sender's chat with the bot.
                    if tx.is_bot_dm(&sender, &room).await? {
                        let mut actions = vec![];
                        let answer = self
                            .run_user_command(tx, &Party::Matrix(sender), &text.body, Some(&room), &mut actions)
                            .await?;
                        actions.insert(
                            0,
                            Action::MatrixPost { room, user: self.map.bot(), text: Text::notice(answer), nick: None },
                        );
                        return Ok(actions);
                    }
                    return Ok(vec![]);
                };
                if text.body.len() > max {
                    let notice = format!(
                        "Your message ({} bytes) is longer than the bridge's limit of {max} bytes and was not delivered to {}.",
                        text.body.len(),
                        portal.xmpp
                    );
                    return Ok(vec![self.notice_in(&portal, &room, notice)]);
                }
                let nick = self.displayname(&sender);
                let event = Some((room, event_id));
                let extras = crate::core::action::Extras {
                    reply_to: reply_to.map(|id| crate::core::action::Reply { id, author: None, quote: None }),
                    replaces,
                    file: None,
                };
                vec![Action::XmppChat { from: sender, to: portal.xmpp, nick, text, event, extras }]
            }
            MatrixIn::EncryptionEnabled { room, sender } => {
                let Some(portal) = self.portal_for(tx, &room, &sender).await? else {
                    return Ok(vec![]);
                };
                let in_room = format!(
                    "This chat is now end-to-end encrypted. The bridge cannot read encrypted messages, so they will not reach {} on XMPP. Start a new chat without encryption to keep talking through the bridge.",
                    portal.xmpp
                );
                let to_xmpp = format!(
                    "[{sender} turned on end-to-end encryption; their encrypted messages cannot be bridged to you.]"
                );
                vec![self.notice_in(&portal, &room, in_room), self.notice_to_xmpp(&portal, &sender, to_xmpp)]
            }
            MatrixIn::Encrypted { room, sender } => {
                let Some(portal) = self.portal_for(tx, &room, &sender).await? else {
                    return Ok(vec![]);
                };
                let in_room = format!(
                    "The bridge cannot read encrypted messages; your last message was not delivered to {}.",
                    portal.xmpp
                );
                let to_xmpp = format!("[{sender} sent an encrypted message that the bridge cannot read.]");
                vec![self.notice_in(&portal, &room, in_room), self.notice_to_xmpp(&portal, &sender, to_xmpp)]
            }
            MatrixIn::Unsupported { room, sender, what, .. } => {
                let Some(portal) = self.portal_for(tx, &room, &sender).await? else {
                    return Ok(vec![]);
                };
                let to_xmpp = format!("[{sender} sent {what}, which the bridge cannot forward yet.]");
                let in_room = format!(
                    "The bridge cannot forward {what} to {} yet; they were told that you sent it.",
                    portal.xmpp
                );
                vec![self.notice_in(&portal, &room, in_room), self.notice_to_xmpp(&portal, &sender, to_xmpp)]
            }
        })
    }

    /// The direct chat a room stands for, if the sender is its Matrix side (not an echo).
    async fn portal_for(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        sender: &MatrixUserId,
    ) -> crate::store::Result<Option<DmPortal>> {
        if self.map.is_bridge_user(sender) {
            return Ok(None);
        }
        tx.dm_by_room(room).await
    }

    /// A notice in a direct chat, from the ghost (the bot is not in it).
    pub(super) fn notice_in(&self, portal: &DmPortal, room: &RoomId, body: String) -> Action {
        Action::MatrixPost {
            room: room.clone(),
            user: self.map.ghost_for(&portal.xmpp),
            text: Text::notice(body),
            nick: None,
        }
    }

    /// A text to the XMPP side of a direct chat, from the Matrix user.
    pub(super) fn notice_to_xmpp(&self, portal: &DmPortal, sender: &MatrixUserId, body: String) -> Action {
        Action::XmppChat {
            from: sender.clone(),
            to: portal.xmpp.clone(),
            nick: self.displayname(sender),
            text: Text::plain(body),
            event: None,
            extras: crate::core::action::Extras::default(),
        }
    }
}
