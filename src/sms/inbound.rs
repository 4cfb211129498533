//! Reading what a gateway calls the bridge with: incoming SMS (MO) and delivery reports, checked
//! and bounded. Kannel's `%b` is the raw message bytes, URL-encoded, in the charset `%C` names
//! (UTF-8 for text, UTF-16BE for UCS-2), so its query string is decoded to bytes, not to text.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::core::ids::PhoneNumber;
use crate::core::phone::{Region, normalize};

/// Longest text accepted (255 concatenated parts of 140 bytes fit).
pub const MAX_TEXT_BYTES: usize = 40 * 1024;
const MAX_FIELD_BYTES: usize = 256;
const MAX_PARAMS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("parameter {0} is too long")]
    TooLong(String),
    #[error("too many parameters")]
    TooMany,
    #[error("{0} is not a phone number")]
    BadNumber(String),
    #[error("the text is not valid {0}")]
    BadText(String),
}

/// An incoming SMS, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingSms {
    pub from: PhoneNumber,
    /// Our number it was sent to, when the gateway says and it is a valid number.
    pub to: Option<PhoneNumber>,
    pub text: String,
    /// The gateway's id of the message (repeats of it are dropped).
    pub id: String,
}

/// `%XX` and `+` (space) decoding to bytes; a stray `%` stays as it is.
pub fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// A query string as keys and raw byte values, bounded.
pub fn query_params(raw: &str) -> Result<HashMap<String, Vec<u8>>, InboundError> {
    let mut out = HashMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        if out.len() >= MAX_PARAMS {
            return Err(InboundError::TooMany);
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = String::from_utf8_lossy(&percent_decode(k.as_bytes())).into_owned();
        let value = percent_decode(v.as_bytes());
        let limit = if key == "text" { MAX_TEXT_BYTES } else { MAX_FIELD_BYTES };
        if value.len() > limit {
            return Err(InboundError::TooLong(key));
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// Message bytes as text, by Kannel's coding (`0` 7-bit/text, `1` 8-bit data, `2` UCS-2) and
/// charset.
pub fn decode_text(bytes: &[u8], coding: Option<&str>, charset: Option<&str>) -> Result<String, InboundError> {
    // NUL can be neither stored (PostgreSQL text) nor carried (XML); an SMS may well hold one.
    decode_any(bytes, coding, charset).map(|mut text| {
        text.retain(|c| c != '\0');
        text
    })
}

fn decode_any(bytes: &[u8], coding: Option<&str>, charset: Option<&str>) -> Result<String, InboundError> {
    let charset = charset.unwrap_or("UTF-8").to_ascii_uppercase();
    if coding == Some("1") && charset != "UTF-8" {
        return Ok(format!("[binary SMS, {} bytes]", bytes.len()));
    }
    // Kannel's UCS-2 is big-endian whatever the label says (the WHATWG label `UTF-16` would mean
    // little-endian); any other label is looked up in the WHATWG table, which maps ISO-8859-1 to
    // its superset Windows-1252. An unknown label is read as UTF-8, as Kannel's default.
    let encoding = match charset.as_str() {
        "UTF-16BE" | "UCS-2" | "UCS-2BE" | "UTF-16" => encoding_rs::UTF_16BE,
        label => encoding_rs::Encoding::for_label(label.as_bytes()).unwrap_or(encoding_rs::UTF_8),
    };
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| text.into_owned())
        .ok_or(InboundError::BadText(charset))
}

/// A number as a gateway writes it, in E.164: with the region's rules, or, for bare digits
/// that are an international number without `+` (as many SMSCs write them), with a `+`.
pub fn phone(s: &str, region: Region) -> Option<PhoneNumber> {
    let s = s.trim();
    let e164 = normalize(s, region).or_else(|| {
        (s.len() > 6 && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0'))
            .then(|| normalize(&format!("+{s}"), region))
            .flatten()
    })?;
    PhoneNumber::parse(&e164).ok()
}

fn text_field(params: &HashMap<String, Vec<u8>>, key: &'static str) -> Option<String> {
    params.get(key).map(|v| String::from_utf8_lossy(v).replace('\0', "").trim().to_owned()).filter(|v| !v.is_empty())
}

/// An id for a message whose gateway gave none: the same message twice gets the same id.
pub fn derived_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// Kannel's MO call (`from=%p&to=%P&text=%b&coding=%c&charset=%C&id=%I&ts=%T`).
pub fn kannel_mo(params: &HashMap<String, Vec<u8>>, region: Region) -> Result<IncomingSms, InboundError> {
    let from_raw = text_field(params, "from").ok_or(InboundError::Missing("from"))?;
    let from = phone(&from_raw, region).ok_or(InboundError::BadNumber(from_raw.clone()))?;
    let to_raw = text_field(params, "to");
    let to = to_raw.as_deref().and_then(|t| phone(t, region));
    let bytes = params.get("text").ok_or(InboundError::Missing("text"))?;
    let text = decode_text(bytes, text_field(params, "coding").as_deref(), text_field(params, "charset").as_deref())?;
    let id = match text_field(params, "id") {
        Some(id) => id,
        None => derived_id(&[
            &from_raw,
            to_raw.as_deref().unwrap_or(""),
            &text_field(params, "ts").unwrap_or_default(),
            &text,
        ]),
    };
    Ok(IncomingSms { from, to, text, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de() -> Region {
        Region::parse("DE").unwrap()
    }

    #[test]
    fn percent_decoding_keeps_bytes() {
        assert_eq!(percent_decode(b"a+b%20c%2B%zz%4"), b"a b c+%zz%4");
        assert_eq!(percent_decode(b"%00%FF"), vec![0, 255]);
    }

    #[test]
    fn nul_is_dropped_from_text_and_fields() {
        let mo = kannel_mo(&query_params("from=%2B4917612345678&text=a%00b&id=x%00y").unwrap(), de()).unwrap();
        assert_eq!((mo.text.as_str(), mo.id.as_str()), ("ab", "xy"));
        let p = query_params("from=4917612345678&text=%00a%00%00&coding=2&charset=UTF-16BE").unwrap();
        assert_eq!(kannel_mo(&p, de()).unwrap().text, "a");
    }

    #[test]
    fn kannel_text_and_ucs2_mo() {
        let p =
            query_params("from=%2B4917612345678&to=%2B4930555000&text=Hall%C3%B6+du&coding=0&charset=UTF-8&id=abc-1")
                .unwrap();
        let mo = kannel_mo(&p, de()).unwrap();
        assert_eq!(mo.from.as_str(), "+4917612345678");
        assert_eq!(mo.to.unwrap().as_str(), "+4930555000");
        assert_eq!((mo.text.as_str(), mo.id.as_str()), ("Hallö du", "abc-1"));
        // "Привет €" as UTF-16BE, as Kannel passes a UCS-2 SMS.
        let utf16: String =
            "Привет €".encode_utf16().flat_map(|u| u.to_be_bytes()).map(|b| format!("%{b:02X}")).collect();
        let p = query_params(&format!("from=4917612345678&text={utf16}&coding=2&charset=UTF-16BE")).unwrap();
        let mo = kannel_mo(&p, de()).unwrap();
        assert_eq!(mo.text, "Привет €");
        assert_eq!(mo.from.as_str(), "+4917612345678", "bare international digits get their +");
        assert_eq!(mo.to, None);
        assert_eq!(mo.id.len(), 32, "no id: one derived from the message");
    }

    #[test]
    fn single_byte_charsets_by_their_tables() {
        // 0x80 and 0x93/0x94 are the euro sign and curly quotes in Windows-1252, not C1 controls.
        assert_eq!(decode_text(b"\x80 \x93ok\x94", Some("0"), Some("WINDOWS-1252")).unwrap(), "€ “ok”");
        assert_eq!(decode_text(b"Hall\xf6", None, Some("ISO-8859-1")).unwrap(), "Hallö");
        // Another table Kannel may name (ISO-8859-5, Cyrillic).
        assert_eq!(decode_text(b"\xbf\xe0\xd8", None, Some("iso-8859-5")).unwrap(), "При");
        assert_eq!(decode_text(&[0xd8, 0x3d, 0xde, 0x00], Some("2"), Some("UCS-2")).unwrap(), "😀");
        assert_eq!(
            decode_text(&[0xd8, 0x3d], Some("2"), Some("UTF-16BE")),
            Err(InboundError::BadText("UTF-16BE".into()))
        );
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(kannel_mo(&query_params("text=x").unwrap(), de()), Err(InboundError::Missing("from")));
        assert!(matches!(kannel_mo(&query_params("from=abc&text=x").unwrap(), de()), Err(InboundError::BadNumber(_))));
        let odd = query_params("from=%2B4917612345678&text=%00&charset=UTF-16BE").unwrap();
        assert!(matches!(kannel_mo(&odd, de()), Err(InboundError::BadText(_))));
        let bad_utf8 = query_params("from=%2B4917612345678&text=%FF").unwrap();
        assert!(matches!(kannel_mo(&bad_utf8, de()), Err(InboundError::BadText(_))));
        assert!(matches!(query_params(&format!("id={}", "x".repeat(300))), Err(InboundError::TooLong(_))));
        let many: Vec<String> = (0..40).map(|i| format!("k{i}=v")).collect();
        assert_eq!(query_params(&many.join("&")), Err(InboundError::TooMany));
    }

    #[test]
    fn national_numbers_use_the_region() {
        assert_eq!(phone("0176 12345678", de()).unwrap().as_str(), "+4917612345678");
        assert_eq!(phone("+44 20 7946 0958", de()).unwrap().as_str(), "+442079460958");
        assert_eq!(phone("12", de()), None);
    }
}
