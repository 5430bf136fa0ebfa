//! The evidence library's adapter: the pipeline's [`Library`] port over the store, and
//! ingest (the pipeline prepares a document; this stores it). Parsing an upload is the
//! pipeline's and runs on its blocking pool; only storing happens here.

use futures_util::future::BoxFuture;
use procedurewriter_actors::store::{NewPassage, NewSource, Source};
use procedurewriter_actors::Store;
use procedurewriter_pipeline::document::Passage;
use procedurewriter_pipeline::library::{self, IngestError, IngestRequest};
use procedurewriter_pipeline::ports::{
    IndexTerms, Library, LibraryDocument, LibraryMatches, LibraryOutlines, LibraryPassage, Match,
    MatchQuery, MatchedPassage, NewDocument, PassageOutline, PortResult, Term,
};
use procedurewriter_pipeline::tiers::TierRules;

/// Why a source was not stored: the document (the sender's to fix) or the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreIngestError {
    #[error(transparent)]
    Invalid(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] procedurewriter_actors::Error),
    /// The same document is stored with another tier than the one asked for explicitly: a
    /// re-ingest never changes a tier silently (re-tiering is its own, audited, change).
    #[error("the document is stored as {id} with tier {stored}, not {asked}; re-tier it")]
    TierConflict {
        id: String,
        stored: String,
        asked: String,
    },
    /// The same document was retired.
    #[error("the document was stored as {id} and retired ({reason})")]
    Retired { id: String, reason: String },
}

/// Adds a prepared source; a document already stored is returned as it is, unless it was
/// retired or a tier was asked for explicitly that is not its tier.
async fn add(store: &Store, doc: NewDocument) -> Result<(Source, bool), StoreIngestError> {
    let asked = (doc.tier_reason == "explicit").then(|| doc.tier.clone());
    let (source, created) = store.add_source(to_new_source(doc)).await?;
    if created {
        return Ok((source, true));
    }
    if let Some(reason) = source.retired_reason {
        return Err(StoreIngestError::Retired {
            id: source.id,
            reason,
        });
    }
    match asked {
        Some(asked) if asked != source.tier => Err(StoreIngestError::TierConflict {
            id: source.id,
            stored: source.tier,
            asked,
        }),
        _ => Ok((source, false)),
    }
}

fn to_new_passage(p: Passage, terms: IndexTerms) -> NewPassage {
    NewPassage {
        heading_terms: terms.heading,
        text_terms: terms.text,
        features: Some(terms.features),
        ord: p.ord,
        heading: p.heading,
        page_start: p.page_start,
        page_end: p.page_end,
        char_start: p.char_start,
        char_end: p.char_end,
        text: p.text,
    }
}

fn to_new_source(d: NewDocument) -> NewSource {
    NewSource {
        media_type: d.media_type,
        original_sha256: d.original_sha256,
        pages: d.pages,
        passages: d
            .passages
            .into_iter()
            .zip(
                d.passage_terms
                    .into_iter()
                    .chain(std::iter::repeat_with(IndexTerms::default)),
            )
            .map(|(p, t)| to_new_passage(p, t))
            .collect(),
        title_terms: d.title_terms,
        title: d.title,
        url: d.url,
        tier: d.tier,
        tier_reason: d.tier_reason,
        year: d.year,
        publication_type: d.publication_type,
        text: d.text,
        sha256: d.sha256,
        demo: d.demo,
    }
}

/// Validates, classifies and stores a source given as JSON or text; `false` when the same
/// text was already stored.
pub async fn ingest(
    store: &Store,
    rules: &TierRules,
    req: IngestRequest,
    demo: bool,
) -> Result<(Source, bool), StoreIngestError> {
    let new = library::prepare(rules, req, demo)?;
    add(store, new).await
}

/// Stores a prepared document (split on the blocking pool by the caller).
pub async fn store_document(
    store: &Store,
    doc: NewDocument,
) -> Result<(Source, bool), StoreIngestError> {
    add(store, doc).await
}

