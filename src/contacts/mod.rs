//! The contact store's parsing and lookup: vCard 3.0 / 4.0 and CSV files into [`Contact`]s, and
//! an in-memory [`ContactIndex`] that finds a caller by number.
//!
//! Numbers are compared in E.164 form (`+493012345`), normalised with the `phonenumber` crate and
//! a default region for numbers written without a country code. Numbers that do not normalise
//! (short codes, test numbers) are still found by their digits.
//!
//! vCard: RFC 2426 (3.0) and RFC 6350 (4.0). Lines are unfolded, `TYPE` parameters are read in
//! every spelling seen in exports (`TYPE=WORK,VOICE`, `type=WORK;type=VOICE`, bare `WORK;VOICE`,
//! quoted `TYPE="voice,work"`), `tel:` URIs lose their scheme and `;ext=`. The card's own text is
//! kept, so it can be attached to a notice unchanged.

use std::collections::HashMap;

pub mod import;

use crate::core::phone::{Region, normalize, number_key};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("vCard starting on line {line} has no END:VCARD")]
    UnterminatedCard { line: usize },
    #[error("CSV: {0}")]
    Csv(String),
    #[error("CSV header has no name, company, e-mail or phone column")]
    NoUsableColumns,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// As written in the source.
    pub number: String,
    /// Lower-case types (`work`, `cell`, `voice`, `fax`, …).
    pub kinds: Vec<String>,
    /// Normalised form, when it normalises.
    pub e164: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// The card's UID, when it has one.
    pub uid: Option<String>,
    pub name: Option<String>,
    pub company: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<Phone>,
    /// The vCard text as imported (CRLF line ends), or `None` for contacts from CSV.
    pub vcard: Option<String>,
}

impl Contact {
    /// A display name: the name, else the company.
    pub fn display_name(&self) -> Option<&str> {
        self.name.as_deref().or(self.company.as_deref())
    }

    /// The card to attach: the imported text, or a vCard 3.0 built from the fields.
    pub fn to_vcard(&self) -> String {
        if let Some(card) = &self.vcard {
            return card.clone();
        }
        let mut out = String::from("BEGIN:VCARD\r\nVERSION:3.0\r\n");
        let name = self.display_name().unwrap_or("");
        out.push_str(&format!("FN:{}\r\n", escape_text(name)));
        out.push_str(&format!("N:{};;;;\r\n", escape_text(name)));
        if let Some(org) = &self.company {
            out.push_str(&format!("ORG:{}\r\n", escape_text(org)));
        }
        for e in &self.emails {
            out.push_str(&format!("EMAIL;TYPE=INTERNET:{}\r\n", escape_text(e)));
        }
        for p in &self.phones {
            let kinds = if p.kinds.is_empty() { "VOICE".to_owned() } else { p.kinds.join(",").to_uppercase() };
            out.push_str(&format!("TEL;TYPE={kinds}:{}\r\n", escape_text(p.e164.as_deref().unwrap_or(&p.number))));
        }
        out.push_str("END:VCARD\r\n");
        out
    }

    fn normalize_phones(&mut self, region: Region) {
        for p in &mut self.phones {
            p.e164 = normalize(&p.number, region);
        }
    }
}

/// Contacts found by number.
#[derive(Debug, Clone, Default)]
pub struct ContactIndex {
    contacts: Vec<Contact>,
    by_e164: HashMap<String, usize>,
    by_digits: HashMap<String, usize>,
    region: Option<Region>,
}

impl ContactIndex {
    /// Index contacts; when two share a number, the first one imported wins.
    pub fn new(contacts: Vec<Contact>, region: Region) -> Self {
        let mut index = Self { region: Some(region), ..Self::default() };
        for c in contacts {
            index.insert(c);
        }
        index
    }

    pub fn insert(&mut self, mut contact: Contact) {
        if let Some(region) = self.region {
            contact.normalize_phones(region);
        }
        let i = self.contacts.len();
        for p in &contact.phones {
            if let Some(e) = &p.e164 {
                self.by_e164.entry(e.clone()).or_insert(i);
            }
            let digits = number_key(&p.number);
            if !digits.is_empty() {
                self.by_digits.entry(digits).or_insert(i);
            }
        }
        self.contacts.push(contact);
    }

    /// The contact with this number, in any format the region understands.
    pub fn lookup(&self, number: &str) -> Option<&Contact> {
        let by_e164 = self.region.and_then(|r| normalize(number, r)).and_then(|e| self.by_e164.get(&e));
        by_e164.or_else(|| self.by_digits.get(&number_key(number))).map(|&i| &self.contacts[i])
    }

    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }

    pub fn contacts(&self) -> &[Contact] {
        &self.contacts
    }
}

