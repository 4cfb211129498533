//! An SMS chat's XMPP side: a message to `+number@component`; what SMS cannot carry is refused
//! with the reason (a stanza error the sender's client shows on the message).

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::action::SmsOrigin;
use crate::core::ids::PhoneNumber;
use crate::core::inbound::{XmppAct, XmppChatIn};
use crate::core::refusal::Refusal;
use crate::core::watch::Party;
use crate::sms::unsendable::{Unsendable, file_link_text};
use crate::store::StoreError;

impl Bridge {
    /// An XMPP user's message to `+number@component`.
    pub(crate) async fn accept_xmpp_sms(self: &Arc<Self>, chat: XmppChatIn, phone: PhoneNumber) -> Result<(), Refusal> {
        let internal = |e: StoreError| crate::bridge::store_refusal(&e, "an SMS from XMPP");
        let author = Party::Xmpp(chat.from.clone());
        // The address itself is wrong: say so as such (sms_actions checks it again for every path).
        if let Some(service) = self.sms()
            && let Err(refusal) = service.check_address(&phone)
        {
            return Err(Refusal::bad_address(format!("Not sent: {refusal}")));
        }
        // SMS is text only: a correction is refused with the reason; a file goes as its link
        // only where the admin chose so.
        if chat.extras.replaces.is_some() {
            return Err(Refusal::unsupported(Unsendable::Edit.notice(&phone)));
        }
        let mut body = chat.body.clone();
        if let Some(file) = &chat.extras.file {
            if !self.sms().is_some_and(|s| s.settings.files_as_links) {
                return Err(Refusal::unsupported(Unsendable::File.notice(&phone)));
            }
            body = file_link_text(&chat.body, &file.url);
        }
        let mut tx = self.store.begin().await.map_err(internal)?;
        if let Some(id) = &chat.stanza_id
            && !tx.claim_stanza(&chat.from.to_string(), id.as_str()).await.map_err(internal)?
        {
            return Ok(());
        }
        let origin = SmsOrigin::Xmpp {
            jid: chat.from.clone(),
            stanza_id: chat.stanza_id.clone(),
            wants_receipt: chat.wants_receipt,
        };
        let actions = match self.sms_actions(&mut tx, &author, &phone, &body, origin, None).await.map_err(internal)? {
            Ok(actions) => actions,
            Err(refusal) => return Err(refusal),
        };
        let rows = tx.enqueue_all(actions).await.map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        self.dispatch(rows);
        Ok(())
    }

    /// A reaction or retraction sent to a number's address: SMS has neither, so it is refused
    /// with the reason, never dropped.
    pub(crate) fn sms_act_refusal(&self, phone: &PhoneNumber, act: &XmppAct) -> Refusal {
        let what = match act {
            XmppAct::Reactions { .. } => Unsendable::Reaction,
            XmppAct::Retract { .. } => Unsendable::Retraction,
        };
        Refusal::unsupported(what.notice(phone))
    }
}
