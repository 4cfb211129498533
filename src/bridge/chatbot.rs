//! The chatbot as a user of both networks (`crate::chatbot` is the library): a Matrix user in
//! the appservice namespace (`@assistant:hs`) whom people invite to a one-to-one room, and an
//! address under the component (`assistant@component`) XMPP users write to. A message to it is
//! queued as an `Action::ChatbotMessage` on the person's own lane; delivering that action checks
//! the `chatbot` permission, runs `/clear` or asks the provider with the person's stored context,
//! and sends the answer (or a short friendly error) back as the chatbot.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::chatbot::Input;
use crate::chatbot::limits::LimitRefusal;
use crate::core::action::{Action, Text, TextKind};
use crate::core::ids::{BareJid, EventId, MatrixUserId, RoomId};
use crate::core::inbound::{MatrixIn, Membership, XmppChatIn};
use crate::core::outbox::DeliveryError;
use crate::core::refusal::Refusal;
use crate::core::watch::Party;
use crate::matrix::client::{MatrixError, Relations};
use crate::store::StoreTx;
use crate::xmpp::out::Outgoing;

/// The permission admins grant (`permissions grant USER chatbot`).
const PERMISSION: &str = "chatbot";

pub(super) const REFUSAL: &str = "Sorry, you may not use the AI assistant. An administrator can allow it \
                       (the chatbot permission).";
/// The assistant's presence note while its provider does not answer.
pub(super) const AWAY_NOTE: &str = "The AI service is not reachable";
const CLEARED: &str = "Done: I have forgotten our conversation. The next question starts afresh.";
const CLEARED_ROOM: &str = "Done: I have forgotten this room's conversation. The next question starts afresh.";

/// Where the chatbot's answer goes: into `room` on Matrix (as a reply to `reply_to`, in a
/// shared room), into the MUC `muc` on an XMPP server, else to `party`'s XMPP address.
/// `party` is who asked (in a MUC: who invited the assistant).
pub(super) struct To<'a> {
    pub party: &'a Party,
    pub room: Option<&'a RoomId>,
    pub reply_to: Option<&'a EventId>,
    pub muc: Option<&'a BareJid>,
}

impl To<'_> {
    /// Whose context a question is asked in: the room's or MUC's (shared by everyone in it),
    /// else the person's.
    fn context(&self) -> String {
        match (self.room, self.reply_to, self.muc) {
            (_, _, Some(muc)) => muc_context(muc),
            (Some(room), Some(_), None) => room_context(room),
            _ => self.party.key(),
        }
    }

    /// Asked in a room or MUC of several people.
    fn shared(&self) -> bool {
        self.reply_to.is_some() || self.muc.is_some()
    }
}

/// The context of a room of several people, shared by all in it.
fn room_context(room: &RoomId) -> String {
    format!("room:{room}")
}

/// The context of a MUC on an XMPP server, shared by all in it.
pub(super) fn muc_context(muc: &BareJid) -> String {
    format!("muc:{muc}")
}

impl Bridge {
    /// Someone changed the chatbot's membership of a room, whatever the room (a direct chat, a
    /// hosted room, a linked MUC's room, any other): an invitation, which it accepts, or its
    /// removal (by a moderator), after which the room is forgotten. `None`: not about it.
    pub(super) async fn chatbot_membership(
        &self,
        tx: &mut StoreTx,
        event: &MatrixIn,
    ) -> crate::store::Result<Option<Vec<Action>>> {
        let MatrixIn::Membership { room, sender, user, membership, is_direct, .. } = event else { return Ok(None) };
        let Some(me) = self.map.chatbot() else { return Ok(None) };
        if *user != me || self.map.is_bridge_user(sender) {
            return Ok(None);
        }
        match membership {
            Membership::Invite => {
                // The usage policy: someone the bridge does not serve does not get the assistant.
                if !self.may_use(&Party::Matrix(sender.clone())).await {
                    tracing::info!(%sender, %room, "chatbot: invitation declined by the usage policy");
                    return Ok(Some(vec![Action::MatrixLeave { room: room.clone(), user: me }]));
                }
                self.chatbot_invite(tx, room.clone(), sender.clone(), me, !is_direct).await.map(Some)
            }
            Membership::Leave | Membership::Ban => {
                tracing::info!(%room, %sender, "chatbot: removed from a room");
                tx.forget_chatbot_room(room).await?;
                Ok(Some(vec![]))
            }
            Membership::Join | Membership::Knock => Ok(Some(vec![])),
        }
    }

