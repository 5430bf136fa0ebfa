//! `procedure.docx`: the procedure's Markdown rendered as a Word document with docx-rs, so a
//! department can file it in its document system. Headings become heading styles kept with
//! the text below them; numbered steps, bullets and checklist items become Word lists (the
//! steps numbered by Word, restarting in each list, the checklist with a ☐ marker); notices are
//! bold; a header carries the title, the version (the run id) and the date, and a footer
//! "Side x af y". Web addresses (the references' links) are Word hyperlinks to the address.
//! The document's language is Danish (da-DK, so Word's spell-check reads it as Danish) and its
//! properties name its title, its author (the department, `document_author`) and when it was
//! made. Citations stay in the text.

use docx_rs::{
    AbstractNumbering, AlignmentType, Docx, Footer, Header, Hyperlink, HyperlinkType, IndentLevel,
    Level, LevelJc, LevelText, LineSpacing, NumPages, NumberFormat, Numbering, NumberingId,
    PageNum, Paragraph, Run, RunFonts, SpecialIndentType, Start, Style, StyleType,
};
use std::time::SystemTime;

/// What the document says about itself beyond the procedure: who filed it, which version and
/// when.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentInfo {
    /// The department or author (`document_author`): the author property.
    pub author: String,
    /// The run id: the document's version.
    pub version: String,
    /// When it was made (the run's packaging, just before it finished).
    pub at: SystemTime,
}

impl DocumentInfo {
    /// The time as W3CDTF (what `docProps/core.xml` carries), UTC to the second.
    fn w3cdtf(&self) -> String {
        humantime::format_rfc3339_seconds(self.at).to_string()
    }

    /// The date as a Danish reader writes it: `01.12.2026` (UTC).
    pub fn danish_date(&self) -> String {
        let iso = self.w3cdtf();
        match (iso.get(0..4), iso.get(5..7), iso.get(8..10)) {
            (Some(y), Some(m), Some(d)) => format!("{d}.{m}.{y}"),
            _ => iso,
        }
    }
}

/// The parts of a line: text, and web addresses (`http://`, `https://`) up to the next space,
/// without the punctuation that ends a sentence after them.
fn split_links(text: &str) -> Vec<(bool, &str)> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(at) = ["https://", "http://"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
    {
        let end = rest[at..]
            .find(char::is_whitespace)
            .map_or(rest.len(), |e| at + e);
        let url = rest[at..end].trim_end_matches(['.', ',', ';', ':', ')']);
        let url_end = at + url.len();
        if url.len() <= "https://".len() {
            parts.push((false, &rest[..end]));
            rest = &rest[end..];
            continue;
        }
        if at > 0 {
            parts.push((false, &rest[..at]));
        }
        parts.push((true, url));
        rest = &rest[url_end..];
    }
    if !rest.is_empty() {
        parts.push((false, rest));
    }
    parts
}

/// A paragraph's text as runs, each web address a hyperlink (an external relationship), in
/// Word's link colour, underlined.
fn with_links(mut para: Paragraph, text: &str, italic: bool) -> Paragraph {
    for (link, part) in split_links(text) {
        let mut run = Run::new().add_text(part);
        if italic {
            run = run.italic();
        }
        para = if link {
            para.add_hyperlink(
                Hyperlink::new(part, HyperlinkType::External)
                    .add_run(run.color("0563C1").underline("single")),
            )
        } else {
            para.add_run(run)
        };
    }
    para
}

/// Word's abstract lists: numbered steps, bullets, checklist items. docx-rs brings its own
/// list as id 1 (abstract and instance), so ours start above it.
const STEPS: usize = 10;
const BULLETS: usize = 11;
const CHECKLIST: usize = 12;
/// The first list instance's id (one per list, so each restarts at 1).
const FIRST_LIST: usize = 10;

/// A list level: `text` as the marker (`%1.` numbers), hanging indent.
fn list_level(format: &str, text: &str) -> Level {
    Level::new(
        0,
        Start::new(1),
        NumberFormat::new(format),
        LevelText::new(text),
        LevelJc::new("left"),
    )
    .indent(Some(420), Some(SpecialIndentType::Hanging(420)), None, None)
}

/// Which list a Markdown line belongs to, and its text.
fn list_item(t: &str) -> Option<(usize, &str)> {
    if let Some(item) = t.strip_prefix("- [ ] ") {
        return Some((CHECKLIST, item));
    }
    if let Some(item) = t.strip_prefix("- ") {
        return Some((BULLETS, item));
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        if let Some(item) = t[digits..].strip_prefix(". ") {
            return Some((STEPS, item));
        }
    }
    None
}

