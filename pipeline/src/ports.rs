//! The pipeline's ports: the only ways it reaches the rest of the system. The daemon implements
//! them over the store and the job's lease; tests and benchmarks implement them in memory.
//!
//! - [`Library`]: the evidence library, searched by retrieval. (Ingest only prepares a
//!   [`NewDocument`]; storing it is the caller's.)
//! - [`Ledger`]: the run's model calls and spending, for the cost cap and for replay.
//! - [`Progress`]: the run's history (events) and its cancellation.
//!
//! Typed values cross these traits, never JSON that both sides parse. What a lease, a fencing
//! token or SQL is stays on the other side.

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

/// A failure on the other side of a port. The message is shown as is (it says what to do);
/// `retryable` says whether the run may succeed if tried again later (a database that
/// refused a write because the disk is full, say).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct PortError {
    pub message: String,
    pub retryable: bool,
}

impl PortError {
    pub fn failed(message: impl Into<String>) -> Self {
        PortError {
            message: message.into(),
            retryable: false,
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// A document ready to be stored in the library: validated, normalised and classified.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDocument {
    pub title: String,
    pub url: Option<String>,
    /// A tier id of `etc/evidence_tiers.toml`.
    pub tier: String,
    /// Why the document got its tier (`explicit`, `domain sst.dk`, …).
    pub tier_reason: String,
    pub year: Option<i32>,
    pub publication_type: Option<String>,
    pub text: String,
    /// SHA-256 of `text`, hex: the library keeps one copy of a text.
    pub sha256: String,
    /// Part of the bundled demonstration library.
    pub demo: bool,
    /// What was uploaded (`application/pdf`, `text/markdown`, ...).
    pub media_type: String,
    /// SHA-256 of the original file, when it is kept (PDF, DOCX).
    pub original_sha256: Option<String>,
    pub pages: Option<u32>,
    /// The document split into located passages.
    pub passages: Vec<crate::document::Passage>,
    /// The title's analysed terms, for the index ([`crate::analyze`]).
    pub title_terms: String,
    /// Each passage's analysed heading and text, in the order of `passages`.
    pub passage_terms: Vec<IndexTerms>,
}

/// A passage's analysed heading and text, as the library indexes them, and its features
/// (made by `features::index_terms`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IndexTerms {
    pub heading: String,
    pub text: String,
    /// The passage's features (see the `features` module) by the lexicon in force.
    pub features: u32,
}

/// One term of the library's index as retrieval asks for it: an analysed word (see
/// [`crate::analyze`]), exactly or as a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Term {
    pub text: String,
    pub prefix: bool,
}

/// What a passage (or a title) must contain, over analysed terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Match {
    Term(Term),
    /// These terms in this order, each within a few tokens of the one before
    /// ([`crate::concept::NEAR_SLACK`]).
    Near(Vec<Term>),
    Any(Vec<Match>),
    All(Vec<Match>),
}

/// A document as a search returns it (without its text).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LibraryDocument {
    /// `SRC0001`, the id citations name.
    pub id: String,
    pub title: String,
    pub url: Option<String>,
    pub tier: String,
    pub year: Option<i32>,
    pub demo: bool,
    /// SHA-256 of the document's normalised text (its identity in the library).
    pub sha256: String,
    /// SHA-256 of the original file (PDF, DOCX), kept beside the library.
    pub original_sha256: Option<String>,
    /// The title's analysed terms.
    pub title_terms: String,
    /// How many passages the document has.
    pub passages: u32,
}

/// A passage as the library returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LibraryPassage {
    /// `SRC0001#3`.
    pub id: String,
    pub ord: u32,
    pub heading: String,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    pub text: String,
    /// The heading's and the text's analysed terms.
    pub heading_terms: String,
    pub text_terms: String,
}

/// A passage's place and stored features, without its text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PassageOutline {
    pub ord: u32,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    /// Its features (see the `features` module), if computed; valid when the fingerprint they
    /// come with is the one in force.
    pub features: Option<u32>,
}

/// A passage the library's index matched.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedPassage {
    /// Its document: an index into [`LibraryMatches::documents`].
    pub document: usize,
    pub ord: u32,
    /// Its features (see the `features` module), if computed; valid when
    /// [`LibraryMatches::features`] is the fingerprint in force.
    pub features: Option<u32>,
    /// Bit `i`: its text matched the `i`-th of [`MatchQuery::groups`].
    pub in_text: u32,
    /// Bit `i`: its heading matched the `i`-th group.
    pub in_heading: u32,
    /// It also matched [`MatchQuery::rank`].
    pub ranked: bool,
}

/// What retrieval asks the library's index for: every passage whose heading or text matches
/// one of the groups (unranked: retrieval judges them), which groups in which field, and which
/// of them also carry a rank term.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchQuery {
    /// At most 16.
    pub groups: Vec<Match>,
    pub rank: Option<Match>,
    /// Documents whose title matches, best first, at most this many (in
    /// [`LibraryMatches::titled`]).
    pub titles: Option<(Match, usize)>,
    /// Most passages read per group and field.
    pub limit: usize,
}

/// The passages a [`MatchQuery`] matched, each document once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LibraryMatches {
    pub documents: Vec<LibraryDocument>,
    /// Documents whose title matched [`MatchQuery::titles`], best first.
    pub titled: Vec<LibraryDocument>,
    /// In document then passage order.
    pub passages: Vec<MatchedPassage>,
    /// More passages matched than the limit; the most recently stored were not read.
    pub truncated: bool,
    /// The fingerprint of what computed the stored features (`features::fingerprint`).
    pub features: String,
}

