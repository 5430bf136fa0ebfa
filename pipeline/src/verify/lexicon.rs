//! The medical lexicon: synonym groups (Danish and English) that turn words into canonical
//! tokens, read from `etc/lexicon.toml` (embedded) or a department's own file. The verifier
//! compares canonical tokens, never raw words, so a faithful translation passes.

use super::text::{tokenize, Tok};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// The lexicon shipped with procedurewriter.
pub const EMBEDDED: &str = include_str!("../../../etc/lexicon.toml");

/// Why a lexicon file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexiconError {
    #[error("lexicon is not valid TOML: {0}; fix the syntax and reload")]
    Syntax(String),
    #[error("lexicon group [{table}] {group} is empty; add a term or remove the group")]
    EmptyGroup { table: String, group: String },
    #[error("lexicon term \"{term}\" is in both [{first}] and [{second}]; a term may mean only one thing, keep it in one group")]
    Duplicate {
        term: String,
        first: String,
        second: String,
    },
    #[error("lexicon term \"{term}\" in [{table}] {group} has no words; remove it")]
    EmptyTerm {
        table: String,
        group: String,
        term: String,
    },
    #[error("lexicon group [{table}] {group} is not one the verifier knows ({known}); rename it")]
    UnknownGroup {
        table: String,
        group: String,
        known: String,
    },
    #[error("lexicon [drug_classes] {class} names \"{member}\", which is not a group of [drugs]")]
    UnknownDrug { class: String, member: String },
    #[error("lexicon [broader_conditions] {group} is not a group of [conditions]; name one or remove it")]
    UnknownCondition { group: String },
}

/// The categories a term can belong to; each has its own table in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Procedure,
    Drug,
    Route,
    Population,
    Negation,
    Unit,
    Timing,
    Number,
    Concept,
    /// What is done (insertion, removal): a retrieval qualifier.
    Action,
    /// Where (emergency department, intensive care, prehospital): a retrieval qualifier.
    Setting,
    /// What a procedure is done for (atrial fibrillation, pneumothorax): a retrieval
    /// qualifier, and to the verifier a concept like `[concepts]`.
    Condition,
    /// A word of a procedure title in both languages (`[vocabulary]`): retrieval's
    /// translation of a title the procedure groups do not name. Scanned apart from the other
    /// categories ([`Lexicon::scan_vocabulary`]), so the verifier never sees it.
    Vocabulary,
}

/// Units the verifier can scale; a `[units]` group must be named after one of them.
pub const KNOWN_UNITS: &[&str] = &[
    "mg", "ug", "g", "ng", "kg", "ml", "l", "dl", "mmol", "mol", "iu", "percent", "fr", "gauge",
    "cm", "mm", "cmh2o", "mmhg", "celsius", "second", "minute", "hour", "day", "week", "month",
    "year", "dose", "tablet", "puff", "drop", "breath",
];
/// Letters an inflection may add to a `[vocabulary]` prefix term's stem in
/// [`Lexicon::vocabulary_word`] ("skulder*" → "skulderens").
pub const INFLECTION: usize = 5;
/// Timing qualifiers the verifier compares; a `[timing]` group must be named after one.
pub const KNOWN_TIMING: &[&str] = &["every", "within", "after", "at_least", "at_most", "during"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    procedures: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    drugs: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    drug_classes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    routes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    populations: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    negations: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    units: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    timing: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    numbers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    concepts: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    actions: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    settings: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    conditions: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    broader_conditions: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    vocabulary: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    compounds: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    cues: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    language: BTreeMap<String, Vec<String>>,
}

/// One term compiled for matching: its words, and whether the last is a prefix.
#[derive(Debug, Clone)]
struct Pattern {
    words: Vec<String>,
    prefix: bool,
    category: Category,
    group: usize,
}

/// A match of a lexicon term in a token stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Index of the first token matched.
    pub start: usize,
    /// Number of tokens matched.
    pub len: usize,
    pub category: Category,
    /// The canonical group name.
    pub group: String,
}

