//! How large what the bridge sends will be, worked out when a message arrives: a message the
//! peer would refuse for its size is refused at intake (the sender still connected and told at
//! once), not accepted and given up on later.
//!
//! Matrix: Synapse refuses an event whose canonical JSON (content and envelope: ids, hashes,
//! signatures, prev/auth events) exceeds 65,536 bytes (`MAX_PDU_SIZE`). The content is measured
//! exactly as the Matrix adapter builds it (`m.room.message`, `formatted_body`, relations, and for
//! a correction the `m.new_content` copy); the envelope is a bound ([`MATRIX_ENVELOPE_BYTES`]).
//! XMPP: Prosody closes a component stream that sends a stanza larger than
//! `component_stanza_size_limit` (default 512 KiB); the body is measured escaped, the rest of the
//! stanza is a bound ([`XMPP_ENVELOPE_BYTES`]).

use crate::core::action::TextKind;

/// Synapse's limit on an event's JSON (`synapse.api.constants.MAX_PDU_SIZE`).
pub const SYNAPSE_EVENT_BYTES: usize = 65_536;
/// Prosody's limit on a stanza from a component (`component_stanza_size_limit`, which falls
/// back to `s2s_stanza_size_limit`, 512 KiB, in Prosody 0.12's `mod_component`).
pub const PROSODY_COMPONENT_STANZA_BYTES: usize = 512 * 1024;
/// What an event holds besides its content and sender, at most: room id (255 bytes), up to 10
/// prev events and 4 auth events (~47 bytes each), depth, timestamp, hashes, signatures and
/// the keys, with room to spare.
pub const MATRIX_ENVELOPE_BYTES: usize = 2048;
/// What a message stanza holds besides its body, at most: two JIDs (up to 3071 bytes each), id,
/// origin id, receipt/marker requests, nick, reply and correction references.
pub const XMPP_ENVELOPE_BYTES: usize = 8192;
/// The default longest body: the homeserver's event limit less 4 KiB, so that a plain body of
/// that length fits with the envelope, a sender id of 255 bytes and a reply's relation.
pub fn default_max_message_bytes(matrix_event_bytes: usize) -> usize {
    matrix_event_bytes.saturating_sub(4096)
}

/// A text as it will be sent to Matrix.
#[derive(Debug, Clone, Copy)]
pub struct MatrixText<'a> {
    pub body: &'a str,
    pub kind: TextKind,
    /// The `formatted_body` the link recogniser makes of it, if any.
    pub html: Option<&'a str>,
    /// An answer to an event (`m.in_reply_to`).
    pub reply: bool,
    /// A correction (`m.replace`): the text is carried twice (`m.new_content`).
    pub replaces: bool,
}

/// Whether a text fits the homeserver's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// As it is, with its HTML.
    Whole,
    /// Only without its HTML (the plain body alone).
    WithoutHtml,
    /// Not even plain: the event would be this many bytes.
    TooLarge { bytes: usize },
}

/// A placeholder event id of the longest allowed length, where the real one is not known yet.
const EVENT_ID: &str = "$________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________";

/// Bytes of the event `sender` would send for `text`: the content's JSON as the adapter builds
/// it, the sender's id, and the bound on the rest.
pub fn matrix_event_bytes(text: &MatrixText<'_>, sender: &str) -> usize {
    let msgtype = match text.kind {
        TextKind::Text => "m.text",
        TextKind::Notice => "m.notice",
        TextKind::Emote => "m.emote",
    };
    let content = |body: &str, html: Option<&str>| {
        let mut c = serde_json::json!({ "msgtype": msgtype, "body": body });
        if let Some(html) = html {
            c["format"] = "org.matrix.custom.html".into();
            c["formatted_body"] = html.into();
        }
        c
    };
    let mut c = if text.replaces {
        let starred = text.html.map(|h| format!("* {h}"));
        let mut c = content(&format!("* {}", text.body), starred.as_deref());
        c["m.new_content"] = content(text.body, text.html);
        c["m.relates_to"] = serde_json::json!({ "rel_type": "m.replace", "event_id": EVENT_ID });
        c
    } else {
        content(text.body, text.html)
    };
    if text.reply && !text.replaces {
        c["m.relates_to"] = serde_json::json!({ "m.in_reply_to": { "event_id": EVENT_ID } });
    }
    // serde_json escapes as canonical JSON does (`"`, `\`, control characters; UTF-8 as is).
    let content_bytes = serde_json::to_vec(&c).map(|v| v.len()).unwrap_or(usize::MAX / 2);
    content_bytes + json_string_bytes(sender) + MATRIX_ENVELOPE_BYTES
}

/// Whether `text` fits in `limit` bytes of event, with its HTML or without.
pub fn fit_matrix(text: &MatrixText<'_>, sender: &str, limit: usize) -> Fit {
    let whole = matrix_event_bytes(text, sender);
    if whole <= limit {
        return Fit::Whole;
    }
    if text.html.is_none() {
        return Fit::TooLarge { bytes: whole };
    }
    let plain = matrix_event_bytes(&MatrixText { html: None, ..*text }, sender);
    if plain <= limit { Fit::WithoutHtml } else { Fit::TooLarge { bytes: plain } }
}

/// Bytes of a message stanza carrying `body` (and `quote`, a reply's fallback, if known), from
/// `from` to `to`: the texts as escaped in XML, and the bound on the rest.
pub fn xmpp_stanza_bytes(body: &str, quote: Option<&str>, from: &str, to: &str) -> usize {
    xml_text_bytes(body) + quote.map(xml_text_bytes).unwrap_or(0) + from.len() + to.len() + XMPP_ENVELOPE_BYTES
}

