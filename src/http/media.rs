//! `GET /media/<token>/<name>`: Matrix files posted in bridged chats, served to XMPP clients.
//! The token (128 random bits) is the only key; the bridge fetches the file from the media
//! repository on each request, so a redacted file (its link forgotten) is no longer served.
//!
//! The file is the sender's, served on the bridge's origin (issue #11, M3): only a short list
//! of passive types is shown inline; anything else (HTML, SVG, XML, scripts, …) is an
//! attachment of a type no browser runs, and every answer carries `nosniff` and a CSP that
//! forbids everything and sandboxes the document. The bytes are streamed, never held whole,
//! and cut at `media.max_bytes` whatever the sender declared (M4); what goes wrong inside is
//! logged, and the client only learns that the file is not there (L8). A link works for
//! `media.link_lifetime_days` after the file was posted, then answers 410 Gone. The links come
//! from the bridge through the [`MediaLinks`] port.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::store::MediaLink;

/// What serving files needs from the bridge.
#[async_trait::async_trait]
pub trait MediaLinks: Send + Sync {
    /// The file a token stands for, if it is still linked.
    async fn media_by_token(&self, token: &str) -> crate::store::Result<Option<MediaLink>>;
    /// The largest file served (`media.max_bytes`, as last reloaded).
    fn max_bytes(&self) -> u64;
    /// How long a link works after it was made (`media.link_lifetime_days`); `None`: for ever.
    fn link_lifetime_ms(&self) -> Option<i64>;
}

/// Types a browser shows without running anything; all others are served as attachments.
const INLINE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/bmp",
    "audio/aac",
    "audio/flac",
    "audio/mp4",
    "audio/mpeg",
    "audio/ogg",
    "audio/opus",
    "audio/wav",
    "audio/webm",
    "audio/x-wav",
    "video/mp4",
    "video/ogg",
    "video/quicktime",
    "video/webm",
    "application/pdf",
    "text/plain",
];

/// Sent with every file: no scripts, no subresources, an opaque origin even if a browser
/// renders the document.
const CSP: &str = "default-src 'none'; sandbox";

/// Where the files come from: the media repository, as the bridge bot.
pub struct MediaSource {
    http: reqwest::Client,
    base_url: String,
    as_token: String,
    /// Files being served at once (each holds a homeserver connection while it streams).
    streams: Arc<Semaphore>,
}

impl MediaSource {
    pub fn new(homeserver_url: &str, as_token: &str, max_streams: usize) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Per read, not in total: a large file to a slow client may take its time.
            .read_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(MediaSource {
            http,
            base_url: homeserver_url.trim_end_matches('/').to_owned(),
            as_token: as_token.to_owned(),
            streams: Arc::new(Semaphore::new(max_streams)),
        })
    }

    /// The authenticated-media download URL of an `mxc://server/id`.
    fn download_url(&self, mxc: &str) -> Option<url::Url> {
        let uri = ruma::OwnedMxcUri::from(mxc);
        let (server, media_id) = uri.parts().ok()?;
        let mut url = url::Url::parse(&self.base_url).ok()?;
        url.path_segments_mut().ok()?.pop_if_empty().extend([
            "_matrix",
            "client",
            "v1",
            "media",
            "download",
            server.as_str(),
            media_id,
        ]);
        Some(url)
    }
}

/// What the client is told: no internal detail (database errors, the homeserver's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    /// The link expired (`media.link_lifetime_days`).
    Gone,
    TooLarge,
    Busy,
    Upstream,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, errcode, message) = match self {
            Refusal::NotFound => (StatusCode::NOT_FOUND, "M_NOT_FOUND", "no such file"),
            Refusal::Gone => (StatusCode::GONE, "M_NOT_FOUND", "this link has expired"),
            Refusal::TooLarge => (StatusCode::NOT_FOUND, "M_TOO_LARGE", "the file is larger than the bridge serves"),
            Refusal::Busy => (StatusCode::SERVICE_UNAVAILABLE, "M_LIMIT_EXCEEDED", "busy, try again later"),
            Refusal::Upstream => (StatusCode::BAD_GATEWAY, "M_UNKNOWN", "the file cannot be fetched now"),
        };
        (status, axum::Json(serde_json::json!({"errcode": errcode, "error": message}))).into_response()
    }
}

