//! Checking and parsing a telephony webhook request, without the HTTP server around it.
//!
//! The PBX (or a small adapter next to it) posts one event or a JSON array of events (see
//! [`super::event`] and `docs/calls-webhook.md`). Two headers authenticate it:
//!
//! - [`TIMESTAMP_HEADER`]: the sender's Unix time in seconds;
//! - [`SIGNATURE_HEADER`]: `sha256=<hex>`, the HMAC-SHA256 with the shared secret over
//!   `<timestamp>.<body>`.
//!
//! Signing the timestamp together with the body means a captured request cannot be replayed
//! later than the window allows, and the window is checked on both sides so a sender with a
//! clock far ahead cannot mint requests that stay valid for long. Inside the window a replay is
//! harmless: the call model ignores repeated events.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::event::{CallEvent, LegOutcome};

/// Header carrying the sender's Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "x-ucbridge-timestamp";
/// Header carrying `sha256=<hex HMAC>`.
pub const SIGNATURE_HEADER: &str = "x-ucbridge-signature";
/// Largest body we read: a burst of a few hundred events fits easily.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Default tolerance between the sender's clock and ours.
pub const DEFAULT_WINDOW_SECS: u64 = 300;
/// Most events one request may carry.
pub const MAX_EVENTS: usize = 1000;

const MAX_ID_LEN: usize = 128;
/// Longest caller name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
const MAX_NUMBER_LEN: usize = 64;
const MAX_CAUSE_LEN: usize = 128;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {0} header")]
    MalformedHeader(&'static str),
    #[error("request timestamp is outside the allowed window")]
    Stale,
    #[error("signature does not match")]
    BadSignature,
    #[error("body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("more than {MAX_EVENTS} events in one request")]
    TooManyEvents,
    #[error("body is not valid event JSON: {0}")]
    BadJson(String),
    #[error("event {index}: {field} {problem}")]
    InvalidField { index: usize, field: &'static str, problem: &'static str },
}

impl WebhookError {
    /// True for errors that mean "not from our PBX" (answer 401), as opposed to a bad body (400).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            WebhookError::MissingHeader(_)
                | WebhookError::MalformedHeader(_)
                | WebhookError::Stale
                | WebhookError::BadSignature
        )
    }
}

/// The signature header value for a body, as a sender computes it (used by tests and tools).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac_for(secret, timestamp, body).finalize().into_bytes()))
}

fn mac_for(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Check the headers of a request against the shared secret. `now` is our Unix time in seconds.
pub fn verify(
    secret: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now: i64,
    window_secs: u64,
) -> Result<(), WebhookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge);
    }
    let ts_text = timestamp_header.ok_or(WebhookError::MissingHeader(TIMESTAMP_HEADER))?;
    let sig_text = signature_header.ok_or(WebhookError::MissingHeader(SIGNATURE_HEADER))?;
    let timestamp: i64 = ts_text.trim().parse().map_err(|_| WebhookError::MalformedHeader(TIMESTAMP_HEADER))?;
    let hex_sig = sig_text.trim().strip_prefix("sha256=").ok_or(WebhookError::MalformedHeader(SIGNATURE_HEADER))?;
    let expected = hex::decode(hex_sig).map_err(|_| WebhookError::MalformedHeader(SIGNATURE_HEADER))?;
    if now.abs_diff(timestamp) > window_secs {
        return Err(WebhookError::Stale);
    }
    // verify_slice compares in constant time.
    mac_for(secret, timestamp, body).verify_slice(&expected).map_err(|_| WebhookError::BadSignature)
}

/// Parse a body (one event object or an array of them) and check each event's fields.
pub fn parse_events(body: &[u8]) -> Result<Vec<CallEvent>, WebhookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge);
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let events = if first == Some(&b'[') {
        serde_json::from_slice::<Vec<CallEvent>>(body).map_err(|e| WebhookError::BadJson(e.to_string()))?
    } else {
        vec![serde_json::from_slice::<CallEvent>(body).map_err(|e| WebhookError::BadJson(e.to_string()))?]
    };
    if events.len() > MAX_EVENTS {
        return Err(WebhookError::TooManyEvents);
    }
    for (index, event) in events.iter().enumerate() {
        validate(index, event)?;
    }
    Ok(events)
}

/// [`verify`] then [`parse_events`]: the whole check for one request.
pub fn accept(
    secret: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now: i64,
    window_secs: u64,
) -> Result<Vec<CallEvent>, WebhookError> {
    verify(secret, timestamp_header, signature_header, body, now, window_secs)?;
    parse_events(body)
}

