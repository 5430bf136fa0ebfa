//! Run transitions and queries. Every transition updates the run row and appends its event in
//! the same savepoint of the writer's transaction (see the module above), so a run's row and its
//! history can never disagree.
//!
//! Fencing: `claim` increments `lease_token`; every later write of the worker's (heartbeat,
//! finish, release) names the token it holds and is applied only while the run is still
//! `RUNNING` under that token. A refused result is itself recorded as an event.

use super::{Store, Tx};
use crate::error::{Error, Result};
use crate::model::{now_ms, Ack, Event, NewAck, NewRun, Outcome, Run, RunPage, RunStatus};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The runner's coverage test for an acknowledgement: given a run's opaque `ack_required` and
/// the items a person acknowledged, the items left uncovered (empty: it covers them). The
/// store calls it inside the acknowledging transaction, so the check and the transition are
/// one atomic step, without the store knowing what the items are.
pub type AckCheck = fn(ack_required: &Value, acknowledged: &[String]) -> Vec<String>;

const RUN_COLUMNS: &str = "seq, id, procedure, context, params, priority, status, attempts, \
     max_attempts, lease_owner, lease_token, locked_at, heartbeat_at, cancel_requested, error, \
     result, ack_required, ack_by, ack_note, ack_tiers, ack_at, idempotency_key, created_at, \
     updated_at, started_at, finished_at, cost_pusd, llm_calls, tokens_in, tokens_out, not_before";

/// A run handed to a worker: the run as claimed (its `lease_token` is the worker's fence) and
/// the lease owner it was claimed for.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    pub run: Run,
    pub owner: String,
    /// When the run last became QUEUED (Unix ms): the start of its enqueue-to-claim latency.
    pub queued_at: i64,
}

/// What one claim found.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The runs claimed, one per owner at most.
    pub runs: Vec<ClaimedRun>,
    /// With fewer runs than owners: when the earliest run still waiting for its `not_before`
    /// falls due (Unix ms), if any.
    pub next_due: Option<i64>,
}

/// What happened to a worker's fenced write.
#[derive(Debug, Clone, PartialEq)]
pub enum Fenced {
    /// The write was applied; the run's status now.
    Applied(RunStatus),
    /// The worker no longer holds the lease; nothing changed but a `late_result_refused` event.
    Refused { status: RunStatus, token: i64 },
}

fn json_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Value>> {
    let s: Option<String> = row.get(idx)?;
    Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
}

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<Run> {
    let status: String = row.get(6)?;
    let status = RunStatus::parse(&status).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            6,
            rusqlite::types::Type::Text,
            format!("unknown status {status:?}").into(),
        )
    })?;
    let ack_by: Option<String> = row.get(17)?;
    let ack = match ack_by {
        Some(by) => Some(Ack {
            acknowledged_by: by,
            note: row.get::<_, Option<String>>(18)?.unwrap_or_default(),
            tiers: json_col(row, 19)?.unwrap_or(Value::Null),
            at: row.get::<_, Option<i64>>(20)?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Run {
        seq: row.get(0)?,
        id: row.get(1)?,
        procedure: row.get(2)?,
        context: row.get(3)?,
        params: json_col(row, 4)?.unwrap_or_else(|| json!({})),
        priority: row.get(5)?,
        status,
        attempts: row.get(7)?,
        max_attempts: row.get(8)?,
        lease_owner: row.get(9)?,
        lease_token: row.get(10)?,
        locked_at: row.get(11)?,
        heartbeat_at: row.get(12)?,
        cancel_requested: row.get::<_, i64>(13)? != 0,
        error: row.get(14)?,
        result: json_col(row, 15)?,
        ack_required: json_col(row, 16)?,
        ack,
        idempotency_key: row.get(21)?,
        created_at: row.get(22)?,
        updated_at: row.get(23)?,
        started_at: row.get(24)?,
        finished_at: row.get(25)?,
        cost_pusd: row.get(26)?,
        llm_calls: super::count(row, 27)?,
        tokens_in: super::count(row, 28)?,
        tokens_out: super::count(row, 29)?,
        not_before: row.get(30)?,
    })
}

fn get_run(conn: &Connection, id: &str) -> Result<Option<Run>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?;
    Ok(stmt.query_row([id], run_from_row).optional()?)
}

