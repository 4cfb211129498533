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
    let sender = MatrixUserId::parse(event.sender().as_str()).ok()?;
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
                reason: ev.content.reason,
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
            let reply_to = match &ev.content.relates_to {
                Some(ruma::events::room::message::Relation::Reply(r)) => Some(r.in_reply_to.event_id.to_string()),
                _ => None,
            };
            let text = |body: &str, kind| {
                Some(MatrixIn::Message {
                    room: room.clone(),
                    sender: sender.clone(),
                    event_id: ev.event_id.to_string(),
                    text: Text { body: body.to_owned(), kind },
                    reply_to: reply_to.clone(),
                })
            };
            match &ev.content.msgtype {
                MessageType::Text(t) => text(&t.body, TextKind::Text),
                MessageType::Notice(t) => text(&t.body, TextKind::Notice),
                MessageType::Emote(t) => text(&t.body, TextKind::Emote),
                other => {
                    let file = match other {
                        MessageType::File(f) => match &f.source {
                            ruma::events::room::MediaSource::Plain(mxc) => Some(FileRef {
                                event_id: ev.event_id.to_string(),
                                name: f.filename.clone().unwrap_or_else(|| f.body.clone()),
                                mxc: mxc.to_string(),
                                size: f.info.as_ref().and_then(|i| i.size).map(u64::from),
                                mimetype: f.info.as_ref().and_then(|i| i.mimetype.clone()),
                            }),
                            // An encrypted file: the bridge cannot read it.
                            ruma::events::room::MediaSource::Encrypted(_) => None,
                        },
                        _ => None,
                    };
                    Some(MatrixIn::Unsupported {
                        room,
                        sender,
                        what: format!("a {} message ({})", other.msgtype().trim_start_matches("m."), other.body()),
                        file,
                    })
                }
            }
        }
        _ => None,
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
            }
        );
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
            MatrixIn::Membership { user, membership: Membership::Invite, .. } => {
                assert_eq!(user.localpart(), "_xmpp_a=40b")
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
            Some(MatrixIn::Unsupported { what, file, .. }) => {
                assert!(what.contains("report.pdf"), "{what}");
                let file = file.expect("an m.file carries where to fetch it");
                assert_eq!(
                    (file.name.as_str(), file.mxc.as_str(), file.event_id.as_str()),
                    ("report.pdf", "mxc://hs/abc", "$e")
                );
            }
            other => panic!("{other:?}"),
        }
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
    }

    #[test]
    fn garbage_is_skipped() {
        assert_eq!(translate(&raw(json!({"type": "m.room.message"}))), None);
    }
}
