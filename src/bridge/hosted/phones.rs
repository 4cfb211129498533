//! Phone numbers as members of hosted rooms (issue 18 item 6): a moderator with the `sms`
//! permission adds a number (Matrix: invites its SMS ghost; XMPP: invites or gives `member` to
//! `+number@component`); it is a room member as its ghost (so the cap counts it and a kick removes
//! it). What the room says reaches the phone as SMS ("Nick: text"), paid by whoever added the
//! number and under the SMS module's checks at the time of each message; what the phone answers
//! appears in the room from the ghost, if this room was the conversation that last wrote to it.

use crate::bridge::Bridge;
use crate::core::action::{Action, Extras, OccupantChange, RoomOp, SmsOrigin, Text, TextKind};
use crate::core::ids::{ArchiveId, BareJid, PhoneNumber, RoomId};
use crate::core::room::Role;
use crate::core::watch::{ContactError, Party};
use crate::sms::PERMISSION;
use crate::sms::unsendable::Unsendable;
use crate::store::{HostedRoom, NewArchived, RoomMember, StoreTx};

/// A room message on its way to the room's phones.
pub(in crate::bridge) struct ToPhones<'a> {
    /// Who said it (a phone gets nothing of its own).
    pub sender: &'a Party,
    pub nick: &'a str,
    pub text: &'a Text,
    /// A file (its link is the text): sent only with `sms.files_as_links`.
    pub file: bool,
    /// A correction: SMS cannot correct, so it is not sent.
    pub edit: bool,
    /// Where the delivery tick and a failure are shown.
    pub origin: Option<SmsOrigin>,
}

impl Bridge {
    /// A participant's address as typed in a MUC request: a number's address
    /// (`+4917…@component`) stands for the number's ghost.
    pub(in crate::bridge) fn room_contact(&self, text: &str) -> Result<Party, ContactError> {
        if let Ok(jid) = BareJid::parse(text)
            && jid.domain() == self.map.component
            && let Some(phone) = jid.local().and_then(|l| self.map.phone_for_local(l))
        {
            return Ok(Party::Matrix(self.map.sms_ghost(&phone)));
        }
        Party::parse_contact(text, &self.map)
    }

    /// The number a member stands for, if it is a phone.
    pub(in crate::bridge) fn phone_of(&self, who: &Party) -> Option<PhoneNumber> {
        match who {
            Party::Matrix(user) => self.map.phone_for_ghost(user),
            Party::Xmpp(_) => None,
        }
    }

    /// Why `actor` may not add `phone` to a room, beyond the room's own rules (the SMS are
    /// billed to them, so they need the permission, and the number must be one SMS may reach).
    pub(in crate::bridge) async fn phone_member_refusal(
        &self,
        actor: &Party,
        phone: &PhoneNumber,
    ) -> crate::store::Result<Option<String>> {
        let Some(service) = self.sms() else { return Ok(Some("SMS is not set up on this bridge".into())) };
        if !self.store.has_permission(actor, PERMISSION).await? {
            return Ok(Some(format!(
                "only people who may send SMS can add a phone number (an admin can allow it: permissions grant {actor} sms)"
            )));
        }
        Ok(service.check_address(phone).err().map(|e| e.to_string()))
    }

    /// A Matrix moderator invited a number's ghost and the room's rules allow it: the number
    /// joins, unless the inviter may not pay for its SMS.
    pub(in crate::bridge) async fn phone_invited(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        members: &[RoomMember],
        inviter: &Party,
        phone: PhoneNumber,
    ) -> crate::store::Result<Vec<Action>> {
        let ghost = self.map.sms_ghost(&phone);
        if let Some(why) = self.phone_member_refusal(inviter, &phone).await? {
            return Ok(vec![
                Action::MatrixRoomAct {
                    room: room.clone(),
                    op: RoomOp::Kick { user: ghost.clone(), reason: why.clone() },
                },
                self.bot_notice(room, format!("{inviter}: {ghost} was not added: {why}.")),
            ]);
        }
        let who = Party::Matrix(ghost);
        let m =
            RoomMember { nick: self.new_nick(members, &who, None), party: who, role: Role::Participant, joined: true };
        tx.save_member(room, &m).await?;
        self.phone_joined(tx, room, &m, &phone, inviter, false).await
    }

    /// A number became a member (`m`, saved by the caller): recorded with who pays, its ghost
    /// joins the Matrix room (invited by the bot first when `invite`), the XMPP occupants see it.
    pub(in crate::bridge) async fn phone_joined(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        m: &RoomMember,
        phone: &PhoneNumber,
        added_by: &Party,
        invite: bool,
    ) -> crate::store::Result<Vec<Action>> {
        tx.add_room_phone(room, &m.party, phone, added_by).await?;
        let ghost = self.map.sms_ghost(phone);
        let mut actions = vec![];
        if invite {
            actions.push(Action::MatrixRoomAct { room: room.clone(), op: RoomOp::Invite { user: ghost.clone() } });
        }
        actions.push(Action::MatrixJoin { room: room.clone(), user: ghost });
        actions.push(Action::XmppOccupant {
            room: room.clone(),
            who: m.party.clone(),
            nick: m.nick.clone(),
            change: OccupantChange::Present { role: m.role },
        });
        actions.push(self.bot_notice(
            room,
            format!("{phone} takes part by SMS: what is said here reaches it as SMS (paid by {added_by}), and its answers appear here."),
        ));
        Ok(actions)
    }

