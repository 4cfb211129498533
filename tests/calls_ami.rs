//! The AMI client against a small in-process manager server that replays recorded transcripts:
//! each scenario must yield the same call summary and the same notices as its hand-written
//! webhook equivalent. Also: reconnecting after the server drops the connection, and after a
//! refused login.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use ucbridge::calls::ami::{self, ClientConfig, Translator, TranslatorConfig};
use ucbridge::calls::event::CallEvent;
use ucbridge::calls::model::{CallSummary, CallTracker};
use ucbridge::calls::phone::{self, Phones};
use ucbridge::calls::rules::{self, Directory, Facts, Notice, NoticeReason, RuleSettings, UserEntry};
use ucbridge::calls::webhook;

const USER: &str = "ucbridge";
const SECRET: &str = "s3cret";

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/ami/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What the fake server does on each successive connection.
enum Session {
    /// Accept the login, send this text, then close.
    SendAndClose(String),
    /// Accept the login, send this text, keep the connection open and answer pings.
    SendAndStay(String),
    /// Accept the login, send this text, then go silent without closing: the socket stays
    /// open, nothing more is read or answered (a connection dropped by a firewall, no FIN).
    SendAndGoSilent(String),
    /// Refuse the login.
    Refuse,
}

/// What the fake manager counted.
#[derive(Clone, Default)]
struct Counters {
    logins: Arc<AtomicUsize>,
    pongs: Arc<AtomicUsize>,
}

/// Answer each `Action: Ping` on a live session with Asterisk's reply, counting them.
async fn answer_pings(
    mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    mut write: tokio::net::tcp::OwnedWriteHalf,
    pongs: Arc<AtomicUsize>,
) {
    while let Some(frame) = read_frame(&mut reader).await {
        if frame.get("Action").map(String::as_str) == Some("Ping") {
            let id = frame.get("ActionID").cloned().unwrap_or_default();
            let reply =
                format!("Response: Success\r\nActionID: {id}\r\nPing: Pong\r\nTimestamp: 1700000000.000000\r\n\r\n");
            if write.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            pongs.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// One AMI frame (`Key: value` lines up to a blank line); `None` once the client hung up.
async fn read_frame(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<BTreeMap<String, String>> {
    let mut frame = BTreeMap::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Some(frame);
        }
        if let Some((k, v)) = l.split_once(": ") {
            frame.insert(k.to_owned(), v.to_owned());
        }
    }
}

/// Start a manager on 127.0.0.1:0; returns its address and a counter of accepted logins.
async fn fake_manager(sessions: Vec<Session>) -> (String, Arc<AtomicUsize>) {
    let (address, counters) = fake_manager_counting(sessions).await;
    (address, counters.logins)
}

async fn fake_manager_counting(sessions: Vec<Session>) -> (String, Counters) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let counters = Counters::default();
    let counter = counters.logins.clone();
    let pongs = counters.pongs.clone();
    tokio::spawn(async move {
        let mut open = Vec::new();
        for session in sessions {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            if write.write_all(b"Asterisk Call Manager/7.0.3\r\n").await.is_err() {
                return;
            }
            let Some(login) = read_frame(&mut reader).await else { return };
            let action_id = login.get("ActionID").cloned().unwrap_or_default();
            let good = login.get("Action").map(String::as_str) == Some("Login")
                && login.get("Username").map(String::as_str) == Some(USER)
                && login.get("Secret").map(String::as_str) == Some(SECRET);
            if matches!(session, Session::Refuse) || !good {
                let reply =
                    format!("Response: Error\r\nActionID: {action_id}\r\nMessage: Authentication failed\r\n\r\n");
                let _ = write.write_all(reply.as_bytes()).await;
                continue;
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let reply = format!(
                "Response: Success\r\nActionID: {action_id}\r\nMessage: Authentication accepted\r\n\r\n\
                 Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 3600\r\nLastReload: 3600\r\nStatus: Fully Booted\r\n\r\n"
            );
            let _ = write.write_all(reply.as_bytes()).await;
            match session {
                Session::SendAndClose(text) => {
                    let _ = write.write_all(text.as_bytes()).await;
                    let _ = write.shutdown().await;
                }
                Session::SendAndStay(text) => {
                    let _ = write.write_all(text.as_bytes()).await;
                    tokio::spawn(answer_pings(reader, write, pongs.clone()));
                }
                Session::SendAndGoSilent(text) => {
                    let _ = write.write_all(text.as_bytes()).await;
                    open.push((reader, write));
                }
                Session::Refuse => {}
            }
        }
        // Keep the last connections open until the test ends.
        std::future::pending::<()>().await;
        drop(open);
    });
    (address, counters)
}

/// Connect the client and collect events until `calls` calls have ended.
async fn collect(address: String, calls: usize) -> Vec<CallEvent> {
    collect_with(client_config(address), calls).await
}

fn client_config(address: String) -> ClientConfig {
    let mut config = ClientConfig::new(address, USER, SECRET);
    config.min_backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(200);
    config
}

async fn collect_with(config: ClientConfig, calls: usize) -> Vec<CallEvent> {
    let (tx, mut rx) = mpsc::channel(64);
    let client = tokio::spawn(ami::run(config, Translator::new(TranslatorConfig::default()), tx));
    let mut events = Vec::new();
    let mut ended = 0;
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        while ended < calls {
            let Some(e) = rx.recv().await else { break };
            ended += usize::from(matches!(e, CallEvent::CallEnded { .. }));
            events.push(e);
        }
    })
    .await;
    assert!(got.is_ok(), "timed out with {} events: {events:#?}", events.len());
    drop(rx);
    client.abort();
    events
}

