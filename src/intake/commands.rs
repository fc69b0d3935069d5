//! Staff commands: the `#` lines at the top of a staff member's reply (pure).
//!
//! ```text
//! #assign me
//! #respond
//! Dear Mayor Rivera, ...
//! ```
//! Commands are the consecutive lines starting with `#` at the top of the new content (blank
//! lines between them are allowed); everything after is the body. `#note` (the default when there
//! is no body-carrying command), `#reply` and `#respond` say what the body is; `#assign me`,
//! `#assign EMAIL`, `#status STATUS`, `#due DATE REASON` and `#close` change the request. Anything else starting with
//! `#` at the top is an error, and nothing is applied.

use std::fmt;

use chrono::NaiveDate;

use crate::domain::{RequestStatus, normalize_email};

/// What the body of a staff reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// Internal note: stored, never sent.
    Note,
    /// Sent to the official as an intermediate message (e.g. asking for details).
    Reply,
    /// The finished response, sent to the official with the attachments.
    Respond,
}

/// Who `#assign` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    Me,
    Email(String),
}

/// One change a staff member asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Assign(Assignee),
    Status(RequestStatus),
    /// A new promised date, and why (the official is told both).
    Due {
        date: NaiveDate,
        reason: String,
    },
    /// The request's topics, as staff typed them (`NAME[, NAME]`; checked against the list when
    /// applied).
    Topics(String),
    /// Introduce the official to this expert (an address or a name on the roster); the body is
    /// the staff member's note in the introduction.
    Refer(String),
    Close,
}

/// A parsed staff message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMessage {
    pub kind: BodyKind,
    pub changes: Vec<Change>,
    pub body: String,
    /// Whether any `#` command was given at all.
    pub had_commands: bool,
}

impl StaffMessage {
    fn with(kind: BodyKind, changes: Vec<Change>, body: String) -> StaffMessage {
        StaffMessage { kind, changes, body, had_commands: true }
    }

    /// `#respond`: the finished response, sent to the official (status responded).
    pub fn respond(body: impl Into<String>) -> StaffMessage {
        Self::with(BodyKind::Respond, Vec::new(), body.into())
    }

    /// `#reply`: an intermediate message to the official (status waiting_on_city).
    pub fn reply(body: impl Into<String>) -> StaffMessage {
        Self::with(BodyKind::Reply, Vec::new(), body.into())
    }

    /// `#note`: an internal note, never sent.
    pub fn note(body: impl Into<String>) -> StaffMessage {
        Self::with(BodyKind::Note, Vec::new(), body.into())
    }

    /// `#assign WHO`.
    pub fn assign(who: Assignee) -> StaffMessage {
        Self::with(BodyKind::Note, vec![Change::Assign(who)], String::new())
    }

    /// `#status STATUS`.
    pub fn status(status: RequestStatus) -> StaffMessage {
        Self::with(BodyKind::Note, vec![Change::Status(status)], String::new())
    }

    /// `#due DATE REASON`.
    pub fn due(date: NaiveDate, reason: impl Into<String>) -> StaffMessage {
        Self::with(BodyKind::Note, vec![Change::Due { date, reason: reason.into() }], String::new())
    }

    /// `#close`, with an optional note (a referred request's outcome).
    pub fn close(note: impl Into<String>) -> StaffMessage {
        Self::with(BodyKind::Note, vec![Change::Close], note.into())
    }

    /// `#topic NAMES`.
    pub fn topics(names: impl Into<String>) -> StaffMessage {
        Self::with(BodyKind::Note, vec![Change::Topics(names.into())], String::new())
    }

    /// `#refer EXPERT` with the note for the introduction.
    pub fn refer(expert: impl Into<String>, note: impl Into<String>) -> StaffMessage {
        Self::with(BodyKind::Note, vec![Change::Refer(expert.into())], note.into())
    }

    /// Whether applying it queues mail to the official (`#reply`, `#respond`, `#refer`, or
    /// `#due`'s note).
    pub fn sends_mail(&self) -> bool {
        matches!(self.kind, BodyKind::Reply | BodyKind::Respond)
            || self.changes.iter().any(|c| matches!(c, Change::Due { .. } | Change::Refer(_)))
    }

