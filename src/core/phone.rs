//! Phone numbers as people write them: normalising to E.164 (with a default [`Region`] for
//! numbers written without a country code) and the digits-only key numbers are compared by when
//! they do not normalise (short codes, test numbers). The checked E.164 type is
//! [`PhoneNumber`](super::ids::PhoneNumber).

use std::str::FromStr;

use phonenumber::country;

/// A region code that is not an ISO 3166 country.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region code {0:?} (expected an ISO 3166 code such as DE)")]
pub struct BadRegion(pub String);

/// The region assumed for numbers written without a country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(country::Id);

impl Region {
    pub fn parse(code: &str) -> Result<Self, BadRegion> {
        country::Id::from_str(&code.trim().to_ascii_uppercase()).map(Region).map_err(|_| BadRegion(code.to_owned()))
    }
}

/// A number in E.164 form, or `None` when it is not a valid phone number in `region`'s view.
pub fn normalize(number: &str, region: Region) -> Option<String> {
    let trimmed = number.trim();
    if trimmed.is_empty() {
        return None;
    }
    let parsed = phonenumber::parse(Some(region.0), trimmed).ok()?;
    parsed.is_valid().then(|| parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// The digits of an E.164 number (country code included): at most 15; fewer than 7 is no
/// dialable number anywhere.
pub const E164_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

/// A number in E.164 form recognised by its shape, not by the numbering plan (the suite links
/// `+49 123 456 - 12` though the area code is not assigned): an international `+CC…` number, or
/// a national one (read in `region`), written with digits and the usual separators (space,
/// `-`, `/`, parentheses; a German-style `(0)` trunk prefix after the country code is dropped),
/// whose E.164 form has [`E164_DIGITS`] digits.
pub fn by_shape(number: &str, region: Region) -> Option<String> {
    let n = number.trim();
    let usual = |c: char| c.is_ascii_digit() || matches!(c, ' ' | '-' | '/' | '(' | ')');
    if let Some(rest) = n.strip_prefix('+') {
        if !rest.chars().all(usual) {
            return None;
        }
        let digits: String = rest.replacen("(0)", "", 1).chars().filter(char::is_ascii_digit).collect();
        let ok = E164_DIGITS.contains(&digits.len()) && !digits.starts_with('0');
        return ok.then(|| format!("+{digits}"));
    }
    if n.is_empty() || !n.chars().all(usual) {
        return None;
    }
    let parsed = phonenumber::parse(Some(region.0), n).ok()?;
    let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
    E164_DIGITS.contains(&e164.len().saturating_sub(1)).then_some(e164)
}

/// A number reduced to its digits, keeping a leading `+`, so `+49 30 1234-5` matches
/// `+493012345`. Not a normalisation to E.164 (that needs a region: see [`normalize`]).
pub fn number_key(number: &str) -> String {
    let trimmed = number.trim();
    let mut key: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if trimmed.starts_with('+') {
        key.insert(0, '+');
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de() -> Region {
        Region::parse("de").expect("DE is a region")
    }

    #[test]
    fn numbers_by_shape() {
        // The suite's own examples: the area code 123 is not assigned, the shape is enough.
        assert_eq!(by_shape("+4912345612", de()).as_deref(), Some("+4912345612"));
        assert_eq!(by_shape("+49 123 456 - 12", de()).as_deref(), Some("+4912345612"));
        assert_eq!(by_shape("+49 (0)30 123/456-7", de()).as_deref(), Some("+49301234567"));
        assert_eq!(by_shape("+1 (212) 555-0100", de()).as_deref(), Some("+12125550100"));
        assert_eq!(by_shape("030 1234567", de()).as_deref(), Some("+49301234567"));
        // Too short, too long (E.164: at most 15 digits), no country code, other characters.
        for n in ["+49 123", "+49 1234 5678 9012 34", "+0 30 1234567", "+49.30.1234567", "+49 30 12a4567", "", "+"] {
            assert_eq!(by_shape(n, de()), None, "{n}");
        }
    }

    #[test]
    fn normalisation_to_e164() {
        assert_eq!(normalize("030 1234567", de()).as_deref(), Some("+49301234567"));
        assert_eq!(normalize("+49 (30) 1234-567", de()).as_deref(), Some("+49301234567"));
        assert_eq!(normalize("0049 30 1234567", de()).as_deref(), Some("+49301234567"));
        assert_eq!(normalize("0171 2345678", de()).as_deref(), Some("+491712345678"));
        assert_eq!(normalize("+44 20 7946 0958", de()).as_deref(), Some("+442079460958"));
        assert_eq!(normalize("201", de()), None, "an extension is not a phone number");
        assert_eq!(normalize("", de()), None);
        assert_eq!(normalize("anonymous", de()), None);
        assert!(Region::parse("XX").is_err());
    }
}
