//! Language-model providers and the one way the pipeline calls them: [`Llm::call`].
//!
//! A call is planned against what its budget has left (the worst case — input counted
//! conservatively, plus `max_tokens` of output at the model's price — must fit, and
//! `max_tokens` shrinks to fit), replayed if an earlier attempt of the run already finished the
//! same step, retried with backoff and jitter on 429, 5xx, timeouts and resets (honouring
//! `Retry-After`), and every HTTP attempt is recorded with its usage and cost in the store,
//! failed ones included.
//!
//! Input tokens are counted as the prompt's UTF-8 bytes plus [`MESSAGE_OVERHEAD_TOKENS`]:
//! every tokenizer these APIs use (byte-level BPE) turns at least one byte into each token, so
//! the estimate is never below what the provider will report. The cap also relies on the
//! provider never returning more than `max_tokens` of output, which the APIs guarantee.

pub mod anthropic;
pub mod openai;
pub mod prices;

use crate::library::sha256_hex;
use crate::money::to_usd;
use crate::ports::{CallOutcome, CallRecord, PortError, RunPorts};
use futures_util::future::BoxFuture;
use prices::Price;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// A provider's API key. `Debug` and `Display` print `***`; the bytes are wiped when dropped.
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    pub fn new(key: String) -> ApiKey {
        ApiKey(Zeroizing::new(key))
    }

    /// The key itself, for the request header and for redaction only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Tokens added to the byte count of a prompt for the chat framing of its messages.
pub const MESSAGE_OVERHEAD_TOKENS: u64 = 64;

/// Longest provider message kept in an error.
const MAX_ERROR_CHARS: usize = 400;

/// One chat exchange: a system prompt, a user prompt, and the output limit.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub system: String,
    pub user: String,
    pub max_tokens: u32,
}

/// What a provider answered, with the usage it reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// The output stopped at `max_tokens`.
    pub truncated: bool,
}

/// Why one HTTP attempt failed. The message never contains the API key (see [`redact`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub message: String,
    /// 429, 5xx, timeouts and connection failures are retried; other 4xx are not.
    pub retryable: bool,
    /// What the provider asked us to wait (`retry-after-ms` or `Retry-After`).
    pub retry_after: Option<Duration>,
    /// The request reached the server but its answer was cut (a timeout, a broken stream):
    /// the server may have generated, and a paid provider billed, output nobody received.
    pub cut: Option<Cut>,
    /// No answer came in time (`llm_timeout_s`, `llm_idle_timeout_s`): retried at most once.
    pub timed_out: bool,
}

/// What a cut answer had reported before it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cut {
    /// Input tokens, when the stream had said (Anthropic's `message_start`).
    pub tokens_in: Option<u64>,
    /// Output chunks received (each carries at least one token).
    pub tokens_out: u64,
}

impl CallError {
    pub fn terminal(message: String) -> Self {
        CallError {
            message,
            retryable: false,
            retry_after: None,
            cut: None,
            timed_out: false,
        }
    }

    /// A failure that may clear up (a connection refused, a reset).
    pub fn transient(message: String) -> Self {
        CallError {
            retryable: true,
            ..CallError::terminal(message)
        }
    }
}

/// How long one attempt may wait for its answer. Answers are streamed, so a slow but steady
/// model finishes and a stuck one is cut quickly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// From sending the request to the answer's first token: connecting, the server's queue
    /// and its reading of the prompt (`llm_timeout_s`).
    pub first_token: Duration,
    /// Between two chunks of the answer once it has started (`llm_idle_timeout_s`).
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            first_token: Duration::from_secs(120),
            idle: Duration::from_secs(30),
        }
    }
}

/// A model behind an HTTP API. One `send` is one HTTP request; retries are [`Llm`]'s.
pub trait Provider: Send + Sync {
    /// `openai` or `anthropic` (recorded with each call).
    fn name(&self) -> &'static str;
    fn model(&self) -> &str;
    fn send<'a>(
        &'a self,
        req: &'a ChatRequest,
        key: Option<&'a ApiKey>,
    ) -> BoxFuture<'a, Result<Completion, CallError>>;
}

/// Finds the API key at call time (the secret store, then the environment), so a key put over
/// HTTP is used by the next call. `Err` when a stored key exists but cannot be used.
pub type KeyLookup =
    Arc<dyn Fn() -> BoxFuture<'static, Result<Option<ApiKey>, String>> + Send + Sync>;

/// Every API key the daemon knows (stored or in the environment, for any provider): a
/// provider's message is checked against all of them, not only the key of this call.
pub type KnownKeys = Arc<dyn Fn() -> BoxFuture<'static, Vec<ApiKey>> + Send + Sync>;

/// A [`KnownKeys`] that knows none beyond the call's own (tests, tools).
pub fn no_other_keys() -> KnownKeys {
    Arc::new(|| Box::pin(async { Vec::new() }))
}

/// How failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff; it doubles per retry, with jitter, up to `max_delay`.
    pub base_delay: Duration,
    /// The longest wait between attempts; a `Retry-After` beyond it fails the call instead.
    pub max_delay: Duration,
    /// Retries stop once the next one would start later than this after the first attempt
    /// (`llm_retry_window_s`): long enough for a model server to restart.
    pub window: Duration,
}

