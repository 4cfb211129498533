//! Group conversations the bridge hosts, seen from XMPP: the MUC service (XEP-0045) the
//! component offers for each hosted room — messages, subject, mediated invitations, moderation
//! through `muc#admin`, and the archive (XEP-0313). Joining and leaving are in `occupants.rs`.

use std::sync::Arc;

use super::phones::ToPhones;
use crate::bridge::Bridge;
use crate::core::action::{Action, Extras, Reply, RoomOp, SmsOrigin, Text, XmppTarget};
use crate::core::ids::{ArchiveId, BareJid, MatrixUserId, StanzaId};
use crate::core::inbound::XmppAct;
use crate::core::refusal::{Refusal, RefusalKind};
use crate::core::room::{Request, Role};
use crate::core::watch::Party;
use crate::store::{ArchiveFilter, Page};
use crate::store::{
    ArchiveKey, ArchivedAct, ArchivedMessage, HostedRoom, NewArchived, RoomMember, StoreError, StoreTx,
};
use crate::xmpp::hosted_muc_out;
use crate::xmpp::out::Outgoing;

pub(in crate::bridge) fn internal(e: StoreError) -> Refusal {
    crate::bridge::store_refusal(&e, "a MUC request")
}

pub use crate::core::xmpp_in::{AdminItem, ArchiveQuery};

/// A page of a room's archive.
pub struct ArchivePage {
    pub muc: BareJid,
    pub messages: Vec<ArchivedMessage>,
    pub complete: bool,
    pub count: i64,
}

const MAX_PAGE: usize = 100;

/// An archive id as XMPP clients know it (the stanza id).
fn archive_id(s: &str) -> Result<i64, Refusal> {
    s.parse::<i64>().map_err(|_| Refusal::not_found(format!("No archived message has the id {s}.")))
}

/// The archived message an XMPP client refers to: by the room's stanza id (the archive id), or
/// by the message's own id.
pub(in crate::bridge) async fn find_archived(
    tx: &mut StoreTx,
    room: &crate::core::ids::RoomId,
    id: &str,
) -> crate::store::Result<Option<ArchivedMessage>> {
    if let Ok(n) = id.parse::<i64>()
        && let Some(m) = tx.archived(room, ArchiveKey::Id(n)).await?
    {
        return Ok(Some(m));
    }
    tx.archived(room, ArchiveKey::XmppId(id)).await
}

impl Bridge {
    pub(in crate::bridge) async fn muc_room(&self, local: &str) -> Result<HostedRoom, Refusal> {
        match self.room_by_muc(local).await.map_err(internal)? {
            Some(r) => Ok(r),
            None => Err(Refusal::not_found(format!(
                "There is no bridged room at this address. Rooms are started with the command `room create NAME` \
                     (to {} or to the bridge bot on Matrix).",
                self.map.component
            ))),
        }
    }

    /// Send without waiting (answers to a client's own stanza, presence fan-out).
    pub(in crate::bridge) async fn send_all(&self, out: Vec<Outgoing>) {
        for o in out {
            self.xmpp.post(o).await;
        }
    }

    /// The participant behind a client, if that client is in the room.
    /// Whom an occupant's message mentions, as Matrix users (an XMPP participant as their
    /// ghost) with the name the text calls them by: its XEP-0372 references to a participant
    /// (`room/nick`, or their address) and the nick it starts by addressing ("ann: hi").
    async fn room_mentions(
        &self,
        r: &HostedRoom,
        body: &str,
        uris: &[String],
    ) -> crate::store::Result<Vec<(MatrixUserId, String)>> {
        use crate::core::mentions;
        let members = self.store.room_members(&r.room).await?;
        let muc = self.muc_of(r);
        let as_matrix = |m: &RoomMember| match &m.party {
            Party::Matrix(user) => (user.clone(), m.nick.clone()),
            Party::Xmpp(jid) => (self.map.ghost_for(jid), m.nick.clone()),
        };
        let mut found: Vec<(MatrixUserId, String)> = vec![];
        let mut add = |hit: Option<(MatrixUserId, String)>| {
            if let Some(hit) = hit
                && found.len() < mentions::MAX_MENTIONS
                && !found.iter().any(|(u, _)| u == &hit.0)
            {
                found.push(hit);
            }
        };
        for uri in uris {
            let Some(address) = mentions::xmpp_uri_address(uri) else { continue };
            let (bare, nick) = address.split_once('/').map_or((address.as_str(), None), |(b, n)| (b, Some(n)));
            let Ok(jid) = BareJid::parse(bare) else { continue };
            let party = match nick {
                Some(nick) if jid == muc => {
                    add(members.iter().find(|m| m.nick == nick).map(as_matrix));
                    continue;
                }
                _ if jid.domain() == self.map.component => {
                    match jid.local().and_then(|l| self.map.matrix_for_jid(l).ok()) {
                        Some(user) => Party::Matrix(user),
                        None => continue,
                    }
                }
                _ => Party::Xmpp(jid),
            };
            add(members.iter().find(|m| m.party == party).map(as_matrix));
        }
        if let Some(nick) = mentions::nick_at_start(body) {
            add(members.iter().find(|m| m.nick == nick).map(as_matrix));
        }
        Ok(found)
    }

