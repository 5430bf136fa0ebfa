//! Word (DOCX) in: paragraphs with their styles, read with `docx-rs`. A paragraph whose style is
//! a heading ("heading 1".., "Title"; the style's name, which Word keeps in English whatever the
//! interface language) becomes a heading; numbered or bulleted paragraphs list items; each
//! table row one row with its cells. Superscript runs keep superscript digits ("10⁹/L"), and
//! footnotes and text boxes, which docx-rs does not read, follow the paragraph that refers
//! to or anchors them.
//!
//! Before parsing, the archive is checked without unpacking it: a file that expands beyond
//! [`MAX_UNPACKED_BYTES`] or by more than [`MAX_RATIO`] times (a zip bomb), or whose document
//! nests elements absurdly deep, is refused. A DOCX has no pages: passages are located by
//! heading.

use crate::document::{clean_blocks, space_citation_marks, superscript_char, Block, BlockKind};
use docx_rs::{
    DocumentChild, Paragraph, ParagraphChild, StructuredDataTagChild, TableCellContent, TableChild,
    TableRowChild,
};
use std::collections::HashMap;
use std::io::Read;

/// Largest total size the archive may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 200 * 1024 * 1024;
/// Largest ratio of unpacked to packed size. Text compresses 5–20×; a zip bomb by thousands.
pub const MAX_RATIO: u64 = 200;
/// Deepest element nesting in `word/document.xml`. Word's own documents nest under 20 deep.
pub const MAX_XML_DEPTH: usize = 256;

/// Why a DOCX could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocxError {
    #[error("the file is not a Word document (.docx): {0}; save it as .docx and send it again")]
    NotDocx(String),
    #[error("the Word document unpacks to {0} bytes (limit {MAX_UNPACKED_BYTES}, or {MAX_RATIO} times its size): it is refused as a possible zip bomb")]
    TooLarge(u64),
    #[error("the Word document nests elements {0} deep (at most {MAX_XML_DEPTH}): save it again from Word")]
    TooDeep(usize),
    #[error("the Word document cannot be read ({0}): open it in Word and save it again")]
    Damaged(String),
    #[error("the Word document has no text")]
    Empty,
}

/// Reads a DOCX's text as blocks.
pub fn read(bytes: &[u8]) -> Result<Vec<Block>, DocxError> {
    check_archive(bytes)?;
    let docx = match std::panic::catch_unwind(|| docx_rs::read_docx(bytes)) {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            return Err(DocxError::Damaged(
                e.to_string().chars().take(160).collect(),
            ))
        }
        Err(_) => return Err(DocxError::Damaged("the reader failed on it".into())),
    };
    // Style id → heading level, from the style's (English, built-in) name.
    let mut levels: HashMap<String, u8> = HashMap::new();
    for s in &docx.styles.styles {
        let name = serde_json::to_value(&s.name)
            .ok()
            .and_then(|v| v.as_str().map(str::to_lowercase))
            .unwrap_or_default();
        let level = if name == "title" {
            Some(1)
        } else {
            name.strip_prefix("heading ")
                .and_then(|n| n.trim().parse::<u8>().ok())
                .map(|n| n.saturating_add(1).min(6))
        };
        if let Some(l) = level {
            levels.insert(s.style_id.clone(), l);
        }
    }
    let mut blocks = Vec::new();
    for child in &docx.document.children {
        match child {
            DocumentChild::Paragraph(p) => blocks.push(paragraph_block(p, &levels)),
            DocumentChild::Table(t) => table_blocks(t, &mut blocks),
            // A content control around paragraphs and tables: a template's fields ("Formål",
            // "Dosering") are the text they hold.
            DocumentChild::StructuredDataTag(sdt) => control_blocks(sdt, &levels, &mut blocks),
            _ => {}
        }
    }
    let blocks = with_placed(clean_blocks(blocks), &left_out(bytes)?);
    if blocks.is_empty() {
        return Err(DocxError::Empty);
    }
    Ok(blocks)
}

/// Text that docx-rs leaves out of the paragraphs it reads, with the paragraph it belongs
/// after: a footnote ("¹ Over 65 years: 5 mg"), or a paragraph of a text box anchored in it (a
/// boxed warning: "OBS: må aldrig gives i.v.").
#[derive(Debug, Clone, PartialEq)]
struct Placed {
    /// Which of the body's paragraphs it belongs after (in order).
    occurrence: usize,
    /// That paragraph's text (or, for an empty anchor, the last text before it).
    paragraph: String,
    block: Block,
}

