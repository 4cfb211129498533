//! The contact store's parsing and lookup: vCard 3.0 / 4.0 and CSV files into [`Contact`]s, and
//! an in-memory [`ContactIndex`] that finds a caller by number.
//!
//! Numbers are compared in E.164 form (`+493012345`), normalised with the `phonenumber` crate and
//! a default region for numbers written without a country code. Numbers that do not normalise
//! (short codes, test numbers) are still found by their digits.
//!
//! Files: [`vcard`] and [`csv`] parse the two formats, [`import`] reads the files admins upload.

use std::collections::HashMap;

mod csv;
pub mod import;
mod vcard;

pub use csv::parse_csv;
use vcard::escape_text;
pub use vcard::parse_vcards;

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
        let name = self.display_name().unwrap_or("");
        let mut lines = vec!["BEGIN:VCARD".to_owned(), "VERSION:3.0".to_owned()];
        lines.push(format!("FN:{}", escape_text(name)));
        lines.push(format!("N:{};;;;", escape_text(name)));
        if let Some(org) = &self.company {
            lines.push(format!("ORG:{}", escape_text(org)));
        }
        for e in &self.emails {
            lines.push(format!("EMAIL;TYPE=INTERNET:{}", escape_text(e)));
        }
        for p in &self.phones {
            let kinds = if p.kinds.is_empty() { "VOICE".to_owned() } else { p.kinds.join(",").to_uppercase() };
            lines.push(format!("TEL;TYPE={kinds}:{}", escape_text(p.e164.as_deref().unwrap_or(&p.number))));
        }
        lines.push("END:VCARD".to_owned());
        lines.iter().map(|l| vcard::fold(l) + "\r\n").collect()
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

fn non_empty(s: String) -> Option<String> {
    if s.trim().is_empty() { None } else { Some(s) }
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
    fn generated_cards_are_folded() {
        let name = format!("Dr. {} Ünïcödé-Lovelace", "Augusta Ada King, Countess of ".repeat(3));
        let contact = Contact { name: Some(name.clone()), ..Contact::default() };
        let card = contact.to_vcard();
        for line in card.split("\r\n") {
            assert!(line.len() <= 75, "longer than 75 octets: {line:?}");
        }
        assert!(card.contains("\r\n "), "a folded line");
        assert_eq!(crate::contacts::parse_vcards(&card).expect("parses")[0].name.as_deref(), Some(name.as_str()));
    }
}
