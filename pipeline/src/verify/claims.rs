//! What a sentence claims, in canonical tokens: quantities with normalised units (and the
//! population and timing qualifier each belongs to), drugs, routes, populations, the number of
//! negation cues, clinical concepts and word stems. Drafts and passages go through the same
//! extraction, so comparing two claims never depends on their language.

use super::lexicon::{Category, Hit, Lexicon};
use super::text::{tokenize, Tok};
use rust_stemmers::{Algorithm, Stemmer};
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// A number with its unit, normalised: `lo..=hi` in the base unit of `sig` (µg, ml, seconds,
/// mm, ...). `sig` is the dimension ("mass", "mass/volume", "mass/weight", "time", "bare", ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    pub sig: String,
    pub lo: f64,
    pub hi: f64,
    /// The numbers as written, e.g. "0,5" or "0,3–0,5", for messages.
    pub number: String,
    /// The unit as written ("mg", "µg/kg"), empty for a bare number.
    pub unit: String,
    /// The timing qualifier before a time: every, within, after, at_least, at_most, during.
    pub qualifier: Option<String>,
    /// Preceded by a maximum/total cue: a limit, not a single dose.
    pub limit: bool,
    /// The populations this quantity is given for, when the sentence names any.
    pub population: Vec<String>,
    /// Token index, for pairing with populations.
    pos: usize,
    /// The unit's scale to the base unit (1 for a bare number).
    factor: f64,
}

impl Quantity {
    /// The quantity as written, for messages.
    pub fn shown(&self) -> String {
        if self.unit.is_empty() {
            self.number.clone()
        } else {
            format!("{} {}", self.number, self.unit)
        }
    }

    /// A dose-like quantity (an amount of drug or a weight-based dose), which a population
    /// qualifies.
    pub fn is_dose(&self) -> bool {
        self.sig.starts_with("mass") || self.sig.starts_with("iu") || self.sig.starts_with("amount")
    }

    /// Same dimension and same value(s), within rounding.
    pub fn same_value(&self, other: &Quantity) -> bool {
        self.sig == other.sig && close(self.lo, other.lo) && close(self.hi, other.hi)
    }

    /// The two are the same amount in different notations that the code knows to be equal:
    /// a w/v percentage and a mg/ml concentration (1 % = 10 mg/ml).
    pub fn equivalent(&self, other: &Quantity) -> bool {
        if self.same_value(other) {
            return true;
        }
        let pct_conc = |p: &Quantity, c: &Quantity| {
            p.sig == "percent"
                && c.sig == "mass/volume"
                && close(p.lo * 10_000.0, c.lo)
                && close(p.hi * 10_000.0, c.hi)
        };
        pct_conc(self, other) || pct_conc(other, self)
    }
}

fn close(a: f64, b: f64) -> bool {
    let scale = a.abs().max(b.abs()).max(1e-12);
    (a - b).abs() / scale < 1e-6
}

/// Base dimension and factor of a lexicon unit group.
fn unit_base(name: &str) -> Option<(&'static str, f64)> {
    Some(match name {
        "mg" => ("mass", 1_000.0),
        "ug" => ("mass", 1.0),
        "ng" => ("mass", 0.001),
        "g" => ("mass", 1_000_000.0),
        "kg" => ("weight", 1.0),
        "ml" => ("volume", 1.0),
        "dl" => ("volume", 100.0),
        "l" => ("volume", 1_000.0),
        "mmol" => ("amount", 1.0),
        "mol" => ("amount", 1_000.0),
        "iu" => ("iu", 1.0),
        "percent" => ("percent", 1.0),
        "fr" => ("fr", 1.0),
        "gauge" => ("gauge", 1.0),
        "cm" => ("length", 10.0),
        "mm" => ("length", 1.0),
        "cmh2o" => ("cmh2o", 1.0),
        "mmhg" => ("mmhg", 1.0),
        "celsius" => ("temp", 1.0),
        "second" => ("time", 1.0),
        "minute" => ("time", 60.0),
        "hour" => ("time", 3_600.0),
        "day" => ("time", 86_400.0),
        "week" => ("time", 604_800.0),
        "month" => ("time", 2_629_800.0),
        "year" => ("time", 31_557_600.0),
        "dose" => ("dose", 1.0),
        "tablet" => ("tablet", 1.0),
        "puff" => ("puff", 1.0),
        "drop" => ("drop", 1.0),
        "breath" => ("breath", 1.0),
        _ => return None,
    })
}

