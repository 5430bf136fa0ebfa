//! The deterministic claim verifier: reads a procedure strictly ([`reader`]), aligns each
//! sentence with the best-matching sentence of every passage it cites, and compares what the
//! two claim ([`claims`]) — doses and units, routes, negations, populations, timing, drugs —
//! through a medical [`lexicon`], so a faithful Danish translation of an English passage passes
//! and a tenfold dose does not. A blocking finding means the procedure must not be DONE.
//!
//! It knows nothing of runs, writers or scores: Markdown and passages in, findings out.

pub mod claims;
pub mod lexicon;
pub mod reader;
pub mod text;

use crate::outline::{OUTLINE, PROCEDURE, REFERENCES};
use claims::{extract, Claim, Quantity};
pub use lexicon::{Lexicon, LexiconError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One passage of a retrieved source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CitedText {
    pub source_id: String,
    /// The page the passage comes from, when the source has pages.
    pub page: Option<u32>,
    pub text: String,
}

/// The evidence a procedure was written from.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// All passages of the retrieved sources; a source's id is retrieved iff it has one here.
    pub passages: &'a [CitedText],
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The procedure must not be DONE.
    Blocking,
    /// A reviewer should look.
    Warning,
}

/// What a finding is about. The snake_case names are stable (API and documents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A number or dose differs from the cited passage.
    Dose,
    /// The same number with a different unit.
    Unit,
    /// An administration route the passage does not give.
    Route,
    /// A different number of negations than the passage ("ikke", "not").
    Negation,
    /// A population the passage does not give the claim for, or one dropped from a dose.
    Population,
    /// A time, interval or its qualifier (every/within/after) differs.
    Timing,
    /// A drug the passage does not name.
    Drug,
    /// Two sentences give different doses of one drug, route and population.
    ConflictingDose,
    /// Clinical content (drug, number, route, instruction) without a citation.
    UncitedClinical,
    /// A citation to an id that is not among the retrieved sources.
    UnknownSource,
    /// Something citation-like that is not exactly `[S:SRC0001]`.
    MalformedCitation,
    /// A `## ` heading that is not in the outline.
    NonOutlineHeading,
    /// Content before the first outline section.
    ContentOutsideSection,
    /// Content in markup the writers never produce (blockquote, table, deep heading, HTML...).
    HiddenMarkup,
    /// A contraindication stated as an indication, or the reverse.
    SectionContradiction,
    /// A step placed before one the source says it follows.
    StepOrder,
    /// The cited source shares nothing with the sentence.
    Unsupported,
    /// The cited source shares little with the sentence.
    WeakSupport,
    /// An English sentence in a Danish procedure.
    EnglishSentence,
    /// The sentence probably belongs under another heading.
    MisplacedSection,
    /// An outline section without content.
    EmptySection,
    /// A sentence without clinical content and without a citation.
    UncitedSentence,
    /// The writer's answer stopped at its output limit: the draft is cut off.
    Truncated,
    /// The writer's answer has none of the outline's sections.
    MissingOutline,
}

impl FindingKind {
    /// The stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Dose => "dose",
            FindingKind::Unit => "unit",
            FindingKind::Route => "route",
            FindingKind::Negation => "negation",
            FindingKind::Population => "population",
            FindingKind::Timing => "timing",
            FindingKind::Drug => "drug",
            FindingKind::ConflictingDose => "conflicting_dose",
            FindingKind::UncitedClinical => "uncited_clinical",
            FindingKind::UnknownSource => "unknown_source",
            FindingKind::MalformedCitation => "malformed_citation",
            FindingKind::NonOutlineHeading => "non_outline_heading",
            FindingKind::ContentOutsideSection => "content_outside_section",
            FindingKind::HiddenMarkup => "hidden_markup",
            FindingKind::SectionContradiction => "section_contradiction",
            FindingKind::StepOrder => "step_order",
            FindingKind::Unsupported => "unsupported",
            FindingKind::WeakSupport => "weak_support",
            FindingKind::EnglishSentence => "english_sentence",
            FindingKind::MisplacedSection => "misplaced_section",
            FindingKind::EmptySection => "empty_section",
            FindingKind::UncitedSentence => "uncited_sentence",
            FindingKind::Truncated => "truncated",
            FindingKind::MissingOutline => "missing_outline",
        }
    }
}

/// A sentence of a passage that a procedure sentence was aligned with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aligned {
    pub source_id: String,
    pub page: Option<u32>,
    pub sentence: String,
}

/// One problem, tied to a sentence where there is one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub kind: FindingKind,
    pub section: String,
    /// 1-based line in the Markdown.
    pub line: usize,
    pub sentence: String,
    pub cited: Vec<String>,
    /// The best-aligned passage sentence the comparison used.
    pub aligned: Option<Aligned>,
    /// What differs, for a person: "dose 5 mg vs 0,5 mg in SRC0001".
    pub what: String,
}

/// A sentence bound to the passages that support it, for the evidence report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentenceCheck {
    pub section: String,
    pub line: usize,
    pub text: String,
    pub citations: Vec<String>,
    /// Per cited (and retrieved) source: its best-aligned sentence.
    pub supported_by: Vec<Support>,
    /// Whether any blocking finding concerns this sentence.
    pub blocked: bool,
}

/// A cited source's best-aligned sentence, with the share of the sentence's content it covers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Support {
    pub source_id: String,
    pub page: Option<u32>,
    pub passage_sentence: String,
    /// Share (0–1) of the sentence's content words and numbers found in the aligned sentence.
    pub coverage: f64,
    /// Share (0–1) of the sentence's specific content (drugs and clinical terms after lexicon
    /// normalisation; other content words when both are in one language) that the aligned
    /// sentence and its neighbours name.
    pub specific: f64,
    /// The sentence's specific terms the aligned sentence(s) do not name, as written.
    pub missing: Vec<String>,
}

/// The verifier's verdict on one procedure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub findings: Vec<Finding>,
    pub sentences: Vec<SentenceCheck>,
    pub blocking: usize,
    pub warnings: usize,
    /// What was checked, in words.
    pub checked: Vec<&'static str>,
    /// What was not checked, in words: the limits a reader must know.
    pub not_checked: Vec<&'static str>,
}

