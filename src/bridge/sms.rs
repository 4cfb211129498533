//! The bridge's side of SMS: accepting a person's message to a number (checks, then outbox
//! rows), carrying out the SMS actions, routing incoming SMS, and turning delivery reports into
//! ticks.
//!
//! Nothing lost, nothing doubled: an `SmsSend` row stays in the outbox until the gateway
//! accepted it. Before the first attempt the SMS is recorded (`sms_message`, state `sending`),
//! and right after the gateway's acceptance it is marked `accepted`; a retry that finds it
//! accepted does not send again. What remains: a crash after the gateway accepted and before
//! that mark is written sends the SMS again (gateways have no idempotency key to prevent it).
//! Incoming SMS are answered 200 only after their actions are committed, with the gateway's id
//! recorded in the same transaction, so a gateway's retry is dropped.

use std::sync::Arc;

use super::Bridge;
use crate::contacts::ContactIndex;
use crate::core::action::{Action, SmsOrigin, Text, TextKind};
use crate::core::ids::{MatrixUserId, PhoneNumber, RoomId};
use crate::core::inbound::XmppChatIn;
use crate::core::menus::Menu;
use crate::core::outbox::DeliveryError;
use crate::core::refusal::Refusal;
use crate::core::watch::Party;
use crate::matrix::client::MatrixError;
use crate::sms::inbound::IncomingSms;
use crate::sms::limits::{Limited, day_start};
use crate::sms::provider::{DlrStatus, Outgoing};
use crate::sms::segment::{coding_of, split};
use crate::sms::{PERMISSION, Resolved, SmsService};
use crate::store::{SentSms, StoreError, StoreTx, now_ms};
use crate::xmpp::out::Outgoing as ToXmpp;

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
        tx.touch_sms_conversation(author, to, room).await?;
        let sender = service.sender_for(Some(author));
        let send = |text: String, parts: u32| Action::SmsSend {
            author: Some(author.clone()),
            sender: sender.clone(),
            to: to.clone(),
            text,
            parts,
            origin: Some(origin.clone()),
        };
        let mut actions: Vec<Action> = if concatenated || parts == 1 {
            vec![send(body.to_owned(), parts)]
        } else {
            segments.parts.into_iter().map(|p| send(p, 1)).collect()
        };
        if parts > 1 {
            let how = if concatenated { "one concatenated SMS of" } else { "separate SMS:" };
            let note = format!("Sent as {how} {parts} parts.");
            actions.push(self.sms_notice(author, to, &note));
        }
        Ok(Ok(actions))
    }

    /// A notice about the conversation with `phone`, shown to `who` from the number's address.
    fn sms_notice(&self, who: &Party, phone: &PhoneNumber, text: &str) -> Action {
        match who {
            Party::Matrix(user) => {
                Action::SmsToMatrix { phone: phone.clone(), to: user.clone(), text: Text::notice(text) }
            }
            Party::Xmpp(jid) => {
                Action::XmppFromPhone { phone: phone.clone(), to: jid.clone(), text: Text::notice(format!("[{text}]")) }
            }
        }
    }

    /// A Matrix user's message in their room with a number's ghost.
    pub(crate) async fn sms_from_matrix(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        sender: MatrixUserId,
        event_id: String,
        text: Text,
        (owner, phone): (Party, PhoneNumber),
    ) -> crate::store::Result<Vec<Action>> {
        let ghost = self.map.sms_ghost(&phone);
        let notice = |body: String| Action::MatrixPost {
            room: room.clone(),
            user: ghost.clone(),
            text: Text::notice(body),
            nick: None,
        };
        if owner != Party::Matrix(sender.clone()) {
            return Ok(vec![notice(format!("Only {owner} sends SMS to {phone} from this room."))]);
        }
        let body = match text.kind {
            TextKind::Emote => format!("* {}", text.body),
            _ => text.body,
        };
        let origin = SmsOrigin::Matrix { room: room.clone(), user: sender.clone(), event_id: event_id.into() };
        Ok(match self.sms_actions(tx, &owner, &phone, &body, origin, Some(&room)).await? {
            Ok(actions) => actions,
            Err(refusal) => vec![notice(refusal.text)],
        })
    }

    /// A Matrix user invited a number's ghost: that room becomes their conversation with it, if
    /// they may send SMS and the number is one. Otherwise the ghost refuses: it joins only to say
    /// why, then leaves, and the room is not recorded (so it never shows the contact store's name
    /// for the number there: without the permission an invite must not be a reverse phone
    /// lookup, L4).
    pub(crate) async fn sms_invite(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        sender: MatrixUserId,
        ghost: MatrixUserId,
        phone: PhoneNumber,
    ) -> crate::store::Result<Vec<Action>> {
        let party = Party::Matrix(sender);
        let refusal = match self.sms() {
            None => Some("SMS is not set up on this bridge, so this chat cannot send SMS.".to_owned()),
            Some(_) if !self.store.has_permission(&party, PERMISSION).await? => Some(format!(
                "You may not send SMS: this chat needs the sms permission. An admin of the bridge can \
                 allow it (permissions grant {party} sms); then invite me again."
            )),
            Some(service) => service.check_address(&phone).err().map(|e| format!("{e} This chat cannot send SMS.")),
        };
        let join = Action::MatrixJoin { room: room.clone(), user: ghost.clone() };
        if let Some(text) = refusal {
            return Ok(vec![
                join,
                Action::MatrixPost { room: room.clone(), user: ghost.clone(), text: Text::notice(text), nick: None },
                Action::MatrixLeave { room, user: ghost },
            ]);
        }
        tx.set_sms_room(&party, &phone, &room).await?;
        Ok(vec![join])
    }

    /// Before a number's ghost joins `room` (`Action::MatrixJoin`): register it and choose its
    /// display name. The contact store's name ("Erika Mustermann (SMS)") only when `room` is the
    /// SMS chat of a person who may send SMS; otherwise a new ghost is named by its number and a
    /// known one keeps its name (changing a global name back and forth would show in every room).
    pub(crate) async fn prepare_sms_ghost(
        &self,
        room: &RoomId,
        ghost: &MatrixUserId,
        phone: &PhoneNumber,
    ) -> Result<(), DeliveryError> {
        let mut tx = self.store.begin().await?;
        let conversation = tx.sms_by_room(room).await?;
        drop(tx);
        let owner_may = match conversation {
            Some((owner, p)) if &p == phone => self.store.has_permission(&owner, PERMISSION).await?,
            _ => false,
        };
        if owner_may && let Some(service) = self.sms() {
            let name = self.with_sms_contacts(service, |c| service.display_name(phone, c));
            return self.ensure_ghost(ghost, &name).await;
        }
        if self.store.ghost(ghost).await?.is_none() {
            return self.ensure_ghost(ghost, phone.as_str()).await;
        }
        Ok(())
    }

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
        let actions =
            match self.sms_actions(&mut tx, &author, &phone, &chat.body, origin, None).await.map_err(internal)? {
                Ok(actions) => actions,
                Err(refusal) => return Err(refusal),
            };
        let rows = tx.enqueue_all(actions).await.map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        self.dispatch(rows);
        Ok(())
    }

    /// `sms NUMBER-OR-CONTACT`: open a conversation with a number.
    pub(crate) async fn sms_command(
        &self,
        caller: &Party,
        target: &str,
        actions: &mut Vec<Action>,
    ) -> crate::store::Result<String> {
        let Some(service) = self.sms() else { return Ok("SMS is not set up on this bridge.".into()) };
        if !self.store.has_permission(caller, PERMISSION).await? {
            return Ok(format!(
                "You may not send SMS. An admin of the bridge can allow it (permissions grant {caller} sms)."
            ));
        }
        let phone = match self.with_sms_contacts(service, |c| service.resolve(target, c)) {
            Ok(Resolved::Number(p)) => p,
            Ok(Resolved::Choice { target, name, numbers }) => {
                let list: Vec<String> = numbers.iter().enumerate().map(|(i, n)| format!("{}. {n}", i + 1)).collect();
                self.offer_menu(caller, Menu::SmsNumber { target: target.clone(), count: numbers.len() });
                return Ok(format!(
                    "{name} has {} mobile numbers:\n{}\nChoose one: answer with its number here (e.g. `2`), or send `sms {target} 2`.",
                    numbers.len(),
                    list.join("\n")
                ));
            }
            Err(e) => return Ok(e.to_string()),
        };
        let hello = format!("This is your SMS conversation with {phone}. What you write here goes out as SMS.");
        actions.push(self.sms_notice(caller, &phone, &hello));
        Ok(match caller {
            Party::Matrix(_) => {
                format!("OK: {} invites you to a chat; write there to send SMS to {phone}.", self.map.sms_ghost(&phone))
            }
            Party::Xmpp(_) => format!("OK: write to {} to send SMS to {phone}.", self.map.sms_jid(&phone)),
        })
    }

    /// A bare number sent as a command: the answer to the choice offered last.
    pub(crate) async fn menu_answer(
        &self,
        caller: &Party,
        n: usize,
        actions: &mut Vec<Action>,
    ) -> crate::store::Result<String> {
        match self.open_menu(caller) {
            Some(Menu::SmsNumber { target, .. }) => self.sms_command(caller, &format!("{target} {n}"), actions).await,
            Some(Menu::StartChat { group, .. }) => Ok(format!(
                "Send `confirm` to create the room for {group}, or `start-chat {group} --without {n}` to leave {n} out."
            )),
            None => Ok(
                "There is nothing to choose from: a number answers a choice the bridge offered (e.g. `sms NAME` with several mobile numbers), for 10 minutes."
                    .into(),
            ),
        }
    }

    /// Look something up in the contacts `sms NAME` and the numbers' ghosts use: the missed-call
    /// module's when it runs (the config's files and the admins' imports), else the SMS module's
    /// own (the config's files).
    fn with_sms_contacts<R>(&self, service: &SmsService, f: impl FnOnce(&ContactIndex) -> R) -> R {
        match self.calls.get() {
            Some(calls) => f(&calls.contacts()),
            None => f(service.contacts()),
        }
    }

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
            None => tx.last_sms_writer(&sms.from).await?,
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
        let row = tx.enqueue_row(action).await?;
        tx.commit().await?;
        self.dispatch(vec![row]);
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
