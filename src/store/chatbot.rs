//! The chatbot's tables: its one-to-one rooms on Matrix (`chatbot_room`) and the turns of each
//! conversation (`chatbot_turn`), kept so that a context survives a restart.

use sqlx::Row;

use super::{Context, Result, Store, StoreError, StoreTx, now_ms};
use crate::core::chat_turn::{Message, Role};
use crate::core::ids::{BareJid, RoomId};
use crate::core::watch::Party;

/// A stored turn: its id (turns are ordered by it) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTurn {
    pub id: i64,
    pub message: Message,
}

/// A Matrix room the chatbot was invited into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatbotRoom {
    /// Who invited it: in a one-to-one chat, the person it talks with.
    pub party: Party,
    /// A room of several people (not a direct chat): the context is the room's.
    pub shared: bool,
}

impl StoreTx {
    /// The chatbot was invited into `room` by `party` (`shared`: not as a direct chat).
    pub async fn save_chatbot_room(&mut self, room: &RoomId, party: &Party, shared: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO chatbot_room (room_id, party, shared) VALUES ($1, $2, $3) \
             ON CONFLICT (room_id) DO UPDATE SET party = $2, shared = $3",
        )
        .bind(room.as_str())
        .bind(party.key())
        .bind(i64::from(shared))
        .execute(&mut *self.tx)
        .await
        .ctx("save chatbot room")?;
        Ok(())
    }

    /// The chatbot left or was removed from `room`.
    pub async fn forget_chatbot_room(&mut self, room: &RoomId) -> Result<()> {
        sqlx::query("DELETE FROM chatbot_room WHERE room_id = $1")
            .bind(room.as_str())
            .execute(&mut *self.tx)
            .await
            .ctx("forget chatbot room")?;
        Ok(())
    }

    /// `room` as a room of the chatbot, if it is one.
    pub async fn chatbot_room(&mut self, room: &RoomId) -> Result<Option<ChatbotRoom>> {
        let row = sqlx::query("SELECT party, shared FROM chatbot_room WHERE room_id = $1")
            .bind(room.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .ctx("chatbot room")?;
        let Some(row) = row else { return Ok(None) };
        let key: String = row.try_get(0).ctx("chatbot room party")?;
        let shared: i64 = row.try_get(1).ctx("chatbot room shared")?;
        let party = Party::from_key(&key).ok_or(StoreError::Corrupt { context: "chatbot_room", reason: key })?;
        Ok(Some(ChatbotRoom { party, shared: shared != 0 }))
    }

    /// Whose one-to-one chat with the chatbot `room` is, if it is one.
    pub async fn chatbot_room_owner(&mut self, room: &RoomId) -> Result<Option<Party>> {
        Ok(self.chatbot_room(room).await?.filter(|r| !r.shared).map(|r| r.party))
    }
}

impl Store {
    /// A conversation's turns, oldest first.
    pub async fn chatbot_turns(&self, context: &str) -> Result<Vec<ChatTurn>> {
        let rows = sqlx::query("SELECT id, role, content FROM chatbot_turn WHERE context = $1 ORDER BY id")
            .bind(context)
            .fetch_all(&self.pool)
            .await
            .ctx("chatbot turns")?;
        rows.iter()
            .map(|r| {
                let role: String = r.try_get(1).ctx("chatbot turn role")?;
                let role = Role::parse(&role).ok_or(StoreError::Corrupt { context: "chatbot_turn", reason: role })?;
                Ok(ChatTurn {
                    id: r.try_get(0).ctx("chatbot turn id")?,
                    message: Message { role, content: r.try_get(2).ctx("chatbot turn content")? },
                })
            })
            .collect()
    }

    /// The answer already given to the question of outbox action `action`, if there is one.
    pub async fn chatbot_answer_of(&self, action: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT content FROM chatbot_turn WHERE action = $1 AND role = 'assistant'")
            .bind(action)
            .fetch_optional(&self.pool)
            .await
            .ctx("chatbot answer")?;
        row.map(|r| r.try_get(0).ctx("chatbot answer content")).transpose()
    }

