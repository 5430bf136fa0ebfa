//! The concept model of a request: what procedure a title asks for, and what only qualifies it.
//!
//! "Lumbalpunktur hos børn" is the procedure *lumbalpunktur* (with its synonym group from the
//! lexicon: lumbar puncture, spinal tap, LP, …) qualified by the population *børn*. The
//! procedure selects sources; qualifiers (population, action, setting) and the context rank
//! and filter them but never pull in a source on their own — "børn" alone must not retrieve
//! the paediatric anaphylaxis guideline.
//!
//! A title whose procedure the lexicon does not know falls back to its own topic words (the
//! words that are neither function words, generic words nor qualifiers), of which a source must
//! match all (three, of a longer title). Each topic word stands for its `[vocabulary]` group
//! of the lexicon in both languages (skulder = shoulder, reponering = reduction), and a
//! compound for itself or all of its parts, translated ("knoglemarvsbiopsi" = bone marrow +
//! biopsy).
//!
//! Terms are matched on the analysed text of [`crate::analyze`]: [`Match`] is both the query
//! the library's full-text index runs and what retrieval checks passages against in memory.

use crate::analyze::{raw_words, word_spans, Analyzer};
use crate::ports::{Match, Term};
use crate::verify::lexicon::Category;
use crate::verify::Lexicon;
use serde::Serialize;
use std::sync::{Arc, Mutex, PoisonError};

/// A group of alternative terms that mean one thing (a procedure, a population, a word).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The lexicon's canonical name, or the word itself.
    pub name: String,
    /// The terms as written (for explanations).
    pub terms: Vec<String>,
    #[serde(skip)]
    pub matcher: Match,
}

/// Population families: a source about one is not used for the other when evidence for the
/// requested one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Adults,
    Children,
}

impl Family {
    /// The family of a lexicon population group.
    pub fn of(group: &str) -> Option<Family> {
        match group {
            "voksne" | "aeldre" | "gravide" | "ammende" => Some(Family::Adults),
            "boern" | "spaedboern" | "nyfoedte" | "unge" => Some(Family::Children),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Family::Adults => "voksne",
            Family::Children => "børn",
        }
    }
}

/// The request as retrieval understands it.
#[derive(Debug, Clone, Serialize)]
pub struct Concept {
    /// The procedure's synonym groups (from the lexicon), or the title's topic words.
    pub anchor: Vec<Group>,
    /// How many anchor groups a source must match: 1 for a known procedure, most of the
    /// topic words otherwise.
    pub required: usize,
    /// Whether the anchor is a lexicon procedure (else the title's own words).
    pub known_procedure: bool,
    /// Whether the anchor is a technique's name in the title ("Mother's kiss"): a document
    /// that describes it in a passage with the title's other words is on it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub named_technique: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population: Option<(Family, Group)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Group>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setting: Option<Group>,
    /// The conditions the title names the procedure for ("ved atrieflimren"), with their
    /// broader terms: a source titled for another condition is about another indication, and
    /// one that never names them where it discusses the procedure is not about this one when
    /// sources that do exist. They rank too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub indication: Vec<Group>,
    /// Terms that only rank: other lexicon hits of the title, and the context.
    pub rank: Vec<Group>,
    /// The title's abbreviations the lexicon does not know, read as the library defines them
    /// ("TCP" → "transcutaneous pacing"): the title is read with the long form, and the
    /// abbreviation joins that group's terms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub abbreviations: Vec<Abbreviation>,
    /// The lexicon's procedures (a source titled for another one is about it), populations (to
    /// tell what a source is about) and actions, compiled once per lexicon.
    #[serde(skip)]
    lexicon_groups: Arc<LexiconGroups>,
}

/// A lexicon's procedure, population and action groups compiled for matching.
#[derive(Debug)]
pub(crate) struct LexiconGroups {
    procedures: Indexed,
    populations: Vec<(Family, Group)>,
    actions: Indexed,
    conditions: Indexed,
}

/// Groups with an index of their terms' first letters: a title is matched against the few
/// groups whose terms begin like one of its words, not against every group of the lexicon
/// (hundreds, for each of the hundreds of documents a retrieval judges).
#[derive(Debug)]
struct Indexed {
    groups: Vec<Group>,
    by_start: std::collections::HashMap<String, Vec<usize>>,
}

/// How many first letters of a term the index keys it by.
const START_CHARS: usize = 3;

impl Indexed {
    fn new(groups: Vec<Group>) -> Indexed {
        let mut by_start: std::collections::HashMap<String, Vec<usize>> = Default::default();
        for (i, g) in groups.iter().enumerate() {
            let mut terms = Vec::new();
            leaves(&g.matcher, &mut terms);
            for t in terms {
                let at = by_start
                    .entry(t.text.chars().take(START_CHARS).collect())
                    .or_default();
                if at.last() != Some(&i) {
                    at.push(i);
                }
            }
        }
        Indexed { groups, by_start }
    }

    /// The groups that match `tokens`, in their order. Any match needs one of a group's terms
    /// to equal or begin a token, so the token's first letters find it.
    fn matching<'a>(&'a self, tokens: &Tokens<'_>) -> Vec<&'a Group> {
        let mut at: Vec<usize> = Vec::new();
        for w in &tokens.sorted {
            for (n, (end, _)) in w.char_indices().skip(1).chain([(w.len(), ' ')]).enumerate() {
                if n >= START_CHARS {
                    break;
                }
                if let Some(found) = self.by_start.get(&w[..end]) {
                    at.extend(found);
                }
            }
        }
        at.sort_unstable();
        at.dedup();
        at.into_iter()
            .map(|i| &self.groups[i])
            .filter(|g| g.matcher.matches(tokens))
            .collect()
    }
}

/// The terms a match is made of.
fn leaves<'a>(m: &'a Match, out: &mut Vec<&'a Term>) {
    match m {
        Match::Term(t) => out.push(t),
        Match::Near(ts) => out.extend(ts),
        Match::Any(ms) | Match::All(ms) => ms.iter().for_each(|m| leaves(m, out)),
    }
}

impl LexiconGroups {
    /// The population families `tokens` name: (adults, children).
    pub(crate) fn families(&self, tokens: &Tokens<'_>) -> (bool, bool) {
        let mut adults = false;
        let mut children = false;
        for (f, g) in &self.populations {
            if (*f == Family::Adults && adults) || (*f == Family::Children && children) {
                continue;
            }
            if g.matcher.matches(tokens) {
                match f {
                    Family::Adults => adults = true,
                    Family::Children => children = true,
                }
            }
        }
        (adults, children)
    }
}

/// The lexicon's population groups (with its other groups), compiled once per lexicon.
pub(crate) fn population_groups(lexicon: &Lexicon, analyzer: &Analyzer) -> Arc<LexiconGroups> {
    lexicon_groups(lexicon, analyzer)
}

/// The groups of `lexicon` compiled with `analyzer`. They are the same for every request until
/// the lexicon is replaced, and compiling them (the stems of some thousand terms) costs more
/// than the rest of a concept, so the last lexicon's are kept.
fn lexicon_groups(lexicon: &Lexicon, analyzer: &Analyzer) -> Arc<LexiconGroups> {
    type Key = (u64, usize);
    static LAST: Mutex<Option<(Key, Arc<LexiconGroups>)>> = Mutex::new(None);
    let key = (lexicon.id(), std::ptr::from_ref(analyzer) as usize);
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((k, groups)) = last.as_ref() {
        if *k == key {
            return groups.clone();
        }
    }
    let groups = Arc::new(LexiconGroups {
        procedures: Indexed::new(
            lexicon
                .groups_of(Category::Procedure)
                .map(|(name, terms)| group(analyzer, name, terms))
                .collect(),
        ),
        populations: lexicon
            .groups_of(Category::Population)
            .filter_map(|(name, terms)| Family::of(name).map(|f| (f, group(analyzer, name, terms))))
            .collect(),
        actions: Indexed::new(
            lexicon
                .groups_of(Category::Action)
                .map(|(name, terms)| group(analyzer, name, terms))
                .collect(),
        ),
        conditions: Indexed::new(
            lexicon
                .groups_of(Category::Condition)
                .map(|(name, terms)| group(analyzer, name, terms))
                .collect(),
        ),
    });
    *last = Some((key, groups.clone()));
    groups
}

