//! How to answer a stanza: its addresses and id, kept by the adapter while the bridge decides
//! (the bridge gets an [`Envelope`] next to the `XmppIn` and gives `xmpp::out::XmppOut` the
//! [`Answer`] it chose, in neutral terms: a refusal and its text, a result, a vCard, ...).
//! Building the stanzas (error conditions, disco, forms) stays here.

use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::Type as PresenceType;
use xmpp_parsers::stanza::Stanza;

use crate::core::ids::BareJid;
use crate::core::refusal::{Refusal, RefusalKind};
use crate::core::room::Role;
use crate::store::ArchivedMessage;
use crate::xmpp::{adhoc, hosted_muc_out, outbound};

/// What the bridge answers a request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Refused, and why (an error of the request's own kind).
    Refused(Refusal),
    /// Done (an empty iq result).
    Done,
    /// A presence answer (to a subscription or probe).
    Presence(PresenceAnswer),
    /// A Matrix user's vCard: display name and photo (bytes, type).
    VCard { name: Option<String>, photo: Option<(Vec<u8>, String)> },
    /// The ad-hoc commands the sender may see (`admin`: the admin ones too).
    CommandItems { admin: bool },
    /// An ad-hoc command's answer (the envelope knows its node and session).
    Command(adhoc::CommandAnswer),
    /// What a hosted room says about itself (disco#info), with its avatar's hash (XEP-0486).
    RoomInfo { name: String, open: bool, avatar: Option<[u8; 20]> },
    /// A hosted room's configuration form.
    RoomConfig { name: String, description: String },
    /// A hosted room's participants with an affiliation: (real JID, nick, role).
    AdminList(Vec<(String, String, Role)>),
    /// Matrix users found in the user directory (XEP-0055 results).
    Users(Vec<crate::xmpp::search::Found>),
    /// What the AI assistant says about itself (disco#info), named `name`.
    AssistantInfo { name: String, node: Option<String> },
    /// A page of a hosted room's archive (`muc`'s address), then the end of the query.
    Archive { muc: BareJid, messages: Vec<ArchivedMessage>, count: i64, complete: bool },
}

/// Which kind of stanza is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Message,
    Presence,
    Iq,
}

/// The addresses and id of a stanza, to answer it.
#[derive(Debug, Clone)]
pub struct Envelope {
    kind: Kind,
    /// The sender (the answer goes to them).
    from: Jid,
    /// The addressee (the answer comes from it).
    to: Jid,
    id: Option<String>,
    /// A MAM query's id, repeated in each result.
    queryid: Option<String>,
    /// An ad-hoc command's node and session, repeated in its answer.
    command: Option<(String, String)>,
}

/// An answer to a presence that is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceAnswer {
    Unsubscribed,
    Unavailable,
}

impl Envelope {
    pub fn message(from: Jid, to: Jid, id: Option<String>) -> Self {
        Self { kind: Kind::Message, from, to, id, queryid: None, command: None }
    }

    pub fn presence(from: Jid, to: Jid, id: Option<String>) -> Self {
        Self { kind: Kind::Presence, from, to, id, queryid: None, command: None }
    }

    pub fn iq(from: Jid, to: Jid, id: String) -> Self {
        Self { kind: Kind::Iq, from, to, id: Some(id), queryid: None, command: None }
    }

    pub fn with_queryid(mut self, queryid: Option<String>) -> Self {
        self.queryid = queryid;
        self
    }

    pub fn with_command(mut self, node: String, session: String) -> Self {
        self.command = Some((node, session));
        self
    }

    fn iq_id(&self) -> String {
        self.id.clone().unwrap_or_default()
    }

    /// The stanza's sender, for logs.
    pub fn sender(&self) -> &Jid {
        &self.from
    }

    /// The stanza's addressee, for logs.
    pub fn addressee(&self) -> &Jid {
        &self.to
    }

    /// An error of the stanza's own kind that says why.
    pub fn error(&self, refusal: RefusalKind, text: &str) -> Stanza {
        let (to, from) = (Some(self.to.clone()), self.from.clone());
        match self.kind {
            Kind::Message => outbound::message_error(to, from, self.id.clone(), refusal, text),
            Kind::Presence => outbound::presence_error(to, from, self.id.clone(), refusal, text),
            Kind::Iq => outbound::iq_error(to, from, self.iq_id(), refusal, text),
        }
    }

    /// An empty iq result.
    pub fn done(&self) -> Stanza {
        outbound::iq_result(self.to.clone(), self.from.clone(), self.iq_id())
    }

    /// `unsubscribed` or `unavailable`, between the bare addresses, with an optional status.
    pub fn presence_answer(&self, answer: PresenceAnswer, status: Option<&str>) -> Stanza {
        let kind = match answer {
            PresenceAnswer::Unsubscribed => PresenceType::Unsubscribed,
            PresenceAnswer::Unavailable => PresenceType::Unavailable,
        };
        outbound::presence(kind, Jid::from(self.to.to_bare()), Jid::from(self.from.to_bare()), status)
    }

