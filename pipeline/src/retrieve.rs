//! Retrieval: which library documents, and which of their passages, a run is written from.
//!
//! 1. The request becomes a [`Concept`]: the procedure's synonym group anchors; population,
//!    action, setting and context only rank and filter.
//! 2. Candidates: every passage whose heading or text carries the procedure (enough anchor
//!    groups), unranked, and documents whose title does (the library's full-text index over
//!    analysed terms). Only the matching passages' source, order, stored [`features`] and
//!    which anchor groups matched in which field are read, never their text.
//! 3. Each candidate document is judged: is it *about* the procedure (its title names it, a
//!    section is devoted to it, or a good share of its passages or at least four discuss it), or does it only
//!    mention it in passing, or is it titled for another procedure? Is it about the requested
//!    population (or another one, used only when nothing about the requested one exists), and
//!    the requested action ("fjernelse af pleuradræn" is not "anlæggelse")?
//! 4. The kept documents are ranked (title, section, focus, how many passages discuss the
//!    procedure, population, rank terms, tier), at most `limit`,
//!    the best of each tier first so the evidence gate sees every tier the library can offer.
//! 5. Per source, the passages the writer gets: those on the procedure and, per outline
//!    section, the best passage for that section's cue words — never a passage about another
//!    population when the request names one, and in a document that is not about the
//!    procedure only its passages that are. They are picked from the document's outline
//!    (every passage's place and features); only the picked passages' text is read.
//!
//! Every decision is explained in [`Retrieved::why`] and [`Retrieved::dropped`], which the
//! `retrieved` event and `GET /api/runs/{id}/sources` show.

use crate::analyze::analyzer;
use crate::concept::{word_match, Concept, Family, Group, Tokens};
use crate::evidence::{EvidencePassage, EvidenceSource};
use crate::features::{self, Features};
use crate::ports::{
    Library, LibraryDocument, LibraryPassage, Match, MatchQuery, PassageOutline, PortResult,
};
use crate::tiers::TierRules;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Most passages of one source a run is given, in document order.
pub const PASSAGES_PER_SOURCE: usize = 8;
/// Most passages read from the index per query group: a procedure that more passages discuss
/// is judged on the first this many (in the order they were stored), and the run says so.
const MATCHED_PASSAGES: usize = 20_000;
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
/// ...or when this many of its passages carry it, whatever their share (a long guideline's
/// chapter on it).
const FOCUS_PASSAGES: usize = 4;

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
    /// More passages matched than retrieval reads ([`MATCHED_PASSAGES`] a query): the most
    /// recently stored were not judged.
    pub truncated: bool,
}

impl Retrieved {
    /// The explanation as JSON (the `retrieved` event, the run's result).
    pub fn explain(&self) -> serde_json::Value {
        serde_json::json!({
            "query": self.query,
            "concept": self.concept,
            "sources": self.why,
            "dropped": self.dropped,
            "truncated": self.truncated,
        })
    }
}

/// A candidate document and what its matching passages say about it.
struct Candidate {
    doc: LibraryDocument,
    title_match: Vec<String>,
    /// The anchor groups (bits) its title carries when it does not carry the procedure: what
    /// each of its passages is about without saying so ("Pronatio dolorosa – vejledning":
    /// its treatment section speaks of the manipulation, not of pronatio dolorosa again).
    title_groups: u32,
    /// The first passage whose heading carries the procedure.
    heading_match: Option<u32>,
    /// Its passages that carry the procedure, and whether each also carries a rank term.
    concept_passages: Vec<(u32, bool)>,
    /// The anchor groups (bits) its passages on the procedure carry in their text and in
    /// their headings.
    text_groups: u32,
    heading_groups: u32,
    adults: usize,
    children: usize,
    /// Whether its passages give an adult's or a child's age ("a 72-year-old man").
    adult_age: bool,
    child_age: bool,
    /// Whether any passage it matched (on the procedure or not) names the family by a
    /// lexicon word (children: or gives a weight-based dose).
    adult_words: bool,
    child_words: bool,
    /// Whether a passage it matched bounds the patients' age from below at an adult age.
    adult_bound: bool,
    title_family: Option<Family>,
    /// The families its title names (adults, children); a title naming both has no family.
    title_families: (bool, bool),
    /// The conditions its title names (the lexicon's `[conditions]`).
    title_conditions: Vec<String>,
    other_title: Option<String>,
    title_actions: Vec<String>,
    matched: Vec<String>,
}

/// Whether a title is about preterm newborns ("… in preterm infants", "… hos ekstremt for
/// tidligt fødte", "premature", "very low birth weight").
fn names_preterm(title: &str) -> bool {
    let t = title.to_lowercase();
    [
        "preterm",
        "pre-term",
        "prematur",
        "præmatur",
        "for tidligt født",
        "for tidlig født",
        "very low birth weight",
        "extremely low birth weight",
        "vlbw",
        "elbw",
    ]
    .iter()
    .any(|w| t.contains(w))
}

