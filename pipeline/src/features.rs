//! What retrieval asks of every passage of a chosen document apart from the procedure: which
//! outline sections' cue words it carries, which populations its heading and its text name,
//! and whether it gives an adult's or a child's age or a weight-based dose.
//!
//! None of it depends on the request, so it is computed when a passage is stored (and again
//! when the analysis or the lexicon's population words change) and kept beside the passage as
//! one integer. Retrieval then picks a long guideline's passages from these integers instead of
//! re-reading and re-analysing the text of every passage for every run. Each set of features
//! carries the [`fingerprint`] of what computed it; retrieval uses stored features only when
//! that fingerprint is the one in force, and analyses the passages itself otherwise.

use crate::analyze::Analyzer;
use crate::concept::{term_match, Tokens};
use crate::outline;
use crate::ports::{IndexTerms, Match};
use crate::verify::lexicon::Category;
use crate::verify::Lexicon;
use sha2::{Digest, Sha256};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The terms of a passage, analysed with the library's analyser, and its features: what the
/// library stores beside a passage.
pub fn index_terms(heading: &str, text: &str) -> IndexTerms {
    let a = crate::analyze::analyzer();
    let heading = a.index_text(heading);
    let text = a.index_text(text);
    let features = Features::of(&heading, &text).0;
    IndexTerms {
        heading,
        text,
        features,
    }
}

/// Bumped when what the bits mean, or how they are computed, changes.
const VERSION: u32 = 7;

const HEAD_ADULTS: u32 = 1 << 16;
const HEAD_CHILDREN: u32 = 1 << 17;
const TEXT_ADULTS: u32 = 1 << 18;
const TEXT_CHILDREN: u32 = 1 << 19;
const WEIGHT_BASED: u32 = 1 << 20;
const ADULT_AGE: u32 = 1 << 21;
const CHILD_AGE: u32 = 1 << 22;
const ADULT_BOUND: u32 = 1 << 23;
const TERM_BOUND: u32 = 1 << 24;

/// A passage's features: bit `i` for the `i`-th evidence section of the outline whose cue
/// words its heading or text carries; then the population bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features(pub u32);

impl Features {
    /// The features of a passage from its analysed heading and text terms, by the lexicon in
    /// force.
    pub fn of(heading_terms: &str, text_terms: &str) -> Features {
        Features::with(
            &crate::verify::lexicon::shared(),
            crate::analyze::analyzer(),
            heading_terms,
            text_terms,
        )
    }

    /// The features by `lexicon`'s population words.
    pub fn with(
        lexicon: &Lexicon,
        analyzer: &Analyzer,
        heading_terms: &str,
        text_terms: &str,
    ) -> Features {
        let head = Tokens::new(heading_terms);
        let text = Tokens::new(text_terms);
        let mut bits = 0u32;
        for (i, (_, m)) in sections().iter().enumerate() {
            if m.matches(&text) || m.matches(&head) {
                bits |= 1 << i;
            }
        }
        let groups = crate::concept::population_groups(lexicon, analyzer);
        let (a, c) = groups.families(&head);
        bits |= if a { HEAD_ADULTS } else { 0 } | if c { HEAD_CHILDREN } else { 0 };
        let (a, c) = groups.families(&text);
        bits |= if a { TEXT_ADULTS } else { 0 } | if c { TEXT_CHILDREN } else { 0 };
        if weight_based(&text) {
            bits |= WEIGHT_BASED;
        }
        let (a, c) = ages(&text);
        // A scope that bounds the age from below names the children it leaves out ("Men aged
        // 18 and over. Boys are managed by the paediatric team"): their ages or words there
        // are not whom the text is about.
        let bound = adult_bound(&text);
        bits |= if a { ADULT_AGE } else { 0 } | if c && !bound { CHILD_AGE } else { 0 };
        if bound {
            bits |= ADULT_BOUND;
        }
        if term_bound(&text) {
            bits |= TERM_BOUND;
        }
        Features(bits)
    }

    /// Whether it carries the cue words of the `i`-th evidence section.
    pub fn section(self, i: usize) -> bool {
        i < 16 && self.0 & (1 << i) != 0
    }

