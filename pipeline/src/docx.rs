//! `procedure.docx`: the procedure's Markdown rendered as a Word document with docx-rs, so a
//! department can file it in its document system. Headings become heading styles, numbered
//! steps and checklist items keep their markers, citations stay in the text.

use docx_rs::{AlignmentType, Docx, Paragraph, Run, RunFonts, Style, StyleType};

/// Renders the writer's Markdown (the subset it produces: `#`/`##` headings, `>` notices,
/// paragraphs, `1.` steps, `- [ ]` and `-` items, `_..._` notes).
pub fn render(markdown: &str) -> Result<Vec<u8>, String> {
    // Whatever reaches here (a title, a source's sentence, a model's text) must be characters
    // XML 1.0 can carry, or Word refuses the file.
    let markdown = &xml_text(markdown);
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

/// `text` with every character XML 1.0 cannot carry (C0 controls other than tab, line feed and
/// carriage return; U+FFFE, U+FFFF) replaced by U+FFFD.
pub fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => '\u{FFFD}',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn characters_xml_cannot_carry_never_reach_the_document() {
        use std::io::Read;
        let bytes = super::render(
            "# Titel\u{1}med\u{8}styretegn\u{FFFE}\u{FFFF}\n\n## Key Points\n\nGiv\u{1b} adrenalin. [S:SRC0001]\n",
        )
        .unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut xml = String::new();
        zip.by_name("word/document.xml")
            .unwrap()
            .read_to_string(&mut xml)
            .unwrap();
        assert!(
            !xml.chars()
                .any(|c| ((c as u32) < 0x20 && !"\t\n\r".contains(c))
                    || matches!(c, '\u{FFFE}' | '\u{FFFF}')),
            "{xml}"
        );
        assert!(xml.contains("Titel\u{FFFD}med"), "{xml}");
    }

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
