//! Typed configuration, one struct per section, validated at start-up. Every error names the
//! key it is about. `config/example.yaml` documents each key and is parsed by a test.

mod calls;
pub mod metrics;
pub mod missed_chats;
pub mod notifications;
pub mod presence;
mod sms;
mod sources;
mod validate;

pub use sources::{ENV_PREFIX, Origin, SECRET_FILE_KEYS};
pub use validate::{BotAvatar, MAX_BOT_AVATAR};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("config key `{key}`: {reason}")]
    SecretFile { key: String, reason: String },
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.into() }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub homeserver: Homeserver,
    pub appservice: Appservice,
    pub xmpp: Xmpp,
    pub database: Database,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub rooms: Rooms,
    #[serde(default)]
    pub admins: Admins,
    #[serde(default)]
    pub access: Access,
    #[serde(default)]
    pub logging: Logging,
    #[serde(default)]
    pub runtime: Runtime,
    #[serde(default)]
    pub links: Links,
    #[serde(default)]
    pub media: Media,
    /// Presence rules (`config/presence.rs`).
    #[serde(default)]
    pub presence: presence::Presence,
    /// `GET /metrics` (`config/metrics.rs`).
    #[serde(default)]
    pub metrics: metrics::Metrics,
    /// What people may choose for their notices (`config/notifications.rs`).
    #[serde(default)]
    pub notifications: notifications::Notifications,
    /// Missed-chat summaries (`config/missed_chats.rs`).
    #[serde(default)]
    pub missed_chats: missed_chats::MissedChats,
    /// Missed-call notifications; absent = off.
    #[serde(default)]
    pub missed_calls: Option<crate::calls::config::MissedCalls>,
    /// SMS through a gateway; absent = off.
    #[serde(default)]
    pub sms: Option<crate::sms::config::Sms>,
    /// The AI assistant (`crate::chatbot::settings`); absent = off.
    #[serde(default)]
    pub chatbot: Option<crate::chatbot::Settings>,
    /// Directory of the config file; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file this was read from (read again by the `reload` admin command).
    #[serde(skip)]
    pub source: PathBuf,
    /// `database.url` came from the command line or the environment, not the file.
    #[serde(skip)]
    pub database_overridden: bool,
    /// Where each key's value came from (`check-config --explain`).
    #[serde(skip)]
    pub sources: sources::Sources,
}

/// `homeserver:` — the Matrix homeserver the bridge is registered with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Homeserver {
    /// Base URL of the client-server API, e.g. `http://127.0.0.1:8008`.
    pub url: String,
    /// The server name (the part after `:` in user IDs).
    pub domain: String,
}

/// `appservice:` — how the homeserver reaches the bridge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appservice {
    /// Registration ID (must match the registration file).
    #[serde(default = "default_as_id")]
    pub id: String,
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// URL the homeserver uses to reach `listen` (written into the registration).
    pub url: String,
    /// Path of the registration file (tokens are read from it).
    pub registration: PathBuf,
    /// Localpart of the bridge bot.
    #[serde(default = "default_bot")]
    pub bot_localpart: String,
    /// The bot's Matrix display name, set at start; also the component's vCard name. None:
    /// left as it is.
    #[serde(default)]
    pub bot_display_name: Option<String>,
    /// The bot's avatar: an image file (uploaded at start) or an `mxc://` URL; also the
    /// component's vCard photo. None: left as it is.
    #[serde(default)]
    pub bot_avatar: Option<String>,
    /// Localpart prefix of ghosts for XMPP users.
    #[serde(default = "default_ghost_prefix")]
    pub ghost_prefix: String,
    /// Seconds a client has to send a request's headers (the listener is public: `/media`).
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// Seconds a request may take from its headers to the head of its answer (reading the
    /// body included).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Open connections to the HTTP listener at most; more wait until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Requests handled at once at most (`/health` aside); more are answered 503.
    #[serde(default = "default_max_requests")]
    pub max_requests: usize,
}

fn default_header_timeout() -> u64 {
    10
}
fn default_request_timeout() -> u64 {
    20
}
fn default_max_connections() -> usize {
    512
}
fn default_max_requests() -> usize {
    64
}

