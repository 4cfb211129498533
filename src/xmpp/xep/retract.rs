//! XEP-0424 Message Retraction: `<retract xmlns='urn:xmpp:message-retract:1' id='…'/>`.

use xmpp_parsers::message::MessagePayload;
use xso::{AsXml, FromXml};

pub const NS: &str = "urn:xmpp:message-retract:1";
/// Before version 0.4 the retraction was `<retract xmlns='urn:xmpp:message-retract:0'/>` inside
/// an XEP-0422 `<apply-to xmlns='urn:xmpp:fasten:0' id='…'>`; still read, never sent.
pub const NS_0: &str = "urn:xmpp:message-retract:0";
pub const FASTEN: &str = "urn:xmpp:fasten:0";

/// The retraction of the message `id`.
#[derive(FromXml, AsXml, PartialEq, Eq, Debug, Clone)]
#[xml(namespace = NS, name = "retract", on_unknown_attribute = Discard, on_unknown_child = Discard)]
pub struct Retract {
    #[xml(attribute)]
    pub id: String,
}

impl MessagePayload for Retract {}

/// A retracted message's tombstone in an archive (XEP-0424): the retraction's id and time.
#[derive(FromXml, AsXml, PartialEq, Debug, Clone)]
#[xml(namespace = NS, name = "retracted", on_unknown_attribute = Discard, on_unknown_child = Discard)]
pub struct Retracted {
    #[xml(attribute)]
    pub id: String,
    #[xml(attribute)]
    pub stamp: xmpp_parsers::date::DateTime,
}

impl MessagePayload for Retracted {}

/// The legacy form: `<apply-to id='…'>` holding a `<retract/>` of version 0.
#[derive(FromXml, AsXml, PartialEq, Eq, Debug, Clone)]
#[xml(namespace = FASTEN, name = "apply-to", on_unknown_attribute = Discard, on_unknown_child = Discard)]
pub struct ApplyTo {
    #[xml(attribute)]
    pub id: String,
    #[xml(child(default))]
    pub retract: Option<Retract0>,
}

/// The version-0 retraction marker inside `apply-to`.
#[derive(FromXml, AsXml, PartialEq, Eq, Debug, Clone)]
#[xml(namespace = NS_0, name = "retract", on_unknown_attribute = Discard, on_unknown_child = Discard)]
pub struct Retract0;

/// The id of the message a payload retracts, in either version.
pub fn retracted_id(payload: &xmpp_parsers::minidom::Element) -> Option<String> {
    if let Ok(r) = Retract::try_from(payload.clone()) {
        return Some(r.id);
    }
    ApplyTo::try_from(payload.clone()).ok().filter(|a| a.retract.is_some()).map(|a| a.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::minidom::Element;

    #[test]
    fn both_versions_are_read() {
        let new: Element = "<retract xmlns='urn:xmpp:message-retract:1' id='a'/>".parse().unwrap();
        let old: Element =
            "<apply-to xmlns='urn:xmpp:fasten:0' id='b'><retract xmlns='urn:xmpp:message-retract:0'/></apply-to>"
                .parse()
                .unwrap();
        let other: Element = "<apply-to xmlns='urn:xmpp:fasten:0' id='c'><x xmlns='y'/></apply-to>".parse().unwrap();
        assert_eq!(retracted_id(&new).as_deref(), Some("a"));
        assert_eq!(retracted_id(&old).as_deref(), Some("b"));
        assert_eq!(retracted_id(&other), None);
    }
}
