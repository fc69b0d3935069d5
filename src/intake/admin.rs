//! Administrators' commands by mail (pure parsing): `#cities import` (with a CSV attached,
//! optionally `--replace`), `#cities export`, and `#confirm TOKEN` to apply a previewed import.
//! Only staff with the admin role and a verified sender may use them; from anyone else such a
//! subject is an ordinary question.

use crate::text::strip_reply_prefixes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    Import { replace: bool },
    Export,
    Confirm(String),
}

/// The command in a subject (after reply prefixes) or on the first line of the new content.
/// `#confirm` wins, because the admin confirms by replying to our `#cities import` preview.
pub fn parse(subject: &str, new_content: &str) -> Option<AdminCommand> {
    let subject = strip_reply_prefixes(subject);
    let first_line = new_content.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    for text in [first_line, subject.as_str()] {
        let words: Vec<&str> = text.split_whitespace().collect();
        if let [cmd, token, ..] = words.as_slice()
            && cmd.eq_ignore_ascii_case("#confirm")
        {
            return Some(AdminCommand::Confirm(
                token.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_ascii_uppercase(),
            ));
        }
    }
    let words: Vec<String> = subject.split_whitespace().map(str::to_ascii_lowercase).collect();
    match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["#cities", "import", rest @ ..] => {
            Some(AdminCommand::Import { replace: rest.iter().any(|w| *w == "--replace" || *w == "replace") })
        }
        ["#cities", "export", ..] => Some(AdminCommand::Export),
        _ => None,
    }
}

/// A one-time token: 10 characters without look-alikes (no 0/O, 1/I/L).
pub fn new_token() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..10).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_recognised() {
        assert_eq!(parse("#cities import", ""), Some(AdminCommand::Import { replace: false }));
        assert_eq!(parse("#Cities Import --replace", ""), Some(AdminCommand::Import { replace: true }));
        assert_eq!(parse("#cities export", "please"), Some(AdminCommand::Export));
        assert_eq!(
            parse("Re: #cities import", "#confirm abcd23efgh\n> quoted"),
            Some(AdminCommand::Confirm("ABCD23EFGH".into()))
        );
        assert_eq!(parse("#confirm XYZ", ""), Some(AdminCommand::Confirm("XYZ".into())));
        assert_eq!(parse("cities import", ""), None);
        assert_eq!(parse("Question about #cities import", ""), None);
        assert_eq!(parse("Water", "#confirm"), None, "a token is needed");
    }

    #[test]
    fn tokens_are_readable() {
        let t = new_token();
        assert_eq!(t.len(), 10);
        assert!(
            t.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) && !t.contains(['0', 'O', '1', 'I', 'L'])
        );
        assert_ne!(new_token(), t);
    }
}
