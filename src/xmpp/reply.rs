//! How to answer a stanza: its addresses and id, kept by the adapter while the bridge decides
//! (the bridge gets an [`Envelope`] next to the `XmppIn` and asks it for the answer it chose,
//! in neutral terms: a refusal and its text, a result, a vCard, ...). Building the stanzas
//! (error conditions, disco, forms) stays here.

use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::Type as PresenceType;
use xmpp_parsers::stanza::Stanza;

use crate::core::action::Refusal;
use crate::core::ids::BareJid;
use crate::core::room::Role;
use crate::store::ArchivedMessage;
use crate::xmpp::{adhoc, hosted_muc_out, outbound};

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
}

/// An answer to a presence that is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceAnswer {
    Unsubscribed,
    Unavailable,
}

impl Envelope {
    pub fn message(from: Jid, to: Jid, id: Option<String>) -> Self {
        Self { kind: Kind::Message, from, to, id, queryid: None }
    }

    pub fn presence(from: Jid, to: Jid, id: Option<String>) -> Self {
        Self { kind: Kind::Presence, from, to, id, queryid: None }
    }

    pub fn iq(from: Jid, to: Jid, id: String) -> Self {
        Self { kind: Kind::Iq, from, to, id: Some(id), queryid: None }
    }

    pub fn with_queryid(mut self, queryid: Option<String>) -> Self {
        self.queryid = queryid;
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
    pub fn error(&self, refusal: Refusal, text: &str) -> Stanza {
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

    pub fn vcard(&self, name: Option<&str>, photo: Option<(Vec<u8>, String)>) -> Stanza {
        outbound::vcard(self.to.clone(), self.from.clone(), self.iq_id(), name, photo)
    }

    /// The ad-hoc commands the sender may run.
    pub fn command_items(&self, admin: bool) -> Stanza {
        adhoc::items(self.to.clone(), self.from.clone(), self.iq_id(), admin)
    }

    pub fn room_info(&self, name: &str, open: bool) -> Stanza {
        hosted_muc_out::room_disco_info(self.to.clone(), self.from.clone(), self.iq_id(), name, open)
    }

    pub fn room_config(&self, name: &str, description: &str) -> Stanza {
        hosted_muc_out::config_form(self.to.clone(), self.from.clone(), self.iq_id(), name, description)
    }

    pub fn admin_list(&self, items: &[(String, String, Role)]) -> Stanza {
        hosted_muc_out::admin_list(self.to.clone(), self.from.clone(), self.iq_id(), items)
    }

    /// A page of `muc`'s archive: one result per message, then the end.
    pub fn archive(&self, muc: &BareJid, messages: &[ArchivedMessage], count: i64, complete: bool) -> Vec<Stanza> {
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
