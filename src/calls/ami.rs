//! Asterisk Manager Interface (AMI) input: a frame parser, a translator from Asterisk's channel
//! events to [`CallEvent`]s, and a TCP client that logs in and reconnects.
//!
//! Asterisk reports channels, not calls. Every channel carries a `Linkedid`, the `Uniqueid` of the
//! oldest channel of the call, so all channels of one call (the caller's, each phone dialled,
//! the Local channels of ring groups and forwards) share it; it becomes the [`CallId`]. Each
//! phone that is dialled is a leg, identified by its own `Uniqueid`.
//!
//! Events read (Asterisk 12+ names, checked against the Asterisk 18 documentation):
//! `Newchannel` (the call's first channel creates the call), `DialBegin` / `DialEnd` (a phone
//! rings / stops; `DialStatus` and `Forward` give the outcome), `AgentCalled` /
//! `AgentRingNoAnswer` / `AgentConnect` / `QueueCallerAbandon` (queues), `Pickup`,
//! `BridgeEnter` (an answer when no `DialEnd` said so) and `Hangup` (the first channel's hangup
//! ends the call). Everything else is ignored. Times come from the `Timestamp` header, which
//! needs `timestampevents = yes` in `manager.conf`; without it the time of reading is used.
//!
//! Set-up on the Asterisk side (`manager.conf`): a user with `read = call,agent,dialplan` (the
//! bridge only reads) and `write = system` (for `Login`), `timestampevents = yes`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::event::{CallEvent, CallId, Caller, Direction, Extension, LegId, LegOutcome, UnixMillis};
use super::webhook;

#[derive(Debug, thiserror::Error)]
pub enum AmiError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("frame has more than {0} lines")]
    FrameTooLarge(usize),
    #[error("not an Asterisk manager: banner {0:?}")]
    BadBanner(String),
    #[error("login refused: {0}")]
    LoginRefused(String),
    #[error("connection closed")]
    Closed,
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

/// One AMI message: `Key: Value` lines ended by a blank line. Keys keep their order and case;
/// lookups ignore case, and a repeated key returns its first value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub fields: Vec<(String, String)>,
}

impl Frame {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }

    /// The `Event` name, for events.
    pub fn event(&self) -> Option<&str> {
        self.get("Event")
    }

    /// The `Response` value (`Success`, `Error`, …), for replies to actions.
    pub fn response(&self) -> Option<&str> {
        self.get("Response")
    }

    /// Serialise for sending (actions).
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.fields {
            // An action value with a line break would start a new field: drop such characters.
            let v: String = v.chars().filter(|c| !c.is_control()).collect();
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out
    }
}

/// Most lines accepted in one frame (a `DialEnd` has about 35).
pub const MAX_FRAME_LINES: usize = 512;

/// Builds frames from lines, one line at a time.
#[derive(Debug, Default)]
pub struct FrameParser {
    current: Vec<(String, String)>,
}

impl FrameParser {
    /// Feed one line (without its line end). Returns a frame when the line was the blank line
    /// ending it. Lines without a colon (command output) are skipped.
    pub fn push_line(&mut self, line: &str) -> Result<Option<Frame>, AmiError> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if self.current.is_empty() {
                return Ok(None);
            }
            return Ok(Some(Frame { fields: std::mem::take(&mut self.current) }));
        }
        if self.current.len() >= MAX_FRAME_LINES {
            self.current.clear();
            return Err(AmiError::FrameTooLarge(MAX_FRAME_LINES));
        }
        if let Some((key, value)) = line.split_once(':') {
            self.current.push((key.trim().to_owned(), value.trim_start().to_owned()));
        }
        Ok(None)
    }
}

/// Parse a whole text (a recorded transcript) into frames.
pub fn parse_frames(text: &str) -> Result<Vec<Frame>, AmiError> {
    let mut parser = FrameParser::default();
    let mut frames = Vec::new();
    for line in text.split('\n') {
        if let Some(f) = parser.push_line(line)? {
            frames.push(f);
        }
    }
    if let Some(f) = parser.push_line("")? {
        frames.push(f);
    }
    Ok(frames)
}

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
fn parse_timestamp(value: &str) -> Option<UnixMillis> {
    let (secs, frac) = value.trim().split_once('.').unwrap_or((value.trim(), ""));
    let secs: i64 = secs.parse().ok()?;
    let mut millis_text: String = frac.chars().take(3).collect();
    while millis_text.len() < 3 {
        millis_text.push('0');
    }
    let millis: i64 = millis_text.parse().ok()?;
    secs.checked_mul(1000)?.checked_add(millis)
}

