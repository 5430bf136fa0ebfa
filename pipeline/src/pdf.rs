//! PDF in: the text layer, read with `pdf-extract` (over `lopdf`) glyph by glyph with its
//! position and size, laid out again as [`Block`]s with their pages.
//!
//! What extraction gives is glyphs; what a reader sees is lines, columns, paragraphs, headings
//! and tables. The layout here: glyphs make lines (same baseline); a page whose lines share an
//! empty vertical band near the middle is read as two columns (left, then right, between
//! full-width lines); a line whose cells stand apart is a table row; lines close together
//! make a paragraph (a word hyphenated at a line end is rejoined); a line in a larger size
//! than the body text, or a short numbered line ("3.2 Behandling"), is a heading; lines that
//! recur at the same place at the top or bottom of many pages (running headers and footers,
//! a guideline's banner, page labels and numbers) are dropped.
//!
//! Failures say what to do: a password-protected file, one with no text layer (a scan), a
//! damaged or truncated one. A panic inside the parsing crates is caught and reported as a
//! damaged file.

use crate::document::{
    clean_text, is_superscript_digit, is_superscript_letter, join_lines, join_lines_in,
    plain_letter, space_citation_marks, superscript_char, vocabulary, Block, BlockKind,
};
use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};
use std::collections::{HashMap, HashSet};

/// How much of the page's width a line on each side of a gutter must span to be a column's
/// line (a table's cells are narrower).
const COLUMN_LINE: f64 = 0.2;

/// At most this many full-width lines per row with two columns' lines on a two-column page.
const FULL_WIDTH_PER_COLUMN_ROW: usize = 4;

/// Most pages read from one PDF.
pub const MAX_PAGES: usize = 3_000;

/// Why a PDF could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("the PDF is password-protected: remove the password (for example print it to a new PDF) and send it again")]
    Encrypted,
    #[error("the PDF has no text layer (it is a scan or images only): run OCR on it first, then send the searchable PDF")]
    NoTextLayer,
    #[error("the PDF's text layer is not letters (its fonts map characters to symbols): print it to a new PDF from a viewer that shows the text, or run OCR on it, then send it again")]
    NoLetters,
    #[error("the PDF cannot be read ({0}): it may be damaged or cut short; export it again from the original")]
    Damaged(String),
    #[error("the PDF has {0} pages; at most {MAX_PAGES} are read: split it")]
    TooManyPages(usize),
}

/// A PDF's blocks and its page count.
#[derive(Debug, Clone, PartialEq)]
pub struct PdfText {
    pub blocks: Vec<Block>,
    pub pages: u32,
    /// The document's title from its metadata, if it has a usable one.
    pub title: Option<String>,
    /// Pages the extractor could not read (their text is missing; the rest is kept).
    pub skipped_pages: Vec<u32>,
}

/// Reads the text layer of `bytes` as located blocks.
pub fn read(bytes: &[u8]) -> Result<PdfText, PdfError> {
    match std::panic::catch_unwind(|| read_inner(bytes)) {
        Ok(r) => r,
        Err(_) => Err(PdfError::Damaged("the parser failed on it".into())),
    }
}

fn read_inner(bytes: &[u8]) -> Result<PdfText, PdfError> {
    if !bytes.starts_with(b"%PDF-")
        && !bytes[..bytes.len().min(1024)]
            .windows(5)
            .any(|w| w == b"%PDF-")
    {
        return Err(PdfError::Damaged("it does not start like a PDF".into()));
    }
    let mut doc = pdf_extract::Document::load_mem(bytes)
        .map_err(|e| PdfError::Damaged(short(&e.to_string())))?;
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(PdfError::Encrypted);
    }
    let pages = doc.get_pages().len();
    if pages > MAX_PAGES {
        return Err(PdfError::TooManyPages(pages));
    }
    let title = info_title(&doc);
    blank_images(&mut doc);
    repair_to_unicode(&mut doc);
    // Page by page, each page's parse caught on its own: one page the extractor cannot
    // read (a malformed operator panics inside it) costs that page, not the document.
    let mut dev = Collector::default();
    let mut skipped = Vec::new();
    for page_num in doc.get_pages().keys().copied() {
        let before = dev.pages.len();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pdf_extract::output_doc_page(&doc, &mut dev, page_num)
        }));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(OutputError::PdfError(e)))
                if e.to_string().to_lowercase().contains("decrypt") =>
            {
                return Err(PdfError::Encrypted)
            }
            Ok(Err(_)) | Err(_) => {
                // Keep the page's place (its number), without what it half produced.
                dev.pages.truncate(before);
                dev.pages.push(Page::default());
                skipped.push(page_num);
            }
        }
    }
    if !skipped.is_empty() && skipped.len() == pages {
        return Err(PdfError::Damaged("no page could be read".into()));
    }
    let pages_lines: Vec<Vec<Line>> = dev.pages.iter().map(layout_page).collect();
    if pages_lines.iter().all(Vec::is_empty) {
        return Err(PdfError::NoTextLayer);
    }
    // A text layer of symbols ("!\"## $ %!&''"): fonts whose codes map to nothing readable.
    // Evidence must be words; most of any document's visible characters are letters or digits.
    let (mut visible, mut words) = (0usize, 0usize);
    for c in pages_lines
        .iter()
        .flatten()
        .flat_map(|l| l.cells.iter())
        .flat_map(|t| t.chars())
        .filter(|c| !c.is_whitespace())
    {
        visible += 1;
        words += usize::from(c.is_alphanumeric());
    }
    if words * 2 < visible {
        return Err(PdfError::NoLetters);
    }
    let pages_lines = drop_running_lines(pages_lines);
    let blocks = blocks(&pages_lines);
    Ok(PdfText {
        blocks,
        pages: pages as u32,
        title,
        skipped_pages: skipped,
    })
}

/// Repairs the character maps (`ToUnicode` CMaps) the extractor would fail on. Ghostscript
/// writes a ligature's letters as UTF-16 little-endian ("ti" as `<74006900>`), which reads as
/// Chinese or, with a low surrogate (`<7400dd00>`), is no UTF-16 at all and fails every page
/// set in that font ("damaged or cut short"). Such a mapping is turned around; one that is
/// still not UTF-16 maps to U+FFFD instead of failing the document.
fn repair_to_unicode(doc: &mut pdf_extract::Document) {
    // The streams fonts name as their `ToUnicode` (font dictionaries are objects of their
    // own); no other stream is decompressed here.
    let maps: std::collections::BTreeSet<pdf_extract::ObjectId> = doc
        .objects
        .values()
        .filter_map(|obj| match obj {
            pdf_extract::Object::Dictionary(d) => d.get(b"ToUnicode").ok(),
            _ => None,
        })
        .filter_map(|v| v.as_reference().ok())
        .collect();
    for id in maps {
        let Some(pdf_extract::Object::Stream(stream)) = doc.objects.get_mut(&id) else {
            continue;
        };
        let Ok(content) = stream.decompressed_content() else {
            continue;
        };
        if let Some(repaired) = repair_cmap(&content) {
            stream.dict.remove(b"Filter");
            stream.dict.remove(b"DecodeParms");
            stream.set_content(repaired);
        }
    }
}

/// A CMap's text with every multi-unit hex string (a mapping's target: sources are at most
/// four bytes) that is UTF-16 little-endian ASCII turned to big-endian, and every other one
/// that is not UTF-16 replaced by U+FFFD; `None` when nothing needed repair.
fn repair_cmap(content: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(content.len());
    let mut changed = false;
    let mut i = 0;
    while i < content.len() {
        if content[i] != b'<' || content.get(i + 1) == Some(&b'<') {
            out.push(content[i]);
            i += 1;
            continue;
        }
        let Some(len) = content[i + 1..].iter().position(|&b| b == b'>') else {
            out.extend_from_slice(&content[i..]);
            break;
        };
        let hex = &content[i + 1..i + 1 + len];
        let units: Option<Vec<u16>> = (hex.len() >= 8 && hex.len().is_multiple_of(4))
            .then(|| {
                hex.chunks(4)
                    .map(|c| {
                        std::str::from_utf8(c)
                            .ok()
                            .and_then(|t| u16::from_str_radix(t, 16).ok())
                    })
                    .collect()
            })
            .flatten();
        let fixed = units.and_then(|units| {
            let le_ascii = units
                .iter()
                .all(|u| u & 0xff == 0 && (0x20..=0x7e).contains(&(u >> 8)));
            if le_ascii {
                Some(
                    units
                        .iter()
                        .map(|u| format!("{:04x}", u >> 8))
                        .collect::<String>(),
                )
            } else if String::from_utf16(&units).is_err() {
                Some("fffd".to_string())
            } else {
                None
            }
        });
        match fixed {
            Some(f) => {
                changed = true;
                out.push(b'<');
                out.extend_from_slice(f.as_bytes());
                out.push(b'>');
            }
            None => out.extend_from_slice(&content[i..i + 2 + len]),
        }
        i += 2 + len;
    }
    changed.then_some(out)
}

/// Empties every image stream. The extractor runs each XObject a page draws as a content
/// stream, images included, and parsing an image's bytes as operators can panic (seen: an
/// index out of bounds on a `c` made of pixel data) and costs the page its text. Images carry
/// no text layer, so nothing is lost.
fn blank_images(doc: &mut pdf_extract::Document) {
    for obj in doc.objects.values_mut() {
        if let pdf_extract::Object::Stream(stream) = obj {
            let image = stream
                .dict
                .get(b"Subtype")
                .and_then(|v| v.as_name())
                .is_ok_and(|n| n == b"Image");
            if image {
                stream.dict.remove(b"Filter");
                stream.dict.remove(b"DecodeParms");
                stream.set_content(Vec::new());
            }
        }
    }
}

fn short(s: &str) -> String {
    s.chars().take(160).collect()
}

/// The `/Title` of the document information dictionary, when it looks like a title.
fn info_title(doc: &pdf_extract::Document) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let info = match info {
        pdf_extract::Object::Reference(id) => doc.get_dictionary(*id).ok()?,
        pdf_extract::Object::Dictionary(d) => d,
        _ => return None,
    };
    let raw = info.get(b"Title").ok()?.as_str().ok()?;
    let text = if raw.starts_with(&[0xFE, 0xFF]) {
        let units: Vec<u16> = raw[2..]
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else if let Some(utf8) = raw.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        String::from_utf8_lossy(utf8).into_owned()
    } else {
        raw.iter().map(|&b| b as char).collect()
    };
    let t = clean_text(&text);
    usable_title(&t).then_some(t)
}