/// Renders the writer's Markdown (the subset it produces: `#`/`##` headings, `>` notices,
/// paragraphs, `1.` steps, `- [ ]` and `-` items, `_..._` notes).
pub fn render(markdown: &str, info: &DocumentInfo) -> Result<Vec<u8>, String> {
    // Whatever reaches here (a title, a source's sentence, a model's text) must be characters
    // XML 1.0 can carry, or Word refuses the file.
    let markdown = &xml_text(markdown);
    let title = markdown
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .unwrap_or("Procedure")
        .trim()
        .to_string();
    let spaced = || LineSpacing::new().before(0).after(120);
    let at = info.w3cdtf();
    let mut doc = Docx::new()
        .created_at(&at)
        .updated_at(&at)
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
                .size(24)
                .bold(),
        )
        .default_fonts(RunFonts::new().ascii("Calibri").hi_ansi("Calibri"))
        .add_abstract_numbering(
            AbstractNumbering::new(STEPS).add_level(list_level("decimal", "%1.")),
        )
        .add_abstract_numbering(
            AbstractNumbering::new(BULLETS).add_level(list_level("bullet", "•")),
        )
        .add_abstract_numbering(
            AbstractNumbering::new(CHECKLIST).add_level(list_level("bullet", "☐")),
        )
        .header(
            Header::new()
                .add_paragraph(
                    Paragraph::new()
                        .add_run(Run::new().add_text(&title).size(18))
                        .align(AlignmentType::Right),
                )
                .add_paragraph(
                    Paragraph::new()
                        .add_run(
                            Run::new()
                                .add_text(format!(
                                    "Version {} · {}",
                                    xml_text(&info.version),
                                    info.danish_date()
                                ))
                                .size(16),
                        )
                        .align(AlignmentType::Right),
                ),
        )
        .footer(
            Footer::new().add_paragraph(
                Paragraph::new()
                    .add_run(Run::new().add_text("Side ").size(18))
                    .add_page_num(PageNum::new())
                    .add_run(Run::new().add_text(" af ").size(18))
                    .add_num_pages(NumPages::new())
                    .align(AlignmentType::Center),
            ),
        );
    // Each list gets its own numbering instance, so the steps of every section start at 1.
    let mut next_num = FIRST_LIST;
    let mut open_list: Option<(usize, usize)> = None;
    for line in markdown.lines() {
        let t = line.trim_end();
        if t.trim().is_empty() {
            continue;
        }
        if let Some((kind, item)) = list_item(t) {
            let num = match open_list {
                Some((k, num)) if k == kind => num,
                _ => {
                    let num = next_num;
                    next_num += 1;
                    doc = doc.add_numbering(Numbering::new(num, kind));
                    open_list = Some((kind, num));
                    num
                }
            };
            doc = doc.add_paragraph(
                with_links(Paragraph::new(), item, false)
                    .numbering(NumberingId::new(num), IndentLevel::new(0))
                    .line_spacing(LineSpacing::new().before(0).after(60)),
            );
            continue;
        }
        open_list = None;
        let para = if let Some(h) = t.strip_prefix("# ") {
            Paragraph::new()
                .add_run(Run::new().add_text(h))
                .style("Title")
                .align(AlignmentType::Left)
                .keep_next(true)
        } else if let Some(h) = t.strip_prefix("## ") {
            Paragraph::new()
                .add_run(Run::new().add_text(h))
                .style("Heading2")
                .keep_next(true)
                .line_spacing(LineSpacing::new().before(240).after(120))
        } else if let Some(n) = t.strip_prefix('>') {
            let n = n.trim();
            if n.is_empty() {
                continue;
            }
            Paragraph::new()
                .add_run(Run::new().add_text(n.replace("**", "")))
                .style("Notice")
                .line_spacing(spaced())
        } else if t.starts_with('_') && t.ends_with('_') {
            with_links(Paragraph::new(), t.trim_matches('_'), true).line_spacing(spaced())
        } else {
            with_links(Paragraph::new(), t, false).line_spacing(spaced())
        };
        doc = doc.add_paragraph(para);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    doc.build().pack(&mut out).map_err(|e| e.to_string())?;
    with_properties(&out.into_inner(), &title, &xml_text(&info.author))
}