fn summaries(events: Vec<CallEvent>) -> Vec<CallSummary> {
    let mut tracker = CallTracker::new();
    let out: Vec<CallSummary> =
        events.into_iter().filter_map(|e| tracker.apply(e).expect("consistent events")).collect();
    assert_eq!(tracker.active(), 0);
    out
}

fn webhook_summary(name: &str) -> CallSummary {
    let events =
        webhook::parse_events(fixture(&format!("{name}.webhook.json")).as_bytes()).expect("valid webhook body");
    let mut all = summaries(events);
    assert_eq!(all.len(), 1);
    all.remove(0)
}

fn directory() -> Directory {
    let users = [("alice", "201"), ("bob", "202"), ("carol", "203"), ("erin", "205"), ("sam", "301")];
    Directory::new(
        users
            .iter()
            .map(|(id, ext)| UserEntry { email: Some(format!("{id}@example.org")), ..UserEntry::new(id, &[ext]) })
            .collect(),
    )
}

fn notices(summaries: &[CallSummary]) -> Vec<Notice> {
    let settings = RuleSettings { notify_even_if_answered_by_other: true, ..RuleSettings::default() };
    let facts = Facts { contact_found: true, ..Facts::default() };
    summaries.iter().flat_map(|s| rules::decide(&settings, &directory(), s, &facts).notices).collect()
}

async fn scenario(name: &str, calls_in_transcript: usize, expected: &[(&str, NoticeReason)]) {
    let (address, logins) = fake_manager(vec![Session::SendAndStay(fixture(&format!("{name}.ami")))]).await;
    let from_ami = summaries(collect(address, calls_in_transcript).await);
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    let from_webhook = webhook_summary(name);
    let same_call: Vec<_> = from_ami.iter().filter(|s| s.call_id == from_webhook.call_id).collect();
    assert_eq!(same_call, [&from_webhook], "{name}: AMI and webhook summaries differ");

    let ami_notices = notices(&from_ami);
    assert_eq!(ami_notices, notices(std::slice::from_ref(&from_webhook)), "{name}: notices differ");
    let got: Vec<(&str, NoticeReason)> = ami_notices.iter().map(|n| (n.user.as_str(), n.reason)).collect();
    assert_eq!(got, expected, "{name}");
}

#[tokio::test]
async fn direct_call_unanswered() {
    scenario("direct_unanswered", 1, &[("alice", NoticeReason::Missed)]).await;
}

#[tokio::test]
async fn ring_group() {
    // Bob's phone was busy (rang 0.25 s): the short-ring exception leaves him out.
    scenario("ring_group", 1, &[("alice", NoticeReason::Missed), ("carol", NoticeReason::Missed)]).await;
}

#[tokio::test]
async fn queue_with_cyclic_distribution() {
    scenario("queue", 1, &[("alice", NoticeReason::Missed), ("bob", NoticeReason::Missed)]).await;
}

