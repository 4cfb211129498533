//! Identifiers the core works with. They are parsed at the adapters' boundary and carry no
//! protocol library types, so the core stays independent of ruma and xmpp-parsers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an address cannot be parsed or mapped to the other network (here, beside the ids, so
/// that `mapping` depends on `ids` and not both ways).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("'{0}' is not a valid escaped Matrix ID (XEP-0106 escaping of localpart@server)")]
    BadXmppEscape(String),
    #[error("'{0}' is not a valid ghost localpart encoding")]
    BadMatrixEscape(String),
    #[error("'{0}' is not a Matrix user ID")]
    NotAMatrixId(String),
    #[error("'{0}' is not a JID")]
    NotAJid(String),
    #[error("'{0}' is not a phone number in E.164 form (+4917612345678)")]
    NotAPhoneNumber(String),
    #[error("the Matrix ID for {0} would be longer than Matrix allows (255 bytes)")]
    GhostTooLong(String),
}

/// Longest identifier the bridge accepts from the network (Matrix caps user IDs at 255 bytes;
/// a JID part is at most 1023 bytes).
const MAX_ID_LEN: usize = 3071;

/// A Matrix user ID, `@localpart:server`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MatrixUserId {
    localpart: String,
    server: String,
}

impl MatrixUserId {
    /// Parse `@localpart:server`. Historical (non-lowercase) localparts are accepted, as the
    /// spec requires of servers; control characters and whitespace are not.
    pub fn parse(s: &str) -> Result<Self, MappingError> {
        let bad = || MappingError::NotAMatrixId(s.to_owned());
        let rest = s.strip_prefix('@').ok_or_else(bad)?;
        let (localpart, server) = rest.split_once(':').ok_or_else(bad)?;
        // A (historical) localpart starting with `#` or `!` is refused: its XMPP address would be
        // that of a room (`@#sales:hs` and `#sales:hs` both map to `#sales\40hs@component`).
        let ok_local = !localpart.is_empty()
            && !localpart.starts_with(['#', '!'])
            && localpart.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b':');
        let ok_server =
            !server.is_empty() && server.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        if !ok_local || !ok_server || s.len() > 255 {
            return Err(bad());
        }
        Ok(Self { localpart: localpart.to_owned(), server: server.to_owned() })
    }

    /// Build from parts that are known to be valid (our own ghosts, the bot).
    pub(crate) fn new_unchecked(localpart: String, server: String) -> Self {
        Self { localpart, server }
    }

    pub fn localpart(&self) -> &str {
        &self.localpart
    }

    pub fn server(&self) -> &str {
        &self.server
    }
}

impl fmt::Display for MatrixUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}:{}", self.localpart, self.server)
    }
}

/// A bare JID, `[local@]domain`, without resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BareJid {
    local: Option<String>,
    domain: String,
}

impl BareJid {
    /// Parse `local@domain` or `domain`; a resource (`/...`) is cut off. The domain is
    /// lower-cased (it is case-insensitive); the localpart is kept as the server sent it.
    pub fn parse(s: &str) -> Result<Self, MappingError> {
        let bad = || MappingError::NotAJid(s.to_owned());
        if s.len() > MAX_ID_LEN {
            return Err(bad());
        }
        let (local, rest) = match s.split_once('@') {
            Some((l, r)) if !r.starts_with('/') && !l.contains('/') => (Some(l), r),
            _ => (None, s),
        };
        let domain = rest.split('/').next().unwrap_or_default();
        let valid_part =
            |p: &str| !p.is_empty() && p.len() <= 1023 && !p.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid_part(domain) || domain.contains('@') {
            return Err(bad());
        }
        if let Some(l) = local
            && (!valid_part(l) || l.contains(['"', '&', '\'', '/', ':', '<', '>', '@']))
        {
            return Err(bad());
        }
        Ok(Self { local: local.map(str::to_owned), domain: domain.to_lowercase() })
    }

    pub(crate) fn new_unchecked(local: Option<String>, domain: String) -> Self {
        Self { local, domain }
    }

