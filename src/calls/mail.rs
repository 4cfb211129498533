//! The missed-call e-mail: rendering from templates and building the MIME message. Sending is
//! the outbox's job; this returns a [`lettre::Message`].
//!
//! Templates live in `templates/<language>/` (`subject.txt.j2`, `missed_call.txt.j2`,
//! `missed_call.html.j2`); the built-in `en` and `de` sets are compiled in and can be replaced
//! with [`Templates::from_sources`]. The HTML template is auto-escaped, so a caller name such as
//! `<script>` arrives as text. Header values (names, subject) lose every control character
//! before they reach lettre, so a name with CR/LF cannot add headers.
//!
//! The caller's number becomes a link with the configured [`LinkPrefix`]. The Message-ID is
//! derived from the call id and the recipient, so a notice retried after a restart carries the
//! same id and mail clients can drop the duplicate.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::event::UnixMillis;
use super::rules::{Notice, NoticeReason, UserEntry, UserId, number_key};
use super::zone::CallZone;
use crate::contacts::Contact;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid telephony link prefix {0:?}: {1}")]
    BadPrefix(String, &'static str),
    #[error("no e-mail address for {0}")]
    NoRecipient(UserId),
    #[error("invalid e-mail address {0:?}")]
    BadAddress(String),
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error("no templates for language {0:?} or the default")]
    NoLanguage(String),
    #[error("building the message: {0}")]
    Build(String),
}

/// Scheme put in front of the caller's number to make it a link.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LinkPrefix {
    /// `tel:` (RFC 3966), what phones and most mail clients understand.
    #[default]
    Tel,
    Phone,
    Callto,
    /// A validated scheme such as `sip:` or `x-ucc:`.
    Custom(String),
    /// Show the number as plain text.
    None,
}

/// Longest custom scheme, without its colon (the suite allows 9 characters plus the colon).
pub const MAX_CUSTOM_SCHEME: usize = 9;

impl LinkPrefix {
    /// Parse a configured value: `tel:`, `phone:`, `callto:`, `none` (or empty), or a custom
    /// scheme of at most 9 characters followed by `:`, with a letter first and only letters, digits,
    /// `+`, `-`, `.` before the colon (a URI scheme). Schemes that run code or read files are
    /// refused even when they fit.
    pub fn parse(value: &str) -> Result<Self, MailError> {
        let v = value.trim();
        let lower = v.to_ascii_lowercase();
        match lower.as_str() {
            "" | "none" => return Ok(LinkPrefix::None),
            "tel:" => return Ok(LinkPrefix::Tel),
            "phone:" => return Ok(LinkPrefix::Phone),
            "callto:" => return Ok(LinkPrefix::Callto),
            _ => {}
        }
        let bad = |why| Err(MailError::BadPrefix(value.to_owned(), why));
        let Some(scheme) = v.strip_suffix(':') else { return bad("must end with ':'") };
        if scheme.chars().count() > MAX_CUSTOM_SCHEME {
            return bad("more than 9 characters before the ':'");
        }
        if !scheme.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return bad("must start with a letter");
        }
        if !scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
            return bad("only letters, digits, '+', '-' and '.' may come before the ':'");
        }
        if matches!(scheme.to_ascii_lowercase().as_str(), "javascript" | "vbscript" | "data" | "file") {
            return bad("scheme not allowed");
        }
        Ok(LinkPrefix::Custom(v.to_owned()))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            LinkPrefix::Tel => Some("tel:"),
            LinkPrefix::Phone => Some("phone:"),
            LinkPrefix::Callto => Some("callto:"),
            LinkPrefix::Custom(p) => Some(p),
            LinkPrefix::None => None,
        }
    }

    /// The link target for a number: the prefix and the number's digits (and leading `+`).
    pub fn link(&self, number: &str) -> Option<String> {
        let digits = number_key(number);
        if digits.is_empty() {
            return None;
        }
        self.as_str().map(|p| format!("{p}{digits}"))
    }
}

/// Server-wide e-mail options.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub from_address: String,
    pub from_name: Option<String>,
    /// Right-hand side of Message-IDs (the bridge's mail domain).
    pub message_id_domain: String,
    pub link_prefix: LinkPrefix,
    /// Put the caller (when their e-mail is known) in From and Reply-To; our address then goes
    /// in Sender, so the message stays attributable to the bridge.
    pub caller_as_sender: bool,
    /// With `caller_as_sender`, the caller is the envelope sender too (`MAIL FROM`, which the
    /// receiving server records as Return-Path), so auto-replies (RFC 3834) reach them.
    pub caller_as_envelope_sender: bool,
    /// Attach the caller's vCard when a contact was found.
    pub attach_vcard: bool,
    pub default_language: String,
    /// The zone of the times in the message and of "the same day".
    pub zone: CallZone,
}

