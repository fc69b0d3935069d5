//! Handlebars templates: built into the binary, optionally overridden file by file from the
//! folder `intake.templates_dir`, compiled once in strict mode, one typed context per kind of
//! mail.
//!
//! Each mail has three files: `NAME.subject.hbs`, `NAME.txt.hbs` and `NAME.html.hbs`, plus shared
//! partials in `partials/` (`header_text`, `footer_text`, `header_html`, `footer_html`). HTML
//! templates escape every `{{value}}`; text and subject templates do not (they are not HTML),
//! and the subject is folded onto one line so no value can start a new header.
//!
//! Owns: the built-in set ([`builtin`]), the override folder and `templates export`
//! ([`overrides`]), loading and rendering. Talks to: [`super::context`] for sample data, and the
//! file system only while loading or exporting.

mod builtin;
mod overrides;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use serde::Serialize;

use crate::text::one_line;

use super::context::sample_shapes;
use overrides::Override;
pub use overrides::export_builtin;

pub use builtin::TEMPLATE_NAMES;
/// Shared partials, each `partials/NAME.hbs`.
pub const PARTIAL_NAMES: [&str; 4] = ["header_text", "footer_text", "header_html", "footer_html"];
const PARTS: [&str; 3] = ["subject", "txt", "html"];

/// A template that is missing, unknown, does not compile or does not render: which one (a
/// built-in file name, or the path of an override), and why.
#[derive(Debug, thiserror::Error)]
#[error("template {file}: {reason}")]
pub struct TemplateError {
    pub file: String,
    pub reason: String,
}

/// A rendered mail, before it becomes MIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Where a set of templates came from: the built-in set, and the override folder if one is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(Option<PathBuf>);

impl Origin {
    /// The override folder, if one was given.
    pub fn overrides_dir(&self) -> Option<&Path> {
        self.0.as_deref()
    }
    /// For messages: `built-in templates` or `built-in templates with overrides from DIR`.
    pub fn display(&self) -> &Self {
        self
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("built-in templates"),
            Some(dir) => write!(f, "built-in templates with overrides from {}", dir.display()),
        }
    }
}

/// What [`Templates::load`] takes as the override folder: an `Option<&Path>`, or
/// `&Option<PathBuf>` as `intake.templates_dir` holds it.
pub trait OverrideDir<'a> {
    fn override_dir(self) -> Option<&'a Path>;
}

impl<'a> OverrideDir<'a> for Option<&'a Path> {
    fn override_dir(self) -> Option<&'a Path> {
        self
    }
}

impl<'a> OverrideDir<'a> for &'a Option<PathBuf> {
    fn override_dir(self) -> Option<&'a Path> {
        self.as_deref()
    }
}

/// Compiled templates. Built once at start; rendering never touches the disk.
#[derive(Debug)]
pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    /// Where the templates came from, for messages.
    pub dir: Origin,
    /// The files taken from the override folder, by built-in name.
    overrides: BTreeMap<String, Override>,
}

impl Templates {
    /// The built-in templates, with each file in `overrides` (if given) replacing the built-in
    /// one of the same name; then every mail is rendered with sample data
    /// ([`Templates::render_samples`]). A missing override folder, a file there that has no
    /// built-in counterpart, a template that does not compile and one that fails with sample
    /// data are each an error naming the file.
    pub fn load<'a>(overrides: impl OverrideDir<'a>) -> Result<Templates, TemplateError> {
        let templates = Templates::compile(overrides.override_dir())?;
        templates.render_samples()?;
        Ok(templates)
    }

    fn compile(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let overrides = match dir {
            Some(dir) => overrides::read(dir)?,
            None => BTreeMap::new(),
        };
        let mut templates = Templates {
            html: Handlebars::new(),
            text: Handlebars::new(),
            dir: Origin(dir.map(Path::to_path_buf)),
            overrides,
        };
        templates.html.set_strict_mode(true);
        templates.text.set_strict_mode(true);
        templates.text.register_escape_fn(handlebars::no_escape);
        for (file, builtin) in builtin::files() {
            let src = templates.overrides.get(file).map_or(builtin, |o| o.text.as_str()).to_string();
            let label = templates.label(file);
            let err = |e: handlebars::TemplateError| TemplateError { file: label, reason: e.to_string() };
            let result = if let Some(partial) = file.strip_prefix("partials/").and_then(|f| f.strip_suffix(".hbs")) {
                let reg = if partial.ends_with("_html") { &mut templates.html } else { &mut templates.text };
                reg.register_partial(partial, src)
            } else {
                let name = file.strip_suffix(".hbs").unwrap_or(file);
                let reg = if name.ends_with(".html") { &mut templates.html } else { &mut templates.text };
                reg.register_template_string(name, src)
            };
            result.map_err(err)?;
        }
        Ok(templates)
    }

    /// How a file is named in errors: the override's path, or the built-in name.
    fn label(&self, file: &str) -> String {
        match self.overrides.get(file) {
            Some(o) => format!("{} (override)", o.path.display()),
            None => format!("{file} (built-in)"),
        }
    }

    /// The files replaced from the override folder (`ack_eligible.txt.hbs`,
    /// `partials/footer_text.hbs`), sorted.
    pub fn overridden(&self) -> Vec<String> {
        self.overrides.keys().cloned().collect()
    }

    /// The overrides whose text is byte for byte the built-in one: they change nothing today,
    /// and would hide a later release's fix to that file.
    pub fn unchanged_overrides(&self) -> Vec<String> {
        self.overrides
            .iter()
            .filter(|(f, o)| builtin::get(f) == Some(o.text.as_str()))
            .map(|(f, _)| f.clone())
            .collect()
    }

    /// Renders the three parts of `name` with `ctx`.
    pub fn render<T: Serialize>(&self, name: &str, ctx: &T) -> Result<Rendered, TemplateError> {
        let err = |part: &str, e: handlebars::RenderError| TemplateError {
            file: self.label(&format!("{name}.{part}.hbs")),
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
    /// edited template is found by `intake311 check` and at start-up rather than by the first
    /// mail that needs it. Returns how many renders that took.
    pub fn render_samples(&self) -> Result<usize, TemplateError> {
        let mut renders = 0;
        for name in TEMPLATE_NAMES {
            let shapes = sample_shapes(name).ok_or_else(|| TemplateError {
                file: self.label(&format!("{name}.txt.hbs")),
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
mod tests;
