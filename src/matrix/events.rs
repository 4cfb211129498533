//! Translation of pushed Matrix events (ruma types) into the core's [`MatrixIn`].

use ruma::events::room::member::MembershipState;
use ruma::events::room::message::MessageType;
use ruma::events::{AnyMessageLikeEvent, AnyStateEvent, AnyTimelineEvent, MessageLikeEvent, StateEvent};
use ruma::serde::Raw;

use crate::core::action::{Text, TextKind};
use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::inbound::{FileRef, MatrixIn, Membership};
use crate::core::presence::MatrixState;

/// Translate one pushed event; `None` for events the bridge does not act on (or cannot parse:
/// a malformed event from the homeserver must not fail the whole transaction).
pub fn translate(raw: &Raw<AnyTimelineEvent>) -> Option<MatrixIn> {
    let event = match raw.deserialize() {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(error = %e, "skipping an event ruma cannot parse");
            return None;
        }
    };
    let room = RoomId::parse(event.room_id().as_str()).ok()?;
    let sender = match MatrixUserId::parse(event.sender().as_str()) {
        Ok(sender) => sender,
        Err(e) => {
            // E.g. a historical localpart starting with `#` or `!`, whose XMPP address would be a
            // room's: the event is not bridged, and the log says why.
            tracing::info!(error = %e, room = %event.room_id(), "skipping an event from a sender the bridge cannot map");
            return None;
        }
    };
    match event {
        AnyTimelineEvent::State(AnyStateEvent::RoomMember(StateEvent::Original(ev))) => {
            let membership = match ev.content.membership {
                MembershipState::Invite => Membership::Invite,
                MembershipState::Join => Membership::Join,
                MembershipState::Leave => Membership::Leave,
                MembershipState::Ban => Membership::Ban,
                MembershipState::Knock => Membership::Knock,
                _ => return None,
            };
            Some(MatrixIn::Membership {
                room,
                sender,
                user: MatrixUserId::parse(ev.state_key.as_str()).ok()?,
                membership,
                displayname: ev.content.displayname,
                avatar_url: ev.content.avatar_url.map(|u| u.to_string()),
                reason: ev.content.reason,
                is_direct: ev.content.is_direct.unwrap_or(false),
            })
        }
        AnyTimelineEvent::State(AnyStateEvent::RoomPowerLevels(StateEvent::Original(ev))) => {
            let users = ev
                .content
                .users
                .iter()
                .filter_map(|(u, l)| Some((MatrixUserId::parse(u.as_str()).ok()?, i64::from(*l))))
                .collect();
            Some(MatrixIn::PowerLevels { room, sender, users, users_default: i64::from(ev.content.users_default) })
        }
        AnyTimelineEvent::State(AnyStateEvent::RoomTopic(StateEvent::Original(ev))) => {
            Some(MatrixIn::Topic { room, sender, topic: ev.content.topic })
        }
        AnyTimelineEvent::State(AnyStateEvent::RoomName(StateEvent::Original(ev))) => {
            Some(MatrixIn::Name { room, sender, name: ev.content.name })
        }
        AnyTimelineEvent::State(AnyStateEvent::RoomAvatar(StateEvent::Original(ev))) => {
            let url = ev.content.url.map(|u| u.to_string()).filter(|u| !u.is_empty());
            Some(MatrixIn::Avatar { room, sender, url })
        }
        AnyTimelineEvent::State(AnyStateEvent::RoomJoinRules(StateEvent::Original(ev))) => {
            let open = matches!(ev.content.join_rule, ruma::events::room::join_rules::JoinRule::Public);
            Some(MatrixIn::JoinRule { room, sender, open })
        }
        AnyTimelineEvent::State(AnyStateEvent::RoomEncryption(StateEvent::Original(_))) => {
            Some(MatrixIn::EncryptionEnabled { room, sender })
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomEncrypted(_)) => {
            Some(MatrixIn::Encrypted { room, sender })
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomMessage(MessageLikeEvent::Original(ev))) => {
            use ruma::events::room::message::Relation;
            let (reply_to, replaces, msgtype) = match &ev.content.relates_to {
                Some(Relation::Reply(r)) => (Some(r.in_reply_to.event_id.to_string()), None, &ev.content.msgtype),
                // An edit: the new content is what counts (the body is "* text" for old clients).
                Some(Relation::Replacement(r)) => (None, Some(r.event_id.to_string()), &r.new_content.msgtype),
                _ => (None, None, &ev.content.msgtype),
            };
            let mentions: Vec<MatrixUserId> = ev
                .content
                .mentions
                .iter()
                .flat_map(|m| m.user_ids.iter())
                .filter_map(|u| MatrixUserId::parse(u.as_str()).ok())
                .collect();
            let text = |body: &str, kind| {
                let body = if reply_to.is_some() { strip_reply_fallback(body) } else { body };
                Some(MatrixIn::Message {
                    room: room.clone(),
                    sender: sender.clone(),
                    event_id: ev.event_id.to_string(),
                    text: Text { body: body.to_owned(), kind },
                    reply_to: reply_to.clone(),
                    replaces: replaces.clone(),
                    mentions: mentions.clone(),
                    sent_at: i64::try_from(u64::from(ev.origin_server_ts.0)).ok(),
                })
            };
            let file = |source: &ruma::events::room::MediaSource,
                        name: &str,
                        size: Option<ruma::UInt>,
                        mimetype: Option<&String>| match source {
                ruma::events::room::MediaSource::Plain(mxc) => Some(FileRef {
                    event_id: ev.event_id.to_string(),
                    name: name.to_owned(),
                    mxc: mxc.to_string(),
                    size: size.map(u64::from),
                    mimetype: mimetype.cloned(),
                }),
                // An encrypted file: the bridge cannot read it.
                ruma::events::room::MediaSource::Encrypted(_) => None,
            };
            macro_rules! media {
                ($f:expr) => {{
                    let info = $f.info.as_deref();
                    file(
                        &$f.source,
                        $f.filename.as_deref().unwrap_or(&$f.body),
                        info.and_then(|i| i.size),
                        info.and_then(|i| i.mimetype.as_ref()),
                    )
                }};
            }
            let file = match msgtype {
                MessageType::Text(t) => return text(&t.body, TextKind::Text),
                MessageType::Notice(t) => return text(&t.body, TextKind::Notice),
                MessageType::Emote(t) => return text(&t.body, TextKind::Emote),
                _ if replaces.is_some() => None,
                // Four content types with the same fields (and a different info type each).
                MessageType::File(f) => media!(f),
                MessageType::Image(f) => media!(f),
                MessageType::Video(f) => media!(f),
                MessageType::Audio(f) => media!(f),
                _ => None,
            };
            match file {
                Some(file) => Some(MatrixIn::File { room, sender, file, reply_to }),
                None => Some(MatrixIn::Unsupported {
                    room,
                    sender,
                    what: format!("a {} message ({})", msgtype.msgtype().trim_start_matches("m."), msgtype.body()),
                    file: None,
                }),
            }
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::Reaction(MessageLikeEvent::Original(ev))) => {
            Some(MatrixIn::Reaction {
                room,
                sender,
                event_id: ev.event_id.to_string(),
                target: ev.content.relates_to.event_id.to_string(),
                key: ev.content.relates_to.key.clone(),
            })
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomRedaction(
            ruma::events::room::redaction::RoomRedactionEvent::Original(ev),
        )) => {
            // Room versions up to 10 name the event at the top level, 11 and later in the content.
            let redacts = ev.content.redacts.as_ref().or(ev.redacts.as_ref())?;
            Some(MatrixIn::Redaction { room, sender, redacts: redacts.to_string() })
        }
        _ => None,
    }
}

