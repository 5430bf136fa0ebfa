//! What every writer and the evaluator share: a retrieved source as they see it
//! ([`EvidenceSource`]), an acknowledged gap ([`AckNotice`]), the word and sentence units they
//! compare, and the parts of a procedure that are ours whatever the writer (the title and
//! notices, the reference list).

use crate::outline::REFERENCES;
use unicode_segmentation::UnicodeSegmentation;

/// Sentences shorter than this are fragments, not evidence.
const MIN_SENTENCE_CHARS: usize = 25;
/// Disclaimers the demonstration sources carry; they are not evidence.
const DISCLAIMERS: &[&str] = &["not clinical guidance", "ikke klinisk vejledning"];

/// A retrieved source as the writer and evaluator see it: its metadata and the passages
/// retrieval chose from it (in document order).
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceSource {
    pub id: String,
    pub title: String,
    pub url: Option<String>,
    pub year: Option<i32>,
    pub tier: String,
    pub tier_priority: i32,
    /// The retrieved passages' text, joined (what writers and the evaluator read).
    pub text: String,
    pub demo: bool,
    pub passages: Vec<EvidencePassage>,
    /// SHA-256 of the source's whole normalised text, as the library keeps it.
    pub sha256: String,
    /// SHA-256 of the original file (PDF, DOCX), if one is kept.
    pub original_sha256: Option<String>,
}

/// One retrieved passage of a source: where it is and what it says.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvidencePassage {
    /// `SRC0001#3`.
    pub id: String,
    pub heading: String,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    pub text: String,
}

impl EvidencePassage {
    /// "s. 12" or "s. 12–13"; None for documents without pages.
    pub fn pages_label(&self) -> Option<String> {
        crate::document::pages_label(self.page_start, self.page_end)
    }

    /// The passage's sentences that can serve as evidence (its headings are not claims).
    pub fn sentences(&self) -> Vec<String> {
        let headings: Vec<&str> = self.heading.split(" > ").collect();
        self.text
            .lines()
            .filter(|l| !headings.contains(&l.trim()))
            .flat_map(sentences)
            .collect()
    }
}

impl EvidenceSource {
    /// A source whose whole text is one passage (tests, tools).
    pub fn whole(
        id: &str,
        title: &str,
        tier: &str,
        tier_priority: i32,
        text: &str,
    ) -> EvidenceSource {
        EvidenceSource {
            id: id.into(),
            title: title.into(),
            url: None,
            year: None,
            tier: tier.into(),
            tier_priority,
            text: text.into(),
            demo: false,
            sha256: crate::library::sha256_hex(text.as_bytes()),
            original_sha256: None,
            passages: vec![EvidencePassage {
                id: format!("{id}#0"),
                heading: String::new(),
                page_start: None,
                page_end: None,
                text: text.into(),
            }],
        }
    }
}

/// What the procedure must say about gaps someone acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub struct AckNotice {
    pub missing_tiers: Vec<String>,
    pub acknowledged_by: String,
    pub note: String,
}

/// Lower-case words of 3+ characters: the unit of overlap between sentences and sources.
pub fn words(text: &str) -> Vec<String> {
    text.unicode_words()
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3)
        .collect()
}

/// The sentences of a source that can serve as evidence, cut where the verifier cuts them
/// ([`crate::verify::text::split_sentences`]): a sentence a writer copies is then one sentence
/// to the verifier too, never two with one citation between them ("… a 5 Fr pigtail catheter.
/// 240 mL was drained." is two).
pub fn sentences(text: &str) -> Vec<String> {
    text.lines()
        .flat_map(|line| {
            let flat = line.split_whitespace().collect::<Vec<_>>().join(" ");
            let flat = crate::verify::text::without_citation_marks(&flat);
            crate::verify::text::split_sentences(&flat)
        })
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| s.chars().count() >= MIN_SENTENCE_CHARS)
        .filter(|s| {
            let l = s.to_lowercase();
            !DISCLAIMERS.iter().any(|d| l.contains(d)) && !s.starts_with('#')
        })
        .collect()
}

