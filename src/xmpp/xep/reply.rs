//! XEP-0461 Message Replies: `<reply xmlns='urn:xmpp:reply:0' id='…' to='…'/>`.

use xmpp_parsers::message::MessagePayload;
use xso::{AsXml, FromXml};

pub const NS: &str = "urn:xmpp:reply:0";

/// The message this one answers: its id, and its author's address when known.
#[derive(FromXml, AsXml, PartialEq, Eq, Debug, Clone)]
#[xml(namespace = NS, name = "reply", on_unknown_attribute = Discard, on_unknown_child = Discard)]
pub struct Reply {
    #[xml(attribute)]
    pub id: String,
    /// Kept as text: a malformed address is dropped by the reader, not the whole reply.
    #[xml(attribute(default))]
    pub to: Option<String>,
}

impl MessagePayload for Reply {}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::minidom::Element;

    #[test]
    fn reads_and_writes() {
        let el: Element =
            "<reply xmlns='urn:xmpp:reply:0' id='m1' to='a@b/c' x='y'><z xmlns='q'/></reply>".parse().unwrap();
        let reply = Reply::try_from(el).unwrap();
        assert_eq!(reply, Reply { id: "m1".into(), to: Some("a@b/c".into()) });
        let back = Element::from(Reply { id: "m2".into(), to: None });
        assert!(back.is("reply", NS));
        assert_eq!((back.attr("id"), back.attr("to")), (Some("m2"), None));
    }
}
