//! `chatbot:` — the AI assistant's settings (the config file's section; `crate::config` refers to
//! this struct). Optional: without the section there is no assistant.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// A configuration problem of the section, naming the key (`chatbot.…`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config key `{key}`: {reason}")]
pub struct SettingsError {
    pub key: &'static str,
    pub reason: String,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError { key, reason: reason.into() }
}

/// `chatbot:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The assistant's Matrix localpart (`@assistant:<homeserver>`) and XMPP localpart
    /// (`assistant@<component>`). The registration claims the Matrix ID exclusively.
    #[serde(default = "default_localpart")]
    pub localpart: String,
    /// The name people see (Matrix display name).
    #[serde(default = "default_display_name")]
    pub display_name: String,
    /// Its picture (PNG, JPEG, GIF or WebP, at most 256 KiB; relative to the config file),
    /// shown in its XMPP vCard. None: no picture.
    #[serde(default)]
    pub avatar_file: Option<PathBuf>,
    /// Which API: `openai` (OpenAI or any server speaking its chat-completions API, e.g.
    /// llama.cpp's or vLLM's) or `azure` (Azure OpenAI).
    pub provider: ProviderKind,
    #[serde(default)]
    pub openai: Option<OpenAi>,
    #[serde(default)]
    pub azure: Option<Azure>,
    /// The API key, written here …
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// … or in a file of its own (relative to the config file), its first line …
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// … or in this environment variable. One of the three; a local server may need none.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The instructions every conversation starts with.
    #[serde(default = "default_system_prompt")]
    pub system_prompt: String,
    /// How many tokens (estimated) of a conversation are sent with each question, the system
    /// prompt included; older turns are dropped first.
    #[serde(default = "default_context_tokens")]
    pub context_tokens: u32,
    /// Seconds one request to the provider may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Attempts per question when the provider answers 429 or 5xx or cannot be reached
    /// (honouring its `Retry-After`), the first included.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Seconds between the cheap health requests (the list of models) that keep the assistant's
    /// presence current: available while the provider answers, away when it does not.
    #[serde(default = "default_health_interval")]
    pub health_interval_secs: u64,
    /// Everyone the bridge serves may use the assistant; otherwise only people an admin granted
    /// the `chatbot` permission.
    #[serde(default)]
    pub everyone: bool,
    /// Members of these contact groups (the admins' `groups` command) may use the assistant too.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Rate limit and daily token budgets.
    #[serde(default)]
    pub limits: super::limits::Limits,
    /// In a room, the assistant answers only a message that starts with or mentions one of
    /// these words (case does not matter). Empty: its display name.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// A message to the assistant that starts with one of these words (e.g. `paint`, `draw`)
    /// asks for an image: the rest is the prompt, sent without the conversation. Empty: no
    /// images.
    #[serde(default)]
    pub image_keywords: Vec<String>,
    /// The image model (OpenAI), e.g. `dall-e-3`.
    #[serde(default = "default_image_model")]
    pub image_model: String,
    /// The image model's deployment (Azure; needed there for images).
    #[serde(default)]
    pub image_deployment: Option<String>,
    /// The size asked for, e.g. `1024x1024`.
    #[serde(default = "default_image_size")]
    pub image_size: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    OpenAi,
    Azure,
}

/// `chatbot.openai:` — OpenAI or a compatible server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAi {
    /// Base URL of the API, up to and including the version: `https://api.openai.com/v1`,
    /// `http://127.0.0.1:8080/v1` (llama.cpp's server).
    #[serde(default = "default_openai_url")]
    pub base_url: String,
    /// The model, e.g. `gpt-4o-mini`.
    pub model: String,
}

/// `chatbot.azure:` — an Azure OpenAI resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Azure {
    /// The resource's endpoint, `https://<resource>.openai.azure.com`.
    pub endpoint: String,
    /// The deployment (the model as deployed in the resource).
    pub deployment: String,
    /// The API version, e.g. `2024-10-21`.
    pub api_version: String,
}

