//! What admin and user commands store (migration 0010): contact groups, the missed-call block
//! list and setting overrides, people's own settings, and imported contact files.

use sqlx::Row;

use super::{Context, Result, Store, StoreError, StoreTx, now_ms};
use crate::core::watch::Party;

/// One entry of the stored block list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    /// `number` (a caller) or `extension` (a phone that is never told).
    pub kind: String,
    pub entry: String,
    pub added_by: String,
}

/// A stored contact file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactImport {
    pub name: String,
    /// `vcard` or `csv`.
    pub format: String,
    pub content: String,
    pub contacts: i64,
}

/// Rows of (group name, member or NULL), ordered by name, as groups with their members in order
/// (a group without members has a NULL member row from the LEFT JOIN).
pub(super) fn groups_of_rows(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<(String, Vec<Party>)>> {
    let mut out: Vec<(String, Vec<Party>)> = Vec::new();
    for r in rows {
        let name: String = r.try_get(0).ctx("name")?;
        let member: Option<String> = r.try_get(1).ctx("party")?;
        if out.last().is_none_or(|(n, _)| *n != name) {
            out.push((name, Vec::new()));
        }
        if let (Some(m), Some((_, members))) = (member, out.last_mut()) {
            members.push(party(m)?);
        }
    }
    Ok(out)
}

/// Rows of one group's members (a NULL member row for a group without members); `None` when
/// there are no rows, i.e. no such group.
pub(super) fn members_of_rows(rows: Vec<sqlx::any::AnyRow>) -> Result<Option<Vec<Party>>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let mut members = Vec::with_capacity(rows.len());
    for r in rows {
        let member: Option<String> = r.try_get(0).ctx("party")?;
        if let Some(m) = member {
            members.push(party(m)?);
        }
    }
    Ok(Some(members))
}

pub(super) fn party(s: String) -> Result<Party> {
    Party::from_key(&s).ok_or(StoreError::Corrupt { context: "party", reason: s })
}

impl Store {
    /// Create a group; `false` if one with that name exists.
    pub async fn create_group(&self, name: &str, by: &Party) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO contact_group (name, created_by, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(by.key())
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("create group")?;
        Ok(done.rows_affected() > 0)
    }

    /// Delete a group and its members; `false` if there was none.
    pub async fn delete_group(&self, name: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await.ctx("begin")?;
        sqlx::query("DELETE FROM contact_group_member WHERE group_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .ctx("delete group members")?;
        let done = sqlx::query("DELETE FROM contact_group WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .ctx("delete group")?;
        tx.commit().await.ctx("commit")?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn group_exists(&self, name: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM contact_group WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .ctx("group exists")?;
        Ok(row.is_some())
    }

    /// Add a member; `false` if they were one already.
    pub async fn add_group_member(&self, name: &str, who: &Party) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO contact_group_member (group_name, party, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT (group_name, party) DO NOTHING",
        )
        .bind(name)
        .bind(who.key())
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("add group member")?;
        Ok(done.rows_affected() > 0)
    }

    /// Remove a member; `false` if they were none.
    pub async fn remove_group_member(&self, name: &str, who: &Party) -> Result<bool> {
        let done = sqlx::query("DELETE FROM contact_group_member WHERE group_name = $1 AND party = $2")
            .bind(name)
            .bind(who.key())
            .execute(&mut *self.writer().await?)
            .await
            .ctx("remove group member")?;
        Ok(done.rows_affected() > 0)
    }

    /// Every group with its members (in the order they were added), by name.
    pub async fn groups(&self) -> Result<Vec<(String, Vec<Party>)>> {
        let rows = sqlx::query(
            "SELECT g.name, m.party FROM contact_group g LEFT JOIN contact_group_member m ON m.group_name = g.name \
             ORDER BY g.name, m.added_at, m.party",
        )
        .fetch_all(&self.pool)
        .await
        .ctx("groups")?;
        groups_of_rows(rows)
    }

    /// The members of one group; `None` if there is no such group.
    pub async fn group_members(&self, name: &str) -> Result<Option<Vec<Party>>> {
        group_members(&self.pool, name).await
    }

    /// Add to the block list; `false` if the entry was on it.
    pub async fn block(&self, kind: &str, entry: &str, by: &Party) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO call_block (kind, entry, added_by, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, entry) DO NOTHING",
        )
        .bind(kind)
        .bind(entry)
        .bind(by.key())
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("block")?;
        Ok(done.rows_affected() > 0)
    }

