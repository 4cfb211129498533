//! People's own contact groups (migration 0017, `groups mine`): each belongs to its owner, who
//! alone sees and uses it. Changed only by user commands, which run inside a transaction.

use super::command_data::{groups_of_rows, members_of_rows};
use super::{Context, Result, StoreTx, now_ms};
use crate::core::watch::Party;

impl StoreTx {
    /// Create `owner`'s group; `false` if they have one with that name.
    pub async fn create_own_group(&mut self, owner: &Party, name: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO own_group (owner, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (owner, name) DO NOTHING",
        )
        .bind(owner.key())
        .bind(name)
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .ctx("create own group")?;
        Ok(done.rows_affected() > 0)
    }

    /// Delete `owner`'s group and its members; `false` if there was none.
    pub async fn delete_own_group(&mut self, owner: &Party, name: &str) -> Result<bool> {
        sqlx::query("DELETE FROM own_group_member WHERE owner = $1 AND group_name = $2")
            .bind(owner.key())
            .bind(name)
            .execute(&mut *self.tx)
            .await
            .ctx("delete own group members")?;
        let done = sqlx::query("DELETE FROM own_group WHERE owner = $1 AND name = $2")
            .bind(owner.key())
            .bind(name)
            .execute(&mut *self.tx)
            .await
            .ctx("delete own group")?;
        Ok(done.rows_affected() > 0)
    }

    /// Add a member to `owner`'s group; `false` if they were one already.
    pub async fn add_own_group_member(&mut self, owner: &Party, name: &str, who: &Party) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO own_group_member (owner, group_name, party, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (owner, group_name, party) DO NOTHING",
        )
        .bind(owner.key())
        .bind(name)
        .bind(who.key())
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .ctx("add own group member")?;
        Ok(done.rows_affected() > 0)
    }

    /// Remove a member from `owner`'s group; `false` if they were none.
    pub async fn remove_own_group_member(&mut self, owner: &Party, name: &str, who: &Party) -> Result<bool> {
        let done = sqlx::query("DELETE FROM own_group_member WHERE owner = $1 AND group_name = $2 AND party = $3")
            .bind(owner.key())
            .bind(name)
            .bind(who.key())
            .execute(&mut *self.tx)
            .await
            .ctx("remove own group member")?;
        Ok(done.rows_affected() > 0)
    }

    /// `owner`'s groups with their members (in the order they were added), by name.
    pub async fn own_groups(&mut self, owner: &Party) -> Result<Vec<(String, Vec<Party>)>> {
        let rows = sqlx::query(
            "SELECT g.name, m.party FROM own_group g LEFT JOIN own_group_member m \
             ON m.owner = g.owner AND m.group_name = g.name WHERE g.owner = $1 ORDER BY g.name, m.added_at, m.party",
        )
        .bind(owner.key())
        .fetch_all(&mut *self.tx)
        .await
        .ctx("own groups")?;
        groups_of_rows(rows)
    }

    /// The members of `owner`'s group; `None` if they have no such group.
    pub async fn own_group_members(&mut self, owner: &Party, name: &str) -> Result<Option<Vec<Party>>> {
        let rows = sqlx::query(
            "SELECT m.party FROM own_group g LEFT JOIN own_group_member m ON m.owner = g.owner AND m.group_name = g.name \
             WHERE g.owner = $1 AND g.name = $2 ORDER BY m.added_at, m.party",
        )
        .bind(owner.key())
        .bind(name)
        .fetch_all(&mut *self.tx)
        .await
        .ctx("own group members")?;
        members_of_rows(rows)
    }
}
