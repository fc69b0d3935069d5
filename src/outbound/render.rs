//! Handlebars templates: loaded once from `intake.templates_dir`, in strict mode, one typed
//! context per kind of mail.
//!
//! Each mail has three files: `NAME.subject.hbs`, `NAME.txt.hbs` and `NAME.html.hbs`, plus shared
//! partials in `partials/` (`header_text`, `footer_text`, `header_html`, `footer_html`). HTML
//! templates escape every `{{value}}`; text and subject templates do not (they are not HTML),
//! and the subject is folded onto one line so no value can start a new header.

use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use serde::Serialize;

use crate::inbound::one_line;

/// The mails we send, each with its three template files.
pub const TEMPLATE_NAMES: [&str; 3] = ["ack_eligible", "ack_not_eligible", "ack_unknown_city"];
/// Shared partials, each `partials/NAME.hbs`.
pub const PARTIAL_NAMES: [&str; 4] = ["header_text", "footer_text", "header_html", "footer_html"];
const PARTS: [&str; 3] = ["subject", "txt", "html"];

/// A template that is missing or does not compile: the file, and why.
#[derive(Debug, thiserror::Error)]
#[error("template {file}: {reason}")]
pub struct TemplateError {
    pub file: PathBuf,
    pub reason: String,
}

/// A rendered mail, before it becomes MIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What every acknowledgement template can use.
#[derive(Debug, Clone, Serialize)]
pub struct AckContext {
    pub service_name: String,
    /// `311-2026-0042`
    pub tracking: String,
    /// `[311-2026-0042]`
    pub tag: String,
    /// The official's subject without leading Re:/Fwd: prefixes; `(no subject)` when empty.
    pub subject: String,
    pub official_name: String,
    pub official_email: String,
    /// `Dayton, OH` when a city was found.
    pub city: Option<String>,
    /// The promised response date, e.g. `Thursday, December 10, 2026`.
    pub due_date: String,
    pub response_days: u32,
    pub intake_address: String,
    /// Why the decision was made (for the not-eligible text).
    pub reason: String,
}

/// Compiled templates. Built once at start; rendering never touches the disk.
#[derive(Debug)]
pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    pub dir: PathBuf,
}

fn read(file: &Path) -> Result<String, TemplateError> {
    std::fs::read_to_string(file).map_err(|e| TemplateError {
        file: file.to_path_buf(),
        reason: if e.kind() == std::io::ErrorKind::NotFound { "missing".into() } else { e.to_string() },
    })
}

impl Templates {
    /// Loads and compiles every template and partial; the first problem is returned.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        if !dir.is_dir() {
            return Err(TemplateError { file: dir.to_path_buf(), reason: "templates directory not found".into() });
        }
        let mut html = Handlebars::new();
        let mut text = Handlebars::new();
        html.set_strict_mode(true);
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        for partial in PARTIAL_NAMES {
            let file = dir.join("partials").join(format!("{partial}.hbs"));
            let src = read(&file)?;
            let reg = if partial.ends_with("_html") { &mut html } else { &mut text };
            reg.register_partial(partial, src)
                .map_err(|e| TemplateError { file: file.clone(), reason: e.to_string() })?;
        }
        for name in TEMPLATE_NAMES {
            for part in PARTS {
                let file = dir.join(format!("{name}.{part}.hbs"));
                let src = read(&file)?;
                let reg = if part == "html" { &mut html } else { &mut text };
                reg.register_template_string(&format!("{name}.{part}"), src)
                    .map_err(|e| TemplateError { file: file.clone(), reason: e.to_string() })?;
            }
        }
        Ok(Templates { html, text, dir: dir.to_path_buf() })
    }

    /// Renders the three parts of `name` with `ctx`.
    pub fn render<T: Serialize>(&self, name: &str, ctx: &T) -> Result<Rendered, TemplateError> {
        let err = |part: &str, e: handlebars::RenderError| TemplateError {
            file: self.dir.join(format!("{name}.{part}.hbs")),
            reason: e.to_string(),
        };
        let subject = self.text.render(&format!("{name}.subject"), ctx).map_err(|e| err("subject", e))?;
        let text = self.text.render(&format!("{name}.txt"), ctx).map_err(|e| err("txt", e))?;
        let html = self.html.render(&format!("{name}.html"), ctx).map_err(|e| err("html", e))?;
        Ok(Rendered { subject: one_line(&subject), text, html })
    }
}

