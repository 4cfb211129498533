//! `broadcast`: a notice to everyone with a chat with the bridge.

use std::sync::Arc;

use super::Answer;
use crate::bridge::Bridge;
use crate::core::action::{Action, Text};
use crate::core::ids::{BareJid, MatrixUserId, RoomId};
use crate::core::refusal::Refusal;

impl Bridge {
    /// `broadcast TEXT`: queued to every Matrix user's bot chat and every known XMPP user.
    pub(super) async fn broadcast(self: &Arc<Self>, text: Vec<String>) -> Answer {
        Ok(Ok({
            let text = text.join(" ");
            if text.trim().is_empty() {
                return Ok(Err(Refusal::bad_request("Nothing to broadcast: broadcast TEXT")));
            }
            let notice = Text::notice(format!("Notice from the bridge admins: {text}"));
            let mut actions = vec![];
            for (user, room) in self.store.bot_dm_users().await? {
                if let (Ok(_), Ok(room)) = (MatrixUserId::parse(&user), RoomId::parse(&room)) {
                    actions.push(Action::MatrixPost { room, user: self.map.bot(), text: notice.clone(), nick: None });
                }
            }
            for jid in self.store.known_xmpp_users().await? {
                if let Ok(to) = BareJid::parse(&jid) {
                    actions.push(Action::XmppNotice { to, text: notice.clone() });
                }
            }
            let n = actions.len();
            self.queue_all(actions).await?;
            format!("OK: the notice goes to {n} people.")
        }))
    }
}
