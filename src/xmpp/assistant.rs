//! The AI assistant's address under the component (`assistant@component`): what XMPP users ask
//! of it besides chatting — what it is (XEP-0030 disco#info: a bot), its vCard (XEP-0054), its
//! presence (RFC 6121 subscriptions and probes) and pings — and what MUCs on XMPP servers send
//! it: invitations (XEP-0249 direct, XEP-0045 mediated), their messages, its removal. Chat
//! messages to it are read like any 1:1 message (`inbound::read_message`); the bridge decides
//! (`bridge/chatbot_contact.rs`, `bridge/chatbot_muc.rs`).

use xmpp_parsers::delay::Delay;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, Identity};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::muc::MucUser;
use xmpp_parsers::muc::user::Status;
use xmpp_parsers::ns;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::StanzaError;

use crate::core::ids::BareJid;
use crate::core::refusal::RefusalKind;
use crate::core::xmpp_in::{SubscriptionKind, XmppIn};
use crate::xmpp::inbound::{self, Read};
use crate::xmpp::outbound;
use crate::xmpp::reply::Envelope;

/// What the assistant handles: a chat partner that types, sends images as links and can be
/// invited into MUCs.
const FEATURES: [&str; 8] =
    [ns::DISCO_INFO, ns::PING, ns::VCARD, ns::CHATSTATES, ns::RECEIPTS, "jabber:x:oob", ns::CAPS, CONFERENCE];

/// A stanza to the assistant, read into what the bridge decides on (or answered here).
pub fn read(stanza: Stanza) -> Read {
    match stanza {
        Stanza::Message(m) => read_message(m),
        Stanza::Presence(p) => read_presence(p),
        Stanza::Iq(iq) => read_iq(iq),
    }
}

/// Whether a stanza is addressed to the assistant.
pub fn is_addressed(map: &crate::core::mapping::IdentityMap, to: Option<&Jid>) -> bool {
    to.and_then(Jid::node).is_some_and(|n| map.is_chatbot_local(n.as_str()))
}

/// XEP-0249's direct invitation.
const CONFERENCE: &str = "jabber:x:conference";

/// The room a XEP-0249 direct invitation names, if the message is one.
pub fn direct_invitation(message: &Message) -> Option<&str> {
    message.payloads.iter().find(|p| p.is("x", CONFERENCE)).and_then(|x| x.attr("jid"))
}

fn bare(jid: &Jid) -> Option<BareJid> {
    BareJid::parse(jid.to_bare().as_str()).ok()
}

/// A message to the assistant: an invitation into a MUC, a MUC's message, else a 1:1 chat.
pub fn read_message(message: Message) -> Read {
    let Some(from) = message.from.clone() else { return Read::Nothing };
    if message.type_ == MessageType::Error {
        return inbound::read_message(message);
    }
    let muc_user = message.payloads.iter().find_map(|p| MucUser::try_from(p.clone()).ok());
    if let Some(invite) = muc_user.as_ref().and_then(|x| x.invite.as_ref()) {
        // Mediated: from the MUC, naming who invites.
        let (Some(muc), Some(inviter)) = (bare(&from), invite.from.as_ref().and_then(bare)) else {
            return Read::Nothing;
        };
        return Read::Bridge(XmppIn::AssistantInvite { muc, inviter, mediated: true }, None);
    }
    if let Some(muc) = direct_invitation(&message) {
        let (Ok(muc), Some(inviter)) = (BareJid::parse(muc), bare(&from)) else { return Read::Nothing };
        return Read::Bridge(XmppIn::AssistantInvite { muc, inviter, mediated: false }, None);
    }
    if message.type_ == MessageType::Groupchat {
        return read_groupchat(&message).map_or(Read::Nothing, |m| Read::Bridge(m, None));
    }
    if muc_user.is_some() {
        return Read::Nothing; // a MUC's other notices (a declined invitation, ...)
    }
    inbound::read_message(message)
}

/// A live message in a MUC (history, which carries a delay, and the room's own notices, which
/// come from no occupant, are not).
fn read_groupchat(message: &Message) -> Option<XmppIn> {
    let from = message.from.as_ref()?;
    let nick = from.resource()?.as_str().to_owned();
    if message.payloads.iter().any(|p| Delay::try_from(p.clone()).is_ok()) {
        return None;
    }
    let (_, body) = message.get_best_body_cloned(vec![])?;
    let id = message.id.as_ref().map(|i| i.0.clone());
    Some(XmppIn::AssistantMucMessage { muc: bare(from)?, nick, id, body })
}