/// `xmpp:` — the XEP-0114 component connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Xmpp {
    /// The component's JID (a domain), e.g. `bridge.example.org`.
    pub component_jid: String,
    /// `host:port` of the XMPP server's component listener.
    pub server: String,
    /// Shared secret of the component.
    pub secret: String,
}

/// `database:` — SQLite (default) or PostgreSQL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// `sqlite://PATH` (relative to the config file) or `postgres://...`.
    pub url: String,
    /// Maximum pooled connections.
    #[serde(default = "default_pool")]
    pub max_connections: u32,
}

/// `limits:` — bounds on what the bridge accepts from the networks, and on what the peers take
/// (a message they would refuse for its size is refused when it arrives, see `core::size`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest message body, in bytes, bridged in either direction; default
    /// [`Limits::max_message_bytes`].
    #[serde(rename = "max_message_bytes")]
    pub max_message_bytes_set: Option<usize>,
    /// Largest appservice transaction body, in bytes.
    pub max_transaction_bytes: usize,
    /// Largest event (its JSON) the homeserver takes: Synapse's fixed limit.
    pub matrix_event_bytes: usize,
    /// Largest stanza the XMPP server takes from the component (Prosody:
    /// `component_stanza_size_limit`).
    pub xmpp_stanza_bytes: usize,
}

impl Limits {
    /// Longest message body: as configured, or what fits in the homeserver's event limit.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes_set
            .unwrap_or_else(|| crate::core::size::default_max_message_bytes(self.matrix_event_bytes))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes_set: None,
            max_transaction_bytes: 16 * 1024 * 1024,
            matrix_event_bytes: crate::core::size::SYNAPSE_EVENT_BYTES,
            xmpp_stanza_bytes: crate::core::size::PROSODY_COMPONENT_STANZA_BYTES,
        }
    }
}

/// `rooms:` — group conversations the bridge hosts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rooms {
    /// Most participants a conversation may have (both networks together).
    pub max_participants: usize,
    /// Messages sent to an XMPP client when it joins a room (the rest is in MAM).
    pub history_on_join: u32,
    /// Start of every alias the bridge gives the rooms it hosts (`room create sales` →
    /// `#ucb-sales`). The registration claims these aliases exclusively, so nobody can squat
    /// one, and the homeserver sends the bridge only the traffic of its own rooms.
    pub alias_prefix: String,
    /// Other Matrix servers whose users, as admins of a room, may have the bridge adopt it
    /// (the homeserver's own users always may; `core::adopt`).
    pub adopt_from_servers: Vec<String>,
}

impl Default for Rooms {
    fn default() -> Self {
        Self {
            max_participants: crate::core::room::DEFAULT_CAP,
            history_on_join: 20,
            alias_prefix: "ucb-".into(),
            adopt_from_servers: vec![],
        }
    }
}

impl Rooms {
    /// The alias localpart of a hosted room asked for as `wanted`.
    pub fn alias(&self, wanted: &str) -> String {
        if wanted.starts_with(&self.alias_prefix) {
            wanted.to_owned()
        } else {
            format!("{}{wanted}", self.alias_prefix)
        }
    }
}

/// `media:` — files between Matrix and XMPP. Matrix files reach XMPP clients as links to the
/// bridge's own HTTP server (`<public_url>/media/<token>/<name>`); files XMPP users send (XEP-0066
/// URLs, e.g. from their server's XEP-0363 upload) are fetched and put into the Matrix media
/// repository.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Media {
    /// Base URL under which XMPP clients reach the bridge's HTTP server; default `appservice.url`.
    pub public_url: Option<String>,
    /// Largest file carried either way, in bytes.
    pub max_bytes: u64,
    /// Time allowed for fetching a file from an XMPP user's URL, in seconds.
    pub fetch_timeout_secs: u64,
    /// Hosts files may be fetched from even though they are loopback or private addresses (the
    /// bridge otherwise refuses those, so a URL cannot make it reach internal services).
    pub allow_private_hosts: Vec<String>,
    /// Days a `/media` link works after the file was posted; later it answers 410 Gone. 0: links
    /// never expire.
    pub link_lifetime_days: u32,
}

