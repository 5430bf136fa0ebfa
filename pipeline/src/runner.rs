//! The pipeline as a job: retrieve → evidence gate → write → evaluate → package. Each stage
//! appends an event to the run's history; artifacts go to `<runs_dir>/<run_id>/`.

use crate::evaluate::{self, Evaluation};
use crate::gate::{self, Policy};
use crate::library::sha256_hex;
use crate::llm::LlmError;
use crate::quality::{self, HotLoopSettings, LoopEnd, PriorSpend};
use crate::tiers::TierRules;
use crate::writer::{self, AckNotice, EvidenceSource};
use crate::writers::{Brief, Writer};
use futures_util::future::LocalBoxFuture;
use procedurewriter_actors::model::money::to_usd;
use procedurewriter_actors::{Job, JobContext, JobRunner, Outcome, Run, Store};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The offline writer's name in manifests.
pub const WRITER: &str = "offline-v1";

/// The pipeline's settings (from the daemon's configuration).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Tiers the retrieved evidence must include.
    pub required_tiers: Vec<String>,
    /// What a missing tier does, unless the run says otherwise.
    pub missing_tier_policy: Policy,
    /// Word → extra search terms (lower case), e.g. anafylaksi → anaphylaxis.
    pub synonyms: BTreeMap<String, Vec<String>>,
    /// Most sources retrieved.
    pub retrieval_limit: usize,
    /// A hit is kept when its BM25 score is at least this share of the best hit's.
    pub min_relative_score: f64,
    /// Title words that say nothing about the topic ("behandling"); left out of the anchor.
    pub generic_words: Vec<String>,
    /// Where run artifacts go (`<data_dir>/runs`).
    pub runs_dir: PathBuf,
    /// A digest of the settings above, recorded in every manifest.
    pub digest: String,
}

/// Runs the pipeline on claimed runs.
#[derive(Clone)]
pub struct PipelineRunner {
    store: Store,
    rules: Arc<TierRules>,
    config: Arc<PipelineConfig>,
    /// Drafts and revisions: the offline writer or a language model.
    writer: Arc<dyn Writer>,
    /// The quality loop's settings, which SIGHUP replaces.
    loop_settings: HotLoopSettings,
}

impl PipelineRunner {
    pub fn new(
        store: Store,
        rules: Arc<TierRules>,
        config: PipelineConfig,
        writer: Arc<dyn Writer>,
        loop_settings: HotLoopSettings,
    ) -> Self {
        PipelineRunner {
            store,
            rules,
            config: Arc::new(config),
            writer,
            loop_settings,
        }
    }
}

impl JobRunner for PipelineRunner {
    fn run(&self, job: Job, ctx: JobContext) -> LocalBoxFuture<'static, Outcome> {
        let me = self.clone();
        Box::pin(async move {
            match me.execute(job.run, ctx).await {
                Ok(outcome) => outcome,
                Err(e) => Outcome::Failed {
                    error: e.to_string(),
                    retryable: matches!(e, procedurewriter_actors::Error::Unavailable(_)),
                },
            }
        })
    }
}

/// The search text: title, context and the configured synonyms of their words.
pub fn query_for(title: &str, context: &str, synonyms: &BTreeMap<String, Vec<String>>) -> String {
    let mut q = format!("{title} {context}");
    for w in writer::words(&q.clone()) {
        if let Some(extra) = synonyms.get(&w) {
            for e in extra {
                q.push(' ');
                q.push_str(e);
            }
        }
    }
    q
}

