//! Group conversations the bridge hosts: the room, its participants with their roles, the XMPP
//! clients joined to its MUC, and its archive (served over MAM and as history on join). The
//! rooms' table keeps its first name, `bridged_room` (migrations are append-only).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Context, Result, Store, StoreError, StoreTx, now_ms};
use crate::core::action::TextKind;
use crate::core::ids::RoomId;
use crate::core::room::Role;
use crate::core::watch::Party;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedRoom {
    pub room: RoomId,
    /// The canonical alias (`#sales:hs`), if the room has one.
    pub alias: Option<String>,
    pub name: Option<String>,
    pub topic: Option<String>,
    /// The initiator.
    pub owner: Party,
    /// Anyone may join (Matrix join rule `public`); otherwise only invited people.
    pub open: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMember {
    pub party: Party,
    pub role: Role,
    /// Joined, or only invited so far.
    pub joined: bool,
    /// The name the participant has in the MUC (unique within the room).
    pub nick: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedMessage {
    pub id: i64,
    pub sender: Party,
    pub nick: String,
    pub body: String,
    pub kind: TextKind,
    pub origin_id: Option<String>,
    pub ts: i64,
    /// The Matrix event it is (once known).
    pub event_id: Option<String>,
    /// For a correction: the archive id of the message it corrects, and that message's id on
    /// XMPP (what `<replace id=…>` names).
    pub replaces: Option<(i64, String)>,
    /// Not a message but an occupant's reactions or retraction (`body` is not shown).
    pub act: Option<ArchivedAct>,
    /// A retracted message's tombstone (its content is gone).
    pub retracted: Option<Retracted>,
}

/// An occupant's act on an archived message, archived in its turn so that MAM serves it to
/// whoever missed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchivedAct {
    /// Their whole set of reactions to `target` (XEP-0444; empty: none any more).
    Reactions { target: i64, keys: Vec<String> },
    /// Their retraction of `target` (XEP-0424).
    Retract { target: i64 },
}

/// What a retracted message's tombstone says (XEP-0424): the archive id of the retraction, and
/// when it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retracted {
    pub by: i64,
    pub at: i64,
}

impl ArchivedMessage {
    /// The id XMPP clients know the message by (its `id` attribute): the sender's own id for
    /// messages from XMPP, else one made from the archive id.
    pub fn xmpp_id(&self) -> String {
        self.origin_id.clone().unwrap_or_else(|| format!("ucb-a{}", self.id))
    }
}

fn corrupt(context: &'static str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt { context, reason: reason.to_string() }
}

fn party(s: &str) -> Result<Party> {
    Party::from_key(s).ok_or_else(|| corrupt("party", s))
}

fn kind_str(kind: TextKind) -> &'static str {
    match kind {
        TextKind::Text => "text",
        TextKind::Notice => "notice",
        TextKind::Emote => "emote",
    }
}

fn room_from_row(row: &AnyRow) -> Result<HostedRoom> {
    let room: String = row.try_get(0).ctx("room_id")?;
    let owner: String = row.try_get(4).ctx("owner")?;
    Ok(HostedRoom {
        room: RoomId::parse(&room).map_err(|e| corrupt("bridged_room", e))?,
        alias: row.try_get(1).ctx("alias")?,
        name: row.try_get(2).ctx("name")?,
        topic: row.try_get(3).ctx("topic")?,
        owner: party(&owner)?,
        open: row.try_get::<i64, _>(5).ctx("is_open")? != 0,
    })
}

pub(super) fn message_from_row(row: &AnyRow) -> Result<ArchivedMessage> {
    let sender: String = row.try_get(1).ctx("sender")?;
    let kind: String = row.try_get(4).ctx("kind")?;
    Ok(ArchivedMessage {
        id: row.try_get(0).ctx("id")?,
        sender: party(&sender)?,
        nick: row.try_get(2).ctx("nick")?,
        body: row.try_get(3).ctx("body")?,
        kind: match kind.as_str() {
            "notice" => TextKind::Notice,
            "emote" => TextKind::Emote,
            _ => TextKind::Text,
        },
        origin_id: row.try_get(5).ctx("origin_id")?,
        ts: row.try_get(6).ctx("ts")?,
        event_id: row.try_get(7).ctx("event_id")?,
        replaces: match (
            row.try_get::<Option<i64>, _>(8).ctx("replaces")?,
            row.try_get::<Option<String>, _>(9).ctx("replaces_ref")?,
        ) {
            (Some(id), Some(r)) => Some((id, r)),
            _ => None,
        },
        act: act_from_row(row)?,
        retracted: match (
            row.try_get::<Option<i64>, _>(12).ctx("retracted_by")?,
            row.try_get::<Option<i64>, _>(13).ctx("retracted_at")?,
        ) {
            (Some(by), Some(at)) => Some(Retracted { by, at }),
            _ => None,
        },
    })
}