/// The outline of some documents: every passage's place and features.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LibraryOutlines {
    /// Per document asked for, in that order: its passages in order.
    pub documents: Vec<(String, Vec<PassageOutline>)>,
    /// The fingerprint of what computed the stored features.
    pub features: String,
}

/// The evidence library.
pub trait Library: Send + Sync {
    /// Every passage whose heading or text matches (unranked), with its document, and the
    /// documents whose title matches.
    fn matches(&self, query: MatchQuery) -> BoxFuture<'_, PortResult<LibraryMatches>>;
    /// Every passage's place and features of these documents, without their text.
    fn outlines(&self, documents: Vec<String>) -> BoxFuture<'_, PortResult<LibraryOutlines>>;
    /// These passages (document id, passage orders) with their text, in the order asked; with
    /// their analysed terms when `terms` (else those are empty).
    fn passages_at(
        &self,
        wanted: Vec<(String, Vec<u32>)>,
        terms: bool,
    ) -> BoxFuture<'_, PortResult<Vec<(String, LibraryPassage)>>>;
}

/// What the run spent on model calls in earlier attempts (pico-USD), by stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PriorSpend {
    pub draft_pusd: i64,
    pub revision_pusd: i64,
}

/// How a model call ended, as the ledger records it.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// A completion; the text is kept so a later attempt can reuse it.
    Ok { response: String },
    /// The provider refused or failed; the message is already redacted.
    Error { error: String },
    /// The run was cancelled while the call was in flight.
    Cancelled,
}

/// One HTTP attempt at a model, for the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// `draft` or `revision`.
    pub stage: &'static str,
    pub iteration: u32,
    /// The run's attempt.
    pub attempt: u32,
    pub provider: String,
    pub model: String,
    /// The step's identity for replay.
    pub step_key: String,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_pusd: i64,
    pub latency_ms: u64,
    /// The usage is not the provider's: the call was cut (timeout, cancellation) and is
    /// recorded at its reserved worst case.
    pub estimated: bool,
    /// The answer stopped at `max_tokens` (the provider said so).
    pub truncated: bool,
    pub outcome: CallOutcome,
}

/// A finished call of an earlier attempt that this attempt can reuse instead of paying again.
#[derive(Debug, Clone, PartialEq)]
pub struct ReusableCall {
    pub id: i64,
    pub attempt: u32,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_pusd: i64,
    pub response: String,
    /// The stored answer stopped at `max_tokens`: reused, it is still cut.
    pub truncated: bool,
}

/// The run's model calls: every HTTP attempt is recorded here, and what it recorded decides
/// what the run cost.
pub trait Ledger: Send + Sync {
    /// What earlier attempts of the run spent.
    fn prior_spend(&self) -> BoxFuture<'_, PortResult<PriorSpend>>;
    /// A finished call of an earlier attempt with this step key.
    fn reusable(&self, step_key: String) -> BoxFuture<'_, PortResult<Option<ReusableCall>>>;
    /// Records one attempt (with its cost) and its `llm_call` event.
    fn record(&self, call: CallRecord) -> BoxFuture<'_, PortResult<()>>;
}

/// The run's history and its cancellation.
pub trait Progress: Send + Sync {
    /// Appends an event to the run's history (dropped if the run is no longer ours).
    fn event(&self, kind: &'static str, details: Value) -> BoxFuture<'_, PortResult<()>>;
    /// Appends the `retrieved` event and records, with it, which library sources the run
    /// uses and the tier it judges each by (id, tier): a source a run used stays defendable
    /// (it is retired, never erased). By default only the event.
    fn retrieved(
        &self,
        details: Value,
        cited: Vec<(String, String)>,
    ) -> BoxFuture<'_, PortResult<()>> {
        let _ = cited;
        self.event("retrieved", details)
    }
    /// Whether a cancel of the run was requested.
    fn is_cancelled(&self) -> bool;
    /// Resolves when a cancel is requested (never, if none is).
    fn cancelled(&self) -> BoxFuture<'_, ()>;
}

/// The ports one run attempt works through (the library is the pipeline's, shared by all runs).
#[derive(Clone, Copy)]
pub struct RunPorts<'a> {
    pub ledger: &'a dyn Ledger,
    pub progress: &'a dyn Progress,
}

impl RunPorts<'_> {
    pub async fn event(&self, kind: &'static str, details: Value) -> PortResult<()> {
        self.progress.event(kind, details).await
    }

    pub fn is_cancelled(&self) -> bool {
        self.progress.is_cancelled()
    }

    pub async fn cancelled(&self) {
        self.progress.cancelled().await
    }
}

/// Ports for running the pipeline outside the queue (benchmarks, tests): nothing is recorded,
/// nothing was spent before, nobody cancels.
#[derive(Debug, Default, Clone, Copy)]
pub struct Detached;

impl Ledger for Detached {
    fn prior_spend(&self) -> BoxFuture<'_, PortResult<PriorSpend>> {
        Box::pin(async { Ok(PriorSpend::default()) })
    }
    fn reusable(&self, _: String) -> BoxFuture<'_, PortResult<Option<ReusableCall>>> {
        Box::pin(async { Ok(None) })
    }
    fn record(&self, _: CallRecord) -> BoxFuture<'_, PortResult<()>> {
        Box::pin(async { Ok(()) })
    }
}

impl Detached {
    /// Run ports that record nothing.
    pub fn ports() -> RunPorts<'static> {
        RunPorts {
            ledger: &Detached,
            progress: &Detached,
        }
    }
}

impl Progress for Detached {
    fn event(&self, _: &'static str, _: Value) -> BoxFuture<'_, PortResult<()>> {
        Box::pin(async { Ok(()) })
    }
    fn is_cancelled(&self) -> bool {
        false
    }
    fn cancelled(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
}