impl PipelineRunner {
    /// Retrieves the sources for a run: those matching the title's topic words (the title
    /// minus generic words, plus synonyms), ranked by BM25 over topic, context and synonyms
    /// together, keeping hits within `min_relative_score` of the best. The title says what the
    /// procedure is about; context words alone must not pull in another procedure's sources.
    pub async fn retrieve(
        &self,
        title: &str,
        context: &str,
    ) -> procedurewriter_actors::Result<(String, Vec<EvidenceSource>)> {
        let topic: Vec<String> = writer::words(title)
            .into_iter()
            .filter(|w| !self.config.generic_words.contains(w))
            .collect();
        let anchor = query_for(&topic.join(" "), "", &self.config.synonyms);
        // Generic words rank nothing and would make FTS5 visit every source containing them.
        let specific = |text: &str| -> String {
            writer::words(text)
                .into_iter()
                .filter(|w| !self.config.generic_words.contains(w))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let rest = query_for(&specific(title), &specific(context), &self.config.synonyms);
        let hits = self
            .store
            .search_anchored(anchor.clone(), rest.clone(), self.config.retrieval_limit)
            .await?;
        // SQLite's bm25() is negative: more negative is better.
        let best = hits.first().map(|h| -h.rank).unwrap_or(0.0);
        let sources = hits
            .into_iter()
            .filter(|h| -h.rank >= best * self.config.min_relative_score)
            .map(|h| {
                let s = h.source;
                EvidenceSource {
                    tier_priority: self.rules.get(&s.tier).map(|t| t.priority).unwrap_or(0),
                    id: s.id,
                    title: s.title,
                    url: s.url,
                    year: s.year,
                    tier: s.tier,
                    text: s.text.unwrap_or_default(),
                    demo: s.demo,
                }
            })
            .collect();
        Ok((format!("{anchor} | {rest}"), sources))
    }

    async fn execute(&self, run: Run, ctx: JobContext) -> procedurewriter_actors::Result<Outcome> {
        let mut timings: BTreeMap<&str, u64> = BTreeMap::new();
        let started = Instant::now();
        let policy = match run
            .params
            .get("missing_tier_policy")
            .and_then(Value::as_str)
        {
            None => self.config.missing_tier_policy,
            Some(p) => match Policy::parse(p) {
                Some(p) => p,
                None => {
                    return Ok(Outcome::Failed {
                        error: format!("missing_tier_policy {p:?} is not STRICT or allow_with_ack"),
                        retryable: false,
                    })
                }
            },
        };

        // 1. Retrieve.
        let t = Instant::now();
        let (query, sources) = self.retrieve(&run.procedure, &run.context).await?;
        timings.insert("retrieve", t.elapsed().as_millis() as u64);
        ctx.event(
            "retrieved",
            json!({ "query": query, "sources": sources.iter().map(|s| json!({ "id": s.id, "tier": s.tier })).collect::<Vec<_>>() }),
        )
        .await?;

        // 2. Evidence gate.
        let report = gate::check(&self.config.required_tiers, &sources);
        let mut ack_notice = None;
        if !report.missing_tiers.is_empty() {
            let acked_tiers: Vec<String> = run
                .ack
                .as_ref()
                .and_then(|a| a.tiers.as_array().cloned())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let covered = report.missing_tiers.iter().all(|m| acked_tiers.contains(m));
            match (covered, &run.ack, policy) {
                (true, Some(ack), _) => {
                    ack_notice = Some(AckNotice {
                        missing_tiers: report.missing_tiers.clone(),
                        acknowledged_by: ack.acknowledged_by.clone(),
                        note: ack.note.clone(),
                    });
                }
                (_, _, Policy::Strict) => {
                    ctx.event(
                        "evidence_gate",
                        json!({ "passed": false, "policy": policy.as_str(), "report": report }),
                    )
                    .await?;
                    return Ok(Outcome::Failed {
                        error: report.failure_message(),
                        retryable: false,
                    });
                }
                (_, _, Policy::AllowWithAck) => {
                    ctx.event(
                        "evidence_gate",
                        json!({ "passed": false, "policy": policy.as_str(), "report": report }),
                    )
                    .await?;
                    return Ok(Outcome::NeedsAck {
                        details: json!({
                            "missing_tiers": report.missing_tiers,
                            "found": report.found,
                            "required_tiers": report.required_tiers,
                            "policy": policy.as_str(),
                        }),
                    });
                }
            }
        }
        ctx.event(
            "evidence_gate",
            json!({ "passed": true, "policy": policy.as_str(), "acknowledged": ack_notice.is_some(), "report": report }),
        )
        .await?;

        // 3. Write, 4. evaluate, revise: the quality loop.
        let t = Instant::now();
        let prior = match ctx.lease() {
            Some(l) => {
                let (draft_pusd, revision_pusd) = self.store.llm_spend(l.run_id.clone()).await?;
                PriorSpend {
                    draft_pusd,
                    revision_pusd,
                }
            }
            None => PriorSpend::default(),
        };
        let brief = Brief {
            title: &run.procedure,
            context: &run.context,
            sources: &sources,
            ack: ack_notice.as_ref(),
            attempt: run.attempts,
        };
        let ended = quality::run(&ctx, &*self.writer, brief, &self.loop_settings, prior).await;
        let looped = match ended {
            Ok(LoopEnd::Finished(r)) => r,
            Ok(LoopEnd::Cancelled) => return Ok(Outcome::Cancelled),
            Err(LlmError::Store(e)) => return Err(e),
            Err(LlmError::Provider { message, .. }) => {
                return Ok(Outcome::Failed {
                    error: message,
                    retryable: false,
                })
            }
        };
        timings.insert("write", t.elapsed().as_millis() as u64);
        let markdown = looped.best.markdown.clone();
        let eval = looped.best.eval.clone();
        let writer_name = self.writer.name();

        // 5. Package.
        let t = Instant::now();
        timings.insert("total_before_package", started.elapsed().as_millis() as u64);
        let packaged = package(
            &self.config,
            &run,
            &sources,
            &Written {
                writer: &writer_name,
                markdown: &markdown,
                eval: &eval,
                looped: &looped,
            },
            ack_notice.as_ref(),
            &report,
            &timings,
        )
        .map_err(|e| {
            procedurewriter_actors::Error::Unavailable(format!(
                "cannot write the run's artifacts: {e}"
            ))
        })?;
        let package_ms = t.elapsed().as_millis() as u64;
        ctx.event(
            "packaged",
            json!({ "dir": packaged.dir, "artifacts": packaged.artifacts }),
        )
        .await?;
        Ok(Outcome::Done {
            result: json!({
                "writer": writer_name,
                "score": eval.score,
                "issues": eval.issues,
                "iterations": looped.iterations,
                "best_iteration": looped.best.iteration,
                "scores": looped.scores,
                "stop_reason": looped.stop_reason.as_str(),
                "cost_usd": to_usd(looped.total_pusd),
                "revision_cost_usd": to_usd(looped.revision_pusd),
                "revision_cap_usd": to_usd(looped.cap_pusd),
                "reused_calls": looped.reused_calls,
                "sources": sources.iter().map(|s| &s.id).collect::<Vec<_>>(),
                "artifacts": packaged.artifacts,
                "artifact_dir": packaged.dir,
                "acknowledged_gaps": ack_notice.as_ref().map(|a| &a.missing_tiers),
                "timings_ms": { "retrieve": timings["retrieve"], "write_and_evaluate": timings["write"], "package": package_ms, "total": started.elapsed().as_millis() as u64 },
            }),
        })
    }
}

/// The chosen draft and how the loop arrived at it.
struct Written<'a> {
    writer: &'a str,
    markdown: &'a str,
    eval: &'a Evaluation,
    looped: &'a quality::LoopResult,
}

