//! `metrics:` — Prometheus metrics at `GET /metrics` (names and labels: `core::metrics`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, check_secret, invalid};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Serve `GET /metrics` (default on; the series hold counts and kinds, never people).
    pub enabled: bool,
    /// A bearer token scrapers must send (`Authorization: Bearer …`); none: open to anyone who
    /// reaches the listener.
    pub token: Option<String>,
    /// A file holding the token (relative to the config file); instead of `token`.
    pub token_file: Option<PathBuf>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self { enabled: true, token: None, token_file: None }
    }
}

impl Metrics {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.token.is_some() && self.token_file.is_some() {
            return Err(invalid("metrics.token", "give only one of token and token_file"));
        }
        Ok(())
    }

    /// The token to require, read from `token_file` (resolved with `resolve`) if that is given.
    pub fn bearer_token(&self, resolve: impl Fn(&Path) -> PathBuf) -> Result<Option<String>, ConfigError> {
        let token = match (&self.token, &self.token_file) {
            (Some(token), _) => token.trim().to_owned(),
            (None, Some(file)) => {
                let path = resolve(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| invalid("metrics.token_file", format!("cannot read {}: {e}", path.display())))?;
                let token = text.trim().to_owned();
                if token.is_empty() {
                    return Err(invalid("metrics.token_file", format!("{} is empty", path.display())));
                }
                token
            }
            (None, None) => return Ok(None),
        };
        check_secret(if self.token.is_some() { "metrics.token" } else { "metrics.token_file" }, &token)?;
        Ok(Some(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> Metrics {
        yaml_serde::from_str(yaml).expect("parses")
    }

    #[test]
    fn metrics_are_on_without_a_token_by_default() {
        let m = read("{}");
        assert!(m.enabled);
        assert_eq!(m.bearer_token(Path::to_path_buf).expect("no token"), None);
    }

    #[test]
    fn the_token_comes_from_the_file_or_the_key_never_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("metrics.token"), "4f1c0a9e7b2d6358c1aa\n").expect("write");
        let m = read("token_file: metrics.token");
        let token = m.bearer_token(|p| dir.path().join(p)).expect("read");
        assert_eq!(token.as_deref(), Some("4f1c0a9e7b2d6358c1aa"));
        let err = read("token_file: missing").bearer_token(|p| dir.path().join(p)).unwrap_err().to_string();
        assert!(err.contains("metrics.token_file") && err.contains("missing"), "{err}");
        let err = read("token: short").bearer_token(Path::to_path_buf).unwrap_err().to_string();
        assert!(err.contains("metrics.token") && err.contains("too short"), "{err}");
        let both = read("token: 4f1c0a9e7b2d6358c1aa\ntoken_file: x");
        assert!(both.validate().unwrap_err().to_string().contains("only one"));
    }
}