impl Default for Media {
    fn default() -> Self {
        Self {
            public_url: None,
            max_bytes: 20 * 1024 * 1024,
            fetch_timeout_secs: 30,
            allow_private_hosts: vec![],
            link_lifetime_days: 30,
        }
    }
}

impl Media {
    /// How long a `/media` link works, in ms; `None`: for ever.
    pub fn link_lifetime_ms(&self) -> Option<i64> {
        (self.link_lifetime_days > 0).then(|| i64::from(self.link_lifetime_days) * 24 * 3600 * 1000)
    }
}

impl Config {
    /// Where XMPP clients fetch the files the bridge serves (no trailing slash).
    pub fn media_base_url(&self) -> String {
        self.media.public_url.as_deref().unwrap_or(&self.appservice.url).trim_end_matches('/').to_owned()
    }
}

/// Whether a section changed between two loads of the config (for `reload`). The sections
/// derive `Debug`, not `PartialEq`; their debug forms differ exactly when a value does.
pub fn differs(a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug) -> bool {
    format!("{a:?}") != format!("{b:?}")
}

/// `links:` — how links in chat text are recognised (for Matrix clients' formatted body).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Links {
    /// Region whose dialling rules phone numbers follow (ISO 3166 code, e.g. `DE`).
    pub region: String,
    /// Internal extensions written alone become `tel:` links when they have this many digits
    /// (`[min, max]`, e.g. `[2, 4]`); none: they stay text.
    pub extension_digits: Option<[usize; 2]>,
}

impl Default for Links {
    fn default() -> Self {
        Self { region: "DE".into(), extension_digits: None }
    }
}

impl Links {
    pub fn rules(&self) -> Result<crate::links::LinkRules, ConfigError> {
        let region = crate::core::phone::Region::parse(&self.region).map_err(|_| {
            invalid("links.region", format!("'{}' is not an ISO 3166 region code like DE", self.region))
        })?;
        let extension_digits = match self.extension_digits {
            None => None,
            Some([min, max]) if (1..=8).contains(&min) && min <= max && max <= 8 => Some(min..=max),
            Some(_) => return Err(invalid("links.extension_digits", "must be [min, max] with 1 <= min <= max <= 8")),
        };
        Ok(crate::links::LinkRules { region, extension_digits })
    }
}

/// `admins:` — who may run admin commands, and where.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admins {
    /// Matrix IDs; `*` matches any run of characters (`@*:corp.example`).
    pub matrix: Vec<String>,
    /// JIDs; `*` as above (`*@corp.example`).
    pub xmpp: Vec<String>,
    /// Alias localpart of the control room (`#ucb-control:<domain>`); the bot creates it and
    /// invites the Matrix admins listed without `*`.
    pub control_room: String,
    /// A command may start with this word (`!ucb status`); in the control room, the bot DM and
    /// to the component no prefix is needed.
    pub command_prefix: String,
}

impl Default for Admins {
    fn default() -> Self {
        Self {
            matrix: vec![],
            xmpp: vec![],
            control_room: "ucb-control".into(),
            command_prefix: crate::commands::DEFAULT_PREFIX.into(),
        }
    }
}

/// `access:` — whose accounts may use the bridge. An account on any other federated server is
/// refused (unless an admin grants it the `chat` permission).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Access {
    /// Matrix server names whose users may use the bridge; `*` patterns. Empty: the
    /// homeserver's own domain.
    pub matrix_servers: Vec<String>,
    /// XMPP domains whose users may use the bridge; `*` patterns (`*.corp.example`). Empty: the
    /// XMPP server's domain (the component's parent domain: `bridge.corp.example` →
    /// `corp.example`).
    pub xmpp_domains: Vec<String>,
}

impl Config {
    /// Whether users of the Matrix server `server` may use the bridge.
    pub fn matrix_server_allowed(&self, server: &str) -> bool {
        if self.access.matrix_servers.is_empty() {
            return server.eq_ignore_ascii_case(&self.homeserver.domain);
        }
        self.access.matrix_servers.iter().any(|p| crate::commands::admin::matches(p, &server.to_ascii_lowercase()))
    }

