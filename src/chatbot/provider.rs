//! The provider client: OpenAI's chat-completions API
//! (<https://platform.openai.com/docs/api-reference/chat/create>), as OpenAI, compatible servers
//! (llama.cpp, vLLM) and Azure OpenAI
//! (<https://learn.microsoft.com/azure/ai-services/openai/reference>) speak it. The two differ
//! only in the URL and the key's header. Requests are built apart from sending them (the tests
//! look at them); 429 and 5xx answers and unreachable servers are retried with backoff,
//! honouring `Retry-After`. The key travels only in the request header and is never logged.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::context::Message;
use super::settings::{ProviderKind, Settings};

/// Why a question got no answer. `Display` is for the log (no key in it); people are told
/// [`ChatError::friendly`].
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("the AI service could not be reached: {0}")]
    Unreachable(String),
    #[error("the AI service did not answer within the timeout")]
    Timeout,
    #[error("the AI service refused the bridge's key (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    #[error("the AI service is limiting requests (HTTP 429): {message}")]
    RateLimited { message: String },
    #[error("the AI service failed (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    #[error("the AI service refused the request (HTTP {status}, {code}): {message}")]
    Rejected { status: u16, code: String, message: String },
    #[error("the AI service's answer could not be read: {0}")]
    BadAnswer(String),
    #[error("the chatbot is not set up: {0}")]
    Setup(String),
}

impl ChatError {
    /// The short message the person who asked is told.
    pub fn friendly(&self) -> &'static str {
        match self {
            ChatError::Unreachable(_) | ChatError::Timeout => {
                "Sorry, the AI service is not reachable right now. Please try again in a few minutes."
            }
            ChatError::RateLimited { .. } => {
                "Sorry, the AI service is busy right now (too many requests). Please try again in a minute."
            }
            ChatError::Server { .. } => "Sorry, the AI service has a problem right now. Please try again later.",
            ChatError::Rejected { code, .. } if code == "content_filter" => {
                "Sorry, the AI service declined to answer this (its content filter)."
            }
            ChatError::Rejected { code, .. } if code == "context_length_exceeded" => {
                "Sorry, that is too long for the AI service. Send something shorter, or /clear to start over."
            }
            ChatError::Rejected { .. } => "Sorry, the AI service could not answer this request.",
            ChatError::Auth { .. } | ChatError::Setup(_) => {
                "Sorry, the AI service is not set up correctly. Please tell an administrator."
            }
            ChatError::BadAnswer(_) => "Sorry, the AI service gave an answer I could not read. Please try again.",
        }
    }

    /// The service is away or broken (not merely busy, or refusing one request): its presence
    /// shows it.
    pub fn means_unreachable(&self) -> bool {
        matches!(self, ChatError::Unreachable(_) | ChatError::Timeout | ChatError::Server { .. })
    }

    /// Worth asking again (after a pause): the service is busy, failing or away for a moment.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ChatError::Unreachable(_) | ChatError::Timeout | ChatError::RateLimited { .. } | ChatError::Server { .. }
        )
    }
}

/// An answer: the text and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub content: String,
    pub usage: Usage,
}

/// The `usage` of an answer (zero when the server reports none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

/// Where requests go and how the key is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// `POST {base_url}/chat/completions`, `Authorization: Bearer <key>`, the model in the body.
    OpenAi { base_url: String, model: String },
    /// `POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…`,
    /// `api-key: <key>`; the deployment is the model.
    Azure { endpoint: String, deployment: String, api_version: String },
}

/// Waits between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The pause after the first failure; it doubles with each further one.
    pub first_backoff: Duration,
    /// The longest pause the bridge waits, also when `Retry-After` asks for more (a person is
    /// waiting for the answer; beyond this they are told to try later).
    pub max_wait: Duration,
}

impl RetryPolicy {
    /// How long to wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed
    /// with `error`; `None`: give up.
    pub fn next_wait(&self, attempt: u32, error: &ChatError, retry_after: Option<Duration>) -> Option<Duration> {
        if !error.is_retryable() || attempt >= self.max_attempts {
            return None;
        }
        let backoff = crate::core::backoff::delay(self.first_backoff, Duration::MAX, attempt);
        let wait = retry_after.unwrap_or(backoff);
        (wait <= self.max_wait).then_some(wait)
    }
}

/// A client for one configured provider.
pub struct Provider {
    pub(super) http: reqwest::Client,
    pub(super) endpoint: Endpoint,
    key: Option<String>,
    pub(super) policy: RetryPolicy,
    /// For images (`images.rs`): the model (OpenAI) or deployment (Azure), and the size.
    pub(super) image: Option<(String, String)>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("endpoint", &self.endpoint).field("policy", &self.policy).finish()
    }
}

