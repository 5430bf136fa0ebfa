//! The quality loop: a first draft, then revisions of the best draft so far, each scored by
//! the evaluator, until one of the stop reasons holds. Its spending on revisions can never go
//! beyond `quality_loop_max_additional_cost_usd`: before each call the writer plans it against
//! what remains (see [`crate::llm::plan`]) and a call that cannot fit is not made.
//!
//! The settings are read afresh at the start of every iteration, so a SIGHUP that lowers the
//! cap or the iteration limit stops a running job at its next iteration. What a run already
//! spent on revisions in earlier attempts counts against the cap too.

use crate::evaluate::{self, Evaluation};
use crate::evidence::EvidenceSource;
use crate::llm::LlmError;
use crate::money::to_usd;
pub use crate::ports::PriorSpend;
use crate::ports::RunPorts;
use crate::writer::{Brief, Drafted, Task, Writer};
use serde_json::json;
use std::sync::{Arc, RwLock};

/// `quality_loop_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoopPolicy {
    /// Revise until a stop reason holds.
    Auto,
    /// Stop after the first draft; revising is a person's decision.
    Manual,
    /// Never revise.
    Off,
}

impl LoopPolicy {
    pub fn parse(s: &str) -> Option<LoopPolicy> {
        match s {
            "auto" => Some(LoopPolicy::Auto),
            "manual" => Some(LoopPolicy::Manual),
            "off" => Some(LoopPolicy::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LoopPolicy::Auto => "auto",
            LoopPolicy::Manual => "manual",
            LoopPolicy::Off => "off",
        }
    }
}

/// The loop's settings (the `quality_loop_*` keys); reloadable.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopSettings {
    pub policy: LoopPolicy,
    /// Stop when the best score reaches this (0–10).
    pub threshold: f64,
    /// Drafts at most, the first included.
    pub max_iterations: u32,
    /// What revisions may spend beyond the first draft (pico-USD).
    pub max_additional_cost_pusd: i64,
    /// Stop when a revision improves the best score by less than this.
    pub min_improvement: f64,
}

/// The settings shared with the SIGHUP handler; each iteration reads a copy.
pub type HotLoopSettings = Arc<RwLock<LoopSettings>>;

fn current(settings: &HotLoopSettings) -> LoopSettings {
    match settings.read() {
        Ok(g) => g.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// Why the loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    ThresholdMet,
    MaxIterations,
    CostCap,
    Plateau,
    PolicyManual,
    PolicyOff,
    Cancelled,
    /// A revision's model call failed for good: the best draft already paid for is kept.
    RevisionFailed,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::ThresholdMet => "threshold_met",
            StopReason::MaxIterations => "max_iterations",
            StopReason::CostCap => "cost_cap",
            StopReason::Plateau => "plateau",
            StopReason::PolicyManual => "policy_manual",
            StopReason::PolicyOff => "policy_off",
            StopReason::Cancelled => "cancelled",
            StopReason::RevisionFailed => "revision_failed",
        }
    }
}

/// A scored draft.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub markdown: String,
    pub eval: Evaluation,
    pub iteration: u32,
}

/// A finished loop.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopResult {
    /// The best-scoring draft (the earliest of equals), not necessarily the last.
    pub best: Draft,
    /// Drafts written and scored, the first included.
    pub iterations: u32,
    pub stop_reason: StopReason,
    /// Each draft's score, in order.
    pub scores: Vec<f64>,
    /// Spent on revisions over all attempts of the run, and the cap it was held to (pico-USD).
    pub revision_pusd: i64,
    pub cap_pusd: i64,
    /// Spent on the run's model calls over all its attempts (pico-USD).
    pub total_pusd: i64,
    /// Calls reused from earlier attempts.
    pub reused_calls: u32,
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopEnd {
    Finished(Box<LoopResult>),
    /// Cancelled before a first draft existed, or while revising (the run is cancelled, not
    /// finished with a partial result).
    Cancelled,
}

async fn event(
    ports: RunPorts<'_>,
    kind: &'static str,
    details: serde_json::Value,
) -> Result<(), LlmError> {
    ports.event(kind, details).await?;
    Ok(())
}

