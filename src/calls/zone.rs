//! The time zone of the missed-call module: the times shown in notices and the midnight of the
//! "repeated calls on the same day" exception. An IANA zone (`mail.time_zone`) follows daylight
//! saving; the older fixed `mail.utc_offset_minutes` is still read and stays fixed all year.

use chrono::{DateTime, Days, Offset as _, TimeZone as _, Utc};
use chrono_tz::Tz;

use super::event::UnixMillis;

#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("{0:?} is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)")]
    Unknown(String),
    #[error("offset {0} is not between -840 and 840 minutes")]
    Offset(i32),
}

/// Where the module's local times are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallZone {
    /// A fixed offset from UTC in minutes (no daylight saving).
    Fixed(i32),
    /// An IANA zone such as `Europe/Berlin`.
    Named(Tz),
}

impl Default for CallZone {
    fn default() -> Self {
        CallZone::Fixed(0)
    }
}

impl CallZone {
    pub fn named(name: &str) -> Result<Self, ZoneError> {
        name.trim().parse::<Tz>().map(CallZone::Named).map_err(|_| ZoneError::Unknown(name.to_owned()))
    }

    pub fn fixed(minutes: i32) -> Result<Self, ZoneError> {
        if (-14 * 60..=14 * 60).contains(&minutes) {
            Ok(CallZone::Fixed(minutes))
        } else {
            Err(ZoneError::Offset(minutes))
        }
    }

    /// The offset from UTC in effect at `at`, in minutes.
    pub fn offset_minutes(&self, at: UnixMillis) -> i32 {
        match self {
            CallZone::Fixed(m) => *m,
            CallZone::Named(tz) => {
                let utc = utc(at);
                tz.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc() / 60
            }
        }
    }

    /// The local midnight that starts the day `at` falls on, as Unix milliseconds. A day with a
    /// daylight-saving change is 23 or 25 hours long, so this is not `at` rounded to 24 hours.
    pub fn day_start(&self, at: UnixMillis) -> UnixMillis {
        match self {
            CallZone::Fixed(m) => {
                let offset = i64::from(*m) * 60_000;
                (at + offset).div_euclid(DAY_MS) * DAY_MS - offset
            }
            CallZone::Named(tz) => {
                let date = utc(at).with_timezone(tz).date_naive();
                // A zone whose clocks jump at midnight has no 00:00 that day: the first hour
                // that exists starts it.
                (0..=3)
                    .filter_map(|h| date.and_hms_opt(h, 0, 0))
                    .find_map(|local| tz.from_local_datetime(&local).earliest())
                    .map_or_else(|| at - at.rem_euclid(DAY_MS), |start| start.timestamp_millis())
            }
        }
    }

    /// The next local midnight after the day of `at` (for tests and bounds).
    pub fn next_day_start(&self, at: UnixMillis) -> UnixMillis {
        let start = self.day_start(at);
        match self {
            CallZone::Fixed(_) => start + DAY_MS,
            CallZone::Named(tz) => {
                let date = utc(start).with_timezone(tz).date_naive();
                let next = date.checked_add_days(Days::new(1)).and_then(|d| d.and_hms_opt(0, 0, 0));
                next.and_then(|n| tz.from_local_datetime(&n).earliest())
                    .map_or(start + DAY_MS, |n| n.timestamp_millis())
            }
        }
    }
}

const DAY_MS: i64 = 24 * 3600 * 1000;

fn utc(at: UnixMillis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600 * 1000;
    /// 2025-03-30 00:00 UTC: in Berlin the clocks go from 02:00 CET to 03:00 CEST that night.
    const SPRING: i64 = 1_743_292_800_000;
    /// 2025-10-26 00:00 UTC: back from 03:00 CEST to 02:00 CET.
    const AUTUMN: i64 = 1_761_436_800_000;

    fn berlin() -> CallZone {
        CallZone::named("Europe/Berlin").expect("known zone")
    }

    #[test]
    fn offsets_follow_daylight_saving() {
        let z = berlin();
        assert_eq!(z.offset_minutes(SPRING), 60, "01:00 CET");
        assert_eq!(z.offset_minutes(SPRING + 2 * H), 120, "04:00 CEST");
        assert_eq!(z.offset_minutes(AUTUMN), 120);
        assert_eq!(z.offset_minutes(AUTUMN + 2 * H), 60);
        assert_eq!(CallZone::Fixed(60).offset_minutes(SPRING + 2 * H), 60, "a fixed offset never changes");
    }

    #[test]
    fn midnight_across_a_dst_change() {
        let z = berlin();
        // 2025-03-30 is 23 hours long in Berlin: it starts at 23:00 UTC the day before (CET)
        // and the next one at 22:00 UTC (CEST).
        let start = SPRING - H;
        assert_eq!(z.day_start(SPRING + 10 * H), start);
        assert_eq!(z.next_day_start(SPRING + 10 * H), SPRING + 22 * H);
        assert_eq!(z.next_day_start(SPRING) - z.day_start(SPRING), 23 * H);
        // 23:30 local on the 30th (21:30 UTC, CEST) is still that day; 00:10 local on the
        // 31st (22:10 UTC) is the next one. A fixed +01:00 would put both on the 30th.
        assert_eq!(z.day_start(SPRING + 21 * H + H / 2), start);
        assert_eq!(z.day_start(SPRING + 22 * H + H / 6), SPRING + 22 * H);
        let fixed = CallZone::Fixed(60);
        assert_eq!(fixed.day_start(SPRING + 22 * H + H / 6), fixed.day_start(SPRING + 21 * H + H / 2));
        // The autumn day is 25 hours long.
        assert_eq!(z.next_day_start(AUTUMN) - z.day_start(AUTUMN), 25 * H);
    }

    #[test]
    fn fixed_offsets_and_names() {
        assert_eq!(CallZone::Fixed(-330).day_start(0), 330 * 60_000 - 24 * H);
        assert_eq!(CallZone::Fixed(0).day_start(5), 0);
        assert!(matches!(CallZone::named("Mars/Olympus"), Err(ZoneError::Unknown(_))));
        assert!(matches!(CallZone::fixed(900), Err(ZoneError::Offset(900))));
        assert_eq!(CallZone::named("UTC").expect("known").day_start(SPRING + 5), SPRING);
        assert_eq!(CallZone::named(" America/New_York ").expect("known").offset_minutes(SPRING), -240);
    }
}
