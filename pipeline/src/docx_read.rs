//! Word (DOCX) in: paragraphs with their styles, read with `docx-rs`. A paragraph whose style is
//! a heading ("heading 1".., "Title"; the style's name, which Word keeps in English whatever the
//! interface language) becomes a heading; numbered or bulleted paragraphs list items; each
//! table row one row with its cells.
//!
//! Before parsing, the archive is checked without unpacking it: a file that expands beyond
//! [`MAX_UNPACKED_BYTES`] or by more than [`MAX_RATIO`] times (a zip bomb), or whose document
//! nests elements absurdly deep, is refused. A DOCX has no pages: passages are located by
//! heading.

use crate::document::{clean_blocks, Block, BlockKind};
use docx_rs::{
    DocumentChild, Paragraph, ParagraphChild, TableCellContent, TableChild, TableRowChild,
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
            _ => {}
        }
    }
    let blocks = clean_blocks(blocks);
    if blocks.is_empty() {
        return Err(DocxError::Empty);
    }
    Ok(blocks)
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

/// A paragraph's text, hyperlinks included.
fn paragraph_text(p: &Paragraph) -> String {
    let mut out = String::new();
    for c in &p.children {
        let children = match c {
            ParagraphChild::Hyperlink(h) => h.children.clone(),
            other => vec![other.clone()],
        };
        let mut part = Paragraph::new();
        part.children = children;
        out.push_str(&part.raw_text());
    }
    out
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
