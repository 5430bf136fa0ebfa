//! The writer seam: the quality loop asks a [`Writer`] for a first draft and for revisions of
//! the best draft so far, given the evaluator's issues. Two writers: the deterministic offline
//! writer ([`crate::offline::OfflineWriter`], the default, free) and
//! [`crate::llm_writer::LlmWriter`], which asks a model through
//! [`Llm::call`](crate::llm::Llm::call) within the budget it is given.
//!
//! A step is composed once ([`Writer::compose`]: the prompts, for a model) and then planned
//! against the budget and written from the same composition, so a revision's prompt is never
//! built twice.

use crate::evidence::{AckNotice, EvidenceSource};
use crate::llm::{LlmError, Spent, Stage};
use crate::ports::RunPorts;
use futures_util::future::LocalBoxFuture;

/// What every draft of one run is written from.
#[derive(Debug, Clone, Copy)]
pub struct Brief<'a> {
    pub title: &'a str,
    pub context: &'a str,
    pub sources: &'a [EvidenceSource],
    pub ack: Option<&'a AckNotice>,
    /// The run's attempt (recorded with each call).
    pub attempt: u32,
}

/// What to write: the first draft, or a revision of `previous` that addresses `issues`.
#[derive(Debug, Clone, Copy)]
pub enum Task<'a> {
    Draft,
    Revise {
        previous: &'a str,
        issues: &'a [String],
    },
}

/// A writer's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Drafted {
    Text {
        markdown: String,
        /// Replayed from an earlier attempt of the run (not paid for again).
        reused: bool,
        /// The output limit the call was given (0: no call was made).
        max_tokens: u32,
        /// The model stopped at `max_tokens`.
        truncated: bool,
    },
    /// The next call does not fit in the budget.
    CapReached {
        worst_case_pusd: i64,
    },
    Cancelled,
}

/// One step of the loop, composed: what the writer will send (for a model, its prompts).
#[derive(Debug, Clone, PartialEq)]
pub struct Composed {
    pub stage: Stage,
    /// 1 for the first draft, 2.. for revisions.
    pub iteration: u32,
    /// The model's system and user prompts (empty for the offline writer).
    pub system: String,
    pub user: String,
}

/// Writes drafts of a procedure.
pub trait Writer: Send + Sync {
    /// How manifests name it (`offline-v1`, `openai:gpt-4o`).
    fn name(&self) -> String;

    /// Composes iteration `iteration` (1 = first draft) of `task`.
    fn compose(&self, brief: &Brief<'_>, task: Task<'_>, iteration: u32) -> Composed;

    /// Whether the composed step fits in `budget` pico-USD: the output limit it would get, or
    /// the worst case of its smallest useful call when it does not fit.
    fn plan(&self, step: &Composed, budget: i64) -> Result<u32, i64>;

    /// Writes the composed step within `budget` pico-USD (None: no limit).
    fn write<'a>(
        &'a self,
        ports: RunPorts<'a>,
        brief: Brief<'a>,
        step: &'a Composed,
        budget: Option<i64>,
    ) -> LocalBoxFuture<'a, Result<Spent<Drafted>, LlmError>>;
}

impl Task<'_> {
    pub fn stage(&self) -> Stage {
        match self {
            Task::Draft => Stage::Draft,
            Task::Revise { .. } => Stage::Revision,
        }
    }
}
