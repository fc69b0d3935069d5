//! Arbitrary bytes through the whole pure inbound path. Nothing here may panic: the daemon
//! parses untrusted mail.
#![no_main]

use libfuzzer_sys::fuzz_target;

use intake311::inbound::{self, auth_results, bounce, reply};
use intake311::intake::{admin, commands, threads};
use intake311::registry;

fuzz_target!(|data: &[u8]| {
    // Independent of whether the bytes parse as a message.
    let _ = bounce::detect(data);
    let _ = registry::parse_csv(data);
    // sanitize_filename on the raw bytes as a name (covers names parse never produces).
    if let Ok(s) = std::str::from_utf8(data) {
        check_filename(&inbound::sanitize_filename(s));
    }

    let Ok(mail) = inbound::parse(data) else { return };

    let _ = inbound::classify(&mail, &["intake@311.test"], "311.test");
    let _ = reply::split_reply(&mail.text);
    let new_text = reply::new_content(&mail.text);
    let _ = auth_results::verify(&mail.auth_results, &["mx.311.test".to_string()], mail.from_domain());
    let _ = threads::tags_in_subject(&mail.subject, "311");
    // The daemon feeds the new content (quotes and signature removed) to the command parsers;
    // the whole text is fed as well so both shapes are exercised.
    let _ = commands::parse(&mail.text);
    let _ = commands::parse(&new_text);
    let _ = admin::parse(&mail.subject, &mail.text);
    let _ = admin::parse(&mail.subject, &new_text);

    for att in &mail.attachments {
        check_filename(&att.filename);
        check_filename(&inbound::sanitize_filename(&att.filename));
    }
});

fn check_filename(name: &str) {
    assert!(!name.is_empty(), "sanitized file name is empty");
    assert!(
        !name.chars().any(|c| c == '/' || c == '\\' || c.is_control()),
        "sanitized file name {name:?} has a path separator or control character"
    );
}