/// What the document holds beyond docx-rs's paragraphs: its footnotes (`word/footnotes.xml`,
/// numbered as Word shows them) and its text boxes (in `word/document.xml`), each placed after
/// the paragraph that refers to or anchors it. Either may state a dose, so it is the
/// document's text as much as its paragraphs are.
fn left_out(bytes: &[u8]) -> Result<Vec<Placed>, DocxError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| DocxError::Damaged(e.to_string()))?;
    let mut part = |name: &str| -> Result<Option<Vec<u8>>, DocxError> {
        let Ok(f) = zip.by_name(name) else {
            return Ok(None);
        };
        let mut xml = Vec::new();
        f.take(MAX_UNPACKED_BYTES)
            .read_to_end(&mut xml)
            .map_err(|e| DocxError::Damaged(e.to_string()))?;
        let depth = xml_depth(&xml);
        if depth > MAX_XML_DEPTH {
            return Err(DocxError::TooDeep(depth));
        }
        Ok(Some(xml))
    };
    let texts = match part("word/footnotes.xml")? {
        Some(xml) => note_texts(&xml)?,
        None => HashMap::new(),
    };
    let document_xml = part("word/document.xml")?.unwrap_or_default();
    let mut numbers: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (occurrence, p) in body_paragraphs(&document_xml)?.into_iter().enumerate() {
        let placed = |block: Block| Placed {
            occurrence,
            paragraph: p.text.clone(),
            block,
        };
        for id in &p.notes {
            let Some(text) = texts.get(id) else {
                continue;
            };
            if numbers.contains_key(id) {
                continue;
            }
            let number = numbers.len() + 1;
            numbers.insert(id.clone(), number);
            let mark: String = number.to_string().chars().map(superscript_char).collect();
            out.push(placed(Block::new(
                BlockKind::Footnote,
                format!("{mark} {text}"),
                None,
            )));
        }
        for text in &p.boxed {
            out.push(placed(Block::new(BlockKind::Paragraph, text.clone(), None)));
        }
    }
    Ok(out)
}

