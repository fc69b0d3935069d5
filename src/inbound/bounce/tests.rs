//! Unit tests of bounce detection: each MTA shape, the classes, the ids and the no-panic property.

use super::*;

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

const POSTFIX_DSN: &str = "Return-Path: <>
Received: by mx.example.org (Postfix) id 3F2A41C0; Tue,  4 Mar 2025 10:00:00 +0000 (UTC)
Date: Tue,  4 Mar 2025 10:00:00 +0000 (UTC)
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: intake@dayton.gov
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary=\"3F2A41C0.1741082400/mx.example.org\"
Message-Id: <20250304100000.AAAA@mx.example.org>

This is a MIME-encapsulated message.

--3F2A41C0.1741082400/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<Jane.Doe@Example.net>: host mx.example.net[192.0.2.10] said: 550 5.1.1
    <jane.doe@example.net>: Recipient address rejected: User unknown in
    virtual mailbox table (in reply to RCPT TO command)

--3F2A41C0.1741082400/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Postfix-Queue-ID: 3F2A41C0
Arrival-Date: Tue,  4 Mar 2025 09:59:58 +0000 (UTC)

Final-Recipient: rfc822; Jane.Doe@Example.net
Original-Recipient: rfc822;Jane.Doe@Example.net
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 <jane.doe@example.net>: Recipient address
    rejected: User unknown in virtual mailbox table

--3F2A41C0.1741082400/mx.example.org
Content-Description: Undelivered Message
Content-Type: message/rfc822

