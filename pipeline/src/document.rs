//! A source document as the library keeps it: normalised text made of blocks (headings,
//! paragraphs, list items, table rows), each with the page it stands on, split into
//! **passages** of bounded size along headings and paragraphs. A passage knows where it is:
//! its page range, its heading path and its character offsets in the normalised text, so a
//! citation can name the page a reader opens.
//!
//! Every format ends here: Markdown and text ([`from_markdown`]), HTML (through its text), PDF
//! (`crate::pdf`) and DOCX (`crate::docx_read`) produce [`Block`]s; [`split`] makes passages.

use serde::Serialize;

/// A passage aims at this many characters (a few paragraphs: enough context for a claim,
/// small enough that retrieval points at a place, not at a chapter).
pub const PASSAGE_TARGET_CHARS: usize = 1_200;
/// No passage is longer than this; a longer paragraph is split between sentences.
pub const PASSAGE_MAX_CHARS: usize = 2_000;

/// What a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// A heading of `level` 1 (a chapter) and deeper.
    Heading {
        level: u8,
    },
    Paragraph,
    ListItem,
    /// One row of a table, its cells separated by " | ".
    TableRow,
}

/// One block of a document, as extraction found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: BlockKind,
    pub text: String,
    /// 1-based page number, for paged formats.
    pub page: Option<u32>,
}

impl Block {
    pub fn new(kind: BlockKind, text: impl Into<String>, page: Option<u32>) -> Block {
        Block {
            kind,
            text: text.into(),
            page,
        }
    }
}

/// A located piece of a document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    /// 0-based order within the document.
    pub ord: u32,
    /// The headings above it, outermost first, joined with " > " (empty before any heading).
    pub heading: String,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    /// Character (not byte) offsets of the passage in the normalised text.
    pub char_start: usize,
    pub char_end: usize,
    pub text: String,
}

/// "s. 12" or "s. 12–13" for a page range, or None when the document has no pages.
pub fn pages_label(start: Option<u32>, end: Option<u32>) -> Option<String> {
    match (start, end) {
        (Some(a), Some(b)) if a != b => Some(format!("s. {a}–{b}")),
        (Some(a), _) => Some(format!("s. {a}")),
        _ => None,
    }
}

impl Passage {
    /// Its pages, as [`pages_label`] says them.
    pub fn pages_label(&self) -> Option<String> {
        pages_label(self.page_start, self.page_end)
    }
}

/// A document made into normalised text and passages.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The blocks' text, one block per paragraph (blank line between).
    pub text: String,
    pub passages: Vec<Passage>,
}

/// Normalises the text of blocks (white space, ligatures, soft hyphens, odd spaces) and drops
/// empty ones.
pub fn clean_blocks(blocks: Vec<Block>) -> Vec<Block> {
    blocks
        .into_iter()
        .filter_map(|mut b| {
            b.text = clean_text(&b.text);
            (!b.text.is_empty()).then_some(b)
        })
        .collect()
}

/// One line of clean text: ligatures spelt out, soft hyphens and zero-width characters gone,
/// every run of white space (non-breaking and odd spaces included) one space.
pub fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{FB00}' => out.push_str("ff"),
            '\u{FB01}' => out.push_str("fi"),
            '\u{FB02}' => out.push_str("fl"),
            '\u{FB03}' => out.push_str("ffi"),
            '\u{FB04}' => out.push_str("ffl"),
            '\u{FB05}' | '\u{FB06}' => out.push_str("st"),
            '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}' => {}
            c if c.is_whitespace() => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits `blocks` into passages: a heading always starts a new passage; paragraphs, items and