struct Packaged {
    dir: String,
    artifacts: Vec<Value>,
}

#[allow(clippy::too_many_arguments)]
fn package(
    config: &PipelineConfig,
    run: &Run,
    sources: &[EvidenceSource],
    written: &Written<'_>,
    ack: Option<&AckNotice>,
    gate: &gate::GateReport,
    timings: &BTreeMap<&str, u64>,
) -> std::io::Result<Packaged> {
    let Written {
        writer,
        markdown,
        eval,
        looped,
    } = *written;
    // The run id is a UUID from the store: it cannot name a path outside runs_dir.
    let dir = config.runs_dir.join(&run.id);
    std::fs::create_dir_all(&dir)?;
    let evidence = serde_json::to_vec_pretty(&json!({
        "run_id": run.id,
        "score": eval.score,
        "support_threshold": evaluate::SUPPORT_THRESHOLD,
        "sentences": eval.report,
        "issues": eval.issues,
        "gate": gate,
    }))?;
    let docx = crate::docx::render(markdown).map_err(std::io::Error::other)?;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("procedure.md", markdown.as_bytes().to_vec()),
        ("procedure.docx", docx),
        ("evidence_report.json", evidence),
    ];
    let mut artifacts = Vec::new();
    for (name, bytes) in &files {
        write_atomic(&dir.join(name), bytes)?;
        artifacts.push(json!({ "name": name, "sha256": sha256_hex(bytes), "bytes": bytes.len() }));
    }
    let manifest = json!({
        "run_id": run.id,
        "procedure": run.procedure,
        "context": run.context,
        "attempt": run.attempts,
        "writer": writer,
        "score": eval.score,
        "issues": eval.issues.len(),
        "quality_loop": {
            "iterations": looped.iterations,
            "best_iteration": looped.best.iteration,
            "scores": looped.scores,
            "stop_reason": looped.stop_reason.as_str(),
            "revision_cost_usd": to_usd(looped.revision_pusd),
            "revision_cap_usd": to_usd(looped.cap_pusd),
            "reused_calls": looped.reused_calls,
        },
        "cost_usd": to_usd(looped.total_pusd),
        "config_digest": config.digest,
        "sources": sources.iter().map(|s| json!({ "id": s.id, "title": s.title, "tier": s.tier, "sha256": sha256_hex(s.text.as_bytes()), "demo": s.demo })).collect::<Vec<_>>(),
        "artifacts": artifacts,
        "timings_ms": timings,
        "acknowledgement": ack.map(|a| json!({ "acknowledged_by": a.acknowledged_by, "note": a.note, "missing_tiers": a.missing_tiers })),
    });
    let manifest = serde_json::to_vec_pretty(&manifest)?;
    write_atomic(&dir.join("manifest.json"), &manifest)?;
    artifacts.push(json!({ "name": "manifest.json", "sha256": sha256_hex(&manifest), "bytes": manifest.len() }));
    Ok(Packaged {
        dir: dir.display().to_string(),
        artifacts,
    })
}

/// Writes through a temp file and a rename, so a reader never sees half an artifact.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}
