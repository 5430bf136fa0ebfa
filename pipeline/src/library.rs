//! Ingesting sources into the evidence library: validation, normalisation, the content hash,
//! tier classification, documents with TOML front matter, and the bundled demo library.

use crate::tiers::TierRules;
use procedurewriter_actors::store::{NewSource, Source};
use procedurewriter_actors::Store;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Longest title accepted.
pub const MAX_TITLE_CHARS: usize = 500;
/// Largest source text accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 2 * 1024 * 1024;

/// A source as a client submits it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    pub title: String,
    pub text: String,
    #[serde(default)]
    pub url: Option<String>,
    /// An explicit tier id; classified from the other fields when absent.
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default)]
    pub year: Option<i32>,
    #[serde(default)]
    pub publication_type: Option<String>,
}

/// Why a source was not ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] procedurewriter_actors::Error),
}

/// The hex SHA-256 of a text.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .trim()
        .to_string()
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Validates and classifies `req`; the result is ready for the store.
pub fn prepare(
    rules: &TierRules,
    req: IngestRequest,
    demo: bool,
) -> Result<NewSource, IngestError> {
    let bad = |m: String| Err(IngestError::Invalid(m));
    let title = req.title.trim().to_string();
    if title.is_empty() {
        return bad("`title` must not be empty".into());
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return bad(format!(
            "`title` is longer than {MAX_TITLE_CHARS} characters"
        ));
    }
    let text = normalise(&req.text);
    if text.is_empty() {
        return bad("`text` must not be empty".into());
    }
    if text.len() > MAX_TEXT_BYTES {
        return bad(format!("`text` is larger than {MAX_TEXT_BYTES} bytes"));
    }
    if text.contains('\0') || title.contains('\0') {
        return bad("text fields must not contain NUL characters".into());
    }
    let url = non_empty(req.url);
    if url.as_ref().is_some_and(|u| u.len() > 2000) {
        return bad("`url` is longer than 2000 characters".into());
    }
    if let Some(y) = req.year {
        if !(1800..=2100).contains(&y) {
            return bad(format!("`year` {y} is not a publication year"));
        }
    }
    let publication_type = non_empty(req.publication_type);
    let (tier, tier_reason) = match non_empty(req.tier) {
        Some(t) => {
            if rules.get(&t).is_none() {
                let known: Vec<&str> = rules.ids().collect();
                return bad(format!("unknown tier {t:?}; one of {}", known.join(", ")));
            }
            (t, "explicit".to_string())
        }
        None => rules.classify(url.as_deref(), publication_type.as_deref(), &title),
    };
    Ok(NewSource {
        sha256: sha256_hex(text.as_bytes()),
        title,
        url,
        tier,
        tier_reason,
        year: req.year,
        publication_type,
        text,
        demo,
    })
}

/// Validates, classifies and stores a source; `false` when the same text was already stored.
pub async fn ingest(
    store: &Store,
    rules: &TierRules,
    req: IngestRequest,
    demo: bool,
) -> Result<(Source, bool), IngestError> {
    let new = prepare(rules, req, demo)?;
    Ok(store.add_source(new).await?)
}

/// Front matter of a document file (between `+++` lines, TOML).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: Option<String>,
    url: Option<String>,
    tier: Option<String>,
    year: Option<i32>,
    publication_type: Option<String>,
}

/// Reads a Markdown or plain-text document: optional TOML front matter between `+++` lines,
/// then the text. The title is the front matter's, else the first `# ` heading, else
/// `fallback_title` (the file name).
pub fn parse_document(content: &str, fallback_title: &str) -> Result<IngestRequest, IngestError> {
    let content = content.trim_start_matches('\u{feff}');
    let (front, body) = match content
        .strip_prefix("+++\n")
        .or_else(|| content.strip_prefix("+++\r\n"))
    {
        Some(rest) => match rest.find("\n+++") {
            Some(end) => {
                let fm: FrontMatter = toml::from_str(&rest[..end])
                    .map_err(|e| IngestError::Invalid(format!("front matter: {e}")))?;
                let body = rest[end + 4..].trim_start_matches(['\r', '\n']);
                (fm, body)
            }
            None => {
                return Err(IngestError::Invalid(
                    "front matter opened with +++ is never closed".into(),
                ))
            }
        },
        None => (FrontMatter::default(), content),
    };
    let heading = body
        .lines()
        .find_map(|l| l.strip_prefix("# ").map(|h| h.trim().to_string()));
    Ok(IngestRequest {
        title: front
            .title
            .or(heading)
            .unwrap_or_else(|| fallback_title.to_string()),
        text: body.to_string(),
        url: front.url,
        tier: front.tier,
        year: front.year,
        publication_type: front.publication_type,
    })
}

