//! Identity mapping between XMPP JIDs and Matrix user IDs.
//!
//! - An XMPP user becomes a Matrix ghost whose localpart is a prefix plus the bare JID, encoded
//!   with the Matrix spec's "mapping from other character sets"
//!   (<https://spec.matrix.org/latest/appendices/#mapping-from-other-character-sets>):
//!   `a-z 0-9 . -` stay, `_` → `__`, `A-Z` → `_` + lower case, any other byte → `=xx`.
//! - A Matrix user becomes an XMPP address under the component's domain whose localpart is
//!   `localpart@server` escaped with XEP-0106 (JID Escaping).
//!
//! Both encodings are bijective on their valid inputs, and decoding accepts only the canonical
//! form, so `decode(encode(x)) == x` and `encode(decode(y)) == y` (property-tested below).

pub use crate::core::ids::MappingError;
use crate::core::ids::{BareJid, MatrixUserId, PhoneNumber};

/// Localpart prefix of the ghosts that stand for phone numbers (`@_sms_+4917612345678:hs`); the
/// registration claims it (`matrix::registration`).
pub const SMS_GHOST_PREFIX: &str = "_sms_";

/// Encode arbitrary text into the Matrix localpart alphabet (spec appendix, bijective form).
pub fn matrix_escape(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 8);
    for &b in input.as_bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => out.push(b as char),
            b'_' => out.push_str("__"),
            b'A'..=b'Z' => {
                out.push('_');
                out.push((b + 32) as char);
            }
            _ => {
                out.push('=');
                out.push(hex_digit(b >> 4));
                out.push(hex_digit(b & 0xf));
            }
        }
    }
    out
}

/// Decode [`matrix_escape`] output; only the canonical encoding is accepted.
pub fn matrix_unescape(input: &str) -> Result<String, MappingError> {
    let bad = || MappingError::BadMatrixEscape(input.to_owned());
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => {
                out.push(bytes[i]);
                i += 1;
            }
            b'_' => {
                match bytes.get(i + 1) {
                    Some(b'_') => out.push(b'_'),
                    Some(&c @ b'a'..=b'z') => out.push(c - 32),
                    _ => return Err(bad()),
                }
                i += 2;
            }
            b'=' => {
                let hi = bytes.get(i + 1).and_then(|&c| hex_value(c)).ok_or_else(bad)?;
                let lo = bytes.get(i + 2).and_then(|&c| hex_value(c)).ok_or_else(bad)?;
                let b = (hi << 4) | lo;
                // A byte that has a shorter encoding must not appear as `=xx`.
                if matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_') {
                    return Err(bad());
                }
                out.push(b);
                i += 3;
            }
            _ => return Err(bad()),
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Characters XEP-0106 escapes, with their escape codes.
const XEP0106: [(char, &str); 10] = [
    (' ', "20"),
    ('"', "22"),
    ('&', "26"),
    ('\'', "27"),
    ('/', "2f"),
    (':', "3a"),
    ('<', "3c"),
    ('>', "3e"),
    ('@', "40"),
    ('\\', "5c"),
];

/// XEP-0106 escaping. Every backslash is escaped, which keeps the mapping bijective.
pub fn xep0106_escape(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 4);
    for c in input.chars() {
        match XEP0106.iter().find(|(ch, _)| *ch == c) {
            Some((_, code)) => {
                out.push('\\');
                out.push_str(code);
            }
            None => out.push(c),
        }
    }
    out
}