/// The index terms a lexicon term stands for.
pub fn term_match(analyzer: &Analyzer, term: &str) -> Option<Match> {
    let t = term.trim().to_lowercase();
    let (body, prefix) = match t.strip_suffix('*') {
        Some(b) => (b.to_string(), true),
        None => (t.clone(), false),
    };
    // The index leaves out function words ("reponering af skulder" is indexed as "reponering
    // skulder"), so a phrase matches without them.
    let mut words: Vec<String> = raw_words(&body);
    if words.len() > 1 && words.iter().any(|w| !analyzer.is_stop(w)) {
        words.retain(|w| !analyzer.is_stop(w));
    }
    match words.len() {
        0 => None,
        1 => Some(word_match(analyzer, &words[0], prefix, false)),
        _ => Some(Match::Near(
            words
                .iter()
                .map(|w| {
                    // The shortest stem as a prefix matches the word's inflections in either
                    // language.
                    let mut stems = analyzer.stems(w);
                    stems.push(w.clone());
                    let s = stems
                        .into_iter()
                        .min_by_key(|s| s.chars().count())
                        .unwrap_or_default();
                    Term {
                        prefix: s.chars().count() >= 3,
                        text: s,
                    }
                })
                .collect(),
        )),
    }
}

/// The index terms of one word: its stems (or, for a prefix term, the prefix and its stems as
/// prefixes); a compound also matches its parts together.
pub fn word_match(analyzer: &Analyzer, word: &str, prefix: bool, parts: bool) -> Match {
    let mut alts: Vec<Match> = Vec::new();
    let mut push = |t: Term| {
        let m = Match::Term(t);
        if !alts.contains(&m) {
            alts.push(m);
        }
    };
    let long_enough = |s: &str| s.chars().count() >= 3;
    if prefix && long_enough(word) {
        push(Term {
            text: word.to_string(),
            prefix: true,
        });
    }
    for s in analyzer.stems(word) {
        push(Term {
            prefix: prefix && long_enough(&s),
            text: s,
        });
    }
    if let Some(parts) = analyzer.split(word).filter(|_| parts) {
        let all: Vec<Match> = parts
            .iter()
            .map(|p| {
                Match::Any(
                    analyzer
                        .stems(p)
                        .into_iter()
                        .map(|s| {
                            Match::Term(Term {
                                text: s,
                                prefix: false,
                            })
                        })
                        .collect(),
                )
            })
            .collect();
        alts.push(Match::All(all));
    }
    if alts.len() == 1 {
        alts.pop().unwrap_or(Match::Any(Vec::new()))
    } else {
        Match::Any(alts)
    }
}

fn group(analyzer: &Analyzer, name: &str, terms: &[String]) -> Group {
    Group {
        name: name.to_string(),
        terms: terms.to_vec(),
        matcher: Match::Any(
            terms
                .iter()
                .filter_map(|t| term_match(analyzer, t))
                .collect(),
        ),
    }
}

/// Most letters a prefix term's match may add to its stem and still be the same word (an
/// inflection: "kanyle*" → "kanylerne"), not a compound that begins with it.
const MAX_PREFIX_INFLECTION: usize = 5;

/// The lexicon hits of some words, with each compound's parts scanned too (so "børnelumbal-
/// punktur" names lumbalpunktur and børn). Returns (category, group, word indices covered,
/// whether the hit covers its words whole): a compound is covered only when every part of it
/// is, so "nålethorakocentese" stays a word of the title's topic though "nål" alone is a
/// lexicon word.
fn hits(
    lexicon: &Lexicon,
    analyzer: &Analyzer,
    words: &[String],
) -> Vec<(Category, String, Vec<usize>, bool)> {
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut out: Vec<(Category, String, Vec<usize>, bool)> = lexicon
        .scan(&refs)
        .into_iter()
        .map(|h| {
            (
                h.category,
                h.group,
                (h.start..h.start + h.len).collect(),
                true,
            )
        })
        .collect();
    for (i, w) in words.iter().enumerate() {
        if out
            .iter()
            .any(|(c, _, at, _)| at.contains(&i) && is_topic(*c))
        {
            continue;
        }
        if let Some(parts) = analyzer.split(w) {
            let prefs: Vec<&str> = parts.iter().map(String::as_str).collect();
            let found = lexicon.scan(&prefs);
            let whole = (0..parts.len()).all(|k| {
                analyzer.is_stop(&parts[k])
                    || found
                        .iter()
                        .any(|h| (h.start..h.start + h.len).contains(&k))
            });
            for h in found {
                out.push((h.category, h.group, vec![i], whole));
            }
        }
    }
    // A Danish compound ends in its head ("hudabsces" is an "absces"), so a procedure phrase
    // whose last word is a compound's head names that compound too: "drænage af hudabsces" is
    // a "drænage af absces". The compound's other parts are left to rank (not covered).
    for (i, w) in words.iter().enumerate().skip(1) {
        let Some(head) = analyzer.split(w).and_then(|parts| parts.last().cloned()) else {
            continue;
        };
        let mut refs: Vec<&str> = words.iter().map(String::as_str).collect();
        refs[i] = &head;
        for h in lexicon.scan(&refs) {
            if h.len < 2
                || h.start + h.len - 1 != i
                || !is_topic(h.category)
                || out.iter().any(|(_, g, _, _)| *g == h.group)
            {
                continue;
            }
            out.push((h.category, h.group, (h.start..=i).collect(), false));
        }
    }
    out
}

