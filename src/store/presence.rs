//! The last known presence of each Matrix user, to answer XMPP presence probes.

use sqlx::Row;

use super::{Context, Result, Store, StoreError, now_ms};
use crate::core::ids::MatrixUserId;
use crate::core::presence::{Presence, State};

pub(super) fn state_name(state: State) -> &'static str {
    match state {
        State::Available => "available",
        State::Away => "away",
        State::Inactive => "inactive",
        State::Busy => "busy",
        State::DoNotDisturb => "dnd",
        State::Offline => "offline",
    }
}

pub(super) fn parse_state(s: &str) -> Option<State> {
    Some(match s {
        "available" => State::Available,
        "away" => State::Away,
        "inactive" => State::Inactive,
        "busy" => State::Busy,
        "dnd" => State::DoNotDisturb,
        "offline" => State::Offline,
        _ => return None,
    })
}

impl Store {
    pub async fn save_matrix_presence(&self, user: &MatrixUserId, presence: &Presence) -> Result<()> {
        sqlx::query(
            "INSERT INTO matrix_presence (user_id, state, note, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id) DO UPDATE SET state = $2, note = $3, updated_at = $4",
        )
        .bind(user.to_string())
        .bind(state_name(presence.state))
        .bind(presence.note.as_deref())
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("save presence")?;
        Ok(())
    }

    pub async fn matrix_presence(&self, user: &MatrixUserId) -> Result<Option<Presence>> {
        let row = sqlx::query("SELECT state, note FROM matrix_presence WHERE user_id = $1")
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await
            .ctx("presence")?;
        let Some(row) = row else { return Ok(None) };
        let state: String = row.try_get(0).ctx("state")?;
        let note: Option<String> = row.try_get(1).ctx("note")?;
        let state = parse_state(&state)
            .ok_or_else(|| StoreError::Corrupt { context: "matrix_presence", reason: format!("state {state}") })?;
        Ok(Some(Presence { state, note }))
    }
}
