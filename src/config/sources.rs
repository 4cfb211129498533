//! Where configuration values come from: the YAML file, then `UCBRIDGE__SECTION__KEY`
//! environment variables over it, then `*_file` secrets (a secret key's value read from a file,
//! so secrets need not sit in the YAML). The layers meet in one YAML document, which is then
//! read into [`Config`] like the file alone; every key remembers its source for
//! `check-config --explain`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use yaml_serde::{Mapping, Value};

use super::{Config, ConfigError};

/// Prefix of the variables that set config keys; `__` separates the levels.
pub const ENV_PREFIX: &str = "UCBRIDGE__";

/// Keys that may be given as `KEY_file` (a path, relative to the config file): the file's content
/// without its final line break is the value. `chatbot.api_key_file` is the chatbot's own key.
pub const SECRET_FILE_KEYS: &[&str] = &[
    "xmpp.secret",
    "database.url",
    "missed_calls.webhook.secret",
    "missed_calls.journal_token",
    "missed_calls.mail.smtp.password",
    "missed_calls.ami.secret",
    "sms.inbound_secret",
    "sms.kannel.password",
    "sms.http.auth.password",
    "sms.http.auth.token",
    "sms.http.auth.value",
];

/// Where one key's value came from.
#[derive(Clone, PartialEq, Eq)]
pub enum Origin {
    File,
    Env(String),
    /// Read from this file, named by `key_file` in the config file or (`Some(var)`) a variable.
    SecretFile {
        path: PathBuf,
        named_by: Option<String>,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File => f.write_str("file"),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::SecretFile { path, named_by: None } => write!(f, "secret file {}", path.display()),
            Origin::SecretFile { path, named_by: Some(var) } => {
                write!(f, "secret file {} (named by env {var})", path.display())
            }
        }
    }
}

/// The merged document and each set key's origin (by dotted path). Its `Debug` shows no values:
/// they include the secrets.
#[derive(Clone, Default)]
pub struct Sources {
    merged: Value,
    origins: BTreeMap<String, Origin>,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sources({} keys)", self.origins.len())
    }
}

fn env_error(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Env { var: var.to_owned(), reason: reason.into() }
}

/// An environment value as YAML when it reads back the same (`30`, `true`, `[a, b]`), else the
/// text as it is: `0123` or a long digit string stays a string (a secret, a phone number).
fn env_value(text: &str) -> Value {
    match yaml_serde::from_str::<Value>(text) {
        Ok(v @ (Value::Sequence(_) | Value::Mapping(_))) => v,
        Ok(v @ (Value::Number(_) | Value::Bool(_)))
            if yaml_serde::to_string(&v).is_ok_and(|s| s.trim_end() == text.trim()) =>
        {
            v
        }
        _ => Value::String(text.to_owned()),
    }
}

fn key(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// Each leaf of a document (a scalar or a list) by dotted path.
fn leaves(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Mapping(m) => {
            for (k, v) in m {
                let Some(k) = k.as_str() else { continue };
                let p = if path.is_empty() { k.to_owned() } else { format!("{path}.{k}") };
                leaves(v, &p, out);
            }
        }
        _ => out.push(path.to_owned()),
    }
}

fn get<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, k| v.as_mapping()?.get(k))
}