/// A secret from the config: never shown by `Debug` (the config is debug-printed to compare
/// reloads and may end up in logs).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

fn default_localpart() -> String {
    "assistant".into()
}
fn default_display_name() -> String {
    "Assistant".into()
}
fn default_system_prompt() -> String {
    "You are a helpful assistant in a company chat. Answer briefly and clearly.".into()
}
fn default_context_tokens() -> u32 {
    4000
}
fn default_timeout() -> u64 {
    60
}
fn default_attempts() -> u32 {
    3
}
fn default_health_interval() -> u64 {
    300
}
fn default_image_model() -> String {
    "dall-e-3".into()
}
fn default_image_size() -> String {
    "1024x1024".into()
}
fn default_openai_url() -> String {
    "https://api.openai.com/v1".into()
}

impl Settings {
    /// Check the section's form (the key's presence is checked when the assistant starts: a
    /// file may not be readable by `check-config`'s user).
    pub fn validate(&self) -> Result<(), SettingsError> {
        let localpart_ok = !self.localpart.is_empty()
            && !self.localpart.starts_with('_')
            && self.localpart.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".=-".contains(&b));
        if !localpart_ok {
            return Err(invalid(
                "chatbot.localpart",
                "must be lower-case letters, digits, . = - (not starting with _, which ghosts use)",
            ));
        }
        if self.display_name.trim().is_empty() {
            return Err(invalid("chatbot.display_name", "must not be empty"));
        }
        match self.provider {
            ProviderKind::OpenAi => {
                let Some(o) = &self.openai else {
                    return Err(invalid("chatbot.openai", "is needed with provider: openai (base_url, model)"));
                };
                check_url("chatbot.openai.base_url", &o.base_url)?;
                if o.model.trim().is_empty() {
                    return Err(invalid("chatbot.openai.model", "must name a model"));
                }
            }
            ProviderKind::Azure => {
                let Some(a) = &self.azure else {
                    return Err(invalid(
                        "chatbot.azure",
                        "is needed with provider: azure (endpoint, deployment, api_version)",
                    ));
                };
                check_url("chatbot.azure.endpoint", &a.endpoint)?;
                if a.deployment.is_empty() || a.deployment.contains(['/', '?', '#', ' ']) {
                    return Err(invalid("chatbot.azure.deployment", "must be a deployment name"));
                }
                if a.api_version.is_empty() || a.api_version.contains(['/', '?', '#', '&', ' ']) {
                    return Err(invalid("chatbot.azure.api_version", "must be a version like 2024-10-21"));
                }
                if self.key_sources() == 0 {
                    return Err(invalid("chatbot.api_key", "Azure needs a key: api_key, api_key_file or api_key_env"));
                }
            }
        }
        if self.key_sources() > 1 {
            return Err(invalid("chatbot.api_key", "give only one of api_key, api_key_file, api_key_env"));
        }
        if self.system_prompt.len() > 16 * 1024 {
            return Err(invalid("chatbot.system_prompt", "must be at most 16 KiB"));
        }
        if !(256..=1_000_000).contains(&self.context_tokens) {
            return Err(invalid("chatbot.context_tokens", "must be between 256 and 1000000"));
        }
        if !(1..=600).contains(&self.timeout_secs) {
            return Err(invalid("chatbot.timeout_secs", "must be between 1 and 600"));
        }
        if !(10..=86_400).contains(&self.health_interval_secs) {
            return Err(invalid("chatbot.health_interval_secs", "must be between 10 and 86400"));
        }
        if self.keywords.iter().any(|k| k.trim().is_empty() || k.trim() != k) {
            return Err(invalid(
                "chatbot.keywords",
                "each keyword must be a non-empty word without surrounding spaces",
            ));
        }
        self.limits.validate().map_err(|e| invalid("chatbot.limits", e))?;
        if self.image_keywords.iter().any(|k| k.trim().is_empty() || k.contains(char::is_whitespace)) {
            return Err(invalid("chatbot.image_keywords", "each keyword must be one word"));
        }
        if !self.image_keywords.is_empty() && self.provider == ProviderKind::Azure && self.image_deployment.is_none() {
            return Err(invalid("chatbot.image_deployment", "Azure needs the image model's deployment for images"));
        }
        let size_ok = self.image_size.split_once('x').is_some_and(|(w, h)| {
            !w.is_empty() && !h.is_empty() && w.bytes().chain(h.bytes()).all(|b| b.is_ascii_digit())
        });
        if !size_ok {
            return Err(invalid("chatbot.image_size", "must be WIDTHxHEIGHT, e.g. 1024x1024"));
        }
        if !(1..=10).contains(&self.max_attempts) {
            return Err(invalid("chatbot.max_attempts", "must be between 1 and 10"));
        }
        Ok(())
    }

    /// Where images are made (the model, or Azure's deployment), if images are on.
    pub fn images_target(&self) -> Option<String> {
        if self.image_keywords.is_empty() {
            return None;
        }
        match self.provider {
            ProviderKind::OpenAi => Some(self.image_model.clone()),
            ProviderKind::Azure => self.image_deployment.clone(),
        }
    }

    /// The words that address the assistant in a room.
    pub fn room_keywords(&self) -> Vec<String> {
        if self.keywords.is_empty() { vec![self.display_name.clone()] } else { self.keywords.clone() }
    }

    fn key_sources(&self) -> usize {
        usize::from(self.api_key.is_some())
            + usize::from(self.api_key_file.is_some())
            + usize::from(self.api_key_env.is_some())
    }
}