    pub fn local(&self) -> Option<&str> {
        self.local.as_deref()
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }
}

impl fmt::Display for BareJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.local {
            Some(l) => write!(f, "{l}@{}", self.domain),
            None => f.write_str(&self.domain),
        }
    }
}

/// A Matrix room ID (`!opaque:server`), kept opaque.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomId(String);

impl RoomId {
    pub fn parse(s: &str) -> Result<Self, MappingError> {
        if s.starts_with('!') && s.len() <= 255 && !s.chars().any(char::is_whitespace) {
            Ok(Self(s.to_owned()))
        } else {
            Err(MappingError::NotAMatrixId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form (`+4917612345678`): `+`, then 3 to 15 digits, the first not 0.
/// Numbers as people write them are normalised (with a default region) before they get here.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(s: &str) -> Result<Self, MappingError> {
        let digits = s.strip_prefix('+').unwrap_or_default();
        let ok =
            (3..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if ok { Ok(Self(s.to_owned())) } else { Err(MappingError::NotAPhoneNumber(s.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Matrix event ID (`$opaque`), as the homeserver gave it. Kept opaque and not checked: it
/// only ever comes from the homeserver (or an outbox row written from one), and is only given
/// back to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

/// An XMPP message id as the XMPP side knows it: a stanza's `id`, its XEP-0359 origin id, or in
/// a hosted room the room's stanza id (an [`ArchiveId`] written as text). Kept opaque: clients
/// choose them freely.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StanzaId(String);

macro_rules! opaque_ids {
    ($($t:ident),*) => {$(
        impl $t {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $t {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $t {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }
    )*};
}
opaque_ids!(EventId, StanzaId);

/// A message's number in a hosted room's archive: its XEP-0359 stanza id (written as text, see
/// [`ArchiveId::stanza_id`]) and its XEP-0313 (MAM) result id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ArchiveId(pub i64);

impl ArchiveId {
    pub fn get(self) -> i64 {
        self.0
    }

    /// The id XMPP clients know the message by (the room's stanza id).
    pub fn stanza_id(self) -> StanzaId {
        StanzaId(self.0.to_string())
    }

    /// Read back from the id a client names a message by, if it is one of ours.
    pub fn from_stanza_id(id: &str) -> Option<Self> {
        id.parse().ok().map(Self)
    }
}

impl fmt::Display for ArchiveId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! string_conversions {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = MappingError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(id: $t) -> String {
                id.to_string()
            }
        }
    )*};
}
string_conversions!(MatrixUserId, BareJid, RoomId, PhoneNumber);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_jids() {
        let j = BareJid::parse("alice@Example.ORG/phone").unwrap();
        assert_eq!(j.to_string(), "alice@example.org");
        assert_eq!(BareJid::parse("bridge.localhost").unwrap().local(), None);
        assert!(BareJid::parse("a b@c").is_err());
        assert!(BareJid::parse("@c").is_err());
        assert!(BareJid::parse("").is_err());
    }

    #[test]
    fn parses_matrix_ids() {
        let u = MatrixUserId::parse("@bob:hs.example:8448").unwrap();
        assert_eq!((u.localpart(), u.server()), ("bob", "hs.example:8448"));
        assert!(MatrixUserId::parse("bob:hs").is_err());
        assert!(MatrixUserId::parse("@:hs").is_err());
        assert!(MatrixUserId::parse("@a b:hs").is_err());
        // Would share its XMPP address with the room #sales:hs (found by fuzzing id_escaping).
        assert!(MatrixUserId::parse("@#sales:hs").is_err());
        assert!(MatrixUserId::parse("@!abc:hs").is_err());
        assert!(MatrixUserId::parse("@a#b!:hs").is_ok());
    }

    #[test]
    fn parses_phone_numbers() {
        assert_eq!(PhoneNumber::parse("+4917612345678").unwrap().as_str(), "+4917612345678");
        for bad in ["4917612345678", "+0176", "+49 176", "+", "+12", "+1234567890123456", "+49a"] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }
}