/// A reply's body without the quote of the answered message that older clients put before it
/// (lines starting with `>`, up to the first empty line). Matrix deprecated that fallback.
pub fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with('>') {
        return body;
    }
    let mut rest = body;
    while rest.starts_with('>') {
        match rest.find('\n') {
            Some(i) => rest = &rest[i + 1..],
            None => return body,
        }
    }
    match rest.strip_prefix('\n') {
        Some(after) if !after.is_empty() => after,
        _ if !rest.is_empty() => rest,
        _ => body,
    }
}

/// Translate one ephemeral event (`m.presence`, `m.typing`, `m.receipt`) from a transaction's
/// `ephemeral` list. They are read as plain JSON: appservice pushes carry fields (`room_id`,
/// `sender`) that the client-side ruma types do not have. Malformed ones are skipped.
pub fn translate_ephemeral(event: &serde_json::Value) -> Vec<MatrixIn> {
    let content = &event["content"];
    let room = || event["room_id"].as_str().and_then(|r| RoomId::parse(r).ok());
    match event["type"].as_str() {
        Some("m.presence") => {
            let Some(user) = event["sender"].as_str().and_then(|s| MatrixUserId::parse(s).ok()) else { return vec![] };
            let state = match content["presence"].as_str() {
                Some("online") => MatrixState::Online,
                Some("unavailable") => MatrixState::Unavailable,
                Some("offline") => MatrixState::Offline,
                _ => return vec![],
            };
            let status_msg = content["status_msg"].as_str().map(str::to_owned);
            vec![MatrixIn::Presence { user, state, status_msg }]
        }
        Some("m.typing") => {
            let Some(room) = room() else { return vec![] };
            let users = content["user_ids"]
                .as_array()
                .map(|ids| ids.iter().filter_map(|u| u.as_str().and_then(|u| MatrixUserId::parse(u).ok())).collect())
                .unwrap_or_default();
            vec![MatrixIn::Typing { room, users }]
        }
        Some("m.receipt") => {
            let Some(room) = room() else { return vec![] };
            let Some(events) = content.as_object() else { return vec![] };
            let mut out = Vec::new();
            for (event_id, receipts) in events {
                let Some(readers) = receipts["m.read"].as_object() else { continue };
                for user in readers.keys() {
                    if let Ok(user) = MatrixUserId::parse(user) {
                        out.push(MatrixIn::Read { room: room.clone(), user, event_id: event_id.clone() });
                    }
                }
            }
            out
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: serde_json::Value) -> Raw<AnyTimelineEvent> {
        Raw::from_json(serde_json::value::to_raw_value(&v).unwrap())
    }

    fn base(kind: &str, content: serde_json::Value) -> serde_json::Value {
        json!({"type": kind, "content": content, "event_id": "$e", "room_id": "!r:hs", "sender": "@bob:hs", "origin_server_ts": 1})
    }

    #[test]
    fn text_emote_and_notice() {
        let ev =
            translate(&raw(base("m.room.message", json!({"msgtype": "m.text", "body": "héllo 👋\nline 2"})))).unwrap();
        assert_eq!(
            ev,
            MatrixIn::Message {
                room: RoomId::parse("!r:hs").unwrap(),
                sender: MatrixUserId::parse("@bob:hs").unwrap(),
                event_id: "$e".into(),
                text: Text::plain("héllo 👋\nline 2"),
                reply_to: None,
                replaces: None,
                mentions: vec![],
                sent_at: Some(1),
            }
        );
        let pill = json!({"msgtype": "m.text", "body": "Assistant: hi", "m.mentions": {"user_ids": ["@assistant:hs"]}});
        match translate(&raw(base("m.room.message", pill))).unwrap() {
            MatrixIn::Message { mentions, .. } => assert_eq!(mentions, [MatrixUserId::parse("@assistant:hs").unwrap()]),
            other => panic!("{other:?}"),
        }
        let reply = json!({"msgtype": "m.text", "body": "contacts import",
            "m.relates_to": {"m.in_reply_to": {"event_id": "$file"}}});
        match translate(&raw(base("m.room.message", reply))).unwrap() {
            MatrixIn::Message { reply_to, .. } => assert_eq!(reply_to.as_deref(), Some("$file")),
            other => panic!("{other:?}"),
        }
        let ev = translate(&raw(base("m.room.message", json!({"msgtype": "m.emote", "body": "waves"})))).unwrap();
        assert!(matches!(ev, MatrixIn::Message { text: Text { kind: TextKind::Emote, .. }, .. }));
    }

    #[test]
    fn invites_carry_the_invitee() {
        let mut v = base("m.room.member", json!({"membership": "invite", "is_direct": true}));
        v["state_key"] = json!("@_xmpp_a=40b:hs");
        match translate(&raw(v)).unwrap() {
            MatrixIn::Membership { user, membership: Membership::Invite, is_direct, .. } => {
                assert_eq!(user.localpart(), "_xmpp_a=40b");
                assert!(is_direct);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn encryption_and_files_are_reported_not_dropped() {
        let mut v = base("m.room.encryption", json!({"algorithm": "m.megolm.v1.aes-sha2"}));
        v["state_key"] = json!("");
        assert!(matches!(translate(&raw(v)), Some(MatrixIn::EncryptionEnabled { .. })));
        let v = base(
            "m.room.encrypted",
            json!({"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "x", "sender_key": "k", "device_id": "D", "session_id": "s"}),
        );
        assert!(matches!(translate(&raw(v)), Some(MatrixIn::Encrypted { .. })));
        let v = base("m.room.message", json!({"msgtype": "m.file", "body": "report.pdf", "url": "mxc://hs/abc"}));
        match translate(&raw(v)) {
            Some(MatrixIn::File { file, .. }) => {
                assert_eq!(
                    (file.name.as_str(), file.mxc.as_str(), file.event_id.as_str()),
                    ("report.pdf", "mxc://hs/abc", "$e")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replies_edits_reactions_redactions_and_media() {
        let reply = json!({"msgtype": "m.text", "body": "> <@a:hs> the plan\n> line\n\nyes",
            "m.relates_to": {"m.in_reply_to": {"event_id": "$orig"}}});
        match translate(&raw(base("m.room.message", reply))).unwrap() {
            MatrixIn::Message { text, reply_to, replaces: None, .. } => {
                assert_eq!((text.body.as_str(), reply_to.as_deref()), ("yes", Some("$orig")))
            }
            other => panic!("{other:?}"),
        }
        let edit = json!({"msgtype": "m.text", "body": "* fixed", "m.new_content": {"msgtype": "m.text", "body": "fixed"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$orig"}});
        match translate(&raw(base("m.room.message", edit))).unwrap() {
            MatrixIn::Message { text, replaces, .. } => {
                assert_eq!((text.body.as_str(), replaces.as_deref()), ("fixed", Some("$orig")))
            }
            other => panic!("{other:?}"),
        }
        let reaction = json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$orig", "key": "👍"}});
        match translate(&raw(base("m.reaction", reaction))).unwrap() {
            MatrixIn::Reaction { target, key, event_id, .. } => {
                assert_eq!((target, key, event_id), ("$orig".into(), "👍".into(), "$e".into()))
            }
            other => panic!("{other:?}"),
        }
        let mut redaction = base("m.room.redaction", json!({"redacts": "$orig"}));
        redaction["redacts"] = json!("$orig");
        assert!(matches!(translate(&raw(redaction)), Some(MatrixIn::Redaction { redacts, .. }) if redacts == "$orig"));
        let image = json!({"msgtype": "m.image", "body": "cat.png", "url": "mxc://hs/cat", "info": {"mimetype": "image/png", "size": 42}});
        match translate(&raw(base("m.room.message", image))).unwrap() {
            MatrixIn::File { file, .. } => {
                assert_eq!(
                    (file.name.as_str(), file.mimetype.as_deref(), file.size),
                    ("cat.png", Some("image/png"), Some(42))
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reply_fallbacks_are_stripped_only_when_whole() {
        assert_eq!(strip_reply_fallback("> <@a:hs> hi\n\nanswer"), "answer");
        assert_eq!(strip_reply_fallback("> quote only"), "> quote only");
        assert_eq!(strip_reply_fallback("plain > text"), "plain > text");
        assert_eq!(strip_reply_fallback("> a\n> b\nanswer"), "answer");
    }

    #[test]
    fn ephemeral_events() {
        let p = json!({"type": "m.presence", "sender": "@bob:hs", "content": {"presence": "unavailable", "status_msg": "⛔ busy"}});
        assert_eq!(
            translate_ephemeral(&p),
            vec![MatrixIn::Presence {
                user: MatrixUserId::parse("@bob:hs").unwrap(),
                state: MatrixState::Unavailable,
                status_msg: Some("⛔ busy".into())
            }]
        );
        let t = json!({"type": "m.typing", "room_id": "!r:hs", "content": {"user_ids": ["@bob:hs", "bad"]}});
        assert_eq!(
            translate_ephemeral(&t),
            vec![MatrixIn::Typing {
                room: RoomId::parse("!r:hs").unwrap(),
                users: vec![MatrixUserId::parse("@bob:hs").unwrap()]
            }]
        );
        let r = json!({"type": "m.receipt", "room_id": "!r:hs", "content": {"$e1": {"m.read": {"@bob:hs": {"ts": 1}}, "m.read.private": {"@x:hs": {}}}}});
        assert_eq!(
            translate_ephemeral(&r),
            vec![MatrixIn::Read {
                room: RoomId::parse("!r:hs").unwrap(),
                user: MatrixUserId::parse("@bob:hs").unwrap(),
                event_id: "$e1".into()
            }]
        );
        assert!(translate_ephemeral(&json!({"type": "m.presence", "content": {}})).is_empty());
        assert!(translate_ephemeral(&json!(42)).is_empty());
    }

    #[test]
    fn room_state_events() {
        let mut v = base("m.room.power_levels", json!({"users": {"@bob:hs": 100, "@ann:hs": 50}, "users_default": 0}));
        v["state_key"] = json!("");
        match translate(&raw(v)).unwrap() {
            MatrixIn::PowerLevels { users, users_default, .. } => {
                assert_eq!(users.get(&MatrixUserId::parse("@ann:hs").unwrap()), Some(&50));
                assert_eq!(users_default, 0);
            }
            other => panic!("{other:?}"),
        }
        let mut v = base("m.room.topic", json!({"topic": "Q3 numbers"}));
        v["state_key"] = json!("");
        assert!(matches!(translate(&raw(v)), Some(MatrixIn::Topic { topic, .. }) if topic == "Q3 numbers"));
        let mut v = base("m.room.join_rules", json!({"join_rule": "public"}));
        v["state_key"] = json!("");
        assert!(matches!(translate(&raw(v)), Some(MatrixIn::JoinRule { open: true, .. })));
        let mut v = base("m.room.avatar", json!({"url": "mxc://hs/pic"}));
        v["state_key"] = json!("");
        assert!(matches!(translate(&raw(v)), Some(MatrixIn::Avatar { url: Some(u), .. }) if u == "mxc://hs/pic"));
        // Removed: an event without a URL.
        let mut v = base("m.room.avatar", json!({}));
        v["state_key"] = json!("");
        assert!(matches!(translate(&raw(v)), Some(MatrixIn::Avatar { url: None, .. })));
    }

    #[test]
    fn garbage_is_skipped() {
        assert_eq!(translate(&raw(json!({"type": "m.room.message"}))), None);
    }
}