    /// Record a question and its answer (asked by outbox action `action`), and forget the turns
    /// before `keep_from` (the id of the oldest turn still in the budget; `None`: forget all
    /// earlier ones), in one transaction.
    pub async fn chatbot_record(
        &self,
        context: &str,
        keep_from: Option<i64>,
        question: &str,
        answer: &str,
        action: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM chatbot_turn WHERE context = $1 AND id < $2")
            .bind(context)
            .bind(keep_from.unwrap_or(i64::MAX))
            .execute(&mut *tx.tx)
            .await
            .ctx("chatbot forget old turns")?;
        for (role, content, action) in [(Role::User, question, None), (Role::Assistant, answer, Some(action))] {
            sqlx::query("INSERT INTO chatbot_turn (context, role, content, action, at) VALUES ($1, $2, $3, $4, $5)")
                .bind(context)
                .bind(role.as_str())
                .bind(content)
                .bind(action)
                .bind(now_ms())
                .execute(&mut *tx.tx)
                .await
                .ctx("chatbot save turn")?;
        }
        tx.commit().await
    }

    /// The image made for outbox action `action` (bytes, media type), if one was: a retried
    /// delivery sends it again.
    pub async fn chatbot_image_of(&self, action: i64) -> Result<Option<(Vec<u8>, String)>> {
        use base64::Engine;
        let row = sqlx::query("SELECT mimetype, data FROM chatbot_image WHERE action = $1")
            .bind(action)
            .fetch_optional(&self.pool)
            .await
            .ctx("chatbot image")?;
        let Some(row) = row else { return Ok(None) };
        let mimetype: String = row.try_get(0).ctx("chatbot image mimetype")?;
        let data: String = row.try_get(1).ctx("chatbot image data")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| StoreError::Corrupt { context: "chatbot_image", reason: e.to_string() })?;
        Ok(Some((bytes, mimetype)))
    }

    /// Keep the image made for outbox action `action`; images kept longer than a day are
    /// forgotten (their deliveries are long done).
    pub async fn chatbot_save_image(&self, action: i64, bytes: &[u8], mimetype: &str) -> Result<()> {
        use base64::Engine;
        const DAY_MS: i64 = 24 * 60 * 60 * 1000;
        let now = now_ms();
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM chatbot_image WHERE at < $1")
            .bind(now - DAY_MS)
            .execute(&mut *tx.tx)
            .await
            .ctx("chatbot forget old images")?;
        sqlx::query(
            "INSERT INTO chatbot_image (action, mimetype, data, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (action) DO UPDATE SET mimetype = $2, data = $3, at = $4",
        )
        .bind(action)
        .bind(mimetype)
        .bind(base64::engine::general_purpose::STANDARD.encode(bytes))
        .bind(now)
        .execute(&mut *tx.tx)
        .await
        .ctx("chatbot save image")?;
        tx.commit().await
    }

    /// The assistant was invited into the MUC `muc` by `party` and joins it as `nick`.
    pub async fn save_chatbot_muc(&self, muc: &BareJid, party: &Party, nick: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO chatbot_muc (muc, party, nick, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (muc) DO UPDATE SET party = $2, nick = $3, at = $4",
        )
        .bind(muc.to_string())
        .bind(party.key())
        .bind(nick)
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("save chatbot muc")?;
        Ok(())
    }

    /// Who invited the assistant into `muc`, and its nick there, if it is in it.
    pub async fn chatbot_muc(&self, muc: &BareJid) -> Result<Option<(Party, String)>> {
        let row = sqlx::query("SELECT party, nick FROM chatbot_muc WHERE muc = $1")
            .bind(muc.to_string())
            .fetch_optional(&self.pool)
            .await
            .ctx("chatbot muc")?;
        let Some(row) = row else { return Ok(None) };
        let key: String = row.try_get(0).ctx("chatbot muc party")?;
        let party = Party::from_key(&key).ok_or(StoreError::Corrupt { context: "chatbot_muc", reason: key })?;
        Ok(Some((party, row.try_get(1).ctx("chatbot muc nick")?)))
    }

    /// The assistant is out of `muc`; `true` if it was in it.
    pub async fn forget_chatbot_muc(&self, muc: &BareJid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM chatbot_muc WHERE muc = $1")
            .bind(muc.to_string())
            .execute(&mut *self.writer().await?)
            .await
            .ctx("forget chatbot muc")?;
        Ok(done.rows_affected() > 0)
    }

    /// Every MUC the assistant is in, with its nick there (to rejoin after a reconnect).
    pub async fn chatbot_mucs(&self) -> Result<Vec<(BareJid, String)>> {
        let rows = sqlx::query("SELECT muc, nick FROM chatbot_muc ORDER BY muc")
            .fetch_all(&self.pool)
            .await
            .ctx("chatbot mucs")?;
        rows.iter()
            .map(|r| {
                let muc: String = r.try_get(0).ctx("chatbot muc")?;
                let muc = BareJid::parse(&muc)
                    .map_err(|e| StoreError::Corrupt { context: "chatbot_muc", reason: e.to_string() })?;
                Ok((muc, r.try_get(1).ctx("chatbot muc nick")?))
            })
            .collect()
    }

    /// `/clear`: forget a conversation. Returns how many turns were forgotten.
    pub async fn chatbot_clear(&self, context: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM chatbot_turn WHERE context = $1")
            .bind(context)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("chatbot clear")?;
        Ok(done.rows_affected())
    }
}