/// The three templates of one language.
pub const TEMPLATE_FILES: [&str; 3] = ["subject.txt.j2", "missed_call.txt.j2", "missed_call.html.j2"];

/// The two templates of the missed-chat summary mail (`chat_mail`) in one language.
pub const CHAT_TEMPLATE_FILES: [&str; 2] = ["missed_chat_subject.txt.j2", "missed_chat.txt.j2"];

const BUILTIN: [(&str, &str, &str); 10] = [
    ("en", "subject.txt.j2", include_str!("../../templates/en/subject.txt.j2")),
    ("en", "missed_call.txt.j2", include_str!("../../templates/en/missed_call.txt.j2")),
    ("en", "missed_call.html.j2", include_str!("../../templates/en/missed_call.html.j2")),
    ("en", "missed_chat_subject.txt.j2", include_str!("../../templates/en/missed_chat_subject.txt.j2")),
    ("en", "missed_chat.txt.j2", include_str!("../../templates/en/missed_chat.txt.j2")),
    ("de", "subject.txt.j2", include_str!("../../templates/de/subject.txt.j2")),
    ("de", "missed_call.txt.j2", include_str!("../../templates/de/missed_call.txt.j2")),
    ("de", "missed_call.html.j2", include_str!("../../templates/de/missed_call.html.j2")),
    ("de", "missed_chat_subject.txt.j2", include_str!("../../templates/de/missed_chat_subject.txt.j2")),
    ("de", "missed_chat.txt.j2", include_str!("../../templates/de/missed_chat.txt.j2")),
];

/// Compiled templates per language.
pub struct Templates {
    env: Environment<'static>,
    languages: Vec<String>,
    /// The languages with both [`CHAT_TEMPLATE_FILES`].
    chat_languages: Vec<String>,
}

impl Templates {
    /// The `en` and `de` templates shipped in `templates/`.
    pub fn builtin() -> Result<Self, MailError> {
        Self::from_sources(builtin_sources(|_, _| true))
    }

    /// Templates from `(language, file name, source)`; a language counts once it has all three
    /// [`TEMPLATE_FILES`]. The wiring reads them from a directory.
    pub fn from_sources(sources: impl IntoIterator<Item = (String, String, String)>) -> Result<Self, MailError> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(
            |name| {
                if name.ends_with(".html.j2") { AutoEscape::Html } else { AutoEscape::None }
            },
        );
        let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (lang, file, source) in sources {
            let name = format!("{lang}/{file}");
            env.add_template_owned(name.clone(), source)
                .map_err(|e| MailError::Template { name, message: e.to_string() })?;
            files.entry(lang).or_default().push(file);
        }
        let complete = |set: &[&str]| -> Vec<String> {
            files.iter().filter(|(_, f)| set.iter().all(|t| f.iter().any(|x| x == t))).map(|(l, _)| l.clone()).collect()
        };
        let (languages, chat_languages) = (complete(&TEMPLATE_FILES), complete(&CHAT_TEMPLATE_FILES));
        Ok(Self { env, languages, chat_languages })
    }

    pub fn languages(&self) -> &[String] {
        &self.languages
    }

    /// The missed-chat mail's language for someone who reads `wanted`: theirs when there are
    /// templates in it, else the default's, else English (built in, so always there).
    pub fn chat_language<'a>(&'a self, wanted: Option<&'a str>, default: &'a str) -> &'a str {
        [wanted, Some(default)]
            .into_iter()
            .flatten()
            .find(|l| self.chat_languages.iter().any(|have| have == l))
            .unwrap_or("en")
    }

    /// Render one of the [`CHAT_TEMPLATE_FILES`] in `lang`.
    pub fn render_chat(&self, lang: &str, file: &str, ctx: impl Serialize) -> Result<String, MailError> {
        let name = format!("{lang}/{file}");
        self.env
            .get_template(&name)
            .and_then(|t| t.render(minijinja::value::Serde(ctx)))
            .map_err(|e| MailError::Template { name, message: e.to_string() })
    }

    fn pick<'a>(&'a self, wanted: Option<&'a str>, default: &'a str) -> Result<&'a str, MailError> {
        [wanted, Some(default), Some("en")]
            .into_iter()
            .flatten()
            .find(|l| self.languages.iter().any(|have| have == l))
            .ok_or_else(|| MailError::NoLanguage(wanted.unwrap_or(default).to_owned()))
    }

    fn render(&self, lang: &str, file: &str, ctx: &MailContext) -> Result<String, MailError> {
        let name = format!("{lang}/{file}");
        self.env
            .get_template(&name)
            .and_then(|t| t.render(minijinja::value::Serde(ctx)))
            .map_err(|e| MailError::Template { name, message: e.to_string() })
    }
}

