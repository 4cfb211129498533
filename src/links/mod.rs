//! Recognising links in chat text, the way the suite does: web links with the schemes it knows
//! (and `www.` / `www2.` hosts), e-mail addresses and `mailto:`, UNC paths, phone numbers that
//! are valid under the dialling rules of the configured region (and, if configured, internal
//! extensions), and anything between `<` and `>` as one link even with spaces in it.
//!
//! Web links with an authority (`scheme://…`) and e-mail addresses are found by the `linkify`
//! crate (international names, quotes, balanced brackets), then held to the suite's schemes;
//! `www.` hosts, `news:`, `file:`, UNC paths, `<…>` and phone numbers are the suite's own rules.
//!
//! The result is the HTML a Matrix client shows (`formatted_body`); the plain body is left as it
//! was. The HTML is built from escaped text and then passed through ammonia with an allowlist
//! of `<a href>` (only the schemes produced here) and `<br>`, so nothing a sender wrote can
//! become markup.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::LazyLock;

use regex::Regex;

use crate::core::phone::{Region, by_shape, normalize};

pub mod worst_case;

/// What a link points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Web,
    Email,
    Phone,
    /// A UNC path or a `file:` URL.
    File,
}

/// A recognised link: `text[start..end]` is shown, `href` is the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub start: usize,
    pub end: usize,
    pub href: String,
    pub kind: LinkKind,
}

/// Where the phone numbers of a text are dialled from.
#[derive(Debug, Clone)]
pub struct LinkRules {
    pub region: Region,
    /// Digits of an internal extension (`12`, `4711`) written on its own; `None`: not links.
    pub extension_digits: Option<RangeInclusive<usize>>,
}

impl Default for LinkRules {
    fn default() -> Self {
        LinkRules { region: Region::parse("DE").expect("DE is a region"), extension_digits: None }
    }
}

/// The schemes the suite recognises (`www:`/`www2:` in its documents mean hosts).
const SCHEMES: &str = r"https?://|ftp://|gopher://|telnet://|wais://|prospero://|ntp://|file:/{1,3}|news:";

/// A scheme the suite links, at the start of a `linkify` URL.
static SUITE_SCHEME: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!("(?i)^(?:{SCHEMES})")).expect("regex"));

fn is_mailto(prefix: &str) -> bool {
    prefix.eq_ignore_ascii_case("mailto:")
}

/// Longest text between `<` and `>` that is taken as one link (in characters).
const MAX_BRACKETED: usize = 2048;
/// A link of the suite's shapes that has no authority for `linkify` to find (`news:`, `file:/x`,
/// `www.` hosts); a `scheme://` link it missed is caught here too, as before.
static URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r#"(?i)\b(?:(?:{SCHEMES})|www2?\.)[^\s<>"\p{{Cc}}]+"#)).expect("regex"));
/// Web links with a scheme and e-mail addresses.
static FINDER: LazyLock<linkify::LinkFinder> = LazyLock::new(|| {
    let mut finder = linkify::LinkFinder::new();
    finder.kinds(&[linkify::LinkKind::Url, linkify::LinkKind::Email]).email_domain_must_have_dot(true);
    finder
});
static UNC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\\\\[A-Za-z0-9._$-]+(?:\\[^\s\\<>"|\p{Cc}]+)+"#).expect("regex"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:(?:phone|tel|callto):)?\+?[0-9](?:[0-9]|[ ./()-]{1,3}[0-9]){1,24}").expect("regex")
});

/// Links are looked for in this much of a text at most; anything after it stays text. It is
/// the default `limits.max_message_bytes`, so ordinary messages are scanned whole.
pub const MAX_SCANNED_BYTES: usize = 64 * 1024;
/// At most this many links per text (more is a flood, not a message): later ones stay text.
pub const MAX_LINKS: usize = 256;
/// At most this many candidate phone numbers are checked against the numbering plan (each
/// check is far dearer than a regex step).
const MAX_PHONE_CHECKS: usize = 256;

