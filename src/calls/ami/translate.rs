//! From Asterisk's channel events to [`CallEvent`]s: the [`Translator`] keeps just enough
//! state per `Linkedid`, and [`vetted`] holds its events to the webhook's rules.

use std::collections::HashMap;
use std::time::Duration;

use super::Frame;
use crate::calls::event::{CallEvent, CallId, Caller, Direction, Extension, LegId, LegOutcome, UnixMillis};
use crate::calls::webhook;

/// How the translator tells internal extensions from outside numbers.
#[derive(Debug, Clone)]
pub struct TranslatorConfig {
    /// Known extensions; when empty, any all-digit number of at most `max_extension_len` digits
    /// counts as one.
    pub extensions: Vec<String>,
    pub max_extension_len: usize,
    /// Forget calls whose end never arrived after this long.
    pub stale_after: Duration,
}

impl Default for TranslatorConfig {
    fn default() -> Self {
        Self { extensions: Vec::new(), max_extension_len: 5, stale_after: Duration::from_secs(12 * 3600) }
    }
}

impl TranslatorConfig {
    pub fn is_extension(&self, number: &str) -> bool {
        if self.extensions.is_empty() {
            !number.is_empty() && number.len() <= self.max_extension_len && number.bytes().all(|b| b.is_ascii_digit())
        } else {
            self.extensions.iter().any(|e| e == number)
        }
    }

    /// Numbers that stay inside the PBX: extensions and feature codes (`*8` pickup, `*97`).
    fn is_internal_target(&self, number: &str) -> bool {
        self.is_extension(number) || number.starts_with(['*', '#'])
    }
}

#[derive(Debug)]
struct LegState {
    extension: Extension,
    ended: bool,
}

#[derive(Debug)]
struct CallState {
    root: String,
    created_at: UnixMillis,
    legs: HashMap<String, LegState>,
    answered: bool,
}

/// Turns AMI events into [`CallEvent`]s, keeping just enough state per `Linkedid`.
#[derive(Debug, Default)]
pub struct Translator {
    config: TranslatorConfig,
    calls: HashMap<String, CallState>,
}

const HIDDEN_NUMBERS: [&str; 6] = ["", "<unknown>", "anonymous", "unknown", "restricted", "private"];

impl Translator {
    pub fn new(config: TranslatorConfig) -> Self {
        Self { config, calls: HashMap::new() }
    }

    /// Calls currently followed.
    pub fn active(&self) -> usize {
        self.calls.len()
    }

    /// Translate one frame. `received_at` is used when the frame has no `Timestamp`.
    pub fn translate(&mut self, frame: &Frame, received_at: UnixMillis) -> Vec<CallEvent> {
        let Some(event) = frame.event() else { return Vec::new() };
        let at = frame.get("Timestamp").and_then(parse_timestamp).unwrap_or(received_at);
        match event {
            "Newchannel" => self.newchannel(frame, at),
            "DialBegin" | "AgentCalled" => self.ringing(frame, at),
            "DialEnd" => self.dial_end(frame, at),
            "AgentRingNoAnswer" => self.leg_done(frame, LegOutcome::NoAnswer, at),
            "AgentConnect" => self.agent_connect(frame, at),
            "QueueCallerAbandon" => self.abandon(frame, at),
            "Pickup" => self.pickup(frame, at),
            "BridgeEnter" => self.bridge_enter(frame, at),
            "Hangup" => self.hangup(frame, at),
            _ => Vec::new(),
        }
    }

    fn newchannel(&mut self, f: &Frame, at: UnixMillis) -> Vec<CallEvent> {
        let (Some(uid), Some(linked)) = (f.get("Uniqueid"), f.get("Linkedid")) else { return Vec::new() };
        if uid != linked || self.calls.contains_key(linked) {
            return Vec::new();
        }
        self.forget_stale(at);
        let raw_number = f.get("CallerIDNum").unwrap_or("").trim();
        let hidden = HIDDEN_NUMBERS.iter().any(|h| raw_number.eq_ignore_ascii_case(h));
        let name = f.get("CallerIDName").map(str::trim).filter(|n| !n.is_empty() && *n != "<unknown>");
        let caller = Caller { number: (!hidden).then(|| raw_number.to_owned()), name: name.map(str::to_owned), hidden };
        let called = f.get("Exten").unwrap_or("").trim().to_owned();
        let from_inside = !hidden && self.config.is_extension(raw_number);
        let direction = match (from_inside, self.config.is_internal_target(&called)) {
            (true, true) => Direction::Internal,
            (true, false) => Direction::Outbound,
            (false, _) => Direction::Inbound,
        };
        self.calls.insert(
            linked.to_owned(),
            CallState { root: uid.to_owned(), created_at: at, legs: HashMap::new(), answered: false },
        );
        vec![CallEvent::CallCreated {
            call_id: CallId::new(linked),
            caller,
            called,
            direction,
            original_call_id: None,
            at,
        }]
    }

