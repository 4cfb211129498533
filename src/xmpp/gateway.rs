//! XEP-0100 on the component: an XMPP user asks for the address of a Matrix user (or of an
//! XMPP user's ghost) instead of typing the XEP-0106 escapes by hand; and the gateway as a
//! contact: it may be added to a roster, and its presence carries its XEP-0115 caps.

use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;

use crate::core::ids::MatrixUserId;
use crate::core::mapping::IdentityMap;
use crate::core::refusal::RefusalKind;
use crate::xmpp::outbound;
use crate::xmpp::xep::gateway::Gateway;

const DESC: &str = "Enter a Matrix ID (@user:server) to get the XMPP address to write to.";
const PROMPT: &str = "Matrix ID";

/// The answer to a `jabber:iq:gateway` get (`is_set` false: the prompt) or set (the address).
pub fn answer(
    map: &IdentityMap,
    from: Jid,
    to: Jid,
    id: String,
    payload: Element,
    is_set: bool,
) -> xmpp_parsers::stanza::Stanza {
    if !is_set {
        let prompt = Gateway { desc: Some(DESC.into()), prompt: Some(PROMPT.into()), jid: None };
        return outbound::iq_payload(to, from, id, prompt);
    }
    let asked = Gateway::try_from(payload).ok().and_then(|g| g.prompt).unwrap_or_default();
    match address(map, asked.trim()) {
        Ok(jid) => outbound::iq_payload(to, from, id, Gateway { jid: Some(jid), ..Gateway::default() }),
        Err(text) => outbound::iq_error(Some(to), from, id, RefusalKind::BadRequest, &text),
    }
}

/// The XMPP address for a Matrix ID: an XMPP user's ghost is that user, anyone else their
/// escaped address under the component.
pub fn address(map: &IdentityMap, asked: &str) -> Result<String, String> {
    if asked.is_empty() {
        return Err(format!("Put a Matrix ID in <prompt/> ({PROMPT}, e.g. @bob:example.org)."));
    }
    let with_at = if asked.starts_with('@') { asked.to_owned() } else { format!("@{asked}") };
    let user = MatrixUserId::parse(&with_at).map_err(|_| format!("{asked} is not a Matrix ID (@user:server)."))?;
    if let Some(ghost) = map.jid_for_ghost(&user) {
        return ghost.map(|j| j.to_string()).map_err(|e| e.to_string());
    }
    if user.localpart().chars().any(|c| c.is_uppercase()) {
        // XMPP servers lower-case localparts: the address would reach someone else.
        return Err(format!("{asked} has upper-case letters and cannot be reached from XMPP."));
    }
    Ok(map.jid_for_matrix(&user).to_string())
}

/// The answer to a presence addressed to the component itself (`to`): a subscription is
/// granted and a probe answered, with the gateway's available presence (it is there whenever
/// it can answer); an unsubscription is acknowledged. A directed presence gets no answer (two
/// gateways answering each other's would never stop).
pub fn presence_answer(from: Jid, to: Jid, kind: PresenceType) -> Vec<Stanza> {
    let (me, them) = (Jid::from(to.to_bare()), Jid::from(from.to_bare()));
    match kind {
        PresenceType::Subscribe => {
            vec![outbound::presence(PresenceType::Subscribed, me.clone(), them, None), available(me, from)]
        }
        PresenceType::Probe => vec![available(me, from)],
        PresenceType::Unsubscribe => vec![
            outbound::presence(PresenceType::Unsubscribed, me.clone(), them.clone(), None),
            outbound::presence(PresenceType::Unavailable, me, them, None),
        ],
        _ => vec![],
    }
}

/// The gateway's available presence, with the caps of what its disco#info says.
fn available(me: Jid, to: Jid) -> Stanza {
    let mut presence = Presence::available().with_from(me).with_to(to);
    if let Some(caps) = outbound::caps(true, crate::xmpp::inbound::COMPONENT_NAME) {
        presence.payloads.push(caps.into());
    }
    Stanza::Presence(presence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> IdentityMap {
        IdentityMap {
            homeserver: "hs.example".into(),
            component: "matrix.xmpp.example".into(),
            ghost_prefix: "_xmpp_".into(),
            bot_localpart: "ucbridge".into(),
            chatbot_localpart: None,
        }
    }

    #[test]
    fn matrix_ids_become_their_escaped_addresses() {
        assert_eq!(address(&map(), "@bob:example.org").unwrap(), "bob\\40example.org@matrix.xmpp.example");
        assert_eq!(address(&map(), "bob:hs.example:8448").unwrap(), "bob\\40hs.example\\3a8448@matrix.xmpp.example");
        assert_eq!(address(&map(), "@_xmpp_ann=40x.example:hs.example").unwrap(), "ann@x.example");
    }

    #[test]
    fn the_gateway_grants_subscriptions_and_answers_probes_with_its_caps() {
        let (user, me) = (Jid::new("juliet@x.example/phone").unwrap(), Jid::new("matrix.xmpp.example").unwrap());
        let xml = |stanzas: Vec<Stanza>| -> Vec<String> {
            let Stanza::Presence(p) = &stanzas[stanzas.len() - 1] else { panic!("a presence") };
            let caps = outbound::caps(true, crate::xmpp::inbound::COMPONENT_NAME).unwrap();
            assert!(p.payloads.contains(&caps.into()), "{p:?}");
            let element = |s: Stanza| match s {
                Stanza::Presence(p) => Element::from(p),
                other => panic!("not a presence: {other:?}"),
            };
            stanzas.into_iter().map(|s| String::from(&element(s))).collect()
        };
        let granted = xml(presence_answer(user.clone(), me.clone(), PresenceType::Subscribe));
        assert!(
            granted[0].contains("type='subscribed'") && granted[0].contains("to='juliet@x.example'"),
            "{granted:?}"
        );
        assert!(!granted[1].contains("type=") && granted[1].contains("from='matrix.xmpp.example'"), "{granted:?}");
        let probed = xml(presence_answer(user.clone(), me.clone(), PresenceType::Probe));
        assert_eq!(probed.len(), 1);
        assert!(presence_answer(user.clone(), me.clone(), PresenceType::Unavailable).is_empty());
        assert!(presence_answer(user.clone(), me.clone(), PresenceType::None).is_empty());
        let gone = presence_answer(user, me, PresenceType::Unsubscribe);
        assert_eq!(gone.len(), 2);
    }

    #[test]
    fn what_is_no_reachable_matrix_id_is_refused_with_a_reason() {
        for bad in ["", "bob", "@bob", "@Bob:hs.example", "@#room:hs.example"] {
            assert!(address(&map(), bad).is_err(), "{bad}");
        }
    }
}