/// The request body (only what the bridge sets).
#[derive(Serialize)]
struct Request<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    messages: &'a [Message],
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: AnswerMessage,
}

#[derive(Deserialize)]
struct AnswerMessage {
    #[serde(default)]
    content: Option<String>,
}

/// `{"error": {"message": …, "type": …, "code": …}}` (OpenAI and Azure alike; `code` may be a
/// string, a number or null).
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

impl Provider {
    /// A client for `settings` with the key already read (see `Chatbot::key`).
    pub fn new(settings: &Settings, key: Option<String>) -> Result<Self, ChatError> {
        let endpoint = match settings.provider {
            ProviderKind::OpenAi => {
                let o = settings.openai.as_ref().ok_or_else(|| ChatError::Setup("chatbot.openai is missing".into()))?;
                Endpoint::OpenAi { base_url: o.base_url.trim_end_matches('/').to_owned(), model: o.model.clone() }
            }
            ProviderKind::Azure => {
                let a = settings.azure.as_ref().ok_or_else(|| ChatError::Setup("chatbot.azure is missing".into()))?;
                Endpoint::Azure {
                    endpoint: a.endpoint.trim_end_matches('/').to_owned(),
                    deployment: a.deployment.clone(),
                    api_version: a.api_version.clone(),
                }
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs))
            .connect_timeout(Duration::from_secs(settings.timeout_secs.min(10)))
            .build()
            .map_err(|e| ChatError::Setup(format!("the HTTP client: {e}")))?;
        let policy = RetryPolicy {
            max_attempts: settings.max_attempts,
            first_backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(30),
        };
        let image = settings.images_target().map(|target| (target, settings.image_size.clone()));
        Ok(Self { http, endpoint, key: key.filter(|k| !k.is_empty()), policy, image })
    }

    /// The same client with another retry policy (tests wait less).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The chat-completions URL.
    fn url(&self) -> Result<url::Url, ChatError> {
        let text = match &self.endpoint {
            Endpoint::OpenAi { base_url, .. } => format!("{base_url}/chat/completions"),
            Endpoint::Azure { endpoint, deployment, .. } => {
                format!("{endpoint}/openai/deployments/{deployment}/chat/completions")
            }
        };
        let mut url = url::Url::parse(&text).map_err(|e| ChatError::Setup(format!("the provider URL: {e}")))?;
        if let Endpoint::Azure { api_version, .. } = &self.endpoint {
            url.query_pairs_mut().append_pair("api-version", api_version);
        }
        Ok(url)
    }

    /// The list of models: the cheap request that tells whether the service is there
    /// (`GET {base_url}/models`; Azure: `GET {endpoint}/openai/models?api-version=…`).
    fn models_url(&self) -> Result<url::Url, ChatError> {
        let text = match &self.endpoint {
            Endpoint::OpenAi { base_url, .. } => format!("{base_url}/models"),
            Endpoint::Azure { endpoint, .. } => format!("{endpoint}/openai/models"),
        };
        let mut url = url::Url::parse(&text).map_err(|e| ChatError::Setup(format!("the provider URL: {e}")))?;
        if let Endpoint::Azure { api_version, .. } = &self.endpoint {
            url.query_pairs_mut().append_pair("api-version", api_version);
        }
        Ok(url)
    }

    /// The health request (built, not sent).
    pub fn health_request(&self) -> Result<reqwest::Request, ChatError> {
        self.authorized(self.http.get(self.models_url()?))
            .build()
            .map_err(|e| ChatError::Setup(format!("the request: {e}")))
    }