fn tokens(s: &str) -> Tokens<'_> {
    Tokens::new(s)
}

/// The population families a text names: the lexicon's words and ages.
fn families(concept: &Concept, toks: &Tokens<'_>) -> (bool, bool) {
    let (a, c) = concept.families(toks);
    let (aa, ac) = features::ages(toks);
    (a || aa, c || ac)
}

/// The outlines of these documents, their features completed (see [`complete_features`]).
async fn read_outlines(
    library: &dyn Library,
    ids: Vec<String>,
) -> PortResult<HashMap<String, Vec<PassageOutline>>> {
    let mut outlines = library.outlines(ids).await?;
    let stored_by = outlines.features.clone();
    let mut all: Vec<(&str, u32, &mut Option<u32>)> = outlines
        .documents
        .iter_mut()
        .flat_map(|(d, ps)| {
            let d: &str = d.as_str();
            ps.iter_mut().map(move |p| (d, p.ord, &mut p.features))
        })
        .collect();
    complete_features(library, &stored_by, &mut all).await?;
    Ok(outlines.documents.into_iter().collect())
}

/// Fills in the features of passages whose stored features are missing or were computed by
/// another lexicon or analysis than the one in force, from their terms (a slower path, taken
/// until the daemon has recomputed them).
async fn complete_features(
    library: &dyn Library,
    stored_by: &str,
    passages: &mut [(&str, u32, &mut Option<u32>)],
) -> PortResult<()> {
    let fresh = stored_by == features::current_fingerprint();
    let mut wanted: Vec<(String, Vec<u32>)> = Vec::new();
    for (doc, ord, f) in passages.iter_mut() {
        if fresh && f.is_some() {
            continue;
        }
        **f = None;
        match wanted.last_mut() {
            Some((d, ords)) if d == doc => ords.push(*ord),
            _ => wanted.push((doc.to_string(), vec![*ord])),
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let read: HashMap<(String, u32), u32> = library
        .passages_at(wanted, true)
        .await?
        .into_iter()
        .map(|(d, p)| {
            let f = Features::of(&p.heading_terms, &p.text_terms).0;
            ((d, p.ord), f)
        })
        .collect();
    for (doc, ord, f) in passages.iter_mut() {
        if f.is_none() {
            **f = Some(
                read.get(&(doc.to_string(), *ord))
                    .copied()
                    .unwrap_or_default(),
            );
        }
    }
    Ok(())
}

/// Passages read for an abbreviation's definitions.
const DEFINITION_PASSAGES: usize = 64;

/// What the library's documents say `short` stands for, when the long forms they give
/// mostly name one lexicon procedure or condition (see [`crate::abbrev`]); `None` when no
/// document defines it so, or two readings tie.
async fn library_definition(
    library: &dyn Library,
    lexicon: &crate::verify::Lexicon,
    short: &str,
    generic: &[String],
) -> PortResult<Option<crate::concept::Abbreviation>> {
    let analyzer = analyzer();
    let word = crate::analyze::raw_words(short).concat();
    let found = library
        .matches(MatchQuery {
            groups: vec![word_match(analyzer, &word, false, false)],
            rank: None,
            titles: None,
            limit: DEFINITION_PASSAGES,
        })
        .await?;
    let mut wanted: Vec<(String, Vec<u32>)> = Vec::new();
    for m in found.passages.iter().take(DEFINITION_PASSAGES) {
        let id = &found.documents[m.document].id;
        match wanted.last_mut() {
            Some((d, ords)) if d == id => ords.push(m.ord),
            _ => wanted.push((id.clone(), vec![m.ord])),
        }
    }
    if wanted.is_empty() {
        return Ok(None);
    }
    /// One definition: the document, the long form (lower case), the group it names.
    struct Reading {
        doc: String,
        long: String,
        group: Option<String>,
    }
    let mut readings: Vec<Reading> = Vec::new();
    for (doc, p) in library.passages_at(wanted, false).await? {
        for long in crate::abbrev::definitions(&p.text, short) {
            readings.push(Reading {
                group: crate::concept::group_named_by(lexicon, analyzer, &long, generic),
                long: long.to_lowercase(),
                doc: doc.clone(),
            });
        }
    }
    // Definitions per group they name, most first; a tie reads nothing.
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &readings {
        if let Some(g) = &r.group {
            *votes.entry(g.as_str()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, usize)> = votes.into_iter().collect();
    ranked.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let Some(&(group, definitions)) = ranked.first() else {
        return Ok(None);
    };
    if ranked.get(1).is_some_and(|(_, n)| *n == definitions) {
        return Ok(None);
    }
    let this = |r: &Reading| r.group.as_deref() == Some(group);
    let mut documents: Vec<&str> = readings
        .iter()
        .filter(|r| this(r))
        .map(|r| r.doc.as_str())
        .collect();
    documents.dedup();
    // The long form most of its definitions give, as first written on a tie.
    let mut longs: Vec<(&str, usize)> = Vec::new();
    for r in readings.iter().filter(|r| this(r)) {
        match longs.iter_mut().find(|(l, _)| *l == r.long) {
            Some((_, n)) => *n += 1,
            None => longs.push((&r.long, 1)),
        }
    }
    let long = longs
        .iter()
        .rev()
        .max_by_key(|(_, n)| *n)
        .map(|(l, _)| l.to_string())
        .unwrap_or_default();
    // Documents that define it only otherwise.
    let mut otherwise: Vec<(String, String)> = Vec::new();
    for r in &readings {
        let defines_this = readings.iter().any(|o| o.doc == r.doc && this(o));
        if !defines_this && !otherwise.iter().any(|(d, _)| *d == r.doc) {
            otherwise.push((r.doc.clone(), r.long.clone()));
        }
    }
    Ok(Some(crate::concept::Abbreviation {
        short: short.to_string(),
        long,
        group: group.to_string(),
        definitions,
        documents: documents.len(),
        otherwise,
    }))
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
    // 1. The title's abbreviations the lexicon does not know, read as the library defines them.
    let mut read_title = title.to_string();
    let mut defined = Vec::new();
    for short in crate::concept::unknown_abbreviations(&lexicon, title) {
        if let Some(a) =
            library_definition(library, &lexicon, &short, &config.generic_words).await?
        {
            read_title = crate::concept::replace_word(&read_title, &a.short, &a.long);
            defined.push(a);
        }
    }
    let mut concept = Concept::of(
        &lexicon,
        analyzer,
        &read_title,
        context,
        &config.generic_words,
    );
    for a in defined {
        concept.define(analyzer, a);
    }
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
    // 2. Candidates: every passage with the procedure (enough anchor groups in its heading or
    // in its text), and documents titled for it.
    let query = concept.query();
    // Passages on the procedure that also carry a rank term; when the request names a
    // condition, only the condition's terms rank (step 3 asks which sources ever name it).
    let rank_groups = if concept.indication.is_empty() {
        &concept.rank
    } else {
        &concept.indication
    };
    let rank = (!rank_groups.is_empty()).then(|| {
        Match::All(vec![
            query.clone(),
            Match::Any(rank_groups.iter().map(|g| g.matcher.clone()).collect()),
        ])
    });
    let mut found = library
        .matches(MatchQuery {
            groups: concept
                .anchor
                .iter()
                .take(16)
                .map(|g| g.matcher.clone())
                .collect(),
            rank,
            titles: Some((query, CANDIDATE_TITLES)),
            limit: MATCHED_PASSAGES,
        })
        .await?;
    {
        let docs: Vec<String> = found.documents.iter().map(|d| d.id.clone()).collect();
        let stored_by = found.features.clone();
        let mut all: Vec<(&str, u32, &mut Option<u32>)> = found
            .passages
            .iter_mut()
            .map(|m| (docs[m.document].as_str(), m.ord, &mut m.features))
            .collect();
        complete_features(library, &stored_by, &mut all).await?;
    }

    // 3. Judge each candidate document.
    let mut cands: Vec<Candidate> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut slot = |doc: &LibraryDocument, cands: &mut Vec<Candidate>| -> usize {
        if let Some(&i) = index.get(&doc.id) {
            return i;
        }
        let t = tokens(&doc.title_terms);
        let (mut a, mut c) = families(&concept, &t);
        // "… in patients over 65", "… in children under 12 years": an age bound in the title.
        match crate::concept::title_age_family(&doc.title) {
            Some(Family::Adults) => a = true,
            Some(Family::Children) => c = true,
            None => {}
        }
        let title_families = (a, c);
        let title_family = match (a, c) {
            (true, false) => Some(Family::Adults),
            (false, true) => Some(Family::Children),
            _ => None,
        };
        // The anchor groups its title carries, matched once: by name, and as bits (of the
        // first 16, as the index reports a passage's).
        let (title_match, title_bits) = concept.anchor.iter().enumerate().fold(
            (Vec::new(), 0u32),
            |(mut names, bits), (i, g)| {
                if !g.matcher.matches(&t) {
                    return (names, bits);
                }
                names.push(g.name.clone());
                (names, if i < 16 { bits | (1 << i) } else { bits })
            },
        );
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
            title_conditions: concept
                .conditions_in(&t)
                .into_iter()
                .map(str::to_string)
                .collect(),
            matched: if title_ok {
                title_match.iter().map(|g| format!("{g} (title)")).collect()
            } else {
                Vec::new()
            },
            title_match: if title_ok { title_match } else { Vec::new() },
            title_groups: if title_ok { 0 } else { title_bits },
            doc: doc.clone(),
            heading_match: None,
            concept_passages: Vec::new(),
            text_groups: 0,
            heading_groups: 0,
            adults: 0,
            children: 0,
            adult_age: false,
            child_age: false,
            adult_words: false,
            child_words: false,
            adult_bound: false,
            title_family,
            title_families,
        });
        index.insert(doc.id.clone(), cands.len() - 1);
        cands.len() - 1
    };
    for d in &found.titled {
        slot(d, &mut cands);
    }
    let doc_slots: Vec<usize> = found
        .documents
        .iter()
        .map(|d| slot(d, &mut cands))
        .collect();
    let required = concept.required.max(1) as u32;
    for m in &found.passages {
        let c = &mut cands[doc_slots[m.document]];
        let f = Features(m.features.unwrap_or_default());
        let (adult_age, child_age) = f.ages();
        c.adult_age |= adult_age;
        c.child_age |= child_age;
        let ((ha, hc), (ta, tc)) = (f.heading_families(), f.text_families());
        c.adult_words |= ha || ta;
        c.child_words |= hc || tc || f.weight_based();
        c.adult_bound |= f.adult_bound();
        // Enough anchor groups in its text, or in its heading (one field carries them). A
        // passage that carries what its document's title leaves out (the action of "Reduction
        // of pulled elbow" in a document titled for the pulled elbow) has the title's groups
        // too.
        let inherit = c.other_title.is_none()
            && c.title_groups.count_ones() as usize + 1 == concept.anchor.len().min(16);
        let title_groups = if inherit { c.title_groups } else { 0 };
        let own = m.in_text & !title_groups;
        let in_text = m.in_text.count_ones() >= required
            || (own != 0 && (m.in_text | title_groups).count_ones() >= required);
        let in_head = m.in_heading.count_ones() >= required;
        if !(in_text || in_head) {
            continue;
        }
        c.concept_passages.push((m.ord, m.ranked));
        if in_text {
            c.text_groups |= m.in_text;
        }
        if in_head {
            c.heading_groups |= m.in_heading;
        }
        if in_head && c.heading_match.is_none() {
            c.heading_match = Some(m.ord);
        }
        let (a, ch) = f.text_families();
        c.adults += usize::from(a);
        c.children += usize::from(ch || f.weight_based());
    }

    let want_family = concept.population.as_ref().map(|p| p.0);
    let bound_excludes = concept
        .population
        .as_ref()
        .is_none_or(|(_, g)| g.name != "unge");
    let want_action = concept.action.as_ref().map(|a| a.name.clone());
    // How strongly the document discusses the procedure, relative to the strongest: the
    // number of its passages on it (diminishing).
    let strength = |c: &Candidate| (1.0 + c.concept_passages.len() as f64).ln();
    let best_strength = cands.iter().map(strength).fold(0.0_f64, f64::max);
    struct Judged {
        cand: usize,
        score: f64,
        focus: f64,
        family: Option<Family>,
        family_ok: bool,
        /// Its title names a condition the request names.
        indicated: bool,
        /// Its title names conditions, none of them one the request names.
        other_indication: bool,
        /// One of its passages on the procedure names a condition the request names.
        names_indication: bool,
        /// It names children (title, a passage it matched, an age or a weight-based dose).
        names_children: bool,
        reason: String,
    }
    let want_conditions: Vec<&str> = concept.indication.iter().map(|g| g.name.as_str()).collect();
    let mut judged: Vec<Judged> = Vec::new();
    let mut dropped: Vec<Dropped> = Vec::new();
    for (i, c) in cands.iter().enumerate() {
        let on = c.concept_passages.len();
        let total = c.doc.passages.max(1) as f64;
        let share = (on as f64 / total).min(1.0);
        let titled_for = !c.title_match.is_empty();
        let focus = if titled_for { 1.0 } else { share };
        let drop = |reason: String, dropped: &mut Vec<Dropped>| {
            dropped.push(Dropped {
                id: c.doc.id.clone(),
                title: c.doc.title.clone(),
                reason,
            })
        };
        if let Some((a, other)) = concept.abbreviations.iter().find_map(|a| {
            a.otherwise
                .iter()
                .find(|(d, _)| *d == c.doc.id)
                .map(|(_, other)| (a, other))
        }) {
            drop(
                format!("it defines {} as \"{other}\", not \"{}\"", a.short, a.long),
                &mut dropped,
            );
            continue;
        }
        let about = if titled_for {
            Some("its title names the procedure".to_string())
        } else if let Some(other) = &c.other_title {
            // Most of its passages, or a section of it with a third of its passages (a
            // chapter of a long guideline on another procedure).
            (share >= FOCUS_SHARE_OTHER || (c.heading_match.is_some() && share >= FOCUS_SHARE))
                .then(|| {
                    format!(
                        "titled for {other}, but {:.0} % of its passages are on the procedure{}",
                        share * 100.0,
                        if share < FOCUS_SHARE_OTHER {
                            ", under a heading of their own"
                        } else {
                            ""
                        }
                    )
                })
        } else if c.heading_match.is_some() {
            Some("a section of it is on the procedure".to_string())
        } else if concept.named_technique && c.concept_passages.iter().any(|(_, r)| *r) {
            // A technique is one way of doing a procedure: a document that describes it
            // where it discusses what the rest of the title names (the condition, the
            // site) is evidence for it, though only in a passage or two.
            Some(format!(
                "{on} of its passages describe the technique with the title's other words"
            ))
        } else {
            let several = (on >= 2 && share >= FOCUS_SHARE_SEVERAL) || on >= FOCUS_PASSAGES;
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
                    "titled for another procedure ({other}); mentions this one in {on} of {} passages",
                    c.doc.passages
                ),
                None if on == 0 => "no passage carries the procedure's terms".into(),
                None => format!(
                    "mentions the procedure in passing ({on} of {} passages)",
                    c.doc.passages
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
        // A document scoped to adults by a lower age bound ("patients aged 16 years and
        // over") is about adults, though it names children to send them elsewhere and doses
        // by weight; a child's age in it says otherwise.
        // Adolescents ("unge") may be 16 or 17: such a bound does not leave them out.
        let scoped_adult = (bound_excludes && c.adult_bound && !c.child_age && !c.title_families.1)
            .then_some(Family::Adults);
        let family = c.title_family.or(scoped_adult).or_else(|| {
            // Passages on the procedure that name one family, outnumbering the other three
            // to one (a guideline for adults may point to the children's one in a line).
            let n = on.max(1);
            let enough = |x: usize| x >= 2.max(n / 2);
            if enough(c.children) && c.children >= 3 * c.adults {
                Some(Family::Children)
            } else if enough(c.adults) && c.adults >= 3 * c.children {
                Some(Family::Adults)
            } else {
                // A case report names its patient once ("a 72-year-old man"): ages of one
                // family only, and no population word for the other in any passage it
                // matched, decide ("young men and older women" in an epidemiology paragraph
                // is not a case report's patient).
                match (c.adult_age, c.child_age) {
                    (true, false) if c.children == 0 && !c.child_words => Some(Family::Adults),
                    (false, true) if c.adults == 0 && !c.adult_words => Some(Family::Children),
                    _ => None,
                }
            }
        });
        let family_ok = match (want_family, family) {
            (Some(w), Some(f)) => w == f,
            _ => true,
        };
        let indicated = c
            .title_conditions
            .iter()
            .any(|t| want_conditions.contains(&t.as_str()));
        let other_indication =
            !want_conditions.is_empty() && !c.title_conditions.is_empty() && !indicated;
        let rank_hits = c.concept_passages.iter().filter(|(_, r)| *r).count();
        let tier_priority = rules.get(&c.doc.tier).map(|t| t.priority).unwrap_or(0) as f64;
        let score = (if titled_for { 2.0 } else { 0.0 })
            + if c.heading_match.is_some() { 0.5 } else { 0.0 }
            + focus
            + if best_strength > 0.0 {
                strength(c) / best_strength
            } else {
                0.0
            }
            + match (want_family, family) {
                (Some(w), Some(f)) if w == f => 0.5,
                _ => 0.0,
            }
            + if indicated { 0.25 } else { 0.0 }
            + 0.1 * (rank_hits.min(10) as f64 / 10.0)
            + tier_priority / 10_000.0;
        judged.push(Judged {
            cand: i,
            score,
            focus,
            family,
            family_ok,
            indicated,
            other_indication,
            names_indication: !want_conditions.is_empty() && rank_hits > 0,
            names_children: c.title_families.1 || c.children > 0 || c.child_words || c.child_age,
            reason: about,
        });
    }
    // A source whose passages on the procedure do not say whom it is about, when the request
    // names a population and sources about it exist: the whole document decides. One that
    // names a single family anywhere, title included (by word or by age), and never the
    // other is about that family ("all adult examinations" in a cohort's
    // methods; a case report's "69-year-old man" under its own heading). Only then are these
    // documents' outlines read; step 5 reuses them.
    let mut outlines_read: HashMap<String, Vec<PassageOutline>> = HashMap::new();
    if let Some(w) = want_family {
        let unknown: Vec<String> = judged
            .iter()
            .filter(|j| j.family.is_none())
            .map(|j| cands[j.cand].doc.id.clone())
            .collect();
        if !unknown.is_empty() && judged.iter().any(|j| j.family == Some(w)) {
            outlines_read = read_outlines(library, unknown).await?;
            for j in judged.iter_mut().filter(|j| j.family.is_none()) {
                let Some(outline) = outlines_read.get(&cands[j.cand].doc.id) else {
                    continue;
                };
                let (mut a, mut ch) = cands[j.cand].title_families;
                let (mut bound, mut child_age) = (false, false);
                for p in outline {
                    let f = Features(p.features.unwrap_or_default());
                    let ((ha, hc), (ta, tc), (aa, ca)) =
                        (f.heading_families(), f.text_families(), f.ages());
                    a |= ha || ta || aa;
                    // Not a weight-based dose: an adult guideline doses heparin per kg.
                    ch |= hc || tc || ca;
                    bound |= f.adult_bound();
                    child_age |= ca;
                }
                j.family = match (a, ch) {
                    (true, false) => Some(Family::Adults),
                    (false, true) => Some(Family::Children),
                    // Scoped to adults by a lower age bound (see above).
                    _ if bound_excludes
                        && bound
                        && !child_age
                        && !cands[j.cand].title_families.1 =>
                    {
                        Some(Family::Adults)
                    }
                    _ => None,
                };
                if let Some(f) = j.family {
                    j.names_children |= f == Family::Children;
                    j.family_ok = f == w;
                    if j.family_ok {
                        j.score += 0.5;
                    }
                    j.reason
                        .push_str(&format!("; the whole document is about {}", f.label()));
                }
            }
        }
    }
    // Leaves out the judged sources `keep` refuses, each with the reason `why` gives.
    fn leave_out(
        judged: &mut Vec<Judged>,
        cands: &[Candidate],
        dropped: &mut Vec<Dropped>,
        keep: impl Fn(&Judged) -> bool,
        why: impl Fn(&Judged, &Candidate) -> String,
    ) {
        judged.retain(|j| {
            let kept = keep(j);
            if !kept {
                let c = &cands[j.cand];
                dropped.push(Dropped {
                    id: c.doc.id.clone(),
                    title: c.doc.title.clone(),
                    reason: why(j, c),
                });
            }
            kept
        });
    }
    // A source about another population is used only when none about the requested one is.
    if judged.iter().any(|j| j.family_ok) {
        leave_out(
            &mut judged,
            &cands,
            &mut dropped,
            |j| j.family_ok,
            |j, _| {
                format!(
                    "about {} (the request is about {}; sources about them exist)",
                    j.family.map(Family::label).unwrap_or("another population"),
                    want_family.map(Family::label).unwrap_or("?")
                )
            },
        );
    } else if let Some(w) = want_family {
        for j in judged.iter_mut().filter(|j| !j.family_ok) {
            j.reason.push_str(&format!(
                "; about {}, used because no source about {} was found",
                j.family.map(Family::label).unwrap_or("another population"),
                w.label()
            ));
        }
    }
    // A procedure for children is written from evidence that speaks of children: a source
    // that never names them (an adult instruction that does not say "voksne", a general
    // review) is left out when two that do exist. Not so for adults, whom most documents
    // never name because they are the default.
    if want_family == Some(Family::Children)
        && judged.iter().filter(|j| j.names_children).count() >= 2
    {
        leave_out(
            &mut judged,
            &cands,
            &mut dropped,
            |j| j.names_children,
            |_, _| "never names children (the request is about them; sources that do exist)".into(),
        );
    }
    // A procedure for preterm newborns is not written from a source scoped to newborns born
    // at term ("newborns of 37 weeks' gestation or more"), when sources not so scoped exist:
    // their doses, sizes and landmarks are a term newborn's.
    if names_preterm(title) && judged.len() >= 2 {
        let unread: Vec<String> = judged
            .iter()
            .map(|j| cands[j.cand].doc.id.clone())
            .filter(|id| !outlines_read.contains_key(id))
            .collect();
        if !unread.is_empty() {
            outlines_read.extend(read_outlines(library, unread).await?);
        }
        let term_only = |j: &Judged| {
            let c = &cands[j.cand];
            !names_preterm(&c.doc.title)
                && outlines_read.get(&c.doc.id).is_some_and(|o| {
                    o.iter()
                        .any(|p| Features(p.features.unwrap_or_default()).term_bound())
                })
        };
        let scoped: std::collections::HashSet<usize> = judged
            .iter()
            .filter(|j| term_only(j))
            .map(|j| j.cand)
            .collect();
        if scoped.len() < judged.len() {
            leave_out(
                &mut judged,
                &cands,
                &mut dropped,
                |j| !scoped.contains(&j.cand),
                |_, _| {
                    "about newborns born at term (the request is about preterm newborns; sources not scoped to term exist)".into()
                },
            );
        }
    }
    // A source titled for another condition than the one the request names ("… for
    // ventricular tachycardia" for "… ved atrieflimren") is about another indication: used
    // only when no source is titled for the named one.
    if judged.iter().any(|j| j.indicated) {
        leave_out(
            &mut judged,
            &cands,
            &mut dropped,
            |j| !j.other_indication,
            |_, c| {
                format!(
                    "titled for another condition ({}; the request is for {}; sources titled for it exist)",
                    c.title_conditions.join(", "),
                    want_conditions.join(", ")
                )
            },
        );
    } else {
        for j in judged.iter_mut().filter(|j| j.other_indication) {
            j.reason.push_str(&format!(
                "; titled for {}, used because no source titled for {} was found",
                cands[j.cand].title_conditions.join(", "),
                want_conditions.join(", ")
            ));
        }
    }
    // A source that never names the condition the request is for, in its title or in any
    // passage on the procedure, is about the procedure in general or for something else
    // (nasal packing after septoplasty, for "… ved næseblødning"): used only when fewer than
    // two sources name it.
    if !want_conditions.is_empty() {
        let names = |j: &Judged| j.indicated || j.names_indication;
        if judged.iter().filter(|j| names(j)).count() >= 2 {
            leave_out(&mut judged, &cands, &mut dropped, names, |_, _| {
                format!(
                    "never names {} where it discusses the procedure (the request is for it; sources that do exist)",
                    want_conditions.join(", ")
                )
            });
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

    // 5. The passages of each chosen source, picked from its outline (places and features);
    // only the picked passages' text is read.
    let ids: Vec<String> = chosen
        .iter()
        .map(|&k| cands[judged[k].cand].doc.id.clone())
        .collect();
    let missing: Vec<String> = ids
        .into_iter()
        .filter(|id| !outlines_read.contains_key(id))
        .collect();
    let mut by_doc = outlines_read;
    if !missing.is_empty() {
        by_doc.extend(read_outlines(library, missing).await?);
    }
    // Per chosen source: its picked passages (order, why) and the passage that explains its
    // heading match.
    let mut picks: Vec<(Picked, Option<u32>)> = Vec::new();
    let mut wanted: Vec<(String, Vec<u32>)> = Vec::new();
    for &k in &chosen {
        let c = &cands[judged[k].cand];
        let outline = by_doc.remove(&c.doc.id).unwrap_or_default();
        // A source used only because none about the requested population exists is used
        // whole: its passages are not filtered by population.
        let want = concept
            .population
            .as_ref()
            .map(|p| p.0)
            .filter(|_| judged[k].family_ok);
        let picked = pick_passages(want, &outline, c, !c.title_match.is_empty());
        // Read too the passage whose heading carries the procedure (the explanation names
        // its heading), when it was not picked.
        let mut ords: Vec<u32> = picked.iter().map(|(o, _)| *o).collect();
        let explain = c.heading_match;
        if let Some(o) = explain {
            if !ords.contains(&o) {
                ords.push(o);
            }
        }
        wanted.push((c.doc.id.clone(), ords));
        picks.push((picked, explain));
    }
    let mut read: HashMap<(String, u32), LibraryPassage> = library
        .passages_at(wanted, false)
        .await?
        .into_iter()
        .map(|(d, p)| ((d, p.ord), p))
        .collect();
    let mut sources = Vec::new();
    let mut why = Vec::new();
    for (&k, (picked, explain)) in chosen.iter().zip(picks) {
        let j = &judged[k];
        let c = &cands[j.cand];
        if picked.is_empty() {
            // Nothing of it may be given to the writer (every passage on the procedure is
            // about the other population): it is not used, so the evidence gate does not
            // count its tier for evidence the procedure cannot draw on.
            dropped.push(Dropped {
                id: c.doc.id.clone(),
                title: c.doc.title.clone(),
                reason: format!(
                    "none of its passages may be used: each is about {} ({})",
                    match concept.population.as_ref().map(|p| p.0) {
                        Some(Family::Adults) => Family::Children.label(),
                        Some(Family::Children) => Family::Adults.label(),
                        None => "another population",
                    },
                    j.reason
                ),
            });
            continue;
        }
        let mut matched = c.matched.clone();
        let names = |bits: u32| {
            concept
                .anchor
                .iter()
                .take(16)
                .enumerate()
                .filter(move |(i, _)| bits & (1 << i) != 0)
                .map(|(_, g)| g.name.clone())
        };
        if let Some(p) = explain.and_then(|o| read.get(&(c.doc.id.clone(), o))) {
            for g in names(c.heading_groups) {
                matched.push(format!("{g} (heading \"{}\")", p.heading));
            }
        }
        for g in names(c.text_groups) {
            matched.push(format!("{g} (text)"));
        }
        let mut passages = Vec::new();
        let mut pwhy = Vec::new();
        for (ord, reasons) in picked {
            if let Some(p) = read.remove(&(c.doc.id.clone(), ord)) {
                pwhy.push(PassageWhy {
                    id: p.id.clone(),
                    page: p.page_start,
                    for_: reasons,
                });
                passages.push(p);
            }
        }
        why.push(SourceWhy {
            id: c.doc.id.clone(),
            title: c.doc.title.clone(),
            tier: c.doc.tier.clone(),
            matched,
            focus: (j.focus * 100.0).round() / 100.0,
            population: j.family.map(|f| f.label().to_string()),
            reason: j.reason.clone(),
            score: (j.score * 100.0).round() / 100.0,
            passages: pwhy,
        });
        sources.push(to_source(rules, &c.doc, passages));
    }
    dropped.truncate(50);
    Ok(Retrieved {
        query: concept.describe(),
        concept,
        sources,
        why,
        dropped,
        truncated: found.truncated,
    })
}

/// Passages picked from a source: (order, why), in document order.
type Picked = Vec<(u32, Vec<String>)>;

/// The passages of one source the writer gets, as (order, why) in document order: on the
/// procedure first, then the best for each outline section, then the rest by relevance;
/// never one about another population than `want`; in a source not titled for the
/// procedure, only passages on it.
fn pick_passages(
    want: Option<Family>,
    outline: &[PassageOutline],
    cand: &Candidate,
    titled_for: bool,
) -> Picked {
    let sections = features::sections();
    let on: HashMap<u32, bool> = cand.concept_passages.iter().copied().collect();
    struct Scored {
        ord: u32,
        on_concept: bool,
        features: Features,
        rank: usize,
    }
    let mut scored: Vec<Scored> = Vec::new();
    for p in outline {
        let ranked = on.get(&p.ord).copied();
        let on_concept = ranked.is_some();
        if !titled_for && !on_concept {
            continue;
        }
        let f = Features(p.features.unwrap_or_default());
        if let Some(w) = want {
            let (a, c) = f.families();
            let other = match w {
                Family::Adults => c && !a,
                Family::Children => a && !c,
            };
            if other {
                continue;
            }
        }
        scored.push(Scored {
            ord: p.ord,
            on_concept,
            features: f,
            rank: usize::from(ranked == Some(true)),
        });
    }
    let mut chosen: Vec<usize> = Vec::new();
    let mut reasons: HashMap<usize, Vec<String>> = HashMap::new();
    // The passages on the procedure (at most half of the budget).
    for (i, s) in scored.iter().enumerate() {
        if s.on_concept && chosen.len() < PASSAGES_PER_SOURCE / 2 {
            chosen.push(i);
            reasons.entry(i).or_default().push("procedure".into());
        }
    }
    // One per outline section.
    for (n, (heading, _)) in sections.iter().enumerate() {
        if chosen.len() >= PASSAGES_PER_SOURCE {
            break;
        }
        if let Some(&i) = chosen.iter().find(|&&i| scored[i].features.section(n)) {
            reasons.entry(i).or_default().push((*heading).to_string());
            continue;
        }
        let best = scored
            .iter()
            .enumerate()
            .filter(|(i, s)| !chosen.contains(i) && s.features.section(n))
            .max_by_key(|(_, s)| {
                (
                    s.on_concept,
                    s.rank,
                    std::cmp::Reverse(s.features.section_count()),
                    std::cmp::Reverse(s.ord),
                )
            });
        if let Some((i, _)) = best {
            chosen.push(i);
            reasons.entry(i).or_default().push((*heading).to_string());
        }
    }
    // The rest, by relevance, in document order among equals.
    let mut rest: Vec<usize> = (0..scored.len()).filter(|i| !chosen.contains(i)).collect();
    rest.sort_by_key(|&i| {
        let s = &scored[i];
        std::cmp::Reverse((s.on_concept, s.rank, s.features.section_count()))
    });
    for i in rest {
        if chosen.len() >= PASSAGES_PER_SOURCE {
            break;
        }
        chosen.push(i);
        reasons.entry(i).or_default().push("relevance".into());
    }
    chosen.sort_by_key(|&i| scored[i].ord);
    chosen
        .into_iter()
        .map(|i| (scored[i].ord, reasons.remove(&i).unwrap_or_default()))
        .collect()
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
