//! `missed_calls:` — missed-call notifications (DESIGN.md "Missed calls", `src/calls/`). The
//! section is optional: without it the module is off (no route, no AMI connection).

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::calls::mail::LinkPrefix;
use crate::calls::rules::{Channel, RuleSettings, UserEntry, UserId};
use crate::calls::{event::Extension, webhook};
use crate::core::ids::{BareJid, MatrixUserId};

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
    pub users: Vec<CallUser>,
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

/// One entry of `missed_calls.users:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallUser {
    pub id: String,
    #[serde(default)]
    pub extensions: Vec<String>,
    #[serde(default)]
    pub lines: Vec<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    /// `false`: this person wants no notices; absent: `rules.default_opt_in`.
    #[serde(default)]
    pub opt_in: Option<bool>,
    /// Matrix account for chat notices (in their chat with the bridge bot).
    #[serde(default)]
    pub matrix_user: Option<String>,
    /// XMPP account for chat notices (a message from the component).
    #[serde(default)]
    pub xmpp_jid: Option<String>,
    /// This person's channels; absent: every channel in `rules.channels`.
    #[serde(default)]
    pub channels: Option<Vec<Channel>>,
}

impl CallUser {
    /// The rules engine's view of this person.
    pub fn entry(&self) -> UserEntry {
        UserEntry {
            id: UserId::new(&self.id),
            extensions: self.extensions.iter().map(|e| Extension::new(e.trim())).collect(),
            lines: self.lines.clone(),
            email: self.email.clone(),
            mobile: self.mobile.clone(),
            language: self.language.clone(),
            opt_in: self.opt_in,
            chat: self.matrix_user.is_some() || self.xmpp_jid.is_some(),
            channels: self.channels.clone(),
        }
    }

    /// Keys of this person's chat accounts in `user_logon` (`Party::key` form).
    pub fn logon_keys(&self) -> Vec<String> {
        let m = self.matrix_user.iter().map(|u| format!("matrix:{u}"));
        m.chain(self.xmpp_jid.iter().map(|j| format!("xmpp:{j}"))).collect()
    }
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
    /// `tel:` (default), `phone:`, `callto:`, a custom scheme of at most 9 characters ending in
    /// `:`, or `none`.
    #[serde(default = "default_prefix")]
    pub link_prefix: String,
    #[serde(default)]
    pub caller_as_sender: bool,
    #[serde(default)]
    pub attach_vcard: bool,
    #[serde(default = "default_language")]
    pub default_language: String,
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// Directory with `<language>/{subject.txt.j2,missed_call.txt.j2,missed_call.html.j2}`;
    /// absent: the built-in `en` and `de` templates.
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
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
    crate::calls::ami::DEFAULT_KEEPALIVE.as_secs()
}
fn default_smtp_timeout() -> u64 {
    30
}