/// The built-in `(language, file, source)` for which `wanted(language, file)` holds.
pub fn builtin_sources(wanted: impl Fn(&str, &str) -> bool) -> Vec<(String, String, String)> {
    BUILTIN
        .iter()
        .filter(|(l, f, _)| wanted(l, f))
        .map(|(l, f, s)| (l.to_string(), f.to_string(), s.to_string()))
        .collect()
}

/// What the templates see.
#[derive(Debug, Clone, Serialize)]
struct MailContext {
    subject: String,
    reason: &'static str,
    caller_display: String,
    caller_name: Option<String>,
    caller_number: Option<String>,
    caller_link: Option<String>,
    caller_email: Option<String>,
    company: Option<String>,
    call_time: String,
    ring_seconds: i64,
    extension: String,
    answered_by: Option<String>,
    pickup: bool,
    called: String,
    /// The number the caller dialled (a hotline, a direct line), when the PBX said.
    called_number: Option<String>,
    /// Its name: a configured line name or the contact it belongs to.
    called_name: Option<String>,
}

/// A rendered notice, before it becomes MIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub language: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
}

/// Render the notice's texts for a recipient. `contact` is the caller's contact, if found;
/// `called_name` the name of the number they dialled, if known.
pub fn render(
    templates: &Templates,
    settings: &MailSettings,
    notice: &Notice,
    recipient: &UserEntry,
    contact: Option<&Contact>,
    called_name: Option<&str>,
) -> Result<RenderedMail, MailError> {
    let language = templates.pick(recipient.language.as_deref(), &settings.default_language)?.to_owned();
    let s = &notice.summary;
    let caller_number = s.caller.visible_number().map(str::to_owned);
    let caller_name = contact
        .and_then(Contact::display_name)
        .map(str::to_owned)
        .or_else(|| s.caller.name.clone())
        .map(|n| one_line(&n))
        .filter(|n| !n.is_empty());
    let caller_display = caller_name
        .clone()
        .or_else(|| caller_number.clone())
        .unwrap_or_else(|| if language == "de" { "unbekannt".to_owned() } else { "unknown caller".to_owned() });
    let mut ctx = MailContext {
        subject: String::new(),
        reason: match notice.reason {
            NoticeReason::Missed => "missed",
            NoticeReason::AnsweredElsewhere => "answered_elsewhere",
        },
        caller_display,
        caller_name,
        caller_link: caller_number.as_deref().and_then(|n| settings.link_prefix.link(n)),
        caller_number,
        caller_email: contact.and_then(|c| c.emails.first().cloned()),
        company: contact.and_then(|c| c.company.clone()),
        call_time: format_time(s.started_at, settings.zone.offset_minutes(s.started_at), &language),
        ring_seconds: notice.ring_ms / 1000,
        extension: notice.extension.to_string(),
        answered_by: s.answered.as_ref().map(|a| a.by.to_string()),
        pickup: s.answered.as_ref().is_some_and(|a| a.pickup),
        called: s.called.clone(),
        called_number: Some(one_line(&s.called)).filter(|c| !c.is_empty()),
        called_name: called_name.map(one_line).filter(|n| !n.is_empty()),
    };
    ctx.subject = one_line(&templates.render(&language, "subject.txt.j2", &ctx)?);
    let text = templates.render(&language, "missed_call.txt.j2", &ctx)?;
    let html = templates.render(&language, "missed_call.html.j2", &ctx)?;
    Ok(RenderedMail {
        language,
        subject: ctx.subject,
        text,
        html,
        message_id: message_id(notice.summary.call_id.as_str(), &notice.user, &settings.message_id_domain),
    })
}

