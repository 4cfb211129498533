//! The notices of a finished call as outbox actions: the e-mail (rendered and stored whole, so
//! a retry sends the same message), the SMS to the person's mobile, and the chat message from
//! the bridge's bot or component.

use super::live::Live;
use super::mail;
use super::rules::{Channel, Notice};
use super::service::CallsService;
use crate::contacts::Contact;
use crate::core::action::{Action, Text};
use crate::core::ids::{BareJid, MatrixUserId};
use crate::core::watch::Party;
use crate::store::StoreError;

/// What is known about the two ends of a call: the caller's contact and the name of the number
/// they dialled.
#[derive(Clone, Copy, Default)]
pub(super) struct Known<'a> {
    pub caller: Option<&'a Contact>,
    pub called_name: Option<&'a str>,
}

impl CallsService {
    pub(super) fn mail_action(&self, live: &Live, notice: &Notice, known: Known<'_>) -> Option<Action> {
        let entry = live.directory.get(&notice.user)?;
        if entry.email.is_none() {
            tracing::info!(user = %notice.user, "no e-mail address; e-mail notice skipped");
            return None;
        }
        let message =
            match mail::build_message(&live.templates, &live.render, notice, entry, known.caller, known.called_name) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(user = %notice.user, error = %e, "cannot build the notice e-mail; skipped");
                    return None;
                }
            };
        let envelope = message.envelope().clone();
        let raw = match String::from_utf8(message.formatted()) {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(user = %notice.user, error = %e, "notice e-mail is not UTF-8; skipped");
                return None;
            }
        };
        let message_id =
            mail::message_id(notice.summary.call_id.as_str(), &notice.user, &live.render.message_id_domain);
        Some(Action::Mail {
            message_id,
            from: envelope.from().map(ToString::to_string).unwrap_or_else(|| live.render.from_address.clone()),
            to: envelope.to().iter().map(ToString::to_string).collect(),
            raw,
        })
    }

    /// The SMS notice to the person's mobile, from the caller's number when
    /// `sms_caller_as_sender` is on and the caller's number is known.
    pub(super) fn sms_action(&self, live: &Live, notice: &Notice, known: Known<'_>) -> Option<Action> {
        let entry = live.directory.get(&notice.user)?;
        let mobile = entry.mobile.as_deref()?;
        let text = match mail::render(&live.templates, &live.render, notice, entry, known.caller, known.called_name) {
            Ok(r) => sms_text(&chat_text(&r.text)),
            Err(e) => {
                tracing::warn!(user = %notice.user, error = %e, "cannot render the SMS notice; skipped");
                return None;
            }
        };
        let caller = notice.summary.caller.visible_number().filter(|_| self.settings.sms_caller_as_sender);
        let action = self.host.sms_notice(mobile, caller, text);
        if action.is_none() {
            tracing::info!(user = %notice.user, "SMS notice skipped: SMS is off or the mobile number is invalid");
        }
        action
    }

    /// Whether `notice` was to go by SMS as the person's own choice, and they may not have SMS
    /// any more (an admin revoked the permission after they chose it). Checked as each notice
    /// is made: the choice was checked only when it was made.
    pub(super) async fn sms_withdrawn(&self, live: &Live, notice: &Notice) -> Result<bool, StoreError> {
        let Some(party) = live.sms_chosen_by.get(&notice.user).and_then(|k| Party::from_key(k)) else {
            return Ok(false);
        };
        Ok(!self.store.has_permission(&party, crate::sms::PERMISSION).await?)
    }

    /// The notice in the person's chat with the bridge: the bot's DM on Matrix (if they have
    /// one), else a message from the component on XMPP; `note` is added below it.
    pub(super) async fn chat_action(
        &self,
        live: &Live,
        notice: &Notice,
        known: Known<'_>,
        note: Option<&str>,
    ) -> Result<Option<Action>, StoreError> {
        let Some(entry) = live.directory.get(&notice.user) else {
            return Ok(None);
        };
        let text = match mail::render(&live.templates, &live.render, notice, entry, known.caller, known.called_name) {
            Ok(r) => match note {
                Some(note) => format!("{}\n\n{note}", chat_text(&r.text)),
                None => chat_text(&r.text),
            },
            Err(e) => {
                tracing::warn!(user = %notice.user, error = %e, "cannot render the chat notice; skipped");
                return Ok(None);
            }
        };
        if let Some(user) = entry.matrix_user.as_deref().and_then(|u| MatrixUserId::parse(u).ok()) {
            if let Some(room) = self.store.bot_dm(&user).await? {
                return Ok(Some(Action::MatrixPost {
                    room,
                    user: self.host.bot(),
                    text: Text::notice(text),
                    nick: None,
                }));
            }
            if entry.xmpp_jid.is_none() {
                tracing::info!(%user, "no chat with the bridge bot yet; chat notice skipped");
                return Ok(None);
            }
        }
        Ok(entry
            .xmpp_jid
            .as_deref()
            .and_then(|j| BareJid::parse(j).ok())
            .map(|to| Action::XmppNotice { to, text: Text::notice(text) }))
    }
}

/// Below a chat notice that was to come by SMS.
pub(super) const SMS_WITHDRAWN: &str = "(You chose SMS for these notices, but SMS is not allowed for you now: the sms \
permission was withdrawn. So this notice comes here; `notifications` shows your choices.)";

/// The plain-text notice without the e-mail signature.
fn chat_text(text: &str) -> String {
    let body = text.split("\n-- \n").next().unwrap_or(text);
    body.trim().to_owned()
}

/// The notice as one line (SMS are short, and cost per part): the lines joined with ` | `,
/// runs of spaces collapsed.
fn sms_text(text: &str) -> String {
    let lines: Vec<String> =
        text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|l| !l.is_empty()).collect();
    lines.join(" | ")
}

pub(super) fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Sms => "sms",
        Channel::Chat => "chat",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sms_notices_are_one_line() {
        assert_eq!(
            super::sms_text("You missed a call.\n\nCaller:   Erika\nNumber:   +49 30 1\n"),
            "You missed a call. | Caller: Erika | Number: +49 30 1"
        );
    }
}
