//! Mentions between Matrix (`m.mentions.user_ids`, shown as pills) and XMPP (XEP-0372
//! references of type `mention`, and the nick at the start of a MUC message, which XMPP clients
//! highlight). XEP-0372 counts `begin`/`end` in Unicode code points — Rust `char`s, not UTF-16
//! units (as JavaScript would) nor bytes. Both directions are bounded: at most
//! [`MAX_MENTIONS`] per message, and a reference's range must lie inside the body.

/// At most this many mentions are carried per message; more are ignored.
pub const MAX_MENTIONS: usize = 10;

/// A nick longer than this is not read from the start of a message.
const MAX_NICK_CHARS: usize = 64;

/// Someone to name in a message to XMPP: their nick in the room and their XEP-0372 URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressee {
    pub nick: String,
    pub uri: String,
}

/// A mention placed in a body: code points `[begin, end)` name `uri`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Span {
    pub begin: usize,
    pub end: usize,
    pub uri: String,
}

/// A reference as an XMPP message carries it (untrusted: offsets may be anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReference {
    pub kind: String,
    pub uri: String,
    pub begin: Option<usize>,
    pub end: Option<usize>,
}

/// The body to send to XMPP with every addressee named in it: nicks the text does not contain
/// go before it ("bob, ann: hi"), as XMPP users address each other; a span for each.
pub fn address(body: &str, addressees: &[Addressee]) -> (String, Vec<Span>) {
    let addressees: Vec<&Addressee> = addressees.iter().filter(|a| !a.nick.is_empty()).take(MAX_MENTIONS).collect();
    let missing: Vec<&str> =
        addressees.iter().filter(|a| !body.contains(a.nick.as_str())).map(|a| a.nick.as_str()).collect();
    let text = if missing.is_empty() { body.to_owned() } else { format!("{}: {body}", missing.join(", ")) };
    let spans = addressees
        .iter()
        .filter_map(|a| {
            let at = text.find(a.nick.as_str())?;
            let begin = text[..at].chars().count();
            Some(Span { begin, end: begin + a.nick.chars().count(), uri: a.uri.clone() })
        })
        .collect();
    (text, spans)
}

/// The URIs of the mentions a received message makes: references of type `mention` whose
/// range (if given) lies inside the body, at most [`MAX_MENTIONS`], each once.
pub fn mentioned_uris(body: &str, references: &[RawReference]) -> Vec<String> {
    let len = body.chars().count();
    let mut uris: Vec<String> = vec![];
    for r in references.iter().filter(|r| r.kind == "mention") {
        let inside = match (r.begin, r.end) {
            (Some(b), Some(e)) => b < e && e <= len,
            (None, None) => true,
            _ => false,
        };
        if inside && !uris.contains(&r.uri) && uris.len() < MAX_MENTIONS {
            uris.push(r.uri.clone());
        }
    }
    uris
}

/// The nick a MUC message starts by addressing ("bob: hi", "bob, hi"), if it looks like one;
/// the caller checks it against the room's occupants.
pub fn nick_at_start(body: &str) -> Option<&str> {
    let end = body.find([':', ','])?;
    let nick = &body[..end];
    let after = &body[end + 1..];
    let ok = !nick.trim().is_empty()
        && nick.chars().count() <= MAX_NICK_CHARS
        && (after.is_empty() || after.starts_with(' '));
    ok.then_some(nick)
}