    /// The extension a dialled channel rings: `PJSIP/201-0000002a` → `201`. Local channels are
    /// only hops to the real phone (which gets its own `DialBegin`), and trunks lead outside:
    /// neither is a leg.
    fn leg_extension(&self, f: &Frame) -> Option<Extension> {
        let channel = f.get("DestChannel")?;
        let (tech, rest) = channel.split_once('/')?;
        if tech.eq_ignore_ascii_case("Local") {
            return None;
        }
        let resource = rest.rsplit_once('-').map_or(rest, |(r, _)| r);
        let resource = resource.split('@').next().unwrap_or(resource);
        if self.config.is_extension(resource) {
            return Some(Extension::new(resource));
        }
        // Queue members are named by their interface (`PJSIP/202`).
        let interface = f.get("Interface").and_then(|i| i.split_once('/')).map(|(_, r)| r);
        interface.filter(|r| self.config.is_extension(r)).map(Extension::new)
    }

    fn call_of(&self, f: &Frame) -> Option<String> {
        let linked = f.get("DestLinkedid").or_else(|| f.get("Linkedid"))?;
        self.calls.contains_key(linked).then(|| linked.to_owned())
    }

    fn ringing(&mut self, f: &Frame, at: UnixMillis) -> Vec<CallEvent> {
        let (Some(call), Some(ext), Some(leg)) = (self.call_of(f), self.leg_extension(f), f.get("DestUniqueid")) else {
            return Vec::new();
        };
        let Some(state) = self.calls.get_mut(&call) else { return Vec::new() };
        // A queue reports AgentCalled and DialBegin for the same leg.
        if state.legs.contains_key(leg) {
            return Vec::new();
        }
        state.legs.insert(leg.to_owned(), LegState { extension: ext.clone(), ended: false });
        vec![CallEvent::LegRinging { call_id: CallId::new(call), leg_id: LegId::new(leg), extension: ext, at }]
    }

    fn dial_end(&mut self, f: &Frame, at: UnixMillis) -> Vec<CallEvent> {
        let status = f.get("DialStatus").unwrap_or("").to_ascii_uppercase();
        let forward = f.get("Forward").map(str::trim).filter(|s| !s.is_empty());
        let outcome = match (status.as_str(), forward) {
            ("ANSWER", _) => LegOutcome::Answered,
            ("NOANSWER", _) => LegOutcome::NoAnswer,
            ("BUSY" | "CHANUNAVAIL" | "CONGESTION", _) => LegOutcome::Busy,
            (_, Some(to)) => LegOutcome::Redirected { to: to.to_owned() },
            _ => LegOutcome::Cancelled,
        };
        self.leg_done(f, outcome, at)
    }

    fn leg_done(&mut self, f: &Frame, outcome: LegOutcome, at: UnixMillis) -> Vec<CallEvent> {
        let (Some(call), Some(leg)) = (self.call_of(f), f.get("DestUniqueid")) else { return Vec::new() };
        let Some(state) = self.calls.get_mut(&call) else { return Vec::new() };
        let Some(leg_state) = state.legs.get_mut(leg) else { return Vec::new() };
        if leg_state.ended {
            return Vec::new();
        }
        leg_state.ended = true;
        let extension = leg_state.extension.clone();
        let call_id = CallId::new(call);
        let mut out = vec![CallEvent::LegEnded {
            call_id: call_id.clone(),
            leg_id: LegId::new(leg),
            outcome: outcome.clone(),
            at,
        }];
        if outcome == LegOutcome::Answered && !state.answered {
            state.answered = true;
            out.push(CallEvent::CallAnswered { call_id, by: extension, pickup: false, at });
        }
        out
    }

    fn agent_connect(&mut self, f: &Frame, at: UnixMillis) -> Vec<CallEvent> {
        self.leg_done(f, LegOutcome::Answered, at)
    }

    fn abandon(&mut self, f: &Frame, at: UnixMillis) -> Vec<CallEvent> {
        let Some(linked) = f.get("Linkedid") else { return Vec::new() };
        let Some(state) = self.calls.get_mut(linked) else { return Vec::new() };
        let mut out = Vec::new();
        let mut open: Vec<(&String, &mut LegState)> = state.legs.iter_mut().filter(|(_, l)| !l.ended).collect();
        open.sort_by(|a, b| a.0.cmp(b.0));
        for (leg, l) in open {
            l.ended = true;
            out.push(CallEvent::LegEnded {
                call_id: CallId::new(linked),
                leg_id: LegId::new(leg.as_str()),
                outcome: LegOutcome::Cancelled,
                at,
            });
        }
        out
    }

