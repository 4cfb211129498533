//! vCard files: RFC 2426 (3.0) and RFC 6350 (4.0). Lines are unfolded, `TYPE` parameters are
//! read in every spelling seen in exports (`TYPE=WORK,VOICE`, `type=WORK;type=VOICE`, bare
//! `WORK;VOICE`, quoted `TYPE="voice,work"`), `tel:` URIs lose their scheme and `;ext=`. The
//! card's own text is kept, so it can be attached to a notice unchanged. vCard 2.1 values in
//! `QUOTED-PRINTABLE` (with soft line breaks) are decoded by their `CHARSET`; cards the bridge
//! writes are folded at 75 octets.

use super::{Contact, ContactError, Phone, non_empty};

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

/// Join continuation lines (starting with a space or tab) to the line before, and a vCard 2.1
/// quoted-printable line ending in a soft break (`=`) to the line after.
fn unfold(lines: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut soft_break = false;
    for line in lines {
        let line = line.trim_end_matches('\r');
        match (soft_break, line.strip_prefix([' ', '\t']), out.last_mut()) {
            (true, _, Some(last)) => last.push_str(line),
            (false, Some(rest), Some(last)) => last.push_str(rest),
            _ => out.push(line.to_owned()),
        }
        soft_break = out.last_mut().is_some_and(|last| {
            let soft = is_quoted_printable(last) && last.ends_with('=');
            if soft {
                last.pop();
            }
            soft
        });
    }
    out
}

/// A property line whose parameters name the quoted-printable encoding (2.1 writes it bare).
fn is_quoted_printable(line: &str) -> bool {
    line.split(':').next().is_some_and(|head| head.to_ascii_uppercase().contains("QUOTED-PRINTABLE"))
}

/// Fold a content line (RFC 6350 §3.2): at most 75 octets a line, continuations start with a
/// space; never inside a character.
pub(super) fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3);
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out
}

/// A quoted-printable value as text in its charset (vCard 2.1's default is ASCII, read as UTF-8).
fn decode_quoted_printable(value: &str, charset: Option<&str>) -> String {
    let bytes = quoted_printable::decode(value, quoted_printable::ParseMode::Robust).unwrap_or_else(|_| value.into());
    let encoding = charset.and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes())).unwrap_or(encoding_rs::UTF_8);
    encoding.decode_without_bom_handling(&bytes).0.into_owned()
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
    let params: Vec<(String, String)> = parts
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_uppercase(), v.trim().trim_matches('"').to_owned()),
            // vCard 2.1 style bare encoding and type: `ORG;QUOTED-PRINTABLE:`, `TEL;WORK;VOICE:`.
            None if ["QUOTED-PRINTABLE", "BASE64", "8BIT", "7BIT"]
                .contains(&p.trim().to_ascii_uppercase().as_str()) =>
            {
                ("ENCODING".to_owned(), p.trim().to_owned())
            }
            None => ("TYPE".to_owned(), p.trim().to_owned()),
        })
        .collect();
    let param = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let value = if param("ENCODING").is_some_and(|e| e.eq_ignore_ascii_case("QUOTED-PRINTABLE")) {
        decode_quoted_printable(value, param("CHARSET"))
    } else {
        value.to_owned()
    };
    Some(Property { name, params, value })
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

pub(super) fn escape_text(value: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn vcard21_quoted_printable() {
        // Outlook and old phones: QUOTED-PRINTABLE with a charset, soft line breaks ending in `=`
        // (no leading space), and bare parameters.
        let card = "BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen\r\n\
                    FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:J=C3=BCrgen M=C3=BCller-L=C3=BC=\r\ndenscheidt\r\n\
                    ORG;CHARSET=ISO-8859-1;QUOTED-PRINTABLE:B=E4ckerei\r\nTEL;WORK;VOICE:+49 30 1234567\r\nEND:VCARD\r\n";
        let c = &parse_vcards(card).expect("parses")[0];
        assert_eq!(c.name.as_deref(), Some("Jürgen Müller-Lüdenscheidt"));
        assert_eq!(c.company.as_deref(), Some("Bäckerei"));
        assert_eq!(c.phones[0].number, "+49 30 1234567");
        assert_eq!(c.phones[0].kinds, ["work", "voice"]);
    }
}