/// Whether a metadata title names the document rather than the file or the template it was
/// made from: not "Microsoft Word - guideline_v3.docx", "Untitled", "Document1", "Layout 1",
/// a file name ("BTS_pleural_2023.pdf") or an identifier ("thoraxjnl-2022-219784").
fn usable_title(t: &str) -> bool {
    let lower = t.to_lowercase();
    if t.chars().filter(|c| c.is_alphabetic()).count() < 3 {
        return false;
    }
    const MADE_BY: &[&str] = &[
        "microsoft word",
        "microsoft powerpoint",
        "powerpoint presentation",
    ];
    if MADE_BY.iter().any(|m| lower.starts_with(m)) {
        return false;
    }
    let bare = lower.trim_end_matches(|c: char| c.is_ascii_digit() || " -_".contains(c));
    const PLACEHOLDERS: &[&str] = &[
        "untitled",
        "document",
        "dokument",
        "layout",
        "title",
        "titel",
        "unknown",
        "pdf",
        "slide",
        "presentation",
        "new document",
        "unavngivet",
        "uden titel",
    ];
    if PLACEHOLDERS.contains(&bare) {
        return false;
    }
    const FILES: &[&str] = &[
        ".pdf", ".doc", ".docx", ".dot", ".rtf", ".odt", ".tex", ".indd", ".qxd", ".qxp", ".ps",
        ".pages", ".ppt", ".pptx",
    ];
    if FILES.iter().any(|e| lower.ends_with(e)) {
        return false;
    }
    let one_word = !t.contains(char::is_whitespace);
    !(one_word && t.contains(|c: char| c == '_' || c.is_ascii_digit()))
}

/// One glyph: where it starts and ends on the page (top-down coordinates), its size and text.
#[derive(Debug, Clone)]
struct Glyph {
    x: f64,
    end: f64,
    y: f64,
    size: f64,
    text: String,
}

/// Glyphs by page.
#[derive(Default)]
struct Collector {
    pages: Vec<Page>,
    /// The current page's height: PDF y grows upwards, reading goes down.
    height: f64,
}

#[derive(Default)]
struct Page {
    width: f64,
    glyphs: Vec<Glyph>,
}

impl OutputDev for Collector {
    fn begin_page(
        &mut self,
        _page_num: u32,
        media_box: &MediaBox,
        _: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        self.height = media_box.ury - media_box.lly;
        self.pages.push(Page {
            width: (media_box.urx - media_box.llx).abs().max(1.0),
            glyphs: Vec::new(),
        });
        Ok(())
    }
    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        char: &str,
    ) -> Result<(), OutputError> {
        let height = self.height;
        let Some(page) = self.pages.last_mut() else {
            return Ok(());
        };
        // The text rendering matrix applied to a (size, size) vector: the glyph's size on the
        // page, whatever scaling the content stream applied.
        let vx = font_size * (trm.m11 + trm.m21);
        let vy = font_size * (trm.m12 + trm.m22);
        let size = (vx * vy).abs().sqrt();
        let (x, y) = (trm.m31, height - trm.m32);
        if !size.is_finite() || !x.is_finite() || !y.is_finite() {
            return Ok(());
        }
        page.glyphs.push(Glyph {
            x,
            end: x + width * size,
            y,
            size: if size > 0.0 { size } else { 1.0 },
            text: char.to_string(),
        });
        Ok(())
    }
    fn begin_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

/// A line of text as laid out: its cells (runs of glyphs far apart), position and size.
#[derive(Debug, Clone)]
struct Line {
    page: u32,
    x: f64,
    y: f64,
    size: f64,
    /// Text of each cell, left to right.
    cells: Vec<String>,
    /// Where each cell starts and ends across the page.
    spans: Vec<(f64, f64)>,
    /// Which column the line is in: 0 full width (or single column), 1 left, 2 right.
    column: u8,
}

impl Line {
    fn text(&self) -> String {
        self.cells.join(" ")
    }
}

/// Glyphs of a page into lines in reading order.
fn layout_page(page: &Page) -> Vec<Line> {
    let mut glyphs: Vec<&Glyph> = page.glyphs.iter().filter(|g| !g.text.is_empty()).collect();
    glyphs.sort_by(|a, b| a.y.total_cmp(&b.y).then(a.x.total_cmp(&b.x)));
    // Baselines: a glyph joins the current row if it sits within a third of its size.
    let mut rows: Vec<Vec<&Glyph>> = Vec::new();
    for g in glyphs {
        match rows.last_mut() {
            Some(row) if (row[0].y - g.y).abs() <= g.size.max(row[0].size) * 0.35 => row.push(g),
            _ => rows.push(vec![g]),
        }
    }
    for row in &mut rows {
        row.sort_by(|a, b| a.x.total_cmp(&b.x));
    }
    let rows = attach_superscripts(rows);
    let rows: Vec<Vec<&Glyph>> = rows.iter().map(|r| r.iter().collect()).collect();
    let gutter = find_gutter(&rows, page.width);
    let mut lines = Vec::new();
    for row in rows {
        // The row's baseline is its text's, not a superscript's beside it.
        let size = row.iter().map(|g| g.size).fold(0.0, f64::max);
        let y = row
            .iter()
            .find(|g| g.size >= size * 0.9)
            .map_or(row[0].y, |g| g.y);
        let segments = segments(&row);
        match gutter {
            Some(gx) if !segments.iter().any(|s| s.0 < gx && s.1 > gx) => {
                let (left, right): (Vec<_>, Vec<_>) = segments.into_iter().partition(|s| s.1 <= gx);
                for (column, part) in [(1u8, left), (2u8, right)] {
                    if let Some(l) = line_of(&part, column, y) {
                        lines.push(l);
                    }
                }
            }
            _ => {
                if let Some(l) = line_of(&segments, 0, y) {
                    lines.push(l);
                }
            }
        }
    }
    reading_order(lines)
}

/// Superscripts into the line they belong to. A row of glyphs set smaller than the row just
/// below and raised above its baseline by at most about half its size, each run of it touching
/// a word of that row (a citation after a word, an exponent after a unit, an ordinal's "th",
/// an isotope's mass number), is that row's: read on its own it would become a line of stray
/// numbers between two lines of the text ("…intramuskulært ⁸⁴ / 0,5 mg …"). Its digits become
/// superscript digits. A smaller cell of a table that only sits a little higher touches no word
/// and stays its own row.
fn attach_superscripts(rows: Vec<Vec<&Glyph>>) -> Vec<Vec<Glyph>> {
    let mut rows: Vec<Option<Vec<Glyph>>> = rows
        .into_iter()
        .map(|r| Some(r.into_iter().cloned().collect()))
        .collect();
    for i in 0..rows.len() {
        let Some(small) = rows[i].as_ref() else {
            continue;
        };
        let size = small.iter().map(|g| g.size).fold(0.0, f64::max);
        let y = small[0].y;
        // Runs: glyphs closer than half their size.
        let mut runs: Vec<(f64, f64, usize)> = Vec::new();
        for g in small {
            match runs.last_mut() {
                Some(run) if g.x - run.1 <= size * 0.5 => {
                    run.1 = run.1.max(g.end);
                    run.2 += 1;
                }
                _ => runs.push((g.x, g.end, 1)),
            }
        }
        let target = (i + 1..rows.len())
            .take_while(|&j| rows[j].as_ref().is_none_or(|r| r[0].y - y <= size * 1.5))
            .find(|&j| {
                let Some(line) = rows[j].as_ref() else {
                    return false;
                };
                let line_size = line.iter().map(|g| g.size).fold(0.0, f64::max);
                let rise = line
                    .iter()
                    .find(|g| g.size >= line_size * 0.9)
                    .map_or(0.0, |g| g.y)
                    - y;
                size <= line_size * 0.8
                    && rise > 0.0
                    && rise <= line_size * 0.6
                    && runs.iter().all(|&(start, end, n)| {
                        n <= 12
                            && line.iter().any(|g| {
                                let touch = line_size * 0.3;
                                (start - g.end).abs() <= touch || (g.x - end).abs() <= touch
                            })
                    })
            });
        let Some(j) = target else {
            continue;
        };
        let mut glyphs = rows[i].take().unwrap_or_default();
        for g in &mut glyphs {
            g.text = g.text.chars().map(superscript_char).collect();
            g.y = rows[j].as_ref().map_or(g.y, |r| r[0].y);
        }
        if let Some(line) = rows[j].as_mut() {
            line.extend(glyphs);
            line.sort_by(|a, b| a.x.total_cmp(&b.x));
        }
    }
    rows.into_iter().flatten().collect()
}

/// Runs of glyphs on one row: (start, end, size, text), split where the gap between two glyphs
/// is wider than two of their characters (a table cell, or the other column).
fn segments(row: &[&Glyph]) -> Vec<(f64, f64, f64, String)> {
    let mut out: Vec<(f64, f64, f64, String)> = Vec::new();
    let mut last_size = 0.0_f64;
    for g in row {
        let gap_limit = g.size * 1.8;
        // A subscript or superscript is measured against the letter it follows: its own
        // small size would take a justified line's loose setting for a space ("SpO 2").
        let space = g.size.max(last_size) * 0.12;
        last_size = g.size;
        match out.last_mut() {
            Some(seg) if g.x - seg.1 <= gap_limit => {
                if g.x - seg.1 > space && !seg.3.ends_with(' ') && g.text != " " {
                    seg.3.push(' ');
                }
                seg.3.push_str(&g.text);
                seg.1 = seg.1.max(g.end);
                seg.2 = seg.2.max(g.size);
            }
            _ => {
                if g.text.trim().is_empty() {
                    continue;
                }
                out.push((g.x, g.end, g.size, g.text.clone()))
            }
        }
    }
    out.into_iter()
        .map(|(a, b, s, t)| {
            (
                a,
                b,
                s,
                space_citation_marks(&close_decimal_gaps(&clean_text(&t))),
            )
        })
        .filter(|s| !s.3.is_empty())
        .collect()
}

