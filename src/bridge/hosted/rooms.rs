//! Group conversations the bridge hosts, seen from Matrix: what happens in the Matrix room
//! (messages, invitations, joins, kicks, power levels, topic) becomes MUC traffic for the XMPP
//! participants, under the suite's rules (core::room). The XMPP side is in `occupants.rs` and
//! `muc.rs`.

use super::phones::ToPhones;
use crate::bridge::Bridge;
use crate::core::action::{Action, Extras, OccupantChange, Reply, RoomOp, SmsOrigin, Text};
use crate::core::ids::{ArchiveId, BareJid, MatrixUserId, RoomId, StanzaId};
use crate::core::inbound::{MatrixIn, Membership};
use crate::core::mentions::{self, Addressee};
use crate::core::room::{self, Request, Role, Room};
use crate::core::watch::Party;
use crate::store::{ArchiveKey, ArchivedAct, HostedRoom, NewArchived, RoomMember, StoreTx};

/// A Matrix participant's message, as the room archive and the MUC need it.
struct RoomContent {
    event_id: String,
    text: Text,
    reply_to: Option<String>,
    replaces: Option<String>,
    file: Option<crate::core::action::Attachment>,
    /// Whom it mentions (`m.mentions`).
    mentions: Vec<MatrixUserId>,
    /// When it was sent on Matrix (a late delivery to XMPP says so).
    sent_at: Option<i64>,
}

impl Bridge {
    pub(in crate::bridge) fn room_cap(&self) -> usize {
        self.current_config().rooms.max_participants
    }

    /// The MUC address of a hosted room.
    pub fn muc_of(&self, r: &HostedRoom) -> BareJid {
        self.map.muc_for_room(r.alias.as_deref().unwrap_or(r.room.as_str()))
    }

    /// The hosted room with this ID, if the bridge hosts it (cached; rooms are few).
    pub(in crate::bridge) async fn hosted_room(&self, room: &RoomId) -> crate::store::Result<Option<HostedRoom>> {
        if let Some(hit) = self.hosted.rooms.lock().ok().and_then(|r| r.get(room).cloned()) {
            return Ok(hit);
        }
        let found = self.store.room(room).await?;
        if let Ok(mut r) = self.hosted.rooms.lock() {
            // Never overwrite: a room saved meanwhile (cache_room) must not be forgotten.
            r.entry(room.clone()).or_insert_with(|| found.clone());
        }
        Ok(found)
    }

    pub(in crate::bridge) fn cache_room(&self, r: &HostedRoom) {
        if let Ok(mut rooms) = self.hosted.rooms.lock() {
            rooms.insert(r.room.clone(), Some(r.clone()));
        }
    }

