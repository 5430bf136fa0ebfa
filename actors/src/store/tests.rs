//! In-process tests of the store's transitions: the fast paths, without actors or HTTP.

use super::*;
use crate::model::{Event, NewRun, Outcome, RunStatus};
use serde_json::json;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn new_run(name: &str, priority: i64) -> NewRun {
    NewRun {
        procedure: name.into(),
        context: String::new(),
        params: json!({}),
        priority,
        idempotency_key: None,
        max_attempts: 3,
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db"), Synchronous::Normal).unwrap();
    (dir, store)
}

#[test]
fn the_source_card_covers_every_column_a_query_reads() {
    // Queries that name `sources_card` must read the card alone, never the row with its text:
    // a migration that adds a source column must add it to the index too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(Store::open(&path, Synchronous::Normal).unwrap());
    let conn = Connection::open(&path).unwrap();
    let plan: Vec<String> = conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN SELECT {} FROM sources s INDEXED BY sources_card WHERE s.seq = 1",
            library::COLUMNS
        ))
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|p| p.contains("USING COVERING INDEX sources_card")),
        "{plan:?}"
    );
}

#[test]
fn claims_follow_priority_then_fifo() {
    let (_d, store) = open();
    block_on(async {
        for (name, prio) in [("a", 0), ("b", 5), ("c", 0), ("d", 5)] {
            store.enqueue(new_run(name, prio)).await.unwrap();
        }
        let owners = (0..4).map(|i| format!("t/w{i}")).collect();
        let got: Vec<String> = store
            .claim(owners)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.run.procedure)
            .collect();
        assert_eq!(got, ["b", "d", "a", "c"]);
    });
}

#[test]
fn a_result_under_a_superseded_lease_token_is_refused_and_recorded() {
    let (_d, store) = open();
    block_on(async {
        let (run, _) = store.enqueue(new_run("x", 0)).await.unwrap();
        let first = store.claim(vec!["t/w0".into()]).await.unwrap().remove(0);
        // The lease goes stale and is reaped; another worker claims it under a new token.
        let reaped = store.reap(i64::MAX).await.unwrap();
        assert_eq!(reaped[0].status, RunStatus::Queued);
        let second = store.claim(vec!["t/w1".into()]).await.unwrap().remove(0);
        assert!(second.run.lease_token > first.run.lease_token);

        let late = store
            .finish(
                run.id.clone(),
                first.run.lease_token,
                "t/w0".into(),
                Outcome::Done { result: json!({}) },
            )
            .await
            .unwrap();
        assert_eq!(
            late,
            Fenced::Refused {
                status: RunStatus::Running,
                token: second.run.lease_token
            }
        );
        // Heartbeats under the old token touch nothing either.
        assert_eq!(
            store
                .heartbeat(vec![(run.id.clone(), first.run.lease_token)])
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .heartbeat(vec![(run.id.clone(), second.run.lease_token)])
                .await
                .unwrap(),
            1
        );

        let ok = store
            .finish(
                run.id.clone(),
                second.run.lease_token,
                "t/w1".into(),
                Outcome::Done { result: json!({}) },
            )
            .await
            .unwrap();
        assert!(ok == Fenced::Applied(RunStatus::Done));
        let kinds: Vec<String> = store
            .events(run.id.clone(), 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "enqueued",
                "claimed",
                "reaped",
                "claimed",
                "late_result_refused",
                "completed"
            ]
        );
    });
}

/// Issue 16, item 6: a job that met a database refusing writes is handed back with its attempt
/// refunded, however often it happens; only the lease holder can do it; a pending cancel wins.
#[test]
fn a_deferred_run_is_requeued_without_spending_an_attempt() {
    let (_d, store) = open();
    block_on(async {
        let (run, _) = store.enqueue(new_run("x", 0)).await.unwrap();
        let deferred = || Outcome::Deferred {
            reason: "database unavailable: the database is full".into(),
        };
        let mut last_token = 0;
        for episode in 1..=5 {
            let claimed = store.claim(vec!["t/w0".into()]).await.unwrap().remove(0);
            assert_eq!(
                claimed.run.attempts, 1,
                "episode {episode}: one attempt, not {episode}"
            );
            last_token = claimed.run.lease_token;
            let applied = store
                .finish(run.id.clone(), last_token, "t/w0".into(), deferred())
                .await
                .unwrap();
            assert_eq!(applied, Fenced::Applied(RunStatus::Queued));
            let now = store.get_run(run.id.clone()).await.unwrap();
            assert_eq!((now.status, now.attempts), (RunStatus::Queued, 0));
            assert_eq!(now.lease_owner, None);
        }
        let requeued: Vec<Event> = store
            .events(run.id.clone(), 0)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "requeued")
            .collect();
        assert_eq!(requeued.len(), 5);
        assert!(requeued.iter().all(|e| e.details["reason"]
            .as_str()
            .unwrap()
            .starts_with("database unavailable")
            && e.details["attempt_refunded"] == 1));

        // Fenced: a deferral under a lease that was taken over changes nothing.
        let first = store.claim(vec!["t/w0".into()]).await.unwrap().remove(0);
        assert!(first.run.lease_token > last_token);
        store.reap(i64::MAX).await.unwrap();
        let second = store.claim(vec!["t/w1".into()]).await.unwrap().remove(0);
        let late = store
            .finish(
                run.id.clone(),
                first.run.lease_token,
                "t/w0".into(),
                deferred(),
            )
            .await
            .unwrap();
        assert!(matches!(
            late,
            Fenced::Refused {
                status: RunStatus::Running,
                ..
            }
        ));
        let now = store.get_run(run.id.clone()).await.unwrap();
        assert_eq!(
            (now.status, now.attempts),
            (RunStatus::Running, 2),
            "the reap spent one"
        );

        // A cancel requested while the job ran is honoured, not handed back to the queue.
        store.cancel(run.id.clone()).await.unwrap();
        let end = store
            .finish(
                run.id.clone(),
                second.run.lease_token,
                "t/w1".into(),
                deferred(),
            )
            .await
            .unwrap();
        assert_eq!(end, Fenced::Applied(RunStatus::Cancelled));
    });
}

