//! The one strict reader of a procedure's Markdown. Every rendered line is content to check:
//! list items, numbered steps, table cells, blockquotes, emphasis, deeper headings and HTML.
//! Only the outline's `## ` headings open sections; markup the writers never produce is
//! reported (content can hide in it), and then read like any other line, so nothing a reader
//! of the document would see goes unchecked.

use super::text::split_sentences;
use super::FindingKind;
use crate::outline::{OUTLINE, REFERENCES};
use serde::Serialize;

/// A procedure as the reader sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    /// The `# ` title, when present.
    pub title: Option<String>,
    /// Sections in document order (non-outline headings included, marked).
    pub sections: Vec<Section>,
    /// Problems with the document's form (markup, headings, citations).
    pub findings: Vec<ReaderFinding>,
}

/// One `## ` section.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub heading: String,
    /// 1-based line of the heading (0 for content before any heading).
    pub line: usize,
    /// Whether the heading is one of the outline's.
    pub outline: bool,
    pub sentences: Vec<Sentence>,
    /// Italic "no evidence" notes in the section.
    pub notes: usize,
}

/// One sentence of the procedure.
#[derive(Debug, Clone, Serialize)]
pub struct Sentence {
    /// The sentence without citations or markup.
    pub text: String,
    /// Well-formed citation ids (`SRC0001`), in order, without duplicates.
    pub citations: Vec<String>,
    /// 1-based line number.
    pub line: usize,
    /// The section heading it stands under.
    pub section: String,
    /// Part of a numbered step or a checklist item.
    pub step: bool,
}

/// A problem the reader found.
#[derive(Debug, Clone, Serialize)]
pub struct ReaderFinding {
    pub kind: FindingKind,
    pub line: usize,
    pub section: String,
    /// The offending text (the line, or the malformed citation).
    pub text: String,
    pub what: String,
}

/// Lines longer than this are cut: the reader's cost stays bounded on hostile input.
const MAX_LINE_CHARS: usize = 20_000;

/// Whether `s` is exactly a citation `[S:SRC` + digits + `]`.
pub fn valid_citation(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("[S:")?.strip_suffix(']')?;
    let digits = inner.strip_prefix("SRC")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(inner)
}

/// Splits a sentence into its text and citations; malformed citation-like spans are returned
/// separately (and removed from the text).
fn take_citations(s: &str) -> (String, Vec<String>, Vec<String>) {
    let chars: Vec<char> = s.chars().collect();
    let mut text = String::new();
    let mut ids: Vec<String> = Vec::new();
    let mut bad = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '[' || c == '(' {
            let rest: String = chars[i + 1..]
                .iter()
                .take(24)
                .collect::<String>()
                .to_lowercase();
            let r = rest.trim_start();
            if r.starts_with("s:") || r.starts_with("s :") || r.starts_with("src") {
                let close = if c == '[' { ']' } else { ')' };
                let end = chars[i + 1..]
                    .iter()
                    .take(40)
                    .position(|d| *d == close || *d == '[' || *d == '(')
                    .filter(|p| chars[i + 1 + p] == close)
                    .map(|p| i + 1 + p + 1);
                let stop = end.unwrap_or_else(|| {
                    // Unclosed: the citation-like run ends at the first space after the id.
                    let mut j = i + 1;
                    while j < chars.len() && !chars[j].is_whitespace() && chars[j] != '[' {
                        j += 1;
                    }
                    j
                });
                let span: String = chars[i..stop].iter().collect();
                match valid_citation(&span) {
                    Some(id) => {
                        if !ids.iter().any(|x| x == id) {
                            ids.push(id.to_string());
                        }
                    }
                    None => bad.push(span),
                }
                text.push(' ');
                i = stop;
                continue;
            }
        }
        // A bare source id outside brackets is a citation the writer mangled.
        if (c == 'S' || c == 's')
            && chars
                .get(i + 1)
                .is_some_and(|d| d.eq_ignore_ascii_case(&'r'))
            && chars
                .get(i + 2)
                .is_some_and(|d| d.eq_ignore_ascii_case(&'c'))
            && chars.get(i + 3).is_some_and(|d| d.is_ascii_digit())
            && (i == 0 || !chars[i - 1].is_alphanumeric())
        {
            let mut j = i + 3;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            bad.push(chars[i..j].iter().collect());
            text.push(' ');
            i = j;
            continue;
        }
        text.push(c);
        i += 1;
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (text, ids, bad)
}

