//! The AMI TCP client: log in, keep the connection alive with pings, translate what arrives,
//! and reconnect with backoff.

use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::{AmiError, Frame, FrameParser, Translator, vetted};
use crate::calls::event::{CallEvent, UnixMillis};
use crate::core::backoff::Backoff;

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
    let mut backoff = Backoff::new(config.min_backoff, config.max_backoff);
    let mut session = 0u64;
    loop {
        session += 1;
        let error = match session_once(&config, &mut translator, &events, session).await {
            Ok(Outcome::ReceiverGone) => return,
            Ok(Outcome::Disconnected) => {
                backoff.reset();
                None
            }
            Err(LoggedIn { logged_in, error }) => {
                if logged_in {
                    backoff.reset();
                }
                Some(error)
            }
        };
        if events.is_closed() {
            return;
        }
        let wait = backoff.next_delay();
        match error {
            None => tracing::warn!(address = %config.address, retry_in = ?wait, "AMI connection closed; reconnecting"),
            Some(error) => tracing::warn!(address = %config.address, %error, retry_in = ?wait, "AMI connection failed"),
        }
        tokio::time::sleep(wait).await;
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
    // Actions are single short lines answered one by one: no Nagle delay on them.
    let _ = stream.set_nodelay(true);
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

/// Read one line of at most `max` bytes; `None` at EOF. Invalid UTF-8 is replaced, not fatal.
pub(super) async fn read_line<R: AsyncBufRead + Unpin>(
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
