//! The call state machine: one call with its ringing legs, fed [`CallEvent`]s in order.
//!
//! A PBX rings phones in many patterns (a ring group rings several at once, a hunt group or queue
//! rings them one after another and may come back to the first, a phone forwards the call to
//! another one, a colleague picks it up from their own phone). All of these belong to one call,
//! and the missed-call notice is about the call, so at the end a call folds into one
//! [`CallSummary`] where every extension appears once, however often its phone rang.
//!
//! Plain code without I/O: the webhook handler and the AMI client feed a [`CallTracker`] and hand
//! the summaries to the rules in [`super::rules`].

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::event::{CallEvent, CallId, Caller, Direction, Extension, LegId, LegOutcome, UnixMillis};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("event {kind} for call {call_id}, which was never created")]
    UnknownCall { call_id: CallId, kind: &'static str },
    #[error("event {kind} for call {call_id}, which has already ended")]
    AlreadyEnded { call_id: CallId, kind: &'static str },
    #[error("call {0} was created twice with different details")]
    Recreated(CallId),
    #[error("leg {leg_id} of call {call_id} ended without having rung")]
    UnknownLeg { call_id: CallId, leg_id: LegId },
    #[error("leg {leg_id} of call {call_id} rang at two different extensions")]
    LegMoved { call_id: CallId, leg_id: LegId },
    #[error("event for call {got} fed to call {expected}")]
    WrongCall { expected: CallId, got: CallId },
}

/// Who took the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub by: Extension,
    pub at: UnixMillis,
    /// Taken by a phone that was not ringing for this call (call pickup), or flagged as a pickup
    /// by the PBX.
    pub pickup: bool,
}

/// One extension's part in a call, all of its legs folded together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub extension: Extension,
    /// When this extension's phone first rang for the call.
    pub first_ring_at: UnixMillis,
    /// When it last started ringing (differs from `first_ring_at` in cyclic distribution).
    pub last_ring_at: UnixMillis,
    /// Time it spent ringing, overlapping legs counted once.
    pub ring_ms: i64,
    /// How many legs rang at this extension.
    pub rings: u32,
    /// This extension took the call.
    pub answered: bool,
    /// Where this extension's phone forwarded the call, if it did.
    pub redirected_to: Option<String>,
}

/// A finished call, as the rules and the journal see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSummary {
    pub call_id: CallId,
    /// The call this one was transferred from, if any.
    pub original_call_id: Option<CallId>,
    pub direction: Direction,
    pub caller: Caller,
    pub called: String,
    pub started_at: UnixMillis,
    pub ended_at: UnixMillis,
    pub end_cause: String,
    /// Every extension that rang, ordered by first ring (then by event order).
    pub participants: Vec<Participant>,
    pub answered: Option<Answer>,
}

impl CallSummary {
    /// Nobody took the call.
    pub fn is_missed(&self) -> bool {
        self.answered.is_none()
    }

    /// The extension whose phone rang first.
    pub fn first_rung(&self) -> Option<&Participant> {
        self.participants.first()
    }

    /// The extension whose phone started ringing last (ties: the one that rang later in the
    /// event order).
    pub fn last_rung(&self) -> Option<&Participant> {
        self.participants.iter().max_by_key(|p| p.last_ring_at)
    }

    pub fn participant(&self, extension: &Extension) -> Option<&Participant> {
        self.participants.iter().find(|p| &p.extension == extension)
    }

