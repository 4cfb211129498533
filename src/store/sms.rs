//! SMS tables (migration 0011): conversations with phone numbers, the SMS the gateway accepted,
//! incoming SMS already taken, and each person's sent parts.

use sqlx::Row;

use super::{Context, Result, Store, StoreError, StoreTx, now_ms};
use crate::core::action::SmsOrigin;
use crate::core::ids::{PhoneNumber, RoomId};
use crate::core::watch::Party;

/// An SMS the gateway accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    pub reference: String,
    pub provider_id: Option<String>,
    pub phone: PhoneNumber,
    pub parts: u32,
    pub origin: Option<SmsOrigin>,
    /// `accepted`, `delivered` or `failed`.
    pub state: String,
    pub delivered_parts: u32,
}

/// What one part's delivery report did to its SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartReport {
    /// The SMS before the report (state and all).
    pub sent: SentSms,
    /// Its state after: `delivered` once every part was, `failed` once any part failed.
    pub state: String,
    pub delivered_parts: u32,
}

fn corrupt(context: &'static str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt { context, reason: reason.to_string() }
}

fn sent_from_row(row: &sqlx::any::AnyRow) -> Result<SentSms> {
    let phone: String = row.try_get(2).ctx("phone")?;
    let origin: Option<String> = row.try_get(4).ctx("origin")?;
    Ok(SentSms {
        reference: row.try_get(0).ctx("reference")?,
        provider_id: row.try_get(1).ctx("provider id")?,
        phone: PhoneNumber::parse(&phone).map_err(|e| corrupt("sms phone", e))?,
        parts: u32::try_from(row.try_get::<i64, _>(3).ctx("parts")?).unwrap_or(1),
        origin: origin.map(|o| serde_json::from_str(&o)).transpose().map_err(|e| corrupt("sms origin", e))?,
        state: row.try_get(5).ctx("state")?,
        delivered_parts: u32::try_from(row.try_get::<i64, _>(6).ctx("delivered parts")?).unwrap_or(0),
    })
}

impl StoreTx {
    /// `party` wrote to `phone` now (in `room`, if on Matrix): replies go to them.
    pub async fn touch_sms_conversation(
        &mut self,
        party: &Party,
        phone: &PhoneNumber,
        room: Option<&RoomId>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sms_conversation (party, phone, room_id, last_out_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (party, phone) DO UPDATE SET last_out_at = $4, \
             room_id = COALESCE($3, sms_conversation.room_id)",
        )
        .bind(party.key())
        .bind(phone.as_str())
        .bind(room.map(RoomId::as_str))
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .ctx("touch sms conversation")?;
        Ok(())
    }

    /// A Matrix user's room with a phone number's ghost (set when they invite it).
    pub async fn set_sms_room(&mut self, party: &Party, phone: &PhoneNumber, room: &RoomId) -> Result<()> {
        sqlx::query(
            "INSERT INTO sms_conversation (party, phone, room_id, last_out_at) VALUES ($1, $2, $3, 0) \
             ON CONFLICT (party, phone) DO UPDATE SET room_id = $3",
        )
        .bind(party.key())
        .bind(phone.as_str())
        .bind(room.as_str())
        .execute(&mut *self.tx)
        .await
        .ctx("set sms room")?;
        Ok(())
    }

    /// The person and number a room is the SMS conversation of.
    pub async fn sms_by_room(&mut self, room: &RoomId) -> Result<Option<(Party, PhoneNumber)>> {
        sms_by_room(&mut *self.tx, room).await
    }

    /// The person who last wrote to `phone`, and when.
    pub async fn last_sms_writer(&mut self, phone: &PhoneNumber) -> Result<Option<(Party, i64)>> {
        let row = sqlx::query(
            "SELECT party, last_out_at FROM sms_conversation WHERE phone = $1 AND last_out_at > 0 \
             ORDER BY last_out_at DESC LIMIT 1",
        )
        .bind(phone.as_str())
        .fetch_optional(&mut *self.tx)
        .await
        .ctx("last sms writer")?;
        row.map(|r| {
            let p: String = r.try_get(0).ctx("party")?;
            let at: i64 = r.try_get(1).ctx("last out at")?;
            Ok((Party::from_key(&p).ok_or_else(|| corrupt("sms party", p))?, at))
        })
        .transpose()
    }

