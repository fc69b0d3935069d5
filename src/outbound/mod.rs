//! Everything we send: the templates ([`templates`]), their typed contexts ([`context`]) and
//! staff Markdown ([`markdown`]), turning a rendered mail into RFC 5322 bytes with
//! the headers that keep threads and robots in order ([`compose`]), and the outbox worker that
//! sends queued rows through lettre ([`worker`]).
//!
//! Talks to: [`crate::store`] (outbox rows) and the SMTP server.

pub mod context;
pub mod markdown;
pub mod smtp;
pub mod templates;
pub mod worker;

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

pub use context::AckContext;
pub use templates::{Rendered, TemplateError, Templates, export_builtin};

/// A new Message-ID (without angle brackets) in our domain. Fixed when the outbox row is
/// written, so a resend after a crash carries the same one.
pub fn new_message_id(domain: &str) -> String {
    format!("intake311.{}@{}", uuid::Uuid::new_v4().simple(), domain)
}

/// A file sent with a mail, byte for byte as received or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutAttachment {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// An image the HTML part shows inline, as `<img src="cid:CONTENT_ID">`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineImage {
    /// Without angle brackets, e.g. `topics.a1b2@311.test`.
    pub content_id: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Threading and automation facts for one outgoing mail.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub from: &'a Mailbox,
    /// Reply-To (none, one, or several addresses).
    pub reply_to: &'a [Mailbox],
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    /// Without angle brackets.
    pub message_id: &'a str,
    /// The message we answer (without brackets), if any.
    pub in_reply_to: Option<&'a str>,
    /// The thread so far (without brackets), oldest first.
    pub references: &'a [String],
    /// `Auto-Submitted` value: `auto-replied` for answers to a mail, `auto-generated` otherwise.
    pub auto_submitted: Option<&'a str>,
    pub tracking: Option<&'a str>,
    /// Our intake address, for the loop header.
    pub loop_address: &'a str,
}

fn raw_header(name: &'static str, value: String) -> anyhow::Result<HeaderValue> {
    let name = HeaderName::new_from_ascii(name.to_string()).map_err(|_| anyhow::anyhow!("bad header name {name}"))?;
    Ok(HeaderValue::new(name, value))
}

/// The mailbox with its display name folded onto one line. lettre panics while formatting a
/// name that contains CR or LF, and a sender controls the names we answer to.
fn safe(mailbox: &Mailbox) -> Mailbox {
    Mailbox::new(mailbox.name.as_deref().map(crate::text::one_line).filter(|n| !n.is_empty()), mailbox.email.clone())
}

/// Builds the message (multipart/alternative, inside multipart/mixed when there are
/// attachments) and returns its bytes.
pub fn compose(env: &Envelope<'_>, rendered: &Rendered, attachments: &[OutAttachment]) -> anyhow::Result<Vec<u8>> {
    compose_with_inline(env, rendered, &[], attachments)
}