/// rows gather until the passage reaches [`PASSAGE_TARGET_CHARS`]; a block longer than
/// [`PASSAGE_MAX_CHARS`] is cut between sentences (or, failing that, between words).
pub fn split(blocks: &[Block]) -> Split {
    let mut text = String::new();
    let mut text_chars = 0usize;
    let mut passages: Vec<Passage> = Vec::new();
    let mut path: Vec<(u8, String)> = Vec::new();
    let mut current: Option<Passage> = None;

    fn close(current: &mut Option<Passage>, passages: &mut Vec<Passage>) {
        if let Some(p) = current.take() {
            if !p.text.trim().is_empty() {
                passages.push(p);
            }
        }
    }

    for block in blocks {
        if let BlockKind::Heading { level } = block.kind {
            close(&mut current, &mut passages);
            path.retain(|(l, _)| *l < level);
            path.push((level, block.text.clone()));
        }
        for piece in pieces(&block.text) {
            if !text.is_empty() {
                text.push_str("\n\n");
                text_chars += 2;
            }
            let start = text_chars;
            text.push_str(&piece);
            text_chars += piece.chars().count();
            let fits = current.as_ref().is_some_and(|p| {
                p.text.chars().count() + piece.chars().count() < PASSAGE_MAX_CHARS
                    && p.text.chars().count() < PASSAGE_TARGET_CHARS
            });
            if !fits {
                close(&mut current, &mut passages);
            }
            match current.as_mut() {
                Some(p) => {
                    p.text.push('\n');
                    p.text.push_str(&piece);
                    p.char_end = text_chars;
                    p.page_start = p.page_start.or(block.page);
                    p.page_end = block.page.or(p.page_end);
                }
                None => {
                    current = Some(Passage {
                        ord: 0,
                        heading: path
                            .iter()
                            .map(|(_, h)| h.as_str())
                            .collect::<Vec<_>>()
                            .join(" > "),
                        page_start: block.page,
                        page_end: block.page,
                        char_start: start,
                        char_end: text_chars,
                        text: piece,
                    })
                }
            }
        }
    }
    close(&mut current, &mut passages);
    for (i, p) in passages.iter_mut().enumerate() {
        p.ord = i as u32;
    }
    Split { text, passages }
}

