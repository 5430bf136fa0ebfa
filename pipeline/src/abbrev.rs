//! Abbreviations the library defines: "transcutaneous pacing (TCP)", "TCP (non-invasive
//! transcutaneous pacing)", "Peritonsillar abscess (quinsy, PTA)", or a glossary line "TCP –
//! transcutaneous pacing". Retrieval reads a title's abbreviation the lexicon does not know the
//! way the department's own documents spell it out; the same letters mean other things in other
//! libraries ("PTA": peritonsillar abscess, post-traumatic amnesia, angioplasty), so the
//! library, not a fixed list, decides.
//!
//! A candidate long form is accepted only when the short form's letters occur in it in order,
//! right to left, the first one starting a word (the check of Schwartz and Hearst, "A simple
//! algorithm for identifying abbreviation definitions in biomedical text", 2003); the long form
//! is cut to the word where that first letter is found.

/// Most words before "(" a long form may have: this many more than the short form's letters,
/// and at most twice as many.
const EXTRA_WORDS: usize = 5;

/// The long forms `text` gives for `short` (as written, in order of appearance).
pub fn definitions(text: &str, short: &str) -> Vec<String> {
    let short = short.trim();
    if short.is_empty() || !short.chars().any(char::is_alphabetic) {
        return Vec::new();
    }
    let letters = short.chars().filter(|c| c.is_alphanumeric()).count();
    let max_words = (letters + EXTRA_WORDS).min(2 * letters);
    let mut out = Vec::new();
    for line in text.lines() {
        // A glossary line: "TCP – transcutaneous pacing", "- **TCP**: …", "| TCP | … |".
        let bare = line
            .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '-' | '*' | '|' | '•'))
            .trim_start();
        if let Some(rest) = bare.strip_prefix(short) {
            let rest = rest.trim_start_matches(['*', ' ', '\t']);
            if let Some(rest) = rest.strip_prefix(['–', '—', ':', '=', '|', '-']) {
                let candidate = rest
                    .split([',', ';', '.', '|', '(', ')'])
                    .next()
                    .unwrap_or("")
                    .trim_matches(|c: char| c.is_whitespace() || c == '*');
                out.extend(long_form(short, candidate));
            }
        }
        let mut search = 0;
        while let Some(open) = line[search..].find('(').map(|i| search + i) {
            let Some(close) = line[open..].find(')').map(|i| open + i) else {
                break;
            };
            search = close + 1;
            let inside = &line[open + 1..close];
            let before = line[..open].trim_end();
            // "long form (SF)", "long form (synonym, SF)".
            if inside.split([',', ';']).any(|item| item.trim() == short) {
                let words: Vec<&str> = before
                    .rsplit(['(', ')', '.', ':', ';', '[', ']'])
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect();
                let from = words.len().saturating_sub(max_words);
                out.extend(long_form(short, &words[from..].join(" ")));
            }
            // "SF (long form)".
            if before.ends_with(short)
                && !before[..before.len() - short.len()]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_alphanumeric)
            {
                let candidate = inside.split([',', ';']).next().unwrap_or("").trim();
                if candidate != short {
                    out.extend(long_form(short, candidate));
                }
            }
        }
    }
    out
}

/// The shortest end of `candidate` whose words carry `short`'s letters in order (the first
/// starting a word), or `None`.
fn long_form(short: &str, candidate: &str) -> Option<String> {
    let s: Vec<char> = short
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    let l: Vec<char> = candidate.chars().flat_map(char::to_lowercase).collect();
    // Lower-casing may change the length ("İ"): keep to candidates where it does not.
    if s.is_empty() || l.len() != candidate.chars().count() {
        return None;
    }
    let mut li = l.len();
    for (k, &c) in s.iter().enumerate().rev() {
        loop {
            if li == 0 {
                return None;
            }
            li -= 1;
            let word_start = li == 0 || !l[li - 1].is_alphanumeric();
            if l[li] == c && (k > 0 || word_start) {
                break;
            }
        }
    }
    let chars: Vec<char> = candidate.chars().collect();
    let long: String = chars[li..].iter().collect::<String>().trim().to_string();
    let words = long.split_whitespace().count();
    // A long form is words (at most one more than the short form has letters: "patient
    // was seen in clinic" carries P, T, A but does not spell PTA), more than the short form
    // itself, and never contains it.
    (words >= 1
        && words <= s.len() + 1
        && long.chars().filter(|c| c.is_alphanumeric()).count() > s.len()
        && !long
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == short))
    .then_some(long)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_ways_of_defining_an_abbreviation_are_read() {
        assert_eq!(
            definitions(
                "We assessed the effectiveness and safety of transcutaneous pacing (TCP) in adults.",
                "TCP"
            ),
            ["transcutaneous pacing"]
        );
        assert_eq!(
            definitions("TCP (non-invasive transcutaneous pacing) buys time.", "TCP"),
            ["transcutaneous pacing"]
        );
        assert_eq!(
            definitions(
                "Peritonsillar abscess (quinsy, PTA) is a collection.",
                "PTA"
            ),
            ["Peritonsillar abscess"]
        );
        assert_eq!(
            definitions("## Forkortelser\n- **TCP** – transcutaneous pacing\n| FONA | front-of-neck access |", "TCP"),
            ["transcutaneous pacing"]
        );
        assert_eq!(
            definitions("| FONA | front-of-neck access |", "FONA"),
            ["front-of-neck access"]
        );
        assert_eq!(
            definitions("Ved rapid sequence induction (RSI) gives", "RSI"),
            ["rapid sequence induction"]
        );
    }

    #[test]
    fn letters_that_do_not_spell_the_short_form_are_no_definition() {
        // The words before the parenthesis carry P, T, A in order from a word start, but far
        // more words than letters.
        assert!(definitions("The patient was seen in clinic (PTA).", "PTA").is_empty());
        // They do not carry them.
        assert!(definitions("Seen in the clinic (PTA).", "PTA").is_empty());
        assert!(definitions("see the table (TCP)", "TCP").is_empty());
        // A use, not a definition.
        assert!(definitions("TCP was started at 70 mA.", "TCP").is_empty());
        assert!(definitions("TCP (70 mA) was started.", "TCP").is_empty());
        // Another abbreviation's definition.
        assert!(definitions("post-traumatic amnesia (PTA)", "TCP").is_empty());
        // An English abbreviation beside its Danish name is no definition by the letters
        // (a known limit: "transkutan" has no "c").
        assert!(definitions("hurtig sekvens-induktion (RSI)", "RSI").is_empty());
        assert!(definitions("- TCP – transkutan pacing", "TCP").is_empty());
        // Part of a longer word is not the short form.
        assert!(definitions("XTCP (transcutaneous pacing)", "TCP").is_empty());
    }

    #[test]
    fn the_long_form_starts_at_the_word_of_the_first_letter() {
        assert_eq!(
            long_form("PTA", "in adults with a peritonsillar abscess").as_deref(),
            Some("peritonsillar abscess")
        );
        assert_eq!(
            long_form("I&D", "incision and drainage").as_deref(),
            Some("incision and drainage")
        );
        assert_eq!(long_form("AB", "ab").as_deref(), None);
    }
}
