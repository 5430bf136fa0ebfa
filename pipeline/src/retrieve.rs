//! Retrieval: which library documents, and which of their passages, a run is written from.
//!
//! 1. The request becomes a [`Concept`]: the procedure's synonym group anchors; population,
//!    action, setting and context only rank and filter.
//! 2. Candidates: passages whose heading or text carries an anchor term, and documents whose
//!    title does (the library's full-text index over analysed terms).
//! 3. Each candidate document is judged: is it *about* the procedure (its title names it, a
//!    section is devoted to it, or a good share of its passages discuss it), or does it only
//!    mention it in passing, or is it titled for another procedure? Is it about the requested
//!    population (or another one, used only when nothing about the requested one exists), and
//!    the requested action ("fjernelse af pleuradræn" is not "anlæggelse")?
//! 4. The kept documents are ranked (title, focus, BM25, qualifiers, tier), at most `limit`,
//!    the best of each tier first so the evidence gate sees every tier the library can offer.
//! 5. Per source, the passages the writer gets: those on the procedure and, per outline
//!    section, the best passage for that section's cue words — never a passage about another
//!    population when the request names one, and in a document that is not about the
//!    procedure only its passages that are.
//!
//! Every decision is explained in [`Retrieved::why`] and [`Retrieved::dropped`], which the
//! `retrieved` event and `GET /api/runs/{id}/sources` show.

use crate::analyze::analyzer;
use crate::concept::{word_match, Concept, Family, Group, Tokens};
use crate::evidence::{EvidencePassage, EvidenceSource};
use crate::outline;
use crate::ports::{Library, LibraryDocument, LibraryPassage, LibraryQuery, Match, PortResult};
use crate::tiers::TierRules;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Most passages of one source a run is given, in document order.
pub const PASSAGES_PER_SOURCE: usize = 8;
/// Candidate passages read from the index per run.
const CANDIDATE_PASSAGES: usize = 400;
/// Candidate documents by title.
const CANDIDATE_TITLES: usize = 64;
/// A document not titled for the procedure is about it when at least this share of its
/// passages carry the procedure's terms...
const FOCUS_SHARE: f64 = 0.34;
/// ...or, if it is titled for another procedure, this share.
const FOCUS_SHARE_OTHER: f64 = 0.5;
/// A document not titled for anything else is also about the procedure when at least two of its
/// passages, and this share of them, carry it (one passage is a mention in passing).
const FOCUS_SHARE_SEVERAL: f64 = 0.2;

/// The retrieval settings (from the daemon's configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalConfig {
    /// Word → extra terms that rank (never select): the department's own additions.
    pub synonyms: BTreeMap<String, Vec<String>>,
    /// Most sources retrieved.
    pub limit: usize,
    /// A source is kept only when its relevance is at least this share of the best source's.
    pub min_relative_score: f64,
    /// Title words that say nothing about the topic ("behandling"); they never anchor.
    pub generic_words: Vec<String>,
}

/// Why a source was used (or not): what matched and what decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceWhy {
    pub id: String,
    pub title: String,
    pub tier: String,
    /// The anchor groups found, and where ("title", "heading", "text").
    pub matched: Vec<String>,
    /// Share of its passages that carry the procedure.
    pub focus: f64,
    /// The population it is about, as far as its title and passages say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population: Option<String>,
    /// The decision, in words.
    pub reason: String,
    pub score: f64,
    /// The passages given to the writer, and why each.
    pub passages: Vec<PassageWhy>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassageWhy {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// "procedure" and/or the outline sections whose cue words it carries.
    #[serde(rename = "for")]
    pub for_: Vec<String>,
}

/// A candidate that was not used, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dropped {
    pub id: String,
    pub title: String,
    pub reason: String,
}

/// What was retrieved, and how it was decided.
#[derive(Debug, Clone)]
pub struct Retrieved {
    /// The concept in one line.
    pub query: String,
    pub concept: Concept,
    pub sources: Vec<EvidenceSource>,
    /// One per source, in the order of `sources`.
    pub why: Vec<SourceWhy>,
    pub dropped: Vec<Dropped>,
}

