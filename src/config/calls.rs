//! `missed_calls:` — missed-call notifications (DESIGN.md "Missed calls", `src/calls/`). The
//! section is optional: without it the module is off (no route, no AMI connection). The
//! section's types are the module's (`calls::config`); here are its checks, which name the keys
//! of the file, and the section as the module is started with it.

use std::path::PathBuf;

use super::{Config, ConfigError, invalid};
use crate::calls::config::MissedCalls;
use crate::calls::mail::LinkPrefix;
use crate::calls::rules::Channel;
use crate::core::ids::{BareJid, MatrixUserId};

impl Config {
    /// `missed_calls:` with its files resolved against the config file's directory: what the
    /// module is started (and reloaded) with.
    pub fn missed_calls_settings(&self) -> Option<MissedCalls> {
        let mut settings = self.missed_calls.clone()?;
        settings.contacts.files = self.contact_files();
        if let Some(mail) = &mut settings.mail {
            mail.templates_dir = mail.templates_dir.as_deref().map(|dir| self.resolve(dir));
        }
        Some(settings)
    }

    /// The contact files (`missed_calls.contacts.files`), resolved; the SMS module reads them
    /// too.
    pub fn contact_files(&self) -> Vec<PathBuf> {
        self.missed_calls.iter().flat_map(|m| m.contacts.files.iter()).map(|f| self.resolve(f)).collect()
    }
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
            if u.id.as_str().trim().is_empty() {
                return Err(bad("`id` must not be empty"));
            }
            if !ids.insert(u.id.as_str()) {
                return Err(bad("`id` is used twice"));
            }
            if u.extensions.is_empty() && u.lines.is_empty() {
                return Err(bad("needs `extensions` or `lines`"));
            }
            if u.extensions
                .iter()
                .map(|e| e.as_str())
                .chain(u.lines.iter().map(String::as_str))
                .any(|e| e.trim().is_empty())
            {
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
        for (i, l) in self.lines.iter().enumerate() {
            let bad = |what: &str| invalid("missed_calls.lines", format!("entry {i} ({}): {what}", l.number));
            if l.number.trim().is_empty() || l.name.trim().is_empty() {
                return Err(bad("needs `number` and `name`"));
            }
            if l.name.chars().any(char::is_control) || l.name.chars().count() > 128 {
                return Err(bad("`name` must be one line of at most 128 characters"));
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
                if let Err(e) = mail.zone() {
                    let key = if mail.time_zone.is_some() {
                        "missed_calls.mail.time_zone"
                    } else {
                        "missed_calls.mail.utc_offset_minutes"
                    };
                    return Err(invalid(key, e));
                }
            }
        }
        let notes = &self.presence_from_calls.note;
        if notes.is_empty() {
            return Err(invalid("missed_calls.presence_from_calls.note", "needs a note for at least one language"));
        }
        if notes.iter().any(|(l, n)| {
            l.trim().is_empty() || n.trim().is_empty() || n.chars().any(char::is_control) || n.chars().count() > 128
        }) {
            return Err(invalid(
                "missed_calls.presence_from_calls.note",
                "each note is one line of 1 to 128 characters, under a language code",
            ));
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
        assert!(mc.users[0].chat());
        assert_eq!(mc.mail.unwrap().smtp.port(), 2525);
        let zoned = load(&BASE.replace("link_prefix: \"callto:\"", "time_zone: Europe/Berlin")).unwrap();
        let zone = zoned.missed_calls.unwrap().mail.unwrap().zone().unwrap();
        assert_eq!(zone, crate::calls::zone::CallZone::named("Europe/Berlin").unwrap());
        let old = load(&BASE.replace("link_prefix: \"callto:\"", "utc_offset_minutes: -300")).unwrap();
        assert_eq!(old.missed_calls.unwrap().mail.unwrap().zone().unwrap(), crate::calls::zone::CallZone::Fixed(-300));
        assert!(load(&BASE.replace("missed_calls:", "unused:")).is_err(), "unknown top-level keys are refused");
        // Presence from the phone is off and nobody may pick up unless configured.
        let mc = load(BASE).unwrap().missed_calls.unwrap();
        assert!(!mc.presence_from_calls.enabled);
        assert_eq!(mc.presence_from_calls.note_in("de"), "Am Telefon");
        assert_eq!(mc.pickup_groups, crate::calls::pickup::PickupGroups::Nobody);
        let phone = "  presence_from_calls: {enabled: true, note: {fr: \"Au téléphone\"}}\n  pickup_groups: everyone\n  journal_token:";
        let mc = load(&BASE.replace("  journal_token:", phone)).unwrap().missed_calls.unwrap();
        assert!(mc.presence_from_calls.enabled);
        assert_eq!(mc.presence_from_calls.note_in("fr"), "Au téléphone");
        assert_eq!(mc.presence_from_calls.note_in("de"), "Au téléphone", "any note rather than none");
        assert_eq!(mc.pickup_groups, crate::calls::pickup::PickupGroups::Everyone);
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
            ("link_prefix: \"callto:\"", "time_zone: Mars/Olympus", "missed_calls.mail.time_zone"),
            ("link_prefix: \"callto:\"", "utc_offset_minutes: 900", "missed_calls.mail.utc_offset_minutes"),
            ("link_prefix: \"callto:\"", "time_zone: Europe/Berlin\n    utc_offset_minutes: 60", "not both"),
            (
                "  journal_token:",
                "  lines: [{number: \"+49 30 1\", name: \"\"}]\n  journal_token:",
                "missed_calls.lines",
            ),
            (
                "  journal_token:",
                "  presence_from_calls: {enabled: true, note: {en: \"\"}}\n  journal_token:",
                "missed_calls.presence_from_calls.note",
            ),
            ("  journal_token:", "  pickup_groups: anyone\n  journal_token:", "everyone"),
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
