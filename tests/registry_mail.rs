//! The registry and sender verification on real Dovecot and Postfix: a forged From never earns
//! an eligible answer when verification is required, a verified official does, an official
//! writing from a personal address is resolved by naming their city, the review queue decides
//! the rest, and administrators change the city list by mail with a one-time confirmation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::time::Duration;

use intake311::domain::{Eligibility, RequestStatus};
use support::*;

const WAIT: Duration = Duration::from_secs(20);
const ADMIN: &str = "admin@311.test";
const MX: &str = "mx.311.test";

fn tracking(n: u32) -> String {
    use chrono::Datelike as _;
    format!("311-{}-{n:04}", chrono::Utc::now().year())
}

/// A test environment with `verification = "require"` trusting `mx.311.test`.
async fn strict_env() -> anyhow::Result<TestEnv> {
    env_with("require").await
}

async fn env_with(policy: &str) -> anyhow::Result<TestEnv> {
    let env = TestEnv::new(Security::Plain)?;
    env.servers.add_user(ADMIN)?;
    let config = std::fs::read_to_string(&env.config_path)?;
    std::fs::write(
        &env.config_path,
        config.replace(
            "[intake]\n",
            &format!("[intake]\nverification = \"{policy}\"\ntrusted_authserv_ids = [\"{MX}\"]\n"),
        ),
    )?;
    let out = env.cli(&["staff", "add", ADMIN, "--name", "Alex Admin", "--role", "admin"])?;
    anyhow::ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(env)
}

/// What the receiving server says of a personal address whose provider signs its mail.
fn gmail_pass() -> String {
    format!("{MX}; dkim=pass header.d=gmail.test; dmarc=pass header.from=gmail.test")
}

/// A question as the receiving server hands it over: its Authentication-Results on top.
fn question_with_auth(from: &str, name: &str, subject: &str, id: &str, auth: &[&str], body: &str) -> String {
    let mut h = String::new();
    for a in auth {
        h.push_str(&format!("Authentication-Results: {a}\r\n"));
    }
    h + &question(from, name, subject, body, id)
}