    /// The person left the room: it is no longer their conversation's room.
    pub async fn forget_sms_room(&mut self, room: &RoomId) -> Result<()> {
        sqlx::query("UPDATE sms_conversation SET room_id = NULL WHERE room_id = $1")
            .bind(room.as_str())
            .execute(&mut *self.tx)
            .await
            .ctx("forget sms room")?;
        Ok(())
    }

    /// Record an incoming SMS's id; `false` if it was taken before (a gateway's retry).
    pub async fn claim_sms_inbound(&mut self, provider: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("INSERT INTO sms_inbound (provider, id, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(provider)
            .bind(id)
            .bind(now_ms())
            .execute(&mut *self.tx)
            .await
            .ctx("claim sms")?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn add_sms_usage(&mut self, party: &Party, parts: u32) -> Result<()> {
        sqlx::query("INSERT INTO sms_usage (party, at, parts) VALUES ($1, $2, $3)")
            .bind(party.key())
            .bind(now_ms())
            .bind(i64::from(parts))
            .execute(&mut *self.tx)
            .await
            .ctx("sms usage")?;
        Ok(())
    }

    /// Take `parts` SMS parts from `party`'s allowance for the UTC day starting at `day`, at most
    /// `cap` a day (0: no cap): one conditional upsert, so two concurrent sends of one person
    /// cannot both pass a check that only one of them fits (the row is locked by the upsert).
    /// `Ok(Err(used))`: refused, nothing taken; `used` parts were taken that day.
    pub async fn take_daily_sms(
        &mut self,
        party: &Party,
        day: i64,
        parts: u32,
        cap: u32,
    ) -> Result<std::result::Result<(), u32>> {
        let (parts, cap_sql) = (i64::from(parts), if cap == 0 { i64::MAX } else { i64::from(cap) });
        if parts > cap_sql {
            let used = self.daily_sms(party, day).await?;
            return Ok(Err(used));
        }
        let taken = sqlx::query(
            "INSERT INTO sms_daily_usage (party, day, parts) VALUES ($1, $2, $3) \
             ON CONFLICT (party, day) DO UPDATE SET parts = sms_daily_usage.parts + excluded.parts \
             WHERE sms_daily_usage.parts + excluded.parts <= $4",
        )
        .bind(party.key())
        .bind(day)
        .bind(parts)
        .bind(cap_sql)
        .execute(&mut *self.tx)
        .await
        .ctx("take daily sms")?
        .rows_affected();
        if taken == 1 { Ok(Ok(())) } else { Ok(Err(self.daily_sms(party, day).await?)) }
    }

    /// Give back parts taken with [`Self::take_daily_sms`] (the message was refused after all).
    pub async fn return_daily_sms(&mut self, party: &Party, day: i64, parts: u32) -> Result<()> {
        sqlx::query("UPDATE sms_daily_usage SET parts = parts - $3 WHERE party = $1 AND day = $2 AND parts >= $3")
            .bind(party.key())
            .bind(day)
            .bind(i64::from(parts))
            .execute(&mut *self.tx)
            .await
            .ctx("return daily sms")?;
        Ok(())
    }

    /// SMS parts `party` took on the UTC day starting at `day`.
    pub async fn daily_sms(&mut self, party: &Party, day: i64) -> Result<u32> {
        let row = sqlx::query("SELECT parts FROM sms_daily_usage WHERE party = $1 AND day = $2")
            .bind(party.key())
            .bind(day)
            .fetch_optional(&mut *self.tx)
            .await
            .ctx("daily sms")?;
        let used = match row {
            Some(r) => r.try_get::<i64, _>(0).ctx("daily sms")?,
            None => 0,
        };
        Ok(u32::try_from(used).unwrap_or(u32::MAX))
    }

    /// Record a final delivery report (`delivered` or `failed`) for one part of SMS `id` (our
    /// reference or the gateway's id), `part` naming the part (the SMSC's id of it; a repeated
    /// report of a part replaces its first). Sets the SMS's state from all its parts. `None`:
    /// no such SMS.
    pub async fn report_sms_part(&mut self, id: &str, part: &str, status: &str) -> Result<Option<PartReport>> {
        // Lock the message's row before reading it: two parts reported at once then see each
        // other's part and state (PostgreSQL reads committed rows; SQLite has one writer anyway).
        sqlx::query(
            "UPDATE sms_message SET delivered_parts = delivered_parts WHERE reference = $1 OR provider_id = $1",
        )
        .bind(id)
        .execute(&mut *self.tx)
        .await
        .ctx("lock sms")?;
        let row = sqlx::query(
            "SELECT reference, provider_id, phone, parts, origin, state, delivered_parts FROM sms_message \
             WHERE reference = $1 OR provider_id = $1 ORDER BY CASE WHEN reference = $1 THEN 0 ELSE 1 END LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await
        .ctx("sms for report")?;
        let Some(sent) = row.as_ref().map(sent_from_row).transpose()? else { return Ok(None) };
        sqlx::query(
            "INSERT INTO sms_dlr_part (reference, part, status, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (reference, part) DO UPDATE SET status = excluded.status, at = excluded.at",
        )
        .bind(&sent.reference)
        .bind(part)
        .bind(status)
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .ctx("sms dlr part")?;
        let counts = sqlx::query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM sms_dlr_part WHERE reference = $1",
        )
        .bind(&sent.reference)
        .fetch_one(&mut *self.tx)
        .await
        .ctx("sms dlr parts")?;
        let delivered = u32::try_from(counts.try_get::<i64, _>(0).ctx("delivered parts")?).unwrap_or(u32::MAX);
        let failed = counts.try_get::<i64, _>(1).ctx("failed parts")?;
        let state = if failed > 0 {
            "failed".to_owned()
        } else if delivered >= sent.parts {
            "delivered".to_owned()
        } else {
            sent.state.clone()
        };
        sqlx::query("UPDATE sms_message SET state = $1, delivered_parts = $2 WHERE reference = $3")
            .bind(&state)
            .bind(i64::from(delivered))
            .bind(&sent.reference)
            .execute(&mut *self.tx)
            .await
            .ctx("sms state")?;
        Ok(Some(PartReport { sent, state, delivered_parts: delivered }))
    }

    /// SMS parts `party` queued since `since_ms`.
    pub async fn sms_usage_since(&mut self, party: &Party, since_ms: i64) -> Result<u32> {
        // SUM is NUMERIC on PostgreSQL, which the Any driver cannot read: cast it.
        let row =
            sqlx::query("SELECT CAST(COALESCE(SUM(parts), 0) AS BIGINT) FROM sms_usage WHERE party = $1 AND at >= $2")
                .bind(party.key())
                .bind(since_ms)
                .fetch_one(&mut *self.tx)
                .await
                .ctx("sms usage")?;
        let n = row.try_get::<i64, _>(0);
        Ok(u32::try_from(n.ctx("sms usage")?).unwrap_or(u32::MAX))
    }
}

async fn sms_by_room<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    room: &RoomId,
) -> Result<Option<(Party, PhoneNumber)>> {
    let row = sqlx::query("SELECT party, phone FROM sms_conversation WHERE room_id = $1")
        .bind(room.as_str())
        .fetch_optional(exec)
        .await
        .ctx("sms by room")?;
    row.map(|r| {
        let party: String = r.try_get(0).ctx("party")?;
        let phone: String = r.try_get(1).ctx("phone")?;
        Ok((
            Party::from_key(&party).ok_or_else(|| corrupt("sms party", &party))?,
            PhoneNumber::parse(&phone).map_err(|e| corrupt("sms phone", e))?,
        ))
    })
    .transpose()
}

impl Store {
    /// The person and number a room is the SMS conversation of (outside a transaction).
    pub async fn sms_of_room(&self, room: &RoomId) -> Result<Option<(Party, PhoneNumber)>> {
        sms_by_room(&self.pool, room).await
    }

