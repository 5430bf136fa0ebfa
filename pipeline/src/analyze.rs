//! Text analysis shared by the library's index and retrieval's queries, so both sides see the
//! same terms: words in lower case, function words dropped, each word reduced by the Danish and
//! the English Snowball stemmers ("drænet", "dræn" → "dræn"; "punctures" → "punctur"), and
//! Danish compounds split into their parts ("thoraxdrænanlæggelse" → "thorax", "dræn",
//! "anlæggelse") so that a query for one part finds the compound.
//!
//! The parts a compound may be split into are the lexicon's (`[compounds] parts` and every
//! one-word term of its groups): a word is split only into known parts, optionally joined by
//! the Danish linking letters `s` and `e` ("infektions|risiko", "børne|afdeling"); a part may
//! also be the stem of a one-word prefix term followed by a short inflection, so a compound
//! whose head is a lexicon stem splits ("tryk|pneumothorax" by "pneumothora*"). Stemming and
//! splitting come from maintained crates (`rust-stemmers`, `decompound`).
//!
//! The index stores the analysed terms (space-separated) beside each passage; a change of the
//! analysis changes [`Analyzer::fingerprint`], and the daemon re-indexes the library at start.

use crate::verify::text::MAX_AMPERSAND_RUN;
use crate::verify::Lexicon;
use rust_stemmers::{Algorithm, Stemmer};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{OnceLock, RwLock};

/// Bumped when the analysis changes in a way the fingerprint of the parts cannot see.
const VERSION: u32 = 3;
/// Shortest word tried as a compound, and shortest part.
const MIN_COMPOUND_CHARS: usize = 7;
const MIN_PART_CHARS: usize = 3;
/// Shortest prefix-term stem a part may extend, and the most letters it may add.
const MIN_HEAD_CHARS: usize = 5;
const MAX_HEAD_INFLECTION: usize = 3;
/// Most words whose split is remembered.
const CACHE_LIMIT: usize = 200_000;

/// The analyser: the stemmers and the compound parts.
pub struct Analyzer {
    danish: Stemmer,
    english: Stemmer,
    parts: HashSet<String>,
    /// Stems of one-word prefix terms (see the module's note).
    heads: HashSet<String>,
    stop: HashSet<String>,
    fingerprint: String,
    splits: RwLock<HashMap<String, Option<Vec<String>>>>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("parts", &self.parts.len())
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// The analyser of the embedded lexicon, built once.
pub fn analyzer() -> &'static Analyzer {
    static ANALYZER: OnceLock<Analyzer> = OnceLock::new();
    ANALYZER.get_or_init(|| Analyzer::new(&crate::verify::lexicon::shared()))
}

/// The words of `text`: maximal runs of letters and digits, lower case; an abbreviation of
/// short letter runs joined by "&" ("I&D", "D&C", "A&E") is one word, its runs joined by
/// "and" ("iandd"), so it neither falls apart into single letters nor matches them.
pub fn raw_words(text: &str) -> Vec<String> {
    word_spans(text)
        .into_iter()
        .map(|(start, end)| word_of(&text[start..end]))
        .collect()
}

/// Where `raw_words` finds its words in `text` (byte ranges), in order.
pub fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, text.len()));
    }
    let short_letters = |(s, e): (usize, usize)| {
        let run = &text[s..e];
        run.chars().all(char::is_alphabetic) && run.chars().count() <= MAX_AMPERSAND_RUN
    };
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(runs.len());
    for run in runs {
        if let Some(last) = out.last_mut() {
            // The previous word (itself possibly joined) ends in a short run, then "&", then
            // this short run: one abbreviation.
            let last_run_start = text[last.0..last.1]
                .rfind('&')
                .map_or(last.0, |a| last.0 + a + 1);
            if last.1 + 1 == run.0
                && text.as_bytes()[last.1] == b'&'
                && short_letters((last_run_start, last.1))
                && short_letters(run)
            {
                last.1 = run.1;
                continue;
            }
        }
        out.push(run);
    }
    out
}

fn word_of(span: &str) -> String {
    span.split('&')
        .collect::<Vec<_>>()
        .join("and")
        .to_lowercase()
}

