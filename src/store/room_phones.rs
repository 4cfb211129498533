//! Phone numbers in hosted rooms (migration 0026): who added each (their SMS budget pays for
//! the room's SMS to it) and when the room last sent to it (incoming SMS routing).

use sqlx::Row;

use super::{Context, Result, StoreError, StoreTx, now_ms};
use crate::core::ids::{PhoneNumber, RoomId};
use crate::core::watch::Party;

fn corrupt(context: &'static str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt { context, reason: reason.to_string() }
}

impl StoreTx {
    /// `member` (the number's ghost) was added to `room` by `by`; a number added again is
    /// billed to whoever added it last.
    pub async fn add_room_phone(
        &mut self,
        room: &RoomId,
        member: &Party,
        phone: &PhoneNumber,
        by: &Party,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO room_phone (room_id, party, phone, added_by, added_at, last_out_at) \
             VALUES ($1, $2, $3, $4, $5, 0) \
             ON CONFLICT (room_id, party) DO UPDATE SET added_by = $4, added_at = $5",
        )
        .bind(room.as_str())
        .bind(member.key())
        .bind(phone.as_str())
        .bind(by.key())
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .ctx("add room phone")?;
        Ok(())
    }

    /// Who added the number `member` stands for to `room` (`None`: it is not there).
    pub async fn room_phone_adder(&mut self, room: &RoomId, member: &Party) -> Result<Option<Party>> {
        let row = sqlx::query("SELECT added_by FROM room_phone WHERE room_id = $1 AND party = $2")
            .bind(room.as_str())
            .bind(member.key())
            .fetch_optional(&mut *self.tx)
            .await
            .ctx("room phone adder")?;
        row.map(|r| {
            let p: String = r.try_get(0).ctx("added by")?;
            Party::from_key(&p).ok_or_else(|| corrupt("room phone adder", p))
        })
        .transpose()
    }

    /// The room sent to the number now.
    pub async fn touch_room_phone(&mut self, room: &RoomId, member: &Party) -> Result<()> {
        sqlx::query("UPDATE room_phone SET last_out_at = $3 WHERE room_id = $1 AND party = $2")
            .bind(room.as_str())
            .bind(member.key())
            .bind(now_ms())
            .execute(&mut *self.tx)
            .await
            .ctx("touch room phone")?;
        Ok(())
    }

    /// The room that last sent to `phone` (and when; 0: never, only added), among the rooms
    /// it is still a member of.
    pub async fn last_phone_room(&mut self, phone: &PhoneNumber) -> Result<Option<(RoomId, i64)>> {
        let row = sqlx::query(
            "SELECT p.room_id, p.last_out_at FROM room_phone p \
             JOIN room_member m ON m.room_id = p.room_id AND m.party = p.party \
             WHERE p.phone = $1 ORDER BY p.last_out_at DESC, p.added_at DESC LIMIT 1",
        )
        .bind(phone.as_str())
        .fetch_optional(&mut *self.tx)
        .await
        .ctx("last phone room")?;
        row.map(|r| {
            let room: String = r.try_get(0).ctx("room")?;
            let at: i64 = r.try_get(1).ctx("last out at")?;
            Ok((RoomId::parse(&room).map_err(|e| corrupt("room phone room", e))?, at))
        })
        .transpose()
    }
}
