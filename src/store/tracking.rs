//! Tracking numbers: `PREFIX-YYYY-NNNN`, handed out from a per-prefix, per-year counter that
//! only increases and commits with the request.
//!
//! Owns the `tracking_counters` table. Talks to: the database through a [`StoreTx`]: on SQLite it holds
//! the counter until it commits (or a savepoint rolls it back); on PostgreSQL the counter row is
//! updated and locked at each number.

use crate::store::backend::on_tx;
use anyhow::Context as _;

use super::StoreTx;
use super::backend::Tx;
use crate::domain::TrackingNumber;

/// The last tracking number handed out for a prefix and year, held by a transaction until it
/// commits.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    prefix: String,
    year: i32,
    last: i64,
}

impl StoreTx {
    /// Hands out the next tracking number for `prefix` in `year`. The counter only increases and
    /// commits together with the request, so a number is never handed out twice; a rolled-back
    /// transaction (or savepoint) takes its unused numbers back with it. The counter is read at
    /// the first number of a transaction and written once at commit: the transaction holds the
    /// write lock, so no one else can hand out a number in between.
    ///
    /// On PostgreSQL, where several daemons write at once, each number is taken from the
    /// counter row itself, which stays locked by this transaction until it commits or rolls
    /// back: two daemons never hand out the same number.
    pub async fn next_tracking_number(&mut self, prefix: &str, year: i32) -> anyhow::Result<TrackingNumber> {
        if let Tx::Postgres(t) = &mut self.tx {
            let last: i64 = sqlx::query_scalar(
                "INSERT INTO tracking_counters (prefix, year, last_seq) VALUES ($1, $2, 1) \
                 ON CONFLICT (prefix, year) DO UPDATE SET last_seq = tracking_counters.last_seq + 1 RETURNING last_seq",
            )
            .bind(prefix)
            .bind(i64::from(year))
            .fetch_one(&mut **t)
            .await
            .context("taking a tracking number")?;
            return Ok(TrackingNumber::new(prefix, year, last));
        }
        match &mut self.tracking {
            Some(c) if c.prefix == prefix && c.year == year => c.last += 1,
            held => {
                // Another prefix or year (a batch across New Year): the old one is written now.
                if let Some(old) = held.take()
                    && let Err(e) = self.write_counter(&old).await
                {
                    self.tracking = Some(old);
                    return Err(e);
                }
                let last: Option<i64> =
                    on_tx!(self.tx, db => sqlx::query_scalar("SELECT last_seq FROM tracking_counters WHERE prefix = $1 AND year = $2")
                        .bind(prefix)
                        .bind(year)
                        .fetch_optional(db)
                        .await)
                        .context("reading the tracking counter")?;
                self.tracking = Some(Counter { prefix: prefix.to_string(), year, last: last.unwrap_or(0) + 1 });
            }
        }
        let c = self.tracking.as_ref().context("tracking counter")?;
        Ok(TrackingNumber::new(prefix, year, c.last))
    }

    pub(crate) async fn write_counter(&mut self, c: &Counter) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query(
            "INSERT INTO tracking_counters (prefix, year, last_seq) VALUES ($1, $2, $3) \
             ON CONFLICT (prefix, year) DO UPDATE SET last_seq = excluded.last_seq",
        )
        .bind(&c.prefix)
        .bind(c.year)
        .bind(c.last)
        .execute(db)
        .await.map(|r| r.rows_affected()))
        .context("recording the tracking counter")?;
        Ok(())
    }
}