/// Walks a WordprocessingML part: `on` gets each element's start (name, its `w:id` and
/// `w:type`), end and text.
enum Xml<'a> {
    Start(&'a [u8], Option<String>, Option<String>),
    Empty(&'a [u8], Option<String>),
    End(&'a [u8]),
    Text(String),
}

fn walk(xml: &[u8], mut on: impl FnMut(Xml<'_>)) -> Result<(), DocxError> {
    use quick_xml::events::Event;
    let damaged = |e: &dyn std::fmt::Display| DocxError::Damaged(e.to_string());
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let attr = |e: &quick_xml::events::BytesStart<'_>, key: &[u8]| -> Option<String> {
        e.try_get_attribute(key)
            .ok()
            .flatten()
            .and_then(|a| String::from_utf8(a.value.into_owned()).ok())
    };
    loop {
        match reader.read_event_into(&mut buf).map_err(|e| damaged(&e))? {
            Event::Start(e) => on(Xml::Start(
                e.name().as_ref(),
                attr(&e, b"w:id"),
                attr(&e, b"w:type"),
            )),
            Event::Empty(e) => on(Xml::Empty(e.name().as_ref(), attr(&e, b"w:id"))),
            Event::End(e) => on(Xml::End(e.name().as_ref())),
            Event::Text(t) => on(Xml::Text(t.decode().map_err(|e| damaged(&e))?.into_owned())),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    _ => match r.decode().map_err(|e| damaged(&e))?.as_ref() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => None,
                    },
                };
                if let Some(c) = c {
                    on(Xml::Text(c.to_string()));
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

/// Each footnote's text by its id; Word's separators (a `w:type`) are no notes.
fn note_texts(xml: &[u8]) -> Result<HashMap<String, String>, DocxError> {
    let mut notes = HashMap::new();
    let mut current: Option<(String, String)> = None;
    let mut in_text = false;
    walk(xml, |x| match x {
        Xml::Start(b"w:footnote", id, kind) => {
            current = id.filter(|_| kind.is_none()).map(|id| (id, String::new()));
        }
        Xml::End(b"w:footnote") => {
            if let Some((id, text)) = current.take() {
                let text = crate::document::clean_text(&text);
                if !text.is_empty() {
                    notes.insert(id, text);
                }
            }
        }
        Xml::Start(b"w:t", ..) => in_text = true,
        Xml::End(b"w:t") => in_text = false,
        Xml::End(b"w:p") | Xml::Empty(b"w:tab" | b"w:br", _) => {
            if let Some((_, text)) = current.as_mut() {
                text.push(' ');
            }
        }
        Xml::Text(t) if in_text => {
            if let Some((_, text)) = current.as_mut() {
                text.push_str(&t);
            }
        }
        _ => {}
    })?;
    Ok(notes)
}

/// A paragraph of the document's body that refers to footnotes or anchors text boxes.
#[derive(Debug, Default)]
struct BodyParagraph {
    /// Its own text; for an anchor with none (a box's usual anchor), the last text before it.
    text: String,
    /// The footnotes it refers to, by id.
    notes: Vec<String>,
    /// The paragraphs of the text boxes anchored in it.
    boxed: Vec<String>,
}

/// The body's paragraphs that refer to footnotes or anchor text boxes, in order. A text box is
/// written twice, as a drawing and as its fallback for old readers (`mc:Fallback`): the
/// fallback is skipped.
fn body_paragraphs(xml: &[u8]) -> Result<Vec<BodyParagraph>, DocxError> {
    let mut out = Vec::new();
    let mut current = BodyParagraph::default();
    let (mut last_text, mut boxed_text) = (String::new(), String::new());
    let (mut in_text, mut fallback, mut boxes, mut depth) = (false, 0usize, 0usize, 0usize);
    let has_letters = |t: &str| t.chars().any(char::is_alphabetic);
    walk(xml, |x| {
        // Everything in a fallback is written again in its choice.
        match x {
            Xml::Start(b"mc:Fallback", ..) => fallback += 1,
            Xml::End(b"mc:Fallback") => fallback = fallback.saturating_sub(1),
            _ if fallback > 0 => {}
            Xml::Start(b"w:txbxContent", ..) => boxes += 1,
            Xml::End(b"w:txbxContent") => boxes = boxes.saturating_sub(1),
            Xml::Start(b"w:p", ..) => {
                depth += 1;
                if boxes > 0 {
                    boxed_text.clear();
                } else if depth == 1 {
                    current = BodyParagraph::default();
                }
            }
            Xml::End(b"w:p") => {
                depth = depth.saturating_sub(1);
                if boxes > 0 {
                    let t = crate::document::clean_text(&boxed_text);
                    if !t.is_empty() {
                        current.boxed.push(t);
                    }
                } else if depth == 0 {
                    let mut p = std::mem::take(&mut current);
                    p.text = crate::document::clean_text(&p.text);
                    if has_letters(&p.text) {
                        last_text = p.text.clone();
                    } else {
                        p.text = last_text.clone();
                    }
                    if !p.notes.is_empty() || !p.boxed.is_empty() {
                        out.push(p);
                    }
                }
            }
            Xml::Start(b"w:t", ..) => in_text = true,
            Xml::End(b"w:t") => in_text = false,
            Xml::Text(t) if in_text && boxes > 0 => boxed_text.push_str(&t),
            Xml::Text(t) if in_text => current.text.push_str(&t),
            Xml::Empty(b"w:footnoteReference", Some(id))
            | Xml::Start(b"w:footnoteReference", Some(id), _) => current.notes.push(id),
            _ => {}
        }
    })?;
    Ok(out)
}

/// The blocks with each left-out text after the block it belongs after, or at the end when
/// that block is not found.
fn with_placed(blocks: Vec<Block>, notes: &[Placed]) -> Vec<Block> {
    if notes.is_empty() {
        return blocks;
    }
    let mut after: Vec<Vec<&Placed>> = vec![Vec::new(); blocks.len()];
    let mut unplaced = Vec::new();
    // One paragraph may repeat another's words: each referring paragraph is looked for after
    // the last one found.
    let mut cursor = 0;
    let mut placed: Option<(usize, usize)> = None;
    // Blocks and paragraphs are compared by their letters: a block's superscripts are read as
    // such and its citation marks set apart, the paragraph's are not.
    let letters = |s: &str| -> String {
        s.chars()
            .map(|c| crate::document::plain_letter(c).unwrap_or(c))
            .filter(|c| c.is_alphabetic())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let keys: Vec<String> = blocks.iter().map(|b| letters(&b.text)).collect();
    for note in notes {
        let found = match placed {
            Some((occurrence, i)) if occurrence == note.occurrence => Some(i),
            _ => {
                let wanted = letters(&note.paragraph);
                (cursor..blocks.len()).find(|&i| !wanted.is_empty() && keys[i].contains(&wanted))
            }
        };
        match found {
            Some(i) => {
                after[i].push(note);
                cursor = i + 1;
                placed = Some((note.occurrence, i));
            }
            None => unplaced.push(note),
        }
    }
    let label = |n: &Placed| n.block.clone();
    let mut out = Vec::with_capacity(blocks.len() + notes.len());
    for (block, notes) in blocks.into_iter().zip(after) {
        out.push(block);
        out.extend(notes.into_iter().map(label));
    }
    out.extend(unplaced.into_iter().map(label));
    out
}

/// The archive's sizes from its central directory, and the document's nesting, before any
/// parsing.
fn check_archive(bytes: &[u8]) -> Result<(), DocxError> {
    if !bytes.starts_with(b"PK\x03\x04") {
        return Err(DocxError::NotDocx("it is not a zip archive".into()));
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| DocxError::Damaged(e.to_string()))?;
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let f = zip
            .by_index_raw(i)
            .map_err(|e| DocxError::Damaged(e.to_string()))?;
        total = total.saturating_add(f.size());
    }
    if total > MAX_UNPACKED_BYTES || total > (bytes.len() as u64).saturating_mul(MAX_RATIO) {
        return Err(DocxError::TooLarge(total));
    }
    let mut xml = Vec::new();
    zip.by_name("word/document.xml")
        .map_err(|_| DocxError::NotDocx("it has no word/document.xml".into()))?
        // The declared size can lie: read at most what was allowed.
        .take(MAX_UNPACKED_BYTES)
        .read_to_end(&mut xml)
        .map_err(|e| DocxError::Damaged(e.to_string()))?;
    let depth = xml_depth(&xml);
    if depth > MAX_XML_DEPTH {
        return Err(DocxError::TooDeep(depth));
    }
    Ok(())
}

/// The deepest element nesting of an XML text, from a linear scan of its tags.
pub fn xml_depth(xml: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while let Some(off) = xml[i..].iter().position(|&b| b == b'<') {
        i += off + 1;
        let rest = &xml[i..];
        let end = rest.iter().position(|&b| b == b'>').unwrap_or(rest.len());
        match rest.first() {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(b'?') | Some(b'!') => {}
            Some(_) if end > 0 && rest[end - 1] == b'/' => {}
            Some(_) => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            None => {}
        }
        i += end;
    }
    deepest
}

/// A paragraph's text, hyperlinks included. A run set as a superscript keeps superscript
/// digits and letters, and a citation's mark is set apart from its word or number, as the PDF
/// reader does ("10⁹/L", "mg/m²", "40 ³ patients"): read as plain digits, "20⁶ mmol" would be
/// "206 mmol".
fn paragraph_text(p: &Paragraph) -> String {
    let mut out = String::new();
    children_text(&p.children, &mut out);
    space_citation_marks(&out)
}

/// The text of a paragraph's children into `out`: runs, insertions and hyperlinks. (docx-rs's
/// reader reads an inline content control's runs as the paragraph's own.)
fn children_text(children: &[ParagraphChild], out: &mut String) {
    let raised = docx_rs::VertAlign::new(docx_rs::VertAlignType::SuperScript);
    for child in children {
        if let ParagraphChild::Hyperlink(h) = child {
            children_text(&h.children, out);
            continue;
        }
        let superscript = matches!(child, ParagraphChild::Run(r)
            if r.run_property.vert_align.as_ref() == Some(&raised));
        let mut part = Paragraph::new();
        part.children = vec![child.clone()];
        let text = part.raw_text();
        if superscript {
            out.extend(text.chars().map(superscript_char));
        } else {
            out.push_str(&text);
        }
    }
}

/// The blocks a block-level content control holds: paragraphs, tables, controls inside it.
fn control_blocks(
    sdt: &docx_rs::StructuredDataTag,
    levels: &HashMap<String, u8>,
    out: &mut Vec<Block>,
) {
    let mut runs = Paragraph::new();
    for c in &sdt.children {
        match c {
            StructuredDataTagChild::Paragraph(p) => out.push(paragraph_block(p, levels)),
            StructuredDataTagChild::Table(t) => table_blocks(t, out),
            StructuredDataTagChild::StructuredDataTag(inner) => control_blocks(inner, levels, out),
            StructuredDataTagChild::Run(r) => runs.children.push(ParagraphChild::Run(r.clone())),
            _ => {}
        }
    }
    if !runs.children.is_empty() {
        out.push(paragraph_block(&runs, levels));
    }
}

fn paragraph_block(p: &Paragraph, levels: &HashMap<String, u8>) -> Block {
    let text = paragraph_text(p);
    let style = p.property.style.as_ref().map(|s| s.val.clone());
    let kind = match style.as_ref().and_then(|s| levels.get(s)) {
        Some(level) => BlockKind::Heading { level: *level },
        None if p.property.numbering_property.is_some() || p.has_numbering => BlockKind::ListItem,
        None => BlockKind::Paragraph,
    };
    Block::new(kind, text, None)
}

fn table_blocks(t: &docx_rs::Table, out: &mut Vec<Block>) {
    for TableChild::TableRow(row) in &t.rows {
        let mut cells = Vec::new();
        for TableRowChild::TableCell(cell) in &row.cells {
            let mut text = Vec::new();
            for c in &cell.children {
                match c {
                    TableCellContent::Paragraph(p) => text.push(paragraph_text(p)),
                    TableCellContent::Table(inner) => table_blocks(inner, out),
                    TableCellContent::StructuredDataTag(sdt) => {
                        let mut held = Vec::new();
                        control_blocks(sdt, &HashMap::new(), &mut held);
                        text.extend(held.into_iter().map(|b| b.text));
                    }
                    _ => {}
                }
            }
            let t = text.join(" ");
            if !t.trim().is_empty() {
                cells.push(t.trim().to_string());
            }
        }
        if !cells.is_empty() {
            out.push(Block::new(BlockKind::TableRow, cells.join(" | "), None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docx_rs::{Docx, Run, Style, StyleType, Table, TableCell, TableRow};
    use std::io::Write;

    fn docx_bytes(doc: Docx) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        doc.build().pack(&mut out).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_word_instruction_reads_as_headings_paragraphs_items_and_rows() {
        let doc = Docx::new()
            .add_style(Style::new("Heading1", StyleType::Paragraph).name("heading 1"))
            .add_style(Style::new("Overskrift2", StyleType::Paragraph).name("heading 2"))
            .add_paragraph(
                Paragraph::new()
                    .add_run(Run::new().add_text("Anafylaksi hos voksne"))
                    .style("Heading1"),
            )
            .add_paragraph(
                Paragraph::new()
                    .add_run(Run::new().add_text("Adrenalin 0,5 mg gives intramuskulært i låret.")),
            )
            .add_paragraph(
                Paragraph::new()
                    .add_run(Run::new().add_text("Dosering"))
                    .style("Overskrift2"),
            )
            .add_paragraph(
                Paragraph::new()
                    .add_run(Run::new().add_text("Gentag efter 5 minutter"))
                    .numbering(docx_rs::NumberingId::new(1), docx_rs::IndentLevel::new(0)),
            )
            .add_table(Table::new(vec![TableRow::new(vec![
                TableCell::new()
                    .add_paragraph(Paragraph::new().add_run(Run::new().add_text("Voksne"))),
                TableCell::new()
                    .add_paragraph(Paragraph::new().add_run(Run::new().add_text("0,5 mg"))),
            ])]));
        let blocks = read(&docx_bytes(doc)).unwrap();
        assert_eq!(
            blocks,
            vec![
                Block::new(
                    BlockKind::Heading { level: 2 },
                    "Anafylaksi hos voksne",
                    None
                ),
                Block::new(
                    BlockKind::Paragraph,
                    "Adrenalin 0,5 mg gives intramuskulært i låret.",
                    None
                ),
                Block::new(BlockKind::Heading { level: 3 }, "Dosering", None),
                Block::new(BlockKind::ListItem, "Gentag efter 5 minutter", None),
                Block::new(BlockKind::TableRow, "Voksne | 0,5 mg", None),
            ]
        );
    }

    #[test]
    fn superscripts_keep_their_meaning() {
        // docx-rs gives a superscript run's text as plain digits: "Give 20⁶ mmol" (a citation
        // after a dose) read "Give 206 mmol", and "10⁹/L" "109/L".
        let sup = |t: &str| {
            let mut run = Run::new().add_text(t);
            run.run_property = run
                .run_property
                .vert_align(docx_rs::VertAlignType::SuperScript);
            run
        };
        let doc = Docx::new().add_paragraph(
            Paragraph::new()
                .add_run(Run::new().add_text("Give 20"))
                .add_run(sup("6"))
                .add_run(Run::new().add_text(" mmol if platelets are below 50 × 10"))
                .add_run(sup("9"))
                .add_run(Run::new().add_text("/L, from the 3"))
                .add_run(sup("rd"))
                .add_run(Run::new().add_text(" dose; see Adrenaline"))
                .add_run(sup("a"))
                .add_run(Run::new().add_text(".")),
        );
        let blocks = read(&docx_bytes(doc)).unwrap();
        assert_eq!(
            blocks[0].text,
            "Give 20 ⁶ mmol if platelets are below 50 × 10⁹/L, from the 3rd dose; see Adrenaline ᵃ."
        );
    }

    #[test]
    fn content_controls_hold_the_text_of_a_template() {
        // A template's fields are content controls: one around a paragraph or in a table's
        // cell was left out by this reader, dose and all. (One inside a paragraph docx-rs
        // reads as the paragraph's runs.)
        let doc = Docx::new()
            .add_structured_data_tag(docx_rs::StructuredDataTag::new().add_paragraph(
                Paragraph::new().add_run(Run::new().add_text("Dosis til voksne: 0,5 mg i.m.")),
            ))
            .add_paragraph(
                Paragraph::new()
                    .add_run(Run::new().add_text("Maksimal dosis: "))
                    .add_structured_data_tag(
                        docx_rs::StructuredDataTag::new().add_run(Run::new().add_text("1 mg")),
                    )
                    .add_run(Run::new().add_text(" pr. døgn.")),
            )
            .add_table(Table::new(vec![TableRow::new(vec![
                TableCell::new()
                    .add_paragraph(Paragraph::new().add_run(Run::new().add_text("Børn"))),
                TableCell::new()
                    .add_structured_data_tag(docx_rs::StructuredDataTag::new().add_paragraph(
                        Paragraph::new().add_run(Run::new().add_text("0,01 mg/kg")),
                    )),
            ])]));
        let blocks = read(&docx_bytes(doc)).unwrap();
        let texts: Vec<&str> = blocks.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Dosis til voksne: 0,5 mg i.m.",
                "Maksimal dosis: 1 mg pr. døgn.",
                "Børn | 0,01 mg/kg"
            ]
        );
    }

    /// A Word file whose middle paragraph, "{anchor_text}", anchors a text box holding
    /// `box_text`, written as Word writes one: a drawing, and its fallback for old readers.
    fn with_text_box(anchor_text: &str, box_text: &str) -> Vec<u8> {
        let doc = Docx::new()
            .add_paragraph(Paragraph::new().add_run(Run::new().add_text("Før boksen.")))
            .add_paragraph(Paragraph::new().add_run(Run::new().add_text("ANCHOR")))
            .add_paragraph(Paragraph::new().add_run(Run::new().add_text("Efter boksen.")));
        let mut out = std::io::Cursor::new(Vec::new());
        doc.build().pack(&mut out).unwrap();
        let bytes = out.into_inner();
        let mut zin = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for i in 0..zin.len() {
            let mut f = zin.by_index(i).unwrap();
            let name = f.name().to_string();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            if name == "word/document.xml" {
                let s = String::from_utf8(data).unwrap();
                let p = |t: &str| format!("<w:p><w:r><w:t>{t}</w:t></w:r></w:p>");
                let boxed = format!(
                    "<w:r><mc:AlternateContent xmlns:mc=\"http://schemas.openxmlformats.org/markup-compatibility/2006\"><mc:Choice Requires=\"wps\"><w:drawing><wp:anchor><a:graphic><a:graphicData><wps:wsp><wps:txbx><w:txbxContent>{}</w:txbxContent></wps:txbx></wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice><mc:Fallback><w:pict><v:shape><v:textbox><w:txbxContent>{}</w:txbxContent></v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r>",
                    p(box_text), p(box_text)
                );
                let s = s.replacen(
                    "<w:t xml:space=\"preserve\">ANCHOR</w:t></w:r>",
                    &format!("<w:t xml:space=\"preserve\">{anchor_text}</w:t></w:r>{boxed}"),
                    1,
                );
                assert!(s.contains("txbxContent"), "{s}");
                data = s.into_bytes();
            }
            w.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(&data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }
    #[test]
    fn a_text_box_is_read_once_after_its_anchor() {
        // docx-rs reads no text box: a boxed warning was lost. Word writes each box twice (a
        // drawing and a fallback); it is read once.
        let texts = |bytes: Vec<u8>| -> Vec<String> {
            read(&bytes).unwrap().into_iter().map(|b| b.text).collect()
        };
        assert_eq!(
            texts(with_text_box("Ankeret.", "OBS: Må aldrig gives i.v.")),
            [
                "Før boksen.",
                "Ankeret.",
                "OBS: Må aldrig gives i.v.",
                "Efter boksen."
            ]
        );
        // A box anchored in an empty paragraph follows the text before it.
        assert_eq!(
            texts(with_text_box("", "OBS: Må aldrig gives i.v.")),
            ["Før boksen.", "OBS: Må aldrig gives i.v.", "Efter boksen."]
        );
    }

    #[test]
    fn footnotes_are_read_after_the_paragraph_that_refers_to_them() {
        // docx-rs reads no footnotes: a dose in one was lost with the whole note.
        let note = |text: &str| {
            docx_rs::Footnote::new()
                .add_content(Paragraph::new().add_run(Run::new().add_text(text)))
        };
        let doc = Docx::new()
            .add_paragraph(
                Paragraph::new()
                    .add_run(Run::new().add_text("Giv nalokson i.v. ved respirationsdepression."))
                    .add_run(Run::new().add_footnote_reference(note(
                        "Over 65 år eller under 50 kg: nalokson 0,2 mg i.v.",
                    ))),
            )
            .add_paragraph(
                Paragraph::new().add_run(Run::new().add_text("Observer i mindst seks timer.")),
            )
            .add_paragraph(
                Paragraph::new()
                    .add_run(Run::new().add_text("Ved metadon: kontinuerlig infusion."))
                    .add_run(Run::new().add_footnote_reference(note(
                        "Infusion: to tredjedele af den effektive bolusdosis pr. time.",
                    ))),
            );
        let blocks = read(&docx_bytes(doc)).unwrap();
        let got: Vec<(BlockKind, &str)> =
            blocks.iter().map(|b| (b.kind, b.text.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (
                    BlockKind::Paragraph,
                    "Giv nalokson i.v. ved respirationsdepression."
                ),
                (
                    BlockKind::Footnote,
                    "¹ Over 65 år eller under 50 kg: nalokson 0,2 mg i.v."
                ),
                (BlockKind::Paragraph, "Observer i mindst seks timer."),
                (BlockKind::Paragraph, "Ved metadon: kontinuerlig infusion."),
                (
                    BlockKind::Footnote,
                    "² Infusion: to tredjedele af den effektive bolusdosis pr. time."
                ),
            ]
        );
    }

    #[test]
    fn bombs_deep_nesting_and_other_files_are_refused_before_parsing() {
        assert!(matches!(
            read(b"%PDF-1.4 not a docx"),
            Err(DocxError::NotDocx(_))
        ));
        // A zip whose document.xml expands 100 MB of one byte repeated.
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("word/document.xml", opts).unwrap();
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..100 {
            std::io::Write::write_all(&mut w, &chunk).unwrap();
        }
        let bomb = w.finish().unwrap().into_inner();
        assert!(
            matches!(read(&bomb), Err(DocxError::TooLarge(_))),
            "{}",
            bomb.len()
        );
        // Absurd nesting.
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("word/document.xml", opts).unwrap();
        let deep = format!("<w:document>{}</w:document>", "<w:p>".repeat(5_000));
        std::io::Write::write_all(&mut w, deep.as_bytes()).unwrap();
        let deep = w.finish().unwrap().into_inner();
        assert!(matches!(read(&deep), Err(DocxError::TooDeep(_))));
        assert_eq!(xml_depth(b"<?xml?><a><b/><c>x</c></a>"), 2);
    }
}
