//! The assistant in MUCs on XMPP servers (XEP-0045): invited by someone allowed to use it
//! (XEP-0249 directly, or mediated by the MUC), it joins under its display name and answers
//! the messages addressed to it (a keyword at the start or as a word, `/clear`) in the MUC,
//! with one context for the MUC. Removed (kicked, banned, its joining refused), it forgets the
//! MUC and its context. Questions there count as the inviter's: a MUC need not show its
//! occupants' real addresses, so the inviter's permission and limits stand for the MUC.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::bridge::chatbot::{REFUSAL, muc_context};
use crate::bridge::media::new_token;
use crate::core::action::{Action, Text};
use crate::core::ids::BareJid;
use crate::core::watch::Party;
use crate::xmpp::out::Outgoing;

impl Bridge {
    /// `inviter` invited the assistant into `muc`: it joins if they may use it, else they are
    /// told why not.
    pub(super) async fn chatbot_muc_invite(&self, muc: BareJid, inviter: BareJid, mediated: bool) {
        let (Some(me), Some(bot)) = (self.map.chatbot_jid(), self.chatbot.get()) else { return };
        // Hosted rooms are Matrix rooms: the assistant is invited there on Matrix.
        if muc.local().is_none() || muc.domain() == self.map.component {
            return tracing::info!(%muc, %inviter, "chatbot: invitation into no MUC on an XMPP server ignored");
        }
        // A mediated invitation names its inviter on the MUC's word: believed only from a MUC
        // of the inviter's own server (any other MUC could name anyone allowed to use it).
        let vouched = muc.domain() == inviter.domain() || muc.domain().ends_with(&format!(".{}", inviter.domain()));
        if mediated && !vouched {
            return tracing::info!(%muc, %inviter, "chatbot: mediated invitation from a MUC not of the inviter's server ignored");
        }
        let who = Party::Xmpp(inviter.clone());
        let permitted = match self.chatbot_permitted(&who).await {
            Ok(p) => p && self.may_use(&who).await,
            Err(e) => return tracing::warn!(%muc, error = %e, "chatbot: cannot check an invitation"),
        };
        if !permitted {
            tracing::info!(%muc, %inviter, "chatbot: invitation into a MUC refused (no permission)");
            let text = Text::notice(format!("{REFUSAL} (You invited me into {muc}.)"));
            return self.xmpp.post(Outgoing::chat(me, inviter, text, format!("ucb-chatbot-{}", new_token()))).await;
        }
        let nick = crate::core::room::clean_nick(&bot.settings.display_name);
        if let Err(e) = self.store.save_chatbot_muc(&muc, &who, &nick).await {
            return tracing::warn!(%muc, error = %e, "chatbot: cannot keep a MUC");
        }
        tracing::info!(%muc, %inviter, "chatbot: invited into a MUC; joining");
        self.xmpp.post(Outgoing::JoinRemote { user: me.clone(), muc: muc.clone(), nick }).await;
        let welcome = Text::notice(self.chatbot_room_welcome());
        self.xmpp
            .post(Outgoing::SayRemote {
                user: me,
                muc,
                text: welcome,
                id: format!("ucb-chatbot-{}", new_token()),
                extras: Default::default(),
                mentions: vec![],
            })
            .await;
    }

    /// A message in a MUC the assistant is in: asked, if it is addressed to it (its own
    /// messages, which the MUC sends back, are not).
    pub(super) async fn chatbot_muc_message(
        self: &Arc<Self>,
        muc: BareJid,
        nick: &str,
        id: Option<String>,
        body: String,
    ) {
        let Some(bot) = self.chatbot.get() else { return };
        let (inviter, own) = match self.store.chatbot_muc(&muc).await {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(e) => return tracing::warn!(%muc, error = %e, "chatbot: cannot read a MUC"),
        };
        if nick == own {
            return;
        }
        let Some(question) = crate::chatbot::trigger::addressed(&body, &bot.settings.room_keywords(), false) else {
            return;
        };
        if let Some(why) = self.body_too_long(question) {
            return tracing::info!(%muc, nick, why, "chatbot: a question in a MUC is too long");
        }
        let action = Action::ChatbotMessage {
            from: inviter,
            room: None,
            text: question.to_owned(),
            in_room: None,
            muc: Some(muc.clone()),
        };
        let claim = muc_context(&muc);
        if let Err(refusal) = self.queue_claimed(&claim, id.as_deref(), action, "a question in a MUC").await {
            tracing::warn!(%muc, nick, text = refusal.text, "chatbot: cannot queue a question in a MUC");
        }
    }

    /// The assistant is out of `muc` (`why`): the MUC and its context are forgotten.
    pub(super) async fn chatbot_muc_gone(&self, muc: &BareJid, why: &str) {
        match self.store.forget_chatbot_muc(muc).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return tracing::warn!(%muc, error = %e, "chatbot: cannot forget a MUC"),
        }
        match self.store.chatbot_clear(&muc_context(muc)).await {
            Ok(forgotten) => {
                tracing::info!(%muc, why, forgotten, "chatbot: removed from a MUC; its context is forgotten")
            }
            Err(e) => tracing::warn!(%muc, error = %e, "chatbot: cannot forget a MUC's context"),
        }
    }

    /// After (re)connecting: back into every MUC it is in.
    pub(super) async fn chatbot_rejoin_mucs(&self) {
        let Some(me) = self.map.chatbot_jid() else { return };
        let mucs = match self.store.chatbot_mucs().await {
            Ok(mucs) => mucs,
            Err(e) => return tracing::warn!(error = %e, "chatbot: cannot read its MUCs"),
        };
        for (muc, nick) in mucs {
            self.xmpp.post(Outgoing::JoinRemote { user: me.clone(), muc, nick }).await;
        }
    }
}