    /// How many sections' cue words it carries.
    pub fn section_count(self) -> u32 {
        (self.0 & 0xffff).count_ones()
    }

    /// The population families its heading names by the lexicon's words: (adults, children).
    pub fn heading_families(self) -> (bool, bool) {
        (self.0 & HEAD_ADULTS != 0, self.0 & HEAD_CHILDREN != 0)
    }

    /// The population families its text names by the lexicon's words.
    pub fn text_families(self) -> (bool, bool) {
        (self.0 & TEXT_ADULTS != 0, self.0 & TEXT_CHILDREN != 0)
    }

    /// Whether its text gives a weight-based dose ("mg/kg").
    pub fn weight_based(self) -> bool {
        self.0 & WEIGHT_BASED != 0
    }

    /// Whether its text gives an adult's and a child's age (see [`ages`]).
    pub fn ages(self) -> (bool, bool) {
        (self.0 & ADULT_AGE != 0, self.0 & CHILD_AGE != 0)
    }

    /// Whether its text bounds the patients' age from below at an adult age ("patients aged
    /// 16 years and over", "patienter på 18 år og derover"): a scope that leaves children out.
    pub fn adult_bound(self) -> bool {
        self.0 & ADULT_BOUND != 0
    }

    /// Whether its text scopes the newborns to those born at term (see [`term_bound`]).
    pub fn term_bound(self) -> bool {
        self.0 & TERM_BOUND != 0
    }

    /// Whom the passage is about as far as it says: its heading's families, else its text's;
    /// a weight-based dose in a text naming no adults speaks of children.
    pub fn families(self) -> (bool, bool) {
        let (a, c) = match self.heading_families() {
            (false, false) => self.text_families(),
            named => named,
        };
        (a, c || (!a && self.weight_based()))
    }
}