/// Render and build the whole message.
pub fn build_message(
    templates: &Templates,
    settings: &MailSettings,
    notice: &Notice,
    recipient: &UserEntry,
    contact: Option<&Contact>,
    called_name: Option<&str>,
) -> Result<Message, MailError> {
    let rendered = render(templates, settings, notice, recipient, contact, called_name)?;
    let to_address = recipient.email.as_deref().ok_or_else(|| MailError::NoRecipient(recipient.id.clone()))?;
    let ours = mailbox(settings.from_name.as_deref(), &settings.from_address)?;
    let to = mailbox(None, to_address)?;

    let mut builder = Message::builder()
        .to(to.clone())
        .subject(rendered.subject.clone())
        .message_id(Some(rendered.message_id.clone()))
        .date(SystemTime::UNIX_EPOCH + Duration::from_millis(notice.summary.ended_at.max(0).unsigned_abs()));
    let caller_email = contact.and_then(|c| c.emails.first());
    builder = match caller_email {
        Some(email) if settings.caller_as_sender => {
            let name = contact.and_then(Contact::display_name).or(notice.summary.caller.name.as_deref());
            // A malformed address in the contact store must not stop the notice.
            match mailbox(name, email) {
                Ok(caller) if settings.caller_as_envelope_sender => {
                    // lettre would take the envelope from Sender (us); auto-replies and bounces
                    // follow the envelope, so it names the caller.
                    let envelope = Envelope::new(Some(caller.email.clone()), vec![to.email.clone()])
                        .map_err(|e| MailError::Build(e.to_string()))?;
                    builder.from(caller.clone()).reply_to(caller).sender(ours).envelope(envelope)
                }
                Ok(caller) => builder.from(caller.clone()).reply_to(caller).sender(ours),
                Err(_) => builder.from(ours),
            }
        }
        _ => builder.from(ours),
    };
    let alternative = MultiPart::alternative_plain_html(rendered.text, rendered.html);
    let vcard = contact.filter(|_| settings.attach_vcard).map(Contact::to_vcard);
    let result = match vcard {
        Some(card) => {
            let filename = format!("{}.vcf", file_stem(contact.and_then(Contact::display_name).unwrap_or("contact")));
            let content_type =
                ContentType::parse("text/vcard; charset=utf-8").map_err(|e| MailError::Build(e.to_string()))?;
            let attachment = Attachment::new(filename).body(card.into_bytes(), content_type);
            builder.multipart(MultiPart::mixed().multipart(alternative).singlepart(attachment))
        }
        None => builder.multipart(alternative),
    };
    result.map_err(|e| MailError::Build(e.to_string()))
}

/// `<hash@domain>`, the same for the same call and recipient.
pub fn message_id(call_id: &str, user: &UserId, domain: &str) -> String {
    let mut h = Sha256::new();
    h.update(call_id.as_bytes());
    h.update([0]);
    h.update(user.as_str().as_bytes());
    let digest = hex::encode(&h.finalize()[..16]);
    format!("<missed-call.{digest}@{}>", id_domain(domain))
}

/// The right-hand side of a Message-ID: the configured domain's safe characters.
pub(super) fn id_domain(domain: &str) -> String {
    let domain: String = domain.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')).collect();
    if domain.is_empty() { "ucbridge.invalid".to_owned() } else { domain }
}

pub(super) fn mailbox(name: Option<&str>, address: &str) -> Result<Mailbox, MailError> {
    let address = address.trim().parse().map_err(|_| MailError::BadAddress(one_line(address)))?;
    let name = name.map(one_line).filter(|n| !n.is_empty());
    Ok(Mailbox::new(name, address))
}

/// Control characters (CR, LF, NUL, …) dropped and whitespace runs collapsed: safe for a header.
pub fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn file_stem(name: &str) -> String {
    let stem: String =
        name.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(48).collect();
    if stem.trim_matches('_').is_empty() { "contact".to_owned() } else { stem }
}

