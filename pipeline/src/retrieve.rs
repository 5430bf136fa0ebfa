//! Retrieval: which library documents a run is written from. The title's topic words select;
//! context and synonyms only rank. Decided here, asked of the library through the
//! [`Library`](crate::ports::Library) port.

use crate::evidence::{words, EvidencePassage, EvidenceSource};
use crate::ports::{Library, LibraryDocument, LibraryPassage, LibraryQuery, PortResult};
use crate::tiers::TierRules;
use std::collections::BTreeMap;

/// Most passages of one source a run is given: the best-matching ones, in document order.
pub const PASSAGES_PER_SOURCE: usize = 6;

/// The retrieval settings (from the daemon's configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalConfig {
    /// Word → extra search terms (lower case), e.g. anafylaksi → anaphylaxis.
    pub synonyms: BTreeMap<String, Vec<String>>,
    /// Most sources retrieved.
    pub limit: usize,
    /// A hit is kept when its score is at least this share of the best hit's.
    pub min_relative_score: f64,
    /// Title words that say nothing about the topic ("behandling"); left out of the anchor.
    pub generic_words: Vec<String>,
}

/// The search text: title, context and the configured synonyms of their words.
pub fn query_for(title: &str, context: &str, synonyms: &BTreeMap<String, Vec<String>>) -> String {
    let mut q = format!("{title} {context}");
    for w in words(&q.clone()) {
        if let Some(extra) = synonyms.get(&w) {
            for e in extra {
                q.push(' ');
                q.push_str(e);
            }
        }
    }
    q
}

/// What was retrieved, and the query that found it (shown in the `retrieved` event).
#[derive(Debug, Clone, PartialEq)]
pub struct Retrieved {
    pub query: String,
    pub sources: Vec<EvidenceSource>,
}

/// Retrieves the sources for a run: those matching the title's topic words (the title minus
/// generic words, plus synonyms), ranked over topic, context and synonyms together, keeping
/// hits within `min_relative_score` of the best. The title says what the procedure is about;
/// context words alone must not pull in another procedure's sources.
pub async fn retrieve(
    library: &dyn Library,
    rules: &TierRules,
    config: &RetrievalConfig,
    title: &str,
    context: &str,
) -> PortResult<Retrieved> {
    let generic = |w: &String| config.generic_words.contains(w);
    let topic: Vec<String> = words(title).into_iter().filter(|w| !generic(w)).collect();
    let anchor = query_for(&topic.join(" "), "", &config.synonyms);
    // Generic words rank nothing and would make the index visit every source containing them.
    let specific = |text: &str| -> String {
        words(text)
            .into_iter()
            .filter(|w| !generic(w))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let rest = query_for(&specific(title), &specific(context), &config.synonyms);
    let hits = library
        .search(LibraryQuery {
            anchor: anchor.clone(),
            rest: rest.clone(),
            limit: config.limit * PASSAGES_PER_SOURCE * 2,
        })
        .await?;
    let best = hits.first().map(|h| h.score).unwrap_or(0.0);
    // Group passages by source, sources in the order of their best passage; keep sources whose
    // best passage is within `min_relative_score` of the best of all.
    let mut order: Vec<String> = Vec::new();
    let mut grouped: std::collections::HashMap<String, (LibraryDocument, Vec<LibraryPassage>)> =
        std::collections::HashMap::new();
    for h in hits {
        let id = h.document.id.clone();
        match grouped.get_mut(&id) {
            Some((_, ps)) => {
                if ps.len() < PASSAGES_PER_SOURCE {
                    ps.push(h.passage);
                }
            }
            None => {
                if h.score < best * config.min_relative_score || order.len() >= config.limit {
                    continue;
                }
                order.push(id.clone());
                grouped.insert(id, (h.document, vec![h.passage]));
            }
        }
    }
    let sources = order
        .into_iter()
        .filter_map(|id| grouped.remove(&id))
        .map(|(d, mut passages)| {
            passages.sort_by_key(|p| p.ord);
            let passages: Vec<EvidencePassage> = passages
                .into_iter()
                .map(|p| EvidencePassage {
                    id: p.id,
                    heading: p.heading,
                    page_start: p.page_start,
                    page_end: p.page_end,
                    text: p.text,
                })
                .collect();
            EvidenceSource {
                tier_priority: rules.get(&d.tier).map(|t| t.priority).unwrap_or(0),
                text: passages
                    .iter()
                    .map(|p| p.text.as_str())
                    .collect::<Vec<_>>()
                    .join("\n\n"),
                id: d.id,
                title: d.title,
                url: d.url,
                year: d.year,
                tier: d.tier,
                demo: d.demo,
                sha256: d.sha256,
                original_sha256: d.original_sha256,
                passages,
            }
        })
        .collect();
    Ok(Retrieved {
        query: format!("{anchor} | {rest}"),
        sources,
    })
}