/// The address an `xmpp:` URI names (RFC 5122: query dropped, `%XX` decoded), as text to parse.
/// A `#` is taken as part of the address (hosted rooms' addresses start with one, and clients
/// do not always encode it).
pub fn xmpp_uri_address(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("xmpp:")?;
    let rest = rest.split('?').next().unwrap_or_default();
    if rest.is_empty() || rest.starts_with('/') {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The `xmpp:` URI of an occupant (`room@service/nick`), percent-encoded as RFC 5122 asks (a
/// hosted room's `#` and `\40`, a nick's spaces).
pub fn occupant_uri(muc: &str, nick: &str) -> String {
    format!("xmpp:{}/{}", uri_encode(muc), uri_encode(nick))
}

fn uri_encode(s: &str) -> String {
    let mut encoded = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c) {
            encoded.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
    }
    encoded
}

/// Plain text made HTML with a pill (`https://matrix.to` link) for the first occurrence of each
/// mentioned name; `None` when no name occurs.
pub fn pills_html(body: &str, names: &[(String, String)]) -> Option<String> {
    let mut marks: Vec<(usize, usize, &str)> = vec![];
    for (name, user) in names.iter().take(MAX_MENTIONS) {
        if name.is_empty() {
            continue;
        }
        let Some(at) = body.find(name.as_str()) else { continue };
        let end = at + name.len();
        if marks.iter().all(|(b, e, _)| end <= *b || at >= *e) {
            marks.push((at, end, user));
        }
    }
    if marks.is_empty() {
        return None;
    }
    marks.sort();
    let mut html = String::new();
    let mut at = 0;
    for (b, e, user) in marks {
        html.push_str(&escape(&body[at..b]));
        html.push_str(&format!("<a href=\"https://matrix.to/#/{}\">{}</a>", escape(user), escape(&body[b..e])));
        at = e;
    }
    html.push_str(&escape(&body[at..]));
    Some(html.replace('\n', "<br>"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(nick: &str) -> Addressee {
        Addressee { nick: nick.into(), uri: format!("xmpp:r@muc/{nick}") }
    }

    #[test]
    fn a_missing_nick_goes_first_and_offsets_count_code_points() {
        let (text, spans) = address("hi 👋", &[to("bob")]);
        assert_eq!(text, "bob: hi 👋");
        assert_eq!(spans, [Span { begin: 0, end: 3, uri: "xmpp:r@muc/bob".into() }]);
        // A nick already in the text is referenced where it is: after an emoji (two UTF-16
        // units, four bytes, one code point).
        let (text, spans) = address("👋 Zoë, look", &[to("Zoë")]);
        assert_eq!(text, "👋 Zoë, look");
        assert_eq!((spans[0].begin, spans[0].end), (2, 5));
        let (text, spans) = address("hi", &[to("ann"), to("bob")]);
        assert_eq!(text, "ann, bob: hi");
        assert_eq!((spans[1].begin, spans[1].end), (5, 8));
    }

    #[test]
    fn mentions_are_bounded() {
        let many: Vec<Addressee> = (0..50).map(|i| to(&format!("n{i:02}"))).collect();
        let (_, spans) = address("x", &many);
        assert_eq!(spans.len(), MAX_MENTIONS);
        let refs: Vec<RawReference> = (0..50)
            .map(|i| RawReference { kind: "mention".into(), uri: format!("xmpp:u{i}@x"), begin: None, end: None })
            .collect();
        assert_eq!(mentioned_uris("x", &refs).len(), MAX_MENTIONS);
    }

    #[test]
    fn references_outside_the_body_or_of_other_kinds_are_ignored() {
        let r = |kind: &str, b, e| RawReference { kind: kind.into(), uri: "xmpp:a@x".into(), begin: b, end: e };
        // "é👍a" is 3 code points (but 4 UTF-16 units): end 3 is inside, 4 is not.
        assert_eq!(mentioned_uris("é👍a", &[r("mention", Some(0), Some(3))]), ["xmpp:a@x"]);
        assert!(mentioned_uris("é👍a", &[r("mention", Some(0), Some(4))]).is_empty());
        assert!(mentioned_uris("abc", &[r("mention", Some(2), Some(1))]).is_empty());
        assert!(mentioned_uris("abc", &[r("data", None, None)]).is_empty());
        assert!(mentioned_uris("abc", &[r("mention", Some(0), None)]).is_empty());
    }

    #[test]
    fn nick_at_start_and_uris() {
        assert_eq!(nick_at_start("bob: hi"), Some("bob"));
        assert_eq!(nick_at_start("bob, hi"), Some("bob"));
        assert_eq!(nick_at_start("see http://x"), None);
        assert_eq!(nick_at_start(": x"), None);
        assert_eq!(xmpp_uri_address("xmpp:r@muc/bob").as_deref(), Some("r@muc/bob"));
        assert_eq!(xmpp_uri_address("xmpp:a@x?message").as_deref(), Some("a@x"));
        assert_eq!(xmpp_uri_address("https://a"), None);
        let uri = occupant_uri("r@muc", "Zoë K");
        assert_eq!(uri, "xmpp:r@muc/Zo%C3%AB%20K");
        assert_eq!(xmpp_uri_address(&uri).as_deref(), Some("r@muc/Zoë K"));
        assert_eq!(xmpp_uri_address("xmpp:a@x/%ZZ%").as_deref(), Some("a@x/%ZZ%"));
        let hosted = occupant_uri("#sales\\40hs@bridge.x", "cid");
        assert_eq!(hosted, "xmpp:%23sales%5C40hs@bridge.x/cid");
        assert_eq!(xmpp_uri_address(&hosted).as_deref(), Some("#sales\\40hs@bridge.x/cid"));
        assert_eq!(xmpp_uri_address("xmpp:#sales\\40hs@bridge.x/cid").as_deref(), Some("#sales\\40hs@bridge.x/cid"));
    }

    #[test]
    fn pills_escape_the_text() {
        let html = pills_html("bob: <hi>", &[("bob".into(), "@bob:hs".into())]).unwrap();
        assert_eq!(html, "<a href=\"https://matrix.to/#/@bob:hs\">bob</a>: &lt;hi&gt;");
        assert_eq!(pills_html("hi", &[("bob".into(), "@bob:hs".into())]), None);
    }
}