impl Sources {
    /// The file's document with the environment's keys and the secret files applied.
    pub fn build(
        text: &str,
        path: &Path,
        base_dir: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let syntax = |message: String| ConfigError::Syntax { path: path.to_owned(), message };
        let mut merged: Value = yaml_serde::from_str(text).map_err(|e| syntax(e.to_string()))?;
        if merged.is_null() {
            merged = Value::Mapping(Mapping::new());
        }
        if !merged.is_mapping() {
            return Err(syntax("must be a mapping of sections (homeserver:, appservice:, ...)".into()));
        }
        let mut origins = BTreeMap::new();
        let mut from_file = Vec::new();
        leaves(&merged, "", &mut from_file);
        origins.extend(from_file.into_iter().map(|p| (p, Origin::File)));

        let mut vars: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        vars.sort(); // the same result whatever order the environment lists them in
        for (var, text) in vars {
            let parts: Vec<String> = var[ENV_PREFIX.len()..].split("__").map(str::to_ascii_lowercase).collect();
            if parts.iter().any(String::is_empty) {
                return Err(env_error(&var, "must be UCBRIDGE__SECTION__KEY (levels separated by `__`)"));
            }
            let dotted = parts.join(".");
            let (last, parents) = parts.split_last().expect("split gives at least one part");
            let mut node = &mut merged;
            for p in parents {
                let map = node.as_mapping_mut().ok_or_else(|| env_error(&var, "sets a key inside a non-mapping"))?;
                node = map.entry(key(p)).or_insert_with(|| Value::Mapping(Mapping::new()));
                if node.is_null() {
                    *node = Value::Mapping(Mapping::new());
                }
            }
            let map = node.as_mapping_mut().ok_or_else(|| env_error(&var, "sets a key inside a non-mapping"))?;
            // A variable wins over the file in either form: `x_file` replaces the file's `x`.
            let sibling = last.strip_suffix("_file").map(str::to_owned).unwrap_or_else(|| format!("{last}_file"));
            if map.remove(sibling.as_str()).is_some() {
                let prefix = dotted.rsplit_once('.').map_or(String::new(), |(p, _)| format!("{p}."));
                origins.remove(&format!("{prefix}{sibling}"));
            }
            let value = env_value(&text);
            // A variable replaces a whole subtree of the file: forget the origins beneath it.
            origins.retain(|k, _| k != &dotted && !k.starts_with(&format!("{dotted}.")));
            let mut set = Vec::new();
            leaves(&value, &dotted, &mut set);
            origins.extend(set.into_iter().map(|p| (p, Origin::Env(var.clone()))));
            map.insert(key(last), value);
        }

        for secret in SECRET_FILE_KEYS {
            let (parent, name) = secret.rsplit_once('.').expect("secret keys have a section");
            let file_key = format!("{name}_file");
            let file_path = format!("{secret}_file");
            let Some(map) = get_mut(&mut merged, parent).and_then(Value::as_mapping_mut) else { continue };
            let Some(named) = map.remove(file_key.as_str()) else { continue };
            let bad = |reason: String| ConfigError::SecretFile { key: file_path.clone(), reason };
            let Some(file) = named.as_str().filter(|f| !f.is_empty()) else {
                return Err(bad("must be the path of a file".into()));
            };
            if map.contains_key(name) {
                return Err(bad(format!("give only one of `{name}` and `{file_key}`")));
            }
            let full = if Path::new(file).is_absolute() { PathBuf::from(file) } else { base_dir.join(file) };
            let content =
                std::fs::read_to_string(&full).map_err(|e| bad(format!("cannot read {}: {e}", full.display())))?;
            // The line break editors and `echo` add is not part of the secret.
            let content = content.strip_suffix('\n').unwrap_or(&content);
            let content = content.strip_suffix('\r').unwrap_or(content);
            map.insert(key(name), Value::String(content.to_owned()));
            let named_by = match origins.remove(&file_path) {
                Some(Origin::Env(var)) => Some(var),
                _ => None,
            };
            origins.insert(secret.to_string(), Origin::SecretFile { path: full, named_by });
        }
        Ok(Self { merged, origins })
    }

    /// A key set after loading (`--database-url`): the document shows it, with its origin.
    pub fn set(&mut self, path: &str, value: &str, origin: Origin) {
        let (parent, name) = path.rsplit_once('.').unwrap_or(("", path));
        if let Some(map) = get_mut(&mut self.merged, parent).and_then(Value::as_mapping_mut) {
            map.insert(key(name), Value::String(value.to_owned()));
            self.origins.insert(path.to_owned(), origin);
        }
    }