/// The parsed, validated lexicon.
#[derive(Debug, Clone)]
pub struct Lexicon {
    /// Unique to each parsed lexicon (a clone shares it): what is compiled from a lexicon can
    /// be kept until it is replaced.
    id: u64,
    /// Canonical group names, indexed by `Pattern::group`.
    groups: Vec<(Category, String)>,
    /// Patterns by their first word (exact first words) for a quick lookup.
    exact: HashMap<String, Vec<Pattern>>,
    /// Patterns whose only word is a prefix, by their first character (a linear scan of
    /// all of them per token was most of the verifier's time).
    prefixes: HashMap<char, Vec<Pattern>>,
    /// Multi-word patterns whose first word is a prefix are not supported (refused at parse).
    classes: BTreeMap<String, Vec<String>>,
    cues: BTreeMap<String, Vec<Vec<String>>>,
    language: BTreeMap<String, Vec<String>>,
    procedures: BTreeMap<String, Vec<String>>,
    /// SHA-256 of the text it was parsed from (hex, first 16): tells one version from another.
    fingerprint: String,
    /// Every group's terms by category (for retrieval's concept model).
    terms: BTreeMap<(Category, String), Vec<String>>,
    /// Words a Danish compound may be split into (`[compounds]`).
    parts: Vec<String>,
    /// `[vocabulary]` compiled on its own (its terms may repeat other tables' terms).
    vocabulary: Option<Box<Lexicon>>,
    /// `[broader_conditions]`: a condition's broader terms, by condition group.
    broader: BTreeMap<String, Vec<String>>,
}

fn words_of(term: &str) -> Vec<String> {
    tokenize(term)
        .into_iter()
        .map(|t| match t {
            Tok::Word { lower, .. } => lower,
            Tok::Num { raw, .. } => raw,
            Tok::Sym(c) => c.to_string(),
        })
        .collect()
}

static CURRENT: std::sync::RwLock<Option<std::sync::Arc<Lexicon>>> = std::sync::RwLock::new(None);

/// The lexicon in force, shared by the verifier and retrieval: the embedded one, or the
/// department's file once [`install`]ed (at start, and again on each reload).
pub fn shared() -> std::sync::Arc<Lexicon> {
    if let Ok(g) = CURRENT.read() {
        if let Some(l) = g.as_ref() {
            return l.clone();
        }
    }
    let mut g = match CURRENT.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    g.get_or_insert_with(|| std::sync::Arc::new(Lexicon::embedded()))
        .clone()
}

/// Puts `lexicon` in force: runs that start afterwards use it. (The index's compound parts
/// are fixed when the daemon starts; see [`crate::analyze`].)
pub fn install(lexicon: Lexicon) {
    let mut g = match CURRENT.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    *g = Some(std::sync::Arc::new(lexicon));
}

impl Lexicon {
    /// This lexicon's identity (see the field).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The lexicon embedded in the binary (`etc/lexicon.toml`). It is validated by a test, so
    /// this cannot fail in a released build; if it ever did, an empty lexicon is returned and
    /// the verifier still blocks on everything that does not need it.
    pub fn embedded() -> Lexicon {
        Lexicon::parse(EMBEDDED).unwrap_or_else(|_| Lexicon::empty())
    }

    fn empty() -> Lexicon {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Lexicon {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            groups: Vec::new(),
            exact: HashMap::new(),
            prefixes: HashMap::new(),
            classes: BTreeMap::new(),
            cues: BTreeMap::new(),
            language: BTreeMap::new(),
            procedures: BTreeMap::new(),
            fingerprint: String::new(),
            terms: BTreeMap::new(),
            parts: Vec::new(),
            vocabulary: None,
            broader: BTreeMap::new(),
        }
    }