/// Scores a draft on the blocking pool: evaluation is CPU work, never done on the thread that
/// serves HTTP. What the writer's answer itself says is added as blocking findings (see
/// [`writer_findings`]).
async fn score(
    markdown: &str,
    sources: &[EvidenceSource],
    truncated: bool,
    max_tokens: u32,
) -> Evaluation {
    let (markdown, sources) = (markdown.to_string(), sources.to_vec());
    crate::blocking::run(move || {
        let mut eval = evaluate::evaluate_and_verify(&markdown, &sources);
        writer_findings(&mut eval, &markdown, truncated, max_tokens);
        eval
    })
    .await
}

/// Blocking findings about the answer as a whole, which no sentence check sees: an answer cut
/// at its output limit (`finish_reason: length`, `stop_reason: max_tokens`) is incomplete
/// whatever its sentences say, and an answer without any of the outline's sections is not a
/// procedure. Each becomes the first issue the next revision is told, and keeps the draft from
/// release like every blocking finding (`Evaluation::blocking`).
pub fn writer_findings(eval: &mut Evaluation, markdown: &str, truncated: bool, max_tokens: u32) {
    use crate::verify::{Finding, FindingKind, Severity, Verification};
    let mut found = Vec::new();
    if truncated {
        found.push((
            FindingKind::Truncated,
            format!(
                "the answer stopped at its output limit (max_tokens = {max_tokens}): the draft \
                 is cut off and cannot be released; write every section more briefly so the \
                 whole procedure fits"
            ),
        ));
    }
    let has_outline = markdown.lines().any(|l| {
        l.trim_start()
            .strip_prefix("## ")
            .is_some_and(|h| crate::outline::evidence_sections().any(|s| s.heading == h.trim()))
    });
    if !has_outline {
        found.push((
            FindingKind::MissingOutline,
            "the answer has none of the outline's sections: write each section under its \
             \"## \" heading, in the order the rules give"
                .to_string(),
        ));
    }
    if found.is_empty() {
        return;
    }
    let v = eval.verification.get_or_insert_with(|| Verification {
        findings: Vec::new(),
        sentences: Vec::new(),
        blocking: 0,
        warnings: 0,
        checked: crate::verify::CHECKED.to_vec(),
        not_checked: crate::verify::NOT_CHECKED.to_vec(),
    });
    let mut issues = Vec::new();
    for (i, (kind, what)) in found.into_iter().enumerate() {
        issues.push(format!("BLOCKING ({}): {what}", kind.name()));
        v.findings.insert(
            i,
            Finding {
                severity: Severity::Blocking,
                kind,
                section: String::new(),
                line: 0,
                sentence: String::new(),
                cited: Vec::new(),
                aligned: None,
                what,
            },
        );
        v.blocking += 1;
    }
    issues.append(&mut eval.issues);
    eval.issues = issues;
}

/// Says that the call of `iteration` would not fit: what was spent, the cap, the worst case.
async fn cap_reached(
    ports: RunPorts<'_>,
    iteration: u32,
    spent: i64,
    cap: i64,
    worst_case: i64,
) -> Result<(), LlmError> {
    event(
        ports,
        "cost_cap_reached",
        json!({
            "iteration": iteration, "spent_usd": to_usd(spent), "cap_usd": to_usd(cap),
            "remaining_usd": to_usd((cap - spent).max(0)), "worst_case_usd": to_usd(worst_case),
        }),
    )
    .await
}

/// One attempt's loop: its ports, writer and brief, and what it has spent and scored so far.
struct Loop<'a> {
    ports: RunPorts<'a>,
    writer: &'a dyn Writer,
    brief: Brief<'a>,
    prior: PriorSpend,
    /// Spent in this attempt, drafts and revisions (pico-USD).
    spent_now: i64,
    /// Spent on revisions over all attempts (pico-USD).
    revision_pusd: i64,
    reused_calls: u32,
    scores: Vec<f64>,
    iteration: u32,
    last_improvement: Option<f64>,
}

