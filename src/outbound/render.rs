//! The old home of rendering, kept as a path: everything here now lives in
//! [`super::templates`], [`super::context`], [`super::markdown`] and [`crate::text`].
//! Callers may move to those paths; this module only re-exports them.

pub use super::context::{
    AckContext, AdminContext, CommandErrorContext, ResponseContext, StaffContext, TooLargeContext, human_bytes,
};
pub use super::markdown::markdown_to_html;
pub use super::templates::{PARTIAL_NAMES, Rendered, TEMPLATE_NAMES, TemplateError, Templates};
pub use crate::text::{one_line, opens_with_greeting, strip_reply_prefixes};