    /// The stanzas that say `answer`.
    pub fn stanzas(&self, answer: Answer) -> Vec<Stanza> {
        match answer {
            Answer::Refused(refusal) => vec![self.error(refusal.kind, &refusal.text)],
            Answer::Done => vec![self.done()],
            Answer::Presence(p) => vec![self.presence_answer(p, None)],
            Answer::VCard { name, photo } => vec![self.vcard(name.as_deref(), photo)],
            Answer::CommandItems { admin } => vec![self.command_items(admin)],
            Answer::Command(answer) => match &self.command {
                Some((node, session)) => {
                    let (from, to) = (self.to.clone(), self.from.clone());
                    vec![adhoc::answer(from, to, self.iq_id(), node, session, answer)]
                }
                None => vec![],
            },
            Answer::RoomInfo { name, open, avatar } => vec![self.room_info(&name, open, avatar)],
            Answer::RoomConfig { name, description } => vec![self.room_config(&name, &description)],
            Answer::AdminList(items) => vec![self.admin_list(&items)],
            Answer::Archive { muc, messages, count, complete } => self.archive(&muc, &messages, count, complete),
            Answer::AssistantInfo { name, node } => {
                vec![crate::xmpp::assistant::info(self.to.clone(), self.from.clone(), self.iq_id(), &name, node)]
            }
            Answer::Users(found) => {
                vec![crate::xmpp::search::results(self.to.clone(), self.from.clone(), self.iq_id(), &found)]
            }
        }
    }

    fn vcard(&self, name: Option<&str>, photo: Option<(Vec<u8>, String)>) -> Stanza {
        outbound::vcard(self.to.clone(), self.from.clone(), self.iq_id(), name, photo)
    }

    /// The ad-hoc commands the sender may run.
    fn command_items(&self, admin: bool) -> Stanza {
        adhoc::items(self.to.clone(), self.from.clone(), self.iq_id(), admin)
    }

    fn room_info(&self, name: &str, open: bool, avatar: Option<[u8; 20]>) -> Stanza {
        hosted_muc_out::room_disco_info(self.to.clone(), self.from.clone(), self.iq_id(), name, open, avatar)
    }

    fn room_config(&self, name: &str, description: &str) -> Stanza {
        hosted_muc_out::config_form(self.to.clone(), self.from.clone(), self.iq_id(), name, description)
    }

    fn admin_list(&self, items: &[(String, String, Role)]) -> Stanza {
        hosted_muc_out::admin_list(self.to.clone(), self.from.clone(), self.iq_id(), items)
    }

    /// A page of `muc`'s archive: one result per message, then the end.
    fn archive(&self, muc: &BareJid, messages: &[ArchivedMessage], count: i64, complete: bool) -> Vec<Stanza> {
        let mut out = vec![];
        for m in messages {
            match hosted_muc_out::mam_result(muc, &self.from, self.queryid.as_deref(), m) {
                Ok(s) => out.push(s),
                Err(e) => tracing::warn!(error = %e, "cannot build a MAM result"),
            }
        }
        match hosted_muc_out::mam_fin(muc, self.from.clone(), self.iq_id(), messages, count, complete) {
            Ok(s) => out.push(s),
            Err(e) => tracing::warn!(error = %e, "cannot build a MAM fin"),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::new(s).expect("a JID")
    }

    #[test]
    fn an_answer_is_written_as_the_request_kind_asks() {
        let (from, to) = (jid("juliet@x.example/phone"), jid("#r\\40hs.example@matrix.xmpp.example/jul"));
        let refused = Answer::Refused(Refusal::forbidden("no"));
        let presence = Envelope::presence(from.clone(), to.clone(), None);
        assert!(matches!(presence.stanzas(refused.clone())[..], [Stanza::Presence(_)]));
        let message = Envelope::message(from.clone(), to.clone(), Some("m1".into()));
        assert!(matches!(message.stanzas(refused)[..], [Stanza::Message(_)]));
        // A subscription answer goes between the bare addresses.
        let [Stanza::Presence(p)] = &presence.stanzas(Answer::Presence(PresenceAnswer::Unsubscribed))[..] else {
            panic!("one presence")
        };
        assert_eq!(p.to, Some(jid("juliet@x.example")));
        assert_eq!(p.type_, PresenceType::Unsubscribed);
        // An empty archive page is only the end of the query.
        let iq = Envelope::iq(from, to, "q1".into()).with_queryid(Some("qid".into()));
        let muc = BareJid::parse("#r\\40hs.example@matrix.xmpp.example").expect("a JID");
        let answer = Answer::Archive { muc, messages: vec![], count: 0, complete: true };
        assert!(matches!(iq.stanzas(answer)[..], [Stanza::Iq(_)]));
    }

    #[test]
    fn a_rooms_avatar_hash_is_in_its_disco_info_and_a_change_is_a_status_104() {
        let (from, to) = (jid("juliet@x.example/phone"), jid("#r\\40hs.example@matrix.xmpp.example"));
        let info = |avatar| {
            let iq = Envelope::iq(from.clone(), to.clone(), "d1".into());
            let [Stanza::Iq(iq)] = &iq.stanzas(Answer::RoomInfo { name: "R".into(), open: true, avatar })[..] else {
                panic!("one iq")
            };
            String::from(&xmpp_parsers::minidom::Element::from(iq.clone()))
        };
        let with = info(Some([0xab; 20]));
        assert!(with.contains("<feature var='vcard-temp'/>"), "{with}");
        assert!(with.contains("muc#roominfo_avatarhash"), "{with}");
        assert!(with.contains(&"ab".repeat(20)), "{with}");
        // No avatar: no field (XEP-0486 §4), the feature stays.
        let without = info(None);
        assert!(!without.contains("avatarhash") && without.contains("vcard-temp"), "{without}");
        let room = BareJid::parse("#r\\40hs.example@matrix.xmpp.example").expect("a JID");
        let out = crate::xmpp::out::Outgoing::RoomChanged { room, to: "juliet@x.example/phone".into() };
        let [Stanza::Message(m)] = &out.stanzas("matrix.xmpp.example").expect("built")[..] else { panic!("a message") };
        let xml = String::from(&xmpp_parsers::minidom::Element::from(m.clone()));
        assert!(xml.contains("type='groupchat'") && xml.contains("<status code='104'/>"), "{xml}");
        assert_eq!(m.from.as_ref().map(|f| f.resource().is_none()), Some(true), "from the room itself");
    }
}