    /// The expert of a `#refer`, if there is one.
    pub fn referral(&self) -> Option<&str> {
        self.changes.iter().find_map(|c| match c {
            Change::Refer(e) => Some(e.as_str()),
            _ => None,
        })
    }
}

/// A command that cannot be applied, in words for the staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError(pub String);

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shown to staff in notices and error replies.
pub const HELP: &str = "Reply to this mail to work on the request. Start your reply with one or more command lines:\n\
  #note              internal note, never sent to the city (the default when there is no command)\n\
  #reply             send the text below to the official, e.g. to ask for details (status: waiting_on_city)\n\
  #respond           send the text below and any attachments as the finished response (status: responded)\n\
  #assign me         assign the request to yourself; #assign EMAIL assigns it to another staff member\n\
  #status STATUS     set the status (new, acknowledged, assigned, in_progress, waiting_on_city, responded, closed)\n\
  #due DATE REASON   promise a new date (YYYY-MM-DD, a business day) and say why; the official is told\n\
  #topic NAMES       set the request's topics, e.g. #topic housing, finance (intake311 topics lists them)\n\
  #refer EXPERT      introduce the official to an expert on the roster (address or name); the text below is your note to both (status: referred)\n\
  #close             close the request; text below it is the outcome note (of a referral)\n\
Reply to this very mail (your reply proves it comes from staff; a new mail with only the [tracking number] in the \
subject is refused unless the receiving server verified you). Nothing you write here reaches the city unless you \
use #reply or #respond.";