    /// Whether users of the XMPP domain `domain` may use the bridge.
    pub fn xmpp_domain_allowed(&self, domain: &str) -> bool {
        let domain = domain.to_ascii_lowercase();
        if self.access.xmpp_domains.is_empty() {
            return domain == self.xmpp_server_domain();
        }
        self.access.xmpp_domains.iter().any(|p| crate::commands::admin::matches(p, &domain))
    }

    /// The domain of the XMPP server the component is attached to (its parent domain).
    pub fn xmpp_server_domain(&self) -> String {
        let component = self.xmpp.component_jid.to_ascii_lowercase();
        match component.split_once('.') {
            Some((_, parent)) if !parent.is_empty() => parent.to_owned(),
            _ => component,
        }
    }
}

/// `logging:` — tracing filter and line format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Logging {
    /// `tracing` env-filter syntax; the `RUST_LOG` variable wins when set.
    pub filter: String,
    /// `pretty`: one readable line per event; `json`: one JSON object per line, for log
    /// collectors.
    pub format: LogFormat,
}

/// How the process runs its work.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Runtime {
    /// Threads that run the bridge's tasks; 0 = one per CPU. One is the default: the work is
    /// waiting on the network and the database, not computing, and a single thread saves the
    /// hand-overs between threads (a fifth less CPU per message in `bench/`). Inputs are
    /// bounded (`limits`), so no single one holds the thread for long.
    pub worker_threads: usize,
}

impl Default for Runtime {
    fn default() -> Self {
        Self { worker_threads: 1 }
    }
}

impl Default for Logging {
    fn default() -> Self {
        Self { filter: "info".into(), format: LogFormat::Pretty }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

fn default_as_id() -> String {
    "ucbridge".into()
}
fn default_bot() -> String {
    "ucbridge".into()
}
fn default_ghost_prefix() -> String {
    "_xmpp_".into()
}
fn default_pool() -> u32 {
    8
}

impl Config {
    /// Read, parse and validate a config file, with the `UCBRIDGE__SECTION__KEY` variables of the
    /// environment over it and the `*_file` secrets read.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Config::load`] with the given variables for the environment.
    pub fn load_with_env(path: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let sources = sources::Sources::build(&text, path, &base_dir, env)?;
        // The file alone is read as written, so its errors point at its own lines.
        let (merged, layered) = if sources.layered() { (sources.text(), true) } else { (text, false) };
        let mut config: Config = serde_path_to_error::deserialize(yaml_serde::Deserializer::from_str(&merged))
            .map_err(|e| {
                let at = e.path().to_string();
                let note = if layered { " (in the file with the environment and secret files applied)" } else { "" };
                let message = if at == "." { e.inner().to_string() } else { format!("{at}: {}", e.inner()) };
                ConfigError::Syntax { path: path.to_owned(), message: format!("{message}{note}") }
            })?;
        config.base_dir = base_dir;
        config.source = path.to_owned();
        config.sources = sources;
        config.validate()?;
        Ok(config)
    }

    /// Apply an override of `database.url` (command line / environment).
    pub fn override_database_url(&mut self, url: Option<String>) -> Result<(), ConfigError> {
        if let Some(url) = url {
            self.sources.set("database.url", &url, Origin::Env("UCBRIDGE_DATABASE_URL or --database-url".into()));
            self.database.url = url;
            self.database_overridden = true;
            self.validate()?;
        }
        Ok(())
    }

    /// Resolve a configured path against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_owned() } else { self.base_dir.join(path) }
    }

    /// The database URL with a relative SQLite path resolved against the config directory.
    pub fn database_url(&self) -> String {
        let url = &self.database.url;
        let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
            return url.clone();
        };
        let (path, query) = rest.split_once('?').map_or((rest, None), |(p, q)| (p, Some(q)));
        if path == ":memory:" {
            return url.clone();
        }
        let full = self.resolve(Path::new(path));
        match query {
            Some(q) => format!("sqlite://{}?{q}", full.display()),
            None => format!("sqlite://{}", full.display()),
        }
    }
}

/// Shortest secret or token the bridge runs with (check-config and start-up).
pub const MIN_SECRET_CHARS: usize = 16;