    /// Whether anything but the file set a key (then the document read is not the file's text).
    pub fn layered(&self) -> bool {
        self.origins.values().any(|o| *o != Origin::File)
    }

    /// The merged document as YAML text, read like the file (scalars read into the key's type).
    pub fn text(&self) -> String {
        yaml_serde::to_string(&self.merged).unwrap_or_default()
    }

    /// One line per key: where its value came from, and the value unless it is a secret; the keys
    /// `config/example.yaml` documents but nothing set are `(default)`, optional sections absent
    /// `(absent: off)`.
    pub fn explain(&self) -> Vec<String> {
        let example: Value = yaml_serde::from_str(include_str!("../../config/example.yaml")).unwrap_or_default();
        let mut documented = Vec::new();
        leaves(&example, "", &mut documented);
        let mut lines = Vec::new();
        for (path, origin) in &self.origins {
            let value = get(&self.merged, path).map_or_else(String::new, |v| shown(path, v));
            lines.push(format!("{path} = {value}  [{origin}]"));
        }
        let mut absent_sections = std::collections::BTreeSet::new();
        for path in documented {
            if self.origins.contains_key(&path)
                || self.origins.keys().any(|k| k.starts_with(&format!("{path}.")) || path.starts_with(&format!("{k}.")))
            {
                continue;
            }
            let section = path.split('.').next().unwrap_or_default();
            if OPTIONAL_SECTIONS.contains(&section) && get(&self.merged, section).is_none_or(Value::is_null) {
                if absent_sections.insert(section.to_owned()) {
                    lines.push(format!("{section}  [absent: off]"));
                }
                continue;
            }
            lines.push(format!("{path}  [default]"));
        }
        lines.sort();
        lines
    }
}

/// Sections whose absence turns a module off (nothing in them has a default then).
const OPTIONAL_SECTIONS: &[&str] = &["missed_calls", "sms", "chatbot"];

fn get_mut<'a>(value: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.').try_fold(value, |v, k| v.as_mapping_mut()?.get_mut(k))
}

/// Whether the key holds a secret (its value is never shown).
fn is_secret(path: &str) -> bool {
    let name = path.rsplit('.').next().unwrap_or(path);
    SECRET_FILE_KEYS.contains(&path)
        || (["secret", "password", "token", "api_key"].iter().any(|w| name.contains(w)) && !name.ends_with("_env"))
        || path.starts_with("sms.http.auth.")
}

fn shown(path: &str, value: &Value) -> String {
    if path == "database.url" {
        // A PostgreSQL URL may carry the password.
        return match value.as_str().map(url::Url::parse) {
            Some(Ok(mut url)) if url.password().is_some() => {
                let _ = url.set_password(Some("(hidden)"));
                url.to_string()
            }
            _ => value.as_str().unwrap_or_default().to_owned(),
        };
    }
    if is_secret(path) {
        return "(hidden)".into();
    }
    match value {
        Value::String(s) => format!("{s:?}"),
        other => yaml_serde::to_string(other).map(|s| s.trim_end().replace('\n', " ")).unwrap_or_default(),
    }
}

impl Config {
    /// `check-config --explain`: each key and where its value came from.
    pub fn explain(&self) -> Vec<String> {
        self.sources.explain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
homeserver: {url: "http://127.0.0.1:8008", domain: localhost}
appservice: {listen: "127.0.0.1:9090", url: "http://127.0.0.1:9090", registration: reg.yaml}
xmpp: {component_jid: bridge.localhost, server: "127.0.0.1:5347", secret: from-the-file-0123456789}
database: {url: "sqlite://data/ucb.db"}
"#;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn load(yaml: &str, vars: &[(&str, &str)]) -> (tempfile::TempDir, Result<Config, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, yaml).unwrap();
        let config = Config::load_with_env(&path, env(vars));
        (dir, config)
    }