/// A presence to the assistant: subscription requests and probes go to the bridge, and so does
/// a MUC telling it that it is out (its own presence, unavailable or an error); its contacts'
/// and the other occupants' presence is of no use to it.
pub fn read_presence(presence: Presence) -> Read {
    let (Some(from), Some(to)) = (presence.from.clone(), presence.to.clone()) else { return Read::Nothing };
    let Some(sender) = bare(&from) else { return Read::Nothing };
    let muc_user = presence.payloads.iter().find_map(|p| MucUser::try_from(p.clone()).ok());
    if presence.type_ == PresenceType::Error && from.resource().is_some() {
        let error = presence.payloads.iter().find_map(|p| StanzaError::try_from(p.clone()).ok());
        let why = error.map_or_else(
            || "the MUC refused it".to_owned(),
            |e| format!("{:?} {}", e.defined_condition, e.texts.values().next().cloned().unwrap_or_default()),
        );
        return Read::Bridge(XmppIn::AssistantMucGone { muc: sender, why: why.trim().to_owned() }, None);
    }
    if let Some(x) = muc_user {
        if presence.type_ != PresenceType::Unavailable || !x.status.contains(&Status::SelfPresence) {
            return Read::Nothing;
        }
        let why = if x.status.contains(&Status::Banned) {
            "banned"
        } else if x.status.contains(&Status::Kicked) {
            "kicked"
        } else {
            "removed"
        };
        return Read::Bridge(XmppIn::AssistantMucGone { muc: sender, why: why.to_owned() }, None);
    }
    let kind = match presence.type_ {
        PresenceType::Subscribe => SubscriptionKind::Subscribe,
        PresenceType::Unsubscribe => SubscriptionKind::Unsubscribe,
        PresenceType::Probe => SubscriptionKind::Probe,
        _ => return Read::Nothing,
    };
    Read::Bridge(XmppIn::AssistantPresence { kind, sender }, Some(Envelope::presence(from, to, presence.id)))
}

/// An iq request to the assistant (answers to the bridge's own requests never come here: it
/// sends none from this address).
pub fn read_iq(iq: Iq) -> Read {
    let (from, to, id, payload) = match iq {
        Iq::Get { from: Some(from), to: Some(to), id, payload } => (from, to, id, payload),
        Iq::Set { from: Some(from), to: Some(to), id, .. } => {
            let text = "This request is not supported.";
            return Read::Reply(outbound::iq_error(Some(to), from, id, RefusalKind::Unsupported, text));
        }
        _ => return Read::Nothing,
    };
    if payload.is("vCard", ns::VCARD) {
        return Read::Bridge(XmppIn::AssistantCard, Some(Envelope::iq(from, to, id)));
    }
    if let Ok(query) = DiscoInfoQuery::try_from(payload.clone()) {
        return Read::Bridge(XmppIn::AssistantInfo { node: query.node }, Some(Envelope::iq(from, to, id)));
    }
    Read::Reply(answer_here(from, to, id, payload))
}

/// What needs no decision: its (empty) items and pings; anything else is unsupported.
fn answer_here(from: Jid, to: Jid, id: String, payload: Element) -> Stanza {
    if let Ok(query) = DiscoItemsQuery::try_from(payload.clone()) {
        return outbound::disco_items(to, from, id, query.node);
    }
    if Ping::try_from(payload).is_ok() {
        return outbound::iq_result(to, from, id);
    }
    outbound::iq_error(Some(to), from, id, RefusalKind::Unsupported, "This request is not supported.")
}

/// What the assistant says about itself: a bot (XEP-0030 category `client`, type `bot`) named
/// `name`.
pub fn disco(name: &str, node: Option<String>) -> DiscoInfoResult {
    let features = FEATURES.iter().map(|f| (*f).to_owned()).collect();
    DiscoInfoResult { node, identities: vec![Identity::new("client", "bot", "en", name)], features, extensions: vec![] }
}