fn act_from_row(row: &AnyRow) -> Result<Option<ArchivedAct>> {
    let act: Option<String> = row.try_get(10).ctx("act")?;
    let target: Option<i64> = row.try_get(11).ctx("target")?;
    Ok(match (act.as_deref(), target) {
        (None, _) => None,
        (Some("reactions"), Some(target)) => {
            let body: String = row.try_get(3).ctx("body")?;
            let keys = serde_json::from_str(&body).map_err(|e| corrupt("reaction keys", e))?;
            Some(ArchivedAct::Reactions { target, keys })
        }
        (Some("retract"), Some(target)) => Some(ArchivedAct::Retract { target }),
        (Some(other), _) => return Err(corrupt("archive act", other)),
    })
}

const ROOM_COLUMNS: &str = "room_id, alias, name, topic, owner, is_open";
pub(super) const ARCHIVE_COLUMNS: &str = "id, sender, nick, body, kind, origin_id, ts, event_id, replaces, replaces_ref, \
     act, target, retracted_by, retracted_at";
/// The rows that are messages still there (not acts, not tombstones): what references find.
pub(super) const LIVE_MESSAGE: &str = "act IS NULL AND retracted_by IS NULL";

/// A message to archive.
pub struct NewArchived<'a> {
    pub sender: &'a Party,
    pub nick: &'a str,
    pub body: &'a str,
    pub kind: TextKind,
    /// The XMPP sender's stanza id.
    pub origin_id: Option<&'a str>,
    /// The Matrix event (for messages from Matrix).
    pub event_id: Option<&'a str>,
    /// For a correction: the archive id and XMPP id of the message it corrects.
    pub replaces: Option<(i64, &'a str)>,
}

impl<'a> NewArchived<'a> {
    /// Something said in the room that answers nothing on either network: no stanza id, no
    /// Matrix event, not a correction.
    pub fn said(sender: &'a Party, nick: &'a str, text: &'a crate::core::action::Text) -> Self {
        Self { sender, nick, body: &text.body, kind: text.kind, origin_id: None, event_id: None, replaces: None }
    }
}

/// Which part of a room's archive to read (XEP-0059 result set semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The oldest `max` messages after archive id `after` (0 = from the start).
    After(i64, i64),
    /// The newest `max` messages before archive id `before` (`i64::MAX` = the end).
    Before(i64, i64),
}

impl StoreTx {
    /// Add a message to a room's archive; its id is the XEP-0359 stanza id on XMPP.
    pub async fn archive(&mut self, room: &RoomId, m: &NewArchived<'_>) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO room_archive (room_id, sender, nick, body, kind, origin_id, ts, event_id, replaces, replaces_ref) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(room.as_str())
        .bind(m.sender.key())
        .bind(m.nick)
        .bind(m.body)
        .bind(kind_str(m.kind))
        .bind(m.origin_id)
        .bind(now_ms())
        .bind(m.event_id)
        .bind(m.replaces.map(|r| r.0))
        .bind(m.replaces.map(|r| r.1))
        .fetch_one(&mut *self.tx)
        .await
        .ctx("archive")?;
        row.try_get::<i64, _>(0).ctx("archive id")
    }