    /// The sender as a member of the room (refused unless they are in it), with the room's
    /// members as read for that, so callers that need them too do not read them again.
    async fn occupant(
        &self,
        r: &HostedRoom,
        full: &str,
        bare: &BareJid,
    ) -> Result<(RoomMember, Vec<RoomMember>), Refusal> {
        let me = Party::Xmpp(bare.clone());
        let occupants = self.store.occupants(&r.room).await.map_err(internal)?;
        let members = self.store.room_members(&r.room).await.map_err(internal)?;
        match members.iter().find(|m| m.party == me) {
            Some(m) if occupants.iter().any(|(f, _)| f == full) => Ok((m.clone(), members)),
            _ => Err(Refusal::policy("You are not in this room; join it first.")),
        }
    }

    /// A message an XMPP occupant says in the room: archived, posted by their ghost on Matrix
    /// and reflected to every client in the MUC (the sender's own included, as XEP-0045 asks).
    #[allow(clippy::too_many_arguments)]
    pub async fn muc_message(
        self: &Arc<Self>,
        room_local: &str,
        full: &str,
        bare: &BareJid,
        id: Option<String>,
        body: String,
        extras: Extras<StanzaId>,
        mentions: Vec<String>,
    ) -> Result<(), Refusal> {
        let r = self.muc_room(room_local).await?;
        let (m, members) = self.occupant(&r, full, bare).await?;
        let text = Text::plain(body);
        let ghost = self.map.ghost_for(bare);
        let (reply, replaces) = (extras.reply_to.is_some(), extras.replaces.is_some());
        if let Some(why) = self.too_large_for_matrix(&text, &ghost, reply, replaces) {
            return Err(Refusal::policy(why));
        }
        let mut tx = self.store.begin().await.map_err(internal)?;
        if let Some(id) = &id
            && !tx.claim_stanza(&bare.to_string(), id).await.map_err(internal)?
        {
            return Ok(());
        }
        // References by the room's stanza ids (or the sender's ids), as archive ids.
        let reply = match &extras.reply_to {
            Some(reply) => find_archived(&mut tx, &r.room, reply.id.as_str()).await.map_err(internal)?,
            None => None,
        };
        let original = match &extras.replaces {
            Some(replaced) => match find_archived(&mut tx, &r.room, replaced.as_str()).await.map_err(internal)? {
                Some(o) if o.sender != m.party => {
                    return Err(Refusal::forbidden("You can only correct your own messages."));
                }
                other => other,
            },
            None => None,
        };
        let original = match original {
            // A correction of a correction corrects the original.
            Some(o) => match o.replaces {
                Some((first, _)) => tx.archived(&r.room, ArchiveKey::Id(first)).await.map_err(internal)?.or(Some(o)),
                None => Some(o),
            },
            None => None,
        };
        let replaces_ref = original.as_ref().map(|o| (o.id, o.xmpp_id()));
        let archived = NewArchived {
            sender: &m.party,
            nick: &m.nick,
            body: &text.body,
            kind: text.kind,
            origin_id: id.as_deref(),
            event_id: None,
            replaces: replaces_ref.as_ref().map(|(i, x)| (*i, x.as_str())),
        };
        let archive_id = ArchiveId(tx.archive(&r.room, &archived).await.map_err(internal)?);
        if original.is_none() {
            // A correction is not a new message for the journals.
            self.count_room_message(&mut tx, &r, &members, &m.party).await.map_err(internal)?;
        }
        let to_phones = ToPhones {
            sender: &m.party,
            nick: &m.nick,
            text: &text,
            file: extras.file.is_some(),
            edit: original.is_some(),
            origin: Some(SmsOrigin::Xmpp { jid: bare.clone(), stanza_id: None, wants_receipt: false }),
        };
        let sms = self.room_sms(&mut tx, &r.room, &members, to_phones).await.map_err(internal)?;
        let to_matrix = Extras {
            reply_to: reply.as_ref().map(|a| Reply { id: ArchiveId(a.id).stanza_id(), author: None, quote: None }),
            replaces: original.as_ref().map(|o| ArchiveId(o.id).stanza_id()),
            file: extras.file.clone(),
            sent_at: Some(crate::core::delay::written_at(extras.sent_at, crate::store::now_ms())),
        };
        let muc = self.muc_of(&r);
        let to_muc = Extras {
            reply_to: reply.as_ref().map(|a| Reply {
                id: ArchiveId(a.id).stanza_id(),
                author: hosted_muc_out::occupant_jid(&muc, &a.nick).ok().map(|j| j.to_string()),
                quote: Some(a.body.clone()),
            }),
            replaces: original.as_ref().map(|o| StanzaId::new(o.xmpp_id())),
            file: extras.file,
            sent_at: None,
        };
        let post = Action::MatrixRoomSay {
            room: r.room.clone(),
            user: self.map.ghost_for(bare),
            text: text.clone(),
            nick: m.nick.clone(),
            archive_id,
            extras: to_matrix,
            mentions: self.room_mentions(&r, &text.body, &mentions).await.map_err(internal)?,
        };
        let reflect = Action::XmppGroupchat {
            room: r.room.clone(),
            nick: m.nick,
            text,
            archive_id,
            origin_id: id.map(StanzaId::new),
            extras: to_muc,
            mentions: vec![],
        };
        let rows = tx.enqueue_all([vec![post, reflect], sms].concat()).await.map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        self.dispatch(rows);
        Ok(())
    }