/// The anchor groups of a title's topic words (indices into `words`) when the lexicon names no
/// procedure in it: each word, or phrase of the vocabulary ("atrial fibrillation"), stands for
/// its `[vocabulary]` group in both languages when it has one, so "Skulderluksation
/// reponering" also finds "Reduction of anterior shoulder dislocation". A compound stands for
/// itself or all of its parts (each the longest run of parts the vocabulary knows, translated),
/// so "knoglemarvsbiopsi" also finds "bone marrow biopsy".
fn topic_groups(
    lexicon: &Lexicon,
    analyzer: &Analyzer,
    words: &[String],
    topic: &[usize],
) -> Vec<Group> {
    let vocabulary = |name: &str| -> (Vec<String>, Vec<Match>) {
        let terms = lexicon.vocabulary_terms(name).to_vec();
        let matchers = terms
            .iter()
            .filter_map(|t| term_match(analyzer, t))
            .collect();
        (terms, matchers)
    };
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut groups: Vec<(usize, Group)> = Vec::new();
    let mut done = vec![false; words.len()];
    // Phrases of the vocabulary over topic words only.
    for h in lexicon.scan_vocabulary(&refs) {
        let span = h.start..h.start + h.len;
        if h.len < 2 || !span.clone().all(|i| topic.contains(&i) && !done[i]) {
            continue;
        }
        let (terms, mut alts) = vocabulary(&h.group);
        alts.push(Match::All(
            span.clone()
                .map(|i| word_match(analyzer, &words[i], false, false))
                .collect(),
        ));
        for i in span {
            done[i] = true;
        }
        groups.push((
            h.start,
            Group {
                name: h.group,
                terms,
                matcher: Match::Any(alts),
            },
        ));
    }
    // A possessive name whose owner the vocabulary knows ("Nursemaid's elbow" by
    // "nursemaid*"): the word it qualifies is part of the name when the group's own terms use
    // that word ("pulled elbow"), so the name anchors as one group, not as "elbow" beside it.
    for &i in topic {
        let Some(g) = lexicon.vocabulary_word(&words[i]) else {
            continue;
        };
        let head = i + 2;
        if done[i]
            || words.get(i + 1).is_none_or(|w| w != "s")
            || !topic.contains(&head)
            || done[head]
        {
            continue;
        }
        let head_stems = analyzer.stems(&words[head]);
        let names_head = lexicon.vocabulary_terms(g).iter().any(|t| {
            let ws = raw_words(t.trim_end_matches('*'));
            ws.len() >= 2
                && ws
                    .iter()
                    .any(|x| analyzer.stems(x).iter().any(|s| head_stems.contains(s)))
        });
        if names_head {
            done[head] = true;
        }
    }
    for &i in topic {
        if done[i] {
            continue;
        }
        let w = &words[i];
        let own = word_match(analyzer, w, w.chars().count() >= 6, false);
        let mut terms = vec![w.clone()];
        let mut alts = vec![own];
        if let Some(parts) = analyzer.split(w) {
            // Each longest run of parts the vocabulary knows, else the part itself.
            let mut all = Vec::new();
            let mut at = 0;
            while at < parts.len() {
                let mut took = None;
                for end in (at + 1..=parts.len()).rev() {
                    let joined = parts[at..end].concat();
                    if let Some(g) = lexicon.vocabulary_word(&joined) {
                        took = Some((end, g.to_string()));
                        break;
                    }
                }
                match took {
                    Some((end, name)) => {
                        let (t, m) = vocabulary(&name);
                        terms.extend(t);
                        all.push(Match::Any(m));
                        at = end;
                    }
                    None => {
                        all.push(word_match(analyzer, &parts[at], false, false));
                        terms.push(parts[at].clone());
                        at += 1;
                    }
                }
            }
            alts.push(Match::All(all));
        } else if let Some(g) = lexicon.vocabulary_word(w) {
            let (t, m) = vocabulary(g);
            terms.extend(t);
            alts.extend(m);
        }
        terms.dedup();
        groups.push((
            i,
            Group {
                name: w.clone(),
                terms,
                matcher: Match::Any(alts),
            },
        ));
    }
    groups.sort_by_key(|(i, _)| *i);
    groups.into_iter().map(|(_, g)| g).collect()
}

fn is_topic(c: Category) -> bool {
    matches!(c, Category::Procedure)
}

/// A technique's name in a title read word by word, as indices into `words`: a possessive
/// the lexicon does not know with the word it qualifies ("Mother's kiss", "Bier's block"), or
/// capitalised words it does not know right before a technique word of the lexicon's
/// `technique` cues ("Stimson technique", "FARES method"). `known[i]`: the lexicon or its
/// vocabulary knows word `i`.
fn technique_name(
    lexicon: &Lexicon,
    analyzer: &Analyzer,
    title: &str,
    words: &[String],
    topic: &[usize],
    known: &[bool],
) -> Option<Vec<usize>> {
    // The title's words as `raw_words` cuts them, with what follows each and whether it
    // begins with a capital.
    let spans: Vec<(bool, &str)> = word_spans(title)
        .into_iter()
        .map(|(start, end)| {
            let capital = title[start..]
                .chars()
                .next()
                .is_some_and(char::is_uppercase);
            (capital, &title[end..])
        })
        .collect();
    if spans.len() != words.len() {
        return None;
    }
    let unknown = |i: usize| topic.contains(&i) && !known[i];
    let apostrophe = |s: &str| s.starts_with('\'') || s.starts_with('\u{2019}');
    for i in 0..words.len() {
        let after = spans[i].1;
        // "Mother's kiss": the word, an apostrophe and "s"; "Colles' fracture": a word ending
        // in s, then an apostrophe and no letter.
        let head = if apostrophe(after) && words.get(i + 1).is_some_and(|w| w == "s") {
            i + 2
        } else if apostrophe(after)
            && words[i].ends_with('s')
            && !after.chars().nth(1).is_some_and(char::is_alphanumeric)
        {
            i + 1
        } else {
            continue;
        };
        if !unknown(i) {
            continue;
        }
        let mut name = vec![i];
        if words
            .get(head)
            .is_some_and(|w| !analyzer.is_stop(w) && !lexicon.has_cue("technique", &[w]))
        {
            name.push(head);
        }
        return Some(name);
    }
    for (i, w) in words.iter().enumerate().skip(1) {
        if !lexicon.has_cue("technique", &[w]) {
            continue;
        }
        let mut from = i;
        while from > 0 && unknown(from - 1) && spans[from - 1].0 && i - from < 2 {
            from -= 1;
        }
        if from < i {
            return Some((from..i).collect());
        }
    }
    None
}

/// The population family an age bound in a title names ("… in patients over 65": adults).
pub fn title_age_family(title: &str) -> Option<Family> {
    title_age(&raw_words(title)).and_then(|(name, _)| Family::of(name))
}

/// The population an age bound in a title names, and the words that say it: a lower bound of
/// 65 years or more is older adults, of 16 or more adults ("over 75 years", "aged 16 years and
/// over", "≥ 18 år", "75 år og derover"); an upper bound of 18 or less is children ("under 2
/// år", "younger than 16 years"); a range within one family is that family ("aged 2–12 years").
fn title_age(words: &[String]) -> Option<(&'static str, Vec<usize>)> {
    let year = |w: &str| w.starts_with("year") || w == "år" || w == "aar" || w == "yrs";
    let lower = |w: &str| {
        matches!(
            w,
            "over" | "above" | "older" | "ældre" | "mindst" | "least" | "fra" | "from"
        )
    };
    let upper = |w: &str| matches!(w, "under" | "below" | "younger" | "yngre" | "op" | "up");
    let age_word = |w: &str| matches!(w, "aged" | "age" | "ages" | "alder" | "alderen");
    let after_lower = |w: &str| matches!(w, "over" | "older" | "derover" | "opefter" | "above");
    let person = |w: &str| {
        w.starts_with("patient")
            || matches!(
                w,
                "adults" | "voksne" | "people" | "personer" | "persons" | "individuals"
            )
    };
    for (i, w) in words.iter().enumerate() {
        let Ok(n) = w.parse::<u32>() else { continue };
        // "2–12 years": the number before the dash is a word of its own.
        let (from, to, unit) = match (words.get(i + 1), words.get(i + 2)) {
            (Some(u), _) if year(u) => (n, n, i + 1),
            (Some(m), Some(u)) if year(u) => match m.parse::<u32>() {
                Ok(m) if m >= n => (n, m, i + 2),
                _ => continue,
            },
            // "in patients over 65", "patienter over 75": a lower bound on people, at the
            // title's end or before a connecting word ("… over 65 with peripheral vascular
            // disease"), is an age without its unit.
            // "patients aged 65 and over", "aged 16 or older": an age word before the number
            // and a bound after it.
            (Some(c), Some(b))
                if i >= 1
                    && age_word(&words[i - 1])
                    && matches!(c.as_str(), "and" | "or" | "og" | "eller")
                    && after_lower(b) =>
            {
                (n, n, i)
            }
            (next, _)
                if i >= 2
                    && lower(&words[i - 1])
                    && person(&words[i - 2])
                    && next.is_none_or(|w| {
                        matches!(
                            w.as_str(),
                            "with"
                                | "and"
                                | "in"
                                | "who"
                                | "undergoing"
                                | "med"
                                | "og"
                                | "i"
                                | "der"
                                | "som"
                        )
                    }) =>
            {
                (n, n, i)
            }
            _ => continue,
        };
        let before: Vec<&str> = words[i.saturating_sub(2)..i]
            .iter()
            .map(String::as_str)
            .collect();
        let after: Vec<&str> = words[unit + 1..(unit + 3).min(words.len())]
            .iter()
            .map(String::as_str)
            .collect();
        let mut at: Vec<usize> = (i.saturating_sub(2)..=unit).collect();
        let name = if before.iter().any(|w| lower(w)) || after.iter().any(|w| after_lower(w)) {
            if after.iter().any(|w| after_lower(w)) {
                at.extend(unit + 1..(unit + 3).min(words.len()));
            }
            match from {
                65.. => "aeldre",
                16.. => "voksne",
                _ => continue,
            }
        } else if before.iter().any(|w| upper(w)) {
            match to {
                ..=18 => "boern",
                _ => continue,
            }
        } else if from != to || before.contains(&"aged") || before.contains(&"alderen") {
            match (from, to) {
                (65.., _) => "aeldre",
                (18.., _) => "voksne",
                (_, ..=17) => "boern",
                _ => continue,
            }
        } else {
            continue;
        };
        return Some((name, at));
    }
    None
}

