//! One run of the pipeline: retrieve → evidence gate → the quality loop (write, evaluate,
//! revise) → package. Each stage appends an event to the run's history through the
//! [`Progress`](crate::ports::Progress) port; artifacts go to `<runs_dir>/<run_id>/`.
//!
//! [`Pipeline::execute`] takes a typed [`RunRequest`] and answers a typed [`RunEnd`]; the
//! daemon's job adapter maps them to and from the queue's runs. Nothing here knows a lease or
//! the store.

use crate::error::PipelineError;
use crate::evidence::AckNotice;
use crate::gate::{self, AckRequest, Acknowledgement, Policy};
use crate::llm::LlmError;
use crate::package::{self, Finished, RunSummary, Timings};
use crate::ports::{Library, RunPorts};
use crate::quality::{self, HotLoopSettings, LoopEnd};
use crate::retrieve::{self, RetrievalConfig};
use crate::tiers::TierRules;
use crate::writer::{Brief, Writer};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The pipeline's settings (from the daemon's configuration).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Tiers the retrieved evidence must include.
    pub required_tiers: Vec<String>,
    /// What a missing tier does, unless the run says otherwise.
    pub missing_tier_policy: Policy,
    pub retrieval: RetrievalConfig,
    /// Where run artifacts go (`<data_dir>/runs`).
    pub runs_dir: PathBuf,
    /// The department or author named in every document (`document_author`).
    pub document_author: String,
    /// A digest of the settings above, recorded in every manifest.
    pub digest: String,
}

/// A run's options (`options` in `POST /api/write`). Parsed here once, for the HTTP layer's
/// validation and for the run alike; keys the pipeline does not know are left to other
/// runners.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RunOptions {
    /// Overrides `missing_tier_policy` for this run.
    #[serde(default)]
    pub missing_tier_policy: Option<Policy>,
}

impl RunOptions {
    /// Reads a run's stored options; the error names the option and what it may be.
    pub fn from_json(options: &Value) -> Result<RunOptions, String> {
        if options.is_null() {
            return Ok(RunOptions::default());
        }
        serde_json::from_value(options.clone()).map_err(|e| {
            let e = e.to_string();
            if e.contains("STRICT") {
                "`options.missing_tier_policy` must be \"STRICT\" or \"allow_with_ack\"".into()
            } else {
                format!("`options` is not valid: {e}")
            }
        })
    }
}

/// One attempt of a run, as the pipeline sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub id: String,
    pub procedure: String,
    pub context: String,
    pub options: RunOptions,
    /// This attempt's number (1-based).
    pub attempt: u32,
    /// An acknowledgement of evidence gaps given for this run, if any.
    pub ack: Option<Acknowledgement>,
}

/// How a run attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    Done(Box<RunSummary>),
    /// The best draft still has blocking findings (a dose, route, negation, population or
    /// timing that differs from its passage; uncited clinical content; a citation to nothing
    /// retrieved): its artifacts are written, marked as not released, and the run must not be
    /// DONE.
    NotReleasable {
        blocking: usize,
        summary: Box<RunSummary>,
    },
    /// The evidence has gaps a person must acknowledge.
    NeedsAck(AckRequest),
    Failed {
        error: String,
        retryable: bool,
    },
    Cancelled,
}

/// The pipeline, shared by every run.
#[derive(Clone)]
pub struct Pipeline {
    library: Arc<dyn Library>,
    rules: Arc<TierRules>,
    config: Arc<PipelineConfig>,
    /// Drafts and revisions: the offline writer or a language model.
    writer: Arc<dyn Writer>,
    /// The quality loop's settings, which SIGHUP replaces.
    loop_settings: HotLoopSettings,
}

impl Pipeline {
    pub fn new(
        library: Arc<dyn Library>,
        rules: Arc<TierRules>,
        config: PipelineConfig,
        writer: Arc<dyn Writer>,
        loop_settings: HotLoopSettings,
    ) -> Self {
        Pipeline {
            library,
            rules,
            config: Arc::new(config),
            writer,
            loop_settings,
        }
    }

    /// Retrieves the sources for a procedure (see [`retrieve::retrieve`]).
    pub async fn retrieve(
        &self,
        title: &str,
        context: &str,
    ) -> Result<retrieve::Retrieved, PipelineError> {
        Ok(retrieve::retrieve(
            &*self.library,
            &self.rules,
            &self.config.retrieval,
            title,
            context,
        )
        .await?)
    }