#[tokio::test]
async fn call_forward() {
    scenario("forward", 1, &[("alice", NoticeReason::Missed), ("sam", NoticeReason::Missed)]).await;
}

#[tokio::test]
async fn pickup() {
    // Two calls end: the picked-up one and Erin's own call to the *8 feature code.
    scenario("pickup", 2, &[("alice", NoticeReason::AnsweredElsewhere)]).await;
}

/// Split a transcript after its `n`th frame.
fn split_after_frames(text: &str, n: usize) -> (String, String) {
    let mut count = 0;
    let mut cut = 0;
    for (i, _) in text.match_indices("\r\n\r\n") {
        count += 1;
        if count == n {
            cut = i + 4;
            break;
        }
    }
    assert!(cut > 0, "transcript has fewer than {n} frames");
    (text[..cut].to_owned(), text[cut..].to_owned())
}

#[tokio::test]
async fn reconnects_after_the_server_drops_the_connection() {
    let (first, rest) = split_after_frames(&fixture("ring_group.ami"), 12);
    let (address, logins) = fake_manager(vec![Session::SendAndClose(first), Session::SendAndStay(rest)]).await;
    let from_ami = summaries(collect(address, 1).await);
    assert_eq!(logins.load(Ordering::SeqCst), 2, "the client logged in again");
    assert_eq!(from_ami, [webhook_summary("ring_group")]);
}