pub async fn serve(
    State((links, source)): State<(Arc<dyn MediaLinks>, Arc<MediaSource>)>,
    Path((token, _name)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let link = links
        .media_by_token(&token)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "media: looking up a link");
            Refusal::Upstream
        })?
        .ok_or(Refusal::NotFound)?;
    if expired(link.created_at, links.link_lifetime_ms(), crate::store::now_ms()) {
        return Err(Refusal::Gone);
    }
    let max = links.max_bytes();
    if link.size.is_some_and(|s| s > max) {
        return Err(Refusal::TooLarge);
    }
    let slot = source.streams.clone().try_acquire_owned().map_err(|_| Refusal::Busy)?;
    let url = source.download_url(&link.mxc).ok_or_else(|| {
        tracing::warn!(mxc = link.mxc, "media: not a valid mxc URI");
        Refusal::NotFound
    })?;
    let upstream = source.http.get(url).bearer_auth(&source.as_token).send().await.map_err(|e| {
        tracing::warn!(mxc = link.mxc, error = %e, "media: cannot reach the media repository");
        Refusal::Upstream
    })?;
    match upstream.status() {
        s if s.is_success() => {}
        StatusCode::NOT_FOUND => return Err(Refusal::NotFound),
        s => {
            tracing::warn!(mxc = link.mxc, status = %s, "media: the media repository refused the download");
            return Err(Refusal::Upstream);
        }
    }
    let length = upstream.content_length();
    if length.is_some_and(|n| n > max) {
        return Err(Refusal::TooLarge);
    }
    let stored = upstream.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let declared = link.mimetype.as_deref().or(stored.as_deref());
    let (content_type, inline) = presentation(declared);
    let disposition = content_disposition(inline, &link.name);
    let mut response = Response::new(Body::from_stream(capped(upstream, max, slot)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    for (name, value) in security_headers() {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Some(n) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    Ok(response)
}

/// Whether a link made at `created_at` has outlived `lifetime` by `now` (all in ms).
fn expired(created_at: i64, lifetime: Option<i64>, now: i64) -> bool {
    lifetime.is_some_and(|l| now.saturating_sub(created_at) > l)
}

/// Headers every file is sent with.
fn security_headers() -> [(header::HeaderName, &'static str); 3] {
    [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
    ]
}

/// The body, chunk by chunk as the media repository sends it, failing (which aborts the
/// connection) past `max` bytes; the stream slot is held until it ends.
fn capped(
    upstream: reqwest::Response,
    max: u64,
    slot: OwnedSemaphorePermit,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::try_unfold((upstream, 0u64, slot), move |(mut upstream, sent, slot)| async move {
        let Some(chunk) = upstream.chunk().await.map_err(std::io::Error::other)? else {
            return Ok(None);
        };
        let sent = sent + chunk.len() as u64;
        if sent > max {
            tracing::warn!(max, "media: the file is larger than it said; cut off");
            return Err(std::io::Error::other("the file is larger than the bridge serves"));
        }
        Ok(Some((chunk, (upstream, sent, slot))))
    })
}

/// The `Content-Type` to send for a file of the declared type, and whether it may be shown
/// inline. Only [`INLINE_TYPES`] keep their type; other text is plain text, the rest bytes.
fn presentation(declared: Option<&str>) -> (&'static str, bool) {
    let essence = declared.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "text/plain" {
        return ("text/plain; charset=utf-8", true);
    }
    if let Some(safe) = INLINE_TYPES.iter().find(|t| **t == essence) {
        return (safe, true);
    }
    if essence.starts_with("text/") {
        return ("text/plain; charset=utf-8", false);
    }
    ("application/octet-stream", false)
}

/// Bytes an RFC 8187 `value-chars` may carry as they are (`attr-char`).
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// A file name as an RFC 8187 `ext-value` (after `UTF-8''`).
fn rfc8187(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, ATTR_CHAR).to_string()
}

/// `Content-Disposition` (RFC 6266): the name as RFC 8187 `filename*`, after a plain `filename`
/// for clients that do not read it (ASCII only; a quote, backslash or control becomes `_`).
fn content_disposition(inline: bool, name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' { c } else { '_' })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{plain}\"; filename*=UTF-8''{}", rfc8187(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passive_types_are_inline() {
        for (declared, sent, inline) in [
            (Some("image/png"), "image/png", true),
            (Some("IMAGE/JPEG; x=y"), "image/jpeg", true),
            (Some("text/plain; charset=utf-7"), "text/plain; charset=utf-8", true),
            (Some("application/pdf"), "application/pdf", true),
            (Some("text/html"), "text/plain; charset=utf-8", false),
            (Some("text/javascript"), "text/plain; charset=utf-8", false),
            (Some("image/svg+xml"), "application/octet-stream", false),
            (Some("application/xhtml+xml"), "application/octet-stream", false),
            (Some("application/xml"), "application/octet-stream", false),
            (Some("application/javascript"), "application/octet-stream", false),
            (Some("multipart/x-mixed-replace"), "application/octet-stream", false),
            (Some(""), "application/octet-stream", false),
            (None, "application/octet-stream", false),
        ] {
            assert_eq!(presentation(declared), (sent, inline), "{declared:?}");
        }
    }

    /// One link, made `age_days` ago, under a lifetime of 30 days.
    struct OneLink(i64);

    #[async_trait::async_trait]
    impl MediaLinks for OneLink {
        async fn media_by_token(&self, token: &str) -> crate::store::Result<Option<MediaLink>> {
            Ok((token == "t").then(|| MediaLink {
                token: "t".into(),
                mxc: "mxc://hs/abc".into(),
                name: "a.txt".into(),
                mimetype: Some("text/plain".into()),
                size: Some(3),
                room: crate::core::ids::RoomId::parse("!r:hs").expect("a room id"),
                event_id: "$e".into(),
                created_at: crate::store::now_ms() - self.0 * 24 * 3600 * 1000,
            }))
        }
        fn max_bytes(&self) -> u64 {
            1024
        }
        fn link_lifetime_ms(&self) -> Option<i64> {
            Some(30 * 24 * 3600 * 1000)
        }
    }

    #[tokio::test]
    async fn an_expired_link_is_gone_and_an_unknown_one_not_found() {
        // The homeserver address is never reached: both answers come before any download.
        let source = Arc::new(MediaSource::new("http://127.0.0.1:9", "as", 1).expect("a client"));
        let ask = |age: i64, token: &str| {
            let links: Arc<dyn MediaLinks> = Arc::new(OneLink(age));
            serve(State((links, source.clone())), Path((token.to_owned(), "a.txt".to_owned())))
        };
        assert_eq!(ask(31, "t").await.err(), Some(Refusal::Gone));
        assert_eq!(ask(31, "t").await.err().map(|r| r.into_response().status()), Some(StatusCode::GONE));
        assert_eq!(ask(1, "other").await.err(), Some(Refusal::NotFound));
        assert!(!expired(0, None, i64::MAX), "lifetime 0: for ever");
        assert!(!expired(1_000, Some(500), 1_500));
        assert!(expired(1_000, Some(500), 1_501));
    }

    #[test]
    fn file_names_are_encoded() {
        assert_eq!(rfc8187("a b\"ü;.html"), "a%20b%22%C3%BC%3B.html");
        assert_eq!(rfc8187("x\r\ny"), "x%0D%0Ay");
        assert_eq!(
            content_disposition(false, "my notes ü\"\\.txt"),
            "attachment; filename=\"my notes ___.txt\"; filename*=UTF-8''my%20notes%20%C3%BC%22%5C.txt"
        );
        assert!(content_disposition(true, "a\r\nb").starts_with("inline; filename=\"a__b\";"));
    }

    #[test]
    fn download_urls_are_built_from_valid_mxc_only() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let source = MediaSource::new("http://hs.internal:8008/", "t", 1).expect("client");
        assert_eq!(
            source.download_url("mxc://localhost/AbC_12-x").map(String::from).as_deref(),
            Some("http://hs.internal:8008/_matrix/client/v1/media/download/localhost/AbC_12-x")
        );
        assert!(source.download_url("mxc://localhost/../../admin").is_none());
        assert!(source.download_url("https://elsewhere/x").is_none());
    }
}
