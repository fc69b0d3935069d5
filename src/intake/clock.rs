//! The request's clock as intake changes it: every status change made here goes through
//! [`Intake::set_status`], so waiting on the city stops the clock and the answer moves the due
//! date (with a timeline line), and the first human response and the resolution are counted.
//! The rules are [`crate::deadlines::Clock`]'s; this file reads and writes them.
//! Talks to: [`crate::store`], [`crate::deadlines`].

use chrono::NaiveDate;

use super::Intake;
use crate::deadlines::Clock;
use crate::domain::{RequestId, RequestStatus};
use crate::store::{IllegalTransition, Source, StoreTx};

impl Intake {
    /// [`StoreTx::set_status`], then the clock on `today` (the local date of the mail or of the
    /// command).
    pub(super) async fn set_status(
        &self,
        tx: &mut StoreTx,
        id: RequestId,
        to: RequestStatus,
        actor: &str,
        source: Source,
        today: NaiveDate,
    ) -> anyhow::Result<Result<bool, IllegalTransition>> {
        let before = tx.request_by_id(id).await?;
        let changed = tx.set_status(id, to, actor, source).await?;
        if let Ok(true) = changed {
            let old = Clock::of(&before);
            let mut clock = old.clone();
            if let Some(moved) = clock.on_status(before.status, to, today, &self.calendar) {
                tx.add_event(id, "intake311", Source::System, "due date", &moved.detail()).await?;
            }
            if clock != old {
                tx.set_clock(id, &clock.fields()).await?;
            }
        }
        Ok(changed)
    }

    /// A person sent the official a reply or the response on `today`.
    pub(super) async fn human_response(&self, tx: &mut StoreTx, id: RequestId, today: NaiveDate) -> anyhow::Result<()> {
        let row = tx.request_by_id(id).await?;
        let mut clock = Clock::of(&row);
        if clock.first_response_days.is_none() {
            clock.on_human_response(today, &self.calendar);
            tx.set_clock(id, &clock.fields()).await?;
        }
        Ok(())
    }
}