/// Links found so far, by start: non-overlapping, so one neighbour lookup tells whether a new
/// one overlaps (a linear scan of all of them made a text with thousands of links quadratic).
#[derive(Default)]
struct Found(std::collections::BTreeMap<usize, Link>);

impl Found {
    fn full(&self) -> bool {
        self.0.len() >= MAX_LINKS
    }

    fn take(&mut self, link: Link) {
        if self.full() {
            return;
        }
        let before = self.0.range(..link.end).next_back();
        if before.is_some_and(|(_, l)| l.end > link.start) {
            return;
        }
        self.0.insert(link.start, link);
    }
}

/// Every link in `text`, in order, not overlapping. Linear in the length of the text: every
/// scan is a regex search (linear in what it reads) or a single pass, and the text is cut at
/// [`MAX_SCANNED_BYTES`].
pub fn find(text: &str, rules: &LinkRules) -> Vec<Link> {
    let text = &text[..floor_char_boundary(text, MAX_SCANNED_BYTES)];
    let mut found = Found::default();
    // Explicit brackets first: they say where the link ends.
    for (start, inner) in bracketed(text) {
        if found.full() {
            break;
        }
        let content = inner.trim();
        if let Some((href, kind)) = bracketed_target(content, rules) {
            let start = start + (inner.len() - inner.trim_start().len());
            found.take(Link { start, end: start + content.len(), href, kind });
        }
    }
    for l in FINDER.links(text) {
        if found.full() {
            break;
        }
        match l.kind() {
            linkify::LinkKind::Email => {
                // `mailto:` before the address is part of the link.
                let start = l
                    .start()
                    .checked_sub(7)
                    .filter(|&s| text.get(s..l.start()).is_some_and(is_mailto))
                    .unwrap_or(l.start());
                let href = format!("mailto:{}", l.as_str());
                found.take(Link { start, end: l.end(), href, kind: LinkKind::Email });
            }
            _ => {
                // A URL that `linkify` ends inside a word (`https://e[x].com`) is left to the
                // pattern below, which refuses it whole rather than link a piece.
                let ends_clean = text[l.end()..].chars().next().is_none_or(|c| {
                    c.is_whitespace()
                        || matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' | ')' | ']' | '<' | '>')
                });
                let shown = trim_trailing(l.as_str());
                if ends_clean
                    && SUITE_SCHEME.is_match(shown)
                    && let Some((href, kind)) = web_target(shown)
                {
                    found.take(Link { start: l.start(), end: l.start() + shown.len(), href, kind });
                }
            }
        }
    }
    for m in URL.find_iter(text) {
        if found.full() {
            break;
        }
        let shown = trim_trailing(m.as_str());
        if let Some((href, kind)) = web_target(shown) {
            found.take(Link { start: m.start(), end: m.start() + shown.len(), href, kind });
        }
    }
    for m in UNC.find_iter(text) {
        if found.full() {
            break;
        }
        let shown = trim_trailing(m.as_str());
        if let Some(href) = unc_target(shown) {
            found.take(Link { start: m.start(), end: m.start() + shown.len(), href, kind: LinkKind::File });
        }
    }
    let mut checks = 0;
    for m in PHONE.find_iter(text) {
        if found.full() || checks >= MAX_PHONE_CHECKS {
            break;
        }
        let shown = m.as_str().trim_end_matches(['.', '-', '/', '(', ' ']);
        let (start, end) = (m.start(), m.start() + shown.len());
        if !stands_alone(text, start, end) {
            continue;
        }
        checks += 1;
        if let Some(href) = phone_target(shown, rules) {
            found.take(Link { start, end, href, kind: LinkKind::Phone });
        }
    }
    found.0.into_values().collect()
}

/// The largest char boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0)
}

