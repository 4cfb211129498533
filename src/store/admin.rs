//! Permissions admins grant, the audit log of admin commands, and counts for `status`.

use sqlx::Row;

use super::{Context, Result, Store, StoreError, StoreTx, now_ms};
use crate::core::watch::Party;

impl Store {
    pub async fn grant(&self, who: &Party, permission: &str, by: &Party) -> Result<()> {
        sqlx::query(
            "INSERT INTO permission (party, permission, granted_by, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (party, permission) DO UPDATE SET granted_by = $3, granted_at = $4",
        )
        .bind(who.key())
        .bind(permission)
        .bind(by.key())
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("grant")?;
        Ok(())
    }

    /// `false` if there was no such grant.
    pub async fn revoke(&self, who: &Party, permission: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM permission WHERE party = $1 AND permission = $2")
            .bind(who.key())
            .bind(permission)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("revoke")?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn has_permission(&self, who: &Party, permission: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM permission WHERE party = $1 AND permission = $2")
            .bind(who.key())
            .bind(permission)
            .fetch_optional(&self.pool)
            .await
            .ctx("has permission")?;
        Ok(row.is_some())
    }

    /// Every grant: (person, permission), sorted.
    pub async fn permissions(&self) -> Result<Vec<(Party, String)>> {
        let rows = sqlx::query("SELECT party, permission FROM permission ORDER BY party, permission")
            .fetch_all(&self.pool)
            .await
            .ctx("permissions")?;
        rows.iter()
            .map(|r| {
                let p: String = r.try_get(0).ctx("party")?;
                let party = Party::from_key(&p)
                    .ok_or_else(|| StoreError::Corrupt { context: "permission", reason: p.clone() })?;
                Ok((party, r.try_get(1).ctx("permission")?))
            })
            .collect()
    }

    pub async fn audit(&self, admin: &Party, command: &str, ok: bool, result: &str) -> Result<()> {
        audit(&self.pool, admin, command, ok, result).await
    }

    /// The last `n` audit entries, newest first: (at, admin, command, ok).
    pub async fn audit_log(&self, n: i64) -> Result<Vec<(i64, String, String, bool)>> {
        let rows = sqlx::query("SELECT at, admin, command, ok FROM admin_audit ORDER BY at DESC LIMIT $1")
            .bind(n)
            .fetch_all(&self.pool)
            .await
            .ctx("audit log")?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).ctx("at")?,
                    r.try_get(1).ctx("admin")?,
                    r.try_get(2).ctx("command")?,
                    r.try_get::<i64, _>(3).ctx("ok")? != 0,
                ))
            })
            .collect()
    }

    /// How many rows a table has (for `status`); only the bridge's own table names.
    pub async fn count(&self, table: &'static str) -> Result<i64> {
        let sql = match table {
            "bridged_room" => "SELECT COUNT(*) FROM bridged_room",
            "xmpp_room" => "SELECT COUNT(*) FROM xmpp_room",
            "ghost" => "SELECT COUNT(*) FROM ghost",
            "presence_watch" => "SELECT COUNT(*) FROM presence_watch",
            "dm_portal" => "SELECT COUNT(*) FROM dm_portal",
            _ => return Err(StoreError::Corrupt { context: "count", reason: table.to_owned() }),
        };
        let row = sqlx::query(sql).fetch_one(&self.pool).await.ctx("count")?;
        row.try_get::<i64, _>(0).ctx("count")
    }

    /// Everyone with a chat with the bot (Matrix users) — for broadcasts.
    pub async fn bot_dm_users(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT matrix_user, room_id FROM bot_dm").fetch_all(&self.pool).await.ctx("bot dms")?;
        rows.iter().map(|r| Ok((r.try_get(0).ctx("matrix_user")?, r.try_get(1).ctx("room_id")?))).collect()
    }

    /// XMPP users the bridge knows (subscribers and DM partners) — for broadcasts.
    pub async fn known_xmpp_users(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT xmpp_jid FROM dm_portal UNION SELECT DISTINCT subscriber FROM xmpp_subscription ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await
        .ctx("known xmpp users")?;
        rows.iter().map(|r| r.try_get::<String, _>(0).ctx("jid")).collect()
    }

    /// The ghosts the bridge registered: (Matrix ID, display name).
    pub async fn ghosts(&self) -> Result<Vec<(String, Option<String>)>> {
        let rows = sqlx::query("SELECT user_id, displayname FROM ghost ORDER BY user_id")
            .fetch_all(&self.pool)
            .await
            .ctx("ghosts")?;
        rows.iter().map(|r| Ok((r.try_get(0).ctx("user_id")?, r.try_get(1).ctx("displayname")?))).collect()
    }

    /// The permissions one person has.
    pub async fn permissions_of(&self, who: &Party) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT permission FROM permission WHERE party = $1 ORDER BY permission")
            .bind(who.key())
            .fetch_all(&self.pool)
            .await
            .ctx("permissions of")?;
        rows.iter().map(|r| r.try_get::<String, _>(0).ctx("permission")).collect()
    }
}

impl StoreTx {
    /// `Store::audit`, inside a transaction (a refusal recorded with what caused it).
    pub async fn audit(&mut self, admin: &Party, command: &str, ok: bool, result: &str) -> Result<()> {
        audit(&mut *self.tx, admin, command, ok, result).await
    }
}

async fn audit<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    admin: &Party,
    command: &str,
    ok: bool,
    result: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO admin_audit (at, admin, command, ok, result) VALUES ($1, $2, $3, $4, $5)")
        .bind(now_ms())
        .bind(admin.key())
        .bind(command)
        .bind(i64::from(ok))
        .bind(result)
        .execute(exec)
        .await
        .ctx("audit")?;
    Ok(())
}
