//! Handling a transaction of Matrix events: decide what each means for XMPP and queue it,
//! atomically with the record of the transaction id (so a retried transaction is a no-op).

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::action::{Action, Text};
use crate::core::ids::MatrixUserId;
use crate::core::inbound::{MatrixIn, Membership};
use crate::core::watch::Party;
use crate::store::{PeerMembership, StoreTx};

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
        // Memberships change direct chats: those of this transaction must be read as it
        // writes them, not from the cache.
        if events.iter().any(|e| matches!(e, MatrixIn::Membership { .. })) {
            self.forget_cached_dms();
        }
        let mut tx = self.store.begin().await?;
        if !tx.claim_transaction(txn_id).await? {
            tracing::debug!(txn_id, "transaction already processed");
            crate::core::metrics::transaction_duplicate();
            return Ok(());
        }
        let mut queued = Vec::new();
        let mut membership_changed = false;
        let control = self.control_room();
        let mut commands = vec![];
        let mut joined = vec![];
        let mut avatars = vec![];
        let (mut counted, now) = (vec![], crate::store::now_ms());
        for event in events {
            membership_changed |= matches!(event, MatrixIn::Membership { .. });
            if let MatrixIn::Membership { room, user, membership: Membership::Join, avatar_url, .. } = &event
                && !self.map.is_bridge_user(user)
            {
                joined.push((room.clone(), user.clone()));
                // A profile change is a join over a join: perhaps a new avatar.
                avatars.push((user.clone(), avatar_url.clone()));
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
            let actions = self.actions_for(&mut tx, event).await?;
            counted.extend(actions.iter().flat_map(|a| crate::core::journal::touches(a, now)));
            queued.extend(actions);
        }
        // The journals' message counts and the actions, in order: one batch for the whole
        // transaction (one round trip on SQLite).
        let rows = tx.enqueue_counted(None, &counted, queued).await?.unwrap_or_default();
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
        self.direct_joins(joined).await?;
        for (user, avatar_url) in avatars {
            self.matrix_avatar_seen(user, avatar_url);
        }
        self.dispatch(rows);
        Ok(())
    }

    /// Presence, typing and read markers from Matrix.
    async fn on_ephemeral(self: &Arc<Self>, event: MatrixIn) {
        match event {
            MatrixIn::Presence { user, state, status_msg } => self.matrix_presence(user, state, status_msg),
            // Hosted rooms first; otherwise perhaps a direct chat.
            MatrixIn::Typing { room, users } if !self.room_typing(&room, &users).await => {
                self.matrix_typing(room, users).await
            }
            // Hosted rooms, linked MUCs' rooms and SMS chats first; otherwise perhaps a direct chat.
            MatrixIn::Read { room, user, event_id }
                if !self.room_read(&room, &user, &event_id).await && !self.journal_room_read(&room, &user).await =>
            {
                self.matrix_read(room, user, event_id).await
            }
            _ => {}
        }
    }

    /// Can this event lead to an action or a state change? What the bridge's own users did to
    /// themselves (their messages, a ghost joining) cannot: those are echoes.
    fn matters(&self, event: &MatrixIn) -> bool {
        match event {
            // The assistant's own joins and leaves make it a hosted room's participant.
            MatrixIn::Membership { sender, user, .. } => {
                !self.map.is_bridge_user(user) || !self.map.is_bridge_user(sender) || self.is_chatbot(user)
            }
            // What the assistant says is content (for a hosted room's XMPP occupants), and an
            // XMPP user may address it through their ghost.
            MatrixIn::Message { sender, text, mentions, .. } => {
                !self.map.is_bridge_user(sender)
                    || self.is_chatbot(sender)
                    || self.may_address_chatbot(sender, &text.body, mentions)
            }
            MatrixIn::File { sender, .. } => !self.map.is_bridge_user(sender) || self.is_chatbot(sender),
            MatrixIn::Reaction { sender, .. }
            | MatrixIn::Redaction { sender, .. }
            | MatrixIn::EncryptionEnabled { sender, .. }
            | MatrixIn::Encrypted { sender, .. }
            | MatrixIn::Unsupported { sender, .. } => !self.map.is_bridge_user(sender),
            MatrixIn::Presence { user, .. } | MatrixIn::Read { user, .. } => !self.map.is_bridge_user(user),
            MatrixIn::Typing { .. } => true,
            // Room state matters to hosted rooms only; the handler ignores what it already knows.
            MatrixIn::PowerLevels { .. }
            | MatrixIn::Topic { .. }
            | MatrixIn::Name { .. }
            | MatrixIn::JoinRule { .. }
            | MatrixIn::Avatar { .. } => true,
        }
    }

    /// What an event means: the chatbot's invitation or removal is its own business, in any
    /// room; a message addressed to it in a room is answered besides being carried as usual.
    async fn actions_for(&self, tx: &mut StoreTx, event: MatrixIn) -> crate::store::Result<Vec<Action>> {
        if let Some(mut actions) = self.chatbot_membership(tx, &event).await? {
            // In a hosted room the assistant is also a participant, whom the XMPP occupants
            // see join, speak and leave (unless the usage policy turned the invitation down).
            let declined = actions.iter().any(|a| matches!(a, Action::MatrixLeave { .. }));
            if !declined
                && let Some(room) = event.room()
                && let Some(hosted) = self.hosted_room(room).await?
            {
                actions.extend(self.hosted_actions(tx, hosted, event).await?);
            }
            return Ok(actions);
        }
        let asked = self.chatbot_addressed(tx, &event).await?;
        let mut actions = match self.chatbot_echo(&event) {
            // The assistant's own: a participant's doings in a hosted room, nothing elsewhere.
            Some(true) => match event.room() {
                Some(room) => match self.hosted_room(room).await? {
                    Some(hosted) => self.hosted_actions(tx, hosted, event).await?,
                    None => vec![],
                },
                None => vec![],
            },
            // An XMPP user's question to it through their ghost: only asked.
            Some(false) => vec![],
            None => self.route_event(tx, event).await?,
        };
        actions.extend(asked);
        Ok(actions)
    }

    /// Of the bridge's own users' events, `matters` lets through only what concerns the
    /// assistant: `Some(true)` for its own (its membership, its messages and files),
    /// `Some(false)` for a ghost's message that may address it; `None`: no such echo.
    fn chatbot_echo(&self, event: &MatrixIn) -> Option<bool> {
        match event {
            MatrixIn::Membership { sender, user, .. } if self.is_chatbot(user) => {
                self.map.is_bridge_user(sender).then_some(true)
            }
            MatrixIn::Message { sender, .. } | MatrixIn::File { sender, .. } => {
                self.map.is_bridge_user(sender).then(|| self.is_chatbot(sender))
            }
            _ => None,
        }
    }

    /// Whether a ghost's message (an XMPP user's, in a room) may be a question to the
    /// assistant: only those are worth a transaction (most echoes are not).
    fn may_address_chatbot(&self, sender: &MatrixUserId, body: &str, mentions: &[MatrixUserId]) -> bool {
        let (Some(me), Some(bot)) = (self.map.chatbot(), self.chatbot.get()) else { return false };
        matches!(self.map.jid_for_ghost(sender), Some(Ok(_)))
            && crate::chatbot::trigger::addressed(body, &bot.settings.room_keywords(), mentions.contains(&me)).is_some()
    }

    /// Route an event to its conversation's kind: a hosted room, a linked MUC, a direct chat;
    /// what remains is memberships (invitations make direct chats), SMS chats and the bot's chat.
    async fn route_event(&self, tx: &mut StoreTx, event: MatrixIn) -> crate::store::Result<Vec<Action>> {
        if let Some(room) = event.room()
            && let Some(hosted) = self.hosted_room(room).await?
        {
            return self.hosted_actions(tx, hosted, event).await;
        }
        if let Some(room) = event.room()
            && let Some(muc) = self.linked_muc_of(room).await?
        {
            return self.linked_actions(tx, room.clone(), muc, event).await;
        }
        let direct = match &event {
            MatrixIn::Message { room, sender, .. }
            | MatrixIn::File { room, sender, .. }
            | MatrixIn::Reaction { room, sender, .. }
            | MatrixIn::Redaction { room, sender, .. }
            | MatrixIn::EncryptionEnabled { room, sender }
            | MatrixIn::Encrypted { room, sender }
            | MatrixIn::Unsupported { room, sender, .. } => self.direct_chat_for(tx, room, sender).await?,
            _ => None,
        };
        if let Some(chat) = direct {
            return self.direct_actions(tx, chat, event).await;
        }
        if let Some(actions) = self.sms_chat_content(tx, &event).await? {
            return Ok(actions);
        }
        Ok(match event {
            // Handled before the transaction (`on_ephemeral`).
            MatrixIn::Presence { .. } | MatrixIn::Typing { .. } | MatrixIn::Read { .. } => vec![],
            // State of rooms the bridge does not host.
            MatrixIn::PowerLevels { .. }
            | MatrixIn::Topic { .. }
            | MatrixIn::Name { .. }
            | MatrixIn::JoinRule { .. }
            | MatrixIn::Avatar { .. } => {
                vec![]
            }
            MatrixIn::Membership { room, sender, user, membership, displayname, is_direct, .. } => {
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
                    // Not a direct chat: a room of several people (a known direct chat or SMS
                    // chat keeps its meaning, whatever the invitation says).
                    let room_of_many =
                        !is_direct && tx.dm_by_room(&room).await?.is_none() && tx.sms_by_room(&room).await?.is_none();
                    if user == self.map.bot() && room_of_many {
                        // An offer to bridge the room (`hosted::adopt`).
                        return Ok(self.bot_invited_to_room(room, sender));
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
                    if room_of_many {
                        return Ok(self.ghost_invited_to_room(room, &sender, user));
                    }
                    // A Matrix user invited a ghost: that room becomes their direct chat.
                    return self.direct_invite(tx, room, sender, user).await;
                }
                self.remember_displayname(&user, displayname.as_deref());
                if membership == Membership::Invite
                    && !self.map.is_bridge_user(&sender)
                    && let Some(chat) = tx.dm_by_room(&room).await?
                    && chat.matrix == sender
                    && user != sender
                {
                    // A Matrix user invited into a direct chat by its Matrix side.
                    return Ok(self.grow_direct_chat(&chat, &user).await);
                }
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
            MatrixIn::Message { room, sender, event_id, text, .. } => {
                if let Some(actions) = self.chatbot_matrix_message(tx, &room, &sender, &text.body).await? {
                    return Ok(actions);
                }
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
                    // An answer sent as its own notice (a journal table in HTML) leaves this empty.
                    if !answer.is_empty() {
                        actions.insert(
                            0,
                            Action::MatrixPost { room, user: self.map.bot(), text: Text::notice(answer), nick: None },
                        );
                    }
                    return Ok(actions);
                }
                // In a room the bot was invited to: perhaps the answer to its offer.
                self.adoption_reply(&room, &sender, &text.body).unwrap_or_default()
            }
            // What the chatbot cannot read, in someone's chat with it: they are told.
            MatrixIn::File { room, sender, .. }
            | MatrixIn::EncryptionEnabled { room, sender }
            | MatrixIn::Encrypted { room, sender }
            | MatrixIn::Unsupported { room, sender, .. } => self.chatbot_cannot_read(tx, room, &sender).await?,
            // Not in a direct chat (or an echo): nothing to carry.
            MatrixIn::Reaction { .. } | MatrixIn::Redaction { .. } => vec![],
        })
    }
}
