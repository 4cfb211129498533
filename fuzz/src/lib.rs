//! What each fuzz target runs on one input. Shared by the fuzz targets (`fuzz_targets/*.rs`)
//! and by the corpus replay in `tests/fuzz_corpus.rs` (which includes this file by path), so CI
//! replays every corpus file through exactly the code the fuzzer exercised.
//!
//! Each function takes hostile bytes as they arrive from the network (or an uploaded file) and
//! must not panic, hang or allocate without bound; it asserts that what comes out is bounded and
//! valid (ids parse again, XML re-parses, HTML is sanitised, escapings round-trip).

use ucbridge::calls::ami::{FrameParser, Translator, TranslatorConfig, vetted};
use ucbridge::calls::model::CallTracker;
use ucbridge::calls::webhook;
use ucbridge::contacts;
use ucbridge::contacts::import::{self, Format};
use ucbridge::core::action::{Extras, Text};
use ucbridge::core::ids::{BareJid, MatrixUserId, PhoneNumber, RoomId, StanzaId};
use ucbridge::core::inbound::MatrixIn;
use ucbridge::core::mapping::{self, IdentityMap};
use ucbridge::core::phone::Region;
use ucbridge::core::refusal::RefusalKind;
use ucbridge::links::{self, LinkRules, MAX_LINKS};
use ucbridge::matrix::appservice::read_transaction;
use ucbridge::sms::{http_provider, inbound as sms_in, kannel};
use ucbridge::xmpp::xml_text::make_xml_safe;
use ucbridge::xmpp::{content, hosted_muc, inbound as xmpp_in, linked_muc, outbound};
use xmpp_parsers::chatstates::ChatState;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoItemsQuery};
use xmpp_parsers::displayed_markers::{Displayed, Markable};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::MessageType;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::nick::Nick;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::receipts::{Received as ReceiptReceived, Request};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::StanzaError;
use xmpp_parsers::vcard::VCard;
use xmpp_parsers::vcard_update::VCardUpdate;

/// A target: its name (the directory under `fuzz/corpus/`) and what it runs on one input.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, for the replay.
pub const TARGETS: [Target; 8] = [
    ("xmpp_stanza", xmpp_stanza),
    ("matrix_txn", matrix_txn),
    ("links", links),
    ("calls_webhook", calls_webhook),
    ("sms_inbound", sms_inbound),
    ("contacts_import", contacts_import),
    ("ami_frames", ami_frames),
    ("id_escaping", id_escaping),
];

fn map() -> IdentityMap {
    IdentityMap {
        homeserver: "hs.example".into(),
        component: "matrix.xmpp.example".into(),
        ghost_prefix: "_xmpp_".into(),
        bot_localpart: "ucbridge".into(),
        chatbot_localpart: None,
    }
}

fn region() -> Region {
    Region::parse("DE").expect("DE is a region")
}

/// A stanza the bridge sends must serialise to XML that parses back as a stanza, after what
/// `connection::write_out` does to every outgoing stanza: drop the text XML cannot carry (NUL,
/// C0 controls, U+FFFE/U+FFFF, e.g. from a Matrix body) with `xml_text::make_xml_safe`.
fn assert_sendable(mut stanza: Stanza) {
    make_xml_safe(&mut stanza);
    let element = Element::from(stanza);
    let mut xml = Vec::new();
    element.write_to(&mut xml).expect("an outgoing stanza serialises");
    let text = String::from_utf8_lossy(&xml);
    let again: Element = text.parse().unwrap_or_else(|e| panic!("outgoing stanza does not re-parse ({e}): {text}"));
    Stanza::try_from(again).unwrap_or_else(|e| panic!("outgoing stanza is no stanza ({e:?}): {text}"));
}

fn parse_jid(s: Option<&str>) -> Option<Jid> {
    s.and_then(|s| Jid::new(s).ok())
}