/// Every `<…>` with 1 to [`MAX_BRACKETED`] characters and no `<`, `>` or line break inside:
/// `(offset of the inside, the inside)`. One pass; a regex with a bounded repetition this large
/// can fall back to a slow engine on a text of many `<` without `>`.
fn bracketed(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        loop {
            let open = at + bytes.get(at..)?.iter().position(|&b| b == b'<')?;
            let inside = open + 1;
            let stop = bytes[inside..].iter().position(|&b| matches!(b, b'<' | b'>' | b'\r' | b'\n'));
            let Some(len) = stop else {
                at = bytes.len();
                return None;
            };
            // Resume at the stop: a `<` there may open the next bracket; anything else is passed.
            at = inside + len;
            if bytes[at] == b'>' {
                at += 1;
                let inner = &text[inside..inside + len];
                if (1..=MAX_BRACKETED).contains(&inner.chars().count()) {
                    return Some((inside, inner));
                }
            }
        }
    })
}

/// The text as sanitised HTML with its links, or `None` when it has none (the plain body is then
/// all a client needs).
pub fn to_html(text: &str, rules: &LinkRules) -> Option<String> {
    let links = find(text, rules);
    if links.is_empty() {
        return None;
    }
    let mut html = String::with_capacity(text.len() * 2);
    let mut at = 0;
    for link in &links {
        push_escaped(&mut html, &text[at..link.start]);
        html.push_str("<a href=\"");
        push_escaped(&mut html, &link.href);
        html.push_str("\">");
        push_escaped(&mut html, &text[link.start..link.end]);
        html.push_str("</a>");
        at = link.end;
    }
    push_escaped(&mut html, &text[at..]);
    Some(sanitize(&html))
}

/// ammonia with only what `to_html` produces: links with our schemes, line breaks.
fn sanitize(html: &str) -> String {
    static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
        let mut b = ammonia::Builder::empty();
        b.add_tags(["a", "br"])
            .add_tag_attributes("a", ["href"])
            .url_schemes(HashSet::from([
                "http", "https", "ftp", "gopher", "telnet", "wais", "prospero", "ntp", "file", "news", "mailto", "tel",
            ]))
            .link_rel(None);
        b
    });
    CLEANER.clean(html).to_string()
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
}

/// What a `<…>` holds, if it is a link: a URL, UNC path, e-mail address or phone number.
fn bracketed_target(content: &str, rules: &LinkRules) -> Option<(String, LinkKind)> {
    if content.starts_with("\\\\") {
        return unc_target(content).map(|href| (href, LinkKind::File));
    }
    if URL.find(content).is_some_and(|m| m.start() == 0) {
        return web_target(content).map(|(href, kind)| (href.replace(' ', "%20"), kind));
    }
    let address = content.get(..7).filter(|p| is_mailto(p)).map_or(content, |_| &content[7..]);
    let mut emails = FINDER.links(address).filter(|l| *l.kind() == linkify::LinkKind::Email);
    if let (Some(l), None) = (emails.next(), emails.next())
        && l.start() == 0
        && l.end() == address.len()
    {
        return Some((format!("mailto:{address}"), LinkKind::Email));
    }
    phone_target(content, rules).map(|href| (href, LinkKind::Phone))
}

/// The href of a web or `file:` link as written; `None` unless it is a valid URL (ammonia would
/// drop the href of an invalid one, leaving an `<a>` that goes nowhere: found by fuzzing, as
/// were control characters in links, which the patterns above now stop at).
fn web_target(shown: &str) -> Option<(String, LinkKind)> {
    // The URL parser drops a trailing control character that ammonia's HTML parser then keeps
    // (a NUL becomes U+FFFD) and refuses: text in `<…>` may hold them (found by fuzzing).
    if shown.chars().any(char::is_control) {
        return None;
    }
    let lower = shown.to_ascii_lowercase();
    let (href, kind) = if lower.starts_with("www.") || lower.starts_with("www2.") {
        // A host needs at least one more dot-separated label.
        let host = shown.split(['/', '?', '#']).next().unwrap_or(shown);
        if host.matches('.').count() < 2 && host.len() <= 5 {
            return None;
        }
        (format!("http://{shown}"), LinkKind::Web)
    } else {
        let scheme_end = lower.find(':')?;
        if shown.len() <= scheme_end + 3 {
            return None; // "http://" alone
        }
        (shown.to_owned(), if lower.starts_with("file:") { LinkKind::File } else { LinkKind::Web })
    };
    url::Url::parse(&href).is_ok().then_some((href, kind))
}