fn check_url(key: &'static str, value: &str) -> Result<(), SettingsError> {
    let url = url::Url::parse(value).map_err(|e| invalid(key, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(key, "must be an http:// or https:// URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(key, "must not have a query or fragment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Settings {
        yaml_serde::from_str(yaml).expect("parses")
    }

    const OPENAI: &str = "provider: openai\nopenai: {model: gpt-4o-mini}\napi_key: sk-test-0123456789\n";

    #[test]
    fn defaults_and_an_openai_section_validate() {
        let s = parse(OPENAI);
        s.validate().unwrap();
        assert_eq!(s.localpart, "assistant");
        assert_eq!(s.openai.unwrap().base_url, "https://api.openai.com/v1");
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let s = parse(OPENAI);
        let shown = format!("{s:?}");
        assert!(!shown.contains("sk-test"), "{shown}");
        assert!(shown.contains("Secret(…)"), "{shown}");
    }

    #[test]
    fn errors_name_the_key() {
        for (yaml, key) in [
            ("provider: openai\n", "chatbot.openai"),
            ("provider: azure\n", "chatbot.azure"),
            (
                "provider: azure\nazure: {endpoint: 'https://r.openai.azure.com', deployment: d, api_version: '2024-10-21'}\n",
                "chatbot.api_key",
            ),
            (
                "provider: azure\napi_key: k\nazure: {endpoint: 'https://r.openai.azure.com', deployment: 'a/b', api_version: v}\n",
                "chatbot.azure.deployment",
            ),
            ("provider: openai\nopenai: {model: m, base_url: 'ftp://x'}\n", "chatbot.openai.base_url"),
            (&format!("{OPENAI}localpart: _xmpp_bot\n"), "chatbot.localpart"),
            (&format!("{OPENAI}api_key_env: KEY\n"), "chatbot.api_key"),
            (&format!("{OPENAI}context_tokens: 10\n"), "chatbot.context_tokens"),
            (&format!("{OPENAI}max_attempts: 0\n"), "chatbot.max_attempts"),
            (&format!("{OPENAI}keywords: ['AI', '']\n"), "chatbot.keywords"),
        ] {
            let err = parse(yaml).validate().unwrap_err();
            assert_eq!(err.key, key, "{yaml}: {err}");
        }
    }
}
