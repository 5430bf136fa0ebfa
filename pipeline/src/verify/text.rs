//! Tokens and sentences, for drafts and passages alike: a tokenizer that keeps decimals
//! ("0,5" and "0.5"), route abbreviations ("i.m.") and unit symbols ("µg", "%", "/") whole, and a
//! sentence splitter that knows Danish and English abbreviations, ordinals ("hvert 5. minut")
//! and that a citation after a full stop belongs to the sentence before it.

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A word: letters (and digits after the first letter), or a dotted abbreviation.
    Word { raw: String, lower: String },
    /// A number; a decimal comma or point followed by a digit is part of it.
    Num { value: f64, raw: String },
    /// Any other visible character.
    Sym(char),
}

impl Tok {
    /// The token as a lower-case string, the form the lexicon matches.
    pub fn key(&self) -> String {
        match self {
            Tok::Word { lower, .. } => lower.clone(),
            Tok::Num { raw, .. } => raw.clone(),
            Tok::Sym(c) => c.to_string(),
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// Length in chars of a dotted abbreviation starting at `i` ("i.m.", "f.eks.", "e.g."), if any:
/// 1–4 letters, a dot, then 1–3 letters and a dot, repeated; so "mg.Dosis" is not one.
fn dotted_abbreviation(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    let mut parts = 0;
    loop {
        let start = j;
        while j < chars.len() && chars[j].is_alphabetic() {
            j += 1;
        }
        let n = j - start;
        let max = if parts == 0 { 4 } else { 3 };
        if n == 0 || n > max || j >= chars.len() || chars[j] != '.' {
            break;
        }
        j += 1; // the dot
        parts += 1;
        if j >= chars.len() || !chars[j].is_alphabetic() {
            break;
        }
    }
    (parts >= 2).then_some(j - i)
}

/// Longest letter run on either side of an "&" abbreviation ("I&D", "D&C"); retrieval's
/// analysis cuts words the same way.
pub const MAX_AMPERSAND_RUN: usize = 3;

/// A run of an "&" abbreviation: 1–3 letters.
fn ampersand_run(run: &[char]) -> bool {
    (1..=MAX_AMPERSAND_RUN).contains(&run.len()) && run.iter().all(|c| c.is_alphabetic())
}

/// Splits text into tokens. Never fails; unknown characters become symbols.
pub fn tokenize(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c.is_control() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            // A decimal separator only when a digit follows: "0,5" but not "1, 2" or "5.".
            if i + 1 < chars.len()
                && (chars[i] == ',' || chars[i] == '.')
                && chars[i + 1].is_ascii_digit()
            {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let raw: String = chars[start..i].iter().collect();
            // Digits only, bounded length: the parse cannot fail except on absurd lengths,
            // which then read as 0 rather than panic.
            let value = raw.replace(',', ".").parse::<f64>().unwrap_or(0.0);
            out.push(Tok::Num { value, raw });
            continue;
        }
        if c.is_alphabetic()
            || (c == '°' && chars.get(i + 1).is_some_and(|n| *n == 'c' || *n == 'C'))
        {
            if let Some(n) = dotted_abbreviation(&chars, i) {
                let raw: String = chars[i..i + n].iter().collect();
                out.push(Tok::Word {
                    lower: raw.to_lowercase(),
                    raw,
                });
                i += n;
                continue;
            }
            let start = i;
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                let apostrophe =
                    (d == '\'' || d == '’') && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
                if is_word_char(d) || apostrophe {
                    i += 1;
                } else {
                    break;
                }
            }
            // "I&D", "D&C": short letter runs joined by "&" are one word, as the index reads
            // them (retrieval's `word_spans`), its lower form joined by "and" ("iandd").
            let mut run_start = start;
            while i < chars.len() && chars[i] == '&' && ampersand_run(&chars[run_start..i]) {
                let next = i + 1;
                let mut end = next;
                while end < chars.len() && is_word_char(chars[end]) {
                    end += 1;
                }
                if end == next || !ampersand_run(&chars[next..end]) {
                    break;
                }
                run_start = next;
                i = end;
            }
            let raw: String = chars[start..i].iter().collect::<String>().replace('’', "'");
            out.push(Tok::Word {
                lower: raw.to_lowercase().replace('&', "and"),
                raw,
            });
            continue;
        }
        out.push(Tok::Sym(c));
        i += 1;
    }
    out
}

/// Abbreviations after which a full stop never ends a sentence, even before a capital.
const NO_SPLIT: &[&str] = &[
    "f.eks", "ca", "bl.a", "evt", "e.g", "i.e", "etc", "vs", "dr", "nr", "jf", "dvs", "pga", "mht",
    "inkl", "ekskl", "iflg", "ift", "vha", "mv", "osv", "fig", "approx", "cf", "pkt", "ref", "mr",
    "mrs", "prof", "kl", "resp", "sml", "maks", "max", "hhv", "vedr", "iht",
];

/// Whether a valid or malformed citation bracket starts at `i` (`[S:`, `[SRC`, `(S:`, ...),
/// returning its end (exclusive) when it is closed within a short distance.
fn citation_like_at(chars: &[char], i: usize) -> Option<usize> {
    let open = chars[i];
    if open != '[' && open != '(' {
        return None;
    }
    let close = if open == '[' { ']' } else { ')' };
    let inner: String = chars[i + 1..]
        .iter()
        .take(24)
        .collect::<String>()
        .to_lowercase();
    let inner_t = inner.trim_start();
    if !(inner_t.starts_with("s:") || inner_t.starts_with("src") || inner_t.starts_with("s :")) {
        return None;
    }
    let end = chars[i + 1..]
        .iter()
        .take(40)
        .position(|c| *c == close)
        .map(|p| i + 1 + p + 1);
    Some(end.unwrap_or(chars.len().min(i + 1 + inner.chars().count())))
}

/// Splits one line (or paragraph) into sentences. A citation directly after a terminator
/// stays with the sentence it follows; a full stop after an ordinal ("5. minut"), a decimal
/// or an abbreviation does not end a sentence unless a capital letter starts the next one.
pub fn split_sentences(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '.' || c == '!' || c == '?' {
            // Swallow repeated terminators and closing quotes/brackets ("...", "?)").
            let mut j = i + 1;
            // Closing emphasis too: "**Kontraindikationer.** Manglende samtykke …" is a
            // label and a sentence.
            while j < chars.len()
                && matches!(
                    chars[j],
                    '.' | '!' | '?' | '"' | '”' | '»' | ')' | '*' | '_'
                )
            {
                j += 1;
            }
            // Then any citations that follow, with the spaces around them.
            let mut k = j;
            loop {
                let mut m = k;
                while m < chars.len() && chars[m].is_whitespace() {
                    m += 1;
                }
                match (m < chars.len())
                    .then(|| citation_like_at(&chars, m))
                    .flatten()
                {
                    Some(end) => k = end,
                    None => break,
                }
            }
            let mut m = k;
            while m < chars.len() && chars[m].is_whitespace() {
                m += 1;
            }
            let at_end = m >= chars.len();
            let had_space = m > k || k > j || at_end;
            let next = chars.get(m).copied();
            let prev_word: String = {
                let mut s = i;
                while s > 0 && (chars[s - 1].is_alphanumeric() || chars[s - 1] == '.') {
                    s -= 1;
                }
                chars[s..i].iter().collect::<String>().to_lowercase()
            };
            let prev_is_digit = i > 0 && chars[i - 1].is_ascii_digit();
            let abbreviation = c == '.' && NO_SPLIT.contains(&prev_word.trim_end_matches('.'));
            let boundary = if at_end {
                true
            } else if !had_space || abbreviation {
                false
            } else {
                match next {
                    Some(n) if n.is_uppercase() => true,
                    // "5. Derefter" splits above; "5. minut" (lower case) never does; a digit
                    // after a number and a full stop is a list, not a new sentence.
                    Some(n) if n.is_ascii_digit() => !prev_is_digit,
                    Some('"' | '“' | '«' | '*' | '_') => true,
                    _ => false,
                }
            };
            if boundary {
                let s: String = chars[start..k].iter().collect();
                let s = s.trim();
                if !s.is_empty() {
                    out.push(s.to_string());
                }
                start = k;
                i = k;
                continue;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    let s: String = chars[start.min(chars.len())..].iter().collect();
    let s = s.trim();
    if !s.is_empty() {
        out.push(s.to_string());
    }
    out
}

/// A text without its citation marks: superscript numbers after a word or a sentence's end
/// ("i låret ¹²,¹⁴ uden", "…in 2017.⁹,¹⁷¹ Molecular") as a PDF's text keeps them. A sentence
/// quoted or compared is the statement, not its reference numbers; an exponent stays ("10⁹/L",
/// "mg/m²", after a number or a unit's letter), and so does a mass number before its symbol
/// ("¹³¹I").
pub fn without_citation_marks(text: &str) -> String {
    use crate::document::{
        is_ordinal_ending, is_superscript_digit, is_superscript_letter, plain_letter,
        superscript_letters_end, superscript_run_end,
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        // A footnote's letter ("Adrenaline ᵃ", "50 ᶜ", "dose.ᵃ"), unless it ends an ordinal
        // ("3ʳᵈ", which reads "3rd").
        if is_superscript_letter(chars[i]) {
            let mut end = superscript_letters_end(&chars, i);
            if chars.get(end).is_none_or(|c| !c.is_alphanumeric()) {
                let run: String = chars[i..end].iter().collect();
                if out.ends_with(|c: char| c.is_ascii_digit()) && is_ordinal_ending(&run) {
                    out.extend(run.chars().filter_map(plain_letter));
                } else if out.ends_with(char::is_whitespace)
                    && chars.get(end).is_some_and(|c| c.is_whitespace())
                {
                    end += 1;
                }
                i = end;
                continue;
            }
        }
        if !is_superscript_digit(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut end = superscript_run_end(&chars, i);
        let run: String = chars[i..end].iter().collect();
        let before = out.chars().last();
        let after = chars.get(end);
        let mark = after.is_none_or(|c| !c.is_alphanumeric())
            && match before {
                None => false,
                // "10 ⁹/L", a justified line's space before an exponent, is still one.
                Some(c) if c.is_whitespace() => {
                    !crate::document::superscript_is_exponent(out.trim_end(), &run)
                }
                Some(c) if c.is_alphanumeric() => {
                    !crate::document::superscript_is_exponent(&out, &run)
                }
                Some(c) => matches!(c, '.' | ',' | ';' | ':' | ')' | ']' | '"' | '”'),
            };
        if mark {
            // "låret ¹²,¹⁴ uden": one space stays between the words.
            if before.is_some_and(char::is_whitespace) && after.is_some_and(|c| c.is_whitespace()) {
                end += 1;
            }
        } else {
            out.extend(&chars[i..end]);
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_abbreviations_and_units_stay_whole() {
        let t = tokenize("0,5 mg i.m. og 0.3mg/kg, f.eks. 1:1000 µg 5%");
        let keys: Vec<String> = t.iter().map(Tok::key).collect();
        assert_eq!(
            keys,
            [
                "0,5", "mg", "i.m.", "og", "0.3", "mg", "/", "kg", ",", "f.eks.", "1", ":", "1000",
                "µg", "5", "%"
            ]
        );
        assert!(matches!(t[0], Tok::Num { value, .. } if (value - 0.5).abs() < 1e-12));
        assert!(matches!(tokenize("mg.Dosis")[0], Tok::Word { ref lower, .. } if lower == "mg"));
    }

    #[test]
    fn citation_marks_go_and_exponents_stay() {
        assert_eq!(
            without_citation_marks("Giv adrenalin i låret ¹²,¹⁴ uden forsinkelse."),
            "Giv adrenalin i låret uden forsinkelse."
        );
        assert_eq!(
            without_citation_marks("as a separate entity in 2017.⁹,¹⁷¹ Molecular studies"),
            "as a separate entity in 2017. Molecular studies"
        );
        assert_eq!(
            without_citation_marks("recurrence.³,¹⁵²⁻¹⁵⁵ The CAP"),
            "recurrence. The CAP"
        );
        assert_eq!(
            without_citation_marks("In 40³ patients, 2 g⁸ IV and 10 mmol⁹ over 6 hours."),
            "In 40 patients, 2 g IV and 10 mmol over 6 hours."
        );
        // A footnote's letter goes too; an ordinal's ending stays.
        assert_eq!(
            without_citation_marks("Adrenalin ᵃ 10 mikrogram/kg, højst 50 ᶜ mg efter 3ʳᵈ stød.ᵃ,ᵇ"),
            "Adrenalin 10 mikrogram/kg, højst 50 mg efter 3rd stød."
        );
        // A space before an exponent does not make it a mark.
        assert_eq!(
            without_citation_marks("above 0.5 × 10 ⁹/L and 1.73 m ²."),
            "above 0.5 × 10 ⁹/L and 1.73 m ²."
        );
        for kept in [
            "under 50 x 10⁹/L",
            "400 mg/m², i.v.",
            "diagnostic ¹³¹I imaging",
            "Ca²⁺ and K⁺ and 0.5 s⁻¹",
            "3 cm².",
        ] {
            assert_eq!(without_citation_marks(kept), kept);
        }
    }

    #[test]
    fn sentences_split_at_real_ends_only() {
        let s = split_sentences(
            "Adrenalin 0,5 mg gives i.m. i låret, f.eks. Anterolateralt. [S:SRC0001] Dosis gentages hvert 5. minut ved behov. [S:SRC0002]",
        );
        assert_eq!(
            s,
            [
                "Adrenalin 0,5 mg gives i.m. i låret, f.eks. Anterolateralt. [S:SRC0001]",
                "Dosis gentages hvert 5. minut ved behov. [S:SRC0002]"
            ]
        );
        let e = split_sentences("Give 0.5 mg. Repeat after 5 min. [S:SRC0001]");
        assert_eq!(e, ["Give 0.5 mg.", "Repeat after 5 min. [S:SRC0001]"]);
        let c = split_sentences("Ca. 5 % får en bifasisk reaktion [S:SRC0003].");
        assert_eq!(c.len(), 1);
        let b = split_sentences("**Kontraindikationer.** Manglende samtykke og infektion.");
        assert_eq!(
            b,
            [
                "**Kontraindikationer.**",
                "Manglende samtykke og infektion."
            ]
        );
        // "maks." before a dose is an abbreviation, not the end of the sentence.
        let m = split_sentences("Adrenalin 0,01 mg/kg i.m., maks. 0,5 mg. [S:SRC0001]");
        assert_eq!(m.len(), 1, "{m:?}");
    }

    #[test]
    fn hostile_text_does_not_panic() {
        for s in [
            "",
            ".",
            "[",
            "[S:",
            "(S:SRC",
            "1,",
            "0,",
            "°",
            "🙂. 🙂.",
            "\u{0}\u{1b}[31m",
            "a.b.c.d.e.f.",
            "9999999999999999999999999999999999999999",
        ] {
            let _ = tokenize(s);
            let _ = split_sentences(s);
        }
    }
}