    #[test]
    fn variables_set_any_key_in_its_type_over_the_file() {
        let (_d, c) = load(
            GOOD,
            &[
                ("UCBRIDGE__XMPP__SERVER", "xmpp.example:5347"),
                ("UCBRIDGE__ROOMS__MAX_PARTICIPANTS", "12"),
                ("UCBRIDGE__ADMINS__MATRIX", "['@a:localhost', '@b:localhost']"),
                ("UCBRIDGE__LIMITS__MAX_MESSAGE_BYTES", "1000"),
                ("UCBRIDGE__LOGGING__FORMAT", "json"),
                // Digits stay a string where a string is wanted, leading zero and all.
                ("UCBRIDGE__LINKS__REGION", "US"),
                ("UCBRIDGE__XMPP__SECRET", "00112233445566778899"),
                ("OTHER__XMPP__SERVER", "ignored:1"),
            ],
        );
        let c = c.unwrap();
        assert_eq!(c.xmpp.server, "xmpp.example:5347");
        assert_eq!(c.rooms.max_participants, 12);
        assert_eq!(c.admins.matrix, ["@a:localhost", "@b:localhost"]);
        assert_eq!(c.limits.max_message_bytes(), 1000);
        assert_eq!(c.logging.format, super::super::LogFormat::Json);
        assert_eq!(c.xmpp.secret, "00112233445566778899");
        assert_eq!(c.homeserver.domain, "localhost", "the file's other keys stay");
    }

    #[test]
    fn a_whole_file_can_come_from_the_environment() {
        let (_d, c) = load(
            "",
            &[
                ("UCBRIDGE__HOMESERVER__URL", "http://127.0.0.1:8008"),
                ("UCBRIDGE__HOMESERVER__DOMAIN", "localhost"),
                ("UCBRIDGE__APPSERVICE__LISTEN", "127.0.0.1:9090"),
                ("UCBRIDGE__APPSERVICE__URL", "http://127.0.0.1:9090"),
                ("UCBRIDGE__APPSERVICE__REGISTRATION", "reg.yaml"),
                ("UCBRIDGE__XMPP__COMPONENT_JID", "bridge.localhost"),
                ("UCBRIDGE__XMPP__SERVER", "127.0.0.1:5347"),
                ("UCBRIDGE__XMPP__SECRET", "a-secret-of-20-chars"),
                ("UCBRIDGE__DATABASE__URL", "sqlite://ucb.db"),
            ],
        );
        assert_eq!(c.unwrap().homeserver.domain, "localhost");
    }

    #[test]
    fn bad_variables_are_named() {
        let (_d, c) = load(GOOD, &[("UCBRIDGE__XMPP__COLOUR", "red")]);
        let err = c.unwrap_err().to_string();
        assert!(err.contains("xmpp") && err.contains("colour"), "{err}");
        let (_d, c) = load(GOOD, &[("UCBRIDGE__ROOMS__MAX_PARTICIPANTS", "many")]);
        let err = c.unwrap_err().to_string();
        assert!(err.contains("rooms.max_participants"), "{err}");
        let (_d, c) = load(GOOD, &[("UCBRIDGE__XMPP____SECRET", "x")]);
        let err = c.unwrap_err().to_string();
        assert!(err.contains("UCBRIDGE__XMPP____SECRET"), "{err}");
        let (_d, c) = load(GOOD, &[("UCBRIDGE__ROOMS__MAX_PARTICIPANTS", "1")]);
        let err = c.unwrap_err().to_string();
        assert!(err.contains("rooms.max_participants"), "validated like the file: {err}");
    }