impl Retrieved {
    /// The explanation as JSON (the `retrieved` event, the run's result).
    pub fn explain(&self) -> serde_json::Value {
        serde_json::json!({
            "query": self.query,
            "concept": self.concept,
            "sources": self.why,
            "dropped": self.dropped,
        })
    }
}

/// A candidate document and what the candidates say about it.
struct Candidate {
    doc: LibraryDocument,
    title_match: Vec<String>,
    heading_match: bool,
    /// Passages (among the candidates) that carry the concept.
    concept_passages: usize,
    bm25: f64,
    adults: usize,
    children: usize,
    /// Whether its passages give an adult's or a child's age ("a 72-year-old man").
    adult_age: bool,
    child_age: bool,
    title_family: Option<Family>,
    other_title: Option<String>,
    title_actions: Vec<String>,
    rank_hits: usize,
    matched: Vec<String>,
}

fn tokens(s: &str) -> Tokens<'_> {
    Tokens::new(s)
}

/// Weight-based doses speak of children even where no word does.
fn weight_based(toks: &Tokens<'_>) -> bool {
    toks.seq.windows(2).any(|w| {
        matches!(w[0], "mg" | "µg" | "mikrogram" | "microgram" | "mcg" | "ml")
            && matches!(w[1], "kg")
    })
}

/// Who a text is about beyond the lexicon's population words: ages ("54-year-old", "29-årig":
/// 18 or more is an adult; months, weeks or days of age are a child's) and words for a woman,
/// a man, a girl or a boy. Case reports name their patient this way. Returns (adults,
/// children).
fn ages(toks: &Tokens<'_>) -> (bool, bool) {
    let toks = &toks.seq;
    let mut adult = false;
    let mut child = false;
    for (i, t) in toks.iter().enumerate() {
        match *t {
            "woman" | "women" | "kvind" | "mænd" => adult = true,
            "girl" | "boy" | "dreng" | "pig" => child = true,
            _ => {}
        }
        let Ok(n) = t.parse::<u32>() else {
            continue;
        };
        for u in toks.iter().skip(i + 1).take(2) {
            if u.starts_with("year") || u.starts_with("år") {
                if (18..120).contains(&n) {
                    adult = true;
                } else if n < 18 {
                    child = true;
                }
                break;
            }
            if u.starts_with("month") || u.starts_with("måned") || u.starts_with("week") {
                child = true;
                break;
            }
        }
    }
    (adult, child)
}

/// The population families a text names: the lexicon's words, ages, weight-based doses.
fn families(concept: &Concept, toks: &Tokens<'_>) -> (bool, bool) {
    let (a, c) = concept.families(toks);
    let (aa, ac) = ages(toks);
    (a || aa, c || ac)
}