/// A block's text in pieces no longer than [`PASSAGE_MAX_CHARS`].
fn pieces(text: &str) -> Vec<String> {
    if text.chars().count() <= PASSAGE_MAX_CHARS {
        return vec![text.to_string()];
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    for sentence in split_sentences(text) {
        for word in sentence_or_words(&sentence) {
            if !cur.is_empty() && cur.chars().count() + word.chars().count() + 1 > PASSAGE_MAX_CHARS
            {
                out.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(&word);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A sentence, or its words when the sentence alone is too long.
fn sentence_or_words(s: &str) -> Vec<String> {
    if s.chars().count() <= PASSAGE_MAX_CHARS {
        vec![s.to_string()]
    } else {
        s.split_whitespace().map(str::to_string).collect()
    }
}

/// Sentences at ". ", "? ", "! " followed by a capital letter or a digit: enough to keep a
/// cut off the middle of a sentence.
fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        cur.push(c);
        let end = matches!(c, '.' | '?' | '!')
            && chars.get(i + 1) == Some(&' ')
            && chars
                .get(i + 2)
                .is_some_and(|n| n.is_uppercase() || n.is_ascii_digit());
        if end {
            out.push(cur.trim().to_string());
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Blocks of a Markdown or plain-text document: `#` headings, list items, table rows (`|`),
/// paragraphs (lines joined until a blank line). Markup inside a line is kept as text.
pub fn from_markdown(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let flush = |para: &mut Vec<&str>, blocks: &mut Vec<Block>| {
        if !para.is_empty() {
            blocks.push(Block::new(BlockKind::Paragraph, join_lines(para), None));
            para.clear();
        }
    };
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() {
            flush(&mut para, &mut blocks);
            continue;
        }
        let hashes = t.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && t[hashes..].starts_with(' ') {
            flush(&mut para, &mut blocks);
            let level = hashes as u8;
            blocks.push(Block::new(
                BlockKind::Heading { level },
                t[hashes..].trim(),
                None,
            ));
        } else if let Some(item) = list_item(t) {
            flush(&mut para, &mut blocks);
            blocks.push(Block::new(BlockKind::ListItem, item, None));
        } else if t.starts_with('|') {
            flush(&mut para, &mut blocks);
            let cells: Vec<&str> = t
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            // The `|---|---|` line under a header row is layout, not content.
            if !cells.iter().all(|c| c.chars().all(|x| "-: ".contains(x))) {
                blocks.push(Block::new(BlockKind::TableRow, cells.join(" | "), None));
            }
        } else {
            para.push(t);
        }
    }
    flush(&mut para, &mut blocks);
    clean_blocks(blocks)
}

/// The text of a list item line (`- x`, `* x`, `1. x`, `2) x`), or None.
fn list_item(t: &str) -> Option<&str> {
    if let Some(rest) = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")) {
        return Some(rest.trim());
    }
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits <= 3 {
        let rest = &t[digits..];
        if let Some(r) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some(r.trim());
        }
    }
    None
}

/// Lines of one paragraph joined, a word hyphenated across a line end made whole again
/// ("anafy-" + "laksi" → "anafylaksi"; "adrenalin-" + "og" keeps its hyphen only when the next
/// line starts with a capital or a digit, as in "Region-" + "Hovedstaden" → "Region-Hovedstaden").
pub fn join_lines(lines: &[&str]) -> String {
    let mut out = String::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if out.ends_with('-') && !out.ends_with(" -") && !out.ends_with("--") {
            let before = out[..out.len() - 1].chars().last();
            let next = line.chars().next();
            if before.is_some_and(char::is_alphabetic) && next.is_some_and(char::is_lowercase) {
                out.pop();
                out.push_str(line);
                continue;
            }
            out.push_str(line);
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_blocks_with_headings_items_rows_and_joined_paragraphs() {
        let md = "# Anafylaksi\n\nAdrenalin gives\nintramuskulært.\n\n## Dosis\n\n- Voksne: 0,5 mg\n1. Læg patienten ned\n\n| Alder | Dosis |\n|---|---|\n| Voksne | 0,5 mg |\n";
        let b = from_markdown(md);
        assert_eq!(
            b,
            vec![
                Block::new(BlockKind::Heading { level: 1 }, "Anafylaksi", None),
                Block::new(
                    BlockKind::Paragraph,
                    "Adrenalin gives intramuskulært.",
                    None
                ),
                Block::new(BlockKind::Heading { level: 2 }, "Dosis", None),
                Block::new(BlockKind::ListItem, "Voksne: 0,5 mg", None),
                Block::new(BlockKind::ListItem, "Læg patienten ned", None),
                Block::new(BlockKind::TableRow, "Alder | Dosis", None),
                Block::new(BlockKind::TableRow, "Voksne | 0,5 mg", None),
            ]
        );
    }

    #[test]
    fn hyphens_at_line_ends_are_rejoined_only_inside_a_word() {
        assert_eq!(
            join_lines(&["ved anafy-", "laksi gives"]),
            "ved anafylaksi gives"
        );
        assert_eq!(
            join_lines(&["Region-", "Hovedstaden"]),
            "Region-Hovedstaden"
        );
        assert_eq!(join_lines(&["dosis 0,3 -", "0,5 mg"]), "dosis 0,3 - 0,5 mg");
    }

    #[test]
    fn passages_follow_headings_stay_bounded_and_know_their_pages_and_offsets() {
        let mut blocks = vec![Block::new(
            BlockKind::Heading { level: 1 },
            "Vejledning",
            Some(1),
        )];
        for i in 0..30 {
            blocks.push(Block::new(
                BlockKind::Paragraph,
                format!(
                    "Afsnit {i}: {}",
                    "Patienten observeres nøje efter behandlingen. ".repeat(4)
                ),
                Some(1 + i / 10),
            ));
            if i == 14 {
                blocks.push(Block::new(
                    BlockKind::Heading { level: 2 },
                    "Behandling",
                    Some(2),
                ));
            }
        }
        blocks.push(Block::new(
            BlockKind::Paragraph,
            "Lang. ".repeat(800),
            Some(4),
        ));
        let s = split(&blocks);
        assert!(s.passages.len() > 4);
        for (i, p) in s.passages.iter().enumerate() {
            assert_eq!(p.ord as usize, i);
            assert!(
                p.text.chars().count() <= PASSAGE_MAX_CHARS,
                "{}",
                p.text.len()
            );
            let slice: String = s
                .text
                .chars()
                .skip(p.char_start)
                .take(p.char_end - p.char_start)
                .collect();
            assert_eq!(slice.replace("\n\n", "\n"), p.text, "passage {i} offsets");
        }
        let behandling: Vec<_> = s
            .passages
            .iter()
            .filter(|p| p.heading == "Vejledning > Behandling")
            .collect();
        assert!(!behandling.is_empty());
        assert!(behandling[0].text.starts_with("Behandling\nAfsnit 15"));
        assert_eq!(s.passages[0].page_start, Some(1));
        assert_eq!(s.passages.last().unwrap().page_end, Some(4));
        assert!(s.passages.iter().any(|p| p.page_start != p.page_end));
    }

    #[test]
    fn ligatures_soft_hyphens_and_odd_spaces_are_cleaned() {
        assert_eq!(
            clean_text("e\u{FB03}cient\u{00A0} of\u{00AD}ten\u{2009}done\u{200B}"),
            "efficient often done"
        );
    }
}