    /// Reactions or a retraction an occupant sends to the room: carried to Matrix by their ghost
    /// and reflected to every client in the MUC.
    pub async fn muc_act(
        self: &Arc<Self>,
        room_local: &str,
        full: &str,
        bare: &BareJid,
        id: Option<String>,
        act: XmppAct,
    ) -> Result<(), Refusal> {
        let r = self.muc_room(room_local).await?;
        let (m, _) = self.occupant(&r, full, bare).await?;
        let mut tx = self.store.begin().await.map_err(internal)?;
        if let Some(id) = &id
            && !tx.claim_stanza(&bare.to_string(), id).await.map_err(internal)?
        {
            return Ok(());
        }
        let target_id = match &act {
            XmppAct::Reactions { id, .. } | XmppAct::Retract { id } => id.clone(),
        };
        let Some(target) = find_archived(&mut tx, &r.room, &target_id).await.map_err(internal)? else {
            return Err(Refusal::not_found(format!("This room has no message with the id {target_id}.")));
        };
        let user = self.map.ghost_for(bare);
        let origin_id = id.clone();
        let (archive_id, stanza_id) = (ArchiveId(target.id), id.map(StanzaId::new));
        let via = XmppTarget::Room { room: r.room.clone(), archive_id };
        let actions = match act {
            XmppAct::Reactions { keys, .. } => {
                let keys = crate::core::reactions::normalise(&keys);
                let act = ArchivedAct::Reactions { target: target.id, keys: keys.clone() };
                tx.archive_act(&r.room, &m.party, &m.nick, origin_id.as_deref(), &act).await.map_err(internal)?;
                vec![
                    Action::MatrixReactions { target: via, user, keys: keys.clone(), stanza_id },
                    Action::XmppGroupReactions { room: r.room.clone(), nick: m.nick, archive_id, keys },
                ]
            }
            XmppAct::Retract { .. } => {
                if target.sender != m.party {
                    return Err(Refusal::forbidden("You can only retract your own messages."));
                }
                let retract = tx.retract_archived(&r.room, target.id, &m.party, &m.nick, origin_id.as_deref());
                retract.await.map_err(internal)?;
                vec![
                    Action::MatrixRetract { target: via, user, stanza_id },
                    Action::XmppGroupRetract { room: r.room.clone(), nick: m.nick, archive_id },
                ]
            }
        };
        let rows = tx.enqueue_all(actions).await.map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        self.dispatch(rows);
        Ok(())
    }