/// Issue 12: the connection dies without a FIN in the middle of a call (the server keeps the
/// socket open and stops reading and answering). The unanswered AMI `Ping` gives it away: the
/// client logs in again and the call, whose events straddle the drop, ends as one summary.
#[tokio::test]
async fn a_silently_dropped_connection_is_detected_by_ping_and_reconnected() {
    let (first, rest) = split_after_frames(&fixture("ring_group.ami"), 12);
    let (address, counters) =
        fake_manager_counting(vec![Session::SendAndGoSilent(first), Session::SendAndStay(rest)]).await;
    let mut config = client_config(address);
    config.keepalive = Duration::from_millis(300);
    config.ping_timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let from_ami = summaries(collect_with(config, 1).await);
    // Without the ping, the client waits on the silent socket forever and collect times out.
    assert_eq!(counters.logins.load(Ordering::SeqCst), 2, "the client logged in again");
    assert_eq!(from_ami, [webhook_summary("ring_group")]);
    // Noticed within keepalive + timeout (and the reconnect's backoff), with room for a slow machine.
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// The positive control of the test above: a server that answers the pings keeps the one
/// session (the pings go out and their answers count), however many keepalive periods pass.
#[tokio::test]
async fn answered_pings_keep_the_connection() {
    let (address, counters) = fake_manager_counting(vec![Session::SendAndStay(String::new())]).await;
    let mut config = client_config(address);
    config.keepalive = Duration::from_millis(100);
    config.ping_timeout = Duration::from_millis(100);
    let (tx, _rx) = mpsc::channel(64);
    let client = tokio::spawn(ami::run(config, Translator::new(TranslatorConfig::default()), tx));
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while counters.pongs.load(Ordering::SeqCst) < 8 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    client.abort();
    assert!(waited.is_ok(), "pings answered: {}", counters.pongs.load(Ordering::SeqCst));
    assert_eq!(counters.logins.load(Ordering::SeqCst), 1, "no reconnect while pings are answered");
}

/// The default notices a silent drop within the 30 s: one keepalive until the next
/// ping, and the answer's timeout.
#[test]
fn default_keepalive_detects_a_silent_drop_within_30_s() {
    let config = ClientConfig::new("127.0.0.1:5038", USER, SECRET);
    assert!(config.keepalive + config.ping_timeout <= Duration::from_secs(30));
}

#[tokio::test]
async fn retries_after_a_refused_login() {
    let (address, logins) =
        fake_manager(vec![Session::Refuse, Session::SendAndStay(fixture("direct_unanswered.ami"))]).await;
    let from_ami = summaries(collect(address, 1).await);
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    assert_eq!(from_ami, [webhook_summary("direct_unanswered")]);
}

/// L7: an external caller chooses the CallerID an AMI event carries. The AMI path holds it to the
/// webhook's rules: control characters and an over-long name are cleaned, a number the webhook
/// refuses is treated as unknown, and every event that reaches the service validates.
#[tokio::test]
async fn ami_events_are_held_to_the_webhook_validation() {
    let long_name = "Ä".repeat(300); // 600 bytes, over the webhook's 256
    let transcript = fixture("direct_unanswered.ami")
        .replace(
            "CallerIDName: Ada Lovelace\r\n",
            &format!("CallerIDName: Ada\u{7}\u{1b}[31m Love\u{0}lace {long_name}\r\n"),
        )
        .replace("CallerIDNum: +4930123456\r\n", "CallerIDNum: +49301<script>\r\n");
    let (address, _) = fake_manager(vec![Session::SendAndStay(transcript)]).await;
    let events = collect(address, 1).await;
    for e in &events {
        webhook::validate_event(e).unwrap_or_else(|err| panic!("an AMI event the webhook would refuse: {err}: {e:?}"));
    }
    let Some(CallEvent::CallCreated { caller, .. }) = events.first() else { panic!("created first: {events:?}") };
    let name = caller.name.as_deref().expect("the name is kept, cleaned");
    assert!(name.starts_with("Ada[31m Lovelace ÄÄ"), "{name:?}");
    assert!(name.len() <= webhook::MAX_NAME_LEN && !name.chars().any(char::is_control), "{name:?}");
    assert_eq!(caller.number, None, "a number the webhook refuses is unknown");
    // The call itself is not lost: it still ends as one missed call for alice.
    let got: Vec<(String, NoticeReason)> =
        notices(&summaries(events)).into_iter().map(|n| (n.user.as_str().to_owned(), n.reason)).collect();
    assert_eq!(got, [("alice".to_owned(), NoticeReason::Missed)]);
}

#[test]
fn an_ami_event_with_a_field_the_webhook_refuses_is_dropped() {
    use ucbridge::calls::event::{CallId, LegId};
    let ringing = |ext: &str| CallEvent::LegRinging {
        call_id: CallId::new("c1"),
        leg_id: LegId::new("l1"),
        extension: ucbridge::calls::event::Extension::new(ext),
        at: 1_700_000_000_000,
    };
    assert!(ami::vetted(ringing("201")).is_some());
    assert!(ami::vetted(ringing(&"2".repeat(200))).is_none(), "too long");
    assert!(ami::vetted(ringing("20\u{1}1")).is_none(), "control character");
}

/// What the phone tells the chat, event by event (`calls::phone`): a new ring at an extension
/// (pickup alerts) and who a connected call shows busy or frees (presence from the phone).
fn phone_story(events: Vec<CallEvent>) -> Vec<String> {
    let d = directory();
    let mut tracker = CallTracker::new();
    let mut phones = Phones::default();
    let mut out = Vec::new();
    for e in events {
        let call = e.call_id().clone();
        if let Some(ext) = tracker.new_ring(&e)
            && phones.rang(&call, &ext)
        {
            out.push(format!("{call} ring {ext}"));
        }
        tracker.apply(e).expect("consistent events");
        let now = tracker.get(&call).map(|c| phone::occupants(&d, c)).unwrap_or_default();
        for (user, busy) in phones.occupy(&call, now) {
            out.push(format!("{call} {} {user}", if busy { "busy" } else { "free" }));
        }
    }
    out
}

#[tokio::test]
async fn the_phone_tells_the_chat_the_same_from_ami_as_from_the_webhook() {
    let (address, _) = fake_manager(vec![Session::SendAndStay(fixture("pickup.ami"))]).await;
    let from_ami = phone_story(collect(address, 2).await);
    let events = webhook::parse_events(fixture("pickup.webhook.json").as_bytes()).expect("valid webhook body");
    let from_webhook = phone_story(events);
    let call = "1700004000.51";
    // Alice's phone rings (a pickup alert is due), Erin picks up and is busy until the call ends.
    assert_eq!(from_webhook, [format!("{call} ring 201"), format!("{call} busy erin"), format!("{call} free erin")]);
    let same_call: Vec<&String> = from_ami.iter().filter(|s| s.starts_with(&format!("{call} "))).collect();
    assert_eq!(same_call, from_webhook.iter().collect::<Vec<_>>(), "AMI: {from_ami:?}");
}