    /// What the assistant says on joining a room or MUC of several people.
    pub(super) fn chatbot_room_welcome(&self) -> String {
        let keywords = self.chatbot.get().map(|c| c.settings.room_keywords()).unwrap_or_default();
        format!(
            "Hello! I am an AI assistant. I answer messages that start with or mention {} (or mention \
             me); /clear makes me forget this room's conversation.",
            keywords.join(" or ")
        )
    }

    /// A Matrix user invited the chatbot: a direct chat becomes their chat with it; any other
    /// room is shared by the people in it (`shared`).
    async fn chatbot_invite(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        sender: MatrixUserId,
        chatbot: MatrixUserId,
        shared: bool,
    ) -> crate::store::Result<Vec<Action>> {
        let party = Party::Matrix(sender);
        tx.save_chatbot_room(&room, &party, shared).await?;
        let welcome = if shared {
            self.chatbot_room_welcome()
        } else if self.chatbot_permitted(&party).await? {
            "Hello! I am an AI assistant. Ask me anything; /clear makes me forget our conversation.".to_owned()
        } else {
            REFUSAL.to_owned()
        };
        Ok(vec![
            Action::MatrixJoin { room: room.clone(), user: chatbot.clone() },
            Action::MatrixPost { room, user: chatbot, text: Text::notice(welcome), nick: None },
        ])
    }

    /// A Matrix message: if it is someone's message in their chat with the chatbot, the action
    /// that answers it (`None`: not a chatbot room, or not its owner's message).
    pub(super) async fn chatbot_matrix_message(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        sender: &MatrixUserId,
        body: &str,
    ) -> crate::store::Result<Option<Vec<Action>>> {
        if self.map.chatbot().is_none() {
            return Ok(None);
        }
        let from = Party::Matrix(sender.clone());
        match tx.chatbot_room_owner(room).await? {
            Some(owner) if owner == from => Ok(Some(vec![Action::ChatbotMessage {
                from,
                room: Some(room.clone()),
                text: body.to_owned(),
                in_room: None,
                muc: None,
            }])),
            // Someone else in a person's chat with the chatbot: it talks with its owner only.
            Some(_) => Ok(Some(vec![])),
            None => Ok(None),
        }
    }

    /// A message in a room the chatbot shares with several people: asked if it is addressed
    /// to the chatbot (a keyword or a mention), otherwise none of its business.
    pub(super) async fn chatbot_addressed(
        &self,
        tx: &mut StoreTx,
        event: &MatrixIn,
    ) -> crate::store::Result<Vec<Action>> {
        // A correction is not asked again.
        let MatrixIn::Message { room, sender, event_id, text, mentions, replaces: None, .. } = event else {
            return Ok(vec![]);
        };
        let (Some(me), Some(bot)) = (self.map.chatbot(), self.chatbot.get()) else { return Ok(vec![]) };
        // An XMPP occupant speaks through their ghost and asks as themselves; the assistant's
        // own answers and the bridge's notices are never questions (its welcome names its
        // keywords).
        let from = self.party_of(sender);
        if self.map.is_bridge_user(sender) && !matches!(from, Party::Xmpp(_)) {
            return Ok(vec![]);
        }
        if !tx.chatbot_room(room).await?.is_some_and(|r| r.shared) {
            return Ok(vec![]);
        }
        let keywords = bot.settings.room_keywords();
        let Some(question) = crate::chatbot::trigger::addressed(&text.body, &keywords, mentions.contains(&me)) else {
            return Ok(vec![]);
        };
        Ok(vec![Action::ChatbotMessage {
            from,
            room: Some(room.clone()),
            text: question.to_owned(),
            in_room: Some(EventId::new(event_id.clone())),
            muc: None,
        }])
    }

    /// Something other than text (a file, encryption, an unsupported event) in someone's chat
    /// with the chatbot: a notice that it reads only text (no actions elsewhere).
    pub(super) async fn chatbot_cannot_read(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        sender: &MatrixUserId,
    ) -> crate::store::Result<Vec<Action>> {
        let Some(me) = self.map.chatbot() else { return Ok(vec![]) };
        if tx.chatbot_room_owner(&room).await? != Some(Party::Matrix(sender.clone())) {
            return Ok(vec![]);
        }
        let text = Text::notice(
            "Sorry, I can read only plain text messages, not files or encrypted messages. \
             (In an encrypted chat, start a new one without encryption.)",
        );
        Ok(vec![Action::MatrixPost { room, user: me, text, nick: None }])
    }

