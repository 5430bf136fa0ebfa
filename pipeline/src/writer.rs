//! The built-in offline writer: composes every section of the outline from the best-matching
//! sentences of the retrieved sources, each sentence carrying its `[S:SRC....]` citation, and a
//! reference list. Deterministic: the same sources give the same procedure, byte for byte.

use crate::outline::{evidence_sections, CHECKLIST, OUTLINE, PROCEDURE, REFERENCES};
use unicode_segmentation::UnicodeSegmentation;

/// Sentences shown per section at most.
const PER_SECTION: usize = 3;
/// Sentences shorter than this are fragments, not evidence.
const MIN_SENTENCE_CHARS: usize = 25;
/// Two sentences sharing this share of their words say the same thing; the second is dropped.
const DUPLICATE_OVERLAP: f64 = 0.8;
/// Disclaimers the demonstration sources carry; they are not evidence.
const DISCLAIMERS: &[&str] = &["not clinical guidance", "ikke klinisk vejledning"];

/// A retrieved source as the writer and evaluator see it.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceSource {
    pub id: String,
    pub title: String,
    pub url: Option<String>,
    pub year: Option<i32>,
    pub tier: String,
    pub tier_priority: i32,
    pub text: String,
    pub demo: bool,
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

fn overlap(a: &[String], b: &[String]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    let shared = a.iter().filter(|w| b.contains(w)).count();
    shared as f64 / a.len() as f64
}

/// The sentences of a source that can serve as evidence.
pub fn sentences(text: &str) -> Vec<String> {
    text.unicode_sentences()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| s.chars().count() >= MIN_SENTENCE_CHARS)
        .filter(|s| {
            let l = s.to_lowercase();
            !DISCLAIMERS.iter().any(|d| l.contains(d)) && !s.starts_with('#')
        })
        .collect()
}

/// How strongly a sentence belongs to a section: cues present (a cue matches a word it
/// prefixes, or a phrase it is part of).
fn cue_score(sentence_lower: &str, sentence_words: &[String], cues: &[&str]) -> usize {
    cues.iter()
        .filter(|c| {
            if c.contains(' ') {
                sentence_lower.contains(*c)
            } else {
                sentence_words.iter().any(|w| w.starts_with(*c))
            }
        })
        .count()
}

struct Candidate {
    section: usize,
    score: usize,
    tier_priority: i32,
    source_order: usize,
    index: usize,
    text: String,
    source_id: String,
    words: Vec<String>,
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

/// Writes the procedure as Markdown.
pub fn write(procedure: &str, sources: &[EvidenceSource], ack: Option<&AckNotice>) -> String {
    let sections: Vec<_> = evidence_sections().collect();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (source_order, src) in sources.iter().enumerate() {
        for (index, text) in sentences(&src.text).into_iter().enumerate() {
            let lower = text.to_lowercase();
            let ws = words(&text);
            let best = sections
                .iter()
                .enumerate()
                .map(|(i, s)| (cue_score(&lower, &ws, s.cues), i))
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            if let Some((score, section)) = best.filter(|(score, _)| *score > 0) {
                candidates.push(Candidate {
                    section,
                    score,
                    tier_priority: src.tier_priority,
                    source_order,
                    index,
                    text,
                    source_id: src.id.clone(),
                    words: ws,
                });
            }
        }
    }
    candidates.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.tier_priority.cmp(&a.tier_priority))
            .then(a.source_order.cmp(&b.source_order))
            .then(a.index.cmp(&b.index))
    });
    let mut chosen: Vec<Vec<&Candidate>> = vec![Vec::new(); sections.len()];
    let mut taken: Vec<&Candidate> = Vec::new();
    for c in &candidates {
        if chosen[c.section].len() >= PER_SECTION {
            continue;
        }
        if taken
            .iter()
            .any(|t| overlap(&c.words, &t.words) >= DUPLICATE_OVERLAP)
        {
            continue;
        }
        chosen[c.section].push(c);
        taken.push(c);
    }

    let mut md = header(
        procedure,
        "Skrevet af procedurewriters offline-skribent ud fra afdelingens evidensbibliotek; \
         hver sætning angiver sin kilde som [S:SRC….].",
        sources,
        ack,
    );
    md.push('\n');
    let mut cited: Vec<&str> = Vec::new();
    for (i, section) in sections.iter().enumerate() {
        md.push_str(&format!("## {}\n\n", section.heading));
        if chosen[i].is_empty() {
            md.push_str("_Ingen evidens i biblioteket for dette afsnit._\n\n");
            continue;
        }
        for (n, c) in chosen[i].iter().enumerate() {
            if section.heading == PROCEDURE {
                md.push_str(&format!("{}. ", n + 1));
            }
            md.push_str(&format!("{} [S:{}]\n", c.text, c.source_id));
            if !cited.contains(&c.source_id.as_str()) {
                cited.push(&c.source_id);
            }
        }
        md.push('\n');
    }
    // The checklist: each step and key point to tick off, with its source.
    md.push_str(&format!("## {CHECKLIST}\n\n"));
    let checks: Vec<&&Candidate> = sections
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.heading == PROCEDURE || s.heading == "Key Points" || s.heading == "Monitorering"
        })
        .flat_map(|(i, _)| chosen[i].iter())
        .collect();
    if checks.is_empty() {
        md.push_str("_Ingen trin at tjekke: proceduren mangler evidens._\n\n");
    }
    for c in &checks {
        md.push_str(&format!("- [ ] {} [S:{}]\n", c.text, c.source_id));
    }
    if !checks.is_empty() {
        md.push('\n');
    }
    md.push_str(&references(sources, &cited));
    debug_assert_eq!(OUTLINE.last().map(|s| s.heading), Some(REFERENCES));
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(id: &str, tier_priority: i32, text: &str) -> EvidenceSource {
        EvidenceSource {
            id: id.into(),
            title: format!("Title {id}"),
            url: None,
            year: Some(2020),
            tier: "x".into(),
            tier_priority,
            text: text.into(),
            demo: false,
        }
    }

    #[test]
    fn every_sentence_under_a_heading_cites_its_source_and_the_output_is_deterministic() {
        let sources = vec![
            src("SRC0001", 1000, "Adrenaline is the first-line treatment and should be given without delay. Give 0.5 mg intramuscular adrenaline into the thigh. Monitor pulse and blood pressure continuously."),
            src("SRC0002", 700, "DEMONSTRATION MATERIAL written for procedurewriter; not clinical guidance. Complications include arrhythmia after intravenous bolus doses."),
        ];
        let md = write("Anafylaksi", &sources, None);
        assert_eq!(md, write("Anafylaksi", &sources, None));
        assert!(!md.contains("not clinical guidance"));
        for line in md.lines() {
            let body = line.trim();
            if body.is_empty()
                || body.starts_with('#')
                || body.starts_with('>')
                || body.starts_with('_')
                || body.starts_with("- [S:")
            {
                continue;
            }
            assert!(body.contains("[S:SRC000"), "uncited: {body}");
        }
        assert!(md.contains("## Komplikationer\n\nComplications include arrhythmia"));
        assert!(md.contains("- [S:SRC0001] Title SRC0001 (2020)"));
        assert_eq!(md.matches("## ").count(), OUTLINE.len());
    }
}