/// Parses the commands at the top of `new_content`.
pub fn parse(new_content: &str) -> Result<StaffMessage, CommandError> {
    let mut kind: Option<BodyKind> = None;
    let mut changes = Vec::new();
    let mut had_commands = false;
    // Text after `#reply`/`#respond`/`#note` on the same line starts the body.
    let mut inline_body = String::new();
    let lines: Vec<&str> = new_content.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() {
            i += 1;
            continue;
        }
        let Some(cmd_line) = line.strip_prefix('#') else { break };
        had_commands = true;
        let mut words = cmd_line.split_whitespace();
        let name = words.next().unwrap_or_default().trim_end_matches(':').to_ascii_lowercase();
        let args: Vec<&str> = words.collect();
        let set_kind = |kind: &mut Option<BodyKind>, k: BodyKind| -> Result<(), CommandError> {
            match kind {
                Some(prev) if *prev != k => Err(CommandError(format!(
                    "`{line}`: only one of #note, #reply and #respond can be given (already: #{})",
                    kind_name(*prev)
                ))),
                _ => {
                    *kind = Some(k);
                    Ok(())
                }
            }
        };
        match name.as_str() {
            "note" | "reply" | "respond" | "response" => {
                let k = match name.as_str() {
                    "note" => BodyKind::Note,
                    "reply" => BodyKind::Reply,
                    _ => BodyKind::Respond,
                };
                set_kind(&mut kind, k)?;
                if !args.is_empty() {
                    inline_body = args.join(" ");
                }
            }
            "close" => {
                if !args.is_empty() {
                    return Err(CommandError(format!("`{line}`: #close takes no argument")));
                }
                changes.push(Change::Close);
            }
            "assign" => match args.as_slice() {
                [] => return Err(CommandError(format!("`{line}`: #assign needs `me` or a staff email address"))),
                [who] if who.eq_ignore_ascii_case("me") => changes.push(Change::Assign(Assignee::Me)),
                [who] => match normalize_email(who) {
                    Some(email) => changes.push(Change::Assign(Assignee::Email(email))),
                    None => return Err(CommandError(format!("`{line}`: `{who}` is not `me` or an email address"))),
                },
                _ => return Err(CommandError(format!("`{line}`: #assign takes one argument"))),
            },
            "status" => match args.as_slice() {
                [s] => match s.parse::<RequestStatus>() {
                    Ok(RequestStatus::Referred) => {
                        return Err(CommandError(format!(
                            "`{line}`: a request is referred by introducing an expert: #refer EXPERT"
                        )));
                    }
                    Ok(st) => changes.push(Change::Status(st)),
                    Err(e) => return Err(CommandError(format!("`{line}`: {e}"))),
                },
                _ => return Err(CommandError(format!("`{line}`: #status needs one status, e.g. #status in_progress"))),
            },
            "due" => match args.split_first() {
                Some((date, reason)) if !reason.is_empty() => match NaiveDate::parse_from_str(date, "%Y-%m-%d") {
                    Ok(date) => changes.push(Change::Due { date, reason: reason.join(" ") }),
                    Err(_) => {
                        return Err(CommandError(format!("`{line}`: `{date}` is not a date (write it YYYY-MM-DD)")));
                    }
                },
                Some(_) => {
                    return Err(CommandError(format!(
                        "`{line}`: #due needs a reason after the date, e.g. #due 2027-02-03 waiting for the state's data"
                    )));
                }
                None => {
                    return Err(CommandError(format!(
                        "`{line}`: #due needs a date and a reason, e.g. #due 2027-02-03 waiting for the state's data"
                    )));
                }
            },
            "topic" | "topics" => {
                if args.is_empty() {
                    return Err(CommandError(format!(
                        "`{line}`: #topic needs one or more topic names, e.g. #topic housing, finance"
                    )));
                }
                changes.push(Change::Topics(args.join(" ")));
            }
            "refer" => {
                if args.is_empty() {
                    return Err(CommandError(format!(
                        "`{line}`: #refer needs an expert's address or name (intake311 experts list)"
                    )));
                }
                if changes.iter().any(|c| matches!(c, Change::Refer(_))) {
                    return Err(CommandError(format!("`{line}`: one #refer per message")));
                }
                changes.push(Change::Refer(args.join(" ")));
            }
            "" => return Err(CommandError(format!("`{line}`: a command name must follow `#`"))),
            other => {
                return Err(CommandError(format!(
                    "`{line}`: unknown command #{other} (commands: #note, #reply, #respond, #assign, #status, #due, #topic, #refer, #close)"
                )));
            }
        }
        i += 1;
    }
    let rest = lines[i.min(lines.len())..].join("\n");
    let body = if inline_body.is_empty() {
        rest.trim().to_string()
    } else {
        format!("{inline_body}\n{rest}").trim().to_string()
    };
    let kind = kind.unwrap_or(BodyKind::Note);
    if kind != BodyKind::Note && changes.iter().any(|c| matches!(c, Change::Refer(_))) {
        return Err(CommandError(format!(
            "#refer sends its own introduction; the text below it is your note to the official and the expert, so leave out #{}",
            kind_name(kind)
        )));
    }
    if matches!(kind, BodyKind::Reply | BodyKind::Respond) && body.is_empty() {
        return Err(CommandError(format!("#{} needs the text to send below the command line", kind_name(kind))));
    }
    Ok(StaffMessage { kind, changes, body, had_commands })
}

/// Whether the text starts with a `#` line, i.e. the sender meant to give commands (valid or not).
pub fn looks_like_commands(new_content: &str) -> bool {
    new_content.lines().map(str::trim).find(|l| !l.is_empty()).is_some_and(|l| l.starts_with('#'))
}