/// A title's abbreviation as the library defines it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Abbreviation {
    /// As the title writes it ("TCP").
    pub short: String,
    /// The long form most of the library's definitions give ("transcutaneous pacing").
    pub long: String,
    /// The lexicon group the long form names.
    pub group: String,
    /// How many definitions in the library name that group, and in how many documents.
    pub definitions: usize,
    pub documents: usize,
    /// Documents that define it as something else ("tricalcium phosphate (TCP)"), with that
    /// long form: their uses of it are not this reading, so they are left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub otherwise: Vec<(String, String)>,
}

/// Longest abbreviation a title may have (letters and "&").
const MAX_ABBREVIATION: usize = 8;

/// The title's abbreviations the lexicon does not know, as written: words of two or more
/// capital letters (digits and "&" allowed, "TCP", "PTA", "I&D"), at most
/// [`MAX_ABBREVIATION`] characters, that no lexicon table or vocabulary names.
pub fn unknown_abbreviations(lexicon: &Lexicon, title: &str) -> Vec<String> {
    // Words a lexicon term covers where they stand ("IO" in "IO-adgang", "EZ-IO").
    let words = raw_words(title);
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let covered: Vec<usize> = lexicon
        .scan(&refs)
        .into_iter()
        .chain(lexicon.scan_vocabulary(&refs))
        .flat_map(|h| h.start..h.start + h.len)
        .collect();
    let mut out: Vec<String> = Vec::new();
    for (i, (start, end)) in word_spans(title).into_iter().enumerate() {
        if covered.contains(&i) {
            continue;
        }
        let w = &title[start..end];
        let letters = w.chars().filter(|c| c.is_alphabetic()).count();
        if letters < 2
            || w.chars().count() > MAX_ABBREVIATION
            || w.chars().any(|c| c.is_lowercase())
        {
            continue;
        }
        let lower = raw_words(w).concat();
        let known = !lexicon.scan(&[lower.as_str()]).is_empty()
            || lexicon.vocabulary_word(&lower).is_some();
        if !known && !out.iter().any(|o| o == w) {
            out.push(w.to_string());
        }
    }
    out
}

/// The procedure or condition group a phrase names entirely ("transcutaneous pacing" →
/// `ekstern_pacing`): one lexicon hit covering every word that is not a function word or a
/// `generic` word ("canalith repositioning procedure" → `epley`).
pub fn group_named_by(
    lexicon: &Lexicon,
    analyzer: &Analyzer,
    phrase: &str,
    generic: &[String],
) -> Option<String> {
    let words = raw_words(phrase);
    let content: Vec<usize> = (0..words.len())
        .filter(|&i| !analyzer.is_stop(&words[i]) && !generic.contains(&words[i]))
        .collect();
    if content.is_empty() {
        return None;
    }
    hits(lexicon, analyzer, &words)
        .into_iter()
        .find(|(c, _, at, whole)| {
            *whole
                && matches!(c, Category::Procedure | Category::Condition)
                && content.iter().all(|i| at.contains(i))
        })
        .map(|(_, g, _, _)| g)
}

/// `title` with the word `short` (as `word_spans` cuts it) replaced by `long`.
pub fn replace_word(title: &str, short: &str, long: &str) -> String {
    let mut out = String::with_capacity(title.len() + long.len());
    let mut last = 0;
    for (start, end) in word_spans(title) {
        if &title[start..end] == short {
            out.push_str(&title[last..start]);
            out.push_str(long);
            last = end;
        }
    }
    out.push_str(&title[last..]);
    out
}

