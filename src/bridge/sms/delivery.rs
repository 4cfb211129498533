//! Carrying out the SMS actions: sending through the gateway (at most once past its
//! acceptance) and posting what a number wrote on Matrix or XMPP.

use crate::bridge::Bridge;
use crate::core::action::{Action, SmsOrigin, Text};
use crate::core::ids::{MatrixUserId, PhoneNumber};
use crate::core::outbox::DeliveryError;
use crate::core::watch::Party;
use crate::matrix::client::MatrixError;
use crate::sms::provider::Outgoing;
use crate::sms::segment::coding_of;
use crate::store::SentSms;
use crate::xmpp::out::Outgoing as ToXmpp;

impl Bridge {
    /// Carry out the SMS actions.
    pub(crate) async fn deliver_sms(&self, id: i64, action: &Action) -> Result<(), DeliveryError> {
        match action {
            Action::SmsSend { sender, to, text, parts, origin, .. } => {
                self.send_sms(id, sender, to, text, *parts, origin.as_ref()).await
            }
            Action::SmsToMatrix { phone, to, text } => self.post_from_phone(id, phone, to, text).await,
            Action::XmppFromPhone { phone, to, text } => {
                let from = self.map.sms_jid(phone);
                self.xmpp.deliver(ToXmpp::chat(from, to.clone(), text.clone(), self.stanza_id(id))).await
            }
            Action::XmppPhoneBounce { phone, to, reason, .. } => {
                // Not an error reply: the server drops a message of type error to a bare JID
                // (RFC 6121 8.5.2.1.1), and the writer's resource may be gone by the time the
                // network reports. A chat message from the number's address reaches them.
                let from = self.map.sms_jid(phone);
                let text = Text::plain(reason.clone());
                self.xmpp.deliver(ToXmpp::chat(from, to.clone(), text, self.stanza_id(id))).await
            }
            _ => Err(DeliveryError::Permanent("not an SMS action".into())),
        }
    }

    async fn send_sms(
        &self,
        id: i64,
        sender: &str,
        to: &PhoneNumber,
        text: &str,
        parts: u32,
        origin: Option<&SmsOrigin>,
    ) -> Result<(), DeliveryError> {
        let Some(service) = self.sms() else {
            // Queued under a config with `sms:`; keep it until SMS is configured again.
            return Err(DeliveryError::Transient("the sms section is not configured".into()));
        };
        // Rows queued before numbers were checked (or by a path that forgot to) never reach the
        // gateway with a number that is not valid.
        if let Err(refusal) = service.check_address(to) {
            return Err(DeliveryError::Permanent(format!("SMS not sent: {refusal}")));
        }
        let reference = self.stanza_id(id);
        match self.store.sent_sms(&reference).await? {
            Some(s) if s.state != "sending" => {
                tracing::info!(reference, "SMS was accepted before; not sent again");
                return Ok(());
            }
            Some(_) => {}
            None => {
                let record = SentSms {
                    reference: reference.clone(),
                    provider_id: None,
                    phone: to.clone(),
                    parts,
                    origin: origin.cloned(),
                    state: "sending".into(),
                    delivered_parts: 0,
                };
                self.store.record_sent_sms(&record).await?;
            }
        }
        let sms = Outgoing {
            reference: &reference,
            from: sender,
            to,
            text,
            coding: coding_of(text),
            dlr_url: Some(service.dlr_url(&reference)),
        };
        let accepted = service.provider.send(&sms).await?;
        tracing::info!(reference, %to, parts, queued = accepted.queued, gateway = service.provider.name(), "SMS accepted");
        crate::core::metrics::sms_sent(usize::try_from(parts).unwrap_or(usize::MAX));
        self.store.mark_sms_accepted(&reference, accepted.provider_id.as_deref()).await.map_err(DeliveryError::from)
    }

    /// Post as a number's ghost in the Matrix user's room with it (created on first use).
    async fn post_from_phone(
        &self,
        id: i64,
        phone: &PhoneNumber,
        to: &MatrixUserId,
        text: &Text,
    ) -> Result<(), DeliveryError> {
        let ghost = self.map.sms_ghost(phone);
        let name =
            self.sms().map_or_else(|| phone.to_string(), |s| self.with_sms_contacts(s, |c| s.display_name(phone, c)));
        self.ensure_ghost(&ghost, &name).await?;
        let party = Party::Matrix(to.clone());
        let room = match self.store.sms_room(&party, phone).await? {
            Some(room) => room,
            None => {
                let room = self.matrix.create_direct_room(&ghost, to).await.map_err(MatrixError::into_delivery)?;
                tracing::info!(%room, %phone, matrix = %to, "created SMS chat");
                self.store.save_sms_room(&party, phone, Some(&room)).await?;
                room
            }
        };
        match self.matrix.send_text(&room, &ghost, text, self.html_of(text).as_deref(), &self.txn_id(id)).await {
            Ok(_) => Ok(()),
            Err(e) if e.errcode() == Some("M_FORBIDDEN") => {
                // The ghost cannot post there any more: the next attempt opens a new chat.
                self.store.save_sms_room(&party, phone, None).await?;
                Err(DeliveryError::Transient(format!("SMS ghost cannot post in {room}: {e}")))
            }
            Err(e) => Err(e.into_delivery()),
        }
    }
}
