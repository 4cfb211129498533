//! Whether a message in a room is meant for the assistant: a room's other talk is none of its
//! business (and must not be sent to the provider). Plain code, tested without I/O.

/// What the assistant is asked by `text`, a message in a room, or `None` when it is not
/// addressed. It is addressed when the text starts with one of `keywords` (the keyword and the
/// `:`/`,` after it are taken off), mentions one as a word anywhere (the whole text is the
/// question), when `mentioned` (a Matrix mention of it, `m.mentions`), or when the text is
/// `/clear` alone (which clears the room's context).
pub fn addressed<'a>(text: &'a str, keywords: &[String], mentioned: bool) -> Option<&'a str> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("/clear") {
        return Some(text);
    }
    for keyword in keywords {
        if let Some(rest) = after_prefix(text, keyword) {
            let rest = rest.trim_start_matches([':', ',', ';', '-']).trim_start();
            // The keyword alone is a greeting: pass it on as it is.
            return Some(if rest.is_empty() { text } else { rest });
        }
    }
    if mentioned || keywords.iter().any(|k| contains_word(text, k)) {
        return Some(text);
    }
    None
}

/// The rest of `text` after `keyword` (optionally written `@keyword`) at its start, as a word.
fn after_prefix<'a>(text: &'a str, keyword: &str) -> Option<&'a str> {
    let text = text.strip_prefix('@').unwrap_or(text);
    let head = text.get(..keyword.len())?;
    if !head.to_lowercase().eq(&keyword.to_lowercase()) {
        return None;
    }
    let rest = &text[keyword.len()..];
    (!rest.chars().next().is_some_and(char::is_alphanumeric)).then_some(rest)
}

/// Whether `keyword` occurs in `text` as a word (not inside a longer word), case ignored.
fn contains_word(text: &str, keyword: &str) -> bool {
    let keyword = keyword.to_lowercase();
    text.char_indices().any(|(i, _)| {
        let Some(candidate) = text.get(i..i + keyword.len()) else { return false };
        candidate.to_lowercase() == keyword
            && !text[..i].chars().next_back().is_some_and(char::is_alphanumeric)
            && !text[i + keyword.len()..].chars().next().is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw() -> Vec<String> {
        vec!["Assistant".into(), "KI".into()]
    }

    #[test]
    fn a_leading_keyword_is_taken_off() {
        assert_eq!(addressed("Assistant: what is XMPP?", &kw(), false), Some("what is XMPP?"));
        assert_eq!(addressed("  assistant, hi", &kw(), false), Some("hi"));
        assert_eq!(addressed("@Assistant translate this", &kw(), false), Some("translate this"));
        assert_eq!(addressed("KI: Zusammenfassung bitte", &kw(), false), Some("Zusammenfassung bitte"));
        assert_eq!(addressed("Assistant", &kw(), false), Some("Assistant"));
        assert_eq!(addressed("Assistant: /clear", &kw(), false), Some("/clear"));
    }

    #[test]
    fn a_keyword_anywhere_as_a_word_addresses_it_with_the_whole_text() {
        assert_eq!(addressed("what does the assistant think?", &kw(), false), Some("what does the assistant think?"));
        assert_eq!(addressed("frag mal die KI.", &kw(), false), Some("frag mal die KI."));
    }

    #[test]
    fn other_talk_is_not_for_it() {
        assert_eq!(addressed("lunch at noon?", &kw(), false), None);
        // Inside a longer word it is no keyword.
        assert_eq!(addressed("Assistants are people too", &kw(), false), None);
        assert_eq!(addressed("the KIosk is closed", &kw(), false), None);
        assert_eq!(addressed("", &kw(), false), None);
    }

    #[test]
    fn a_mention_or_clear_alone_addresses_it() {
        assert_eq!(addressed("can you help?", &kw(), true), Some("can you help?"));
        assert_eq!(addressed(" /clear ", &kw(), false), Some("/clear"));
        assert_eq!(addressed("/clear the table", &kw(), false), None);
    }

    #[test]
    fn text_with_wide_characters_is_no_problem() {
        assert_eq!(addressed("Grüße an die KI", &kw(), false), Some("Grüße an die KI"));
        assert_eq!(addressed("ÄÖÜ", &["äöü".to_owned()], false), Some("ÄÖÜ"));
        assert_eq!(addressed("€€", &["€€€".to_owned()], false), None);
    }
}