/// The pipeline's model: a provider, its price, its key and its limits.
pub struct Llm {
    pub provider: Arc<dyn Provider>,
    pub price: Price,
    pub keys: KeyLookup,
    /// Every key to keep out of provider messages.
    pub known_keys: KnownKeys,
    pub retry: RetryPolicy,
    /// `max_tokens` of a call with room to spare.
    pub max_tokens: u32,
    /// A call that cannot be given at least this many output tokens is not made.
    pub min_output_tokens: u32,
    /// The provider's call slots (`llm_max_concurrent_calls`), shared by every job.
    pub slots: Arc<Slots>,
}

/// Calls in flight to one provider, at most `limit` at once: a job waits for a slot instead of
/// piling requests onto a server that would only queue them (and keep generating answers
/// nobody waits for once their callers time out). The counters are what `/metrics` shows.
///
/// The limit can change while calls are in flight ([`Slots::resize`], on SIGHUP): a larger one
/// lets waiting calls in at once; a smaller one takes free slots away now and the rest as the
/// calls holding them finish (its `debt`), so calls in flight keep their slot and no call that
/// starts afterwards finds more than the new limit in flight.
pub struct Slots {
    semaphore: tokio::sync::Semaphore,
    limit: std::sync::atomic::AtomicUsize,
    /// Slots a smaller limit still has to take back: forgotten as their holders finish.
    debt: std::sync::atomic::AtomicUsize,
    /// Calls holding a slot now.
    held: std::sync::atomic::AtomicUsize,
    /// Resizes one at a time.
    resizing: std::sync::Mutex<()>,
    /// Calls waiting for a slot now.
    pub waiting: std::sync::atomic::AtomicI64,
    /// Calls that had to wait, and for how long in all (milliseconds).
    pub waits_total: std::sync::atomic::AtomicU64,
    pub wait_ms_total: std::sync::atomic::AtomicU64,
}

/// One call's slot; given back (or, while a smaller limit is owed, given up) when dropped.
pub struct Slot<'a> {
    permit: Option<tokio::sync::SemaphorePermit<'a>>,
    slots: &'a Slots,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.slots.held.fetch_sub(1, SeqCst);
        let owed = self
            .slots
            .debt
            .fetch_update(SeqCst, SeqCst, |d| d.checked_sub(1))
            .is_ok();
        if let Some(p) = self.permit.take() {
            if owed {
                p.forget();
            }
        }
    }
}

impl Slots {
    pub fn new(limit: usize) -> Arc<Slots> {
        let limit = limit.max(1);
        Arc::new(Slots {
            semaphore: tokio::sync::Semaphore::new(limit),
            limit: limit.into(),
            debt: Default::default(),
            held: Default::default(),
            resizing: Default::default(),
            waiting: Default::default(),
            waits_total: Default::default(),
            wait_ms_total: Default::default(),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Calls holding a slot now (during a shrink, possibly more than [`Slots::limit`] until
    /// they finish).
    pub fn in_use(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sets the limit for calls that start from now on; returns the one it replaces.
    pub fn resize(&self, limit: usize) -> usize {
        use std::sync::atomic::Ordering::SeqCst;
        let limit = limit.max(1);
        let _one = self.resizing.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.limit.swap(limit, SeqCst);
        if limit > old {
            // Growing first pays back what an earlier shrink still owes.
            let mut more = limit - old;
            let _ = self.debt.fetch_update(SeqCst, SeqCst, |d| {
                let paid = d.min(more);
                more = limit - old - paid;
                Some(d - paid)
            });
            self.semaphore.add_permits(more);
        } else if limit < old {
            let fewer = old - limit;
            let now = self.semaphore.forget_permits(fewer);
            self.debt.fetch_add(fewer - now, SeqCst);
        }
        old
    }

    /// A slot at once, if one is free.
    fn try_take(&self) -> Option<Slot<'_>> {
        let permit = self.semaphore.try_acquire().ok()?;
        Some(self.held_by(permit))
    }

    /// Waits for a slot.
    async fn take(&self) -> Option<Slot<'_>> {
        let permit = self.semaphore.acquire().await.ok()?;
        Some(self.held_by(permit))
    }

    fn held_by<'a>(&'a self, permit: tokio::sync::SemaphorePermit<'a>) -> Slot<'a> {
        self.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Slot {
            permit: Some(permit),
            slots: self,
        }
    }
}

/// Which step of the run a call is: the first draft, or a revision of the quality loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Draft,
    Revision,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Draft => "draft",
            Stage::Revision => "revision",
        }
    }
}

/// The run step a call belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub stage: Stage,
    /// 1 for the draft, 2.. for revisions.
    pub iteration: u32,
    /// The run's attempt (recorded with the call).
    pub attempt: u32,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CallResult {
    /// A completion. `reused`: an earlier attempt's result, paid for then.
    Done {
        completion: Completion,
        reused: bool,
        max_tokens: u32,
    },
    /// The call does not fit in the budget; `worst_case_pusd` is what its smallest useful
    /// version could cost.
    CapReached { worst_case_pusd: i64 },
    /// The run was cancelled before or during the call.
    Cancelled,
}