/// (1) A stanza as the component stream hands it over, through the pure part of
/// `xmpp::inbound`: the stream's parse into `Stanza` (xso, as tokio-xmpp does), or for an
/// unparseable one the error reply `inbound::run` builds from its header; then what
/// `route`/`conversation`/`busy_reply` and the handlers (`on_message`, `on_presence`, `on_iq`,
/// `on_markers`, `on_bounce`, `announced_photo`) read from it before the bridge's state is
/// touched, and the replies they build (all must serialise to valid XML).
pub fn xmpp_stanza(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(element) = text.parse::<Element>() else { return };
    let header = |a: &str| element.attr(a).map(str::to_owned);
    let (from_attr, to_attr, id_attr, type_attr) = (header("from"), header("to"), header("id"), header("type"));
    let kind = element.name().to_owned();
    let stanza = match Stanza::try_from(element) {
        Ok(s) => s,
        Err(error) => {
            // Received::Invalid: an error reply addressed from the stanza's own header.
            if type_attr.as_deref() == Some("error") {
                return;
            }
            let (Some(from), Some(to)) = (parse_jid(from_attr.as_deref()), parse_jid(to_attr.as_deref())) else {
                return;
            };
            let text = format!("The bridge could not parse this {kind}: {error:?}");
            let reply = match kind.as_str() {
                "message" => outbound::message_error(Some(to), from, id_attr, RefusalKind::BadRequest, &text),
                "presence" => outbound::presence_error(Some(to), from, id_attr, RefusalKind::BadRequest, &text),
                _ => match id_attr {
                    Some(id) => outbound::iq_error(Some(to), from, id, RefusalKind::BadRequest, &text),
                    None => return,
                },
            };
            return assert_sendable(reply);
        }
    };
    let map = map();
    let (from, to) = xmpp_in::addresses(&stanza);
    let (from, to) = (from.cloned(), to.cloned());
    let _ = to.as_ref().is_some_and(hosted_muc::is_room);
    let _ = xmpp_in::from_room_occupant(&stanza);
    if let Some(reply) = xmpp_in::busy_reply(&stanza) {
        assert_sendable(reply);
    }
    let core_jid = |j: &Jid| BareJid::parse(j.to_bare().as_str()).ok();
    if let Some(j) = from.as_ref().and_then(core_jid) {
        // A sender the core accepts has a ghost with a valid Matrix ID that maps back.
        let ghost = map.ghost_for(&j);
        if ghost.to_string().len() <= 255 {
            MatrixUserId::parse(&ghost.to_string()).expect("a ghost's ID is a Matrix ID");
        }
        assert_eq!(map.jid_for_ghost(&ghost), Some(Ok(j)));
    }
    let user = to.as_ref().and_then(|t| t.node()).map(|n| map.matrix_for_jid(n.as_str()));
    if let Some(Ok(user)) = &user {
        assert!(user.to_string().len() <= 255);
    }
    // The adapter's reading of the stanza (what the bridge is asked), on each path it may take:
    // what it answers itself, and a refusal the bridge may send back, must be sendable.
    let muc = BareJid::parse("room@conference.xmpp.example").expect("a JID");
    let readings = match &stanza {
        Stanza::Message(m) => {
            let m = m.clone();
            let _ = linked_muc::read_message(muc, &m);
            vec![hosted_muc::read_message(m.clone()), xmpp_in::read_message(m)]
        }
        Stanza::Presence(p) => {
            let p = p.clone();
            let _ = linked_muc::read_presence(&map, muc, &p);
            vec![hosted_muc::read_presence(p.clone()), xmpp_in::read_presence(&map, p)]
        }
        Stanza::Iq(iq) => vec![hosted_muc::read_iq(iq.clone()), xmpp_in::read_iq(&map, iq.clone())],
    };
    for read in readings {
        match read {
            xmpp_in::Read::Reply(reply) => assert_sendable(reply),
            xmpp_in::Read::Bridge(_, Some(envelope)) => assert_sendable(envelope.error(RefusalKind::Policy, "no")),
            _ => {}
        }
    }
    let error_reply = |refusal, text: &str| {
        if let (Some(from), Some(to)) = (&from, &to) {
            assert_sendable(outbound::message_error(Some(to.clone()), from.clone(), None, refusal, text));
        }
    };
    match stanza {
        Stanza::Message(message) => {
            let read = content::read(&message);
            if let (Some(body), Some(original)) = (&read.body, message.get_best_body_cloned(vec![]).map(|(_, b)| b)) {
                assert!(body.chars().count() <= original.chars().count(), "stripping a fallback adds nothing");
            }
            for p in &message.payloads {
                let _ = Nick::try_from(p.clone());
                let _ = Request::try_from(p.clone());
                let _ = Markable::try_from(p.clone());
                let _ = ChatState::try_from(p.clone());
                let _ = Displayed::try_from(p.clone());
                let _ = ReceiptReceived::try_from(p.clone());
                if let Ok(e) = StanzaError::try_from(p.clone()) {
                    let text = e.texts.values().next().cloned().unwrap_or_default();
                    error_reply(RefusalKind::BadRequest, &format!("{:?} {text}", e.defined_condition));
                }
            }
            if message.type_ != MessageType::Error
                && let Some(body) = read.body
            {
                // A reply quoting what was received (as command answers and refusals do).
                error_reply(RefusalKind::Policy, &body);
            }
        }
        Stanza::Presence(presence) => {
            let reading = outbound::reading(&presence);
            let _ = presence.payloads.iter().find_map(|p| VCardUpdate::try_from(p.clone()).ok());
            if let (Some(from), Some(to)) = (&from, &to) {
                let reply = outbound::presence(presence.type_, to.clone(), from.clone(), reading.status.as_deref());
                assert_sendable(reply);
            }
        }
        Stanza::Iq(iq) => match iq {
            Iq::Get { from: Some(from), to: Some(to), id, payload } => {
                let is_component = to.node().is_none();
                if let Ok(q) = DiscoInfoQuery::try_from(payload.clone()) {
                    assert_sendable(outbound::disco_info(
                        to.clone(),
                        from.clone(),
                        id.clone(),
                        q.node,
                        is_component,
                        "x",
                    ));
                }
                if let Ok(q) = DiscoItemsQuery::try_from(payload.clone()) {
                    assert_sendable(outbound::disco_items(to.clone(), from.clone(), id.clone(), q.node));
                }
                if Ping::try_from(payload).is_ok() {
                    assert_sendable(outbound::iq_result(to.clone(), from.clone(), id.clone()));
                }
                assert_sendable(outbound::iq_error(Some(to), from, id, RefusalKind::Unsupported, "no"));
            }
            Iq::Result { payload: Some(payload), .. } => {
                let _ = VCard::try_from(payload).ok().and_then(|v| v.photo).map(|p| (p.binval.data, p.type_.data));
            }
            _ => {}
        },
    }
}