impl Concept {
    /// The concept of a title and its context. `generic` are words that say nothing about the
    /// topic ("behandling", "procedure") and never anchor.
    pub fn of(
        lexicon: &Lexicon,
        analyzer: &Analyzer,
        title: &str,
        context: &str,
        generic: &[String],
    ) -> Concept {
        let words = raw_words(title);
        let found = hits(lexicon, analyzer, &words);
        let mut anchor: Vec<Group> = Vec::new();
        let mut population = None;
        let mut action = None;
        let mut setting = None;
        let mut indication: Vec<Group> = Vec::new();
        let mut rank: Vec<Group> = Vec::new();
        let mut covered = vec![false; words.len()];
        for (category, name, at, whole) in &found {
            let terms = lexicon.group_terms(*category, name);
            let g = group(analyzer, name, terms);
            match category {
                Category::Procedure => {
                    if !anchor.iter().any(|a| a.name == *name) {
                        anchor.push(g);
                    }
                }
                Category::Population => {
                    if population.is_none() {
                        population = Family::of(name).map(|f| (f, g));
                    }
                }
                Category::Action => action = action.or(Some(g)),
                Category::Setting => setting = setting.or(Some(g)),
                Category::Condition => {
                    if !indication.iter().any(|c| c.name == *name) {
                        // A document may name the condition by its class ("atrial
                        // arrhythmias" for atrial fibrillation): that names it too.
                        let mut terms = terms.to_vec();
                        terms.extend(lexicon.broader_terms(name).iter().cloned());
                        let g = group(analyzer, name, &terms);
                        indication.push(g.clone());
                        rank.push(g);
                    }
                }
                // A title's units, numbers, negations and time words ("Bier's" → "s",
                // "in") say nothing about what a document is on.
                Category::Unit | Category::Number | Category::Negation | Category::Timing => {}
                _ => rank.push(g),
            }
            // A prefix term far shorter than the word it matched ("nål*" in
            // "nålethorakocentese") names a part of a compound, not the word.
            let whole = *whole
                && (at.len() != 1
                    || matches!(category, Category::Procedure)
                    || !terms.iter().any(|t| {
                        t.strip_suffix('*').is_some_and(|stem| {
                            words[at[0]].starts_with(stem)
                                && words[at[0]].chars().count()
                                    > stem.chars().count() + MAX_PREFIX_INFLECTION
                        })
                    })
                    || terms
                        .iter()
                        .any(|t| t.trim_end_matches('*') == words[at[0]]));
            if whole {
                for i in at {
                    covered[*i] = true;
                }
            }
        }
        // "in patients over 75 years", "hos børn under 2 år": an age bound in the title names
        // the population as plainly as a population word.
        if population.is_none() {
            if let Some((name, at)) = title_age(&words) {
                let terms = lexicon.group_terms(Category::Population, name);
                if !terms.is_empty() {
                    population = Family::of(name).map(|f| (f, group(analyzer, name, terms)));
                    for i in at {
                        covered[i] = true;
                    }
                }
            }
        }
        let known_procedure = !anchor.is_empty();
        // "Abscess tonsillectomy for peritonsillar abscess": a second procedure named after
        // "for"/"ved" is what the first is done for (the lexicon may know a condition by its
        // procedure's name), so a source must name both, not either.
        let starts: Vec<usize> = anchor
            .iter()
            .filter_map(|a| {
                found
                    .iter()
                    .filter(|(c, name, _, _)| matches!(c, Category::Procedure) && *name == a.name)
                    .map(|(_, _, at, _)| at[0])
                    .min()
            })
            .collect();
        let done_for = starts.len() == 2 && {
            let later = starts[0].max(starts[1]);
            later > starts[0].min(starts[1])
                && matches!(words[later - 1].as_str(), "for" | "ved" | "mod")
        };
        let topic: Vec<usize> = words
            .iter()
            .enumerate()
            .filter(|(i, w)| {
                !covered[*i]
                    && !analyzer.is_stop(w)
                    && !generic.iter().any(|g| g == *w)
                    && w.chars().count() >= 2
                    && !w.chars().all(|c| c.is_numeric())
            })
            .map(|(i, _)| i)
            .collect();
        let mut required = 1;
        let named = if known_procedure {
            None
        } else {
            let known: Vec<bool> = (0..words.len())
                .map(|i| {
                    found.iter().any(|(_, _, at, _)| at.contains(&i))
                        || lexicon.vocabulary_word(&words[i]).is_some()
                        || analyzer.split(&words[i]).is_some()
                })
                .collect();
            technique_name(lexicon, analyzer, title, &words, &topic, &known)
        };
        let named_technique = named.is_some();
        if let Some(name) = named {
            // A named technique ("Mother's kiss technique for nasal foreign bodies") is what
            // the title is about: its name alone anchors, for a document on it need not name
            // the condition where it describes it ("nasal objects"); the title's other words
            // rank, and its condition is still the indication.
            let rest: Vec<usize> = topic
                .iter()
                .copied()
                .filter(|i| !name.contains(i))
                .collect();
            rank.extend(topic_groups(lexicon, analyzer, &words, &rest));
            let label = name.iter().map(|&i| words[i].as_str()).collect::<Vec<_>>();
            anchor.push(Group {
                name: label.join(" "),
                terms: label.iter().map(|w| w.to_string()).collect(),
                matcher: Match::All(
                    name.iter()
                        .map(|&i| {
                            let w = &words[i];
                            match lexicon.vocabulary_word(w) {
                                Some(g) => Match::Any(
                                    std::iter::once(word_match(analyzer, w, false, false))
                                        .chain(
                                            lexicon
                                                .vocabulary_terms(g)
                                                .iter()
                                                .filter_map(|t| term_match(analyzer, t)),
                                        )
                                        .collect(),
                                ),
                                None => word_match(analyzer, w, false, false),
                            }
                        })
                        .collect(),
                ),
            });
        } else if !known_procedure {
            anchor.extend(topic_groups(lexicon, analyzer, &words, &topic));
            // A title read word by word ("Reponering af distal radiusfraktur") names its
            // condition as part of what it is about: a document must name it too, or the
            // words left ("reponering") would anchor on reductions of anything.
            if !anchor.is_empty() {
                anchor.extend(indication.iter().cloned());
            }
            if anchor.is_empty() {
                // Nothing but lexicon words that only rank (a drug, a finding): they anchor,
                // and a condition among them is the topic, not a qualifier.
                anchor = std::mem::take(&mut rank);
                indication.clear();
            }
            // Every topic word up to three (each stands for its vocabulary group in both
            // languages, so a synonym still counts); three of a longer title's words (a
            // passage rarely repeats every qualifier of "synchronised electrical
            // cardioversion of atrial fibrillation and flutter").
            let n = anchor.len();
            required = n.clamp(1, 3);
        } else {
            if done_for {
                required = 2;
            }
            for w in topic.iter().map(|&i| &words[i]) {
                rank.push(Group {
                    name: w.clone(),
                    terms: vec![w.clone()],
                    matcher: word_match(analyzer, w, false, false),
                });
            }
        }
        for w in raw_words(context) {
            if analyzer.is_stop(&w) || generic.contains(&w) || w.chars().count() < 3 {
                continue;
            }
            if rank.iter().chain(&anchor).any(|g| g.name == w) {
                continue;
            }
            rank.push(Group {
                name: w.clone(),
                terms: vec![w.clone()],
                matcher: word_match(analyzer, &w, false, false),
            });
        }
        Concept {
            anchor,
            required,
            known_procedure,
            named_technique,
            population,
            action,
            setting,
            indication,
            rank,
            abbreviations: Vec::new(),
            lexicon_groups: lexicon_groups(lexicon, analyzer),
        }
    }

    /// Adds `abbreviation` as a term of the group `group` (of the anchor, the indication or
    /// the rank terms) and records why.
    pub fn define(&mut self, analyzer: &Analyzer, abbreviation: Abbreviation) {
        let word = raw_words(&abbreviation.short).concat();
        for g in self
            .anchor
            .iter_mut()
            .chain(self.indication.iter_mut())
            .chain(self.rank.iter_mut())
            .filter(|g| g.name == abbreviation.group)
        {
            g.terms.push(abbreviation.short.clone());
            let old = std::mem::replace(&mut g.matcher, Match::Any(Vec::new()));
            g.matcher = Match::Any(vec![old, word_match(analyzer, &word, false, false)]);
        }
        self.abbreviations.push(abbreviation);
    }

    /// The anchor groups that `tokens` match.
    pub fn anchor_matches<'a>(&'a self, tokens: &Tokens<'_>) -> Vec<&'a str> {
        self.anchor
            .iter()
            .filter(|g| g.matcher.matches(tokens))
            .map(|g| g.name.as_str())
            .collect()
    }

    /// Whether `tokens` carry the concept (enough anchor groups).
    pub fn matches(&self, tokens: &Tokens<'_>) -> bool {
        let n = self.anchor_matches(tokens).len();
        n > 0 && n >= self.required
    }

    /// The index query: passages with any anchor term (the library ranks; retrieval then checks
    /// how many groups each matched).
    pub fn query(&self) -> Match {
        Match::Any(self.anchor.iter().map(|g| g.matcher.clone()).collect())
    }

    /// The population families `tokens` name.
    pub fn families(&self, tokens: &Tokens<'_>) -> (bool, bool) {
        self.lexicon_groups.families(tokens)
    }

    /// The actions `tokens` name.
    pub fn actions_in<'a>(&'a self, tokens: &Tokens<'_>) -> Vec<&'a str> {
        names_matching(&self.lexicon_groups.actions, tokens)
    }

    /// The lexicon's conditions `tokens` name.
    pub fn conditions_in<'a>(&'a self, tokens: &Tokens<'_>) -> Vec<&'a str> {
        names_matching(&self.lexicon_groups.conditions, tokens)
    }

    /// Another procedure of the lexicon that `tokens` name, if any.
    pub fn other_procedure<'a>(&'a self, tokens: &Tokens<'_>) -> Option<&'a str> {
        self.lexicon_groups
            .procedures
            .matching(tokens)
            .into_iter()
            .find(|g| !self.anchor.iter().any(|a| a.name == g.name))
            .map(|g| g.name.as_str())
    }

