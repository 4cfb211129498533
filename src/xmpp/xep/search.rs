//! XEP-0055 Jabber Search payloads with data forms: the form to fill in, and the results as a
//! form with `reported` fields and one `item` per hit (xmpp-parsers' forms have neither).

use xmpp_parsers::data_forms::{DataForm, Field};
use xmpp_parsers::iq::IqResultPayload;
use xmpp_parsers::ns::DATA_FORMS;
use xso::{AsXml, FromXml};

pub const NS: &str = "jabber:iq:search";

/// The answer to a get: instructions and the form.
#[derive(FromXml, AsXml, PartialEq, Debug, Clone)]
#[xml(namespace = NS, name = "query", on_unknown_attribute = Discard, on_unknown_child = Discard)]
pub struct SearchForm {
    #[xml(extract(default, fields(text(type_ = String))))]
    pub instructions: Option<String>,
    #[xml(child)]
    pub form: DataForm,
}

/// The answer to a search.
#[derive(FromXml, AsXml, PartialEq, Debug, Clone)]
#[xml(namespace = NS, name = "query", on_unknown_attribute = Discard, on_unknown_child = Discard)]
pub struct SearchResult {
    #[xml(child)]
    pub form: ResultForm,
}

/// `<x type='result'>`: FORM_TYPE, the reported columns, the rows.
#[derive(FromXml, AsXml, PartialEq, Debug, Clone)]
#[xml(namespace = DATA_FORMS, name = "x", on_unknown_attribute = Discard, on_unknown_child = Discard)]
pub struct ResultForm {
    #[xml(attribute = "type")]
    pub type_: String,
    #[xml(child)]
    pub form_type: Field,
    #[xml(child)]
    pub reported: Reported,
    #[xml(child(n = ..))]
    pub items: Vec<Item>,
}

#[derive(FromXml, AsXml, PartialEq, Debug, Clone)]
#[xml(namespace = DATA_FORMS, name = "reported")]
pub struct Reported {
    #[xml(child(n = ..))]
    pub fields: Vec<Field>,
}

#[derive(FromXml, AsXml, PartialEq, Debug, Clone)]
#[xml(namespace = DATA_FORMS, name = "item")]
pub struct Item {
    #[xml(child(n = ..))]
    pub fields: Vec<Field>,
}

impl IqResultPayload for SearchForm {}
impl IqResultPayload for SearchResult {}
