//! XEP-0055 Jabber Search on the component, with a data form: an XMPP user finds Matrix users
//! by name in the homeserver's user directory (searched by the bridge through the Matrix port)
//! and gets their XMPP addresses. The term is checked here; results are bounded by the bridge.

use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stanza::Stanza;

use crate::core::ids::BareJid;
use crate::core::refusal::RefusalKind;
use crate::core::xmpp_in::XmppIn;
use crate::xmpp::inbound::Read;
use crate::xmpp::outbound;
use crate::xmpp::reply::Envelope;
use crate::xmpp::xep::search::{Item, Reported, ResultForm, SearchForm, SearchResult};

pub use crate::xmpp::xep::search::NS;
/// The form's one field: a name, or part of a Matrix ID.
const FIELD: &str = "search";
/// Longer terms are refused (the directory matches words; nobody types more).
pub const MAX_TERM_CHARS: usize = 100;
const INSTRUCTIONS: &str = "Find Matrix users by name or Matrix ID; the results are the addresses to write to.";

/// A Matrix user found: the address to write to, their Matrix ID, their display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub jid: String,
    pub matrix_id: String,
    pub name: Option<String>,
}

/// A search request to the component: a get asks for the form, a set searches.
pub fn read(from: Jid, to: Jid, id: String, payload: &Element, is_set: bool) -> Read {
    if !is_set {
        return Read::Reply(search_form(to, from, id));
    }
    let envelope = Envelope::iq(from.clone(), to, id);
    let Ok(sender) = BareJid::parse(from.to_bare().as_str()) else { return Read::Nothing };
    match term(payload) {
        Ok(term) => Read::Bridge(XmppIn::UserSearch { sender, term }, Some(envelope)),
        Err(text) => Read::Reply(envelope.error(RefusalKind::BadRequest, &text)),
    }
}

/// The search term: the form's `search` field, or (older clients) the `nick`, `first` or
/// `last` element.
fn term(payload: &Element) -> Result<String, String> {
    let form = payload.get_child("x", xmpp_parsers::ns::DATA_FORMS).and_then(|x| DataForm::try_from(x.clone()).ok());
    let from_form = form.as_ref().and_then(|f| f.fields.iter().find(|f| f.var.as_deref() == Some(FIELD)));
    let legacy = || ["nick", "first", "last"].iter().find_map(|n| payload.get_child(n, NS).map(Element::text));
    let term = from_form.and_then(|f| f.values.first().cloned()).or_else(legacy).unwrap_or_default();
    let term = term.trim();
    if term.is_empty() {
        return Err(format!("Fill in the field '{FIELD}' with a name or Matrix ID."));
    }
    if term.chars().count() > MAX_TERM_CHARS {
        return Err(format!("A search term has at most {MAX_TERM_CHARS} characters."));
    }
    Ok(term.to_owned())
}

/// The form to fill in.
fn search_form(from: Jid, to: Jid, id: String) -> Stanza {
    let mut field = Field::new(FIELD, FieldType::TextSingle);
    field.label = Some("Name or Matrix ID".into());
    field.required = true;
    let mut form = DataForm::new(DataFormType::Form, NS, vec![field]);
    form.title = Some("Find Matrix users".into());
    form.instructions = Some(INSTRUCTIONS.into());
    outbound::iq_payload(from, to, id, SearchForm { instructions: Some(INSTRUCTIONS.into()), form })
}

/// The results: one item per Matrix user found (XEP-0055 §3).
pub fn results(from: Jid, to: Jid, id: String, found: &[Found]) -> Stanza {
    let column = |var: &str, label: &str, ty: FieldType| Field { label: Some(label.into()), ..Field::new(var, ty) };
    let value = |var: &str, v: &str| Field::new(var, FieldType::TextSingle).with_value(v);
    let items = found
        .iter()
        .map(|f| Item {
            fields: vec![
                value("jid", &f.jid),
                value("name", f.name.as_deref().unwrap_or_default()),
                value("matrix", &f.matrix_id),
            ],
        })
        .collect();
    let form = ResultForm {
        type_: "result".into(),
        form_type: Field::new("FORM_TYPE", FieldType::Hidden).with_value(NS),
        reported: Reported {
            fields: vec![
                column("jid", "Address", FieldType::JidSingle),
                column("name", "Name", FieldType::TextSingle),
                column("matrix", "Matrix ID", FieldType::TextSingle),
            ],
        },
        items,
    };
    outbound::iq_payload(from, to, id, SearchResult { form })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    #[test]
    fn the_term_comes_from_the_form_or_the_old_fields_and_is_checked() {
        let form = "<query xmlns='jabber:iq:search'><x xmlns='jabber:x:data' type='submit'>\
                    <field var='search'><value> Ann </value></field></x></query>";
        assert_eq!(term(&payload(form)).unwrap(), "Ann");
        assert_eq!(term(&payload("<query xmlns='jabber:iq:search'><nick>bo</nick></query>")).unwrap(), "bo");
        assert!(term(&payload("<query xmlns='jabber:iq:search'/>")).is_err());
        let long = format!("<query xmlns='jabber:iq:search'><nick>{}</nick></query>", "x".repeat(101));
        assert!(term(&payload(&long)).is_err());
    }

    #[test]
    fn results_are_a_reported_form() {
        let found = [Found { jid: "a\\40hs@c".into(), matrix_id: "@a:hs".into(), name: Some("Ann".into()) }];
        let Stanza::Iq(iq) = results(Jid::new("c").unwrap(), Jid::new("x@y/z").unwrap(), "i".into(), &found) else {
            panic!("an iq")
        };
        let xml = String::from(&Element::from(iq));
        for part in ["<reported>", "var='jid'", "<value>a\\40hs@c</value>", "<value>Ann</value>", "type='result'"] {
            assert!(xml.contains(part), "{part} not in {xml}");
        }
    }
}