/// One person's use of the chatbot over some days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatbotUsage {
    pub party: Party,
    pub messages: i64,
    pub tokens: i64,
    pub images: i64,
}

/// The first millisecond of the UTC day of `ms`.
pub fn day_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}

impl Store {
    /// Count a question (`tokens` as the provider counted them) or an image of `party` today.
    pub async fn chatbot_add_usage(&self, party: &Party, tokens: u64, images: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO chatbot_usage (party, day, messages, tokens, images) VALUES ($1, $2, 1, $3, $4) \
             ON CONFLICT (party, day) DO UPDATE SET messages = chatbot_usage.messages + 1, \
             tokens = chatbot_usage.tokens + excluded.tokens, images = chatbot_usage.images + excluded.images",
        )
        .bind(party.key())
        .bind(day_of(now_ms()))
        .bind(i64::try_from(tokens).unwrap_or(i64::MAX))
        .bind(i64::try_from(images).unwrap_or(i64::MAX))
        .execute(&mut *self.writer().await?)
        .await
        .ctx("chatbot add usage")?;
        Ok(())
    }

    /// Today's tokens: `party`'s, and everyone's together.
    pub async fn chatbot_tokens_today(&self, party: &Party) -> Result<(u64, u64)> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN party = $1 THEN tokens ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(tokens), 0) AS BIGINT) \
             FROM chatbot_usage WHERE day = $2",
        )
        .bind(party.key())
        .bind(day_of(now_ms()))
        .fetch_one(&self.pool)
        .await
        .ctx("chatbot tokens today")?;
        let mine: i64 = row.try_get(0).ctx("chatbot tokens mine")?;
        let all: i64 = row.try_get(1).ctx("chatbot tokens all")?;
        Ok((u64::try_from(mine).unwrap_or(0), u64::try_from(all).unwrap_or(0)))
    }

    /// Use per person over the last `days` UTC days (today included), most tokens first.
    pub async fn chatbot_usage(&self, days: u32) -> Result<Vec<ChatbotUsage>> {
        let since = day_of(now_ms()) - i64::from(days.saturating_sub(1)) * 86_400_000;
        let rows = sqlx::query(
            "SELECT party, CAST(SUM(messages) AS BIGINT), CAST(SUM(tokens) AS BIGINT), CAST(SUM(images) AS BIGINT) \
             FROM chatbot_usage WHERE day >= $1 \
             GROUP BY party ORDER BY SUM(tokens) DESC, party",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .ctx("chatbot usage")?;
        rows.iter()
            .map(|r| {
                let key: String = r.try_get(0).ctx("chatbot usage party")?;
                let party =
                    Party::from_key(&key).ok_or(StoreError::Corrupt { context: "chatbot_usage", reason: key })?;
                Ok(ChatbotUsage {
                    party,
                    messages: r.try_get(1).ctx("chatbot usage messages")?,
                    tokens: r.try_get(2).ctx("chatbot usage tokens")?,
                    images: r.try_get(3).ctx("chatbot usage images")?,
                })
            })
            .collect()
    }

    /// Forget every conversation (the admins' `chatbot clear-all`). Returns how many turns.
    pub async fn chatbot_clear_all(&self) -> Result<u64> {
        let done = sqlx::query("DELETE FROM chatbot_turn")
            .execute(&mut *self.writer().await?)
            .await
            .ctx("chatbot clear all")?;
        Ok(done.rows_affected())
    }
}