/// Removes inline emphasis and code markers, links' targets and HTML tags, keeping the text a
/// reader sees. Returns whether HTML was present.
fn strip_inline(s: &str) -> (String, bool) {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut html = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '<' {
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            if next.is_ascii_alphabetic() || next == '/' || next == '!' {
                html = true;
                if next == '!' {
                    // A comment: its delimiters go, its text stays (it is hidden content).
                    let mut j = i + 1;
                    while j < chars.len() && (chars[j] == '!' || chars[j] == '-') {
                        j += 1;
                    }
                    out.push(' ');
                    i = j;
                    continue;
                }
                match chars[i..].iter().position(|d| *d == '>') {
                    Some(p) => {
                        out.push(' ');
                        i += p + 1;
                        continue;
                    }
                    None => {
                        i += 1;
                        continue;
                    }
                }
            }
        }
        if c == '-' && chars.get(i + 1) == Some(&'-') && chars.get(i + 2) == Some(&'>') {
            html = true;
            out.push(' ');
            i += 3;
            continue;
        }
        if c == '*' || c == '`' || c == '~' {
            i += 1;
            continue;
        }
        if c == '_' {
            let before = i > 0 && chars[i - 1].is_alphanumeric();
            let after = chars.get(i + 1).is_some_and(|d| d.is_alphanumeric());
            if !(before && after) {
                i += 1;
                continue;
            }
        }
        // A link keeps its text; its target is not read. "](" never starts a citation.
        if c == ']' && chars.get(i + 1) == Some(&'(') {
            let is_citation = out.rfind('[').is_some_and(|p| {
                let inner = out[p + 1..].to_lowercase();
                inner.trim_start().starts_with("s:") || inner.trim_start().starts_with("src")
            });
            if !is_citation {
                if let Some(p) = chars[i..].iter().position(|d| *d == ')') {
                    if let Some(open) = out.rfind('[') {
                        out.remove(open);
                    }
                    i += p + 1;
                    continue;
                }
            }
        }
        out.push(c);
        i += 1;
    }
    let out = out
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    (out, html)
}

/// Strips a list marker; returns the rest and whether it was a step (numbered or checklist).
fn strip_list_marker(l: &str) -> (&str, bool) {
    for p in ["- [ ] ", "- [x] ", "- [X] ", "* [ ] ", "* [x] "] {
        if let Some(r) = l.strip_prefix(p) {
            return (r, true);
        }
    }
    for p in ["- ", "* ", "+ ", "• "] {
        if let Some(r) = l.strip_prefix(p) {
            return (r, false);
        }
    }
    let digits = l.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits < 4 {
        let rest = &l[digits..];
        if let Some(r) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return (r, true);
        }
    }
    (l, false)
}

fn heading_level(l: &str) -> Option<(usize, &str)> {
    let n = l.bytes().take_while(|b| *b == b'#').count();
    if n == 0 || n > 6 {
        return None;
    }
    let rest = &l[n..];
    if rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t') {
        Some((n, rest.trim().trim_end_matches('#').trim()))
    } else {
        None
    }
}

/// Whether an italic line is a note that evidence is missing: a fixed phrase, or a short line
/// that says nothing/none ("intet", "ingen", "nothing", ...) about the sources, the evidence or
/// the section (as the writers are told to write one: "_Kilderne siger intet om dette
/// afsnit._"). The caller also requires that it carries no clinical marks.
fn is_no_evidence_note(text: &str) -> bool {
    let l = text.to_lowercase();
    let fixed = [
        "ingen evidens",
        "mangler evidens",
        "ingen trin",
        "no evidence",
        "evidence is missing",
    ]
    .iter()
    .any(|c| l.contains(c));
    let words: Vec<&str> = l
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let nothing = words
        .iter()
        .any(|w| ["intet", "ingen", "ikke", "nothing", "none", "no", "not"].contains(w));
    let about_sources = words.iter().any(|w| {
        [
            "kilde",
            "kilder",
            "kilderne",
            "evidens",
            "evidensen",
            "afsnit",
            "afsnittet",
            "source",
            "sources",
            "evidence",
            "section",
        ]
        .contains(w)
    });
    fixed || (nothing && about_sources && words.len() <= 14)
}

struct State {
    doc: Document,
    in_fence: bool,
    started: bool,
}

impl State {
    fn section_name(&self) -> String {
        self.doc
            .sections
            .last()
            .map(|s| s.heading.clone())
            .unwrap_or_default()
    }

    fn finding(&mut self, kind: FindingKind, line: usize, text: &str, what: String) {
        let section = self.section_name();
        self.doc.findings.push(ReaderFinding {
            kind,
            line,
            section,
            text: text.chars().take(300).collect(),
            what,
        });
    }

