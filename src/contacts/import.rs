//! Contact files admins import at run time (`contacts import`): which format a file is, and a
//! report of what was read, entry by entry, for the answer to the admin.

use crate::contacts::{self, Contact, ContactError};
use crate::core::phone::{Region, normalize};

/// Largest contact file accepted for an import, in bytes.
pub const MAX_IMPORT_BYTES: usize = 5 * 1024 * 1024;

/// A contact file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Vcard,
    Csv,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Vcard => "vcard",
            Format::Csv => "csv",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "vcard" => Some(Format::Vcard),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// Judge by the file name, then the media type, then the content (`BEGIN:VCARD`).
    pub fn detect(name: &str, mimetype: Option<&str>, content: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".vcf") || lower.ends_with(".vcard") {
            return Format::Vcard;
        }
        if lower.ends_with(".csv") {
            return Format::Csv;
        }
        match mimetype.map(str::to_ascii_lowercase).as_deref() {
            Some("text/vcard" | "text/x-vcard" | "text/directory") => Format::Vcard,
            Some("text/csv" | "text/comma-separated-values") => Format::Csv,
            _ if content
                .trim_start_matches('\u{feff}')
                .trim_start()
                .to_ascii_uppercase()
                .starts_with("BEGIN:VCARD") =>
            {
                Format::Vcard
            }
            _ => Format::Csv,
        }
    }
}

/// What an import read.
#[derive(Debug, Default)]
pub struct Report {
    /// Contacts with at least one phone number (the others cannot match a caller).
    pub contacts: Vec<Contact>,
    /// One line per entry that was skipped or has a number that is not a valid phone number.
    pub problems: Vec<String>,
}

/// Parse a file; `Err` when the file as a whole cannot be read (no header, an unterminated card).
pub fn read(text: &str, format: Format, region: Region) -> Result<Report, ContactError> {
    let parsed = match format {
        Format::Vcard => contacts::parse_vcards(text)?,
        Format::Csv => contacts::parse_csv(text)?,
    };
    let mut report = Report::default();
    for (i, c) in parsed.into_iter().enumerate() {
        let who = c.display_name().map(|n| format!(" ({n})")).unwrap_or_default();
        let entry = i + 1;
        if c.phones.is_empty() {
            report.problems.push(format!("entry {entry}{who}: no phone number; skipped"));
            continue;
        }
        for p in &c.phones {
            if normalize(&p.number, region).is_none() {
                report.problems.push(format!(
                    "entry {entry}{who}: '{}' is not a valid phone number; it matches only as written",
                    p.number
                ));
            }
        }
        report.contacts.push(c);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_apart() {
        assert_eq!(Format::detect("a.VCF", None, ""), Format::Vcard);
        assert_eq!(Format::detect("a.csv", Some("text/vcard"), ""), Format::Csv);
        assert_eq!(Format::detect("upload", Some("text/vcard"), ""), Format::Vcard);
        assert_eq!(Format::detect("upload", None, "\u{feff}BEGIN:VCARD\r\n"), Format::Vcard);
        assert_eq!(Format::detect("upload", None, "Name,Phone\n"), Format::Csv);
    }

    #[test]
    fn the_report_names_each_problem() {
        let region = Region::parse("DE").unwrap();
        let text = "BEGIN:VCARD\nFN:Ann\nTEL:+49 30 1234567\nEND:VCARD\nBEGIN:VCARD\nFN:No Phone\nEMAIL:x@y\nEND:VCARD\n\
                    BEGIN:VCARD\nFN:Odd\nTEL:12ab\nEND:VCARD\n";
        let r = read(text, Format::Vcard, region).unwrap();
        assert_eq!(r.contacts.len(), 2);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(r.problems[0].starts_with("entry 2 (No Phone)"), "{:?}", r.problems);
        assert!(r.problems[1].contains("'12ab'"), "{:?}", r.problems);
        let csv = read("Name;Telefon\nBea;030 7654321\n", Format::Csv, region).unwrap();
        assert_eq!((csv.contacts.len(), csv.problems.len()), (1, 0));
        assert!(read("BEGIN:VCARD\nFN:x\n", Format::Vcard, region).is_err());
    }
}