/// A sentence's claim.
#[derive(Debug, Clone, Default)]
pub struct Claim {
    pub quantities: Vec<Quantity>,
    pub drugs: BTreeSet<String>,
    pub routes: BTreeSet<String>,
    /// Populations named.
    pub populations: BTreeSet<String>,
    /// A weight-based dose and no population named: children are implied.
    pub implied_child: bool,
    /// The populations with their age where one follows ("boern@12" for "børn over 12 år").
    pub population_labels: BTreeSet<String>,
    pub negations: usize,
    /// Token positions of the negation cues.
    pub negation_pos: Vec<usize>,
    pub concepts: BTreeSet<String>,
    /// Stems (Danish and English) of the content words.
    pub stems: BTreeSet<String>,
    /// Per content word: its stems and the canonical tokens covering it.
    pub content: Vec<ContentWord>,
    pub danish_words: usize,
    pub english_words: usize,
    /// Token keys, for cue lookups.
    pub words: Vec<String>,
    /// [`Claim::canon`], computed once: alignment compares it with every draft sentence.
    pub canon_set: BTreeSet<String>,
}

/// A content word and what it stands for.
#[derive(Debug, Clone, Default)]
pub struct ContentWord {
    /// The word as written (lower case), for messages.
    pub word: String,
    pub stems: [String; 2],
    pub canon: Vec<String>,
    /// An instruction verb ("gives", "give", "should"), a negation, limit, unit, time or number
    /// word: it says how or how much, not about what, so sharing it does not make a source on
    /// another topic support the sentence (and the checks of their own compare them).
    pub generic: bool,
}

impl Claim {
    /// Whether the claim is clinical content: a drug, a number with a unit, a route.
    pub fn is_clinical(&self) -> bool {
        !self.drugs.is_empty()
            || !self.routes.is_empty()
            || self.quantities.iter().any(|q| q.sig != "bare")
    }

    /// The canonical tokens, for overlap.
    pub fn canon(&self) -> BTreeSet<String> {
        let mut s = BTreeSet::new();
        s.extend(self.drugs.iter().map(|d| format!("d:{d}")));
        s.extend(self.routes.iter().map(|d| format!("r:{d}")));
        s.extend(self.populations.iter().map(|d| format!("p:{d}")));
        s.extend(self.concepts.iter().map(|d| format!("c:{d}")));
        s
    }

    /// The word keys as string slices.
    pub fn word_refs(&self) -> Vec<&str> {
        self.words.iter().map(String::as_str).collect()
    }
}

fn stemmers() -> &'static (Stemmer, Stemmer) {
    static S: OnceLock<(Stemmer, Stemmer)> = OnceLock::new();
    S.get_or_init(|| {
        (
            Stemmer::create(Algorithm::Danish),
            Stemmer::create(Algorithm::English),
        )
    })
}

const MAX_TOKENS: usize = 4_000;