impl Analyzer {
    pub fn new(lexicon: &Lexicon) -> Analyzer {
        let parts: HashSet<String> = lexicon
            .compound_parts()
            .into_iter()
            .filter(|p| p.chars().count() >= MIN_PART_CHARS)
            .collect();
        let heads: HashSet<String> = lexicon.compound_heads(MIN_HEAD_CHARS).into_iter().collect();
        let stop: HashSet<String> = ["danish", "english"]
            .iter()
            .flat_map(|l| lexicon.language_words(l).iter().cloned())
            .collect();
        let mut sorted: Vec<&String> = parts.iter().collect();
        sorted.sort();
        let mut stops: Vec<&String> = stop.iter().collect();
        stops.sort();
        let mut h = Sha256::new();
        h.update(format!("v{VERSION}\n").as_bytes());
        for p in sorted {
            h.update(p.as_bytes());
            h.update(b"\n");
        }
        h.update(b"--\n");
        let mut sorted_heads: Vec<&String> = heads.iter().collect();
        sorted_heads.sort();
        for p in sorted_heads {
            h.update(p.as_bytes());
            h.update(b"\n");
        }
        h.update(b"--\n");
        for s in stops {
            h.update(s.as_bytes());
            h.update(b"\n");
        }
        let digest = h.finalize();
        let fingerprint = format!(
            "v{VERSION}-{}",
            digest[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Analyzer {
            danish: Stemmer::create(Algorithm::Danish),
            english: Stemmer::create(Algorithm::English),
            parts,
            heads,
            stop,
            fingerprint,
            splits: RwLock::new(HashMap::new()),
        }
    }

    /// Identifies the analysis: an index built with another fingerprint must be rebuilt.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether `word` is a function word ("og", "the"), left out of the index and of queries.
    pub fn is_stop(&self, word: &str) -> bool {
        self.stop.contains(word)
    }

    /// The stems of a word: Danish and English (one when they agree).
    pub fn stems(&self, word: &str) -> Vec<String> {
        let da = self.danish.stem(word).into_owned();
        let en = self.english.stem(word).into_owned();
        if da == en {
            vec![da]
        } else {
            vec![da, en]
        }
    }

    fn known_part(&self, part: &str) -> bool {
        self.part_form(part).is_some()
    }

    /// The word a compound's part stands for: itself when the lexicon knows it, without its
    /// linking letter (infektion|s|risiko, børn|e|afdeling), or itself when it is a prefix
    /// term's stem with a short inflection ("pneumothorax" by "pneumothora*").
    fn part_form(&self, part: &str) -> Option<String> {
        let n = part.chars().count();
        if n < MIN_PART_CHARS {
            return None;
        }
        if self.parts.contains(part) {
            return Some(part.to_string());
        }
        if let Some(p) = part
            .strip_suffix('s')
            .or_else(|| part.strip_suffix('e'))
            .filter(|p| p.chars().count() >= MIN_PART_CHARS && self.parts.contains(*p))
        {
            return Some(p.to_string());
        }
        let chars: Vec<char> = part.chars().collect();
        (MIN_HEAD_CHARS.max(n.saturating_sub(MAX_HEAD_INFLECTION))..n)
            .any(|k| self.heads.contains(&chars[..k].iter().collect::<String>()))
            .then(|| part.to_string())
    }

    /// The parts of a compound word, when it splits entirely into known parts.
    pub fn split(&self, word: &str) -> Option<Vec<String>> {
        if word.chars().count() < MIN_COMPOUND_CHARS || word.chars().any(|c| c.is_numeric()) {
            return None;
        }
        if let Ok(cache) = self.splits.read() {
            if let Some(hit) = cache.get(word) {
                return hit.clone();
            }
        }
        let is_part = |p: &str| self.known_part(p);
        let split =
            decompound::decompound(word, &is_part, decompound::DecompositionOptions::SHATTER)
                .ok()
                .filter(|parts| parts.len() >= 2)
                .map(|parts| {
                    parts
                        .into_iter()
                        .map(|p| self.part_form(&p).unwrap_or(p))
                        .collect::<Vec<_>>()
                });
        if let Ok(mut cache) = self.splits.write() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(word.to_string(), split.clone());
        }
        split
    }

    /// The index terms of one word: its stems, and the stems of its parts if it is a compound.
    pub fn word_terms(&self, word: &str, out: &mut Vec<String>) {
        let start = out.len();
        for s in self.stems(word) {
            out.push(s);
        }
        if let Some(parts) = self.split(word) {
            for p in parts {
                for s in self.stems(&p) {
                    if !out[start..].contains(&s) {
                        out.push(s);
                    }
                }
            }
        }
    }

    /// The index terms of a text, in order, as one space-separated string (what the library
    /// stores and its full-text index tokenises).
    pub fn index_text(&self, text: &str) -> String {
        self.terms(text).join(" ")
    }

    /// The index terms of a text, in order.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for w in raw_words(text) {
            if self.is_stop(&w) {
                continue;
            }
            self.word_terms(&w, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a() -> &'static Analyzer {
        analyzer()
    }

    #[test]
    fn an_ampersand_abbreviation_is_one_word() {
        assert_eq!(
            raw_words("I&D of a skin abscess"),
            ["iandd", "of", "a", "skin", "abscess"]
        );
        assert_eq!(
            raw_words("after D&C, A&E (T&A)"),
            ["after", "dandc", "aande", "tanda"]
        );
        // Spaced, long or numeric runs are not abbreviations.
        assert_eq!(raw_words("I & D"), ["i", "d"]);
        assert_eq!(raw_words("Smith&Nephew 2&3"), ["smith", "nephew", "2", "3"]);
        assert_eq!(raw_words("&D I&"), ["d", "i"]);
        // The joined word is not the single letters: "i" is a Danish word.
        let t = a().terms("I&D i dag");
        assert!(t.contains(&"iandd".to_string()), "{t:?}");
        assert!(!t.contains(&"d".to_string()), "{t:?}");
        assert_eq!(word_spans("x I&D y"), [(0, 1), (2, 5), (6, 7)]);
    }

    #[test]
    fn an_ampersand_abbreviation_is_one_word_as_the_index_reads_it() {
        for text in [
            "I&D af absces, D&C & Smith&Nephew; I & D",
            "x&y&z 2&3 &a b&",
        ] {
            let keys: Vec<String> = crate::verify::text::tokenize(text)
                .iter()
                .filter(|t| !matches!(t, crate::verify::text::Tok::Sym(_)))
                .map(crate::verify::text::Tok::key)
                .collect();
            assert_eq!(keys, raw_words(text), "{text}");
        }
        assert!(
            matches!(&crate::verify::text::tokenize("I&D")[0], crate::verify::text::Tok::Word { raw, .. } if raw == "I&D")
        );
    }

    #[test]
    fn inflections_share_a_stem_in_both_languages() {
        let t = a().terms("Drænet anlægges. The drains were inserted");
        assert!(t.contains(&"dræn".to_string()), "{t:?}");
        assert!(t.contains(&"drain".to_string()), "{t:?}");
        assert!(t.contains(&"insert".to_string()), "{t:?}");
        assert!(
            !t.contains(&"the".to_string()),
            "function words are dropped: {t:?}"
        );
    }

    #[test]
    fn danish_compounds_are_split_into_known_parts() {
        let parts = a().split("thoraxdrænanlæggelse").expect("splits");
        assert_eq!(parts, ["thorax", "dræn", "anlæggelse"]);
        let parts = a()
            .split("infektionsrisiko")
            .expect("splits with a linking s");
        assert_eq!(parts, ["infektion", "risiko"]);
        assert_eq!(a().split("anafylaksi"), None, "a plain word stays whole");
        // A head that is a prefix term's stem with an inflection ("pneumothora*").
        let parts = a()
            .split("trykpneumothorax")
            .expect("splits on a prefix term's stem");
        assert_eq!(parts, ["tryk", "pneumothorax"]);
        let parts = a().split("spontanpneumothoraxen");
        assert_eq!(parts, None, "an unknown first part keeps the word whole");
        // The compound keeps its own stem too, so a query for the whole word finds it.
        let t = a().terms("ascitespunktur");
        assert!(t.iter().any(|s| s.starts_with("ascitespunktur")), "{t:?}");
        assert!(t.iter().any(|s| s == "punktur"), "{t:?}");
    }

    #[test]
    fn the_fingerprint_names_the_version() {
        assert!(a().fingerprint().starts_with("v3-"));
        assert_eq!(a().fingerprint().len(), "v3-".len() + 16);
    }
}
