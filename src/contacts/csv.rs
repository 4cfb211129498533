//! CSV exports of address books (English and German headers, `,` or `;` delimited).

use super::{Contact, ContactError, Phone, non_empty};

/// What a CSV column holds, judged by its header.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Name,
    Given,
    Family,
    Company,
    Email,
    Phone(String),
    Ignored,
}

fn classify(header: &str) -> Column {
    let h = header.trim().to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| h.contains(w));
    if has(&["mail"]) {
        Column::Email
    } else if has(&["mobil", "cell", "handy"]) {
        Column::Phone("cell".into())
    } else if has(&["fax"]) {
        Column::Phone("fax".into())
    } else if has(&["phone", "telefon", "tel.", "number", "nummer"]) || h == "tel" {
        let kind = if has(&["home", "privat"]) {
            "home"
        } else if has(&["business", "work", "geschäft", "büro", "office"]) {
            "work"
        } else {
            "voice"
        };
        Column::Phone(kind.into())
    } else if has(&["first", "given", "vorname"]) {
        Column::Given
    } else if has(&["last", "family", "surname", "nachname"]) {
        Column::Family
    } else if has(&["company", "organi", "firma", "org", "unternehmen"]) {
        Column::Company
    } else if has(&["name", "fn"]) {
        Column::Name
    } else {
        Column::Ignored
    }
}

/// Parse a CSV export with a header row. The delimiter (`,` or `;`, as spreadsheet programs in
/// German locales write) is taken from the header line; quoted fields may hold delimiters,
/// doubled quotes and line breaks.
pub fn parse_csv(text: &str) -> Result<Vec<Contact>, ContactError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header_line = text.lines().next().unwrap_or("");
    let delimiter = if header_line.matches(';').count() > header_line.matches(',').count() { b';' } else { b',' };
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let columns: Vec<Column> =
        reader.headers().map_err(|e| ContactError::Csv(e.to_string()))?.iter().map(classify).collect();
    if columns.iter().all(|c| *c == Column::Ignored) {
        return Err(ContactError::NoUsableColumns);
    }
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ContactError::Csv(e.to_string()))?;
        let mut contact = Contact::default();
        let (mut given, mut family) = (String::new(), String::new());
        for (column, field) in columns.iter().zip(record.iter()) {
            if field.is_empty() {
                continue;
            }
            match column {
                Column::Name => contact.name = Some(field.to_owned()),
                Column::Given => given = field.to_owned(),
                Column::Family => family = field.to_owned(),
                Column::Company => contact.company = Some(field.to_owned()),
                Column::Email => contact.emails.push(field.to_owned()),
                Column::Phone(kind) => {
                    contact.phones.push(Phone { number: field.to_owned(), kinds: vec![kind.clone()], e164: None })
                }
                Column::Ignored => {}
            }
        }
        if contact.name.is_none() {
            contact.name = non_empty(format!("{given} {family}").trim().to_owned());
        }
        if contact.name.is_some() || contact.company.is_some() || !contact.phones.is_empty() {
            out.push(contact);
        }
    }
    Ok(out)
}