/// A call and what it spent (pico-USD), whatever its result.
#[derive(Debug, Clone, PartialEq)]
pub struct Spent<T> {
    pub value: T,
    pub cost_pusd: i64,
    /// HTTP attempts made (0 when reused or refused by the budget).
    pub attempts: u32,
}

/// Why a call failed for good.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The provider refused, or kept failing through every retry. `unavailable`: it kept
    /// failing in ways that clear up (down, overloaded, too slow), so the run may try later.
    #[error("{message}")]
    Provider {
        message: String,
        cost_pusd: i64,
        unavailable: bool,
    },
    /// The call could not be recorded (or the run's history written).
    #[error(transparent)]
    Port(#[from] PortError),
}

/// The prompt's input tokens, counted so that no tokenizer reports more (see the module).
pub fn estimate_input_tokens(system: &str, user: &str) -> u64 {
    (system.len() + user.len()) as u64 + MESSAGE_OVERHEAD_TOKENS
}

/// Plans a call of `input_tokens` against `remaining` pico-USD (None: no limit): the
/// `max_tokens` to send, or the worst case of the smallest useful call when even that does
/// not fit.
pub fn plan(
    price: Price,
    input_tokens: u64,
    remaining: Option<i64>,
    max_tokens: u32,
    min_output_tokens: u32,
) -> Result<u32, i64> {
    let Some(remaining) = remaining else {
        return Ok(max_tokens);
    };
    let input_cost = price.cost(input_tokens, 0);
    let smallest = price.cost(input_tokens, u64::from(min_output_tokens.min(max_tokens)));
    if smallest > remaining {
        return Err(smallest);
    }
    if price.output_pico_per_token == 0 {
        return Ok(max_tokens);
    }
    let affordable = (remaining - input_cost) / price.output_pico_per_token;
    Ok(affordable.clamp(0, i64::from(max_tokens)) as u32)
}

/// What a provider message becomes when it carries a key in a form we cannot cut out.
pub const WITHHELD: &str =
    "(the provider's message was withheld: it contained an API key in an encoded form)";

/// Shortest run of a key's characters cut from a message (case-insensitive). Short enough that
/// a verbatim echo leaves nothing of the key; long enough that ordinary words survive.
const CUT_RUN: usize = 6;
/// Shortest run of a key's letters and digits that, found in any decoding of a message (its
/// percent-decoding, base64 or hex tokens, or its letters and digits run together), withholds
/// the whole message.
const LEAK_RUN: usize = 8;

/// Keeps every key out of a provider message: runs of a key echoed as it is (in any case) are
/// cut out; if any key still shows in an encoded form — base64, percent-encoded, hex, or split
/// into pieces — the whole message is withheld ([`WITHHELD`]).
pub fn redact(text: &str, keys: &[&ApiKey]) -> String {
    let mut out = text.to_string();
    for k in keys {
        out = cut_runs(&out, k.expose());
    }
    if keys.iter().any(|k| leaks(&out, k.expose())) {
        return WITHHELD.to_string();
    }
    out
}