/// The checks of one event's fields, for events that do not come through [`parse_events`] (the
/// AMI translator): the same rules as the webhook's, so every input is held to one standard.
pub fn validate_event(event: &CallEvent) -> Result<(), WebhookError> {
    validate(0, event)
}

/// A caller or called number as the webhook accepts it: at most 64 characters of digits and
/// `+ * # - ( ) /` and spaces.
pub fn is_number_text(value: &str) -> bool {
    value.len() <= MAX_NUMBER_LEN
        && value.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '*' | '#' | ' ' | '-' | '(' | ')' | '/'))
}

fn validate(index: usize, event: &CallEvent) -> Result<(), WebhookError> {
    let bad = |field, problem| Err(WebhookError::InvalidField { index, field, problem });
    let id = |field: &'static str, value: &str| -> Result<(), WebhookError> {
        if value.is_empty() {
            return bad(field, "is empty");
        }
        if value.len() > MAX_ID_LEN {
            return bad(field, "is too long");
        }
        if value.chars().any(char::is_control) {
            return bad(field, "contains control characters");
        }
        Ok(())
    };
    let number = |field: &'static str, value: &str| -> Result<(), WebhookError> {
        if value.len() > MAX_NUMBER_LEN {
            return bad(field, "is too long");
        }
        if !is_number_text(value) {
            return bad(field, "is not a phone number");
        }
        Ok(())
    };
    if event.at() <= 0 {
        return bad("at", "must be a positive Unix time in milliseconds");
    }
    id("call_id", event.call_id().as_str())?;
    match event {
        CallEvent::CallCreated { caller, called, original_call_id, .. } => {
            if let Some(n) = &caller.number {
                number("caller.number", n)?;
            }
            if let Some(name) = &caller.name {
                if name.len() > MAX_NAME_LEN {
                    return bad("caller.name", "is too long");
                }
                if name.chars().any(char::is_control) {
                    return bad("caller.name", "contains control characters");
                }
            }
            if called.is_empty() {
                return bad("called", "is empty");
            }
            number("called", called)?;
            if let Some(orig) = original_call_id {
                id("original_call_id", orig.as_str())?;
            }
        }
        CallEvent::LegRinging { leg_id, extension, .. } => {
            id("leg_id", leg_id.as_str())?;
            id("extension", extension.as_str())?;
        }
        CallEvent::LegEnded { leg_id, outcome, .. } => {
            id("leg_id", leg_id.as_str())?;
            if let LegOutcome::Redirected { to } = outcome {
                id("outcome.to", to)?;
            }
        }
        CallEvent::CallAnswered { by, .. } => id("by", by.as_str())?,
        CallEvent::CallEnded { cause, .. } => {
            if cause.len() > MAX_CAUSE_LEN || cause.chars().any(char::is_control) {
                return bad("cause", "is too long or contains control characters");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"s3cret";
    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"type":"call_ended","call_id":"c1","cause":"normal_clearing","at":1700000000000}"#;

    #[test]
    fn a_correctly_signed_body_is_accepted() {
        let sig = sign(SECRET, NOW, BODY);
        assert!(sig.starts_with("sha256="));
        let events = accept(SECRET, Some(&NOW.to_string()), Some(&sig), BODY, NOW + 10, 300).expect("accepted");
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn tampering_with_body_timestamp_or_secret_fails() {
        let sig = sign(SECRET, NOW, BODY);
        let ts = NOW.to_string();
        let mut other = BODY.to_vec();
        other[10] ^= 1;
        assert_eq!(verify(SECRET, Some(&ts), Some(&sig), &other, NOW, 300), Err(WebhookError::BadSignature));
        let later = (NOW + 1).to_string();
        assert_eq!(verify(SECRET, Some(&later), Some(&sig), BODY, NOW, 300), Err(WebhookError::BadSignature));
        assert_eq!(verify(b"other", Some(&ts), Some(&sig), BODY, NOW, 300), Err(WebhookError::BadSignature));
        // A truncated signature must not verify as a prefix match.
        assert_eq!(verify(SECRET, Some(&ts), Some(&sig[..21]), BODY, NOW, 300), Err(WebhookError::BadSignature));
    }

    #[test]
    fn replay_window_is_enforced_both_ways() {
        let sig = sign(SECRET, NOW, BODY);
        let ts = NOW.to_string();
        assert_eq!(verify(SECRET, Some(&ts), Some(&sig), BODY, NOW + 301, 300), Err(WebhookError::Stale));
        assert_eq!(verify(SECRET, Some(&ts), Some(&sig), BODY, NOW - 301, 300), Err(WebhookError::Stale));
        assert!(verify(SECRET, Some(&ts), Some(&sig), BODY, NOW + 300, 300).is_ok());
    }

    #[test]
    fn missing_and_malformed_headers() {
        let sig = sign(SECRET, NOW, BODY);
        let ts = NOW.to_string();
        assert_eq!(
            verify(SECRET, None, Some(&sig), BODY, NOW, 300),
            Err(WebhookError::MissingHeader(TIMESTAMP_HEADER))
        );
        assert_eq!(verify(SECRET, Some(&ts), None, BODY, NOW, 300), Err(WebhookError::MissingHeader(SIGNATURE_HEADER)));
        assert_eq!(
            verify(SECRET, Some("yesterday"), Some(&sig), BODY, NOW, 300),
            Err(WebhookError::MalformedHeader(TIMESTAMP_HEADER))
        );
        let no_prefix = sig.trim_start_matches("sha256=");
        assert_eq!(
            verify(SECRET, Some(&ts), Some(no_prefix), BODY, NOW, 300),
            Err(WebhookError::MalformedHeader(SIGNATURE_HEADER))
        );
        assert_eq!(
            verify(SECRET, Some(&ts), Some("sha256=zz"), BODY, NOW, 300),
            Err(WebhookError::MalformedHeader(SIGNATURE_HEADER))
        );
        assert!(WebhookError::Stale.is_auth());
        assert!(!WebhookError::TooLarge.is_auth());
    }

    #[test]
    fn oversized_bodies_are_refused_before_hashing() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let sig = sign(SECRET, NOW, &body);
        assert_eq!(verify(SECRET, Some(&NOW.to_string()), Some(&sig), &body, NOW, 300), Err(WebhookError::TooLarge));
        assert_eq!(parse_events(&body), Err(WebhookError::TooLarge));
    }

    #[test]
    fn arrays_and_single_events_parse() {
        let body = format!(
            "  [{}, {}]",
            std::str::from_utf8(BODY).unwrap_or_default(),
            std::str::from_utf8(BODY).unwrap_or_default()
        );
        assert_eq!(parse_events(body.as_bytes()).map(|v| v.len()), Ok(2));
        assert!(matches!(parse_events(b"{\"type\":\"nope\"}"), Err(WebhookError::BadJson(_))));
        assert!(matches!(parse_events(b"not json"), Err(WebhookError::BadJson(_))));
    }

    #[test]
    fn field_validation() {
        let cases: &[(&str, &str)] = &[
            (r#"{"type":"call_ended","call_id":"","cause":"x","at":1}"#, "call_id"),
            (r#"{"type":"call_ended","call_id":"c","cause":"x","at":0}"#, "at"),
            (r#"{"type":"call_ended","call_id":"c\n","cause":"x","at":1}"#, "call_id"),
            (
                r#"{"type":"call_created","call_id":"c","caller":{"number":"<script>"},"called":"1","direction":"inbound","at":1}"#,
                "caller.number",
            ),
            (
                r#"{"type":"call_created","call_id":"c","caller":{"name":"A\r\nBcc: x"},"called":"1","direction":"inbound","at":1}"#,
                "caller.name",
            ),
            (r#"{"type":"call_created","call_id":"c","called":"","direction":"inbound","at":1}"#, "called"),
            (r#"{"type":"leg_ringing","call_id":"c","leg_id":"l","extension":"","at":1}"#, "extension"),
            (
                r#"{"type":"leg_ended","call_id":"c","leg_id":"l","outcome":{"kind":"redirected","to":""},"at":1}"#,
                "outcome.to",
            ),
        ];
        for (body, field) in cases {
            match parse_events(body.as_bytes()) {
                Err(WebhookError::InvalidField { index: 0, field: f, .. }) => assert_eq!(f, *field, "{body}"),
                other => panic!("{body}: expected invalid {field}, got {other:?}"),
            }
        }
        let long_id = format!(r#"{{"type":"call_ended","call_id":"{}","cause":"x","at":1}}"#, "c".repeat(129));
        assert!(matches!(parse_events(long_id.as_bytes()), Err(WebhookError::InvalidField { field: "call_id", .. })));
    }

    #[test]
    fn too_many_events() {
        let one = std::str::from_utf8(BODY).unwrap_or_default();
        let body = format!("[{}]", vec![one; MAX_EVENTS + 1].join(","));
        assert!(body.len() < MAX_BODY_BYTES);
        assert_eq!(parse_events(body.as_bytes()), Err(WebhookError::TooManyEvents));
    }
}