/// What the verifier checks.
pub const CHECKED: &[&str] = &[
    "every line of the Markdown is read: lists, steps, tables, blockquotes, emphasis, deeper headings, HTML",
    "only outline headings open sections; other headings, early content and hidden markup are findings",
    "citations are exactly [S:SRC<digits>] and name a retrieved source",
    "every sentence carries its own citation; clinical content without one blocks",
    "numbers and units (mg, µg, g, ml, l, mg/kg, µg/kg, %, ranges, 1:1000) against the aligned source sentence",
    "routes, negation count, populations (dose by dose) and drugs against the aligned source sentence",
    "times and their qualifiers (every, within, after, at least, at most, during)",
    "conflicting doses of one drug, route and population within the procedure",
    "procedure steps in the reverse of their source's order",
    "that the cited sentence (or the one beside it) names the sentence's drugs and clinical terms, not only its topic",
    "indications framed as contraindications or prohibitions by their source, and the reverse",
    "lexical support, English sentences, misplaced sentences, empty sections",
];

/// What it does not check.
pub const NOT_CHECKED: &[&str] = &[
    "whether the source itself is right, current or applicable to the department",
    "claims in words the lexicon does not know (unknown drugs, routes or populations are compared as words only)",
    "meaning beyond the canonical tokens: a sentence can share every number, route and negation with its source and still paraphrase it wrongly",
    "a claim that joins two source sentences is compared with the best-aligned one and its neighbours; a clause added from elsewhere can pass when the rest is well supported",
    "clinical terms outside the lexicon are compared as words, and only within one language",
    "the reference list (Referencer) is not checked as claims",
    "a route, drug or population the draft leaves out where the source states it (only a dose's population is required)",
];

/// A source sentence, ready for comparison.
struct SourceSentence {
    source: usize,
    passage: usize,
    index: usize,
    text: String,
    claim: Claim,
}

/// The sentences of the cited sources, extracted once per verification.
struct Corpus<'a> {
    evidence: &'a Evidence<'a>,
    by_source: BTreeMap<&'a str, Vec<usize>>,
    sentences: Vec<SourceSentence>,
    /// Per passage: every population it names (a sentence that names none inherits these).
    passage_pops: HashMap<usize, BTreeSet<String>>,
    /// Per passage: every drug it names (likewise).
    passage_drugs: HashMap<usize, BTreeSet<String>>,
    loaded: BTreeSet<String>,
}

/// Passages longer than this are read up to it: the verifier's cost stays bounded.
const MAX_PASSAGE_CHARS: usize = 50_000;

impl<'a> Corpus<'a> {
    fn new(evidence: &'a Evidence<'a>) -> Self {
        let mut by_source: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, p) in evidence.passages.iter().enumerate() {
            by_source.entry(p.source_id.as_str()).or_default().push(i);
        }
        Corpus {
            evidence,
            by_source,
            sentences: Vec::new(),
            passage_pops: HashMap::new(),
            passage_drugs: HashMap::new(),
            loaded: BTreeSet::new(),
        }
    }

    fn retrieved(&self, id: &str) -> bool {
        self.by_source.contains_key(id)
    }

    /// Extracts the sentences of a source's passages the first time it is cited.
    fn load(&mut self, id: &str, lex: &Lexicon) {
        if self.loaded.contains(id) {
            return;
        }
        self.loaded.insert(id.to_string());
        let Some(passages) = self.by_source.get(id).cloned() else {
            return;
        };
        for pi in passages {
            let p = &self.evidence.passages[pi];
            let text: String = p.text.chars().take(MAX_PASSAGE_CHARS).collect();
            let mut pops = BTreeSet::new();
            let mut drugs = BTreeSet::new();
            let mut index = 0;
            // A passage's lines are its blocks (a heading, a paragraph, a list item, a table
            // row): no sentence runs from one into the next, so a heading is never read as
            // the start of the sentence under it.
            for para in text.lines() {
                let flat = para.split_whitespace().collect::<Vec<_>>().join(" ");
                let flat = text::without_citation_marks(&flat);
                for s in text::split_sentences(&flat) {
                    let claim = extract(&s, lex);
                    pops.extend(claim.population_labels.iter().cloned());
                    drugs.extend(claim.drugs.iter().cloned());
                    self.sentences.push(SourceSentence {
                        source: pi,
                        passage: pi,
                        index,
                        text: s,
                        claim,
                    });
                    index += 1;
                }
            }
            self.passage_pops.insert(pi, pops);
            self.passage_drugs.insert(pi, drugs);
        }
    }

    /// The drugs and clinical terms that at least half of the retrieved sources (two or more)
    /// name: the topic of the evidence.
    fn topic_terms(&mut self, lex: &Lexicon) -> BTreeSet<String> {
        let ids: Vec<String> = self.by_source.keys().map(|k| k.to_string()).collect();
        if ids.len() < 2 {
            return BTreeSet::new();
        }
        for id in &ids {
            self.load(id, lex);
        }
        let mut df: BTreeMap<&str, usize> = BTreeMap::new();
        for id in &ids {
            let passages = &self.by_source[id.as_str()];
            let tags: BTreeSet<&str> = self
                .sentences
                .iter()
                .filter(|s| passages.contains(&s.passage))
                .flat_map(|s| s.claim.canon_set.iter().map(String::as_str))
                .filter(|t| t.starts_with("d:") || t.starts_with("c:"))
                .collect();
            for t in tags {
                *df.entry(t).or_default() += 1;
            }
        }
        df.into_iter()
            .filter(|(_, n)| 2 * n >= ids.len())
            .map(|(t, _)| t.to_string())
            .collect()
    }

    fn of_source(&self, id: &str) -> impl Iterator<Item = (usize, &SourceSentence)> {
        let passages: BTreeSet<usize> = self
            .by_source
            .get(id)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        self.sentences
            .iter()
            .enumerate()
            .filter(move |(_, s)| passages.contains(&s.source))
    }
}