    #[test]
    fn secrets_come_from_files_named_in_the_file_or_the_environment() {
        let yaml = GOOD.replace("secret: from-the-file-0123456789", "secret_file: xmpp.secret");
        let (dir, c) = load(&yaml, &[]);
        assert!(c.unwrap_err().to_string().contains("xmpp.secret_file"), "a missing file is an error");
        std::fs::write(dir.path().join("xmpp.secret"), "from-a-secret-file-0123\n").unwrap();
        let c = Config::load_with_env(&dir.path().join("c.yaml"), []).unwrap();
        assert_eq!(c.xmpp.secret, "from-a-secret-file-0123", "read without its line break");
        let explained = c.explain().join("\n");
        assert!(explained.contains("xmpp.secret = (hidden)  [secret file "), "{explained}");
        assert!(!explained.contains("from-a-secret-file"), "{explained}");

        // A variable naming a file wins over the file's own value.
        let (dir, _) = load(GOOD, &[]);
        std::fs::write(dir.path().join("s"), "from-env-named-file-42").unwrap();
        let c = Config::load_with_env(&dir.path().join("c.yaml"), env(&[("UCBRIDGE__XMPP__SECRET_FILE", "s")]));
        let c = c.unwrap();
        assert_eq!(c.xmpp.secret, "from-env-named-file-42");
        assert!(c.explain().join("\n").contains("(named by env UCBRIDGE__XMPP__SECRET_FILE)"));

        // Both in the file: which one is meant is unclear.
        let yaml = GOOD.replace("secret: from-the-file-0123456789", "secret: x, secret_file: s");
        let (dir, _) = load("", &[]);
        std::fs::write(dir.path().join("s"), "whatever-0123456789").unwrap();
        std::fs::write(dir.path().join("c.yaml"), yaml).unwrap();
        let err = Config::load_with_env(&dir.path().join("c.yaml"), []).unwrap_err().to_string();
        assert!(err.contains("only one"), "{err}");
    }

    #[test]
    fn every_secret_file_key_reaches_its_key() {
        let mut example: Value = yaml_serde::from_str(include_str!("../../config/example.yaml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut set = Vec::new();
        for secret in SECRET_FILE_KEYS {
            let (parent, name) = secret.rsplit_once('.').unwrap();
            // The example leaves out the AMI (commented) and shows one shape of sms.http.auth.
            let Some(map) = get_mut(&mut example, parent).and_then(Value::as_mapping_mut) else {
                assert!(secret.starts_with("sms.http.") || secret.starts_with("missed_calls.ami."), "{secret}");
                continue;
            };
            map.remove(name);
            map.insert(key(&format!("{name}_file")), Value::String(format!("{secret}.txt")));
            std::fs::write(dir.path().join(format!("{secret}.txt")), format!("{secret}-0123456789\n")).unwrap();
            set.push(*secret);
        }
        assert!(set.len() >= 7, "{set:?}");
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, yaml_serde::to_string(&example).unwrap()).unwrap();
        let sources = Sources::build(&std::fs::read_to_string(&path).unwrap(), &path, dir.path(), []).unwrap();
        for secret in set {
            assert!(matches!(sources.origins.get(secret), Some(Origin::SecretFile { .. })), "{secret}");
            let v = get(&sources.merged, secret).and_then(Value::as_str);
            assert_eq!(v, Some(format!("{secret}-0123456789").as_str()), "{secret}");
        }
    }

    #[test]
    fn explain_names_each_source_and_hides_secrets() {
        let yaml = GOOD.replace("sqlite://data/ucb.db", "postgres://ucb:pg-password@db/ucb");
        let (_d, c) = load(&yaml, &[("UCBRIDGE__ROOMS__HISTORY_ON_JOIN", "5")]);
        let lines = c.unwrap().explain();
        let text = lines.join("\n");
        assert!(text.contains("homeserver.domain = \"localhost\"  [file]"), "{text}");
        assert!(text.contains("rooms.history_on_join = 5  [env UCBRIDGE__ROOMS__HISTORY_ON_JOIN]"), "{text}");
        assert!(text.contains("rooms.max_participants  [default]"), "{text}");
        assert!(text.contains("sms  [absent: off]"), "{text}");
        assert!(text.contains("xmpp.secret = (hidden)  [file]"), "{text}");
        assert!(!text.contains("from-the-file") && !text.contains("pg-password"), "{text}");
        assert!(
            text.contains("database.url = postgres://ucb:(hidden)@db/ucb") || text.contains("%28hidden%29"),
            "{text}"
        );
    }
}