fn require_run(conn: &Connection, id: &str) -> Result<Run> {
    get_run(conn, id)?.ok_or_else(|| Error::NotFound(id.to_string()))
}

/// Sets the run's status and the given columns, bumps `updated_at`, and re-reads the row.
fn set_status(
    conn: &Connection,
    id: &str,
    status: RunStatus,
    now: i64,
    extra_sql: &str,
    extra: &[&dyn rusqlite::ToSql],
) -> Result<Run> {
    // UPDATE ... RETURNING would materialise its result in an ephemeral table on every
    // call; a plain UPDATE followed by the cached point read is cheaper.
    update_status(conn, id, status, now, extra_sql, extra)?;
    require_run(conn, id)
}

/// [`set_status`] without re-reading the row, for callers that need nothing back.
fn update_status(
    conn: &Connection,
    id: &str,
    status: RunStatus,
    now: i64,
    extra_sql: &str,
    extra: &[&dyn rusqlite::ToSql],
) -> Result<()> {
    let sql = format!("UPDATE runs SET status = ?1, updated_at = ?2{extra_sql} WHERE id = ?3");
    let mut stmt = conn.prepare_cached(&sql)?;
    let status = status.as_str();
    let mut all: Vec<&dyn rusqlite::ToSql> = vec![&status, &now, &id];
    all.extend_from_slice(extra);
    stmt.execute(all.as_slice())?;
    Ok(())
}

/// The fields a fenced write checks, without decoding the whole row.
pub(super) struct LeaseState {
    pub(super) status: RunStatus,
    pub(super) lease_token: i64,
    attempts: u32,
    max_attempts: u32,
    cancel_requested: bool,
}

pub(super) fn lease_state(conn: &Connection, id: &str) -> Result<LeaseState> {
    conn.prepare_cached(
        "SELECT status, lease_token, attempts, max_attempts, cancel_requested FROM runs \
         WHERE id = ?1",
    )?
    .query_row([id], |r| {
        let status: String = r.get(0)?;
        Ok((status, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, i64>(4)?))
    })
    .optional()?
    .map(
        |(status, lease_token, attempts, max_attempts, cancel_requested)| LeaseState {
            status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
            lease_token,
            attempts,
            max_attempts,
            cancel_requested: cancel_requested != 0,
        },
    )
    .ok_or_else(|| Error::NotFound(id.to_string()))
}

/// Columns that end a lease; appended to a status change that leaves RUNNING.
const CLEAR_LEASE: &str = ", lease_owner = NULL, locked_at = NULL, heartbeat_at = NULL";

impl Tx<'_> {
    /// Appends an event for `run` in the current savepoint; published after the commit.
    pub(crate) fn event(
        &mut self,
        run_id: &str,
        kind: &str,
        status: RunStatus,
        actor: &str,
        details: Value,
        at: i64,
    ) -> Result<()> {
        let conn = self.conn;
        conn.prepare_cached(
            "INSERT INTO run_events (run_id, at, kind, status, actor, details) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            run_id,
            at,
            kind,
            status.as_str(),
            actor,
            details.to_string()
        ])?;
        let id = conn.last_insert_rowid();
        self.events.push(Event {
            id,
            run_id: run_id.to_string(),
            at,
            kind: kind.to_string(),
            status,
            actor: actor.to_string(),
            details,
        });
        Ok(())
    }

    /// Re-queues or fails a RUNNING run whose lease is gone (reaped, or left by a dead
    /// daemon). `kind` names why in the event.
    fn abandon_lease(&mut self, run: &Run, kind: &str, actor: &str, now: i64) -> Result<Run> {
        let details = json!({
            "previous_owner": run.lease_owner,
            "lease_token": run.lease_token,
            "attempt": run.attempts,
            "max_attempts": run.max_attempts,
        });
        let (status, extra, err): (RunStatus, String, Option<String>) = if run.cancel_requested {
            (
                RunStatus::Cancelled,
                format!("{CLEAR_LEASE}, finished_at = ?4"),
                None,
            )
        } else if run.attempts >= run.max_attempts {
            let why = if kind == "recovered" {
                "the daemon stopped while the run was running"
            } else {
                "its lease expired without a heartbeat"
            };
            (
                RunStatus::Failed,
                format!("{CLEAR_LEASE}, finished_at = ?4, error = ?5"),
                Some(format!(
                    "attempts exhausted ({} of {}): {why}",
                    run.attempts, run.max_attempts
                )),
            )
        } else {
            (RunStatus::Queued, CLEAR_LEASE.to_string(), None)
        };
        let updated = match &err {
            Some(e) => set_status(self.conn(), &run.id, status, now, &extra, &[&now, e])?,
            None if status == RunStatus::Cancelled => {
                set_status(self.conn(), &run.id, status, now, &extra, &[&now])?
            }
            None => set_status(self.conn(), &run.id, status, now, &extra, &[])?,
        };
        let mut details = details;
        if let Some(e) = &err {
            details["error"] = json!(e);
        }
        let kind = match status {
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
            _ => kind,
        };
        self.event(&run.id, kind, status, actor, details, now)?;
        Ok(updated)
    }
}