/// How much of the draft claim `d` the source claim `s` covers: the share of `d`'s content
/// words (by stem or by canonical token) and numbers that `s` has; the count of matches; and
/// the count of topical matches — all but population words, which any source on any topic
/// may share ("voksne" alone does not make a pleural drain source support a lumbar puncture).
fn coverage(d: &Claim, s: &Claim) -> (f64, usize, usize) {
    let canon = &s.canon_set;
    let mut matched = 0usize;
    let mut topical = 0usize;
    let mut total = 0usize;
    for w in &d.content {
        total += 1;
        if w.stems.iter().any(|st| s.stems.contains(st))
            || w.canon.iter().any(|c| canon.contains(c))
        {
            matched += 1;
            if !w.generic && !w.canon.iter().any(|c| c.starts_with("p:")) {
                topical += 1;
            }
        }
    }
    for q in d.quantities.iter() {
        total += 1;
        if s.quantities
            .iter()
            .any(|sq| sq.equivalent(q) || (q.sig == "bare" && value_in(q, sq)))
        {
            matched += 1;
            topical += 1;
        }
    }
    if total == 0 {
        return (1.0, 0, 0);
    }
    (matched as f64 / total as f64, matched, topical)
}

fn value_in(bare: &Quantity, q: &Quantity) -> bool {
    let eq = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    let raw = |q: &Quantity| -> Vec<f64> {
        q.number
            .split(['–', ':'])
            .filter_map(|n| n.replace(',', ".").parse::<f64>().ok())
            .collect()
    };
    raw(q).iter().any(|v| eq(*v, bare.lo)) || eq(q.lo, bare.lo) || eq(q.hi, bare.lo)
}

/// The alignment score: numbers, drugs and routes weigh most, because a translation shares
/// them and little else; then concepts and word stems.
fn align_score(d: &Claim, s: &Claim) -> f64 {
    let shared = |a: &BTreeSet<String>, b: &BTreeSet<String>| a.intersection(b).count() as f64;
    let nums = d
        .quantities
        .iter()
        .filter(|q| s.quantities.iter().any(|sq| sq.equivalent(q)))
        .count() as f64;
    let (cov, matched, _) = coverage(d, s);
    2.0 * nums
        + 2.0 * shared(&d.drugs, &s.drugs)
        + 1.0 * shared(&d.routes, &s.routes)
        + 1.0 * shared(&d.populations, &s.populations)
        + 1.0 * matched as f64
        + 2.0 * cov
}

/// Sentences with less coverage than this draw a weak-support warning.
const WEAK_COVERAGE: f64 = 0.34;

/// A sentence whose specific content the cited sentence(s) name less than this share of, with
/// at least one lexicon term missing, is not supported by them: the source may be on the same
/// topic, but it does not say this.
pub const SPECIFIC_SUPPORT: f64 = 0.6;

/// The specific content of a sentence against the sentence(s) of a source it was aligned with.
struct Specific {
    /// Weighted lexicon terms of the sentence, and those the source sentence(s) name.
    terms: f64,
    terms_found: f64,
    /// Other content words (counted only when both are in one language), and those found.
    words: usize,
    words_found: usize,
    same_language: bool,
    /// Drugs and clinical terms the source sentence(s) do not name, that are not merely the
    /// topic of the evidence.
    missing_terms: Vec<String>,
    /// Other content words (and topic terms) they do not have.
    missing_words: Vec<String>,
}

/// A term most retrieved sources name ("anafylaksi", "adrenalin" in an anaphylaxis library) is
/// the topic, not what a sentence says about it: it weighs this much against a specific one.
const TOPIC_WEIGHT: f64 = 0.25;
/// A content word outside the lexicon weighs this much against a lexicon term: it may be a
/// paraphrase's own word for the same thing.
const WORD_WEIGHT: f64 = 0.5;

impl Specific {
    /// The weighted share of the lexicon terms found.
    fn term_share(&self) -> f64 {
        if self.terms <= 0.0 {
            1.0
        } else {
            self.terms_found / self.terms
        }
    }

    /// The weighted share of terms and words found.
    fn share(&self) -> f64 {
        let total = self.terms + WORD_WEIGHT * self.words as f64;
        if total <= 0.0 {
            1.0
        } else {
            (self.terms_found + WORD_WEIGHT * self.words_found as f64) / total
        }
    }

    /// Not supported: a specific clinical term is missing, and the source names too little of
    /// the sentence's lexicon terms (or, in one language, of its terms and words together).
    fn unsupported(&self) -> bool {
        !self.missing_terms.is_empty()
            && (self.term_share() < SPECIFIC_SUPPORT
                || (self.same_language && self.share() < SPECIFIC_SUPPORT_WORDS))
    }
}

/// In one language, the share of terms and words together below which a sentence is not
/// supported (words are noisier than terms: a paraphrase uses its own).
const SPECIFIC_SUPPORT_WORDS: f64 = 0.45;

/// What a clinician means by "this source says this": the sentence's drugs and clinical terms
/// (after lexicon normalisation, so a translation matches) must be named by the aligned source
/// sentence or the sentences beside it; its other content words count too when sentence and
/// source share a language (across languages only the lexicon can compare them). Terms that
/// most retrieved sources name are the topic and weigh little. Routes, populations, numbers
/// and negations have checks of their own and are left out here, as are instruction verbs.
fn specific_support(
    d: &Claim,
    window: &[&Claim],
    topic: &BTreeSet<String>,
    lex: &Lexicon,
) -> Specific {
    let mut canon: BTreeSet<&str> = BTreeSet::new();
    let mut stems: BTreeSet<&str> = BTreeSet::new();
    let mut classes: BTreeSet<&str> = BTreeSet::new();
    for c in window {
        canon.extend(c.canon_set.iter().map(String::as_str));
        stems.extend(c.stems.iter().map(String::as_str));
        for drug in &c.drugs {
            classes.extend(lex.classes_of(drug));
        }
    }
    let english = |c: &Claim| c.english_words > c.danish_words;
    let same_language = window.first().is_some_and(|w| english(w) == english(d));
    let mut out = Specific {
        terms: 0.0,
        terms_found: 0.0,
        words: 0,
        words_found: 0,
        same_language,
        missing_terms: Vec::new(),
        missing_words: Vec::new(),
    };
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for w in &d.content {
        let stem_found = w.stems.iter().any(|s| stems.contains(s.as_str()));
        let tags: Vec<&str> = w
            .canon
            .iter()
            .map(String::as_str)
            .filter(|t| t.starts_with("d:") || t.starts_with("c:"))
            .collect();
        if !tags.is_empty() {
            for t in tags {
                if !seen.insert(t) {
                    continue;
                }
                let weight = if topic.contains(t) { TOPIC_WEIGHT } else { 1.0 };
                out.terms += weight;
                let class = t.strip_prefix("d:").is_some_and(|x| classes.contains(x));
                if canon.contains(t) || class || stem_found {
                    out.terms_found += weight;
                } else if topic.contains(t) {
                    out.missing_words.push(w.word.clone());
                } else {
                    out.missing_terms.push(w.word.clone());
                }
            }
            continue;
        }
        if !w.canon.is_empty() || w.generic || !same_language {
            continue;
        }
        out.words += 1;
        if stem_found {
            out.words_found += 1;
        } else {
            out.missing_words.push(w.word.clone());
        }
    }
    out
}