    fn pickup(&mut self, f: &Frame, at: UnixMillis) -> Vec<CallEvent> {
        let Some(linked) = f.get("TargetLinkedid") else { return Vec::new() };
        let picker = f
            .get("Channel")
            .and_then(|c| c.split_once('/'))
            .map(|(_, r)| r.rsplit_once('-').map_or(r, |(r, _)| r))
            .filter(|r| self.config.is_extension(r))
            .map(Extension::new);
        let Some(state) = self.calls.get_mut(linked) else { return Vec::new() };
        let Some(by) = picker else { return Vec::new() };
        let call_id = CallId::new(linked);
        let mut out = Vec::new();
        if !state.answered {
            state.answered = true;
            out.push(CallEvent::CallAnswered { call_id: call_id.clone(), by, pickup: true, at });
        }
        // The picked phone stops ringing; the DialEnd that Asterisk still sends for it (as
        // ANSWER, since the dial was answered through it) must not make it the answerer.
        if let Some(target) = f.get("TargetUniqueid")
            && let Some(leg) = state.legs.get_mut(target)
            && !leg.ended
        {
            leg.ended = true;
            out.push(CallEvent::LegEnded { call_id, leg_id: LegId::new(target), outcome: LegOutcome::Cancelled, at });
        }
        out
    }

    fn bridge_enter(&mut self, f: &Frame, at: UnixMillis) -> Vec<CallEvent> {
        let (Some(uid), Some(linked)) = (f.get("Uniqueid"), f.get("Linkedid")) else { return Vec::new() };
        let Some(state) = self.calls.get_mut(linked) else { return Vec::new() };
        if state.answered {
            return Vec::new();
        }
        let Some(leg) = state.legs.get_mut(uid) else { return Vec::new() };
        state.answered = true;
        let by = leg.extension.clone();
        let mut out = Vec::new();
        if !leg.ended {
            leg.ended = true;
            out.push(CallEvent::LegEnded {
                call_id: CallId::new(linked),
                leg_id: LegId::new(uid),
                outcome: LegOutcome::Answered,
                at,
            });
        }
        out.push(CallEvent::CallAnswered { call_id: CallId::new(linked), by, pickup: false, at });
        out
    }

    fn hangup(&mut self, f: &Frame, at: UnixMillis) -> Vec<CallEvent> {
        let (Some(uid), Some(linked)) = (f.get("Uniqueid"), f.get("Linkedid")) else { return Vec::new() };
        let Some(state) = self.calls.get_mut(linked) else { return Vec::new() };
        if state.root != uid {
            // A phone hung up without a DialEnd (rare): its leg is over.
            if let Some(leg) = state.legs.get_mut(uid)
                && !leg.ended
            {
                leg.ended = true;
                let outcome = match f.get("Cause") {
                    Some("17" | "21") => LegOutcome::Busy,
                    _ => LegOutcome::Cancelled,
                };
                return vec![CallEvent::LegEnded {
                    call_id: CallId::new(linked),
                    leg_id: LegId::new(uid),
                    outcome,
                    at,
                }];
            }
            return Vec::new();
        }
        self.calls.remove(linked);
        let cause =
            f.get("Cause-txt").filter(|c| !c.is_empty()).or_else(|| f.get("Cause")).unwrap_or("unknown").to_owned();
        vec![CallEvent::CallEnded { call_id: CallId::new(linked), cause, at }]
    }

    fn forget_stale(&mut self, now: UnixMillis) {
        let limit = i64::try_from(self.config.stale_after.as_millis()).unwrap_or(i64::MAX);
        self.calls.retain(|_, c| now.saturating_sub(c.created_at) < limit);
    }
}

/// `1700000000.123456` → milliseconds.
pub(super) fn parse_timestamp(value: &str) -> Option<UnixMillis> {
    let (secs, frac) = value.trim().split_once('.').unwrap_or((value.trim(), ""));
    let secs: i64 = secs.parse().ok()?;
    let mut millis_text: String = frac.chars().take(3).collect();
    while millis_text.len() < 3 {
        millis_text.push('0');
    }
    let millis: i64 = millis_text.parse().ok()?;
    secs.checked_mul(1000)?.checked_add(millis)
}

/// An AMI-derived event held to the webhook's rules (`webhook::validate_event`): the caller's
/// name and number are chosen by whoever calls (CallerID), so they are cleaned first (control
/// characters dropped, the name cut to the webhook's limit, a number the webhook would refuse
/// treated as unknown) rather than losing the call; anything still invalid is dropped and logged.
pub fn vetted(mut event: CallEvent) -> Option<CallEvent> {
    let call = event.call_id().clone();
    if let CallEvent::CallCreated { caller, .. } = &mut event {
        if let Some(name) = caller.name.take() {
            let mut clean: String = name.chars().filter(|c| !c.is_control()).collect();
            if clean.len() > webhook::MAX_NAME_LEN {
                let mut cut = webhook::MAX_NAME_LEN;
                while !clean.is_char_boundary(cut) {
                    cut -= 1;
                }
                clean.truncate(cut);
            }
            let clean = clean.trim();
            caller.name = (!clean.is_empty()).then(|| clean.to_owned());
        }
        if caller.number.as_deref().is_some_and(|n| !webhook::is_number_text(n)) {
            tracing::info!(%call, "AMI caller number is not a phone number; treating it as unknown");
            caller.number = None;
        }
    }
    match webhook::validate_event(&event) {
        Ok(()) => Some(event),
        Err(e) => {
            tracing::warn!(%call, kind = event.kind(), error = %e, "dropping an invalid AMI event");
            None
        }
    }
}
