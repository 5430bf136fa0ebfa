//! Realistic PDFs made on the spot, for the tests and benchmarks of PDF ingest: pages of one or
//! two columns set in Helvetica, headings in a larger bold face, wrapped lines with words
//! hyphenated at line ends, table rows, a running header and a "Side N af M" footer, Danish
//! letters (WinAnsi), and the awkward kinds: password-protected, and scanned (no text layer).
//! Written with `lopdf` (through `pdf_extract`'s re-export), so the reader under test and the
//! writer share nothing but the file format.

use pdf_extract::content::{Content, Operation};
use pdf_extract::{dictionary, Document, Object, Stream, StringFormat};

/// What a page holds, in reading order.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Heading(String),
    Paragraph(String),
    /// A table row: cells set apart on one line.
    Row(Vec<String>),
    /// A paragraph across the whole page above a two-column page's columns (an abstract).
    FullWidth(String),
    /// A line in the top margin under the running header, in this size (a guideline's name
    /// set as a banner, a "Table of Contents" link); the page's text starts below.
    Top(String, f64),
    /// A small line in the bottom margin above the page number (a copyright notice).
    Foot(String),
    /// This page's own running header, where the style's header stands (a chapter's name).
    Header(String),
}

/// A page: one or two columns of items.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplePage {
    pub two_columns: bool,
    pub items: Vec<Item>,
}

/// How the document looks.
#[derive(Debug, Clone, PartialEq)]
pub struct Style {
    /// A running header on every page.
    pub header: Option<String>,
    /// "Side N af M" at the foot of every page.
    pub page_numbers: bool,
    /// A password-protected file (an /Encrypt dictionary no empty password opens).
    pub encrypted: bool,
    /// Pages of drawn shapes only, as a scan without OCR looks to a text extractor.
    pub no_text: bool,
    /// An image of this many bytes on every page (incompressible), as figures and logos make
    /// guideline PDFs tens of megabytes.
    pub image_bytes: usize,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            header: Some("Sundhedsstyrelsen · Vejledning om anafylaksi · 2024".into()),
            page_numbers: true,
            encrypted: false,
            no_text: false,
            image_bytes: 0,
        }
    }
}

const PAGE_W: f64 = 595.0;
const PAGE_H: f64 = 842.0;
const BODY: f64 = 10.0;
const HEAD: f64 = 14.0;
const LEADING: f64 = 13.0;

/// WinAnsi bytes for `s` (the letters a Danish text needs; others become '?').
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            c if (c as u32) < 0x80 => c as u8,
            'æ' => 0xE6,
            'ø' => 0xF8,
            'å' => 0xE5,
            'Æ' => 0xC6,
            'Ø' => 0xD8,
            'Å' => 0xC5,
            'é' => 0xE9,
            '–' => 0x96,
            '·' => 0xB7,
            'µ' => 0xB5,
            _ => b'?',
        })
        .collect()
}