/// The subject without any stack of reply/forward prefixes (`Re: AW: Fwd: …`).
pub fn strip_reply_prefixes(subject: &str) -> String {
    const PREFIXES: [&str; 12] = ["re", "fw", "fwd", "aw", "wg", "sv", "vs", "réf", "ref", "tr", "antw", "rv"];
    let mut s = subject.trim();
    while let Some((head, rest)) = s.split_once(':') {
        let head_l = head.trim().to_lowercase();
        let head_l = head_l.split('[').next().unwrap_or_default().trim().to_string();
        if !PREFIXES.contains(&head_l.as_str()) {
            break;
        }
        s = rest.trim_start();
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates")
    }

    fn ctx() -> AckContext {
        AckContext {
            service_name: "311 for Cities".into(),
            tracking: "311-2026-0042".into(),
            tag: "[311-2026-0042]".into(),
            subject: "Water <b>main</b> & financing".into(),
            official_name: "Jane <script>alert(1)</script>".into(),
            official_email: "jane@dayton.gov".into(),
            city: Some("Dayton, OH".into()),
            due_date: "Thursday, December 10, 2026".into(),
            response_days: 10,
            intake_address: "intake@311.test".into(),
            reason: "domain dayton.gov → Dayton, OH (eligible)".into(),
        }
    }

    #[test]
    fn shipped_templates_compile_and_render_every_outcome() {
        let t = Templates::load(&templates_dir()).expect("templates load");
        for name in TEMPLATE_NAMES {
            let mut c = ctx();
            if name == "ack_unknown_city" {
                c.city = None;
            }
            let r = t.render(name, &c).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                r.subject.starts_with("[311-2026-0042] Re: Water <b>main</b> & financing"),
                "{name}: {}",
                r.subject
            );
            assert!(r.text.contains("311-2026-0042"), "{name}");
            assert!(r.html.contains("311-2026-0042"), "{name}");
            assert!(!r.html.contains("<script>"), "{name}: sender text must be escaped in HTML");
            assert!(r.html.contains("&lt;script&gt;") || !r.html.contains("Jane"), "{name}");
            assert!(!r.html.contains("<b>main</b>"), "{name}");
            assert!(r.text.contains("Jane <script>"), "{name}: text is not HTML-escaped");
        }
        let eligible = t.render("ack_eligible", &ctx()).expect("render");
        assert!(eligible.text.contains("Thursday, December 10, 2026"));
    }

    #[test]
    fn a_missing_template_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Templates::load(dir.path()).expect_err("empty dir").to_string();
        assert!(err.contains("partials/header_text.hbs") && err.contains("missing"), "{err}");
        let err = Templates::load(&dir.path().join("nope")).expect_err("no dir").to_string();
        assert!(err.contains("templates directory not found"), "{err}");
    }

    #[test]
    fn strict_mode_rejects_unknown_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        for entry in std::fs::read_dir(templates_dir()).expect("read dir").flatten() {
            if entry.path().is_file() {
                std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
            }
        }
        std::fs::create_dir(dir.path().join("partials")).expect("mkdir");
        for p in PARTIAL_NAMES {
            std::fs::copy(
                templates_dir().join("partials").join(format!("{p}.hbs")),
                dir.path().join("partials").join(format!("{p}.hbs")),
            )
            .expect("copy partial");
        }
        std::fs::write(dir.path().join("ack_eligible.txt.hbs"), "Hello {{no_such_field}}").expect("write");
        let t = Templates::load(dir.path()).expect("compiles");
        let err = t.render("ack_eligible", &ctx()).expect_err("strict").to_string();
        assert!(err.contains("ack_eligible.txt.hbs"), "{err}");
    }

    #[test]
    fn reply_prefixes_are_stripped() {
        assert_eq!(strip_reply_prefixes("Re: AW: Fwd: Water"), "Water");
        assert_eq!(strip_reply_prefixes("RE[2]: SV: VS: Réf: Roads"), "Roads");
        assert_eq!(strip_reply_prefixes("Question: roads"), "Question: roads");
        assert_eq!(strip_reply_prefixes(""), "");
    }
}
