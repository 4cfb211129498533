//! Validation of a loaded file: every section's checks and those across sections, each error naming its key.

use super::*;

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_http_url("homeserver.url", &self.homeserver.url)?;
        check_http_url("appservice.url", &self.appservice.url)?;
        if let Some(url) = &self.media.public_url {
            check_http_url("media.public_url", url)?;
        }
        for (key, value) in [
            ("appservice.header_timeout_secs", self.appservice.header_timeout_secs),
            ("appservice.request_timeout_secs", self.appservice.request_timeout_secs),
            ("appservice.max_connections", self.appservice.max_connections as u64),
            ("appservice.max_requests", self.appservice.max_requests as u64),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be more than 0"));
            }
        }
        if self.media.max_bytes == 0 {
            return Err(invalid("media.max_bytes", "must be more than 0"));
        }
        if self.media.fetch_timeout_secs == 0 {
            return Err(invalid("media.fetch_timeout_secs", "must be more than 0"));
        }
        if self.homeserver.domain.is_empty() || self.homeserver.domain.contains(['@', '/', ' ']) {
            return Err(invalid("homeserver.domain", "must be a server name like example.org"));
        }
        if self.appservice.id.is_empty() {
            return Err(invalid("appservice.id", "must not be empty"));
        }
        let localpart_ok = |s: &str| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._=-/".contains(&b))
        };
        if !localpart_ok(&self.appservice.bot_localpart) {
            return Err(invalid("appservice.bot_localpart", "must be a lower-case Matrix localpart"));
        }
        if !localpart_ok(&self.appservice.ghost_prefix) || !self.appservice.ghost_prefix.starts_with('_') {
            return Err(invalid("appservice.ghost_prefix", "must be a lower-case Matrix localpart starting with `_`"));
        }
        if self.xmpp.component_jid.is_empty() || self.xmpp.component_jid.contains(['@', '/', ' ']) {
            return Err(invalid("xmpp.component_jid", "must be a domain like bridge.example.org"));
        }
        if self.xmpp.server.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
            return Err(invalid("xmpp.server", "must be host:port, e.g. 127.0.0.1:5347"));
        }
        let prefix = &self.admins.command_prefix;
        if prefix.is_empty() || prefix.len() > 16 || prefix.contains(char::is_whitespace) {
            return Err(invalid("admins.command_prefix", "must be one word of 1 to 16 characters, e.g. !ucb"));
        }
        if crate::commands::user::check_alias(&self.admins.control_room).is_err() {
            return Err(invalid(
                "admins.control_room",
                "must be an alias localpart: lower-case letters, digits, . _ -",
            ));
        }
        if let Some(bad) = self.admins.matrix.iter().find(|p| !p.starts_with('@') || !p.contains(':')) {
            return Err(invalid(
                "admins.matrix",
                format!("'{bad}' is not a Matrix ID pattern like @admin:example.org"),
            ));
        }
        if let Some(bad) = self.admins.xmpp.iter().find(|p| !p.contains('@') || p.contains('/')) {
            return Err(invalid("admins.xmpp", format!("'{bad}' is not a bare JID pattern like admin@example.org")));
        }
        self.links.rules()?;
        self.metrics.validate()?;
        // Matrix server names may carry a port; XMPP domains never do.
        for (key, patterns, bad_chars) in [
            ("access.matrix_servers", &self.access.matrix_servers, &['@', '/', ' '][..]),
            ("access.xmpp_domains", &self.access.xmpp_domains, &['@', '/', ' ', ':'][..]),
        ] {
            if let Some(bad) = patterns.iter().find(|p| p.is_empty() || p.contains(bad_chars)) {
                return Err(invalid(
                    key,
                    format!("'{bad}' is not a server name pattern like example.org or *.example.org"),
                ));
            }
        }
        if !(2..=1000).contains(&self.rooms.max_participants) {
            return Err(invalid("rooms.max_participants", "must be between 2 and 1000"));
        }
        let prefix = &self.rooms.alias_prefix;
        if prefix.is_empty() || prefix.len() > 32 || crate::commands::user::check_alias(prefix).is_err() {
            return Err(invalid(
                "rooms.alias_prefix",
                "must be 1 to 32 lower-case letters, digits, . _ - (the bridge's own aliases start with it)",
            ));
        }
        if prefix.starts_with(self.appservice.ghost_prefix.as_str()) {
            return Err(invalid("rooms.alias_prefix", "must not start like appservice.ghost_prefix (portal aliases)"));
        }
        if self.rooms.history_on_join > 1000 {
            return Err(invalid("rooms.history_on_join", "must be at most 1000"));
        }
        if self.xmpp.secret.is_empty() {
            return Err(invalid("xmpp.secret", "must not be empty"));
        }
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return Err(invalid("database.url", "must start with sqlite:// or postgres://"));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if !(8 * 1024..=16 * 1024 * 1024).contains(&self.limits.matrix_event_bytes) {
            return Err(invalid("limits.matrix_event_bytes", "must be between 8192 and 16777216"));
        }
        if !(16 * 1024..=64 * 1024 * 1024).contains(&self.limits.xmpp_stanza_bytes) {
            return Err(invalid("limits.xmpp_stanza_bytes", "must be between 16384 and 67108864"));
        }
        if !(16..=1024 * 1024).contains(&self.limits.max_message_bytes()) {
            return Err(invalid("limits.max_message_bytes", "must be between 16 and 1048576"));
        }
        if self.limits.max_transaction_bytes < 64 * 1024 {
            return Err(invalid("limits.max_transaction_bytes", "must be at least 65536"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.logging.filter).is_err() {
            return Err(invalid("logging.filter", "is not a valid tracing filter"));
        }
        if let Some(missed_calls) = &self.missed_calls {
            missed_calls.validate()?;
        }
        if let Some(sms) = &self.sms {
            sms.validate()?;
        }
        if let Some(chatbot) = &self.chatbot {
            chatbot.validate().map_err(|e| invalid(e.key, e.reason))?;
            if chatbot.localpart == self.appservice.bot_localpart
                || chatbot.localpart.starts_with(&self.appservice.ghost_prefix)
            {
                return Err(invalid("chatbot.localpart", "must differ from the bridge bot's and the ghosts' names"));
            }
        }
        Ok(())
    }
}
