//! The assistant's answers are Markdown (models write lists, code and emphasis that way):
//! rendered to HTML for Matrix (`formatted_body`), sanitised to the tags Matrix clients show.
//! XMPP gets the text as written, which reads well as it is.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{Options, Parser, html};

/// The HTML of a Markdown answer, sanitised; `None` when it is plain text (no markup, nothing
/// to render beyond a paragraph), so that plain answers stay plain messages.
pub fn to_html(markdown: &str) -> Option<String> {
    let parser = Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES);
    let mut out = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut out, parser);
    let clean = sanitize(&out);
    let inner = clean.trim().strip_prefix("<p>").and_then(|s| s.strip_suffix("</p>"));
    match inner {
        // One paragraph of plain text: nothing was rendered.
        Some(text) if !text.contains('<') && !text.contains('&') => None,
        _ => Some(clean.trim_end().to_owned()),
    }
}

/// Only what the Matrix spec suggests clients show (its `formatted_body` allow list), links
/// only with web and mail schemes: a model's answer may carry anything a prompt made it write.
fn sanitize(html: &str) -> String {
    static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
        let mut b = ammonia::Builder::empty();
        b.add_tags([
            "p",
            "br",
            "strong",
            "em",
            "b",
            "i",
            "u",
            "del",
            "s",
            "code",
            "pre",
            "blockquote",
            "ul",
            "ol",
            "li",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "hr",
            "a",
            "table",
            "thead",
            "tbody",
            "tr",
            "th",
            "td",
        ])
        .add_tag_attributes("a", ["href"])
        .add_tag_attributes("ol", ["start"])
        .add_tag_attributes("code", ["class"])
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(None);
        b
    });
    CLEANER.clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_becomes_html() {
        let html = to_html("**Two** points:\n\n1. one\n2. `two`\n").unwrap();
        assert_eq!(html, "<p><strong>Two</strong> points:</p>\n<ol>\n<li>one</li>\n<li><code>two</code></li>\n</ol>");
        let code = to_html("```rust\nfn main() {}\n```").unwrap();
        assert!(code.starts_with("<pre><code class=\"language-rust\">fn main() {}"), "{code}");
    }

    #[test]
    fn plain_text_stays_plain() {
        assert_eq!(to_html("Just an answer."), None);
        assert_eq!(to_html("Stand-in answer to: what is XMPP 1a2b"), None);
    }

    #[test]
    fn what_a_prompt_could_inject_is_removed() {
        let html = to_html("**x** <img src=x onerror=alert(1)> [a](javascript:alert(1))\n\n<script>alert(1)</script>")
            .unwrap();
        assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("href"), "{html}");
        assert!(html.contains("<strong>x</strong>"), "{html}");
        // HTML written as text is shown as text.
        let shown = to_html("use `<b>` for bold").unwrap();
        assert!(shown.contains("<code>&lt;b&gt;</code>"), "{shown}");
    }
}
