//! The chatbot: an AI assistant people chat with like a colleague, backed by an OpenAI-style
//! chat-completions API (OpenAI, Azure OpenAI, compatible local servers). This library knows
//! the provider (`provider.rs`), the conversation context and its token budget (`context.rs`)
//! and its settings (`settings.rs`); the bridge's side (who may ask, where answers go, the
//! stored context) is `bridge/chatbot.rs`.

pub mod context;
pub mod images;
pub mod limits;
pub mod markdown;
pub mod provider;
pub mod settings;
pub mod trigger;

use std::path::Path;

pub use context::{Input, Message, Role};
pub use provider::{ChatError, Completion, Provider};
pub use settings::Settings;

/// The running assistant: its settings and a client for its provider.
#[derive(Debug)]
pub struct Chatbot {
    pub settings: Settings,
    pub provider: Provider,
    /// Whether the provider answered last time (`None`: not asked yet), for presence.
    reachable: std::sync::Mutex<Option<bool>>,
    /// Messages per person in the last minute (`chatbot.limits.messages_per_minute`).
    pub rate: limits::RateLimiter,
    /// Its picture (bytes, media type), from `chatbot.avatar_file`.
    pub avatar: Option<(Vec<u8>, String)>,
}

/// The largest picture the assistant shows: a vCard travels in one stanza.
const MAX_AVATAR: u64 = 256 * 1024;

impl Chatbot {
    /// Start the assistant for `settings`; `resolve` turns the key file's path (relative to the
    /// config file) into one to read.
    pub fn new(settings: Settings, resolve: impl Fn(&Path) -> std::path::PathBuf) -> Result<Self, ChatError> {
        let key = key(&settings, &resolve)?;
        let avatar = avatar(&settings, &resolve)?;
        let provider = Provider::new(&settings, key)?;
        Ok(Self {
            settings,
            provider,
            reachable: std::sync::Mutex::new(None),
            rate: limits::RateLimiter::default(),
            avatar,
        })
    }

