//! XMPP presence subscriptions to the addresses of Matrix users under the component.

use sqlx::Row;

use super::{Context, Result, Store, StoreTx, now_ms};

impl Store {
    pub async fn add_subscription(&self, contact: &str, subscriber: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO xmpp_subscription (contact, subscriber, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(contact)
        .bind(subscriber)
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("add subscription")?;
        Ok(())
    }

    pub async fn remove_subscription(&self, contact: &str, subscriber: &str) -> Result<()> {
        sqlx::query("DELETE FROM xmpp_subscription WHERE contact = $1 AND subscriber = $2")
            .bind(contact)
            .bind(subscriber)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("remove subscription")?;
        Ok(())
    }

    pub async fn is_subscribed(&self, contact: &str, subscriber: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM xmpp_subscription WHERE contact = $1 AND subscriber = $2")
            .bind(contact)
            .bind(subscriber)
            .fetch_optional(&self.pool)
            .await
            .ctx("is subscribed")?;
        Ok(row.is_some())
    }

    /// Who is subscribed to a contact's presence.
    pub async fn subscribers(&self, contact: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT subscriber FROM xmpp_subscription WHERE contact = $1 ORDER BY subscriber")
            .bind(contact)
            .fetch_all(&self.pool)
            .await
            .ctx("subscribers")?;
        rows.iter().map(|r| r.try_get(0).ctx("subscriber")).collect()
    }

    /// All (contact, subscriber) pairs, to announce presence after a reconnect.
    pub async fn subscriptions(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT contact, subscriber FROM xmpp_subscription ORDER BY contact, subscriber")
            .fetch_all(&self.pool)
            .await
            .ctx("subscriptions")?;
        rows.iter().map(|r| Ok((r.try_get(0).ctx("contact")?, r.try_get(1).ctx("subscriber")?))).collect()
    }
}

impl Store {
    /// How many contacts an XMPP user is subscribed to (bounded per subscriber).
    pub async fn subscription_count(&self, subscriber: &str) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM xmpp_subscription WHERE subscriber = $1")
            .bind(subscriber)
            .fetch_one(&self.pool)
            .await
            .ctx("count subscriptions")?;
        Ok(u64::try_from(row.try_get::<i64, _>(0).ctx("count")?).unwrap_or(0))
    }
}

impl StoreTx {
    pub async fn add_subscription(&mut self, contact: &str, subscriber: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO xmpp_subscription (contact, subscriber, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(contact)
        .bind(subscriber)
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .ctx("add subscription")?;
        Ok(())
    }

    /// `false` if there was no such subscription.
    pub async fn remove_subscription(&mut self, contact: &str, subscriber: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM xmpp_subscription WHERE contact = $1 AND subscriber = $2")
            .bind(contact)
            .bind(subscriber)
            .execute(&mut *self.tx)
            .await
            .ctx("remove subscription")?;
        Ok(done.rows_affected() > 0)
    }
}