/// Reads an HTML document as text (html2text, without markup or link footnotes). The
/// title is `fallback_title` when given, else the document's first line of text (its first
/// heading, as a rule).
pub fn parse_html(content: &[u8], fallback_title: &str) -> Result<IngestRequest, IngestError> {
    // The trivial decorator adds no markup: no "# " headings, no "[link]" brackets.
    let text = html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .link_footnotes(false)
        .string_from_read(content, 100_000)
        .map_err(|e| IngestError::Invalid(format!("cannot read the HTML: {e}")))?;
    let first_line = text
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .chars()
        .take(MAX_TITLE_CHARS)
        .collect::<String>();
    let title = if fallback_title.trim().is_empty() {
        first_line
    } else {
        fallback_title.to_string()
    };
    Ok(IngestRequest {
        title,
        text,
        ..Default::default()
    })
}

/// The bundled demonstration library (`etc/demo_library/`): short texts written for this
/// project to show the pipeline working. Not clinical guidance.
pub const DEMO_LIBRARY: &[(&str, &str)] = &[
    (
        "anafylaksi-sst-vejledning.md",
        include_str!("../../etc/demo_library/anafylaksi-sst-vejledning.md"),
    ),
    (
        "anafylaksi-regionh-instruks.md",
        include_str!("../../etc/demo_library/anafylaksi-regionh-instruks.md"),
    ),
    (
        "anaphylaxis-nice-guideline.md",
        include_str!("../../etc/demo_library/anaphylaxis-nice-guideline.md"),
    ),
    (
        "anaphylaxis-who-emergency-care.md",
        include_str!("../../etc/demo_library/anaphylaxis-who-emergency-care.md"),
    ),
    (
        "anaphylaxis-cochrane-review.md",
        include_str!("../../etc/demo_library/anaphylaxis-cochrane-review.md"),
    ),
    (
        "anaphylaxis-observational-biphasic.md",
        include_str!("../../etc/demo_library/anaphylaxis-observational-biphasic.md"),
    ),
    (
        "pleuradraen-regionh-instruks.md",
        include_str!("../../etc/demo_library/pleuradraen-regionh-instruks.md"),
    ),
    (
        "pleural-drain-ers-statement.md",
        include_str!("../../etc/demo_library/pleural-drain-ers-statement.md"),
    ),
    (
        "pleural-drain-ultrasound-review.md",
        include_str!("../../etc/demo_library/pleural-drain-ultrasound-review.md"),
    ),
    (
        "pleural-drain-small-bore-rct.md",
        include_str!("../../etc/demo_library/pleural-drain-small-bore-rct.md"),
    ),
    (
        "pleural-drain-cohort-complications.md",
        include_str!("../../etc/demo_library/pleural-drain-cohort-complications.md"),
    ),
    (
        "pleural-drain-case-report.md",
        include_str!("../../etc/demo_library/pleural-drain-case-report.md"),
    ),
];