    /// Reads one piece of content (a line, a cell) into sentences of the current section.
    fn content(&mut self, line: usize, raw: &str, step: bool) {
        let (plain, html) = strip_inline(raw);
        if html {
            self.finding(
                FindingKind::HiddenMarkup,
                line,
                raw,
                "HTML in the text; writers never produce it, and it can hide content".into(),
            );
        }
        if self.doc.sections.is_empty() {
            self.doc.sections.push(Section {
                heading: String::new(),
                line: 0,
                outline: false,
                sentences: Vec::new(),
                notes: 0,
            });
        }
        let section = self.section_name();
        for s in split_sentences(&plain) {
            let (text, ids, bad) = take_citations(&s);
            for b in &bad {
                self.finding(
                    FindingKind::MalformedCitation,
                    line,
                    b,
                    format!("malformed citation \"{b}\"; a citation is exactly [S:SRC0001]"),
                );
            }
            let has_words = text.chars().any(char::is_alphanumeric);
            let sec = self.doc.sections.last_mut().expect("pushed above");
            if !has_words {
                // Citations on their own follow the sentence before them on the same line.
                if let Some(prev) = sec.sentences.last_mut().filter(|p| p.line == line) {
                    for id in ids {
                        if !prev.citations.contains(&id) {
                            prev.citations.push(id);
                        }
                    }
                }
                continue;
            }
            sec.sentences.push(Sentence {
                text,
                citations: ids,
                line,
                section: section.clone(),
                step,
            });
        }
    }
}