/// As [`compose`], with images the HTML shows inline: the HTML part and the images go into a
/// multipart/related inside the alternative, each image with its Content-ID, so a mail reader
/// that shows the text part does not list them as attachments.
pub fn compose_with_inline(
    env: &Envelope<'_>,
    rendered: &Rendered,
    inline: &[InlineImage],
    attachments: &[OutAttachment],
) -> anyhow::Result<Vec<u8>> {
    let mut builder = Message::builder()
        .from(safe(env.from))
        .subject(crate::text::one_line(&rendered.subject))
        .message_id(Some(format!("<{}>", env.message_id)))
        .date_now();
    for r in env.reply_to {
        builder = builder.reply_to(safe(r));
    }
    for to in &env.to {
        builder = builder.to(safe(to));
    }
    for cc in &env.cc {
        builder = builder.cc(safe(cc));
    }
    if let Some(parent) = env.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    if !env.references.is_empty() {
        let refs: Vec<String> = env.references.iter().map(|r| format!("<{r}>")).collect();
        builder = builder.references(refs.join(" "));
    }
    if let Some(auto) = env.auto_submitted {
        builder = builder.raw_header(raw_header("Auto-Submitted", auto.to_string())?);
        builder = builder.raw_header(raw_header("X-Auto-Response-Suppress", "All".to_string())?);
    }
    builder = builder.raw_header(raw_header("X-Intake311-Loop", env.loop_address.to_string())?);
    if let Some(t) = env.tracking {
        builder = builder.raw_header(raw_header("X-Intake311-Tracking", t.to_string())?);
    }
    let alternative = if inline.is_empty() {
        MultiPart::alternative_plain_html(rendered.text.clone(), rendered.html.clone())
    } else {
        let mut related = MultiPart::related().singlepart(SinglePart::html(rendered.html.clone()));
        for image in inline {
            let ct = ContentType::parse(&image.content_type)
                .map_err(|e| anyhow::anyhow!("content type of inline image {}: {e}", image.content_id))?;
            related = related.singlepart(Attachment::new_inline(image.content_id.clone()).body(image.data.clone(), ct));
        }
        MultiPart::alternative().singlepart(SinglePart::plain(rendered.text.clone())).multipart(related)
    };
    let body = if attachments.is_empty() {
        alternative
    } else {
        let mut mixed = MultiPart::mixed().multipart(alternative);
        for a in attachments {
            let ct = ContentType::parse(&a.content_type)
                .or_else(|_| ContentType::parse("application/octet-stream"))
                .map_err(|e| anyhow::anyhow!("content type of {}: {e}", a.filename))?;
            let name = crate::text::sanitize_filename(&a.filename);
            mixed = mixed.singlepart(Attachment::new(name).body(a.data.clone(), ct));
        }
        mixed
    };
    let message = builder.multipart(body).map_err(|e| anyhow::anyhow!("building the message: {e}"))?;
    Ok(message.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_mail_threads_and_marks_itself_automatic() {
        let from: Mailbox = "311 for Cities <intake@311.test>".parse().expect("mailbox");
        let to = Mailbox::new(Some("Jane\r\nBcc: evil@x.test".into()), "jane@dayton.gov".parse().expect("address"));
        let refs = vec!["a@x".to_string(), "q1@dayton.gov".to_string()];
        let env = Envelope {
            from: &from,
            reply_to: std::slice::from_ref(&from),
            to: vec![to],
            cc: vec![],
            message_id: "intake311.abc@311.test",
            in_reply_to: Some("q1@dayton.gov"),
            references: &refs,
            auto_submitted: Some("auto-replied"),
            tracking: Some("311-2026-0001"),
            loop_address: "intake@311.test",
        };
        let rendered =
            Rendered { subject: "[311-2026-0001] Re: Water".into(), text: "Hello".into(), html: "<p>Hello</p>".into() };
        let raw = compose(&env, &rendered, &[]).expect("compose");
        let parsed = crate::inbound::parse(&raw).expect("our own mail parses");
        assert_eq!(parsed.message_id, "intake311.abc@311.test");
        assert_eq!(parsed.in_reply_to, vec!["q1@dayton.gov"]);
        assert_eq!(parsed.references, refs);
        assert_eq!(parsed.subject, "[311-2026-0001] Re: Water");
        assert_eq!(parsed.automation.auto_submitted.as_deref(), Some("auto-replied"));
        assert!(parsed.automation.own_loop);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("X-Auto-Response-Suppress: All"));
        assert!(!text.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "no injected header:\n{text}");
        assert!(text.contains("multipart/alternative"));

        let pdf = OutAttachment {
            filename: "../memo.pdf".into(),
            content_type: "application/pdf".into(),
            data: vec![0, 159, 146, 150, 255],
        };
        let raw = compose(&env, &rendered, std::slice::from_ref(&pdf)).expect("compose");
        let parsed = crate::inbound::parse(&raw).expect("parses");
        assert_eq!(parsed.attachments.len(), 1);
        assert_eq!(parsed.attachments[0].filename, "memo.pdf");
        assert_eq!(parsed.attachments[0].data, pdf.data, "attachment bytes go through unchanged");
        assert!(parsed.text.contains("Hello"));
    }

    #[test]
    fn inline_images_sit_beside_the_html_in_multipart_related() {
        use mail_parser::MimeHeaders as _;
        let from: Mailbox = "311 for Cities <intake@311.test>".parse().expect("mailbox");
        let env = Envelope {
            from: &from,
            reply_to: &[],
            to: vec![from.clone()],
            cc: vec![],
            message_id: "intake311.r@311.test",
            in_reply_to: None,
            references: &[],
            auto_submitted: Some("auto-generated"),
            tracking: None,
            loop_address: "intake@311.test",
        };
        let rendered = Rendered {
            subject: "Report".into(),
            text: "Figures".into(),
            html: "<p>Figures</p><img src=\"cid:topics.1@311.test\">".into(),
        };
        let png = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
        let image =
            InlineImage { content_id: "topics.1@311.test".into(), content_type: "image/png".into(), data: png.clone() };
        let raw = compose_with_inline(&env, &rendered, std::slice::from_ref(&image), &[]).expect("compose");
        let message = mail_parser::MessageParser::default().parse(&raw).expect("parses");
        let root = message.root_part();
        assert_eq!(root.content_type().map(|c| (c.ctype(), c.subtype())), Some(("multipart", Some("alternative"))));
        assert_eq!(message.text_body.len(), 1);
        assert_eq!(message.body_text(0).as_deref(), Some("Figures"));
        assert!(message.body_html(0).is_some_and(|h| h.contains("cid:topics.1@311.test")));
        let image_part = message
            .parts
            .iter()
            .find(|p| p.content_type().is_some_and(|c| c.ctype() == "image"))
            .expect("the image part");
        assert_eq!(image_part.content_id(), Some("topics.1@311.test"));
        assert_eq!(image_part.contents(), &png[..]);
        let text = String::from_utf8_lossy(&raw);
        let related = text.find("multipart/related").expect("a multipart/related part");
        assert!(related > text.find("multipart/alternative").expect("alternative"), "related inside alternative");
        // Without images the mail is as before.
        let plain = String::from_utf8_lossy(&compose(&env, &rendered, &[]).expect("compose")).to_string();
        assert!(!plain.contains("multipart/related"));
    }
}