    /// A room message for the room's phones: an SMS to each ("Nick: text"), paid by whoever
    /// added the number, checked now (their permission, limits, length); what SMS cannot carry
    /// or what is refused becomes a notice in the room from the number's ghost (and to an XMPP
    /// sender, who does not see the Matrix notices).
    pub(in crate::bridge) async fn room_sms(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        members: &[RoomMember],
        msg: ToPhones<'_>,
    ) -> crate::store::Result<Vec<Action>> {
        let mut actions = vec![];
        for m in members.iter().filter(|m| &m.party != msg.sender) {
            let Some(phone) = self.phone_of(&m.party) else { continue };
            let refused = if msg.edit {
                Some(Unsendable::Edit.notice(&phone))
            } else if msg.file && !self.sms().is_some_and(|s| s.settings.files_as_links) {
                Some(Unsendable::File.notice(&phone))
            } else {
                self.sms_to_room_phone(tx, room, m, &phone, &msg, &mut actions).await?
            };
            if let Some(text) = refused {
                let ghost = self.map.sms_ghost(&phone);
                let notice = Text::notice(text);
                if let Party::Xmpp(jid) = msg.sender {
                    actions.push(Action::XmppNotice { to: jid.clone(), text: notice.clone() });
                }
                actions.push(Action::MatrixPost { room: room.clone(), user: ghost, text: notice, nick: None });
            }
        }
        Ok(actions)
    }

    /// One phone's SMS of a room message; `Some`: why it was not sent.
    async fn sms_to_room_phone(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        m: &RoomMember,
        phone: &PhoneNumber,
        msg: &ToPhones<'_>,
        actions: &mut Vec<Action>,
    ) -> crate::store::Result<Option<String>> {
        let Some(payer) = tx.room_phone_adder(room, &m.party).await? else {
            return Ok(Some(format!("Not sent to {phone}: nobody pays for its SMS; a moderator can add it again.")));
        };
        // Checked at each message: the one who added the number may have lost the permission.
        if !self.store.has_permission(&payer, PERMISSION).await? {
            return Ok(Some(format!(
                "Not sent to {phone}: {payer}, who added the number and pays for its SMS, may no longer send SMS."
            )));
        }
        let line = match msg.text.kind {
            TextKind::Emote => format!("* {} {}", msg.nick, msg.text.body.trim()),
            _ => format!("{}: {}", msg.nick, msg.text.body.trim()),
        };
        match self.sms_sends(tx, &payer, phone, &line, msg.origin.clone()).await? {
            Ok((sends, _)) => {
                tx.touch_room_phone(room, &m.party).await?;
                // No author: the SMS are the room's, not the payer's own chat (their journal
                // and SMS conversation stay apart; the daily cap and rate were taken above).
                actions.extend(sends.into_iter().map(|a| match a {
                    Action::SmsSend { sender, to, text, parts, origin, .. } => {
                        Action::SmsSend { author: None, sender, to, text, parts, origin }
                    }
                    other => other,
                }));
                Ok(None)
            }
            Err(refusal) => Ok(Some(format!("Not sent to {phone} (paid by {payer}): {}", refusal.text))),
        }
    }

    /// An SMS from a phone that is a member of `room`: said in the room by its ghost (archived,
    /// on Matrix and to the MUC) and passed on to the room's other phones. `None`: it is not
    /// a member there (any more), so the caller routes it elsewhere.
    pub(in crate::bridge) async fn phone_says(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        phone: &PhoneNumber,
        body: &str,
    ) -> crate::store::Result<Option<Vec<Action>>> {
        let Some(r): Option<HostedRoom> = self.hosted_room(room).await? else { return Ok(None) };
        let ghost = self.map.sms_ghost(phone);
        let me = Party::Matrix(ghost.clone());
        let members = tx.room_members(room).await?;
        let Some(m) = members.iter().find(|m| m.party == me) else { return Ok(None) };
        let text = Text::plain(body);
        let archive_id = ArchiveId(tx.archive(room, &NewArchived::said(&me, &m.nick, &text)).await?);
        self.count_room_message(tx, &r, &members, &me).await?;
        let msg = ToPhones { sender: &me, nick: &m.nick, text: &text, file: false, edit: false, origin: None };
        let others = self.room_sms(tx, room, &members, msg).await?;
        let mut actions = vec![
            Action::MatrixRoomSay {
                room: room.clone(),
                user: ghost,
                text: text.clone(),
                nick: m.nick.clone(),
                archive_id,
                extras: Extras::default(),
                mentions: vec![],
            },
            Action::XmppGroupchat {
                room: room.clone(),
                nick: m.nick.clone(),
                text,
                archive_id,
                origin_id: None,
                extras: Extras::default(),
                mentions: vec![],
            },
        ];
        actions.extend(others);
        Ok(Some(actions))
    }
}