/// What docx-rs cannot set: the document's language (da-DK, in the style defaults, so every
/// run is spell-checked as Danish) and its title, author and language properties. Rewrites
/// those two parts of the package; every other part is copied as it is.
fn with_properties(package: &[u8], title: &str, author: &str) -> Result<Vec<u8>, String> {
    use std::io::{Read, Write};
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(package)).map_err(|e| e.to_string())?;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).map_err(|e| e.to_string())?;
        let name = file.name().to_string();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        let bytes = match name.as_str() {
            "word/styles.xml" => danish_defaults(&String::from_utf8_lossy(&bytes)).into_bytes(),
            "docProps/core.xml" => {
                core_properties(&String::from_utf8_lossy(&bytes), title, author).into_bytes()
            }
            _ => bytes,
        };
        out.start_file(name, options).map_err(|e| e.to_string())?;
        out.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    Ok(out.finish().map_err(|e| e.to_string())?.into_inner())
}

/// `<w:lang w:val="da-DK" .../>` in the default run properties.
fn danish_defaults(styles: &str) -> String {
    const LANG: &str = r#"<w:lang w:val="da-DK" w:eastAsia="da-DK" w:bidi="ar-SA" />"#;
    if let Some(at) = styles.find("<w:rPrDefault><w:rPr>") {
        let at = at + "<w:rPrDefault><w:rPr>".len();
        return format!("{}{LANG}{}", &styles[..at], &styles[at..]);
    }
    if let Some(at) = styles.find("<w:docDefaults>") {
        let at = at + "<w:docDefaults>".len();
        return format!(
            "{}<w:rPrDefault><w:rPr>{LANG}</w:rPr></w:rPrDefault>{}",
            &styles[..at],
            &styles[at..]
        );
    }
    styles.to_string()
}