    /// A room's participants, read inside the transaction that changes them.
    pub async fn room_members(&mut self, room: &RoomId) -> Result<Vec<RoomMember>> {
        let rows = sqlx::query(
            "SELECT party, role, state, nick FROM room_member WHERE room_id = $1 ORDER BY joined_at, party",
        )
        .bind(room.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .ctx("room members")?;
        rows.iter().map(member_from_row).collect()
    }

    pub async fn save_member(&mut self, room: &RoomId, m: &RoomMember) -> Result<()> {
        save_member(&mut *self.tx, room, m).await
    }

    /// Remove a participant; `false` if they were not one.
    pub async fn remove_member(&mut self, room: &RoomId, who: &Party) -> Result<bool> {
        let done = sqlx::query("DELETE FROM room_member WHERE room_id = $1 AND party = $2")
            .bind(room.as_str())
            .bind(who.key())
            .execute(&mut *self.tx)
            .await
            .ctx("remove member")?;
        Ok(done.rows_affected() > 0)
    }
}

fn member_from_row(row: &AnyRow) -> Result<RoomMember> {
    let p: String = row.try_get(0).ctx("party")?;
    let role: String = row.try_get(1).ctx("role")?;
    let state: String = row.try_get(2).ctx("state")?;
    Ok(RoomMember {
        party: party(&p)?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        joined: state == "join",
        nick: row.try_get(3).ctx("nick")?,
    })
}

async fn save_member<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    room: &RoomId,
    m: &RoomMember,
) -> Result<()> {
    // `joined_at` is set once, when they first join (an invitation accepted counts from then);
    // role and nick changes keep it: the order is who has been there longest.
    sqlx::query(
        "INSERT INTO room_member (room_id, party, role, state, nick, updated_at, joined_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) \
         ON CONFLICT (room_id, party) DO UPDATE SET role = $3, state = $4, nick = $5, updated_at = $6, \
         joined_at = CASE WHEN room_member.state <> 'join' AND $4 = 'join' THEN $6 ELSE room_member.joined_at END",
    )
    .bind(room.as_str())
    .bind(m.party.key())
    .bind(m.role.as_str())
    .bind(if m.joined { "join" } else { "invite" })
    .bind(&m.nick)
    .bind(now_ms())
    .execute(exec)
    .await
    .ctx("save member")?;
    Ok(())
}

async fn save_room<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(exec: E, r: &HostedRoom) -> Result<()> {
    sqlx::query(
        "INSERT INTO bridged_room (room_id, alias, name, topic, owner, is_open, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (room_id) DO UPDATE SET \
         alias = $2, name = $3, topic = $4, owner = $5, is_open = $6",
    )
    .bind(r.room.as_str())
    .bind(r.alias.as_deref())
    .bind(r.name.as_deref())
    .bind(r.topic.as_deref())
    .bind(r.owner.key())
    .bind(i64::from(r.open))
    .bind(now_ms())
    .execute(exec)
    .await
    .ctx("save room")?;
    Ok(())
}

impl Store {
    pub async fn save_room(&self, r: &HostedRoom) -> Result<()> {
        save_room(&self.pool, r).await
    }