/// `YYYY-MM-DD HH:MM` (en) or `DD.MM.YYYY HH:MM` (de), with the offset shown.
pub fn format_time(at: UnixMillis, utc_offset_minutes: i32, language: &str) -> String {
    let local_secs = at.div_euclid(1000) + i64::from(utc_offset_minutes) * 60;
    let (days, secs) = (local_secs.div_euclid(86_400), local_secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm) = (secs / 3600, secs % 3600 / 60);
    let sign = if utc_offset_minutes < 0 { '-' } else { '+' };
    let off = utc_offset_minutes.unsigned_abs();
    let zone = if off == 0 { "UTC".to_owned() } else { format!("UTC{sign}{:02}:{:02}", off / 60, off % 60) };
    if language == "de" {
        format!("{d:02}.{m:02}.{y:04} {hh:02}:{mm:02} {zone}")
    } else {
        format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} {zone}")
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use mailparse::{MailHeaderMap, ParsedMail};

    use super::*;
    use crate::calls::event::{Caller, Extension};
    use crate::calls::model::script::*;
    use crate::calls::rules::{Channel, Notice};
    use crate::contacts::parse_vcards;

    fn settings(prefix: LinkPrefix) -> MailSettings {
        MailSettings {
            from_address: "bridge@example.org".into(),
            from_name: Some("Phone system".into()),
            message_id_domain: "example.org".into(),
            link_prefix: prefix,
            caller_as_sender: false,
            caller_as_envelope_sender: false,
            attach_vcard: false,
            default_language: "en".into(),
            zone: CallZone::Fixed(60),
        }
    }

    fn notice_from(caller: Caller) -> Notice {
        let mut summary = run(direct_unanswered("call-42", "201", 12));
        summary.caller = caller;
        Notice {
            user: UserId::new("@alice:example.org"),
            extension: Extension::new("201"),
            ring_ms: 12_000,
            reason: NoticeReason::Missed,
            channels: vec![Channel::Email],
            summary,
        }
    }

    fn notice() -> Notice {
        notice_from(Caller { number: Some("+49 30 1234567".into()), name: Some("Ada".into()), hidden: false })
    }

    fn alice(lang: Option<&str>) -> UserEntry {
        UserEntry {
            email: Some("alice@example.org".into()),
            language: lang.map(str::to_owned),
            ..UserEntry::new("@alice:example.org", &["201"])
        }
    }

    fn contact() -> Contact {
        parse_vcards(include_str!("../../tests/fixtures/contacts/vcard3.vcf")).expect("fixture").remove(0)
    }

    fn build(s: &MailSettings, n: &Notice, u: &UserEntry, c: Option<&Contact>) -> Vec<u8> {
        let t = Templates::builtin().expect("templates compile");
        build_message(&t, s, n, u, c, None).expect("builds").formatted()
    }

    fn bodies(mail: &ParsedMail) -> (String, String) {
        let mut text = String::new();
        let mut html = String::new();
        for part in mail.parts() {
            match part.ctype.mimetype.as_str() {
                "text/plain" => text = part.get_body().expect("decodes"),
                "text/html" => html = part.get_body().expect("decodes"),
                _ => {}
            }
        }
        (text, html)
    }

    #[test]
    fn english_notice_headers_and_bodies() {
        let raw = build(&settings(LinkPrefix::Tel), &notice(), &alice(None), None);
        let mail = mailparse::parse_mail(&raw).expect("valid MIME");
        let h = &mail.headers;
        assert_eq!(h.get_first_value("Subject").as_deref(), Some("Missed call from Ada"));
        assert_eq!(h.get_first_value("To").as_deref(), Some("alice@example.org"));
        assert_eq!(h.get_first_value("From").as_deref(), Some("\"Phone system\" <bridge@example.org>"));
        assert!(h.get_first_value("Reply-To").is_none());
        assert_eq!(mail.ctype.mimetype, "multipart/alternative");
        let id = h.get_first_value("Message-ID").expect("has an id");
        assert!(id.starts_with("<missed-call.") && id.ends_with("@example.org>"), "{id}");
        let (text, html) = bodies(&mail);
        assert!(text.contains("You missed a call at extension 201."), "{text}");
        assert!(text.contains("Number:   +49 30 1234567"));
        assert!(text.contains("Call back: tel:+49301234567"));
        assert!(text.contains("Rang for: 12 s"));
        assert!(text.contains("When:     2023-11-14 23:13 UTC+01:00"), "{text}");
        assert!(html.contains(r#"<a href="tel:+49301234567">+49 30 1234567</a>"#), "{html}");
        assert!(html.contains("<html lang=\"en\">"));
    }

    #[test]
    fn german_notice() {
        let raw = build(&settings(LinkPrefix::Tel), &notice(), &alice(Some("de")), None);
        let mail = mailparse::parse_mail(&raw).expect("valid MIME");
        assert_eq!(mail.headers.get_first_value("Subject").as_deref(), Some("Verpasster Anruf von Ada"));
        let (text, html) = bodies(&mail);
        assert!(text.contains("Sie haben einen Anruf an Nebenstelle 201 verpasst."), "{text}");
        assert!(text.contains("Zeit:     14.11.2023 23:13 UTC+01:00"), "{text}");
        assert!(html.contains("<html lang=\"de\">") && html.contains("Klingeldauer"));
    }

    #[test]
    fn unknown_language_falls_back_to_the_default() {
        let t = Templates::builtin().expect("compiles");
        assert_eq!(t.languages(), ["de", "en"]);
        let mut s = settings(LinkPrefix::Tel);
        s.default_language = "de".into();
        let r = render(&t, &s, &notice(), &alice(Some("fr")), None, None).expect("renders");
        assert_eq!(r.language, "de");
        let only_subject = Templates::from_sources([("xx".into(), "subject.txt.j2".into(), "hi".into())]);
        assert!(only_subject.expect("compiles").languages().is_empty(), "incomplete sets are not offered");
        let t = Templates::from_sources(Vec::new()).expect("empty is fine");
        assert!(matches!(render(&t, &s, &notice(), &alice(None), None, None), Err(MailError::NoLanguage(_))));
    }

    #[test]
    fn answered_elsewhere_wording() {
        let mut n = notice();
        n.reason = NoticeReason::AnsweredElsewhere;
        n.summary.answered =
            Some(crate::calls::model::Answer { by: Extension::new("205"), at: T0 + 5000, pickup: true });
        let t = Templates::builtin().expect("compiles");
        let r = render(&t, &settings(LinkPrefix::Tel), &n, &alice(None), None, None).expect("renders");
        assert_eq!(r.subject, "Call from Ada taken by 205");
        assert!(r.text.contains("was taken by 205 (call pickup)."), "{}", r.text);
        let r = render(&t, &settings(LinkPrefix::Tel), &n, &alice(Some("de")), None, None).expect("renders");
        assert_eq!(r.subject, "Anruf von Ada von 205 angenommen");
    }

    #[test]
    fn every_link_prefix() {
        let t = Templates::builtin().expect("compiles");
        let cases = [
            (LinkPrefix::Tel, Some("tel:+49301234567")),
            (LinkPrefix::Phone, Some("phone:+49301234567")),
            (LinkPrefix::Callto, Some("callto:+49301234567")),
            (LinkPrefix::parse("sip:").expect("valid"), Some("sip:+49301234567")),
            (LinkPrefix::parse("x-ucc.1+:").expect("valid"), Some("x-ucc.1+:+49301234567")),
            (LinkPrefix::None, None),
        ];
        for (prefix, expected) in cases {
            let r = render(&t, &settings(prefix.clone()), &notice(), &alice(None), None, None).expect("renders");
            match expected {
                Some(link) => {
                    assert!(
                        r.html.contains(&format!("<a href=\"{link}\">+49 30 1234567</a>")),
                        "{prefix:?}: {}",
                        r.html
                    );
                    assert!(r.text.contains(&format!("Call back: {link}")), "{prefix:?}");
                }
                None => {
                    assert!(
                        !r.html.contains("<a href=\"tel") && r.html.contains("<td>+49 30 1234567</td>"),
                        "{}",
                        r.html
                    );
                    assert!(!r.text.contains("Call back"));
                }
            }
        }
    }

    #[test]
    fn prefix_validation() {
        assert_eq!(LinkPrefix::parse("TEL:").ok(), Some(LinkPrefix::Tel));
        assert_eq!(LinkPrefix::parse("phone:").ok(), Some(LinkPrefix::Phone));
        assert_eq!(LinkPrefix::parse("callto:").ok(), Some(LinkPrefix::Callto));
        assert_eq!(LinkPrefix::parse("").ok(), Some(LinkPrefix::None));
        assert_eq!(LinkPrefix::parse("none").ok(), Some(LinkPrefix::None));
        assert_eq!(LinkPrefix::parse("abcdefgh:").ok(), Some(LinkPrefix::Custom("abcdefgh:".into())));
        // 9 characters plus the colon is the longest.
        assert_eq!(LinkPrefix::parse("abcdefghi:").ok(), Some(LinkPrefix::Custom("abcdefghi:".into())));
        for bad in ["abcdefghij:", "sip", "1sip:", "si p:", "s\"ip:", "<a>:", "vbscript:", "data:", "file:", ":"] {
            assert!(matches!(LinkPrefix::parse(bad), Err(MailError::BadPrefix(..))), "{bad:?} must be refused");
        }
        assert_eq!(LinkPrefix::Tel.link("withheld"), None);
    }

    #[test]
    fn script_in_names_is_escaped_in_html() {
        let n = notice_from(Caller {
            number: Some("+49 30 1234567".into()),
            name: Some("<script>alert('x')</script> & Co".into()),
            hidden: false,
        });
        let raw = build(&settings(LinkPrefix::Tel), &n, &alice(None), None);
        let mail = mailparse::parse_mail(&raw).expect("valid MIME");
        let (text, html) = bodies(&mail);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt; &amp; Co"), "{html}");
        assert!(text.contains("<script>alert('x')</script> & Co"), "plain text stays as it is");
        assert_eq!(
            mail.headers.get_first_value("Subject").as_deref(),
            Some("Missed call from <script>alert('x')</script> & Co")
        );
    }

    #[test]
    fn cr_lf_in_names_cannot_inject_headers() {
        let mut c = contact();
        c.name = Some("Evil\r\nBcc: victim@example.com\r\nX-Injected: yes".into());
        c.emails = vec!["evil@example.com".into()];
        let mut s = settings(LinkPrefix::Tel);
        s.caller_as_sender = true;
        let n = notice_from(Caller { number: Some("+4930123".into()), name: Some("A\nB".into()), hidden: false });
        let raw = build(&s, &n, &alice(None), Some(&c));
        let mail = mailparse::parse_mail(&raw).expect("valid MIME");
        assert!(mail.headers.get_first_value("Bcc").is_none());
        assert!(mail.headers.get_first_value("X-Injected").is_none());
        let subject = mail.headers.get_first_value("Subject").expect("subject");
        assert_eq!(subject, "Missed call from Evil Bcc: victim@example.com X-Injected: yes");
        let from = mail.headers.get_first_value("From").expect("from");
        assert!(from.contains("evil@example.com") && !from.contains('\n'), "{from}");
        let raw_text = String::from_utf8_lossy(&raw);
        assert!(!raw_text.contains("\r\nBcc:") && !raw_text.contains("\r\nX-Injected:"));
    }

    #[test]
    fn caller_as_sender_sets_from_reply_to_and_sender() {
        let mut s = settings(LinkPrefix::Tel);
        s.caller_as_sender = true;
        let raw = build(&s, &notice(), &alice(None), Some(&contact()));
        let mail = mailparse::parse_mail(&raw).expect("valid MIME");
        let h = &mail.headers;
        assert_eq!(h.get_first_value("From").as_deref(), Some("\"Dr. Ada Lovelace\" <ada@analytical.example>"));
        assert_eq!(h.get_first_value("Reply-To").as_deref(), Some("\"Dr. Ada Lovelace\" <ada@analytical.example>"));
        assert_eq!(h.get_first_value("Sender").as_deref(), Some("\"Phone system\" <bridge@example.org>"));
        let (text, _) = bodies(&mail);
        assert!(text.contains("Company:  Analytical Engines Ltd."), "{text}");
        assert!(text.contains("E-mail:   ada@analytical.example"));
        // Without a known caller e-mail the bridge stays the sender.
        let raw = build(&s, &notice(), &alice(None), None);
        let mail = mailparse::parse_mail(&raw).expect("valid MIME");
        assert_eq!(mail.headers.get_first_value("From").as_deref(), Some("\"Phone system\" <bridge@example.org>"));
        // A broken address in the store does not stop the notice.
        let mut broken = contact();
        broken.emails = vec!["not an address".into()];
        let raw = build(&s, &notice(), &alice(None), Some(&broken));
        let mail = mailparse::parse_mail(&raw).expect("valid MIME");
        assert_eq!(mail.headers.get_first_value("From").as_deref(), Some("\"Phone system\" <bridge@example.org>"));
    }

    #[test]
    fn called_line_with_its_name() {
        let t = Templates::builtin().expect("compiles");
        let s = settings(LinkPrefix::Tel);
        let r = render(&t, &s, &notice(), &alice(None), None, Some("Sales hotline")).expect("renders");
        assert!(
            r.text.contains("Number:   +49 30 1234567\nCalled:   +4930555100 (Sales hotline)\nWhen:"),
            "{}",
            r.text
        );
        assert!(r.html.contains("<th align=\"left\">Called</th><td>+4930555100 (Sales hotline)</td>"), "{}", r.html);
        let r = render(&t, &s, &notice(), &alice(Some("de")), None, Some("Vertrieb")).expect("renders");
        assert!(r.text.contains("Gewählt:  +4930555100 (Vertrieb)\n"), "{}", r.text);
        // Without a name only the number; without a called number no line at all.
        let r = render(&t, &s, &notice(), &alice(None), None, None).expect("renders");
        assert!(r.text.contains("Called:   +4930555100\n"), "{}", r.text);
        let mut n = notice();
        n.summary.called = String::new();
        let r = render(&t, &s, &n, &alice(None), None, Some("ignored")).expect("renders");
        assert!(!r.text.contains("Called") && !r.html.contains("Called"), "{}", r.text);
    }

    #[test]
    fn caller_as_envelope_sender_only_when_allowed() {
        let t = Templates::builtin().expect("compiles");
        let mut s = settings(LinkPrefix::Tel);
        s.caller_as_sender = true;
        let envelope_from = |s: &MailSettings, c: Option<&Contact>| {
            let m = build_message(&t, s, &notice(), &alice(None), c, None).expect("builds");
            let raw = m.formatted();
            let parsed = mailparse::parse_mail(&raw).expect("valid MIME");
            assert_eq!(
                parsed.headers.get_first_value("Sender").as_deref(),
                Some("\"Phone system\" <bridge@example.org>").filter(|_| c.is_some())
            );
            assert!(parsed.headers.get_first_value("Return-Path").is_none(), "the receiving server writes it");
            m.envelope().from().map(ToString::to_string)
        };
        assert_eq!(envelope_from(&s, Some(&contact())).as_deref(), Some("bridge@example.org"));
        s.caller_as_envelope_sender = true;
        assert_eq!(envelope_from(&s, Some(&contact())).as_deref(), Some("ada@analytical.example"));
        // No caller address known: we stay the envelope sender.
        assert_eq!(envelope_from(&s, None).as_deref(), Some("bridge@example.org"));
    }

    #[test]
    fn vcard_attachment() {
        let mut s = settings(LinkPrefix::Tel);
        s.attach_vcard = true;
        let c = contact();
        let raw = build(&s, &notice(), &alice(None), Some(&c));
        let mail = mailparse::parse_mail(&raw).expect("valid MIME");
        assert_eq!(mail.ctype.mimetype, "multipart/mixed");
        assert_eq!(mail.subparts[0].ctype.mimetype, "multipart/alternative");
        let card = &mail.subparts[1];
        assert_eq!(card.ctype.mimetype, "text/vcard");
        let disposition = card.get_content_disposition();
        assert_eq!(disposition.params.get("filename").map(String::as_str), Some("Dr__Ada_Lovelace.vcf"));
        assert_eq!(card.get_body_raw().expect("decodes"), c.vcard.clone().expect("raw").into_bytes());
        // Off, or no contact: no attachment.
        let raw = build(&s, &notice(), &alice(None), None);
        assert_eq!(mailparse::parse_mail(&raw).expect("valid").ctype.mimetype, "multipart/alternative");
    }

    #[test]
    fn hidden_caller() {
        let raw = build(&settings(LinkPrefix::Tel), &notice_from(Caller::hidden()), &alice(None), None);
        let mail = mailparse::parse_mail(&raw).expect("valid MIME");
        assert_eq!(mail.headers.get_first_value("Subject").as_deref(), Some("Missed call from unknown caller"));
        let (text, html) = bodies(&mail);
        assert!(text.contains("Number:   withheld") && !text.contains("Call back"));
        assert!(!html.contains("href=\"tel"));
    }

    #[test]
    fn message_id_is_stable_per_call_and_recipient() {
        let alice = UserId::new("@alice:example.org");
        let bob = UserId::new("@bob:example.org");
        let a1 = message_id("call-42", &alice, "example.org");
        assert_eq!(a1, message_id("call-42", &alice, "example.org"));
        assert_ne!(a1, message_id("call-42", &bob, "example.org"));
        assert_ne!(a1, message_id("call-43", &alice, "example.org"));
        assert!(message_id("c", &alice, "bad>\r\ndomain").ends_with("@baddomain>"));
        let t = Templates::builtin().expect("compiles");
        let first = build_message(&t, &settings(LinkPrefix::Tel), &notice(), &alice_entry(), None, None);
        let second = build_message(&t, &settings(LinkPrefix::Tel), &notice(), &alice_entry(), None, None);
        let id = |m: Result<Message, MailError>| {
            let raw = m.expect("builds").formatted();
            mailparse::parse_mail(&raw).expect("valid").headers.get_first_value("Message-ID")
        };
        assert_eq!(id(first), id(second));
    }

    fn alice_entry() -> UserEntry {
        alice(None)
    }

    #[test]
    fn missing_or_bad_recipient_address() {
        let t = Templates::builtin().expect("compiles");
        let mut u = alice(None);
        u.email = None;
        assert!(matches!(
            build_message(&t, &settings(LinkPrefix::Tel), &notice(), &u, None, None),
            Err(MailError::NoRecipient(_))
        ));
        u.email = Some("alice@example.org\r\nBcc: x@y".into());
        assert!(matches!(
            build_message(&t, &settings(LinkPrefix::Tel), &notice(), &u, None, None),
            Err(MailError::BadAddress(_))
        ));
    }

    #[test]
    fn time_formatting() {
        assert_eq!(format_time(0, 0, "en"), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(T0, 0, "en"), "2023-11-14 22:13 UTC");
        assert_eq!(format_time(T0, -330, "de"), "14.11.2023 16:43 UTC-05:30");
        assert_eq!(format_time(951_782_400_000, 0, "en"), "2000-02-29 00:00 UTC");
        assert_eq!(one_line(" a\r\n\tb\u{0}c  "), "a b c");
    }
}