/// `text` with every case-insensitive run of [`CUT_RUN`]+ characters of `key` replaced by `***`.
fn cut_runs(text: &str, key: &str) -> String {
    let key: Vec<char> = key.chars().flat_map(char::to_lowercase).collect();
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    if key.is_empty() {
        return text.to_string();
    }
    let run = CUT_RUN.min(key.len());
    let mut cut = vec![false; chars.len()];
    for w in key.windows(run) {
        for start in 0..lower.len().saturating_sub(run - 1) {
            if lower[start..start + run] == *w {
                cut[start..start + run].iter_mut().for_each(|c| *c = true);
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if cut[i] {
            out.push_str("***");
            while i < chars.len() && cut[i] {
                i += 1;
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Letters and digits only, lower-cased: how pieces of a key look once their separators go.
fn squeeze(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether `text`, in any decoding we know, carries [`LEAK_RUN`] letters and digits of `key`.
fn leaks(text: &str, key: &str) -> bool {
    use base64::Engine;
    let key = squeeze(key);
    if key.len() < LEAK_RUN {
        return !key.is_empty() && squeeze(text).contains(&key);
    }
    let mut forms = vec![text.to_string()];
    forms.push(
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned(),
    );
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    for token in text.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=-_".contains(c))) {
        if token.len() < 12 {
            continue;
        }
        for e in &engines {
            if let Ok(bytes) = e
                .decode(token.trim_end_matches('='))
                .or_else(|_| e.decode(token))
            {
                forms.push(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        if token.len() % 2 == 0 && token.chars().all(|c| c.is_ascii_hexdigit()) {
            let bytes: Vec<u8> = (0..token.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(&token[i..i + 2], 16).ok())
                .collect();
            forms.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    forms.iter().map(|f| squeeze(f)).any(|f| {
        f.len() >= LEAK_RUN && (0..=key.len() - LEAK_RUN).any(|i| f.contains(&key[i..i + LEAK_RUN]))
    })
}

/// The step's identity for replay.
fn step_key(provider: &str, model: &str, step: Step, system: &str, user: &str) -> String {
    let mut h = String::new();
    for part in [
        provider,
        model,
        step.stage.as_str(),
        &step.iteration.to_string(),
        system,
        user,
    ] {
        h.push_str(&part.len().to_string());
        h.push(':');
        h.push_str(part);
    }
    sha256_hex(h.as_bytes())
}

/// The wait before retry `n` (0-based): exponential with jitter in its upper half, at least
/// what the provider asked.
fn backoff(policy: &RetryPolicy, n: u32, retry_after: Option<Duration>) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << n.min(16))
        .min(policy.max_delay);
    let jittered = exp.mul_f64(0.5 + fastrand::f64() * 0.5);
    jittered.max(retry_after.unwrap_or_default())
}

impl Llm {
    pub fn provider_name(&self) -> &'static str {
        self.provider.name()
    }

    pub fn model(&self) -> &str {
        self.provider.model()
    }

    /// Makes (or replays) one step's call. `budget`: what the call may cost at most (pico-USD;
    /// None: no limit). Every HTTP attempt is recorded through the ledger.
    pub async fn call(
        &self,
        ports: RunPorts<'_>,
        step: Step,
        system: &str,
        user: &str,
        budget: Option<i64>,
    ) -> Result<Spent<CallResult>, LlmError> {
        let key = step_key(self.provider.name(), self.model(), step, system, user);
        if let Some(replayed) = self.replay(ports, step, &key).await? {
            return Ok(replayed);
        }
        let input_tokens = estimate_input_tokens(system, user);
        let mut spent: i64 = 0;
        let mut attempts = 0u32;
        let mut timeouts = 0u32;
        let first_attempt = Instant::now();
        let stop = |value, spent, attempts| {
            Ok(Spent {
                value,
                cost_pusd: spent,
                attempts,
            })
        };
        loop {
            if ports.is_cancelled() {
                return stop(CallResult::Cancelled, spent, attempts);
            }
            let max_tokens = match plan(
                self.price,
                input_tokens,
                budget.map(|b| b - spent),
                self.max_tokens,
                self.min_output_tokens,
            ) {
                Ok(m) => m,
                Err(worst_case_pusd) => {
                    return stop(CallResult::CapReached { worst_case_pusd }, spent, attempts)
                }
            };
            let api_key = (self.keys)().await.map_err(|message| LlmError::Provider {
                message,
                cost_pusd: spent,
                unavailable: false,
            })?;
            let known = (self.known_keys)().await;
            let keep_out: Vec<&ApiKey> = api_key.iter().chain(known.iter()).collect();
            let req = ChatRequest {
                system: system.to_string(),
                user: user.to_string(),
                max_tokens,
            };
            let Some(_slot) = self.slot(ports, step).await? else {
                return stop(CallResult::Cancelled, spent, attempts);
            };
            attempts += 1;
            let (sent, cost) = self
                .attempt(ports, step, &key, &req, api_key.as_ref(), &keep_out)
                .await?;
            drop(_slot);
            spent = spent.saturating_add(cost);
            let e = match sent {
                None => return stop(CallResult::Cancelled, spent, attempts),
                Some(Ok(completion)) => {
                    let value = CallResult::Done {
                        completion,
                        reused: false,
                        max_tokens,
                    };
                    return stop(value, spent, attempts);
                }
                Some(Err(e)) => e,
            };
            let message = redact(&e.message, &keep_out);
            timeouts += u32::from(e.timed_out);
            let wait = backoff(&self.retry, attempts - 1, e.retry_after);
            let elapsed = first_attempt.elapsed() + wait;
            if let Some(why) = self.give_up(&e, attempts, timeouts, elapsed) {
                let (provider, model) = (self.provider.name(), self.model());
                return Err(LlmError::Provider {
                    message: format!("{provider} model {model} failed{why}: {message}"),
                    cost_pusd: spent,
                    unavailable: e.retryable,
                });
            }
            tracing::warn!(provider = self.provider.name(), model = %self.model(), attempt = attempts, wait_ms = wait.as_millis() as u64, error = %message, "model call failed; retrying");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ports.cancelled() => {}
            }
        }
    }

    /// The answer an earlier attempt of the run already paid for at this step, if any (and the
    /// `llm_call_reused` event that says so).
    async fn replay(
        &self,
        ports: RunPorts<'_>,
        step: Step,
        key: &str,
    ) -> Result<Option<Spent<CallResult>>, LlmError> {
        let Some(stored) = ports.ledger.reusable(key.to_string()).await? else {
            return Ok(None);
        };
        ports
            .event(
                "llm_call_reused",
                json!({
                    "stage": step.stage.as_str(), "iteration": step.iteration,
                    "call_id": stored.id, "from_attempt": stored.attempt,
                    "tokens_in": stored.tokens_in, "tokens_out": stored.tokens_out,
                    "cost_usd_not_spent_again": to_usd(stored.cost_pusd),
                }),
            )
            .await?;
        Ok(Some(Spent {
            value: CallResult::Done {
                completion: Completion {
                    text: stored.response,
                    tokens_in: stored.tokens_in,
                    tokens_out: stored.tokens_out,
                    truncated: stored.truncated,
                },
                reused: true,
                max_tokens: 0,
            },
            cost_pusd: 0,
            attempts: 0,
        }))
    }

    /// One HTTP attempt, raced against cancellation, and its record in the ledger: what it
    /// answered (None: cancelled in flight) and what it cost.
    async fn attempt(
        &self,
        ports: RunPorts<'_>,
        step: Step,
        key: &str,
        req: &ChatRequest,
        api_key: Option<&ApiKey>,
        keep_out: &[&ApiKey],
    ) -> Result<(Option<Result<Completion, CallError>>, i64), LlmError> {
        let started = Instant::now();
        let sent = tokio::select! {
            r = self.provider.send(req, api_key) => Some(r),
            _ = ports.cancelled() => None,
        };
        let latency_ms = started.elapsed().as_millis() as u64;
        // A call cut after it was sent (a timeout, a broken stream, a cancellation in flight)
        // is recorded at what it may have cost: the input the stream reported (else the
        // conservative estimate) and the whole output limit, since the server may have
        // generated, and a paid provider billed, the rest unseen. Marked as estimated.
        let worst = |cut: Option<Cut>| {
            let c = cut.unwrap_or_default();
            (
                c.tokens_in
                    .unwrap_or_else(|| estimate_input_tokens(&req.system, &req.user)),
                u64::from(req.max_tokens).max(c.tokens_out),
            )
        };
        let (tokens_in, tokens_out, estimated, outcome) = match &sent {
            Some(Ok(c)) => (
                c.tokens_in,
                c.tokens_out,
                false,
                CallOutcome::Ok {
                    response: c.text.clone(),
                },
            ),
            Some(Err(e)) => {
                let error = redact(&e.message, keep_out);
                match e.cut {
                    Some(cut) => {
                        let (i, o) = worst(Some(cut));
                        let error = format!(
                            "{error} [cost estimated: the answer was cut after {} chunk(s); \
                             recorded at the reserved worst case of {o} output tokens]",
                            cut.tokens_out
                        );
                        (i, o, true, CallOutcome::Error { error })
                    }
                    None => (0, 0, false, CallOutcome::Error { error }),
                }
            }
            None => {
                let (i, o) = worst(None);
                (i, o, true, CallOutcome::Cancelled)
            }
        };
        let cost = self.price.cost(tokens_in, tokens_out);
        let truncated = matches!(&sent, Some(Ok(c)) if c.truncated);
        ports
            .ledger
            .record(CallRecord {
                attempt: step.attempt,
                stage: step.stage.as_str(),
                iteration: step.iteration,
                provider: self.provider.name().to_string(),
                model: self.model().to_string(),
                step_key: key.to_string(),
                tokens_in,
                tokens_out,
                cost_pusd: cost,
                latency_ms,
                estimated,
                truncated,
                outcome,
            })
            .await?;
        Ok((sent, cost))
    }

    /// Why a failed attempt is the last (the words the error ends with), or None to retry.
    /// `elapsed`: from the first attempt to when the next one would start.
    fn give_up(
        &self,
        e: &CallError,
        attempts: u32,
        timeouts: u32,
        elapsed: Duration,
    ) -> Option<String> {
        let too_long = e.retry_after.is_some_and(|d| d > self.retry.max_delay);
        if !e.retryable {
            Some(String::new())
        } else if too_long {
            Some(format!(
                " (the provider asked to wait {:.0} s, beyond llm_retry_max_delay_s)",
                e.retry_after.unwrap_or_default().as_secs_f64()
            ))
        } else if e.timed_out && timeouts > 1 {
            // A server too slow twice will be too slow again; each try may cost a generation.
            Some(format!(" (timed out twice, after {attempts} attempts)"))
        } else if attempts > self.retry.max_retries {
            Some(format!(" (after {attempts} attempts)"))
        } else if elapsed > self.retry.window {
            Some(format!(
                " (after {attempts} attempts over {:.0} s, llm_retry_window_s = {:.0})",
                elapsed.as_secs_f64(),
                self.retry.window.as_secs_f64()
            ))
        } else {
            None
        }
    }

    /// Waits for one of the provider's call slots (raced against cancellation: `None`). A wait
    /// is counted, and said in the run's history when it took a while.
    async fn slot(&self, ports: RunPorts<'_>, step: Step) -> Result<Option<Slot<'_>>, LlmError> {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(slot) = self.slots.try_take() {
            return Ok(Some(slot));
        }
        let started = Instant::now();
        self.slots.waiting.fetch_add(1, Relaxed);
        self.slots.waits_total.fetch_add(1, Relaxed);
        let got = tokio::select! {
            slot = self.slots.take() => slot,
            _ = ports.cancelled() => None,
        };
        self.slots.waiting.fetch_sub(1, Relaxed);
        let waited = started.elapsed();
        self.slots
            .wait_ms_total
            .fetch_add(waited.as_millis() as u64, Relaxed);
        if got.is_some() {
            ports
                .event(
                    "llm_slot_waited",
                    json!({
                        "stage": step.stage.as_str(), "iteration": step.iteration,
                        "waited_ms": waited.as_millis() as u64,
                        "llm_max_concurrent_calls": self.slots.limit(),
                    }),
                )
                .await?;
        }
        Ok(got)
    }
}

/// How a provider reads its answer: the events of a streamed one, or a whole JSON body from a
/// server that ignores `stream`.
pub(crate) trait Answer: Default {
    /// Takes one server-sent event; what it added.
    fn feed(&mut self, provider: &str, event: &sse_stream::Sse) -> Result<Fed, CallError>;
    /// What the stream had reported so far, for a cut answer's record.
    fn so_far(&self) -> Cut;
    /// The completed answer, once the stream ended.
    fn finish(self, provider: &str) -> Result<Completion, CallError>;
    /// A whole (non-streamed) JSON answer.
    fn whole(provider: &str, body: &[u8]) -> Result<Completion, CallError>;
}

/// What one event added to an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fed {
    /// Nothing the reader waits for (metadata, pings).
    Nothing,
    /// Output text: the answer has started.
    Text,
    /// The last event: the stream is complete.
    Done,
}

/// Where a request went, for messages that say what to check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub provider: &'static str,
    /// `llm_base_url`, as configured.
    pub base_url: &'a str,
    pub timeouts: Timeouts,
}

/// Sends one streamed request and reads its answer: the first token must come within
/// `first_token`, every later chunk within `idle` of the one before; a failure becomes the
/// [`CallError`] the retry loop judges.
pub(crate) async fn exchange<A: Answer>(
    target: Target<'_>,
    request: reqwest::RequestBuilder,
) -> Result<Completion, CallError> {
    use futures_util::StreamExt;
    let provider = target.provider;
    let t = target.timeouts;
    let started = Instant::now();
    let first_deadline = tokio::time::Instant::now() + t.first_token;
    let resp = match tokio::time::timeout_at(first_deadline, request.send()).await {
        Err(_) => return Err(too_slow(target, started, None)),
        Ok(Err(e)) => return Err(transport_error(target, e).await),
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let streamed = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    if !status.is_success() || !streamed {
        let bytes = match tokio::time::timeout_at(first_deadline, resp.bytes()).await {
            Err(_) => return Err(too_slow(target, started, Some(Cut::default()))),
            Ok(Err(e)) => return Err(broken(provider, e.to_string(), Cut::default())),
            Ok(Ok(b)) => b,
        };
        if !status.is_success() {
            return Err(http_error(provider, status, &headers, &bytes));
        }
        return A::whole(provider, &bytes);
    }
    let body: http::Response<reqwest::Body> = resp.into();
    let mut events = sse_stream::SseStream::new(body.into_body());
    let mut answer = A::default();
    let mut started_text = false;
    loop {
        let deadline = if started_text {
            tokio::time::Instant::now() + t.idle
        } else {
            first_deadline
        };
        let event = match tokio::time::timeout_at(deadline, events.next()).await {
            Err(_) if started_text => return Err(stalled(target, answer.so_far())),
            Err(_) => return Err(too_slow(target, started, Some(answer.so_far()))),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(broken(provider, e.to_string(), answer.so_far())),
            Ok(Some(Ok(event))) => event,
        };
        match answer.feed(provider, &event)? {
            Fed::Nothing => {}
            Fed::Text => started_text = true,
            Fed::Done => break,
        }
    }
    answer.finish(provider)
}

/// An error the server sent inside the stream (`error` events; a chunk with `error`): an
/// overloaded or failing server is retried, anything else is final.
pub(crate) fn stream_error(provider: &str, value: &serde_json::Value) -> CallError {
    let err = value.get("error").unwrap_or(value);
    let field = |name: &str| err.get(name).and_then(|v| v.as_str()).unwrap_or_default();
    let kind = field("type");
    let text: String = format!("{kind}: {}", field("message"))
        .chars()
        .take(MAX_ERROR_CHARS)
        .collect();
    let transient = [
        "overloaded",
        "rate_limit",
        "api_error",
        "server",
        "unavailable",
    ]
    .iter()
    .any(|k| kind.contains(k));
    let message = format!("{provider}: the server stopped the answer with an error: {text}");
    if transient {
        CallError::transient(message)
    } else {
        CallError::terminal(message)
    }
}

/// No first token within `llm_timeout_s`.
fn too_slow(target: Target<'_>, started: Instant, cut: Option<Cut>) -> CallError {
    let waited = started.elapsed().as_secs_f64();
    let what = if cut.is_some() {
        "the server accepted the request but sent no answer"
    } else {
        "no answer to the request"
    };
    CallError {
        message: format!(
            "{}: {what} within llm_timeout_s = {} s (waited {waited:.1} s for the first token at \
             {}); the server may be busy with other requests or slow to read the prompt: raise \
             llm_timeout_s or lower llm_max_concurrent_calls",
            target.provider,
            secs(target.timeouts.first_token),
            target.base_url,
        ),
        retryable: true,
        retry_after: None,
        // A request that got no answer at all may still be queued and generated.
        cut: Some(cut.unwrap_or_default()),
        timed_out: true,
    }
}

/// The answer started, then stopped coming for `llm_idle_timeout_s`.
fn stalled(target: Target<'_>, cut: Cut) -> CallError {
    CallError {
        message: format!(
            "{}: the answer stopped for llm_idle_timeout_s = {} s after {} chunk(s); the model \
             or its server stalled",
            target.provider,
            secs(target.timeouts.idle),
            cut.tokens_out
        ),
        retryable: true,
        retry_after: None,
        cut: Some(cut),
        timed_out: true,
    }
}

/// The answer broke off (the connection closed or the stream was unreadable).
fn broken(provider: &str, why: String, cut: Cut) -> CallError {
    CallError {
        cut: Some(cut),
        ..CallError::transient(format!(
            "{provider}: the answer broke off after {} chunk(s): {why}",
            cut.tokens_out
        ))
    }
}

/// Seconds as a person writes them: `30`, `0.5`.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

/// Reads a provider's error response: 429/408/5xx are retryable. The message is built only
/// from the fields both APIs define (`error.type`, `error.code`, `error.message`), never from
/// the raw body: a proxy's HTML page or an echo of the request stays out of the run's record.
fn http_error(
    provider: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> CallError {
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    let field = |name: &str| -> Option<String> {
        let v = parsed.as_ref()?.get("error")?.get(name)?;
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let kind = field("type").or_else(|| field("code"));
    let text = match (kind, field("message")) {
        (Some(k), Some(m)) => format!("{k}: {m}"),
        (None, Some(m)) => m,
        (Some(k), None) => k,
        (None, None) => "(no error message in the answer)".to_string(),
    };
    let text: String = text.chars().take(MAX_ERROR_CHARS).collect();
    let code = status.as_u16();
    let retryable = code == 429 || code == 408 || status.is_server_error();
    let retry_after = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| {
            let v = headers
                .get(reqwest::header::RETRY_AFTER)?
                .to_str()
                .ok()?
                .trim();
            match v.parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
                Ok(_) => None,
                Err(_) => httpdate::parse_http_date(v).ok().map(|t| {
                    t.duration_since(std::time::SystemTime::now())
                        .unwrap_or_default()
                }),
            }
        });
    CallError {
        message: format!("{provider} answered {code}: {}", text.trim()),
        retryable,
        retry_after,
        cut: None,
        timed_out: false,
    }
}

/// A request that got no HTTP answer. A connection that could not be made names
/// `llm_base_url` and whether anything listens there; both are retried.
async fn transport_error(target: Target<'_>, e: reqwest::Error) -> CallError {
    let provider = target.provider;
    let base = target.base_url;
    if e.is_connect() {
        let listening = listens(base).await;
        return CallError::transient(format!(
            "{provider}: cannot connect to llm_base_url = {base} ({listening}): {}",
            root_cause(&e)
        ));
    }
    if e.is_timeout() {
        // The connect timeout (reqwest's only one here).
        return CallError {
            timed_out: true,
            ..CallError::transient(format!(
                "{provider}: connecting to llm_base_url = {base} timed out; check that the \
                 address is right and reachable"
            ))
        };
    }
    // The request was sent, or partly: the server may be working on it.
    CallError {
        cut: Some(Cut::default()),
        ..CallError::transient(format!(
            "{provider}: the request to llm_base_url = {base} failed: {}",
            root_cause(&e)
        ))
    }
}

/// The innermost cause of an error, which says what happened ("connection refused") where
/// the outer ones say what was tried.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Whether anything accepts TCP connections at the URL's host and port, in words.
async fn listens(base_url: &str) -> String {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return "not a valid URL".into();
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return "no host in the URL".into();
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let probe = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await;
    match probe {
        Ok(Ok(_)) => format!("something listens on {host}:{port} now: it may have just started"),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("nothing listens on {host}:{port}: is the model server running?")
        }
        Ok(Err(e)) => format!("{host}:{port} is not reachable: {e}"),
        Err(_) => format!("{host}:{port} does not answer: a firewall or a wrong address?"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Price = Price {
        input_pico_per_token: 2_500_000,
        output_pico_per_token: 10_000_000,
    };

    #[test]
    fn plan_shrinks_max_tokens_to_what_remains_and_refuses_what_cannot_fit() {
        // 1000 input tokens at 2.5 USD/M = 0.0025 USD; output 10 USD/M.
        assert_eq!(plan(P, 1000, None, 4096, 256), Ok(4096));
        let input = P.cost(1000, 0);
        assert_eq!(
            plan(P, 1000, Some(input + P.cost(0, 5000)), 4096, 256),
            Ok(4096)
        );
        assert_eq!(
            plan(P, 1000, Some(input + P.cost(0, 300)), 4096, 256),
            Ok(300)
        );
        assert_eq!(
            plan(P, 1000, Some(input + P.cost(0, 255)), 4096, 256),
            Err(input + P.cost(0, 256))
        );
        assert!(plan(P, 1000, Some(-5), 4096, 256).is_err());
        let free = Price {
            input_pico_per_token: 0,
            output_pico_per_token: 0,
        };
        assert_eq!(plan(free, 10, Some(0), 4096, 256), Ok(4096));
    }

    #[test]
    fn the_key_never_survives_redaction() {
        let key = ApiKey::new("sk-test-abcdefghijklmnopqrstuvwxyz0123".into());
        let msg = "Incorrect API key provided: sk-test-abcdefghijklmnopqrstuvwxyz0123. Also ...wxyz0123 and sk-test-abcdefgh";
        let out = redact(msg, &[&key]);
        for i in 0..=(key.expose().len() - 8) {
            assert!(!out.contains(&key.expose()[i..i + 8]), "{out}");
        }
        assert!(out.starts_with("Incorrect API key provided: ***"));
    }

    #[test]
    fn the_key_never_survives_in_any_encoding_and_ordinary_messages_do() {
        use base64::Engine;
        let key = ApiKey::new("sk-proj-Q7fLm2ZxW9pRt4VbN8cY1dKe".into());
        let other = ApiKey::new("sk-ant-api03-HJ5kT2mQ9wXz7LpR4vNc".into());
        let k = key.expose();
        let b64 = base64::engine::general_purpose::STANDARD.encode(k);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("key={k}"));
        let pct: String = k.bytes().map(|b| format!("%{b:02X}")).collect();
        let hex: String = k.bytes().map(|b| format!("{b:02x}")).collect();
        let pieces = k
            .chars()
            .collect::<Vec<_>>()
            .chunks(5)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ");
        for echo in [
            format!("invalid key {k}"),
            format!("invalid key {}", k.to_uppercase()),
            format!("bad auth header: Basic {b64}"),
            format!("token {b64url} rejected"),
            format!("key={pct}"),
            format!("hex {hex}"),
            format!("pieces: {pieces}"),
            format!("another key leaked: {}", other.expose()),
        ] {
            let out = redact(&echo, &[&key, &other]);
            for secret in [k, other.expose()] {
                let s = squeeze(secret);
                for i in 0..=(s.len() - 6) {
                    assert!(!squeeze(&out).contains(&s[i..i + 6]), "{echo:?} -> {out:?}");
                }
            }
            assert!(!leaks(&out, k) && !leaks(&out, other.expose()), "{out}");
        }
        // A message without a key is kept word for word.
        let plain = "This model's maximum context length is 1536 tokens; reduce the prompt";
        assert_eq!(redact(plain, &[&key, &other]), plain);
    }

    #[test]
    fn provider_errors_keep_known_fields_only() {
        let headers = reqwest::header::HeaderMap::new();
        let status = reqwest::StatusCode::BAD_GATEWAY;
        let html = b"<html><body>proxy error for Authorization: Bearer sk-abc</body></html>";
        let e = http_error("openai", status, &headers, html);
        assert_eq!(
            e.message,
            "openai answered 502: (no error message in the answer)"
        );
        assert!(e.retryable);
        let body = br#"{"error": {"type": "invalid_request_error", "message": "context too long", "param": "sk-echo"}}"#;
        let e = http_error(
            "anthropic",
            reqwest::StatusCode::BAD_REQUEST,
            &headers,
            body,
        );
        assert_eq!(
            e.message,
            "anthropic answered 400: invalid_request_error: context too long"
        );
        assert!(!e.retryable);
    }

    #[test]
    fn backoff_grows_stays_bounded_and_honours_retry_after() {
        let p = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            window: Duration::from_secs(60),
        };
        for n in 0..10 {
            let d = backoff(&p, n, None);
            let exp = Duration::from_millis(100 * (1 << n.min(16))).min(p.max_delay);
            assert!(d >= exp / 2 && d <= exp, "{n}: {d:?}");
        }
        assert_eq!(
            backoff(&p, 0, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
    }

    /// A smaller limit takes free slots now and held ones as they are given back; a larger one
    /// pays that debt first. Calls in flight keep theirs.
    #[test]
    fn slots_resize_for_calls_that_start_afterwards() {
        let slots = Slots::new(2);
        let a = slots.try_take().unwrap();
        let b = slots.try_take().unwrap();
        assert!(slots.try_take().is_none());
        assert_eq!(slots.resize(1), 2);
        assert_eq!(
            (slots.limit(), slots.in_use()),
            (1, 2),
            "both keep their slot"
        );
        drop(a);
        assert!(
            slots.try_take().is_none(),
            "one is still in flight: the new limit"
        );
        drop(b);
        let c = slots.try_take().unwrap();
        assert!(slots.try_take().is_none());
        assert_eq!(slots.resize(3), 1);
        let d = slots.try_take().unwrap();
        let e = slots.try_take().unwrap();
        assert!(slots.try_take().is_none());
        assert_eq!(slots.in_use(), 3);
        drop((c, d, e));

        // Shrunk while full, then grown before the holders finished: the debt is paid first.
        let slots = Slots::new(2);
        let held = (slots.try_take().unwrap(), slots.try_take().unwrap());
        slots.resize(1);
        slots.resize(3);
        let third = slots.try_take().unwrap();
        assert!(slots.try_take().is_none(), "3 in flight under a limit of 3");
        drop((held, third));
        let all: Vec<_> = (0..3).map(|_| slots.try_take().unwrap()).collect();
        assert!(slots.try_take().is_none());
        assert_eq!(all.len(), 3);
    }
}
