//! The arrival time on real Dovecot: a message APPENDed with a given INTERNALDATE comes back from
//! the daemon's fetches (the batched one and the one in pieces for large mail) with that instant,
//! next to its bytes; one appended without a date gets the server's clock.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use intake311::config::Config;
use intake311::mailbox::{ImapConn, LARGE_CHUNK};
use support::mailservers::imap_login;
use support::*;

fn mail(id: &str, body: &str) -> String {
    format!(
        "From: Jane Mayor <{DAYTON}>\r\nTo: {INTAKE}\r\nSubject: Budget for {id}\r\nMessage-ID: <{id}@daytonohio.gov>\r\n\
         Date: Wed, 31 Dec 2025 20:15:00 -0600\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internaldate_comes_with_the_body() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    let cfg = Config::load(Some(&env.config_path))?;
    let late_in_chicago = mail("late", "Who plows on New Year's Eve?");
    // Over LARGE_CHUNK, so it is fetched in pieces.
    let large = mail("large", &"0123456789abcdef\r\n".repeat(LARGE_CHUNK / 18 + 1000));
    let undated = mail("undated", "No date given on APPEND.");
    {
        let mut session = imap_login(&env.servers, INTAKE).await?;
        session.append("INBOX", None, Some("\"31-Dec-2025 20:15:00 -0600\""), late_in_chicago.as_bytes()).await?;
        // A one-digit day is sent space-padded (RFC 3501 date-day-fixed).
        session.append("INBOX", None, Some("\" 2-Jan-2026 08:05:09 +0100\""), large.as_bytes()).await?;
        session.append("INBOX", None, None, undated.as_bytes()).await?;
        session.logout().await?;
    }
    let before_undated = Utc::now() - chrono::Duration::seconds(60);

    let mut conn = ImapConn::connect(&cfg.imap, &cfg.imap_password).await?;
    conn.select(&cfg.imap.inbox).await?;
    let waiting = conn.waiting().await?;
    let [late_w, large_w, undated_w] = waiting.as_slice() else { anyhow::bail!("expected 3 waiting, got {waiting:?}") };
    assert!(large_w.is_large() && !late_w.is_large());

    let small = conn.fetch_bodies(&[late_w.uid, undated_w.uid]).await?;
    let [late, undated_f] = small.as_slice() else { anyhow::bail!("expected 2 fetched, got {}", small.len()) };
    assert_eq!(late.uid, late_w.uid);
    assert_eq!(late.raw, late_in_chicago.as_bytes());
    let date = late.internal_date.context("INTERNALDATE of the late message")?;
    // The same instant; the offset is the server's own (Dovecot keeps only the instant, and
    // answers in its zone), so intake must take the calendar date in `intake.timezone`.
    assert_eq!(date, DateTime::parse_from_rfc3339("2025-12-31T20:15:00-06:00")?);
    assert_eq!(date.with_timezone(&Utc).to_rfc3339(), "2026-01-01T02:15:00+00:00", "already next year in UTC");

    let now_date = undated_f.internal_date.context("the server gives an APPEND without a date its clock")?;
    assert!(now_date.with_timezone(&Utc) >= before_undated && now_date.with_timezone(&Utc) <= Utc::now());

    let big = conn
        .fetch_large(large_w.uid, large_w.size, cfg.imap.max_message_bytes)
        .await?
        .context("the large message is there")?;
    assert_eq!(big.raw.len(), large.len());
    assert!(big.raw == large.as_bytes(), "the pieces add up to the message");
    assert_eq!(big.internal_date, Some(DateTime::parse_from_rfc3339("2026-01-02T08:05:09+01:00")?));
    conn.logout().await;
    Ok(())
}
