//! The `missed_calls:` section of the config file, as this module reads it: the serde types
//! with their defaults (a line owner of `users:` is a [`UserEntry`]). The config
//! (`crate::config`) composes them into the file and checks them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::pickup::PickupGroups;
use super::rules::{RuleSettings, UserEntry};
use super::webhook;
use super::zone::CallZone;

/// `missed_calls:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissedCalls {
    pub webhook: CallsWebhook,
    /// Who is told and when (policy, exceptions, block list, channels); see `calls::rules`.
    #[serde(default)]
    pub rules: RuleSettings,
    /// The line owners: extensions and lines per person, and how to reach them.
    #[serde(default)]
    pub users: Vec<UserEntry>,
    /// Names of the numbers callers dial (hotlines, company lines), shown in the notices as
    /// the called line.
    #[serde(default)]
    pub lines: Vec<LineName>,
    #[serde(default)]
    pub contacts: CallContacts,
    /// E-mail notices; required when `rules.channels` contains `email`.
    #[serde(default)]
    pub mail: Option<CallMail>,
    /// Bearer token of `GET /calls/journal`; without it the endpoint answers 404.
    #[serde(default)]
    pub journal_token: Option<String>,
    /// A call with no event for this long is closed as if it ended (its end was lost).
    #[serde(default = "default_idle_expiry")]
    pub idle_expiry_secs: u64,
    /// An Asterisk manager interface to read call events from.
    #[serde(default)]
    pub ami: Option<CallsAmi>,
    /// SMS notices go out from the caller's number (when known) instead of `sms.sender`.
    #[serde(default)]
    pub sms_caller_as_sender: bool,
    /// Line owners are shown busy in the chat while a call of theirs is connected.
    #[serde(default)]
    pub presence_from_calls: PresenceFromCalls,
    /// Who may pick up whose calls (pickup alerts): `everyone`, or groups of extensions.
    #[serde(default)]
    pub pickup_groups: PickupGroups,
}

/// `missed_calls.presence_from_calls:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceFromCalls {
    #[serde(default)]
    pub enabled: bool,
    /// The note shown with the busy state, per language (the line owner's, else
    /// `mail.default_language`, else `en`).
    #[serde(default = "default_call_notes")]
    pub note: BTreeMap<String, String>,
}

impl Default for PresenceFromCalls {
    fn default() -> Self {
        Self { enabled: false, note: default_call_notes() }
    }
}

impl PresenceFromCalls {
    /// The note in `language`, else in English, else any.
    pub fn note_in(&self, language: &str) -> String {
        self.note
            .get(language)
            .or_else(|| self.note.get("en"))
            .or_else(|| self.note.values().next())
            .cloned()
            .unwrap_or_default()
    }
}

fn default_call_notes() -> BTreeMap<String, String> {
    BTreeMap::from([("en".to_owned(), "On the phone".to_owned()), ("de".to_owned(), "Am Telefon".to_owned())])
}

/// `missed_calls.webhook:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsWebhook {
    /// Shared secret of the HMAC-SHA256 signature.
    pub secret: String,
    /// How far the signed timestamp may be from our clock, in seconds (both ways).
    #[serde(default = "default_window")]
    pub replay_window_secs: u64,
}

/// `missed_calls.contacts:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallContacts {
    /// Country whose numbering plan applies to numbers without a `+` (ISO code, e.g. `DE`).
    pub region: String,
    /// vCard (`.vcf`) and CSV (`.csv`) files read at start.
    pub files: Vec<PathBuf>,
}

impl Default for CallContacts {
    fn default() -> Self {
        Self { region: "DE".into(), files: Vec::new() }
    }
}

/// `missed_calls.mail:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallMail {
    pub smtp: Smtp,
    pub from_address: String,
    #[serde(default)]
    pub from_name: Option<String>,
    /// Right-hand side of the notices' Message-IDs.
    pub message_id_domain: String,
    /// `tel:` (default), `phone:`, `callto:`, a custom scheme of at most 9 characters followed
    /// by `:`, or `none`.
    #[serde(default = "default_prefix")]
    pub link_prefix: String,
    #[serde(default)]
    pub caller_as_sender: bool,
    /// With `caller_as_sender`, the caller is also the envelope sender (SMTP `MAIL FROM`, the
    /// Return-Path), so auto-replies and bounces go to them; see README on SPF and DMARC.
    #[serde(default)]
    pub caller_as_envelope_sender: bool,
    #[serde(default)]
    pub attach_vcard: bool,
    #[serde(default = "default_language")]
    pub default_language: String,
    /// IANA time zone of the times shown and of "the same day" (`Europe/Berlin`); default UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The older fixed offset from UTC in minutes, without daylight saving; still read when
    /// `time_zone` is absent (setting both is an error).
    #[serde(default)]
    pub utc_offset_minutes: Option<i32>,
    /// Directory with `<language>/{subject.txt.j2,missed_call.txt.j2,missed_call.html.j2}`;
    /// absent: the built-in `en` and `de` templates.
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
}

impl CallMail {
    /// The zone from `time_zone` or the older `utc_offset_minutes`.
    pub fn zone(&self) -> Result<CallZone, String> {
        match (&self.time_zone, self.utc_offset_minutes) {
            (Some(_), Some(_)) => Err("set time_zone or the older utc_offset_minutes, not both".into()),
            (Some(name), None) => CallZone::named(name).map_err(|e| e.to_string()),
            (None, Some(m)) => CallZone::fixed(m).map_err(|e| e.to_string()),
            (None, None) => Ok(CallZone::default()),
        }
    }
}

/// `missed_calls.lines[]`: a number of ours that callers dial, with the name to show.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineName {
    pub number: String,
    pub name: String,
}

/// `missed_calls.mail.smtp:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    /// Default: 25 (`none`), 587 (`starttls`), 465 (`tls`).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The longest one message's SMTP exchange (connect to the final answer) may take; then it
    /// is retried.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_secs: u64,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the same host or a test sink).
    None,
    /// STARTTLS, required.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl Smtp {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }
}

/// `missed_calls.ami:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsAmi {
    /// `host:port` of the Asterisk manager interface (5038).
    pub address: String,
    pub username: String,
    pub secret: String,
    /// Extensions of the PBX; empty: any number of at most 5 digits counts as one.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Seconds between AMI `Ping`s; an answer missing for as long marks the connection dead
    /// (reconnect and log in again), so a silent drop is noticed within twice this.
    #[serde(default = "default_ami_keepalive")]
    pub keepalive_secs: u64,
}

fn default_window() -> u64 {
    webhook::DEFAULT_WINDOW_SECS
}
fn default_idle_expiry() -> u64 {
    3600
}
fn default_prefix() -> String {
    "tel:".into()
}
fn default_language() -> String {
    "en".into()
}
fn default_ami_keepalive() -> u64 {
    super::ami::DEFAULT_KEEPALIVE.as_secs()
}
fn default_smtp_timeout() -> u64 {
    30
}
