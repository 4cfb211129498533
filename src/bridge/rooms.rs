//! Group conversations the bridge hosts, seen from Matrix: what happens in the Matrix room
//! (messages, invitations, joins, kicks, power levels, topic) becomes MUC traffic for the XMPP
//! participants, under the suite's rules (core::room). The XMPP side is in `muc.rs`.

use crate::bridge::Bridge;
use crate::core::action::{Action, OccupantChange, RoomOp, Text};
use crate::core::ids::{BareJid, MatrixUserId, RoomId};
use crate::core::inbound::{MatrixIn, Membership};
use crate::core::room::{self, Effect, Request, Role, Room};
use crate::core::watch::Party;
use crate::store::{BridgedRoom, NewArchived, RoomMember, StoreTx};

/// Room commands, typed in a bridged Matrix room.
const ROOM_HELP: &str = "Room commands: `!demote @user:server` (a moderator asks the bridge to make a moderator a \
participant again; Matrix does not let moderators demote each other), `!promote @user:server`, \
`!kick @user:server`, `!who` (participants and roles).";

impl Bridge {
    pub(super) fn room_cap(&self) -> usize {
        self.current_config().rooms.max_participants
    }

    /// The MUC address of a bridged room.
    pub fn muc_of(&self, r: &BridgedRoom) -> BareJid {
        self.map.muc_for_room(r.alias.as_deref().unwrap_or(r.room.as_str()))
    }

    /// The bridged room with this ID, if the bridge hosts it (cached; rooms are few).
    pub(super) async fn bridged_room(&self, room: &RoomId) -> crate::store::Result<Option<BridgedRoom>> {
        if let Some(hit) = self.rooms.lock().ok().and_then(|r| r.get(room).cloned()) {
            return Ok(hit);
        }
        let found = self.store.room(room).await?;
        if let Ok(mut r) = self.rooms.lock() {
            // Never overwrite: a room saved meanwhile (cache_room) must not be forgotten.
            r.entry(room.clone()).or_insert_with(|| found.clone());
        }
        Ok(found)
    }

    pub(super) fn cache_room(&self, r: &BridgedRoom) {
        if let Ok(mut rooms) = self.rooms.lock() {
            rooms.insert(r.room.clone(), Some(r.clone()));
        }
    }

    /// The room behind a MUC localpart (`#sales\40hs` or `!id\40hs`).
    pub(super) async fn room_by_muc(&self, local: &str) -> crate::store::Result<Option<BridgedRoom>> {
        let Some(Ok(name)) = self.map.room_for_muc(local) else { return Ok(None) };
        if name.starts_with('#') {
            return self.store.room_by_alias(&name).await;
        }
        match RoomId::parse(&name) {
            Ok(id) => self.bridged_room(&id).await,
            Err(_) => Ok(None),
        }
    }

    /// The Matrix ID that acts for a participant (a ghost for an XMPP user).
    pub(super) fn matrix_id_of(&self, p: &Party) -> MatrixUserId {
        match p {
            Party::Matrix(u) => u.clone(),
            Party::Xmpp(j) => self.map.ghost_for(j),
        }
    }

    /// The participant a Matrix ID stands for (an XMPP user for a ghost).
    pub(super) fn party_of(&self, user: &MatrixUserId) -> Party {
        match self.map.jid_for_ghost(user) {
            Some(Ok(jid)) => Party::Xmpp(jid),
            _ => Party::Matrix(user.clone()),
        }
    }

    /// The address under which a participant appears on XMPP (the room is non-anonymous).
    pub(super) fn real_jid_of(&self, p: &Party) -> String {
        match p {
            Party::Matrix(u) => self.map.jid_for_matrix(u).to_string(),
            Party::Xmpp(j) => j.to_string(),
        }
    }

    pub(super) fn room_model(&self, members: &[RoomMember]) -> Room {
        Room::from_members(members.iter().map(|m| (m.party.clone(), m.role)), self.room_cap())
    }

