//! Chats in the journal, and missed chats. Every accepted direct or SMS message is counted for
//! the people on both ends in the transaction that accepts it (`core::journal::touches`, one
//! statement), a hosted-room message for the room's other participants (`room_touches`), a
//! linked MUC's message for the Matrix users in its room; a
//! message to someone stays "unread" in `chat_journal` until their read receipt (Matrix) or
//! displayed marker (XMPP), or their own answer. A periodic sweep over that stored
//! state (not a timer per message, so it survives restarts) sends one summary per conversation
//! to people who left a message unread for `missed_chats.after_secs` while away or offline,
//! through the outbox; the entry then shows as missed until read.

use std::sync::Arc;
use std::time::Duration;

use crate::bridge::Bridge;
use crate::core::action::{Action, Text};
use crate::core::ids::{BareJid, MatrixUserId, RoomId};
use crate::core::journal;
use crate::core::presence::State;
use crate::core::watch::Party;
use crate::store::{ChatEntry, StoreTx};

/// Entries one sweep looks at.
const SWEEP_BATCH: i64 = 200;

/// How a person wants to hear of missed chats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissedChatChannel {
    /// A notice from the bot in their chat with it (Matrix).
    BotChat(crate::core::ids::RoomId),
    /// A message from the component (XMPP).
    Component(crate::core::ids::BareJid),
    /// An e-mail (`notifications missed-chats on --via email`) to the chosen address, `None`:
    /// their `missed_calls.users` e-mail. `chat` is where it goes instead when no mail can be
    /// built (no address, e-mail not set up), so the summary is not lost.
    Email { address: Option<String>, chat: Option<Box<MissedChatChannel>> },
}

impl Bridge {
    /// Count a message `sender` wrote in a hosted room, inside `tx`: once for each other
    /// participant (one statement for all), and their own unread mark there is cleared.
    pub(super) async fn count_room_message(
        &self,
        tx: &mut StoreTx,
        r: &crate::store::HostedRoom,
        members: &[crate::store::RoomMember],
        sender: &Party,
    ) -> crate::store::Result<()> {
        let conversation = self.room_conversation(r);
        // The bridge's own users (the bot, the assistant) keep no journal.
        let readers: Vec<Party> = members
            .iter()
            .map(|m| m.party.clone())
            .filter(|p| !matches!(p, Party::Matrix(u) if self.map.is_bridge_user(u)))
            .collect();
        let touches = journal::room_touches(&conversation, Some(sender), &readers, crate::store::now_ms());
        tx.touch_chats(&touches).await?;
        tx.chat_answered(&sender.key(), &conversation).await
    }

    /// Count a message in a linked MUC's room, inside `tx`, for the Matrix users in it: they
    /// are the bridge's users there (the MUC's other occupants keep their journals elsewhere).
    /// `sender`, when one of them wrote it, has read what waited for them there.
    pub(super) async fn count_linked_message(
        &self,
        tx: &mut StoreTx,
        muc: &BareJid,
        occupants: &[(MatrixUserId, String)],
        sender: Option<&MatrixUserId>,
    ) -> crate::store::Result<()> {
        let conversation = journal::room_conversation(&muc.to_string());
        let readers: Vec<Party> = occupants
            .iter()
            .filter(|(u, _)| !self.map.is_bridge_user(u))
            .map(|(u, _)| Party::Matrix(u.clone()))
            .collect();
        let sender = sender.map(|s| Party::Matrix(s.clone()));
        let touches = journal::room_touches(&conversation, sender.as_ref(), &readers, crate::store::now_ms());
        tx.touch_chats(&touches).await?;
        match sender {
            Some(s) => tx.chat_answered(&s.key(), &conversation).await,
            None => Ok(()),
        }
    }

    /// `m.read` by `user` in a linked MUC's room or in their SMS chat: what waited for them
    /// there is read (a client sends it for the newest event it showed, which covers the
    /// messages before it). `false`: the room is neither.
    pub(super) async fn journal_room_read(&self, room: &RoomId, user: &MatrixUserId) -> bool {
        let conversation = match self.linked_muc_of(room).await {
            Ok(Some(muc)) => journal::room_conversation(&muc.to_string()),
            Ok(None) => match self.store.sms_of_room(room).await {
                // Only the chat's owner reads it; anyone else's receipt there changes nothing.
                Ok(Some((owner, phone))) if owner == Party::Matrix(user.clone()) => journal::sms_conversation(&phone),
                Ok(Some(_)) => return true,
                Ok(None) => return false,
                Err(e) => {
                    tracing::warn!(%room, error = %e, "cannot look up an SMS chat");
                    return false;
                }
            },
            Err(e) => {
                tracing::warn!(%room, error = %e, "cannot look up a linked room");
                return false;
            }
        };
        if !self.map.is_bridge_user(user)
            && let Err(e) = self.store.mark_chat_read(&Party::Matrix(user.clone()).key(), &conversation).await
        {
            tracing::warn!(%user, error = %e, "cannot mark a chat read");
        }
        true
    }

    /// A hosted room as the journal names it.
    pub(super) fn room_conversation(&self, r: &crate::store::HostedRoom) -> String {
        journal::room_conversation(r.alias.as_deref().unwrap_or(r.room.as_str()))
    }

    /// `party` read the hosted room `r` (a read receipt there, a displayed marker in the MUC).
    pub(super) async fn room_read_by(&self, party: &Party, r: &crate::store::HostedRoom) {
        if let Err(e) = self.store.mark_chat_read(&party.key(), &self.room_conversation(r)).await {
            tracing::warn!(%party, error = %e, "cannot mark a room read");
        }
    }