/// The title and the notice block every writer puts first: who wrote it, demonstration
/// material, acknowledged evidence gaps.
pub fn header(
    procedure: &str,
    writer_line: &str,
    sources: &[EvidenceSource],
    ack: Option<&AckNotice>,
) -> String {
    let mut md = format!("# {}\n\n> {writer_line}\n", procedure.trim());
    if sources.iter().any(|s| s.demo) {
        md.push_str(
            ">\n> **Demonstrationsmateriale:** bygget på procedurewriters demobibliotek. \
             Ikke klinisk vejledning.\n",
        );
    }
    if let Some(a) = ack {
        md.push_str(&format!(
            ">\n> **Kvitterede evidenshuller:** mangler {}. Kvitteret af {}: \"{}\".\n",
            a.missing_tiers.join(", "),
            a.acknowledged_by,
            a.note
        ));
    }
    md
}

/// The passage of `source` that best supports a sentence with these words: the one sharing
/// the largest share of the sentence's words (the earliest of equals). None for a source
/// without passages.
pub fn best_passage<'a>(
    sentence_words: &[String],
    source: &'a EvidenceSource,
) -> Option<&'a EvidencePassage> {
    let mut best: Option<(&EvidencePassage, usize)> = None;
    for p in &source.passages {
        let pw = words(&p.text);
        let shared = sentence_words.iter().filter(|w| pw.contains(w)).count();
        if best.is_none_or(|(_, n)| shared > n) {
            best = Some((p, shared));
        }
    }
    best.map(|(p, _)| p)
}

/// Each cited source's pages, from the passages that support the sentences citing it:
/// source id → page labels in page order ("s. 12", "s. 40–41"). Sources without pages are
/// absent.
pub fn cited_pages(
    body: &str,
    sources: &[EvidenceSource],
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut pages: std::collections::BTreeMap<String, std::collections::BTreeSet<(u32, String)>> =
        Default::default();
    for line in body.lines() {
        for sentence in line.split_inclusive("] ") {
            let ids: Vec<&str> = sentence
                .match_indices("[S:")
                .filter_map(|(i, _)| {
                    let rest = &sentence[i + 3..];
                    rest.find(']').map(|end| &rest[..end])
                })
                .collect();
            if ids.is_empty() {
                continue;
            }
            let sw = words(sentence);
            for id in ids {
                let Some(src) = sources.iter().find(|s| s.id == id) else {
                    continue;
                };
                if let Some(p) = best_passage(&sw, src) {
                    if let (Some(start), Some(label)) = (p.page_start, p.pages_label()) {
                        pages
                            .entry(id.to_string())
                            .or_default()
                            .insert((start, label));
                    }
                }
            }
        }
    }
    pages
        .into_iter()
        .map(|(id, set)| (id, set.into_iter().map(|(_, l)| l).collect()))
        .collect()
}

/// The reference list: every source among `cited`, by id, with the pages `body` cites from it.
pub fn references_with_pages(sources: &[EvidenceSource], cited: &[&str], body: &str) -> String {
    let pages = cited_pages(body, sources);
    let mut md = references(sources, cited);
    for (id, labels) in pages {
        // "- [S:SRC0001] Title (2024). Evidensniveau: x." → "... Citeret: s. 12, s. 40."
        let marker = format!("- [S:{id}] ");
        if let Some(start) = md.find(&marker) {
            let end = md[start..].find('\n').map_or(md.len(), |e| start + e);
            let pages: Vec<String> = labels
                .iter()
                .map(|l| l.trim_start_matches("s. ").to_string())
                .collect();
            md.insert_str(end, &format!(" Citeret: s. {}.", pages.join(", ")));
        }
    }
    md
}

/// The reference list: every source among `cited`, by id.
pub fn references(sources: &[EvidenceSource], cited: &[&str]) -> String {
    let mut md = format!("## {REFERENCES}\n\n");
    let mut refs: Vec<&EvidenceSource> = sources
        .iter()
        .filter(|s| cited.contains(&s.id.as_str()))
        .collect();
    refs.sort_by(|a, b| a.id.cmp(&b.id));
    for s in refs {
        let year = s.year.map(|y| format!(" ({y})")).unwrap_or_default();
        let url = s
            .url
            .as_deref()
            .map(|u| format!(". {u}"))
            .unwrap_or_default();
        md.push_str(&format!(
            "- [S:{}] {}{year}{url}. Evidensniveau: {}.\n",
            s.id, s.title, s.tier
        ));
    }
    md
}
