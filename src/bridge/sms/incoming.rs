//! What comes back from the gateway: incoming SMS routed to their conversation, and delivery
//! reports turned into ticks (or a notice that an SMS failed).

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::action::{Action, SmsOrigin, Text};
use crate::core::ids::PhoneNumber;
use crate::core::watch::Party;
use crate::sms::inbound::IncomingSms;
use crate::sms::provider::DlrStatus;
use crate::store::SentSms;
use crate::xmpp::out::Outgoing as ToXmpp;

impl Bridge {
    /// An incoming SMS, from a gateway: to the owner of the number it was sent to, else to whoever
    /// last wrote to the sender, else to the control room. `Ok(false)`: nowhere to put it yet
    /// (the control room is not ready), so the gateway should retry.
    pub async fn accept_incoming_sms(self: &Arc<Self>, provider: &str, sms: IncomingSms) -> crate::store::Result<bool> {
        let mut tx = self.store.begin().await?;
        if !tx.claim_sms_inbound(provider, &sms.id).await? {
            tracing::debug!(id = sms.id, "repeated incoming SMS ignored");
            return Ok(true);
        }
        let owner = sms.to.as_ref().and_then(|to| self.sms().and_then(|s| s.owner_of(to)).cloned());
        let target = match owner {
            Some(o) => Some(o),
            None => {
                // The conversation that last wrote to the number gets its answer: a person's SMS
                // chat, or a room it is a member of (a tie, or a room that never wrote while a
                // person did: the person's chat).
                let person = tx.last_sms_writer(&sms.from).await?;
                let person_at = person.as_ref().map_or(-1, |(_, at)| *at);
                if let Some((room, _)) = tx.last_phone_room(&sms.from).await?.filter(|(_, at)| *at > person_at)
                    && let Some(actions) = self.phone_says(&mut tx, &room, &sms.from, &sms.text).await?
                {
                    tracing::info!(from = %sms.from, %room, "incoming SMS to a room");
                    let rows = tx.enqueue_all(actions).await?;
                    tx.commit().await?;
                    self.dispatch(rows);
                    return Ok(true);
                }
                person.map(|(p, _)| p)
            }
        };
        let action = match target {
            Some(Party::Matrix(user)) => {
                Action::SmsToMatrix { phone: sms.from.clone(), to: user, text: Text::plain(sms.text) }
            }
            Some(Party::Xmpp(jid)) => {
                Action::XmppFromPhone { phone: sms.from.clone(), to: jid, text: Text::plain(sms.text) }
            }
            None => {
                let Some(room) = self.control_room() else { return Ok(false) };
                let to = sms.to.as_ref().map_or_else(|| "us".to_owned(), ToString::to_string);
                let body = format!("SMS from {} to {to} (nobody wrote to this number yet): {}", sms.from, sms.text);
                Action::MatrixNotice { room, body, html: None, reply_to: None }
            }
        };
        tracing::info!(from = %sms.from, lane = %action.lane(), "incoming SMS");
        // In the reader's journal: unread until their answer or read receipt.
        let touches = crate::core::journal::touches(&action, crate::store::now_ms());
        let rows = tx.enqueue_counted(None, &touches, vec![action]).await?.unwrap_or_default();
        tx.commit().await?;
        self.dispatch(rows);
        Ok(true)
    }

    /// A delivery report for one of our SMS (`id`: our reference or the gateway's id) or for
    /// one of its parts (`part`: the SMSC's id of the part, Kannel's `%F`; `None` when the
    /// gateway names none, and then each report counts as another part). The tick comes once
    /// every part was delivered; a failed part makes the whole SMS failed, with a notice to its
    /// sender. `Ok(false)`: the SMS is unknown (perhaps not recorded yet), the gateway should retry.
    pub async fn sms_delivery_report(
        self: &Arc<Self>,
        id: &str,
        part: Option<&str>,
        status: DlrStatus,
        detail: &str,
    ) -> crate::store::Result<bool> {
        let status_text = match status {
            // Buffered, or accepted by the SMSC: nothing to show yet.
            DlrStatus::Pending => {
                let known = self.store.sent_sms_by_any(id).await?.is_some();
                if !known {
                    tracing::info!(id, ?status, "delivery report for an unknown SMS");
                }
                return Ok(known);
            }
            DlrStatus::Delivered => "delivered",
            DlrStatus::Failed => "failed",
        };
        let part = match part.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => p.to_owned(),
            None => format!("unnamed-{:032x}", rand::random::<u128>()),
        };
        let mut tx = self.store.begin().await?;
        let Some(report) = tx.report_sms_part(id, &part, status_text).await? else {
            tracing::info!(id, ?status, "delivery report for an unknown SMS");
            return Ok(false);
        };
        let sent = &report.sent;
        tracing::info!(
            reference = sent.reference,
            part,
            status = status_text,
            delivered = report.delivered_parts,
            parts = sent.parts,
            "SMS delivery report"
        );
        let mut rows = Vec::new();
        if report.state == "failed" && sent.state != "failed" {
            let what = if sent.parts > 1 { format!("a part of it (of {})", sent.parts) } else { "it".to_owned() };
            let reason = if detail.is_empty() {
                format!("the network reported {what} undeliverable")
            } else {
                format!("the network reported {what} undeliverable ({detail})")
            };
            if let Some(action) = self.sms_failure_notice(&sent.phone, sent.origin.as_ref(), &reason) {
                rows.push(tx.enqueue_row(action).await?);
            }
        }
        tx.commit().await?;
        self.dispatch(rows);
        if report.state == "delivered" && sent.state != "delivered" {
            self.sms_delivered_tick(sent).await;
        }
        Ok(true)
    }

    /// The "delivered" tick, sent directly (it is state, like read markers): the number's
    /// ghost's read receipt on the Matrix message (Matrix has no "delivered" receipt; a phone
    /// reports nothing later), an XEP-0184 receipt on XMPP.
    async fn sms_delivered_tick(&self, sent: &SentSms) {
        match &sent.origin {
            Some(SmsOrigin::Matrix { room, event_id, .. }) => {
                let ghost = self.map.sms_ghost(&sent.phone);
                if let Err(e) = self.matrix.send_read_receipt(room, &ghost, event_id.as_str()).await {
                    tracing::warn!(%ghost, error = %e, "cannot send the delivered receipt");
                }
            }
            Some(SmsOrigin::Xmpp { jid, stanza_id: Some(id), wants_receipt: true }) => {
                let (from, to, id) = (self.map.sms_jid(&sent.phone), jid.clone(), id.to_string());
                self.xmpp.post(ToXmpp::Receipt { from, to, id }).await;
            }
            _ => {}
        }
    }

    /// The visible notice that an SMS did not reach its number.
    pub(crate) fn sms_failure_notice(
        &self,
        phone: &PhoneNumber,
        origin: Option<&SmsOrigin>,
        reason: &str,
    ) -> Option<Action> {
        let text = format!("Your SMS to {phone} was not delivered: {reason}");
        match origin? {
            SmsOrigin::Matrix { room, .. } => Some(Action::MatrixPost {
                room: room.clone(),
                user: self.map.sms_ghost(phone),
                text: Text::notice(text),
                nick: None,
            }),
            SmsOrigin::Xmpp { jid, stanza_id, .. } => Some(Action::XmppPhoneBounce {
                phone: phone.clone(),
                to: jid.clone(),
                stanza_id: stanza_id.clone(),
                reason: text,
            }),
        }
    }
}
