//! The bridge's side of missed calls: starting the module with the bridge as its
//! [`CallsHost`], sending its e-mails, and noting logons for its rules.

use std::sync::Arc;

use super::Bridge;
use crate::calls::service::{CallsHost, CallsService};
use crate::config::Config;
use crate::core::action::Action;
use crate::core::ids::MatrixUserId;
use crate::core::outbox::DeliveryError;
use crate::core::presence::{Presence, State};
use crate::core::setup::SetupError;
use crate::core::watch::Party;
use crate::store::{OutboxRow, now_ms};

impl Bridge {
    /// Deliver an [`Action::Mail`].
    pub(crate) async fn deliver_mail(&self, from: &str, to: &[String], raw: &str) -> Result<(), DeliveryError> {
        match self.mailer.get() {
            Some(mailer) => mailer.send(from, to, raw).await,
            // Mail queued under a config that had `missed_calls.mail`, and now it is gone: keep it.
            None => Err(DeliveryError::Transient("missed_calls.mail is not configured".into())),
        }
    }

    /// The admins' notice that a missed-call e-mail was refused for good (a 5xx): in the control
    /// room, so the loss is seen where the bridge is run, not only in its log.
    pub(crate) fn mail_refused_notice(&self, to: &[String], message_id: &str, reason: &str) -> Option<Action> {
        let room = self.control_room()?;
        let body =
            format!("A missed-call e-mail to {} was not sent: {reason} (Message-ID {message_id})", to.join(", "));
        Some(Action::MatrixNotice { room, body, html: None, reply_to: None })
    }

    /// A person's presence changed: remember when they were last seen available (the
    /// "repeated calls while the user has not logged on" exception).
    pub(crate) async fn note_logon(&self, who: &Party, presence: &Presence) {
        if presence.state == State::Offline || self.config.missed_calls.is_none() {
            return;
        }
        match self.store.record_logon(&who.key(), now_ms()).await {
            Ok(()) => tracing::debug!(%who, "last logon recorded"),
            Err(e) => tracing::warn!(%who, error = %e, "cannot record last logon"),
        }
    }

    /// Start the missed-call module (`None` when `missed_calls` is absent), with its SMTP
    /// transport when `missed_calls.mail` is configured.
    pub async fn start_calls(self: &Arc<Self>, config: &Config) -> Result<Option<Arc<CallsService>>, SetupError> {
        if let Some(mail) = config.missed_calls.as_ref().and_then(|m| m.mail.as_ref()) {
            let mailer = crate::calls::mailer::Mailer::new(&mail.smtp)?;
            let _ = self.mailer.set(mailer);
        }
        let Some(settings) = config.missed_calls_settings() else { return Ok(None) };
        let host: Arc<dyn CallsHost> = Arc::new(self.clone());
        CallsService::start(settings, self.store.clone(), host).await.map(Some)
    }
}

impl CallsHost for Arc<Bridge> {
    fn dispatch(&self, rows: Vec<OutboxRow>) {
        Bridge::dispatch(self, rows);
    }

    fn sms_on(&self) -> bool {
        self.sms().is_some()
    }

    fn sms_notice(&self, mobile: &str, caller: Option<&str>, text: String) -> Option<Action> {
        self.sms_notice_action(mobile, caller, text)
    }

    fn bot(&self) -> MatrixUserId {
        self.map.bot()
    }

    fn phone_presence(&self, changes: Vec<crate::calls::phone::PhoneChange>) {
        self.on_phone_presence(changes);
    }

    fn phone_presence_now(&self, busy: Vec<crate::calls::phone::PhoneChange>) {
        self.on_phone_presence_now(busy);
    }

    fn call_ringing(&self, ring: crate::calls::phone::PickupRing) {
        self.on_call_ringing(ring);
    }
}
