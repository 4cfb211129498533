//! What a MUC on another server supports (its XEP-0030 disco#info features), and the plain
//! text sent instead of what it does not: a linked room's edit, reaction or retraction always
//! reaches the MUC, as the element where the room can carry it, else as words saying what it is.
//!
//! In a MUC, reactions (XEP-0444) and retractions (XEP-0424) name a message by the room's
//! XEP-0359 stanza id, and receivers tell who acted by the occupant id (XEP-0421); a room that
//! advertises neither the XEP's own feature nor those two leaves clients unable to apply them.

use serde::{Deserialize, Serialize};

pub const STABLE_IDS: &str = "urn:xmpp:sid:0";
pub const OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";
pub const REACTIONS: &str = "urn:xmpp:reactions:0";
pub const RETRACTION: &str = "urn:xmpp:message-retract:1";
pub const CORRECTION: &str = "urn:xmpp:message-correct:0";

/// A quote in a fallback text is cut to this many characters.
const QUOTE_CHARS: usize = 60;

/// What a MUC can carry, from its disco#info features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MucFeatures {
    pub reactions: bool,
    pub retraction: bool,
    pub correction: bool,
}

impl MucFeatures {
    pub fn from_disco<'a>(features: impl IntoIterator<Item = &'a str>) -> Self {
        let features: Vec<&str> = features.into_iter().collect();
        let has = |f: &str| features.contains(&f);
        let names_messages = has(STABLE_IDS) && has(OCCUPANT_ID);
        Self {
            reactions: has(REACTIONS) || names_messages,
            retraction: has(RETRACTION) || names_messages,
            correction: has(CORRECTION) || has(OCCUPANT_ID),
        }
    }
}

fn quoted(quote: Option<&str>) -> String {
    match quote.map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) if q.chars().count() > QUOTE_CHARS => {
            format!("“{}…”", q.chars().take(QUOTE_CHARS).collect::<String>())
        }
        Some(q) => format!("“{q}”"),
        None => "a message".to_owned(),
    }
}

/// An edit, for a room without corrections.
pub fn correction_text(new_text: &str) -> String {
    format!("✎ correction: {new_text}")
}

/// Someone's reactions (the full set; empty: taken back) to a message, for a room without them.
pub fn reaction_text(keys: &[String], quote: Option<&str>) -> String {
    if keys.is_empty() {
        format!("took back their reactions to {}", quoted(quote))
    } else {
        format!("reacted {} to {}", keys.join(" "), quoted(quote))
    }
}

/// A retraction, for a room without them.
pub fn retraction_text(quote: Option<&str>) -> String {
    match quote.map(str::trim).filter(|q| !q.is_empty()) {
        Some(_) => format!("retracted a message: {}", quoted(quote)),
        None => "retracted a message".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_from_disco() {
        let prosody =
            MucFeatures::from_disco(["http://jabber.org/protocol/muc", STABLE_IDS, OCCUPANT_ID, "urn:xmpp:mam:2"]);
        assert_eq!(prosody, MucFeatures { reactions: true, retraction: true, correction: true });
        // A plain MUC without stable ids or occupant ids: every act goes as text.
        assert_eq!(MucFeatures::from_disco(["http://jabber.org/protocol/muc"]), MucFeatures::default());
        // Stable ids alone name the message, but not who acted.
        assert_eq!(MucFeatures::from_disco([STABLE_IDS]), MucFeatures::default());
        let own = MucFeatures::from_disco([REACTIONS]);
        assert!(own.reactions && !own.retraction && !own.correction);
    }

    #[test]
    fn fallback_texts_say_what_happened() {
        assert_eq!(correction_text("the cat"), "✎ correction: the cat");
        assert_eq!(reaction_text(&["👍".into()], Some("the plan")), "reacted 👍 to “the plan”");
        assert_eq!(reaction_text(&[], None), "took back their reactions to a message");
        let long = "x".repeat(100);
        assert!(reaction_text(&["👍".into()], Some(&long)).ends_with("xxx…”"));
        assert_eq!(retraction_text(None), "retracted a message");
        assert_eq!(retraction_text(Some("oops")), "retracted a message: “oops”");
    }
}
