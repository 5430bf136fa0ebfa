//! A source document as the library keeps it: normalised text made of blocks (headings,
//! paragraphs, list items, table rows), each with the page it stands on, split into
//! **passages** of bounded size along headings and paragraphs. A passage knows where it is:
//! its page range, its heading path and its character offsets in the normalised text, so a
//! citation can name the page a reader opens.
//!
//! Every format ends here: Markdown and text ([`from_markdown`]), HTML (through its text), PDF
//! (`crate::pdf`) and DOCX (`crate::docx_read`) produce [`Block`]s; [`split`] makes passages.

use serde::Serialize;
use std::collections::HashSet;

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
    /// A note at the foot of a page ("³ Persistent fever at 72 hours: …"): the page's text,
    /// wherever it stands, even under a reference list that begins on its page.
    Footnote,
}

/// One block of a document, as extraction found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: BlockKind,
    pub text: String,
    /// 1-based page number, for paged formats: where the block starts.
    pub page: Option<u32>,
    /// Where it ends: a paragraph can run on over a page break.
    pub page_end: Option<u32>,
}

impl Block {
    pub fn new(kind: BlockKind, text: impl Into<String>, page: Option<u32>) -> Block {
        Block {
            kind,
            text: text.into(),
            page,
            page_end: page,
        }
    }

