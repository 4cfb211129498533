//! Consent to presence: who may see a Matrix user's presence (a conversation, or the Matrix
//! user's answer to a request), and which XMPP users share theirs with a Matrix user.

use sqlx::Row;

use super::{Context, Result, Store, StoreTx, now_ms};
use crate::core::ids::{BareJid, MatrixUserId};
use crate::core::presence::Consent;
use crate::core::watch::Party;

/// A conversation between the two: a DM counts once the Matrix user joined it (an XMPP user's
/// first message only invites them); a hosted room once both joined it. `$1` the JID, `$2` the
/// Matrix user, `$3`/`$4` their party keys.
macro_rules! conversation {
    () => {
        "EXISTS (SELECT 1 FROM dm_portal WHERE xmpp_jid = $1 AND matrix_user = $2 AND peer_membership = 'join') \
         OR EXISTS (SELECT 1 FROM room_member a JOIN room_member b ON a.room_id = b.room_id \
                    WHERE a.party = $3 AND b.party = $4 AND a.state = 'join' AND b.state = 'join')"
    };
}

/// A conversation, or the Matrix user's approval.
const RELATED: &str = concat!(
    "SELECT 1 WHERE ",
    conversation!(),
    " OR EXISTS (SELECT 1 FROM presence_consent WHERE xmpp_jid = $1 AND matrix_user = $2 AND state = 'approved')"
);

/// Only a conversation.
const CONVERSATION: &str = concat!("SELECT 1 WHERE ", conversation!());

impl Store {
    /// May `jid` see `user`'s presence: do they have a conversation, or did `user` approve?
    pub async fn presence_allowed(&self, user: &MatrixUserId, jid: &BareJid) -> Result<bool> {
        self.related(RELATED, user, jid).await
    }

    /// Do the two have a conversation (a joined DM or a hosted room both joined)?
    pub async fn in_conversation(&self, user: &MatrixUserId, jid: &BareJid) -> Result<bool> {
        self.related(CONVERSATION, user, jid).await
    }

    async fn related(&self, sql: &'static str, user: &MatrixUserId, jid: &BareJid) -> Result<bool> {
        let row = sqlx::query(sql)
            .bind(jid.to_string())
            .bind(user.to_string())
            .bind(Party::Matrix(user.clone()).key())
            .bind(Party::Xmpp(jid.clone()).key())
            .fetch_optional(&self.pool)
            .await
            .ctx("presence relation")?;
        Ok(row.is_some())
    }

    /// The Matrix user's answer to `jid`, if `jid` ever asked (or was answered unasked).
    pub async fn consent(&self, user: &MatrixUserId, jid: &BareJid) -> Result<Option<Consent>> {
        consent(&self.pool, user, jid).await
    }

