//! Text XML cannot carry. Matrix JSON may hold NUL, other C0 controls and U+FFFE/U+FFFF in any
//! string (bodies, display names, topics, file names); XML 1.0 has no way to write them, and the
//! serializer fails the whole component stream on one. So every outgoing stanza is cleaned once,
//! where it is written (`connection::write_out`), whatever built it.

use std::borrow::Cow;

use xmpp_parsers::iq::Iq;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::StanzaError;

/// The XML 1.0 `Char` production (a Rust `char` is never a surrogate).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `s` without the characters XML cannot carry (borrowed when there are none: the usual case).
pub fn xml_text(s: &str) -> Cow<'_, str> {
    if s.chars().all(is_xml_char) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|&c| is_xml_char(c)).collect())
    }
}

fn clean(s: &mut String) {
    if let Cow::Owned(cleaned) = xml_text(s) {
        *s = cleaned;
    }
}

/// Every text node and attribute value of `root` and its descendants. A stack, not recursion: a
/// payload may be nested as deep as its sender liked.
fn clean_element(root: &mut Element) {
    let mut stack = vec![root];
    while let Some(el) = stack.pop() {
        el.attrs_mut().values_mut().for_each(clean);
        el.texts_mut().for_each(clean);
        stack.extend(el.children_mut());
    }
}

fn clean_error(error: &mut StanzaError) {
    error.texts.values_mut().for_each(clean);
    if let Some(other) = error.other.as_mut() {
        clean_element(other);
    }
}

/// Drop what XML cannot carry from every text of the stanza (bodies, subjects, statuses, error
/// texts, payloads). Addresses are JIDs, which stringprep already keeps free of controls.
pub fn make_xml_safe(stanza: &mut Stanza) {
    match stanza {
        Stanza::Message(m) => {
            m.bodies.values_mut().for_each(clean);
            m.subjects.values_mut().for_each(clean);
            if let Some(thread) = m.thread.as_mut() {
                clean(&mut thread.id);
                if let Some(parent) = thread.parent.as_mut() {
                    clean(parent);
                }
            }
            m.payloads.iter_mut().for_each(clean_element);
        }
        Stanza::Presence(p) => {
            p.statuses.values_mut().for_each(clean);
            p.payloads.iter_mut().for_each(clean_element);
        }
        Stanza::Iq(Iq::Get { payload, .. } | Iq::Set { payload, .. }) => clean_element(payload),
        Stanza::Iq(Iq::Result { payload, .. }) => payload.iter_mut().for_each(clean_element),
        Stanza::Iq(Iq::Error { error, payload, .. }) => {
            clean_error(error);
            payload.iter_mut().for_each(clean_element);
        }
    }
}

#[cfg(test)]
mod tests {
    use xmpp_parsers::jid::Jid;
    use xmpp_parsers::message::{Lang, Message};
    use xmpp_parsers::nick::Nick;
    use xmpp_parsers::presence::{Presence, Type};

    use super::*;

    fn serialize(stanza: Stanza) -> String {
        let element: Element = match stanza {
            Stanza::Message(m) => m.into(),
            Stanza::Presence(p) => p.into(),
            Stanza::Iq(iq) => iq.into(),
        };
        String::from(&element)
    }

    #[test]
    fn only_the_characters_xml_cannot_carry_are_dropped() {
        assert_eq!(xml_text("a\u{0}b\u{1}\u{8}\u{b}\u{c}\u{1f}c\u{fffe}\u{ffff}d"), "abcd");
        // Tab, LF, CR, C1 controls, bidi marks, U+FFFD and astral characters are XML.
        let fine = "t\tl\nr\r\u{85}\u{202e}\u{fffd}\u{1f44b}";
        assert!(matches!(xml_text(fine), Cow::Borrowed(s) if s == fine));
    }

    #[test]
    fn a_body_and_nick_with_nul_become_a_stanza_that_parses() {
        let mut m = Message::chat(Some(Jid::new("a@b").unwrap()));
        m.bodies.insert(Lang::new(), "x\u{0}y\u{1b}z".into());
        m.payloads.push(Nick("Eve\u{0}\r\n\u{7}".into()).into());
        let mut stanza = Stanza::Message(m);
        make_xml_safe(&mut stanza);
        let xml = serialize(stanza);
        let back = Message::try_from(xml.parse::<Element>().expect("well-formed")).expect("a message");
        assert_eq!(back.bodies.values().next().map(String::as_str), Some("xyz"));
        let nick = back.payloads.iter().find(|p| p.name() == "nick").map(Element::text);
        assert_eq!(nick.as_deref(), Some("Eve\r\n"), "{xml}");
    }

    #[test]
    fn statuses_and_deeply_nested_payload_texts_and_attributes_are_cleaned() {
        let mut p = Presence::new(Type::None);
        p.statuses.insert(Lang::new(), "away\u{0}".into());
        let mut deep = Element::builder("leaf", "urn:x")
            .attr(xmpp_parsers::minidom::rxml::xml_ncname!("v").into(), "a\u{0}")
            .append("t\u{2}")
            .build();
        for _ in 0..10_000 {
            deep = Element::builder("n", "urn:x").append(deep).build();
        }
        p.payloads.push(deep);
        let mut stanza = Stanza::Presence(p);
        make_xml_safe(&mut stanza);
        let Stanza::Presence(p) = &stanza else { unreachable!() };
        assert_eq!(p.statuses.values().next().map(String::as_str), Some("away"));
        let mut el = &p.payloads[0];
        while let Some(child) = el.children().next() {
            el = child;
        }
        assert_eq!((el.attr("v"), el.text().as_str()), (Some("a"), "t"));
        // Dropping 10,000 levels of minidom elements recurses; keep that off this thread's stack.
        std::thread::Builder::new().stack_size(64 << 20).spawn(move || drop(stanza)).unwrap().join().unwrap();
    }
}