/// The title, author and language in the core properties (docx-rs writes "unknown"; it
/// writes the created and modified times itself).
fn core_properties(core: &str, title: &str, author: &str) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut core = core.to_string();
    let replace_element = |core: &mut String, tag: &str, value: &str| {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        if let (Some(a), Some(b)) = (core.find(&open), core.find(&close)) {
            if a < b {
                core.replace_range(a + open.len()..b, value);
                return;
            }
        }
        if let Some(end) = core.rfind("</cp:coreProperties>") {
            core.insert_str(end, &format!("{open}{value}{close}"));
        }
    };
    replace_element(&mut core, "dc:title", &escape(title));
    replace_element(&mut core, "dc:creator", &escape(author));
    replace_element(&mut core, "cp:lastModifiedBy", &escape(author));
    replace_element(&mut core, "dc:language", "da-DK");
    core
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
    use super::DocumentInfo;

    /// A document made at 2026-12-01 09:30:05 UTC by a department.
    fn info() -> DocumentInfo {
        DocumentInfo {
            author: "Akutafdelingen <AHH>".into(),
            version: "01900000-0000-7000-8000-00000000abcd".into(),
            at: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_117_405),
        }
    }

    fn render(markdown: &str) -> Vec<u8> {
        super::render(markdown, &info()).unwrap()
    }
    #[test]
    fn characters_xml_cannot_carry_never_reach_the_document() {
        use std::io::Read;
        let bytes = render(
            "# Titel\u{1}med\u{8}styretegn\u{FFFE}\u{FFFF}\n\n## Key Points\n\nGiv\u{1b} adrenalin. [S:SRC0001]\n",
        );
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

    fn part(bytes: &[u8], name: &str) -> String {
        use std::io::Read;
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut xml = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut xml).unwrap();
        xml
    }

    #[test]
    fn steps_bullets_and_checklists_are_word_lists_in_danish_with_title_and_page_numbers() {
        let bytes = render(
            "# Anafylaksi <behandling>\n\n## Procedure\n\n1. Giv adrenalin. [S:SRC0001]\n2. Ring 112.\n\n## Efter\n\n1. Observer.\n- Punkt.\n- [ ] Tjek luftvej.\n",
        );
        let doc = part(&bytes, "word/document.xml");
        // The markers are Word's, not text.
        assert!(
            !doc.contains(">1. ") && !doc.contains(">☐ ") && !doc.contains(">• "),
            "{doc}"
        );
        assert_eq!(doc.matches("<w:numPr>").count(), 5, "{doc}");
        let numbering = part(&bytes, "word/numbering.xml");
        assert!(
            numbering.contains("decimal") && numbering.contains("☐"),
            "{numbering}"
        );
        // Two step lists, one bullet list, one checklist: an instance each, so each list
        // restarts at 1.
        for (abstract_id, lists) in [(10, 2), (11, 1), (12, 1)] {
            assert_eq!(
                numbering
                    .matches(&format!("<w:abstractNumId w:val=\"{abstract_id}\" />"))
                    .count(),
                lists,
                "{numbering}"
            );
        }
        assert_eq!(
            numbering.matches("w:abstractNumId=\"10\"").count(),
            1,
            "ids unique: {numbering}"
        );
        assert!(
            doc.contains("<w:keepNext"),
            "headings stay with their text: {doc}"
        );
        assert!(part(&bytes, "word/styles.xml").contains("w:val=\"da-DK\""));
        let core = part(&bytes, "docProps/core.xml");
        assert!(
            core.contains("<dc:title>Anafylaksi &lt;behandling&gt;</dc:title>"),
            "{core}"
        );
        assert!(core.contains("<dc:language>da-DK</dc:language>"), "{core}");
        assert!(
            !core.contains("unknown") && !core.contains("1970"),
            "{core}"
        );
        // Made when the run was packaged, by the configured department.
        assert!(
            core.contains("<dcterms:created xsi:type=\"dcterms:W3CDTF\">2026-12-01T09:30:05Z</dcterms:created>")
                && core.contains("<dcterms:modified xsi:type=\"dcterms:W3CDTF\">2026-12-01T09:30:05Z</dcterms:modified>"),
            "{core}"
        );
        assert!(
            core.contains("<dc:creator>Akutafdelingen &lt;AHH&gt;</dc:creator>"),
            "{core}"
        );
        let footer = (1..=3)
            .filter_map(|i| {
                std::panic::catch_unwind(|| part(&bytes, &format!("word/footer{i}.xml"))).ok()
            })
            .collect::<String>();
        assert!(
            footer.contains("PAGE") && footer.contains("NUMPAGES"),
            "{footer}"
        );
        let header = (1..=3)
            .filter_map(|i| {
                std::panic::catch_unwind(|| part(&bytes, &format!("word/header{i}.xml"))).ok()
            })
            .collect::<String>();
        assert!(header.contains("Anafylaksi &lt;behandling&gt;"), "{header}");
        assert!(
            header.contains("Version 01900000-0000-7000-8000-00000000abcd · 01.12.2026"),
            "{header}"
        );
        // Read back by the library's own Word reader: the list items are list items, their
        // text without the markers.
        use crate::document::BlockKind;
        let blocks = crate::docx_read::read(&bytes).unwrap();
        let items: Vec<&str> = blocks
            .iter()
            .filter(|b| b.kind == BlockKind::ListItem)
            .map(|b| b.text.as_str())
            .collect();
        assert_eq!(
            items,
            [
                "Giv adrenalin. [S:SRC0001]",
                "Ring 112.",
                "Observer.",
                "Punkt.",
                "Tjek luftvej."
            ],
            "{blocks:?}"
        );
    }

    #[test]
    fn a_procedure_renders_to_a_zip_with_its_text() {
        let bytes = render(
            "# P\n\n## Key Points\n\nGive adrenaline. [S:SRC0001]\n- [ ] Check it. [S:SRC0001]\n",
        );
        assert_eq!(&bytes[..2], b"PK", "a DOCX is a zip");
        assert!(bytes.len() > 1000);
    }

    #[test]
    fn web_addresses_are_hyperlinks_to_the_address_and_the_cited_pages_stay() {
        let bytes = render(
            "# P\n\n## Referencer\n\n- [S:SRC0001] Vejledning (2024). https://www.sst.dk/a?b=1&c=2. Evidensniveau: danish_guideline. Citeret: s. 12, 40.\n- [S:SRC0002] Uden adresse. Evidensniveau: rct.\n\nSe http://example.org/x, og mere.\n",
        );
        let doc = part(&bytes, "word/document.xml");
        let rels = part(&bytes, "word/_rels/document.xml.rels");
        assert_eq!(doc.matches("<w:hyperlink ").count(), 2, "{doc}");
        for url in ["https://www.sst.dk/a?b=1&amp;c=2", "http://example.org/x"] {
            assert!(
                rels.contains(&format!("Target=\"{url}\""))
                    && rels.contains("TargetMode=\"External\""),
                "{url}: {rels}"
            );
        }
        // The link's text is the address without the sentence's full stop; the rest stays.
        assert!(
            doc.contains(">https://www.sst.dk/a?b=1&amp;c=2</w:t>"),
            "{doc}"
        );
        assert!(doc.contains("Citeret: s. 12, 40."), "{doc}");
        assert!(doc.contains(">, og mere.</w:t>"), "{doc}");
        // Each link's relationship id is in the rels.
        for rid in doc.split("<w:hyperlink r:id=\"").skip(1) {
            let rid = &rid[..rid.find('"').unwrap()];
            assert!(rels.contains(&format!("Id=\"{rid}\"")), "{rid}: {rels}");
        }
        assert_eq!(
            super::split_links("a https:// b"),
            [(false, "a https://"), (false, " b")],
            "a bare scheme is text"
        );
    }
}