/// A run whose provider stayed down spends its attempt and waits: re-queued with a
/// `not_before`, skipped by claims until then (a later run is claimed before it), named as the
/// next due; once due it is claimed and the time is cleared; the last attempt fails it; a
/// person's retry is immediate.
#[test]
fn a_run_retried_later_waits_for_its_time_within_its_attempts() {
    let (_d, store) = open();
    block_on(async {
        let (run, _) = store.enqueue(new_run("waits", 5)).await.unwrap();
        let later = |secs| Outcome::RetryLater {
            error: "openai is unavailable (after 3 attempts over 2 s, llm_retry_window_s = 2)"
                .into(),
            delay: std::time::Duration::from_secs(secs),
        };
        let claimed = store.claim(vec!["t/w0".into()]).await.unwrap().remove(0);
        let before = crate::model::now_ms();
        let applied = store
            .finish(
                run.id.clone(),
                claimed.run.lease_token,
                "t/w0".into(),
                later(3600),
            )
            .await
            .unwrap();
        assert_eq!(applied, Fenced::Applied(RunStatus::Queued));
        let waiting = store.get_run(run.id.clone()).await.unwrap();
        assert_eq!((waiting.status, waiting.attempts), (RunStatus::Queued, 1));
        let due = waiting.not_before.expect("a waiting run has a not_before");
        assert!(due >= before + 3_600_000 && due <= crate::model::now_ms() + 3_600_000);
        let event = store
            .events(run.id.clone(), 0)
            .await
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(event.kind, "requeued");
        assert_eq!(event.details["delay_s"], 3600.0);
        assert_eq!(
            event.details["not_before"],
            crate::model::time::rfc3339(due)
        );
        assert!(event.details["reason"]
            .as_str()
            .unwrap()
            .contains("unavailable"));
        assert!(
            event.details.get("attempt_refunded").is_none(),
            "the attempt is spent"
        );

        // Not claimed before its time, though of higher priority; the claim names the time.
        let (other, _) = store.enqueue(new_run("other", 0)).await.unwrap();
        let claim = store
            .claim_due(vec!["t/w0".into(), "t/w1".into()])
            .await
            .unwrap();
        assert_eq!(claim.runs.len(), 1);
        assert_eq!(claim.runs[0].run.id, other.id);
        assert_eq!(claim.next_due, Some(due));
        let none = store.claim_due(vec!["t/w2".into()]).await.unwrap();
        assert!(none.runs.is_empty());
        assert_eq!(none.next_due, Some(due), "still waiting, still named");

        // Due at once: claimed, its time cleared; the next wait is the last attempt's.
        let claimed = store.claim(vec!["t/w0".into()]).await.unwrap();
        assert!(claimed.is_empty());
        let run_id = run.id.clone();
        store
            .write(move |tx| {
                tx.conn()
                    .execute("UPDATE runs SET not_before = 1 WHERE id = ?1", [&run_id])?;
                Ok(())
            })
            .await
            .unwrap();
        let second = store.claim(vec!["t/w0".into()]).await.unwrap().remove(0);
        assert_eq!((second.run.attempts, second.run.not_before), (2, None));
        store
            .finish(
                run.id.clone(),
                second.run.lease_token,
                "t/w0".into(),
                later(0),
            )
            .await
            .unwrap();
        let third = store.claim(vec!["t/w0".into()]).await.unwrap().remove(0);
        assert_eq!(third.run.attempts, 3);
        let end = store
            .finish(
                run.id.clone(),
                third.run.lease_token,
                "t/w0".into(),
                later(60),
            )
            .await
            .unwrap();
        assert_eq!(end, Fenced::Applied(RunStatus::Failed));
        let failed = store.get_run(run.id.clone()).await.unwrap();
        assert!(
            failed
                .error
                .as_deref()
                .unwrap()
                .starts_with("attempts exhausted (3 of 3)"),
            "{failed:?}"
        );
        assert_eq!(failed.not_before, None);
        let retried = store.retry(run.id.clone()).await.unwrap();
        assert_eq!(
            (retried.status, retried.not_before),
            (RunStatus::Queued, None)
        );
    });
}