    /// A private message from one occupant to another (XEP-0045 §7.5). To a Matrix participant
    /// it is a 1:1 message from the sender (their direct chat with the ghost); to an XMPP
    /// participant it goes to their clients in the room, from the sender's nick.
    pub async fn muc_private(
        self: &Arc<Self>,
        room_local: &str,
        full: &str,
        bare: &BareJid,
        nick: &str,
        id: Option<String>,
        body: String,
    ) -> Result<(), Refusal> {
        let r = self.muc_room(room_local).await?;
        let (me, members) = self.occupant(&r, full, bare).await?;
        let Some(target) = members.iter().find(|m| m.nick == nick && m.joined) else {
            return Err(Refusal::not_found(format!("Nobody in this room is called {nick}.")));
        };
        match &target.party {
            Party::Matrix(user) => {
                let chat = crate::core::inbound::XmppChatIn {
                    from: bare.clone(),
                    to_local: self.map.jid_for_matrix(user).local().unwrap_or_default().to_owned(),
                    stanza_id: id.map(StanzaId::new),
                    body,
                    nick: Some(me.nick),
                    wants_receipt: false,
                    markable: false,
                    extras: Extras::default(),
                };
                self.accept_xmpp_chat(chat).await
            }
            Party::Xmpp(_) => {
                let muc = self.muc_of(&r);
                let occupants = self.store.occupants(&r.room).await.map_err(internal)?;
                let text = Text::plain(body);
                let out = occupants
                    .iter()
                    .filter(|(_, p)| p == &target.party)
                    .map(|(to, _)| Outgoing::Private {
                        room: muc.clone(),
                        nick: me.nick.clone(),
                        to: to.clone(),
                        text: text.clone(),
                        id: id.clone(),
                    })
                    .collect();
                self.send_all(out).await;
                Ok(())
            }
        }
    }

    /// The room's configuration as the owner form shows it: (name, description).
    pub async fn muc_config(&self, room_local: &str, bare: &BareJid) -> Result<(String, String), Refusal> {
        let r = self.muc_room(room_local).await?;
        self.require_moderator(&r, bare, "Only moderators can configure the room.").await?;
        Ok((r.name.clone().unwrap_or_default(), r.topic.clone().unwrap_or_default()))
    }

    /// Refused (`forbidden`, saying `text`) unless `bare` is one of the room's moderators.
    pub(super) async fn require_moderator(&self, r: &HostedRoom, bare: &BareJid, text: &str) -> Result<(), Refusal> {
        let members = self.store.room_members(&r.room).await.map_err(internal)?;
        let me = Party::Xmpp(bare.clone());
        if members.iter().any(|m| m.party == me && m.role.is_moderator()) {
            Ok(())
        } else {
            Err(Refusal::forbidden(text))
        }
    }