    /// The Matrix room of a conversation, if there is one.
    pub async fn sms_room(&self, party: &Party, phone: &PhoneNumber) -> Result<Option<RoomId>> {
        let row = sqlx::query("SELECT room_id FROM sms_conversation WHERE party = $1 AND phone = $2")
            .bind(party.key())
            .bind(phone.as_str())
            .fetch_optional(&self.pool)
            .await
            .ctx("sms room")?;
        let room: Option<String> = match row {
            Some(r) => r.try_get(0).ctx("room")?,
            None => None,
        };
        room.map(|r| RoomId::parse(&r).map_err(|e| corrupt("sms room", e))).transpose()
    }

    /// Remember (or with `None` forget) the Matrix room of a conversation.
    pub async fn save_sms_room(&self, party: &Party, phone: &PhoneNumber, room: Option<&RoomId>) -> Result<()> {
        sqlx::query(
            "INSERT INTO sms_conversation (party, phone, room_id, last_out_at) VALUES ($1, $2, $3, 0) \
             ON CONFLICT (party, phone) DO UPDATE SET room_id = $3",
        )
        .bind(party.key())
        .bind(phone.as_str())
        .bind(room.map(RoomId::as_str))
        .execute(&mut *self.writer().await?)
        .await
        .ctx("save sms room")?;
        Ok(())
    }