/// Extracts the claim of one sentence (citations already removed). Bounded: a sentence longer
/// than a few thousand tokens is read up to that point.
pub fn extract(text: &str, lex: &Lexicon) -> Claim {
    let mut toks = tokenize(text);
    toks.truncate(MAX_TOKENS);
    let words: Vec<String> = toks.iter().map(Tok::key).collect();
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let hits = lex.scan(&refs);
    let mut claim = Claim::default();
    let at = |i: usize, cat: Category| hits.iter().find(|h| h.start == i && h.category == cat);

    // Quantities.
    let mut i = 0;
    while i < toks.len() {
        let (lo, number_raw, mut j) = match &toks[i] {
            Tok::Num { value, raw } => (*value, raw.clone(), i + 1),
            Tok::Word { .. } => match at(i, Category::Number) {
                // A number word counts only before a unit: "to timer", "an hour".
                Some(h) if at(i + h.len, Category::Unit).is_some() => (
                    h.group.parse::<f64>().unwrap_or(0.0),
                    refs[i].to_string(),
                    i + h.len,
                ),
                _ => {
                    // "hver time", "every hour": one unit of time, every.
                    if let Some(t) = at(i, Category::Timing).filter(|t| t.group == "every") {
                        if let Some(u) = at(i + t.len, Category::Unit) {
                            if let Some(("time", f)) = unit_base(&u.group) {
                                claim.quantities.push(Quantity {
                                    sig: "time".into(),
                                    lo: f,
                                    hi: f,
                                    number: "1".into(),
                                    unit: words[i + t.len..i + t.len + u.len].join(" "),
                                    qualifier: Some("every".into()),
                                    limit: false,
                                    population: Vec::new(),
                                    pos: i + t.len,
                                    factor: f,
                                });
                                i += t.len + u.len;
                                continue;
                            }
                        }
                    }
                    i += 1;
                    continue;
                }
            },
            Tok::Sym(_) => {
                i += 1;
                continue;
            }
        };
        let start = i;
        // Ratio concentration: 1:1000 is 1 g in 1000 ml, i.e. 1 mg/ml.
        if let (Some(Tok::Sym(':')), Some(Tok::Num { value: b, raw })) =
            (toks.get(j), toks.get(j + 1))
        {
            if *b >= 100.0 && lo > 0.0 {
                let v = lo * 1_000_000.0 / b;
                claim.quantities.push(Quantity {
                    sig: "mass/volume".into(),
                    lo: v,
                    hi: v,
                    number: format!("{number_raw}:{raw}"),
                    unit: String::new(),
                    qualifier: None,
                    limit: false,
                    population: Vec::new(),
                    pos: start,
                    factor: 1.0,
                });
                i = j + 2;
                continue;
            }
        }
        let mut hi = lo;
        let mut number = number_raw;
        let dash = |t: Option<&Tok>| matches!(t, Some(Tok::Sym('-' | '–' | '—')));
        let between = start > 0 && matches!(refs[start - 1], "mellem" | "between");
        let range_word = matches!(refs.get(j), Some(&"to" | &"til"))
            || (between && matches!(refs.get(j), Some(&"og" | &"and")));
        if dash(toks.get(j)) || range_word {
            if let Some(Tok::Num { value, raw }) = toks.get(j + 1) {
                hi = *value;
                number = format!("{number}–{raw}");
                j += 2;
            }
        }
        // An ordinal before a time unit: "hvert 5. minut".
        let mut k = j;
        if matches!(toks.get(k), Some(Tok::Sym('.')))
            && at(k + 1, Category::Unit)
                .is_some_and(|u| unit_base(&u.group).is_some_and(|b| b.0 == "time"))
        {
            k += 1;
        }
        // The unit, possibly composite: mg/kg, µg/kg/min, l/min, "mg per kg".
        let mut sig = String::new();
        let mut factor = 1.0;
        let mut unit_words: Vec<String> = Vec::new();
        let gauge = matches!(toks.get(k), Some(Tok::Word { raw, .. }) if raw == "G");
        if gauge {
            sig = "gauge".into();
            unit_words.push("G".into());
            k += 1;
        } else if let Some(u) = at(k, Category::Unit) {
            if let Some((dim, f)) = unit_base(&u.group) {
                sig = dim.to_string();
                factor = f;
                unit_words.push(words[k..k + u.len].join(" "));
                k += u.len;
                loop {
                    let per = match toks.get(k) {
                        Some(Tok::Sym('/')) => 1,
                        Some(Tok::Word { lower, .. }) if lower == "per" || lower == "pr" => 1,
                        _ => 0,
                    };
                    if per == 0 {
                        break;
                    }
                    match at(k + per, Category::Unit)
                        .and_then(|d| unit_base(&d.group).map(|b| (d, b)))
                    {
                        Some((d, (ddim, df))) => {
                            sig = format!("{sig}/{ddim}");
                            factor /= df;
                            unit_words.push(words[k + per..k + per + d.len].join(" "));
                            k += per + d.len;
                        }
                        None => break,
                    }
                }
            }
        } else if matches!(toks.get(k), Some(Tok::Sym('%'))) {
            sig = "percent".into();
            unit_words.push("%".into());
            k += 1;
        }
        if sig.is_empty() {
            sig = "bare".into();
            k = j;
        }
        claim.quantities.push(Quantity {
            sig,
            lo: lo * factor,
            hi: hi * factor,
            number,
            unit: unit_words.join("/"),
            qualifier: None,
            limit: false,
            population: Vec::new(),
            pos: start,
            factor,
        });
        i = k.max(start + 1);
    }

    // Qualifiers: the nearest timing word within three tokens before a time; for an amount,
    // a maximum/total cue earlier in its clause ("den maksimale dosis ... er 3 mg/kg").
    let has_repeat = lex.has_cue("repeat", &refs);
    let dose_positions: Vec<usize> = claim
        .quantities
        .iter()
        .filter(|q| q.sig != "time")
        .map(|q| q.pos)
        .collect();
    for q in &mut claim.quantities {
        let from = q.pos.saturating_sub(3);
        if q.sig == "time" && q.qualifier.is_none() {
            let t = hits
                .iter()
                .filter(|h| h.category == Category::Timing && h.start >= from && h.start < q.pos)
                .max_by_key(|h| h.start);
            q.qualifier = t.map(|h| {
                if h.group == "after" && has_repeat {
                    // "gentages efter 5 minutter" is the interval of a repetition.
                    "every".to_string()
                } else {
                    h.group.clone()
                }
            });
        }
        if q.sig != "time" {
            let mut clause_start = q.pos;
            while clause_start > 0 {
                let prev = clause_start - 1;
                let boundary = matches!(toks[prev], Tok::Sym(',' | ';' | ':' | '(' | ')'));
                if boundary || dose_positions.contains(&prev) {
                    break;
                }
                clause_start = prev;
            }
            q.limit = (clause_start..q.pos).any(|p| lex.cue_at("dose_limit", &refs, p).is_some());
        }
    }

    // Canonical tokens.
    let mut pop_positions: Vec<(usize, String)> = Vec::new();
    let mut covered: Vec<Vec<String>> = vec![Vec::new(); toks.len()];
    // Words that negations, units, times and number words cover: compared by checks of their
    // own, they are not what a sentence says about its subject.
    let mut functional: Vec<bool> = vec![false; toks.len()];
    for h in &hits {
        if matches!(
            h.category,
            Category::Negation | Category::Unit | Category::Timing | Category::Number
        ) {
            for f in functional.iter_mut().skip(h.start).take(h.len) {
                *f = true;
            }
        }
    }
    for h in &hits {
        let tag = match h.category {
            Category::Drug => {
                claim.drugs.insert(h.group.clone());
                format!("d:{}", h.group)
            }
            Category::Route => {
                claim.routes.insert(h.group.clone());
                format!("r:{}", h.group)
            }
            Category::Population => {
                claim.populations.insert(h.group.clone());
                pop_positions.push((h.start, h.group.clone()));
                format!("p:{}", h.group)
            }
            Category::Negation => {
                claim.negations += 1;
                claim.negation_pos.push(h.start);
                continue;
            }
            Category::Concept | Category::Condition | Category::Procedure => {
                claim.concepts.insert(h.group.clone());
                format!("c:{}", h.group)
            }
            _ => continue,
        };
        for c in covered.iter_mut().skip(h.start).take(h.len) {
            c.push(tag.clone());
        }
    }

    // A population followed closely by an age ("børn over 12 år", "children aged 6 to 12
    // years") is a narrower population: its label carries the age, so "børn" in a draft does
    // not match "børn over 12 år" in a source.
    let positions: Vec<usize> = pop_positions.iter().map(|p| p.0).collect();
    for (ppos, label) in pop_positions.iter_mut() {
        let age = claim
            .quantities
            .iter()
            .filter(|q| q.sig == "time" && q.pos > *ppos && q.pos <= *ppos + 4)
            .filter(|q| !positions.iter().any(|o| *o > *ppos && *o < q.pos))
            .find(|q| (q.factor - 31_557_600.0).abs() < 1.0);
        if let Some(a) = age {
            label.push('@');
            label.push_str(&a.number.replace('-', "–"));
        }
    }
    claim
        .population_labels
        .extend(pop_positions.iter().map(|p| p.1.clone()));
    // Pair doses with populations: if the first population comes before the first dose, each
    // dose belongs to the nearest population before it ("voksne 0,5 mg, børn 0,3 mg"),
    // otherwise to the nearest after it ("0,5 mg til voksne og 0,3 mg til børn"); populations
    // named together ("voksne og børn over 12 år") share the dose.
    let dose_pos: Vec<usize> = claim
        .quantities
        .iter()
        .filter(|q| q.is_dose())
        .map(|q| q.pos)
        .collect();
    let first_dose = dose_pos.iter().min().copied();
    if let (Some(fd), Some(fp)) = (first_dose, pop_positions.first().map(|p| p.0)) {
        let before = fp < fd;
        for q in claim.quantities.iter_mut().filter(|q| q.is_dose()) {
            let nearest = if before {
                pop_positions
                    .iter()
                    .filter(|p| p.0 < q.pos)
                    .max_by_key(|p| p.0)
            } else {
                pop_positions
                    .iter()
                    .filter(|p| p.0 > q.pos)
                    .min_by_key(|p| p.0)
            };
            let Some(anchor) = nearest.or(pop_positions.first()) else {
                continue;
            };
            let mut cluster: Vec<usize> = vec![anchor.0];
            loop {
                let grown: Vec<usize> = pop_positions
                    .iter()
                    .map(|p| p.0)
                    .filter(|p| !cluster.contains(p))
                    .filter(|p| {
                        cluster.iter().any(|c| {
                            let (a, b) = if p < c { (*p, *c) } else { (*c, *p) };
                            b - a <= 4 && !dose_pos.iter().any(|d| *d > a && *d < b)
                        })
                    })
                    .collect();
                if grown.is_empty() {
                    break;
                }
                cluster.extend(grown);
            }
            let mut pops: Vec<String> = pop_positions
                .iter()
                .filter(|p| cluster.contains(&p.0))
                .map(|p| p.1.clone())
                .collect();
            pops.sort();
            pops.dedup();
            q.population = pops;
        }
    }
    // A weight-based dose in a sentence that names no population is a children's dose (used
    // for the draft's side of a comparison: a source that names none is not narrowed).
    claim.implied_child = claim.populations.is_empty()
        && claim
            .quantities
            .iter()
            .any(|q| q.sig.starts_with("mass/weight"));

    // Content words, language evidence, stems.
    let da = lex.language_words("danish");
    let en = lex.language_words("english");
    let (sda, sen) = stemmers();
    for (idx, t) in toks.iter().enumerate() {
        let Tok::Word { lower, .. } = t else { continue };
        let in_da = da.iter().any(|w| w == lower);
        let in_en = en.iter().any(|w| w == lower);
        claim.danish_words += usize::from(in_da && !in_en);
        claim.english_words += usize::from(in_en && !in_da);
        if in_da || in_en || lower.chars().count() < 3 {
            continue;
        }
        let stems = [sda.stem(lower).into_owned(), sen.stem(lower).into_owned()];
        claim.stems.extend(stems.iter().cloned());
        claim.content.push(ContentWord {
            word: lower.clone(),
            stems,
            canon: covered[idx].clone(),
            generic: lex.cue_at("imperative", &refs, idx).is_some()
                || lex.cue_at("dose_limit", &refs, idx).is_some()
                || lex.cue_at("meta", &refs, idx).is_some()
                || functional[idx],
        });
    }
    claim.words = words;
    claim.canon_set = claim.canon();
    claim
}

