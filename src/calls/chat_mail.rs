//! The missed-chat summary by e-mail: two small templates of its own (en, de, in `templates/`;
//! `missed_calls.mail.templates_dir` replaces them as it does the missed-call mail's), rendered
//! with the missed-call mail settings (sender, time zone, language) and queued whole as
//! an outbox `Mail` action, so a retry sends the same message as missed-call mails do.

use std::time::{Duration, SystemTime};

use lettre::Message;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::mail::{self, MailError};
use super::service::CallsService;
use crate::core::action::Action;
use crate::core::watch::Party;

/// The two templates (`mail::CHAT_TEMPLATE_FILES`).
const SUBJECT: &str = "missed_chat_subject.txt.j2";
const BODY: &str = "missed_chat.txt.j2";

/// One conversation's missed chat, as the summary tells it.
#[derive(Debug, Clone)]
pub struct ChatSummary {
    /// The journal entry (with `unread_since`, it makes the Message-ID).
    pub entry_id: i64,
    /// Who wrote, as the reader knows them.
    pub from: String,
    pub unread_since: i64,
    pub messages: i64,
}

#[derive(Serialize)]
struct Context<'a> {
    from: &'a str,
    unread_time: String,
    messages: i64,
}

impl CallsService {
    /// The summary mail to `who` at `address` (`None`: their `missed_calls.users` e-mail), or
    /// `None` when no address is known or the mail cannot be built (the caller then tells them
    /// in the chat instead, so the summary is not lost).
    pub fn missed_chat_mail(&self, who: &Party, address: Option<&str>, summary: &ChatSummary) -> Option<Action> {
        let known = self.addresses_of(who).0;
        let Some(to) = address.map(str::to_owned).or(known) else {
            tracing::info!(%who, "no e-mail address for the missed-chat summary");
            return None;
        };
        let language = self.user_language(who);
        match self.build_chat_mail(&to, language.as_deref(), summary) {
            Ok(action) => Some(action),
            Err(e) => {
                tracing::warn!(%who, error = %e, "cannot build the missed-chat e-mail");
                None
            }
        }
    }

    fn build_chat_mail(&self, to: &str, language: Option<&str>, summary: &ChatSummary) -> Result<Action, MailError> {
        let live = self.live();
        let (render, templates) = (live.render.clone(), &live.templates);
        let language = templates.chat_language(language, &render.default_language);
        let ctx = Context {
            from: &mail::one_line(&summary.from),
            unread_time: mail::format_time(
                summary.unread_since,
                render.zone.offset_minutes(summary.unread_since),
                language,
            ),
            messages: summary.messages,
        };
        let subject = mail::one_line(&templates.render_chat(language, SUBJECT, &ctx)?);
        let body = templates.render_chat(language, BODY, &ctx)?;
        let message_id = message_id(summary, &render.message_id_domain);
        let message = Message::builder()
            .from(mail::mailbox(render.from_name.as_deref(), &render.from_address)?)
            .to(mail::mailbox(None, to)?)
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .date(SystemTime::UNIX_EPOCH + Duration::from_millis(crate::store::now_ms().max(0).unsigned_abs()))
            .body(body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        let raw = String::from_utf8(message.formatted()).map_err(|e| MailError::Build(e.to_string()))?;
        let envelope = message.envelope();
        Ok(Action::Mail {
            message_id,
            from: envelope.from().map(ToString::to_string).unwrap_or(render.from_address),
            to: envelope.to().iter().map(ToString::to_string).collect(),
            raw,
        })
    }
}

/// `<missed-chat.HASH@domain>`: the same for the same entry and unread message, so a summary
/// sent again (a retry) is recognisably the same mail.
fn message_id(summary: &ChatSummary, domain: &str) -> String {
    let mut h = Sha256::new();
    h.update(summary.entry_id.to_be_bytes());
    h.update(summary.unread_since.to_be_bytes());
    let digest = hex::encode(&h.finalize()[..16]);
    format!("<missed-chat.{digest}@{}>", mail::id_domain(domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> ChatSummary {
        ChatSummary { entry_id: 7, from: "Ada\r\nBcc: x@y.org".into(), unread_since: 1_700_000_000_000, messages: 3 }
    }

    #[test]
    fn both_languages_render_and_headers_stay_one_line() {
        let t = mail::Templates::builtin().unwrap();
        for lang in ["en", "de"] {
            let s = summary();
            let from = mail::one_line(&s.from);
            let ctx = Context { from: &from, unread_time: "t".into(), messages: s.messages };
            let subject = t.render_chat(lang, SUBJECT, &ctx).unwrap();
            assert!(mail::one_line(&subject).contains("Ada Bcc: x@y.org"), "{lang}: {subject}");
            assert!(t.render_chat(lang, BODY, &ctx).unwrap().contains("3"), "{lang}");
        }
        assert_eq!(t.chat_language(Some("fr"), "de"), "de");
        assert_eq!(t.chat_language(None, "fr"), "en");
    }

    #[test]
    fn a_template_directory_replaces_the_chat_mail_where_it_has_one() {
        let mut sources = vec![("xx".to_owned(), BODY.to_owned(), "custom {{ from }}".to_owned())];
        sources.push(("xx".to_owned(), SUBJECT.to_owned(), "subject".to_owned()));
        let t = mail::Templates::from_sources(sources).unwrap();
        assert_eq!(t.chat_language(Some("xx"), "en"), "xx");
        let ctx = Context { from: "Ada", unread_time: "t".into(), messages: 1 };
        assert_eq!(t.render_chat("xx", BODY, &ctx).unwrap(), "custom Ada");
    }

    #[test]
    fn message_ids_are_stable_per_unread_message() {
        let a = message_id(&summary(), "calls.test");
        assert_eq!(a, message_id(&summary(), "calls.test"));
        assert!(a.starts_with("<missed-chat.") && a.ends_with("@calls.test>"));
        let later = ChatSummary { unread_since: 1, ..summary() };
        assert_ne!(a, message_id(&later, "calls.test"));
    }
}