/// The `file:` URL of a UNC path; `None` unless it is a valid URL (a server name such as `_.0`
/// reads as a broken IPv4 address, and ammonia would drop the href: found by fuzzing).
fn unc_target(unc: &str) -> Option<String> {
    if unc.chars().any(char::is_control) {
        return None;
    }
    let href = unc_to_file(unc);
    url::Url::parse(&href).is_ok().then_some(href)
}

/// `\\server\dir\file` → `file://server/dir/file` (spaces and other unsafe bytes escaped).
fn unc_to_file(unc: &str) -> String {
    let path = unc.trim_start_matches('\\').replace('\\', "/");
    format!("file://{}", percent_encoding::utf8_percent_encode(&path, PATH_CHAR))
}

/// Bytes a `file:` URL path keeps as they are (unreserved, sub-delims, `:`, `@`, `/`).
const PATH_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'$')
    .remove(b'!')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// Trailing punctuation belongs to the sentence, not the link (a `)` only when unbalanced).
/// The brackets are counted once and the counts kept while cutting from the end: recounting
/// for each cut character made `http://a` and 65,000 `)` cost seconds (issue #11, H4).
fn trim_trailing(s: &str) -> &str {
    let count = |c: char| s.bytes().filter(|&b| b == c as u8).count();
    let (open_round, mut close_round) = (count('('), count(')'));
    let (open_square, mut close_square) = (count('['), count(']'));
    let mut end = s.len();
    for (at, last) in s.char_indices().rev() {
        let cut = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' => true,
            ')' => close_round > open_round,
            ']' => close_square > open_square,
            _ => false,
        };
        if !cut {
            break;
        }
        match last {
            ')' => close_round -= 1,
            ']' => close_square -= 1,
            _ => {}
        }
        end = at;
    }
    &s[..end]
}

/// A number is a number only if no letter or digit is glued to it (`ab123`, `v1.2.3`, `12:30`).
fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().last();
    let after = text[end..].chars().next();
    let glued_before =
        before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '+' | '/' | '.' | ':' | '-' | '_' | '@'));
    let glued_after = after.is_some_and(|c| {
        c.is_alphanumeric()
            || matches!(c, ':' | '@' | '_' | '%')
            || (matches!(c, '.' | '-' | '/') && text[end + 1..].starts_with(|d: char| d.is_ascii_digit()))
    });
    !glued_before && !glued_after
}