/// Loads the demo library into an empty library; does nothing if any source exists (so a
/// department's own library is never mixed with demo material after the first start).
/// Returns how many sources were added.
pub async fn load_demo_library(store: &Store, rules: &TierRules) -> Result<usize, IngestError> {
    if store.source_count().await? > 0 {
        return Ok(0);
    }
    let mut added = 0;
    for (file, content) in DEMO_LIBRARY {
        let req = parse_document(content, file)?;
        if ingest(store, rules, req, true).await?.1 {
            added += 1;
        }
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// An empty store in a temp dir, and the shipped tier rules.
    fn fresh() -> (tempfile::TempDir, Store, TierRules) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("t.db"),
            procedurewriter_actors::Synchronous::Normal,
        )
        .unwrap();
        (dir, store, TierRules::embedded())
    }

    #[test]
    fn the_demo_library_loads_once_classified_across_tiers_and_is_searchable() {
        let (_dir, store, rules) = fresh();
        block_on(async {
            assert_eq!(
                load_demo_library(&store, &rules).await.unwrap(),
                DEMO_LIBRARY.len()
            );
            assert_eq!(
                load_demo_library(&store, &rules).await.unwrap(),
                0,
                "only into an empty library"
            );
            let page = store.list_sources(None, 100).await.unwrap();
            let mut tiers: Vec<&str> = page.sources.iter().map(|s| s.tier.as_str()).collect();
            tiers.sort_unstable();
            tiers.dedup();
            assert!(tiers.len() >= 6, "several tiers: {tiers:?}");
            assert!(page.sources.iter().all(|s| s.demo));
            let hits = store
                .search_sources("anafylaksi adrenalin".into(), 5)
                .await
                .unwrap();
            assert!(!hits.is_empty());
            assert!(
                hits[0].source.title.to_lowercase().contains("anafylaksi"),
                "{:?}",
                hits[0].source.title
            );
            let hits = store
                .search_sources("pleural drain ultrasound".into(), 3)
                .await
                .unwrap();
            assert!(hits
                .iter()
                .any(|h| h.source.title.to_lowercase().contains("ultrasound")));
        });
    }

    #[test]
    fn the_same_text_is_stored_once_and_bad_input_is_refused() {
        let (_dir, store, rules) = fresh();
        block_on(async {
            let req = IngestRequest {
                title: "Note".into(),
                text: "Same text.\r\n".into(),
                ..Default::default()
            };
            let (a, created) = ingest(&store, &rules, req.clone(), false).await.unwrap();
            assert!(created);
            assert_eq!(a.id, "SRC0001");
            let again = IngestRequest {
                title: "Another title".into(),
                text: "Same text.".into(),
                ..Default::default()
            };
            let (b, created) = ingest(&store, &rules, again, false).await.unwrap();
            assert!(!created);
            assert_eq!(b.id, a.id);
            for bad in [
                IngestRequest {
                    title: " ".into(),
                    text: "x".into(),
                    ..Default::default()
                },
                IngestRequest {
                    title: "x".into(),
                    text: "  ".into(),
                    ..Default::default()
                },
                IngestRequest {
                    title: "x".into(),
                    text: "y".into(),
                    tier: Some("gold".into()),
                    ..Default::default()
                },
                IngestRequest {
                    title: "x".into(),
                    text: "y".into(),
                    year: Some(99),
                    ..Default::default()
                },
            ] {
                assert!(matches!(
                    ingest(&store, &rules, bad, false).await,
                    Err(IngestError::Invalid(_))
                ));
            }
            assert_eq!(store.source_count().await.unwrap(), 1);
        });
    }

    #[test]
    fn html_is_read_as_text_with_its_first_heading_as_the_title() {
        let html = b"<html><head><title>t</title><style>p{}</style></head><body><h1>Pleural drains</h1><p>Use <a href='https://x'>ultrasound</a> guidance.</p><script>x()</script></body></html>";
        let d = parse_html(html, "").unwrap();
        assert_eq!(d.title, "Pleural drains");
        assert!(d.text.contains("Use ultrasound guidance."), "{:?}", d.text);
        assert!(
            !d.text.contains("x()") && !d.text.contains("https://x"),
            "{:?}",
            d.text
        );
        assert_eq!(parse_html(html, "Given").unwrap().title, "Given");
    }

    #[test]
    fn documents_take_their_metadata_from_front_matter_or_their_heading() {
        let d = parse_document(
            "+++\ntitle = \"T\"\nurl = \"https://nice.org.uk/x\"\nyear = 2021\n+++\nBody.\n",
            "f.md",
        )
        .unwrap();
        assert_eq!(
            (d.title.as_str(), d.url.as_deref(), d.year, d.text.as_str()),
            ("T", Some("https://nice.org.uk/x"), Some(2021), "Body.\n")
        );
        let d = parse_document("# Heading here\n\nText", "f.md").unwrap();
        assert_eq!(d.title, "Heading here");
        let d = parse_document("plain", "notes.txt").unwrap();
        assert_eq!(d.title, "notes.txt");
        assert!(parse_document("+++\ntitle = \"T\"\nBody", "f").is_err());
        assert!(parse_document("+++\ncolour = 1\n+++\nBody", "f").is_err());
    }
}
