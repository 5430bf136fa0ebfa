//! `procedure.docx`: the procedure's Markdown rendered as a Word document with docx-rs, so a
//! department can file it in its document system. Headings become heading styles, numbered
//! steps and checklist items keep their markers, citations stay in the text.

use docx_rs::{AlignmentType, Docx, Paragraph, Run, RunFonts, Style, StyleType};

/// Renders the writer's Markdown (the subset it produces: `#`/`##` headings, `>` notices,
/// paragraphs, `1.` steps, `- [ ]` and `-` items, `_..._` notes).
pub fn render(markdown: &str) -> Result<Vec<u8>, String> {
    let mut doc = Docx::new()
        .add_style(
            Style::new("Title", StyleType::Paragraph)
                .name("Title")
                .size(36)
                .bold(),
        )
        .add_style(
            Style::new("Heading2", StyleType::Paragraph)
                .name("Heading 2")
                .size(28)
                .bold(),
        )
        .add_style(
            Style::new("Notice", StyleType::Paragraph)
                .name("Notice")
                .italic(),
        )
        .default_fonts(RunFonts::new().ascii("Calibri").hi_ansi("Calibri"));
    for line in markdown.lines() {
        let t = line.trim_end();
        if t.trim().is_empty() {
            continue;
        }
        let para = if let Some(h) = t.strip_prefix("# ") {
            Paragraph::new()
                .add_run(Run::new().add_text(h))
                .style("Title")
                .align(AlignmentType::Left)
        } else if let Some(h) = t.strip_prefix("## ") {
            Paragraph::new()
                .add_run(Run::new().add_text(h))
                .style("Heading2")
        } else if let Some(n) = t.strip_prefix('>') {
            let n = n.trim();
            if n.is_empty() {
                continue;
            }
            Paragraph::new()
                .add_run(Run::new().add_text(n.replace("**", "")))
                .style("Notice")
        } else if t.starts_with('_') && t.ends_with('_') {
            Paragraph::new().add_run(Run::new().add_text(t.trim_matches('_')).italic())
        } else if let Some(item) = t.strip_prefix("- [ ] ") {
            Paragraph::new().add_run(Run::new().add_text(format!("☐ {item}")))
        } else if let Some(item) = t.strip_prefix("- ") {
            Paragraph::new().add_run(Run::new().add_text(format!("• {item}")))
        } else {
            Paragraph::new().add_run(Run::new().add_text(t))
        };
        doc = doc.add_paragraph(para);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    doc.build().pack(&mut out).map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_procedure_renders_to_a_zip_with_its_text() {
        let bytes = super::render(
            "# P\n\n## Key Points\n\nGive adrenaline. [S:SRC0001]\n- [ ] Check it. [S:SRC0001]\n",
        )
        .unwrap();
        assert_eq!(&bytes[..2], b"PK", "a DOCX is a zip");
        assert!(bytes.len() > 1000);
    }
}