    /// The room behind a MUC localpart (`#sales\40hs` or `!id\40hs`).
    pub(in crate::bridge) async fn room_by_muc(&self, local: &str) -> crate::store::Result<Option<HostedRoom>> {
        let Some(Ok(name)) = self.map.room_for_muc(local) else { return Ok(None) };
        // A room ID without a server (room version 12 on) is addressed with the homeserver's.
        let mut names = vec![name.clone()];
        if name.starts_with('!')
            && let Some(id) = name.strip_suffix(&format!(":{}", self.map.homeserver))
        {
            names.push(id.to_owned());
        }
        for name in names {
            let exact = if name.starts_with('#') {
                self.store.room_by_alias(&name).await?
            } else {
                match RoomId::parse(&name) {
                    Ok(id) => self.hosted_room(&id).await?,
                    Err(_) => None,
                }
            };
            // Room IDs (and aliases) have capitals; the address may reach us lowercased.
            let found = match exact {
                Some(r) => Some(r),
                None => self.store.room_by_name_any_case(&name).await?,
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The Matrix ID that acts for a participant (a ghost for an XMPP user).
    pub(in crate::bridge) fn matrix_id_of(&self, p: &Party) -> MatrixUserId {
        match p {
            Party::Matrix(u) => u.clone(),
            Party::Xmpp(j) => self.map.ghost_for(j),
        }
    }

    /// The participant a Matrix ID stands for (an XMPP user for a ghost).
    pub(in crate::bridge) fn party_of(&self, user: &MatrixUserId) -> Party {
        match self.map.jid_for_ghost(user) {
            Some(Ok(jid)) => Party::Xmpp(jid),
            _ => Party::Matrix(user.clone()),
        }
    }

    /// The address under which a participant appears on XMPP (the room is non-anonymous).
    pub(in crate::bridge) fn real_jid_of(&self, p: &Party) -> String {
        match p {
            Party::Matrix(u) => match self.map.phone_for_ghost(u) {
                Some(phone) => self.map.sms_jid(&phone).to_string(),
                None => self.map.jid_for_matrix(u).to_string(),
            },
            Party::Xmpp(j) => j.to_string(),
        }
    }

    /// Whether a message in a hosted room is the bridge's own echo (a ghost's or the bot's,
    /// which came from XMPP or is the bridge's notice). The assistant is a bridge user too, but
    /// what it says is new content for the XMPP occupants.
    pub(super) fn is_echo(&self, sender: &MatrixUserId) -> bool {
        self.map.is_bridge_user(sender) && !self.is_chatbot(sender)
    }

    pub(in crate::bridge) fn is_chatbot(&self, user: &MatrixUserId) -> bool {
        self.map.chatbot().as_ref() == Some(user)
    }

    pub(in crate::bridge) fn room_model(&self, members: &[RoomMember]) -> Room {
        Room::from_members(members.iter().map(|m| (m.party.clone(), m.role)), self.room_cap())
    }

    /// What a Matrix event in a hosted room means, as actions (inside the transaction).
    pub(in crate::bridge) async fn hosted_actions(
        &self,
        tx: &mut StoreTx,
        r: HostedRoom,
        event: MatrixIn,
    ) -> crate::store::Result<Vec<Action>> {
        let room = r.room.clone();
        let mut members = tx.room_members(&room).await?;
        Ok(match event {
            MatrixIn::Message { sender, text, event_id, reply_to, replaces, mentions, sent_at, .. } => {
                if self.is_echo(&sender) {
                    return Ok(vec![]);
                }
                if replaces.is_none()
                    && !self.is_chatbot(&sender)
                    && let Some(command) = text.body.strip_prefix('!')
                {
                    return self.room_command(tx, &r, &members, &sender, command).await;
                }
                // (Stanzas go from the room's address to each participant's: about as long as
                // the sender's own address, and the envelope bound has room to spare.)
                let address = self.map.jid_for_matrix(&sender);
                if let Some(why) = self.too_large_for_xmpp(&text.body, &address, &address) {
                    let notice = format!("{sender}: your message did not reach the XMPP participants: {why}.");
                    return Ok(vec![self.bot_notice(&room, notice)]);
                }
                let content = RoomContent { event_id, text, reply_to, replaces, file: None, mentions, sent_at };
                return self.room_say_from_matrix(tx, &r, &members, &sender, content).await;
            }
            MatrixIn::File { sender, file, reply_to, .. } => {
                if self.is_echo(&sender) {
                    return Ok(vec![]);
                }
                let Some(link) = self.media_link(tx, &room, &file).await? else {
                    let max = self.current_config().media.max_bytes;
                    let notice = format!(
                        "{sender}: {} is larger than the bridge's limit of {max} bytes and did not reach the XMPP participants.",
                        file.name
                    );
                    return Ok(vec![self.bot_notice(&room, notice)]);
                };
                let content = RoomContent {
                    event_id: file.event_id.clone(),
                    text: Text::plain(link.url.clone()),
                    reply_to,
                    replaces: None,
                    file: Some(link),
                    mentions: vec![],
                    sent_at: None,
                };
                return self.room_say_from_matrix(tx, &r, &members, &sender, content).await;
            }
            MatrixIn::Reaction { sender, event_id, target, key, .. } => {
                let me = Party::Matrix(sender.clone());
                let Some(m) = members.iter().find(|m| m.party == me) else { return Ok(vec![]) };
                let Some(a) = tx.archived(&room, ArchiveKey::Event(&target)).await? else { return Ok(vec![]) };
                let reaction = crate::store::Reaction {
                    room: room.clone(),
                    target_event: target.clone(),
                    reactor: sender.to_string(),
                    key,
                    event_id: Some(event_id),
                };
                tx.save_reaction(&reaction).await?;
                let keys: Vec<String> =
                    tx.reactions_of(&room, &target, &reaction.reactor).await?.into_iter().map(|r| r.key).collect();
                let act = ArchivedAct::Reactions { target: a.id, keys: keys.clone() };
                tx.archive_act(&room, &me, &m.nick, None, &act).await?;
                vec![Action::XmppGroupReactions { room, nick: m.nick.clone(), archive_id: ArchiveId(a.id), keys }]
            }
            MatrixIn::Redaction { sender, redacts, .. } => {
                let me = Party::Matrix(sender.clone());
                if let Some(reaction) = tx.reaction_by_event(&room, &redacts).await? {
                    tx.remove_reaction(&reaction).await?;
                    let Some(m) = members.iter().find(|m| m.party == me) else { return Ok(vec![]) };
                    if reaction.reactor != sender.to_string() {
                        return Ok(vec![]);
                    }
                    let Some(a) = tx.archived(&room, ArchiveKey::Event(&reaction.target_event)).await? else {
                        return Ok(vec![]);
                    };
                    let keys: Vec<String> = tx
                        .reactions_of(&room, &reaction.target_event, &reaction.reactor)
                        .await?
                        .into_iter()
                        .map(|r| r.key)
                        .collect();
                    let act = ArchivedAct::Reactions { target: a.id, keys: keys.clone() };
                    tx.archive_act(&room, &me, &m.nick, None, &act).await?;
                    return Ok(vec![Action::XmppGroupReactions {
                        room,
                        nick: m.nick.clone(),
                        archive_id: ArchiveId(a.id),
                        keys,
                    }]);
                }
                tx.forget_media(&room, &redacts).await?;
                let Some(a) = tx.archived(&room, ArchiveKey::Event(&redacts)).await? else { return Ok(vec![]) };
                if a.sender != me {
                    let notice = format!(
                        "{sender}: only the author's own removals reach XMPP; the XMPP participants still see the message of {}.",
                        a.nick
                    );
                    return Ok(vec![self.bot_notice(&room, notice)]);
                }
                tx.retract_archived(&room, a.id, &me, &a.nick, None).await?;
                vec![Action::XmppGroupRetract { room, nick: a.nick, archive_id: ArchiveId(a.id) }]
            }
            MatrixIn::Unsupported { sender, what, .. } => {
                let me = Party::Matrix(sender.clone());
                let Some(m) = members.iter().find(|m| m.party == me) else { return Ok(vec![]) };
                let text = Text::notice(format!("[{} sent {what}, which the bridge cannot forward yet.]", m.nick));
                let archive_id = ArchiveId(tx.archive(&room, &NewArchived::said(&me, &m.nick, &text)).await?);
                vec![Action::XmppGroupchat {
                    room,
                    nick: m.nick.clone(),
                    text,
                    archive_id,
                    origin_id: None,
                    extras: Extras::default(),
                    mentions: vec![],
                }]
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
                    Membership::Leave if sender == user => {
                        // Leaving on one's own: the room's rules decide who owns it next.
                        let mut model = self.room_model(&members);
                        let Ok(effects) = model.apply(&who, Request::Leave) else { return Ok(vec![]) };
                        self.carry_out(tx, &r, &members, &who, effects, None).await?
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
                let updated = HostedRoom { topic: Some(topic.clone()), ..r };
                tx.save_room(&updated).await?;
                self.cache_room(&updated);
                vec![Action::XmppSubject { room, subject: topic }]
            }
            MatrixIn::Name { name, .. } => {
                let updated = HostedRoom { name: Some(name), ..r };
                tx.save_room(&updated).await?;
                self.cache_room(&updated);
                vec![]
            }
            MatrixIn::Avatar { url, .. } => {
                if self.room_avatar_seen(&room, url) {
                    vec![Action::XmppRoomChanged { room }]
                } else {
                    vec![]
                }
            }
            MatrixIn::JoinRule { open, .. } => {
                let updated = HostedRoom { open, ..r };
                tx.save_room(&updated).await?;
                self.cache_room(&updated);
                vec![]
            }
            MatrixIn::Presence { .. } | MatrixIn::Typing { .. } | MatrixIn::Read { .. } => vec![],
        })
    }

    /// A Matrix participant's message (with its reply, correction or file) for the MUC:
    /// archived, references resolved to the room's ids.
    async fn room_say_from_matrix(
        &self,
        tx: &mut StoreTx,
        r: &HostedRoom,
        members: &[RoomMember],
        sender: &MatrixUserId,
        mut content: RoomContent,
    ) -> crate::store::Result<Vec<Action>> {
        let room = r.room.clone();
        let me = Party::Matrix(sender.clone());
        let nick = match members.iter().find(|m| m.party == me) {
            Some(m) => m.nick.clone(),
            None => room::clean_nick(&self.displayname(sender).unwrap_or_else(|| sender.localpart().into())),
        };
        let muc = self.muc_of(r);
        let reply = match &content.reply_to {
            Some(e) => tx.archived(&room, ArchiveKey::Event(e)).await?,
            None => None,
        };
        let original = match &content.replaces {
            Some(e) => match tx.archived(&room, ArchiveKey::Event(e)).await? {
                Some(o) if o.sender != me => {
                    let notice =
                        format!("{sender}: only your own messages can be edited; the edit did not reach XMPP.");
                    return Ok(vec![self.bot_notice(&room, notice)]);
                }
                Some(o) => match o.replaces {
                    Some((first, _)) => tx.archived(&room, ArchiveKey::Id(first)).await?.or(Some(o)),
                    None => Some(o),
                },
                None => None,
            },
            None => None,
        };
        // Whom it mentions, by their nick in the room: put in the text where it does not say it.
        let addressees: Vec<Addressee> = content
            .mentions
            .iter()
            .take(mentions::MAX_MENTIONS)
            .filter_map(|user| {
                let party = match self.map.jid_for_ghost(user) {
                    Some(Ok(jid)) => Party::Xmpp(jid),
                    _ => Party::Matrix(user.clone()),
                };
                let m = members.iter().find(|m| m.party == party)?;
                Some(Addressee { uri: mentions::occupant_uri(&muc.to_string(), &m.nick), nick: m.nick.clone() })
            })
            .collect();
        let (body, spans) = mentions::address(&content.text.body, &addressees);
        content.text.body = body;
        let replaces_ref = original.as_ref().map(|o| (o.id, o.xmpp_id()));
        let archived = NewArchived {
            sender: &me,
            nick: &nick,
            body: &content.text.body,
            kind: content.text.kind,
            origin_id: None,
            event_id: Some(&content.event_id),
            replaces: replaces_ref.as_ref().map(|(i, x)| (*i, x.as_str())),
        };
        let archive_id = ArchiveId(tx.archive(&room, &archived).await?);
        if original.is_none() {
            // A correction is not a new message for the journals.
            self.count_room_message(tx, r, members, &me).await?;
        }
        let extras = Extras {
            reply_to: reply.map(|a| Reply {
                id: ArchiveId(a.id).stanza_id(),
                author: crate::xmpp::hosted_muc_out::occupant_jid(&muc, &a.nick).ok().map(|j| j.to_string()),
                quote: Some(a.body),
            }),
            replaces: replaces_ref.map(|(_, x)| StanzaId::new(x)),
            file: content.file,
            sent_at: content.sent_at,
        };
        let to_phones = ToPhones {
            sender: &me,
            nick: &nick,
            text: &content.text,
            file: extras.file.is_some(),
            edit: original.is_some(),
            origin: Some(SmsOrigin::Matrix {
                room: room.clone(),
                user: sender.clone(),
                event_id: content.event_id.into(),
            }),
        };
        let sms = self.room_sms(tx, &room, members, to_phones).await?;
        let mut actions = vec![Action::XmppGroupchat {
            room,
            nick,
            text: content.text,
            archive_id,
            origin_id: None,
            extras,
            mentions: spans,
        }];
        actions.extend(sms);
        Ok(actions)
    }

    pub(in crate::bridge) fn bot_notice(&self, room: &RoomId, body: String) -> Action {
        Action::MatrixPost { room: room.clone(), user: self.map.bot(), text: Text::notice(body), nick: None }
    }

    /// A Matrix user invited someone (a Matrix user or a ghost) into a hosted room.
    async fn matrix_invite(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        members: &[RoomMember],
        sender: &MatrixUserId,
        who: Party,
    ) -> crate::store::Result<Vec<Action>> {
        let mut model = self.room_model(members);
        let applied = model.apply(&Party::Matrix(sender.clone()), Request::Add(who.clone()));
        if applied.is_ok()
            && let Some(phone) = self.phone_of(&who)
        {
            return self.phone_invited(tx, room, members, &Party::Matrix(sender.clone()), phone).await;
        }
        match applied {
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

    /// A Matrix user joined a hosted room.
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
    pub(in crate::bridge) fn new_nick(&self, members: &[RoomMember], who: &Party, wanted: Option<&str>) -> String {
        let base = match (wanted, who) {
            (Some(w), _) => w.to_owned(),
            // A phone is called by its number (its contact name is for its owner's chat only).
            (None, Party::Matrix(u)) => match self.map.phone_for_ghost(u) {
                Some(phone) => phone.to_string(),
                None => self.displayname(u).unwrap_or_else(|| u.localpart().to_owned()),
            },
            (None, Party::Xmpp(j)) => j.local().unwrap_or(j.domain()).to_owned(),
        };
        let others: Vec<&str> = members.iter().filter(|m| &m.party != who).map(|m| m.nick.as_str()).collect();
        room::unique_nick(others.iter().copied(), &base)
    }
}