impl Loop<'_> {
    fn total(&self) -> i64 {
        self.prior.draft_pusd + self.prior.revision_pusd + self.spent_now
    }

    /// Why the loop stops before another revision under `s`, if it does.
    fn stop_before_revising(&self, s: &LoopSettings, best: &Draft) -> Option<StopReason> {
        if self.ports.is_cancelled() {
            return Some(StopReason::Cancelled);
        }
        match s.policy {
            LoopPolicy::Off => return Some(StopReason::PolicyOff),
            LoopPolicy::Manual => return Some(StopReason::PolicyManual),
            LoopPolicy::Auto => {}
        }
        // The threshold counts only for a draft the claim checks do not block.
        if best.eval.score >= s.threshold && best.eval.blocking() == 0 {
            return Some(StopReason::ThresholdMet);
        }
        if self.iteration >= s.max_iterations {
            return Some(StopReason::MaxIterations);
        }
        if self.last_improvement.is_some_and(|i| i < s.min_improvement) {
            return Some(StopReason::Plateau);
        }
        None
    }

    /// The first draft, scored; `None` when the run was cancelled first.
    async fn first_draft(&mut self, s: &LoopSettings) -> Result<Option<Draft>, LlmError> {
        event(
            self.ports,
            "iteration_started",
            json!({ "iteration": 1, "stage": "draft", "writer": self.writer.name(), "policy": s.policy.as_str() }),
        )
        .await?;
        let composed = self.writer.compose(&self.brief, Task::Draft, 1);
        let first = self
            .writer
            .write(self.ports, self.brief, &composed, None)
            .await?;
        self.spent_now += first.cost_pusd;
        let Drafted::Text {
            markdown,
            reused,
            max_tokens,
            truncated,
        } = first.value
        else {
            event(
                self.ports,
                "quality_loop_stopped",
                json!({ "reason": StopReason::Cancelled.as_str(), "iterations": 0 }),
            )
            .await?;
            return Ok(None);
        };
        self.reused_calls += u32::from(reused);
        let eval = score(&markdown, self.brief.sources, truncated, max_tokens).await;
        self.scores.push(eval.score);
        event(
            self.ports,
            "iteration_scored",
            json!({
                "iteration": 1, "score": eval.score, "best_score": eval.score, "issues": eval.issues.len(),
                "blocking": eval.blocking(),
                "cost_usd": to_usd(first.cost_pusd), "cost_so_far_usd": to_usd(self.total()),
                "revision_spent_usd": to_usd(self.revision_pusd),
                "remaining_usd": to_usd((s.max_additional_cost_pusd - self.revision_pusd).max(0)),
                "reused": reused, "truncated": truncated, "max_tokens": max_tokens,
            }),
        )
        .await?;
        Ok(Some(Draft {
            markdown,
            eval,
            iteration: 1,
        }))
    }

    /// One revision of `best` under `s`: `Ok(None)` when it was written and scored (and
    /// `best` updated if it scored higher), `Ok(Some(reason))` when the loop stops instead.
    async fn revise(
        &mut self,
        s: &LoopSettings,
        best: &mut Draft,
    ) -> Result<Option<StopReason>, LlmError> {
        let cap = s.max_additional_cost_pusd;
        let remaining = cap - self.revision_pusd;
        let task = Task::Revise {
            previous: &best.markdown,
            issues: &best.eval.issues,
        };
        let composed = self.writer.compose(&self.brief, task, self.iteration + 1);
        if let Err(worst_case_pusd) = self.writer.plan(&composed, remaining) {
            let next = self.iteration + 1;
            cap_reached(self.ports, next, self.revision_pusd, cap, worst_case_pusd).await?;
            return Ok(Some(StopReason::CostCap));
        }
        self.iteration += 1;
        event(
            self.ports,
            "iteration_started",
            json!({
                "iteration": self.iteration, "stage": "revision", "revising_iteration": best.iteration,
                "issues": best.eval.issues.len(), "threshold": s.threshold,
                "max_iterations": s.max_iterations, "cap_usd": to_usd(cap),
                "min_improvement": s.min_improvement,
                "revision_spent_usd": to_usd(self.revision_pusd), "remaining_usd": to_usd(remaining),
            }),
        )
        .await?;
        let got = match self
            .writer
            .write(self.ports, self.brief, &composed, Some(remaining))
            .await
        {
            Ok(got) => got,
            Err(LlmError::Provider {
                message, cost_pusd, ..
            }) => {
                // The draft already paid for stays the best; the failure ends the loop, not
                // the run (verification then judges the best draft as it would any other).
                self.spent_now += cost_pusd;
                self.revision_pusd += cost_pusd;
                event(
                    self.ports,
                    "revision_failed",
                    json!({
                        "iteration": self.iteration, "error": message,
                        "cost_usd": to_usd(cost_pusd), "kept_iteration": best.iteration,
                        "kept_score": best.eval.score,
                    }),
                )
                .await?;
                return Ok(Some(StopReason::RevisionFailed));
            }
            Err(e) => return Err(e),
        };
        self.spent_now += got.cost_pusd;
        self.revision_pusd += got.cost_pusd;
        let (markdown, reused, max_tokens, truncated) = match got.value {
            Drafted::Text {
                markdown,
                reused,
                max_tokens,
                truncated,
            } => (markdown, reused, max_tokens, truncated),
            Drafted::Cancelled => return Ok(Some(StopReason::Cancelled)),
            Drafted::CapReached { worst_case_pusd } => {
                // Retries inside the call spent what was left.
                self.iteration -= 1;
                let next = self.iteration + 1;
                cap_reached(self.ports, next, self.revision_pusd, cap, worst_case_pusd).await?;
                return Ok(Some(StopReason::CostCap));
            }
        };
        self.reused_calls += u32::from(reused);
        let eval = score(&markdown, self.brief.sources, truncated, max_tokens).await;
        let improvement = eval.score - best.eval.score;
        self.scores.push(eval.score);
        self.last_improvement = Some(improvement);
        let (score, issues, blocking) = (eval.score, eval.issues.len(), eval.blocking());
        // Fewer blocking findings first, then the score: a higher score never buys a harmful
        // sentence back in.
        let better = blocking < best.eval.blocking()
            || (blocking == best.eval.blocking() && score > best.eval.score);
        if better {
            *best = Draft {
                markdown,
                eval,
                iteration: self.iteration,
            };
        }
        event(
            self.ports,
            "iteration_scored",
            json!({
                "iteration": self.iteration, "score": score, "best_score": best.eval.score,
                "best_iteration": best.iteration, "improvement": (improvement * 100.0).round() / 100.0,
                "issues": issues, "blocking": blocking, "cost_usd": to_usd(got.cost_pusd),
                "cost_so_far_usd": to_usd(self.total()),
                "revision_spent_usd": to_usd(self.revision_pusd),
                "remaining_usd": to_usd((cap - self.revision_pusd).max(0)),
                "reused": reused, "truncated": truncated, "max_tokens": max_tokens,
            }),
        )
        .await?;
        Ok(None)
    }
}