    /// Whether the provider answered last time (`None`: not asked yet).
    pub fn reachable(&self) -> Option<bool> {
        *self.reachable.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Note whether the provider answered (a question or a health check); `Some(now)` when that
    /// changed, so the assistant's presence is set only on a change.
    pub fn note_reachable(&self, now: bool) -> Option<bool> {
        let mut last = self.reachable.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (last.replace(now) != Some(now)).then_some(now)
    }

    /// Forget the last state (showing it failed): the next note counts as a change.
    pub fn forget_reachable(&self) {
        *self.reachable.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The conversation sent with `question`: the system prompt, as much of `history` (oldest
    /// first) as the budget allows, the question. Also says how many of the oldest turns were
    /// left out (the store forgets them).
    pub fn prompt(&self, history: &[Message], question: &str) -> (Vec<Message>, usize) {
        let s = &self.settings;
        let dropped = context::fit(&s.system_prompt, history, question, s.context_tokens);
        (context::messages(&s.system_prompt, &history[dropped..], question), dropped)
    }
}

/// The picture from `chatbot.avatar_file`, checked for size and kind.
fn avatar(
    settings: &Settings,
    resolve: impl Fn(&Path) -> std::path::PathBuf,
) -> Result<Option<(Vec<u8>, String)>, ChatError> {
    let Some(file) = &settings.avatar_file else { return Ok(None) };
    let path = resolve(file);
    let bad = |why: String| ChatError::Setup(format!("config key `chatbot.avatar_file`: {}: {why}", path.display()));
    let size = std::fs::metadata(&path).map_err(|e| bad(e.to_string()))?.len();
    if size > MAX_AVATAR {
        return Err(bad(format!("{size} bytes; at most {MAX_AVATAR}")));
    }
    let bytes = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
    let Some(kind) = crate::core::picture::image_type(&bytes) else {
        return Err(bad("not a PNG, JPEG, GIF or WebP image".into()));
    };
    Ok(Some((bytes, kind.to_owned())))
}

/// The API key from where the settings say (none: a local server may need none).
fn key(settings: &Settings, resolve: impl Fn(&Path) -> std::path::PathBuf) -> Result<Option<String>, ChatError> {
    if let Some(key) = &settings.api_key {
        return Ok(Some(key.expose().trim().to_owned()));
    }
    if let Some(file) = &settings.api_key_file {
        let path = resolve(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ChatError::Setup(format!("config key `chatbot.api_key_file`: cannot read {}: {e}", path.display()))
        })?;
        let key = text.lines().next().unwrap_or_default().trim().to_owned();
        if key.is_empty() {
            return Err(ChatError::Setup(format!("config key `chatbot.api_key_file`: {} is empty", path.display())));
        }
        return Ok(Some(key));
    }
    if let Some(var) = &settings.api_key_env {
        let key = std::env::var(var)
            .map_err(|_| ChatError::Setup(format!("config key `chatbot.api_key_env`: the environment has no {var}")))?;
        return Ok(Some(key.trim().to_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let s: Settings = yaml_serde::from_str(&format!(
            "provider: openai\nopenai: {{base_url: 'http://127.0.0.1:1/v1', model: m}}\n{extra}"
        ))
        .unwrap();
        s.validate().unwrap();
        s
    }

    #[test]
    fn reachability_is_reported_on_change_only() {
        let bot = Chatbot::new(settings(""), |p: &Path| p.to_owned()).unwrap();
        assert_eq!(bot.note_reachable(true), Some(true), "the first check sets presence");
        assert_eq!(bot.note_reachable(true), None);
        assert_eq!(bot.note_reachable(false), Some(false));
        assert_eq!(bot.note_reachable(false), None);
        assert_eq!(bot.note_reachable(true), Some(true));
    }

    #[test]
    fn the_key_comes_from_a_file_beside_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("openai.key"), "sk-from-file\n").unwrap();
        let s = settings("api_key_file: openai.key\n");
        let resolve = |p: &Path| dir.path().join(p);
        assert_eq!(key(&s, resolve).unwrap().as_deref(), Some("sk-from-file"));
        // The picture beside it: its kind read from its bytes; anything else is refused.
        std::fs::write(dir.path().join("bot.png"), b"\x89PNG\r\n\x1a\nrest").unwrap();
        std::fs::write(dir.path().join("bot.txt"), b"hello").unwrap();
        let (_, kind) = avatar(&settings("avatar_file: bot.png\n"), resolve).unwrap().unwrap();
        assert_eq!(kind, "image/png");
        let err = avatar(&settings("avatar_file: bot.txt\n"), resolve).unwrap_err().to_string();
        assert!(err.contains("chatbot.avatar_file") && err.contains("not a PNG"), "{err}");
        let s = settings("api_key_file: missing.key\n");
        let err = key(&s, |p: &Path| dir.path().join(p)).unwrap_err().to_string();
        assert!(err.contains("chatbot.api_key_file") && err.contains("missing.key"), "{err}");
        assert_eq!(key(&settings(""), |p: &Path| p.to_owned()).unwrap(), None);
    }

    #[test]
    fn a_prompt_holds_the_system_prompt_the_history_that_fits_and_the_question() {
        let bot =
            Chatbot::new(settings("system_prompt: Be brief.\ncontext_tokens: 256\n"), |p: &Path| p.to_owned()).unwrap();
        let long = "x".repeat(600); // 154 tokens each: one fits beside the rest, two do not
        let history = vec![
            Message::new(Role::User, long.clone()),
            Message::new(Role::Assistant, long.clone()),
            Message::new(Role::User, "short"),
            Message::new(Role::Assistant, "short answer"),
        ];
        let (sent, dropped) = bot.prompt(&history, "and?");
        assert_eq!(dropped, 2);
        let contents: Vec<_> = sent.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(contents, ["Be brief.", "short", "short answer", "and?"]);
    }
}
