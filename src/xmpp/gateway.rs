//! XEP-0100 on the component: an XMPP user asks for the address of a Matrix user (or of an
//! XMPP user's ghost) instead of typing the XEP-0106 escapes by hand.

use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;

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
    fn what_is_no_reachable_matrix_id_is_refused_with_a_reason() {
        for bad in ["", "bob", "@bob", "@Bob:hs.example", "@#room:hs.example"] {
            assert!(address(&map(), bad).is_err(), "{bad}");
        }
    }
}