    /// A one-line description (the `retrieved` event's `query`).
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}: {}",
            if self.known_procedure {
                "procedure"
            } else {
                "topic words"
            },
            self.anchor
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(if self.known_procedure { " | " } else { " + " })
        );
        if let Some((f, g)) = &self.population {
            s.push_str(&format!("; population: {} ({})", g.name, f.label()));
        }
        if let Some(a) = &self.action {
            s.push_str(&format!("; action: {}", a.name));
        }
        if let Some(st) = &self.setting {
            s.push_str(&format!("; setting: {}", st.name));
        }
        for (label, groups) in [("for", &self.indication), ("ranks by", &self.rank)] {
            if !groups.is_empty() {
                let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
                s.push_str(&format!("; {label}: {}", names.join(", ")));
            }
        }
        for a in &self.abbreviations {
            s.push_str(&format!(
                "; {} read as \"{}\" ({}), as {} definition{} in {} document{} of the library give it",
                a.short,
                a.long,
                a.group,
                a.definitions,
                if a.definitions == 1 { "" } else { "s" },
                a.documents,
                if a.documents == 1 { "" } else { "s" },
            ));
        }
        s
    }
}

/// The names of the groups `tokens` match.
fn names_matching<'a>(groups: &'a Indexed, tokens: &Tokens<'_>) -> Vec<&'a str> {
    groups
        .matching(tokens)
        .into_iter()
        .map(|g| g.name.as_str())
        .collect()
}

/// A text's analysed terms, in order and sorted (for lookups by term and by prefix).
#[derive(Debug, Clone)]
pub struct Tokens<'a> {
    pub seq: Vec<&'a str>,
    sorted: Vec<&'a str>,
}