/// (2) A Matrix transaction body through `matrix::appservice::read_transaction` (everything
/// `push_transaction` does before the store), then each message as the XMPP stanza the
/// bridge would send for it (`outbound::chat`), which must be valid XML.
pub fn matrix_txn(data: &[u8]) {
    let Ok(txn) = read_transaction(data) else { return };
    assert!(txn.event_ids.len() <= txn.received);
    let map = map();
    let from = Jid::new("alice\\40hs.example@matrix.xmpp.example").expect("a JID");
    let to = Jid::new("bob@xmpp.example").expect("a JID");
    for event in &txn.events {
        if let Some(room) = event.room() {
            RoomId::parse(room.as_str()).expect("a room id parses again");
        }
        match event {
            MatrixIn::Message { sender, text, event_id, replaces, .. } => {
                let jid = map.jid_for_matrix(sender);
                BareJid::parse(&jid.to_string()).expect("a Matrix user's JID is a JID");
                let extras = Extras { replaces: replaces.clone().map(StanzaId::new), ..Extras::default() };
                assert_sendable(outbound::chat(from.clone(), to.clone(), text, event_id.clone(), None, &extras));
            }
            MatrixIn::Topic { topic: t, .. } | MatrixIn::Name { name: t, .. } => {
                assert_sendable(outbound::chat(
                    from.clone(),
                    to.clone(),
                    &Text::plain(t.clone()),
                    "i".into(),
                    None,
                    &Extras::default(),
                ));
            }
            MatrixIn::Membership { sender, user, .. } => {
                MatrixUserId::parse(&sender.to_string()).expect("sender parses again");
                MatrixUserId::parse(&user.to_string()).expect("user parses again");
            }
            _ => {}
        }
    }
}

