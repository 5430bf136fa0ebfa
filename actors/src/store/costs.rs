//! Language-model calls and what they cost.
//!
//! A call is recorded in one write: its `llm_calls` row, the run's totals and the run's
//! `llm_call` event. It is recorded even when the caller lost its lease on the way (the
//! provider was paid all the same); the answer says whether the lease was still held. Costs
//! are integer pico-USD (see [`crate::model::money`]).

use super::runs::lease_state;
use super::{count, Store};
use crate::error::Result;
use crate::model::{money, now_ms};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use serde_json::json;

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// A completion; the text is kept for replay.
    Ok { response: String },
    /// The provider refused or failed (after which the caller may retry).
    Error { error: String },
    /// The run was cancelled while the call was in flight.
    Cancelled,
}

impl CallOutcome {
    fn as_str(&self) -> &'static str {
        match self {
            CallOutcome::Ok { .. } => "ok",
            CallOutcome::Error { .. } => "error",
            CallOutcome::Cancelled => "cancelled",
        }
    }
}

/// One language-model call, as the job reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLlmCall {
    pub run_id: String,
    /// The run's attempt and the lease token the job holds.
    pub attempt: u32,
    pub lease_token: i64,
    /// The lease owner, for the event's actor.
    pub owner: String,
    /// `draft` or `revision`.
    pub stage: String,
    pub iteration: u32,
    pub provider: String,
    pub model: String,
    /// The step's identity for replay (see `migrations/0004_llm_calls.sql`).
    pub step_key: String,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_pusd: i64,
    pub latency_ms: u64,
    /// The usage is the caller's worst-case estimate, not the provider's (a cut call).
    pub estimated: bool,
    /// The answer stopped at `max_tokens`.
    pub truncated: bool,
    pub outcome: CallOutcome,
}

/// A finished call a retried run can reuse.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCall {
    pub id: i64,
    pub attempt: u32,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_pusd: i64,
    pub response: String,
    /// The answer stopped at `max_tokens`.
    pub truncated: bool,
}

/// Which calls `GET /api/costs` aggregates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostQuery {
    /// Unix ms, inclusive; None = from the first call.
    pub from: Option<i64>,
    /// Unix ms, exclusive; None = up to now.
    pub to: Option<i64>,
    /// Most runs listed in `by_run` (the most expensive first).
    pub run_limit: usize,
}

/// Calls, tokens and cost of one group of calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostRow {
    /// The group: a UTC day (`YYYY-MM-DD`), a model, or a run id.
    pub key: String,
    /// For a run: its procedure; for a model: its provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub calls: u64,
    pub failed_calls: u64,
    /// Calls cut after they were sent, counted at their reserved worst case (their share of
    /// `cost_usd` is an estimate, not the provider's usage).
    pub estimated_calls: u64,
    /// Answers that stopped at `max_tokens`.
    pub truncated_calls: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    #[serde(rename = "cost_usd", serialize_with = "money::usd")]
    pub cost_pusd: i64,
}

/// The aggregates of `GET /api/costs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    pub total: CostRow,
    pub by_day: Vec<CostRow>,
    pub by_model: Vec<CostRow>,
    pub by_run: Vec<CostRow>,
}

const COST_COLUMNS: &str = "count(*), \
     coalesce(sum(outcome <> 'ok'), 0), coalesce(sum(tokens_in), 0), \
     coalesce(sum(tokens_out), 0), coalesce(sum(cost_pusd), 0), \
     coalesce(sum(estimated), 0), coalesce(sum(truncated), 0)";

fn cost_row(
    key: String,
    label: Option<String>,
    r: &rusqlite::Row<'_>,
    at: usize,
) -> rusqlite::Result<CostRow> {
    Ok(CostRow {
        key,
        label,
        calls: count(r, at)?,
        failed_calls: count(r, at + 1)?,
        tokens_in: count(r, at + 2)?,
        tokens_out: count(r, at + 3)?,
        cost_pusd: r.get(at + 4)?,
        estimated_calls: count(r, at + 5)?,
        truncated_calls: count(r, at + 6)?,
    })
}