/// A number whose decimal separator was set apart from its digits (a table's figures aligned
/// on the decimal point: "11,062 .6", "0 ,5") is one number again: a space before a separator
/// that digits follow is never the text's, and read as two numbers it changes the value.
fn close_decimal_gaps(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let gap = c == ' '
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(|s| *s == '.' || *s == ',')
            && chars.get(i + 2).is_some_and(char::is_ascii_digit);
        if !gap {
            out.push(c);
        }
    }
    out
}

fn line_of(segments: &[(f64, f64, f64, String)], column: u8, y: f64) -> Option<Line> {
    let first = segments.first()?;
    Some(Line {
        page: 0,
        x: first.0,
        y,
        size: segments.iter().map(|s| s.2).fold(0.0, f64::max),
        cells: segments.iter().map(|s| s.3.clone()).collect(),
        spans: segments.iter().map(|s| (s.0, s.1)).collect(),
        column,
    })
}

/// A vertical band between 30 % and 70 % of the page's width that many rows leave empty while
/// having a column's line of text on both sides: the gutter between two columns. Rows that
/// cross it are full-width lines (a title, an abstract above the columns); a table's rows
/// (short cells) are not columns.
fn find_gutter(rows: &[Vec<&Glyph>], width: f64) -> Option<f64> {
    let spans: Vec<Vec<(f64, f64)>> = rows
        .iter()
        .map(|r| segments(r).iter().map(|s| (s.0, s.1)).collect())
        .collect();
    let candidates = (30..=70).map(|p| width * f64::from(p) / 100.0);
    let mut best: Option<(f64, usize)> = None;
    for x in candidates {
        let mut both_sides = 0;
        let mut crossing = 0;
        for s in &spans {
            if s.iter().any(|(a, b)| *a < x && *b > x) {
                crossing += 1;
                continue;
            }
            // A column's line is one run of text filling much of its column (a fifth of the
            // page) on each side; a table row's cells are several, or short.
            let line = |part: Vec<&(f64, f64)>| matches!(part.as_slice(), [(a, b)] if b - a >= width * COLUMN_LINE);
            if line(s.iter().filter(|(_, b)| *b <= x).collect())
                && line(s.iter().filter(|(a, _)| *a >= x).collect())
            {
                both_sides += 1;
            }
        }
        // Two columns: several rows have a column's line on both sides of the band; the rows
        // that cross it are full-width lines between the columns (a title, an abstract), not
        // many times more than the column rows (a page of prose with a short two-cell table).
        if both_sides >= 4
            && both_sides * FULL_WIDTH_PER_COLUMN_ROW >= crossing
            && best.is_none_or(|(_, n)| both_sides > n)
        {
            best = Some((x, both_sides));
        }
    }
    best.map(|(x, _)| x)
}

/// Lines in reading order: between full-width lines, the left column top to bottom, then the
/// right column.
fn reading_order(lines: Vec<Line>) -> Vec<Line> {
    let mut out = Vec::new();
    let mut left = Vec::new();
    let mut right = Vec::new();
    for l in lines {
        match l.column {
            1 => left.push(l),
            2 => right.push(l),
            _ => {
                out.append(&mut left);
                out.append(&mut right);
                out.push(l);
            }
        }
    }
    out.append(&mut left);
    out.append(&mut right);
    out
}

/// A line's text with its digits as `#`: a running header or footer is the same text on most
/// pages with only its page number changing.
fn shape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        // "Side 9 af 47" and "Side 10 af 47" are one footer.
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a line is only a page number ("12", "- 12 -", "Side 12", "Page 3 of 60", "12/60").
fn is_page_number(text: &str) -> bool {
    let t = text.to_lowercase();
    let t = t.trim_matches(|c: char| c == '-' || c == '–' || c.is_whitespace());
    let words: Vec<&str> = t
        .split(|c: char| c.is_whitespace() || c == '/')
        .filter(|w| !w.is_empty())
        .collect();
    let number = |w: &str| w.chars().all(|c| c.is_ascii_digit());
    let numbers = words.iter().filter(|w| number(w)).count();
    // "12", "Side 12", "12/60", "Page 3 of 60"; never a row of numbers ("10 150 600", a dose
    // table's).
    let of = t.contains('/') || words.iter().any(|w| ["af", "of"].contains(w));
    !words.is_empty()
        && words.len() <= 4
        && (numbers == 1 || (numbers == 2 && of))
        && words
            .iter()
            .all(|w| number(w) || ["side", "page", "af", "of", "s."].contains(w))
}

/// The size most characters are set in.
fn body_size(pages: &[Vec<Line>]) -> f64 {
    let mut by_size: HashMap<i64, usize> = HashMap::new();
    for l in pages.iter().flatten() {
        *by_size.entry((l.size * 10.0).round() as i64).or_default() += l.text().chars().count();
    }
    by_size
        .iter()
        .max_by_key(|(s, n)| (**n, -**s))
        .map(|(s, _)| *s as f64 / 10.0)
        .unwrap_or(10.0)
}

/// How many lines at the top and at the bottom of a page may be its running lines (a
/// "Printed by" stamp, the guideline's name, a "Table of Contents" link).
const MARGIN_LINES: usize = 3;

/// The key under which a margin line recurs from page to page. A line set smaller than the
/// text (a header's or footer's type) recurs as its shape, and a long one (a copyright notice,
/// a disclaimer) as its letters with a `#` where numbers stand, so that the variants one
/// producer writes ("(NCCN®)", "(NCCN )", with or without a date) are one line. A line in the
/// text's size recurs as its shape ("Chapter 4 · 12", "MS-21") unless it states a quantity: rows
/// of a dose table differ only in their numbers, and a dose is never a running line.
fn margin_key(l: &Line, body: f64) -> String {
    let text = l.text();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if l.size < body * 0.95 && l.cells.len() == 1 && letters >= 20 {
        let mut key = String::new();
        for c in text.chars().flat_map(char::to_lowercase) {
            if c.is_alphabetic() {
                key.push(c);
            } else if c.is_ascii_digit() && !key.ends_with('#') {
                key.push('#');
            }
        }
        return key;
    }
    if l.size >= body * 0.95 && states_quantity(&text) {
        return text.to_lowercase();
    }
    shape(&text)
}

/// Whether a line reads as a sentence: four words or more and a full stop at its end.
fn sentence_like(text: &str) -> bool {
    let t = text.trim_end_matches(|c: char| is_superscript_digit(c) || c == ',');
    t.ends_with(['.', '!', '?']) && t.split_whitespace().count() >= 4
}

/// Whether a text has a number with a unit of measure ("0,5 mg", "10 kg", "5 %", "2 x daily").
fn states_quantity(text: &str) -> bool {
    const UNITS: &[&str] = &[
        "mg", "g", "kg", "µg", "μg", "mcg", "ug", "mikrog", "ng", "ml", "l", "dl", "mmol", "mol",
        "ie", "iu", "e", "%", "mm", "cm", "min", "t", "h", "x", "timer", "hours", "døgn", "dage",
        "days", "tabl", "tablets", "dråber", "drops", "fr", "ch", "g/l", "j",
    ];
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == '|')
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().enumerate().any(|(i, w)| {
        let digits_end = w.find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '.'));
        let starts_with_number = w.starts_with(|c: char| c.is_ascii_digit());
        let unit_of = |u: &str| {
            let u = u.trim_end_matches(|c: char| ".,;:)".contains(c) || is_superscript_digit(c));
            UNITS.contains(&u)
                || u.split('/')
                    .next()
                    .is_some_and(|h| UNITS.contains(&h) && u.contains('/'))
        };
        starts_with_number
            && match digits_end {
                Some(at) => unit_of(&w[at..]),
                None => words.get(i + 1).is_some_and(|n| unit_of(n)),
            }
    })
}

