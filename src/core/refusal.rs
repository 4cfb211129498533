//! Why the bridge refuses what someone asked: a kind, in protocol-neutral terms (the adapters
//! map it to their errors: a stanza error condition, a Matrix notice), and the text the person
//! is told. One value instead of a `(kind, text)` pair, so that a refusal is a `Result`'s error.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of refusal it is. Its serde names are stored in the outbox (`Action::XmppBounce`)
/// and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// The request is malformed.
    BadRequest,
    /// An address cannot be mapped.
    BadAddress,
    /// The addressee does not exist or cannot be reached through the bridge.
    NotFound,
    /// Refused by a rule of the bridge (size limit).
    Policy,
    /// The person may not do this (e.g. only moderators may).
    Forbidden,
    /// Only invited participants may join.
    MembersOnly,
    /// The conversation has reached its participant cap.
    Full,
    /// The name asked for is taken.
    Conflict,
    /// The bridge does not offer this.
    Unsupported,
    /// The bridge failed; trying again later may work.
    Internal,
    /// Too much at once from this sender or conversation; trying again later works.
    Busy,
}

/// A refusal and the text that tells the person why (shown as it is: a full sentence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub text: String,
}

macro_rules! constructors {
    ($($name:ident => $kind:ident),* $(,)?) => {
        $(
            #[doc = concat!("A refusal of kind [`RefusalKind::", stringify!($kind), "`].")]
            pub fn $name(text: impl Into<String>) -> Self {
                Self::new(RefusalKind::$kind, text)
            }
        )*
    };
}

impl Refusal {
    pub fn new(kind: RefusalKind, text: impl Into<String>) -> Self {
        Self { kind, text: text.into() }
    }

    constructors! {
        bad_request => BadRequest,
        bad_address => BadAddress,
        not_found => NotFound,
        policy => Policy,
        forbidden => Forbidden,
        members_only => MembersOnly,
        full => Full,
        conflict => Conflict,
        unsupported => Unsupported,
        internal => Internal,
        busy => Busy,
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_its_text() {
        let r = Refusal::forbidden("Only moderators can change the subject.");
        assert_eq!(r.kind, RefusalKind::Forbidden);
        assert_eq!(r.to_string(), "Only moderators can change the subject.");
    }

    /// Kinds are stored in outbox rows (`xmpp_bounce`'s `refusal`): their names are frozen.
    #[test]
    fn stored_kind_names_never_change() {
        let kinds = [
            (RefusalKind::BadRequest, "bad_request"),
            (RefusalKind::BadAddress, "bad_address"),
            (RefusalKind::NotFound, "not_found"),
            (RefusalKind::Policy, "policy"),
            (RefusalKind::Forbidden, "forbidden"),
            (RefusalKind::MembersOnly, "members_only"),
            (RefusalKind::Full, "full"),
            (RefusalKind::Conflict, "conflict"),
            (RefusalKind::Unsupported, "unsupported"),
            (RefusalKind::Internal, "internal"),
            (RefusalKind::Busy, "busy"),
        ];
        for (kind, name) in kinds {
            assert_eq!(serde_json::to_value(kind).unwrap(), name);
            assert_eq!(serde_json::from_value::<RefusalKind>(name.into()).unwrap(), kind);
        }
    }
}