    pub fn duration_ms(&self) -> i64 {
        (self.ended_at - self.started_at).max(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Leg {
    id: LegId,
    extension: Extension,
    ring_start: UnixMillis,
    ring_end: Option<UnixMillis>,
    outcome: Option<LegOutcome>,
}

/// One call in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    call_id: CallId,
    caller: Caller,
    called: String,
    direction: Direction,
    original_call_id: Option<CallId>,
    started_at: UnixMillis,
    legs: Vec<Leg>,
    answer: Option<Answer>,
    ended: Option<(UnixMillis, String)>,
    last_event_at: UnixMillis,
}

impl Call {
    pub fn new(
        call_id: CallId,
        caller: Caller,
        called: String,
        direction: Direction,
        original_call_id: Option<CallId>,
        at: UnixMillis,
    ) -> Self {
        Self {
            call_id,
            caller,
            called,
            direction,
            original_call_id,
            started_at: at,
            legs: Vec::new(),
            answer: None,
            ended: None,
            last_event_at: at,
        }
    }

    pub fn call_id(&self) -> &CallId {
        &self.call_id
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Who took the call, once someone did.
    pub fn answer(&self) -> Option<&Answer> {
        self.answer.as_ref()
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Has this leg rung before (a repeated event)?
    pub fn has_leg(&self, leg: &LegId) -> bool {
        self.legs.iter().any(|l| &l.id == leg)
    }

    /// Apply one event. Repeated events (same leg ringing again, the same answer twice) are
    /// ignored, so a replayed webhook request changes nothing. Returns the summary when the
    /// event ended the call.
    pub fn apply(&mut self, event: &CallEvent) -> Result<Option<CallSummary>, ModelError> {
        if event.call_id() != &self.call_id {
            return Err(ModelError::WrongCall { expected: self.call_id.clone(), got: event.call_id().clone() });
        }
        if self.ended.is_some() {
            return Err(ModelError::AlreadyEnded { call_id: self.call_id.clone(), kind: event.kind() });
        }
        self.last_event_at = self.last_event_at.max(event.at());
        match event {
            CallEvent::CallCreated { caller, called, direction, .. } => {
                // A repeat of our own creation is harmless; anything else is confusion upstream.
                if caller != &self.caller || called != &self.called || direction != &self.direction {
                    return Err(ModelError::Recreated(self.call_id.clone()));
                }
            }
            CallEvent::LegRinging { leg_id, extension, at, .. } => {
                if let Some(leg) = self.legs.iter().find(|l| &l.id == leg_id) {
                    if &leg.extension != extension {
                        return Err(ModelError::LegMoved { call_id: self.call_id.clone(), leg_id: leg_id.clone() });
                    }
                } else {
                    self.legs.push(Leg {
                        id: leg_id.clone(),
                        extension: extension.clone(),
                        ring_start: *at,
                        ring_end: None,
                        outcome: None,
                    });
                }
            }
            CallEvent::LegEnded { leg_id, outcome, at, .. } => {
                let Some(leg) = self.legs.iter_mut().find(|l| &l.id == leg_id) else {
                    return Err(ModelError::UnknownLeg { call_id: self.call_id.clone(), leg_id: leg_id.clone() });
                };
                if leg.outcome.is_none() {
                    leg.ring_end = Some((*at).max(leg.ring_start));
                    leg.outcome = Some(outcome.clone());
                    if *outcome == LegOutcome::Answered && self.answer.is_none() {
                        self.answer = Some(Answer { by: leg.extension.clone(), at: *at, pickup: false });
                    }
                }
            }
            CallEvent::CallAnswered { by, pickup, at, .. } => {
                // The first answer wins: later ones are repeats or in-call transfers, which the
                // PBX reports as a new call with `original_call_id`.
                if self.answer.is_none() {
                    let was_ringing_here = self.legs.iter().any(|l| {
                        &l.extension == by && (l.outcome.is_none() || l.outcome == Some(LegOutcome::Answered))
                    });
                    let pickup = *pickup || (!self.legs.is_empty() && !was_ringing_here);
                    self.answer = Some(Answer { by: by.clone(), at: *at, pickup });
                }
            }
            CallEvent::CallEnded { cause, at, .. } => {
                self.ended = Some(((*at).max(self.started_at), cause.clone()));
                return Ok(Some(self.summary()));
            }
        }
        Ok(None)
    }

    /// End a call whose end never arrived (lost event, PBX restart), as of its last event.
    pub fn expire(&mut self, cause: &str) -> CallSummary {
        if self.ended.is_none() {
            self.ended = Some((self.last_event_at, cause.to_owned()));
        }
        self.summary()
    }

    /// The call as it stands; legs still ringing count until the answer or the end.
    pub fn summary(&self) -> CallSummary {
        let (ended_at, end_cause) = self.ended.clone().unwrap_or((self.last_event_at, String::new()));
        let mut participants: Vec<(Participant, Vec<(UnixMillis, UnixMillis)>)> = Vec::new();
        for leg in &self.legs {
            let end = leg
                .ring_end
                .or_else(|| self.answer.as_ref().map(|a| a.at).filter(|&t| t >= leg.ring_start))
                .unwrap_or(ended_at)
                .max(leg.ring_start);
            let answered = self.answer.as_ref().is_some_and(|a| a.by == leg.extension);
            let redirected = match &leg.outcome {
                Some(LegOutcome::Redirected { to }) => Some(to.clone()),
                _ => None,
            };
            match participants.iter_mut().find(|(p, _)| p.extension == leg.extension) {
                Some((p, spans)) => {
                    p.first_ring_at = p.first_ring_at.min(leg.ring_start);
                    p.last_ring_at = p.last_ring_at.max(leg.ring_start);
                    p.rings += 1;
                    if redirected.is_some() {
                        p.redirected_to = redirected;
                    }
                    spans.push((leg.ring_start, end));
                }
                None => participants.push((
                    Participant {
                        extension: leg.extension.clone(),
                        first_ring_at: leg.ring_start,
                        last_ring_at: leg.ring_start,
                        ring_ms: 0,
                        rings: 1,
                        answered,
                        redirected_to: redirected,
                    },
                    vec![(leg.ring_start, end)],
                )),
            }
        }
        let mut participants: Vec<Participant> = participants
            .into_iter()
            .map(|(mut p, spans)| {
                p.ring_ms = union_length(spans);
                p
            })
            .collect();
        // Stable: extensions that started ringing together keep the PBX's order.
        participants.sort_by_key(|p| p.first_ring_at);
        CallSummary {
            call_id: self.call_id.clone(),
            original_call_id: self.original_call_id.clone(),
            direction: self.direction,
            caller: self.caller.clone(),
            called: self.called.clone(),
            started_at: self.started_at,
            ended_at,
            end_cause,
            participants,
            answered: self.answer.clone(),
        }
    }
}

/// Total length covered by possibly overlapping spans (two devices of one extension ringing at
/// once count once).
fn union_length(mut spans: Vec<(UnixMillis, UnixMillis)>) -> i64 {
    spans.sort_unstable();
    let mut total = 0;
    let mut current: Option<(UnixMillis, UnixMillis)> = None;
    for (start, end) in spans {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    total
}

/// How many ended calls we remember so a transferred call can find its original.
const RECENT_CALLS: usize = 1024;

/// All calls in progress, keyed by call id.
#[derive(Debug, Default)]
pub struct CallTracker {
    calls: HashMap<CallId, Call>,
    recent: VecDeque<(CallId, Caller, Direction)>,
}

impl CallTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply one event; returns the summary when the call ended.
    ///
    /// A call created by a transfer (`original_call_id` set) takes the caller and direction of
    /// the call it came from when that call is known: the PBX often shows the transferring
    /// colleague as the caller, but the person to call back is the original caller.
    pub fn apply(&mut self, event: CallEvent) -> Result<Option<CallSummary>, ModelError> {
        let call_id = event.call_id().clone();
        if let Some(call) = self.calls.get_mut(&call_id) {
            let result = call.apply(&event)?;
            if let Some(summary) = &result {
                self.calls.remove(&call_id);
                self.remember(summary);
            }
            return Ok(result);
        }
        if self.recent.iter().any(|(id, _, _)| id == &call_id) {
            return Err(ModelError::AlreadyEnded { call_id, kind: event.kind() });
        }
        let CallEvent::CallCreated { call_id, mut caller, called, mut direction, original_call_id, at } = event else {
            return Err(ModelError::UnknownCall { call_id, kind: event.kind() });
        };
        if let Some(original) = &original_call_id
            && let Some((orig_caller, orig_direction)) = self.lookup(original)
        {
            caller = orig_caller;
            direction = orig_direction;
        }
        self.calls.insert(call_id.clone(), Call::new(call_id, caller, called, direction, original_call_id, at));
        Ok(None)
    }

    fn lookup(&self, call_id: &CallId) -> Option<(Caller, Direction)> {
        if let Some(call) = self.calls.get(call_id) {
            return Some((call.caller.clone(), call.direction));
        }
        self.recent.iter().rev().find(|(id, _, _)| id == call_id).map(|(_, c, d)| (c.clone(), *d))
    }

    fn remember(&mut self, summary: &CallSummary) {
        if self.recent.len() == RECENT_CALLS {
            self.recent.pop_front();
        }
        self.recent.push_back((summary.call_id.clone(), summary.caller.clone(), summary.direction));
    }

    /// A call in progress.
    pub fn get(&self, call_id: &CallId) -> Option<&Call> {
        self.calls.get(call_id)
    }

    /// The extension `event` makes ring anew: a leg not seen before, of a call in progress that
    /// nobody has answered yet (repeats and replays of a known leg are not new rings).
    pub fn new_ring(&self, event: &CallEvent) -> Option<Extension> {
        let CallEvent::LegRinging { call_id, leg_id, extension, .. } = event else { return None };
        let call = self.calls.get(call_id)?;
        (call.answer.is_none() && !call.has_leg(leg_id)).then(|| extension.clone())
    }

    /// Number of calls still in progress.
    pub fn active(&self) -> usize {
        self.calls.len()
    }

    /// End every call with no event since `before` (its end was lost) and return their summaries.
    pub fn expire_idle(&mut self, before: UnixMillis) -> Vec<CallSummary> {
        let stale: Vec<CallId> =
            self.calls.iter().filter(|(_, c)| c.last_event_at < before).map(|(id, _)| id.clone()).collect();
        let mut out = Vec::new();
        for id in stale {
            if let Some(mut call) = self.calls.remove(&id) {
                let summary = call.expire("expired");
                self.remember(&summary);
                out.push(summary);
            }
        }
        out.sort_by_key(|s| s.started_at);
        out
    }
}

/// Builders for event sequences, shared by the tests of this module, the rules and the AMI
/// translator.
#[cfg(test)]
pub(crate) mod script {
    use super::*;

    pub const T0: UnixMillis = 1_700_000_000_000;

    pub fn created(call: &str, number: Option<&str>, direction: Direction, at_s: i64) -> CallEvent {
        CallEvent::CallCreated {
            call_id: CallId::new(call),
            caller: Caller { number: number.map(str::to_owned), name: None, hidden: false },
            called: "+4930555100".into(),
            direction,
            original_call_id: None,
            at: T0 + at_s * 1000,
        }
    }

    pub fn ring(call: &str, leg: &str, ext: &str, at_s: i64) -> CallEvent {
        CallEvent::LegRinging {
            call_id: CallId::new(call),
            leg_id: LegId::new(leg),
            extension: Extension::new(ext),
            at: T0 + at_s * 1000,
        }
    }

    pub fn leg_end(call: &str, leg: &str, outcome: LegOutcome, at_s: i64) -> CallEvent {
        CallEvent::LegEnded { call_id: CallId::new(call), leg_id: LegId::new(leg), outcome, at: T0 + at_s * 1000 }
    }

    pub fn answer(call: &str, by: &str, pickup: bool, at_s: i64) -> CallEvent {
        CallEvent::CallAnswered { call_id: CallId::new(call), by: Extension::new(by), pickup, at: T0 + at_s * 1000 }
    }

    pub fn end(call: &str, at_s: i64) -> CallEvent {
        CallEvent::CallEnded { call_id: CallId::new(call), cause: "normal_clearing".into(), at: T0 + at_s * 1000 }
    }

    /// Run events through a fresh tracker and return the one summary they produce.
    pub fn run(events: Vec<CallEvent>) -> CallSummary {
        let mut tracker = CallTracker::new();
        let mut out = None;
        for e in events {
            if let Some(s) = tracker.apply(e).expect("valid event") {
                out = Some(s);
            }
        }
        out.expect("the call ended")
    }

    /// Inbound call from +4930123456 with one extension ringing `secs` seconds, unanswered.
    pub fn direct_unanswered(call: &str, ext: &str, secs: i64) -> Vec<CallEvent> {
        vec![
            created(call, Some("+4930123456"), Direction::Inbound, 0),
            ring(call, &format!("{call}-l1"), ext, 0),
            leg_end(call, &format!("{call}-l1"), LegOutcome::Cancelled, secs),
            end(call, secs),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::script::*;
    use super::*;

    fn ext(e: &str) -> Extension {
        Extension::new(e)
    }

    #[test]
    fn direct_call_unanswered() {
        let s = run(direct_unanswered("c", "201", 12));
        assert!(s.is_missed());
        assert_eq!(s.participants.len(), 1);
        let p = &s.participants[0];
        assert_eq!((p.extension.as_str(), p.ring_ms, p.rings, p.answered), ("201", 12_000, 1, false));
        assert_eq!(s.duration_ms(), 12_000);
        assert_eq!(s.end_cause, "normal_clearing");
        assert_eq!(s.caller.visible_number(), Some("+4930123456"));
    }

    #[test]
    fn direct_call_answered() {
        let s = run(vec![
            created("c", Some("+491"), Direction::Inbound, 0),
            ring("c", "l1", "201", 0),
            leg_end("c", "l1", LegOutcome::Answered, 4),
            answer("c", "201", false, 4),
            end("c", 60),
        ]);
        assert!(!s.is_missed());
        assert_eq!(s.answered, Some(Answer { by: ext("201"), at: T0 + 4000, pickup: false }));
        assert_eq!(s.participants[0].ring_ms, 4000);
        assert!(s.participants[0].answered);
    }

    #[test]
    fn leg_answered_without_call_answered_event_still_counts() {
        let s = run(vec![
            created("c", Some("+491"), Direction::Inbound, 0),
            ring("c", "l1", "201", 0),
            leg_end("c", "l1", LegOutcome::Answered, 3),
            end("c", 30),
        ]);
        assert_eq!(s.answered.map(|a| (a.by, a.pickup)), Some((ext("201"), false)));
    }

    #[test]
    fn parallel_ring_group_unanswered() {
        let s = run(vec![
            created("c", Some("+491"), Direction::Inbound, 0),
            ring("c", "a", "201", 0),
            ring("c", "b", "202", 0),
            ring("c", "d", "203", 0),
            leg_end("c", "a", LegOutcome::Cancelled, 20),
            leg_end("c", "b", LegOutcome::Cancelled, 20),
            leg_end("c", "d", LegOutcome::Busy, 0),
            end("c", 20),
        ]);
        let exts: Vec<_> = s.participants.iter().map(|p| (p.extension.as_str(), p.ring_ms)).collect();
        assert_eq!(exts, [("201", 20_000), ("202", 20_000), ("203", 0)]);
        assert_eq!(s.first_rung().map(|p| p.extension.as_str()), Some("201"));
        // All rang at once: the last one in the PBX's order counts as last.
        assert_eq!(s.last_rung().map(|p| p.extension.as_str()), Some("203"));
    }

    #[test]
    fn ring_group_answered_by_one_member() {
        let s = run(vec![
            created("c", Some("+491"), Direction::Inbound, 0),
            ring("c", "a", "201", 0),
            ring("c", "b", "202", 0),
            answer("c", "202", false, 5),
            end("c", 50),
        ]);
        let a = s.answered.clone().expect("answered");
        assert_eq!((a.by.as_str(), a.pickup), ("202", false));
        // 201's leg never got an end event: it stopped ringing when 202 answered.
        assert_eq!(s.participant(&ext("201")).map(|p| (p.ring_ms, p.answered)), Some((5000, false)));
        assert_eq!(s.participant(&ext("202")).map(|p| p.answered), Some(true));
    }

    #[test]
    fn cyclic_distribution_lists_each_person_once() {
        let s = run(vec![
            created("c", Some("+491"), Direction::Inbound, 0),
            ring("c", "1", "201", 0),
            leg_end("c", "1", LegOutcome::NoAnswer, 10),
            ring("c", "2", "202", 10),
            leg_end("c", "2", LegOutcome::NoAnswer, 20),
            ring("c", "3", "201", 20),
            leg_end("c", "3", LegOutcome::NoAnswer, 30),
            ring("c", "4", "202", 30),
            leg_end("c", "4", LegOutcome::Cancelled, 33),
            end("c", 33),
        ]);
        assert_eq!(s.participants.len(), 2);
        let p201 = s.participant(&ext("201")).expect("201 rang");
        assert_eq!((p201.first_ring_at, p201.last_ring_at, p201.ring_ms, p201.rings), (T0, T0 + 20_000, 20_000, 2));
        let p202 = s.participant(&ext("202")).expect("202 rang");
        assert_eq!((p202.ring_ms, p202.rings), (13_000, 2));
        assert_eq!(s.first_rung().map(|p| p.extension.as_str()), Some("201"));
        assert_eq!(s.last_rung().map(|p| p.extension.as_str()), Some("202"));
    }

    #[test]
    fn overlapping_legs_at_one_extension_count_once() {
        let s = run(vec![
            created("c", Some("+491"), Direction::Inbound, 0),
            ring("c", "desk", "201", 0),
            ring("c", "soft", "201", 2),
            leg_end("c", "desk", LegOutcome::Cancelled, 10),
            leg_end("c", "soft", LegOutcome::Cancelled, 12),
            end("c", 12),
        ]);
        assert_eq!(s.participants.len(), 1);
        assert_eq!(s.participants[0].ring_ms, 12_000);
        assert_eq!(s.participants[0].rings, 2);
    }

    #[test]
    fn redirection_keeps_both_extensions_in_one_call() {
        let s = run(vec![
            created("c", Some("+491"), Direction::Inbound, 0),
            ring("c", "1", "201", 0),
            leg_end("c", "1", LegOutcome::Redirected { to: "301".into() }, 15),
            ring("c", "2", "301", 15),
            leg_end("c", "2", LegOutcome::Cancelled, 25),
            end("c", 25),
        ]);
        assert!(s.is_missed());
        assert_eq!(s.participant(&ext("201")).and_then(|p| p.redirected_to.clone()), Some("301".into()));
        assert_eq!(s.first_rung().map(|p| p.extension.as_str()), Some("201"));
        assert_eq!(s.last_rung().map(|p| p.extension.as_str()), Some("301"));
    }

    #[test]
    fn pickup_by_an_extension_that_was_not_ringing() {
        let s = run(vec![
            created("c", Some("+491"), Direction::Inbound, 0),
            ring("c", "1", "201", 0),
            answer("c", "205", false, 6),
            leg_end("c", "1", LegOutcome::Cancelled, 6),
            end("c", 40),
        ]);
        let a = s.answered.clone().expect("answered");
        assert_eq!((a.by.as_str(), a.pickup), ("205", true));
        assert!(s.participant(&ext("205")).is_none(), "the picker never rang");
        assert_eq!(s.participants[0].ring_ms, 6000);
    }

    #[test]
    fn pickup_flag_from_the_pbx_is_kept_for_a_ringing_member() {
        let s = run(vec![
            created("c", Some("+491"), Direction::Inbound, 0),
            ring("c", "1", "201", 0),
            ring("c", "2", "202", 0),
            answer("c", "202", true, 6),
            end("c", 40),
        ]);
        assert_eq!(s.answered.map(|a| a.pickup), Some(true));
    }

    #[test]
    fn answer_after_the_answering_leg_ended_is_not_a_pickup() {
        let s = run(vec![
            created("c", Some("+491"), Direction::Inbound, 0),
            ring("c", "1", "201", 0),
            leg_end("c", "1", LegOutcome::Answered, 3),
            answer("c", "201", false, 3),
            end("c", 40),
        ]);
        assert_eq!(s.answered.map(|a| a.pickup), Some(false));
    }

    #[test]
    fn first_answer_wins() {
        let s = run(vec![
            created("c", Some("+491"), Direction::Inbound, 0),
            ring("c", "1", "201", 0),
            answer("c", "201", false, 3),
            answer("c", "202", false, 9),
            end("c", 40),
        ]);
        assert_eq!(s.answered.map(|a| a.by), Some(ext("201")));
    }

    #[test]
    fn transfer_inherits_the_original_caller() {
        let mut t = CallTracker::new();
        for e in [
            created("a", Some("+4930123456"), Direction::Inbound, 0),
            ring("a", "1", "201", 0),
            answer("a", "201", false, 2),
        ] {
            assert_eq!(t.apply(e), Ok(None));
        }
        // 201 transfers: the PBX shows 201 as the caller of the new call to 202.
        let transferred = CallEvent::CallCreated {
            call_id: CallId::new("b"),
            caller: Caller::with_number("201"),
            called: "202".into(),
            direction: Direction::Internal,
            original_call_id: Some(CallId::new("a")),
            at: T0 + 30_000,
        };
        assert_eq!(t.apply(transferred), Ok(None));
        assert!(t.apply(end("a", 31)).expect("ok").is_some());
        t.apply(ring("b", "2", "202", 31)).expect("ok");
        let s = t.apply(end("b", 45)).expect("ok").expect("ended");
        assert_eq!(s.original_call_id, Some(CallId::new("a")));
        assert_eq!(s.caller.visible_number(), Some("+4930123456"));
        assert_eq!(s.direction, Direction::Inbound);
        assert_eq!(s.called, "202");
        assert!(s.is_missed());
    }

    #[test]
    fn transfer_from_an_unknown_call_keeps_its_own_caller() {
        let mut t = CallTracker::new();
        let e = CallEvent::CallCreated {
            call_id: CallId::new("b"),
            caller: Caller::with_number("201"),
            called: "202".into(),
            direction: Direction::Internal,
            original_call_id: Some(CallId::new("gone")),
            at: T0,
        };
        t.apply(e).expect("ok");
        let s = t.apply(end("b", 1)).expect("ok").expect("ended");
        assert_eq!((s.caller.visible_number(), s.direction), (Some("201"), Direction::Internal));
    }

    #[test]
    fn repeated_events_change_nothing() {
        let once = run(direct_unanswered("c", "201", 8));
        let mut twice = Vec::new();
        for e in direct_unanswered("c", "201", 8) {
            if !matches!(e, CallEvent::CallEnded { .. }) {
                twice.push(e.clone());
            }
            twice.push(e);
        }
        assert_eq!(run(twice), once);
    }

    #[test]
    fn inconsistent_events_are_errors() {
        let mut t = CallTracker::new();
        assert!(matches!(t.apply(ring("x", "1", "201", 0)), Err(ModelError::UnknownCall { .. })));
        t.apply(created("c", Some("+491"), Direction::Inbound, 0)).expect("ok");
        assert_eq!(
            t.apply(created("c", Some("+492"), Direction::Inbound, 0)),
            Err(ModelError::Recreated(CallId::new("c")))
        );
        assert!(matches!(t.apply(leg_end("c", "1", LegOutcome::NoAnswer, 1)), Err(ModelError::UnknownLeg { .. })));
        t.apply(ring("c", "1", "201", 0)).expect("ok");
        assert!(matches!(t.apply(ring("c", "1", "202", 0)), Err(ModelError::LegMoved { .. })));
        t.apply(end("c", 5)).expect("ok");
        assert!(matches!(t.apply(end("c", 6)), Err(ModelError::AlreadyEnded { .. })));
        assert_eq!(t.active(), 0);

        let mut call = Call::new(CallId::new("a"), Caller::hidden(), "1".into(), Direction::Inbound, None, T0);
        assert!(matches!(call.apply(&end("b", 1)), Err(ModelError::WrongCall { .. })));
    }

    #[test]
    fn idle_calls_expire_with_their_last_event_time() {
        let mut t = CallTracker::new();
        t.apply(created("c", Some("+491"), Direction::Inbound, 0)).expect("ok");
        t.apply(ring("c", "1", "201", 1)).expect("ok");
        t.apply(created("d", Some("+492"), Direction::Inbound, 100)).expect("ok");
        let expired = t.expire_idle(T0 + 50_000);
        assert_eq!(expired.len(), 1);
        let s = &expired[0];
        assert_eq!((s.call_id.as_str(), s.end_cause.as_str(), s.ended_at), ("c", "expired", T0 + 1000));
        assert_eq!(t.active(), 1);
    }

    #[test]
    fn union_length_merges_overlaps() {
        assert_eq!(union_length(vec![]), 0);
        assert_eq!(union_length(vec![(0, 10), (5, 15), (20, 25)]), 20);
        assert_eq!(union_length(vec![(20, 25), (0, 10), (10, 12)]), 17);
    }
}