pub fn kind_name(k: BodyKind) -> &'static str {
    match k {
        BodyKind::Note => "note",
        BodyKind::Reply => "reply",
        BodyKind::Respond => "respond",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_command_is_a_note() {
        let m = parse("Called the mayor, will follow up.\n").expect("parses");
        assert_eq!(m.kind, BodyKind::Note);
        assert!(!m.had_commands && m.changes.is_empty());
        assert_eq!(m.body, "Called the mayor, will follow up.");
    }

    #[test]
    fn commands_at_the_top_then_body() {
        let m = parse("\n#assign me\n\n#RESPOND\nDear Mayor,\n#1 finding: ...\n").expect("parses");
        assert_eq!(m.kind, BodyKind::Respond);
        assert_eq!(m.changes, vec![Change::Assign(Assignee::Me)]);
        assert_eq!(m.body, "Dear Mayor,\n#1 finding: ...", "a # line inside the body is text");
        let m = parse("#assign Ana@311.test\n#status in-progress").expect("parses");
        assert_eq!(
            m.changes,
            vec![Change::Assign(Assignee::Email("ana@311.test".into())), Change::Status(RequestStatus::InProgress)]
        );
        assert_eq!(parse("#close").expect("parses").changes, vec![Change::Close]);
        let m = parse("#reply: Could you send the budget?\nThanks").expect("parses");
        assert_eq!((m.kind, m.body.as_str()), (BodyKind::Reply, "Could you send the budget?\nThanks"));
    }

    #[test]
    fn command_mail_is_recognised_even_when_malformed() {
        assert!(looks_like_commands("\n  #frobnicate\nhello"));
        assert!(looks_like_commands("#respond\nDear Mayor"));
        assert!(!looks_like_commands("Hello #1 team"));
        assert!(!looks_like_commands(""));
    }

    #[test]
    fn constructors_equal_what_the_parser_makes() {
        let parsed = |s: &str| parse(s).expect(s);
        assert_eq!(StaffMessage::respond("Dear Mayor"), parsed("#respond\nDear Mayor"));
        assert_eq!(StaffMessage::reply("Which year?"), parsed("#reply\nWhich year?"));
        assert_eq!(StaffMessage::note("Called"), parsed("#note\nCalled"));
        assert_eq!(StaffMessage::assign(Assignee::Email("ana@311.test".into())), parsed("#assign ana@311.test"));
        assert_eq!(StaffMessage::assign(Assignee::Me), parsed("#assign me"));
        assert_eq!(StaffMessage::status(RequestStatus::InProgress), parsed("#status in_progress"));
        assert_eq!(StaffMessage::close(""), parsed("#close"));
        assert_eq!(StaffMessage::close("The city adopted it."), parsed("#close\nThe city adopted it."));
        assert_eq!(StaffMessage::topics("housing, finance"), parsed("#topic housing, finance"));
        assert_eq!(
            StaffMessage::refer("Dr. Lee", "Dr. Lee ran the lead-line programme in Flint."),
            parsed("#refer Dr. Lee\nDr. Lee ran the lead-line programme in Flint.")
        );
        assert_eq!(parsed("#refer lee@water.test\nnote").referral(), Some("lee@water.test"));
        assert!(StaffMessage::refer("lee@water.test", "").sends_mail(), "the introduction is mail");
        let feb3 = NaiveDate::from_ymd_opt(2027, 2, 3).expect("date");
        assert_eq!(
            StaffMessage::due(feb3, "waiting for the state's data"),
            parsed("#due 2027-02-03 waiting for the state's data")
        );
        assert!(StaffMessage::due(feb3, "x").sends_mail(), "the official is told of a new date");
        assert!(StaffMessage::respond("x").sends_mail() && StaffMessage::reply("x").sends_mail());
        assert!(!StaffMessage::note("x").sends_mail() && !StaffMessage::close("").sends_mail());
    }

    #[test]
    fn bad_commands_are_named() {
        for (input, needle) in [
            ("#frobnicate\nhello", "unknown command #frobnicate"),
            ("#assign", "#assign needs"),
            ("#assign someone", "is not `me` or an email"),
            ("#status done", "unknown status `done`"),
            ("#status", "#status needs one status"),
            ("#due", "#due needs a date and a reason"),
            ("#due 2027-02-03", "#due needs a reason after the date"),
            ("#due 3 Feb 2027 late data", "`3` is not a date (write it YYYY-MM-DD)"),
            ("#respond", "#respond needs the text"),
            ("#reply\n#respond\nbody", "only one of #note, #reply and #respond"),
            ("#close now", "#close takes no argument"),
            ("#topic", "#topic needs one or more topic names"),
            ("#refer", "#refer needs an expert's address or name"),
            ("#refer a@x.test\n#refer b@x.test", "one #refer per message"),
            ("#refer a@x.test\n#respond\ntext", "#refer sends its own introduction"),
            ("#status referred", "#refer EXPERT"),
            ("# \nbody", "a command name must follow"),
        ] {
            let err = parse(input).expect_err(input).to_string();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }
}