/// Secrets shipped as examples (config/example.yaml, registration.yaml, the README, the test
/// peers' old default): public, so never accepted, whatever their length. Compared without case;
/// anything containing `change-me` / `changeme` counts as a placeholder too.
const PLACEHOLDER_SECRETS: &[&str] = &[
    "bridge-secret",
    "change-me-to-a-long-random-string",
    "change-me-journal-token",
    "change-me-sms-secret-0123456789",
    "change-me-component-secret",
    "CHANGE-ME-as-token-generated-by-ucbridge",
    "CHANGE-ME-hs-token-generated-by-ucbridge",
    "ami-secret",
    "secret",
    "s3cret",
    "password",
];

/// A secret must be at least [`MIN_SECRET_CHARS`] characters and not a published placeholder.
/// `key` names the config key (or registration field) in the error.
pub fn check_secret(key: &'static str, value: &str) -> Result<(), ConfigError> {
    let value = value.trim();
    let lower = value.to_ascii_lowercase();
    let placeholder = lower.contains("change-me")
        || lower.contains("changeme")
        || PLACEHOLDER_SECRETS.iter().any(|p| p.eq_ignore_ascii_case(value));
    if placeholder {
        return Err(invalid(
            key,
            "is an example placeholder; set a random secret of your own (e.g. `openssl rand -hex 24`)",
        ));
    }
    if value.chars().count() < MIN_SECRET_CHARS {
        return Err(invalid(
            key,
            format!(
                "is too short: a secret needs at least {MIN_SECRET_CHARS} characters (e.g. `openssl rand -hex 24`)"
            ),
        ));
    }
    Ok(())
}

impl Config {
    /// The secrets' strength: checked by `check-config` and at start-up (not by
    /// `generate-registration`, which uses none of them). [`Config::load`] only checks their form.
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        check_secret("xmpp.secret", &self.xmpp.secret)?;
        if let Some(mc) = &self.missed_calls {
            check_secret("missed_calls.webhook.secret", &mc.webhook.secret)?;
            if let Some(token) = &mc.journal_token {
                check_secret("missed_calls.journal_token", token)?;
            }
        }
        if let Some(sms) = &self.sms {
            check_secret("sms.inbound_secret", &sms.inbound_secret)?;
        }
        // A key written into the file must not be the example's (a file or variable named
        // instead is read at start; the provider judges what it holds).
        if let Some(key) = self.chatbot.as_ref().and_then(|c| c.api_key.as_ref()) {
            check_secret("chatbot.api_key", key.expose())?;
        }
        Ok(())
    }
}