impl Store {
    /// Enqueues a run, or returns the run already enqueued under the same idempotency key
    /// (`false`: not created now).
    pub async fn enqueue(&self, new: NewRun) -> Result<(Run, bool)> {
        self.write(move |tx| {
            let now = now_ms();
            if let Some(key) = &new.idempotency_key {
                let existing: Option<String> = tx
                    .conn()
                    .prepare_cached("SELECT id FROM runs WHERE idempotency_key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?;
                if let Some(id) = existing {
                    let run = require_run(tx.conn(), &id)?;
                    let same = run.procedure == new.procedure
                        && run.context == new.context
                        && run.params == new.params
                        && run.priority == new.priority;
                    return if same {
                        Ok((run, false))
                    } else {
                        Err(Error::IdempotencyMismatch(key.clone()))
                    };
                }
            }
            let id = uuid::Uuid::now_v7().to_string();
            tx.conn()
                .prepare_cached(
                    "INSERT INTO runs (id, procedure, context, params, priority, status, \
                     max_attempts, idempotency_key, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 'QUEUED', ?6, ?7, ?8, ?8)",
                )?
                .execute(params![
                    id,
                    new.procedure,
                    new.context,
                    new.params.to_string(),
                    new.priority,
                    new.max_attempts,
                    new.idempotency_key,
                    now
                ])?;
            // Built here rather than read back: every column is known.
            let run = Run {
                id: id.clone(),
                seq: tx.conn().last_insert_rowid(),
                procedure: new.procedure,
                context: new.context,
                params: new.params,
                priority: new.priority,
                status: RunStatus::Queued,
                attempts: 0,
                max_attempts: new.max_attempts,
                lease_owner: None,
                lease_token: 0,
                locked_at: None,
                heartbeat_at: None,
                cancel_requested: false,
                error: None,
                result: None,
                ack_required: None,
                ack: None,
                idempotency_key: new.idempotency_key,
                created_at: now,
                updated_at: now,
                started_at: None,
                finished_at: None,
                cost_pusd: 0,
                llm_calls: 0,
                tokens_in: 0,
                tokens_out: 0,
                not_before: None,
            };
            tx.event(
                &id,
                "enqueued",
                RunStatus::Queued,
                "http",
                json!({ "procedure": run.procedure, "priority": run.priority }),
                now,
            )?;
            Ok((run, true))
        })
        .await
    }

    /// Claims up to `owners.len()` queued runs, highest priority first and FIFO within one,
    /// one per owner, each under a fresh lease token. A run waiting for its `not_before` is
    /// skipped until then.
    pub async fn claim(&self, owners: Vec<String>) -> Result<Vec<ClaimedRun>> {
        Ok(self.claim_due(owners).await?.runs)
    }

    /// [`Store::claim`], and, when it found fewer runs than owners, when the earliest waiting
    /// run falls due: the queue's timer, read in the same transaction, so no run re-queued
    /// with a delay is forgotten (a restart included: the column is read at the first claim).
    pub async fn claim_due(&self, owners: Vec<String>) -> Result<Claim> {
        self.write(move |tx| {
            let now = now_ms();
            let ids: Vec<(String, i64)> = tx
                .conn()
                .prepare_cached(
                    "SELECT id, updated_at FROM runs INDEXED BY runs_queued \
                     WHERE status = 'QUEUED' AND (not_before IS NULL OR not_before <= ?2) \
                     ORDER BY priority DESC, seq LIMIT ?1",
                )?
                .query_map(params![owners.len() as i64, now], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let short = ids.len() < owners.len();
            let mut claimed = Vec::with_capacity(ids.len());
            for ((id, queued_at), owner) in ids.into_iter().zip(owners) {
                let run = set_status(
                    tx.conn(),
                    &id,
                    RunStatus::Running,
                    now,
                    ", attempts = attempts + 1, lease_owner = ?4, lease_token = lease_token + 1, \
                     locked_at = ?2, heartbeat_at = ?2, started_at = COALESCE(started_at, ?2), \
                     not_before = NULL",
                    &[&owner],
                )?;
                tx.event(
                    &id,
                    "claimed",
                    RunStatus::Running,
                    "queue",
                    json!({ "owner": owner, "lease_token": run.lease_token, "attempt": run.attempts }),
                    now,
                )?;
                claimed.push(ClaimedRun {
                    run,
                    owner,
                    queued_at,
                });
            }
            let next_due = if short {
                tx.conn()
                    .prepare_cached(
                        "SELECT min(not_before) FROM runs INDEXED BY runs_waiting \
                         WHERE status = 'QUEUED' AND not_before IS NOT NULL AND not_before > ?1",
                    )?
                    .query_row([now], |r| r.get(0))?
            } else {
                None
            };
            Ok(Claim {
                runs: claimed,
                next_due,
            })
        })
        .await
    }

    /// Refreshes the heartbeat of every lease still held, in one transaction. Leases that
    /// were reaped or finished are skipped. Returns how many were refreshed.
    pub async fn heartbeat(&self, leases: Vec<(String, i64)>) -> Result<usize> {
        if leases.is_empty() {
            return Ok(0);
        }
        self.write(move |tx| {
            let now = now_ms();
            let mut stmt = tx.conn().prepare_cached(
                "UPDATE runs SET heartbeat_at = ?1 \
                 WHERE id = ?2 AND lease_token = ?3 AND status = 'RUNNING'",
            )?;
            let mut n = 0;
            for (id, token) in &leases {
                n += stmt.execute(params![now, id, token])?;
            }
            Ok(n)
        })
        .await
    }

    /// Records how a worker's attempt ended, if the worker still holds the lease `token`. A run
    /// whose cancel was requested while it ran ends CANCELLED, whatever the outcome.
    pub async fn finish(
        &self,
        run_id: String,
        token: i64,
        owner: String,
        outcome: Outcome,
    ) -> Result<Fenced> {
        self.write(move |tx| {
            let now = now_ms();
            let run = lease_state(tx.conn(), &run_id)?;
            let actor = format!("worker:{owner}");
            if run.status != RunStatus::Running || run.lease_token != token {
                tx.event(
                    &run_id,
                    "late_result_refused",
                    run.status,
                    &actor,
                    json!({
                        "lease_token": token,
                        "current_token": run.lease_token,
                        "outcome": outcome_kind(&outcome),
                    }),
                    now,
                )?;
                return Ok(Fenced::Refused {
                    status: run.status,
                    token: run.lease_token,
                });
            }
            let attempt = json!(run.attempts);
            // A cancel answered 202 binds: the run was RUNNING with the cancel recorded before
            // this outcome, so whatever the job reports — a result that raced the cancel, a
            // failure, a gap, a deferral — the run ends CANCELLED, under this same fence. The
            // event names what the job reported instead.
            if run.cancel_requested {
                update_status(
                    tx.conn(),
                    &run_id,
                    RunStatus::Cancelled,
                    now,
                    &format!("{CLEAR_LEASE}, finished_at = ?2"),
                    &[],
                )?;
                let mut details = json!({ "attempt": attempt });
                if !matches!(outcome, Outcome::Cancelled) {
                    details["discarded"] = json!(outcome_kind(&outcome));
                }
                tx.event(&run_id, "cancelled", RunStatus::Cancelled, &actor, details, now)?;
                return Ok(Fenced::Applied(RunStatus::Cancelled));
            }
            let exhausted = |error: &str| {
                format!(
                    "attempts exhausted ({} of {}): {error}",
                    run.attempts, run.max_attempts
                )
            };
            // The run ends FAILED with `error`.
            let fail = |tx: &mut Tx<'_>, error: String| -> Result<RunStatus> {
                update_status(
                    tx.conn(),
                    &run_id,
                    RunStatus::Failed,
                    now,
                    &format!("{CLEAR_LEASE}, finished_at = ?2, error = ?4"),
                    &[&error],
                )?;
                tx.event(
                    &run_id,
                    "failed",
                    RunStatus::Failed,
                    &actor,
                    json!({ "attempt": attempt, "error": error }),
                    now,
                )?;
                Ok(RunStatus::Failed)
            };
            let updated = match outcome {
                Outcome::Done { result } => {
                    let result = result.to_string();
                    update_status(
                        tx.conn(),
                        &run_id,
                        RunStatus::Done,
                        now,
                        &format!("{CLEAR_LEASE}, finished_at = ?2, result = ?4, error = NULL"),
                        &[&result],
                    )?;
                    tx.event(&run_id, "completed", RunStatus::Done, &actor, json!({ "attempt": attempt }), now)?;
                    RunStatus::Done
                }
                Outcome::Failed { error, retryable } => {
                    if retryable && run.attempts < run.max_attempts {
                        update_status(
                            tx.conn(),
                            &run_id,
                            RunStatus::Queued,
                            now,
                            &format!("{CLEAR_LEASE}, error = ?4"),
                            &[&error],
                        )?;
                        tx.event(
                            &run_id,
                            "attempt_failed",
                            RunStatus::Queued,
                            &actor,
                            json!({ "attempt": attempt, "max_attempts": run.max_attempts, "error": error, "will_retry": true }),
                            now,
                        )?;
                        RunStatus::Queued
                    } else if retryable {
                        fail(tx, exhausted(&error))?
                    } else {
                        fail(tx, error)?
                    }
                }
                // The provider may come back, but not at once: the run waits in the queue
                // (not claimed before `not_before`) within its attempts.
                Outcome::RetryLater { error, delay } if run.attempts < run.max_attempts => {
                    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 4);
                    let not_before = now.saturating_add(delay_ms);
                    update_status(
                        tx.conn(),
                        &run_id,
                        RunStatus::Queued,
                        now,
                        &format!("{CLEAR_LEASE}, error = ?4, not_before = ?5"),
                        &[&error, &not_before],
                    )?;
                    tx.event(
                        &run_id,
                        "requeued",
                        RunStatus::Queued,
                        &actor,
                        json!({
                            "reason": error,
                            "not_before": crate::model::time::rfc3339(not_before),
                            "delay_s": delay.as_secs_f64(),
                            "attempt": attempt,
                            "max_attempts": run.max_attempts,
                        }),
                        now,
                    )?;
                    RunStatus::Queued
                }
                Outcome::RetryLater { error, .. } => fail(tx, exhausted(&error))?,
                Outcome::NeedsAck { details } => {
                    let d = details.to_string();
                    update_status(
                        tx.conn(),
                        &run_id,
                        RunStatus::NeedsAck,
                        now,
                        &format!("{CLEAR_LEASE}, ack_required = ?4"),
                        &[&d],
                    )?;
                    tx.event(&run_id, "needs_ack", RunStatus::NeedsAck, &actor, details, now)?;
                    RunStatus::NeedsAck
                }
                Outcome::Cancelled => {
                    update_status(
                        tx.conn(),
                        &run_id,
                        RunStatus::Cancelled,
                        now,
                        &format!("{CLEAR_LEASE}, finished_at = ?2"),
                        &[],
                    )?;
                    tx.event(&run_id, "cancelled", RunStatus::Cancelled, &actor, json!({ "attempt": attempt }), now)?;
                    RunStatus::Cancelled
                }
                // Waiting for the database is not an attempt: the run goes back to the queue
                // with the attempt refunded, as a graceful shutdown's `release` does.
                Outcome::Deferred { reason } => {
                    update_status(
                        tx.conn(),
                        &run_id,
                        RunStatus::Queued,
                        now,
                        &format!("{CLEAR_LEASE}, attempts = MAX(attempts - 1, 0)"),
                        &[],
                    )?;
                    tx.event(
                        &run_id,
                        "requeued",
                        RunStatus::Queued,
                        &actor,
                        json!({ "reason": reason, "lease_token": token, "attempt_refunded": attempt }),
                        now,
                    )?;
                    RunStatus::Queued
                }
            };
            Ok(Fenced::Applied(updated))
        })
        .await
    }