    /// What a Matrix event in a bridged room means, as actions (inside the transaction).
    pub(super) async fn room_actions(
        &self,
        tx: &mut StoreTx,
        r: BridgedRoom,
        event: MatrixIn,
    ) -> crate::store::Result<Vec<Action>> {
        let room = r.room.clone();
        let mut members = tx.room_members(&room).await?;
        Ok(match event {
            MatrixIn::Message { sender, text, event_id, .. } => {
                if self.map.is_bridge_user(&sender) {
                    return Ok(vec![]);
                }
                if let Some(command) = text.body.strip_prefix('!') {
                    return self.room_command(tx, &r, &members, &sender, command).await;
                }
                let me = Party::Matrix(sender.clone());
                let nick = match members.iter().find(|m| m.party == me) {
                    Some(m) => m.nick.clone(),
                    None => room::clean_nick(&self.displayname(&sender).unwrap_or_else(|| sender.localpart().into())),
                };
                let max = self.current_config().limits.max_message_bytes;
                if text.body.len() > max {
                    let notice = format!(
                        "{sender}: your message ({} bytes) is longer than the bridge's limit of {max} bytes and did not reach the XMPP participants.",
                        text.body.len()
                    );
                    return Ok(vec![self.bot_notice(&room, notice)]);
                }
                let archived = NewArchived {
                    sender: &me,
                    nick: &nick,
                    body: &text.body,
                    kind: text.kind,
                    origin_id: None,
                    event_id: Some(&event_id),
                };
                let archive_id = tx.archive(&room, &archived).await?;
                vec![Action::XmppGroupchat { room, nick, text, archive_id, origin_id: None }]
            }
            MatrixIn::Unsupported { sender, what, .. } => {
                let me = Party::Matrix(sender.clone());
                let Some(m) = members.iter().find(|m| m.party == me) else { return Ok(vec![]) };
                let text = Text::notice(format!("[{} sent {what}, which the bridge cannot forward yet.]", m.nick));
                let archived = NewArchived {
                    sender: &me,
                    nick: &m.nick,
                    body: &text.body,
                    kind: text.kind,
                    origin_id: None,
                    event_id: None,
                };
                let archive_id = tx.archive(&room, &archived).await?;
                vec![Action::XmppGroupchat { room, nick: m.nick.clone(), text, archive_id, origin_id: None }]
            }
            MatrixIn::EncryptionEnabled { .. } | MatrixIn::Encrypted { .. } => {
                vec![self.bot_notice(
                    &room,
                    "The bridge cannot read encrypted messages: the XMPP participants do not see them.".into(),
                )]
            }
            MatrixIn::Membership { sender, user, membership, displayname, reason, .. } => {
                self.remember_displayname(&user, displayname.as_deref());
                if user == self.map.bot() {
                    return Ok(vec![]);
                }
                let who = self.party_of(&user);
                let by_bridge = self.map.is_bridge_user(&sender);
                match membership {
                    Membership::Invite if !by_bridge => self.matrix_invite(tx, &room, &members, &sender, who).await?,
                    Membership::Invite | Membership::Knock => vec![],
                    Membership::Join => {
                        if matches!(who, Party::Xmpp(_)) {
                            // A ghost joining: the XMPP side already counted the person.
                            return Ok(vec![]);
                        }
                        self.matrix_join(tx, &room, &members, &user, displayname.as_deref()).await?
                    }
                    Membership::Leave | Membership::Ban => {
                        let Some(m) = members.iter().find(|m| m.party == who).cloned() else { return Ok(vec![]) };
                        tx.remove_member(&room, &who).await?;
                        let kicked = sender != user;
                        let mut actions = vec![Action::XmppOccupant {
                            room: room.clone(),
                            who: who.clone(),
                            nick: m.nick,
                            change: OccupantChange::Gone { kicked, reason, banned: membership == Membership::Ban },
                        }];
                        if kicked && let Party::Xmpp(jid) = &who {
                            actions.push(Action::XmppNotice {
                                to: jid.clone(),
                                text: Text::notice(format!("{sender} removed you from {}.", self.muc_of(&r))),
                            });
                        }
                        actions
                    }
                }
            }
            MatrixIn::PowerLevels { users, users_default, .. } => {
                let mut actions = vec![];
                for m in &mut members {
                    if m.role == Role::Owner {
                        continue;
                    }
                    let level = users.get(&self.matrix_id_of(&m.party)).copied().unwrap_or(users_default);
                    let role = Role::from_power_level(level);
                    if role != m.role {
                        m.role = role;
                        tx.save_member(&room, m).await?;
                        actions.push(Action::XmppOccupant {
                            room: room.clone(),
                            who: m.party.clone(),
                            nick: m.nick.clone(),
                            change: OccupantChange::Present { role },
                        });
                    }
                }
                actions
            }
            MatrixIn::Topic { topic, .. } => {
                if r.topic.as_deref() == Some(topic.as_str()) {
                    return Ok(vec![]);
                }
                let updated = BridgedRoom { topic: Some(topic.clone()), ..r };
                tx.save_room(&updated).await?;
                self.cache_room(&updated);
                vec![Action::XmppSubject { room, subject: topic }]
            }
            MatrixIn::Name { name, .. } => {
                let updated = BridgedRoom { name: Some(name), ..r };
                tx.save_room(&updated).await?;
                self.cache_room(&updated);
                vec![]
            }
            MatrixIn::JoinRule { open, .. } => {
                let updated = BridgedRoom { open, ..r };
                tx.save_room(&updated).await?;
                self.cache_room(&updated);
                vec![]
            }
            MatrixIn::Presence { .. } | MatrixIn::Typing { .. } | MatrixIn::Read { .. } => vec![],
        })
    }