/// Calls recorded before version 7 get their `estimated` and `truncated` columns from the
/// events that said so.
#[test]
fn the_migration_marks_older_calls_estimated_and_truncated_from_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("frozen/v6.sql")).unwrap();
        conn.execute_batch(
            "INSERT INTO llm_calls (run_id, attempt, lease_token, stage, iteration, provider, \
             model, step_key, tokens_in, tokens_out, cost_pusd, latency_ms, outcome, error, \
             response, at) VALUES \
             ('01900000-0000-7000-8000-000000000003', 1, 1, 'draft', 1, 'openai', 'gpt-4o', \
              'k', 10, 4096, 1, 5, 'error', 'cut', NULL, 1800000000000), \
             ('01900000-0000-7000-8000-000000000003', 1, 1, 'draft', 1, 'openai', 'gpt-4o', \
              'k', 10, 300, 1, 5, 'ok', NULL, '## A', 1800000001000); \
             INSERT INTO run_events (run_id, at, kind, status, actor, details) VALUES \
             ('01900000-0000-7000-8000-000000000003', 1800000000000, 'llm_call', 'RUNNING', \
              'worker:t/w0', '{\"iteration\":1,\"estimated\":true}'), \
             ('01900000-0000-7000-8000-000000000003', 1800000001000, 'llm_call', 'RUNNING', \
              'worker:t/w0', '{\"iteration\":1}'), \
             ('01900000-0000-7000-8000-000000000003', 1800000002000, 'iteration_scored', \
              'RUNNING', 'worker:t/w0', '{\"iteration\":1,\"truncated\":true}');",
        )
        .unwrap();
    }
    let store = Store::open(&path, Synchronous::Normal).unwrap();
    block_on(async {
        let costs = store
            .costs(CostQuery {
                run_limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(costs.total.calls, 4);
        assert_eq!(
            (costs.total.estimated_calls, costs.total.truncated_calls),
            (1, 1)
        );
        let reused = store
            .reusable_llm_call("01900000-0000-7000-8000-000000000003".into(), "k".into())
            .await
            .unwrap()
            .unwrap();
        assert!(reused.truncated, "a reused truncated answer is still cut");
    });
}

/// Issue 16, item 11: a cancel of a RUNNING run binds. Whatever the job reports after the
/// cancel was recorded — a result that raced it, a retryable failure, a gap — the run ends
/// CANCELLED under the job's own fence; a late result under a lost lease is still refused.
#[test]
fn a_cancel_recorded_while_running_binds_whatever_the_job_reports() {
    let (_d, store) = open();
    block_on(async {
        let outcomes = [
            Outcome::Done {
                result: json!({ "raced": true }),
            },
            Outcome::Failed {
                error: "flaky".into(),
                retryable: true,
            },
            Outcome::NeedsAck { details: json!({}) },
            Outcome::Cancelled,
        ];
        for outcome in outcomes {
            let (run, _) = store.enqueue(new_run("x", 0)).await.unwrap();
            let claimed = store.claim(vec!["t/w0".into()]).await.unwrap().remove(0);
            let marked = store.cancel(run.id.clone()).await.unwrap();
            assert_eq!(
                (marked.status, marked.cancel_requested),
                (RunStatus::Running, true)
            );
            let kind = match &outcome {
                Outcome::Done { .. } => "done",
                Outcome::Failed { .. } => "failed",
                Outcome::NeedsAck { .. } => "needs_ack",
                _ => "cancelled",
            };
            let end = store
                .finish(
                    run.id.clone(),
                    claimed.run.lease_token,
                    "t/w0".into(),
                    outcome,
                )
                .await
                .unwrap();
            assert_eq!(end, Fenced::Applied(RunStatus::Cancelled), "{kind}");
            let now = store.get_run(run.id.clone()).await.unwrap();
            assert_eq!(now.status, RunStatus::Cancelled, "{kind}");
            assert_eq!(now.result, None, "{kind}: a raced result is not kept");
            let last = store
                .events(run.id.clone(), 0)
                .await
                .unwrap()
                .pop()
                .unwrap();
            assert_eq!(last.kind, "cancelled", "{kind}");
            if kind != "cancelled" {
                assert_eq!(last.details["discarded"], kind);
            }
        }

        // Fencing first: a cancelled run's lost lease cannot record anything.
        let (run, _) = store.enqueue(new_run("y", 0)).await.unwrap();
        let first = store.claim(vec!["t/w0".into()]).await.unwrap().remove(0);
        store.reap(i64::MAX).await.unwrap();
        store.claim(vec!["t/w1".into()]).await.unwrap();
        store.cancel(run.id.clone()).await.unwrap();
        let late = store
            .finish(
                run.id.clone(),
                first.run.lease_token,
                "t/w0".into(),
                Outcome::Done { result: json!({}) },
            )
            .await
            .unwrap();
        assert!(matches!(late, Fenced::Refused { .. }), "{late:?}");
    });
}

#[test]
fn a_failed_write_rolls_back_only_itself_inside_a_shared_commit() {
    let (_d, store) = open();
    block_on(async {
        // Issue many writes at once so they share batches; the bad ones must not take the
        // good ones down with them, nor leave half a transition behind.
        let mut futs = Vec::new();
        for i in 0..50 {
            let s = store.clone();
            futs.push(async move {
                if i % 5 == 0 {
                    // Writes a run and its event, then fails: both must vanish.
                    s.write(move |tx| {
                        tx.conn().execute(
                            "INSERT INTO runs (id, procedure, status, max_attempts, created_at, updated_at) \
                             VALUES (?1, 'half', 'QUEUED', 3, 0, 0)",
                            [format!("half-{i}")],
                        )?;
                        tx.event(&format!("half-{i}"), "enqueued", RunStatus::Queued, "test", json!({}), 0)?;
                        Err::<(), _>(Error::Invalid("changed my mind".into()))
                    })
                    .await
                } else {
                    s.enqueue(new_run(&format!("r{i}"), 0)).await.map(|_| ())
                }
            });
        }
        let results = futures_util::future::join_all(futs).await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 40);
        assert!(results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(Error::Invalid(_)))));
        let page = store.list_runs(None, None, 100).await.unwrap();
        assert_eq!(page.runs.len(), 40);
        assert!(page.runs.iter().all(|r| r.procedure != "half"));
        assert_eq!(
            store.counts().await.unwrap()["QUEUED"],
            40,
            "the trigger's count rolled back too"
        );
        let commits = store.metrics().commits.get();
        assert!(
            commits < 50,
            "writes shared commits ({commits} commits for 50 writes)"
        );
    });
}