    pub async fn sent_sms(&self, reference: &str) -> Result<Option<SentSms>> {
        let row = sqlx::query(
            "SELECT reference, provider_id, phone, parts, origin, state, delivered_parts FROM sms_message WHERE reference = $1",
        )
            .bind(reference)
            .fetch_optional(&self.pool)
            .await
            .ctx("sent sms")?;
        row.as_ref().map(sent_from_row).transpose()
    }

    /// A sent SMS by our reference, or else by the gateway's id.
    pub async fn sent_sms_by_any(&self, id: &str) -> Result<Option<SentSms>> {
        if let Some(s) = self.sent_sms(id).await? {
            return Ok(Some(s));
        }
        let row = sqlx::query(
            "SELECT reference, provider_id, phone, parts, origin, state, delivered_parts FROM sms_message WHERE provider_id = $1",
        )
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ctx("sent sms")?;
        row.as_ref().map(sent_from_row).transpose()
    }

    /// An SMS is about to go to the gateway (state `sending`); kept if it is there already.
    pub async fn record_sent_sms(&self, s: &SentSms) -> Result<()> {
        let origin = s.origin.as_ref().map(serde_json::to_string).transpose().map_err(|e| corrupt("sms origin", e))?;
        sqlx::query(
            "INSERT INTO sms_message (reference, provider_id, phone, parts, origin, state, delivered_parts, sent_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (reference) DO NOTHING",
        )
        .bind(&s.reference)
        .bind(s.provider_id.as_deref())
        .bind(s.phone.as_str())
        .bind(i64::from(s.parts))
        .bind(origin)
        .bind(&s.state)
        .bind(i64::from(s.delivered_parts))
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("record sent sms")?;
        Ok(())
    }

    /// The gateway accepted the SMS. Recorded before its outbox row goes, so a retry finds it
    /// and does not send it again. A delivery report that came first keeps its state.
    pub async fn mark_sms_accepted(&self, reference: &str, provider_id: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE sms_message SET provider_id = COALESCE($2, provider_id), \
             state = CASE WHEN state = 'sending' THEN 'accepted' ELSE state END WHERE reference = $1",
        )
        .bind(reference)
        .bind(provider_id)
        .execute(&mut *self.writer().await?)
        .await
        .ctx("sms accepted")?;
        Ok(())
    }

    /// Set an SMS's state; `false` if it already had that state (a repeated report).
    pub async fn update_sms_state(&self, reference: &str, state: &str, delivered_parts: u32) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sms_message SET state = $1, delivered_parts = $2 WHERE reference = $3 \
             AND (state <> $1 OR delivered_parts <> $2)",
        )
        .bind(state)
        .bind(i64::from(delivered_parts))
        .bind(reference)
        .execute(&mut *self.writer().await?)
        .await
        .ctx("sms state")?;
        Ok(done.rows_affected() > 0)
    }
}