    /// Appends a job's progress event while it holds the lease `token`; nothing else changes.
    /// Returns `false` (and records nothing) if the lease is gone.
    pub async fn job_event(
        &self,
        run_id: String,
        token: i64,
        owner: String,
        kind: String,
        details: Value,
    ) -> Result<bool> {
        self.job_event_citing(run_id, token, owner, kind, details, Vec::new())
            .await
    }

    /// [`Store::job_event`], recording in the same transaction that the run used these
    /// sources (id, the tier it judged each by). A source erased meanwhile is skipped: the run
    /// goes on with what it read. A later attempt's judgement replaces an earlier one.
    pub async fn job_event_citing(
        &self,
        run_id: String,
        token: i64,
        owner: String,
        kind: String,
        details: Value,
        cited: Vec<(String, String)>,
    ) -> Result<bool> {
        self.write(move |tx| {
            let lease = lease_state(tx.conn(), &run_id)?;
            if lease.status != RunStatus::Running || lease.lease_token != token {
                return Ok(false);
            }
            if !cited.is_empty() {
                let now = now_ms();
                let mut cite = tx.conn().prepare_cached(
                    // A later attempt's judgement replaces an earlier one: the artifacts are
                    // the last attempt's.
                    "INSERT INTO source_citations (source_seq, run_id, tier, at) \
                     SELECT seq, ?2, ?3, ?4 FROM sources WHERE id = ?1 \
                     ON CONFLICT (source_seq, run_id) DO UPDATE SET tier = excluded.tier, \
                     at = excluded.at",
                )?;
                for (source, tier) in &cited {
                    cite.execute(rusqlite::params![source, run_id, tier, now])?;
                }
            }
            tx.event(
                &run_id,
                &kind,
                RunStatus::Running,
                &format!("worker:{owner}"),
                details,
                now_ms(),
            )?;
            Ok(true)
        })
        .await
    }

