//! The bridge's side of SMS (the SMS chat kind): accepting a person's message to a number
//! (checks, then outbox rows) here; the Matrix side of an SMS chat (`matrix.rs`, with the notices
//! for what SMS cannot carry), the XMPP side (`xmpp.rs`), the `sms` command (`commands.rs`), incoming
//! SMS and delivery reports (`incoming.rs`) and carrying out the SMS actions (`delivery.rs`).
//!
//! Nothing lost, nothing doubled: an `SmsSend` row stays in the outbox until the gateway
//! accepted it. Before the first attempt the SMS is recorded (`sms_message`, state `sending`),
//! and right after the gateway's acceptance it is marked `accepted`; a retry that finds it
//! accepted does not send again. What remains: a crash after the gateway accepted and before
//! that mark is written sends the SMS again (gateways have no idempotency key to prevent it).
//! Incoming SMS are answered 200 only after their actions are committed, with the gateway's id
//! recorded in the same transaction, so a gateway's retry is dropped.

mod commands;
mod delivery;
mod incoming;
mod matrix;
mod xmpp;

use std::sync::Arc;

use super::Bridge;
use crate::contacts::ContactIndex;
use crate::core::action::{Action, SmsOrigin, Text};
use crate::core::ids::{PhoneNumber, RoomId};
use crate::core::refusal::Refusal;
use crate::core::watch::Party;
use crate::sms::limits::{Limited, day_start};
use crate::sms::segment::split;
use crate::sms::{PERMISSION, SmsService};
use crate::store::{StoreTx, now_ms};

impl Bridge {
    pub fn sms(&self) -> Option<&Arc<SmsService>> {
        self.sms.get()
    }

    /// Check a person's message to a number and make its actions, in `tx` (usage and the
    /// conversation are recorded there). `Err` is the refusal to show them (XMPP gets it as
    /// `forbidden`, whatever the reason, as before the kinds were told apart here).
    pub(crate) async fn sms_actions(
        &self,
        tx: &mut StoreTx,
        author: &Party,
        to: &PhoneNumber,
        body: &str,
        origin: SmsOrigin,
        room: Option<&RoomId>,
    ) -> crate::store::Result<Result<Vec<Action>, Refusal>> {
        let (mut actions, parts) = match self.sms_sends(tx, author, to, body, Some(origin)).await? {
            Ok(sends) => sends,
            Err(refusal) => return Ok(Err(refusal)),
        };
        tx.touch_sms_conversation(author, to, room).await?;
        if parts > 1 {
            let concatenated = self.sms().is_some_and(|s| s.settings.concatenation);
            let how = if concatenated { "one concatenated SMS of" } else { "separate SMS:" };
            let note = format!("Sent as {how} {parts} parts.");
            actions.push(self.sms_notice(author, to, &note));
        }
        Ok(Ok(actions))
    }

    /// The checks and the `SmsSend` rows of a message to a number, paid for by `author`
    /// (permission, address, length, daily cap and rate taken in `tx`), and how many parts it
    /// takes; the caller records where the reply goes.
    pub(crate) async fn sms_sends(
        &self,
        tx: &mut StoreTx,
        author: &Party,
        to: &PhoneNumber,
        body: &str,
        origin: Option<SmsOrigin>,
    ) -> crate::store::Result<Result<(Vec<Action>, u32), Refusal>> {
        let Some(service) = self.sms() else {
            return Ok(Err(Refusal::forbidden("SMS is not set up on this bridge.")));
        };
        if !self.store.has_permission(author, PERMISSION).await? {
            return Ok(Err(Refusal::forbidden(format!(
                "You may not send SMS. An admin of the bridge can allow it (permissions grant {author} sms)."
            ))));
        }
        if let Err(refusal) = service.check_address(to) {
            return Ok(Err(Refusal::forbidden(format!("Not sent: {refusal}"))));
        }
        let body = body.trim();
        if body.is_empty() {
            return Ok(Err(Refusal::forbidden("An empty message cannot be sent as SMS.")));
        }
        let concatenated = service.settings.concatenation;
        let segments = split(body, concatenated);
        let parts = u32::try_from(segments.count()).unwrap_or(u32::MAX);
        if parts > service.settings.max_parts {
            return Ok(Err(Refusal::forbidden(format!(
                "Your message would take {parts} SMS; at most {} are allowed. Please shorten it.",
                service.settings.max_parts
            ))));
        }
        // The daily cap is taken atomically (one conditional upsert): a concurrent send of the
        // same person cannot slip past it (security review L11).
        let (day, cap) = (day_start(now_ms()), service.settings.rate_limits.daily_cap_per_user);
        if let Err(used) = tx.take_daily_sms(author, day, parts, cap).await? {
            return Ok(Err(Refusal::forbidden(format!("Not sent: {}.", Limited::Daily { used, parts, cap }))));
        }
        if let Err(e) = service.take_rate(author) {
            // Refused after all: what was taken goes back (the caller may commit this transaction).
            tx.return_daily_sms(author, day, parts).await?;
            return Ok(Err(Refusal::forbidden(format!("Not sent: {e}."))));
        }
        let sender = service.sender_for(Some(author));
        let send = |text: String, parts: u32| Action::SmsSend {
            author: Some(author.clone()),
            sender: sender.clone(),
            to: to.clone(),
            text,
            parts,
            origin: origin.clone(),
        };
        let actions: Vec<Action> = if concatenated || parts == 1 {
            vec![send(body.to_owned(), parts)]
        } else {
            segments.parts.into_iter().map(|p| send(p, 1)).collect()
        };
        Ok(Ok((actions, parts)))
    }

    /// A notice about the conversation with `phone`, shown to `who` from the number's address.
    pub(super) fn sms_notice(&self, who: &Party, phone: &PhoneNumber, text: &str) -> Action {
        match who {
            Party::Matrix(user) => {
                Action::SmsToMatrix { phone: phone.clone(), to: user.clone(), text: Text::notice(text) }
            }
            Party::Xmpp(jid) => {
                Action::XmppFromPhone { phone: phone.clone(), to: jid.clone(), text: Text::notice(format!("[{text}]")) }
            }
        }
    }

    /// Look something up in the contacts `sms NAME` and the numbers' ghosts use: the missed-call
    /// module's when it runs (the config's files and the admins' imports), else the SMS module's
    /// own (the config's files).
    pub(super) fn with_sms_contacts<R>(&self, service: &SmsService, f: impl FnOnce(&ContactIndex) -> R) -> R {
        match self.calls.get() {
            Some(calls) => f(&calls.contacts()),
            None => f(service.contacts()),
        }
    }

    /// A missed-call notice by SMS to `mobile`, from the caller's number when `caller` is given.
    pub(crate) fn sms_notice_action(&self, mobile: &str, caller: Option<&str>, text: String) -> Option<Action> {
        let service = self.sms()?;
        let to = match service.destination(mobile) {
            Ok(to) => to,
            Err(refusal) => {
                tracing::warn!(error = %refusal, "missed-call SMS notice not sent: the user's mobile number");
                return None;
            }
        };
        let sender =
            caller.and_then(|c| service.normalize(c)).map_or_else(|| service.sender_for(None), |c| c.to_string());
        let parts = u32::try_from(split(&text, service.settings.concatenation).count()).unwrap_or(u32::MAX);
        Some(Action::SmsSend { author: None, sender, to, text, parts, origin: None })
    }
}