/// Retrieves the sources for a run (see the module documentation).
pub async fn retrieve(
    library: &dyn Library,
    rules: &TierRules,
    config: &RetrievalConfig,
    title: &str,
    context: &str,
) -> PortResult<Retrieved> {
    let lexicon = crate::verify::lexicon::shared();
    let analyzer = analyzer();
    let mut concept = Concept::of(&lexicon, analyzer, title, context, &config.generic_words);
    // The department's configured synonyms rank, never select.
    for w in crate::analyze::raw_words(&format!("{title} {context}")) {
        if let Some(extra) = config.synonyms.get(&w) {
            for e in extra {
                concept.rank.push(Group {
                    name: e.clone(),
                    terms: vec![e.clone()],
                    matcher: word_match(analyzer, &e.to_lowercase(), false, false),
                });
            }
        }
    }
    let query = concept.query();
    let hits = library
        .search(LibraryQuery {
            matching: query.clone(),
            limit: CANDIDATE_PASSAGES,
        })
        .await?;
    let titled = library
        .titles(LibraryQuery {
            matching: query,
            limit: CANDIDATE_TITLES,
        })
        .await?;

    // 3. Judge each candidate document.
    let mut cands: Vec<Candidate> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut slot = |doc: &LibraryDocument, cands: &mut Vec<Candidate>| -> usize {
        if let Some(&i) = index.get(&doc.id) {
            return i;
        }
        let t = tokens(&doc.title_terms);
        let (a, c) = families(&concept, &t);
        let title_family = match (a, c) {
            (true, false) => Some(Family::Adults),
            (false, true) => Some(Family::Children),
            _ => None,
        };
        let title_match: Vec<String> = concept
            .anchor_matches(&t)
            .into_iter()
            .map(str::to_string)
            .collect();
        let title_ok = !title_match.is_empty() && title_match.len() >= concept.required;
        cands.push(Candidate {
            other_title: if title_ok {
                None
            } else {
                concept.other_procedure(&t).map(str::to_string)
            },
            title_actions: concept
                .actions_in(&t)
                .into_iter()
                .map(str::to_string)
                .collect(),
            matched: if title_ok {
                title_match.iter().map(|g| format!("{g} (title)")).collect()
            } else {
                Vec::new()
            },
            title_match: if title_ok { title_match } else { Vec::new() },
            doc: doc.clone(),
            heading_match: false,
            concept_passages: 0,
            bm25: 0.0,
            adults: 0,
            children: 0,
            adult_age: false,
            child_age: false,
            title_family,
            rank_hits: 0,
        });
        index.insert(doc.id.clone(), cands.len() - 1);
        cands.len() - 1
    };
    for d in &titled {
        slot(d, &mut cands);
    }
    let mut concept_hits: HashMap<String, Vec<LibraryPassage>> = HashMap::new();
    for h in &hits {
        let i = slot(&h.document, &mut cands);
        let c = &mut cands[i];
        let head = tokens(&h.passage.heading_terms);
        let text = tokens(&h.passage.text_terms);
        let (adult_age, child_age) = ages(&text);
        c.adult_age |= adult_age;
        c.child_age |= child_age;
        let in_head = concept.matches(&head);
        let in_text = concept.matches(&text);
        if !(in_head || in_text) {
            continue;
        }
        c.bm25 = c.bm25.max(h.score);
        c.concept_passages += 1;
        if in_head && !c.heading_match {
            c.heading_match = true;
            for g in concept.anchor_matches(&head) {
                c.matched
                    .push(format!("{g} (heading \"{}\")", h.passage.heading));
            }
        }
        if in_text && !c.matched.iter().any(|m| m.ends_with("(text)")) {
            for g in concept.anchor_matches(&text) {
                c.matched.push(format!("{g} (text)"));
            }
        }
        let (a, ch) = families(&concept, &text);
        c.adults += usize::from(a);
        c.children += usize::from(ch || weight_based(&text));
        c.rank_hits += concept
            .rank
            .iter()
            .filter(|g| g.matcher.matches(&text))
            .count();
        concept_hits
            .entry(h.document.id.clone())
            .or_default()
            .push(h.passage.clone());
    }

    let want_family = concept.population.as_ref().map(|p| p.0);
    let want_action = concept.action.as_ref().map(|a| a.name.clone());
    let best_bm25 = cands.iter().map(|c| c.bm25).fold(0.0_f64, f64::max);
    struct Judged {
        cand: usize,
        score: f64,
        focus: f64,
        family: Option<Family>,
        family_ok: bool,
        reason: String,
    }
    let mut judged: Vec<Judged> = Vec::new();
    let mut dropped: Vec<Dropped> = Vec::new();
    for (i, c) in cands.iter().enumerate() {
        let total = c.doc.passages.max(1) as f64;
        let share = (c.concept_passages as f64 / total).min(1.0);
        let titled_for = !c.title_match.is_empty();
        let focus = if titled_for { 1.0 } else { share };
        let drop = |reason: String, dropped: &mut Vec<Dropped>| {
            dropped.push(Dropped {
                id: c.doc.id.clone(),
                title: c.doc.title.clone(),
                reason,
            })
        };
        let about = if titled_for {
            Some("its title names the procedure".to_string())
        } else if let Some(other) = &c.other_title {
            (share >= FOCUS_SHARE_OTHER).then(|| {
                format!(
                    "titled for {other}, but {:.0} % of its passages are on the procedure",
                    share * 100.0
                )
            })
        } else if c.heading_match {
            Some("a section of it is on the procedure".to_string())
        } else {
            let several = c.concept_passages >= 2 && share >= FOCUS_SHARE_SEVERAL;
            (share >= FOCUS_SHARE || several).then(|| {
                format!(
                    "{:.0} % of its passages are on the procedure",
                    share * 100.0
                )
            })
        };
        let Some(about) = about else {
            let reason = match &c.other_title {
                Some(other) => format!(
                    "titled for another procedure ({other}); mentions this one in {} of {} passages",
                    c.concept_passages, c.doc.passages
                ),
                None if c.concept_passages == 0 => "no passage carries the procedure's terms".into(),
                None => format!(
                    "mentions the procedure in passing ({} of {} passages)",
                    c.concept_passages, c.doc.passages
                ),
            };
            drop(reason, &mut dropped);
            continue;
        };
        if let Some(want) = &want_action {
            if !c.title_actions.is_empty() && !c.title_actions.contains(want) {
                drop(
                    format!(
                        "its title is about {} of it, not {want}",
                        c.title_actions.join("/")
                    ),
                    &mut dropped,
                );
                continue;
            }
        }
        let family = c.title_family.or_else(|| {
            // Passages on the procedure that name one family, outnumbering the other three
            // to one (a guideline for adults may point to the children's one in a line).
            let n = c.concept_passages.max(1);
            let enough = |x: usize| x >= 2.max(n / 2);
            if enough(c.children) && c.children >= 3 * c.adults {
                Some(Family::Children)
            } else if enough(c.adults) && c.adults >= 3 * c.children {
                Some(Family::Adults)
            } else {
                // A case report names its patient once ("a 72-year-old man"): ages of one
                // family only, and no population word for the other, decide.
                match (c.adult_age, c.child_age) {
                    (true, false) if c.children == 0 => Some(Family::Adults),
                    (false, true) if c.adults == 0 => Some(Family::Children),
                    _ => None,
                }
            }
        });
        let family_ok = match (want_family, family) {
            (Some(w), Some(f)) => w == f,
            _ => true,
        };
        let tier_priority = rules.get(&c.doc.tier).map(|t| t.priority).unwrap_or(0) as f64;
        let score = (if titled_for { 2.0 } else { 0.0 })
            + if c.heading_match { 0.5 } else { 0.0 }
            + focus
            + if best_bm25 > 0.0 {
                c.bm25 / best_bm25
            } else {
                0.0
            }
            + match (want_family, family) {
                (Some(w), Some(f)) if w == f => 0.5,
                _ => 0.0,
            }
            + 0.1 * (c.rank_hits.min(10) as f64 / 10.0)
            + tier_priority / 10_000.0;
        judged.push(Judged {
            cand: i,
            score,
            focus,
            family,
            family_ok,
            reason: about,
        });
    }
    // A source about another population is used only when none about the requested one is.
    if judged.iter().any(|j| j.family_ok) {
        judged.retain(|j| {
            if !j.family_ok {
                let c = &cands[j.cand];
                dropped.push(Dropped {
                    id: c.doc.id.clone(),
                    title: c.doc.title.clone(),
                    reason: format!(
                        "about {} (the request is about {}; sources about them exist)",
                        j.family.map(Family::label).unwrap_or("another population"),
                        want_family.map(Family::label).unwrap_or("?")
                    ),
                });
            }
            j.family_ok
        });
    } else if let Some(w) = want_family {
        for j in judged.iter_mut().filter(|j| !j.family_ok) {
            j.reason.push_str(&format!(
                "; about {}, used because no source about {} was found",
                j.family.map(Family::label).unwrap_or("another population"),
                w.label()
            ));
        }
    }
    judged.sort_by(|a, b| b.score.total_cmp(&a.score));
    let best = judged.first().map(|j| j.score).unwrap_or(0.0);
    let floor = best * config.min_relative_score;
    // 4. The best of each tier first, then by score, at most `limit`.
    let mut chosen: Vec<usize> = Vec::new();
    let mut tiers_seen: Vec<&str> = Vec::new();
    for (k, j) in judged.iter().enumerate() {
        let tier = cands[j.cand].doc.tier.as_str();
        if j.score >= floor && !tiers_seen.contains(&tier) && chosen.len() < config.limit {
            tiers_seen.push(tier);
            chosen.push(k);
        }
    }
    for (k, j) in judged.iter().enumerate() {
        if chosen.len() >= config.limit {
            break;
        }
        if j.score >= floor && !chosen.contains(&k) {
            chosen.push(k);
        }
    }
    chosen.sort();
    for (k, j) in judged.iter().enumerate() {
        if !chosen.contains(&k) {
            let c = &cands[j.cand];
            dropped.push(Dropped {
                id: c.doc.id.clone(),
                title: c.doc.title.clone(),
                reason: if j.score < floor {
                    format!("relevance {:.2} below the floor {:.2}", j.score, floor)
                } else {
                    format!("beyond the first {} sources", config.limit)
                },
            });
        }
    }

    // 5. The passages of each chosen source.
    let ids: Vec<String> = chosen
        .iter()
        .map(|&k| cands[judged[k].cand].doc.id.clone())
        .collect();
    let all = library.passages(ids).await?;
    let mut by_doc: HashMap<String, Vec<LibraryPassage>> = HashMap::new();
    for (d, p) in all {
        by_doc.entry(d).or_default().push(p);
    }
    let sections = section_matchers();
    let mut sources = Vec::new();
    let mut why = Vec::new();
    for &k in &chosen {
        let j = &judged[k];
        let c = &cands[j.cand];
        let passages = by_doc.remove(&c.doc.id).unwrap_or_default();
        let (picked, pwhy) =
            pick_passages(&concept, &sections, passages, !c.title_match.is_empty());
        why.push(SourceWhy {
            id: c.doc.id.clone(),
            title: c.doc.title.clone(),
            tier: c.doc.tier.clone(),
            matched: c.matched.clone(),
            focus: (j.focus * 100.0).round() / 100.0,
            population: j.family.map(|f| f.label().to_string()),
            reason: j.reason.clone(),
            score: (j.score * 100.0).round() / 100.0,
            passages: pwhy,
        });
        sources.push(to_source(rules, &c.doc, picked));
    }
    dropped.truncate(50);
    Ok(Retrieved {
        query: concept.describe(),
        concept,
        sources,
        why,
        dropped,
    })
}

