//! Message content beyond text, on XMPP: replies (XEP-0461) with their fallback (XEP-0428),
//! corrections (XEP-0308), reactions (XEP-0444), retractions (XEP-0424) and files by URL
//! (XEP-0066), and when a message was written (XEP-0203 `<delay>`). Read from received messages
//! into the core's terms, and added to sent ones.

use xmpp_parsers::date::DateTime;
use xmpp_parsers::delay::Delay;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Id, Lang, Message, MessageType};
use xmpp_parsers::message_correct::Replace;
use xmpp_parsers::oob::Oob;
use xmpp_parsers::reactions::{Reaction, Reactions};

use super::xep::fallback::{Fallback, Range};
use super::xep::hints::Store;
use super::xep::reference::Reference;
use super::xep::reply::Reply as ReplyTo;
use super::xep::retract::{Retract, retracted_id};
use crate::core::action::{Attachment, Extras, Reply, Text};
use crate::core::ids::StanzaId;
use crate::core::inbound::XmppAct;
use crate::core::mentions::{self, RawReference, Span};

pub use super::xep::fallback::NS as FALLBACK;
pub use super::xep::reply::NS as REPLY;
pub use super::xep::retract::NS as RETRACT;

/// What a received message says: its text (without reply fallback), what it refers to, or what
/// it does to an earlier message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Read {
    pub body: Option<String>,
    pub extras: Extras<StanzaId>,
    pub act: Option<XmppAct>,
    /// The URIs its XEP-0372 mention references name (validated against the body, bounded).
    pub mentions: Vec<String>,
}

/// Read a message's content.
pub fn read(message: &Message) -> Read {
    let mut out = Read { body: message.get_best_body_cloned(vec![]).map(|(_, b)| b), ..Read::default() };
    let mut reply_fallback: Vec<(Option<usize>, Option<usize>)> = vec![];
    let mut references: Vec<RawReference> = vec![];
    for p in &message.payloads {
        if let Ok(r) = Reactions::try_from(p.clone()) {
            out.act = Some(XmppAct::Reactions { id: r.id, keys: r.reactions.into_iter().map(|r| r.emoji).collect() });
        } else if let Some(id) = retracted_id(p) {
            out.act = Some(XmppAct::Retract { id });
        } else if let Ok(r) = Replace::try_from(p.clone()) {
            out.extras.replaces = Some(StanzaId::new(r.id.0));
        } else if let Ok(r) = ReplyTo::try_from(p.clone()) {
            out.extras.reply_to = Some(Reply { id: StanzaId::new(r.id), author: r.to, quote: None });
        } else if let Ok(f) = Fallback::try_from(p.clone()) {
            if f.for_ == REPLY {
                reply_fallback.extend(f.bodies.iter().map(Range::offsets));
            }
        } else if let Ok(d) = Delay::try_from(p.clone()) {
            // The sender's (or its server's offline storage's) claim; bounded where it is used.
            out.extras.sent_at = Some(d.stamp.0.timestamp_millis());
        } else if let Ok(r) = Reference::try_from(p.clone()) {
            // Bounded before checking: a message may carry any number of them.
            if references.len() < 4 * mentions::MAX_MENTIONS {
                let (begin, end) = r.offsets();
                references.push(RawReference { kind: r.kind, uri: r.uri, begin, end });
            }
        } else if let Ok(oob) = Oob::try_from(p.clone()) {
            let url = oob.url.trim().to_owned();
            if url.starts_with("https://") || url.starts_with("http://") {
                out.extras.file = Some(Attachment { url, name: None, mimetype: None, size: None });
            }
        }
    }
    if out.extras.reply_to.is_some()
        && let Some(body) = &out.body
    {
        out.body = Some(strip_ranges(body, &reply_fallback));
    }
    out.mentions = mentions::mentioned_uris(out.body.as_deref().unwrap_or_default(), &references);
    out
}

/// The body without the character ranges (XEP-0428 counts Unicode code points) of a fallback.
fn strip_ranges(body: &str, ranges: &[(Option<usize>, Option<usize>)]) -> String {
    let chars: Vec<char> = body.chars().collect();
    let cut = |i: usize| {
        ranges.iter().any(|(s, e)| {
            let (s, e) = (s.unwrap_or(0), e.unwrap_or(chars.len()));
            i >= s && i < e
        })
    };
    let kept: String = chars.iter().enumerate().filter(|(i, _)| !cut(*i)).map(|(_, c)| *c).collect();
    if ranges.is_empty() { body.to_owned() } else { kept.trim_start_matches('\n').to_owned() }
}

