//! Evidence tiers and the rules that classify a source, from `etc/evidence_tiers.toml`.

use serde::Deserialize;

/// The shipped rules, embedded.
pub const DEFAULT_RULES: &str = include_str!("../../etc/evidence_tiers.toml");

/// A tier and the signals that recognise it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub id: String,
    pub priority: i32,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub publication_types: Vec<String>,
    #[serde(default)]
    pub title_words: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    tier: Vec<Tier>,
}

/// Why the rules could not be used.
#[derive(Debug, thiserror::Error)]
#[error("evidence tier rules: {0}")]
pub struct RulesError(pub String);

/// The tier table, strongest first.
#[derive(Debug, Clone)]
pub struct TierRules {
    tiers: Vec<Tier>,
}

/// The fallback for an uploaded document with no signal.
pub const LIBRARY_DOCUMENT: &str = "library_document";
/// The fallback for anything else.
pub const UNCLASSIFIED: &str = "unclassified";

impl TierRules {
    /// Parses rules; both fallback tiers must be present and ids unique.
    pub fn parse(text: &str) -> Result<TierRules, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| RulesError(e.to_string()))?;
        let mut tiers = file.tier;
        for fallback in [LIBRARY_DOCUMENT, UNCLASSIFIED] {
            if !tiers.iter().any(|t| t.id == fallback) {
                return Err(RulesError(format!("the tier `{fallback}` must be defined")));
            }
        }
        let mut ids: Vec<&str> = tiers.iter().map(|t| t.id.as_str()).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(RulesError(format!("the tier `{}` is defined twice", w[0])));
        }
        tiers.sort_by_key(|t| std::cmp::Reverse(t.priority));
        Ok(TierRules { tiers })
    }

    /// The embedded rules (tested to parse).
    pub fn embedded() -> TierRules {
        TierRules::parse(DEFAULT_RULES).expect("the embedded tier rules parse")
    }

    pub fn get(&self, id: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.id == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.tiers.iter().map(|t| t.id.as_str())
    }

    /// The tier of a source and the reason, from its URL, publication type and title.
    pub fn classify(
        &self,
        url: Option<&str>,
        publication_type: Option<&str>,
        title: &str,
    ) -> (String, String) {
        let host = url.and_then(host_of);
        let pub_type = publication_type.map(str::to_lowercase);
        let title_words: Vec<String> = title
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        for tier in &self.tiers {
            if let Some(h) = &host {
                if let Some(d) = tier.domains.iter().find(|d| domain_matches(h, d)) {
                    return (tier.id.clone(), format!("domain {d}"));
                }
            }
            if let Some(p) = &pub_type {
                if let Some(t) = tier
                    .publication_types
                    .iter()
                    .find(|t| p.contains(&t.to_lowercase()))
                {
                    return (tier.id.clone(), format!("publication type {t}"));
                }
            }
            if let Some(w) = tier
                .title_words
                .iter()
                .find(|w| title_words.contains(&w.to_lowercase()))
            {
                return (tier.id.clone(), format!("title word {w}"));
            }
        }
        if url.is_none() {
            (
                LIBRARY_DOCUMENT.into(),
                "uploaded document with no other signal".into(),
            )
        } else {
            (UNCLASSIFIED.into(), "no rule matched".into())
        }
    }
}

fn host_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.trim().parse().ok()?;
    uri.host().map(|h| h.trim_end_matches('.').to_lowercase())
}

fn domain_matches(host: &str, domain: &str) -> bool {
    let domain = domain.to_lowercase();
    host == domain || host.ends_with(&format!(".{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_rules_classify_by_domain_publication_type_and_title_word() {
        let rules = TierRules::embedded();
        let cases: &[(Option<&str>, Option<&str>, &str, &str)] = &[
            (
                Some("https://www.sst.dk/da/udgivelser/anafylaksi"),
                None,
                "Anafylaksi",
                "danish_guideline",
            ),
            (
                Some("https://sundhed.dk/x"),
                Some("randomized controlled trial"),
                "x",
                "danish_guideline",
            ),
            (
                Some("https://www.helsedirektoratet.no/retningslinjer"),
                None,
                "x",
                "nordic_guideline",
            ),
            (
                Some("https://www.ersnet.org/guidelines/pleural"),
                None,
                "x",
                "european_guideline",
            ),
            (
                Some("https://www.nice.org.uk/guidance/cg134"),
                None,
                "x",
                "international_guideline",
            ),
            (
                Some("https://www.who.int/publications"),
                None,
                "x",
                "international_guideline",
            ),
            (
                Some("https://www.cochranelibrary.com/cdsr/doi/1"),
                None,
                "x",
                "systematic_review",
            ),
            (
                None,
                Some("Systematic Review and Meta-Analysis"),
                "x",
                "systematic_review",
            ),
            (None, Some("Practice Guideline"), "x", "practice_guideline"),
            (None, Some("Randomized Controlled Trial"), "x", "rct"),
            (None, Some("prospective cohort"), "x", "observational"),
            (
                Some("https://pubmed.ncbi.nlm.nih.gov/123/"),
                None,
                "x",
                "peer_reviewed_journal",
            ),
            (
                Some("https://doi.org/10.1/x"),
                None,
                "x",
                "peer_reviewed_journal",
            ),
            (None, Some("Case Report"), "x", "case_report"),
            (None, None, "Lokal instruks: pleuradræn", "danish_guideline"),
            (None, None, "Afdelingens noter", "library_document"),
            (
                Some("https://example.com/blog"),
                None,
                "Afdelingens noter",
                "unclassified",
            ),
            // A look-alike domain is not the real one.
            (Some("https://notsst.dk/x"), None, "x", "unclassified"),
            (Some("not a url at all"), None, "x", "unclassified"),
        ];
        for (url, pt, title, want) in cases {
            let (got, why) = rules.classify(*url, *pt, title);
            assert_eq!(&got, want, "{url:?} {pt:?} {title:?} ({why})");
        }
    }

    #[test]
    fn rules_without_the_fallbacks_or_with_duplicates_are_refused() {
        assert!(TierRules::parse("[[tier]]\nid = \"x\"\npriority = 1\n").is_err());
        let dup = format!("{DEFAULT_RULES}\n[[tier]]\nid = \"rct\"\npriority = 1\n");
        assert!(TierRules::parse(&dup)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }
}