    pub async fn room(&self, room: &RoomId) -> Result<Option<HostedRoom>> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM bridged_room WHERE room_id = $1");
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(room.as_str()).fetch_optional(&self.pool).await.ctx("room")?;
        row.as_ref().map(room_from_row).transpose()
    }

    pub async fn room_by_alias(&self, alias: &str) -> Result<Option<HostedRoom>> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM bridged_room WHERE alias = $1");
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(alias).fetch_optional(&self.pool).await.ctx("room by alias")?;
        row.as_ref().map(room_from_row).transpose()
    }

    /// The room whose ID or alias is `name` but for letter case (XMPP servers lowercase the
    /// MUC address a client writes to), if only one is.
    pub async fn room_by_name_any_case(&self, name: &str) -> Result<Option<HostedRoom>> {
        let sql =
            format!("SELECT {ROOM_COLUMNS} FROM bridged_room WHERE lower(room_id) = $1 OR lower(alias) = $1 LIMIT 2");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name.to_ascii_lowercase())
            .fetch_all(&self.pool)
            .await
            .ctx("room by name, any case")?;
        match rows.as_slice() {
            [one] => room_from_row(one).map(Some),
            _ => Ok(None),
        }
    }

    pub async fn rooms(&self) -> Result<Vec<HostedRoom>> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM bridged_room ORDER BY room_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await.ctx("rooms")?;
        rows.iter().map(room_from_row).collect()
    }

    pub async fn room_members(&self, room: &RoomId) -> Result<Vec<RoomMember>> {
        let rows = sqlx::query(
            "SELECT party, role, state, nick FROM room_member WHERE room_id = $1 ORDER BY joined_at, party",
        )
        .bind(room.as_str())
        .fetch_all(&self.pool)
        .await
        .ctx("room members")?;
        rows.iter().map(member_from_row).collect()
    }

    pub async fn save_member(&self, room: &RoomId, m: &RoomMember) -> Result<()> {
        save_member(&self.pool, room, m).await
    }

    /// The rooms a person has joined, with their place in each.
    pub async fn rooms_of(&self, who: &Party) -> Result<Vec<(RoomId, RoomMember)>> {
        let rows = sqlx::query(
            "SELECT party, role, state, nick, room_id FROM room_member WHERE party = $1 AND state = 'join'",
        )
        .bind(who.key())
        .fetch_all(&self.pool)
        .await
        .ctx("rooms of")?;
        rows.iter()
            .map(|r| {
                let room: String = r.try_get(4).ctx("room_id")?;
                Ok((RoomId::parse(&room).map_err(|e| corrupt("room_member", e))?, member_from_row(r)?))
            })
            .collect()
    }

    /// XMPP clients joined to a room: (full JID, person).
    pub async fn occupants(&self, room: &RoomId) -> Result<Vec<(String, Party)>> {
        let rows = sqlx::query("SELECT full_jid, party FROM muc_occupant WHERE room_id = $1 ORDER BY joined_at")
            .bind(room.as_str())
            .fetch_all(&self.pool)
            .await
            .ctx("occupants")?;
        rows.iter()
            .map(|r| {
                let full: String = r.try_get(0).ctx("full_jid")?;
                let p: String = r.try_get(1).ctx("party")?;
                Ok((full, party(&p)?))
            })
            .collect()
    }

    pub async fn add_occupant(&self, room: &RoomId, full_jid: &str, who: &Party) -> Result<()> {
        sqlx::query(
            "INSERT INTO muc_occupant (room_id, full_jid, party, joined_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, full_jid) DO UPDATE SET party = $3",
        )
        .bind(room.as_str())
        .bind(full_jid)
        .bind(who.key())
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("add occupant")?;
        Ok(())
    }

    /// Remove one client (`Some(full_jid)`) or all of a person's clients from a room's MUC.
    pub async fn remove_occupants(&self, room: &RoomId, who: &Party, full_jid: Option<&str>) -> Result<u64> {
        let done = match full_jid {
            Some(full) => {
                sqlx::query("DELETE FROM muc_occupant WHERE room_id = $1 AND full_jid = $2")
                    .bind(room.as_str())
                    .bind(full)
                    .execute(&mut *self.writer().await?)
                    .await
            }
            None => {
                sqlx::query("DELETE FROM muc_occupant WHERE room_id = $1 AND party = $2")
                    .bind(room.as_str())
                    .bind(who.key())
                    .execute(&mut *self.writer().await?)
                    .await
            }
        }
        .ctx("remove occupant")?;
        Ok(done.rows_affected())
    }

    /// A page of a room's messages (no reactions, retractions or tombstones: history on join) in
    /// chronological order, and whether it reaches the end of what was asked.
    pub async fn archive_page(&self, room: &RoomId, page: Page) -> Result<(Vec<ArchivedMessage>, bool)> {
        let messages = super::ArchiveFilter { messages_only: true, ..super::ArchiveFilter::default() };
        self.archive_search(room, page, &messages).await
    }

    /// Record the Matrix event an archived message became.
    pub async fn set_archive_event(&self, room: &RoomId, archive_id: i64, event_id: &str) -> Result<()> {
        sqlx::query("UPDATE room_archive SET event_id = $1 WHERE room_id = $2 AND id = $3")
            .bind(event_id)
            .bind(room.as_str())
            .bind(archive_id)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("set archive event")?;
        Ok(())
    }

    /// The archived message a Matrix event is, and the event of an archived message.
    pub async fn archive_id_of_event(&self, room: &RoomId, event_id: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT id FROM room_archive WHERE room_id = $1 AND event_id = $2")
            .bind(room.as_str())
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await
            .ctx("archive by event")?;
        row.map(|r| r.try_get::<i64, _>(0).ctx("id")).transpose()
    }

    pub async fn event_of_archived(&self, room: &RoomId, archive_id: i64) -> Result<Option<(String, Party)>> {
        let row = sqlx::query("SELECT event_id, sender FROM room_archive WHERE room_id = $1 AND id = $2")
            .bind(room.as_str())
            .bind(archive_id)
            .fetch_optional(&self.pool)
            .await
            .ctx("event of archived")?;
        let Some(row) = row else { return Ok(None) };
        let event: Option<String> = row.try_get(0).ctx("event_id")?;
        let sender: String = row.try_get(1).ctx("sender")?;
        let Some(event) = event else { return Ok(None) };
        Ok(Some((event, party(&sender)?)))
    }

    pub async fn archive_count(&self, room: &RoomId) -> Result<i64> {
        self.archive_count_matching(room, &super::ArchiveFilter::default()).await
    }
}