    /// Hands leases back at shutdown: each run still held under its token returns to QUEUED
    /// without spending the attempt (or becomes CANCELLED if a cancel was pending).
    pub async fn release(&self, leases: Vec<(String, i64)>, reason: &'static str) -> Result<usize> {
        self.write(move |tx| {
            let now = now_ms();
            let mut n = 0;
            for (id, token) in leases {
                let Some(run) = get_run(tx.conn(), &id)? else { continue };
                if run.status != RunStatus::Running || run.lease_token != token {
                    continue;
                }
                if run.cancel_requested {
                    set_status(tx.conn(), &id, RunStatus::Cancelled, now, &format!("{CLEAR_LEASE}, finished_at = ?2"), &[])?;
                    tx.event(&id, "cancelled", RunStatus::Cancelled, "supervisor", json!({ "reason": reason }), now)?;
                } else {
                    set_status(
                        tx.conn(),
                        &id,
                        RunStatus::Queued,
                        now,
                        &format!("{CLEAR_LEASE}, attempts = MAX(attempts - 1, 0)"),
                        &[],
                    )?;
                    tx.event(
                        &id,
                        "lease_released",
                        RunStatus::Queued,
                        "supervisor",
                        json!({ "reason": reason, "lease_token": token, "attempt_refunded": run.attempts }),
                        now,
                    )?;
                }
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    /// Cancels a run: QUEUED and NEEDS_ACK runs at once; a RUNNING run is marked and its
    /// worker stops at its next await. The mark binds: the run ends CANCELLED whatever its
    /// job reports (see [`Store::finish`]); a run that finished first is a conflict.
    pub async fn cancel(&self, run_id: String) -> Result<Run> {
        self.write(move |tx| {
            let now = now_ms();
            let run = require_run(tx.conn(), &run_id)?;
            match run.status {
                RunStatus::Queued | RunStatus::NeedsAck => {
                    let r = set_status(
                        tx.conn(),
                        &run_id,
                        RunStatus::Cancelled,
                        now,
                        ", finished_at = ?2, not_before = NULL",
                        &[],
                    )?;
                    tx.event(
                        &run_id,
                        "cancelled",
                        RunStatus::Cancelled,
                        "http",
                        json!({ "from": run.status }),
                        now,
                    )?;
                    Ok(r)
                }
                RunStatus::Running if run.cancel_requested => Ok(run),
                RunStatus::Running => {
                    let r = set_status(
                        tx.conn(),
                        &run_id,
                        RunStatus::Running,
                        now,
                        ", cancel_requested = 1",
                        &[],
                    )?;
                    tx.event(
                        &run_id,
                        "cancel_requested",
                        RunStatus::Running,
                        "http",
                        json!({ "owner": run.lease_owner }),
                        now,
                    )?;
                    Ok(r)
                }
                status => Err(Error::Conflict {
                    run_id,
                    action: "cancel",
                    status,
                }),
            }
        })
        .await
    }

    /// Acknowledges what a NEEDS_ACK run waits on and returns it to the queue with a fresh
    /// attempt budget. Checked and applied in one transaction: a run not in NEEDS_ACK is a
    /// conflict; an acknowledgement that `uncovered` finds short of the run's `ack_required`
    /// is refused. What `ack_required` means is the runner's: the store only hands it to
    /// `uncovered` (see [`AckCheck`]).
    pub async fn ack(&self, run_id: String, ack: NewAck, uncovered: AckCheck) -> Result<Run> {
        self.write(move |tx| {
            let now = now_ms();
            let run = require_run(tx.conn(), &run_id)?;
            if run.status != RunStatus::NeedsAck {
                return Err(Error::Conflict {
                    run_id,
                    action: "acknowledge",
                    status: run.status,
                });
            }
            let required = run.ack_required.clone().unwrap_or(Value::Null);
            let uncovered = uncovered(&required, &ack.tiers);
            if !uncovered.is_empty() {
                return Err(Error::AckIncomplete { uncovered });
            }
            let tiers = json!(ack.tiers);
            let r = set_status(
                tx.conn(),
                &run_id,
                RunStatus::Queued,
                now,
                ", attempts = 0, ack_by = ?4, ack_note = ?5, ack_tiers = ?6, ack_at = ?2",
                &[&ack.acknowledged_by, &ack.note, &tiers.to_string()],
            )?;
            tx.event(
                &run_id,
                "acknowledged",
                RunStatus::Queued,
                "http",
                json!({ "acknowledged_by": ack.acknowledged_by, "note": ack.note, "tiers": tiers }),
                now,
            )?;
            Ok(r)
        })
        .await
    }

    /// Re-queues a FAILED or CANCELLED run with a fresh attempt budget.
    pub async fn retry(&self, run_id: String) -> Result<Run> {
        self.write(move |tx| {
            let now = now_ms();
            let run = require_run(tx.conn(), &run_id)?;
            match run.status {
                RunStatus::Failed | RunStatus::Cancelled => {
                    let r = set_status(
                        tx.conn(),
                        &run_id,
                        RunStatus::Queued,
                        now,
                        ", attempts = 0, error = NULL, cancel_requested = 0, finished_at = NULL, \
                         not_before = NULL",
                        &[],
                    )?;
                    tx.event(
                        &run_id,
                        "retried",
                        RunStatus::Queued,
                        "http",
                        json!({ "from": run.status, "previous_error": run.error }),
                        now,
                    )?;
                    Ok(r)
                }
                status => Err(Error::Conflict {
                    run_id,
                    action: "retry",
                    status,
                }),
            }
        })
        .await
    }

    /// Re-queues (or fails, once attempts are spent) every RUNNING run whose last heartbeat is
    /// older than `stale_before` (Unix ms).
    pub async fn reap(&self, stale_before: i64) -> Result<Vec<Run>> {
        self.write(move |tx| {
            let now = now_ms();
            let stale: Vec<Run> = tx
                .conn()
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE status = 'RUNNING' AND heartbeat_at < ?1"
                ))?
                .query_map([stale_before], run_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            stale
                .iter()
                .map(|run| tx.abandon_lease(run, "reaped", "reaper", now))
                .collect()
        })
        .await
    }

    /// At start-up, with the data directory locked (so no other daemon can hold a lease):
    /// re-queues at once every run a previous instance left RUNNING.
    pub async fn recover(&self) -> Result<Vec<Run>> {
        self.write(move |tx| {
            let now = now_ms();
            let left: Vec<Run> = tx
                .conn()
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE status = 'RUNNING'"
                ))?
                .query_map([], run_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            left.iter()
                .map(|run| tx.abandon_lease(run, "recovered", "recovery", now))
                .collect()
        })
        .await
    }

    /// One run by id.
    pub async fn get_run(&self, run_id: String) -> Result<Run> {
        self.read(move |conn| require_run(conn, &run_id)).await
    }

    /// A page of runs, newest first, optionally of one status. `cursor` is the `next_cursor`
    /// of the previous page.
    pub async fn list_runs(
        &self,
        status: Option<RunStatus>,
        cursor: Option<i64>,
        limit: usize,
    ) -> Result<RunPage> {
        self.read(move |conn| {
            let before = cursor.unwrap_or(i64::MAX);
            let fetch = limit as i64 + 1;
            let mut runs: Vec<Run> = match status {
                Some(st) => conn
                    .prepare_cached(&format!(
                        "SELECT {RUN_COLUMNS} FROM runs WHERE status = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
                    ))?
                    .query_map(params![st.as_str(), before, fetch], run_from_row)?
                    .collect::<rusqlite::Result<_>>()?,
                None => conn
                    .prepare_cached(&format!(
                        "SELECT {RUN_COLUMNS} FROM runs WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2"
                    ))?
                    .query_map(params![before, fetch], run_from_row)?
                    .collect::<rusqlite::Result<_>>()?,
            };
            let next_cursor = if runs.len() > limit {
                runs.truncate(limit);
                runs.last().map(|r| r.seq.to_string())
            } else {
                None
            };
            Ok(RunPage { runs, next_cursor })
        })
        .await
    }

    /// The events of one run with an id above `after`, oldest first.
    pub async fn events(&self, run_id: String, after: i64) -> Result<Vec<Event>> {
        self.read(move |conn| {
            require_run(conn, &run_id)?;
            let mut stmt = conn.prepare_cached(
                "SELECT id, run_id, at, kind, status, actor, details FROM run_events \
                 WHERE run_id = ?1 AND id > ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![run_id, after], |r| {
                let status: String = r.get(4)?;
                let details: String = r.get(6)?;
                Ok(Event {
                    id: r.get(0)?,
                    run_id: r.get(1)?,
                    at: r.get(2)?,
                    kind: r.get(3)?,
                    status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
                    actor: r.get(5)?,
                    details: serde_json::from_str(&details).unwrap_or(Value::Null),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Runs waiting (QUEUED) and running (RUNNING), for `/health`.
    pub async fn depth(&self) -> Result<(u64, u64)> {
        let counts = self.counts().await?;
        let get = |s: RunStatus| counts.get(s.as_str()).copied().unwrap_or(0);
        Ok((get(RunStatus::Queued), get(RunStatus::Running)))
    }

    /// When the longest-waiting QUEUED run entered the queue (or was last put back), Unix ms;
    /// None with nothing queued. Reads only the queued rows (the partial index), for
    /// `/metrics`.
    pub async fn oldest_queued_at(&self) -> Result<Option<i64>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT min(updated_at) FROM runs WHERE status = 'QUEUED'")?
                .query_row([], |r| r.get::<_, Option<i64>>(0))?)
        })
        .await
    }

    /// How many runs are in each status (every status present, zero included). Constant
    /// time: the counts are maintained by triggers.
    pub async fn counts(&self) -> Result<BTreeMap<&'static str, u64>> {
        self.read(|conn| {
            let mut out: BTreeMap<&'static str, u64> =
                RunStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
            // Kept by triggers (migration 0001): six rows, not a scan.
            let mut stmt = conn.prepare_cached("SELECT status, n FROM run_counts")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (status, n) = row?;
                if let Some(st) = RunStatus::parse(&status) {
                    out.insert(st.as_str(), n as u64);
                }
            }
            Ok(out)
        })
        .await
    }
}

fn outcome_kind(o: &Outcome) -> &'static str {
    match o {
        Outcome::Done { .. } => "done",
        Outcome::Failed { .. } => "failed",
        Outcome::NeedsAck { .. } => "needs_ack",
        Outcome::Cancelled => "cancelled",
        Outcome::Deferred { .. } => "deferred",
        Outcome::RetryLater { .. } => "retry_later",
    }
}