    /// `party` read the conversation with `other` (a receipt, a marker): nothing waits there.
    pub(super) async fn chat_read(&self, party: Party, other: Party) {
        if let Err(e) = self.store.mark_chat_read(&party.key(), &other.key()).await {
            tracing::warn!(%party, error = %e, "cannot mark a chat read");
        }
    }

    /// Does `party` want missed-chat summaries, and where do they go? The one place that
    /// decides (the bridge's switch, the person's `missed-chats on|off`, a way to reach them).
    pub async fn missed_chat_channel(&self, party: &Party) -> crate::store::Result<Option<MissedChatChannel>> {
        if !self.current_config().missed_chats.enabled {
            return Ok(None);
        }
        // The person's choice (`missed-chats on|off`, `notifications missed-chats …`).
        let choice = self.choice(party, crate::core::notify_choice::Kind::MissedChats).await?;
        if !choice.enabled {
            return Ok(None);
        }
        let chat = match party {
            Party::Matrix(user) => self.store.bot_dm(user).await?.map(MissedChatChannel::BotChat),
            Party::Xmpp(jid) => Some(MissedChatChannel::Component(jid.clone())),
        };
        Ok(match choice.channel {
            Some(crate::core::notify_choice::Channel::Email) => {
                Some(MissedChatChannel::Email { address: choice.address, chat: chat.map(Box::new) })
            }
            _ => chat,
        })
    }

    /// Is `party` there to see a message (available, busy or not to be disturbed)? Away,
    /// idle, offline and unknown are not.
    async fn is_there(&self, party: &Party) -> bool {
        let state = match party {
            Party::Matrix(user) => match self.presence.matrix.last(user) {
                Some(p) => Some(p.state),
                None => self.store.matrix_presence(user).await.ok().flatten().map(|p| p.state),
            },
            Party::Xmpp(jid) => self.presence.xmpp.last(jid).map(|p| p.state),
        };
        matches!(state, Some(State::Available | State::Busy | State::DoNotDisturb))
    }

    /// Check the stored unread state every `missed_chats.sweep_secs`, for ever.
    pub async fn missed_chats_forever(self: Arc<Self>) {
        loop {
            let secs = self.current_config().missed_chats.sweep_secs.max(1);
            tokio::time::sleep(Duration::from_secs(secs)).await;
            if let Err(e) = self.sweep_missed_chats().await {
                tracing::warn!(error = %e, "missed-chat sweep failed; trying again at the next one");
            }
        }
    }

    /// One sweep: a summary for each conversation whose unread message is old enough and whose
    /// reader is away; none (and no more) for people who switched them off.
    pub(super) async fn sweep_missed_chats(self: &Arc<Self>) -> crate::store::Result<()> {
        let config = self.current_config().missed_chats.clone();
        if !config.enabled {
            return Ok(());
        }
        let now = crate::store::now_ms();
        let after_ms = i64::try_from(config.after_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        for entry in self.store.due_missed_chats(now.saturating_sub(after_ms), SWEEP_BATCH).await? {
            let Some(reader) = Party::from_key(&entry.party) else { continue };
            let Some(unread_since) = entry.unread_since else { continue };
            let there = self.is_there(&reader).await;
            if !journal::summary_due(unread_since, now, after_ms, there) {
                continue;
            }
            let channel = self.missed_chat_channel(&reader).await?;
            let action = channel.and_then(|c| self.missed_chat_notice(&reader, c, &entry));
            let mut tx = self.store.begin().await?;
            // Switched off (or unreachable): settled without a notice, so it is not asked again.
            tx.mark_chats_notified(&[entry.id], action.is_some()).await?;
            let rows = match action {
                Some(a) => vec![tx.enqueue_row(a).await?],
                None => vec![],
            };
            tx.commit().await?;
            tracing::info!(reader = %reader, entry = entry.id, sent = !rows.is_empty(), "missed-chat summary");
            self.dispatch(rows);
        }
        Ok(())
    }

    fn missed_chat_notice(&self, reader: &Party, channel: MissedChatChannel, entry: &ChatEntry) -> Option<Action> {
        let unread_since = entry.unread_since.unwrap_or(entry.last_at);
        // In a room nobody in particular wrote "to you".
        let who = match entry.conversation.strip_prefix("room:") {
            Some(room) => format!("someone in room {room}"),
            None => self.counterpart_name(&entry.conversation),
        };
        if let MissedChatChannel::Email { address, chat } = channel {
            let summary = crate::calls::chat_mail::ChatSummary {
                entry_id: entry.id,
                from: who.clone(),
                unread_since,
                messages: entry.messages,
            };
            let mail = self
                .mailer
                .get()
                .and(self.calls.get())
                .and_then(|calls| calls.missed_chat_mail(reader, address.as_deref(), &summary));
            if mail.is_some() {
                return mail;
            }
            tracing::warn!(%reader, "missed-chat e-mail cannot be sent; the summary goes to the chat instead");
            return chat.and_then(|c| self.missed_chat_notice(reader, *c, entry));
        }
        let text = Text::notice(format!(
            "Missed chat: {who} wrote to you at {} and it is still unread ({} message(s) in that chat today; `journal missed` lists your missed calls and chats).",
            super::journal::show_time(unread_since),
            entry.messages
        ));
        match channel {
            MissedChatChannel::BotChat(room) => {
                Some(Action::MatrixPost { room, user: self.map.bot(), text, nick: None })
            }
            MissedChatChannel::Component(to) => Some(Action::XmppNotice { to, text }),
            MissedChatChannel::Email { .. } => None,
        }
    }
}
