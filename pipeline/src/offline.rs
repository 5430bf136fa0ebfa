//! The built-in offline writer: composes every section of the outline from the best-matching
//! sentences of the retrieved sources, each sentence carrying its `[S:SRC....]` citation, and a
//! reference list. Deterministic: the same sources give the same procedure, byte for byte.
//! [`OfflineWriter`] is its [`Writer`](crate::writer::Writer).

use crate::evidence::{header, references_with_pages, words, AckNotice, EvidenceSource};
use crate::llm::{LlmError, Spent};
use crate::ports::RunPorts;
use crate::writer::{Brief, Composed, Drafted, Task, Writer};
use futures_util::future::LocalBoxFuture;

/// The offline writer's name in manifests.
pub const NAME: &str = "offline-v1";
use crate::outline::{evidence_sections, CHECKLIST, OUTLINE, PROCEDURE, REFERENCES};

/// Sentences shown per section at most.
const PER_SECTION: usize = 3;
/// Two sentences sharing this share of their words say the same thing; the second is dropped.
const DUPLICATE_OVERLAP: f64 = 0.8;

fn overlap(a: &[String], b: &[String]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    let shared = a.iter().filter(|w| b.contains(w)).count();
    shared as f64 / a.len() as f64
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

/// Writes the procedure as Markdown.
pub fn write(procedure: &str, sources: &[EvidenceSource], ack: Option<&AckNotice>) -> String {
    let sections: Vec<_> = evidence_sections().collect();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (source_order, src) in sources.iter().enumerate() {
        let from_passages = src.passages.iter().flat_map(|p| p.sentences());
        for (index, text) in from_passages.enumerate() {
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
    md.push_str(&references_with_pages(sources, &cited, &md.clone()));
    debug_assert_eq!(OUTLINE.last().map(|s| s.heading), Some(REFERENCES));
    md
}

/// The built-in deterministic writer. A revision cannot differ from the draft (it does not
/// read the issues), so with it the quality loop stops at the first plateau check.
#[derive(Debug, Default, Clone, Copy)]
pub struct OfflineWriter;

impl Writer for OfflineWriter {
    fn name(&self) -> String {
        NAME.to_string()
    }

    fn compose(&self, _: &Brief<'_>, task: Task<'_>, iteration: u32) -> Composed {
        Composed {
            stage: task.stage(),
            iteration,
            system: String::new(),
            user: String::new(),
        }
    }

    fn plan(&self, _: &Composed, _: i64) -> Result<u32, i64> {
        Ok(0)
    }

    fn write<'a>(
        &'a self,
        ports: RunPorts<'a>,
        brief: Brief<'a>,
        _step: &'a Composed,
        _budget: Option<i64>,
    ) -> LocalBoxFuture<'a, Result<Spent<Drafted>, LlmError>> {
        Box::pin(async move {
            let value = if ports.is_cancelled() {
                Drafted::Cancelled
            } else {
                let (title, sources) = (brief.title.to_string(), brief.sources.to_vec());
                let ack = brief.ack.cloned();
                // Sentence matching over every source is CPU work: off the serving thread.
                let markdown =
                    crate::blocking::run(move || write(&title, &sources, ack.as_ref())).await;
                Drafted::Text {
                    markdown,
                    reused: false,
                    max_tokens: 0,
                    truncated: false,
                }
            };
            Ok(Spent {
                value,
                cost_pusd: 0,
                attempts: 0,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(id: &str, tier_priority: i32, text: &str) -> EvidenceSource {
        EvidenceSource {
            year: Some(2020),
            ..EvidenceSource::whole(id, &format!("Title {id}"), "x", tier_priority, text)
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