    fn bot_notice(&self, room: &RoomId, body: String) -> Action {
        Action::MatrixPost { room: room.clone(), user: self.map.bot(), text: Text::notice(body), nick: None }
    }

    /// A Matrix user invited someone (a Matrix user or a ghost) into a bridged room.
    async fn matrix_invite(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        members: &[RoomMember],
        sender: &MatrixUserId,
        who: Party,
    ) -> crate::store::Result<Vec<Action>> {
        let mut model = self.room_model(members);
        match model.apply(&Party::Matrix(sender.clone()), Request::Add(who.clone())) {
            Ok(_) => {
                let nick = self.new_nick(members, &who, None);
                let m = RoomMember { party: who.clone(), role: Role::Participant, joined: false, nick };
                tx.save_member(room, &m).await?;
                Ok(match who {
                    Party::Xmpp(jid) => vec![
                        Action::MatrixJoin { room: room.clone(), user: self.map.ghost_for(&jid) },
                        Action::XmppMucInvite {
                            room: room.clone(),
                            to: jid,
                            from: Party::Matrix(sender.clone()),
                            reason: None,
                        },
                    ],
                    Party::Matrix(_) => vec![],
                })
            }
            Err(room::Refused::AlreadyMember(_)) => Ok(vec![]),
            Err(refused) => {
                let user = self.matrix_id_of(&who);
                Ok(vec![
                    Action::MatrixRoomAct {
                        room: room.clone(),
                        op: RoomOp::Kick { user: user.clone(), reason: refused.to_string() },
                    },
                    self.bot_notice(room, format!("{sender}: {user} was not added: {refused}.")),
                ])
            }
        }
    }

    /// A Matrix user joined a bridged room.
    async fn matrix_join(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        members: &[RoomMember],
        user: &MatrixUserId,
        displayname: Option<&str>,
    ) -> crate::store::Result<Vec<Action>> {
        let who = Party::Matrix(user.clone());
        if let Some(m) = members.iter().find(|m| m.party == who).cloned() {
            let nick = self.new_nick(members, &who, displayname);
            let renamed = m.joined && nick != m.nick;
            let updated = RoomMember { joined: true, nick: nick.clone(), ..m.clone() };
            if updated == m {
                return Ok(vec![]);
            }
            tx.save_member(room, &updated).await?;
            let change = if renamed {
                OccupantChange::Renamed { role: m.role, new_nick: nick }
            } else {
                OccupantChange::Present { role: m.role }
            };
            return Ok(vec![Action::XmppOccupant { room: room.clone(), who, nick: m.nick, change }]);
        }
        let mut model = self.room_model(members);
        match model.apply(&who, Request::Join) {
            Ok(_) => {
                let nick = self.new_nick(members, &who, displayname);
                let m = RoomMember { party: who.clone(), role: Role::Participant, joined: true, nick: nick.clone() };
                tx.save_member(room, &m).await?;
                Ok(vec![Action::XmppOccupant {
                    room: room.clone(),
                    who,
                    nick,
                    change: OccupantChange::Present { role: Role::Participant },
                }])
            }
            Err(refused) => Ok(vec![
                Action::MatrixRoomAct {
                    room: room.clone(),
                    op: RoomOp::Kick { user: user.clone(), reason: refused.to_string() },
                },
                self.bot_notice(room, format!("{user} could not join: {refused}.")),
            ]),
        }
    }

    /// A nick for `who` in a room, unique among the other participants: their display name
    /// (Matrix) or the local part of their JID, unless they ask for one.
    pub(super) fn new_nick(&self, members: &[RoomMember], who: &Party, wanted: Option<&str>) -> String {
        let base = match (wanted, who) {
            (Some(w), _) => w.to_owned(),
            (None, Party::Matrix(u)) => self.displayname(u).unwrap_or_else(|| u.localpart().to_owned()),
            (None, Party::Xmpp(j)) => j.local().unwrap_or(j.domain()).to_owned(),
        };
        let others: Vec<&str> = members.iter().filter(|m| &m.party != who).map(|m| m.nick.as_str()).collect();
        room::unique_nick(others.iter().copied(), &base)
    }

