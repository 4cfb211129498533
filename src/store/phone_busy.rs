//! Chat accounts shown busy because a phone call of theirs is connected (presence from the
//! phone), one row per call, with their own presence to show again when the last call ends.

use sqlx::Row;

use super::presence::{parse_state, state_name};
use super::{Context, Result, Store, now_ms};
use crate::core::presence::Presence;
use crate::core::watch::Party;

/// One connected call that shows `party` busy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneBusy {
    pub party: Party,
    pub call_id: String,
    /// The note shown with the busy state.
    pub note: String,
    /// Their own presence as last known (`None`: unknown).
    pub own: Option<Presence>,
}

impl Store {
    /// Record that `b.party` is in call `b.call_id` (again: the row is kept, its note updated).
    pub async fn add_phone_busy(&self, b: &PhoneBusy) -> Result<()> {
        sqlx::query(
            "INSERT INTO phone_busy (party, call_id, note, own_state, own_note, since) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (party, call_id) DO UPDATE SET note = $3",
        )
        .bind(b.party.key())
        .bind(&b.call_id)
        .bind(&b.note)
        .bind(b.own.as_ref().map(|p| state_name(p.state)))
        .bind(b.own.as_ref().and_then(|p| p.note.clone()))
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("add phone busy")?;
        Ok(())
    }

    /// The call no longer occupies `party`. `false` if there was no such row.
    pub async fn remove_phone_busy(&self, party: &Party, call_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM phone_busy WHERE party = $1 AND call_id = $2")
            .bind(party.key())
            .bind(call_id)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("remove phone busy")?;
        Ok(done.rows_affected() > 0)
    }

    /// `party` changed their own presence while on the phone: what to show after the call.
    pub async fn set_phone_busy_own(&self, party: &Party, own: &Presence) -> Result<()> {
        sqlx::query("UPDATE phone_busy SET own_state = $2, own_note = $3 WHERE party = $1")
            .bind(party.key())
            .bind(state_name(own.state))
            .bind(own.note.as_deref())
            .execute(&mut *self.writer().await?)
            .await
            .ctx("set phone busy own presence")?;
        Ok(())
    }

    /// Every stored row (read at start); rows whose party no longer reads are skipped.
    pub async fn phone_busy(&self) -> Result<Vec<PhoneBusy>> {
        let rows =
            sqlx::query("SELECT party, call_id, note, own_state, own_note FROM phone_busy ORDER BY since, party")
                .fetch_all(&self.pool)
                .await
                .ctx("phone busy")?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let party: String = row.try_get(0).ctx("party")?;
            let Some(party) = Party::from_key(&party) else { continue };
            let own_state: Option<String> = row.try_get(3).ctx("own_state")?;
            let own = own_state
                .as_deref()
                .and_then(parse_state)
                .map(|state| Presence { state, note: row.try_get::<Option<String>, _>(4).ok().flatten() });
            out.push(PhoneBusy {
                party,
                call_id: row.try_get(1).ctx("call_id")?,
                note: row.try_get(2).ctx("note")?,
                own,
            });
        }
        Ok(out)
    }
}
