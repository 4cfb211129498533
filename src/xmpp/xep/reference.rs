//! XEP-0372 References: `<reference xmlns='urn:xmpp:reference:0' type='mention'
//! uri='xmpp:…' begin='…' end='…'/>`, a mention of someone at a range of the body (code points).

use xmpp_parsers::message::MessagePayload;
use xso::{AsXml, FromXml};

pub const NS: &str = "urn:xmpp:reference:0";

/// A reference. The offsets are kept as text: an unreadable number drops the range (and the
/// reader then drops the mention), not the whole message.
#[derive(FromXml, AsXml, PartialEq, Eq, Debug, Clone)]
#[xml(namespace = NS, name = "reference", on_unknown_attribute = Discard, on_unknown_child = Discard)]
pub struct Reference {
    #[xml(attribute(name = "type"))]
    pub kind: String,
    #[xml(attribute)]
    pub uri: String,
    #[xml(attribute(default))]
    pub begin: Option<String>,
    #[xml(attribute(default))]
    pub end: Option<String>,
}

impl MessagePayload for Reference {}

impl Reference {
    /// A mention of `uri` at code points `[begin, end)`.
    pub fn mention(uri: &str, begin: usize, end: usize) -> Self {
        Self { kind: "mention".into(), uri: uri.to_owned(), begin: Some(begin.to_string()), end: Some(end.to_string()) }
    }

    /// The offsets, each `None` when absent or not a number.
    pub fn offsets(&self) -> (Option<usize>, Option<usize>) {
        let n = |v: &Option<String>| v.as_deref().and_then(|v| v.parse().ok());
        (n(&self.begin), n(&self.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::minidom::Element;

    #[test]
    fn reads_and_writes() {
        let el: Element = "<reference xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:a@b' begin='0' end='x'/>"
            .parse()
            .unwrap();
        let r = Reference::try_from(el).unwrap();
        assert_eq!((r.kind.as_str(), r.uri.as_str(), r.offsets()), ("mention", "xmpp:a@b", (Some(0), None)));
        let back = Element::from(Reference::mention("xmpp:r@m/bob", 0, 3));
        assert_eq!((back.attr("type"), back.attr("begin"), back.attr("end")), (Some("mention"), Some("0"), Some("3")));
    }
}