/// A large margin line is running only as the same words on every page it is on: a chapter
/// heading that opens pages in one pattern ("Kapitel 3", "Kapitel 4") stays.
fn large_key(l: &Line) -> String {
    l.text()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The usual distance between the baselines of two lines of one paragraph of the text.
fn body_leading(pages: &[Vec<Line>], body: f64) -> f64 {
    let mut gaps: Vec<f64> = pages
        .iter()
        .flat_map(|lines| lines.windows(2))
        .filter(|w| {
            w[0].column == w[1].column && in_text_size(&w[0], body) && in_text_size(&w[1], body)
        })
        .map(|w| w[1].y - w[0].y)
        .filter(|g| *g > body * 0.8 && *g < body * 2.5)
        .collect();
    if gaps.is_empty() {
        return body * 1.2;
    }
    gaps.sort_by(f64::total_cmp);
    gaps[gaps.len() / 2]
}

/// Whether a line is set in the text's own size.
fn in_text_size(l: &Line, body: f64) -> bool {
    (l.size - body).abs() < body * 0.05
}

/// Drops running headers and footers and bare page numbers. A running line is one of the
/// first or last [`MARGIN_LINES`] of a page that recurs at the same height on at least half
/// the pages (both of two), or on at least three and a third of them (a long guideline's sections carry
/// headers of their own): set no larger than the text by its [`margin_key`], or larger (a
/// guideline's name set as a banner) as the same words. One set in the text's own size must
/// also stand apart from the text by more than a paragraph's spacing: a sentence that a
/// templated document repeats on its pages runs on from the lines next to it. A page number is
/// the outermost line left at the top or bottom.
fn drop_running_lines(mut pages: Vec<Vec<Line>>) -> Vec<Vec<Line>> {
    let n = pages.len();
    let body = body_size(&pages);
    let apart = body_leading(&pages, body) * 1.6;
    let small = |l: &Line| l.size < body * 1.15;
    // Where on the page it stands is part of it: a header or footer is set at the same height
    // on every page; a sentence the text repeats lands wherever the text flows.
    let key = |l: &Line| {
        let y = l.y.round() as i64;
        if small(l) {
            format!("{y} {}", margin_key(l, body))
        } else {
            format!("{y} \u{1}{}", large_key(l))
        }
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    for lines in &pages {
        let mut seen = std::collections::HashSet::new();
        for l in margin_lines(lines) {
            if seen.insert(key(l)) {
                *counts.entry(key(l)).or_default() += 1;
            }
        }
    }
    let running: std::collections::HashSet<String> = counts
        .into_iter()
        // (Both pages of a two-page instruction.)
        .filter(|(_, c)| {
            (n == 2 && *c == 2) || (n >= 3 && (*c * 2 >= n || (*c >= 3 && *c * 3 >= n)))
        })
        .map(|(s, _)| s)
        .collect();
    // A header whose words change with the chapter ("Kapitel 3 · Opioidforgiftning") still
    // stands where the others stand: the page's top line, set smaller than the text and apart
    // from it, at the same height and size on as many pages as a running line.
    let top_line = |lines: &[Line]| -> Option<usize> {
        let top = (0..lines.len()).min_by(|&a, &b| lines[a].y.total_cmp(&lines[b].y))?;
        let l = &lines[top];
        let next = lines
            .iter()
            .filter(|m| m.y > l.y + body * 0.5)
            .map(|m| m.y)
            .min_by(f64::total_cmp);
        let apart_below = next.is_none_or(|y| y - l.y >= apart);
        (l.size < body * 0.95 && apart_below).then_some(top)
    };
    let slot = |l: &Line| (l.y.round() as i64, (l.size * 10.0).round() as i64);
    let mut slots: HashMap<(i64, i64), usize> = HashMap::new();
    for lines in &pages {
        if let Some(t) = top_line(lines) {
            *slots.entry(slot(&lines[t])).or_default() += 1;
        }
    }
    let header_slot = |l: &Line| {
        slots
            .get(&slot(l))
            .is_some_and(|&c| (n == 2 && c == 2) || (n >= 3 && c * 2 >= n))
    };
    let mut once = std::collections::HashSet::new();
    for (i, lines) in pages.iter_mut().enumerate() {
        let header = top_line(lines).filter(|&t| header_slot(&lines[t]));
        let len = lines.len();
        // By height, not reading order: a two-column page reads its footer between the
        // columns.
        let rank = y_ranks(lines);
        let margin = |j: usize| rank[j] < MARGIN_LINES || rank[j] + MARGIN_LINES >= len;
        // A line stating a quantity is never dropped: a template's "Maksimal
        // infusionshastighed: 10 ml/min." on every page is a dose, not a footer.
        let mut drop: Vec<bool> = lines
            .iter()
            .enumerate()
            .map(|(j, l)| {
                (margin(j) && running.contains(&key(l)) || header == Some(j))
                    && !states_quantity(&l.text())
            })
            .collect();
        // From the text outwards: a text-size line next to the text is the text's.
        let mut order: Vec<usize> = (0..len)
            .filter(|&j| drop[j] && in_text_size(&lines[j], body))
            .collect();
        order.sort_by(|&a, &b| {
            let inward = |j: usize| {
                if rank[j] * 2 < len {
                    -lines[j].y
                } else {
                    lines[j].y
                }
            };
            inward(a).total_cmp(&inward(b))
        });
        for j in order {
            let y = lines[j].y;
            let below = rank[j] * 2 < len;
            // The nearest line left on the text's side, unless on the same row (a page label
            // a little higher or lower beside it).
            let next = (0..len)
                .filter(|&k| !drop[k])
                .map(|k| {
                    (
                        k,
                        if below {
                            lines[k].y - y
                        } else {
                            y - lines[k].y
                        },
                    )
                })
                .filter(|(_, g)| *g > body * 0.5)
                .min_by(|a, b| a.1.total_cmp(&b.1));
            // Close to a line of the text, it runs on from it; a heading starts afresh.
            let runs_on = next.is_some_and(|(k, gap)| gap < apart && in_text_size(&lines[k], body));
            if runs_on {
                drop[j] = false;
            }
        }
        // A sentence in the text's size that a templated document repeats at one place on
        // every page ("Kontrollér altid patientens identitet …") is kept where it first
        // stands: set apart from the text it reads like a footer, but it may be the text's.
        for j in 0..len {
            let l = &lines[j];
            if drop[j] && in_text_size(l, body) && sentence_like(&l.text()) && once.insert(key(l)) {
                drop[j] = false;
            }
        }
        let mut keep: Vec<(usize, Line)> = lines
            .drain(..)
            .enumerate()
            .filter(|(j, _)| !drop[*j])
            .collect();
        // A page number stands alone as the page's first or last line, or, labelled ("Side
        // 3", "3/60"), as the first or last line left in the margin; a number inside the page,
        // or in a table's row, is the document's.
        let page_number = |(j, l): &(usize, Line)| {
            let text = l.text();
            let outermost = rank[*j] == 0 || rank[*j] + 1 == len;
            margin(*j)
                && small(l)
                && l.cells.len() == 1
                && is_page_number(&text)
                && (outermost || text.contains(|c: char| c.is_alphabetic() || c == '/'))
        };
        for lowest in [true, false] {
            let at = (0..keep.len()).max_by_key(|&k| {
                let r = rank[keep[k].0];
                if lowest {
                    r
                } else {
                    len - r
                }
            });
            if let Some(at) = at.filter(|&at| page_number(&keep[at])) {
                keep.remove(at);
            }
        }
        *lines = keep
            .into_iter()
            .map(|(_, mut l)| {
                l.page = i as u32 + 1;
                l
            })
            .collect();
    }
    pages
}

/// Each line's place from the top of its page (0 the highest; lines of one row in reading
/// order).
fn y_ranks(lines: &[Line]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|&a, &b| lines[a].y.total_cmp(&lines[b].y).then(a.cmp(&b)));
    let mut rank = vec![0; lines.len()];
    for (r, j) in order.into_iter().enumerate() {
        rank[j] = r;
    }
    rank
}

/// A page's first and last [`MARGIN_LINES`] lines by height.
fn margin_lines(lines: &[Line]) -> impl Iterator<Item = &Line> {
    let len = lines.len();
    let rank = y_ranks(lines);
    lines
        .iter()
        .enumerate()
        .filter(move |(j, _)| rank[*j] < MARGIN_LINES || rank[*j] + MARGIN_LINES >= len)
        .map(|(_, l)| l)
}

/// A table row's cells: where each stands across the page, and its text.
type RowCells = Vec<((f64, f64), String)>;

/// A table row's cells with the next line's text added, when that line holds the wrapped
/// rest of some of them: right under the row's last line, in the same size, each of its
/// pieces under one of the row's cells and inside its column, fewer than half of them, each
/// opening as a rest does (in lower case, a number, a bracket or a sign; not in a capital, as
/// a group's label for the rows below does, nor as a note under the table) and no number
/// joining a cell that states one (a row whose first cell spans two rows, "Voksne | 0,5 mg"
/// then "| 1 mg", is another row), none much wider than its cell's first line.
/// "Calcium gluconate | 10 mL" / "10%" is "Calcium gluconate 10% | 10 mL".
fn wrapped_cells(cells: &RowCells, first: &Line, above: &Line, l: &Line) -> Option<RowCells> {
    let close = l.page == above.page
        && l.column == above.column
        && (l.size - above.size).abs() < 0.6
        && l.y > above.y
        && l.y - above.y <= l.size * 1.6;
    if !close || l.cells.len() * 2 > cells.len() {
        return None;
    }
    let mut out = cells.to_vec();
    let mut used = vec![false; cells.len()];
    for (&(start, end), text) in l.spans.iter().zip(&l.cells) {
        let under: Vec<usize> = (0..cells.len())
            .filter(|&i| {
                let (a, b) = cells[i].0;
                start < b && end > a
            })
            .collect();
        let [i] = under[..] else {
            return None;
        };
        // It stays in its cell's column: short of the next cell and past the one before.
        let inside = cells.get(i + 1).is_none_or(|next| end <= next.0 .0)
            && (i == 0 || start >= cells[i - 1].0 .1);
        let has_digit = |t: &str| t.chars().any(|c| c.is_ascii_digit());
        let opens_as_rest = text
            .chars()
            .next()
            .is_some_and(|c| c.is_lowercase() || c.is_ascii_digit() || "([%/±≤≥<>+-–".contains(c));
        // No wider than the cell's first line, which was full when it wrapped (prose whose
        // wide gaps made a "row" runs on much wider).
        let fits = text.chars().count()
            <= first.cells.get(i).map_or(0, |c| c.chars().count()) * 13 / 10 + 4;
        if used[i]
            || !inside
            || !fits
            || !opens_as_rest
            || opens_footnote(text)
            || (has_digit(text) && has_digit(&cells[i].1))
        {
            return None;
        }
        used[i] = true;
        let (a, b) = cells[i].0;
        out[i] = ((a.min(start), b.max(end)), join_lines(&[&cells[i].1, text]));
    }
    Some(out)
}

/// Whether a line opens a footnote: a note's number or mark, then its text ("3 Persistent
/// fever …", "¹ Children …", "ᵃ Maximum …", "* Off label").
fn opens_footnote(text: &str) -> bool {
    let Some((label, rest)) = text.split_once(' ') else {
        return false;
    };
    let numbered = (1..=3).contains(&label.chars().count())
        && label
            .chars()
            .all(|c| c.is_ascii_digit() || is_superscript_digit(c));
    let marked = label.chars().count() <= 2
        && label
            .chars()
            .all(|c| is_superscript_letter(c) || "*†‡§".contains(c));
    (numbered || marked) && rest.chars().next().is_some_and(char::is_alphabetic)
}

/// The marks a line's superscripts set ("¹²,¹⁴" → "12", "14"; "ᵃ" → "a"), in plain digits
/// and letters.
fn superscript_marks(text: &str) -> Vec<String> {
    let plain = |c: char| -> Option<char> {
        "⁰¹²³⁴⁵⁶⁷⁸⁹"
            .chars()
            .position(|d| d == c)
            .and_then(|d| char::from_digit(d as u32, 10))
            .or_else(|| plain_letter(c))
    };
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        match plain(c) {
            Some(p) => cur.push(p),
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Which of a page's lines are its footnotes: lines at its foot, below all of the text, the
/// first of them opening a note. Set smaller than the text, that is enough; set in the text's
/// size, the notes must stand apart from the text by more than a paragraph's spacing and each
/// note's mark must be one the page's text sets as a superscript (a numbered heading or step
/// at the foot of a page is not a note). A table's rows there are the table's, and small print
/// that opens with no note's mark is the text's.
fn footnote_lines(lines: &[Line], body: f64, leading: f64) -> Vec<bool> {
    let mut out = vec![false; lines.len()];
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|&a, &b| lines[b].y.total_cmp(&lines[a].y));
    // From the foot up, lines of one cell no larger than the text.
    let foot: Vec<usize> = order
        .iter()
        .copied()
        .take_while(|&i| lines[i].size < body * 1.05 && lines[i].cells.len() == 1)
        .collect();
    // The topmost line that opens a note starts the notes; there must be text above it.
    let Some(top) = foot.iter().rposition(|&i| opens_footnote(&lines[i].text())) else {
        return out;
    };
    let Some(&above) = order.get(top + 1) else {
        return out;
    };
    let notes = &foot[..=top];
    if order[top + 1..]
        .iter()
        .all(|&i| lines[i].size < body * 0.93)
    {
        // A page of small print only has no text for notes to stand under.
        return out;
    }
    let small = notes.iter().all(|&i| lines[i].size < body * 0.93);
    if !small {
        let apart = lines[notes[top]].y - lines[above].y > leading * 1.4;
        let marks: HashSet<String> = order[top + 1..]
            .iter()
            .flat_map(|&i| superscript_marks(&lines[i].text()))
            .collect();
        let marked = notes.iter().all(|&i| {
            let text = lines[i].text();
            !opens_footnote(&text)
                || text.split(' ').next().is_some_and(|label| {
                    let plain: String = superscript_marks(label).concat();
                    let label = if plain.is_empty() {
                        label.to_string()
                    } else {
                        plain
                    };
                    marks.contains(&label)
                })
        });
        if !(apart && marked) {
            return out;
        }
    }
    for &i in notes {
        out[i] = true;
    }
    out
}

/// A numbered heading: "3", "3.2", "3.2.1" then a capitalised short title without a final
/// period, an inner full stop, dot leaders or a citation's year and punctuation. Returns its
/// depth.
fn numbered_heading(text: &str) -> Option<u8> {
    let (num, rest) = text.split_once(' ')?;
    let num = num.trim_end_matches('.');
    let parts: Vec<&str> = num.split('.').collect();
    let numeric = !parts.is_empty()
        && parts.len() <= 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit()));
    // Not a line of the contents ("2. Anlæggelse ....... 3") or an entry of a numbered
    // reference list ("2. Jensen A. Pleuradræn hos voksne. Ugeskr Læger 2019;181").
    // (A citation mark after its last word does not make a sentence a title: "4 J/kg.³".)
    let plain = rest.trim_end_matches(|c: char| is_superscript_digit(c) || c == ',' || c == ' ');
    let title_like = rest.chars().next().is_some_and(char::is_uppercase)
        && rest.chars().count() <= 80
        && !plain.ends_with(['.', ',', ';', '-'])
        && !states_quantity(text)
        && !rest.contains(" mg")
        && !rest.contains(" ml")
        && !rest.contains(". ")
        && !crate::document::contents_line(text)
        && !crate::document::citation_like(text)
        && rest.split_whitespace().count() <= 10;
    (numeric && title_like).then_some(parts.len() as u8)
}