/// (3) Link recognition: `links::find` and `links::to_html` on arbitrary text. Links are in
/// order, inside the text, on character boundaries and bounded; the HTML has no markup but
/// `<a href>` and `<br>`.
pub fn links(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let rules = LinkRules { region: region(), extension_digits: Some(2..=5) };
    let found = links::find(&text, &rules);
    assert!(found.len() <= MAX_LINKS);
    let mut at = 0;
    for l in &found {
        assert!(at <= l.start && l.start < l.end && l.end <= text.len(), "links in order, inside the text");
        assert!(text.is_char_boundary(l.start) && text.is_char_boundary(l.end));
        at = l.end;
    }
    if let Some(html) = links::to_html(&text, &rules) {
        let mut rest = html.as_str();
        while let Some(i) = rest.find('<') {
            rest = &rest[i + 1..];
            assert!(
                rest.starts_with("a href=\"") || rest.starts_with("/a>") || rest.starts_with("br>"),
                "unexpected markup in {html:?}"
            );
        }
        const SCHEMES: [&str; 12] = [
            "http:",
            "https:",
            "ftp:",
            "gopher:",
            "telnet:",
            "wais:",
            "prospero:",
            "ntp:",
            "file:",
            "news:",
            "mailto:",
            "tel:",
        ];
        for part in html.split("<a href=\"").skip(1) {
            let href = part.split('"').next().unwrap_or_default().to_ascii_lowercase();
            assert!(SCHEMES.iter().any(|s| href.starts_with(s)), "link to {href:?} in {html:?}");
        }
    }
}

/// (4) A missed-call webhook request: `webhook::verify` with hostile headers (first line:
/// timestamp, second: signature), then the body signed correctly through `webhook::accept`
/// and every accepted event into the call model (`CallTracker`), as `calls::service` does.
pub fn calls_webhook(data: &[u8]) {
    let secret = b"fuzz-secret";
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let (ts, sig, body) = (parts.next(), parts.next(), parts.next());
    fn header(h: Option<&[u8]>) -> Option<&str> {
        h.and_then(|h| std::str::from_utf8(h).ok())
    }
    let body = body.unwrap_or(data);
    let now = 1_700_000_000;
    let _ = webhook::verify(secret, header(ts), header(sig), body, now, 300);
    let signature = webhook::sign(secret, now, body);
    let Ok(events) = webhook::accept(secret, Some(&now.to_string()), Some(&signature), body, now, 300) else {
        return;
    };
    assert!(events.len() <= webhook::MAX_EVENTS);
    let mut tracker = CallTracker::new();
    for event in events {
        webhook::validate_event(&event).expect("an accepted event is valid");
        if let Ok(Some(summary)) = tracker.apply(event) {
            let _ = (summary.duration_ms(), summary.is_missed(), summary.last_rung());
        }
    }
    for summary in tracker.expire_idle(i64::MAX) {
        let _ = summary.duration_ms();
    }
}

/// (5) SMS gateway input: a Kannel MO query string (`query_params` → `kannel_mo`), a Kannel
/// DLR status, and a generic gateway's body (`inbound_fields`, JSON when the first byte says
/// so). Numbers that come out are E.164; texts are within the limit.
pub fn sms_inbound(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(params) = sms_in::query_params(&text) {
        if let Ok(sms) = sms_in::kannel_mo(&params, region()) {
            PhoneNumber::parse(sms.from.as_str()).expect("sender is E.164");
            if let Some(to) = &sms.to {
                PhoneNumber::parse(to.as_str()).expect("addressee is E.164");
            }
            assert!(sms.text.len() <= 4 * sms_in::MAX_TEXT_BYTES, "decoded text is bounded");
        }
        if let Some(status) = params.get("status") {
            let _ = kannel::dlr_status(&String::from_utf8_lossy(status));
        }
    }
    let content_type = if data.first() == Some(&b'{') { Some("application/json") } else { None };
    if let Ok(fields) = http_provider::inbound_fields(content_type, data) {
        for value in fields.values() {
            let _ = sms_in::phone(value, region());
        }
    }
    let _ = sms_in::decode_text(data, Some("2"), Some("UCS-2"));
}

