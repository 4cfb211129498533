//! Rules-engine throughput: synthetic calls (ring groups, pickups, missed direct calls) through
//! `CallTracker` and `rules::decide`, no I/O. `cargo run --release --example calls_bench [CALLS]`.

use std::time::Instant;

use ucbridge::calls::event::{CallEvent, CallId, Caller, Direction, Extension, LegId, LegOutcome};
use ucbridge::calls::model::CallTracker;
use ucbridge::calls::rules::{self, Directory, Facts, RuleSettings, UserEntry};

fn call(n: u64) -> Vec<CallEvent> {
    let id = CallId::new(format!("c{n}"));
    let t0 = 1_700_000_000_000 + i64::try_from(n).unwrap_or(0) * 1000;
    let exts: Vec<String> = (0..1 + n % 4).map(|i| format!("{}", 200 + (n + i) % 50)).collect();
    let mut ev = vec![CallEvent::CallCreated {
        call_id: id.clone(),
        caller: Caller::with_number(format!("+4930{:07}", n % 9_999_999)),
        called: "+49305550100".into(),
        direction: Direction::Inbound,
        original_call_id: None,
        at: t0,
    }];
    for (i, e) in exts.iter().enumerate() {
        let at = t0 + 100 + i64::try_from(i).unwrap_or(0) * 50;
        ev.push(CallEvent::LegRinging {
            call_id: id.clone(),
            leg_id: LegId::new(format!("l{n}-{i}")),
            extension: Extension::new(e),
            at,
        });
    }
    let end = t0 + 15_000;
    let answered = n.is_multiple_of(3);
    if answered {
        ev.push(CallEvent::CallAnswered {
            call_id: id.clone(),
            by: Extension::new(&exts[0]),
            pickup: n.is_multiple_of(2),
            at: end,
        });
    }
    for (i, _) in exts.iter().enumerate() {
        let outcome = if answered && i == 0 { LegOutcome::Answered } else { LegOutcome::NoAnswer };
        ev.push(CallEvent::LegEnded { call_id: id.clone(), leg_id: LegId::new(format!("l{n}-{i}")), outcome, at: end });
    }
    ev.push(CallEvent::CallEnded { call_id: id, cause: "normal_clearing".into(), at: end + 1000 });
    ev
}

fn main() {
    let calls: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let users: Vec<UserEntry> = (200..250)
        .map(|e| UserEntry {
            email: Some(format!("u{e}@example.org")),
            ..UserEntry::new(&format!("u{e}"), &[&e.to_string()])
        })
        .collect();
    let directory = Directory::new(users);
    let settings = RuleSettings::default();
    let facts = Facts::default();
    let all: Vec<Vec<CallEvent>> = (0..calls).map(call).collect();
    let events: usize = all.iter().map(Vec::len).sum();
    let mut tracker = CallTracker::new();
    let (mut summaries, mut notices) = (0u64, 0usize);
    let start = Instant::now();
    for evs in all {
        for e in evs {
            if let Ok(Some(summary)) = tracker.apply(e) {
                summaries += 1;
                notices += rules::decide(&settings, &directory, &summary, &facts).notices.len();
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{calls} calls, {events} events, {summaries} summaries, {notices} notices in {secs:.3} s: \
         {:.0} events/s, {:.0} calls/s",
        events as f64 / secs,
        summaries as f64 / secs
    );
}