struct Ctx {
    findings: Vec<Finding>,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        severity: Severity,
        kind: FindingKind,
        section: &str,
        line: usize,
        sentence: &str,
        cited: &[String],
        aligned: Option<Aligned>,
        what: String,
    ) {
        self.findings.push(Finding {
            severity,
            kind,
            section: section.to_string(),
            line,
            sentence: sentence.to_string(),
            cited: cited.to_vec(),
            aligned,
            what,
        });
    }
}

/// The severity of each kind: the product's rule is that a wrong dose, unit, route, negation,
/// population, timing or drug, a citation that does not resolve, and content outside what the
/// writers produce all block; the rest are for a reviewer.
fn severity_of(kind: FindingKind) -> Severity {
    match kind {
        FindingKind::WeakSupport
        | FindingKind::EnglishSentence
        | FindingKind::MisplacedSection
        | FindingKind::EmptySection
        | FindingKind::UncitedSentence => Severity::Warning,
        _ => Severity::Blocking,
    }
}

fn pretty_route(r: &str) -> &str {
    match r {
        "intramuskulaer" => "intramuskulært",
        "intravenoes" => "intravenøst",
        "subkutan" => "subkutant",
        "intraossoes" => "intraossøst",
        "peroral" => "peroralt",
        other => other,
    }
}

fn pretty_pop(p: &str) -> &str {
    match p {
        "boern" => "børn",
        "spaedboern" => "spædbørn",
        "nyfoedte" => "nyfødte",
        "aeldre" => "ældre",
        other => other,
    }
}

