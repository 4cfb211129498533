//! XEP-0313 queries to a hosted room's archive: the filters of the query form (`with`,
//! `start`, `end`, `before-id`, `after-id`), `flip-page`, and RSM paging, read into the core's
//! [`ArchiveQuery`]. A filter or paging option the bridge does not apply is refused
//! (`feature-not-implemented`) instead of being ignored, as the XEP asks.

use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::date::DateTime;
use xmpp_parsers::mam;

use crate::core::refusal::RefusalKind;
use crate::core::xmpp_in::ArchiveQuery;

/// The fields the bridge applies, offered in the form a `get` asks for.
pub const FIELDS: [(&str, FieldType); 5] = [
    ("with", FieldType::JidSingle),
    ("start", FieldType::TextSingle),
    ("end", FieldType::TextSingle),
    ("before-id", FieldType::TextSingle),
    ("after-id", FieldType::TextSingle),
];

/// A query the bridge cannot answer as asked: why, and how to say it.
pub type Refused = (RefusalKind, String);

/// Read a MAM query.
pub fn read(query: &mam::Query) -> Result<ArchiveQuery, Refused> {
    if query.node.is_some() {
        return Err((RefusalKind::Unsupported, "A room's archive has no nodes.".into()));
    }
    let mut q = ArchiveQuery { flip: query.flip_page, ..ArchiveQuery::default() };
    if let Some(set) = &query.set {
        if set.index.is_some() {
            return Err((RefusalKind::Unsupported, "Paging by index is not supported; use after or before.".into()));
        }
        (q.max, q.after, q.before) = (set.max, set.after.clone(), set.before.clone());
    }
    let Some(form) = &query.form else { return Ok(q) };
    if form.form_type().is_some_and(|t| t != xmpp_parsers::ns::MAM) {
        return Err((RefusalKind::BadRequest, "The query form's FORM_TYPE must be urn:xmpp:mam:2.".into()));
    }
    for field in &form.fields {
        let Some(var) = field.var.as_deref() else { continue };
        if var == "FORM_TYPE" {
            continue;
        }
        let value = match field.values.as_slice() {
            [] => continue,
            [one] => one.trim().to_owned(),
            _ => return Err((RefusalKind::BadRequest, format!("The field {var} takes one value."))),
        };
        match var {
            "with" => q.with = Some(value),
            "start" => q.start_ms = Some(time(var, &value)?),
            "end" => q.end_ms = Some(time(var, &value)?),
            "before-id" => q.before_id = Some(value),
            "after-id" => q.after_id = Some(value),
            _ => {
                let known = FIELDS.map(|(name, _)| name).join(", ");
                return Err((RefusalKind::Unsupported, format!("The filter {var} is not supported (only {known}).")));
            }
        }
    }
    Ok(q)
}

/// An XEP-0082 date-time as ms since the epoch.
fn time(var: &str, value: &str) -> Result<i64, Refused> {
    let t: DateTime = value.parse().map_err(|e| {
        (RefusalKind::BadRequest, format!("The field {var} is not an XEP-0082 date and time ({value}): {e}"))
    })?;
    Ok(t.0.timestamp_millis())
}

/// The query form: the fields a client may fill in.
pub fn form() -> mam::Query {
    let fields = FIELDS.iter().map(|(var, ty)| Field::new(var, ty.clone())).collect();
    mam::Query {
        queryid: None,
        node: None,
        form: Some(DataForm::new(DataFormType::Form, xmpp_parsers::ns::MAM, fields)),
        set: None,
        flip_page: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::minidom::Element;

    fn query(inner: &str) -> mam::Query {
        let el: Element = format!("<query xmlns='urn:xmpp:mam:2' queryid='q'>{inner}</query>").parse().unwrap();
        mam::Query::try_from(el).unwrap()
    }

    fn form(fields: &str) -> String {
        format!(
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
             <value>urn:xmpp:mam:2</value></field>{fields}</x>"
        )
    }

    #[test]
    fn filters_and_paging_are_read() {
        let q = read(&query(&format!(
            "{}<set xmlns='http://jabber.org/protocol/rsm'><max>5</max><after>7</after></set><flip-page/>",
            form(
                "<field var='with'><value>room@c/ann</value></field>\
                 <field var='start'><value>2024-01-01T00:00:00Z</value></field>\
                 <field var='end'><value>2024-01-01T00:00:01+01:00</value></field>\
                 <field var='after-id'><value>3</value></field><field var='before-id'><value>9</value></field>"
            )
        )))
        .unwrap();
        assert_eq!(q.with.as_deref(), Some("room@c/ann"));
        assert_eq!(q.start_ms, Some(1_704_067_200_000));
        assert_eq!(q.end_ms, Some(1_704_067_200_000 - 3_600_000 + 1000));
        assert_eq!((q.after_id.as_deref(), q.before_id.as_deref()), (Some("3"), Some("9")));
        assert_eq!((q.max, q.after.as_deref(), q.flip), (Some(5), Some("7"), true));
    }

    #[test]
    fn what_is_not_applied_is_refused_not_ignored() {
        let fulltext = form("<field var='{urn:xmpp:fulltext:0}fulltext'><value>hi</value></field>");
        assert_eq!(read(&query(&fulltext)).unwrap_err().0, RefusalKind::Unsupported);
        let index = "<set xmlns='http://jabber.org/protocol/rsm'><index>3</index></set>";
        assert_eq!(read(&query(index)).unwrap_err().0, RefusalKind::Unsupported);
        let bad_time = form("<field var='start'><value>yesterday</value></field>");
        assert_eq!(read(&query(&bad_time)).unwrap_err().0, RefusalKind::BadRequest);
    }

    #[test]
    fn the_form_offers_what_is_applied() {
        let xml = String::from(&Element::from(super::form()));
        for var in ["with", "start", "end", "before-id", "after-id", "urn:xmpp:mam:2"] {
            assert!(xml.contains(var), "{var} not in {xml}");
        }
    }
}