    /// An XMPP message to the chatbot's address: queued like any accepted message (a resent
    /// stanza is not asked twice).
    pub(super) async fn accept_chatbot_xmpp(self: &Arc<Self>, chat: XmppChatIn) -> Result<(), Refusal> {
        if let Some(why) = self.body_too_long(&chat.body) {
            return Err(Refusal::policy(why));
        }
        let from = chat.from.to_string();
        let stanza_id = chat.stanza_id.as_ref().map(crate::core::ids::StanzaId::as_str);
        let action = Action::ChatbotMessage {
            from: Party::Xmpp(chat.from.clone()),
            room: None,
            text: chat.body,
            in_room: None,
            muc: None,
        };
        self.queue_claimed(&from, stanza_id, action, "a message to the chatbot").await?;
        Ok(())
    }

    /// May `who` use the chatbot? Everyone (`chatbot.everyone`), by a grant to them, or as a
    /// member of a group named in `chatbot.groups`.
    pub(super) async fn chatbot_permitted(&self, who: &Party) -> crate::store::Result<bool> {
        let Some(bot) = self.chatbot.get() else { return Ok(false) };
        if bot.settings.everyone || self.store.has_permission(who, PERMISSION).await? {
            return Ok(true);
        }
        for group in &bot.settings.groups {
            if self.store.group_members(group).await?.is_some_and(|members| members.contains(who)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Why `who` may not ask now, if a limit says so (`chatbot.limits`).
    async fn chatbot_over_limit(
        &self,
        bot: &crate::chatbot::Chatbot,
        who: &Party,
    ) -> crate::store::Result<Option<LimitRefusal>> {
        let limits = &bot.settings.limits;
        if limits.daily_tokens_per_user.is_some() || limits.daily_tokens_total.is_some() {
            let (mine, all) = self.store.chatbot_tokens_today(who).await?;
            if let Err(refusal) = limits.check_budget(mine, all) {
                return Ok(Some(refusal));
            }
        }
        if let Some(per_minute) = limits.messages_per_minute
            && !bot.rate.allow(&who.key(), per_minute, std::time::Instant::now())
        {
            return Ok(Some(LimitRefusal::Rate(per_minute)));
        }
        Ok(None)
    }

    /// Deliver `Action::ChatbotMessage` `id`: refuse, clear, or ask and answer. A retry after
    /// the answer was stored (its sending failed) sends the stored answer, without asking again.
    /// `to` says where the answer goes and so whose context it is (`To::context`).
    pub(super) async fn deliver_chatbot(&self, id: i64, to: &To<'_>, text: &str) -> Result<(), DeliveryError> {
        let Some(bot) = self.chatbot.get() else {
            return Err(DeliveryError::Permanent("the chatbot is off".into()));
        };
        let (from, room) = (to.party, to.room);
        if let Some(answer) = self.store.chatbot_answer_of(id).await? {
            return self.chatbot_say(id, to, Text::plain(answer)).await;
        }
        if !self.chatbot_permitted(from).await? {
            tracing::info!(%from, "chatbot: refused (no permission)");
            return self.chatbot_say(id, to, Text::notice(REFUSAL)).await;
        }
        let context = to.context();
        let input = Input::parse(text, &bot.settings.image_keywords);
        if input != Input::Clear
            && let Some(refusal) = self.chatbot_over_limit(bot, from).await?
        {
            tracing::info!(%from, reason = %refusal, "chatbot: refused (limit)");
            return self.chatbot_say(id, to, Text::notice(refusal.to_string())).await;
        }
        let question = match input {
            Input::Image(prompt) => return self.chatbot_image(id, bot, to, prompt).await,
            Input::Clear => {
                let forgotten = self.store.chatbot_clear(&context).await?;
                tracing::info!(%from, %context, forgotten, "chatbot: context cleared");
                let done = if to.shared() { CLEARED_ROOM } else { CLEARED };
                return self.chatbot_say(id, to, Text::notice(done)).await;
            }
            Input::Ask(question) => question,
        };
        let turns = self.store.chatbot_turns(&context).await?;
        let history: Vec<_> = turns.iter().map(|t| t.message.clone()).collect();
        let (messages, dropped) = bot.prompt(&history, question);
        self.chatbot_typing(to, true).await;
        let result = bot.provider.complete(&messages).await;
        self.chatbot_typing(to, false).await;
        let reachable = match &result {
            Ok(_) => Some(true),
            Err(e) if e.means_unreachable() => Some(false),
            Err(_) => None,
        };
        let keep_from = turns.get(dropped).map(|t| t.id);
        let sent = self.chatbot_answer(id, to, &context, question, result, keep_from, messages.len()).await;
        // After the answer: Synapse makes a user who sends a message `online` again, so an away
        // presence is set (again) once the message is out.
        if let Some(reachable) = reachable {
            self.chatbot_reachable(reachable, room.is_some() && !reachable).await;
        }
        sent
    }

    /// Store the provider's answer (forgetting the turns before `keep_from`) and send it, or
    /// send the friendly error.
    #[allow(clippy::too_many_arguments)]
    async fn chatbot_answer(
        &self,
        id: i64,
        to: &To<'_>,
        context: &str,
        question: &str,
        result: Result<crate::chatbot::Completion, crate::chatbot::ChatError>,
        keep_from: Option<i64>,
        turns_sent: usize,
    ) -> Result<(), DeliveryError> {
        let from = to.party;
        match result {
            Ok(answer) => {
                tracing::info!(
                    %from,
                    turns_sent,
                    prompt_tokens = answer.usage.prompt_tokens,
                    completion_tokens = answer.usage.completion_tokens,
                    "chatbot: answered"
                );
                self.store.chatbot_record(context, keep_from, question, &answer.content, id).await?;
                // A server that reports no usage is counted by the estimate.
                let tokens = match answer.usage.total_tokens {
                    0 => {
                        u64::from(crate::chatbot::context::estimate_tokens(question))
                            + u64::from(crate::chatbot::context::estimate_tokens(&answer.content))
                    }
                    n => n,
                };
                self.store.chatbot_add_usage(from, tokens, 0).await?;
                self.chatbot_say(id, to, Text::plain(answer.content)).await
            }
            Err(e) => {
                tracing::warn!(%from, error = %e, "chatbot: no answer from the provider");
                self.chatbot_say(id, to, Text::notice(e.friendly())).await
            }
        }
    }

    /// Send `text` from the chatbot: into `room` on Matrix, else to the person's XMPP address.
    /// The ids come from the action's, so a retried send is dropped as a repeat.
    pub(super) async fn chatbot_say(&self, id: i64, to: &To<'_>, text: Text) -> Result<(), DeliveryError> {
        if let Some(muc) = to.muc {
            let me = self.map.chatbot_jid().ok_or_else(|| DeliveryError::Permanent("the chatbot is off".into()))?;
            return self
                .xmpp
                .deliver(Outgoing::SayRemote {
                    user: me,
                    muc: muc.clone(),
                    text,
                    id: self.stanza_id(id),
                    extras: Default::default(),
                    mentions: vec![],
                })
                .await;
        }
        match (to.room, to.party) {
            (Some(room), _) => {
                let me = self.chatbot_user().await?;
                let relations = Relations { reply_to: to.reply_to.map(EventId::as_str), ..Relations::default() };
                // An answer is the model's Markdown; the bridge's own notices are plain text.
                let html = match text.kind {
                    TextKind::Text => crate::chatbot::markdown::to_html(&text.body),
                    _ => self.html_of(&text),
                };
                self.matrix
                    .send_message(room, &me, &text, html.as_deref(), relations, &self.txn_id(id))
                    .await
                    .map(|_| ())
                    .map_err(MatrixError::into_delivery)
            }
            (None, Party::Xmpp(jid)) => {
                let me = self.map.chatbot_jid().ok_or_else(|| DeliveryError::Permanent("the chatbot is off".into()))?;
                self.xmpp.deliver(Outgoing::chat(me, jid.clone(), text, self.stanza_id(id))).await
            }
            (None, Party::Matrix(user)) => Err(DeliveryError::Permanent(format!("no chatbot room of {user}"))),
        }
    }

    /// The chatbot's Matrix user, registered with its display name.
    pub(super) async fn chatbot_user(&self) -> Result<MatrixUserId, DeliveryError> {
        let (Some(me), Some(bot)) = (self.map.chatbot(), self.chatbot.get()) else {
            return Err(DeliveryError::Permanent("the chatbot is off".into()));
        };
        self.ensure_ghost(&me, &bot.settings.display_name).await?;
        Ok(me)
    }

    /// Show the chatbot typing while it thinks (Matrix `m.typing`, XEP-0085 `composing`), and
    /// stop showing it (on XMPP the answer itself ends it). Cosmetic: a failure is only logged.
    pub(super) async fn chatbot_typing(&self, to: &To<'_>, typing: bool) {
        if let Some(muc) = to.muc {
            // In a MUC on an XMPP server: a bodiless groupchat message from its occupant; the
            // answer itself ends it.
            let Some(me) = self.map.chatbot_jid() else { return };
            if typing
                && let Err(e) =
                    self.xmpp.deliver(Outgoing::ChatStateRemote { user: me, muc: muc.clone(), composing: true }).await
            {
                tracing::debug!(%muc, error = %e, "chatbot: cannot send composing");
            }
            return;
        }
        match (to.room, to.party) {
            (Some(room), _) => {
                let Some(me) = self.map.chatbot() else { return };
                if let Err(e) = self.matrix.set_typing(room, &me, typing).await {
                    tracing::debug!(%room, error = %e, "chatbot: cannot set typing");
                }
            }
            (None, Party::Xmpp(jid)) if typing => {
                let Some(me) = self.map.chatbot_jid() else { return };
                let out = Outgoing::ChatState { from: me, to: jid.clone(), composing: true };
                if let Err(e) = self.xmpp.deliver(out).await {
                    tracing::debug!(%jid, error = %e, "chatbot: cannot send composing");
                }
            }
            _ => {}
        }
    }

    /// Note whether the provider answered; on a change, the assistant's presence follows:
    /// available, or away with a note saying the AI service is not reachable.
    async fn chatbot_reachable(&self, reachable: bool, again: bool) {
        let Some(bot) = self.chatbot.get() else { return };
        if bot.note_reachable(reachable).is_none() && !again {
            return;
        }
        tracing::info!(reachable, "chatbot: the provider's state changed");
        self.announce_chatbot_presence(Some(reachable)).await;
        let (state, note) = if reachable {
            (crate::core::presence::MatrixState::Online, None)
        } else {
            (crate::core::presence::MatrixState::Unavailable, Some(AWAY_NOTE.to_owned()))
        };
        let result = match self.chatbot_user().await {
            Ok(me) => self.matrix.set_presence(&me, state, note).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "chatbot: cannot set its presence");
            // Not shown: try again at the next check.
            bot.forget_reachable();
        }
    }

    /// Set the assistant's Matrix avatar from `chatbot.avatar_file`; `false` if it failed.
    async fn set_chatbot_avatar(&self, bot: &crate::chatbot::Chatbot) -> bool {
        let Some((bytes, kind)) = bot.avatar.clone() else { return true };
        let result = match self.chatbot_user().await {
            Ok(me) => self.set_avatar_picture(&me, bytes, &kind).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        result.map_err(|e| tracing::warn!(error = %e, "chatbot: cannot set its Matrix avatar")).is_ok()
    }

    /// Ask the provider's cheap health request every `chatbot.health_interval_secs`, so the
    /// assistant's presence shows whether it can answer even while nobody asks.
    pub async fn chatbot_health_forever(self: Arc<Self>) {
        let Some(bot) = self.chatbot.get().cloned() else { return };
        let every = std::time::Duration::from_secs(bot.settings.health_interval_secs);
        let mut avatar_set = bot.avatar.is_none();
        loop {
            // The Matrix account's picture (`chatbot.avatar_file`), tried again at each check
            // until the homeserver took it.
            if !avatar_set {
                avatar_set = self.set_chatbot_avatar(&bot).await;
            }
            match bot.provider.health().await {
                Ok(()) => self.chatbot_reachable(true, false).await,
                Err(e) => {
                    tracing::warn!(error = %e, "chatbot: health check failed");
                    if e.means_unreachable() {
                        self.chatbot_reachable(false, false).await;
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}
