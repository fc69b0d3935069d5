//! Reply stripping: the new content of a reply, without the quoted history and the signature.
//! (Placeholder; the full implementation lands with its corpus measurement.)

/// A reply body split into what the sender wrote now, their signature, and the quoted history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyParts {
    /// The new text, trimmed.
    pub visible: String,
    pub signature: Option<String>,
    pub quoted: Option<String>,
}

/// Splits a plain-text reply body.
pub fn split_reply(body: &str) -> ReplyParts {
    let mut visible = Vec::new();
    for line in body.lines() {
        if line.starts_with('>') {
            break;
        }
        visible.push(line);
    }
    ReplyParts { visible: visible.join("\n").trim().to_string(), signature: None, quoted: None }
}

/// The new content of a reply: [`split_reply`]'s visible part.
pub fn new_content(body: &str) -> String {
    split_reply(body).visible
}