/// Reverse of [`xep0106_escape`]; a backslash must start one of the ten escape sequences and
/// none of the escapable characters may appear raw.
pub fn xep0106_unescape(input: &str) -> Result<String, MappingError> {
    let bad = || MappingError::BadXmppEscape(input.to_owned());
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(c) = rest.chars().next() {
        if c == '\\' {
            let code = rest.get(1..3).ok_or_else(bad)?;
            let (ch, _) = XEP0106.iter().find(|(_, k)| *k == code).ok_or_else(bad)?;
            out.push(*ch);
            rest = &rest[3..];
        } else {
            if XEP0106.iter().any(|(ch, _)| *ch == c) {
                return Err(bad());
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(out)
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n), 16).unwrap_or('0')
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The bridge's addressing rules, fixed by configuration.
#[derive(Debug, Clone)]
pub struct IdentityMap {
    /// The homeserver's server name (ghosts live there).
    pub homeserver: String,
    /// The component's domain (Matrix users appear under it on XMPP).
    pub component: String,
    /// Localpart prefix of XMPP ghosts, e.g. `_xmpp_`.
    pub ghost_prefix: String,
    /// Localpart of the bridge bot.
    pub bot_localpart: String,
    /// Localpart of the chatbot (`@assistant:hs`, `assistant@component`), when it is on.
    pub chatbot_localpart: Option<String>,
}

impl IdentityMap {
    /// The ghost that stands for an XMPP user on Matrix.
    pub fn ghost_for(&self, jid: &BareJid) -> MatrixUserId {
        MatrixUserId::new_unchecked(
            format!("{}{}", self.ghost_prefix, matrix_escape(&jid.to_string())),
            self.homeserver.clone(),
        )
    }

    /// `ghost_for`, refused when the ID would exceed Matrix's 255 bytes: a JID part may be 1023
    /// bytes and escaping can triple it, and the homeserver would refuse every request for such a
    /// ghost only after the message was accepted, with nobody to tell.
    pub fn ghost_for_checked(&self, jid: &BareJid) -> Result<MatrixUserId, MappingError> {
        let ghost = self.ghost_for(jid);
        if ghost.to_string().len() > 255 { Err(MappingError::GhostTooLong(jid.to_string())) } else { Ok(ghost) }
    }

    /// The XMPP user a ghost stands for, or `None` if the user is not one of our ghosts.
    pub fn jid_for_ghost(&self, user: &MatrixUserId) -> Option<Result<BareJid, MappingError>> {
        if user.server() != self.homeserver {
            return None;
        }
        let encoded = user.localpart().strip_prefix(&self.ghost_prefix)?;
        Some(matrix_unescape(encoded).and_then(|s| BareJid::parse(&s)))
    }

    /// Is this Matrix user one of ours (a ghost or the bot)? Their events are echoes.
    pub fn is_bridge_user(&self, user: &MatrixUserId) -> bool {
        user.server() == self.homeserver
            && (user.localpart().starts_with(&self.ghost_prefix)
                || user.localpart().starts_with(SMS_GHOST_PREFIX)
                || user.localpart() == self.bot_localpart
                || Some(user.localpart()) == self.chatbot_localpart.as_deref())
    }

    /// The chatbot's Matrix ID, when it is on.
    pub fn chatbot(&self) -> Option<MatrixUserId> {
        let local = self.chatbot_localpart.clone()?;
        Some(MatrixUserId::new_unchecked(local, self.homeserver.clone()))
    }

    /// The chatbot's XMPP address (`assistant@component`), when it is on.
    pub fn chatbot_jid(&self) -> Option<BareJid> {
        let local = self.chatbot_localpart.clone()?;
        Some(BareJid::new_unchecked(Some(local), self.component.clone()))
    }

    /// Whether a localpart under the component is the chatbot's (Matrix users' addresses
    /// contain `\40`, so they never look like it).
    pub fn is_chatbot_local(&self, local: &str) -> bool {
        self.chatbot_localpart.as_deref() == Some(local)
    }

    /// The ghost that stands for a phone number on Matrix: `@_sms_+4917612345678:hs`.
    pub fn sms_ghost(&self, phone: &PhoneNumber) -> MatrixUserId {
        MatrixUserId::new_unchecked(format!("{SMS_GHOST_PREFIX}{phone}"), self.homeserver.clone())
    }

    /// The phone number an SMS ghost stands for (`None`: not an SMS ghost, or not a valid number).
    pub fn phone_for_ghost(&self, user: &MatrixUserId) -> Option<PhoneNumber> {
        if user.server() != self.homeserver {
            return None;
        }
        PhoneNumber::parse(user.localpart().strip_prefix(SMS_GHOST_PREFIX)?).ok()
    }

    /// The XMPP address of a phone number: `+4917612345678@component`.
    pub fn sms_jid(&self, phone: &PhoneNumber) -> BareJid {
        BareJid::new_unchecked(Some(phone.to_string()), self.component.clone())
    }

    /// The phone number a localpart under the component names, if it names one (`+` and digits;
    /// Matrix users' addresses contain `\40`, so they never look like this).
    pub fn phone_for_local(&self, local: &str) -> Option<PhoneNumber> {
        local.starts_with('+').then(|| PhoneNumber::parse(local).ok()).flatten()
    }

    /// The bridge bot's Matrix ID.
    pub fn bot(&self) -> MatrixUserId {
        MatrixUserId::new_unchecked(self.bot_localpart.clone(), self.homeserver.clone())
    }

    /// The XMPP address under which a Matrix user appears.
    pub fn jid_for_matrix(&self, user: &MatrixUserId) -> BareJid {
        BareJid::new_unchecked(
            Some(xep0106_escape(&format!("{}@{}", user.localpart(), user.server()))),
            self.component.clone(),
        )
    }

    /// The Matrix user an address under the component stands for.
    pub fn matrix_for_jid(&self, local: &str) -> Result<MatrixUserId, MappingError> {
        let raw = xep0106_unescape(local)?;
        // The last `@`: a server name has none, a (historical) localpart may (found by fuzzing).
        let (localpart, server) = raw.rsplit_once('@').ok_or_else(|| MappingError::NotAMatrixId(raw.clone()))?;
        MatrixUserId::parse(&format!("@{localpart}:{server}")).map_err(|_| MappingError::NotAMatrixId(raw.clone()))
    }

    /// The alias of the room of a linked MUC on an XMPP server:
    /// `team@conference.example` → `#_xmpp_team=40conference.example:hs`.
    pub fn linked_alias(&self, muc: &BareJid) -> String {
        format!("#{}{}:{}", self.ghost_prefix, matrix_escape(&muc.to_string()), self.homeserver)
    }

    /// The MUC a linked alias stands for, if the alias is one (`None`: not in our namespace).
    pub fn muc_for_linked_alias(&self, alias: &str) -> Option<Result<BareJid, MappingError>> {
        let local = alias.strip_prefix('#')?.strip_suffix(&format!(":{}", self.homeserver))?;
        let encoded = local.strip_prefix(&self.ghost_prefix)?;
        Some(matrix_unescape(encoded).and_then(|s| {
            let jid = BareJid::parse(&s)?;
            if jid.local().is_none() || jid.domain() == self.component {
                return Err(MappingError::NotAJid(s));
            }
            Ok(jid)
        }))
    }

    /// The MUC address of a bridged room: its alias or, without one, its room ID, with the
    /// first `:` written as `@` and XEP-0106 escaped: `#sales:hs` → `#sales\40hs@component`.
    /// A room ID without a server (room version 12 on) gets the homeserver's: `!id\40hs`.
    pub fn muc_for_room(&self, alias_or_id: &str) -> BareJid {
        let local = match alias_or_id.split_once(':') {
            Some((name, server)) => format!("{name}@{server}"),
            None => format!("{alias_or_id}@{}", self.homeserver),
        };
        BareJid::new_unchecked(Some(xep0106_escape(&local)), self.component.clone())
    }

    /// The alias or room ID a localpart under the component names, if it names a room (room
    /// addresses start with `#` or `!`, which Matrix user IDs cannot).
    pub fn room_for_muc(&self, local: &str) -> Option<Result<String, MappingError>> {
        if !local.starts_with(['#', '!']) {
            return None;
        }
        Some(xep0106_unescape(local).and_then(|raw| {
            let (name, server) = raw.split_once('@').ok_or_else(|| MappingError::BadXmppEscape(local.to_owned()))?;
            if name.len() < 2 || server.is_empty() {
                return Err(MappingError::BadXmppEscape(local.to_owned()));
            }
            Ok(format!("{name}:{server}"))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map() -> IdentityMap {
        IdentityMap {
            homeserver: "hs.example".into(),
            component: "bridge.xmpp.example".into(),
            ghost_prefix: "_xmpp_".into(),
            bot_localpart: "ucbridge".into(),
            chatbot_localpart: Some("assistant".into()),
        }
    }

    #[test]
    fn ghosts_longer_than_matrix_allows_are_refused() {
        let m = map();
        // "@_xmpp_" + local + "=40xmpp.example" + ":hs.example" is 33 bytes besides the localpart.
        let fits = BareJid::parse(&format!("{}@xmpp.example", "a".repeat(222))).unwrap();
        assert_eq!(m.ghost_for_checked(&fits).map(|g| g.to_string().len()), Ok(255));
        let long = BareJid::parse(&format!("{}@xmpp.example", "a".repeat(223))).unwrap();
        assert!(matches!(m.ghost_for_checked(&long), Err(MappingError::GhostTooLong(_))));
        // Escaping counts: 100 upper-case letters are 200 bytes of localpart.
        let upper = BareJid::parse(&format!("{}@xmpp.example", "A".repeat(112))).unwrap();
        assert!(m.ghost_for_checked(&upper).is_err());
    }

    #[test]
    fn the_chatbot_is_a_bridge_user_with_an_address_of_its_own() {
        let m = map();
        let bot = m.chatbot().unwrap();
        assert_eq!(bot.to_string(), "@assistant:hs.example");
        assert!(m.is_bridge_user(&bot));
        assert!(!m.is_bridge_user(&MatrixUserId::parse("@assistant:elsewhere.example").unwrap()));
        assert_eq!(m.chatbot_jid().unwrap().to_string(), "assistant@bridge.xmpp.example");
        assert!(m.is_chatbot_local("assistant"));
        // A Matrix user's address never looks like the chatbot's.
        let user = MatrixUserId::parse("@assistant:hs.example").unwrap();
        assert!(!m.is_chatbot_local(m.jid_for_matrix(&user).local().unwrap()));
        let off = IdentityMap { chatbot_localpart: None, ..map() };
        assert!(off.chatbot().is_none() && !off.is_chatbot_local("assistant"));
        assert!(!off.is_bridge_user(&bot));
    }

    #[test]
    fn a_localpart_with_an_at_sign_maps_back() {
        // Found by fuzzing: the first `@` was taken as the separator.
        let user = MatrixUserId::parse("@a@b:hs.example").unwrap();
        let jid = map().jid_for_matrix(&user);
        assert_eq!(map().matrix_for_jid(jid.local().unwrap()), Ok(user));
    }

    #[test]
    fn linked_aliases() {
        let m = map();
        let muc = BareJid::parse("team@conference.xmpp.example").unwrap();
        let alias = m.linked_alias(&muc);
        assert_eq!(alias, "#_xmpp_team=40conference.xmpp.example:hs.example");
        assert_eq!(m.muc_for_linked_alias(&alias), Some(Ok(muc)));
        assert_eq!(m.muc_for_linked_alias("#sales:hs.example"), None);
        assert!(matches!(m.muc_for_linked_alias("#_xmpp_conference.xmpp.example:hs.example"), Some(Err(_))));
    }

    #[test]
    fn room_addresses() {
        let m = map();
        let muc = m.muc_for_room("#sales:hs.example");
        assert_eq!(muc.to_string(), "#sales\\40hs.example@bridge.xmpp.example");
        assert_eq!(m.room_for_muc(muc.local().unwrap()), Some(Ok("#sales:hs.example".into())));
        let by_id = m.muc_for_room("!AbC:hs.example");
        assert_eq!(m.room_for_muc(by_id.local().unwrap()), Some(Ok("!AbC:hs.example".into())));
        // Room version 12: no server in the ID; the homeserver's stands in.
        assert_eq!(m.muc_for_room("!AbC").to_string(), "!AbC\\40hs.example@bridge.xmpp.example");
        assert_eq!(m.room_for_muc("bob\\40hs.example"), None);
        assert!(matches!(m.room_for_muc("#nodomain"), Some(Err(_))));
    }

    #[test]
    fn design_examples() {
        let m = map();
        let alice = BareJid::parse("alice@xmpp.example").unwrap();
        assert_eq!(m.ghost_for(&alice).to_string(), "@_xmpp_alice=40xmpp.example:hs.example");
        let bob = MatrixUserId::parse("@bob:hs.example").unwrap();
        assert_eq!(m.jid_for_matrix(&bob).to_string(), "bob\\40hs.example@bridge.xmpp.example");
        let ported = MatrixUserId::parse("@bob:hs.example:8448").unwrap();
        assert_eq!(m.jid_for_matrix(&ported).to_string(), "bob\\40hs.example\\3a8448@bridge.xmpp.example");
        assert_eq!(m.matrix_for_jid("bob\\40hs.example\\3a8448").unwrap(), ported);
        assert_eq!(matrix_escape("Mr_X"), "_mr___x");
    }

    #[test]
    fn rejects_non_canonical_forms() {
        for bad in ["=41", "_", "_1", "=4", "=zz", "A", "=5f"] {
            assert!(matrix_unescape(bad).is_err(), "{bad}");
        }
        for bad in ["a\\zzb", "a@b", "a\\4", "a b", "\\"] {
            assert!(xep0106_unescape(bad).is_err(), "{bad}");
        }
        assert!(map().matrix_for_jid("nobody").is_err());
    }

    #[test]
    fn phone_addresses() {
        let m = map();
        let phone = PhoneNumber::parse("+4917612345678").unwrap();
        let ghost = m.sms_ghost(&phone);
        assert_eq!(ghost.to_string(), "@_sms_+4917612345678:hs.example");
        assert!(m.is_bridge_user(&ghost));
        assert_eq!(m.phone_for_ghost(&ghost), Some(phone.clone()));
        assert_eq!(m.jid_for_ghost(&ghost), None);
        assert_eq!(m.sms_jid(&phone).to_string(), "+4917612345678@bridge.xmpp.example");
        assert_eq!(m.phone_for_local("+4917612345678"), Some(phone));
        assert_eq!(m.phone_for_local("bob\\40hs.example"), None);
        assert_eq!(m.phone_for_local("+49abc"), None);
        assert_eq!(m.phone_for_ghost(&MatrixUserId::parse("@_sms_+4917612345678:other").unwrap()), None);
    }

    #[test]
    fn ghosts_and_bot_are_recognised() {
        let m = map();
        let ghost = MatrixUserId::parse("@_xmpp_a=40b:hs.example").unwrap();
        assert!(m.is_bridge_user(&ghost));
        assert!(m.is_bridge_user(&m.bot()));
        assert!(!m.is_bridge_user(&MatrixUserId::parse("@_xmpp_a=40b:other").unwrap()));
        assert_eq!(m.jid_for_ghost(&ghost).unwrap().unwrap().to_string(), "a@b");
        assert!(m.jid_for_ghost(&MatrixUserId::parse("@x:hs.example").unwrap()).is_none());
    }

    proptest! {
        #[test]
        fn matrix_escape_round_trips(s in "\\PC{0,40}") {
            let e = matrix_escape(&s);
            prop_assert!(e.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._=-".contains(&b)));
            prop_assert_eq!(matrix_unescape(&e).unwrap(), s);
        }

        #[test]
        fn matrix_unescape_is_canonical(s in "[a-z0-9._=-]{0,30}") {
            if let Ok(d) = matrix_unescape(&s) {
                prop_assert_eq!(matrix_escape(&d), s);
            }
        }

        #[test]
        fn xep0106_round_trips(s in "\\PC{0,40}") {
            let e = xep0106_escape(&s);
            prop_assert!(!e.contains(['@', '/', ' ', ':', '"', '&', '\'', '<', '>']));
            prop_assert_eq!(xep0106_unescape(&e).unwrap(), s);
        }

        #[test]
        fn xep0106_unescape_is_canonical(s in "[a-z\\\\0-9@: ]{0,30}") {
            if let Ok(d) = xep0106_unescape(&s) {
                prop_assert_eq!(xep0106_escape(&d), s);
            }
        }

        #[test]
        fn jid_ghost_round_trips(local in "[a-z0-9_.A-Z+!-]{1,20}", domain in "[a-z0-9-]{1,12}(\\.[a-z]{2,5})?") {
            let m = map();
            let jid = BareJid::parse(&format!("{local}@{domain}")).unwrap();
            let ghost = m.ghost_for(&jid);
            prop_assert_eq!(m.jid_for_ghost(&ghost).unwrap().unwrap(), jid);
        }

        #[test]
        fn matrix_jid_round_trips(local in "[a-z0-9._=/+-]{1,20}", server in "[a-z0-9-]{1,12}(\\.[a-z]{2,5})?(:[0-9]{1,5})?") {
            let m = map();
            let user = MatrixUserId::parse(&format!("@{local}:{server}")).unwrap();
            let jid = m.jid_for_matrix(&user);
            prop_assert_eq!(jid.domain(), "bridge.xmpp.example");
            prop_assert_eq!(m.matrix_for_jid(jid.local().unwrap()).unwrap(), user);
        }
    }
}
