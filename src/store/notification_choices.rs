//! People's notification choices (migration 0022): per person and kind of notice, on or off, the
//! channel and the address. `core::notify_choice` says what they mean.

use sqlx::Row;

use super::{Context, Result, Store, StoreTx, now_ms};
use crate::core::notify_choice::{Channel, Kind, Stored};
use crate::core::watch::Party;

/// A stored row as (kind, choice); a row of a kind this version does not know (written by a
/// newer one) is skipped, an unknown channel reads as the kind's usual ones.
fn choice_of(row: &sqlx::any::AnyRow, first: usize) -> Result<Option<(Kind, Stored)>> {
    let kind: String = row.try_get(first).ctx("kind")?;
    let Some(kind) = Kind::parse(&kind) else { return Ok(None) };
    let channel: Option<String> = row.try_get(first + 2).ctx("channel")?;
    Ok(Some((
        kind,
        Stored {
            enabled: row.try_get::<i64, _>(first + 1).ctx("enabled")? != 0,
            channel: channel.as_deref().and_then(Channel::parse),
            address: row.try_get(first + 3).ctx("address")?,
        },
    )))
}

impl StoreTx {
    /// Set a person's whole choice for one kind (replacing channel and address).
    pub async fn set_notification_choice(&mut self, who: &Party, kind: Kind, choice: &Stored) -> Result<()> {
        sqlx::query(
            "INSERT INTO notification_choice (party, kind, enabled, channel, address, set_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (party, kind) DO UPDATE SET enabled = $3, channel = $4, address = $5, set_at = $6",
        )
        .bind(who.key())
        .bind(kind.name())
        .bind(i64::from(choice.enabled))
        .bind(choice.channel.map(Channel::name))
        .bind(choice.address.as_deref())
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .ctx("set notification choice")?;
        Ok(())
    }

    /// Switch a kind on or off, keeping the channel and address chosen before (`missed-calls
    /// on|off`).
    pub async fn set_notification_enabled(&mut self, who: &Party, kind: Kind, enabled: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO notification_choice (party, kind, enabled, channel, address, set_at) \
             VALUES ($1, $2, $3, NULL, NULL, $4) \
             ON CONFLICT (party, kind) DO UPDATE SET enabled = $3, set_at = $4",
        )
        .bind(who.key())
        .bind(kind.name())
        .bind(i64::from(enabled))
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .ctx("set notification on/off")?;
        Ok(())
    }
}

impl Store {
    /// A person's stored choice for one kind, if they made one.
    pub async fn notification_choice(&self, who: &Party, kind: Kind) -> Result<Option<Stored>> {
        let row = sqlx::query(
            "SELECT kind, enabled, channel, address FROM notification_choice WHERE party = $1 AND kind = $2",
        )
        .bind(who.key())
        .bind(kind.name())
        .fetch_optional(&self.pool)
        .await
        .ctx("notification choice")?;
        Ok(match row {
            Some(r) => choice_of(&r, 0)?.map(|(_, c)| c),
            None => None,
        })
    }

    /// Everything a person chose, by kind.
    pub async fn notification_choices_of(&self, who: &Party) -> Result<Vec<(Kind, Stored)>> {
        let rows = sqlx::query(
            "SELECT kind, enabled, channel, address FROM notification_choice WHERE party = $1 ORDER BY kind",
        )
        .bind(who.key())
        .fetch_all(&self.pool)
        .await
        .ctx("notification choices of")?;
        let mut out = Vec::new();
        for r in &rows {
            out.extend(choice_of(r, 0)?);
        }
        Ok(out)
    }

    /// Everyone's choice for one kind, by party key (`Party::key`), e.g. for the missed-call
    /// module's directory.
    pub async fn notification_choices(&self, kind: Kind) -> Result<Vec<(String, Stored)>> {
        let rows = sqlx::query(
            "SELECT party, kind, enabled, channel, address FROM notification_choice WHERE kind = $1 ORDER BY party",
        )
        .bind(kind.name())
        .fetch_all(&self.pool)
        .await
        .ctx("notification choices")?;
        let mut out = Vec::new();
        for r in &rows {
            let party: String = r.try_get(0).ctx("party")?;
            if let Some((_, c)) = choice_of(r, 1)? {
                out.push((party, c));
            }
        }
        Ok(out)
    }
}