    /// A moderator submitted the room's configuration (XEP-0045 §10.2): its name and
    /// description become the Matrix room's name and topic.
    pub async fn muc_configure(
        self: &Arc<Self>,
        room_local: &str,
        bare: &BareJid,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<(), Refusal> {
        let r = self.muc_room(room_local).await?;
        let (old_name, old_topic) = self.muc_config(room_local, bare).await?;
        let mut actions = vec![];
        if let Some(name) = name.filter(|n| *n != old_name) {
            actions.push(Action::MatrixRoomAct { room: r.room.clone(), op: RoomOp::SetName { name } });
        }
        if let Some(topic) = description.filter(|d| *d != old_topic) {
            actions.push(Action::MatrixRoomAct { room: r.room.clone(), op: RoomOp::SetTopic { topic } });
        }
        self.queue(actions).await
    }

    /// A subject change from an XMPP occupant (moderators only): the Matrix topic.
    pub async fn muc_subject(
        self: &Arc<Self>,
        room_local: &str,
        full: &str,
        bare: &BareJid,
        subject: String,
    ) -> Result<(), Refusal> {
        let r = self.muc_room(room_local).await?;
        let (m, _) = self.occupant(&r, full, bare).await?;
        if !m.role.is_moderator() {
            return Err(Refusal::forbidden("Only moderators can change the subject."));
        }
        self.queue(vec![Action::MatrixRoomAct {
            room: r.room.clone(),
            op: RoomOp::SetTopic { topic: subject.clone() },
        }])
        .await
    }

    pub(in crate::bridge) async fn queue(self: &Arc<Self>, actions: Vec<Action>) -> Result<(), Refusal> {
        self.queue_all(actions).await.map_err(internal)
    }

    /// Apply a moderator's request from XMPP under the room's rules and queue its effects.
    async fn muc_request(
        self: &Arc<Self>,
        r: &HostedRoom,
        actor: &Party,
        requests: Vec<(Request, Option<String>)>,
    ) -> Result<(), Refusal> {
        let mut tx = self.store.begin().await.map_err(internal)?;
        let mut members = tx.room_members(&r.room).await.map_err(internal)?;
        let mut model = self.room_model(&members);
        let mut actions = vec![];
        for (request, reason) in requests {
            let phone = match &request {
                Request::Add(who) => self.phone_of(who),
                _ => None,
            };
            let effects = model.apply(actor, request).map_err(|refused| {
                let kind = match refused {
                    crate::core::room::Refused::Full(_) => RefusalKind::Full,
                    crate::core::room::Refused::NotModerator(_) | crate::core::room::Refused::Owner(_) => {
                        RefusalKind::Forbidden
                    }
                    _ => RefusalKind::Policy,
                };
                let mut text = refused.to_string();
                if let Some(first) = text.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                Refusal::new(kind, format!("{text}."))
            })?;
            if let Some(phone) = phone
                && let Some(why) = self.phone_member_refusal(actor, &phone).await.map_err(internal)?
            {
                let mut text = why;
                if let Some(first) = text.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                return Err(Refusal::forbidden(format!("{text}.")));
            }
            let done = self.carry_out(&mut tx, r, &members, actor, effects, reason.as_deref()).await;
            actions.extend(done.map_err(internal)?);
            members = tx.room_members(&r.room).await.map_err(internal)?;
        }
        let rows = tx.enqueue_all(actions).await.map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        self.dispatch(rows);
        Ok(())
    }

    /// A mediated invitation (XEP-0045 §7.8.2) sent to the room by an occupant.
    pub async fn muc_invite(self: &Arc<Self>, room_local: &str, bare: &BareJid, to: &str) -> Result<(), Refusal> {
        let r = self.muc_room(room_local).await?;
        let target = self.room_contact(to).map_err(|e| Refusal::bad_address(format!("Cannot invite {to}: {e}")))?;
        self.muc_request(&r, &Party::Xmpp(bare.clone()), vec![(Request::Add(target), None)]).await
    }

    /// Moderation through `muc#admin` (kick, affiliation and role changes).
    pub async fn muc_admin(
        self: &Arc<Self>,
        room_local: &str,
        bare: &BareJid,
        items: Vec<AdminItem>,
    ) -> Result<(), Refusal> {
        let r = self.muc_room(room_local).await?;
        let members = self.store.room_members(&r.room).await.map_err(internal)?;
        let mut requests = vec![];
        for item in items {
            let target = match (&item.nick, &item.jid) {
                (Some(nick), _) => members
                    .iter()
                    .find(|m| &m.nick == nick)
                    .map(|m| m.party.clone())
                    .ok_or_else(|| Refusal::policy(format!("Nobody in this room is called {nick}.")))?,
                (None, Some(jid)) => {
                    let bare_jid = jid.split('/').next().unwrap_or(jid);
                    self.room_contact(bare_jid).map_err(|e| Refusal::bad_address(e.to_string()))?
                }
                (None, None) => return Err(Refusal::bad_request("An item needs a nick or a jid.")),
            };
            let is_member = members.iter().any(|m| m.party == target);
            use crate::core::xmpp_in::{Affiliation as A, MucRole as R};
            let me = Party::Xmpp(bare.clone());
            let request = match (&item.affiliation, &item.role) {
                // Giving up one's own affiliation is leaving the room for good.
                (Some(A::None), _) if target == me => Request::Leave,
                (Some(A::None | A::Outcast), _) | (_, Some(R::None)) => Request::Remove(target),
                (Some(A::Admin | A::Owner), _) | (_, Some(R::Moderator)) => Request::Appoint(target),
                (Some(A::Member), _) | (_, Some(R::Participant)) if !is_member => Request::Add(target),
                (Some(A::Member), _) | (_, Some(R::Participant)) => Request::Revoke(target),
                (a, r) => {
                    let (a, r) = (a.as_ref().map(A::as_str), r.as_ref().map(R::as_str));
                    return Err(Refusal::unsupported(format!("Cannot set affiliation {a:?} / role {r:?} here.")));
                }
            };
            requests.push((request, item.reason.clone()));
        }
        self.muc_request(&r, &Party::Xmpp(bare.clone()), requests).await
    }

    /// The participants with an affiliation (answer to a `muc#admin` query); participants only.
    pub async fn muc_admin_list(
        &self,
        room_local: &str,
        bare: &BareJid,
    ) -> Result<Vec<(String, String, Role)>, Refusal> {
        let r = self.muc_room(room_local).await?;
        let members = self.store.room_members(&r.room).await.map_err(internal)?;
        if !members.iter().any(|m| m.party == Party::Xmpp(bare.clone())) {
            return Err(Refusal::forbidden("Only participants can see who is in this room."));
        }
        Ok(members.iter().map(|m| (self.real_jid_of(&m.party), m.nick.clone(), m.role)).collect())
    }

    /// A page of the room's archive, for a participant only.
    pub async fn muc_archive(&self, room_local: &str, bare: &BareJid, q: ArchiveQuery) -> Result<ArchivePage, Refusal> {
        let r = self.muc_room(room_local).await?;
        let members = self.store.room_members(&r.room).await.map_err(internal)?;
        if !members.iter().any(|m| m.party == Party::Xmpp(bare.clone())) {
            return Err(Refusal::forbidden("Only participants of this room can read its archive."));
        }
        let max = i64::try_from(q.max.unwrap_or(MAX_PAGE).min(MAX_PAGE)).unwrap_or(50);
        let page = match (q.after.as_deref(), q.before.as_deref()) {
            (Some(after), _) => Page::After(archive_id(after)?, max),
            (None, Some("")) => Page::Before(i64::MAX, max),
            (None, Some(before)) => Page::Before(archive_id(before)?, max),
            (None, None) => Page::After(0, max),
        };
        let muc = self.muc_of(&r);
        let filter = self.archive_filter(&muc, &q)?;
        let (mut messages, complete) = self.store.archive_search(&r.room, page, &filter).await.map_err(internal)?;
        let count = self.store.archive_count_matching(&r.room, &filter).await.map_err(internal)?;
        if q.flip {
            messages.reverse();
        }
        Ok(ArchivePage { muc, messages, complete, count })
    }

    /// What a MAM query's filters keep: a time range, an archive id range, and `with` as an
    /// occupant (`room/nick`) or a participant's bare JID (a Matrix user's address counts as
    /// that Matrix user).
    fn archive_filter(&self, muc: &BareJid, q: &ArchiveQuery) -> Result<ArchiveFilter, Refusal> {
        let mut filter = ArchiveFilter { start_ms: q.start_ms, end_ms: q.end_ms, ..ArchiveFilter::default() };
        filter.after_id = q.after_id.as_deref().map(archive_id).transpose()?;
        filter.before_id = q.before_id.as_deref().map(archive_id).transpose()?;
        let Some(with) = q.with.as_deref() else { return Ok(filter) };
        let bad = || Refusal::bad_request(format!("The filter with={with} is not an address."));
        let jid = BareJid::parse(with).map_err(|_| bad())?;
        match with.split_once('/') {
            Some((_, nick)) if jid == *muc && !nick.is_empty() => filter.nick = Some(nick.to_owned()),
            Some(_) => return Err(bad()),
            None => {
                let matrix = (jid.domain() == self.map.component).then(|| jid.local()).flatten();
                let party = match matrix.map(|local| self.map.matrix_for_jid(local)) {
                    Some(Ok(user)) => Party::Matrix(user),
                    Some(Err(e)) => return Err(Refusal::bad_request(e.to_string())),
                    None => Party::Xmpp(jid),
                };
                filter.sender = Some(party.key());
            }
        }
        Ok(filter)
    }

    /// A room's name, whether anyone may join, and its avatar's hash (for disco#info).
    pub async fn muc_info(&self, room_local: &str) -> Result<(String, bool, Option<[u8; 20]>), Refusal> {
        let r = self.muc_room(room_local).await?;
        let name = r.name.clone().or(r.alias.clone()).unwrap_or_else(|| r.room.to_string());
        Ok((name, r.open, self.room_avatar_hash(&r.room).await))
    }
}