    /// Parses and validates a lexicon file: every group non-empty, every term in one group
    /// only, unit and timing groups known to the code, drug classes naming drugs.
    pub fn parse(toml_text: &str) -> Result<Lexicon, LexiconError> {
        let file: File =
            toml::from_str(toml_text).map_err(|e| LexiconError::Syntax(e.to_string()))?;
        let mut lex = Lexicon::empty();
        {
            use sha2::Digest;
            let d = sha2::Sha256::digest(toml_text.as_bytes());
            lex.fingerprint = d[..8].iter().map(|b| format!("{b:02x}")).collect();
        }
        type Table<'t> = (&'t str, Category, &'t BTreeMap<String, Vec<String>>);
        let tables: [Table<'_>; 12] = [
            ("procedures", Category::Procedure, &file.procedures),
            ("drugs", Category::Drug, &file.drugs),
            ("routes", Category::Route, &file.routes),
            ("populations", Category::Population, &file.populations),
            ("negations", Category::Negation, &file.negations),
            ("units", Category::Unit, &file.units),
            ("timing", Category::Timing, &file.timing),
            ("numbers", Category::Number, &file.numbers),
            ("concepts", Category::Concept, &file.concepts),
            ("actions", Category::Action, &file.actions),
            ("settings", Category::Setting, &file.settings),
            ("conditions", Category::Condition, &file.conditions),
        ];
        // term -> "table.group" where it was first seen
        let mut seen: HashMap<String, String> = HashMap::new();
        for (table, category, groups) in tables {
            lex.add_table(table, category, groups, &mut seen)?;
        }
        // The vocabulary may repeat other tables' terms ("dræn" is a concept the verifier
        // compares and a title word retrieval translates); within it, a term is in one group.
        if !file.vocabulary.is_empty() {
            let mut vocab = Lexicon::empty();
            vocab.add_table(
                "vocabulary",
                Category::Vocabulary,
                &file.vocabulary,
                &mut HashMap::new(),
            )?;
            vocab.sort_patterns();
            lex.vocabulary = Some(Box::new(vocab));
        }
        for (class, members) in &file.drug_classes {
            if !file.drugs.contains_key(class) {
                return Err(LexiconError::UnknownDrug {
                    class: class.clone(),
                    member: class.clone(),
                });
            }
            for m in members {
                if !file.drugs.contains_key(m) {
                    return Err(LexiconError::UnknownDrug {
                        class: class.clone(),
                        member: m.clone(),
                    });
                }
            }
        }
        lex.classes = file.drug_classes;
        for (name, list) in &file.cues {
            if list.is_empty() {
                return Err(LexiconError::EmptyGroup {
                    table: "cues".into(),
                    group: name.clone(),
                });
            }
            // A trailing `*` makes the last word a prefix, as in the other tables.
            let compiled = list
                .iter()
                .map(|t| {
                    let t = t.trim().to_lowercase();
                    let mut ws = words_of(t.trim_end_matches('*'));
                    if t.ends_with('*') {
                        if let Some(last) = ws.last_mut() {
                            last.push('*');
                        }
                    }
                    ws
                })
                .collect();
            lex.cues.insert(name.clone(), compiled);
        }
        for (name, list) in &file.language {
            if list.is_empty() {
                return Err(LexiconError::EmptyGroup {
                    table: "language".into(),
                    group: name.clone(),
                });
            }
            lex.language.insert(
                name.clone(),
                list.iter().map(|t| t.to_lowercase()).collect(),
            );
        }
        lex.procedures = file.procedures;
        for (name, list) in &file.broader_conditions {
            if !file.conditions.contains_key(name) {
                return Err(LexiconError::UnknownCondition {
                    group: name.clone(),
                });
            }
            let terms: Vec<String> = list
                .iter()
                .map(|t| t.trim().to_lowercase())
                .filter(|t| !t.trim_end_matches('*').is_empty())
                .collect();
            if terms.is_empty() {
                return Err(LexiconError::EmptyGroup {
                    table: "broader_conditions".into(),
                    group: name.clone(),
                });
            }
            lex.broader.insert(name.clone(), terms);
        }
        for (name, list) in &file.compounds {
            for part in list {
                let part = part.trim().to_lowercase();
                if part.is_empty() || !part.chars().all(char::is_alphabetic) {
                    return Err(LexiconError::EmptyTerm {
                        table: "compounds".into(),
                        group: name.clone(),
                        term: part,
                    });
                }
                lex.parts.push(part);
            }
        }
        lex.sort_patterns();
        Ok(lex)
    }