/// What computed features: this module's version, the analysis, the section cue words and the
/// lexicon's population groups. Stored features with another fingerprint are not used.
pub fn fingerprint(lexicon: &Lexicon, analyzer: &Analyzer) -> String {
    let mut h = Sha256::new();
    h.update(VERSION.to_le_bytes());
    h.update(analyzer.fingerprint().as_bytes());
    for s in outline::evidence_sections() {
        h.update(s.heading.as_bytes());
        for c in s.cues {
            h.update(b"\x1f");
            h.update(c.as_bytes());
        }
        h.update(b"\x1e");
    }
    let mut groups: Vec<(&str, &[String])> = lexicon.groups_of(Category::Population).collect();
    groups.sort();
    for (name, terms) in groups {
        h.update(name.as_bytes());
        for t in terms {
            h.update(b"\x1f");
            h.update(t.as_bytes());
        }
        h.update(b"\x1e");
    }
    let d = h.finalize();
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The fingerprint of the lexicon and analysis in force. Retrieval asks for it on every run,
/// so the last lexicon's is kept (hashing its population groups each time would be work on
/// the hot path).
pub fn current_fingerprint() -> String {
    static LAST: Mutex<Option<(u64, String)>> = Mutex::new(None);
    let lexicon = crate::verify::lexicon::shared();
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    match last.as_ref() {
        Some((id, f)) if *id == lexicon.id() => f.clone(),
        _ => {
            let f = fingerprint(&lexicon, crate::analyze::analyzer());
            *last = Some((lexicon.id(), f.clone()));
            f
        }
    }
}

/// The evidence sections' headings and their cue words as matchers, in outline order.
pub fn sections() -> &'static [(&'static str, Match)] {
    static SECTIONS: OnceLock<Vec<(&'static str, Match)>> = OnceLock::new();
    SECTIONS.get_or_init(|| {
        let a = crate::analyze::analyzer();
        let s: Vec<(&'static str, Match)> = outline::evidence_sections()
            .map(|s| {
                (
                    s.heading,
                    Match::Any(
                        s.cues
                            .iter()
                            .filter_map(|c| term_match(a, &format!("{c}*")))
                            .collect(),
                    ),
                )
            })
            .collect();
        assert!(s.len() <= 16, "features hold at most 16 sections");
        s
    })
}

/// Weight-based doses speak of children even where no word does.
pub fn weight_based(toks: &Tokens<'_>) -> bool {
    toks.seq.windows(2).any(|w| {
        matches!(w[0], "mg" | "µg" | "mikrogram" | "microgram" | "mcg" | "ml")
            && matches!(w[1], "kg")
    })
}

/// Who a text is about beyond the lexicon's population words: ages ("54-year-old", "29-årig",
/// "aged 67 years", "3 måneder gammel": 18 or more is an adult; under 18, or months, weeks
/// or days of age, a child) and words for a woman, a man, a girl or a boy. Case reports name
/// their patient this way. A number of years without a word that makes it an age ("over 4
/// years", "followed for 2 years", "after 3 months") is a duration and says nothing. Returns
/// (adults, children).
pub fn ages(toks: &Tokens<'_>) -> (bool, bool) {
    let toks = &toks.seq;
    let mut adult = false;
    let mut child = false;
    // The analysed text carries a word and its stem side by side, so windows are generous.
    let near = |from: usize, to: usize, f: &dyn Fn(&str) -> bool| {
        toks[from.min(toks.len())..to.min(toks.len())]
            .iter()
            .any(|t| f(t))
    };
    let old = |t: &str| matches!(t, "old" | "gammel" | "gaml" | "gamle");
    // Only the words as written: compound splitting makes "age" of "drainage" and "ag" is a
    // stem of many words, so "drainage within 90 days" would read as an age.
    let aged = |t: &str| matches!(t, "aged" | "alder" | "alderen");
    // "adults aged 16 years and over", "patienter på 65 år og derover": a lower bound.
    let and_over = |t: &str| {
        matches!(
            t,
            "over" | "older" | "above" | "derover" | "derov" | "opefter"
        )
    };
    for (i, t) in toks.iter().enumerate() {
        match *t {
            "woman" | "women" | "kvind" | "mænd" => adult = true,
            "girl" | "boy" | "dreng" | "pig" => child = true,
            _ => {}
        }
        let Ok(n) = t.parse::<u32>() else {
            continue;
        };
        let before = near(i.saturating_sub(3), i, &aged);
        for (k, u) in toks.iter().enumerate().skip(i + 1).take(2) {
            // "29-årig", "9-årige": the unit is the age.
            let is_age = u.starts_with("årig") || before || near(k + 1, k + 4, &old);
            if u.starts_with("year") || u.starts_with("år") {
                if is_age {
                    if near(k + 1, k + 4, &and_over) {
                        // A lower bound: "16 years and over" is an adult population.
                        adult |= (16..120).contains(&n);
                    } else if (18..120).contains(&n) {
                        adult = true;
                    } else if n < 18 {
                        child = true;
                    }
                }
                break;
            }
            if ["month", "måned", "week", "uge", "day", "døgn", "dag"]
                .iter()
                .any(|w| u.starts_with(w))
            {
                child |= is_age;
                break;
            }
        }
    }
    (adult, child)
}

/// A lower age bound at the age of an adult ("aged 16 years and over", "18 år og derover",
/// "16 years or older", "aged 16 and over"): a number from 15 to 25, a year word (or an age
/// word before it), then "over"/"older"/"derover" within three terms. A document that says it is scoped so is about adults even where it
/// names children ("children are covered by the paediatric guideline").
pub fn adult_bound(toks: &Tokens<'_>) -> bool {
    let toks = &toks.seq;
    let and_over = |t: &str| {
        matches!(
            t,
            "over" | "older" | "above" | "derover" | "derov" | "opefter"
        )
    };
    let adult_number = |t: &str| t.parse::<u32>().is_ok_and(|n| (15..=25).contains(&n));
    // "Applies to patients aged 16 and over": an age word before the number says it is an
    // age without a year word.
    let aged = toks.iter().enumerate().any(|(i, t)| {
        adult_number(t)
            && toks[i.saturating_sub(2)..i]
                .iter()
                .any(|w| w.starts_with("aged") || w.starts_with("alder"))
            && toks[i + 1..(i + 3).min(toks.len())]
                .iter()
                .any(|w| and_over(w))
    });
    aged || toks.iter().enumerate().any(|(i, t)| {
        adult_number(t)
            && toks
                .iter()
                .skip(i + 1)
                .take(2)
                .position(|u| u.starts_with("year") || *u == "år" || u.starts_with("års"))
                .is_some_and(|k| {
                    let at = i + 1 + k;
                    toks[at + 1..(at + 4).min(toks.len())]
                        .iter()
                        .any(|w| and_over(w))
                })
    })
}

/// A text that scopes its newborns to those born at term: a gestational age from 37 weeks
/// up ("newborns of 37 weeks' gestation or more", "37 uger eller mere", "at least 37 weeks")
/// or term newborns by name ("term infants", "born at term", "full-term", "terminsfødte",
/// "fuldbårne"; not "pre-term", "near-term" or "long-term"). A study or an instruction so
/// scoped is not about preterm newborns, whatever it says of them ("the bays for preterm
/// infants had no cameras").
pub fn term_bound(toks: &Tokens<'_>) -> bool {
    let toks = &toks.seq;
    let week = |t: &str| t.starts_with("week") || t.starts_with("uge");
    let and_over = |t: &str| {
        matches!(
            t,
            "more" | "mere" | "over" | "older" | "above" | "derover" | "later" | "senere"
        )
    };
    let bound = toks.iter().enumerate().any(|(i, t)| {
        if !t.parse::<u32>().is_ok_and(|n| (37..=42).contains(&n)) {
            return false;
        }
        let Some(k) = toks.iter().skip(i + 1).take(3).position(|u| week(u)) else {
            return false;
        };
        let at = i + 1 + k;
        let after = toks[at + 1..(at + 5).min(toks.len())]
            .iter()
            .any(|u| and_over(u));
        let least = toks[i.saturating_sub(2)..i]
            .iter()
            .any(|u| matches!(*u, "least" | "mindst"));
        after || least
    });
    let named = toks.iter().enumerate().any(|(i, t)| {
        let before = i.checked_sub(1).map(|b| toks[b]);
        let next = toks.get(i + 1).copied().unwrap_or("");
        t.starts_with("terminsfød")
            || t.starts_with("fuldbår")
            || (*t == "term"
                && !matches!(before, Some("pre" | "near" | "long" | "short" | "post"))
                && (matches!(before, Some("born" | "full" | "født"))
                    || ["newborn", "infant", "neonat", "baby", "babies"]
                        .iter()
                        .any(|w| next.starts_with(w))))
    });
    bound || named
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::analyzer;

    fn who(text: &str) -> (bool, bool) {
        let t = analyzer().index_text(text);
        ages(&Tokens::new(&t))
    }

    fn features(heading: &str, text: &str) -> Features {
        let a = analyzer();
        Features::of(&a.index_text(heading), &a.index_text(text))
    }

    #[test]
    fn a_gestational_age_from_term_up_is_a_scope() {
        let term = |text: &str| features("", text).term_bound();
        for scoped in [
            "Newborns of 37 weeks' gestation or more who received chest compressions were included.",
            "Inclusion limited to newborns of 37 weeks or more because the bays for preterm infants had no cameras.",
            "Gælder nyfødte født efter 37 uger eller mere.",
            "Term newborns needing resuscitation in the delivery room.",
            "Only infants born at term were studied.",
            "Instruksen gælder terminsfødte børn.",
        ] {
            assert!(term(scoped), "{scoped}");
        }
        for not in [
            "Preterm infants born before 32 weeks were randomised.",
            "Pre-term infants and near-term infants were included.",
            "Long-term outcomes at 2 years.",
            "Median gestation 39+2 weeks, birth weight 3,320 g.",
            "Infants of 24 to 31 weeks' gestation or more.",
        ] {
            assert!(!term(not), "{not}");
        }
    }

    #[test]
    fn an_adult_lower_age_bound_is_a_scope() {
        let bound = |text: &str| adult_bound(&Tokens::new(&analyzer().index_text(text)));
        assert!(bound("RSI in patients aged 16 years and over in the ED. Children are covered by the paediatric guideline."));
        assert!(bound(
            "Gælder patienter på 16 år og derover. Børn behandles efter egen instruks."
        ));
        assert!(bound("adults 18 years or older"));
        assert!(bound("Applies to patients aged 16 and over."));
        assert!(bound("Gælder patienter i alderen 18 og derover."));
        assert!(!bound(
            "Patients aged 16 were excluded; 20 of over 100 were treated."
        ));
        assert!(!bound("children under 16 years"));
        assert!(
            !bound("patients over 65 years"),
            "an older subgroup, not a scope"
        );
        assert!(!bound("followed for 2 years and over 3 months"));
        assert!(features("Scope", "Patients aged 18 years and over.").adult_bound());
        // The children a scope leaves out are not a child's age of the document.
        let scope = features(
            "Scope",
            "Men aged 18 and over. Boys are managed by the paediatric surgical team.",
        );
        assert!(scope.adult_bound() && !scope.ages().1);
        assert!(
            features("Case", "A 9-year-old boy presented with paraphimosis.")
                .ages()
                .1
        );
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
        assert_eq!(who("patients aged 67 years"), (true, false));
        assert_eq!(who("i alderen 8 år"), (false, true));
        assert_eq!(who("a 6-week-old infant"), (false, true));
        assert_eq!(who("en 9-årig dreng"), (false, true));
        // Durations are not ages.
        assert_eq!(
            who("six departments over 4 years; followed for 2 years, seen again after 3 months"),
            (false, false)
        );
        assert_eq!(
            who("kontrol efter 3 måneder og igen efter 1 år"),
            (false, false)
        );
        assert_eq!(who("observeres i 2 døgn"), (false, false));
        // "drainage" is split into "drain" and "age" for the index: not an age.
        assert_eq!(who("repeat drainage within 90 days"), (false, false));
        // A lower bound of 16 and over is an adult population.
        assert_eq!(who("adults (aged 16 years and over)"), (true, false));
    }

    #[test]
    fn features_name_sections_populations_ages_and_weight_based_doses() {
        let f = features(
            "Behandling af børn",
            "Adrenalin 0,01 mg/kg gives intramuskulært i låret; kontraindikationer er få.",
        );
        let names: Vec<&str> = sections()
            .iter()
            .enumerate()
            .filter(|(i, _)| f.section(*i))
            .map(|(_, (h, _))| *h)
            .collect();
        assert!(names.contains(&"Kontraindikationer"), "{names:?}");
        assert!(names.contains(&"Anatomi og orientering"), "{names:?}");
        assert_eq!(f.heading_families(), (false, true));
        assert_eq!(f.text_families(), (false, false));
        assert!(f.weight_based());
        assert_eq!(f.families(), (false, true));
        let g = features(
            "Dosering",
            "Til voksne gives 0,5 mg. En 72-årig mand fik dosen.",
        );
        assert_eq!(g.heading_families(), (false, false));
        assert_eq!(g.text_families(), (true, false));
        assert_eq!(g.ages(), (true, false));
        assert_eq!(g.families(), (true, false));
        assert_eq!(
            features("Historik", "Intet om dosis her.").section_count(),
            1
        );
    }

    #[test]
    fn the_fingerprint_follows_the_population_words() {
        let a = analyzer();
        let l = Lexicon::embedded();
        assert_eq!(fingerprint(&l, a), fingerprint(&Lexicon::embedded(), a));
        let edited = crate::verify::lexicon::EMBEDDED
            .replace("unge = [\"unge\", ", "unge = [\"unge\", \"ungdom\", ");
        assert_ne!(edited, crate::verify::lexicon::EMBEDDED);
        let other = Lexicon::parse(&edited).expect("an edited lexicon");
        assert_ne!(fingerprint(&l, a), fingerprint(&other, a));
        // Words of another category do not change what features say.
        let edited = crate::verify::lexicon::EMBEDDED
            .replace("[actions]\n", "[actions]\nspuling = [\"skylning\"]\n");
        assert_ne!(edited, crate::verify::lexicon::EMBEDDED);
        let other = Lexicon::parse(&edited).expect("an edited lexicon");
        assert_eq!(fingerprint(&l, a), fingerprint(&other, a));
    }
}