#[test]
fn status_counts_kept_by_triggers_match_a_full_count() {
    let (dir, store) = open();
    block_on(async {
        for i in 0..12 {
            store.enqueue(new_run(&format!("r{i}"), 0)).await.unwrap();
        }
        let claimed = store
            .claim((0..6).map(|i| format!("t/w{i}")).collect())
            .await
            .unwrap();
        for (i, c) in claimed.iter().enumerate() {
            let outcome = match i % 3 {
                0 => Outcome::Done { result: json!({}) },
                1 => Outcome::Failed {
                    error: "x".into(),
                    retryable: false,
                },
                _ => Outcome::NeedsAck { details: json!({}) },
            };
            store
                .finish(
                    c.run.id.clone(),
                    c.run.lease_token,
                    c.owner.clone(),
                    outcome,
                )
                .await
                .unwrap();
        }
        let queued = store
            .list_runs(Some(RunStatus::Queued), None, 100)
            .await
            .unwrap();
        store.cancel(queued.runs[0].id.clone()).await.unwrap();
        let counts = store.counts().await.unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        for st in RunStatus::ALL {
            let n: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM runs WHERE status = ?1",
                    [st.as_str()],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(counts[st.as_str()], n as u64, "{st}");
        }
        assert_eq!(counts["DONE"], 2);
        assert_eq!(counts["NEEDS_ACK"], 2);
        assert_eq!(counts["CANCELLED"], 1);
    });
}

#[test]
fn the_event_log_is_append_only() {
    let (dir, store) = open();
    block_on(async { store.enqueue(new_run("x", 0)).await.unwrap() });
    let conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    let err = conn
        .execute("UPDATE run_events SET kind = 'forged'", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = conn.execute("DELETE FROM run_events", []).unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[test]
fn a_database_from_a_newer_binary_is_refused_and_an_old_one_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let _fresh = Store::open(&path, Synchronous::Normal).unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v as usize, schema_version());
    conn.pragma_update(None, "user_version", schema_version() as i64 + 1)
        .unwrap();
    drop(conn);
    let err = Store::open(&path, Synchronous::Normal).unwrap_err();
    assert!(
        matches!(err, Error::Schema(ref m) if m.contains("newer")),
        "{err}"
    );
}

/// A database that cannot grow (its size limit, standing in for a full disk): some writes of a
/// concurrent burst fail, and each write is either fully stored (run row, its event, the
/// counters) or not at all; reads go on; lifting the limit lets writes through again.
#[test]
fn a_full_database_fails_whole_writes_keeps_reads_and_recovers() {
    let (_d, store) = open();
    block_on(async {
        store.enqueue(new_run("before", 0)).await.unwrap();
        let held = store.set_max_size(Some(1)).await.unwrap();
        assert!(
            held >= 4096,
            "the limit never goes below the current size, got {held}"
        );
        // Room for a few dozen of the burst's runs, not for all of them.
        let room = store.set_max_size(Some(held + 256 * 1024)).await.unwrap();
        assert_eq!(room, held + 256 * 1024);
        // Contexts of 4 KiB: every run needs pages of its own.
        let burst = (0..200).map(|i| {
            let store = store.clone();
            let mut run = new_run(&format!("burst {i}"), 0);
            run.context = "x".repeat(4096);
            async move { store.enqueue(run).await }
        });
        let results = futures_util::future::join_all(burst).await;
        let stored: Vec<crate::model::Run> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|(r, _)| r.clone())
            .collect();
        let refused: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(!refused.is_empty(), "a burst of 800 KiB fitted in 256 KiB");
        assert!(!stored.is_empty(), "none of the burst fitted in 256 KiB");
        for err in &refused {
            assert!(
                matches!(err, Error::Unavailable(m) if m.contains("full")),
                "a write refused for lack of room says so: {err}"
            );
        }
        let (last, _) = store
            .metrics()
            .last_write_error()
            .expect("the failures are recorded");
        assert!(last.contains("full"), "{last}");
        assert_eq!(store.metrics().write_failures.get(), refused.len() as u64);
        // Reads work, and they see exactly the writes that were acknowledged.
        let counts = store.counts().await.unwrap();
        assert_eq!(counts["QUEUED"], 1 + stored.len() as u64);
        let page = store.list_runs(None, None, 1000).await.unwrap();
        assert_eq!(page.runs.len(), 1 + stored.len());
        for run in &stored {
            assert_eq!(store.get_run(run.id.clone()).await.unwrap().id, run.id);
            let events = store.events(run.id.clone(), 0).await.unwrap();
            assert_eq!(events.len(), 1, "a stored run has its enqueue event");
        }
        // The fault is lifted: writes go through again, with no restart.
        store.set_max_size(None).await.unwrap();
        let mut big = new_run("after", 0);
        big.context = "y".repeat(64 * 1024);
        store.enqueue(big).await.unwrap();
        assert_eq!(
            store.counts().await.unwrap()["QUEUED"],
            2 + stored.len() as u64
        );
    });
}

