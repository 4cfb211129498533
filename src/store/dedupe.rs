//! Inbound de-duplication: appservice transactions by `txnId`, stanzas by (sender, id).

use super::batch::{Arg, Stmt};
use super::{Context, Result, StoreTx, now_ms};

impl StoreTx {
    /// Record an appservice transaction. `false` if it was recorded before (a retry of a
    /// transaction already processed), in which case its events must not be handled again.
    pub async fn claim_transaction(&mut self, txn_id: &str) -> Result<bool> {
        let done =
            sqlx::query("INSERT INTO appservice_txn (txn_id, received_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(txn_id)
                .bind(now_ms())
                .execute(&mut *self.tx)
                .await
                .ctx("record transaction")?;
        Ok(done.rows_affected() == 1)
    }

    /// Record a stanza id from a sender. `false` if the same sender used the id before.
    pub async fn claim_stanza(&mut self, sender: &str, stanza_id: &str) -> Result<bool> {
        let claimed = self.batch(vec![claim_stanza_stmt(sender, stanza_id, now_ms())]).await?;
        Ok(claimed.first().is_some_and(|o| !o.rows.is_empty()))
    }
}

/// Record a stanza id from a sender: a row comes back unless the sender used the id before.
pub(super) fn claim_stanza_stmt(sender: &str, stanza_id: &str, now: i64) -> Stmt {
    Stmt {
        sql: "INSERT INTO inbound_stanza (sender, stanza_id, received_at) VALUES ($1, $2, $3) \
              ON CONFLICT DO NOTHING RETURNING 1"
            .into(),
        args: vec![Arg::Text(sender.to_owned()), Arg::Text(stanza_id.to_owned()), Arg::Int(now)],
    }
}

impl super::Store {
    /// Forget de-duplication records older than `before_ms`: the homeserver retries a
    /// transaction only while it is queued, and clients resend a stanza within minutes.
    pub async fn prune_dedupe(&self, before_ms: i64) -> Result<u64> {
        let txns = sqlx::query("DELETE FROM appservice_txn WHERE received_at < $1")
            .bind(before_ms)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("prune transactions")?;
        let stanzas = sqlx::query("DELETE FROM inbound_stanza WHERE received_at < $1")
            .bind(before_ms)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("prune stanza ids")?;
        Ok(txns.rows_affected() + stanzas.rows_affected())
    }
}