impl<'a> Tokens<'a> {
    /// The terms of a space-separated analysed text.
    pub fn new(terms: &'a str) -> Tokens<'a> {
        let seq: Vec<&str> = terms.split(' ').filter(|t| !t.is_empty()).collect();
        let mut sorted = seq.clone();
        sorted.sort_unstable();
        sorted.dedup();
        Tokens { seq, sorted }
    }

    fn has(&self, t: &Term) -> bool {
        let at = self.sorted.partition_point(|w| *w < t.text.as_str());
        match self.sorted.get(at) {
            Some(w) if t.prefix => w.starts_with(t.text.as_str()),
            Some(w) => *w == t.text,
            None => false,
        }
    }
}

impl Match {
    /// Whether analysed `tokens` (a passage's terms in order) match, as the full-text index
    /// would: a term exactly or as a prefix; `Near` its terms within a few tokens of each other.
    pub fn matches(&self, tokens: &Tokens<'_>) -> bool {
        match self {
            Match::Term(t) => tokens.has(t),
            Match::Any(ms) => ms.iter().any(|m| m.matches(tokens)),
            Match::All(ms) => !ms.is_empty() && ms.iter().all(|m| m.matches(tokens)),
            Match::Near(ts) => ts.iter().all(|t| tokens.has(t)) && near(ts, &tokens.seq),
        }
    }
}

impl Term {
    fn hits(&self, w: &str) -> bool {
        if self.prefix {
            w.starts_with(self.text.as_str())
        } else {
            w == self.text
        }
    }
}

/// Tokens allowed between consecutive terms of a `Near` (compound parts and the second stem
/// of a word sit between the words of a phrase in the index).
pub const NEAR_SLACK: usize = 2;

fn near(ts: &[Term], tokens: &[&str]) -> bool {
    let Some(first) = ts.first() else {
        return false;
    };
    'start: for (i, w) in tokens.iter().enumerate() {
        if !first.hits(w) {
            continue;
        }
        let mut at = i;
        for t in &ts[1..] {
            let end = (at + 1 + NEAR_SLACK + 1).min(tokens.len());
            match (at + 1..end).find(|&j| t.hits(tokens[j])) {
                Some(j) => at = j,
                None => continue 'start,
            }
        }
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::analyzer;
    use crate::verify::lexicon::shared as lexicon;

    fn concept(title: &str) -> Concept {
        Concept::of(&lexicon(), analyzer(), title, "", &["behandling".into()])
    }

    fn matches(c: &Concept, text: &str) -> bool {
        let t = analyzer().index_text(text);
        c.matches(&Tokens::new(&t))
    }

    #[test]
    fn a_population_qualifies_and_never_anchors() {
        let c = concept("Lumbalpunktur hos børn");
        assert!(c.known_procedure);
        assert_eq!(c.anchor.len(), 1);
        assert_eq!(c.anchor[0].name, "lumbalpunktur");
        assert_eq!(c.population.as_ref().map(|p| p.0), Some(Family::Children));
        assert!(matches(
            &c,
            "Lumbar puncture in infants: the needle is inserted at L4-L5."
        ));
        assert!(matches(&c, "Ved LP lejres patienten i sideleje."));
        assert!(!matches(&c, "Børn med feberkramper får buccal midazolam."));
    }

    #[test]
    fn a_procedure_phrase_ends_in_a_compounds_head_and_a_procedure_after_for_is_its_indication() {
        // "hudabsces" is an "absces": "drænage af hudabsces" is a "drænage af absces*".
        let c = concept("Ultralydsvejledt drænage af hudabsces");
        assert!(c.known_procedure);
        assert_eq!(c.anchor[0].name, "absces_incision");
        assert_eq!(
            c.indication
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>(),
            ["hudabsces"]
        );
        // "drænage" is a compound too ("dræn|age"), but no phrase ends in it.
        assert!(!concept("Drænage af pleuravæske")
            .anchor
            .iter()
            .any(|g| g.name == "absces_incision"));
        // Tonsillectomy for a peritonsillar abscess is not any tonsillectomy, nor any
        // treatment of a peritonsillar abscess.
        let c = concept("Abscess tonsillectomy for peritonsillar abscess");
        assert_eq!(c.required, 2);
        assert!(matches(
            &c,
            "Immediate tonsillectomy for peritonsillar abscess avoids a second admission."
        ));
        assert!(!matches(
            &c,
            "Elective tonsillectomy in children: day-case surgery."
        ));
        assert!(!matches(
            &c,
            "Needle aspiration of a peritonsillar abscess under local anaesthesia."
        ));
        // Without "for", either procedure is the topic.
        assert_eq!(
            concept("Peritonsillær absces hos børn: punktur, incision eller tonsillektomi")
                .required,
            1
        );
    }

    #[test]
    fn a_technique_named_in_the_title_anchors_alone() {
        // A possessive the lexicon does not know, with the word it qualifies.
        let c = concept("Mother's kiss technique for nasal foreign bodies");
        assert!(c.named_technique && !c.known_procedure);
        assert_eq!(c.anchor.len(), 1);
        assert_eq!(c.anchor[0].name, "mother kiss");
        assert_eq!(c.required, 1);
        assert!(c.rank.iter().any(|g| g.name == "fremmedlegeme"));
        // A document on the technique need not say "foreign body" where it describes it.
        assert!(matches(
            &c,
            "In the mother's kiss, the parent gives a sharp puff into the child's mouth."
        ));
        assert!(!matches(
            &c,
            "Nasal foreign bodies are removed with a hook."
        ));
        // "Colles' fracture": a possessive ending in s, known to the lexicon, is no name.
        assert!(!concept("Closed reduction of Colles' fracture").named_technique);
        // Capitalised unknown words before a technique word.
        let c = concept("Stimson technique for shoulder dislocation");
        assert!(c.named_technique);
        assert_eq!(c.anchor[0].name, "stimson");
        assert!(matches(&c, "The Stimson method needs 20 minutes prone."));
        // A lower-case word the lexicon does not know before "technique" is not a name.
        assert!(!concept("Sterile closed technique for suturing").named_technique);
    }

    #[test]
    fn a_condition_in_the_title_is_named_by_its_class_too() {
        let c = concept("Elektrisk kardiovertering ved atrieflimren");
        assert_eq!(c.indication.len(), 1);
        assert_eq!(c.indication[0].name, "atrieflimren");
        let names = |text: &str| {
            let t = analyzer().index_text(text);
            c.indication[0].matcher.matches(&Tokens::new(&t))
        };
        assert!(names("Cardioversion of atrial fibrillation"));
        assert!(names(
            "Sedation for elective cardioversion of atrial arrhythmias"
        ));
        assert!(!names("Sedation for elective cardioversion"));
        assert!(!names("Ventricular tachycardia with a pulse"));
    }

    #[test]
    fn only_abbreviations_the_lexicon_does_not_know_where_they_stand_are_looked_up() {
        let l = lexicon();
        let unknown = |t: &str| unknown_abbreviations(&l, t);
        // "ED" is looked up too; only a procedure or condition reading would count.
        assert_eq!(unknown("TCP for bradycardia in the ED"), ["TCP", "ED"]);
        assert_eq!(unknown("PTA needle aspiration"), ["PTA"]);
        // Known alone, or as part of a lexicon term where it stands.
        assert!(unknown("Akut intubation (RSI) hos voksne").is_empty());
        assert!(unknown("IO-adgang").is_empty());
        assert!(unknown("Knoglemarvskanyle (EZ-IO)").is_empty());
        // Not abbreviations: one letter, lower case, too long.
        assert!(unknown("Type B dissection; Tcp; ABCDEFGHIJ").is_empty());
        assert_eq!(
            replace_word("TCP (TCPs) for TCP", "TCP", "transcutaneous pacing"),
            "transcutaneous pacing (TCPs) for transcutaneous pacing"
        );
        assert_eq!(
            group_named_by(&l, analyzer(), "transcutaneous pacing", &[]).as_deref(),
            Some("ekstern_pacing")
        );
        assert_eq!(
            group_named_by(&l, analyzer(), "tricalcium phosphate", &[]),
            None
        );
        // A procedure named with other words is not named entirely; a generic word
        // ("procedure") says nothing more.
        assert_eq!(
            group_named_by(&l, analyzer(), "pacing of the heart in the ward", &[]),
            None
        );
        assert_eq!(
            group_named_by(
                &l,
                analyzer(),
                "canalith repositioning procedure",
                &["procedure".to_string()]
            )
            .as_deref(),
            Some("epley")
        );
        assert_eq!(
            group_named_by(&l, analyzer(), "canalith repositioning procedure", &[]),
            None
        );
    }

    #[test]
    fn an_age_bound_in_the_title_names_the_population() {
        let who = |t: &str| {
            concept(t)
                .population
                .map(|(f, g)| (f, g.name))
                .unwrap_or((Family::Adults, "none".into()))
        };
        let elderly = (Family::Adults, "aeldre".to_string());
        let adults = (Family::Adults, "voksne".to_string());
        let children = (Family::Children, "boern".to_string());
        let none = (Family::Adults, "none".to_string());
        assert_eq!(
            who("Emergency tracheal intubation in patients over 75 years"),
            elderly
        );
        assert_eq!(
            who("Lumbalpunktur hos patienter på 65 år og derover"),
            elderly
        );
        assert_eq!(
            who("Chest drain insertion in patients aged 16 years and over"),
            adults
        );
        assert_eq!(who("Lumbar puncture in patients over 65"), elderly);
        assert_eq!(
            who("Transcutaneous pacing for bradycardia in patients aged 65 and over"),
            elderly
        );
        assert_eq!(
            who("Chest drain insertion in patients aged 16 or older"),
            adults
        );
        assert_eq!(
            who("Chest drain insertion in patients aged 16 and 17"),
            none
        );
        assert_eq!(who("Skulderreponering hos patienter over 75"), elderly);
        assert_eq!(
            who("Digital nerve block in patients over 65 with peripheral vascular disease"),
            elderly
        );
        assert_eq!(
            who("Pleural drainage in patients over 2 litres"),
            none,
            "a unit follows"
        );
        assert_eq!(
            super::title_age_family("Digital block in patients over 65 with diabetes"),
            Some(Family::Adults)
        );
        assert_eq!(
            who("Pleuradræn ved drænoutput over 500"),
            none,
            "not people"
        );
        assert_eq!(who("Lumbalpunktur hos patienter under 2 år"), children);
        assert_eq!(who("Knee aspiration in patients aged 2-12 years"), children);
        assert_eq!(
            who("Anafylaksi hos børn over 6 år"),
            children,
            "the word decides"
        );
        // Not ages: a duration, a number of attempts, a year of publication.
        assert_eq!(who("Pleuradræn de første 24 timer"), none);
        assert_eq!(who("Chest drain insertion over 3 days"), none);
        assert_eq!(who("Sepsis guideline 2024"), none);
        // The age words are not the topic of a title without a known procedure.
        let c = concept("Skulderreponering hos patienter over 75 år");
        assert!(
            c.anchor.iter().all(|g| g.name != "75" && g.name != "år"),
            "{c:?}"
        );
    }

    #[test]
    fn a_titles_units_numbers_and_partly_known_compounds_are_read_for_what_they_are() {
        // "Bier's" is not a second, "in" not a time, and a number not a topic word.
        let c = concept("Skulderreponering in patients 65");
        assert!(c.anchor.iter().all(|g| g.name != "65"), "{}", c.describe());
        let c = concept("Bier's block for reduction of wrist fractures");
        assert!(
            c.rank
                .iter()
                .all(|g| g.name != "second" && g.name != "during"),
            "{}",
            c.describe()
        );
        // A compound one of whose parts is a lexicon word ("nål") and the other not stays a
        // topic word: it is what the title is about.
        let c = concept("Præhospital nålefrobnikation ved traume");
        assert!(
            c.anchor.iter().any(|g| g.name == "nålefrobnikation"),
            "{}",
            c.describe()
        );
    }

    #[test]
    fn synonyms_abbreviations_and_compounds_find_the_procedure() {
        let c = concept("Thoraxdræn anlæggelse");
        assert_eq!(c.anchor[0].name, "pleuradraen");
        assert_eq!(
            c.action.as_ref().map(|a| a.name.as_str()),
            Some("anlaeggelse")
        );
        assert!(matches(
            &c,
            "Chest drains are inserted in the safe triangle."
        ));
        assert!(matches(&c, "Ved pleuradrænanlæggelse anvendes ultralyd."));
        assert!(!matches(
            &c,
            "A drain should not be left in place overnight after paracentesis."
        ));
        let p = concept("Paracentese");
        assert!(matches(
            &p,
            "Abdominal paracentesis is performed under ultrasound guidance."
        ));
        let lp = concept("Lumbar puncture");
        assert!(matches(&lp, "Lumbalpunkturen udføres i sideleje."));
    }

    #[test]
    fn an_unknown_procedure_anchors_on_most_of_its_words() {
        let c = concept("Skulderluksation reposition");
        assert!(!c.known_procedure);
        assert!(matches(
            &c,
            "Reposition af skulderluksationer foretages efter røntgen."
        ));
        assert!(!matches(&c, "Skulderen undersøges."));
    }

    #[test]
    fn near_allows_a_few_tokens_between_words() {
        let c = concept("Chest drain insertion");
        assert!(matches(&c, "The chest drain is inserted."));
        assert!(!matches(
            &c,
            "Chest pain was present; a urinary drain was placed."
        ));
    }

    #[test]
    fn an_unknown_procedure_matches_its_words_in_either_language() {
        // Not a procedure of the lexicon: each word stands for its vocabulary group.
        let c = concept("Fjernelse af fremmedlegeme i øret");
        assert!(!c.known_procedure);
        assert!(matches(&c, "Removal of a foreign body from the ear canal"));
        assert!(matches(
            &c,
            "Fremmedlegemet i øregangen fjernes med en krog"
        ));
        // The same organ or the same object elsewhere is not the procedure.
        assert!(!matches(&c, "Ear wax is softened with drops"));
        assert!(!matches(
            &c,
            "A foreign body in the airway is removed by back blows"
        ));

        // A procedure of the lexicon ("incision and drainage"), not the abscess alone.
        let c = concept("Incision af absces");
        assert!(c.known_procedure);
        assert!(matches(&c, "Incision and drainage of a skin abscess"));
        assert!(!matches(&c, "An abscess is treated with antibiotics"));
    }

    #[test]
    fn how_a_procedure_is_done_qualifies_and_never_anchors() {
        // "Manual" says how the reduction is done: a Danish instruction that only says
        // "reponering af parafimose" is on it.
        let c = concept("Manual reduction of paraphimosis in adults");
        assert!(
            !c.anchor.iter().any(|g| g.name == "manual"),
            "{:?}",
            c.anchor.iter().map(|g| &g.name).collect::<Vec<_>>()
        );
        assert_eq!(
            c.action.as_ref().map(|a| a.name.as_str()),
            Some("manuel_metode")
        );
        assert!(matches(
            &c,
            "Reponering af parafimose foretages efter lokalbedøvelse."
        ));
    }

    #[test]
    fn care_in_a_setting_is_not_the_care_action() {
        let c = concept("CVK anlæggelse");
        let actions = |text: &str| -> Vec<String> {
            let t = analyzer().index_text(text);
            c.actions_in(&Tokens::new(&t))
                .into_iter()
                .map(str::to_string)
                .collect()
        };
        for setting in [
            "Umbilical venous catheter tip position in the neonatal intensive care unit",
            "Punch biopsy of the skin: technique for primary care",
            "Nursemaid's elbow: urgent care centre protocol",
        ] {
            assert!(
                actions(setting).is_empty(),
                "{setting}: {:?}",
                actions(setting)
            );
        }
        for care in [
            "CVK-pleje på sengeafsnit",
            "Central line care bundle in the ICU",
        ] {
            assert_eq!(actions(care), ["pleje"], "{care}");
        }
    }

    #[test]
    fn a_possessive_name_the_vocabulary_knows_anchors_as_one_group() {
        // "nursemaid*" and "pulled elbow*" are one vocabulary group: "elbow" is part of the
        // name, so a document that says only "pronatio dolorosa" is on it.
        let c = concept("Nursemaid's elbow");
        assert_eq!(c.anchor.len(), 1, "{:?}", c.anchor);
        assert!(matches(
            &c,
            "Pronatio dolorosa reponeres ved hyperpronation."
        ));
        assert!(!matches(
            &c,
            "Elbow dislocation in adults is reduced under sedation."
        ));
        // A possessive whose owner the vocabulary does not know keeps its words.
        let c = concept("Mother's kiss for nasal foreign bodies");
        assert!(c.named_technique);
    }

    #[test]
    fn a_compound_matches_its_parts_translated_and_not_a_part_alone() {
        let c = concept("Muskelbiopsi");
        assert!(!c.known_procedure);
        assert!(matches(&c, "Muskelbiopsien tages fra m. vastus lateralis"));
        assert!(matches(
            &c,
            "A muscle biopsy is taken from the vastus lateralis"
        ));
        // A muscle without a biopsy, a biopsy without a muscle.
        assert!(!matches(&c, "Muscle weakness is graded from 0 to 5"));
        assert!(!matches(&c, "A lymph node biopsy was taken"));
    }

    #[test]
    fn a_lexicon_phrase_matches_without_its_function_words_and_symbols() {
        // The index leaves out "and" and "af"; the title's words leave out the hyphen of "a-gas".
        let c = concept("Abscesincision");
        assert!(c.known_procedure);
        assert!(matches(
            &c,
            "Incision and drainage is done under local anaesthesia"
        ));
        assert!(matches(
            &c,
            "Drænage af abscessen foretages i lokalbedøvelse"
        ));
        assert!(!matches(&c, "The abscess is treated with antibiotics"));
        let c = concept("A-gas fra arteria radialis");
        assert!(c.known_procedure, "{c:?}");
        assert_eq!(c.anchor[0].name, "arteriepunktur");
        let c = concept("DC-konvertering");
        assert!(c.known_procedure, "{c:?}");
        assert!(matches(
            &c,
            "Electrical cardioversion is synchronised to the R wave"
        ));
    }

    #[test]
    fn a_bone_marrow_examination_is_one_procedure_by_any_of_its_names() {
        for title in [
            "Knoglemarvsbiopsi",
            "Cristabiopsi",
            "Bone marrow aspiration",
        ] {
            let c = concept(title);
            assert!(c.known_procedure, "{title}");
            assert!(matches(
                &c,
                "A bone marrow trephine biopsy is taken from the iliac crest"
            ));
            assert!(matches(
                &c,
                "Knoglemarvsaspiration foretages fra bageste hoftekam"
            ));
            assert!(!matches(&c, "Bone marrow suppression follows chemotherapy"));
        }
    }

    #[test]
    fn a_prefix_of_the_vocabulary_reads_inflections_not_other_compounds() {
        let l = lexicon();
        assert_eq!(l.vocabulary_word("skulderen"), Some("skulder"));
        assert_eq!(l.vocabulary_word("shoulders"), Some("skulder"));
        // "skulderblad" is another word (the shoulder blade), not an inflection of skulder.
        assert_ne!(l.vocabulary_word("skulderbladet"), Some("skulder"));
        assert_eq!(l.vocabulary_word("ukendtord"), None);
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;
    use crate::analyze::analyzer;
    use crate::verify::lexicon::shared as lexicon;

    #[test]
    fn the_first_letters_index_finds_what_trying_every_group_finds() {
        let groups = lexicon_groups(&lexicon(), analyzer());
        let texts = [
            "DC-konvertering af atrieflimren hos voksne",
            "Emergency tracheal intubation in patients over 75 years",
            "Suturering af flænger og skin closure after caesarean section",
            "Anlæggelse af navlevenekateter (UVC) hos præmature",
            "Reponering af parafimose (spansk krave) hos børn",
            "I&D of a skin abscess in the emergency department",
            "Pleuradræn ved pneumothorax: pleje og fjernelse",
            "Epley manoeuvre for BPPV; Lempert barbecue roll",
            "Næseblødning: anterior tamponade hos patienter i AK-behandling",
            "x",
        ];
        for text in texts {
            let terms = analyzer().index_text(text);
            let tokens = Tokens::new(&terms);
            for list in [&groups.procedures, &groups.actions, &groups.conditions] {
                let every: Vec<&str> = list
                    .groups
                    .iter()
                    .filter(|g| g.matcher.matches(&tokens))
                    .map(|g| g.name.as_str())
                    .collect();
                let indexed: Vec<&str> = list
                    .matching(&tokens)
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect();
                assert_eq!(indexed, every, "{text}");
            }
        }
        // It is not vacuous: the texts name procedures, actions and conditions.
        let terms = analyzer().index_text(texts[0]);
        let tokens = Tokens::new(&terms);
        assert!(!groups.procedures.matching(&tokens).is_empty());
        assert!(!groups.conditions.matching(&tokens).is_empty());
    }
}
