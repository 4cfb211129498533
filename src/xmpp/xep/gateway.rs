//! XEP-0100 Gateway Interaction, `jabber:iq:gateway`: a client asks for the prompt, then for
//! the address of a legacy contact (here a Matrix ID).

use xmpp_parsers::iq::{IqGetPayload, IqResultPayload, IqSetPayload};
use xso::{AsXml, FromXml};

pub const NS: &str = "jabber:iq:gateway";

/// The get (empty), its answer (`desc`, `prompt`), the set (`prompt`: the contact) and its
/// answer (`jid`).
#[derive(FromXml, AsXml, PartialEq, Eq, Debug, Clone, Default)]
#[xml(namespace = NS, name = "query", on_unknown_attribute = Discard, on_unknown_child = Discard)]
pub struct Gateway {
    #[xml(extract(default, fields(text(type_ = String))))]
    pub desc: Option<String>,
    #[xml(extract(default, fields(text(type_ = String))))]
    pub prompt: Option<String>,
    #[xml(extract(default, fields(text(type_ = String))))]
    pub jid: Option<String>,
}

impl IqGetPayload for Gateway {}
impl IqSetPayload for Gateway {}
impl IqResultPayload for Gateway {}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::minidom::Element;

    #[test]
    fn reads_and_writes() {
        let el: Element = "<query xmlns='jabber:iq:gateway'><prompt>@bob:hs</prompt></query>".parse().unwrap();
        assert_eq!(Gateway::try_from(el).unwrap().prompt.as_deref(), Some("@bob:hs"));
        let out = String::from(&Element::from(Gateway { jid: Some("b@c".into()), ..Gateway::default() }));
        assert_eq!(out, "<query xmlns='jabber:iq:gateway'><jid>b@c</jid></query>");
    }
}
