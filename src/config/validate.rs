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
        if self.appservice.bot_display_name.as_deref().is_some_and(|n| n.trim().is_empty() || n.len() > 256) {
            return Err(invalid("appservice.bot_display_name", "must be 1 to 256 bytes"));
        }
        if let Some(avatar) = &self.appservice.bot_avatar {
            self.bot_avatar().map_err(|reason| invalid("appservice.bot_avatar", reason))?;
            if avatar.starts_with("mxc://")
                && avatar[6..].split_once('/').is_none_or(|(s, m)| s.is_empty() || m.is_empty())
            {
                return Err(invalid("appservice.bot_avatar", "an mxc:// URL is mxc://SERVER/MEDIA_ID"));
            }
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
        self.notifications.validate()?;
        self.missed_chats.validate()?;
        self.presence.validate()?;
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

/// Largest bot avatar file (bytes): what the component's vCard carries at most.
pub const MAX_BOT_AVATAR: u64 = 1024 * 1024;

/// The bridge bot's avatar as configured (`appservice.bot_avatar`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotAvatar {
    /// Already in the media repository.
    Mxc(String),
    /// A file to upload: its path (resolved) and content type.
    File { path: PathBuf, content_type: &'static str },
}

impl Config {
    /// `appservice.bot_avatar`, checked: an mxc URL, or an image file that exists and is small
    /// enough (read again at start, so a replaced file takes effect on restart).
    pub fn bot_avatar(&self) -> Result<Option<BotAvatar>, String> {
        let Some(avatar) = &self.appservice.bot_avatar else { return Ok(None) };
        if avatar.starts_with("mxc://") {
            return Ok(Some(BotAvatar::Mxc(avatar.clone())));
        }
        let path = self.resolve(Path::new(avatar));
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let content_type = match ext.as_deref() {
            Some("png") => "image/png",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("gif") => "image/gif",
            Some("webp") => "image/webp",
            _ => return Err("must be an mxc:// URL or a .png, .jpg, .gif or .webp file".into()),
        };
        let meta = std::fs::metadata(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if meta.len() == 0 || meta.len() > MAX_BOT_AVATAR {
            return Err(format!("{} must hold 1 to {MAX_BOT_AVATAR} bytes", path.display()));
        }
        Ok(Some(BotAvatar::File { path, content_type }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
homeserver: {url: "http://127.0.0.1:8008", domain: localhost}
appservice: {listen: "127.0.0.1:9090", url: "http://127.0.0.1:9090", registration: reg.yaml}
xmpp: {component_jid: bridge.localhost, server: "127.0.0.1:5347", secret: s}
database: {url: "sqlite://data/ucb.db"}
"#;

    fn load(appservice_extra: &str) -> (tempfile::TempDir, Result<Config, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bot.png"), b"\x89PNG not really").unwrap();
        std::fs::write(dir.path().join("empty.png"), b"").unwrap();
        let yaml = GOOD.replace("registration: reg.yaml", &format!("registration: reg.yaml, {appservice_extra}"));
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, yaml).unwrap();
        let config = Config::load_with_env(&path, []);
        (dir, config)
    }

    #[test]
    fn the_bot_avatar_is_an_image_file_or_an_mxc_url() {
        let (dir, c) = load("bot_display_name: UC Bridge, bot_avatar: bot.png");
        let c = c.unwrap();
        assert_eq!(c.appservice.bot_display_name.as_deref(), Some("UC Bridge"));
        assert_eq!(
            c.bot_avatar().unwrap(),
            Some(BotAvatar::File { path: dir.path().join("bot.png"), content_type: "image/png" })
        );
        let (_d, c) = load("bot_avatar: 'mxc://localhost/abc'");
        assert_eq!(c.unwrap().bot_avatar().unwrap(), Some(BotAvatar::Mxc("mxc://localhost/abc".into())));
        let (_d, c) = load("");
        assert_eq!(c.unwrap().bot_avatar().unwrap(), None);
        for bad in [
            "bot_avatar: missing.png",
            "bot_avatar: empty.png",
            "bot_avatar: c.yaml",
            "bot_avatar: 'mxc://localhost'",
            "bot_display_name: '  '",
        ] {
            let (_d, c) = load(bad);
            let err = c.unwrap_err().to_string();
            assert!(err.contains("appservice.bot_"), "{bad}: {err}");
        }
    }
}
