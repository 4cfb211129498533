//! What the bridge counts, in its own terms: one function per measurement, called from the
//! layer where it happens (core, store, libraries, adapters and bridge alike). They record
//! through the `metrics` facade, a no-op until `app.rs` installs the Prometheus recorder that
//! `GET /metrics` renders. Labels are kinds and reasons, never people or rooms: the series stay
//! few, and a scrape reveals no user data.
//!
//! The names and labels are listed in the README ("Metrics"); change both together.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

use crate::core::conversation::{Conversation, Direction, Lane};
use crate::core::refusal::RefusalKind;

/// Buckets of [`DELIVERY_SECONDS`]: from a quick hop to a long outage.
pub const DELIVERY_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];
/// The histogram of queue-to-delivered times (buckets: [`DELIVERY_BUCKETS`]).
pub const DELIVERY_SECONDS: &str = "ucbridge_delivery_seconds";

/// The label of a lane's direction.
pub fn direction_label(direction: Direction) -> &'static str {
    match direction {
        Direction::ToMatrix => "to_matrix",
        Direction::ToXmpp => "to_xmpp",
        Direction::ToPhone => "to_phone",
        Direction::ToMail => "to_mail",
    }
}

/// The label of a conversation's kind.
pub fn kind_label(conversation: &Conversation) -> &'static str {
    match conversation {
        Conversation::DirectChat { .. } => "direct",
        Conversation::MatrixRoom(_) => "matrix_room",
        Conversation::HostedRoom(_) => "hosted_room",
        Conversation::LinkedMuc(_) => "linked_muc",
        Conversation::SmsChat { .. } => "sms",
        Conversation::RoomCreation { .. } => "room_creation",
        Conversation::BridgeNotices { .. } => "bridge_notice",
        Conversation::Mail { .. } => "mail",
        Conversation::Chatbot { .. } => "chatbot",
    }
}

/// The kind of a stored lane key (`x2m:…`, `muc:…`): its fixed prefix, a handful of values.
pub fn lane_key_kind(lane: &str) -> &str {
    let end = lane.find([':', '>']).unwrap_or(lane.len());
    &lane[..end]
}

fn refusal_label(kind: RefusalKind) -> &'static str {
    match kind {
        RefusalKind::BadRequest => "bad_request",
        RefusalKind::BadAddress => "bad_address",
        RefusalKind::NotFound => "not_found",
        RefusalKind::Policy => "policy",
        RefusalKind::Forbidden => "forbidden",
        RefusalKind::MembersOnly => "members_only",
        RefusalKind::Full => "full",
        RefusalKind::Conflict => "conflict",
        RefusalKind::Unsupported => "unsupported",
        RefusalKind::Internal => "internal",
        RefusalKind::Busy => "busy",
    }
}

/// An outbox action was delivered, `waited` after it was queued.
pub fn delivered(lane: &Lane, waited: Duration) {
    let direction = direction_label(lane.direction);
    let kind = kind_label(&lane.conversation);
    counter!("ucbridge_bridged_total", "direction" => direction, "kind" => kind).increment(1);
    histogram!(DELIVERY_SECONDS, "direction" => direction).record(waited.as_secs_f64());
}

/// An outbox action was given up (the peer refused it for good); its sender is told.
pub fn given_up(lane: &Lane) {
    counter!("ucbridge_given_up_total", "direction" => direction_label(lane.direction), "kind" => kind_label(&lane.conversation))
        .increment(1);
}

/// An outbox action failed for now and will be retried.
pub fn delivery_retry(lane: &Lane) {
    counter!("ucbridge_delivery_retries_total", "direction" => direction_label(lane.direction)).increment(1);
}

/// The bridge refused what someone asked (told them why).
pub fn refused(kind: RefusalKind) {
    counter!("ucbridge_refusals_total", "reason" => refusal_label(kind)).increment(1);
}

/// The outbox now: per lane kind, the actions waiting and the age of the oldest.
pub fn outbox(per_kind: &[(String, u64, Duration)]) {
    for (kind, depth, oldest) in per_kind {
        gauge!("ucbridge_outbox_depth", "lane" => kind.clone()).set(*depth as f64);
        gauge!("ucbridge_outbox_oldest_seconds", "lane" => kind.clone()).set(oldest.as_secs_f64());
    }
}

/// A lane kind that had actions waiting has none now.
pub fn outbox_empty(kind: &str) {
    gauge!("ucbridge_outbox_depth", "lane" => kind.to_owned()).set(0.0);
    gauge!("ucbridge_outbox_oldest_seconds", "lane" => kind.to_owned()).set(0.0);
}

/// A peer link the bridge depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Link {
    Homeserver,
    Xmpp,
}

impl Link {
    pub fn label(self) -> &'static str {
        match self {
            Link::Homeserver => "homeserver",
            Link::Xmpp => "xmpp",
        }
    }
}

/// Whether a link is up now.
pub fn link_up(link: Link, up: bool) {
    gauge!("ucbridge_connected", "peer" => link.label()).set(if up { 1.0 } else { 0.0 });
}

/// A link came back (or, for XMPP, the component connected again) after being lost.
pub fn reconnected(link: Link) {
    counter!("ucbridge_reconnects_total", "peer" => link.label()).increment(1);
}

/// An appservice transaction arrived.
pub fn transaction_received() {
    counter!("ucbridge_transactions_total").increment(1);
}

/// An appservice transaction was one already handled (the homeserver retried it).
pub fn transaction_duplicate() {
    counter!("ucbridge_transactions_duplicate_total").increment(1);
}

/// An SMS went to the gateway in `parts` segments, or failed.
pub fn sms_sent(parts: usize) {
    counter!("ucbridge_sms_sent_total").increment(1);
    counter!("ucbridge_sms_parts_total").increment(parts as u64);
}

/// An SMS the gateway did not take (for now or for good).
pub fn sms_failed() {
    counter!("ucbridge_sms_failed_total").increment(1);
}

/// A missed-call notice was queued on `channel` (`matrix`, `xmpp`, `sms`, `mail`).
pub fn missed_call_notice(channel: &'static str) {
    counter!("ucbridge_missed_call_notices_total", "channel" => channel).increment(1);
}

/// A notice e-mail failed for now and will be retried.
pub fn mail_retry() {
    counter!("ucbridge_mail_retries_total").increment(1);
}

/// An HTTP request was answered. `route` is the matched route's pattern (never the raw path:
/// media tokens and transaction ids would make a series each).
pub fn http_request(route: &str, status: u16) {
    counter!("ucbridge_http_requests_total", "route" => route.to_owned(), "status" => status.to_string()).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_keys_kind_is_its_prefix() {
        assert_eq!(lane_key_kind("x2m:alice@x>@bob:hs"), "x2m");
        assert_eq!(lane_key_kind("bridge>alice@x"), "bridge");
        assert_eq!(lane_key_kind("mail>a@b,c@d"), "mail");
        assert_eq!(lane_key_kind("sms:@a:hs>+4912"), "sms");
        assert_eq!(lane_key_kind("odd"), "odd");
    }
}