/// The disco#info answer.
pub fn info(from: Jid, to: Jid, id: String, name: &str, node: Option<String>) -> Stanza {
    let mut iq = Iq::from_result(id, Some(disco(name, node)));
    *iq.from_mut() = Some(from);
    *iq.to_mut() = Some(to);
    Stanza::Iq(iq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::inbound::tests::{NS, stanza};

    #[test]
    fn disco_and_vcard_go_to_the_bridge_and_pings_are_answered_here() {
        let Stanza::Iq(iq) = stanza(&format!(
            "<iq {NS} type='get' id='d1' from='juliet@x.example/phone' to='assistant@bridge.x.example'>\
             <query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        )) else {
            panic!("an iq")
        };
        assert!(matches!(read_iq(iq), Read::Bridge(XmppIn::AssistantInfo { node: None }, Some(_))));
        let Stanza::Iq(iq) = stanza(&format!(
            "<iq {NS} type='get' id='v1' from='juliet@x.example/phone' to='assistant@bridge.x.example'>\
             <vCard xmlns='vcard-temp'/></iq>"
        )) else {
            panic!("an iq")
        };
        assert!(matches!(read_iq(iq), Read::Bridge(XmppIn::AssistantCard, Some(_))));
        let Stanza::Iq(iq) = stanza(&format!(
            "<iq {NS} type='get' id='p1' from='juliet@x.example/phone' to='assistant@bridge.x.example'>\
             <ping xmlns='urn:xmpp:ping'/></iq>"
        )) else {
            panic!("an iq")
        };
        assert!(matches!(read_iq(iq), Read::Reply(Stanza::Iq(Iq::Result { .. }))));
    }

    #[test]
    fn subscriptions_and_probes_go_to_the_bridge_and_other_presence_is_dropped() {
        let read = |kind: &str| {
            let Stanza::Presence(p) = stanza(&format!(
                "<presence {NS} {kind} from='juliet@x.example/phone' to='assistant@bridge.x.example'/>"
            )) else {
                panic!("a presence")
            };
            read_presence(p)
        };
        assert!(matches!(
            read("type='subscribe'"),
            Read::Bridge(XmppIn::AssistantPresence { kind: SubscriptionKind::Subscribe, .. }, Some(_))
        ));
        assert!(matches!(
            read("type='probe'"),
            Read::Bridge(XmppIn::AssistantPresence { kind: SubscriptionKind::Probe, .. }, Some(_))
        ));
        assert!(matches!(read(""), Read::Nothing));
    }

    #[test]
    fn both_kinds_of_invitation_name_the_muc_and_who_invites() {
        let direct = stanza(&format!(
            "<message {NS} from='juliet@x.example/phone' to='assistant@bridge.x.example'>\
             <x xmlns='jabber:x:conference' jid='team@conference.x.example'/></message>"
        ));
        let mediated = stanza(&format!(
            "<message {NS} from='team@conference.x.example' to='assistant@bridge.x.example'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><invite from='juliet@x.example/phone'/></x></message>"
        ));
        for s in [direct, mediated] {
            let Read::Bridge(XmppIn::AssistantInvite { muc, inviter, .. }, None) = read(s) else {
                panic!("an invitation")
            };
            assert_eq!(
                (muc.to_string(), inviter.to_string()),
                ("team@conference.x.example".into(), "juliet@x.example".into())
            );
        }
    }

    #[test]
    fn a_muc_message_is_read_unless_it_is_history_and_a_kick_is_its_removal() {
        let live = stanza(&format!(
            "<message {NS} type='groupchat' id='g1' from='team@conference.x.example/ann' \
             to='assistant@bridge.x.example/ucbridge'><body>Assistant: hi</body></message>"
        ));
        let Read::Bridge(XmppIn::AssistantMucMessage { nick, body, .. }, None) = read(live) else {
            panic!("a message")
        };
        assert_eq!((nick.as_str(), body.as_str()), ("ann", "Assistant: hi"));
        let old = stanza(&format!(
            "<message {NS} type='groupchat' from='team@conference.x.example/ann' to='assistant@bridge.x.example/ucbridge'>\
             <body>old</body><delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/></message>"
        ));
        assert!(matches!(read(old), Read::Nothing));
        let kicked = stanza(&format!(
            "<presence {NS} type='unavailable' from='team@conference.x.example/Assistant' \
             to='assistant@bridge.x.example/ucbridge'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='none' role='none'/><status code='307'/><status code='110'/></x></presence>"
        ));
        let Read::Bridge(XmppIn::AssistantMucGone { why, .. }, None) = read(kicked) else { panic!("its removal") };
        assert_eq!(why, "kicked");
        // Another occupant leaving is none of its business.
        let other = stanza(&format!(
            "<presence {NS} type='unavailable' from='team@conference.x.example/ann' \
             to='assistant@bridge.x.example/ucbridge'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='none' role='none'/></x></presence>"
        ));
        assert!(matches!(read(other), Read::Nothing));
    }

    #[test]
    fn it_says_it_is_a_bot() {
        let d = disco("Assistant", None);
        assert_eq!((d.identities[0].category.as_str(), d.identities[0].type_.as_str()), ("client", "bot"));
        assert!(d.features.iter().any(|f| f == ns::VCARD));
    }
}