/// SQLite may roll a whole transaction back by itself (after SQLITE_FULL, an I/O error, out of
/// memory). Then no write of that batch may be reported as done: the ones before were undone,
/// and the ones after would land in a transaction of their own.
#[test]
fn a_transaction_sqlite_rolled_back_fails_every_write_of_its_batch() {
    let (_d, store) = open();
    block_on(async {
        // Holds the writer so that the next three writes queue up and share one batch.
        let (started, writer_busy) = std::sync::mpsc::channel();
        let mut blocker = Box::pin(store.write(move |_tx| {
            let _ = started.send(());
            std::thread::sleep(std::time::Duration::from_millis(100));
            Ok(())
        }));
        // One poll hands it to the writer; wait until the writer is inside it.
        assert!(futures_util::FutureExt::now_or_never(&mut blocker).is_none());
        writer_busy.recv().unwrap();
        let before = store.enqueue(new_run("before the rollback", 0));
        let rollback = store.write(|tx| {
            tx.conn().execute_batch("ROLLBACK")?;
            Ok(())
        });
        let after = store.enqueue(new_run("after the rollback", 0));
        let (blocked, before, rollback, after) = tokio::join!(blocker, before, rollback, after);
        blocked.unwrap();
        for (what, failed) in [
            ("before", before.map(|_| ())),
            ("rollback", rollback),
            ("after", after.map(|_| ())),
        ] {
            assert!(
                matches!(failed, Err(Error::Unavailable(ref m)) if m.contains("rolled back")),
                "{what}: {failed:?}"
            );
        }
        assert_eq!(
            store.counts().await.unwrap()["QUEUED"],
            0,
            "nothing of the batch is stored"
        );
        // The writer goes on.
        store.enqueue(new_run("later", 0)).await.unwrap();
        assert_eq!(store.counts().await.unwrap()["QUEUED"], 1);
    });
}

/// The database as each older schema version left it, with data (frozen: see the files).
const FROZEN: &[(usize, &str)] = &[
    (1, include_str!("frozen/v1.sql")),
    (2, include_str!("frozen/v2.sql")),
    (3, include_str!("frozen/v3.sql")),
    (4, include_str!("frozen/v4.sql")),
    (5, include_str!("frozen/v5.sql")),
    (6, include_str!("frozen/v6.sql")),
    (7, include_str!("frozen/v7.sql")),
    (8, include_str!("frozen/v8.sql")),
    (9, include_str!("frozen/v9.sql")),
    (10, include_str!("frozen/v10.sql")),
];