/// Lines of at most `width` characters; a long word that does not fit is hyphenated.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let room = width.saturating_sub(cur.chars().count() + usize::from(!cur.is_empty()));
        if word.chars().count() <= room {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
            continue;
        }
        // Hyphenate a long word across the line end when at least 4 letters fit.
        let letters = word.chars().all(char::is_alphabetic);
        if letters && word.chars().count() >= 9 && room >= 5 {
            let head: String = word.chars().take(room - 1).collect();
            let tail: String = word.chars().skip(room - 1).collect();
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(&head);
            cur.push('-');
            lines.push(std::mem::take(&mut cur));
            cur.push_str(&tail);
            continue;
        }
        if !cur.is_empty() {
            lines.push(std::mem::take(&mut cur));
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// One line of text; `^{…}` in it is set as a superscript (smaller, raised with `Ts`), as a
/// citation number, an exponent or an ordinal's letters are; `_{…}` as a subscript (smaller,
/// lowered), set a little apart as a justified line sets it ("SpO₂").
fn text_op(ops: &mut Vec<Operation>, font: &str, size: f64, x: f64, y: f64, text: &str) {
    ops.push(Operation::new("BT", vec![]));
    ops.push(Operation::new("Tf", vec![font.into(), size.into()]));
    ops.push(Operation::new("Td", vec![x.into(), y.into()]));
    let mut rest = text;
    while !rest.is_empty() {
        let marks = [rest.find("^{"), rest.find("_{")];
        let at = marks.iter().flatten().min().copied();
        let (plain, small, after, raised) = match at {
            Some(at) => match rest[at + 2..].split_once('}') {
                Some((small, after)) => (&rest[..at], small, after, &rest[at..at + 1] == "^"),
                None => (rest, "", "", true),
            },
            None => (rest, "", "", true),
        };
        if !plain.is_empty() {
            ops.push(Operation::new(
                "Tj",
                vec![Object::String(win_ansi(plain), StringFormat::Literal)],
            ));
        }
        if !small.is_empty() {
            ops.push(Operation::new(
                "Tf",
                vec![font.into(), (size * 0.65).into()],
            ));
            let (rise, gap) = if raised {
                (size * 0.4, 0)
            } else {
                (-size * 0.15, -150)
            };
            ops.push(Operation::new("Ts", vec![rise.into()]));
            ops.push(Operation::new(
                "TJ",
                vec![Object::Array(vec![
                    gap.into(),
                    Object::String(win_ansi(small), StringFormat::Literal),
                ])],
            ));
            ops.push(Operation::new("Tf", vec![font.into(), size.into()]));
            ops.push(Operation::new("Ts", vec![0.into()]));
        }
        rest = after;
    }
    ops.push(Operation::new("ET", vec![]));
}

/// Lays out a page's items; returns the content operations.
fn page_ops(page: &SamplePage, no: usize, of: usize, style: &Style) -> Vec<Operation> {
    let mut ops = Vec::new();
    if style.no_text {
        // A scanned page: grey blocks where the lines would be.
        for i in 0..40 {
            ops.push(Operation::new(
                "re",
                vec![
                    60.into(),
                    (760.0 - 16.0 * f64::from(i)).into(),
                    470.into(),
                    9.into(),
                ],
            ));
            ops.push(Operation::new("f", vec![]));
        }
        return ops;
    }
    if let Some(h) = &style.header {
        text_op(&mut ops, "F1", 8.0, 60.0, PAGE_H - 40.0, h);
    }
    if style.page_numbers {
        text_op(
            &mut ops,
            "F1",
            8.0,
            PAGE_W / 2.0 - 20.0,
            30.0,
            &format!("Side {no} af {of}"),
        );
    }
    let columns: Vec<(f64, usize)> = if page.two_columns {
        vec![(60.0, 44), (320.0, 44)]
    } else {
        vec![(60.0, 92)]
    };
    let mut top = PAGE_H - 80.0;
    let (mut top_y, mut foot_y) = (PAGE_H - 60.0, 46.0);
    for item in &page.items {
        match item {
            Item::Top(t, size) => {
                let font = if *size > BODY { "F2" } else { "F1" };
                text_op(&mut ops, font, *size, 60.0, top_y, t);
                top = top.min(top_y - size - 12.0);
                top_y -= size + 6.0;
            }
            Item::Foot(t) => {
                text_op(&mut ops, "F1", 7.0, 60.0, foot_y, t);
                foot_y += 10.0;
            }
            Item::Header(t) => text_op(&mut ops, "F1", 8.0, 60.0, PAGE_H - 40.0, t),
            _ => {}
        }
    }
    let bottom = 60.0_f64.max(foot_y + 8.0);
    let mut col = 0;
    let mut y = top;
    for item in &page.items {
        if let Item::Top(..) | Item::Foot(_) | Item::Header(_) = item {
            continue;
        }
        if let Item::FullWidth(p) = item {
            for line in wrap(p, 92) {
                text_op(&mut ops, "F1", BODY, 60.0, y, &line);
                y -= LEADING;
            }
            y -= 8.0;
            top = y;
            continue;
        }
        let (x, width) = columns[col];
        let lines: Vec<(String, &str, f64)> = match item {
            Item::Heading(h) => vec![(h.clone(), "F2", HEAD)],
            Item::Paragraph(p) => wrap(p, width)
                .into_iter()
                .map(|l| (l, "F1", BODY))
                .collect(),
            Item::Row(_) | Item::FullWidth(_) | Item::Top(..) | Item::Foot(_) | Item::Header(_) => {
                vec![(String::new(), "F1", BODY)]
            }
        };
        let needed = lines.len() as f64 * LEADING + 8.0;
        if y - needed < bottom && col + 1 < columns.len() {
            col += 1;
            y = top;
        }
        let (x, _) = if col < columns.len() {
            columns[col]
        } else {
            (x, width)
        };
        if let Item::Heading(_) = item {
            y -= 6.0;
        }
        match item {
            Item::Row(cells) => {
                let span = if page.two_columns { 215.0 } else { 475.0 };
                for (i, c) in cells.iter().enumerate() {
                    let cx = x + span * i as f64 / cells.len() as f64;
                    text_op(&mut ops, "F1", BODY, cx, y, c);
                }
                y -= LEADING;
            }
            _ => {
                for (line, font, size) in lines {
                    text_op(&mut ops, font, size, x, y, &line);
                    y -= if size > BODY { size + 6.0 } else { LEADING };
                }
                y -= 8.0;
            }
        }
    }
    ops
}

/// The PDF file for `pages` in `style`.
pub fn build(pages: &[SamplePage], style: &Style) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let f1 = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
    });
    let f2 = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica-Bold", "Encoding" => "WinAnsiEncoding",
    });
    let resources = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => f1, "F2" => f2 },
    });
    let mut kids = Vec::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for (i, page) in pages.iter().enumerate() {
        let mut operations = page_ops(page, i + 1, pages.len(), style);
        let mut page_resources = resources;
        if style.image_bytes > 0 {
            // Noise does not compress: the file grows by what the page's image holds.
            let side = ((style.image_bytes / 3) as f64).sqrt().max(1.0) as i64;
            let pixels: Vec<u8> = (0..(side * side * 3) as usize)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let image = doc.add_object(Stream::new(
                dictionary! {
                    "Type" => "XObject", "Subtype" => "Image", "Width" => side, "Height" => side,
                    "ColorSpace" => "DeviceRGB", "BitsPerComponent" => 8,
                },
                pixels,
            ));
            page_resources = doc.add_object(dictionary! {
                "Font" => dictionary! { "F1" => f1, "F2" => f2 },
                "XObject" => dictionary! { "Im1" => image },
            });
            operations.push(Operation::new("q", vec![]));
            operations.push(Operation::new(
                "cm",
                vec![
                    200.into(),
                    0.into(),
                    0.into(),
                    100.into(),
                    60.into(),
                    60.into(),
                ],
            ));
            operations.push(Operation::new("Do", vec!["Im1".into()]));
            operations.push(Operation::new("Q", vec![]));
        }
        let content = Content { operations };
        let stream = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        let id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => stream,
            "Resources" => page_resources,
            "MediaBox" => vec![0.into(), 0.into(), PAGE_W.into(), PAGE_H.into()],
        });
        kids.push(Object::Reference(id));
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => pages.len() as i64,
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let info = doc.add_object(dictionary! {
        // Non-ASCII titles are UTF-16BE with a byte-order mark, as PDF producers write them.
        "Title" => Object::String(
            [0xFE, 0xFF]
                .into_iter()
                .chain("Anafylaksi – vejledning".encode_utf16().flat_map(u16::to_be_bytes))
                .collect(),
            StringFormat::Hexadecimal,
        ),
    });
    doc.trailer.set("Info", info);
    if style.encrypted {
        // The Standard security handler with owner and user hashes that no empty password
        // matches: a reader must ask for the password.
        let enc = doc.add_object(dictionary! {
            "Filter" => "Standard", "V" => 1, "R" => 2, "P" => -44,
            "O" => Object::String(vec![0x5A; 32], StringFormat::Hexadecimal),
            "U" => Object::String(vec![0xA5; 32], StringFormat::Hexadecimal),
        });
        doc.trailer.set("Encrypt", enc);
        doc.trailer.set(
            "ID",
            vec![
                Object::String(vec![1; 16], StringFormat::Hexadecimal),
                Object::String(vec![1; 16], StringFormat::Hexadecimal),
            ],
        );
    }
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

