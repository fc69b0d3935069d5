//! Mail that cannot be handled: a quarantine record with the reason (and the raw bytes when we
//! have them); oversize mail, with a polite note to a person who sent it.
//! Talks to: [`crate::store`], [`super::mailer`].

use super::mailer::{Limit, Queued, mailbox};
use super::{Intake, Outcome, Position, size_i64};
use crate::inbound::{self, Classification};
use crate::outbound::context::{TooLargeContext, human_bytes};
use crate::store::{NewMessage, StoreTx};

/// The Message-ID header of raw mail that may not parse (a plain scan of the header block).
pub(super) fn header_message_id(raw: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(super::arrival::header_block(raw));
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("message-id").then(|| value.trim().trim_matches(['<', '>']).to_string())
    })
}

impl Intake {
    /// Records a quarantine entry (and the raw bytes when we have them). The caller moves the
    /// message to the quarantine folder after this returns.
    #[allow(clippy::too_many_arguments)] // each is one field of the quarantine record
    pub async fn quarantine(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: Option<&[u8]>,
        size: usize,
        from: &str,
        subject: &str,
        reason: &str,
    ) -> anyhow::Result<Outcome> {
        let message_row = match raw {
            Some(raw) => Some(
                tx.insert_message(&NewMessage {
                    direction: "in",
                    kind: "quarantined",
                    from_addr: from,
                    subject,
                    raw: Some(raw),
                    size: size_i64(size),
                    position: Some(pos.tuple()),
                    note: reason,
                    ..Default::default()
                })
                .await?,
            ),
            None => None,
        };
        let header_id = raw.and_then(header_message_id).unwrap_or_default();
        tx.insert_quarantine(message_row, pos.tuple(), from, subject, size_i64(size), &header_id, reason).await?;
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        tracing::warn!(uid = pos.uid, reason, "message quarantined");
        Ok(Outcome::Quarantined { reason: reason.to_string() })
    }

    /// Quarantines a message over `imap.max_message_bytes` (only its header was fetched) and,
    /// when a person sent it, tells them once, politely, what the limit is.
    pub async fn quarantine_oversize(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        size: usize,
        header: &[u8],
        reason: &str,
    ) -> anyhow::Result<Outcome> {
        let parsed = inbound::parse(header).ok();
        let (from, subject) = parsed.as_ref().map(|m| (m.from.as_str(), m.subject.as_str())).unwrap_or(("", ""));
        let header_id = header_message_id(header).unwrap_or_default();
        tx.insert_quarantine(None, pos.tuple(), from, subject, size_i64(size), &header_id, reason).await?;
        let own = [self.cfg.intake.address.as_str(), self.from.email.as_ref()];
        let human = parsed.filter(|m| {
            inbound::classify::classify_raw(header, m, &own, &self.cfg.message_id_domain) == Classification::Human
        });
        if let Some((mail, to)) = human.and_then(|m| mailbox(&m.from_name, &m.from).ok().map(|to| (m, to))) {
            let ctx = TooLargeContext {
                service_name: self.cfg.intake.service_name.clone(),
                subject: if mail.subject.is_empty() { "(no subject)".into() } else { mail.subject.clone() },
                official_name: mail.from_name.clone(),
                size: human_bytes(size as u64),
                limit: human_bytes(self.cfg.imap.max_message_bytes),
                intake_address: self.cfg.intake.address.clone(),
            };
            let rendered = self.templates.render("too_large", &ctx)?;
            self.queue(tx, Queued { limit: Limit::Note, ..self.answer(&mail, "too_large", to, rendered) }).await?;
        }
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        tracing::warn!(uid = pos.uid, reason, "message quarantined");
        Ok(Outcome::Quarantined { reason: reason.to_string() })
    }
}