#[test]
fn every_older_schema_migrates_with_its_data() {
    assert_eq!(
        FROZEN.len(),
        schema_version(),
        "a migration was added: freeze the database its predecessor leaves (with data) as \
         frozen/v<N>.sql and list it here"
    );
    const DONE: &str = "01900000-0000-7000-8000-000000000001";
    const ACK: &str = "01900000-0000-7000-8000-000000000002";
    const QUEUED: &str = "01900000-0000-7000-8000-000000000003";
    const WAITING: &str = "01900000-0000-7000-8000-000000000004";
    for (version, sql) in FROZEN {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(sql).unwrap();
            let v: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v as usize, *version);
        }
        let store = Store::open(&path, Synchronous::Normal)
            .unwrap_or_else(|e| panic!("v{version} does not migrate: {e}"));
        block_on(async {
            let at = |what: &str| format!("from v{version}: {what}");
            // Version 1: the queue.
            let done = store.get_run(DONE.into()).await.unwrap();
            assert_eq!(done.status, RunStatus::Done, "{}", at("status"));
            assert_eq!(done.procedure, "Anafylaksi behandling");
            assert_eq!(done.context, "akutmodtagelse");
            assert_eq!(done.params, json!({ "missing_tier_policy": "STRICT" }));
            assert_eq!(done.result.as_ref().unwrap()["score"], 9.5);
            assert_eq!(store.events(DONE.into(), 0).await.unwrap().len(), 3);
            let gated = store.get_run(ACK.into()).await.unwrap();
            assert_eq!(gated.status, RunStatus::NeedsAck);
            assert_eq!(
                gated.ack_required.as_ref().unwrap()["missing_tiers"],
                json!(["danish_guideline"]),
                "{}",
                at("ack_required")
            );
            let counts = store.counts().await.unwrap();
            // Version 7 adds a run waiting for its provider.
            assert_eq!(
                (counts["QUEUED"], counts["NEEDS_ACK"], counts["DONE"]),
                (1 + u64::from(*version >= 7), 1, 1),
                "{}",
                at("run counts")
            );
            assert_eq!(
                store.secret_count().await.unwrap(),
                u64::from(*version >= 2)
            );
            // Version 2: secrets stay as they were (the key id decides which key opens them).
            if *version >= 2 {
                assert_eq!(
                    store.recorded_key_id().await.unwrap().as_deref(),
                    Some("k-frozen"),
                    "{}",
                    at("key id")
                );
            }
            // Version 3: the library and its full-text index.
            if *version >= 3 {
                let hits = store.search_sources("pleural".into(), 5).await.unwrap();
                assert_eq!(hits.len(), 1, "{}", at("library search"));
                assert_eq!(hits[0].source.id, "SRC0002");
                let s = store.get_source("SRC0001".into()).await.unwrap();
                assert!(s.text.unwrap().contains("0,5 mg"));
            }
            // Version 4: model calls, their totals and reload history.
            if *version >= 4 {
                assert_eq!(
                    store.llm_spend(DONE.into()).await.unwrap(),
                    (7_500_000_000, 3_750_000_000),
                    "{}",
                    at("spend by stage")
                );
                assert_eq!(done.llm_calls, 2);
                assert_eq!(done.cost_pusd, 11_250_000_000);
                assert_eq!(store.reloads(10).await.unwrap().len(), 1);
            }
            // Version 5: passages; version 6: indexed by analysed terms, which older
            // passages get when the daemon re-indexes (here with a plain lower-casing).
            if *version >= 5 {
                if *version < 6 {
                    assert_eq!(
                        store.index_analyzer().await.unwrap(),
                        "",
                        "{}",
                        at("analyzer")
                    );
                    let rows = store.passages_to_index(0, 100).await.unwrap();
                    assert_eq!(rows.len(), 2, "{}", at("passages to index"));
                    let plain = |s: &str| s.to_lowercase();
                    let terms = rows
                        .iter()
                        .map(|(seq, h, t)| (*seq, plain(h), plain(t), Some(7)))
                        .collect();
                    let titles = store
                        .titles_to_index()
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|(seq, t)| (seq, plain(&t)))
                        .collect();
                    store
                        .set_index_terms(terms, titles, Some("plain".into()))
                        .await
                        .unwrap();
                }
                let titled = store
                    .search_titles("\"lumbalpunktur\"".into(), 10)
                    .await
                    .unwrap();
                assert_eq!(titled.len(), 1, "{}", at("title search"));
                assert_eq!(titled[0].id, "SRC0003");
                // Retrieval's reads: the matching passages unranked, with their source once;
                // the outline of a source; passages by place.
                let found = store
                    .match_passages(
                        vec![
                            Some("\"lumbalpunktur\"".into()),
                            None,
                            Some("\"teknik\"".into()),
                        ],
                        Some("\"teknik\"".into()),
                        Some(("\"lumbalpunktur\"".into(), 5)),
                        100,
                    )
                    .await
                    .unwrap();
                assert_eq!(found.sources.len(), 1, "{}", at("matches"));
                assert_eq!(found.sources[0].id, "SRC0003");
                assert_eq!(found.passages.len(), 2);
                assert!(!found.truncated);
                assert_eq!(found.titled.len(), 1);
                assert_eq!(found.sources[0].pages, Some(12));
                assert_eq!(found.sources[0].media_type, "application/pdf");
                assert_eq!(found.sources[0].passages, 2);
                // Which queries each passage matched, in passage order: the heading
                // "Teknik" names the technique; which words passage 0 carries is the
                // snapshot's.
                let bits: Vec<(u32, u32, bool)> = found
                    .passages
                    .iter()
                    .map(|m| (m.ord, m.groups, m.ranked))
                    .collect();
                assert_eq!(bits[1].0, 1);
                assert!(bits[1].1 & 0b100 != 0 && bits[1].2, "{bits:?}");
                assert_eq!(bits.iter().map(|b| b.1 & 0b010).sum::<u32>(), 0);
                let (outline, _) = store
                    .passage_outlines(vec!["SRC0003".into(), "SRC9999".into()])
                    .await
                    .unwrap();
                assert_eq!(outline[0].1.len(), 2, "{}", at("outline"));
                assert_eq!(outline[0].1[1].page_start, Some(4));
                assert!(outline[1].1.is_empty());
                // Features as the snapshot left them, written by the re-index above (v5), or
                // not computed yet (v6 to v9: the daemon computes them at start).
                let features = match *version {
                    10.. => Some(0),
                    6..=9 => None,
                    _ => Some(7),
                };
                assert_eq!(outline[0].1[1].features, features, "{}", at("features"));
                let at_place = store
                    .passages_at(vec![("SRC0003".into(), vec![1, 0, 9])], false)
                    .await
                    .unwrap();
                assert!(at_place[0].1.text_terms.is_empty());
                assert_eq!(
                    at_place
                        .iter()
                        .map(|(_, p)| p.id.as_str())
                        .collect::<Vec<_>>(),
                    ["SRC0003#1", "SRC0003#0"]
                );
            }
            assert_eq!(
                store.features_fingerprint().await.unwrap(),
                if *version >= 10 {
                    "frozen-features"
                } else {
                    ""
                },
                "{}",
                at("features fingerprint")
            );
            if *version >= 6 {
                assert_eq!(store.index_analyzer().await.unwrap(), "frozen");
            }
            // Version 7: a waiting run, and estimated and truncated calls.
            if *version >= 7 {
                let waiting = store.get_run(WAITING.into()).await.unwrap();
                assert_eq!(waiting.status, RunStatus::Queued);
                assert_eq!(
                    waiting.not_before,
                    Some(4_102_444_800_000),
                    "{}",
                    at("not_before")
                );
                let costs = store
                    .costs(CostQuery {
                        run_limit: 10,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(
                    (costs.total.estimated_calls, costs.total.truncated_calls),
                    (1, 1),
                    "{}",
                    at("estimated and truncated calls")
                );
            }
            // Version 8: the runs that used a source, from their results before it; the
            // source audit.
            if *version >= 3 {
                assert_eq!(
                    store.citing_runs("SRC0001".into()).await.unwrap(),
                    1,
                    "{}",
                    at("citations from the done run's result")
                );
                let cited = store.run_citations(DONE.into()).await.unwrap();
                assert_eq!(cited.len(), 1, "{}", at("run citations"));
                assert_eq!(
                    (cited[0].source_id.as_str(), cited[0].tier.as_str()),
                    ("SRC0001", "danish_guideline")
                );
            }
            if *version >= 8 {
                let history = store.source_history("SRC0002".into()).await.unwrap();
                assert_eq!(history.len(), 1, "{}", at("audit"));
                assert_eq!(history[0].action, "retiered");
                assert_eq!(
                    history[0].new_tier.as_deref(),
                    Some("international_guideline")
                );
                let cited = store.run_citations(ACK.into()).await.unwrap();
                assert_eq!(cited[0].tier, "european_guideline", "{}", at("judged tier"));
            }
            if *version >= 3 {
                let bare = store.sources_without_passages(10).await.unwrap();
                assert_eq!(bare.len(), 2, "{}", at("sources to split"));
                // Version 9: sizes stored, and filled for the sources before it.
                let s = store.get_source("SRC0001".into()).await.unwrap();
                let text = s.text.as_deref().unwrap_or_default();
                assert!(s.chars > 0, "{}", at("chars"));
                assert_eq!(s.chars, text.chars().count() as i64, "{}", at("chars"));
                let stored = store.passages("SRC0001".into()).await.unwrap();
                assert_eq!(s.passages, stored.len() as i64, "{}", at("passage count"));
            }
            // The queue works on the migrated data: the queued run is claimed, a new one
            // enqueued with the old idempotency key is the old run.
            // A run waiting for its `not_before` (version 7) is skipped, though of higher
            // priority, and the claim says when it falls due.
            let claim = store
                .claim_due(vec!["t/w0".into(), "t/w1".into()])
                .await
                .unwrap();
            let claimed = claim.runs;
            assert_eq!(claimed.len(), 1, "{}", at("claim"));
            assert_eq!(claimed[0].run.id, QUEUED);
            assert_eq!(
                claim.next_due,
                (*version >= 7).then_some(4_102_444_800_000),
                "{}",
                at("next due")
            );
            let mut again = new_run("Lumbalpunktur", 0);
            again.idempotency_key = Some("client-key-1".into());
            let (run, created) = store.enqueue(again).await.unwrap();
            assert!(!created, "{}", at("idempotency key"));
            assert_eq!(run.id, QUEUED);
        });
    }
}