/// Parse every card in a `.vcf` text. Properties the bridge does not use are kept only in the
/// card's text.
pub fn parse_vcards(text: &str) -> Result<Vec<Contact>, ContactError> {
    let mut cards = Vec::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    for (n, line) in text.lines().enumerate() {
        let upper = line.trim().to_ascii_uppercase();
        match &mut current {
            None if upper == "BEGIN:VCARD" => current = Some((n + 1, vec![line])),
            None => {} // blank lines or junk between cards
            Some((_, lines)) => {
                lines.push(line);
                if upper == "END:VCARD"
                    && let Some((_, lines)) = current.take()
                {
                    cards.push(parse_card(&lines));
                }
            }
        }
    }
    if let Some((line, _)) = current {
        return Err(ContactError::UnterminatedCard { line });
    }
    Ok(cards)
}

/// One property line after unfolding.
struct Property {
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

fn parse_card(raw_lines: &[&str]) -> Contact {
    let raw: String = raw_lines.iter().map(|l| format!("{}\r\n", l.trim_end_matches('\r'))).collect();
    let mut contact = Contact { vcard: Some(raw), ..Contact::default() };
    let mut structured_name = None;
    for prop in unfold(raw_lines).iter().filter_map(|l| parse_property(l)) {
        match prop.name.as_str() {
            "FN" => contact.name = non_empty(unescape_text(&prop.value)),
            "N" => {
                let parts = split_unescaped(&prop.value, ';');
                let family = parts.first().map(|s| unescape_text(s)).unwrap_or_default();
                let given = parts.get(1).map(|s| unescape_text(s)).unwrap_or_default();
                structured_name = non_empty(format!("{given} {family}").trim().to_owned());
            }
            "ORG" => {
                contact.company = split_unescaped(&prop.value, ';').first().and_then(|s| non_empty(unescape_text(s)))
            }
            "EMAIL" => {
                if let Some(e) = non_empty(unescape_text(&prop.value)) {
                    contact.emails.push(e);
                }
            }
            "TEL" => {
                let mut number = prop.value.trim();
                // `get`, not `[..4]`: the value is imported text, and byte 4 may fall inside a
                // multi-byte character (`TEL:ab€1` panicked here).
                if number.get(..4).is_some_and(|scheme| scheme.eq_ignore_ascii_case("tel:")) {
                    number = number.get(4..).unwrap_or("");
                }
                // `;ext=` in a tel: URI and `;phone-context=` are not part of the dialable number.
                let number = number.split(';').next().unwrap_or("").trim();
                if !number.is_empty() {
                    contact.phones.push(Phone { number: unescape_text(number), kinds: tel_kinds(&prop), e164: None });
                }
            }
            "UID" => contact.uid = non_empty(prop.value.trim().to_owned()),
            _ => {}
        }
    }
    if contact.name.is_none() {
        contact.name = structured_name;
    }
    contact
}

/// Join continuation lines (starting with a space or tab) to the line before.
fn unfold(lines: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        let line = line.trim_end_matches('\r');
        match (line.strip_prefix([' ', '\t']), out.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ => out.push(line.to_owned()),
        }
    }
    out
}

fn parse_property(line: &str) -> Option<Property> {
    // The value starts at the first colon outside a quoted parameter value.
    let mut in_quotes = false;
    let colon = line.char_indices().find_map(|(i, c)| match c {
        '"' => {
            in_quotes = !in_quotes;
            None
        }
        ':' if !in_quotes => Some(i),
        _ => None,
    })?;
    let (head, value) = (&line[..colon], &line[colon + 1..]);
    let mut parts = split_params(head).into_iter();
    let name = parts.next()?;
    // Drop a group prefix such as `item1.` (Apple exports).
    let name = name.rsplit('.').next().unwrap_or(&name).to_ascii_uppercase();
    let params = parts
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_uppercase(), v.trim().trim_matches('"').to_owned()),
            // vCard 2.1 style bare type: `TEL;WORK;VOICE:`.
            None => ("TYPE".to_owned(), p.trim().to_owned()),
        })
        .collect();
    Some(Property { name, params, value: value.to_owned() })
}

fn split_params(head: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut in_quotes = false;
    for c in head.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
            ';' if !in_quotes => out.push(String::new()),
            _ => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

fn tel_kinds(prop: &Property) -> Vec<String> {
    let mut kinds: Vec<String> = prop
        .params
        .iter()
        .filter(|(k, _)| k == "TYPE")
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty() && t != "pref")
        .collect();
    kinds.dedup();
    kinds
}

/// Split on `sep` where it is not escaped with a backslash.
fn split_unescaped(value: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut escaped = false;
    for c in value.chars() {
        let last = out.last_mut();
        match (c, escaped, last) {
            (c, false, _) if c == sep => out.push(String::new()),
            ('\\', false, Some(last)) => {
                last.push('\\');
                escaped = true;
            }
            (c, _, Some(last)) => {
                last.push(c);
                escaped = false;
            }
            (_, _, None) => {}
        }
    }
    out
}

fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out.trim().to_owned()
}

fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn non_empty(s: String) -> Option<String> {
    if s.trim().is_empty() { None } else { Some(s) }
}

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
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;

    const VCARD3: &str = include_str!("../../tests/fixtures/contacts/vcard3.vcf");
    const VCARD4: &str = include_str!("../../tests/fixtures/contacts/vcard4.vcf");
    const CSV_EN: &str = include_str!("../../tests/fixtures/contacts/contacts.csv");
    const CSV_DE: &str = include_str!("../../tests/fixtures/contacts/contacts_de.csv");

    fn de() -> Region {
        Region::parse("de").expect("DE is a region")
    }

    #[test]
    fn multi_byte_characters_anywhere_in_a_tel_value_do_not_panic() {
        // Byte 4 inside a multi-byte character ('€' is 3 bytes, '😀' 4), and short values.
        for value in ["ab€123", "a€", "€", "😀1", "tél:+49301234567", "TEL:", "te", "TEL:€", "ü", "tel:ü;ext=1"]
        {
            let card = format!("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:X\r\nTEL:{value}\r\nEND:VCARD\r\n");
            let parsed = parse_vcards(&card).expect("a card with a strange number still parses");
            assert_eq!(parsed.len(), 1, "{value}");
        }
        let card = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Y\r\nTEL;VALUE=uri:tel:+49-30-1234567\r\nEND:VCARD\r\n";
        assert_eq!(parse_vcards(card).expect("parses")[0].phones[0].number, "+49-30-1234567");
    }

    #[test]
    fn vcard3_export() {
        let cards = parse_vcards(VCARD3).expect("parses");
        assert_eq!(cards.len(), 3);
        let ada = &cards[0];
        assert_eq!(ada.name.as_deref(), Some("Dr. Ada Lovelace"));
        assert_eq!(ada.company.as_deref(), Some("Analytical Engines Ltd."));
        assert_eq!(ada.emails, ["ada@analytical.example"]);
        assert_eq!(ada.uid.as_deref(), Some("7F0E3C6A-1E55-4C6B-9D2E-ADA000000001"));
        let phones: Vec<_> = ada.phones.iter().map(|p| (p.number.as_str(), p.kinds.clone())).collect();
        assert_eq!(
            phones,
            [
                ("+49 30 1234567", vec!["work".to_owned(), "voice".to_owned()]),
                ("0171 2345678", vec!["cell".to_owned()])
            ]
        );
        let raw = ada.vcard.as_deref().expect("raw card kept");
        assert!(raw.starts_with("BEGIN:VCARD\r\nVERSION:3.0\r\n") && raw.ends_with("END:VCARD\r\n"));
        assert!(raw.contains(" gh to be folded"), "the card is kept as written, folded");

        let juergen = &cards[1];
        assert_eq!(juergen.name.as_deref(), Some("Jürgen Müller"));
        assert_eq!(juergen.company.as_deref(), Some("Müller & Söhne GmbH"));
        assert_eq!(juergen.phones[0].kinds, ["home", "voice"]);
        assert_eq!(juergen.phones[1].kinds, ["fax"]);

        // No FN: the structured name stands in; bare 2.1-style types are read too.
        let grace = &cards[2];
        assert_eq!(grace.name.as_deref(), Some("Grace"));
        assert_eq!(grace.phones[0].kinds, ["work", "voice"]);
    }

    #[test]
    fn vcard4_export() {
        let cards = parse_vcards(VCARD4).expect("parses");
        assert_eq!(cards.len(), 2);
        let alan = &cards[0];
        assert_eq!(alan.name.as_deref(), Some("Alan Turing"));
        assert_eq!(alan.company.as_deref(), Some("Bletchley Park"));
        assert_eq!(alan.emails, ["alan@bletchley.example", "alan.turing@home.example"]);
        let phones: Vec<_> = alan.phones.iter().map(|p| (p.number.as_str(), p.kinds.join(","))).collect();
        assert_eq!(
            phones,
            [
                ("+44-20-7946-0958", "voice,work".into()),
                ("+44-7700-900123", "cell".into()),
                ("020 7946 0001", "home".into())
            ]
        );
        assert_eq!(alan.uid.as_deref(), Some("urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1"));
        let kanzlei = &cards[1];
        assert_eq!(kanzlei.name.as_deref(), Some("Kanzlei Schmidt; Partner"), "escaped semicolon");
        assert_eq!(kanzlei.phones[0].number, "+49 40 333 44 55", "folded value joined");
    }

    #[test]
    fn unterminated_card_is_an_error() {
        assert_eq!(parse_vcards("junk\r\nBEGIN:VCARD\r\nFN:x\r\n"), Err(ContactError::UnterminatedCard { line: 2 }));
        assert_eq!(parse_vcards(""), Ok(vec![]));
    }

    #[test]
    fn csv_with_quotes_and_line_breaks() {
        let contacts = parse_csv(CSV_EN).expect("parses");
        assert_eq!(contacts.len(), 3);
        assert_eq!(contacts[0].name.as_deref(), Some("Hopper, Grace"));
        assert_eq!(contacts[0].company.as_deref(), Some("US Navy"));
        assert_eq!(contacts[0].emails, ["grace@navy.example"]);
        assert_eq!(contacts[0].phones[0].kinds, ["work"]);
        assert_eq!(contacts[1].phones[0].kinds, ["cell"]);
        assert_eq!(contacts[2].company.as_deref(), Some("Universität Göttingen"));
        assert_eq!(contacts[2].phones[0].number, "0551 39 0");
        assert!(contacts.iter().all(|c| c.vcard.is_none()));
    }

    #[test]
    fn csv_with_semicolons_and_split_names() {
        let contacts = parse_csv(CSV_DE).expect("parses");
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[0].name.as_deref(), Some("Lise Meitner"));
        assert_eq!(contacts[0].company.as_deref(), Some("Kaiser-Wilhelm-Institut"));
        assert_eq!(contacts[0].phones.len(), 2);
        assert_eq!(contacts[1].name.as_deref(), Some("Otto Hahn"));
        assert_eq!(contacts[1].company, None);
        assert_eq!(parse_csv("foo,bar\n1,2\n"), Err(ContactError::NoUsableColumns));
    }

    #[test]
    fn lookup_by_any_format() {
        let mut all = parse_vcards(VCARD3).expect("parses");
        all.extend(parse_vcards(VCARD4).expect("parses"));
        all.extend(parse_csv(CSV_DE).expect("parses"));
        let index = ContactIndex::new(all, de());
        assert_eq!(index.len(), 7);
        let name = |n: &str| index.lookup(n).and_then(|c| c.name.clone());
        assert_eq!(name("+49301234567").as_deref(), Some("Dr. Ada Lovelace"));
        assert_eq!(name("0049 30 123 45 67").as_deref(), Some("Dr. Ada Lovelace"));
        assert_eq!(name("+491712345678").as_deref(), Some("Dr. Ada Lovelace"));
        assert_eq!(name("+44 20 7946 0958").as_deref(), Some("Alan Turing"));
        assert_eq!(name("089 987654").as_deref(), Some("Jürgen Müller"));
        assert_eq!(name("+49 30 84130").as_deref(), Some("Lise Meitner"));
        // Written in international form, a number matches whether or not it validates.
        assert_eq!(name("+1 202 555 0143").as_deref(), Some("Grace"));
        assert_eq!(name("+4930999999"), None);
        // A short code never normalises; its digits still find it.
        let mut index = ContactIndex::new(vec![], de());
        let phone = Phone { number: "11 8 33".into(), kinds: vec![], e164: None };
        index.insert(Contact { name: Some("Directory".into()), phones: vec![phone], ..Contact::default() });
        assert_eq!(index.lookup("11833").and_then(|c| c.name.as_deref()), Some("Directory"));
        assert_eq!(name(""), None);
    }

    #[test]
    fn a_card_for_a_csv_contact() {
        let contacts = parse_csv(CSV_EN).expect("parses");
        let index = ContactIndex::new(contacts, de());
        let grace = index.lookup("+1 202 555 0199").expect("found by digits");
        let card = grace.to_vcard();
        assert!(card.starts_with("BEGIN:VCARD\r\nVERSION:3.0\r\n"));
        assert!(card.contains("FN:Hopper\\, Grace\r\n"));
        assert!(card.contains("ORG:US Navy\r\n"));
        assert!(card.contains("TEL;TYPE=WORK:+12025550199\r\n"), "{card}");
        let again = parse_vcards(&card).expect("our own card parses");
        assert_eq!(again[0].name.as_deref(), Some("Hopper, Grace"));
        // An imported card is attached as it was.
        let ada = parse_vcards(VCARD3).expect("parses").remove(0);
        assert_eq!(Some(ada.to_vcard()), ada.vcard);
    }

    #[test]
    fn property_parsing_edge_cases() {
        let p = parse_property(r#"TEL;TYPE="work,voice";X-NOTE="a:b":tel:+1"#).expect("parses");
        assert_eq!(p.name, "TEL");
        assert_eq!(p.value, "tel:+1");
        assert_eq!(p.params[1], ("X-NOTE".to_owned(), "a:b".to_owned()));
        assert!(parse_property("no colon here").is_none());
        assert_eq!(unescape_text(r"a\,b\;c\nd\\"), "a,b;c\nd\\");
        assert_eq!(split_unescaped(r"a\;b;c", ';'), [r"a\;b", "c"]);
    }
}