impl MissedCalls {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.webhook.secret.trim().is_empty() {
            return Err(invalid("missed_calls.webhook.secret", "must not be empty"));
        }
        if !(1..=86_400).contains(&self.webhook.replay_window_secs) {
            return Err(invalid("missed_calls.webhook.replay_window_secs", "must be between 1 and 86400"));
        }
        if self.rules.exceptions.min_ring_secs > 600 {
            return Err(invalid("missed_calls.rules.exceptions.min_ring_secs", "must be at most 600"));
        }
        if self.rules.channels.is_empty() {
            return Err(invalid("missed_calls.rules.channels", "must name at least one of email, sms, chat"));
        }
        if self.idle_expiry_secs < 60 {
            return Err(invalid("missed_calls.idle_expiry_secs", "must be at least 60"));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let bad = |what: &str| invalid("missed_calls.users", format!("entry {i} ({}): {what}", u.id));
            if u.id.trim().is_empty() {
                return Err(bad("`id` must not be empty"));
            }
            if !ids.insert(u.id.as_str()) {
                return Err(bad("`id` is used twice"));
            }
            if u.extensions.is_empty() && u.lines.is_empty() {
                return Err(bad("needs `extensions` or `lines`"));
            }
            if u.extensions.iter().chain(&u.lines).any(|e| e.trim().is_empty()) {
                return Err(bad("empty extension or line"));
            }
            if let Some(email) = &u.email
                && email.parse::<lettre::Address>().is_err()
            {
                return Err(bad("`email` is not an e-mail address"));
            }
            if let Some(m) = &u.matrix_user
                && MatrixUserId::parse(m).is_err()
            {
                return Err(bad("`matrix_user` is not a Matrix user ID like @anna:example.org"));
            }
            if let Some(j) = &u.xmpp_jid
                && BareJid::parse(j).is_err()
            {
                return Err(bad("`xmpp_jid` is not a bare JID like anna@example.org"));
            }
            if u.language.as_deref().is_some_and(|l| l.trim().is_empty()) {
                return Err(bad("`language` must not be empty"));
            }
        }
        if crate::core::phone::Region::parse(&self.contacts.region).is_err() {
            return Err(invalid("missed_calls.contacts.region", "must be a country code like DE or US"));
        }
        if self.journal_token.as_deref().is_some_and(|t| t.len() < 16) {
            return Err(invalid("missed_calls.journal_token", "must be at least 16 characters"));
        }
        match &self.mail {
            None if self.rules.channels.contains(&Channel::Email) => {
                return Err(invalid("missed_calls.mail", "is required when rules.channels contains email"));
            }
            None => {}
            Some(mail) => {
                if mail.smtp.host.trim().is_empty() {
                    return Err(invalid("missed_calls.mail.smtp.host", "must not be empty"));
                }
                if mail.smtp.port == Some(0) {
                    return Err(invalid("missed_calls.mail.smtp.port", "must not be 0"));
                }
                if !(1..=600).contains(&mail.smtp.timeout_secs) {
                    return Err(invalid("missed_calls.mail.smtp.timeout_secs", "must be between 1 and 600"));
                }
                if mail.smtp.username.is_some() != mail.smtp.password.is_some() {
                    return Err(invalid("missed_calls.mail.smtp.username", "and smtp.password go together"));
                }
                if mail.from_address.parse::<lettre::Address>().is_err() {
                    return Err(invalid("missed_calls.mail.from_address", "is not an e-mail address"));
                }
                if mail.message_id_domain.is_empty()
                    || !mail.message_id_domain.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
                {
                    return Err(invalid("missed_calls.mail.message_id_domain", "must be a domain like example.org"));
                }
                if let Err(e) = LinkPrefix::parse(&mail.link_prefix) {
                    return Err(invalid("missed_calls.mail.link_prefix", e.to_string()));
                }
                if mail.default_language.trim().is_empty() {
                    return Err(invalid("missed_calls.mail.default_language", "must not be empty"));
                }
                if !(-14 * 60..=14 * 60).contains(&mail.utc_offset_minutes) {
                    return Err(invalid("missed_calls.mail.utc_offset_minutes", "must be between -840 and 840"));
                }
            }
        }
        if let Some(ami) = &self.ami {
            if ami.address.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
                return Err(invalid("missed_calls.ami.address", "must be host:port, e.g. 127.0.0.1:5038"));
            }
            if ami.username.is_empty() || ami.secret.is_empty() {
                return Err(invalid("missed_calls.ami.username", "and ami.secret must not be empty"));
            }
            if !(1..=300).contains(&ami.keepalive_secs) {
                return Err(invalid("missed_calls.ami.keepalive_secs", "must be between 1 and 300"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    const BASE: &str = r#"
homeserver: {url: "http://127.0.0.1:8008", domain: localhost}
appservice: {listen: "127.0.0.1:9090", url: "http://127.0.0.1:9090", registration: reg.yaml}
xmpp: {component_jid: bridge.localhost, server: "127.0.0.1:5347", secret: s}
database: {url: "sqlite://data/ucb.db"}
missed_calls:
  webhook: {secret: "webhook-secret"}
  rules: {policy: first, channels: [email, chat], exceptions: {min_ring_secs: 3}}
  users:
    - {id: anna, extensions: ["201"], email: "anna@example.org", matrix_user: "@anna:localhost"}
  mail:
    smtp: {host: "127.0.0.1", port: 2525, tls: none}
    from_address: "calls@example.org"
    message_id_domain: "example.org"
    link_prefix: "callto:"
  journal_token: "journal-token-0123456789"
"#;

    fn load(yaml: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, yaml).unwrap();
        Config::load(Path::new(&path)).map_err(|e| e.to_string())
    }

    #[test]
    fn a_valid_section_parses() {
        let c = load(BASE).unwrap();
        let mc = c.missed_calls.unwrap();
        assert_eq!(mc.rules.policy, crate::calls::rules::Policy::First);
        assert_eq!(mc.rules.exceptions.min_ring_secs, 3);
        assert!(mc.users[0].entry().chat);
        assert_eq!(mc.mail.unwrap().smtp.port(), 2525);
        assert!(load(&BASE.replace("missed_calls:", "unused:")).is_err(), "unknown top-level keys are refused");
    }

    #[test]
    fn errors_name_the_key() {
        for (from, to, key) in [
            ("secret: \"webhook-secret\"", "secret: \"\"", "missed_calls.webhook.secret"),
            ("link_prefix: \"callto:\"", "link_prefix: \"verylongprefix:\"", "missed_calls.mail.link_prefix"),
            ("link_prefix: \"callto:\"", "link_prefix: \"javascript:\"", "missed_calls.mail.link_prefix"),
            ("from_address: \"calls@example.org\"", "from_address: \"nope\"", "missed_calls.mail.from_address"),
            ("email: \"anna@example.org\"", "email: \"anna\"", "missed_calls.users"),
            ("\"@anna:localhost\"", "\"anna\"", "missed_calls.users"),
            ("journal_token: \"journal-token-0123456789\"", "journal_token: short", "missed_calls.journal_token"),
            ("min_ring_secs: 3", "min_ring_secs: 3, colour: red", "colour"),
            ("tls: none", "tls: maybe", "maybe"),
        ] {
            let err = load(&BASE.replace(from, to)).unwrap_err();
            assert!(err.contains(key), "{to}: {err}");
        }
        let no_mail =
            BASE.split("  mail:").next().unwrap().to_owned() + "  journal_token: \"journal-token-0123456789\"\n";
        assert!(load(&no_mail).unwrap_err().contains("missed_calls.mail"));
        assert!(load(&no_mail.replace("[email, chat]", "[chat]")).is_ok());
    }
}