/// (6) An uploaded contact file through `contacts::import::read` in both formats (and the format
/// guess), then each contact written back as a vCard, which must read again.
pub fn contacts_import(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = Format::detect("upload", None, &text);
    for format in [Format::Vcard, Format::Csv] {
        let Ok(report) = import::read(&text, format, region()) else { continue };
        for c in &report.contacts {
            assert!(!c.phones.is_empty());
            let card = c.to_vcard();
            let again = contacts::parse_vcards(&card).unwrap_or_else(|e| panic!("own vCard unreadable ({e}): {card}"));
            assert_eq!(again.len(), 1, "one contact, one card: {card}");
        }
        let _ = contacts::ContactIndex::new(report.contacts, region()).lookup("+49301234567");
    }
}

/// (7) An AMI byte stream: cut into lines as `ami::run` reads them (bounded, lossy UTF-8),
/// framed by `FrameParser`, translated by `Translator`, and held to the webhook's rules by
/// `vetted`. Every event that passes is valid; followed calls stay bounded by the input.
pub fn ami_frames(data: &[u8]) {
    const MAX_LINE: usize = 8192;
    let mut parser = FrameParser::default();
    let mut translator = Translator::new(TranslatorConfig::default());
    let mut frames = 0;
    for raw in data.split(|&b| b == b'\n') {
        if raw.len() > MAX_LINE {
            continue;
        }
        let line = String::from_utf8_lossy(raw);
        let Ok(Some(frame)) = parser.push_line(&line) else { continue };
        frames += 1;
        let _ = frame.to_wire();
        for event in translator.translate(&frame, 1_700_000_000_000) {
            if let Some(event) = vetted(event) {
                webhook::validate_event(&event).expect("a vetted event is valid");
            }
        }
        assert!(translator.active() <= frames);
    }
}

/// (8) Address escaping: Matrix localpart escaping and XEP-0106 both round-trip, produce only
/// their alphabets, and decode only canonical forms; the identity map's ids are valid and map
/// back.
pub fn id_escaping(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let m = mapping::matrix_escape(&s);
    assert!(m.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'=')), "{m}");
    assert_eq!(mapping::matrix_unescape(&m).as_deref(), Ok(&*s));
    if let Ok(decoded) = mapping::matrix_unescape(&s) {
        assert_eq!(mapping::matrix_escape(&decoded), s, "only the canonical form decodes");
    }
    let x = mapping::xep0106_escape(&s);
    assert!(!x.contains([' ', '"', '&', '\'', '/', ':', '<', '>', '@']), "{x}");
    assert_eq!(mapping::xep0106_unescape(&x).as_deref(), Ok(&*s));
    if let Ok(decoded) = mapping::xep0106_unescape(&s) {
        assert_eq!(mapping::xep0106_escape(&decoded), s, "only the canonical form decodes");
    }
    let map = map();
    if let Ok(user) = MatrixUserId::parse(&s) {
        let jid = map.jid_for_matrix(&user);
        BareJid::parse(&jid.to_string()).expect("a Matrix user's JID parses");
        let local = jid.local().expect("a localpart");
        assert_eq!(map.matrix_for_jid(local), Ok(user.clone()));
        assert!(map.room_for_muc(local).is_none(), "a user's address is no room's");
    }
    if let Ok(jid) = BareJid::parse(&s) {
        let ghost = map.ghost_for(&jid);
        assert_eq!(map.jid_for_ghost(&ghost), Some(Ok(jid.clone())));
        if jid.local().is_some() && jid.domain() != map.component {
            let alias = map.linked_alias(&jid);
            assert_eq!(map.muc_for_linked_alias(&alias), Some(Ok(jid)));
        }
    }
    if let Some(Ok(room)) = map.room_for_muc(&s) {
        assert!(room.contains(':'));
    }
}