Return-Path: <intake@dayton.gov>
Message-ID: <intake311.abc123@dayton.gov>
Date: Tue, 4 Mar 2025 09:59:57 +0000
From: Dayton 311 <intake@dayton.gov>
To: Jane.Doe@Example.net
Subject: Re: Pothole on Main St [#311-42]

We received your request.

--3F2A41C0.1741082400/mx.example.org--
";

#[test]
fn phrase_lists_build_and_agree_with_a_plain_search() {
    let texts = [
        "this is the mail system at host mx.example.org.",
        "we will retry for five days",
        "your message has been delivered",
        "hello, a question about our parks budget",
        "----- Below this line is a copy of the message.",
        "",
    ];
    for p in [&TEMPLATE, &GENERIC, &SUCCESS, &DELAY, &RETURNED, &TEMPLATE_ANY_CASE] {
        let built = aho_corasick::AhoCorasickBuilder::new().ascii_case_insensitive(p.any_case).build(p.list);
        assert!(built.is_ok(), "{:?}", p.list.first());
        for t in texts {
            let plain = if p.any_case {
                let l = t.to_ascii_lowercase();
                p.list.iter().any(|w| l.contains(w))
            } else {
                p.list.iter().any(|w| t.contains(w))
            };
            assert_eq!(p.found_in(t), plain, "{t:?} against {:?}", p.list.first());
        }
    }
}

fn may_be(raw: &str) -> bool {
    let data = normalize_newlines(raw.as_bytes());
    let msg = MessageParser::default().parse(&data).expect("parses");
    may_be_bounce(&Top::read(&msg), &Parts::collect(&msg))
}

#[test]
fn ordinary_mail_takes_the_fast_path_and_text_only_bounces_do_not() {
    let question = "From: Mayor <mayor@dayton.gov>\nTo: intake@311.example\nSubject: Parks budget\n\nHello, how do other cities fund their parks? The delivery of our report failed to impress.\n";
    assert!(!may_be(question));
    assert_eq!(detect(question.as_bytes()), None);

    // No bounce subject, no daemon sender, no report part: only the template wording (in
    // capitals, which the full analysis lower-cases) and the null Return-Path say bounce.
    let template = "Return-Path: <>\nFrom: Relay <relay@example.org>\nTo: intake@311.example\nSubject: Your message\n\nTHIS IS THE MAIL SYSTEM AT HOST relay.example.org.\n\n<jane@example.net>: host mx.example.net said: 550 5.1.1 user unknown\n";
    assert!(may_be(template));
    let b = detect(template.as_bytes()).expect("a bounce");
    assert_eq!(b.recipients, vec!["jane@example.net".to_string()]);
    assert_eq!(b.status.as_deref(), Some("5.1.1"));

    // Delivery-status fields pasted into a plain text body, under an ordinary subject: the
    // field name, in any case, is template wording.
    let pasted = "From: Relay <relay@example.org>\nTo: intake@311.example\nSubject: Notice\n\nfinal-RECIPIENT: rfc822; jane@example.net\nAction: failed\nStatus: 5.2.2\n";
    assert!(may_be(pasted));
    let b = detect(pasted.as_bytes()).expect("a bounce");
    assert_eq!(b.recipients, vec!["jane@example.net".to_string()]);
    assert_eq!(b.status.as_deref(), Some("5.2.2"));
}

#[test]
fn a_bounce_returning_a_huge_message_is_still_read_from_its_start() {
    // The returned original carries a 3 MB attachment: far past what detection reads.
    let big = "QUJD".repeat(3 * 1024 * 1024 / 4);
    let huge = POSTFIX_DSN.replace(
            "We received your request.\n",
            &format!(
                "Content-Type: multipart/mixed; boundary=\"inner\"\n\n--inner\nContent-Type: text/plain\n\nWe received your request.\n--inner\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n{big}\n--inner--\n"
            ),
        );
    assert!(huge.len() > 3 * DETECT_PREFIX);
    let b = detect(huge.as_bytes()).expect("a bounce");
    assert_eq!(b.recipients, vec!["jane.doe@example.net".to_string()]);
    assert_eq!(b.status.as_deref(), Some("5.1.1"));
    assert_eq!(b.original_message_id.as_deref(), Some("intake311.abc123@dayton.gov"));
}

#[test]
fn postfix_multipart_report_hard_bounce() {
    let b = detect(POSTFIX_DSN.as_bytes()).expect("a bounce");
    assert_eq!(b.recipients, vec!["jane.doe@example.net".to_string()]);
    assert_eq!(b.status.as_deref(), Some("5.1.1"));
    assert_eq!(b.class, BounceClass::Hard);
    assert_eq!(b.original_message_id.as_deref(), Some("intake311.abc123@dayton.gov"));
    assert!(b.reason.starts_with("550 5.1.1"), "{}", b.reason);
    assert!(b.reason.contains("User unknown in virtual mailbox table"), "{}", b.reason);
    assert!(!b.reason.contains('\n'));
}

#[test]
fn line_endings_do_not_matter() {
    let lf = detect(POSTFIX_DSN.as_bytes());
    assert_eq!(detect(&crlf(POSTFIX_DSN)), lf);
    assert_eq!(detect(POSTFIX_DSN.replace('\n', "\r").as_bytes()), lf);
    let mbox = format!("From MAILER-DAEMON Tue Mar  4 10:00:00 2025\n{POSTFIX_DSN}");
    assert_eq!(detect(mbox.as_bytes()), lf);
}

#[test]
fn mailbox_full_delay_is_soft() {
    let raw = "From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example.com>
To: intake@dayton.gov
Subject: Warning: could not send message for past 4 hours
Message-Id: <202503041400.524E0aB1@relay.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"

--B1
Content-Type: text/plain

    **********************************************
    **      THIS IS A WARNING MESSAGE ONLY      **
    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **
    **********************************************

The original message was received at Tue, 4 Mar 2025 10:00:00 GMT

   ----- Transcript of session follows -----
<bob@example.com>... Deferred: 452 4.2.2 Mailbox full
Warning: message still undelivered after 4 hours
Will keep trying until message is 5 days old

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.com

Final-Recipient: RFC822; bob@example.com
Action: delayed
Status: 4.2.2
Diagnostic-Code: SMTP; 452 4.2.2 Mailbox full
Will-Retry-Until: Sun, 9 Mar 2025 10:00:00 GMT

--B1
Content-Type: text/rfc822-headers

Message-ID: <intake311.delay1@dayton.gov>
From: intake@dayton.gov
To: bob@example.com
Subject: Your request

--B1--
";
    let b = detect(raw.as_bytes()).expect("a delay report");
    assert_eq!(b.class, BounceClass::Soft);
    assert_eq!(b.status.as_deref(), Some("4.2.2"));
    assert_eq!(b.recipients, vec!["bob@example.com".to_string()]);
    assert_eq!(b.original_message_id.as_deref(), Some("intake311.delay1@dayton.gov"));
    assert_eq!(b.reason, "452 4.2.2 Mailbox full");
}

#[test]
fn exchange_ndr_without_dsn() {
    let raw = "From: System Administrator <postmaster@corp.example.com>
To: intake@dayton.gov
Subject: Undeliverable: Your 311 request
Date: Tue, 4 Mar 2025 10:00:00 -0500
Message-ID: <NDR0001@corp.example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"----_=_NextPart_001\"

------_=_NextPart_001
Content-Type: text/plain; charset=\"us-ascii\"

Your message did not reach some or all of the intended recipients.

      Subject:  Your 311 request
      Sent:     3/4/2025 9:59 AM

The following recipient(s) cannot be reached:

      Sam Smith on 3/4/2025 10:00 AM
            The e-mail account does not exist at the organization this message was sent to.
            <corp.example.com #5.1.1 smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound; not found>

------_=_NextPart_001
Content-Type: message/rfc822

Message-ID: <intake311.xyz@dayton.gov>
From: intake@dayton.gov
To: Sam Smith <sam.smith@corp.example.com>
Subject: Your 311 request

Thank you.

------_=_NextPart_001--
";
    let b = detect(raw.as_bytes()).expect("an NDR");
    assert_eq!(b.class, BounceClass::Hard);
    assert_eq!(b.status.as_deref(), Some("5.1.1"));
    assert_eq!(b.original_message_id.as_deref(), Some("intake311.xyz@dayton.gov"));
    // No address in the explanation: the returned original's To.
    assert_eq!(b.recipients, vec!["sam.smith@corp.example.com".to_string()]);
    assert!(b.reason.contains("RESOLVER.ADR.RecipNotFound"), "{}", b.reason);
}

#[test]
fn exchange_2003_wording_only_is_hard() {
    let raw = "From: postmaster@old.example.co.jp
To: intake@dayton.gov
Subject: Undeliverable: Streetlight out
MIME-Version: 1.0
Content-Type: text/plain

Your message

  To:      kiji@old.example.co.jp
  Subject: Streetlight out

did not reach the following recipient(s):

kiji@old.example.co.jp on Thu, 29 Apr 2007 16:51:51 -0500
    The recipient name is not recognized
    MSEXCH:IMS:KIJI:EXAMPLE:EXCHANGE 0 (000C05A6) Unknown Recipient
";
    let b = detect(raw.as_bytes()).expect("an NDR");
    assert_eq!(b.class, BounceClass::Hard);
    assert_eq!(b.status, None);
    assert_eq!(b.recipients, vec!["kiji@old.example.co.jp".to_string()]);
}

#[test]
fn qmail_text_bounce() {
    let raw = "Return-Path: <>
From: MAILER-DAEMON@mail.example.jp
To: intake@dayton.gov
Subject: failure notice
Date: 4 Mar 2025 10:00:00 -0000
Message-ID: <20250304100000.123.qmail@mail.example.jp>

Hi. This is the qmail-send program at mail.example.jp.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@example.jp>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <intake@dayton.gov>
Received: (qmail 1234 invoked from network); 4 Mar 2025 09:59:59 -0000
Message-ID: <intake311.q1@dayton.gov>
From: intake@dayton.gov
To: nobody@example.jp
Subject: Your request

Hello
";
    let b = detect(raw.as_bytes()).expect("a qmail bounce");
    assert_eq!(b.class, BounceClass::Hard);
    assert_eq!(b.status.as_deref(), Some("5.1.1"));
    assert_eq!(b.recipients, vec!["nobody@example.jp".to_string()]);
    assert_eq!(b.original_message_id.as_deref(), Some("intake311.q1@dayton.gov"));
    assert_eq!(b.reason, "Sorry, no mailbox here by that name. (#5.1.1)");
}

#[test]
fn exim_with_x_failed_recipients_and_smtp_code_only() {
    let raw = "From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: intake@dayton.gov
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: Gone@Example.com
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  gone@example.com
    host mx.example.com [192.0.2.1]
    SMTP error from remote mail server after RCPT TO:<gone@example.com>:
    550 Requested action not taken: mailbox unavailable

------ This is a copy of the message, including all the headers. ------

Message-ID: <intake311.e1@dayton.gov>
From: intake@dayton.gov
To: gone@example.com
";
    let b = detect(raw.as_bytes()).expect("an Exim bounce");
    assert_eq!(b.recipients, vec!["gone@example.com".to_string()]);
    assert_eq!(b.status, None);
    assert_eq!(b.class, BounceClass::Hard);
    assert_eq!(b.original_message_id.as_deref(), Some("intake311.e1@dayton.gov"));
    assert!(b.reason.starts_with("550 Requested action not taken"), "{}", b.reason);
}

#[test]
fn wording_decides_without_codes() {
    let soft = "From: MAILER-DAEMON@example.net
Subject: failure notice
To: intake@dayton.gov

Hi. This is the qmail-send program at example.net.
<full@example.net>:
The user's mailbox is full. Please try again later.
";
    assert_eq!(detect(soft.as_bytes()).map(|b| b.class), Some(BounceClass::Soft));
    let hard = soft.replace("The user's mailbox is full. Please try again later.", "No such user here.");
    assert_eq!(detect(hard.as_bytes()).map(|b| b.class), Some(BounceClass::Hard));
}

#[test]
fn vacation_auto_reply_is_not_a_bounce() {
    let raw = "From: Jane Doe <jane@example.net>
To: intake@dayton.gov
Subject: Out of Office: Re: Your 311 request
Auto-Submitted: auto-replied
X-Autoreply: yes
Precedence: bulk
In-Reply-To: <intake311.v1@dayton.gov>
Message-ID: <oof1@example.net>

I am out of the office until March 10 and could not be reached. Your message
was not delivered to my assistant either; for urgent matters call 555-0100.
";
    assert_eq!(detect(raw.as_bytes()), None);
}

#[test]
fn successful_delivery_dsn_is_not_a_bounce() {
    let raw = "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: intake@dayton.gov
Subject: Successful Mail Delivery Report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"S1\"

--S1
Content-Type: text/plain

This is the mail system at host mx.example.org.
Your message was successfully delivered to the destination(s) listed below.

<ok@example.org>: delivery via local: delivered to mailbox

--S1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; ok@example.org
Action: delivered
Status: 2.0.0

Final-Recipient: rfc822; list@example.org
Action: relayed
Status: 2.0.0

--S1
Content-Type: text/rfc822-headers

Message-ID: <intake311.ok@dayton.gov>

--S1--
";
    assert_eq!(detect(raw.as_bytes()), None);
    // The same report with one failed recipient is a bounce for that recipient only.
    let mixed = raw.replace(
        "Final-Recipient: rfc822; list@example.org\nAction: relayed\nStatus: 2.0.0",
        "Final-Recipient: rfc822; bad@example.org\nAction: failed\nStatus: 5.1.1",
    );
    let b = detect(mixed.as_bytes()).expect("one failure");
    assert_eq!(b.recipients, vec!["bad@example.org".to_string()]);
    assert_eq!(b.status.as_deref(), Some("5.1.1"));
}

#[test]
fn feedback_report_and_read_receipt_are_not_bounces() {
    let arf = "From: feedbackloop@isp.example
To: abuse@dayton.gov
Subject: Abuse Report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"

--F
Content-Type: text/plain

This is an email abuse report. The message was delivered but the user complained.

--F
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1

--F
Content-Type: message/rfc822

Message-ID: <intake311.f@dayton.gov>
From: intake@dayton.gov

--F--
";
    assert_eq!(detect(arf.as_bytes()), None);
    let mdn = arf
        .replace("feedback-report; boundary", "disposition-notification; boundary")
        .replace("message/feedback-report", "message/disposition-notification")
        .replace("Feedback-Type: abuse", "Disposition: manual-action/MDN-sent-manually; displayed");
    assert_eq!(detect(mdn.as_bytes()), None);
}

#[test]
fn a_person_writing_about_delivery_is_not_a_bounce() {
    let raw = "From: Pat Resident <pat@example.com>
To: intake@dayton.gov
Subject: Recycling bin not delivered
Message-ID: <p1@example.com>

Hello, my new recycling bin was not delivered. The delivery failed twice and the
driver said there was an error with the address. Can you help?
";
    assert_eq!(detect(raw.as_bytes()), None);
    let fwd = format!(
        "From: Pat Resident <pat@example.com>\nTo: intake@dayton.gov\nSubject: Fwd: Undelivered Mail Returned to Sender\n\nWhy did this bounce?\n\n> {}",
        POSTFIX_DSN.replace('\n', "\n> ")
    );
    assert_eq!(detect(fwd.as_bytes()), None);
}

#[test]
fn amazon_ses_notifications() {
    let bounce = r#"From: no-reply@sns.amazonaws.com
Subject: AWS Notification Message
Content-Type: text/plain; charset=UTF-8

{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"gone@example.com","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}]},"mail":{"messageId":"0100abc","headers":[{"name":"Message-ID","value":"<intake311.ses@dayton.gov>"}]}}
"#;
    let b = detect(bounce.as_bytes()).expect("an SES bounce");
    assert_eq!(b.recipients, vec!["gone@example.com".to_string()]);
    assert_eq!(b.status.as_deref(), Some("5.1.1"));
    assert_eq!(b.class, BounceClass::Hard);
    assert_eq!(b.original_message_id.as_deref(), Some("intake311.ses@dayton.gov"));
    let complaint = bounce.replace("\"notificationType\":\"Bounce\"", "\"notificationType\":\"Complaint\"");
    assert_eq!(detect(complaint.as_bytes()), None);
}

#[test]
fn garbage_is_not_a_bounce() {
    for raw in [
        &b""[..],
        b"\0",
        b"\r\n\r\n",
        b"From ",
        b"Subject: Undelivered Mail Returned to Sender",
        b"\xff\xfe\x00\x01garbage\x80\x81",
        b"Content-Type: multipart/report; boundary=\"x\"\n\n--x\n--x--",
        b"not an email at all, just words: 550 5.1.1 user unknown",
    ] {
        assert_eq!(detect(raw), None, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn never_panics_on_truncations_and_mutations() {
    let sources = [POSTFIX_DSN.as_bytes().to_vec(), crlf(POSTFIX_DSN)];
    for src in &sources {
        for end in 0..src.len() {
            let _ = detect(&src[..end]);
        }
        let mut seed: u32 = 0x2545_f491;
        for _ in 0..300 {
            let mut m = src.clone();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let i = seed as usize % m.len();
                m[i] = (seed >> 24) as u8;
            }
            let _ = detect(&m);
        }
    }
}

#[test]
fn large_hostile_input_is_handled() {
    // ~3 MB of code-, address- and field-shaped noise: every scan is bounded or linear, so
    // this takes milliseconds; a quadratic path would hang the test.
    let mut raw = String::from("From: MAILER-DAEMON@x.example\nSubject: failure notice\n\n");
    for _ in 0..20_000 {
        raw.push_str("550 5.1.1 a@b.c Message-ID: <x@y> @@@@ 5.5.5.5.5 Final-Recipient: rfc822; q@r.s\n");
    }
    raw.push_str(&"a".repeat(1 << 20));
    let b = detect(raw.as_bytes()).expect("still a bounce");
    assert!(b.recipients.len() <= MAX_RECIPIENTS);
    assert!(b.reason.chars().count() <= MAX_REASON_CHARS);
}

#[test]
fn code_scanners() {
    assert_eq!(find_enhanced("said: 550 5.1.1 <a@b>", false).as_deref(), Some("5.1.1"));
    assert_eq!(find_enhanced("host 192.0.2.1 refused", false), None);
    assert_eq!(find_enhanced("version 8.14.3/8.14.3", false), None);
    assert_eq!(find_enhanced("(#5.7.606)", false).as_deref(), Some("5.7.606"));
    assert_eq!(find_enhanced("Status: 2.0.0", true).as_deref(), Some("2.0.0"));
    assert_eq!(
        diagnostic_code("5.1.0 - Unknown address error 550-'5.7.1 <x@y>... Access denied'"),
        Some(("5.7.1".into(), true))
    );
    assert_eq!(find_smtp("Remote host said: 552 Error: quota").map(|(c, _)| c).as_deref(), Some("552"));
    assert_eq!(find_smtp("message size 500 bytes"), None);
    assert_eq!(address_field("rfc822;@relay.example:Kiji@Example.org").as_deref(), Some("kiji@example.org"));
    assert_eq!(address_field("rfc822; @mx.example.org"), None);
}
