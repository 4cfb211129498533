//! How many SMS a text takes, and how to cut it (3GPP TS 23.038 alphabets, TS 23.040
//! concatenation).
//!
//! A text that fits the GSM 7-bit default alphabet (plus its extension table, whose characters
//! take two septets) travels as GSM-7: 160 septets in one SMS, 153 per part when concatenated
//! (the UDH takes the rest). Anything else travels as UCS-2: 70 UTF-16 units, 67 per part. A
//! part never ends inside an escape sequence or a surrogate pair.

/// The alphabet a text is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gsm7,
    Ucs2,
}

/// GSM 03.38 default alphabet (one septet each), without the escape character.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table (escape + one septet each).
const GSM_EXTENDED: &str = "\u{c}^{}\\[~]|€";

/// Septets a character takes in GSM-7, or `None` if it is not in the alphabet.
fn gsm_septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

pub fn coding_of(text: &str) -> Coding {
    if text.chars().all(|c| gsm_septets(c).is_some()) { Coding::Gsm7 } else { Coding::Ucs2 }
}

/// Cost of one character in the units of its coding (septets or UTF-16 units).
fn units(c: char, coding: Coding) -> usize {
    match coding {
        Coding::Gsm7 => gsm_septets(c).unwrap_or(2),
        Coding::Ucs2 => c.len_utf16(),
    }
}

/// Capacity of one SMS: (alone, per part when concatenated).
fn capacity(coding: Coding) -> (usize, usize) {
    match coding {
        Coding::Gsm7 => (160, 153),
        Coding::Ucs2 => (70, 67),
    }
}

/// A text measured for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segments {
    pub coding: Coding,
    /// The parts, in order. One part for a text that fits a single SMS.
    pub parts: Vec<String>,
}

impl Segments {
    pub fn count(&self) -> usize {
        self.parts.len()
    }
}

/// Cut `text` into SMS. `concatenated`: the parts are joined again on the phone (UDH, so 153/67
/// per part); otherwise each part is an SMS of its own (160/70). An empty text is one SMS.
pub fn split(text: &str, concatenated: bool) -> Segments {
    let coding = coding_of(text);
    let (single, multi) = capacity(coding);
    let total: usize = text.chars().map(|c| units(c, coding)).sum();
    if total <= single {
        return Segments { coding, parts: vec![text.to_owned()] };
    }
    let per_part = if concatenated { multi } else { single };
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut used = 0;
    for c in text.chars() {
        let u = units(c, coding);
        if used + u > per_part {
            parts.push(std::mem::take(&mut current));
            used = 0;
        }
        current.push(c);
        used += u;
    }
    if !current.is_empty() {
        parts.push(current);
    }
    Segments { coding, parts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_texts_fit_160_and_153_per_part() {
        assert_eq!(split(&"a".repeat(160), true).count(), 1);
        let s = split(&"a".repeat(161), true);
        assert_eq!((s.coding, s.count()), (Coding::Gsm7, 2));
        assert_eq!(s.parts[0].len(), 153);
        assert_eq!(split(&"a".repeat(306), true).count(), 2);
        assert_eq!(split(&"a".repeat(307), true).count(), 3);
        // Without concatenation every part is a full SMS.
        assert_eq!(split(&"a".repeat(320), false).count(), 2);
        assert_eq!(split("", true).count(), 1);
    }

    #[test]
    fn extension_characters_take_two_septets_and_are_not_cut() {
        assert_eq!(coding_of("Preis: 5€ [netto] ^_^"), Coding::Gsm7);
        assert_eq!(split(&"€".repeat(80), true).count(), 1);
        let s = split(&"€".repeat(81), true);
        assert_eq!(s.count(), 2);
        assert_eq!(s.parts[0].chars().count(), 76); // 152 septets: the 77th would straddle the cut
        assert_eq!(s.parts.concat(), "€".repeat(81));
    }

    #[test]
    fn other_texts_go_as_ucs2_and_keep_surrogate_pairs() {
        assert_eq!(coding_of("Grüße"), Coding::Gsm7); // ü and ß are in the GSM alphabet
        assert_eq!(coding_of("Привет"), Coding::Ucs2);
        assert_eq!(coding_of("ok 👍"), Coding::Ucs2);
        assert_eq!(split(&"ж".repeat(70), true).count(), 1);
        assert_eq!(split(&"ж".repeat(71), true).count(), 2);
        let emoji = "👍".repeat(34); // 68 UTF-16 units: one SMS
        assert_eq!(split(&emoji, true).count(), 1);
        let s = split(&"👍".repeat(36), true); // 72 units: 33 pairs (66) + 3
        assert_eq!(s.count(), 2);
        assert_eq!(s.parts[0].chars().count(), 33);
        assert_eq!(s.parts.concat(), "👍".repeat(36));
    }
}
