//! The shipped templates, compiled into the binary, so an installed `intake311` needs no
//! template files beside it.
//!
//! Owns: the table of built-in files. Each is an `include_str!` of the file under `templates/`
//! in the source tree, so cargo rebuilds when one changes and a missing one is a compile error.
//! A unit test checks that `templates/` holds exactly these files. Talks to: nothing.

use super::{PARTIAL_NAMES, PARTS};

/// `include_str!` of `templates/$file`, keyed by that file name.
macro_rules! shipped {
    ($($file:literal),* $(,)?) => {
        [$(($file, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $file)))),*]
    };
}

/// The mails we send, once: their names ([`TEMPLATE_NAMES`]) and the three files of each,
/// `NAME.subject.hbs`, `NAME.txt.hbs`, `NAME.html.hbs` ([`MAIL_FILES`]).
macro_rules! mails {
    ($($name:literal),* $(,)?) => {
        /// The mails we send, each with its three template files.
        pub const TEMPLATE_NAMES: [&str; [$($name),*].len()] = [$($name),*];

        /// Every built-in mail file: its name relative to the templates folder, and its text.
        pub(crate) const MAIL_FILES: [(&str, &str); TEMPLATE_NAMES.len() * PARTS.len()] = [$(
            mails!(@file $name, ".subject.hbs"),
            mails!(@file $name, ".txt.hbs"),
            mails!(@file $name, ".html.hbs"),
        )*];
    };
    (@file $name:literal, $ext:literal) => {
        (concat!($name, $ext), include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $name, $ext)))
    };
}

mails![
    "too_large",
    "staff_delivery_failed",
    "staff_mail_held",
    "ack_eligible",
    "ack_not_eligible",
    "ack_unknown_city",
    "ack_received",
    "admin_reply",
    "followup_added",
    "reply",
    "response",
    "due_changed",
    "referral_intro",
    "staff_reminder",
    "staff_digest",
    "monthly_report",
    "staff_new_request",
    "staff_followup",
    "staff_command_error",
];

/// The shared partials, `partials/NAME.hbs`.
pub(crate) const PARTIAL_FILES: [(&str, &str); PARTIAL_NAMES.len()] = shipped![
    "partials/header_text.hbs",
    "partials/footer_text.hbs",
    "partials/header_html.hbs",
    "partials/footer_html.hbs",
];

/// Every built-in file, partials first, as `(name, text)`.
pub(crate) fn files() -> impl Iterator<Item = (&'static str, &'static str)> {
    PARTIAL_FILES.iter().chain(MAIL_FILES.iter()).copied()
}

/// The built-in text of `file` (`ack_eligible.txt.hbs`, `partials/footer_text.hbs`).
pub(crate) fn get(file: &str) -> Option<&'static str> {
    files().find(|(name, _)| *name == file).map(|(_, text)| text)
}
