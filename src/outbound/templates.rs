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

use crate::text::one_line;

use super::context::sample_shapes;

/// The mails we send, each with its three template files.
pub const TEMPLATE_NAMES: [&str; 13] = [
    "too_large",
    "staff_delivery_failed",
    "ack_eligible",
    "ack_not_eligible",
    "ack_unknown_city",
    "ack_received",
    "admin_reply",
    "followup_added",
    "reply",
    "response",
    "staff_new_request",
    "staff_followup",
    "staff_command_error",
];
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

    /// Renders every mail with sample data, in each shape its context takes (an acknowledgement
    /// with and without a city, a reply with and without the staff member's own greeting, a
    /// command error with and without a request), so a misspelt field or a broken helper in an
    /// edited template is found by `intake311 check` rather than by the first mail that needs
    /// it. Returns how many renders that took.
    pub fn render_samples(&self) -> Result<usize, TemplateError> {
        let mut renders = 0;
        for name in TEMPLATE_NAMES {
            let shapes = sample_shapes(name).ok_or_else(|| TemplateError {
                file: self.dir.join(format!("{name}.txt.hbs")),
                reason: "no sample context for this mail (add one to context::sample_shapes)".into(),
            })?;
            for shape in &shapes {
                self.render(name, shape)?;
            }
            renders += shapes.len();
        }
        Ok(renders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::context::*;
    use crate::outbound::markdown::markdown_to_html;
    use crate::text::opens_with_greeting;

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
        for name in ["ack_eligible", "ack_not_eligible", "ack_unknown_city", "followup_added"] {
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
    fn staff_and_city_mails_render_and_escape() {
        let t = Templates::load(&templates_dir()).expect("templates load");
        let staff = StaffContext {
            service_name: "311 for Cities".into(),
            tracking: "311-2026-0042".into(),
            tag: "[311-2026-0042]".into(),
            subject: "Roads <i>now</i>".into(),
            city: "Dayton, OH".into(),
            official_name: "Jane <b>".into(),
            official_email: "jane@dayton.gov".into(),
            due_date: "Thursday, December 10, 2026".into(),
            status: "acknowledged".into(),
            eligibility: "eligible".into(),
            reason: "domain dayton.gov".into(),
            text: "Question with <script>x</script>".into(),
            attachments: vec!["plan.pdf".into()],
            intake_address: "intake@311.test".into(),
            help: crate::intake::commands::HELP.into(),
        };
        let r = t.render("staff_new_request", &staff).expect("render");
        assert_eq!(r.subject, "[311-2026-0042] New question from Dayton, OH: Roads <i>now</i>");
        assert!(r.text.contains("#respond") && r.text.contains("plan.pdf") && r.text.contains("<script>x</script>"));
        assert!(!r.html.contains("<script>") && !r.html.contains("<b>"), "{}", r.html);
        let r = t.render("staff_followup", &staff).expect("render");
        assert!(r.subject.starts_with("[311-2026-0042] Follow-up from Jane <b>: "), "{}", r.subject);

        let response = ResponseContext {
            service_name: "311 for Cities".into(),
            tracking: "311-2026-0042".into(),
            tag: "[311-2026-0042]".into(),
            subject: "Roads".into(),
            official_name: "Jane".into(),
            body_text: "**Findings**: fix the roads.".into(),
            body_html: markdown_to_html("**Findings**: fix the roads."),
            greeted: false,
            staff_name: "Ana".into(),
            attachments: vec!["memo.pdf".into()],
            intake_address: "intake@311.test".into(),
        };
        let r = t.render("response", &response).expect("render");
        assert_eq!(r.subject, "[311-2026-0042] Response: Roads");
        assert!(r.html.contains("<strong>Findings</strong>") && r.text.contains("**Findings**"));
        assert!(r.text.contains("Attached: memo.pdf") && r.text.contains("Ana"));
        assert!(r.text.contains("Dear Jane,") && r.html.contains("<p>Dear Jane,</p>"), "{}", r.text);
        let r = t.render("reply", &response).expect("render");
        assert_eq!(r.subject, "[311-2026-0042] Re: Roads");
        assert!(r.text.contains("Dear Jane,") && r.html.contains("<p>Dear Jane,</p>"), "{}", r.text);
        // Staff who greet the official themselves are not greeted over.
        let own = "Dear Mayor Jane,\n\nThe roads.";
        let greeted = ResponseContext {
            body_text: own.into(),
            body_html: markdown_to_html(own),
            greeted: opens_with_greeting(own, "Jane"),
            ..response
        };
        for name in ["response", "reply"] {
            let r = t.render(name, &greeted).expect("render");
            assert!(!r.text.contains("Dear Jane,") && !r.html.contains("Dear Jane,"), "{name}: {}", r.text);
            assert_eq!(r.text.matches("Dear Mayor Jane,").count(), 1, "{name}: {}", r.text);
        }

        let err = CommandErrorContext {
            service_name: "311 for Cities".into(),
            tag: String::new(),
            subject: "Roads".into(),
            error: "unknown command #frob".into(),
            help: "help".into(),
            intake_address: "intake@311.test".into(),
        };
        let r = t.render("staff_command_error", &err).expect("render");
        assert_eq!(r.subject, "Could not apply your command: Roads");
        assert!(r.text.contains("unknown command #frob") && r.text.contains("nothing was sent to the city"));
    }

    #[test]
    fn a_missing_template_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Templates::load(dir.path()).expect_err("empty dir").to_string();
        assert!(err.contains("partials/header_text.hbs") && err.contains("missing"), "{err}");
        let err = Templates::load(&dir.path().join("nope")).expect_err("no dir").to_string();
        assert!(err.contains("templates directory not found"), "{err}");
    }

    /// A copy of the shipped templates, to edit in a test.
    fn copy_shipped() -> tempfile::TempDir {
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
        dir
    }

    #[test]
    fn strict_mode_rejects_unknown_fields() {
        let dir = copy_shipped();
        std::fs::write(dir.path().join("ack_eligible.txt.hbs"), "Hello {{no_such_field}}").expect("write");
        let t = Templates::load(dir.path()).expect("compiles");
        let err = t.render("ack_eligible", &ctx()).expect_err("strict").to_string();
        assert!(err.contains("ack_eligible.txt.hbs"), "{err}");
    }

    #[test]
    fn samples_render_every_shipped_mail_and_catch_a_misspelt_field() {
        let t = Templates::load(&templates_dir()).expect("templates load");
        assert_eq!(t.render_samples().expect("samples"), 21);
        let dir = copy_shipped();
        let file = dir.path().join("response.txt.hbs");
        let text = std::fs::read_to_string(&file).expect("read").replace("{{body_text}}", "{{body_txt}}");
        std::fs::write(&file, text).expect("write");
        let t = Templates::load(dir.path()).expect("a misspelt field still compiles");
        let err = t.render_samples().expect_err("strict mode").to_string();
        assert!(err.contains("response.txt.hbs") && err.contains("body_txt"), "{err}");
    }
}