    /// Runs one attempt of `run`.
    pub async fn execute(
        &self,
        run: RunRequest,
        ports: RunPorts<'_>,
    ) -> Result<RunEnd, PipelineError> {
        let started = Instant::now();
        let mut timings: BTreeMap<&'static str, u64> = BTreeMap::new();
        let policy = run
            .options
            .missing_tier_policy
            .unwrap_or(self.config.missing_tier_policy);

        // 1. Retrieve.
        let t = Instant::now();
        let retrieved = self.retrieve(&run.procedure, &run.context).await?;
        let retrieve_ms = t.elapsed().as_millis() as u64;
        timings.insert("retrieve", retrieve_ms);
        // What was found and why: each source with the concept terms it matched, why it was
        // kept and which passages the writer gets; the candidates left out with the reason.
        let explained = retrieved.explain();
        let mut event = explained.clone();
        event["elapsed_ms"] = json!(retrieve_ms);
        let cited = retrieved
            .sources
            .iter()
            .map(|s| (s.id.clone(), s.tier.clone()))
            .collect();
        ports.progress.retrieved(event, cited).await?;
        let sources = retrieved.sources;

        // 2. Evidence gate.
        let report = gate::check(&self.config.required_tiers, &sources);
        let ack_notice = match self.gate(&run, &report, policy, ports).await? {
            Ok(notice) => notice,
            Err(end) => return Ok(end),
        };

        // 3. Write, 4. evaluate, revise: the quality loop.
        let t = Instant::now();
        let prior = ports.ledger.prior_spend().await?;
        let brief = Brief {
            title: &run.procedure,
            context: &run.context,
            sources: &sources,
            ack: ack_notice.as_ref(),
            attempt: run.attempt,
        };
        let looped =
            match quality::run(ports, &*self.writer, brief, &self.loop_settings, prior).await {
                Ok(LoopEnd::Finished(r)) => *r,
                Ok(LoopEnd::Cancelled) => return Ok(RunEnd::Cancelled),
                Err(LlmError::Port(e)) => return Err(e.into()),
                // A provider that stayed down through the retry window: the attempt fails as
                // retryable, and the daemon has the run wait in the queue before it is tried
                // again while it has attempts (reusing the calls it already paid for); a
                // refusal is final.
                Err(LlmError::Provider {
                    message,
                    unavailable,
                    ..
                }) => {
                    return Ok(RunEnd::Failed {
                        error: message,
                        retryable: unavailable,
                    })
                }
            };
        timings.insert("write", t.elapsed().as_millis() as u64);

        // 5. Package (rendering and file writes, on the blocking pool).
        let t = Instant::now();
        timings.insert("total_before_package", started.elapsed().as_millis() as u64);
        let finished = Finished {
            run_id: run.id.clone(),
            procedure: run.procedure.clone(),
            context: run.context.clone(),
            attempt: run.attempt,
            writer: self.writer.name(),
            sources,
            looped,
            ack: ack_notice,
            gate: report,
            config_digest: self.config.digest.clone(),
            timings: timings.clone(),
            author: self.config.document_author.clone(),
            packaged_at: std::time::SystemTime::now(),
        };
        let runs_dir = self.config.runs_dir.clone();
        let (finished, packaged) = crate::blocking::run(move || {
            let packaged = package::package(&runs_dir, &finished);
            (finished, packaged)
        })
        .await;
        let packaged = packaged.map_err(|source| PipelineError::Artifacts {
            dir: package::run_dir(&self.config.runs_dir, &run.id)
                .display()
                .to_string(),
            source,
        })?;
        let package_ms = t.elapsed().as_millis() as u64;
        ports
            .event(
                "packaged",
                json!({ "dir": packaged.dir, "artifacts": packaged.artifacts }),
            )
            .await?;
        let mut summary = RunSummary::new(
            &finished,
            packaged,
            Timings {
                retrieve: timings["retrieve"],
                write_and_evaluate: timings["write"],
                package: package_ms,
                total: started.elapsed().as_millis() as u64,
            },
        );
        summary.retrieval = explained["sources"].clone();
        let blocking = finished.looped.best.eval.blocking();
        if blocking > 0 {
            return Ok(RunEnd::NotReleasable {
                blocking,
                summary: Box::new(summary),
            });
        }
        Ok(RunEnd::Done(Box::new(summary)))
    }

    /// The evidence gate: `Ok(notice)` to go on (with the acknowledgement to print, if gaps were
    /// acknowledged), `Err(end)` when the run stops here (STRICT) or waits (allow_with_ack).
    async fn gate(
        &self,
        run: &RunRequest,
        report: &gate::GateReport,
        policy: Policy,
        ports: RunPorts<'_>,
    ) -> Result<Result<Option<AckNotice>, RunEnd>, PipelineError> {
        if report.missing_tiers.is_empty() {
            ports
                .event(
                    "evidence_gate",
                    json!({ "passed": true, "policy": policy.as_str(), "acknowledged": false, "report": report }),
                )
                .await?;
            return Ok(Ok(None));
        }
        let request = report.ack_request(policy);
        if let Some(ack) = run
            .ack
            .as_ref()
            .filter(|a| request.uncovered(&a.tiers).is_empty())
        {
            ports
                .event(
                    "evidence_gate",
                    json!({ "passed": true, "policy": policy.as_str(), "acknowledged": true, "report": report }),
                )
                .await?;
            return Ok(Ok(Some(AckNotice {
                missing_tiers: report.missing_tiers.clone(),
                acknowledged_by: ack.acknowledged_by.clone(),
                note: ack.note.clone(),
            })));
        }
        ports
            .event(
                "evidence_gate",
                json!({ "passed": false, "policy": policy.as_str(), "report": report }),
            )
            .await?;
        Ok(Err(match policy {
            Policy::Strict => RunEnd::Failed {
                error: report.failure_message(),
                retryable: false,
            },
            Policy::AllowWithAck => RunEnd::NeedsAck(request),
        }))
    }
}
