//! When a message was written, as opposed to when it arrives: a message that waited (in the
//! outbox, in an XMPP server's offline storage, in a homeserver's backlog) shows its original
//! time on the other side. XMPP → Matrix: the XEP-0203 `<delay stamp>` (or the time the bridge
//! received it) as the event's `origin_server_ts` (the appservice `ts` parameter); Matrix → XMPP:
//! a `<delay>` when the stanza leaves noticeably later than the event was sent.
//! Times are milliseconds since the Unix epoch.

/// The oldest a sender's own claim of when it wrote a message is believed: older stamps (a
/// wrong clock, or a replay) are replaced by the receive time.
pub const MAX_CLAIMED_AGE_MS: i64 = 7 * 24 * 3600 * 1000;

/// How late a message may leave before it carries its original time: clients show a
/// `<delay>`ed message with its stamp, which matters only when it differs noticeably.
pub const LATE_AFTER_MS: i64 = 5_000;

/// When a message received at `received` was written: the sender's `claimed` time when it is
/// believable (not in the future, not older than [`MAX_CLAIMED_AGE_MS`]), else `received`.
pub fn written_at(claimed: Option<i64>, received: i64) -> i64 {
    match claimed {
        Some(t) if t <= received && received.saturating_sub(t) <= MAX_CLAIMED_AGE_MS => t,
        _ => received,
    }
}

/// The time to stamp on a message written at `written` and leaving `now`: `Some` only when it
/// leaves more than [`LATE_AFTER_MS`] late (and the time is not in the future).
pub fn late_stamp(written: Option<i64>, now: i64) -> Option<i64> {
    written.filter(|&t| t <= now && now.saturating_sub(t) > LATE_AFTER_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn a_believable_stamp_is_kept_and_others_become_the_receive_time() {
        assert_eq!(written_at(None, NOW), NOW);
        assert_eq!(written_at(Some(NOW - 3_600_000), NOW), NOW - 3_600_000);
        assert_eq!(written_at(Some(NOW - MAX_CLAIMED_AGE_MS), NOW), NOW - MAX_CLAIMED_AGE_MS);
        assert_eq!(written_at(Some(NOW - MAX_CLAIMED_AGE_MS - 1), NOW), NOW, "too old");
        assert_eq!(written_at(Some(NOW + 1), NOW), NOW, "in the future");
        assert_eq!(written_at(Some(i64::MIN), NOW), NOW);
    }

    #[test]
    fn only_a_late_message_is_stamped() {
        assert_eq!(late_stamp(None, NOW), None);
        assert_eq!(late_stamp(Some(NOW - 1_000), NOW), None, "on time");
        assert_eq!(late_stamp(Some(NOW - LATE_AFTER_MS), NOW), None);
        assert_eq!(late_stamp(Some(NOW - LATE_AFTER_MS - 1), NOW), Some(NOW - LATE_AFTER_MS - 1));
        assert_eq!(late_stamp(Some(NOW + 10_000), NOW), None, "a clock ahead is no delay");
    }
}
