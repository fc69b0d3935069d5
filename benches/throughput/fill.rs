//! Phase 1, fill: the backlog of questions (and, for the memory phase, the ~20 MB ones) written
//! straight into the intake user's Maildir.

use std::time::Instant;

use anyhow::Result;
use rand::Rng;
use rand::rngs::StdRng;

use crate::BIG_ATTACHMENT_BYTES;
use crate::corpus::{self, Attachment, INTAKE, MaildirWriter, Outcome, World};
use crate::mailservers::MailServers;
use crate::report::FillFigures;

/// Writes `n` ordinary questions (a third per outcome) and `big` ~20 MB ones, spread evenly
/// among them, into the intake user's Maildir.
pub fn fill(
    servers: &MailServers,
    world: &World,
    rng: &mut StdRng,
    n: u64,
    big: u64,
    tag: &str,
) -> Result<FillFigures> {
    let t0 = Instant::now();
    let mut writer = MaildirWriter::open(&servers.maildir(INTAKE))?;
    let mut figures = FillFigures::default();
    let big_every = n.checked_div(big).map_or(u64::MAX, |e| e.max(1));
    let deliver_big = |writer: &mut MaildirWriter, rng: &mut StdRng, k: u64| -> Result<(u64, String)> {
        let from = world.pick(rng, Outcome::ALL[(k % 3) as usize]);
        let a = Attachment::random(rng, BIG_ATTACHMENT_BYTES, 1_000_000 + k);
        let q = corpus::question(rng, from, &format!("{tag}-big"), k, 2_000, Some(&a));
        writer.deliver(&q.raw)?;
        Ok((q.raw.len() as u64, q.message_id))
    };
    for i in 0..n {
        let outcome = Outcome::ALL[(i % 3) as usize];
        let from = world.pick(rng, outcome);
        let body_bytes = rng.random_range(1_000..=20_000);
        let attachment = rng.random_bool(0.10).then(|| {
            // Log-uniform from 3 KB to 200 KB.
            let size = (rng.random_range(3_000f64.ln()..200_000f64.ln())).exp() as usize;
            Attachment::random(rng, size, i)
        });
        let q = corpus::question(rng, from, tag, i, body_bytes, attachment.as_ref());
        writer.deliver(&q.raw)?;
        figures.message_ids.push(q.message_id);
        figures.with_attachment += u64::from(attachment.is_some());
        *figures.by_outcome.entry(outcome_name(outcome).into()).or_default() += 1;
        if figures.big_messages < big && i % big_every == big_every / 2 {
            let (bytes, id) = deliver_big(&mut writer, rng, figures.big_messages)?;
            figures.big_bytes += bytes;
            figures.message_ids.push(id);
            figures.big_messages += 1;
        }
    }
    while figures.big_messages < big {
        let (bytes, id) = deliver_big(&mut writer, rng, figures.big_messages)?;
        figures.big_bytes += bytes;
        figures.message_ids.push(id);
        figures.big_messages += 1;
    }
    figures.messages = writer.messages;
    figures.bytes = writer.bytes;
    figures.seconds = t0.elapsed().as_secs_f64();
    Ok(figures)
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Eligible => "eligible",
        Outcome::NotEligible => "not_eligible",
        Outcome::Unknown => "unknown",
    }
}