/// Bytes of `s` as the content of a JSON string, quotes included.
fn json_string_bytes(s: &str) -> usize {
    serde_json::to_string(s).map(|j| j.len()).unwrap_or(usize::MAX / 2)
}

/// Bytes of `s` as XML character data or an attribute value (the longest escapes, `&quot;`
/// and `&apos;`, for all that a serializer may escape).
fn xml_text_bytes(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'&' => 5,
            b'<' | b'>' => 4,
            b'"' | b'\'' => 6,
            // Control characters other than tab and newlines are not allowed in XML; a
            // serializer that writes them as a character reference needs this much.
            b'\r' | 0..=8 | 11 | 12 | 14..=31 => 6,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &str, html: Option<&str>) -> MatrixText<'static> {
        let body: &'static str = Box::leak(body.to_owned().into_boxed_str());
        let html = html.map(|h| &*Box::leak(h.to_owned().into_boxed_str()));
        MatrixText { body, kind: TextKind::Text, html, reply: false, replaces: false }
    }

    const SENDER: &str = "@_xmpp_alice=40example.org:example.org";

    #[test]
    fn a_plain_event_is_its_content_json_sender_and_envelope() {
        let t = text("hi", None);
        let content = r#"{"body":"hi","msgtype":"m.text"}"#.len();
        assert_eq!(matrix_event_bytes(&t, SENDER), content + SENDER.len() + 2 + MATRIX_ENVELOPE_BYTES);
    }

    #[test]
    fn escapes_count_as_sent() {
        // A newline is `\n` in JSON, a quote `\"`, a control character `\u0001`.
        let plain = matrix_event_bytes(&text("aaa", None), SENDER);
        assert_eq!(matrix_event_bytes(&text("a\na", None), SENDER), plain + 1);
        assert_eq!(matrix_event_bytes(&text("a\"a", None), SENDER), plain + 1);
        assert_eq!(matrix_event_bytes(&text("a\u{1}a", None), SENDER), plain + 5);
        // Non-ASCII is sent as UTF-8, unescaped.
        assert_eq!(matrix_event_bytes(&text("aé", None), SENDER), plain);
    }

    #[test]
    fn html_a_reply_and_a_correction_add_what_the_adapter_sends() {
        let plain = matrix_event_bytes(&text("see x", None), SENDER);
        let html = "see <a href=\"https://x\">x</a>";
        let with_html = matrix_event_bytes(&text("see x", Some(html)), SENDER);
        let html_json = r#","format":"org.matrix.custom.html","formatted_body":"see <a href=\"https://x\">x</a>""#;
        assert_eq!(with_html, plain + html_json.len());
        let reply = MatrixText { reply: true, ..text("see x", None) };
        assert!(matrix_event_bytes(&reply, SENDER) > plain + EVENT_ID.len());
        // A correction carries the text twice.
        let big = "y".repeat(10_000);
        let correction = MatrixText { replaces: true, ..text(&big, None) };
        assert!(matrix_event_bytes(&correction, SENDER) > 20_000);
    }

    #[test]
    fn html_is_dropped_when_only_the_plain_body_fits() {
        let body = "x".repeat(40_000);
        let html = format!("<a href=\"https://{body}\">{body}</a>");
        assert_eq!(fit_matrix(&text(&body, Some(&html)), SENDER, SYNAPSE_EVENT_BYTES), Fit::WithoutHtml);
        assert_eq!(fit_matrix(&text("short", Some("<b>short</b>")), SENDER, SYNAPSE_EVENT_BYTES), Fit::Whole);
    }

    #[test]
    fn a_body_too_large_even_plain_is_measured() {
        let body = "x".repeat(SYNAPSE_EVENT_BYTES);
        let Fit::TooLarge { bytes } = fit_matrix(&text(&body, Some("<b>x</b>")), SENDER, SYNAPSE_EVENT_BYTES) else {
            panic!("a body of the whole limit cannot fit");
        };
        assert!(bytes > SYNAPSE_EVENT_BYTES);
        // Escaping counts: 40,000 newlines are 80,000 bytes of JSON.
        let newlines = "\n".repeat(40_000);
        assert!(matches!(fit_matrix(&text(&newlines, None), SENDER, SYNAPSE_EVENT_BYTES), Fit::TooLarge { .. }));
    }

    #[test]
    fn the_default_body_limit_fits_plain_in_the_event_even_as_a_reply_from_a_long_sender() {
        let max = default_max_message_bytes(SYNAPSE_EVENT_BYTES);
        assert_eq!(max, 61_440);
        let body = "x".repeat(max);
        let sender = format!("@{}:hs", "s".repeat(250));
        for t in [text(&body, None), MatrixText { reply: true, ..text(&body, None) }] {
            assert_eq!(fit_matrix(&t, &sender, SYNAPSE_EVENT_BYTES), Fit::Whole);
        }
        assert!(matches!(
            fit_matrix(&text(&"x".repeat(max + 4096), None), &sender, SYNAPSE_EVENT_BYTES),
            Fit::TooLarge { .. }
        ));
    }

    #[test]
    fn stanzas_count_xml_escapes_and_both_addresses() {
        let base = xmpp_stanza_bytes("", None, "a@b", "c@d");
        assert_eq!(base, 6 + XMPP_ENVELOPE_BYTES);
        assert_eq!(xmpp_stanza_bytes("a<b", None, "a@b", "c@d"), base + 6);
        assert_eq!(xmpp_stanza_bytes("a&b", Some("q\""), "a@b", "c@d"), base + 7 + 7);
    }
}