    /// Compiles one table's groups into patterns; `seen` holds the terms already taken.
    fn add_table(
        &mut self,
        table: &str,
        category: Category,
        groups: &BTreeMap<String, Vec<String>>,
        seen: &mut HashMap<String, String>,
    ) -> Result<(), LexiconError> {
        let lex = self;
        for (group, terms) in groups {
            if terms.is_empty() {
                return Err(LexiconError::EmptyGroup {
                    table: table.into(),
                    group: group.clone(),
                });
            }
            let known: Option<&[&str]> = match category {
                Category::Unit => Some(KNOWN_UNITS),
                Category::Timing => Some(KNOWN_TIMING),
                _ => None,
            };
            if let Some(known) = known {
                if !known.contains(&group.as_str()) {
                    return Err(LexiconError::UnknownGroup {
                        table: table.into(),
                        group: group.clone(),
                        known: known.join(" "),
                    });
                }
            }
            if category == Category::Number && group.parse::<f64>().is_err() {
                return Err(LexiconError::UnknownGroup {
                    table: table.into(),
                    group: group.clone(),
                    known: "a number".into(),
                });
            }
            let gi = lex.groups.len();
            lex.groups.push((category, group.clone()));
            lex.terms.insert(
                (category, group.clone()),
                terms.iter().map(|t| t.trim().to_lowercase()).collect(),
            );
            for term in terms {
                let trimmed = term.trim().to_lowercase();
                let (body, prefix) = match trimmed.strip_suffix('*') {
                    Some(b) => (b.to_string(), true),
                    None => (trimmed.clone(), false),
                };
                let words = words_of(&body);
                if words.is_empty() {
                    return Err(LexiconError::EmptyTerm {
                        table: table.into(),
                        group: group.clone(),
                        term: term.clone(),
                    });
                }
                let here = format!("{table}.{group}");
                if let Some(first) = seen.insert(trimmed.clone(), here.clone()) {
                    return Err(LexiconError::Duplicate {
                        term: trimmed,
                        first,
                        second: here,
                    });
                }
                let p = Pattern {
                    words,
                    prefix,
                    category,
                    group: gi,
                };
                if prefix && p.words.len() == 1 {
                    let first = p.words[0].chars().next().unwrap_or(' ');
                    lex.prefixes.entry(first).or_default().push(p);
                } else {
                    lex.exact.entry(p.words[0].clone()).or_default().push(p);
                }
            }
        }
        Ok(())
    }

    /// Longest patterns first, so "må ikke" wins over "må" and "inden for" over "for".
    fn sort_patterns(&mut self) {
        for v in self.exact.values_mut() {
            v.sort_by(|a, b| {
                b.words
                    .len()
                    .cmp(&a.words.len())
                    .then(a.prefix.cmp(&b.prefix))
            });
        }
        for v in self.prefixes.values_mut() {
            v.sort_by(|a, b| b.words[0].len().cmp(&a.words[0].len()));
        }
    }

    /// Every lexicon term in `tokens`, leftmost-longest per category (a token can carry a term
    /// of several categories, e.g. a number word and a timing word never overlap in practice,
    /// but "dræn" as concept and "pleuradræn" as procedure are distinct words).
    pub fn scan(&self, words: &[&str]) -> Vec<Hit> {
        let mut hits = Vec::new();
        let mut covered: HashMap<Category, usize> = HashMap::new();
        for i in 0..words.len() {
            let w = words[i];
            if w.is_empty() {
                continue;
            }
            let mut found: Vec<(usize, &Pattern)> = Vec::new();
            if let Some(cands) = self.exact.get(w) {
                for p in cands {
                    if let Some(n) = match_at(p, words, i) {
                        found.push((n, p));
                    }
                }
            }
            let first = w.chars().next().unwrap_or(' ');
            for p in self.prefixes.get(&first).map(Vec::as_slice).unwrap_or(&[]) {
                if w.starts_with(p.words[0].as_str()) {
                    found.push((1, p));
                }
            }
            // One hit per category at a position: the longest.
            found.sort_by_key(|f| std::cmp::Reverse(f.0));
            let mut cats_here: Vec<Category> = Vec::new();
            for (n, p) in found {
                if cats_here.contains(&p.category) {
                    continue;
                }
                if covered.get(&p.category).is_some_and(|end| *end > i) {
                    continue;
                }
                cats_here.push(p.category);
                covered.insert(p.category, i + n);
                hits.push(Hit {
                    start: i,
                    len: n,
                    category: p.category,
                    group: self.groups[p.group].1.clone(),
                });
            }
        }
        hits
    }