/// `tel:` target of a written number: with an explicit `phone:`/`tel:`/`callto:` prefix or as an
/// international `+CC…` number, one of the right shape and length (the suite links its examples
/// `phone:+4912345612` and `+49 123 456 - 12`, whatever the numbering plan says about them);
/// otherwise valid in the region's numbering plan when dialled as written (`00`, or the national
/// trunk prefix), or an internal extension.
fn phone_target(shown: &str, rules: &LinkRules) -> Option<String> {
    let lower = shown.to_ascii_lowercase();
    let prefixed = ["phone:", "tel:", "callto:"].iter().find_map(|p| lower.strip_prefix(p).map(|_| &shown[p.len()..]));
    let number = prefixed.unwrap_or(shown);
    if (prefixed.is_some() || number.starts_with('+'))
        && let Some(e164) = by_shape(number, rules.region)
    {
        return Some(format!("tel:{e164}"));
    }
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let international = number.starts_with('+') || digits.starts_with("00");
    if let Some(range) = &rules.extension_digits
        && !international
        && number.chars().all(|c| c.is_ascii_digit())
        && range.contains(&digits.len())
    {
        return Some(format!("tel:{digits}"));
    }
    if !(international || digits.starts_with('0')) || !(6..=17).contains(&digits.len()) {
        return None;
    }
    normalize(number, rules.region).map(|e164| format!("tel:{e164}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> LinkRules {
        LinkRules::default()
    }

    fn hrefs(text: &str) -> Vec<(String, String)> {
        find(text, &rules()).into_iter().map(|l| (text[l.start..l.end].to_owned(), l.href)).collect()
    }

    fn pair(shown: &str, href: &str) -> (String, String) {
        (shown.to_owned(), href.to_owned())
    }

    #[test]
    fn text_that_is_no_valid_url_is_no_link() {
        // Found by fuzzing: ammonia dropped the href of these, leaving `<a>` without a target.
        assert_eq!(hrefs("https://e[x].com/ file://\u{fffd}c:/x <\\\\s@\u{fffd}\\x>"), []);
        for text in ["https://e[x].com/", "file://\u{fffd}c:/x", "www.example.\0\0org.", "file://s\0\0\0"] {
            for (_, href) in hrefs(text) {
                assert!(url::Url::parse(&href).is_ok() && !href.contains(char::is_control), "{href:?}");
            }
            assert!(to_html(text, &rules()).is_none_or(|h| !h.contains("<a>")), "{text:?}");
        }
        assert_eq!(hrefs("www.example.org"), [pair("www.example.org", "http://www.example.org")]);
        assert_eq!(hrefs("https://a.example/x\u{1}y"), [pair("https://a.example/x", "https://a.example/x")]);
    }

    #[test]
    fn web_links_with_the_suites_schemes() {
        assert_eq!(
            hrefs("see https://example.org/a?b=1."),
            [pair("https://example.org/a?b=1", "https://example.org/a?b=1")]
        );
        assert_eq!(hrefs("www.example.org, then"), [pair("www.example.org", "http://www.example.org")]);
        assert_eq!(hrefs("www2.example.org"), [pair("www2.example.org", "http://www2.example.org")]);
        for url in [
            "ftp://files.example.org/x",
            "gopher://g.example.org",
            "telnet://host.example.org",
            "wais://w.example.org/db",
            "prospero://p.example.org/x",
            "ntp://time.example.org",
            "news:comp.lang.rust",
            "file:///etc/hosts",
        ] {
            assert_eq!(hrefs(&format!("at {url} now")), [pair(url, url)], "{url}");
        }
        assert_eq!(
            hrefs("(see http://example.org/wiki/Rust_(language))"),
            [pair("http://example.org/wiki/Rust_(language)", "http://example.org/wiki/Rust_(language)")]
        );
        assert!(hrefs("javascript:alert(1) and mailbox://x and http:// alone").is_empty());
    }

    #[test]
    fn e_mail_addresses_and_mailto() {
        assert_eq!(hrefs("write to info@info.de!"), [pair("info@info.de", "mailto:info@info.de")]);
        assert_eq!(hrefs("mailto:info@info.de"), [pair("mailto:info@info.de", "mailto:info@info.de")]);
        assert!(hrefs("alice@localhost is a JID without a domain name").is_empty());
    }

    #[test]
    fn international_addresses_and_links() {
        // The whole address, not the ASCII tail of it (`rgen@example.de`).
        assert_eq!(hrefs("an jürgen@example.de."), [pair("jürgen@example.de", "mailto:jürgen@example.de")]);
        assert_eq!(hrefs("info@bücher.de"), [pair("info@bücher.de", "mailto:info@bücher.de")]);
        assert_eq!(hrefs("MAILTO:a@b.de"), [pair("MAILTO:a@b.de", "mailto:a@b.de")]);
        assert_eq!(hrefs("<info@bücher.de>"), [pair("info@bücher.de", "mailto:info@bücher.de")]);
        assert_eq!(
            hrefs("(siehe https://bücher.de/straße_(alt)), danke"),
            [pair("https://bücher.de/straße_(alt)", "https://bücher.de/straße_(alt)")]
        );
        assert!(hrefs("me@a@b.de").iter().all(|(shown, _)| shown != "a@b.de"));
    }

    #[test]
    fn unc_paths_become_file_urls() {
        assert_eq!(
            hrefs(r"on \\server\directory\file.txt."),
            [pair(r"\\server\directory\file.txt", "file://server/directory/file.txt")]
        );
        // A server name the URL parser refuses (it reads as a broken IPv4 address) is no link,
        // not an <a> without a target.
        assert!(hrefs(r"on \\_.0\x and <\\_.0\y z>").is_empty());
        assert_eq!(to_html(r"\\_.0\x", &rules()), None);
        // Nor is one whose brackets hold a control character (the URL parser ignores a trailing
        // one, the HTML sanitiser does not).
        for text in ["<www.210@I35\0>", "<www.2,\u{7}>", "<\\\\s\\a\0>", "<http://a.de/\u{1}>"] {
            let html = to_html(text, &rules()).unwrap_or_default();
            assert!(!html.contains("<a>"), "{text:?} gives a link without a target: {html}");
        }
    }

    #[test]
    fn brackets_hold_links_with_spaces() {
        assert_eq!(
            hrefs(r"<\\server\my dir\a file.doc>"),
            [pair(r"\\server\my dir\a file.doc", "file://server/my%20dir/a%20file.doc")]
        );
        assert_eq!(hrefs("<http://example.org/a b>"), [pair("http://example.org/a b", "http://example.org/a%20b")]);
        assert!(hrefs("<just some words>").is_empty());
    }

    #[test]
    fn phone_numbers_by_the_dialling_rules() {
        assert_eq!(hrefs("call +49 30 1234567 now"), [pair("+49 30 1234567", "tel:+49301234567")]);
        assert_eq!(hrefs("call 030 1234567"), [pair("030 1234567", "tel:+49301234567")]);
        assert_eq!(hrefs("mobile 0176 12345678."), [pair("0176 12345678", "tel:+4917612345678")]);
        assert_eq!(hrefs("phone:+4917612345678"), [pair("phone:+4917612345678", "tel:+4917612345678")]);
        assert_eq!(hrefs("or 0049 (30) 123-4567"), [pair("0049 (30) 123-4567", "tel:+49301234567")]);
        // The suite's examples: recognised by shape and length, not by the numbering plan.
        assert_eq!(hrefs("phone:+4912345612"), [pair("phone:+4912345612", "tel:+4912345612")]);
        assert_eq!(hrefs("ruf +49 123 456 - 12 an"), [pair("+49 123 456 - 12", "tel:+4912345612")]);
        assert_eq!(hrefs("tel:+1 (212) 555-0100"), [pair("tel:+1 (212) 555-0100", "tel:+12125550100")]);
        assert_eq!(hrefs("callto:030 1234"), [pair("callto:030 1234", "tel:+49301234")]);
        // Longer than E.164 allows: no link, prefix or not.
        assert!(hrefs("phone:+49 1234 5678 9012 34").is_empty());
        // A national number without prefix keeps the stricter rule (valid in the plan).
        assert!(hrefs("call 0123 45612").is_empty(), "{:?}", hrefs("call 0123 45612"));
        // Not numbers to dial: no prefix, dates, times, versions, invalid numbers.
        for text in
            ["I have 1234567 apples", "on 12.05.2026", "at 12:30", "v1.2.3", "+49 123", "0000000000", "id ab0301234567"]
        {
            assert!(hrefs(text).is_empty(), "{text}: {:?}", hrefs(text));
        }
    }

    #[test]
    fn extensions_only_when_configured() {
        assert!(hrefs("ring 12 or 4711").is_empty());
        let rules = LinkRules { extension_digits: Some(2..=4), ..LinkRules::default() };
        let found: Vec<_> = find("ring 12 or 4711 or 123456", &rules).into_iter().map(|l| l.href).collect();
        assert_eq!(found, ["tel:12", "tel:4711"]);
    }

    #[test]
    fn html_escapes_everything_but_the_links() {
        let html = to_html("<b>hi</b> & see https://example.org/?a=1&b=\"2\"\nbye", &rules()).expect("has a link");
        assert_eq!(
            html,
            "&lt;b&gt;hi&lt;/b&gt; &amp; see <a href=\"https://example.org/?a=1&amp;b=\">https://example.org/?a=1&amp;b=</a>\"2\"<br>bye"
        );
        assert!(
            html.starts_with("&lt;b&gt;hi&lt;/b&gt; &amp; see <a href=\"https://example.org/?a=1&amp;b="),
            "{html}"
        );
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("<br>bye"), "{html}");
        assert_eq!(to_html("no links here", &rules()), None);
    }

    #[test]
    fn several_links_in_order() {
        let found = hrefs("mail a@example.org, web www.example.org, call +49 30 1234567");
        assert_eq!(
            found.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>(),
            ["mailto:a@example.org", "http://www.example.org", "tel:+49301234567"]
        );
    }

    /// Adversarial 64 KiB texts (`worst_case.rs`) come out right: links within the cap, in
    /// order, not overlapping, with HTML exactly when there are links. How long they take is
    /// measured by `examples/links_worst_case.rs` (bench/results.md), not asserted here.
    #[test]
    fn worst_case_texts_come_out_right() {
        let rules = LinkRules { extension_digits: Some(2..=6), ..LinkRules::default() };
        for (name, text) in worst_case::texts() {
            assert!(text.len() <= worst_case::SIZE && text.len() > worst_case::SIZE - 64, "{name}: {}", text.len());
            let links = find(&text, &rules);
            let html = to_html(&text, &rules);
            assert!(links.len() <= MAX_LINKS, "{name}");
            assert!(links.windows(2).all(|w| w[0].end <= w[1].start), "{name}: overlapping links");
            assert_eq!(html.is_some(), !links.is_empty(), "{name}");
        }
    }

    #[test]
    fn text_beyond_the_scanned_length_stays_text() {
        let mut text = "x".repeat(MAX_SCANNED_BYTES - 2);
        text.push_str("é http://late.example.org");
        assert!(find(&text, &rules()).is_empty());
        let early = format!("https://a.example.org {text}");
        assert_eq!(find(&early, &rules()).len(), 1);
    }

    #[test]
    fn links_beyond_the_cap_stay_text() {
        let text = "mail a@b.cd ".repeat(MAX_LINKS + 10);
        let links = find(&text, &rules());
        assert_eq!(links.len(), MAX_LINKS);
        assert_eq!(links[0].start, 5);
    }

    /// The trimmer as it was (quadratic): the linear one must cut exactly where it did.
    fn trim_trailing_reference(s: &str) -> &str {
        let mut s = s;
        loop {
            let Some(last) = s.chars().last() else { return s };
            let cut = match last {
                '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' => true,
                ')' => s.matches(')').count() > s.matches('(').count(),
                ']' => s.matches(']').count() > s.matches('[').count(),
                _ => false,
            };
            if !cut {
                return s;
            }
            s = &s[..s.len() - last.len_utf8()];
        }
    }

    #[test]
    fn trimming_is_unchanged() {
        let parts = ["http://a", "(", ")", "[", "]", ".", ",", "!", "'", "\"", "x", "é", ":"];
        // Every string of up to 5 parts after a URL start: 13^5 cases.
        let mut cases = vec![String::from("http://a")];
        for _ in 0..5 {
            let next: Vec<String> = cases.iter().flat_map(|c| parts.iter().map(move |p| format!("{c}{p}"))).collect();
            for c in &next {
                assert_eq!(trim_trailing(c), trim_trailing_reference(c), "{c}");
            }
            cases = next;
        }
    }

    #[test]
    fn brackets_are_found_as_the_regex_did() {
        let reference = Regex::new(r"<([^<>\r\n]{1,2048})>").expect("regex");
        let long = format!("<{}> <{}> <{}>", "a".repeat(2048), "b".repeat(2049), "é".repeat(2048));
        for text in [
            "<a> <b>",
            "<<a>>",
            "<>",
            "< >",
            "a<b\nc>d<e>",
            "<a<b>c>",
            "x<\r>y<z",
            "<ü> <\\\\s\\d> <http://a b>",
            "<<<<",
            ">>><a>",
            long.as_str(),
        ] {
            let ours: Vec<_> = bracketed(text).collect();
            let theirs: Vec<_> = reference
                .captures_iter(text)
                .map(|c| {
                    let m = c.get(1).expect("group 1");
                    (m.start(), m.as_str())
                })
                .collect();
            assert_eq!(ours, theirs, "{text:?}");
        }
    }
}