/// Add what `extras` says to a message whose text is `body` (the reply's quote is put before
/// it, marked as fallback).
pub fn apply(mut message: Message, body: &str, extras: &Extras<StanzaId>) -> Message {
    let mut text = body.to_owned();
    if let Some(reply) = &extras.reply_to {
        let to = reply.author.as_deref().and_then(|a| Jid::new(a).ok()).map(|to| to.to_string());
        message = message.with_payload(ReplyTo { id: reply.id.to_string(), to });
        if let Some(quote) = reply.quote.as_deref().filter(|q| !q.is_empty()) {
            let quoted: String = quote.lines().map(|l| format!("> {l}\n")).collect();
            let end = quoted.chars().count();
            text = format!("{quoted}{body}");
            message = message.with_payload(Fallback { for_: REPLY.to_owned(), bodies: vec![Range::new(0, end)] });
        }
    }
    if let Some(id) = &extras.replaces {
        message = message.with_payload(Replace { id: Id(id.to_string()) });
    }
    if let Some(file) = &extras.file {
        message = message.with_payload(Oob { url: file.url.clone(), desc: None });
    }
    message.bodies.insert(Lang::default(), text);
    message
}

/// A time stamp (XEP-0082) of `ms` since the Unix epoch; `None` for a time chrono cannot show.
pub fn stamp(ms: i64) -> Option<DateTime> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| DateTime(t.fixed_offset()))
}

/// A `<delay>` (XEP-0203) saying that `by` held the message since `ms`.
pub fn delay(by: &Jid, ms: i64) -> Option<Delay> {
    Some(Delay { from: Some(by.clone()), stamp: stamp(ms)?, data: None })
}

/// A XEP-0372 reference for each mention. The spans count in `text`; the body sent may have a
/// reply's quote and an emote's "/me " before it, which move them by as many code points.
pub fn add_mentions(mut message: Message, text: &Text, spans: &[Span]) -> Message {
    let sent = message.bodies.get(&Lang::default()).map(|b| b.chars().count()).unwrap_or_default();
    let shift = sent.saturating_sub(text.body.chars().count());
    for s in spans {
        message = message.with_payload(Reference::mention(&s.uri, s.begin + shift, s.end + shift));
    }
    message
}

/// The full set of `keys` as someone's reactions to the message `id`.
pub fn reactions(kind: MessageType, to: Jid, id: &str, keys: &[String]) -> Message {
    let r = Reactions { id: id.to_owned(), reactions: keys.iter().map(|k| Reaction { emoji: k.clone() }).collect() };
    Message::new_with_type(kind, Some(to)).with_payload(r).with_payload(Store)
}