/// Runs the loop for one run attempt.
pub async fn run(
    ports: RunPorts<'_>,
    writer: &dyn Writer,
    brief: Brief<'_>,
    settings: &HotLoopSettings,
    prior: PriorSpend,
) -> Result<LoopEnd, LlmError> {
    let mut l = Loop {
        ports,
        writer,
        brief,
        prior,
        spent_now: 0,
        revision_pusd: prior.revision_pusd,
        reused_calls: 0,
        scores: Vec::new(),
        iteration: 1,
        last_improvement: None,
    };
    let Some(mut best) = l.first_draft(&current(settings)).await? else {
        return Ok(LoopEnd::Cancelled);
    };
    let mut cap;
    let reason = loop {
        // The settings in force for this iteration (a SIGHUP may have changed them).
        let s = current(settings);
        cap = s.max_additional_cost_pusd;
        if let Some(reason) = l.stop_before_revising(&s, &best) {
            break reason;
        }
        if let Some(reason) = l.revise(&s, &mut best).await? {
            break reason;
        }
    };
    event(
        ports,
        "quality_loop_stopped",
        json!({
            "reason": reason.as_str(), "iterations": l.scores.len(), "best_iteration": best.iteration,
            "best_score": best.eval.score, "scores": l.scores,
            "revision_spent_usd": to_usd(l.revision_pusd), "cap_usd": to_usd(cap),
            "cost_so_far_usd": to_usd(l.total()),
        }),
    )
    .await?;
    if reason == StopReason::Cancelled {
        return Ok(LoopEnd::Cancelled);
    }
    Ok(LoopEnd::Finished(Box::new(LoopResult {
        iterations: l.scores.len() as u32,
        best,
        stop_reason: reason,
        total_pusd: l.total(),
        scores: l.scores,
        revision_pusd: l.revision_pusd,
        cap_pusd: cap,
        reused_calls: l.reused_calls,
    })))
}