    /// Take off the block list; `false` if the entry was not on it.
    pub async fn unblock(&self, kind: &str, entry: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM call_block WHERE kind = $1 AND entry = $2")
            .bind(kind)
            .bind(entry)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("unblock")?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn block_list(&self) -> Result<Vec<BlockEntry>> {
        let rows = sqlx::query("SELECT kind, entry, added_by FROM call_block ORDER BY kind DESC, added_at, entry")
            .fetch_all(&self.pool)
            .await
            .ctx("block list")?;
        rows.iter()
            .map(|r| {
                Ok(BlockEntry {
                    kind: r.try_get(0).ctx("kind")?,
                    entry: r.try_get(1).ctx("entry")?,
                    added_by: r.try_get(2).ctx("added_by")?,
                })
            })
            .collect()
    }

    /// Set (or with `None` remove) a missed-call setting override.
    pub async fn set_call_setting(&self, name: &str, value: Option<&str>, by: &Party) -> Result<()> {
        match value {
            Some(value) => sqlx::query(
                "INSERT INTO call_setting (name, value, set_by, set_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO UPDATE SET value = $2, set_by = $3, set_at = $4",
            )
            .bind(name)
            .bind(value)
            .bind(by.key())
            .bind(now_ms())
            .execute(&mut *self.writer().await?)
            .await
            .ctx("set call setting")?,
            None => sqlx::query("DELETE FROM call_setting WHERE name = $1")
                .bind(name)
                .execute(&mut *self.writer().await?)
                .await
                .ctx("reset call setting")?,
        };
        Ok(())
    }

    /// Every override: (name, value), by name.
    pub async fn call_settings(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT name, value FROM call_setting ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .ctx("call settings")?;
        rows.iter().map(|r| Ok((r.try_get(0).ctx("name")?, r.try_get(1).ctx("value")?))).collect()
    }

    /// Set (or with `None` remove) one of a person's own settings.
    pub async fn set_user_setting(&self, who: &Party, name: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(value) => sqlx::query(
                "INSERT INTO user_setting (party, name, value, set_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (party, name) DO UPDATE SET value = $3, set_at = $4",
            )
            .bind(who.key())
            .bind(name)
            .bind(value)
            .bind(now_ms())
            .execute(&mut *self.writer().await?)
            .await
            .ctx("set user setting")?,
            None => sqlx::query("DELETE FROM user_setting WHERE party = $1 AND name = $2")
                .bind(who.key())
                .bind(name)
                .execute(&mut *self.writer().await?)
                .await
                .ctx("reset user setting")?,
        };
        Ok(())
    }

    /// Everyone's settings: (party key, name, value).
    /// One of a person's settings, if they set it.
    pub async fn user_setting(&self, who: &Party, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM user_setting WHERE party = $1 AND name = $2")
            .bind(who.key())
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .ctx("user setting")?;
        row.map(|r| r.try_get(0).ctx("user setting value")).transpose()
    }

    pub async fn user_settings(&self) -> Result<Vec<(String, String, String)>> {
        let rows = sqlx::query("SELECT party, name, value FROM user_setting ORDER BY party, name")
            .fetch_all(&self.pool)
            .await
            .ctx("user settings")?;
        rows.iter()
            .map(|r| Ok((r.try_get(0).ctx("party")?, r.try_get(1).ctx("name")?, r.try_get(2).ctx("value")?)))
            .collect()
    }

    /// Store an imported contact file, replacing an earlier one of the same name.
    pub async fn save_contact_import(&self, import: &ContactImport, by: &Party) -> Result<()> {
        sqlx::query(
            "INSERT INTO contact_import (name, format, content, contacts, imported_by, imported_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE \
             SET format = $2, content = $3, contacts = $4, imported_by = $5, imported_at = $6",
        )
        .bind(&import.name)
        .bind(&import.format)
        .bind(&import.content)
        .bind(import.contacts)
        .bind(by.key())
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("save contact import")?;
        Ok(())
    }

    /// The stored contact files, oldest first.
    pub async fn contact_imports(&self) -> Result<Vec<ContactImport>> {
        let rows = sqlx::query("SELECT name, format, content, contacts FROM contact_import ORDER BY imported_at, name")
            .fetch_all(&self.pool)
            .await
            .ctx("contact imports")?;
        rows.iter()
            .map(|r| {
                Ok(ContactImport {
                    name: r.try_get(0).ctx("name")?,
                    format: r.try_get(1).ctx("format")?,
                    content: r.try_get(2).ctx("content")?,
                    contacts: r.try_get(3).ctx("contacts")?,
                })
            })
            .collect()
    }
}

impl StoreTx {
    /// Set (or with `None` remove) one of a person's own settings, inside a transaction.
    pub async fn set_user_setting(&mut self, who: &Party, name: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(value) => sqlx::query(
                "INSERT INTO user_setting (party, name, value, set_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (party, name) DO UPDATE SET value = $3, set_at = $4",
            )
            .bind(who.key())
            .bind(name)
            .bind(value)
            .bind(now_ms())
            .execute(&mut *self.tx)
            .await
            .ctx("set user setting")?,
            None => sqlx::query("DELETE FROM user_setting WHERE party = $1 AND name = $2")
                .bind(who.key())
                .bind(name)
                .execute(&mut *self.tx)
                .await
                .ctx("reset user setting")?,
        };
        Ok(())
    }

    /// The members of one group, inside a transaction; `None` if there is no such group.
    pub async fn group_members(&mut self, name: &str) -> Result<Option<Vec<Party>>> {
        group_members(&mut *self.tx, name).await
    }
}

/// One query: a group without members is one row with a NULL party, no row is no group.
async fn group_members<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    name: &str,
) -> Result<Option<Vec<Party>>> {
    let rows = sqlx::query(
        "SELECT m.party FROM contact_group g LEFT JOIN contact_group_member m ON m.group_name = g.name \
         WHERE g.name = $1 ORDER BY m.added_at, m.party",
    )
    .bind(name)
    .fetch_all(exec)
    .await
    .ctx("group members")?;
    members_of_rows(rows)
}