    /// The same block, ending on `page_end`.
    pub fn ending_on(self, page_end: Option<u32>) -> Block {
        Block {
            page_end: page_end.or(self.page),
            ..self
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

/// A superscript digit ("¹²", "10⁹").
pub fn is_superscript_digit(c: char) -> bool {
    "⁰¹²³⁴⁵⁶⁷⁸⁹".contains(c)
}

/// Letters and the modifier letters a PDF's superscript letters are read as: a footnote's
/// marker ("Adrenalineᵃ", "50ᶜ") or an ordinal's ending ("3ʳᵈ"). Letters without a modifier
/// letter (q, C, F, S, …) stay plain.
const SUPERSCRIPT_LETTERS: &[(char, char)] = &[
    ('a', 'ᵃ'),
    ('b', 'ᵇ'),
    ('c', 'ᶜ'),
    ('d', 'ᵈ'),
    ('e', 'ᵉ'),
    ('f', 'ᶠ'),
    ('g', 'ᵍ'),
    ('h', 'ʰ'),
    ('i', 'ⁱ'),
    ('j', 'ʲ'),
    ('k', 'ᵏ'),
    ('l', 'ˡ'),
    ('m', 'ᵐ'),
    ('n', 'ⁿ'),
    ('o', 'ᵒ'),
    ('p', 'ᵖ'),
    ('r', 'ʳ'),
    ('s', 'ˢ'),
    ('t', 'ᵗ'),
    ('u', 'ᵘ'),
    ('v', 'ᵛ'),
    ('w', 'ʷ'),
    ('x', 'ˣ'),
    ('y', 'ʸ'),
    ('z', 'ᶻ'),
    ('A', 'ᴬ'),
    ('B', 'ᴮ'),
    ('D', 'ᴰ'),
    ('E', 'ᴱ'),
    ('G', 'ᴳ'),
    ('H', 'ᴴ'),
    ('I', 'ᴵ'),
    ('J', 'ᴶ'),
    ('K', 'ᴷ'),
    ('L', 'ᴸ'),
    ('M', 'ᴹ'),
    ('N', 'ᴺ'),
    ('O', 'ᴼ'),
    ('P', 'ᴾ'),
    ('R', 'ᴿ'),
    ('T', 'ᵀ'),
    ('U', 'ᵁ'),
    ('V', 'ⱽ'),
    ('W', 'ᵂ'),
];

/// The modifier letter a superscript `c` is written as, or `c` when it has none.
pub fn superscript_letter(c: char) -> char {
    SUPERSCRIPT_LETTERS
        .iter()
        .find(|(plain, _)| *plain == c)
        .map_or(c, |(_, sup)| *sup)
}

/// The plain letter of a superscript letter ("ᵃ" → 'a').
pub fn plain_letter(c: char) -> Option<char> {
    SUPERSCRIPT_LETTERS
        .iter()
        .find(|(_, sup)| *sup == c)
        .map(|(plain, _)| *plain)
}

/// A superscript letter ("ᵃ"), as [`superscript_letter`] writes one.
pub fn is_superscript_letter(c: char) -> bool {
    plain_letter(c).is_some()
}

/// Where the run of superscript letters starting at `i` ends: a footnote's marker or markers
/// ("ᵃ", "ᵃ,ᵇ") or an ordinal's ending.
pub fn superscript_letters_end(chars: &[char], i: usize) -> usize {
    let mut end = i;
    while end < chars.len()
        && (is_superscript_letter(chars[end])
            || (chars[end] == ','
                && end > i
                && chars
                    .get(end + 1)
                    .is_some_and(|c| is_superscript_letter(*c))))
    {
        end += 1;
    }
    end
}

/// Whether the superscript letters `run` after a number end it as an ordinal ("3ʳᵈ", "8ᵗʰ").
pub fn is_ordinal_ending(run: &str) -> bool {
    let plain: String = run.chars().filter_map(plain_letter).collect();
    matches!(plain.as_str(), "st" | "nd" | "rd" | "th")
}

/// Superscript digits and signs, for digits set small and raised: "10⁹/L", "mg/m²", a
/// citation's "⁸⁴,¹¹⁰". Read as plain digits they would change a number ("10⁹" is not "109").
pub fn superscript_char(c: char) -> char {
    match c {
        '0' => '⁰',
        '1' => '¹',
        '2' => '²',
        '3' => '³',
        '4' => '⁴',
        '5' => '⁵',
        '6' => '⁶',
        '7' => '⁷',
        '8' => '⁸',
        '9' => '⁹',
        '+' => '⁺',
        '-' | '−' | '–' => '⁻',
        c => superscript_letter(c),
    }
}

/// A citation's superscript set on a word or a number is set apart from it ("genes ⁸⁴",
/// "40 ³ patients", "2 g ⁸"), so that it is read as a mark, not as part of the word or as an
/// exponent; an exponent or a charge stays on its base ("10⁹", "m²", "s⁻¹", "Ca²⁺").
pub fn space_citation_marks(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // Set on a word or a number (not inside a run already: "¹³¹I", ".³⁷"), or a space
        // after one (a justified line's "10 ⁹/L").
        let base = out.strip_suffix(' ').unwrap_or(&out);
        // Superscript letters ending a word or a number: an ordinal's ending is the number's
        // ("3rd"); any other is a footnote's marker, set apart ("Adrenaline ᵃ", "50 ᶜ").
        if is_superscript_letter(c)
            && base
                .chars()
                .last()
                .is_some_and(|b| b.is_alphanumeric() && !is_superscript_letter(b))
        {
            let end = superscript_letters_end(&chars, i);
            let run: String = chars[i..end].iter().collect();
            let inside_word = chars.get(end).is_some_and(|c| c.is_alphanumeric());
            if inside_word {
                // Raised letters inside a word (an accent's letter, a logo) are the word's.
                out.extend(run.chars().filter_map(plain_letter));
            } else if base.ends_with(|b: char| b.is_ascii_digit()) && is_ordinal_ending(&run) {
                out.truncate(base.len());
                out.extend(run.chars().filter_map(plain_letter));
            } else {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
                out.push_str(&run);
            }
            i = end;
            continue;
        }
        let starts_run = is_superscript_digit(c)
            && base
                .chars()
                .last()
                .is_some_and(|b| b.is_alphanumeric() && !is_superscript_digit(b));
        if !starts_run {
            out.push(c);
            i += 1;
            continue;
        }
        let end = superscript_run_end(&chars, i);
        let run: String = chars[i..end].iter().collect();
        let exponent = superscript_is_exponent(base, &run);
        if exponent {
            // On its base: "10⁹/L", "1.73 m²".
            out.truncate(base.len());
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
        out.push_str(&run);
        i = end;
    }
    out
}

/// Where the run of superscripts starting at `i` ends: superscript digits, the separators
/// between them ("¹²,¹⁴", "⁹³⁻⁹⁶") and a charge's sign after them ("Ca²⁺").
pub fn superscript_run_end(chars: &[char], i: usize) -> usize {
    let mut end = i;
    while end < chars.len()
        && (is_superscript_digit(chars[end])
            || (matches!(chars[end], ',' | '-' | '–' | '⁻')
                && chars.get(end + 1).is_some_and(|c| is_superscript_digit(*c))))
    {
        end += 1;
    }
    if chars.get(end).is_some_and(|c| "⁺⁻".contains(*c)) {
        end += 1;
    }
    end
}

/// Whether superscript characters `run` right after `before` are an exponent or a charge
/// ("10⁹", "m²", "cm³", "s⁻¹", "Ca²⁺") rather than a citation mark ("i låret¹²", "40³
/// patients", "2 g⁸"): powers in clinical text are of ten and of lengths, signed ones are
/// charges or inverse units.
pub fn superscript_is_exponent(before: &str, run: &str) -> bool {
    // A charge ("Ca²⁺") or an inverse unit ("s⁻¹"); a minus between digits is a citation's
    // range ("¹⁵²⁻¹⁵⁵").
    if run.ends_with(['⁺', '⁻']) || run.starts_with('⁻') {
        return true;
    }
    let digits: Vec<char> = before
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    if !digits.is_empty() {
        return digits == ['0', '1'];
    }
    let letters: Vec<char> = before
        .chars()
        .rev()
        .take_while(|c| c.is_alphabetic())
        .collect();
    (1..=2).contains(&letters.len()) && letters[0] == 'm'
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

/// Headings of a document's apparatus: its reference list, table of contents, list of
/// abbreviations and declarations. What stands under them cites or lists the document's
/// subjects without saying anything about them, so it is kept in the text but made into no
/// passage (see [`apparatus`]).
const APPARATUS_HEADINGS: &[&str] = &[
    "references",
    "reference list",
    "referencer",
    "referenceliste",
    "litteratur",
    "litteraturliste",
    "litteraturhenvisninger",
    "literature",
    "literature cited",
    "cited literature",
    "works cited",
    "bibliography",
    "bibliografi",
    "kildeliste",
    "kilder",
    "contents",
    "table of contents",
    "indhold",
    "indholdsfortegnelse",
    "abbreviations",
    "list of abbreviations",
    "forkortelser",
    "forkortelsesliste",
    "glossary",
    "ordliste",
    "acknowledgements",
    "acknowledgments",
    "conflicts of interest",
    "competing interests",
    "declaration of interests",
    "interessekonflikter",
    "funding",
];

/// Whether a heading (or a paragraph standing alone as one) names a part of the apparatus: its
/// whole text, without numbering and a trailing colon, is one of [`APPARATUS_HEADINGS`]
/// ("12. Referencer", "References:"; not "Fejlkilder" or "Reference intervals").
fn apparatus_heading(text: &str) -> bool {
    let t = text
        .trim()
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .trim_end_matches([':', '.'])
        .trim()
        .to_lowercase();
    APPARATUS_HEADINGS.contains(&t.as_str())
}

/// A line that reads as an entry of a reference list: a year and the punctuation of a
/// citation ("Jensen A. Pleuradræn hos voksne. Ugeskr Læger 2019;181:V03190", "Smith J, et al.
/// Thorax 2010").
pub fn citation_like(text: &str) -> bool {
    let year = text
        .split(|c: char| !c.is_ascii_digit())
        .any(|d| d.len() == 4 && (d.starts_with("19") || d.starts_with("20")));
    let lower = text.to_lowercase();
    year && (text.contains(';')
        || lower.contains("et al")
        || lower.contains("doi")
        || text.matches(". ").count() >= 2)
}

/// A line of a table of contents: an entry, a run of dot leaders (". . . .", "....", "…"), a
/// page number ("4.3 Chest drain insertion ........ 23"). One leader run followed by a page
/// number is enough; a lone ellipsis is not a leader run.
pub fn contents_line(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !matches!(chars[i], '.' | '…') {
            i += 1;
            continue;
        }
        let mut dots = 0;
        let mut j = i;
        while j < chars.len() && matches!(chars[j], '.' | '…' | ' ' | '\u{00A0}') {
            dots += match chars[j] {
                '.' => 1,
                '…' => 3,
                _ => 0,
            };
            j += 1;
        }
        let digits = chars[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        let ends = chars.get(j + digits).is_none_or(|c| c.is_whitespace());
        if dots >= 5 && (1..=4).contains(&digits) && ends {
            return true;
        }
        i = j.max(i + 1);
    }
    false
}

/// Which blocks are the document's apparatus: the blocks from an apparatus heading (references,
/// contents, abbreviations, declarations) up to the next heading, and lines of a table of
/// contents wherever they stand. If that would leave nothing else, nothing is (a document that
/// is all list is still a document).
pub fn apparatus(blocks: &[Block]) -> Vec<bool> {
    let mut out = vec![false; blocks.len()];
    let mut inside = false;
    for (i, b) in blocks.iter().enumerate() {
        let names = apparatus_heading(&b.text);
        match b.kind {
            // An entry the extraction took for a numbered heading stays in its list.
            BlockKind::Heading { .. } if inside && citation_like(&b.text) => {}
            BlockKind::Heading { .. } => inside = names,
            // A paragraph that is only "References" is a heading the extraction did not see.
            BlockKind::Paragraph if names => inside = true,
            // A page's footnote below the first entries of the list is the text's, unless it
            // only cites ("³ Jensen A. Ugeskr Læger 2019;181:V0319").
            BlockKind::Footnote => {
                out[i] = citation_like(&b.text);
                continue;
            }
            _ => {}
        }
        out[i] = inside || contents_line(&b.text);
    }
    let content = blocks
        .iter()
        .zip(&out)
        .any(|(b, skip)| !skip && !matches!(b.kind, BlockKind::Heading { .. }));
    if !content {
        out.iter_mut().for_each(|s| *s = false);
    }
    out
}

/// Splits `blocks` into passages: a heading always starts a new passage; paragraphs, items and
/// rows gather until the passage reaches [`PASSAGE_TARGET_CHARS`]; a block longer than
/// [`PASSAGE_MAX_CHARS`] is cut between sentences (or, failing that, between words). The
/// document's [`apparatus`] (reference list, table of contents) stays in the text but is in no
/// passage: retrieval and the writer see what the document says, not what it cites.
pub fn split(blocks: &[Block]) -> Split {
    let skip = apparatus(blocks);
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

    for (block, &skip) in blocks.iter().zip(&skip) {
        if let BlockKind::Heading { level } = block.kind {
            close(&mut current, &mut passages);
            path.retain(|(l, _)| *l < level);
            path.push((level, block.text.clone()));
        }
        if skip {
            close(&mut current, &mut passages);
        }
        for piece in pieces(&block.text) {
            if !text.is_empty() {
                text.push_str("\n\n");
                text_chars += 2;
            }
            let start = text_chars;
            text.push_str(&piece);
            text_chars += piece.chars().count();
            if skip {
                continue;
            }
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
                    p.page_end = block.page_end.or(block.page).or(p.page_end);
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
                        page_end: block.page_end.or(block.page),
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
    join_lines_in(lines, None)
}

/// The words of a document as they stand inside its lines, for telling a word broken at a line
/// end from one with a hyphen of its own ([`join_lines_in`]).
pub fn vocabulary<'a>(lines: impl IntoIterator<Item = &'a str>) -> HashSet<String> {
    let mut words = HashSet::new();
    for line in lines {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        // Not a line's last word: it may be the broken one.
        for t in tokens.iter().take(tokens.len().saturating_sub(1)) {
            let w = t.trim_matches(|c: char| !c.is_alphanumeric());
            if w.chars().count() >= 4 {
                words.insert(w.to_lowercase());
            }
        }
    }
    words
}

/// [`join_lines`], deciding a line-end hyphen by how the document writes the word elsewhere
/// when it does ("ACE-hæm-" + "mere" → "ACE-hæmmere"; "Hjerte-" + "lunge-redning" →
/// "Hjerte-lunge-redning"; LibreOffice's spaced "vir -" + "ker" → "virker").
pub fn join_lines_in(lines: &[&str], words: Option<&HashSet<String>>) -> String {
    let mut out = String::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if out.ends_with('-') && !out.ends_with("--") {
            let spaced = out.ends_with(" -");
            let head = out[..out.len() - 1].trim_end();
            let word = head.rsplit(char::is_whitespace).next().unwrap_or("");
            let next_word = line.split_whitespace().next().unwrap_or("");
            let bare = |w: &str| {
                w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            };
            let (whole, hyphened) = (
                bare(&format!("{word}{next_word}")),
                bare(&format!("{word}-{next_word}")),
            );
            let seen = |w: &String| words.is_some_and(|ws| ws.contains(w));
            let join = match (seen(&whole), seen(&hyphened)) {
                (true, false) => Some(true),
                (false, true) => Some(false),
                _ => None,
            };
            if spaced {
                // "vir -" + "ker": LibreOffice sets a justified line's break hyphen apart. A
                // word in lower case before it and after it is one word broken; a number or a
                // capital is a dash ("0,3 -" + "0,5 mg").
                let lower_word = |w: &str| {
                    !w.is_empty() && w.chars().all(|c| c.is_alphabetic() && c.is_lowercase())
                };
                // Two words the document uses on their own are two words and a dash
                // ("username -" + "otherwise").
                let two_words = seen(&bare(word)) && seen(&bare(next_word));
                let broken = join.unwrap_or(
                    !two_words
                        && lower_word(word)
                        && next_word
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_alphabetic() && c.is_lowercase()),
                );
                if broken {
                    out.truncate(head.len());
                    out.push_str(line);
                } else {
                    out.push(' ');
                    out.push_str(line);
                }
                continue;
            }
            let letters = word
                .rsplit(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("");
            let next = line.chars().next();
            // A word hyphenated at the line end is one word again ("intramusku-" / "lært"); a
            // hyphen that is part of the word stays: after an abbreviation, a letter or a
            // number ("ACE-hæmmere", "B-vitamin", "5-HT3"), and in a compound already
            // hyphenated ("Øre-næse-halskirurgisk").
            let real = (letters.chars().any(char::is_alphabetic)
                && letters.chars().all(|c| !c.is_lowercase()))
                || letters.chars().any(|c| c.is_ascii_digit())
                || word.contains('-');
            let broken = join.unwrap_or(
                !real
                    && letters.chars().last().is_some_and(char::is_alphabetic)
                    && next.is_some_and(char::is_lowercase),
            );
            if broken {
                out.pop();
            }
            out.push_str(line);
            continue;
        }
        // A range's dash or a unit's slash that ends a line joins what it joined on the page
        // ("0,4–" / "0,8 mg/time", "4 g/" / "døgn"); one set apart is set apart ("bolus –" /
        // "gentag"), and so is a path's or an address's last slash ("/usr/share/" / "and").
        let last_word = out.rsplit(char::is_whitespace).next().unwrap_or("");
        let dash = last_word.chars().count() >= 2 && last_word.ends_with(['–', '—']);
        let unit = last_word.ends_with('/')
            && (2..=6).contains(&last_word.chars().count())
            && last_word[..last_word.len() - 1]
                .chars()
                .all(char::is_alphabetic);
        // (a unit: "døgn", "kg", "L"; not a sentence's first word, "conf/" / "Add")
        let next_word = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches(|c: char| !c.is_alphanumeric());
        let unit =
            unit && (next_word.starts_with(char::is_lowercase) || next_word.chars().count() <= 2);
        let closed = (dash || unit) && line.starts_with(char::is_alphanumeric);
        if !out.is_empty() && !closed {
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
        // A range's dash and a unit's slash at a line end join as they do on the page; a dash
        // set apart stays apart.
        assert_eq!(
            join_lines(&["nalokson 0,4–", "0,8 mg/time, aldrig over 4 g/", "døgn"]),
            "nalokson 0,4–0,8 mg/time, aldrig over 4 g/døgn"
        );
        assert_eq!(join_lines(&["bolus –", "gentag"]), "bolus – gentag");
        assert_eq!(
            join_lines(&[
                "see /etc/network/interfaces.d/",
                "and https://www.debian.org/",
                "devel"
            ]),
            "see /etc/network/interfaces.d/ and https://www.debian.org/ devel"
        );
        assert_eq!(join_lines(&["under 7 mmol/", "L."]), "under 7 mmol/L.");
        assert_eq!(
            join_lines(&["ltsp.conf/", "Add items"]),
            "ltsp.conf/ Add items"
        );
        // A hyphen that belongs to the word stays at a line end: after an abbreviation or a
        // number, and in a compound already hyphenated.
        assert_eq!(
            join_lines(&["pause med ACE-", "hæmmere før"]),
            "pause med ACE-hæmmere før"
        );
        assert_eq!(
            join_lines(&["en 5-", "HT3-antagonist"]),
            "en 5-HT3-antagonist"
        );
        assert_eq!(
            join_lines(&["givet i.v. 5-", "minutters"]),
            "givet i.v. 5-minutters"
        );
        assert_eq!(
            join_lines(&["Øre-næse-", "halskirurgisk afdeling"]),
            "Øre-næse-halskirurgisk afdeling"
        );
        assert_eq!(
            join_lines(&["(stridor, hvæsen-", "de vejrtrækning)"]),
            "(stridor, hvæsende vejrtrækning)"
        );
        assert_eq!(
            join_lines(&["mangel på B-", "vitamin"]),
            "mangel på B-vitamin"
        );
        assert_eq!(
            join_lines(&["fastlæg base -", "lineværdi"]),
            "fastlæg baselineværdi"
        );
        assert_eq!(join_lines(&["dosis 0,3 -", "0,5 mg"]), "dosis 0,3 - 0,5 mg");
        // How the document writes the word elsewhere decides.
        let words = vocabulary([
            "ACE-hæmmere pauseres før indgrebet",
            "hjerte-lunge-redning startes straks",
            "virker den ikke gentages dosis",
        ]);
        let join = |a: &str, b: &str| join_lines_in(&[a, b], Some(&words));
        assert_eq!(
            join("pause med ACE-hæm-", "mere før"),
            "pause med ACE-hæmmere før"
        );
        assert_eq!(
            join("start Hjerte-", "lunge-redning nu"),
            "start Hjerte-lunge-redning nu"
        );
        assert_eq!(
            join("adrenalin vir -", "ker hurtigt"),
            "adrenalin virker hurtigt"
        );
        assert_eq!(join("ved anafy-", "laksi gives"), "ved anafylaksi gives");
        let words = vocabulary(["the username is checked", "otherwise it fails"]);
        assert_eq!(
            join_lines_in(
                &["differ from the username -", "otherwise login"],
                Some(&words)
            ),
            "differ from the username - otherwise login"
        );
    }

    /// Every passage's offsets point at its text in the normalised text.
    fn offsets_hold(s: &Split) {
        for p in &s.passages {
            let slice: String = s
                .text
                .chars()
                .skip(p.char_start)
                .take(p.char_end - p.char_start)
                .collect();
            assert_eq!(slice.replace("\n\n", "\n"), p.text, "offsets of {}", p.ord);
        }
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
        }
        offsets_hold(&s);
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
    fn reference_lists_and_tables_of_contents_are_in_the_text_but_in_no_passage() {
        let h = |l: u8, t: &str| Block::new(BlockKind::Heading { level: l }, t, Some(1));
        let p = |t: &str| Block::new(BlockKind::Paragraph, t, Some(1));
        let li = |t: &str| Block::new(BlockKind::ListItem, t, Some(1));
        let blocks = vec![
            h(1, "Pleural disease guideline"),
            h(2, "Contents"),
            p("1 Scope"),
            p("4.3 Chest drain insertion . . . . . . . . . . 23"),
            h(2, "1. Scope"),
            p("The guideline covers pleural effusion and pneumothorax in adults."),
            p("4.3 Chest drain insertion ............ 23 4.4 Drain removal ........ 27"),
            h(2, "2. Fejlkilder"),
            p("Forkert placering af drænet ses ved manglende ultralyd … 5 tilfælde."),
            h(2, "3. Reference intervals"),
            p("Pleural fluid pH below 7.2 indicates drainage."),
            h(2, "12. Referencer"),
            li("Smith J, et al. Ultrasound-guided chest drain insertion. Thorax 2010;65:1-9."),
            li("Jensen A. Thoraxdræn hos voksne. Ugeskr Læger 2019;181:V0319."),
            // An entry a PDF's extraction took for a numbered heading.
            h(2, "3. Larsen B, et al. Pleural drains. Thorax 2015"),
            li("Olsen C. Chest drain audit. BMJ 2018;360:k1."),
            // A page's notes under the list: one states a dose, one only cites.
            Block::new(
                BlockKind::Footnote,
                "¹ Over 65 år: lidocain højst 2 mg/kg.",
                Some(1),
            ),
            Block::new(
                BlockKind::Footnote,
                "² Hansen D, et al. Thorax 2012;67:5-9.",
                Some(1),
            ),
            h(2, "13. Bilag"),
            p("Doseringsskema for lokalbedøvelse: lidocain 10 mg/ml, højst 3 mg/kg."),
            p("References"),
            p("Brown K. Chest tubes. BMJ 2001;322:1-2."),
        ];
        let s = split(&blocks);
        let all: String = s.passages.iter().map(|p| p.text.as_str()).collect();
        for gone in [
            "Smith J",
            "Jensen A",
            "Olsen C",
            "Brown K",
            "Hansen D",
            "Chest drain insertion",
        ] {
            assert!(
                !all.contains(gone),
                "{gone:?} is apparatus: {:#?}",
                s.passages
            );
            assert!(s.text.contains(gone), "{gone:?} stays in the text");
        }
        for kept in [
            "pleural effusion and pneumothorax",
            "manglende ultralyd … 5 tilfælde",
            "pH below 7.2",
            "lidocain 10 mg/ml",
            "Over 65 år: lidocain højst 2 mg/kg.",
        ] {
            assert!(all.contains(kept), "{kept:?} is content: {:#?}", s.passages);
        }
        offsets_hold(&s);
        // A document that is nothing but a list of references is still a document.
        let only = split(&[
            h(1, "Referencer"),
            li("Smith J. Chest drains. Thorax 2010."),
        ]);
        assert_eq!(only.passages.len(), 1);
    }

    #[test]
    fn ligatures_soft_hyphens_and_odd_spaces_are_cleaned() {
        assert_eq!(
            clean_text("e\u{FB03}cient\u{00A0} of\u{00AD}ten\u{2009}done\u{200B}"),
            "efficient often done"
        );
    }
}