#[cfg(test)]
mod tests {
    //! The cap's property: over many random prices, usages, failures and caps, what revisions
    //! spend never exceeds the cap. The provider is an in-memory fake that behaves as the APIs
    //! promise: input tokens at most the prompt's bytes (byte-level tokenizers), output at most
    //! `max_tokens`, failures with no usage.
    use super::*;
    use crate::llm::prices::Price;
    use crate::llm::ApiKey;
    use crate::llm::{CallError, ChatRequest, Completion, Llm, Provider, RetryPolicy};
    use crate::llm_writer::LlmWriter;
    use crate::ports::Detached;
    use futures_util::future::BoxFuture;
    use std::sync::Mutex;
    use std::time::Duration;

    struct RandomProvider {
        rng: Mutex<fastrand::Rng>,
        price: Price,
        fail_one_in: u32,
        /// What revision calls cost, summed by the provider itself.
        revision_spend: Mutex<i64>,
    }

    impl Provider for RandomProvider {
        fn name(&self) -> &'static str {
            "openai"
        }
        fn model(&self) -> &str {
            "fake"
        }
        fn send<'a>(
            &'a self,
            req: &'a ChatRequest,
            _key: Option<&'a ApiKey>,
        ) -> BoxFuture<'a, Result<Completion, CallError>> {
            Box::pin(async move {
                let mut rng = self.rng.lock().unwrap();
                if self.fail_one_in > 0 && rng.u32(0..self.fail_one_in) == 0 {
                    return Err(CallError::transient("fake 503".into()));
                }
                let bytes = (req.system.len() + req.user.len()) as u64;
                let tokens_in = rng.u64(bytes / 8..=bytes);
                let tokens_out = rng.u64(0..=u64::from(req.max_tokens));
                if req.user.contains("<draft>") {
                    *self.revision_spend.lock().unwrap() += self.price.cost(tokens_in, tokens_out);
                }
                Ok(Completion {
                    text: "## Indikationer\n\nAdrenalin gives ved anafylaksi [S:SRC0001]\n".into(),
                    tokens_in,
                    tokens_out,
                    truncated: false,
                })
            })
        }
    }

    #[test]
    fn revisions_never_spend_more_than_the_cap() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let sources = vec![EvidenceSource {
            year: Some(2024),
            ..EvidenceSource::whole(
                "SRC0001",
                "Anafylaksi",
                "danish_guideline",
                1000,
                &"Adrenalin gives ved anafylaksi i låret. Patienten monitoreres.".repeat(20),
            )
        }];
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        let mut stops = std::collections::BTreeMap::<&str, u32>::new();
        for case in 0..600 {
            // Prices from free (local models) through 0.001 and 0.1 to 100 USD per million
            // tokens; caps from nothing to 0.5 USD.
            let scale = [0, 1_000, 100_000, 100_000_000][rng.usize(0..4)];
            let price = Price {
                input_pico_per_token: rng.i64(0..=scale),
                output_pico_per_token: rng.i64(0..=scale),
            };
            let cap = rng.i64(0..=500_000_000_000);
            let max_tokens = rng.u32(1..=8192);
            let provider = Arc::new(RandomProvider {
                rng: Mutex::new(fastrand::Rng::with_seed(case)),
                price,
                fail_one_in: [0, 3, 5, 10][rng.usize(0..4)],
                revision_spend: Mutex::new(0),
            });
            let writer = LlmWriter {
                llm: Llm {
                    provider: provider.clone(),
                    price,
                    keys: Arc::new(|| Box::pin(async { Ok(None) })),
                    known_keys: crate::llm::no_other_keys(),
                    retry: RetryPolicy {
                        max_retries: 3,
                        base_delay: Duration::ZERO,
                        max_delay: Duration::ZERO,
                        window: Duration::from_secs(60),
                    },
                    max_tokens,
                    min_output_tokens: rng.u32(1..=max_tokens),
                    slots: crate::llm::Slots::new(1),
                },
                evidence_tokens: crate::llm_writer::DEFAULT_EVIDENCE_TOKENS,
            };
            let settings = Arc::new(RwLock::new(LoopSettings {
                policy: LoopPolicy::Auto,
                threshold: 11.0,
                max_iterations: 40,
                max_additional_cost_pusd: cap,
                min_improvement: 0.0,
            }));
            let brief = Brief {
                title: "Anafylaksi",
                context: "",
                sources: &sources,
                ack: None,
                attempt: 1,
            };
            let end = rt.block_on(run(
                Detached::ports(),
                &writer,
                brief,
                &settings,
                PriorSpend::default(),
            ));
            let spent = *provider.revision_spend.lock().unwrap();
            assert!(
                spent <= cap,
                "case {case}: spent {spent} > cap {cap} ({price:?}, max_tokens {max_tokens})"
            );
            match end {
                Ok(LoopEnd::Finished(r)) => {
                    assert_eq!(r.revision_pusd, spent, "case {case}: the loop's tally");
                    *stops.entry(r.stop_reason.as_str()).or_default() += 1;
                }
                // Four failures in a row on the first draft end the run (on a revision they
                // end the loop: revision_failed); what was spent still fits the cap.
                Err(LlmError::Provider { .. }) => *stops.entry("provider_error").or_default() += 1,
                other => panic!("case {case}: {other:?}"),
            }
        }
        // The cases exercised both ways the loop can stop here.
        assert!(
            stops.get("cost_cap").copied().unwrap_or(0) > 100,
            "{stops:?}"
        );
        assert!(
            stops.get("max_iterations").copied().unwrap_or(0) > 10,
            "{stops:?}"
        );
    }

    /// Answers from a script, one entry per HTTP attempt.
    struct Scripted(Mutex<std::collections::VecDeque<Result<Completion, CallError>>>);

    impl Provider for Scripted {
        fn name(&self) -> &'static str {
            "openai"
        }
        fn model(&self) -> &str {
            "fake"
        }
        fn send<'a>(
            &'a self,
            _req: &'a ChatRequest,
            _key: Option<&'a ApiKey>,
        ) -> BoxFuture<'a, Result<Completion, CallError>> {
            let next = self.0.lock().unwrap().pop_front();
            Box::pin(async move { next.expect("the script ran out") })
        }
    }

    fn sources() -> Vec<EvidenceSource> {
        vec![EvidenceSource::whole(
            "SRC0001",
            "Anafylaksi",
            "danish_guideline",
            1000,
            "Adrenalin gives ved anafylaksi i låret. Patienten monitoreres.",
        )]
    }

    fn ok(text: &str, truncated: bool) -> Result<Completion, CallError> {
        Ok(Completion {
            text: text.into(),
            tokens_in: 100,
            tokens_out: 50,
            truncated,
        })
    }

    fn refused(message: &str) -> Result<Completion, CallError> {
        Err(CallError::terminal(message.into()))
    }

    /// Runs the loop (auto, at most `iterations` drafts) over a scripted provider.
    fn run_script(
        script: Vec<Result<Completion, CallError>>,
        iterations: u32,
    ) -> (Result<LoopEnd, LlmError>, usize) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let n = script.len();
        let provider = Arc::new(Scripted(Mutex::new(script.into())));
        let writer = LlmWriter {
            llm: Llm {
                provider: provider.clone(),
                price: Price {
                    input_pico_per_token: 1_000,
                    output_pico_per_token: 1_000,
                },
                keys: Arc::new(|| Box::pin(async { Ok(None) })),
                known_keys: crate::llm::no_other_keys(),
                retry: RetryPolicy {
                    max_retries: 0,
                    base_delay: Duration::ZERO,
                    max_delay: Duration::ZERO,
                    window: Duration::from_secs(60),
                },
                max_tokens: 512,
                min_output_tokens: 16,
                slots: crate::llm::Slots::new(1),
            },
            evidence_tokens: crate::llm_writer::DEFAULT_EVIDENCE_TOKENS,
        };
        let settings = Arc::new(RwLock::new(LoopSettings {
            policy: LoopPolicy::Auto,
            threshold: 11.0,
            max_iterations: iterations,
            max_additional_cost_pusd: 1_000_000_000,
            min_improvement: -100.0,
        }));
        let sources = sources();
        let brief = Brief {
            title: "Anafylaksi",
            context: "",
            sources: &sources,
            ack: None,
            attempt: 1,
        };
        let end = rt.block_on(run(
            Detached::ports(),
            &writer,
            brief,
            &settings,
            PriorSpend::default(),
        ));
        let used = n - provider.0.lock().unwrap().len();
        (end, used)
    }

    const GOOD: &str = "## Indikationer\n\nAdrenalin gives ved anafylaksi i låret. [S:SRC0001]\n";

    #[test]
    fn a_failed_revision_ends_the_loop_and_keeps_the_draft_already_paid_for() {
        let (end, used) = run_script(
            vec![
                ok(GOOD, false),
                refused("the request exceeds the available context size"),
            ],
            3,
        );
        assert_eq!(used, 2);
        let Ok(LoopEnd::Finished(r)) = end else {
            panic!("{end:?}")
        };
        assert_eq!(r.stop_reason, StopReason::RevisionFailed);
        assert_eq!(r.best.iteration, 1);
        assert!(
            r.best.markdown.contains("Adrenalin gives"),
            "{}",
            r.best.markdown
        );
        assert_eq!(r.scores.len(), 1);
        // The draft was paid for (150 tokens at 1000 pico-USD each); the refusal cost nothing.
        assert_eq!(r.total_pusd, 150_000);
    }

    #[test]
    fn a_failed_first_draft_still_fails_the_run() {
        let (end, _) = run_script(vec![refused("no such model")], 3);
        assert!(
            matches!(&end, Err(LlmError::Provider { message, .. }) if message.contains("no such model")),
            "{end:?}"
        );
    }

    #[test]
    fn a_truncated_draft_blocks_and_the_revision_is_told() {
        // The truncated draft scores as well as the full one, but only the full one may be best.
        let (end, _) = run_script(vec![ok(GOOD, true), ok(GOOD, false)], 2);
        let Ok(LoopEnd::Finished(r)) = end else {
            panic!("{end:?}")
        };
        assert_eq!(r.best.iteration, 2, "{:?}", r.best.eval.issues);
        assert!(!r.best.eval.issues.iter().any(|i| i.contains("(truncated)")));

        // Alone, it is the best draft but blocks release, and says why first.
        let (end, _) = run_script(vec![ok(GOOD, true)], 1);
        let Ok(LoopEnd::Finished(r)) = end else {
            panic!("{end:?}")
        };
        assert!(r.best.eval.blocking() >= 1);
        assert!(
            r.best.eval.issues[0].starts_with("BLOCKING (truncated)")
                && r.best.eval.issues[0].contains("max_tokens = 512"),
            "{:?}",
            r.best.eval.issues
        );
        let v = r.best.eval.verification.as_ref().unwrap();
        assert_eq!(v.findings[0].kind.name(), "truncated");
    }

    #[test]
    fn a_draft_without_the_outline_is_a_blocking_finding_not_an_empty_procedure() {
        let prose = "Adrenalin gives ved anafylaksi i låret. Patienten monitoreres bagefter.";
        let (end, _) = run_script(vec![ok(prose, false)], 1);
        let Ok(LoopEnd::Finished(r)) = end else {
            panic!("{end:?}")
        };
        assert!(r.best.markdown.contains(prose), "{}", r.best.markdown);
        assert!(r.best.eval.blocking() >= 1);
        assert!(
            r.best
                .eval
                .issues
                .iter()
                .any(|i| i.starts_with("BLOCKING (missing_outline)")),
            "{:?}",
            r.best.eval.issues
        );
    }
}