    /// Open requests: of one Matrix user, and from one XMPP domain.
    pub async fn open_consent_requests(&self, user: &MatrixUserId, domain: &str) -> Result<(u64, u64)> {
        let count = |sql: &'static str, key: String| async move {
            let row = sqlx::query(sql).bind(key).fetch_one(&self.pool).await.ctx("open requests")?;
            Ok::<u64, super::StoreError>(u64::try_from(row.try_get::<i64, _>(0).ctx("count")?).unwrap_or(0))
        };
        let per_user = count(
            "SELECT COUNT(*) FROM presence_consent WHERE matrix_user = $1 AND state = 'pending'",
            user.to_string(),
        )
        .await?;
        let per_domain = count(
            "SELECT COUNT(*) FROM presence_consent WHERE xmpp_domain = $1 AND state = 'pending'",
            domain.to_owned(),
        )
        .await?;
        Ok((per_user, per_domain))
    }

    /// Store a new request; `false` if `jid` had asked (or been answered) already.
    pub async fn add_consent_request(&self, user: &MatrixUserId, jid: &BareJid) -> Result<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO presence_consent (matrix_user, xmpp_jid, xmpp_domain, state, created_at, updated_at) \
             VALUES ($1, $2, $3, 'pending', $4, $4) ON CONFLICT DO NOTHING",
        )
        .bind(user.to_string())
        .bind(jid.to_string())
        .bind(jid.domain())
        .bind(now)
        .execute(&mut *self.writer().await?)
        .await
        .ctx("add consent request")?;
        Ok(done.rows_affected() > 0)
    }

    /// Drop an unanswered request (it needs no answer any more); `false` if there was none.
    pub async fn remove_consent_request(&self, user: &MatrixUserId, jid: &BareJid) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM presence_consent WHERE matrix_user = $1 AND xmpp_jid = $2 AND state = 'pending'")
                .bind(user.to_string())
                .bind(jid.to_string())
                .execute(&mut *self.writer().await?)
                .await
                .ctx("remove consent request")?;
        Ok(done.rows_affected() > 0)
    }

    /// Does `jid` share their presence with `user`'s address?
    pub async fn shares_presence(&self, jid: &BareJid, user: &MatrixUserId) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM xmpp_presence_share WHERE matrix_user = $1 AND xmpp_jid = $2")
            .bind(user.to_string())
            .bind(jid.to_string())
            .fetch_optional(&self.pool)
            .await
            .ctx("shares presence")?;
        Ok(row.is_some())
    }

    /// `jid` shares their presence with `user` (sent `subscribed`); `false` if not recorded
    /// because that domain has `cap` shares already.
    pub async fn add_presence_share(&self, jid: &BareJid, user: &MatrixUserId, cap: u64) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) FROM xmpp_presence_share WHERE xmpp_domain = $1")
            .bind(jid.domain())
            .fetch_one(&self.pool)
            .await
            .ctx("count shares")?;
        if u64::try_from(row.try_get::<i64, _>(0).ctx("count")?).unwrap_or(0) >= cap {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO xmpp_presence_share (matrix_user, xmpp_jid, xmpp_domain, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(user.to_string())
        .bind(jid.to_string())
        .bind(jid.domain())
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("add share")?;
        Ok(true)
    }

    pub async fn remove_presence_share(&self, jid: &BareJid, user: &MatrixUserId) -> Result<()> {
        sqlx::query("DELETE FROM xmpp_presence_share WHERE matrix_user = $1 AND xmpp_jid = $2")
            .bind(user.to_string())
            .bind(jid.to_string())
            .execute(&mut *self.writer().await?)
            .await
            .ctx("remove share")?;
        Ok(())
    }
}

impl StoreTx {
    /// Record the Matrix user's answer; returns what it was before.
    pub async fn answer_consent(
        &mut self,
        user: &MatrixUserId,
        jid: &BareJid,
        answer: Consent,
    ) -> Result<Option<Consent>> {
        let before = consent(&mut *self.tx, user, jid).await?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO presence_consent (matrix_user, xmpp_jid, xmpp_domain, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (matrix_user, xmpp_jid) DO UPDATE SET state = $4, updated_at = $5",
        )
        .bind(user.to_string())
        .bind(jid.to_string())
        .bind(jid.domain())
        .bind(answer.as_str())
        .bind(now)
        .execute(&mut *self.tx)
        .await
        .ctx("answer consent")?;
        Ok(before)
    }

    /// Everyone who asked the Matrix user, with the answer, oldest first.
    pub async fn consents_of(&mut self, user: &MatrixUserId) -> Result<Vec<(String, Consent)>> {
        let rows = sqlx::query(
            "SELECT xmpp_jid, state FROM presence_consent WHERE matrix_user = $1 ORDER BY created_at, xmpp_jid",
        )
        .bind(user.to_string())
        .fetch_all(&mut *self.tx)
        .await
        .ctx("consents")?;
        let mut out = Vec::new();
        for r in rows {
            let jid: String = r.try_get(0).ctx("jid")?;
            if let Some(c) = Consent::parse(&r.try_get::<String, _>(1).ctx("state")?) {
                out.push((jid, c));
            }
        }
        Ok(out)
    }
}

/// The Matrix user's answer to `jid`, over any executor (the pool or a transaction).
async fn consent<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    user: &MatrixUserId,
    jid: &BareJid,
) -> Result<Option<Consent>> {
    let row = sqlx::query("SELECT state FROM presence_consent WHERE matrix_user = $1 AND xmpp_jid = $2")
        .bind(user.to_string())
        .bind(jid.to_string())
        .fetch_optional(exec)
        .await
        .ctx("consent")?;
    let Some(row) = row else { return Ok(None) };
    let state: String = row.try_get(0).ctx("consent state")?;
    Ok(Consent::parse(&state))
}