impl Store {
    /// Records one call with the run's totals and its `llm_call` event, in one transaction.
    /// Returns whether the caller still held its lease (the call is recorded either way).
    pub async fn record_llm_call(&self, call: NewLlmCall) -> Result<bool> {
        self.write(move |tx| {
            let now = now_ms();
            let lease = lease_state(tx.conn(), &call.run_id)?;
            let held = lease.status == crate::RunStatus::Running && lease.lease_token == call.lease_token;
            let (response, error) = match &call.outcome {
                CallOutcome::Ok { response } => (Some(response.as_str()), None),
                CallOutcome::Error { error } => (None, Some(error.as_str())),
                CallOutcome::Cancelled => (None, None),
            };
            tx.conn()
                .prepare_cached(
                    "INSERT INTO llm_calls (run_id, attempt, lease_token, stage, iteration, provider, \
                     model, step_key, tokens_in, tokens_out, cost_pusd, latency_ms, outcome, error, \
                     response, at, estimated, truncated) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                )?
                .execute(params![
                    call.run_id,
                    call.attempt,
                    call.lease_token,
                    call.stage,
                    call.iteration,
                    call.provider,
                    call.model,
                    call.step_key,
                    call.tokens_in as i64,
                    call.tokens_out as i64,
                    call.cost_pusd,
                    call.latency_ms as i64,
                    call.outcome.as_str(),
                    error,
                    response,
                    now,
                    call.estimated,
                    call.truncated
                ])?;
            let run_cost: i64 = tx
                .conn()
                .prepare_cached(
                    "UPDATE runs SET cost_pusd = cost_pusd + ?2, llm_calls = llm_calls + 1, \
                     tokens_in = tokens_in + ?3, tokens_out = tokens_out + ?4 WHERE id = ?1 \
                     RETURNING cost_pusd",
                )?
                .query_row(
                    params![call.run_id, call.cost_pusd, call.tokens_in as i64, call.tokens_out as i64],
                    |r| r.get(0),
                )?;
            let mut details = json!({
                "attempt": call.attempt,
                "stage": call.stage,
                "iteration": call.iteration,
                "provider": call.provider,
                "model": call.model,
                "tokens_in": call.tokens_in,
                "tokens_out": call.tokens_out,
                "cost_usd": money::to_usd(call.cost_pusd),
                "run_cost_usd": money::to_usd(run_cost),
                "latency_ms": call.latency_ms,
                "outcome": call.outcome.as_str(),
            });
            if let Some(e) = error {
                details["error"] = json!(e);
            }
            if call.estimated {
                details["estimated"] = json!(true);
            }
            if call.truncated {
                details["truncated"] = json!(true);
            }
            if !held {
                details["lease_lost"] = json!(true);
            }
            tx.event(
                &call.run_id,
                "llm_call",
                lease.status,
                &format!("worker:{}", call.owner),
                details,
                now,
            )?;
            Ok(held)
        })
        .await
    }

    /// The newest finished call of `run_id` with this step key, if any.
    pub async fn reusable_llm_call(
        &self,
        run_id: String,
        step_key: String,
    ) -> Result<Option<StoredCall>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT id, attempt, tokens_in, tokens_out, cost_pusd, response, truncated FROM llm_calls \
                     WHERE run_id = ?1 AND step_key = ?2 AND outcome = 'ok' ORDER BY id DESC LIMIT 1",
                )?
                .query_row([run_id, step_key], |r| {
                    Ok(StoredCall {
                        id: r.get(0)?,
                        attempt: r.get(1)?,
                        tokens_in: count(r, 2)?,
                        tokens_out: count(r, 3)?,
                        cost_pusd: r.get(4)?,
                        response: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                        truncated: r.get(6)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    /// What the run's calls cost over all its attempts (pico-USD): (first draft, revisions).
    pub async fn llm_spend(&self, run_id: String) -> Result<(i64, i64)> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT coalesce(sum(cost_pusd) FILTER (WHERE stage = 'draft'), 0), \
                     coalesce(sum(cost_pusd) FILTER (WHERE stage = 'revision'), 0) \
                     FROM llm_calls WHERE run_id = ?1",
                )?
                .query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?)
        })
        .await
    }

    /// Calls, tokens and cost in a time window: in total, by UTC day, by model and by run.
    pub async fn costs(&self, q: CostQuery) -> Result<CostReport> {
        self.read(move |conn| {
            let from = q.from.unwrap_or(i64::MIN);
            let to = q.to.unwrap_or(i64::MAX);
            let window = "FROM llm_calls WHERE at >= ?1 AND at < ?2";
            let total = conn
                .prepare_cached(&format!("SELECT {COST_COLUMNS} {window}"))?
                .query_row(params![from, to], |r| cost_row("total".into(), None, r, 0))?;
            let by_day = conn
                .prepare_cached(&format!(
                    "SELECT date(at / 1000, 'unixepoch') AS day, {COST_COLUMNS} {window} \
                     GROUP BY day ORDER BY day DESC"
                ))?
                .query_map(params![from, to], |r| cost_row(r.get(0)?, None, r, 1))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let by_model = conn
                .prepare_cached(&format!(
                    "SELECT model, provider, {COST_COLUMNS} {window} \
                     GROUP BY model, provider ORDER BY sum(cost_pusd) DESC, model"
                ))?
                .query_map(params![from, to], |r| {
                    cost_row(r.get(0)?, Some(r.get(1)?), r, 2)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let by_run = conn
                .prepare_cached(
                    "SELECT c.run_id, (SELECT procedure FROM runs WHERE id = c.run_id), \
                     count(*), coalesce(sum(c.outcome <> 'ok'), 0), coalesce(sum(c.tokens_in), 0), \
                     coalesce(sum(c.tokens_out), 0), coalesce(sum(c.cost_pusd), 0), \
                     coalesce(sum(c.estimated), 0), coalesce(sum(c.truncated), 0) \
                     FROM llm_calls c WHERE c.at >= ?1 AND c.at < ?2 \
                     GROUP BY c.run_id ORDER BY sum(c.cost_pusd) DESC, max(c.id) DESC LIMIT ?3",
                )?
                .query_map(params![from, to, q.run_limit as i64], |r| {
                    cost_row(r.get(0)?, r.get(1)?, r, 2)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(CostReport {
                total,
                by_day,
                by_model,
                by_run,
            })
        })
        .await
    }
}