/// The retraction of the message `id`, with a body for clients that do not know retractions.
pub fn retraction(kind: MessageType, to: Jid, id: &str) -> Message {
    Message::new_with_type(kind, Some(to))
        .with_body(Lang::default(), "/me retracted a previous message, but it's unsupported by your client.".to_owned())
        .with_payload(Retract { id: id.to_owned() })
        .with_payload(Fallback { for_: RETRACT.to_owned(), bodies: vec![] })
        .with_payload(Store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::minidom::Element;

    fn parse(xml: &str) -> Message {
        Message::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }

    fn xml(m: Message) -> String {
        String::from(&Element::from(m))
    }

    const NS: &str = "xmlns='jabber:component:accept'";

    #[test]
    fn reply_with_fallback_is_read_without_the_quote() {
        let m = parse(&format!(
            "<message {NS} type='chat' id='r1'><body>&gt; Anna wrote:\n&gt; the plan\nyes, agreed</body>\
             <reply xmlns='urn:xmpp:reply:0' to='anna@x/phone' id='orig-1'/>\
             <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='25'/></fallback></message>"
        ));
        let r = read(&m);
        assert_eq!(r.body.as_deref(), Some("yes, agreed"));
        assert_eq!(
            r.extras.reply_to,
            Some(Reply { id: "orig-1".into(), author: Some("anna@x/phone".into()), quote: None })
        );
        // Without a fallback indication the body is kept whole.
        let m = parse(&format!(
            "<message {NS} type='chat'><body>&gt; hm\nok</body><reply xmlns='urn:xmpp:reply:0' id='o'/></message>"
        ));
        assert_eq!(read(&m).body.as_deref(), Some("> hm\nok"));
    }

    #[test]
    fn corrections_reactions_retractions_and_files_are_read() {
        let m = parse(&format!(
            "<message {NS} type='chat'><body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='m1'/></message>"
        ));
        assert_eq!(read(&m).extras.replaces.as_ref().map(StanzaId::as_str), Some("m1"));
        let m = parse(&format!(
            "<message {NS} type='chat'><reactions xmlns='urn:xmpp:reactions:0' id='m2'><reaction>👍</reaction><reaction>🎉</reaction></reactions></message>"
        ));
        assert_eq!(read(&m).act, Some(XmppAct::Reactions { id: "m2".into(), keys: vec!["👍".into(), "🎉".into()] }));
        let m =
            parse(&format!("<message {NS} type='chat'><reactions xmlns='urn:xmpp:reactions:0' id='m2'/></message>"));
        assert_eq!(read(&m).act, Some(XmppAct::Reactions { id: "m2".into(), keys: vec![] }));
        let m = parse(&format!(
            "<message {NS} type='chat'><body>x</body><retract xmlns='urn:xmpp:message-retract:1' id='m3'/></message>"
        ));
        assert_eq!(read(&m).act, Some(XmppAct::Retract { id: "m3".into() }));
        let m = parse(&format!(
            "<message {NS} type='chat'><apply-to xmlns='urn:xmpp:fasten:0' id='m4'><retract xmlns='urn:xmpp:message-retract:0'/></apply-to></message>"
        ));
        assert_eq!(read(&m).act, Some(XmppAct::Retract { id: "m4".into() }));
        let m = parse(&format!(
            "<message {NS} type='chat'><body>https://up.x/a.png</body><x xmlns='jabber:x:oob'><url>https://up.x/a.png</url></x></message>"
        ));
        assert_eq!(read(&m).extras.file.map(|f| f.url), Some("https://up.x/a.png".into()));
        let m = parse(&format!(
            "<message {NS} type='chat'><body>f</body><x xmlns='jabber:x:oob'><url>file:///etc/passwd</url></x></message>"
        ));
        assert_eq!(read(&m).extras.file, None, "only http(s) URLs are files");
    }

    #[test]
    fn sent_replies_carry_the_reference_and_a_marked_fallback() {
        let extras = Extras {
            reply_to: Some(Reply {
                id: "o1".into(),
                author: Some("a@x".into()),
                quote: Some("the plan\nline 2".into()),
            }),
            replaces: Some("m0".into()),
            file: Some(Attachment { url: "http://b/media/t/a.txt".into(), name: None, mimetype: None, size: None }),
            sent_at: None,
        };
        let out = xml(apply(Message::chat(Some(Jid::new("a@x").unwrap())), "yes 👍", &extras));
        for part in [
            "<reply xmlns='urn:xmpp:reply:0' id='o1' to='a@x'/>",
            "<body end='20' start='0'/>",
            "for='urn:xmpp:reply:0'",
            "<replace xmlns='urn:xmpp:message-correct:0' id='m0'/>",
            "<url>http://b/media/t/a.txt</url>",
            "&gt; the plan\n&gt; line 2\nyes 👍",
        ] {
            assert!(out.contains(part), "{part} not in {out}");
        }
        // What the bridge sends, it reads back the same.
        let back = read(&Message::try_from(out.parse::<Element>().unwrap()).unwrap());
        assert_eq!(back.body.as_deref(), Some("yes 👍"));
        assert_eq!(back.extras.replaces.as_ref().map(StanzaId::as_str), Some("m0"));
    }

    #[test]
    fn sent_reactions_and_retractions() {
        let to = Jid::new("a@x").unwrap();
        let out = xml(reactions(MessageType::Chat, to.clone(), "m1", &["👍".into(), "❤️".into()]));
        assert!(out.contains("<reactions xmlns='urn:xmpp:reactions:0' id='m1'><reaction>👍</reaction><reaction>❤️</reaction></reactions>"), "{out}");
        let out = xml(reactions(MessageType::Groupchat, to.clone(), "7", &[]));
        assert!(
            out.contains("<reactions xmlns='urn:xmpp:reactions:0' id='7'/>") && out.contains("type='groupchat'"),
            "{out}"
        );
        let out = xml(retraction(MessageType::Chat, to, "m1"));
        assert!(out.contains("<retract xmlns='urn:xmpp:message-retract:1' id='m1'/>"), "{out}");
        assert!(out.contains("<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>"), "{out}");
    }
}