/// Which archived message to look up.
#[derive(Debug, Clone, Copy)]
pub enum ArchiveKey<'a> {
    Id(i64),
    /// The Matrix event it became (or came from).
    Event(&'a str),
    /// The id its XMPP sender gave it (`origin_id`, or `ucb-a<id>` for messages from Matrix).
    XmppId(&'a str),
}

async fn archived<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    room: &RoomId,
    key: ArchiveKey<'_>,
) -> Result<Option<ArchivedMessage>> {
    let (column, text, number) = match key {
        ArchiveKey::Id(id) => ("id", None, Some(id)),
        ArchiveKey::Event(e) => ("event_id", Some(e.to_owned()), None),
        ArchiveKey::XmppId(x) => match x.strip_prefix("ucb-a").and_then(|n| n.parse::<i64>().ok()) {
            Some(id) => ("id", None, Some(id)),
            None => ("origin_id", Some(x.to_owned()), None),
        },
    };
    let sql = format!(
        "SELECT {ARCHIVE_COLUMNS} FROM room_archive WHERE room_id = $1 AND {column} = $2 AND {LIVE_MESSAGE} \
         ORDER BY id LIMIT 1"
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(room.as_str());
    let query = match (text, number) {
        (Some(t), _) => query.bind(t),
        (None, n) => query.bind(n.unwrap_or_default()),
    };
    let row = query.fetch_optional(exec).await.ctx("archived message")?;
    row.as_ref().map(message_from_row).transpose()
}

impl StoreTx {
    /// One archived message, read inside the transaction.
    pub async fn archived(&mut self, room: &RoomId, key: ArchiveKey<'_>) -> Result<Option<ArchivedMessage>> {
        archived(&mut *self.tx, room, key).await
    }

    /// Archive an occupant's reactions (`origin_id`: the id their client gave the stanza).
    pub async fn archive_act(
        &mut self,
        room: &RoomId,
        sender: &Party,
        nick: &str,
        origin_id: Option<&str>,
        act: &ArchivedAct,
    ) -> Result<i64> {
        let (name, target, body) = match act {
            ArchivedAct::Reactions { target, keys } => {
                ("reactions", *target, serde_json::to_string(keys).map_err(|e| corrupt("reaction keys", e))?)
            }
            ArchivedAct::Retract { target } => ("retract", *target, String::new()),
        };
        let row = sqlx::query(
            "INSERT INTO room_archive (room_id, sender, nick, body, kind, origin_id, ts, act, target) \
             VALUES ($1, $2, $3, $4, 'text', $5, $6, $7, $8) RETURNING id",
        )
        .bind(room.as_str())
        .bind(sender.key())
        .bind(nick)
        .bind(body)
        .bind(origin_id)
        .bind(now_ms())
        .bind(name)
        .bind(target)
        .fetch_one(&mut *self.tx)
        .await
        .ctx("archive act")?;
        row.try_get::<i64, _>(0).ctx("archive id")
    }

    /// Retract an archived message: the retraction is archived, and the message (with its
    /// corrections) becomes a tombstone without its content, as XEP-0424 suggests for archives.
    /// Returns the retraction's archive id.
    pub async fn retract_archived(
        &mut self,
        room: &RoomId,
        target: i64,
        sender: &Party,
        nick: &str,
        origin_id: Option<&str>,
    ) -> Result<i64> {
        let by = self.archive_act(room, sender, nick, origin_id, &ArchivedAct::Retract { target }).await?;
        sqlx::query(
            "UPDATE room_archive SET body = '', retracted_by = $1, retracted_at = $2 \
             WHERE room_id = $3 AND (id = $4 OR replaces = $4) AND act IS NULL AND retracted_by IS NULL",
        )
        .bind(by)
        .bind(now_ms())
        .bind(room.as_str())
        .bind(target)
        .execute(&mut *self.tx)
        .await
        .ctx("retract archived")?;
        Ok(by)
    }
}

impl Store {
    pub async fn archived(&self, room: &RoomId, key: ArchiveKey<'_>) -> Result<Option<ArchivedMessage>> {
        archived(&self.pool, room, key).await
    }
}

impl StoreTx {
    pub async fn save_room(&mut self, r: &HostedRoom) -> Result<()> {
        save_room(&mut *self.tx, r).await
    }
}