/// Lines into blocks: headings, list items, table rows and paragraphs.
fn blocks(pages: &[Vec<Line>]) -> Vec<Block> {
    let body = body_size(pages);
    let mut by_size: HashMap<i64, usize> = HashMap::new();
    for l in pages.iter().flatten() {
        *by_size.entry((l.size * 10.0).round() as i64).or_default() += l.text().chars().count();
    }
    let mut heading_sizes: Vec<i64> = by_size
        .keys()
        .copied()
        .filter(|s| *s as f64 / 10.0 >= body * 1.15)
        .collect();
    heading_sizes.sort_unstable_by(|a, b| b.cmp(a));
    let level_of_size = |size: f64| -> Option<u8> {
        let k = (size * 10.0).round() as i64;
        heading_sizes
            .iter()
            .position(|s| *s == k)
            .map(|i| (i + 1).min(6) as u8)
    };

    let mut out: Vec<Block> = Vec::new();
    let mut para: Vec<String> = Vec::new();
    let mut para_page: Option<u32> = None;
    let mut para_numbered = false;
    let mut last: Option<&Line> = None;
    // How the document writes its words inside lines, for its line-end hyphens.
    let texts: Vec<String> = pages.iter().flatten().map(Line::text).collect();
    let words = vocabulary(texts.iter().map(String::as_str));
    // A paragraph ends on the page of its last line.
    let flush = |para: &mut Vec<String>,
                 page: &mut Option<u32>,
                 last: Option<&Line>,
                 out: &mut Vec<Block>| {
        if !para.is_empty() {
            let refs: Vec<&str> = para.iter().map(String::as_str).collect();
            let end = last.map(|l| l.page);
            out.push(
                Block::new(
                    BlockKind::Paragraph,
                    join_lines_in(&refs, Some(&words)),
                    *page,
                )
                .ending_on(end),
            );
            para.clear();
            *page = None;
        }
    };
    let all: Vec<&Line> = pages.iter().flatten().collect();
    let leading = body_leading(pages, body);
    let foot: Vec<bool> = pages
        .iter()
        .flat_map(|lines| footnote_lines(lines, body, leading))
        .collect();
    let mut para_foot = false;
    // The table row just read: its block and its cells where they stand, for the lines of
    // its cells that wrap.
    let mut row: Option<(usize, RowCells, &Line, &Line)> = None;
    for (at, &l) in all.iter().enumerate() {
        let text = l.text();
        let page = Some(l.page);
        // A page's footnotes: one block each, whatever stands above them.
        if foot[at] || para_foot {
            if !foot[at] || opens_footnote(&text) || !para_foot {
                flush(&mut para, &mut para_page, last, &mut out);
                if let (true, Some(b)) = (para_foot, out.last_mut()) {
                    b.kind = BlockKind::Footnote;
                }
                para_foot = false;
            }
            if foot[at] {
                if para.is_empty() {
                    para_page = page;
                    para_foot = true;
                }
                para.push(text);
                last = Some(l);
                continue;
            }
        }
        // The wrapped rest of the cells of the row just read.
        if let Some((at, cells, first, below)) = row.as_mut() {
            if let Some(joined) = wrapped_cells(cells, first, below, l) {
                *cells = joined;
                *below = l;
                out[*at].text = cells
                    .iter()
                    .map(|(_, t)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" | ");
                last = Some(l);
                continue;
            }
        }
        // A lone short piece right under a later cell of the row, where that cell starts (a
        // cell of a row whose first cell spans two), is no paragraph's first line: "0,3 mg"
        // and a label below it are two.
        let under_a_cell = row.as_ref().is_some_and(|(_, cells, _, below)| {
            let (start, end) = l.spans.first().copied().unwrap_or_default();
            l.cells.len() == 1
                && l.page == below.page
                && l.y - below.y <= l.size * 1.6
                && text.chars().count() <= 40
                && (1..cells.len()).any(|i| {
                    (start - cells[i].0 .0).abs() <= l.size * 0.5
                        && cells.get(i + 1).is_none_or(|next| end <= next.0 .0)
                })
        });
        row = None;
        if under_a_cell {
            flush(&mut para, &mut para_page, last, &mut out);
            out.push(Block::new(BlockKind::TableRow, text, page));
            last = Some(l);
            continue;
        }
        // The next line of the same column continues this one in lower case: a sentence set
        // over two lines ("5. Overvej antihistamin" / "som tillægsbehandling"), not a heading.
        let wraps_on = all.get(at + 1).is_some_and(|n| {
            n.page == l.page
                && n.column == l.column
                && (n.size - l.size).abs() < 0.6
                && (n.y - l.y).abs() <= l.size * 1.9
                && n.text().chars().next().is_some_and(char::is_lowercase)
        });
        if let Some(level) = level_of_size(l.size).filter(|_| text.chars().count() <= 150) {
            flush(&mut para, &mut para_page, last, &mut out);
            // A heading set over two lines is one heading.
            match out.last_mut() {
                Some(b)
                    if b.kind == (BlockKind::Heading { level })
                        && last.is_some_and(|p| (p.size - l.size).abs() < 0.05) =>
                {
                    b.text = join_lines(&[&b.text, &text]);
                }
                _ => out.push(Block::new(BlockKind::Heading { level }, text, page)),
            }
            last = Some(l);
            continue;
        }
        if let Some(level) = numbered_heading(&text).filter(|_| !wraps_on) {
            flush(&mut para, &mut para_page, last, &mut out);
            out.push(Block::new(
                BlockKind::Heading {
                    level: level.min(6),
                },
                text,
                page,
            ));
            last = Some(l);
            continue;
        }
        if l.cells.len() >= 2 {
            flush(&mut para, &mut para_page, last, &mut out);
            out.push(Block::new(BlockKind::TableRow, l.cells.join(" | "), page));
            row = Some((
                out.len() - 1,
                l.spans
                    .iter()
                    .copied()
                    .zip(l.cells.iter().cloned())
                    .collect(),
                l,
                l,
            ));
            last = Some(l);
            continue;
        }
        if let Some(item) = text
            .strip_prefix("• ")
            .or_else(|| text.strip_prefix("· "))
            .or_else(|| text.strip_prefix("– "))
            .or_else(|| text.strip_prefix("- "))
        {
            flush(&mut para, &mut para_page, last, &mut out);
            out.push(Block::new(BlockKind::ListItem, item.trim(), page));
            last = Some(l);
            continue;
        }
        // "2. Giv adrenalin …": a numbered step starts its own paragraph.
        let numbered = text.split_once(' ').is_some_and(|(n, rest)| {
            (2..=3).contains(&n.len())
                && n.ends_with(['.', ')'])
                && n[..n.len() - 1].chars().all(|c| c.is_ascii_digit())
                && rest.chars().next().is_some_and(char::is_uppercase)
        });
        let hanging = para.len() == 1 && para_numbered;
        // A new paragraph after a gap wider than a line and a half, a change of page, column
        // or size, or a line that starts further right (an indent).
        let continues = last.is_some_and(|p| {
            p.page == l.page
                && p.column == l.column
                && (p.size - l.size).abs() < 0.6
                && (l.y - p.y).abs() <= l.size * 1.9
                // (a numbered step's lines hang under its text, right of its number)
                && l.x <= p.x + l.size * if hanging { 4.0 } else { 1.5 }
                && p.cells.len() == 1
        }) || (last.is_some_and(|p| p.page + 1 == l.page || p.column != l.column)
            && para
                .last()
                .is_some_and(|t| !t.ends_with('.') && !t.ends_with(':')));
        if !continues || numbered {
            flush(&mut para, &mut para_page, last, &mut out);
        }
        if para.is_empty() {
            para_page = page;
            para_numbered = numbered;
        }
        para.push(text);
        last = Some(l);
    }
    flush(&mut para, &mut para_page, last, &mut out);
    if let (true, Some(b)) = (para_foot, out.last_mut()) {
        b.kind = BlockKind::Footnote;
    }
    crate::document::clean_blocks(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::split;
    use crate::sample_pdf::{build, guideline, Item, SamplePage, Style};

    /// The blocks' texts, one per line.
    fn text_of(blocks: &[Block]) -> String {
        blocks.iter().map(|b| format!("{}\n", b.text)).collect()
    }

    fn texts(blocks: &[Block]) -> Vec<(BlockKind, String, Option<u32>)> {
        blocks
            .iter()
            .map(|b| (b.kind, b.text.clone(), b.page))
            .collect()
    }

    #[test]
    fn a_guideline_reads_as_located_blocks_without_headers_or_page_numbers() {
        let pages = vec![
            SamplePage {
                two_columns: false,
                items: vec![
                    Item::Heading("1. Indledning".into()),
                    Item::Paragraph("Vejledningen gælder behandling af anafylaksi hos voksne og børn i alle akutte afdelinger og præhospitalt.".into()),
                ],
            },
            SamplePage {
                two_columns: true,
                items: vec![
                    Item::Heading("2. Behandling".into()),
                    Item::Paragraph("Adrenalin er førstevalgsbehandling og gives intramuskulært i lårets anterolaterale side uden forsinkelse.".into()),
                    Item::Paragraph("Dosis til voksne er 0,5 mg, som kan gentages efter fem minutter ved manglende effekt af første dosis.".into()),
                    Item::Heading("3. Observation".into()),
                    Item::Paragraph("Patienten observeres i mindst seks timer på grund af risikoen for bifasisk reaktion efter behandlingen.".into()),
                ],
            },
            SamplePage {
                two_columns: false,
                items: vec![
                    Item::Heading("4. Dosering".into()),
                    Item::Row(vec!["Alder".into(), "Dosis".into(), "Vej".into()]),
                    Item::Row(vec!["Voksne".into(), "0,5 mg".into(), "i.m.".into()]),
                    // Rows of numbers only (weight, mg, mg per day) are the table's, even as
                    // the page's last lines.
                    Item::Row(vec!["10".into(), "150".into(), "600".into()]),
                    Item::Row(vec!["50".into(), "750".into(), "3000".into()]),
                ],
            },
        ];
        let pdf = build(&pages, &Style::default());
        let got = read(&pdf).unwrap();
        assert_eq!(got.pages, 3);
        assert_eq!(got.title.as_deref(), Some("Anafylaksi – vejledning"));
        let t = texts(&got.blocks);
        let h = |l: u8, s: &str, p: u32| (BlockKind::Heading { level: l }, s.to_string(), Some(p));
        let para = |s: &str, p: u32| (BlockKind::Paragraph, s.to_string(), Some(p));
        assert_eq!(
            t,
            vec![
                h(1, "1. Indledning", 1),
                para("Vejledningen gælder behandling af anafylaksi hos voksne og børn i alle akutte afdelinger og præhospitalt.", 1),
                h(1, "2. Behandling", 2),
                para("Adrenalin er førstevalgsbehandling og gives intramuskulært i lårets anterolaterale side uden forsinkelse.", 2),
                para("Dosis til voksne er 0,5 mg, som kan gentages efter fem minutter ved manglende effekt af første dosis.", 2),
                h(1, "3. Observation", 2),
                para("Patienten observeres i mindst seks timer på grund af risikoen for bifasisk reaktion efter behandlingen.", 2),
                h(1, "4. Dosering", 3),
                (BlockKind::TableRow, "Alder | Dosis | Vej".into(), Some(3)),
                (BlockKind::TableRow, "Voksne | 0,5 mg | i.m.".into(), Some(3)),
                (BlockKind::TableRow, "10 | 150 | 600".into(), Some(3)),
                (BlockKind::TableRow, "50 | 750 | 3000".into(), Some(3)),
            ],
            "{t:#?}"
        );
    }

    #[test]
    fn a_long_guidelines_section_banners_and_notices_are_not_its_text() {
        // Ten pages: the guideline's name set large under the header on its four
        // recommendation pages (a section's own running banner, under half the pages), a
        // "Contents" link under it, and a copyright notice the producer writes in two ways
        // ("Region H®" with a date, "Region H " without). Chapter headings that open pages in
        // one pattern, a dose table's rows at one height, a number that opens a page and a
        // sentence the text repeats at varying heights all stay.
        let notice = |i: usize| {
            if i.is_multiple_of(2) {
                "© 2024 Region H®, alle rettigheder forbeholdes. Version 2.1, 07/15/24".to_string()
            } else {
                "© 2024 Region H , alle rettigheder forbeholdes. Version 2.1".to_string()
            }
        };
        let pages: Vec<SamplePage> = (1..=10)
            .map(|i| {
                let mut items = Vec::new();
                if (4..=7).contains(&i) {
                    items.push(Item::Top("Anafylaksi · Anbefalinger".into(), 18.0));
                    items.push(Item::Top("Indholdsfortegnelse".into(), 10.0));
                }
                items.push(Item::Foot(notice(i)));
                if i == 5 {
                    items.push(Item::Paragraph("4".into()));
                }
                items.push(Item::Heading(format!("Kapitel {i}")));
                // A dose table's row at the same height on most pages.
                items.push(Item::Row(vec![format!("{} kg", 10 * i), format!("0,{i} ml")]));
                items.push(Item::Paragraph(format!(
                    "Afsnit {i}: adrenalin 0,5 mg gives intramuskulært i låret ved anafylaksi hos voksne. {}",
                    "Gentag efter fem minutter ved manglende effekt. ".repeat(i % 5 * 3)
                )));
                items.push(Item::Paragraph(
                    "Kontakt bagvagten ved tvivl om behandlingen.".into(),
                ));
                SamplePage {
                    two_columns: false,
                    items,
                }
            })
            .collect();
        let got = read(&build(&pages, &Style::default())).unwrap();
        let all = texts(&got.blocks);
        let text: String = all.iter().map(|(_, t, _)| format!("{t}\n")).collect();
        for gone in [
            "Anbefalinger",
            "Indholdsfortegnelse",
            "rettigheder",
            "Sundhedsstyrelsen",
            "Side ",
        ] {
            assert!(!text.contains(gone), "{gone:?} is a margin line:\n{text}");
        }
        for i in 1..=10 {
            assert!(
                all.iter().any(|(k, t, p)| *k != BlockKind::Paragraph
                    && t == &format!("Kapitel {i}")
                    && *p == Some(i as u32)),
                "chapter heading {i} kept on its page:\n{text}"
            );
        }
        assert!(
            all.iter().any(|(_, t, p)| t == "4" && *p == Some(5)),
            "a number opening a page's text is the text's:\n{text}"
        );
        assert_eq!(text.matches("Kontakt bagvagten").count(), 10, "{text}");
        for i in 1..=10 {
            let row = format!("{} kg | 0,{i} ml", 10 * i);
            assert!(
                all.iter()
                    .any(|(k, t, _)| *k == BlockKind::TableRow && t == &row),
                "dose row {row:?} kept:\n{text}"
            );
        }
    }

    #[test]
    fn superscripts_stay_on_their_line_and_keep_their_meaning() {
        // Citation numbers, an exponent and an ordinal, set small and raised, in a paragraph
        // and in a table row; read as a row of their own they became stray numbers between
        // the lines ("intramuskulært 12 / Adrenalin 0,5 mg").
        let pages = vec![SamplePage {
            two_columns: false,
            items: vec![
                Item::Heading("Behandling".into()),
                Item::Paragraph(
                    "Adrenalin er førstevalg ved anafylaksi og gives intramuskulært i låret^{12,14} uden forsinkelse. Dosis til voksne er 0,5 mg, og trombocyttal under 50 x 10^{9}/L kræver forsigtighed.".into(),
                ),
                Item::Paragraph(
                    "Carboplatin doseres efter areal, 400 mg/m^{2}, fra 8^{th} cyklus efter aftale; i 40^{3} forløb steg Ca^{2+}. Ved neutrofile under 1,5 x 10 ^{9}/L udsættes behandlingen.".into(),
                ),
                Item::Paragraph("Kontrol efter ^{131}I-behandling.^{37} Herefter årlig kontrol.".into()),
                Item::Paragraph("Mål SpO_{2} og HbA_{1c} ved indlæggelse.".into()),
                Item::Row(vec!["Voksne".into(), "0,5 mg^{3}".into(), "i.m.".into()]),
                // A footnote's letter on a column's drug and on a dose.
                Item::Row(vec!["Vægt (kg)".into(), "Adrenalin^{a}".into(), "Amiodaron^{b}".into()]),
                Item::Row(vec!["10".into(), "100".into(), "50^{c}".into()]),
            ],
        }];
        let got = read(&build(&pages, &Style::default())).unwrap();
        let text = text_of(&got.blocks);
        for want in [
            // A footnote's letter is set apart from its word and its number, so that the drug
            // is read as the drug and the dose as 50.
            "Adrenalin ᵃ | Amiodaron ᵇ",
            "10 | 100 | 50 ᶜ",
            // A subscript set a little apart on a justified line is its word's.
            "Mål SpO2 og HbA1c ved",
            "efter ¹³¹I-behandling.³⁷ Herefter",
            "låret ¹²,¹⁴ uden",
            "10⁹/L",
            "400 mg/m²,",
            "8th cyklus",
            // A mark after a unit or a number is set apart; a charge stays on its ion.
            "0,5 mg ³",
            "i 40 ³ forløb",
            "Ca²⁺",
            // A space a justified line puts before an exponent is not kept.
            "1,5 x 10⁹/L udsættes",
        ] {
            assert!(text.contains(want), "{want:?} in:\n{text}");
        }
        assert!(!text.contains("109/L") && !text.contains(" 12 "), "{text}");
    }

    #[test]
    fn a_header_that_names_each_chapter_is_no_text() {
        // The header changes with the chapter, one to three pages each: no two pages share
        // its words, so it stood in the middle of the text ("… 1,8 mg intranasalt. / Kapitel
        // 3 · Opioidforgiftning | Akut forgiftning hos voksne / Naloksons …").
        let chapters = [
            "Kapitel 1 · Generelle principper",
            "Kapitel 2 · Paracetamolforgiftning",
            "Kapitel 2 · Paracetamolforgiftning",
            "Kapitel 3 · Opioidforgiftning",
            "Kapitel 3 · Opioidforgiftning",
            "Kapitel 3 · Opioidforgiftning",
            "Kapitel 4 · Tricykliske antidepressiva",
        ];
        let pages: Vec<SamplePage> = chapters
            .iter()
            .enumerate()
            .map(|(i, c)| SamplePage {
                two_columns: false,
                items: vec![
                    Item::Header(format!("{c}  Akut forgiftning hos voksne")),
                    Item::Paragraph(format!("Nalokson 0,4 mg i.v. gentages efter behov, side {}. Patienten observeres i mindst seks timer efter sidste dosis.", i + 1)),
                ],
            })
            .collect();
        let style = Style {
            header: None,
            ..Style::default()
        };
        let got = read(&build(&pages, &style)).unwrap();
        let text = text_of(&got.blocks);
        assert!(
            !text.contains("Kapitel") && !text.contains("Akut forgiftning"),
            "{text}"
        );
        for i in 1..=7 {
            assert!(text.contains(&format!("behov, side {i}.")), "{text}");
        }
        // A header that states a dose is the text's, as any running line that states one.
        let mut dosed = pages.clone();
        dosed[3].items[0] = Item::Header("Kapitel 3 · Nalokson 0,4 mg i.v.".into());
        let text = text_of(&read(&build(&dosed, &style)).unwrap().blocks);
        assert!(text.contains("Nalokson 0,4 mg i.v.\n"), "{text}");
    }

    #[test]
    fn a_table_cell_set_over_two_lines_stays_in_its_row() {
        // A drug's strength and a remark wrapped in their cells were rows of their own: "10%"
        // stood alone above the next drug's row.
        let row = |cells: [&str; 4]| Item::Row(cells.iter().map(|c| c.to_string()).collect());
        let pages = vec![SamplePage {
            two_columns: false,
            items: vec![
                Item::Heading("Dosering".into()),
                row(["Lægemiddel", "Dosis", "Vej", "Bemærkning"]),
                row(["Calciumgluconat", "10 ml", "i.v.", "over 10 min"]),
                row(["10%", "", "", ""]),
                row(["Adrenalin", "0,5 mg", "i.m.", "Kan gentages efter 5"]),
                row(["", "", "", "min"]),
                // A cell spanning two rows: the second row's dose is its own, never joined
                // to the first's.
                row(["Børn", "0,01 mg/kg", "i.m.", "højst 0,5 mg"]),
                row(["", "0,3 mg", "", ""]),
                // A group's label for the rows below.
                row(["Gravide", "", "", ""]),
                row(["Oxytocin", "5 IE", "i.v.", "langsomt"]),
            ],
        }];
        let style = Style {
            header: None,
            ..Style::default()
        };
        let got = read(&build(&pages, &style)).unwrap();
        let rows: Vec<&str> = got.blocks.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(
            rows,
            [
                "Dosering",
                "Lægemiddel | Dosis | Vej | Bemærkning",
                "Calciumgluconat 10% | 10 ml | i.v. | over 10 min",
                "Adrenalin | 0,5 mg | i.m. | Kan gentages efter 5 min",
                "Børn | 0,01 mg/kg | i.m. | højst 0,5 mg",
                "0,3 mg",
                "Gravide",
                "Oxytocin | 5 IE | i.v. | langsomt",
            ]
        );
    }

    #[test]
    fn footnotes_are_the_pages_text_even_under_a_reference_list() {
        // Notes at the foot of the page where the reference list begins: they were taken
        // into the list and made into no passage, doses and all.
        let refs = |from: u32, to: u32| -> Vec<Item> {
            (from..=to)
                .map(|n| Item::Paragraph(format!("{n}. Jensen A, Hansen B. Studie nummer {n} om neutropen feber. Ugeskr Læger. 20{n:02};{n}:101-111.")))
                .collect()
        };
        let mut first = vec![
            Item::Heading("5. Videre forløb".into()),
            Item::Paragraph("Vurder patienten dagligt og gennemgå dyrkningssvar efter 48 timer.^{3} Ved vedvarende feber efter 72 timer drøftes behandlingen med mikrobiolog.^{4}".into()),
            Item::Heading("6. Referencer".into()),
        ];
        first.extend(refs(1, 4));
        first.push(Item::Foot(
            "^{4} Ved vedvarende feber: overvej CT af thorax og beta-D-glucan.".into(),
        ));
        first.push(Item::Foot(
            "^{3} Vancomycin 25 mg/kg i.v. som startdosis, højst 2 g.".into(),
        ));
        let pages = vec![
            SamplePage {
                two_columns: false,
                items: first,
            },
            SamplePage {
                two_columns: false,
                items: refs(5, 9),
            },
        ];
        let got = read(&build(&pages, &Style::default())).unwrap();
        let notes: Vec<&Block> = got
            .blocks
            .iter()
            .filter(|b| b.kind == BlockKind::Footnote)
            .collect();
        let texts: Vec<&str> = notes.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "³ Vancomycin 25 mg/kg i.v. som startdosis, højst 2 g.",
                "⁴ Ved vedvarende feber: overvej CT af thorax og beta-D-glucan.",
            ],
            "{}",
            text_of(&got.blocks)
        );
        assert!(notes.iter().all(|b| b.page == Some(1)));
        // The notes are passages; the list's entries are not.
        let split = split(&got.blocks);
        let passages: String = split
            .passages
            .iter()
            .map(|p| format!("{}\n", p.text))
            .collect();
        assert!(
            passages.contains("Vancomycin 25 mg/kg i.v.") && passages.contains("beta-D-glucan"),
            "{passages}"
        );
        assert!(!passages.contains("Studie nummer"), "{passages}");
    }

    #[test]
    fn a_paragraph_that_runs_over_a_page_break_is_located_on_both_pages() {
        // A sentence wraps from the foot of page 1 to the top of page 2: the passage holding
        // it must say pages 1–2, or the clinician looks for its end on the wrong page.
        let long = "Mistænk anafylaksi ved akut debut af symptomer fra hud eller slimhinder kombineret med respirationsbesvær eller blodtryksfald. ".repeat(3);
        let pages = vec![
            SamplePage {
                two_columns: false,
                items: vec![
                    Item::Heading("4.1 Genkendelse".into()),
                    Item::Paragraph(format!("{long}Hudsymptomer mangler hos op til")),
                ],
            },
            SamplePage {
                two_columns: false,
                items: vec![
                    Item::Paragraph(
                        "20 procent, og fraværet af urticaria udelukker ikke diagnosen.".into(),
                    ),
                    Item::Heading("4.2 Behandling".into()),
                    Item::Paragraph("Giv adrenalin 0,5 mg intramuskulært i låret.".into()),
                ],
            },
            SamplePage {
                two_columns: false,
                items: vec![
                    Item::Heading("5. Observation".into()),
                    Item::Paragraph("Observer patienten i mindst seks timer.".into()),
                ],
            },
        ];
        let got = read(&build(&pages, &Style::default())).unwrap();
        let s = split(&got.blocks);
        let p = s
            .passages
            .iter()
            .find(|p| p.text.contains("urticaria udelukker"))
            .unwrap();
        assert!(
            p.text.contains("mangler hos op til 20 procent"),
            "{}",
            p.text
        );
        assert_eq!((p.page_start, p.page_end), (Some(1), Some(2)));
        let treatment = s
            .passages
            .iter()
            .find(|p| p.text.contains("0,5 mg"))
            .unwrap();
        assert_eq!(
            (treatment.page_start, treatment.page_end),
            (Some(2), Some(2))
        );
    }

    #[test]
    fn a_decimal_separator_set_apart_stays_in_its_number() {
        assert_eq!(
            close_decimal_gaps("Total 11,062 .6 1,540 .0"),
            "Total 11,062.6 1,540.0"
        );
        assert_eq!(close_decimal_gaps("adrenalin 0 ,5 mg"), "adrenalin 0,5 mg");
        // A list, a range and a sentence's end are left as they are.
        assert_eq!(
            close_decimal_gaps("trin 1, 2 og 3. 4 ml"),
            "trin 1, 2 og 3. 4 ml"
        );
        assert_eq!(close_decimal_gaps("0,3 - 0,5 mg"), "0,3 - 0,5 mg");
    }

    #[test]
    fn a_templates_dose_and_sentence_on_every_page_are_the_text() {
        // Ten drug pages from one template: the same dose line and the same reminder at the
        // same place on every page, set apart like a footer, and a page label in the text's
        // size whose number grows from one digit to two.
        let pages: Vec<SamplePage> = (1..=10)
            .map(|i| SamplePage {
                two_columns: false,
                items: vec![
                    Item::Top(format!("Vejledning om antibiotika · side {i}"), 10.0),
                    Item::Heading(format!("Lægemiddel {i}")),
                    Item::Paragraph(
                        "Dosis justeres ved nedsat nyrefunktion efter gældende nyretabel.".into(),
                    ),
                    Item::Paragraph("Maksimal infusionshastighed: 10 ml/min.".into()),
                    Item::Paragraph(
                        "Kontrollér altid patientens identitet og allergistatus før ordination."
                            .into(),
                    ),
                ],
            })
            .collect();
        let got = read(&build(&pages, &Style::default())).unwrap();
        let text = text_of(&got.blocks);
        assert_eq!(text.matches("10 ml/min").count(), 10, "{text}");
        assert!(
            text.contains("Kontrollér altid patientens identitet"),
            "{text}"
        );
        assert!(
            !text.to_lowercase().contains("antibiotika · side"),
            "{text}"
        );
    }

    #[test]
    fn a_two_page_instructions_header_is_no_text() {
        let pages: Vec<SamplePage> = (1..=2)
            .map(|i| SamplePage {
                two_columns: false,
                items: vec![
                    Item::Heading(format!("{i}. Afsnit")),
                    Item::Paragraph(format!(
                        "Trin {i}: giv adrenalin 0,5 mg intramuskulært i låret."
                    )),
                ],
            })
            .collect();
        let got = read(&build(&pages, &Style::default())).unwrap();
        let text = text_of(&got.blocks);
        assert!(!text.contains("Sundhedsstyrelsen"), "{text}");
        assert!(
            text.contains("Trin 1: giv adrenalin 0,5 mg") && text.contains("Trin 2:"),
            "{text}"
        );
    }

    #[test]
    fn a_character_map_with_little_endian_ligatures_is_repaired() {
        let cmap = b"/CIDInit /ProcSet findresource begin\nbegincmap\n3 beginbfrange\n<01><01><0052>\n<26><26><74006900>\n<4e><4e><7400dd00>\nendbfrange\n1 beginbfchar\n<50> <fb01>\nendbfchar\nendcmap";
        let fixed = String::from_utf8(repair_cmap(cmap).unwrap()).unwrap();
        // "ti" and "t" + a stray surrogate byte pair: the letters, big-endian.
        assert!(fixed.contains("<26><26><00740069>"), "{fixed}");
        assert!(fixed.contains("<4e><4e><fffd>"), "{fixed}");
        // Sources and well-formed targets are left alone.
        assert!(
            fixed.contains("<01><01><0052>") && fixed.contains("<50> <fb01>"),
            "{fixed}"
        );
        assert_eq!(repair_cmap(b"begincmap <01> <0052> endcmap"), None);
    }

    #[test]
    fn a_numbered_step_set_over_two_lines_is_not_a_heading() {
        // A wrapped sentence's last line that starts with its dose is no numbered heading,
        // with or without a citation mark after its full stop.
        assert_eq!(numbered_heading("4 J/kg.³"), None);
        assert_eq!(numbered_heading("4 J/kg."), None);
        assert_eq!(numbered_heading("2 Giv 0,5 mg i.m."), None);
        assert_eq!(numbered_heading("3.2 Behandling"), Some(2));
        assert_eq!(numbered_heading("2. Behandling"), Some(1));
        assert_eq!(numbered_heading("4.2 Førstelinjebehandling"), Some(2));
        // A step's first line in a narrow column: it ends mid-word, mid-sentence or in a dose.
        for step in [
            "1. Tilkald hjælp (hjertestopteam eller akut-",
            "3. Giv ilt 15 l/min på maske med reservoir,",
            "4. Giv isotonisk natriumklorid 500–1000 ml",
        ] {
            assert_eq!(numbered_heading(step), None, "{step}");
        }
    }

    #[test]
    fn columns_under_a_full_width_block_are_read_one_after_the_other() {
        // A journal page: an abstract across the page, then two columns. Read line by line
        // across the page, the columns' sentences would interleave.
        let abstract_ = "Baggrund: Pleuradræn anlægges hyppigt i akutmodtagelsen, men komplikationsraten varierer mellem afdelinger og operatører. Metode: Vi gennemgik alle anlæggelser over fem år i tre regioner og registrerede komplikationer inden for 48 timer. Resultater: Blandt 1.204 anlæggelser var fejlplacering den hyppigste komplikation, efterfulgt af blødning og infektion.";
        // Enough paragraphs to fill the left column and run on into the right one.
        let text: Vec<String> = (1..=14)
            .map(|n| format!("Afsnit {n} beskriver ultralydsvejledning, lokalbedøvelse med lidokain og stump dissektion over ribbens overkant."))
            .collect();
        // A long abstract: more full-width lines than a third of the column lines.
        let abstract_ = format!("{abstract_} {abstract_} {abstract_}");
        let mut items = vec![Item::FullWidth(abstract_.clone())];
        items.extend(text.iter().map(|p| Item::Paragraph(p.clone())));
        let pages = vec![SamplePage {
            two_columns: true,
            items,
        }];
        let style = Style {
            header: None,
            page_numbers: false,
            ..Style::default()
        };
        let got = read(&build(&pages, &style)).unwrap();
        let paragraphs: Vec<String> = got
            .blocks
            .iter()
            .filter(|b| b.kind == BlockKind::Paragraph)
            .map(|b| b.text.clone())
            .collect();
        // The abstract, then every paragraph whole and in order (left column, then right).
        let mut want = vec![abstract_];
        want.extend(text);
        assert_eq!(paragraphs, want);
    }

    #[test]
    fn a_pdfs_contents_page_and_reference_list_become_no_passage() {
        let pages = vec![
            SamplePage {
                two_columns: false,
                items: vec![
                    Item::Heading("Indholdsfortegnelse".into()),
                    Item::Paragraph("1. Indledning .................................. 2".into()),
                    Item::Paragraph("2. Anlæggelse af pleuradræn ................... 3".into()),
                ],
            },
            SamplePage {
                two_columns: false,
                items: vec![
                    Item::Heading("2. Anlæggelse af pleuradræn".into()),
                    Item::Paragraph("Drænet anlægges i den sikre trekant efter ultralydsvejledning og lokalbedøvelse med lidokain.".into()),
                    Item::Heading("3. Referencer".into()),
                    Item::Paragraph("1. Havelock T, Teoh R, Laws D, Gleeson F. Pleural procedures and thoracic ultrasound. Thorax 2010;65:61-76.".into()),
                    Item::Paragraph("2. Jensen A. Pleuradræn hos voksne: anlæggelse og komplikationer. Ugeskr Læger 2019;181:V03190.".into()),
                ],
            },
        ];
        let style = Style {
            header: None,
            ..Style::default()
        };
        let got = read(&build(&pages, &style)).unwrap();
        let s = split(&got.blocks);
        let passages: String = s.passages.iter().map(|p| p.text.as_str()).collect();
        assert!(passages.contains("sikre trekant"), "{:#?}", s.passages);
        for gone in ["Havelock", "Jensen A", "....", "Indledning"] {
            assert!(!passages.contains(gone), "{gone:?} in {:#?}", s.passages);
            assert!(s.text.contains(gone), "{gone:?} kept in the text");
        }
    }

    #[test]
    fn a_metadata_title_that_names_a_file_or_template_is_not_used() {
        for junk in [
            "Microsoft Word - pleura_v3.docx",
            "Untitled",
            "Document1",
            "Layout 1",
            "BTS_pleural_guideline_2023.pdf",
            "guideline final.docx",
            "thoraxjnl-2022-219784",
            "PIIS0140673620301234",
            "---",
            "Uden titel",
        ] {
            assert!(!usable_title(junk), "{junk:?}");
        }
        for good in [
            "Anafylaksi – vejledning",
            "British Thoracic Society guideline for pleural disease",
            "Anafylaksi",
            "Documentation of central line insertion",
            "COVID-19 and chest drains 2021",
        ] {
            assert!(usable_title(good), "{good:?}");
        }
    }

    #[test]
    fn a_recommendation_on_page_40_of_60_stays_on_page_40() {
        let marker = "Ved anafylaksi hos voksne gives adrenalin 0,5 mg intramuskulært i låret, og dosis gentages efter fem minutter.";
        let pdf = build(&guideline(60, marker, 40), &Style::default());
        let got = read(&pdf).unwrap();
        assert_eq!(got.pages, 60);
        let s = split(&got.blocks);
        let hit: Vec<_> = s
            .passages
            .iter()
            .filter(|p| p.text.contains(marker))
            .collect();
        assert_eq!(hit.len(), 1, "the marker in one passage");
        assert_eq!(hit[0].page_start, Some(40));
        assert!(
            hit[0].heading.contains("40.2 Anbefaling"),
            "{}",
            hit[0].heading
        );
        assert!(
            !s.text.contains("Sundhedsstyrelsen · Vejledning"),
            "running header removed"
        );
        assert!(!s.text.contains("Side 12 af 60"), "page numbers removed");
        assert!(
            !s.text.contains("- "),
            "no hyphen left at a joined line end"
        );
        assert!(s.text.contains("Voksne | 0,5 mg | Intramuskulært"));
    }

    #[test]
    fn pages_with_images_keep_their_text() {
        // Every page carries an image (pixel noise): the text of all 120 pages is read.
        let style = Style {
            image_bytes: 3_000,
            ..Style::default()
        };
        let got = read(&build(
            &guideline(120, "Markøren står på side 77.", 77),
            &style,
        ))
        .unwrap();
        assert!(got.skipped_pages.is_empty(), "{:?}", got.skipped_pages);
        let marker = got
            .blocks
            .iter()
            .find(|b| b.text.contains("Markøren"))
            .unwrap();
        assert_eq!(marker.page, Some(77));
        let pages: std::collections::BTreeSet<u32> =
            got.blocks.iter().filter_map(|b| b.page).collect();
        assert_eq!(pages.len(), 120);
    }

    #[test]
    fn scans_password_protected_and_damaged_files_are_refused_with_what_to_do() {
        let pages = guideline(2, "x", 1);
        let scan = build(
            &pages,
            &Style {
                no_text: true,
                ..Style::default()
            },
        );
        assert_eq!(read(&scan), Err(PdfError::NoTextLayer));
        let locked = build(
            &pages,
            &Style {
                encrypted: true,
                ..Style::default()
            },
        );
        assert_eq!(read(&locked), Err(PdfError::Encrypted));
        let good = build(&pages, &Style::default());
        assert!(matches!(
            read(&good[..good.len() / 2]),
            Err(PdfError::Damaged(_))
        ));
        assert!(matches!(
            read(b"PK\x03\x04 a zip"),
            Err(PdfError::Damaged(_))
        ));
        assert!(PdfError::NoTextLayer
            .to_string()
            .contains("run OCR on it first"));
        // A text layer of symbols is no evidence either.
        let junk = vec![SamplePage {
            two_columns: false,
            items: vec![
                Item::Heading("!\"## $ %!&''".into()),
                Item::Paragraph(
                    "!\"# $%& '()* +,-./ !\"#$ %&'( )*+, -./! \"#$% &'() *+,- ./!\" #$%& '()*"
                        .into(),
                ),
            ],
        }];
        let style = Style {
            header: None,
            page_numbers: false,
            ..Style::default()
        };
        assert_eq!(read(&build(&junk, &style)), Err(PdfError::NoLetters));
    }
}
