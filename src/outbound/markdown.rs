//! Staff-written Markdown (or plain text) as the HTML part of a mail.
//!
//! Owns: the pulldown-cmark options and the rule that raw HTML is shown, never interpreted.
//! Talks to: nothing.

/// Staff-written Markdown (or plain text) as HTML. Raw HTML in the input is shown as text, not
/// interpreted, so nothing in a staff reply can inject markup.
pub fn markdown_to_html(text: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, html};
    let parser = Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(|ev| match ev {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::SoftBreak => Event::HardBreak,
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, parser);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_html_is_not_interpreted() {
        let html = markdown_to_html("**Findings**\n\n- one\n- two\n\n<script>alert(1)</script>");
        assert!(html.contains("<strong>Findings</strong>") && html.contains("<li>one</li>"), "{html}");
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "{html}");
        let plain = markdown_to_html("Line one\nLine two");
        assert!(plain.contains("Line one<br />"), "{plain}");
    }
}