    /// The class a drug group belongs to, if any.
    pub fn classes_of(&self, drug: &str) -> Vec<&str> {
        self.classes
            .iter()
            .filter(|(_, members)| members.iter().any(|m| m == drug))
            .map(|(c, _)| c.as_str())
            .collect()
    }

    /// Whether the word sequence starting at `i` begins with a cue of list `name`.
    pub fn cue_at(&self, name: &str, words: &[&str], i: usize) -> Option<usize> {
        let list = self.cues.get(name)?;
        list.iter().find_map(|cue| {
            let n = cue.len();
            if n == 0 || i + n > words.len() {
                return None;
            }
            let ok = cue
                .iter()
                .zip(&words[i..i + n])
                .all(|(c, w)| match c.strip_suffix('*') {
                    Some(stem) => w.starts_with(stem),
                    None => c == w,
                });
            ok.then_some(n)
        })
    }

    /// Whether any cue of list `name` occurs in `words`.
    pub fn has_cue(&self, name: &str, words: &[&str]) -> bool {
        (0..words.len()).any(|i| self.cue_at(name, words, i).is_some())
    }

    /// The function-word list of a language (`danish`, `english`).
    pub fn language_words(&self, name: &str) -> &[String] {
        self.language.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The procedure synonym groups (canonical name → terms), for retrieval.
    pub fn procedures(&self) -> &BTreeMap<String, Vec<String>> {
        &self.procedures
    }

    /// Identifies this version of the lexicon (a hash of its text).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// How many groups it has.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The groups of one category with their terms as written (lower case; a trailing `*`
    /// marks a prefix), for retrieval.
    pub fn groups_of(&self, category: Category) -> impl Iterator<Item = (&str, &[String])> {
        self.terms
            .iter()
            .filter(move |((c, _), _)| *c == category)
            .map(|((_, g), t)| (g.as_str(), t.as_slice()))
    }

    /// The terms of one group.
    pub fn group_terms(&self, category: Category, group: &str) -> &[String] {
        self.terms
            .get(&(category, group.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The broader terms of a `[conditions]` group (`[broader_conditions]`): what a document
    /// may say instead when it speaks of the condition's whole class ("atrial arrhythmias" for
    /// atrial fibrillation).
    pub fn broader_terms(&self, condition: &str) -> &[String] {
        self.broader
            .get(condition)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The `[vocabulary]` hits in `words` (leftmost-longest), for retrieval.
    pub fn scan_vocabulary(&self, words: &[&str]) -> Vec<Hit> {
        self.vocabulary
            .as_ref()
            .map(|v| v.scan(words))
            .unwrap_or_default()
    }

    /// The `[vocabulary]` group of one word: a term equal to it, or a prefix term it inflects
    /// (at most [`INFLECTION`] letters longer than the stem, so "skulderen" is a shoulder but
    /// "skulderbladet" is not read as one).
    pub fn vocabulary_word(&self, word: &str) -> Option<&str> {
        let v = self.vocabulary.as_ref()?;
        if let Some(p) = v
            .exact
            .get(word)
            .and_then(|ps| ps.iter().find(|p| p.words.len() == 1))
        {
            return Some(&v.groups[p.group].1);
        }
        let first = word.chars().next()?;
        v.prefixes.get(&first)?.iter().find_map(|p| {
            let stem = &p.words[0];
            (word.starts_with(stem.as_str())
                && word.chars().count() <= stem.chars().count() + INFLECTION)
                .then(|| v.groups[p.group].1.as_str())
        })
    }

    /// The terms of one `[vocabulary]` group.
    pub fn vocabulary_terms(&self, group: &str) -> &[String] {
        self.vocabulary
            .as_ref()
            .map(|v| v.group_terms(Category::Vocabulary, group))
            .unwrap_or(&[])
    }

    /// The terms compounds are made of: every term of the procedure, drug, population,
    /// concept, condition, action, setting and vocabulary groups.
    fn compound_terms(&self) -> impl Iterator<Item = &String> {
        let vocabulary = self.vocabulary.as_ref().map(|v| &v.terms);
        self.terms
            .iter()
            .chain(vocabulary.into_iter().flatten())
            .filter(|((category, _), _)| {
                matches!(
                    category,
                    Category::Procedure
                        | Category::Drug
                        | Category::Population
                        | Category::Concept
                        | Category::Condition
                        | Category::Action
                        | Category::Setting
                        | Category::Vocabulary
                )
            })
            .flat_map(|(_, terms)| terms.iter())
    }

    /// The words a Danish compound may be split into: `[compounds]` and every one-word term
    /// of [`Lexicon::compound_terms`] (a prefix term without its `*`).
    pub fn compound_parts(&self) -> Vec<String> {
        let mut out = self.parts.clone();
        out.extend(
            self.compound_terms()
                .map(|t| t.trim_end_matches('*'))
                .filter(|t| t.chars().all(char::is_alphabetic))
                .map(str::to_string),
        );
        out.sort();
        out.dedup();
        out
    }

    /// The stems of the lexicon's one-word prefix terms ("pneumothora" of "pneumothora*"), at
    /// least `min_chars` long: a compound part may be one of them followed by an inflection
    /// ("tryk|pneumothorax", "børne|lumbalpunkturen").
    pub fn compound_heads(&self, min_chars: usize) -> Vec<String> {
        let mut out: Vec<String> = self
            .compound_terms()
            .filter_map(|t| t.strip_suffix('*'))
            .filter(|t| t.chars().count() >= min_chars && t.chars().all(char::is_alphabetic))
            .map(str::to_string)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The synonyms of a procedure title's words: every group one of whose terms occurs in
    /// `title`, with all that group's terms (prefix markers removed).
    pub fn procedure_synonyms(&self, title: &str) -> Vec<String> {
        let lower = title.to_lowercase();
        let mut out = Vec::new();
        for terms in self.procedures.values() {
            let hit = terms.iter().any(|t| {
                let t = t.trim_end_matches('*');
                !t.is_empty() && lower.contains(t)
            });
            if hit {
                out.extend(terms.iter().map(|t| t.trim_end_matches('*').to_string()));
            }
        }
        out
    }
}

/// How many of `words` from `i` the pattern `p` matches. A symbol of the pattern ("a-gas")
/// may be missing from the words: a title or a text split into words without symbols ("a gas")
/// matches it too.
fn match_at(p: &Pattern, words: &[&str], i: usize) -> Option<usize> {
    let n = p.words.len();
    let mut j = i;
    for (k, pw) in p.words.iter().enumerate() {
        let symbol = !pw.chars().any(char::is_alphanumeric);
        let w = words.get(j).copied();
        if symbol && w != Some(pw.as_str()) {
            continue;
        }
        let w = w?;
        let ok = if k + 1 == n && p.prefix {
            w.starts_with(pw.as_str())
        } else {
            w == pw
        };
        if !ok {
            return None;
        }
        j += 1;
    }
    (j > i).then_some(j - i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hyphenated_term_matches_words_split_without_the_hyphen() {
        let lex = Lexicon::parse(EMBEDDED).expect("embedded lexicon");
        for words in [&["a", "gas", "tages"][..], &["a", "-", "gas", "tages"][..]] {
            let hits = lex.scan(words);
            assert!(
                hits.iter().any(|h| h.group == "arteriepunktur"
                    && h.start == 0
                    && h.len == words.len() - 1),
                "{words:?}: {hits:?}"
            );
        }
        // The symbol alone does not stand for the term.
        assert!(!lex
            .scan(&["a", "tages"])
            .iter()
            .any(|h| h.group == "arteriepunktur"));
    }

    #[test]
    fn the_embedded_lexicon_parses() {
        let lex = Lexicon::parse(EMBEDDED).expect("embedded lexicon");
        assert!(lex.procedures().contains_key("pleuradraen"));
        let syn = lex.procedure_synonyms("Pleuradræn anlæggelse");
        assert!(syn.iter().any(|s| s == "chest drain"), "{syn:?}");
    }

    #[test]
    fn a_term_in_two_groups_is_refused_with_both_places() {
        let bad = "[drugs]\nadrenalin = [\"adrenalin*\"]\nepi = [\"adrenalin*\"]\n";
        let err = Lexicon::parse(bad).unwrap_err();
        assert!(matches!(err, LexiconError::Duplicate { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("drugs.adrenalin") && msg.contains("drugs.epi"),
            "{msg}"
        );
        let across = "[drugs]\nx = [\"oral\"]\n[routes]\npo = [\"oral\"]\n";
        assert!(matches!(
            Lexicon::parse(across),
            Err(LexiconError::Duplicate { .. })
        ));
    }

    #[test]
    fn an_empty_group_an_unknown_unit_and_bad_syntax_are_refused() {
        assert!(matches!(
            Lexicon::parse("[routes]\nim = []\n"),
            Err(LexiconError::EmptyGroup { .. })
        ));
        assert!(matches!(
            Lexicon::parse("[units]\nfurlong = [\"furlong\"]\n"),
            Err(LexiconError::UnknownGroup { .. })
        ));
        assert!(matches!(
            Lexicon::parse("[routes\n"),
            Err(LexiconError::Syntax(_))
        ));
        assert!(matches!(
            Lexicon::parse("[drug_classes]\nx = [\"y\"]\n"),
            Err(LexiconError::UnknownDrug { .. })
        ));
        assert!(matches!(
            Lexicon::parse("[routes]\nim = [\"  \"]\n"),
            Err(LexiconError::EmptyTerm { .. })
        ));
        assert!(Lexicon::parse("[surprise]\nx = [\"y\"]\n").is_err());
        assert!(matches!(
            Lexicon::parse("[broader_conditions]\nx = [\"y\"]\n"),
            Err(LexiconError::UnknownCondition { .. })
        ));
        assert!(matches!(
            Lexicon::parse("[conditions]\nx = [\"x\"]\n[broader_conditions]\nx = [\"*\"]\n"),
            Err(LexiconError::EmptyGroup { .. })
        ));
        let ok = Lexicon::parse("[conditions]\nx = [\"x\"]\n[broader_conditions]\nx = [\"Y*\"]\n")
            .expect("valid");
        assert_eq!(ok.broader_terms("x"), ["y*"]);
        assert!(ok.broader_terms("z").is_empty());
    }

    #[test]
    fn prefixes_and_phrases_match_longest_first() {
        let lex = Lexicon::embedded();
        let ws = [
            "adrenalin",
            "må",
            "ikke",
            "gives",
            "intramuskulært",
            "inden",
            "for",
        ];
        let hits = lex.scan(&ws);
        let g = |c: Category| -> Vec<&str> {
            hits.iter()
                .filter(|h| h.category == c)
                .map(|h| h.group.as_str())
                .collect()
        };
        assert_eq!(g(Category::Drug), ["adrenalin"]);
        assert_eq!(g(Category::Route), ["intramuskulaer"]);
        assert_eq!(g(Category::Negation), ["negation"]);
        assert_eq!(g(Category::Timing), ["within"]);
        assert!(lex
            .scan(&["noradrenalin"])
            .iter()
            .all(|h| h.group != "adrenalin"));
    }
}
