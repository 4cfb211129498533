//! The usage policy at the XMPP door: someone on a domain the bridge does not serve (and without
//! the `chat` permission) is refused, and so is a message to a Matrix user whose server it does
//! not serve (the bridge is not a relay for the whole federation). Answers (iq results, errors)
//! and the server's own stanzas pass. The policy is the bridge's (`XmppHandler::usage_refusal`);
//! which stanzas it applies to and how a refusal is written are here.

use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::MessageType;
use xmpp_parsers::presence::Type as PresenceType;
use xmpp_parsers::stanza::Stanza;

use crate::core::ids::BareJid;
use crate::core::refusal::RefusalKind;
use crate::xmpp::inbound::XmppHandler;
use crate::xmpp::outbound;

/// `None`: the stanza may go on. `Some(reply)`: refused, with the reply to send (if any).
pub async fn refuse<H: XmppHandler>(bridge: &H, stanza: &Stanza) -> Option<Option<Stanza>> {
    let (from, to) = crate::xmpp::inbound::addresses(stanza);
    let (from, to) = (from?, to?);
    let sender = BareJid::parse(from.to_bare().as_str()).ok()?;
    sender.local()?; // a server or component: not a user
    if answer_or_error(stanza) {
        return None;
    }
    let why = bridge.usage_refusal(&sender, to.node().map(|n| n.as_str())).await?;
    tracing::info!(%from, %to, "refused by the usage policy");
    Some(refusal(stanza, from.clone(), to.clone(), &why))
}

fn answer_or_error(stanza: &Stanza) -> bool {
    match stanza {
        Stanza::Message(m) => m.type_ == MessageType::Error,
        Stanza::Presence(p) => p.type_ == PresenceType::Error,
        Stanza::Iq(iq) => matches!(iq, Iq::Result { .. } | Iq::Error { .. }),
    }
}

fn refusal(stanza: &Stanza, from: Jid, to: Jid, why: &str) -> Option<Stanza> {
    match stanza {
        Stanza::Message(m) => Some(outbound::message_error(
            Some(to),
            from,
            m.id.as_ref().map(|i| i.0.clone()),
            RefusalKind::Forbidden,
            why,
        )),
        Stanza::Iq(iq) => Some(outbound::iq_error(Some(to), from, iq.id().to_owned(), RefusalKind::Forbidden, why)),
        // A subscription request is declined; other presence is ignored.
        Stanza::Presence(p) if p.type_ == PresenceType::Subscribe => {
            Some(outbound::presence_error(Some(to), from, p.id.clone(), RefusalKind::Forbidden, why))
        }
        Stanza::Presence(_) => None,
    }
}