async fn request(env: &TestEnv, t: &str) -> anyhow::Result<intake311::store::RequestRow> {
    env.store().await?.request_by_tracking(&t.parse()?).await?.ok_or_else(|| anyhow::anyhow!("no request {t}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_senders_never_get_an_eligible_answer_and_verified_ones_do() -> anyhow::Result<()> {
    let env = strict_env().await?;
    let _daemon = env.daemon()?;

    // Forged: the trusted server says dmarc=fail; a sender-added "pass" below it is ignored.
    let forged = question_with_auth(
        DAYTON,
        "Jane Mayor",
        "Wire the grant money",
        "forged@daytonohio.gov",
        &[
            &format!("{MX}; dmarc=fail (p=reject) header.from=daytonohio.gov; spf=fail smtp.mailfrom=evil.example"),
            &format!("{MX}; dmarc=pass header.from=daytonohio.gov"),
        ],
        "Urgent.",
    );
    smtp_send(&env.servers, "attacker@evil.example", &[INTAKE], forged.as_bytes()).await?;
    let got = wait_for_messages(&env.servers, DAYTON, "INBOX", 1, WAIT).await?;
    let (subject, text) = subject_and_text(&got[0]);
    assert!(subject.starts_with(&format!("[{}]", tracking(1))), "{subject}");
    assert!(text.contains("A member of our team will look at it"), "neutral acknowledgement: {text}");
    assert!(
        !text.contains("Response by") && !text.contains("Dayton, OH"),
        "promises nothing about eligibility: {text}"
    );
    let r = request(&env, &tracking(1)).await?;
    assert_eq!((r.status, r.eligibility), (RequestStatus::New, Eligibility::Unknown));
    assert!(
        r.review_reason.contains("sender not verified") && r.review_reason.contains("dmarc=fail"),
        "{}",
        r.review_reason
    );
    assert!(imap_fetch_all(&env.servers, STAFF, "INBOX").await?.is_empty(), "no staff thread for an unverified sender");

    // Verified: the trusted server's topmost header says dmarc=pass for the From domain.
    let verified = question_with_auth(
        DAYTON,
        "Jane Mayor",
        "Pothole budgets",
        "real@daytonohio.gov",
        &[&format!(
            "{MX}; dkim=pass header.d=daytonohio.gov; spf=pass smtp.mailfrom=daytonohio.gov; dmarc=pass (p=reject) header.from=daytonohio.gov"
        )],
        "How do peers budget?",
    );
    smtp_send(&env.servers, DAYTON, &[INTAKE], verified.as_bytes()).await?;
    let got = wait_for_messages(&env.servers, DAYTON, "INBOX", 2, WAIT).await?;
    let (_, text) = subject_and_text(&got[1]);
    assert!(text.contains("Response by") && text.contains("Dayton, OH"), "eligible acknowledgement: {text}");
    let r = request(&env, &tracking(2)).await?;
    assert_eq!((r.status, r.eligibility), (RequestStatus::Acknowledged, Eligibility::Eligible));
    assert!(
        r.eligibility_reason.contains("sender verified: dmarc=pass header.from=daytonohio.gov (mx.311.test)"),
        "{}",
        r.eligibility_reason
    );
    assert!(r.review_reason.is_empty());

    // The review queue shows the forged one with its suggestion; rejecting closes it quietly.
    let out = env.cli(&["review", "list"])?;
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains(&tracking(1)) && listed.contains("Dayton, OH (#") && listed.contains("1 request(s) in review"),
        "{listed}"
    );
    let out = env.cli(&["review", "reject", &tracking(1), "--reason", "forged From", "--as", ADMIN])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(request(&env, &tracking(1)).await?.status, RequestStatus::Closed);
    assert!(String::from_utf8_lossy(&env.cli(&["review", "list"])?.stdout).contains("0 request(s) in review"));
    assert_eq!(imap_fetch_all(&env.servers, DAYTON, "INBOX").await?.len(), 2, "a rejection sends nothing");

    // A staff command from an unverified sender is refused (the staff member is told); nothing
    // reaches the city.
    let forged_staff = format!(
        "From: {ADMIN}\r\nTo: {INTAKE}\r\nSubject: Re: [{}] Pothole budgets\r\nMessage-ID: <fs@311.test>\r\n\r\n#reply\r\nSend us your bank details.\r\n",
        tracking(2)
    );
    smtp_send(&env.servers, ADMIN, &[INTAKE], forged_staff.as_bytes()).await?;
    let admin = wait_for_messages(&env.servers, ADMIN, "INBOX", 1, WAIT).await?;
    assert!(subject_and_text(&admin[0]).1.contains("could not be verified"), "{}", subject_and_text(&admin[0]).1);
    assert_eq!(imap_fetch_all(&env.servers, DAYTON, "INBOX").await?.len(), 2, "nothing reached the city");

    // Under "require", a personal address naming a city in the thread goes to review instead.
    smtp_send(
        &env.servers,
        UNKNOWN,
        &[INTAKE],
        // The receiving server stamps every mail; a stranger whose domain passed nothing would
        // get no reply at all (backscatter), so this personal address passes DKIM.
        question_with_auth(UNKNOWN, "Pat", "Trees", "pt1@gmail.test", &[&gmail_pass()], "Which species?").as_bytes(),
    )
    .await?;
    let got = wait_for_messages(&env.servers, UNKNOWN, "INBOX", 1, WAIT).await?;
    let tag = subject_and_text(&got[0]).0.split(']').next().unwrap_or_default().trim_start_matches('[').to_string();
    let answer = format!(
        "From: {UNKNOWN}\r\nTo: {INTAKE}\r\nSubject: Re: [{tag}] Trees\r\nMessage-ID: <pt2@gmail.test>\r\n\r\nCity of Dayton, OH\r\n"
    );
    smtp_send(&env.servers, UNKNOWN, &[INTAKE], answer.as_bytes()).await?;
    let r = eventually(WAIT, "review", || async {
        let r = request(&env, &tag).await?;
        Ok((!r.review_reason.is_empty()).then_some(r))
    })
    .await?;
    assert!(r.review_reason.contains("named Dayton, OH (sender not verified"), "{}", r.review_reason);
    assert_eq!(r.status, RequestStatus::NeedsCity);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_personal_address_official_is_resolved_by_naming_their_city() -> anyhow::Result<()> {
    // Under "prefer" a named city settles the request; under "require" it goes to review
    // (see the forged-sender test).
    let env = env_with("prefer").await?;
    let _daemon = env.daemon()?;
    let q = "personal@gmail.test";
    smtp_send(
        &env.servers,
        UNKNOWN,
        &[INTAKE],
        question_with_auth(UNKNOWN, "Pat Lee", "Snow routes", q, &[&gmail_pass()], "Any plans we can copy?").as_bytes(),
    )
    .await?;
    let got = wait_for_messages(&env.servers, UNKNOWN, "INBOX", 1, WAIT).await?;
    assert!(subject_and_text(&got[0]).1.contains("which city"));
    let t1 = tracking(1);
    assert_eq!(request(&env, &t1).await?.status, RequestStatus::NeedsCity);

    // Pat answers in the thread: "Public Works, City of Flint MI".
    let ack_id = header(&got[0], "Message-ID").unwrap_or_default();
    // The answer makes Pat a confirmed contact of Flint, so it must be Pat's own: a forged one, with
    // no passing Authentication-Results, goes to review instead (checked first).
    let answer = |id: &str, auth: &str| {
        format!(
            "{auth}From: Pat Lee <{UNKNOWN}>\r\nTo: {INTAKE}\r\nSubject: Re: [{t1}] Snow routes\r\nMessage-ID: <{id}@gmail.test>\r\nIn-Reply-To: {ack_id}\r\n\r\nHi, I am the deputy director of Public Works, City of Flint MI.\r\n\r\n> Please reply with the name and state of your city\r\n"
        )
    };
    smtp_send(&env.servers, UNKNOWN, &[INTAKE], answer("p2-forged", "").as_bytes()).await?;
    let r = eventually(WAIT, "the forged answer in review", || async {
        let r = request(&env, &t1).await?;
        Ok((!r.review_reason.is_empty()).then_some(r))
    })
    .await?;
    assert!(r.review_reason.contains("sender not verified"), "{}", r.review_reason);
    assert_eq!(r.status, RequestStatus::NeedsCity);
    let reply = answer("p2", &format!("Authentication-Results: {}\r\n", gmail_pass()));
    smtp_send(&env.servers, UNKNOWN, &[INTAKE], reply.as_bytes()).await?;
    // The acknowledgement of the question, the note on the forged answer, then the eligible one.
    let got = wait_for_messages(&env.servers, UNKNOWN, "INBOX", 3, WAIT).await?;
    let (_, text) = subject_and_text(&got[2]);
    assert!(
        text.contains("opened request") && text.contains("Flint, MI"),
        "now acknowledged as eligible: {text}\nrequest: {:?}",
        request(&env, &t1).await?
    );
    let r = request(&env, &t1).await?;
    assert_eq!((r.status, r.city.as_deref()), (RequestStatus::Acknowledged, Some("Flint, MI")));
    assert!(r.eligibility_reason.contains("the official named Flint, MI"), "{}", r.eligibility_reason);
    // Staff saw the forged answer as a follow-up, then the new question once the city was settled.
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 2, WAIT).await?;
    let (subject, text) = staff
        .iter()
        .map(|m| subject_and_text(m))
        .find(|(s, _)| s.contains("New question from Flint, MI: Snow routes"))
        .ok_or_else(|| anyhow::anyhow!("no new-question notice"))?;
    assert!(text.contains("Any plans we can copy?"), "staff see the original question: {subject}");
    let out = env.cli(&["contacts", "list"])?;
    let contacts = String::from_utf8_lossy(&out.stdout);
    assert!(
        contacts.contains(UNKNOWN) && contacts.contains("Flint, MI") && contacts.contains("confirmed"),
        "{contacts}"
    );

    // Next time Pat's verified mail is known through the contact.
    let next = question_with_auth(
        UNKNOWN,
        "Pat Lee",
        "Salt trucks",
        "p3@gmail.test",
        &[&format!("{MX}; dmarc=pass header.from=gmail.test")],
        "Leasing?",
    );
    smtp_send(&env.servers, UNKNOWN, &[INTAKE], next.as_bytes()).await?;
    wait_for_messages(&env.servers, UNKNOWN, "INBOX", 4, WAIT).await?;
    let r = request(&env, &tracking(2)).await?;
    assert_eq!(r.eligibility, Eligibility::Eligible);
    assert!(r.eligibility_reason.starts_with(&format!("contact {UNKNOWN} → Flint, MI")), "{}", r.eligibility_reason);

    // Someone whose answer names no registered city goes to review, with the reason.
    let q2 = "nocity@gmail.test";
    env.servers.add_user("sam@gmail.test")?;
    smtp_send(
        &env.servers,
        "sam@gmail.test",
        &[INTAKE],
        question_with_auth("sam@gmail.test", "Sam", "Libraries", q2, &[&gmail_pass()], "Hours?").as_bytes(),
    )
    .await?;
    let got = wait_for_messages(&env.servers, "sam@gmail.test", "INBOX", 1, WAIT).await?;
    let subject = subject_and_text(&got[0]).0;
    let tag = subject.split(']').next().unwrap_or_default().trim_start_matches('[').to_string();
    let answer = format!(
        "From: sam@gmail.test\r\nTo: {INTAKE}\r\nSubject: Re: [{tag}] Libraries\r\nMessage-ID: <s2@gmail.test>\r\n\r\nWe are a small village near the lake.\r\n"
    );
    smtp_send(&env.servers, "sam@gmail.test", &[INTAKE], answer.as_bytes()).await?;
    let r = eventually(WAIT, "the request to go to review", || async {
        let r = request(&env, &tag).await?;
        Ok((!r.review_reason.is_empty()).then_some(r))
    })
    .await?;
    assert!(r.review_reason.contains("names no registered city"), "{}", r.review_reason);
    assert_eq!(r.status, RequestStatus::NeedsCity);

    // Approving it gives the city and sends the acknowledgement that was still owed.
    let flint = env
        .store()
        .await?
        .list_cities()
        .await?
        .into_iter()
        .find(|c| c.record.name == "Flint")
        .ok_or_else(|| anyhow::anyhow!("no Flint"))?;
    let out = env.cli(&["review", "approve", &tag, "--city", &flint.id.to_string(), "--contact", "--as", ADMIN])?;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("ack_eligible queued") && said.contains("recorded as a contact"),
        "{said}"
    );
    // Sam's inbox: the unknown-city acknowledgement, the "added" note, then this one.
    let got = wait_for_messages(&env.servers, "sam@gmail.test", "INBOX", 3, WAIT).await?;
    assert!(subject_and_text(&got[1]).1.contains("added your message"));
    let (_, text) = subject_and_text(&got[2]);
    assert!(text.contains("opened request") && text.contains("Flint, MI"), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_change_the_city_list_by_mail_with_a_confirmation() -> anyhow::Result<()> {
    let env = strict_env().await?;
    let _daemon = env.daemon()?;
    let auth = format!("Authentication-Results: {MX}; dmarc=pass header.from=311.test\r\n");
    let headers = |subject: &str, id: &str| {
        format!("{auth}From: Alex Admin <{ADMIN}>\r\nTo: {INTAKE}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n")
    };

    // A bad file: every problem named, nothing changed, no token.
    let bad = b"name,state,domains,eligible\nKettering,ZZ,ketteringoh.org,yes\nCentreville,OH,bad domain,perhaps\n";
    let raw =
        mail_with_attachment(&headers("#cities import", "a1@311.test"), "See attached.", "cities.csv", "text/csv", bad);
    smtp_send(&env.servers, ADMIN, &[INTAKE], raw.as_bytes()).await?;
    let got = wait_for_messages(&env.servers, ADMIN, "INBOX", 1, WAIT).await?;
    let (subject, text) = subject_and_text(&got[0]);
    assert_eq!(subject, "Re: #cities import");
    assert!(
        text.contains("Not applied: cities.csv has errors")
            && text.contains("line 2: state")
            && text.contains("line 3: domains")
            && text.contains("line 3: eligible"),
        "{text}"
    );
    assert!(!text.contains("#confirm"), "{text}");

    // A good file: a dry-run diff and a token; nothing changes until #confirm.
    let good =
        b"name,state,domains,eligible\nKettering,OH,ketteringoh.org,yes\nFlint,MI,cityofflint.com;flintmi.gov,no\n";
    let raw = mail_with_attachment(
        &headers("#cities import", "a2@311.test"),
        "New city, and Flint paused.",
        "cities.csv",
        "text/csv",
        good,
    );
    smtp_send(&env.servers, ADMIN, &[INTAKE], raw.as_bytes()).await?;
    let got = wait_for_messages(&env.servers, ADMIN, "INBOX", 2, WAIT).await?;
    let (_, text) = subject_and_text(&got[1]);
    assert!(text.contains("Dry run of cities.csv: nothing has changed yet"), "{text}");
    assert!(
        text.contains("added 1, changed 1, removed 0, unchanged 0")
            && text.contains("+ Kettering, OH")
            && text.contains("eligible: yes → no"),
        "{text}"
    );
    let token = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("#confirm "))
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no token in {text}"))?;
    let cities = || async { anyhow::Ok(env.store().await?.list_cities().await?) };
    assert!(!cities().await?.iter().any(|c| c.record.name == "Kettering"), "the dry run changed nothing");

    // Confirm by replying; the change is applied and reported; the token works once.
    let preview_id = header(&got[1], "Message-ID").unwrap_or_default();
    let confirm = format!(
        "{}In-Reply-To: {preview_id}\r\n\r\n#confirm {token}\r\n\r\n> Dry run of cities.csv\r\n",
        headers("Re: Re: #cities import", "a3@311.test")
    );
    smtp_send(&env.servers, ADMIN, &[INTAKE], confirm.as_bytes()).await?;
    let got = wait_for_messages(&env.servers, ADMIN, "INBOX", 3, WAIT).await?;
    assert!(
        subject_and_text(&got[2]).1.contains("Applied: the city list is updated"),
        "{}",
        subject_and_text(&got[2]).1
    );
    let now = cities().await?;
    assert!(now.iter().any(|c| c.record.name == "Kettering"));
    assert!(now.iter().any(|c| c.record.name == "Flint" && !c.record.eligible));
    let again = format!("{}\r\n#confirm {token}\r\n", headers("Re: #cities import", "a4@311.test"));
    smtp_send(&env.servers, ADMIN, &[INTAKE], again.as_bytes()).await?;
    let got = wait_for_messages(&env.servers, ADMIN, "INBOX", 4, WAIT).await?;
    assert!(subject_and_text(&got[3]).0.contains("#cities import"));
    assert!(subject_and_text(&got[3]).1.contains("was already used"), "{}", subject_and_text(&got[3]).1);

    // Export comes back as a CSV attachment that imports cleanly.
    let raw = format!("{}\r\nPlease.\r\n", headers("#cities export", "a5@311.test"));
    smtp_send(&env.servers, ADMIN, &[INTAKE], raw.as_bytes()).await?;
    let got = wait_for_messages(&env.servers, ADMIN, "INBOX", 5, WAIT).await?;
    let parsed = mail_parser::MessageParser::default().parse(&got[4]).ok_or_else(|| anyhow::anyhow!("unparseable"))?;
    let csv = parsed.attachments().next().ok_or_else(|| anyhow::anyhow!("no CSV attached"))?.contents().to_vec();
    let rows = intake311::registry::parse_csv(&csv).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(rows.len(), now.len());

    // Without verification the admin is refused; a non-admin is just an ordinary sender.
    let unverified =
        format!("From: {ADMIN}\r\nTo: {INTAKE}\r\nSubject: #cities export\r\nMessage-ID: <a6@311.test>\r\n\r\nx\r\n");
    smtp_send(&env.servers, ADMIN, &[INTAKE], unverified.as_bytes()).await?;
    let got = wait_for_messages(&env.servers, ADMIN, "INBOX", 6, WAIT).await?;
    let parsed = mail_parser::MessageParser::default().parse(&got[5]).ok_or_else(|| anyhow::anyhow!("unparseable"))?;
    assert!(parsed.body_text(0).unwrap_or_default().contains("could not be verified"));
    assert_eq!(parsed.attachments().count(), 0);
    smtp_send(
        &env.servers,
        UNKNOWN,
        &[INTAKE],
        question_with_auth(UNKNOWN, "Pat", "#cities export", "o1@gmail.test", &[&gmail_pass()], "x").as_bytes(),
    )
    .await?;
    let got = wait_for_messages(&env.servers, UNKNOWN, "INBOX", 1, WAIT).await?;
    assert!(subject_and_text(&got[0]).0.contains("] Re: #cities export"), "an ordinary acknowledgement");
    Ok(())
}