/// Hits of one category, for callers that need positions.
pub fn hits_of(text: &str, lex: &Lexicon, category: Category) -> Vec<Hit> {
    let toks = tokenize(text);
    let words: Vec<String> = toks.iter().map(Tok::key).collect();
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    lex.scan(&refs)
        .into_iter()
        .filter(|h| h.category == category)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Vec<Quantity> {
        extract(text, &Lexicon::embedded()).quantities
    }

    #[test]
    fn units_normalise_across_notations() {
        let a = q("0,5 mg");
        let b = q("500 mikrogram");
        let c = q("0.5 mg");
        assert!(a[0].same_value(&b[0]) && a[0].same_value(&c[0]));
        assert!(!a[0].same_value(&q("0,5 µg")[0]));
        assert!(q("1:1000")[0].same_value(&q("1 mg/ml")[0]));
        assert!(q("10 µg/kg")[0].same_value(&q("0,01 mg/kg")[0]));
        assert!(q("1 %")[0].equivalent(&q("10 mg/ml")[0]));
        let r = q("0,3–0,5 mg");
        assert_eq!((r[0].lo, r[0].hi), (300.0, 500.0));
        assert!(q("6 to 12 hours")[0].same_value(&q("6-12 timer")[0]));
        assert_eq!(q("22 G")[0].sig, "gauge");
        assert_eq!(q("2 g")[0].sig, "mass");
    }

    #[test]
    fn timing_qualifiers_and_repetition() {
        let every = q("Dosis gentages efter 5 minutter");
        let en = q("it may be repeated every 5 minutes");
        assert_eq!(every[0].qualifier.as_deref(), Some("every"));
        assert_eq!(en[0].qualifier.as_deref(), Some("every"));
        assert!(every[0].same_value(&en[0]));
        assert_eq!(q("hvert 5. minut")[0].qualifier.as_deref(), Some("every"));
        assert_eq!(q("hvert 5. minut")[0].lo, 300.0);
        assert_eq!(
            q("inden for en time")[0].qualifier.as_deref(),
            Some("within")
        );
        assert_eq!(q("inden for en time")[0].lo, 3600.0);
        assert_eq!(
            q("observeres i mindst 6 timer")[0].qualifier.as_deref(),
            Some("at_least")
        );
    }

    #[test]
    fn doses_pair_with_their_population_and_weight_implies_children() {
        let lex = Lexicon::embedded();
        let c = extract("Voksne får 0,5 mg og børn 0,3 mg adrenalin i.m.", &lex);
        assert_eq!(c.quantities[0].population, ["voksne"]);
        assert_eq!(c.quantities[1].population, ["boern"]);
        let d = extract("0,5 mg til voksne og 0,3 mg til børn", &lex);
        assert_eq!(d.quantities[1].population, ["boern"]);
        let k = extract("Adrenalin 0,01 mg/kg gives intramuskulært", &lex);
        assert!(k.implied_child);
        let aged = extract("Voksne og børn over 12 år får 0,5 mg", &lex);
        assert_eq!(
            aged.quantities.last().map(|q| q.population.clone()),
            Some(vec!["boern@12".to_string(), "voksne".to_string()])
        );
        let between = extract("børn mellem 6 og 12 år får 0,3 mg", &lex);
        assert_eq!(
            between.quantities.last().map(|q| q.population.clone()),
            Some(vec!["boern@6–12".to_string()])
        );
        let lim = extract(
            "Den maksimale dosis lidocain til lokalbedøvelse er 3 mg/kg",
            &lex,
        );
        assert!(lim.quantities[0].limit);
        assert!(k.routes.contains("intramuskulaer") && k.drugs.contains("adrenalin"));
    }

    #[test]
    fn negations_count_in_both_languages() {
        let lex = Lexicon::embedded();
        assert_eq!(
            extract("Antihistamin må ikke forsinke adrenalin", &lex).negations,
            1
        );
        assert_eq!(
            extract("Antihistamines should not delay adrenaline", &lex).negations,
            1
        );
        assert_eq!(
            extract("Antihistamin skal forsinke adrenalin", &lex).negations,
            0
        );
    }
}