/// Connection settings for [`run`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of the manager interface (port 5038 by default on Asterisk).
    pub address: String,
    pub username: String,
    pub secret: String,
    /// Longest line accepted before the connection is dropped as broken.
    pub max_line: usize,
    /// First wait after a failed connection; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How long the banner and the login reply may take.
    pub login_timeout: Duration,
    /// Send an AMI `Ping` this often while logged in. A connection dropped without a FIN (a
    /// NAT or firewall forgetting it, a PBX host gone) stays readable forever; only an
    /// unanswered ping shows it is dead.
    pub keepalive: Duration,
    /// How long a ping's answer may take before the connection counts as dead.
    pub ping_timeout: Duration,
}

impl ClientConfig {
    pub fn new(address: impl Into<String>, username: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            username: username.into(),
            secret: secret.into(),
            max_line: 8192,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            login_timeout: Duration::from_secs(10),
            keepalive: DEFAULT_KEEPALIVE,
            ping_timeout: DEFAULT_KEEPALIVE,
        }
    }
}

/// Default ping interval (and answer timeout): a silent drop is noticed within 20 s.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(10);

/// Stay connected: log in, translate events into `events`, and after EOF or an error wait
/// (with growing backoff, reset after a successful login) and connect again. Returns when the
/// receiver of `events` is gone.
pub async fn run(config: ClientConfig, mut translator: Translator, events: mpsc::Sender<CallEvent>) {
    let mut backoff = config.min_backoff;
    let mut session = 0u64;
    loop {
        session += 1;
        match session_once(&config, &mut translator, &events, session).await {
            Ok(Outcome::ReceiverGone) => return,
            Ok(Outcome::Disconnected) => {
                tracing::warn!(address = %config.address, "AMI connection closed; reconnecting");
                backoff = config.min_backoff;
            }
            Err(LoggedIn { logged_in, error }) => {
                if logged_in {
                    backoff = config.min_backoff;
                }
                tracing::warn!(address = %config.address, %error, retry_in = ?backoff, "AMI connection failed");
            }
        }
        if events.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

enum Outcome {
    Disconnected,
    ReceiverGone,
}

struct LoggedIn {
    logged_in: bool,
    error: AmiError,
}

async fn session_once(
    config: &ClientConfig,
    translator: &mut Translator,
    events: &mpsc::Sender<CallEvent>,
    session: u64,
) -> Result<Outcome, LoggedIn> {
    let fail = |logged_in| move |error| LoggedIn { logged_in, error };
    let stream = TcpStream::connect(&config.address).await.map_err(|e| fail(false)(e.into()))?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();

    let login = async {
        let banner = read_line(&mut reader, &mut line, config.max_line).await?.ok_or(AmiError::Closed)?;
        if !banner.starts_with("Asterisk Call Manager") {
            return Err(AmiError::BadBanner(banner.chars().take(80).collect()));
        }
        let action_id = format!("ucbridge-login-{session}");
        let login = Frame {
            fields: vec![
                ("Action".into(), "Login".into()),
                ("ActionID".into(), action_id.clone()),
                ("Username".into(), config.username.clone()),
                ("Secret".into(), config.secret.clone()),
                ("Events".into(), "call,agent".into()),
            ],
        };
        write.write_all(login.to_wire().as_bytes()).await?;
        let mut parser = FrameParser::default();
        loop {
            let text = read_line(&mut reader, &mut line, config.max_line).await?.ok_or(AmiError::Closed)?;
            let Some(frame) = parser.push_line(&text)? else { continue };
            if frame.get("ActionID") != Some(action_id.as_str()) || frame.response().is_none() {
                continue;
            }
            return match frame.response() {
                Some(r) if r.eq_ignore_ascii_case("Success") => Ok(()),
                _ => Err(AmiError::LoginRefused(frame.get("Message").unwrap_or("no reason given").to_owned())),
            };
        }
    };
    tokio::time::timeout(config.login_timeout, login)
        .await
        .map_err(|_| fail(false)(AmiError::Timeout("login")))?
        .map_err(fail(false))?;
    tracing::info!(address = %config.address, "AMI logged in");

    let mut parser = FrameParser::default();
    let mut pinger = Pinger::new(config, session);
    loop {
        // The read stays pending across pings (it is not cancel-safe: a cancelled read would
        // lose a partly read line); the ping branches only write.
        let read = read_line(&mut reader, &mut line, config.max_line);
        tokio::pin!(read);
        let text = loop {
            tokio::select! {
                result = &mut read => break result.map_err(fail(true))?,
                () = pinger.due() => pinger.ping(&mut write).await.map_err(fail(true))?,
            }
        };
        let Some(text) = text else { return Ok(Outcome::Disconnected) };
        let Some(frame) = parser.push_line(&text).map_err(fail(true))? else { continue };
        if pinger.is_answer(&frame) {
            continue;
        }
        for event in translator.translate(&frame, now_millis()) {
            let Some(event) = vetted(event) else { continue };
            if events.send(event).await.is_err() {
                return Ok(Outcome::ReceiverGone);
            }
        }
    }
}

/// The keepalive of one session: a `Ping` every `keepalive`, and a dead connection when its
/// answer (`Response: Success` with `Ping: Pong`, or `Response: Pong` on old Asterisk) has not
/// come within `ping_timeout`.
struct Pinger {
    keepalive: Duration,
    timeout: Duration,
    prefix: String,
    sent: u64,
    next_ping: tokio::time::Instant,
    /// The ActionID of the ping awaiting its answer, and when it counts as lost.
    waiting: Option<(String, tokio::time::Instant)>,
}

impl Pinger {
    fn new(config: &ClientConfig, session: u64) -> Self {
        Self {
            keepalive: config.keepalive,
            timeout: config.ping_timeout,
            prefix: format!("ucbridge-ping-{session}-"),
            sent: 0,
            next_ping: tokio::time::Instant::now() + config.keepalive,
            waiting: None,
        }
    }

    /// When the next thing is due: the lost answer's deadline, else the next ping.
    async fn due(&self) {
        let at = self.waiting.as_ref().map_or(self.next_ping, |(_, deadline)| *deadline);
        tokio::time::sleep_until(at).await;
    }

    /// Called when [`Self::due`] fired: send the next ping, or give up on the connection.
    async fn ping<W: AsyncWriteExt + Unpin>(&mut self, write: &mut W) -> Result<(), AmiError> {
        if self.waiting.is_some() {
            return Err(AmiError::Timeout("the answer to a Ping"));
        }
        self.sent += 1;
        let id = format!("{}{}", self.prefix, self.sent);
        let frame = Frame { fields: vec![("Action".into(), "Ping".into()), ("ActionID".into(), id.clone())] };
        let now = tokio::time::Instant::now();
        self.waiting = Some((id, now + self.timeout));
        self.next_ping = now + self.keepalive;
        // A peer that stopped reading fills the socket buffer; the deadline still holds then.
        tokio::time::timeout(self.timeout, write.write_all(frame.to_wire().as_bytes()))
            .await
            .map_err(|_| AmiError::Timeout("sending a Ping"))??;
        Ok(())
    }

    /// Whether `frame` answers a ping of ours (it is then consumed: it is no call event).
    fn is_answer(&mut self, frame: &Frame) -> bool {
        let Some(id) = frame.get("ActionID").filter(|id| id.starts_with(&self.prefix)) else { return false };
        if self.waiting.as_ref().is_some_and(|(w, _)| w == id) {
            let ok = matches!(frame.response(), Some(r) if r.eq_ignore_ascii_case("Success") || r.eq_ignore_ascii_case("Pong"));
            if ok {
                self.waiting = None;
            } else {
                tracing::info!(answer = ?frame.response(), "unexpected answer to an AMI Ping");
            }
        }
        true
    }
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

/// Read one line of at most `max` bytes; `None` at EOF. Invalid UTF-8 is replaced, not fatal.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Option<String>, AmiError> {
    buf.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = (&mut *reader).take(limit).read_until(b'\n', buf).await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > max {
        return Err(AmiError::LineTooLong(max));
    }
    Ok(Some(String::from_utf8_lossy(buf).trim_end_matches(['\r', '\n']).to_owned()))
}

fn now_millis() -> UnixMillis {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIRECT: &str = include_str!("../../tests/fixtures/ami/direct_unanswered.ami");
    const RING_GROUP: &str = include_str!("../../tests/fixtures/ami/ring_group.ami");
    const QUEUE: &str = include_str!("../../tests/fixtures/ami/queue.ami");
    const FORWARD: &str = include_str!("../../tests/fixtures/ami/forward.ami");
    const PICKUP: &str = include_str!("../../tests/fixtures/ami/pickup.ami");

    fn translate_all(text: &str) -> Vec<CallEvent> {
        let mut t = Translator::new(TranslatorConfig::default());
        let frames = parse_frames(text).expect("transcript parses");
        let events: Vec<CallEvent> = frames.iter().flat_map(|f| t.translate(f, 0)).collect();
        assert_eq!(t.active(), 0, "every call ended");
        events
    }

    fn kinds(events: &[CallEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                CallEvent::LegRinging { extension, .. } => format!("ring {extension}"),
                CallEvent::LegEnded { outcome, .. } => format!("end {outcome:?}"),
                CallEvent::CallAnswered { by, pickup, .. } => format!("answer {by} {pickup}"),
                other => other.kind().to_owned(),
            })
            .collect()
    }

    #[test]
    fn frame_parsing() {
        let frames = parse_frames("Response: Success\r\nMessage: ok: fine\r\n\r\n\r\nEvent: X\r\nno colon\r\nA:b\r\n")
            .expect("parses");
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].response(), Some("Success"));
        assert_eq!(frames[0].get("message"), Some("ok: fine"));
        assert_eq!(frames[1].event(), Some("X"));
        assert_eq!(frames[1].get("A"), Some("b"));
        assert_eq!(frames[1].fields.len(), 2);
        let mut p = FrameParser::default();
        for _ in 0..MAX_FRAME_LINES {
            assert!(p.push_line("K: v").expect("fits").is_none());
        }
        assert!(matches!(p.push_line("K: v"), Err(AmiError::FrameTooLarge(_))));
    }

    #[test]
    fn action_values_cannot_add_fields() {
        let f = Frame {
            fields: vec![("Action".into(), "Login".into()), ("Secret".into(), "x\r\nAction: Originate".into())],
        };
        assert_eq!(f.to_wire(), "Action: Login\r\nSecret: xAction: Originate\r\n\r\n");
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1700000000.123456"), Some(1_700_000_000_123));
        assert_eq!(parse_timestamp("1700000000.5"), Some(1_700_000_000_500));
        assert_eq!(parse_timestamp("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_timestamp("soon"), None);
        let f = Frame { fields: vec![("Event".into(), "Newchannel".into())] };
        assert!(Translator::default().translate(&f, 42).is_empty());
    }

    #[test]
    fn direct_call() {
        let events = translate_all(DIRECT);
        assert_eq!(kinds(&events), ["call_created", "ring 201", "end NoAnswer", "call_ended"]);
        let CallEvent::CallCreated { call_id, caller, called, direction, at, .. } = &events[0] else {
            panic!("created first")
        };
        assert_eq!(call_id.as_str(), "1700000000.11");
        assert_eq!(
            caller,
            &Caller { number: Some("+4930123456".into()), name: Some("Ada Lovelace".into()), hidden: false }
        );
        assert_eq!((called.as_str(), *direction, *at), ("4930555201", Direction::Inbound, 1_700_000_000_000));
        assert!(
            matches!(&events[3], CallEvent::CallEnded { cause, at: 1_700_000_021_000, .. } if cause == "Normal Clearing")
        );
    }

    #[test]
    fn ring_group_skips_local_channels() {
        let events = translate_all(RING_GROUP);
        assert_eq!(
            kinds(&events),
            [
                "call_created",
                "ring 201",
                "ring 202",
                "ring 203",
                "end Busy",
                "end Cancelled",
                "end Cancelled",
                "call_ended"
            ]
        );
    }

    #[test]
    fn queue_rings_members_in_turn_once_per_leg() {
        let events = translate_all(QUEUE);
        assert_eq!(
            kinds(&events),
            [
                "call_created",
                "ring 201",
                "end NoAnswer",
                "ring 202",
                "end NoAnswer",
                "ring 201",
                "end Cancelled",
                "call_ended"
            ]
        );
    }

    #[test]
    fn forward_becomes_a_redirected_leg() {
        let events = translate_all(FORWARD);
        assert_eq!(
            kinds(&events),
            ["call_created", "ring 201", "end Redirected { to: \"301\" }", "ring 301", "end Cancelled", "call_ended"]
        );
        let CallEvent::CallCreated { caller, .. } = &events[0] else { panic!("created first") };
        assert_eq!(caller.name, None, "an empty caller name is no name");
    }

    #[test]
    fn pickup_answers_for_the_picker() {
        let events = translate_all(PICKUP);
        assert_eq!(
            kinds(&events),
            [
                "call_created",
                "ring 201",
                "call_created",
                "answer 205 true",
                "end Cancelled",
                "call_ended",
                "call_ended"
            ]
        );
        // The picker's own call to the feature code is internal.
        assert!(
            matches!(&events[2], CallEvent::CallCreated { direction: Direction::Internal, called, .. } if called == "*8")
        );
    }

    #[test]
    fn hidden_numbers_and_directions() {
        let mut t = Translator::default();
        let chan = |uid: &str, num: &str, exten: &str| Frame {
            fields: vec![
                ("Event".into(), "Newchannel".into()),
                ("CallerIDNum".into(), num.into()),
                ("CallerIDName".into(), "<unknown>".into()),
                ("Exten".into(), exten.into()),
                ("Uniqueid".into(), uid.into()),
                ("Linkedid".into(), uid.into()),
            ],
        };
        let created = |events: Vec<CallEvent>| match events.into_iter().next() {
            Some(CallEvent::CallCreated { caller, direction, .. }) => (caller, direction),
            other => panic!("{other:?}"),
        };
        let (c, d) = created(t.translate(&chan("1.1", "<unknown>", "201"), 1));
        assert!(c.is_hidden() && c.name.is_none());
        assert_eq!(d, Direction::Inbound);
        assert_eq!(created(t.translate(&chan("1.2", "Anonymous", "201"), 1)).0.number, None);
        assert_eq!(created(t.translate(&chan("1.3", "201", "0301234567"), 1)).1, Direction::Outbound);
        assert_eq!(created(t.translate(&chan("1.4", "201", "202"), 1)).1, Direction::Internal);
        // A second Newchannel of the same call, or a channel that is not the first, changes nothing.
        assert!(t.translate(&chan("1.4", "201", "202"), 1).is_empty());
        let mut other = chan("1.9", "201", "202");
        other.fields[5].1 = "1.4".into();
        assert!(t.translate(&other, 1).is_empty());
    }

    #[test]
    fn explicit_extension_list() {
        let config = TranslatorConfig { extensions: vec!["alice".into()], ..TranslatorConfig::default() };
        assert!(config.is_extension("alice") && !config.is_extension("201"));
        let default = TranslatorConfig::default();
        assert!(default.is_extension("20155") && !default.is_extension("201555") && !default.is_extension(""));
    }

    #[test]
    fn stale_calls_are_forgotten() {
        let mut t =
            Translator::new(TranslatorConfig { stale_after: Duration::from_secs(60), ..TranslatorConfig::default() });
        let chan = |uid: &str| Frame {
            fields: vec![
                ("Event".into(), "Newchannel".into()),
                ("CallerIDNum".into(), "+491".into()),
                ("Exten".into(), "201".into()),
                ("Uniqueid".into(), uid.into()),
                ("Linkedid".into(), uid.into()),
            ],
        };
        t.translate(&chan("a"), 0);
        t.translate(&chan("b"), 30_000);
        assert_eq!(t.active(), 2);
        t.translate(&chan("c"), 61_000);
        assert_eq!(t.active(), 2, "a's hangup was lost; it is dropped");
    }

    #[tokio::test]
    async fn long_lines_are_refused() {
        let data = format!("{}\n", "x".repeat(100));
        let mut reader = BufReader::new(data.as_bytes());
        let mut buf = Vec::new();
        assert!(matches!(read_line(&mut reader, &mut buf, 50).await, Err(AmiError::LineTooLong(50))));
        let mut reader = BufReader::new("ok\r\nnext".as_bytes());
        assert_eq!(read_line(&mut reader, &mut buf, 50).await.ok().flatten().as_deref(), Some("ok"));
        assert_eq!(read_line(&mut reader, &mut buf, 50).await.ok().flatten().as_deref(), Some("next"));
        assert!(read_line(&mut reader, &mut buf, 50).await.ok().flatten().is_none());
    }
}
