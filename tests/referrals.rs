//! Topics and expert referrals, against real Dovecot and Postfix: a new question gets suggested
//! topics that staff see in the notice and can change; the expert roster is kept from the
//! command line and CSV (all or nothing); `#refer` in a staff reply sends one introduction that
//! reaches the official and the expert in the request's thread; both replies join the request;
//! closing it records the outcome; an introduction to an address that bounces is reported to
//! staff and on the referral. Runs on both engines.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::time::Duration;

use intake311::domain::RequestStatus;
use support::*;

const WAIT: Duration = Duration::from_secs(60);
const ANA: &str = "ana@311.test";
const LEE: &str = "lee@waterinstitute.test";
const GHOST: &str = "nobody@waterinstitute.test";

fn mail(from: &str, to: &str, subject: &str, id: &str, in_reply_to: Option<&str>, body: &str) -> String {
    let mut h = format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n");
    if let Some(parent) = in_reply_to {
        h.push_str(&format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"));
    }
    format!("{h}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")
}

fn message_id(raw: &[u8]) -> String {
    header(raw, "Message-ID").unwrap_or_default().trim_matches(['<', '>']).to_string()
}

fn cli_ok(env: &TestEnv, args: &[&str]) -> anyhow::Result<String> {
    let out = env.cli(args)?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    anyhow::ensure!(out.status.success(), "intake311 {}: {text}", args.join(" "));
    Ok(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_reaches_official_and_expert_in_one_thread_and_their_replies_join() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    for u in [ANA, LEE] {
        env.servers.add_user(u)?;
    }
    cli_ok(&env, &["staff", "add", ANA, "--name", "Ana Staff"])?;

    // The roster: one expert by hand; a CSV file with bad rows changes nothing and names them all.
    let added = cli_ok(
        &env,
        &["experts", "add", LEE, "--name", "Dr. Ana Lee", "--org", "Water Institute", "--topics", "infrastructure"],
    )?;
    assert!(added.contains("added lee@waterinstitute.test (Dr. Ana Lee)"), "{added}");
    let bad = env.dir.path().join("experts.csv");
    std::fs::write(
        &bad,
        "email,name,topics\nkim@pd.test,Sam Kim,public-safety\nnot-an-address,X,\nok@x.test,Y,parks\n",
    )?;
    let out = env.cli(&["experts", "import", &bad.display().to_string()])?;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("2 problem(s) in the file; nothing was changed:"), "{err}");
    assert!(err.contains("line 3: email: `not-an-address` is not an address"), "{err}");
    assert!(err.contains("line 4: topics: `parks` is not a topic"), "{err}");
    let list = cli_ok(&env, &["experts", "list"])?;
    assert!(list.contains(LEE) && !list.contains("kim@pd.test") && list.contains("1 expert(s)"), "{list}");
    std::fs::write(
        &bad,
        format!(
            "email,name,org,topics\n{GHOST},Ghost Expert,Nowhere,infrastructure\n{LEE},Dr. Ana Lee,Water Institute,infrastructure\n"
        ),
    )?;
    let imported = cli_ok(&env, &["experts", "import", &bad.display().to_string()])?;
    assert!(imported.contains("1 added, 0 updated, 0 removed, 1 unchanged; applied"), "{imported}");

    let daemon = env.daemon()?;
    let q = "q-lead@daytonohio.gov";
    let question = mail(
        &format!("Jane Mayor <{DAYTON}>"),
        INTAKE,
        "Lead pipes in our water system",
        q,
        None,
        "How did other cities pay to replace lead service lines?",
    );
    smtp_send(&env.servers, DAYTON, &[INTAKE], question.as_bytes()).await?;
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 1, WAIT).await?;
    let (subject, text) = subject_and_text(&staff[0]);
    let t = subject.split(['[', ']']).nth(1).unwrap_or_default().to_string();
    assert!(text.contains("Topics:     Infrastructure (water, roads) (suggested; #topic to change)"), "{text}");
    let notice = message_id(&staff[0]);

    // Topics: suggested, then confirmed by staff, and listed by topic.
    let listed = cli_ok(&env, &["requests", "list", "--topic", "infrastructure"])?;
    assert!(listed.contains(&t) && listed.contains("1 request(s)"), "{listed}");
    assert!(cli_ok(&env, &["requests", "list", "--topic", "housing"])?.contains("0 request(s)"));
    let set = cli_ok(&env, &["requests", "topic", &t, "infrastructure,", "Finance and budgeting", "--as", ANA])?;
    assert!(set.contains("topics infrastructure, finance"), "{set}");
    assert!(cli_ok(&env, &["requests", "list", "--topic", "finance"])?.contains(&t));
    let refused = env.cli(&["requests", "topic", &t, "parks", "--as", ANA])?;
    assert!(
        !refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("`parks` is not a topic"),
        "{refused:?}"
    );

    // #refer by mail, answering the staff notice, with a note for both.
    let reply = mail(
        &format!("Ana Staff <{ANA}>"),
        INTAKE,
        &format!("Re: [{t}] Lead pipes in our water system"),
        "s1@311.test",
        Some(&notice),
        "#refer Dr. Ana Lee\r\nDr. Lee ran the lead-line programme in Flint and has agreed to talk with you.",
    );
    smtp_send(&env.servers, ANA, &[INTAKE], reply.as_bytes()).await?;
    let official = wait_for_messages(&env.servers, DAYTON, "INBOX", 2, WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", daemon.log_text()))?;
    let expert = wait_for_messages(&env.servers, LEE, "INBOX", 1, WAIT).await?;
    let intro = &official[1];
    assert_eq!(message_id(intro), message_id(&expert[0]), "one mail to both");
    let (subject, text) = subject_and_text(intro);
    assert_eq!(subject, format!("[{t}] Introduction: Jane Mayor meet Dr. Ana Lee — Lead pipes in our water system"));
    assert!(text.contains("Dr. Lee ran the lead-line programme in Flint"), "{text}");
    assert!(text.contains("How did other cities pay to replace lead service lines?"), "the question: {text}");
    assert!(text.contains("How the consultation works"), "{text}");
    let to = header(intro, "To").unwrap_or_default();
    assert!(to.contains(DAYTON) && to.contains(LEE), "{to}");
    assert_eq!(header(intro, "In-Reply-To").as_deref(), Some(format!("<{q}>").as_str()), "in the official's thread");
    let reply_to = header(intro, "Reply-To").unwrap_or_default();
    assert!(reply_to.contains(INTAKE) && reply_to.contains(DAYTON) && reply_to.contains(LEE), "{reply_to}");
    let store = env.store().await?;
    let row = store.request_by_tracking(&t.parse()?).await?.expect("request");
    assert_eq!(row.status, RequestStatus::Referred);
    assert_eq!(row.resolved_by, "referral");
    let referrals = store.referrals_of(row.id).await?;
    assert_eq!(referrals.len(), 1);
    assert_eq!((referrals[0].expert_email.as_str(), referrals[0].referred_by.as_str()), (LEE, ANA));
    assert_eq!(referrals[0].message_id, message_id(intro));

    // The expert and the official answer the introduction: both join the request, staff see both.
    let intro_id = message_id(intro);
    let from_lee = mail(
        &format!("Dr. Ana Lee <{LEE}>"),
        DAYTON,
        &format!("Re: {subject}"),
        "lee1@waterinstitute.test",
        Some(&intro_id),
        "Happy to help. Does Tuesday work for a call?",
    );
    smtp_send(&env.servers, LEE, &[DAYTON, INTAKE], from_lee.as_bytes()).await?;
    let from_mayor = mail(
        &format!("Jane Mayor <{DAYTON}>"),
        LEE,
        &format!("Re: {subject}"),
        "q-lead-2@daytonohio.gov",
        Some("lee1@waterinstitute.test"),
        "Tuesday is fine, thank you!",
    );
    smtp_send(&env.servers, DAYTON, &[LEE, INTAKE], from_mayor.as_bytes()).await?;
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 3, WAIT).await?;
    let texts: Vec<String> = staff[1..].iter().map(|m| subject_and_text(m).1).collect();
    assert!(texts.iter().any(|x| x.contains("Does Tuesday work for a call?") && x.contains(LEE)), "{texts:?}");
    assert!(texts.iter().any(|x| x.contains("Tuesday is fine")), "{texts:?}");
    let view = cli_ok(&env, &["requests", "show", &t])?;
    assert!(view.contains("Status      referred"), "replies keep it referred: {view}");
    assert!(view.contains("Topics      infrastructure, finance\n"), "{view}");
    assert!(view.contains(&format!("to Dr. Ana Lee <{LEE}> by {ANA}")), "{view}");
    assert!(view.contains("Does Tuesday work") && view.contains("Tuesday is fine"), "{view}");

    // Closed with the outcome, which the referral and `experts show` keep.
    let closed = cli_ok(
        &env,
        &["requests", "close", &t, "--outcome", "They met; Dayton adopted Flint's financing plan.", "--as", ANA],
    )?;
    assert!(closed.contains("outcome recorded") && closed.contains("closed"), "{closed}");
    let shown = cli_ok(&env, &["experts", "show", LEE])?;
    assert!(
        shown.contains(&t) && shown.contains("outcome: They met; Dayton adopted Flint's financing plan."),
        "{shown}"
    );

    // A second question referred to an address with no mailbox: the bounce reaches staff and
    // the referral.
    let q2 = mail(
        &format!("Jane Mayor <{DAYTON}>"),
        INTAKE,
        "Water rates",
        "q-rates@daytonohio.gov",
        None,
        "How do peers set water rates?",
    );
    smtp_send(&env.servers, DAYTON, &[INTAKE], q2.as_bytes()).await?;
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 4, WAIT).await?;
    let t2 = subject_and_text(&staff[3]).0.split(['[', ']']).nth(1).unwrap_or_default().to_string();
    assert_ne!(t2, t);
    let referred = cli_ok(&env, &["requests", "refer", &t2, GHOST, "--note", "Try them.", "--as", ANA])?;
    assert!(referred.contains("referred to Ghost Expert"), "{referred}");
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 5, WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", env.servers.log_tail()))?;
    let (subject, text) = subject_and_text(&staff[4]);
    assert!(subject.contains("Delivery failed") && subject.contains(&t2), "{subject}");
    assert!(text.contains(&format!("The introduction to the expert Ghost Expert <{GHOST}> bounced")), "{text}");
    let shown = cli_ok(&env, &["experts", "show", GHOST])?;
    assert!(shown.contains("BOUNCED") && shown.contains("5.1.1"), "{shown}");
    Ok(())
}
