//! What the rules decide on, besides the call and the settings ([`Facts`] looked up
//! beforehand), and what they decide ([`Decision`]: notices, and who was left out and why).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Channel, UserId};
use crate::calls::event::{Extension, UnixMillis};
use crate::calls::model::CallSummary;

/// What the engine needs to know about one person, looked up by the caller beforehand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFacts {
    /// Notices sent to this person today about calls from the same number.
    pub notices_today_same_number: u32,
    /// When this person was last told about a call from the same number.
    pub last_notice_same_number_at: Option<UnixMillis>,
    /// When this person last logged on (any client).
    pub last_logon_at: Option<UnixMillis>,
}

/// Everything outside the call that the rules depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// A contact matched the caller's number.
    pub contact_found: bool,
    /// The caller's number normalised to E.164, when it could be (matched against the block list
    /// too).
    pub caller_e164: Option<String>,
    /// Per person; someone missing here has no earlier notices and no known logon.
    pub users: HashMap<UserId, UserFacts>,
}

/// Why a notice is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeReason {
    /// Nobody took the call.
    Missed,
    /// Someone else took it (pickup, another member of the group).
    AnsweredElsewhere,
}

/// One notice to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub user: UserId,
    /// The person's extension that rang (the first one, if several did).
    pub extension: Extension,
    /// How long this person's phones rang.
    pub ring_ms: i64,
    pub reason: NoticeReason,
    pub channels: Vec<Channel>,
    pub summary: CallSummary,
}

/// Why someone (or the whole call) was left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    PolicyNone,
    /// Outgoing calls are journalled but never reported as missed.
    Outgoing,
    /// Someone took the call and `notify_even_if_answered_by_other` is off.
    Answered,
    Internal,
    HiddenNumber,
    NoContact,
    BlockedNumber,
    BlockedExtension,
    /// An extension rang that belongs to nobody in the directory.
    NoOwner,
    /// Nothing rang and the dialled number belongs to nobody.
    NobodyRang,
    /// The person took the call on one of their phones.
    AnsweredByThemselves,
    ShortRing {
        ring_ms: i64,
    },
    /// Not the first / last participant under that policy.
    NotChosen,
    OptedOut,
    RepeatedSameDay,
    RepeatedWithoutLogon,
    NoChannel,
}

impl SkipReason {
    /// Stable short code for the journal.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::PolicyNone => "policy_none",
            SkipReason::Outgoing => "outgoing",
            SkipReason::Answered => "answered",
            SkipReason::Internal => "internal",
            SkipReason::HiddenNumber => "hidden_number",
            SkipReason::NoContact => "no_contact",
            SkipReason::BlockedNumber => "blocked_number",
            SkipReason::BlockedExtension => "blocked_extension",
            SkipReason::NoOwner => "no_owner",
            SkipReason::NobodyRang => "nobody_rang",
            SkipReason::AnsweredByThemselves => "answered_by_themselves",
            SkipReason::ShortRing { .. } => "short_ring",
            SkipReason::NotChosen => "not_chosen",
            SkipReason::OptedOut => "opted_out",
            SkipReason::RepeatedSameDay => "repeated_same_day",
            SkipReason::RepeatedWithoutLogon => "repeated_without_logon",
            SkipReason::NoChannel => "no_channel",
        }
    }
}

/// A left-out person or, with neither `user` nor `extension`, the whole call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub user: Option<UserId>,
    pub extension: Option<Extension>,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub notices: Vec<Notice>,
    pub skipped: Vec<Skipped>,
}

impl Decision {
    pub(super) fn skip_call(reason: SkipReason) -> Self {
        Self { notices: Vec::new(), skipped: vec![Skipped { user: None, extension: None, reason }] }
    }

    pub fn notified(&self) -> Vec<&str> {
        self.notices.iter().map(|n| n.user.as_str()).collect()
    }
}