/// The cue words of each evidence section as matchers.
fn section_matchers() -> Vec<(&'static str, Match)> {
    let a = analyzer();
    outline::evidence_sections()
        .map(|s| {
            (
                s.heading,
                Match::Any(
                    s.cues
                        .iter()
                        .filter_map(|c| crate::concept::term_match(a, &format!("{c}*")))
                        .collect(),
                ),
            )
        })
        .collect()
}

/// The passages of one source the writer gets: on the procedure first, then the best for each
/// outline section, then the rest by relevance; never one about the other population when the
/// request names one; in a source not titled for the procedure, only passages on it.
fn pick_passages(
    concept: &Concept,
    sections: &[(&'static str, Match)],
    passages: Vec<LibraryPassage>,
    titled_for: bool,
) -> (Vec<LibraryPassage>, Vec<PassageWhy>) {
    let want = concept.population.as_ref().map(|p| p.0);
    struct Scored {
        on_concept: bool,
        sections: Vec<&'static str>,
        rank: usize,
    }
    let mut scored: Vec<(LibraryPassage, Scored)> = Vec::new();
    for p in passages {
        let head = tokens(&p.heading_terms);
        let text = tokens(&p.text_terms);
        let on_concept = concept.matches(&head) || concept.matches(&text);
        if !titled_for && !on_concept {
            continue;
        }
        if let Some(w) = want {
            // The heading says whom a section is about; else the text does.
            let (a, c) = match families(concept, &head) {
                (false, false) => families(concept, &text),
                named => named,
            };
            let c = c || (!a && weight_based(&text));
            let other = match w {
                Family::Adults => c && !a,
                Family::Children => a && !c,
            };
            if other {
                continue;
            }
        }
        let secs: Vec<&'static str> = sections
            .iter()
            .filter(|(_, m)| m.matches(&text) || m.matches(&head))
            .map(|(h, _)| *h)
            .collect();
        let rank = concept
            .rank
            .iter()
            .filter(|g| g.matcher.matches(&text))
            .count();
        scored.push((
            p,
            Scored {
                on_concept,
                sections: secs,
                rank,
            },
        ));
    }
    let mut chosen: Vec<usize> = Vec::new();
    let mut reasons: HashMap<usize, Vec<String>> = HashMap::new();
    // The passages on the procedure (at most half of the budget).
    for (i, (_, s)) in scored.iter().enumerate() {
        if s.on_concept && chosen.len() < PASSAGES_PER_SOURCE / 2 {
            chosen.push(i);
            reasons.entry(i).or_default().push("procedure".into());
        }
    }
    // One per outline section.
    for (heading, _) in sections {
        if chosen.len() >= PASSAGES_PER_SOURCE {
            break;
        }
        if chosen
            .iter()
            .any(|&i| scored[i].1.sections.contains(heading))
        {
            if let Some(&i) = chosen
                .iter()
                .find(|&&i| scored[i].1.sections.contains(heading))
            {
                reasons.entry(i).or_default().push((*heading).to_string());
            }
            continue;
        }
        let best = scored
            .iter()
            .enumerate()
            .filter(|(i, (_, s))| !chosen.contains(i) && s.sections.contains(heading))
            .max_by_key(|(_, (_, s))| (s.on_concept, s.rank, std::cmp::Reverse(s.sections.len())));
        if let Some((i, _)) = best {
            chosen.push(i);
            reasons.entry(i).or_default().push((*heading).to_string());
        }
    }
    // The rest, by relevance, in document order among equals.
    let mut rest: Vec<usize> = (0..scored.len()).filter(|i| !chosen.contains(i)).collect();
    rest.sort_by_key(|&i| {
        let s = &scored[i].1;
        std::cmp::Reverse((s.on_concept, s.rank, s.sections.len()))
    });
    for i in rest {
        if chosen.len() >= PASSAGES_PER_SOURCE {
            break;
        }
        chosen.push(i);
        reasons.entry(i).or_default().push("relevance".into());
    }
    chosen.sort_by_key(|&i| scored[i].0.ord);
    let mut out = Vec::new();
    let mut whys = Vec::new();
    let mut slots: Vec<Option<LibraryPassage>> = scored.into_iter().map(|(p, _)| Some(p)).collect();
    for i in chosen {
        if let Some(p) = slots[i].take() {
            whys.push(PassageWhy {
                id: p.id.clone(),
                page: p.page_start,
                for_: reasons.remove(&i).unwrap_or_default(),
            });
            out.push(p);
        }
    }
    (out, whys)
}

fn to_source(
    rules: &TierRules,
    d: &LibraryDocument,
    passages: Vec<LibraryPassage>,
) -> EvidenceSource {
    let passages: Vec<EvidencePassage> = passages
        .into_iter()
        .map(|p| EvidencePassage {
            id: p.id,
            heading: p.heading,
            page_start: p.page_start,
            page_end: p.page_end,
            text: p.text,
        })
        .collect();
    EvidenceSource {
        tier_priority: rules.get(&d.tier).map(|t| t.priority).unwrap_or(0),
        text: passages
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n"),
        id: d.id.clone(),
        title: d.title.clone(),
        url: d.url.clone(),
        year: d.year,
        tier: d.tier.clone(),
        demo: d.demo,
        sha256: d.sha256.clone(),
        original_sha256: d.original_sha256.clone(),
        passages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(text: &str) -> (bool, bool) {
        let t = analyzer().index_text(text);
        ages(&Tokens::new(&t))
    }

    #[test]
    fn ages_and_words_for_a_person_say_adult_or_child() {
        assert_eq!(
            who("A 54-year-old woman developed hypotension"),
            (true, false)
        );
        assert_eq!(who("hos en 29-årig kvinde"), (true, false));
        assert_eq!(who("En 3 måneder gammel pige"), (false, true));
        assert_eq!(who("an 8-year-old boy"), (false, true));
        assert_eq!(who("Give 0,5 mg every 5 minutes"), (false, false));
    }
}
