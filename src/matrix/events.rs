//! Translation of pushed Matrix events (ruma types) into the core's [`MatrixIn`].

use ruma::events::room::member::MembershipState;
use ruma::events::room::message::MessageType;
use ruma::events::{AnyMessageLikeEvent, AnyStateEvent, AnyTimelineEvent, MessageLikeEvent, StateEvent};
use ruma::serde::Raw;

use crate::core::action::{Text, TextKind};
use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::inbound::{MatrixIn, Membership};

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
            })
        }
        AnyTimelineEvent::State(AnyStateEvent::RoomEncryption(StateEvent::Original(_))) => {
            Some(MatrixIn::EncryptionEnabled { room, sender })
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomEncrypted(_)) => {
            Some(MatrixIn::Encrypted { room, sender })
        }
        AnyTimelineEvent::MessageLike(AnyMessageLikeEvent::RoomMessage(MessageLikeEvent::Original(ev))) => {
            let text = |body: &str, kind| {
                Some(MatrixIn::Message {
                    room: room.clone(),
                    sender: sender.clone(),
                    text: Text { body: body.to_owned(), kind },
                })
            };
            match &ev.content.msgtype {
                MessageType::Text(t) => text(&t.body, TextKind::Text),
                MessageType::Notice(t) => text(&t.body, TextKind::Notice),
                MessageType::Emote(t) => text(&t.body, TextKind::Emote),
                other => Some(MatrixIn::Unsupported {
                    room,
                    sender,
                    what: format!("a {} message ({})", other.msgtype().trim_start_matches("m."), other.body()),
                }),
            }
        }
        _ => None,
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
                text: Text::plain("héllo 👋\nline 2"),
            }
        );
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
            Some(MatrixIn::Unsupported { what, .. }) => {
                assert!(what.contains("report.pdf"), "{what}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_skipped() {
        assert_eq!(translate(&raw(json!({"type": "m.room.message"}))), None);
    }
}