/// A guideline of `pages` pages: chapters with numbered headings, two-column pages every third
/// page, a dosing table, hyphenated long words, and the sentence `marker` (the recommendation
/// a test looks for) as a paragraph of page `marker_page`.
pub fn guideline(pages: usize, marker: &str, marker_page: usize) -> Vec<SamplePage> {
    let filler = [
        "Patienten observeres efter behandlingen med måling af puls, blodtryk og respirationsfrekvens, og fundene dokumenteres i journalen.",
        "Personalet skal være fortrolige med afdelingens instruks og kende placeringen af akutvognen og udstyret til luftvejshåndtering.",
        "Ved tvivl om diagnosen kontaktes den vagthavende bagvagt, og behandlingen påbegyndes uden forsinkelse efter gældende retningslinjer.",
        "Kvalitetsovervågning foretages årligt gennem journalaudit, hvor overensstemmelse med vejledningens anbefalinger vurderes systematisk.",
    ];
    (1..=pages)
        .map(|p| {
            let mut items = vec![Item::Heading(format!(
                "{p}. Kapitel {p}: Behandlingsprincipper"
            ))];
            for i in 0..4 {
                items.push(Item::Paragraph(format!(
                    "{} Afsnittet beskriver overvejelserne i kapitel {p} del {i}.",
                    filler[(p + i) % filler.len()]
                )));
            }
            if p % 5 == 0 {
                items.push(Item::Row(vec![
                    "Alder".into(),
                    "Dosis".into(),
                    "Administration".into(),
                ]));
                items.push(Item::Row(vec![
                    "Voksne".into(),
                    "0,5 mg".into(),
                    "Intramuskulært".into(),
                ]));
            }
            if p == marker_page {
                items.push(Item::Heading(format!("{p}.2 Anbefaling")));
                items.push(Item::Paragraph(marker.to_string()));
            }
            SamplePage {
                two_columns: p % 3 == 0,
                items,
            }
        })
        .collect()
}
