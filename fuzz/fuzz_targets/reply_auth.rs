//! Arbitrary input straight into the two parsers that run on the daemon's path outside
//! `catch_unwind`: reply stripping (`reply::split_reply`, `reply::new_content`) and
//! Authentication-Results (`auth_results::parse`, `verify`, `aligned`). `parse_classify` reaches
//! them only through a parsed message; here every byte string is a body or a header value, so
//! the fuzzer steers them directly. Nothing here may panic, and a few invariants are checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

use intake311::inbound::{auth_results, reply};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    // Reply stripping: the three parts come from the body, trimmed; new_content agrees.
    let parts = reply::split_reply(&text);
    assert_eq!(parts.visible, parts.visible.trim(), "visible is not trimmed");
    assert_eq!(reply::new_content(&text), parts.visible, "new_content differs from split_reply");
    if text.trim().is_empty() {
        assert!(parts.visible.is_empty() && parts.signature.is_none() && parts.quoted.is_none());
    }

    // Authentication-Results: the whole input as one value, and split at newlines as several
    // headers (topmost first), with the first word as the trusted id and the last as the From.
    let _ = auth_results::parse(&text);
    let headers: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut words = text.split_whitespace();
    let trusted: Vec<String> = words.next().map(str::to_string).into_iter().collect();
    let from = words.next_back().unwrap_or("");
    let v = auth_results::verify(&headers, &trusted, from);
    assert!(!v.reason.is_empty() && !v.reason.contains(['\r', '\n']), "reason {:?}", v.reason);
    let _ = auth_results::verify(&headers, &["mx.311.test".to_string()], "311.test");
    let _ = auth_results::aligned(from, trusted.first().map_or("", String::as_str));
});
