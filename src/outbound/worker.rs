//! The outbox worker: sends due rows through a pooled lettre SMTP transport, marks each row sent,
//! or records the error and the next attempt (exponential backoff with jitter). Nothing is
//! dropped: a row leaves `pending` only as `sent`, or as `failed` after the server refused it
//! permanently (5xx) several times, with the error kept on the row.
//!
//! Rows of one request go out in order: when one fails, the later rows of that request wait.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use rand::Rng as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::config::{Config, TlsMode};
use crate::store::{OutboxRow, Store, now_ms};

/// The SMTP transport type we use everywhere.
pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// After this many permanent (5xx) refusals a row is marked failed instead of retried.
pub const MAX_PERMANENT_ATTEMPTS: i64 = 5;

/// Builds the pooled transport from `[smtp]`.
pub fn build_transport(cfg: &Config) -> anyhow::Result<Transport> {
    let smtp = &cfg.smtp;
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .timeout(Some(smtp.timeout))
        .pool_config(PoolConfig::new().max_size(smtp.pool_size).idle_timeout(Duration::from_secs(60)));
    if smtp.tls != TlsMode::None {
        let mut params = TlsParameters::builder(smtp.host.clone());
        if let Some(ca) = &smtp.ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("smtp.ca_file {}", ca.display()))?;
            let cert = Certificate::from_pem(&pem).with_context(|| format!("smtp.ca_file {}", ca.display()))?;
            params = params.add_root_certificate(cert);
        }
        let params = params.build_rustls().context("smtp TLS parameters")?;
        builder = builder.tls(match smtp.tls {
            TlsMode::Implicit => Tls::Wrapper(params),
            _ => Tls::Required(params),
        });
    }
    if !smtp.user.is_empty() {
        builder = builder.credentials(Credentials::new(smtp.user.clone(), cfg.smtp_password.expose().to_string()));
    }
    if !smtp.helo_name.is_empty() {
        builder = builder.hello_name(ClientId::Domain(smtp.helo_name.clone()));
    }
    Ok(builder.build())
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassOutcome {
    pub sent: usize,
    pub failed: usize,
}

/// Delay before attempt `attempts + 1`: base·2^attempts, capped, ±20 % jitter.
pub fn backoff(base: Duration, max: Duration, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
    let raw = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    let jitter = rand::rng().random_range(0.8..1.2);
    raw.mul_f64(jitter)
}

/// The error with its whole source chain (lettre hides the OS error in `source()`).
pub fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

async fn send_row(store: &Store, transport: &Transport, cfg: &Config, row: &OutboxRow) -> anyhow::Result<bool> {
    let span = tracing::info_span!("outbox", id = row.id, kind = %row.kind, message_id = %row.message_id);
    send_row_inner(store, transport, cfg, row).instrument(span).await
}

async fn send_row_inner(store: &Store, transport: &Transport, cfg: &Config, row: &OutboxRow) -> anyhow::Result<bool> {
    let from = row.envelope_from.parse().with_context(|| format!("envelope from {}", row.envelope_from))?;
    let to = row
        .recipients
        .iter()
        .map(|r| r.parse().with_context(|| format!("recipient {r}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let envelope = Envelope::new(Some(from), to).context("building the SMTP envelope")?;
    match transport.send_raw(&envelope, &row.raw).await {
        Ok(_) => {
            store.mark_sent(row.id).await?;
            tracing::info!(attempts = row.attempts + 1, "sent");
            Ok(true)
        }
        Err(e) => {
            let text = describe(&e);
            let permanent = e.is_permanent() && row.attempts + 1 >= MAX_PERMANENT_ATTEMPTS;
            let delay = backoff(cfg.outbox.retry_base, cfg.outbox.retry_max, row.attempts);
            let next = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
            store.mark_attempt_failed(row.id, &text, next, permanent).await?;
            if permanent {
                tracing::error!(error = %text, "refused permanently; row marked failed");
            } else {
                tracing::warn!(error = %text, retry_in = ?delay, "send failed; will retry");
            }
            Ok(false)
        }
    }
}

/// Sends every claimable due row once.
pub async fn send_once(store: &Store, transport: &Transport, cfg: &Config) -> anyhow::Result<PassOutcome> {
    // A pass claims only what the pool sends at once (two rounds), so the lease can be short:
    // a crashed worker's rows are free again after it, and are resent with the same Message-ID.
    let claim = cfg.outbox.batch.min(cfg.smtp.pool_size.saturating_mul(2)).max(1);
    let lease = cfg.smtp.timeout.saturating_mul(3) + Duration::from_secs(5);
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 4);
    let rows = store.claim_due_outbox(now_ms(), i64::from(claim), lease_ms).await?;
    if rows.is_empty() {
        return Ok(PassOutcome::default());
    }
    // One row per request at most (see `claim_due_outbox`), so rows can go out in parallel.
    let results = futures::stream::iter(rows)
        .map(|row| async move { send_row(store, transport, cfg, &row).await })
        .buffer_unordered(cfg.smtp.pool_size as usize)
        .collect::<Vec<_>>()
        .await;
    let mut total = PassOutcome::default();
    for r in results {
        if r? {
            total.sent += 1;
        } else {
            total.failed += 1;
        }
    }
    Ok(total)
}

/// The worker loop: send what is due, then sleep until the next row falls due, a wake-up from
/// the poller, or shutdown. A pass in flight is never interrupted.
pub async fn run(
    store: Store,
    transport: Arc<Transport>,
    cfg: Arc<Config>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut error_backoff = Duration::from_secs(1);
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let pass = send_once(&store, &transport, &cfg).await;
        let sleep_for = match pass {
            Ok(outcome) => {
                error_backoff = Duration::from_secs(1);
                if outcome.sent > 0 || outcome.failed > 0 {
                    tracing::debug!(sent = outcome.sent, failed = outcome.failed, "outbox pass");
                }
                if outcome.sent > 0 {
                    Duration::ZERO
                } else {
                    match store.next_outbox_due().await {
                        Ok(Some(due)) => {
                            let ms = u64::try_from((due - now_ms()).max(0)).unwrap_or(0);
                            Duration::from_millis(ms).min(cfg.outbox.idle_interval)
                        }
                        _ => cfg.outbox.idle_interval,
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "outbox pass failed");
                error_backoff = (error_backoff * 2).min(Duration::from_secs(60));
                error_backoff
            }
        };
        if sleep_for.is_zero() {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = wake.notified() => {},
            _ = tokio::time::sleep(sleep_for) => {},
        }
    }
    tracing::info!("outbox worker stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(300);
        for attempts in 0..3 {
            let d = backoff(base, max, attempts);
            let nominal = 10.0 * 2f64.powi(i32::try_from(attempts).unwrap_or(0));
            assert!(d.as_secs_f64() >= nominal * 0.8 && d.as_secs_f64() <= nominal * 1.2, "{attempts}: {d:?}");
        }
        assert!(backoff(base, max, 40) <= Duration::from_secs(360));
    }
}