/// A source with one passage, with analysed terms as plain lower-cased words.
fn source(title: &str, text: &str, original: Option<&str>) -> super::NewSource {
    let words = |s: &str| s.to_lowercase();
    super::NewSource {
        title: title.into(),
        url: None,
        tier: "danish_guideline".into(),
        tier_reason: "explicit".into(),
        year: None,
        publication_type: None,
        text: text.into(),
        sha256: format!("sha-{title}"),
        demo: false,
        media_type: "application/pdf".into(),
        original_sha256: original.map(str::to_string),
        pages: Some(1),
        title_terms: words(title),
        passages: vec![super::NewPassage {
            ord: 0,
            heading: String::new(),
            page_start: Some(1),
            page_end: Some(1),
            char_start: 0,
            char_end: text.chars().count(),
            text: text.into(),
            heading_terms: String::new(),
            text_terms: words(text),
            features: Some(0),
        }],
    }
}

/// FTS5's own consistency check of every full-text index against its content.
async fn fts_intact(store: &Store) {
    store
        .write(|tx| {
            for table in ["passages_fts", "titles_fts", "sources_fts"] {
                tx.conn().execute_batch(&format!(
                    "INSERT INTO {table} ({table}) VALUES ('integrity-check')"
                ))?;
            }
            Ok(())
        })
        .await
        .expect("the full-text indexes match their tables");
}

