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

/// A study's result or a conclusion about evidence ("The authors conclude…", "The certainty of
/// evidence was moderate…", "In this cohort…"): background for a reader, never an instruction, so
/// never a step, a key point or a checklist item. The cue words are the lexicon's `study` list.
fn study_result(text: &str) -> bool {
    let lex = crate::evaluate::lexicon();
    let toks = crate::verify::text::tokenize(text);
    let words: Vec<String> = toks.iter().map(crate::verify::text::Tok::key).collect();
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    lex.has_cue("study", &refs)
}

/// Sections a study result must not fill.
fn instructive(heading: &str) -> bool {
    heading == PROCEDURE || heading == "Key Points"
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
            let study = study_result(&text);
            let best = sections
                .iter()
                .enumerate()
                .filter(|(_, s)| !(study && instructive(s.heading)))
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
    // Sentences that fit an instructive section but found it full: the checklist's items, so
    // the checklist adds to the procedure instead of copying it.
    let mut overflow: Vec<&Candidate> = Vec::new();
    for c in &candidates {
        if taken
            .iter()
            .any(|t| overlap(&c.words, &t.words) >= DUPLICATE_OVERLAP)
        {
            continue;
        }
        if chosen[c.section].len() >= PER_SECTION {
            let heading = sections[c.section].heading;
            if (instructive(heading) || heading == "Monitorering") && overflow.len() < PER_SECTION {
                overflow.push(c);
                taken.push(c);
            }
            continue;
        }
        chosen[c.section].push(c);
        taken.push(c);
    }
    // Steps in their source's order (by source, then position in it): the best-scoring step
    // first would put "then…" before what it follows.
    for (i, section) in sections.iter().enumerate() {
        if section.heading == PROCEDURE {
            chosen[i].sort_by(|a, b| {
                a.source_order
                    .cmp(&b.source_order)
                    .then(a.index.cmp(&b.index))
            });
        }
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
    // The checklist: instructions the sections above had no room for, to tick off, with their
    // source; never a copy of a sentence above.
    md.push_str(&format!("## {CHECKLIST}\n\n"));
    let checks = &overflow;
    if checks.is_empty() {
        md.push_str("_Ingen trin at tjekke ud over trinene i Procedure-afsnittet._\n\n");
    }
    for c in checks {
        md.push_str(&format!("- [ ] {} [S:{}]\n", c.text, c.source_id));
        if !cited.contains(&c.source_id.as_str()) {
            cited.push(&c.source_id);
        }
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

    fn section<'a>(md: &'a str, heading: &str) -> &'a str {
        let start = md
            .find(&format!("## {heading}\n"))
            .map(|i| i + heading.len() + 4)
            .unwrap_or(md.len());
        let rest = &md[start..];
        &rest[..rest.find("\n## ").unwrap_or(rest.len())]
    }

    #[test]
    fn study_results_are_not_steps_steps_keep_their_order_and_the_checklist_copies_nothing() {
        let sources = vec![
            src("SRC0001", 1000, "Give 0.5 mg intramuscular adrenaline into the thigh. Then the dose is repeated after 5 minutes if there is no improvement. The patient should lie flat with raised legs. Oxygen should be given at a high flow. Pulse and blood pressure are monitored."),
            src("SRC0002", 700, "The authors conclude that adrenaline should be given without delay. The certainty of evidence was moderate for the recommended dose."),
        ];
        let md = write("Anafylaksi", &sources, None);
        for heading in [PROCEDURE, "Key Points", CHECKLIST] {
            let body = section(&md, heading);
            assert!(
                !body.contains("authors conclude") && !body.contains("certainty of evidence"),
                "{heading}: {body}"
            );
        }
        let steps = section(&md, PROCEDURE);
        if let (Some(a), Some(b)) = (steps.find("Give 0.5 mg"), steps.find("Then the dose")) {
            assert!(a < b, "{steps}");
        }
        let checklist = section(&md, CHECKLIST);
        for item in checklist.lines().filter_map(|l| l.strip_prefix("- [ ] ")) {
            let copies = md.lines().filter(|l| l.contains(item)).count();
            assert_eq!(copies, 1, "checklist item copied: {item}\n{md}");
        }
    }

    /// The offline writer's procedures on the bundled demo library pass the claim checks it is
    /// judged by: no blocking finding for either demo topic.
    #[test]
    fn the_offline_writer_passes_its_own_checks_on_the_demo_library() {
        use crate::evidence::EvidencePassage;
        let rules = crate::tiers::TierRules::embedded();
        let docs = crate::library::demo_documents(&rules).expect("demo library");
        for (title, keys) in [
            ("Anafylaksi behandling", ["anafylaks", "anaphyla"]),
            ("Pleuradræn anlæggelse", ["pleura", "pleural"]),
        ] {
            let sources: Vec<EvidenceSource> = docs
                .iter()
                .filter(|d| {
                    let t = d.title.to_lowercase();
                    keys.iter().any(|k| t.contains(k))
                })
                .enumerate()
                .map(|(i, d)| {
                    let id = format!("SRC{:04}", i + 1);
                    EvidenceSource {
                        tier_priority: rules.get(&d.tier).map_or(100, |t| t.priority),
                        passages: d
                            .passages
                            .iter()
                            .map(|p| EvidencePassage {
                                id: format!("{id}#{}", p.ord),
                                heading: p.heading.clone(),
                                page_start: p.page_start,
                                page_end: p.page_end,
                                text: p.text.clone(),
                            })
                            .collect(),
                        ..EvidenceSource::whole(&id, &d.title, &d.tier, 0, &d.text)
                    }
                })
                .collect();
            assert!(sources.len() >= 3, "{title}: {}", sources.len());
            let md = write(title, &sources, None);
            let eval = crate::evaluate::evaluate_and_verify(&md, &sources);
            let v = eval.verification.expect("verified");
            let blocking: Vec<String> = v
                .findings
                .iter()
                .filter(|f| f.severity == crate::verify::Severity::Blocking)
                .map(|f| {
                    format!(
                        "{} under {}: {} — {}",
                        f.kind.name(),
                        f.section,
                        f.what,
                        f.sentence
                    )
                })
                .collect();
            assert!(
                blocking.is_empty(),
                "{title}:\n{}\n\n{md}",
                blocking.join("\n")
            );
            for heading in [PROCEDURE, "Key Points", CHECKLIST] {
                for line in section(&md, heading).lines() {
                    assert!(!study_result(line), "{title}, {heading}: {line}");
                }
            }
        }
    }
}