/// Reads a procedure. Never fails: every problem is a finding.
pub fn read(markdown: &str) -> Document {
    let mut st = State {
        doc: Document {
            title: None,
            sections: Vec::new(),
            findings: Vec::new(),
        },
        in_fence: false,
        started: false,
    };
    let mut in_references = false;
    for (n, full) in markdown.lines().enumerate() {
        let line_no = n + 1;
        let line: String = full
            .chars()
            .take(MAX_LINE_CHARS)
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect();
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if t.starts_with("```") || t.starts_with("~~~") {
            st.in_fence = !st.in_fence;
            st.finding(
                FindingKind::HiddenMarkup,
                line_no,
                t,
                "code block; writers never produce it, and it can hide content".into(),
            );
            continue;
        }
        if !st.in_fence {
            if let Some((level, text)) = heading_level(t) {
                match level {
                    1 if !st.started && st.doc.title.is_none() => {
                        st.doc.title = Some(text.to_string());
                        continue;
                    }
                    2 => {
                        let outline = OUTLINE.iter().any(|s| s.heading == text);
                        st.started = true;
                        in_references = text == REFERENCES;
                        st.doc.sections.push(Section {
                            heading: text.to_string(),
                            line: line_no,
                            outline,
                            sentences: Vec::new(),
                            notes: 0,
                        });
                        if !outline {
                            st.finding(
                                FindingKind::NonOutlineHeading,
                                line_no,
                                t,
                                format!("heading \"{text}\" is not in the outline; its content is outside any section"),
                            );
                        }
                        continue;
                    }
                    _ => {
                        st.finding(
                            FindingKind::HiddenMarkup,
                            line_no,
                            t,
                            format!("level-{level} heading; writers never produce it, and its text is content"),
                        );
                        if !in_references {
                            st.content(line_no, text, false);
                        }
                        continue;
                    }
                }
            }
        }
        // The notice block the pipeline writes under the title.
        if !st.started {
            if t.starts_with('>') {
                continue;
            }
            st.finding(
                FindingKind::ContentOutsideSection,
                line_no,
                t,
                "content before the first outline section".into(),
            );
            st.content(line_no, t, false);
            continue;
        }
        if in_references && !st.in_fence {
            // The reference list: its entries are not claims.
            continue;
        }
        if st.in_fence {
            st.content(line_no, t, false);
            continue;
        }
        if t.chars().all(|c| matches!(c, '-' | '=' | '*' | '_' | ' ')) {
            st.finding(
                FindingKind::HiddenMarkup,
                line_no,
                t,
                "rule or setext underline; writers never produce it".into(),
            );
            continue;
        }
        if let Some(rest) = t.strip_prefix('>') {
            st.finding(
                FindingKind::HiddenMarkup,
                line_no,
                t,
                "blockquote inside a section; writers never produce it, and its text is content"
                    .into(),
            );
            let inner = rest.trim_start_matches(['>', ' ']);
            let (body, step) = strip_list_marker(inner);
            st.content(line_no, body, step);
            continue;
        }
        if t.starts_with('|') {
            let cells: Vec<&str> = t.trim_matches('|').split('|').map(str::trim).collect();
            let separator = cells
                .iter()
                .all(|c| !c.is_empty() && c.chars().all(|d| matches!(d, '-' | ':' | ' ')));
            if separator {
                continue;
            }
            st.finding(
                FindingKind::HiddenMarkup,
                line_no,
                t,
                "table row; writers never produce tables, and each cell is content".into(),
            );
            for c in cells.into_iter().filter(|c| !c.is_empty()) {
                st.content(line_no, c, false);
            }
            continue;
        }
        if t.starts_with("![") {
            st.finding(
                FindingKind::HiddenMarkup,
                line_no,
                t,
                "image; writers never produce it".into(),
            );
        }
        let (body, step) = strip_list_marker(t);
        let italic = (body.len() > 2
            && ((body.starts_with('_') && body.ends_with('_') && !body.starts_with("__"))
                || (body.starts_with('*') && body.ends_with('*') && !body.starts_with("**"))))
        .then(|| &body[1..body.len() - 1]);
        if let Some(inner) = italic {
            let clinical_marks = inner.contains("[S:") || inner.chars().any(|c| c.is_ascii_digit());
            if is_no_evidence_note(inner) && !clinical_marks {
                if let Some(s) = st.doc.sections.last_mut() {
                    s.notes += 1;
                }
                continue;
            }
            st.finding(
                FindingKind::HiddenMarkup,
                line_no,
                t,
                "a whole line in italics that is not a no-evidence note; its text is content"
                    .into(),
            );
        }
        st.content(line_no, body, step);
    }
    st.doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(md: &str) -> Vec<FindingKind> {
        read(md).findings.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn sections_sentences_and_citations_are_read() {
        let md = "# Anafylaksi\n\n> Skrevet af offline.\n>\n> **Demo**\n\n## Key Points\n\nAdrenalin gives i.m. [S:SRC0001] Dosis 0,5 mg. [S:SRC0002]\n1. Giv ilt. [S:SRC0003][S:SRC0001]\n\n## Indikationer\n\n_Ingen evidens i kilderne._\n\n## Referencer\n\n- [S:SRC0001] Bog.\n";
        let d = read(md);
        assert_eq!(d.title.as_deref(), Some("Anafylaksi"));
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        let kp = &d.sections[0];
        assert_eq!(kp.heading, "Key Points");
        assert_eq!(kp.sentences.len(), 3);
        assert_eq!(kp.sentences[0].citations, ["SRC0001"]);
        assert_eq!(kp.sentences[1].text, "Dosis 0,5 mg.");
        assert_eq!(kp.sentences[2].citations, ["SRC0003", "SRC0001"]);
        assert!(kp.sentences[2].step);
        assert_eq!(d.sections[1].notes, 1);
        assert!(d.sections[2].sentences.is_empty());
    }

    #[test]
    fn malformed_citations_are_each_a_finding() {
        for bad in [
            "[S:SRC12",
            "[SRC0001]",
            "(S:SRC0001)",
            "[S: SRC0001]",
            "[s:src0001]",
            "SRC0001",
            "[S:SRC]",
        ] {
            let md = format!("# T\n\n## Key Points\n\nAdrenalin gives i.m. {bad}\n");
            assert!(
                kinds(&md).contains(&FindingKind::MalformedCitation),
                "{bad}: {:?}",
                read(&md).findings
            );
        }
    }

    #[test]
    fn markup_that_hides_content_is_reported_and_still_read() {
        let cases = [
            "> Adrenalin 5 mg i.v. [S:SRC0001]",
            "| Dosis | 5 mg i.v. [S:SRC0001] |",
            "### Adrenalin 5 mg i.v. [S:SRC0001]",
            "_Adrenalin 5 mg i.v. [S:SRC0001]_",
            "<!-- Adrenalin 5 mg i.v. [S:SRC0001] -->",
            "<span>Adrenalin 5 mg i.v.</span> [S:SRC0001]",
        ];
        for c in cases {
            let md = format!("# T\n\n## Key Points\n\n{c}\n");
            let d = read(&md);
            assert!(
                d.findings
                    .iter()
                    .any(|f| f.kind == FindingKind::HiddenMarkup),
                "{c}"
            );
            let s = &d.sections[0].sentences;
            assert!(s.iter().any(|s| s.text.contains("5 mg")), "{c}: {s:?}");
        }
    }

    #[test]
    fn headings_outside_the_outline_and_early_content_are_findings() {
        let k = kinds("# T\n\nStray text.\n\n## Dosering\n\nX [S:SRC0001]\n\n# Second title\n");
        assert!(k.contains(&FindingKind::ContentOutsideSection));
        assert!(k.contains(&FindingKind::NonOutlineHeading));
        assert!(k.contains(&FindingKind::HiddenMarkup));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let huge = "a".repeat(100_000);
        for s in [
            "",
            "#",
            "##",
            "## ",
            "[",
            "[S:",
            "(((",
            "]]]",
            "<",
            "<!--",
            "|",
            "||",
            "🙂 [S:SRC1] 🙂",
            "\u{0}\u{7}",
            "_",
            "__",
            "*",
            "1. ",
            "> ",
            huge.as_str(),
        ] {
            let _ = read(s);
            let _ = read(&format!("# T\n## Key Points\n{s}\n"));
        }
    }
}
