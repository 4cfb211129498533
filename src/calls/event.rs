//! The normalised telephony event model.
//!
//! Both telephony inputs produce these events: the JSON webhook deserialises them directly (so
//! this file *is* the webhook schema, see `docs/calls-webhook.md`), and the Asterisk AMI
//! translator in [`super::ami`] builds them from channel events. Everything downstream (the call
//! model, the rules) sees only this shape, never a PBX's own vocabulary.
//!
//! # JSON schema
//!
//! Each event is an object tagged by `"type"`; times are Unix milliseconds (`at`).
//!
//! ```json
//! {"type": "call_created", "call_id": "c1", "caller": {"number": "+4930123456", "name": "Ada"},
//!  "called": "+4930555100", "direction": "inbound", "at": 1700000000000}
//! {"type": "leg_ringing", "call_id": "c1", "leg_id": "l1", "extension": "201", "at": 1700000000100}
//! {"type": "leg_ended", "call_id": "c1", "leg_id": "l1", "outcome": {"kind": "no_answer"}, "at": 1700000015100}
//! {"type": "leg_ended", "call_id": "c1", "leg_id": "l2", "outcome": {"kind": "redirected", "to": "301"}, "at": 1700000003000}
//! {"type": "call_answered", "call_id": "c1", "by": "205", "pickup": true, "at": 1700000009000}
//! {"type": "call_ended", "call_id": "c1", "cause": "normal_clearing", "at": 1700000020000}
//! ```
//!
//! `caller.number` absent or `caller.hidden: true` means the caller withheld the number.
//! `original_call_id` on `call_created` links a call created by a transfer to the call it came
//! from. `pickup` and `original_call_id` may be omitted (false / none).

use serde::{Deserialize, Serialize};

/// Unix time in milliseconds. Events carry the PBX's clock, not the time we received them.
pub type UnixMillis = i64;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use string_id;

string_id!(
    /// The PBX's identifier of one call (for Asterisk: the `Linkedid`).
    CallId
);
string_id!(
    /// The PBX's identifier of one attempt to ring one extension within a call (Asterisk: the
    /// `DestUniqueid` of the dialled channel).
    LegId
);
string_id!(
    /// An internal extension as the PBX names it (`201`), not a normalised phone number.
    Extension
);

/// Which way a call went, as seen from the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From outside to an internal extension or line.
    Inbound,
    /// From an internal extension to outside.
    Outbound,
    /// Between two internal extensions.
    Internal,
}

/// Who called. A withheld number is `number: None` or `hidden: true`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Set by PBXs that pass the number along but mark it as not to be shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
}

impl Caller {
    pub fn with_number(number: impl Into<String>) -> Self {
        Self { number: Some(number.into()), name: None, hidden: false }
    }

    pub fn hidden() -> Self {
        Self { number: None, name: None, hidden: true }
    }

    /// True when the number must not be used (withheld or absent).
    pub fn is_hidden(&self) -> bool {
        self.hidden || self.number.as_deref().is_none_or(|n| n.trim().is_empty())
    }

    /// The number if it may be shown.
    pub fn visible_number(&self) -> Option<&str> {
        if self.is_hidden() { None } else { self.number.as_deref().map(str::trim) }
    }
}

/// How one ringing leg stopped ringing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LegOutcome {
    /// This leg's phone took the call.
    Answered,
    /// Rang until the PBX gave up on it (timeout, next step of a hunt group).
    NoAnswer,
    /// The phone refused the call (busy, do-not-disturb, unreachable).
    Busy,
    /// The PBX stopped ringing it: the caller hung up or someone else answered.
    Cancelled,
    /// The phone forwarded the call elsewhere (call forward, SIP 302).
    Redirected { to: String },
}

/// One telephony event. See the module documentation for the JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CallEvent {
    /// A call reached the PBX.
    CallCreated {
        call_id: CallId,
        #[serde(default)]
        caller: Caller,
        /// The number or extension that was dialled.
        called: String,
        direction: Direction,
        /// Set when this call was created by transferring another one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        original_call_id: Option<CallId>,
        at: UnixMillis,
    },
    /// A phone started ringing for the call.
    LegRinging { call_id: CallId, leg_id: LegId, extension: Extension, at: UnixMillis },
    /// A phone stopped ringing.
    LegEnded { call_id: CallId, leg_id: LegId, outcome: LegOutcome, at: UnixMillis },
    /// Someone took the call. `pickup` is set when it was taken from another phone.
    CallAnswered {
        call_id: CallId,
        by: Extension,
        #[serde(default)]
        pickup: bool,
        at: UnixMillis,
    },
    /// The call is over (the caller's side hung up).
    CallEnded { call_id: CallId, cause: String, at: UnixMillis },
}

