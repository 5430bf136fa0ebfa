//! The evaluator: a deterministic 0–10 score for a written procedure, with the concrete issues
//! behind it and a per-sentence evidence report. It reads Markdown, so it judges any writer.
//!
//! Score (points): citation coverage 3, sections with cited evidence 2, sentence support 2,
//! citations that resolve to retrieved sources 2 (each unknown id, a hallucination, costs 1),
//! weight of the cited sources' tiers 1 — every part earned in proportion to the outline's
//! evidence sections that carry cited content, so an empty section costs its share of all.

use crate::evidence::{words, EvidenceSource};
use crate::outline::{evidence_sections, REFERENCES};
use serde::Serialize;
use std::collections::BTreeMap;

/// A sentence is supported when this share of its words occurs in a source it cites.
pub const SUPPORT_THRESHOLD: f64 = 0.6;

/// One sentence of the procedure and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentenceReport {
    pub section: String,
    pub text: String,
    pub citations: Vec<String>,
    /// Word overlap with each cited source (unknown ids absent).
    pub support: BTreeMap<String, f64>,
    pub supported: bool,
    /// For each cited source, the passage that best supports the sentence: where a reader
    /// finds it (`SRC0001#3`, "s. 40").
    pub passages: Vec<BoundPassage>,
}

/// A sentence's supporting passage, located.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoundPassage {
    pub source: String,
    pub passage: String,
    pub pages: Option<String>,
    pub heading: String,
}

/// The evaluation of one procedure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub score: f64,
    pub issues: Vec<String>,
    pub sentences: usize,
    pub cited_sentences: usize,
    pub unknown_citations: Vec<String>,
    pub sections_with_evidence: usize,
    pub sections_total: usize,
    pub report: Vec<SentenceReport>,
    /// The points behind `score`, part by part.
    pub parts: ScoreParts,
    /// The claim checks of every sentence against its cited passages (`crate::verify`):
    /// a blocking finding keeps the procedure from release whatever its score.
    pub verification: Option<crate::verify::Verification>,
}

/// The parts of the score, in points (their maxima in brackets), each already scaled by the
/// share of the outline's evidence sections that carry cited content; they add up to the score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoreParts {
    /// Share of sentences with a citation (3).
    pub citations: f64,
    /// Share of the outline's evidence sections with cited content (2).
    pub sections: f64,
    /// Share of sentences lexically supported by a cited source (2).
    pub support: f64,
    /// Citations that resolve to retrieved sources (2; each unknown id costs 1).
    pub resolution: f64,
    /// Mean tier weight of the cited sources (1).
    pub tiers: f64,
}

impl ScoreParts {
    /// The parts in words, for the procedure's header.
    pub fn describe(&self) -> String {
        format!(
            "citationer {:.1}/3, afsnit med evidens {:.1}/2, støtte i kilderne {:.1}/2, citationer der findes {:.1}/2, evidensniveau {:.1}/1; hvert tomt afsnit koster sin andel af alle dele",
            self.citations, self.sections, self.support, self.resolution, self.tiers
        )
    }
}

impl Evaluation {
    /// Blocking findings of the claim checks (0 when not verified).
    pub fn blocking(&self) -> usize {
        self.verification.as_ref().map_or(0, |v| v.blocking)
    }
}

/// The embedded lexicon, parsed once.
pub fn lexicon() -> std::sync::Arc<crate::verify::Lexicon> {
    crate::verify::lexicon::shared()
}

/// [`evaluate`], then the claim checks of every sentence against the passages of the sources it
/// cites; each blocking finding becomes an issue the next revision is given, first.
pub fn evaluate_and_verify(markdown: &str, sources: &[EvidenceSource]) -> Evaluation {
    use crate::verify::{verify, CitedText, Evidence, Severity};
    let mut eval = evaluate(markdown, sources);
    let passages: Vec<CitedText> = sources
        .iter()
        .flat_map(|s| {
            s.passages.iter().map(|p| CitedText {
                source_id: s.id.clone(),
                page: p.page_start,
                text: p.text.clone(),
            })
        })
        .collect();
    let v = verify(
        markdown,
        &Evidence {
            passages: &passages,
        },
        &lexicon(),
    );
    let mut blocking: Vec<String> = v
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Blocking)
        .map(|f| {
            format!(
                "BLOCKING ({}) under \"{}\": {} — in: \"{}\"{}",
                f.kind.name(),
                f.section,
                f.what,
                f.sentence.chars().take(160).collect::<String>(),
                f.aligned
                    .as_ref()
                    .map(|a| format!(
                        " — cited passage {}{}: \"{}\"",
                        a.source_id,
                        a.page.map(|p| format!(", s. {p}")).unwrap_or_default(),
                        a.sentence.chars().take(200).collect::<String>()
                    ))
                    .unwrap_or_default()
            )
        })
        .collect();
    blocking.append(&mut eval.issues);
    eval.issues = blocking;
    eval.verification = Some(v);
    eval
}