    /// `!command` typed in a bridged Matrix room.
    async fn room_command(
        &self,
        tx: &mut StoreTx,
        r: &BridgedRoom,
        members: &[RoomMember],
        sender: &MatrixUserId,
        command: &str,
    ) -> crate::store::Result<Vec<Action>> {
        let room = &r.room;
        let mut words = command.split_whitespace();
        let verb = words.next().unwrap_or_default().to_ascii_lowercase();
        let target = words.next();
        let actor = Party::Matrix(sender.clone());
        let request = |t: &str, make: fn(Party) -> Request| -> Result<Request, String> {
            let user = MatrixUserId::parse(t).map_err(|e| format!("{t} is not a Matrix ID ({e})"))?;
            Ok(make(self.party_of(&user)))
        };
        let request = match (verb.as_str(), target) {
            ("demote", Some(t)) => request(t, Request::Revoke),
            ("promote", Some(t)) => request(t, Request::Appoint),
            ("kick", Some(t)) => request(t, Request::Remove),
            ("who", _) => {
                let lines: Vec<String> = members
                    .iter()
                    .map(|m| {
                        let state = if m.joined { "" } else { ", invited" };
                        format!("- {} ({}): {}{state}", m.nick, m.party, m.role.as_str())
                    })
                    .collect();
                return Ok(vec![self.bot_notice(room, format!("Participants:\n{}", lines.join("\n")))]);
            }
            _ => Err(ROOM_HELP.to_owned()),
        };
        let request = match request {
            Ok(r) => r,
            Err(text) => return Ok(vec![self.bot_notice(room, format!("{sender}: {text}"))]),
        };
        let mut model = self.room_model(members);
        match model.apply(&actor, request) {
            Ok(effects) => self.carry_out(tx, r, members, &actor, effects).await,
            Err(refused) => Ok(vec![self.bot_notice(room, format!("{sender}: refused: {refused}."))]),
        }
    }

    /// Record what a moderator's request changed, and queue it for both networks.
    pub(super) async fn carry_out(
        &self,
        tx: &mut StoreTx,
        r: &BridgedRoom,
        members: &[RoomMember],
        actor: &Party,
        effects: Vec<Effect>,
    ) -> crate::store::Result<Vec<Action>> {
        let room = &r.room;
        let mut actions = vec![];
        for effect in effects {
            match effect {
                Effect::RoleChanged(who, role) => {
                    let Some(m) = members.iter().find(|m| m.party == who) else { continue };
                    tx.save_member(room, &RoomMember { role, ..m.clone() }).await?;
                    actions.push(Action::MatrixRoomAct {
                        room: room.clone(),
                        op: RoomOp::SetPower { user: self.matrix_id_of(&who), level: role.power_level() },
                    });
                    actions.push(Action::XmppOccupant {
                        room: room.clone(),
                        who,
                        nick: m.nick.clone(),
                        change: OccupantChange::Present { role },
                    });
                }
                Effect::Left(who) => {
                    let Some(m) = members.iter().find(|m| m.party == who) else { continue };
                    tx.remove_member(room, &who).await?;
                    let reason = format!("removed by {actor}");
                    actions.push(Action::MatrixRoomAct {
                        room: room.clone(),
                        op: RoomOp::Kick { user: self.matrix_id_of(&who), reason: reason.clone() },
                    });
                    actions.push(Action::XmppOccupant {
                        room: room.clone(),
                        who: who.clone(),
                        nick: m.nick.clone(),
                        change: OccupantChange::Gone { kicked: true, reason: Some(reason), banned: false },
                    });
                    if let Party::Xmpp(jid) = &who {
                        actions.push(Action::XmppNotice {
                            to: jid.clone(),
                            text: Text::notice(format!("{actor} removed you from {}.", self.muc_of(r))),
                        });
                    }
                }
                Effect::Joined(who, role) => {
                    let nick = self.new_nick(members, &who, None);
                    tx.save_member(room, &RoomMember { party: who.clone(), role, joined: false, nick }).await?;
                    match &who {
                        Party::Matrix(user) => actions.push(Action::MatrixRoomAct {
                            room: room.clone(),
                            op: RoomOp::Invite { user: user.clone() },
                        }),
                        Party::Xmpp(jid) => {
                            let ghost = self.map.ghost_for(jid);
                            if !r.open {
                                actions.push(Action::MatrixRoomAct {
                                    room: room.clone(),
                                    op: RoomOp::Invite { user: ghost.clone() },
                                });
                            }
                            actions.push(Action::MatrixJoin { room: room.clone(), user: ghost });
                            actions.push(Action::XmppMucInvite {
                                room: room.clone(),
                                to: jid.clone(),
                                from: actor.clone(),
                                reason: None,
                            });
                        }
                    }
                }
            }
        }
        Ok(actions)
    }
}
