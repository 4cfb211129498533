//! Asterisk Manager Interface (AMI) input: a frame parser, a translator from Asterisk's channel
//! events to `CallEvent`s, and a TCP client that logs in and reconnects.
//!
//! Asterisk reports channels, not calls. Every channel carries a `Linkedid`, the `Uniqueid` of the
//! oldest channel of the call, so all channels of one call (the caller's, each phone dialled,
//! the Local channels of ring groups and forwards) share it; it becomes the `CallId`. Each
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
//! Set-up on the Asterisk side (`manager.conf`), as the README says: `timestampevents = yes` in
//! `[general]` and a user with `read = call,agent` (the classes the client asks for at `Login`;
//! `Login` and `Ping` need no write class).
//!
//! Files: [`frames`] (reading `Key: Value` frames), [`translate`] (events to `CallEvent`s),
//! [`client`] (the TCP session: login, pings, reconnects).

mod client;
mod frames;
mod translate;

pub use client::{ClientConfig, DEFAULT_KEEPALIVE, run};
pub use frames::{Frame, FrameParser, MAX_FRAME_LINES, parse_frames};
pub use translate::{Translator, TranslatorConfig, vetted};

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::BufReader;

    use super::client::read_line;
    use super::translate::parse_timestamp;
    use super::*;
    use crate::calls::event::{CallEvent, Caller, Direction};

    const DIRECT: &str = include_str!("../../../tests/fixtures/ami/direct_unanswered.ami");
    const RING_GROUP: &str = include_str!("../../../tests/fixtures/ami/ring_group.ami");
    const QUEUE: &str = include_str!("../../../tests/fixtures/ami/queue.ami");
    const FORWARD: &str = include_str!("../../../tests/fixtures/ami/forward.ami");
    const PICKUP: &str = include_str!("../../../tests/fixtures/ami/pickup.ami");

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