impl CallEvent {
    pub fn call_id(&self) -> &CallId {
        match self {
            CallEvent::CallCreated { call_id, .. }
            | CallEvent::LegRinging { call_id, .. }
            | CallEvent::LegEnded { call_id, .. }
            | CallEvent::CallAnswered { call_id, .. }
            | CallEvent::CallEnded { call_id, .. } => call_id,
        }
    }

    pub fn at(&self) -> UnixMillis {
        match self {
            CallEvent::CallCreated { at, .. }
            | CallEvent::LegRinging { at, .. }
            | CallEvent::LegEnded { at, .. }
            | CallEvent::CallAnswered { at, .. }
            | CallEvent::CallEnded { at, .. } => *at,
        }
    }

    /// The event's `type` tag, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            CallEvent::CallCreated { .. } => "call_created",
            CallEvent::LegRinging { .. } => "leg_ringing",
            CallEvent::LegEnded { .. } => "leg_ended",
            CallEvent::CallAnswered { .. } => "call_answered",
            CallEvent::CallEnded { .. } => "call_ended",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_documented_json() {
        let json = r#"[
            {"type": "call_created", "call_id": "c1", "caller": {"number": "+4930123456", "name": "Ada"},
             "called": "+4930555100", "direction": "inbound", "at": 1700000000000},
            {"type": "leg_ringing", "call_id": "c1", "leg_id": "l1", "extension": "201", "at": 1700000000100},
            {"type": "leg_ended", "call_id": "c1", "leg_id": "l1", "outcome": {"kind": "redirected", "to": "301"},
             "at": 1700000003000},
            {"type": "call_answered", "call_id": "c1", "by": "205", "pickup": true, "at": 1700000009000},
            {"type": "call_ended", "call_id": "c1", "cause": "normal_clearing", "at": 1700000020000}
        ]"#;
        let events: Vec<CallEvent> = serde_json::from_str(json).expect("schema example parses");
        assert_eq!(events.len(), 5);
        assert_eq!(
            events[2],
            CallEvent::LegEnded {
                call_id: CallId::new("c1"),
                leg_id: LegId::new("l1"),
                outcome: LegOutcome::Redirected { to: "301".into() },
                at: 1_700_000_003_000,
            }
        );
        let again: Vec<CallEvent> =
            serde_json::from_str(&serde_json::to_string(&events).expect("serialises")).expect("parses");
        assert_eq!(events, again);
        assert!(events.iter().all(|e| e.call_id().as_str() == "c1"));
        assert_eq!(events[4].kind(), "call_ended");
    }

    #[test]
    fn optional_fields_default() {
        let e: CallEvent = serde_json::from_str(
            r#"{"type": "call_created", "call_id": "c", "called": "200", "direction": "internal", "at": 1}"#,
        )
        .expect("parses");
        let CallEvent::CallCreated { caller, original_call_id, .. } = e else { panic!("wrong variant") };
        assert!(caller.is_hidden());
        assert_eq!(original_call_id, None);
        let e: CallEvent =
            serde_json::from_str(r#"{"type": "call_answered", "call_id": "c", "by": "201", "at": 2}"#).expect("parses");
        assert!(matches!(e, CallEvent::CallAnswered { pickup: false, .. }));
    }

    #[test]
    fn unknown_types_and_fields_are_refused() {
        assert!(serde_json::from_str::<CallEvent>(r#"{"type": "call_exploded", "call_id": "c", "at": 1}"#).is_err());
        assert!(
            serde_json::from_str::<CallEvent>(
                r#"{"type": "call_ended", "call_id": "c", "cause": "x", "at": 1, "x": 2}"#
            )
            .is_err()
        );
    }

    #[test]
    fn hidden_callers() {
        assert!(Caller::hidden().is_hidden());
        assert!(Caller { number: Some("  ".into()), ..Caller::default() }.is_hidden());
        assert!(Caller { number: Some("+491".into()), hidden: true, ..Caller::default() }.is_hidden());
        assert_eq!(Caller::with_number(" +491 ").visible_number(), Some("+491"));
    }
}