/// Splits into passages the sources stored before passages existed (the library as an older
/// version left it), a batch at a time, splitting on the blocking pool. Returns how many.
pub async fn backfill_passages(store: &Store) -> Result<usize, StoreIngestError> {
    let mut done = 0;
    loop {
        let batch = store.sources_without_passages(64).await?;
        if batch.is_empty() {
            return Ok(done);
        }
        for (id, _title, text) in batch {
            let passages = procedurewriter_pipeline::blocking::run(move || {
                let blocks = procedurewriter_pipeline::document::from_markdown(&text);
                let mut split = procedurewriter_pipeline::document::split(&blocks);
                if split.passages.is_empty() {
                    // A text with no blocks still gets one passage, so it is searchable.
                    split.passages.push(Passage {
                        ord: 0,
                        heading: String::new(),
                        page_start: None,
                        page_end: None,
                        char_start: 0,
                        char_end: text.chars().count(),
                        text: text.clone(),
                    });
                }
                split
                    .passages
                    .into_iter()
                    .map(|p| {
                        let terms =
                            procedurewriter_pipeline::features::index_terms(&p.heading, &p.text);
                        to_new_passage(p, terms)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            store.add_passages(id, passages).await?;
            done += 1;
        }
    }
}

/// Loads the demo library into an empty library; does nothing if any source exists (so a
/// department's own library is never mixed with demo material after the first start).
/// Returns how many sources were added.
pub async fn load_demo_library(
    store: &Store,
    rules: &TierRules,
) -> Result<usize, StoreIngestError> {
    if store.source_count().await? > 0 {
        return Ok(0);
    }
    let mut added = 0;
    for doc in library::demo_documents(rules)? {
        if store.add_source(to_new_source(doc)).await?.1 {
            added += 1;
        }
    }
    Ok(added)
}

/// Re-indexes the library when it was indexed with another analysis than this build's (or
/// not at all: a library from before analysed terms existed), a batch at a time, analysing on
/// the blocking pool. Returns how many passages were re-indexed.
pub async fn reindex(store: &Store) -> Result<usize, StoreIngestError> {
    let fingerprint = procedurewriter_pipeline::analyze::analyzer()
        .fingerprint()
        .to_string();
    if store.index_analyzer().await? == fingerprint {
        return Ok(0);
    }
    let titles = store.titles_to_index().await?;
    let titles = procedurewriter_pipeline::blocking::run(move || {
        let a = procedurewriter_pipeline::analyze::analyzer();
        titles
            .into_iter()
            .map(|(seq, t)| (seq, a.index_text(&t)))
            .collect::<Vec<_>>()
    })
    .await;
    store.set_index_terms(Vec::new(), titles, None).await?;
    let mut after = 0;
    let mut done = 0;
    loop {
        let batch = store.passages_to_index(after, 512).await?;
        let Some(last) = batch.last().map(|b| b.0) else {
            break;
        };
        after = last;
        done += batch.len();
        let terms = procedurewriter_pipeline::blocking::run(move || {
            batch
                .into_iter()
                .map(|(seq, h, t)| {
                    let terms = procedurewriter_pipeline::features::index_terms(&h, &t);
                    (seq, terms.heading, terms.text, Some(terms.features))
                })
                .collect::<Vec<_>>()
        })
        .await;
        store.set_index_terms(terms, Vec::new(), None).await?;
    }
    store
        .set_index_terms(Vec::new(), Vec::new(), Some(fingerprint))
        .await?;
    // A re-index computed every passage's features too.
    store
        .set_features(
            Vec::new(),
            Some(procedurewriter_pipeline::features::current_fingerprint()),
        )
        .await?;
    Ok(done)
}

/// Computes the stored passages' features again when they were computed by another analysis
/// or other population words than those in force (or not at all: a library from before
/// features existed), a batch at a time on the blocking pool. Until it is done, retrieval
/// analyses the passages it reads itself (see [`procedurewriter_pipeline::features`]).
/// Returns how many passages it computed.
pub async fn refeature(store: &Store) -> Result<usize, StoreIngestError> {
    let fingerprint = procedurewriter_pipeline::features::current_fingerprint();
    if store.features_fingerprint().await? == fingerprint {
        return Ok(0);
    }
    let mut after = 0;
    let mut done = 0;
    loop {
        let batch = store.passages_to_feature(after, 512).await?;
        let Some(last) = batch.last().map(|b| b.0) else {
            break;
        };
        after = last;
        done += batch.len();
        let features = procedurewriter_pipeline::blocking::run(move || {
            batch
                .into_iter()
                .map(|(seq, h, t)| {
                    (
                        seq,
                        procedurewriter_pipeline::features::Features::of(&h, &t).0,
                    )
                })
                .collect::<Vec<_>>()
        })
        .await;
        store.set_features(features, None).await?;
    }
    // The lexicon may have changed again meanwhile: record only the fingerprint the features
    // were computed by, so the next check recomputes.
    if procedurewriter_pipeline::features::current_fingerprint() == fingerprint {
        store.set_features(Vec::new(), Some(fingerprint)).await?;
    }
    Ok(done)
}

/// An FTS5 query for `m`: every term quoted (so nothing in it is FTS syntax), `Near` as
/// `NEAR(…)`. Terms are analysed words (letters and digits only), so quoting is all it takes;
/// a quote is doubled anyway.
pub fn fts(m: &Match) -> Option<String> {
    fn term(t: &Term) -> Option<String> {
        let text: String = t.text.chars().filter(|c| c.is_alphanumeric()).collect();
        if text.is_empty() {
            return None;
        }
        Some(format!(
            "\"{}\"{}",
            text.replace('"', "\"\""),
            if t.prefix { "*" } else { "" }
        ))
    }
    match m {
        Match::Term(t) => term(t),
        Match::Near(ts) => {
            let parts: Vec<String> = ts.iter().filter_map(term).collect();
            match parts.len() {
                0 => None,
                1 => parts.into_iter().next(),
                _ => Some(format!(
                    "NEAR({}, {})",
                    parts.join(" "),
                    procedurewriter_pipeline::concept::NEAR_SLACK * (parts.len() - 1)
                )),
            }
        }
        Match::Any(ms) | Match::All(ms) => {
            let parts: Vec<String> = ms.iter().filter_map(fts).collect();
            let all = matches!(m, Match::All(_));
            if parts.is_empty() || (all && parts.len() < ms.len()) {
                return None;
            }
            Some(format!(
                "({})",
                parts.join(if all { " AND " } else { " OR " })
            ))
        }
    }
}

fn document(s: procedurewriter_actors::store::Source) -> LibraryDocument {
    LibraryDocument {
        id: s.id,
        title: s.title,
        url: s.url,
        tier: s.tier,
        year: s.year,
        demo: s.demo,
        sha256: s.sha256,
        original_sha256: s.original_sha256,
        title_terms: s.title_terms,
        passages: s.passages.max(0) as u32,
    }
}

fn passage(p: procedurewriter_actors::store::StoredPassage) -> LibraryPassage {
    LibraryPassage {
        id: p.id,
        ord: p.ord,
        heading: p.heading,
        page_start: p.page_start,
        page_end: p.page_end,
        text: p.text,
        heading_terms: p.heading_terms,
        text_terms: p.text_terms,
    }
}

fn outline(p: procedurewriter_actors::store::PassageLight) -> PassageOutline {
    PassageOutline {
        ord: p.ord,
        page_start: p.page_start,
        page_end: p.page_end,
        features: p.features,
    }
}

/// The pipeline's view of the library: the store's FTS5 indexes over analysed terms.
#[derive(Clone)]
pub struct StoreLibrary(pub Store);

impl Library for StoreLibrary {
    fn matches(&self, q: MatchQuery) -> BoxFuture<'_, PortResult<LibraryMatches>> {
        Box::pin(async move {
            // Each group in the text (bit i) and in the heading (bit 16 + i); a group with no
            // searchable term matches nothing but keeps its bits.
            let groups = &q.groups[..q.groups.len().min(16)];
            let mut queries: Vec<Option<String>> = vec![None; 16 + groups.len()];
            for (i, g) in groups.iter().enumerate() {
                if let Some(f) = fts(g) {
                    queries[i] = Some(format!("text_terms : ({f})"));
                    queries[16 + i] = Some(format!("heading_terms : ({f})"));
                }
            }
            let rank = q.rank.as_ref().and_then(fts);
            let titles = q
                .titles
                .as_ref()
                .and_then(|(m, limit)| fts(m).map(|f| (f, *limit)));
            let found = self
                .0
                .match_passages(queries, rank, titles, q.limit)
                .await
                .map_err(crate::job::port_error)?;
            Ok(LibraryMatches {
                documents: found.sources.into_iter().map(document).collect(),
                titled: found.titled.into_iter().map(document).collect(),
                passages: found
                    .passages
                    .into_iter()
                    .map(|m| MatchedPassage {
                        document: m.source,
                        ord: m.ord,
                        features: m.features,
                        in_text: m.groups & 0xffff,
                        in_heading: m.groups >> 16,
                        ranked: m.ranked,
                    })
                    .collect(),
                truncated: found.truncated,
                features: found.features,
            })
        })
    }

    fn outlines(&self, documents: Vec<String>) -> BoxFuture<'_, PortResult<LibraryOutlines>> {
        Box::pin(async move {
            let (found, features) = self
                .0
                .passage_outlines(documents)
                .await
                .map_err(crate::job::port_error)?;
            Ok(LibraryOutlines {
                documents: found
                    .into_iter()
                    .map(|(id, ps)| (id, ps.into_iter().map(outline).collect()))
                    .collect(),
                features,
            })
        })
    }

    fn passages_at(
        &self,
        wanted: Vec<(String, Vec<u32>)>,
        terms: bool,
    ) -> BoxFuture<'_, PortResult<Vec<(String, LibraryPassage)>>> {
        Box::pin(async move {
            let found = self
                .0
                .passages_at(wanted, terms)
                .await
                .map_err(crate::job::port_error)?;
            Ok(found.into_iter().map(|(d, p)| (d, passage(p))).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_on;
    use procedurewriter_pipeline::library::DEMO_LIBRARY;

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

    /// A Danish guideline to ingest.
    fn guideline(title: &str, text: &str) -> IngestRequest {
        IngestRequest {
            title: title.into(),
            text: text.into(),
            tier: Some("danish_guideline".into()),
            year: Some(2022),
            ..Default::default()
        }
    }

    /// Retrieval as the daemon configures it by default, with these generic words.
    /// A library of these guidelines (title, text), and the retrieval of `title` from it.
    async fn library_of(store: &Store, rules: &TierRules, docs: &[(&str, &str)]) {
        for (title, text) in docs {
            ingest(store, rules, guideline(title, text), false)
                .await
                .unwrap();
        }
    }

    async fn ask(
        store: &Store,
        rules: &TierRules,
        title: &str,
    ) -> procedurewriter_pipeline::retrieve::Retrieved {
        let library = StoreLibrary(store.clone());
        procedurewriter_pipeline::retrieve::retrieve(
            &library,
            rules,
            &retrieval_config(&[]),
            title,
            "",
        )
        .await
        .unwrap()
    }

    /// The titles of the sources retrieved for `title` (sorted), and what was left out.
    async fn kept(
        store: &Store,
        rules: &TierRules,
        title: &str,
    ) -> (
        Vec<String>,
        Vec<procedurewriter_pipeline::retrieve::Dropped>,
    ) {
        let r = ask(store, rules, title).await;
        let mut titles: Vec<String> = r.sources.iter().map(|s| s.title.clone()).collect();
        titles.sort();
        (titles, r.dropped)
    }

    fn retrieval_config(generic: &[&str]) -> procedurewriter_pipeline::retrieve::RetrievalConfig {
        procedurewriter_pipeline::retrieve::RetrievalConfig {
            synonyms: Default::default(),
            limit: 12,
            min_relative_score: 0.1,
            generic_words: generic.iter().map(|w| w.to_string()).collect(),
        }
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
                    Err(StoreIngestError::Invalid(IngestError::Invalid(_)))
                ));
            }
            assert_eq!(store.source_count().await.unwrap(), 1);
        });
    }

    /// Stored passage features are an optimisation, never a source of truth: with features
    /// computed by another lexicon (or none), retrieval analyses what it reads itself and
    /// chooses the same sources and passages; `refeature` then recomputes every passage's.
    #[test]
    fn retrieval_does_not_depend_on_stored_features_being_current() {
        use procedurewriter_pipeline::retrieve::retrieve;
        let (_dir, store, rules) = fresh();
        block_on(async {
            load_demo_library(&store, &rules).await.unwrap();
            let passages = store.passages_to_feature(0, 100_000).await.unwrap().len();
            assert!(passages > 0);
            // A new library: features were computed at insert; only the fingerprint is new.
            assert_eq!(refeature(&store).await.unwrap(), passages);
            assert_eq!(refeature(&store).await.unwrap(), 0, "current now");
            let library = StoreLibrary(store.clone());
            let config = retrieval_config(&["behandling"]);
            let chosen = |r: &procedurewriter_pipeline::retrieve::Retrieved| {
                r.sources
                    .iter()
                    .map(|s| {
                        let ps: Vec<String> = s.passages.iter().map(|p| p.id.clone()).collect();
                        (s.id.clone(), ps)
                    })
                    .collect::<Vec<_>>()
            };
            for (title, context) in [
                ("Anafylaksi hos voksne", "akutmodtagelse"),
                ("Anafylaksi hos børn", ""),
                ("Pleuradræn anlæggelse", "ultralyd"),
            ] {
                let fresh = retrieve(&library, &rules, &config, title, context)
                    .await
                    .unwrap();
                assert!(!fresh.sources.is_empty(), "{title}");
                // Features computed by another lexicon, and one passage never computed.
                store
                    .set_features(vec![(1, u32::MAX)], Some("another lexicon".into()))
                    .await
                    .unwrap();
                let stale = retrieve(&library, &rules, &config, title, context)
                    .await
                    .unwrap();
                assert_eq!(chosen(&stale), chosen(&fresh), "{title}");
                assert_eq!(refeature(&store).await.unwrap(), passages);
            }
            // Current features are used as stored (so the check above could fail): every
            // passage marked as about children leaves an adult request with none of them.
            let all: Vec<(i64, u32)> = store
                .passages_to_feature(0, 100_000)
                .await
                .unwrap()
                .into_iter()
                .map(|(seq, _, _)| (seq, 1 << 17))
                .collect();
            store
                .set_features(
                    all,
                    Some(procedurewriter_pipeline::features::current_fingerprint()),
                )
                .await
                .unwrap();
            let marked = retrieve(&library, &rules, &config, "Anafylaksi hos voksne", "")
                .await
                .unwrap();
            // ...so none is used (the gate must not count a tier whose text the writer never
            // sees), and each says why.
            assert!(marked.sources.is_empty(), "{:?}", chosen(&marked));
            assert!(
                marked
                    .dropped
                    .iter()
                    .any(|d| d.reason.contains("none of its passages may be used")),
                "{:?}",
                marked.dropped
            );
        });
    }

    /// A case report about an adult is not evidence for a children's procedure when a
    /// children's source exists, even when it also says how long the patient was followed
    /// ("4 år" is a duration, not a child's age); nor is a cohort that names its adults once,
    /// away from the procedure. A general text naming young and old alike, or a title naming
    /// both, is about no one family and is kept.
    #[test]
    fn a_case_reports_patient_decides_its_population_and_durations_are_not_ages() {
        use procedurewriter_pipeline::retrieve::retrieve;
        let (_dir, store, rules) = fresh();
        block_on(async {
            for req in [
                guideline(
                    "Lumbalpunktur hos børn: instruks",
                    "# Udførelse\n\nBarnet lejres i sideleje, og lumbalpunktur udføres i L4-L5 med en atraumatisk kanyle.",
                ),
                guideline(
                    "Epiduralt hæmatom efter lumbalpunktur: en kasuistik",
                    "# Forløb\n\nEn 69-årig mand i antikoagulationsbehandling fik foretaget lumbalpunktur og udviklede et epiduralt hæmatom.\n\n# Opfølgning\n\nEfter lumbalpunkturen blev han fulgt i 4 år og var symptomfri efter 3 måneder.",
                ),
                guideline(
                    "Lumbalpunktur: oversigt",
                    "# Forekomst\n\nLumbalpunktur udføres hos unge og ældre; postpunktur hovedpine er hyppigst hos unge kvinder.",
                ),
                // Whom it is about is said once, where the procedure is not named.
                guideline(
                    "Blødning efter lumbalpunktur: en kohorte",
                    "# Metode\n\nAlle voksne patienter i seks afdelinger blev inkluderet over 4 år.\n\n# Resultater\n\nLumbalpunktur gav blødning hos 0,2 %.",
                ),
                // Its title names both families; only its section for children names one.
                guideline(
                    "Lumbalpunktur hos voksne og børn: sikkerhed",
                    "# Udførelse\n\nLumbalpunktur udføres under aseptiske forhold.\n\n# Børn\n\nHos børn bruges en kortere kanyle.",
                ),
            ] {
                ingest(&store, &rules, req, false).await.unwrap();
            }
            let library = StoreLibrary(store.clone());
            let config = retrieval_config(&[]);
            let r = retrieve(&library, &rules, &config, "Lumbalpunktur hos børn", "")
                .await
                .unwrap();
            let titles: Vec<&str> = r.sources.iter().map(|s| s.title.as_str()).collect();
            assert!(
                titles.contains(&"Lumbalpunktur hos børn: instruks"),
                "{titles:?}"
            );
            assert!(titles.contains(&"Lumbalpunktur: oversigt"), "{titles:?}");
            assert!(
                titles.contains(&"Lumbalpunktur hos voksne og børn: sikkerhed"),
                "{titles:?}"
            );
            for left_out in ["Epiduralt", "Blødning"] {
                let d = r
                    .dropped
                    .iter()
                    .find(|d| d.title.starts_with(left_out))
                    .unwrap_or_else(|| panic!("{left_out}… is left out: {titles:?}"));
                assert!(d.reason.contains("about voksne"), "{}", d.reason);
            }
            // For adults, the cohort is kept and says why it counts as about them.
            let r = retrieve(&library, &rules, &config, "Lumbalpunktur hos voksne", "")
                .await
                .unwrap();
            let cohort = r
                .why
                .iter()
                .find(|s| s.title.starts_with("Blødning"))
                .unwrap_or_else(|| panic!("the cohort is used for adults: {:?}", r.dropped));
            assert_eq!(cohort.population.as_deref(), Some("voksne"));
            assert!(
                cohort.reason.contains("the whole document is about voksne"),
                "{}",
                cohort.reason
            );
        });
    }

    /// A title that names what the procedure is done for is a qualifier: a source titled for
    /// the procedure for another condition is left out while sources titled for the named one
    /// exist, and says so; a source titled for no condition stays; without a condition in the
    /// request, all of them are used. So is how it is done: a title asking for electrical
    /// cardioversion leaves out one titled for the pharmacological.
    #[test]
    fn a_condition_in_the_title_leaves_out_sources_titled_for_another() {
        use procedurewriter_pipeline::retrieve::retrieve;
        let (_dir, store, rules) = fresh();
        block_on(async {
            for req in [
                guideline(
                    "Elektrisk kardiovertering af atrieflimren: instruks",
                    "# Udførelse\n\nElektrisk kardiovertering udføres synkroniseret med 200 J bifasisk efter mindst 3 ugers antikoagulation.",
                ),
                guideline(
                    "Synchronised cardioversion for ventricular tachycardia with adverse features",
                    "# Shock\n\nSynchronised cardioversion, up to three attempts, starting at 120 J biphasic.",
                ),
                guideline(
                    "Sedation for elective cardioversion: a review",
                    "# Results\n\nPropofol gave the shortest recovery after cardioversion.",
                ),
                // The same condition, the procedure done another way.
                guideline(
                    "Farmakologisk konvertering af atrieflimren: instruks",
                    "# Formål\n\nFarmakologisk kardiovertering med flecainid 2 mg/kg iv. Elektrisk kardiovertering er beskrevet i en anden instruks.",
                ),
            ] {
                ingest(&store, &rules, req, false).await.unwrap();
            }
            let library = StoreLibrary(store.clone());
            let config = retrieval_config(&[]);
            let titles = |r: &procedurewriter_pipeline::retrieve::Retrieved| {
                let mut t: Vec<String> = r.sources.iter().map(|s| s.title.clone()).collect();
                t.sort();
                t
            };
            let r = retrieve(
                &library,
                &rules,
                &config,
                "Elektrisk kardiovertering ved atrieflimren",
                "",
            )
            .await
            .unwrap();
            assert_eq!(
                titles(&r),
                [
                    "Elektrisk kardiovertering af atrieflimren: instruks",
                    "Sedation for elective cardioversion: a review"
                ]
            );
            let vt = r
                .dropped
                .iter()
                .find(|d| d.title.contains("ventricular tachycardia"))
                .unwrap_or_else(|| panic!("the VT source is explained: {:?}", r.dropped));
            assert!(
                vt.reason
                    .contains("titled for another condition (takykardi"),
                "{}",
                vt.reason
            );
            assert!(r.query.contains("for: atrieflimren"), "{}", r.query);
            let drug = r
                .dropped
                .iter()
                .find(|d| d.title.starts_with("Farmakologisk"))
                .unwrap_or_else(|| panic!("the drug conversion is explained: {:?}", r.dropped));
            assert!(drug.reason.contains("not elektrisk"), "{}", drug.reason);
            // "Cardioversion" names no condition and no way of doing it: every source on it
            // is used.
            let r = retrieve(&library, &rules, &config, "Kardiovertering", "")
                .await
                .unwrap();
            assert_eq!(titles(&r).len(), 4, "{:?}", r.dropped);
            // For ventricular tachycardia, the AF instruction is the other indication.
            let r = retrieve(
                &library,
                &rules,
                &config,
                "Synchronised cardioversion of ventricular tachycardia",
                "",
            )
            .await
            .unwrap();
            assert!(
                !titles(&r).iter().any(|t| t.contains("atrieflimren")),
                "{:?}",
                titles(&r)
            );
        });
    }

    /// A source that never names the condition the request is for where it discusses the
    /// procedure is about something else (nasal packing after septoplasty, for a title about
    /// epistaxis): left out, with the reason, when two sources that name it exist.
    #[test]
    fn a_passage_is_on_what_its_documents_title_names_without_saying_it_again() {
        let (_dir, store, rules) = fresh();
        block_on(async {
            library_of(
                &store,
                &rules,
                &[
                    (
                        "Reponering af pronatio dolorosa i skadestuen",
                        "# Reponering\n\nPronatio dolorosa reponeres ved hyperpronation af underarmen.",
                    ),
                    // Titled for the condition; its treatment passages speak of the reduction
                    // without naming the condition again.
                    (
                        "Pronatio dolorosa hos småbørn",
                        "# Behandling\n\nReponering ved hyperpronation lykkes oftest i første forsøg.\n\n# Efter reponering\n\nBarnet bruger armen igen inden for 15 minutter efter reponering.",
                    ),
                    // Titled for the reduction of another joint: a passage naming the pulled
                    // elbow as a differential diagnosis does not make it about reducing one.
                    (
                        "Reponering af skulderluksation",
                        "# Indikation\n\nForreste skulderluksation bekræftet ved røntgen.\n\n# Teknik\n\nSkulderen reponeres med Kocher-teknik eller FARES.\n\n# Efter reponering\n\nRøntgen efter reponering og slynge i tre uger.\n\n# Differentialdiagnoser\n\nHos småbørn med smertefuld arm: pronatio dolorosa.",
                    ),
                ],
            )
            .await;
            let r = kept(&store, &rules, "Reponering af pronatio dolorosa").await;
            assert_eq!(
                r.0,
                [
                    "Pronatio dolorosa hos småbørn",
                    "Reponering af pronatio dolorosa i skadestuen"
                ],
                "{:?}",
                r.1
            );
        });
    }

    #[test]
    fn a_chapter_of_a_guideline_titled_for_another_procedure_is_on_this_one() {
        let (_dir, store, rules) = fresh();
        block_on(async {
            library_of(
                &store,
                &rules,
                &[
                    (
                        "Navlevenekateter: anlæggelse på neonatalafsnit",
                        "# Anlæggelse\n\nNavlevenekateteret anlægges sterilt og føres 4-5 cm ind.",
                    ),
                    // A long guideline: three of its seven passages, under headings of their own,
                    // are on the umbilical venous catheter.
                    (
                        "Genoplivning af nyfødte",
                        "# Ventilation\n\nMaskeventilation med luft i 30 sekunder.\n\n# Hjertekompression\n\nTo tommelfingre, tre kompressioner til hver ventilation.\n\n# Navlevenekateter\n\nNavlevenekateteret anlægges, når hjertefrekvensen forbliver under 60.\n\n# Navlevenekateter: teknik\n\nNavlevenekateteret føres 4-5 cm ind, til blod kan aspireres.\n\n# Navlevenekateter: fiksering\n\nNavlevenekateteret fikseres med en tape-bro.\n\n# Temperatur\n\nBarnet tørres og lægges under varmelampe.\n\n# Forældre\n\nForældrene informeres løbende.",
                    ),
                    // A short instruction with one line on it among five passages.
                    (
                        "Genoplivning af nyfødte på fødegangen – kort instruks",
                        "# Ventilation\n\nMaskeventilation med luft.\n\n# Hjertekompression\n\nTre kompressioner til hver ventilation.\n\n# Navlevenekateter\n\nOvervej navlevenekateter.\n\n# Temperatur\n\nBarnet holdes varmt.\n\n# Dokumentation\n\nForløbet journalføres.",
                    ),
                ],
            )
            .await;
            let r = kept(&store, &rules, "Anlæggelse af navlevenekateter").await;
            assert_eq!(
                r.0,
                [
                    "Genoplivning af nyfødte",
                    "Navlevenekateter: anlæggelse på neonatalafsnit"
                ],
                "{:?}",
                r.1
            );
        });
    }

    #[test]
    fn a_source_that_never_names_the_requested_condition_is_left_out_when_others_do() {
        use procedurewriter_pipeline::retrieve::retrieve;
        let (_dir, store, rules) = fresh();
        block_on(async {
            for req in [
                guideline(
                    "Anterior nasal packing: emergency department guideline",
                    "# Technique\n\nAnterior nasal packing is inserted when epistaxis continues after 10 minutes of compression.",
                ),
                guideline(
                    "Næsetamponade: instruks",
                    "# Indikation\n\nNæsetamponade anlægges ved næseblødning, der ikke standser ved kompression.",
                ),
                guideline(
                    "Nasal packing versus transseptal suturing after septoplasty: a randomised trial",
                    "# Methods\n\nNasal packing was removed on day two after septoplasty; pain and crusting were recorded.",
                ),
            ] {
                ingest(&store, &rules, req, false).await.unwrap();
            }
            let library = StoreLibrary(store.clone());
            let config = retrieval_config(&[]);
            let r = retrieve(&library, &rules, &config, "Nasal packing for epistaxis", "")
                .await
                .unwrap();
            let mut titles: Vec<&str> = r.sources.iter().map(|s| s.title.as_str()).collect();
            titles.sort();
            assert_eq!(
                titles,
                [
                    "Anterior nasal packing: emergency department guideline",
                    "Næsetamponade: instruks"
                ]
            );
            let septo = r
                .dropped
                .iter()
                .find(|d| d.title.contains("septoplasty"))
                .unwrap_or_else(|| panic!("the septoplasty trial is explained: {:?}", r.dropped));
            assert!(septo.reason.contains("never names"), "{}", septo.reason);
            // Without the condition in the request, the trial is about the procedure.
            let r = retrieve(&library, &rules, &config, "Nasal packing", "")
                .await
                .unwrap();
            assert_eq!(r.sources.len(), 3, "{:?}", r.dropped);
        });
    }

    #[test]
    fn a_source_that_never_names_children_is_left_out_of_a_childrens_procedure_when_others_do() {
        let (_dir, store, rules) = fresh();
        block_on(async {
            library_of(
                &store,
                &rules,
                &[
                    (
                        "Reponering af distal radiusfraktur hos børn",
                        "# Teknik\n\nHos børn reponeres den distale radiusfraktur i lattergas og hæmatomblokade.",
                    ),
                    (
                        "Closed reduction of distal forearm fractures in children: a cohort",
                        "# Methods\n\nChildren aged 4-15 years had closed reduction of a distal radius fracture under intranasal analgesia.",
                    ),
                    (
                        "Reponering af distal radiusfraktur: lokal instruks",
                        "# Teknik\n\nDen distale radiusfraktur reponeres med længdetræk efter hæmatomblokade; gips i 5 uger.",
                    ),
                ],
            )
            .await;
            let r = ask(&store, &rules, "Reponering af håndledsfraktur hos børn").await;
            let mut titles: Vec<&str> = r.sources.iter().map(|s| s.title.as_str()).collect();
            titles.sort();
            assert_eq!(
                titles,
                [
                    "Closed reduction of distal forearm fractures in children: a cohort",
                    "Reponering af distal radiusfraktur hos børn",
                ]
            );
            let general = r
                .dropped
                .iter()
                .find(|d| d.title.contains("lokal instruks"))
                .unwrap_or_else(|| panic!("the general instruction is explained: {:?}", r.dropped));
            assert!(
                general.reason.contains("never names children"),
                "{}",
                general.reason
            );
            // For adults, the same instruction is used: adults are seldom named.
            let r = ask(
                &store,
                &rules,
                "Reponering af distal radiusfraktur hos voksne",
            )
            .await;
            assert!(
                r.sources.iter().any(|s| s.title.contains("lokal instruks")),
                "{:?}",
                r.dropped
            );
        });
    }

    #[test]
    fn a_guideline_scoped_to_adults_by_age_is_not_a_childrens_source_though_it_names_children() {
        let (_dir, store, rules) = fresh();
        block_on(async {
            library_of(
                &store,
                &rules,
                &[
                    (
                        "Rapid sequence induction in the emergency department",
                        "# Scope\n\nThis guideline covers rapid sequence induction in patients aged 16 years and over. Children are covered by the paediatric guideline.\n\n# Drugs\n\nRapid sequence induction uses ketamine 1-2 mg/kg and rocuronium 1.2 mg/kg.",
                    ),
                    (
                        "Rapid sequence induction in children",
                        "# Drugs\n\nIn children, rapid sequence induction uses ketamine 2 mg/kg and rocuronium 1 mg/kg.",
                    ),
                    (
                        "RSI hos børn: instruks",
                        "# Lægemidler\n\nHos børn gives ved rapid sequence induction ketamin 2 mg/kg.",
                    ),
                ],
            )
            .await;
            let r = ask(&store, &rules, "Rapid sequence induction in children").await;
            assert!(
                r.sources
                    .iter()
                    .all(|s| !s.title.contains("emergency department")),
                "{:?}",
                r.sources.iter().map(|s| &s.title).collect::<Vec<_>>()
            );
            let adult = r
                .dropped
                .iter()
                .find(|d| d.title.contains("emergency department"))
                .unwrap_or_else(|| panic!("the adult guideline is explained: {:?}", r.dropped));
            assert!(adult.reason.contains("voksne"), "{}", adult.reason);
            // Adolescents may be 16 or 17: the bound does not leave them out.
            let r = ask(&store, &rules, "Rapid sequence induction hos unge").await;
            assert!(
                r.sources
                    .iter()
                    .any(|s| s.title.contains("emergency department")),
                "{:?}",
                r.dropped
            );
        });
    }

    #[test]
    fn a_technique_named_in_the_title_finds_the_guidelines_that_describe_it_in_a_passage() {
        let (_dir, store, rules) = fresh();
        block_on(async {
            library_of(
                &store,
                &rules,
                &[
                    (
                        "Positive-pressure techniques for nasal objects in young children: a review",
                        "# The mother's kiss\n\nIn the mother's kiss the parent occludes the clear nostril and gives a sharp puff of air into the child's mouth.",
                    ),
                    (
                        "ENT emergencies: a guideline",
                        "# Epistaxis\n\nAnterior packing stops most anterior bleeds.\n\n# Ear wax\n\nMicrosuction removes impacted wax.\n\n# Tonsillitis\n\nPenicillin for ten days.\n\n# Nasal foreign bodies\n\nOffer the mother's kiss first for nasal foreign bodies in children; then a hook or suction.",
                    ),
                    (
                        "Nasal foreign bodies: hook or forceps?",
                        "# Methods\n\nNasal foreign bodies were removed with a hook or with alligator forceps under direct vision.",
                    ),
                ],
            )
            .await;
            let r = ask(
                &store,
                &rules,
                "Mother's kiss technique for nasal foreign bodies",
            )
            .await;
            let mut titles: Vec<&str> = r.sources.iter().map(|s| s.title.as_str()).collect();
            titles.sort();
            assert_eq!(
                titles,
                [
                    "ENT emergencies: a guideline",
                    "Positive-pressure techniques for nasal objects in young children: a review"
                ],
                "{:?}",
                r.dropped
            );
        });
    }

    #[test]
    fn an_abbreviation_the_lexicon_does_not_know_is_read_as_the_library_defines_it() {
        let (_dir, store, rules) = fresh();
        block_on(async {
            library_of(
                &store,
                &rules,
                &[
                    (
                        "Transcutaneous pacing for symptomatic bradycardia: a review",
                        "# Background\n\nWe assessed the safety of transcutaneous pacing (TCP) in adults with unstable bradycardia.",
                    ),
                    (
                        "TCP in the emergency department",
                        "# What is TCP?\n\nTCP buys time until a transvenous wire is placed. Start TCP at 70 mA and raise the current until capture.",
                    ),
                    (
                        "Bone graft substitutes in orthopaedic surgery",
                        "# Ceramics\n\nTricalcium phosphate (TCP) granules fill metaphyseal defects; TCP resorbs within a year.",
                    ),
                    (
                        "Atropine for bradycardia",
                        "# Dosing\n\nAtropine 0.5 mg IV, repeated to 3 mg, for symptomatic bradycardia.",
                    ),
                ],
            )
            .await;
            let r = ask(&store, &rules, "TCP for bradycardia").await;
            let mut titles: Vec<&str> = r.sources.iter().map(|s| s.title.as_str()).collect();
            titles.sort();
            assert_eq!(
                titles,
                [
                    "TCP in the emergency department",
                    "Transcutaneous pacing for symptomatic bradycardia: a review"
                ],
                "{:?}",
                r.dropped
            );
            let a = &r.concept.abbreviations;
            assert_eq!(a.len(), 1, "{a:?}");
            assert_eq!(
                (a[0].long.as_str(), a[0].group.as_str(), a[0].documents),
                ("transcutaneous pacing", "ekstern_pacing", 1)
            );
            assert!(
                r.query.contains("TCP read as \"transcutaneous pacing\""),
                "{}",
                r.query
            );

            // A library whose documents define it only as something the lexicon does not
            // name leaves the title as written.
            let (_dir, store, rules) = fresh();
            library_of(
                &store,
                &rules,
                &[(
                    "Bone graft substitutes in orthopaedic surgery",
                    "# Ceramics\n\nTricalcium phosphate (TCP) granules fill metaphyseal defects.",
                )],
            )
            .await;
            let r = ask(&store, &rules, "TCP for bradycardia").await;
            assert!(
                r.concept.abbreviations.is_empty(),
                "{:?}",
                r.concept.abbreviations
            );
        });
    }

    #[test]
    fn a_long_guideline_that_discusses_the_procedure_in_four_passages_is_on_it() {
        let (_dir, store, rules) = fresh();
        block_on(async {
            let mut long = String::new();
            for i in 0..20 {
                long.push_str(&format!(
                    "# Topic {i}\n\nBites, burns and abrasions number {i} are cleaned and dressed.\n\n"
                ));
            }
            for step in ["anaesthetise", "irrigate", "explore", "review"] {
                long.push_str(&format!(
                    "# Wounds: {step}\n\nBefore laceration repair, {step} the wound edges with care.\n\n"
                ));
            }
            library_of(
                &store,
                &rules,
                &[
                    ("Emergency department wound care guideline", long.as_str()),
                    (
                        "Laceration repair in the emergency department",
                        "# Technique\n\nLaceration repair with interrupted sutures.",
                    ),
                ],
            )
            .await;
            let r = ask(&store, &rules, "Laceration repair").await;
            assert!(
                r.sources
                    .iter()
                    .any(|s| s.title == "Emergency department wound care guideline"),
                "{:?}",
                r.dropped
            );
        });
    }
}