/// Splits a line into its text and its `[S:...]` citations.
fn citations(line: &str) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut ids = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("[S:") {
        text.push_str(&rest[..start]);
        match rest[start..].find(']') {
            Some(end) => {
                ids.push(rest[start + 3..start + end].trim().to_string());
                rest = &rest[start + end + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    text.push_str(rest);
    (text.trim().to_string(), ids)
}

fn strip_marker(line: &str) -> &str {
    let l = line.trim();
    let l = l
        .strip_prefix("- [ ] ")
        .or_else(|| l.strip_prefix("- "))
        .unwrap_or(l);
    match l.split_once(". ") {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => l,
    }
}

/// Scores `markdown` against the sources it was written from.
pub fn evaluate(markdown: &str, sources: &[EvidenceSource]) -> Evaluation {
    let by_id: BTreeMap<&str, &EvidenceSource> =
        sources.iter().map(|s| (s.id.as_str(), s)).collect();
    let source_words: BTreeMap<&str, Vec<String>> = sources
        .iter()
        .map(|s| (s.id.as_str(), words(&s.text)))
        .collect();
    let mut section: Option<String> = None;
    let mut report = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for line in markdown.lines() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix("## ") {
            section = Some(h.trim().to_string());
            continue;
        }
        let Some(sec) = &section else { continue };
        if sec == REFERENCES
            || t.is_empty()
            || t.starts_with('>')
            || t.starts_with('#')
            || (t.starts_with('_') && t.ends_with('_'))
        {
            continue;
        }
        let (text, ids) = citations(strip_marker(t));
        let sw = words(&text);
        let mut support = BTreeMap::new();
        for id in &ids {
            match source_words.get(id.as_str()) {
                Some(src) => {
                    let shared = sw.iter().filter(|w| src.contains(w)).count();
                    let v = if sw.is_empty() {
                        0.0
                    } else {
                        shared as f64 / sw.len() as f64
                    };
                    support.insert(id.clone(), (v * 100.0).round() / 100.0);
                }
                None => {
                    if !unknown.contains(id) {
                        unknown.push(id.clone());
                    }
                }
            }
        }
        let supported = support.values().any(|v| *v >= SUPPORT_THRESHOLD);
        let passages = ids
            .iter()
            .filter_map(|id| sources.iter().find(|s| &s.id == id))
            .filter_map(|src| {
                crate::evidence::best_passage(&sw, src).map(|p| BoundPassage {
                    source: src.id.clone(),
                    passage: p.id.clone(),
                    pages: p.pages_label(),
                    heading: p.heading.clone(),
                })
            })
            .collect();
        report.push(SentenceReport {
            section: sec.clone(),
            text,
            citations: ids,
            support,
            supported,
            passages,
        });
    }
    let evidence: Vec<&str> = evidence_sections().map(|s| s.heading).collect();
    let with_evidence = evidence
        .iter()
        .filter(|h| {
            report
                .iter()
                .any(|r| r.section == **h && !r.citations.is_empty())
        })
        .count();
    let n = report.len();
    let cited = report.iter().filter(|r| !r.citations.is_empty()).count();
    let supported = report.iter().filter(|r| r.supported).count();
    let cited_priorities: Vec<i32> = report
        .iter()
        .flat_map(|r| r.citations.iter())
        .filter_map(|id| by_id.get(id.as_str()).map(|s| s.tier_priority))
        .collect();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let tier_weight = if cited_priorities.is_empty() {
        0.0
    } else {
        cited_priorities.iter().map(|p| *p as f64).sum::<f64>()
            / cited_priorities.len() as f64
            / 1000.0
    };
    // Every part is earned section by section: an outline section without cited evidence takes
    // its share (1/12) of every part, so a procedure with 10 of 12 sections empty scores about
    // a sixth of a full one, not 8.3 of 10.
    let filled = ratio(with_evidence, evidence.len());
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let raw = ScoreParts {
        citations: 3.0 * ratio(cited, n) * filled,
        sections: 2.0 * filled,
        support: 2.0 * ratio(supported, n) * filled,
        resolution: 2.0 * (1.0 - unknown.len() as f64).max(0.0) * filled,
        tiers: tier_weight.min(1.0) * filled,
    };
    let score = raw.citations + raw.sections + raw.support + raw.resolution + raw.tiers;
    let parts = ScoreParts {
        citations: round(raw.citations),
        sections: round(raw.sections),
        support: round(raw.support),
        resolution: round(raw.resolution),
        tiers: round(raw.tiers),
    };
    let score = (score.clamp(0.0, 10.0) * 10.0).round() / 10.0;

    let mut issues = Vec::new();
    for h in &evidence {
        if !report
            .iter()
            .any(|r| r.section == *h && !r.citations.is_empty())
        {
            issues.push(format!("section \"{h}\" has no cited evidence"));
        }
    }
    for id in &unknown {
        issues.push(format!(
            "citation {id} does not resolve to a retrieved source (hallucinated)"
        ));
    }
    for r in &report {
        if r.citations.is_empty() {
            issues.push(format!("uncited sentence in \"{}\": {}", r.section, r.text));
        } else if !r.supported {
            issues.push(format!(
                "weakly supported sentence in \"{}\": {}",
                r.section, r.text
            ));
        }
    }
    Evaluation {
        score,
        issues,
        sentences: n,
        cited_sentences: cited,
        unknown_citations: unknown,
        sections_with_evidence: with_evidence,
        sections_total: evidence.len(),
        report,
        parts,
        verification: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(id: &str, text: &str) -> EvidenceSource {
        EvidenceSource::whole(id, "t", "danish_guideline", 1000, text)
    }

    #[test]
    fn hallucinated_uncited_and_unsupported_sentences_cost_points() {
        let sources = [src(
            "SRC0001",
            "Give adrenaline intramuscularly into the thigh.",
        )];
        let good =
            "# P\n\n## Key Points\n\nGive adrenaline intramuscularly into the thigh. [S:SRC0001]\n";
        let bad = "# P\n\n## Key Points\n\nGive adrenaline intramuscularly into the thigh. [S:SRC0042]\nWear a hat.\nCats purr loudly at night. [S:SRC0001]\n";
        let g = evaluate(good, &sources);
        let b = evaluate(bad, &sources);
        // One section of the outline filled: every part counts a twelfth (the same margin as
        // 3 points of a full procedure).
        let filled = g.sections_with_evidence as f64 / g.sections_total as f64;
        assert!(
            g.score > b.score + 3.0 * filled,
            "{} vs {}",
            g.score,
            b.score
        );
        assert_eq!(b.unknown_citations, ["SRC0042"]);
        assert!(b.issues.iter().any(|i| i.contains("hallucinated")));
        assert!(b.issues.iter().any(|i| i.contains("uncited sentence")));
        assert!(b.issues.iter().any(|i| i.contains("weakly supported")));
        assert_eq!(g.report[0].support["SRC0001"], 1.0);
        assert_eq!(evaluate(good, &sources), g, "deterministic");
    }

    #[test]
    fn empty_sections_cost_in_proportion() {
        let sources = [src(
            "SRC0001",
            "Give adrenaline intramuscularly into the thigh.",
        )];
        let one = evaluate(
            "# P\n\n## Key Points\n\nGive adrenaline intramuscularly into the thigh. [S:SRC0001]\n",
            &sources,
        );
        let total = one.sections_total as f64;
        // One section of twelve: a twelfth of a full score, not 8 of 10.
        assert!(one.score <= 10.0 / total + 0.05, "{}", one.score);
        let p = one.parts;
        let sum = p.citations + p.sections + p.support + p.resolution + p.tiers;
        assert!((sum - one.score).abs() < 0.1, "{sum} vs {}", one.score);
    }
}