fn check_http_url(key: &'static str, value: &str) -> Result<(), ConfigError> {
    let url = url::Url::parse(value).map_err(|e| invalid(key, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(key, "must be an http:// or https:// URL with a host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.yaml");
        let config = Config::load(&path).expect("config/example.yaml must stay valid");
        assert_eq!(config.appservice.ghost_prefix, "_xmpp_");
    }

    #[test]
    fn the_log_format_is_pretty_or_json_and_nothing_else() {
        let read = |yaml: &str| yaml_serde::from_str::<Logging>(yaml);
        assert_eq!(read("{}").expect("defaults").format, LogFormat::Pretty);
        assert_eq!(read("format: json").expect("json").format, LogFormat::Json);
        let err = read("format: xml").expect_err("no xml").to_string();
        assert!(err.contains("pretty") && err.contains("json"), "{err}");
    }

    #[test]
    fn the_examples_placeholder_secrets_are_refused_until_replaced() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.yaml");
        let mut config = Config::load(&path).expect("parses");
        let err = config.check_secrets().unwrap_err().to_string();
        assert!(err.contains("xmpp.secret") && err.contains("placeholder"), "{err}");
        config.xmpp.secret = "0f3a9c1d22b74e6aa0c1".into();
        let err = config.check_secrets().unwrap_err().to_string();
        assert!(err.contains("missed_calls.webhook.secret"), "{err}");
        config.missed_calls.as_mut().expect("the example has missed_calls").webhook.secret =
            "7d1c0e55aa9b3f21c4d8e6".into();
        let err = config.check_secrets().unwrap_err().to_string();
        assert!(err.contains("missed_calls.journal_token"), "{err}");
        config.missed_calls.as_mut().expect("missed_calls").journal_token = Some("bd0a4e6f81c2973e55aa".into());
        let err = config.check_secrets().unwrap_err().to_string();
        assert!(err.contains("sms.inbound_secret"), "{err}");
        config.sms.as_mut().expect("the example has sms").inbound_secret = "c61f0e2b9a7d4835ef10".into();
        config.check_secrets().expect("real secrets pass");
        // A chatbot key in the file is checked too.
        let chatbot = config.chatbot.get_or_insert_with(|| panic!("the example has chatbot"));
        chatbot.api_key_file = None;
        chatbot.api_key = Some(crate::chatbot::settings::Secret::new("change-me"));
        let err = config.check_secrets().unwrap_err().to_string();
        assert!(err.contains("chatbot.api_key"), "{err}");
    }

    #[test]
    fn weak_secrets_are_refused_naming_the_key() {
        for weak in [
            "",
            "short",
            "fifteen-chars-x",
            "bridge-secret",
            "BRIDGE-SECRET",
            "change-me-to-a-long-random-string",
            "Please-CHANGE-ME-0123456789",
            "changeme-changeme-changeme",
            "CHANGE-ME-hs-token-generated-by-ucbridge",
            "               secret              ",
        ] {
            let err = check_secret("missed_calls.webhook.secret", weak).unwrap_err().to_string();
            assert!(err.contains("missed_calls.webhook.secret"), "{weak:?}: {err}");
        }
        for strong in ["sixteen-chars-ok", "e2e-calls-webhook-secret", "0123456789abcdef0123", "Grüße-aus-Köln-2026"]
        {
            assert!(check_secret("k", strong).is_ok(), "{strong}");
        }
    }

    fn write(yaml: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, yaml).unwrap();
        (dir, path)
    }

    const GOOD: &str = r#"
homeserver: {url: "http://127.0.0.1:8008", domain: localhost}
appservice: {listen: "127.0.0.1:9090", url: "http://127.0.0.1:9090", registration: reg.yaml}
xmpp: {component_jid: bridge.localhost, server: "127.0.0.1:5347", secret: s}
database: {url: "sqlite://data/ucb.db"}
"#;

    #[test]
    fn relative_paths_follow_the_config_file() {
        let (dir, path) = write(GOOD);
        let c = Config::load(&path).unwrap();
        assert_eq!(c.database_url(), format!("sqlite://{}/data/ucb.db", dir.path().display()));
        assert_eq!(c.resolve(&c.appservice.registration), dir.path().join("reg.yaml"));
    }

    #[test]
    fn the_body_limit_follows_the_homeservers_event_limit_unless_set() {
        let (_dir, path) = write(GOOD);
        let c = Config::load(&path).unwrap();
        assert_eq!((c.limits.matrix_event_bytes, c.limits.xmpp_stanza_bytes), (65_536, 524_288));
        assert_eq!(c.limits.max_message_bytes(), 61_440);
        let (_dir, path) = write(&format!("{GOOD}limits: {{matrix_event_bytes: 131072}}\n"));
        assert_eq!(Config::load(&path).unwrap().limits.max_message_bytes(), 131_072 - 4096);
        let (_dir, path) = write(&format!("{GOOD}limits: {{max_message_bytes: 1000}}\n"));
        assert_eq!(Config::load(&path).unwrap().limits.max_message_bytes(), 1000);
        let (_dir, path) = write(&format!("{GOOD}limits: {{xmpp_stanza_bytes: 100}}\n"));
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("limits.xmpp_stanza_bytes"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        for (from, to, key) in [
            ("http://127.0.0.1:8008", "ftp://x", "homeserver.url"),
            ("127.0.0.1:5347", "nohostport", "xmpp.server"),
            ("sqlite://data/ucb.db", "mysql://x", "database.url"),
            ("secret: s", "secret: ''", "xmpp.secret"),
        ] {
            let (_d, path) = write(&GOOD.replace(from, to));
            let err = Config::load(&path).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        let (_d, path) = write(&GOOD.replace("domain: localhost", "domain: localhost, colour: red"));
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }
}
