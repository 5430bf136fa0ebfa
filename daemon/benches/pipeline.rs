//! Pipeline benchmark: one procedure through retrieve → gate → write → evaluate → DOCX with the
//! offline writer, and retrieval latency, over a generated library of 100 and of 10,000
//! sources (how cost grows with the library).
//!
//!     cargo bench -p procedurewriter --bench pipeline
//!
//! (It lives in the daemon's package because it measures retrieval through the store, which
//! the pipeline crate does not depend on.)

#[path = "support/corpus.rs"]
mod corpus;

use procedurewriter::library::{self, StoreLibrary};
use procedurewriter_actors::store::{NewPassage, NewSource};
use procedurewriter_actors::{Store, Synchronous};
use procedurewriter_pipeline::library::sha256_hex;
use procedurewriter_pipeline::offline::{self, OfflineWriter};
use procedurewriter_pipeline::quality::{LoopPolicy, LoopSettings};
use procedurewriter_pipeline::retrieve::RetrievalConfig;
use procedurewriter_pipeline::tiers::TierRules;
use procedurewriter_pipeline::{docx, evaluate, gate, Pipeline, PipelineConfig};
use std::sync::Arc;
use std::time::Instant;

const TIERS: &[&str] = &[
    "danish_guideline",
    "international_guideline",
    "systematic_review",
    "rct",
    "observational",
    "library_document",
];

/// A deterministic pseudo-random text of `n` words.
fn text(seed: &mut u64, n: usize) -> String {
    let mut t = corpus::words(seed, n, 12);
    t.push('.');
    t
}

use procedurewriter::block_on;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn measure(n: usize) -> (f64, f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("b.db"), Synchronous::Normal).unwrap();
    let rules = Arc::new(TierRules::embedded());
    block_on(async {
        library::load_demo_library(&store, &rules).await.unwrap();
        library::refeature(&store).await.unwrap();
        let mut seed = 42u64;
        let mut pending = Vec::new();
        for i in 0..n {
            let body = text(&mut seed, 150);
            let title = format!("Generated source {i}");
            let terms = procedurewriter_pipeline::features::index_terms("", &body);
            let new = NewSource {
                title_terms: procedurewriter_pipeline::analyze::analyzer().index_text(&title),
                title,
                url: None,
                tier: TIERS[i % TIERS.len()].to_string(),
                tier_reason: "explicit".into(),
                year: Some(2000 + (i % 25) as i32),
                publication_type: None,
                sha256: sha256_hex(format!("{i}{body}").as_bytes()),
                media_type: "text/plain".into(),
                original_sha256: None,
                pages: None,
                passages: vec![NewPassage {
                    heading_terms: terms.heading,
                    text_terms: terms.text,
                    features: Some(terms.features),
                    ord: 0,
                    heading: String::new(),
                    page_start: None,
                    page_end: None,
                    char_start: 0,
                    char_end: body.chars().count(),
                    text: body.clone(),
                }],
                text: body,
                demo: false,
            };
            pending.push(store.add_source(new));
            if pending.len() == 256 {
                for f in pending.drain(..) {
                    f.await.unwrap();
                }
            }
        }
        for f in pending.drain(..) {
            f.await.unwrap();
        }
    });
    let config = PipelineConfig {
        required_tiers: vec!["danish_guideline".into(), "systematic_review".into()],
        missing_tier_policy: gate::Policy::Strict,
        retrieval: RetrievalConfig {
            synonyms: [(
                "anafylaksi".to_string(),
                vec!["anaphylaxis".to_string(), "adrenaline".to_string()],
            )]
            .into(),
            limit: 12,
            min_relative_score: 0.1,
            generic_words: vec!["behandling".into()],
        },
        runs_dir: dir.path().join("runs"),
        document_author: "procedurewriter".into(),
        digest: String::new(),
    };
    // The shipped loop settings: the offline writer's revision equals its draft, so a draft
    // under the threshold costs one more (identical) write and evaluation, then a plateau.
    let loop_settings = LoopSettings {
        policy: LoopPolicy::Auto,
        threshold: 8.0,
        max_iterations: 3,
        max_additional_cost_pusd: 2_000_000_000_000,
        min_improvement: 0.5,
    };
    let runner = Pipeline::new(
        Arc::new(StoreLibrary(store.clone())),
        Arc::clone(&rules),
        config.clone(),
        Arc::new(OfflineWriter),
        Arc::new(std::sync::RwLock::new(loop_settings)),
    );
    let mut retrieval = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let sources = block_on(runner.retrieve("Anafylaksi behandling", "akutmodtagelse"))
            .unwrap()
            .sources;
        retrieval.push(t.elapsed().as_secs_f64());
        let report = gate::check(&config.required_tiers, &sources);
        assert!(report.missing_tiers.is_empty());
        let md = offline::write("Anafylaksi behandling", &sources, None);
        let eval = evaluate::evaluate(&md, &sources);
        assert!(eval.score > 8.0);
        let info = docx::DocumentInfo {
            author: config.document_author.clone(),
            version: "bench".into(),
            at: std::time::SystemTime::now(),
        };
        docx::render(&md, &info).unwrap();
        whole.push(t.elapsed().as_secs_f64());
    }
    retrieval.sort_by(f64::total_cmp);
    whole.sort_by(f64::total_cmp);
    (
        percentile(&retrieval, 0.5),
        percentile(&retrieval, 0.99),
        percentile(&whole, 0.5),
        percentile(&whole, 0.99),
    )
}

fn main() {
    // `--quick` (CI): a smaller large library, to show the benchmark still runs.
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick { &[100, 2_000] } else { &[100, 10_000] };
    println!(
        "procedurewriter pipeline benchmark (offline writer, 200 procedures per library size)"
    );
    println!(
        "reproduce: cargo bench -p procedurewriter --bench pipeline{}\n",
        if quick { " -- --quick" } else { "" }
    );
    for &n in sizes {
        let (r50, r99, p50, p99) = measure(n);
        println!(
            "library {:>6} sources + demo: retrieval p50 {:.2} ms p99 {:.2} ms (target p99 < 5 ms) | procedure p50 {:.1} ms p99 {:.1} ms (target < 100 ms)",
            n, r50 * 1e3, r99 * 1e3, p50 * 1e3, p99 * 1e3
        );
    }
}
