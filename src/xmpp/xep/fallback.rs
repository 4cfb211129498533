//! XEP-0428 Fallback Indication: which part of a body is there only for clients that do not
//! know the element `for` names (a reply's quote, a retraction's explanation).

use xmpp_parsers::message::MessagePayload;
use xso::{AsXml, FromXml};

pub const NS: &str = "urn:xmpp:fallback:0";

/// `<fallback for='…'>` with the body ranges it covers (none: the whole body).
#[derive(FromXml, AsXml, PartialEq, Eq, Debug, Clone)]
#[xml(namespace = NS, name = "fallback", on_unknown_attribute = Discard, on_unknown_child = Discard)]
pub struct Fallback {
    #[xml(attribute(name = "for"))]
    pub for_: String,
    #[xml(child(n = ..))]
    pub bodies: Vec<Range>,
}

impl MessagePayload for Fallback {}

/// `<body start='…' end='…'/>`: a range of the body in Unicode code points. The offsets are
/// kept as text so that one unreadable number does not lose the whole fallback.
#[derive(FromXml, AsXml, PartialEq, Eq, Debug, Clone, Default)]
#[xml(namespace = NS, name = "body", on_unknown_attribute = Discard, on_unknown_child = Discard)]
pub struct Range {
    #[xml(attribute(default))]
    pub start: Option<String>,
    #[xml(attribute(default))]
    pub end: Option<String>,
}

impl Range {
    pub fn new(start: usize, end: usize) -> Self {
        Self { start: Some(start.to_string()), end: Some(end.to_string()) }
    }

    /// The offsets, each `None` when absent or not a number.
    pub fn offsets(&self) -> (Option<usize>, Option<usize>) {
        let n = |v: &Option<String>| v.as_deref().and_then(|v| v.parse().ok());
        (n(&self.start), n(&self.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::minidom::Element;

    #[test]
    fn reads_ranges_even_with_a_bad_number() {
        let el: Element = "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'>\
            <body start='0' end='7'/><body start='x'/></fallback>"
            .parse()
            .unwrap();
        let f = Fallback::try_from(el).unwrap();
        assert_eq!(f.for_, "urn:xmpp:reply:0");
        let offsets: Vec<_> = f.bodies.iter().map(Range::offsets).collect();
        assert_eq!(offsets, [(Some(0), Some(7)), (None, None)]);
    }
}
