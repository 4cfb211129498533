//! Ghost users the bridge has registered on the homeserver, with the display name last set.

use sqlx::Row;

use super::{Context, Result, Store, now_ms};
use crate::core::ids::MatrixUserId;

impl Store {
    /// `None` if the ghost was never registered; `Some(displayname)` otherwise.
    pub async fn ghost(&self, user: &MatrixUserId) -> Result<Option<Option<String>>> {
        let row = sqlx::query("SELECT displayname FROM ghost WHERE user_id = $1")
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await
            .ctx("ghost")?;
        row.map(|r| r.try_get::<Option<String>, _>(0).ctx("displayname")).transpose()
    }

    pub async fn save_ghost(&self, user: &MatrixUserId, displayname: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO ghost (user_id, displayname, registered_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET displayname = $2",
        )
        .bind(user.to_string())
        .bind(displayname)
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("save ghost")?;
        Ok(())
    }
}