    /// Is the service there? One attempt, no retries: presence follows the next check.
    pub async fn health(&self) -> Result<(), ChatError> {
        let response = self.http.execute(self.health_request()?).await.map_err(|e| transport_error(&e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = response.bytes().await.map_err(|e| transport_error(&e))?;
        match read_answer(status, &body) {
            Err(e) => Err(e),
            Ok(_) => Err(ChatError::BadAnswer(format!("HTTP {status}"))),
        }
    }

    pub(super) fn authorized(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (&self.key, &self.endpoint) {
            (None, _) => builder,
            (Some(key), Endpoint::OpenAi { .. }) => builder.bearer_auth(key),
            (Some(key), Endpoint::Azure { .. }) => builder.header("api-key", key),
        }
    }

    /// The request for one question (built, not sent).
    pub fn request(&self, messages: &[Message]) -> Result<reqwest::Request, ChatError> {
        let model = match &self.endpoint {
            Endpoint::OpenAi { model, .. } => Some(model.as_str()),
            Endpoint::Azure { .. } => None,
        };
        self.authorized(self.http.post(self.url()?).json(&Request { model, messages }))
            .build()
            .map_err(|e| ChatError::Setup(format!("the request: {e}")))
    }

    /// Ask: send `messages`, retrying what is worth retrying.
    pub async fn complete(&self, messages: &[Message]) -> Result<Completion, ChatError> {
        self.send_with_retries("answer", || self.request(messages), read_answer).await
    }

    /// Send the request `build` makes, again while the failure is worth retrying (after the
    /// policy's pause, or the `Retry-After` the server asked for); `read` makes the answer of the
    /// status and body.
    pub(super) async fn send_with_retries<T>(
        &self,
        what: &str,
        build: impl Fn() -> Result<reqwest::Request, ChatError>,
        read: impl Fn(u16, &[u8]) -> Result<T, ChatError>,
    ) -> Result<T, ChatError> {
        let mut attempt = 1;
        loop {
            let (result, retry_after) = self.attempt(&build, &read).await;
            let error = match result {
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            match self.policy.next_wait(attempt, &error, retry_after) {
                Some(wait) => {
                    tracing::info!(attempt, ?wait, what, error = %error, "chatbot: provider failed; asking again");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                None => return Err(error),
            }
        }
    }

    /// One attempt: the answer or the error, and the `Retry-After` the server asked for.
    async fn attempt<T>(
        &self,
        build: &impl Fn() -> Result<reqwest::Request, ChatError>,
        read: &impl Fn(u16, &[u8]) -> Result<T, ChatError>,
    ) -> (Result<T, ChatError>, Option<Duration>) {
        let request = match build() {
            Ok(r) => r,
            Err(e) => return (Err(e), None),
        };
        let response = match self.http.execute(request).await {
            Ok(r) => r,
            Err(e) => return (Err(transport_error(&e)), None),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        match response.bytes().await {
            Ok(body) => (read(status, &body), retry_after),
            Err(e) => (Err(transport_error(&e)), retry_after),
        }
    }
}

pub(super) fn transport_error(e: &reqwest::Error) -> ChatError {
    if e.is_timeout() {
        ChatError::Timeout
    } else {
        // The URL is in the message; the key never is (it is a header).
        ChatError::Unreachable(e.to_string())
    }
}

/// How long the server asked to wait: `retry-after-ms` (Azure), else `Retry-After` in seconds
/// (an HTTP date is not honoured: the backoff applies).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = value("retry-after-ms").and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite() && *v >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms.min(86_400_000.0) / 1000.0));
    }
    value("retry-after").and_then(|v| v.parse::<u64>().ok()).map(|s| Duration::from_secs(s.min(86_400)))
}

/// Read an answer of status `status`: the first choice's text, or the error it says.
pub fn read_answer(status: u16, body: &[u8]) -> Result<Completion, ChatError> {
    if (200..300).contains(&status) {
        let response: Response =
            serde_json::from_slice(body).map_err(|e| ChatError::BadAnswer(format!("not a chat completion: {e}")))?;
        let content = response
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| ChatError::BadAnswer("no text in choices[0].message.content".into()))?;
        return Ok(Completion { content, usage: response.usage.unwrap_or_default() });
    }
    let (message, code) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => {
            let code = match error.code {
                Some(serde_json::Value::String(s)) => s,
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => error.kind.clone().unwrap_or_default(),
            };
            (error.message.unwrap_or_default(), code)
        }
        // Not the documented error form (a proxy's page): a short piece of it for the log.
        Err(_) => (String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(), String::new()),
    };
    Err(match status {
        401 | 403 => ChatError::Auth { status, message },
        429 => ChatError::RateLimited { message },
        500..=599 => ChatError::Server { status, message },
        _ => ChatError::Rejected { status, code, message },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chatbot::context::Role;

    fn settings(yaml: &str) -> Settings {
        // main() installs the TLS provider; the tests build clients without it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let s: Settings = yaml_serde::from_str(yaml).unwrap();
        s.validate().unwrap();
        s
    }

    fn body_json(request: &reqwest::Request) -> serde_json::Value {
        serde_json::from_slice(request.body().and_then(|b| b.as_bytes()).expect("a body")).unwrap()
    }

    #[test]
    fn an_openai_request_has_the_model_the_messages_and_a_bearer_key() {
        let s = settings("provider: openai\nopenai: {base_url: 'http://127.0.0.1:8080/v1/', model: gpt-4o-mini}\n");
        let p = Provider::new(&s, Some("sk-test-key".into())).unwrap();
        let messages = vec![Message::new(Role::System, "be brief"), Message::new(Role::User, "hi")];
        let r = p.request(&messages).unwrap();
        assert_eq!(r.method(), reqwest::Method::POST);
        assert_eq!(r.url().as_str(), "http://127.0.0.1:8080/v1/chat/completions");
        assert_eq!(r.headers()["authorization"], "Bearer sk-test-key");
        assert_eq!(r.headers()["content-type"], "application/json");
        let h = p.health_request().unwrap();
        assert_eq!((h.method().as_str(), h.url().as_str()), ("GET", "http://127.0.0.1:8080/v1/models"));
        assert_eq!(h.headers()["authorization"], "Bearer sk-test-key");
        assert_eq!(
            body_json(&r),
            serde_json::json!({"model": "gpt-4o-mini", "messages": [
                {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]})
        );
    }

    #[test]
    fn a_local_server_without_a_key_gets_no_authorization_header() {
        let s = settings("provider: openai\nopenai: {base_url: 'http://127.0.0.1:8080/v1', model: local}\n");
        let r = Provider::new(&s, None).unwrap().request(&[Message::new(Role::User, "hi")]).unwrap();
        assert!(r.headers().get("authorization").is_none());
    }

    #[test]
    fn an_azure_request_names_the_deployment_and_version_and_sends_api_key() {
        let s = settings(
            "provider: azure\napi_key_env: AZ\nazure: {endpoint: 'https://res.openai.azure.com/', deployment: gpt4o, api_version: '2024-10-21'}\n",
        );
        let p = Provider::new(&s, Some("az-key".into())).unwrap();
        let r = p.request(&[Message::new(Role::User, "hi")]).unwrap();
        assert_eq!(
            r.url().as_str(),
            "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(r.headers()["api-key"], "az-key");
        assert!(r.headers().get("authorization").is_none());
        assert_eq!(body_json(&r), serde_json::json!({"messages": [{"role": "user", "content": "hi"}]}));
        assert!(!format!("{p:?}").contains("az-key"));
        let h = p.health_request().unwrap();
        assert_eq!(h.method(), reqwest::Method::GET);
        assert_eq!(h.url().as_str(), "https://res.openai.azure.com/openai/models?api-version=2024-10-21");
        assert_eq!(h.headers()["api-key"], "az-key");
    }

    #[test]
    fn an_answer_is_the_first_choice_with_its_usage() {
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini",
            "choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
        let c = read_answer(200, body).unwrap();
        assert_eq!(c.content, "Hello!");
        assert_eq!(c.usage, Usage { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 });
        assert!(matches!(read_answer(200, br#"{"choices":[]}"#), Err(ChatError::BadAnswer(_))));
        assert!(matches!(read_answer(200, b"<html>"), Err(ChatError::BadAnswer(_))));
    }

    #[test]
    fn error_bodies_become_errors_with_friendly_texts() {
        let err = |status, body: &str| read_answer(status, body.as_bytes()).unwrap_err();
        let e = err(
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        );
        assert!(matches!(e, ChatError::Auth { status: 401, .. }), "{e}");
        assert!(e.friendly().contains("administrator"));
        let e =
            err(429, r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#);
        assert!(matches!(e, ChatError::RateLimited { .. }) && e.is_retryable());
        let e = err(
            400,
            r#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#,
        );
        assert!(e.friendly().contains("/clear") && !e.is_retryable(), "{e}");
        let e = err(400, r#"{"error":{"message":"filtered","type":null,"code":"content_filter"}}"#);
        assert!(e.friendly().contains("content filter"));
        let e = err(503, "<html>Service Unavailable</html>");
        assert!(matches!(e, ChatError::Server { status: 503, .. }) && e.is_retryable());
        assert!(e.to_string().contains("Service Unavailable"));
        let e = err(404, r#"{"error":{"code":404,"message":"Resource not found"}}"#);
        assert!(matches!(&e, ChatError::Rejected { code, .. } if code == "404"), "{e}");
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_azure_milliseconds() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn waits_follow_retry_after_else_double_and_stop_at_the_limits() {
        let policy =
            RetryPolicy { max_attempts: 4, first_backoff: Duration::from_secs(1), max_wait: Duration::from_secs(30) };
        let busy = ChatError::RateLimited { message: String::new() };
        let down = ChatError::Server { status: 502, message: String::new() };
        assert_eq!(policy.next_wait(1, &down, None), Some(Duration::from_secs(1)));
        assert_eq!(policy.next_wait(2, &down, None), Some(Duration::from_secs(2)));
        assert_eq!(policy.next_wait(3, &down, None), Some(Duration::from_secs(4)));
        assert_eq!(policy.next_wait(4, &down, None), None, "no fifth attempt");
        assert_eq!(policy.next_wait(1, &busy, Some(Duration::from_secs(7))), Some(Duration::from_secs(7)));
        assert_eq!(
            policy.next_wait(1, &busy, Some(Duration::from_secs(120))),
            None,
            "too long to keep someone waiting"
        );
        let refused = ChatError::Rejected { status: 400, code: String::new(), message: String::new() };
        assert_eq!(policy.next_wait(1, &refused, None), None);
        assert_eq!(policy.next_wait(1, &ChatError::Auth { status: 401, message: String::new() }, None), None);
    }
}