/// Deleting a source no run used erases it, its passages and its index rows (the triggers
/// keep the external-content indexes in step: searches after it work and find the rest); a
/// source a run used is retired: out of retrieval, kept with its passages for that run, which
/// keeps the tier it judged it by after a re-tiering. Every change is audited.
#[test]
fn a_used_source_is_retired_an_unused_one_erased_and_the_indexes_stay_in_step() {
    let (_d, store) = open();
    block_on(async {
        let (a, _) = store
            .add_source(source("drain alpha", "thorax drain alpha", Some("f1")))
            .await
            .unwrap();
        let (b, _) = store
            .add_source(source("drain beta", "thorax drain beta", Some("f1")))
            .await
            .unwrap();
        let (c, _) = store
            .add_source(source("drain gamma", "thorax drain gamma", Some("f2")))
            .await
            .unwrap();
        // A run uses B (and names A, which is erased before it records: skipped).
        store.enqueue(new_run("drain", 0)).await.unwrap();
        let claimed = store.claim(vec!["t/w0".into()]).await.unwrap();
        let run = &claimed[0].run;
        let erased = store
            .remove_source(a.id.clone(), "duplicate".into())
            .await
            .unwrap();
        match &erased {
            super::Removal::Erased { original, .. } => {
                assert_eq!(original, &None, "B still uses the original f1")
            }
            other => panic!("{other:?}"),
        }
        assert!(store
            .job_event_citing(
                run.id.clone(),
                run.lease_token,
                "t/w0".into(),
                "retrieved".into(),
                json!({}),
                vec![
                    (a.id.clone(), "danish_guideline".into()),
                    (b.id.clone(), "danish_guideline".into())
                ],
            )
            .await
            .unwrap());
        assert_eq!(store.citing_runs(b.id.clone()).await.unwrap(), 1);
        assert!(matches!(
            store.get_source(a.id.clone()).await,
            Err(Error::SourceNotFound(_))
        ));
        fts_intact(&store).await;
        let found = store
            .match_passages(vec![Some("\"drain\"".into())], None, None, 10)
            .await
            .unwrap();
        let ids: Vec<&str> = found.sources.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert_eq!(found.passages.len(), 2);
        assert!(!ids.contains(&a.id.as_str()));
        assert_eq!(
            store
                .search_sources("alpha".into(), 10)
                .await
                .unwrap()
                .len(),
            0
        );

        // B is re-tiered, then deleted: retired, since the run used it.
        let (retiered, changed) = store
            .retier_source(b.id.clone(), "rct".into(), "it is a trial".into())
            .await
            .unwrap();
        assert!(changed);
        assert_eq!(retiered.tier, "rct");
        let (_, changed) = store
            .retier_source(b.id.clone(), "rct".into(), "again".into())
            .await
            .unwrap();
        assert!(!changed, "the same tier is no change");
        let retired = store
            .remove_source(b.id.clone(), "withdrawn by the publisher".into())
            .await
            .unwrap();
        match &retired {
            super::Removal::Retired { source, cited_by } => {
                assert_eq!(*cited_by, 1);
                assert_eq!(
                    source.retired_reason.as_deref(),
                    Some("withdrawn by the publisher")
                );
            }
            other => panic!("{other:?}"),
        }
        fts_intact(&store).await;
        let found = store
            .match_passages(vec![Some("\"drain\"".into())], None, None, 10)
            .await
            .unwrap();
        assert_eq!(found.passages.len(), 1, "only C is retrieved");
        assert_eq!(found.sources[0].id, c.id);
        assert!(store
            .search_titles("\"beta\"".into(), 10)
            .await
            .unwrap()
            .is_empty());
        // Kept for the run: its passages and the tier the run judged it by.
        assert_eq!(store.passages(b.id.clone()).await.unwrap().len(), 1);
        let cited = store.run_citations(run.id.clone()).await.unwrap();
        assert_eq!(cited.len(), 1);
        assert_eq!(cited[0].tier, "danish_guideline");
        // A re-index leaves it out.
        assert!(store
            .passages_to_index(0, 100)
            .await
            .unwrap()
            .iter()
            .all(|(_, _, t)| !t.contains("beta")));
        // A retired source is not changed again.
        for refused in [
            store
                .remove_source(b.id.clone(), "x".into())
                .await
                .map(|_| ()),
            store
                .retier_source(b.id.clone(), "danish_guideline".into(), "x".into())
                .await
                .map(|_| ()),
        ] {
            assert!(
                matches!(refused, Err(Error::SourceRetired { .. })),
                "{refused:?}"
            );
        }
        // The last user of an original: the file may go.
        match store
            .remove_source(c.id.clone(), "off topic".into())
            .await
            .unwrap()
        {
            super::Removal::Erased { original, .. } => assert_eq!(original.as_deref(), Some("f2")),
            other => panic!("{other:?}"),
        }
        fts_intact(&store).await;
        let mut history = Vec::new();
        for id in [&a.id, &b.id, &c.id] {
            for e in store.source_history(id.clone()).await.unwrap() {
                history.push((e.source_id, e.action));
            }
        }
        assert_eq!(
            history,
            [
                (a.id.clone(), "erased".to_string()),
                (b.id.clone(), "retiered".to_string()),
                (b.id.clone(), "retired".to_string()),
                (c.id.clone(), "erased".to_string()),
            ]
        );
        assert!(matches!(
            store.remove_source("SRC9999".into(), "x".into()).await,
            Err(Error::SourceNotFound(_))
        ));
    });
}

/// One read is one snapshot: a write committed while a read runs is invisible to the rest of
/// that read. Retrieval relies on it: it trusts passages' stored features when the fingerprint
/// read beside them vouches for them, and a recomputation commits features then fingerprint.
#[test]
fn a_read_sees_one_snapshot_while_writes_commit() {
    let (_d, store) = open();
    block_on(async {
        store
            .set_features(Vec::new(), Some("A".into()))
            .await
            .unwrap();
        let (read_first, first_done) = std::sync::mpsc::channel::<()>();
        let (written, wait_write) = std::sync::mpsc::channel::<()>();
        let reader = store.clone();
        let reading = tokio::spawn(async move {
            reader
                .read(move |conn| {
                    let before = library::features_by(conn)?;
                    read_first.send(()).unwrap();
                    wait_write.recv().unwrap();
                    Ok((before, library::features_by(conn)?))
                })
                .await
        });
        tokio::task::spawn_blocking(move || first_done.recv().unwrap())
            .await
            .unwrap();
        store
            .set_features(Vec::new(), Some("B".into()))
            .await
            .unwrap();
        assert_eq!(store.features_fingerprint().await.unwrap(), "B");
        written.send(()).unwrap();
        let (before, after) = reading.await.unwrap().unwrap();
        assert_eq!((before.as_str(), after.as_str()), ("A", "A"));
    });
}