fn join(set: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = set.into_iter().collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Whether a source sentence says no more about whom a weight-based dose is for than a draft
/// that names no one: it doses by weight too and names no one, in a passage that names no one
/// (anaesthesia doses adults by weight too) or only children, infants or newborns (a newborn
/// guideline's "adrenaline 20 micrograms/kg IV": the children the weight implies are those).
/// A population named with the dose or in the source sentence must still be said.
fn source_doses_the_same_children(sc: &Claim, passage_pops: &BTreeSet<String>) -> bool {
    let children = |p: &String| {
        matches!(
            p.split('@').next().unwrap_or(""),
            "boern" | "spaedboern" | "nyfoedte"
        )
    };
    sc.implied_child && sc.population_labels.is_empty() && passage_pops.iter().all(children)
}

/// The population check of one dose found in the source: the draft's populations for it
/// (named, or children when the dose is weight-based and none is named) must be among the
/// source's for the same dose (named with it, else in the sentence, else in the passage); a
/// dose the source gives for a named population must say so. A weight-based dose that neither
/// side gives a population for passes, and so does one whose source sentence names none in a
/// passage only about children, infants or newborns.
fn dose_population(
    d: &Claim,
    q: &Quantity,
    sq: &Quantity,
    sc: &Claim,
    passage_pops: &BTreeSet<String>,
    id: &str,
) -> Option<String> {
    let mine: Vec<String> = if !q.population.is_empty() {
        q.population.clone()
    } else if d.implied_child {
        vec!["boern".to_string()]
    } else {
        Vec::new()
    };
    let theirs: Vec<String> = if !sq.population.is_empty() {
        sq.population.clone()
    } else if !sc.population_labels.is_empty() {
        sc.population_labels.iter().cloned().collect()
    } else {
        passage_pops.iter().cloned().collect()
    };
    // A source that names no population anywhere and gives the same weight-based dose says
    // no more than the draft does (anaesthesia doses adults by weight too): nothing to compare.
    if mine == ["boern"]
        && q.population.is_empty()
        && sq.population.is_empty()
        && source_doses_the_same_children(sc, passage_pops)
    {
        return None;
    }
    let show = |v: &[String]| {
        v.iter()
            .map(|p| pretty_pop(p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if mine.is_empty() {
        return (!sq.population.is_empty()).then(|| {
            format!(
                "{} is for {} in {id}; the sentence does not say so",
                q.shown(),
                show(&sq.population)
            )
        });
    }
    // A draft may be narrower than its source ("børn over 12 år" where the source says
    // "børn"), never broader ("børn" where the source says "børn over 12 år").
    let base = |p: &str| p.split('@').next().unwrap_or("").to_string();
    let ok =
        |p: &String| theirs.contains(p) || theirs.iter().any(|t| !t.contains('@') && *t == base(p));
    if mine.iter().all(ok) {
        return None;
    }
    Some(format!(
        "population {} vs {} for {} in {id}",
        show(&mine),
        show(&theirs),
        q.shown()
    ))
}

/// The negation cues of the clauses of the source sentence that the draft sentence shares
/// something with; all of them when it shares nothing clause by clause.
fn clause_negations(d: &Claim, s: &SourceSentence, lex: &Lexicon) -> usize {
    let clauses = split_clauses(&s.text);
    if clauses.len() < 2 {
        return s.claim.negations;
    }
    let mut covered = 0usize;
    let mut any = false;
    for c in clauses {
        let cc = extract(&c, lex);
        if coverage(d, &cc).1 > 0 {
            any = true;
            covered += cc.negations;
        }
    }
    if any {
        covered
    } else {
        s.claim.negations
    }
}

/// Clauses of a sentence: split at ", ", "; " and ": " (a decimal comma has no space after it).
fn split_clauses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if matches!(c, ',' | ';' | ':') && chars.peek().is_some_and(|n| n.is_whitespace()) {
            out.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter().filter(|c| !c.trim().is_empty()).collect()
}

/// Compares a draft claim with its aligned source sentence; returns (kind, what) pairs.
fn compare(
    d: &Claim,
    s: &SourceSentence,
    neighbours: &[&SourceSentence],
    passage_pops: &BTreeSet<String>,
    passage_drugs: &BTreeSet<String>,
    id: &str,
    lex: &Lexicon,
) -> Vec<(FindingKind, String)> {
    let mut out = Vec::new();
    let sc = &s.claim;
    // A unit changed into one the source gives for the same number elsewhere in the sentence:
    // "0,5 ml adrenalin ..., svarende til 0,5 ml" where the source has "0,5 mg ... svarende til
    // 0,5 ml". The sentence repeats a quantity more often than its source and lacks the
    // source's quantity of that number in the other unit.
    for (i, q) in d.quantities.iter().enumerate() {
        if d.quantities[..i].iter().any(|p| p.same_value(q)) {
            continue;
        }
        let mine = d.quantities.iter().filter(|p| p.same_value(q)).count();
        let theirs = sc.quantities.iter().filter(|p| p.same_value(q)).count();
        if theirs == 0 || mine <= theirs {
            continue;
        }
        if let Some(lost) = sc.quantities.iter().find(|sq| {
            sq.number == q.number
                && sq.sig != q.sig
                && !d.quantities.iter().any(|p| p.equivalent(sq))
        }) {
            out.push((
                FindingKind::Unit,
                format!(
                    "unit: {} appears {mine} times here, {theirs} in {id}, which gives {} where this sentence does not",
                    q.shown(),
                    lost.shown()
                ),
            ));
        }
    }
    // Numbers and units.
    for q in &d.quantities {
        let matched = sc.quantities.iter().find(|sq| sq.equivalent(q));
        if let Some(sq) = matched {
            // A volume of a drug means nothing without its strength: where the source gives
            // the concentration beside the volume, the sentence must too ("0,5 ml adrenalin"
            // alone is a tenfold error with a 0,1 mg/ml ampoule).
            let strength = |c: &Claim| {
                c.quantities
                    .iter()
                    .any(|x| x.sig == "mass/volume" || x.sig == "percent")
            };
            if q.sig == "volume" && !d.drugs.is_empty() && strength(sc) && !strength(d) {
                out.push((
                    FindingKind::Unit,
                    format!(
                        "unit: {} without the concentration {id} gives with it",
                        q.shown()
                    ),
                ));
            }
            if q.sig == "time" {
                if let (Some(a), Some(b)) = (&q.qualifier, &sq.qualifier) {
                    if a != b {
                        out.push((
                            FindingKind::Timing,
                            format!("timing {a} {} vs {b} {} in {id}", q.shown(), sq.shown()),
                        ));
                    }
                }
            } else if q.limit != sq.limit {
                let say = |l: bool| if l { "a maximum" } else { "a dose" };
                out.push((
                    FindingKind::Dose,
                    format!(
                        "{} {} is {} here but {} in {id}",
                        q.shown(),
                        "",
                        say(q.limit),
                        say(sq.limit)
                    )
                    .replace("  ", " "),
                ));
            }
            if q.is_dose() {
                if let Some(what) = dose_population(d, q, sq, sc, passage_pops, id) {
                    out.push((FindingKind::Population, what));
                }
            }
            continue;
        }
        if q.sig == "bare" && sc.quantities.iter().any(|sq| value_in(q, sq)) {
            continue;
        }
        // A volume that follows from a dose and a concentration in the same sentence:
        // "0,5 mg (0,5 ml af 1 mg/ml)".
        if q.sig == "volume" {
            let derived = d.quantities.iter().filter(|m| m.sig == "mass").any(|m| {
                d.quantities
                    .iter()
                    .filter(|c| c.sig == "mass/volume" && c.lo > 0.0)
                    .any(|c| {
                        let v = m.lo / c.lo;
                        (v - q.lo).abs() <= 1e-6 * v.max(q.lo)
                            && sc.quantities.iter().any(|sq| sq.equivalent(m))
                    })
            });
            if derived {
                continue;
            }
        }
        let same_number = sc
            .quantities
            .iter()
            .find(|sq| sq.number == q.number && sq.unit != q.unit);
        let kind = if same_number.is_some() {
            FindingKind::Unit
        } else if q.sig == "time" {
            FindingKind::Timing
        } else {
            FindingKind::Dose
        };
        let near: Vec<String> = sc
            .quantities
            .iter()
            .filter(|sq| sq.sig == q.sig || same_number.is_some_and(|n| n == *sq))
            .map(Quantity::shown)
            .collect();
        let label = match kind {
            FindingKind::Unit => "unit",
            FindingKind::Timing => "time",
            _ => "dose",
        };
        let what = if near.is_empty() {
            format!("{label} {} is not in {id}", q.shown())
        } else {
            format!("{label} {} vs {} in {id}", q.shown(), near.join(", "))
        };
        out.push((kind, what));
    }
    // Routes: the aligned sentence, or its neighbours when it names none.
    let mut routes = sc.routes.clone();
    if routes.is_empty() {
        for n in neighbours {
            routes.extend(n.claim.routes.iter().cloned());
        }
    }
    let extra: Vec<String> = d
        .routes
        .difference(&routes)
        .map(|r| pretty_route(r).to_string())
        .collect();
    if !extra.is_empty() {
        out.push((
            FindingKind::Route,
            format!(
                "route {} vs {} in {id}",
                extra.join(", "),
                join(routes.iter().map(|r| pretty_route(r).to_string()))
            ),
        ));
    }
    // Negations: the same number of cues as the part of the source sentence the sentence
    // covers (a sentence may take one clause of a longer one).
    let expected = clause_negations(d, s, lex);
    if d.negations != expected {
        out.push((
            FindingKind::Negation,
            format!("{} negation(s) here vs {} in {id}", d.negations, expected),
        ));
    }
    // Populations named in the sentence, with their ages: "børn" is not supported by a
    // source that names only "børn over 12 år".
    let pops: BTreeSet<String> = if sc.population_labels.is_empty() {
        passage_pops.clone()
    } else {
        sc.population_labels.clone()
    };
    let mut mine = d.population_labels.clone();
    // The implied children of a weight-based dose, unless the source sentence doses by weight
    // as well and names no one, in a passage that names no one or only children (see
    // `dose_population`).
    if d.implied_child && !source_doses_the_same_children(sc, passage_pops) {
        mine.insert("boern".to_string());
    }
    let base = |p: &str| p.split('@').next().unwrap_or("").to_string();
    let extra: Vec<String> = mine
        .iter()
        .filter(|p| !pops.contains(*p) && !pops.iter().any(|t| !t.contains('@') && *t == base(p)))
        .map(|p| pretty_pop(p).to_string())
        .collect();
    if !extra.is_empty() && !out.iter().any(|(k, _)| *k == FindingKind::Population) {
        out.push((
            FindingKind::Population,
            format!(
                "population {} vs {} in {id}",
                extra.join(", "),
                join(pops.iter().map(|p| pretty_pop(p).to_string()))
            ),
        ));
    }
    // Drugs: named in the aligned sentence or its neighbours (for "it", "the dose"), or a
    // class of one; a sentence that names no drug at all inherits the passage's drugs.
    let mut drugs = sc.drugs.clone();
    for n in neighbours {
        drugs.extend(n.claim.drugs.iter().cloned());
    }
    if sc.drugs.is_empty() {
        drugs.extend(passage_drugs.iter().cloned());
    }
    let classes: BTreeSet<&str> = drugs.iter().flat_map(|x| lex.classes_of(x)).collect();
    let missing: Vec<&String> = d
        .drugs
        .iter()
        .filter(|x| !drugs.contains(*x) && !classes.contains(x.as_str()))
        .collect();
    if !missing.is_empty() {
        out.push((
            FindingKind::Drug,
            format!(
                "drug {} vs {} in {id}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                join(sc.drugs.iter().cloned())
            ),
        ));
    }
    out
}

/// Outline-cue score of a sentence for a section heading.
fn outline_cues(words: &[&str], heading: &str) -> usize {
    OUTLINE
        .iter()
        .find(|s| s.heading == heading)
        .map(|s| {
            s.cues
                .iter()
                .filter(|c| {
                    if c.contains(' ') {
                        let cw: Vec<&str> = c.split(' ').collect();
                        words.windows(cw.len()).any(|w| w == cw.as_slice())
                    } else {
                        words.iter().any(|w| w.starts_with(*c))
                    }
                })
                .count()
        })
        .unwrap_or(0)
}

/// A prohibition: a negation next to an instruction ("må ikke gives", "should not be given",
/// "gives ikke", "never give").
fn prohibits(c: &Claim, lex: &Lexicon) -> bool {
    let words = c.word_refs();
    (0..words.len()).any(|i| {
        lex.cue_at("imperative", &words, i).is_some()
            && [i.checked_sub(1), Some(i + 1), Some(i + 2)]
                .into_iter()
                .flatten()
                .filter(|j| *j < words.len())
                .any(|j| c.negation_pos.contains(&j))
    })
}

const INDICATIONS: &str = "Indikationer";
const CONTRAINDICATIONS: &str = "Kontraindikationer";

/// Verifies a procedure against the passages of its retrieved sources.
pub fn verify(markdown: &str, evidence: &Evidence<'_>, lexicon: &Lexicon) -> Verification {
    let doc = reader::read(markdown);
    let mut ctx = Ctx {
        findings: Vec::new(),
    };
    for f in &doc.findings {
        let sev = severity_of(f.kind);
        ctx.push(
            sev,
            f.kind,
            &f.section,
            f.line,
            &f.text,
            &[],
            None,
            f.what.clone(),
        );
    }
    let mut corpus = Corpus::new(evidence);
    let topic = corpus.topic_terms(lexicon);
    let mut checks: Vec<SentenceCheck> = Vec::new();
    // (drug, route, population) -> (dose, shown, line) of the first sentence that gave it.
    let mut doses: BTreeMap<(String, String, String), (Quantity, usize)> = BTreeMap::new();
    // Per Procedure step: (source id, passage, aligned index, step's check index).
    let mut step_alignments: Vec<(String, usize, usize, usize)> = Vec::new();
    let mut danish = 0usize;
    let mut english = 0usize;
    let mut claims_of: Vec<Claim> = Vec::new();
    for sec in &doc.sections {
        for s in &sec.sentences {
            let c = extract(&s.text, lexicon);
            danish += c.danish_words;
            english += c.english_words;
            claims_of.push(c);
        }
    }
    // The outline is Danish, so the procedure is meant to be; the totals are kept for the
    // message only.
    let _ = (danish, english);
    let mut k = 0usize;
    for sec in &doc.sections {
        if sec.heading == REFERENCES {
            continue;
        }
        let evidence_section = OUTLINE.iter().any(|o| o.heading == sec.heading)
            && sec.heading != crate::outline::CHECKLIST;
        if evidence_section && sec.sentences.is_empty() {
            ctx.push(
                Severity::Warning,
                FindingKind::EmptySection,
                &sec.heading,
                sec.line,
                "",
                &[],
                None,
                format!("section \"{}\" has no content", sec.heading),
            );
        }
        for s in &sec.sentences {
            let d = &claims_of[k];
            k += 1;
            let words = d.word_refs();
            let imperative = lexicon.has_cue("imperative", &words);
            let mut check = SentenceCheck {
                section: sec.heading.clone(),
                line: s.line,
                text: s.text.clone(),
                citations: s.citations.clone(),
                supported_by: Vec::new(),
                blocked: false,
            };
            let before = ctx.findings.len();
            if s.citations.is_empty() {
                let clinical = d.is_clinical() || imperative || s.step || sec.heading == PROCEDURE;
                let (kind, what) = if clinical {
                    (
                        FindingKind::UncitedClinical,
                        "clinical content without a citation",
                    )
                } else {
                    (FindingKind::UncitedSentence, "sentence without a citation")
                };
                ctx.push(
                    severity_of(kind),
                    kind,
                    &sec.heading,
                    s.line,
                    &s.text,
                    &[],
                    None,
                    what.into(),
                );
            }
            for id in &s.citations {
                if !corpus.retrieved(id) {
                    ctx.push(
                        Severity::Blocking,
                        FindingKind::UnknownSource,
                        &sec.heading,
                        s.line,
                        &s.text,
                        &s.citations,
                        None,
                        format!("{id} is not among the retrieved sources"),
                    );
                    continue;
                }
                corpus.load(id, lexicon);
                // Best-aligned sentence of this source; ties go to the earlier sentence.
                let best = corpus
                    .of_source(id)
                    .map(|(i, ss)| (align_score(d, &ss.claim), i))
                    .fold(None::<(f64, usize)>, |acc, x| match acc {
                        Some(a) if a.0 >= x.0 => Some(a),
                        _ => Some(x),
                    });
                let Some((_, bi)) = best else {
                    ctx.push(
                        Severity::Blocking,
                        FindingKind::Unsupported,
                        &sec.heading,
                        s.line,
                        &s.text,
                        &s.citations,
                        None,
                        format!("{id} has no readable text"),
                    );
                    continue;
                };
                let ss = &corpus.sentences[bi];
                let p = &evidence.passages[ss.passage];
                let aligned = Aligned {
                    source_id: id.clone(),
                    page: p.page,
                    sentence: ss.text.clone(),
                };
                let (cov, _, topical) = coverage(d, &ss.claim);
                let neighbours: Vec<&SourceSentence> = corpus
                    .sentences
                    .iter()
                    .filter(|n| {
                        n.passage == ss.passage
                            && n.index + 1 >= ss.index
                            && n.index <= ss.index + 1
                            && n.index != ss.index
                    })
                    .collect();
                // The aligned sentence and the sentences beside it: a sentence may join what
                // its source says in two ("gives i.m. in the thigh" + "adults get 0,5 mg").
                let window: Vec<&Claim> = std::iter::once(&ss.claim)
                    .chain(neighbours.iter().map(|n| &n.claim))
                    .collect();
                let specific = specific_support(d, &window, &topic, lexicon);
                check.supported_by.push(Support {
                    source_id: id.clone(),
                    page: p.page,
                    passage_sentence: ss.text.clone(),
                    coverage: (cov * 100.0).round() / 100.0,
                    specific: (specific.share() * 100.0).round() / 100.0,
                    missing: specific
                        .missing_terms
                        .iter()
                        .chain(specific.missing_words.iter())
                        .cloned()
                        .collect(),
                });
                let empty = BTreeSet::new();
                let pops = corpus.passage_pops.get(&ss.passage).unwrap_or(&empty);
                let drugs = corpus.passage_drugs.get(&ss.passage).unwrap_or(&empty);
                for (kind, what) in compare(d, ss, &neighbours, pops, drugs, id, lexicon) {
                    ctx.push(
                        severity_of(kind),
                        kind,
                        &sec.heading,
                        s.line,
                        &s.text,
                        &s.citations,
                        Some(aligned.clone()),
                        what,
                    );
                }
                if topical == 0 {
                    ctx.push(
                        Severity::Blocking,
                        FindingKind::Unsupported,
                        &sec.heading,
                        s.line,
                        &s.text,
                        &s.citations,
                        Some(aligned.clone()),
                        format!("{id} shares nothing with the sentence"),
                    );
                } else if specific.unsupported() {
                    ctx.push(
                        Severity::Blocking,
                        FindingKind::Unsupported,
                        &sec.heading,
                        s.line,
                        &s.text,
                        &s.citations,
                        Some(aligned.clone()),
                        format!(
                            "{id} does not say this: its sentence(s) name {:.0} % of what this sentence states; not {}",
                            specific.share().min(specific.term_share()) * 100.0,
                            specific
                                .missing_terms
                                .iter()
                                .chain(specific.missing_words.iter())
                                .map(|w| format!("\"{w}\""))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                } else if cov < WEAK_COVERAGE {
                    ctx.push(
                        Severity::Warning,
                        FindingKind::WeakSupport,
                        &sec.heading,
                        s.line,
                        &s.text,
                        &s.citations,
                        Some(aligned.clone()),
                        format!(
                            "only {:.0} % of the sentence's content is in {id}",
                            cov * 100.0
                        ),
                    );
                }
                // Indications and contraindications must not trade places.
                let src_words = ss.claim.word_refs();
                let contra = |w: &[&str]| {
                    lexicon.has_cue("contraindication", w) || outline_cues(w, CONTRAINDICATIONS) > 0
                };
                let indic = |w: &[&str]| {
                    lexicon.has_cue("indication", w) || outline_cues(w, INDICATIONS) > 0
                };
                // Under Indikationer, a sentence its source frames as a contraindication
                // ("ingen absolutte kontraindikationer", "kontraindiceret") or as a prohibition
                // ("should not be given") contradicts its section, negated or not: the reader
                // of that section looks for when to act. Where the source also frames it as an
                // indication, it is a reviewer's call.
                let prohibition = |c: &Claim| prohibits(c, lexicon);
                let framed_contra = contra(&words)
                    || contra(&src_words)
                    || prohibition(&ss.claim)
                    || prohibition(d);
                if sec.heading == INDICATIONS && framed_contra {
                    let kind = if indic(&src_words) && indic(&words) {
                        FindingKind::MisplacedSection
                    } else {
                        FindingKind::SectionContradiction
                    };
                    ctx.push(
                        severity_of(kind),
                        kind,
                        &sec.heading,
                        s.line,
                        &s.text,
                        &s.citations,
                        Some(aligned.clone()),
                        format!(
                            "{id} states this as a contraindication or prohibition, not an indication: \"{}\"",
                            ss.text
                        ),
                    );
                }
                // A step under Indikationer: an instruction or a dose its source does not give
                // as an indication. It contradicts nothing, so a reviewer decides.
                let instructs = |w: &[&str]| lexicon.has_cue("imperative", w);
                if sec.heading == INDICATIONS
                    && !framed_contra
                    && !indic(&words)
                    && !indic(&src_words)
                    && (instructs(&words) || s.step || d.quantities.iter().any(|q| q.is_dose()))
                {
                    ctx.push(
                        Severity::Warning,
                        FindingKind::MisplacedSection,
                        &sec.heading,
                        s.line,
                        &s.text,
                        &s.citations,
                        Some(aligned.clone()),
                        format!("reads as a step, not an indication; {id} does not give it as one"),
                    );
                }
                if sec.heading == CONTRAINDICATIONS
                    && !contra(&words)
                    && !contra(&src_words)
                    && ss.claim.negations == 0
                    && (indic(&words) || indic(&src_words))
                {
                    ctx.push(
                        Severity::Blocking,
                        FindingKind::SectionContradiction,
                        &sec.heading,
                        s.line,
                        &s.text,
                        &s.citations,
                        Some(aligned.clone()),
                        format!("{id} states this as an indication, not a contraindication"),
                    );
                }
                if sec.heading == PROCEDURE {
                    step_alignments.push((id.clone(), ss.passage, ss.index, checks.len()));
                }
            }
            // English in a Danish procedure.
            if d.english_words >= 3 && d.english_words > 2 * d.danish_words {
                ctx.push(
                    Severity::Warning,
                    FindingKind::EnglishSentence,
                    &sec.heading,
                    s.line,
                    &s.text,
                    &s.citations,
                    None,
                    "English sentence in a Danish procedure".into(),
                );
            }
            // A sentence whose words all point to another section.
            if sec.heading != INDICATIONS
                && sec.heading != CONTRAINDICATIONS
                && !sec.heading.is_empty()
            {
                let own = outline_cues(&words, &sec.heading);
                if own == 0 {
                    if let Some(other) = OUTLINE
                        .iter()
                        .filter(|o| o.heading != sec.heading)
                        .map(|o| (outline_cues(&words, o.heading), o.heading))
                        .filter(|x| x.0 >= 2)
                        .max_by_key(|x| x.0)
                    {
                        ctx.push(
                            Severity::Warning,
                            FindingKind::MisplacedSection,
                            &sec.heading,
                            s.line,
                            &s.text,
                            &s.citations,
                            None,
                            format!("probably belongs under \"{}\"", other.1),
                        );
                    }
                }
            }
            // Conflicting doses within the draft.
            let single: Vec<&Quantity> = d
                .quantities
                .iter()
                .filter(|q| q.sig.starts_with("mass") && q.sig != "mass/volume" && !q.limit)
                .collect();
            if d.drugs.len() == 1
                && d.routes.len() <= 1
                && single.len() == 1
                && d.populations.len() <= 1
                && single[0].population.len() <= 1
            {
                let q = single[0];
                let key = (
                    d.drugs.iter().next().cloned().unwrap_or_default(),
                    d.routes.iter().next().cloned().unwrap_or_default(),
                    q.population
                        .first()
                        .cloned()
                        .or_else(|| d.populations.iter().next().cloned())
                        .unwrap_or_default(),
                );
                match doses.get(&key) {
                    Some((prev, line)) if !prev.same_value(q) => {
                        ctx.push(
                            Severity::Blocking,
                            FindingKind::ConflictingDose,
                            &sec.heading,
                            s.line,
                            &s.text,
                            &s.citations,
                            None,
                            format!(
                                "dose {} here vs {} on line {line} for {} {}",
                                q.shown(),
                                prev.shown(),
                                key.0,
                                pretty_route(&key.1)
                            ),
                        );
                    }
                    Some(_) => {}
                    None => {
                        doses.insert(key, (q.clone(), s.line));
                    }
                }
            }
            check.blocked = ctx.findings[before..]
                .iter()
                .any(|f| f.severity == Severity::Blocking);
            checks.push(check);
        }
    }
    // Steps in the reverse of their source's order, where the source marks the sequence.
    for a in 0..step_alignments.len() {
        for b in a + 1..step_alignments.len() {
            let (ida, pa, ia, ca) = &step_alignments[a];
            let (idb, pb, ib, cb) = &step_alignments[b];
            if ida != idb || pa != pb || ia <= ib || ca == cb {
                continue;
            }
            // Step `a` comes first in the draft but later in the source.
            let later = corpus
                .sentences
                .iter()
                .find(|s| s.passage == *pa && s.index == *ia);
            // The order is marked when the source sentence or the step itself says "after",
            // "then", "before"...
            let sequenced = later
                .is_some_and(|s| lexicon.has_cue("sequence", &s.claim.word_refs()))
                || lexicon.has_cue("sequence", &claims_of[*ca].word_refs());
            let kind_sev = if sequenced {
                Severity::Blocking
            } else {
                Severity::Warning
            };
            let first = &checks[*ca];
            let second = &checks[*cb];
            ctx.push(
                kind_sev,
                if sequenced {
                    FindingKind::StepOrder
                } else {
                    FindingKind::MisplacedSection
                },
                &first.section,
                first.line,
                &first.text,
                &first.citations,
                later.map(|s| Aligned {
                    source_id: ida.clone(),
                    page: evidence.passages[s.passage].page,
                    sentence: s.text.clone(),
                }),
                format!(
                    "step comes before \"{}\" (line {}), but follows it in {ida}",
                    second.text.chars().take(60).collect::<String>(),
                    second.line
                ),
            );
            if sequenced {
                checks[*ca].blocked = true;
            }
        }
    }
    let mut findings = ctx.findings;
    findings.sort_by(|a, b| {
        a.line
            .cmp(&b.line)
            .then(a.severity.cmp(&b.severity))
            .then(a.kind.cmp(&b.kind))
    });
    let blocking = findings
        .iter()
        .filter(|f| f.severity == Severity::Blocking)
        .count();
    let warnings = findings.len() - blocking;
    Verification {
        findings,
        sentences: checks,
        blocking,
        warnings,
        checked: CHECKED.to_vec(),
        not_checked: NOT_CHECKED.to_vec(),
    }
}

#[cfg(test)]
mod tests;
