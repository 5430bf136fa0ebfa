//! Fault injection: a database that cannot be written, clients that stall, SIGTERM while the
//! daemon is busy. Each test checks that the fault is reported clearly, that nothing is lost
//! or half-written, and that the daemon comes back by itself once the fault is gone.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

/// Every run id the API lists, following the cursor.
fn all_run_ids(h: &Http) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut path = "/api/runs?limit=1000".to_string();
    loop {
        let r = h.get(&path);
        assert_eq!(r.status, 200, "{r:?}");
        for run in r.body["runs"].as_array().unwrap() {
            ids.insert(run["run_id"].as_str().unwrap().to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/runs?limit=1000&cursor={c}"),
            None => return ids,
        }
    }
}

fn is_final(status: &str) -> bool {
    ["DONE", "FAILED", "CANCELLED"].contains(&status)
}

/// The database size limit stands in for a full disk (SQLite reports both as SQLITE_FULL).
#[test]
fn a_full_database_refuses_writes_with_503_keeps_reads_and_recovers_without_a_restart() {
    let s = Scratch::new();
    let config = write_config(s.dir.path(), "max_database_mb = 0\n");
    let mut cmd = s.command(&[("PROCEDUREWRITER_WORKERS", "4")]);
    cmd.arg("--config").arg(&config);
    let d = Daemon::spawn(cmd);
    let h = d.http();
    // Jobs in flight through the fault, one per worker: they end while the database is full,
    // with results of a written procedure's size (the fillers below wait behind them).
    let running: Vec<String> = (0..4)
        .map(|i| {
            let spec = json!({ "duration_ms": 4000, "result_bytes": 40_000 });
            h.write(&format!("through the fault {i}"), spec)
        })
        .collect();
    for id in &running {
        h.wait_status(id, "RUNNING", T);
    }

    write_config(s.dir.path(), "max_database_mb = 1\n");
    d.signal(libc::SIGHUP);
    wait_for("the size limit to be applied", T, || {
        let r = h.get("/api/reloads");
        (r.body["reloads"][0]["applied"]["max_database_mb"] == json!([0, 1])).then_some(())
    });

    // Fill it to the brim: 19 KB contexts until the database refuses one, then smaller ones
    // until it refuses even the smallest, so that the jobs' own small writes meet it too.
    let mut accepted = Vec::new();
    let mut refused: Option<(String, Resp)> = None;
    for size in [19_000, 4_000, 800, 160, 30, 1] {
        let context = "x".repeat(size);
        for i in 0..500 {
            let key = format!("fill-{size}-{i}");
            let r = h.post_with_header(
                "/api/write",
                ("idempotency-key", &key),
                &json!({ "procedure": format!("filler {size} {i}"), "context": context }),
            );
            match r.status {
                202 => accepted.push(r.body["run_id"].as_str().unwrap().to_string()),
                503 => {
                    refused.get_or_insert((key, r));
                    break;
                }
                other => panic!("unexpected answer while filling the database: {other} {r:?}"),
            }
        }
    }
    let (refused_key, refused) = refused.expect("a 1 MiB database took 10 MB of contexts");
    refused.assert_error(503, "database_unavailable");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("full") && message.contains("max_database_mb"),
        "the 503 says what is wrong and what to do: {message}"
    );

    // Reads go on, and they show exactly what was acknowledged: the refused write left nothing.
    let mut expected: BTreeSet<String> = running.iter().cloned().collect();
    expected.extend(accepted.iter().cloned());
    assert_eq!(all_run_ids(&h), expected);
    assert_eq!(
        h.run(&accepted[0])["context"].as_str().unwrap().len(),
        19_000
    );
    let health = h.get("/health");
    assert_eq!(health.status, 503, "{health:?}");
    assert_eq!(health.body["db_writes"]["ok"], false, "{health:?}");
    assert!(health.body["db_writes"]["last_error"]
        .as_str()
        .unwrap()
        .contains("full"));
    assert!(health.body["queue_depth"].is_u64(), "{health:?}");
    let metrics = h.get("/metrics");
    assert_eq!(metrics.status, 200);
    let failures = metrics
        .body
        .as_str()
        .unwrap()
        .lines()
        .find(|l| l.starts_with("procedurewriter_store_write_failures_total "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("the write failures counter");
    assert!(failures >= 1);

    // Jobs that end meanwhile cannot record their outcome: their workers keep the lease and
    // retry instead of dropping the result.
    wait_for("the finishing jobs to meet the full database", T, || {
        d.log_text()
            .contains("cannot record the job's outcome yet; retrying")
            .then_some(())
    });
    for id in &running {
        assert_eq!(
            h.status(id),
            "RUNNING",
            "no outcome is lost or half-recorded"
        );
    }

    // The fault is removed (the limit lifted, as freeing disk space would): writes come back
    // with no restart, and the same idempotency key now makes a new run — the refused request
    // had stored nothing under it.
    write_config(s.dir.path(), "max_database_mb = 0\n");
    d.signal(libc::SIGHUP);
    let after = wait_for("writes to be accepted again", T, || {
        let r = h.post_with_header(
            "/api/write",
            ("idempotency-key", &refused_key),
            &json!({ "procedure": "after the fault" }),
        );
        (r.status == 202).then_some(r)
    });
    assert_eq!(after.header("idempotent-replayed"), None, "{after:?}");
    expected.insert(after.body["run_id"].as_str().unwrap().to_string());
    assert_eq!(all_run_ids(&h), expected);

    // Every run, those in flight through the fault included, ends DONE, once.
    for id in &expected {
        h.wait_status(id, "DONE", Duration::from_secs(60));
        let finals = h
            .events(id)
            .iter()
            .filter(|e| is_final(e["status"].as_str().unwrap_or("")))
            .count();
        assert_eq!(finals, 1, "run {id}: {:#?}", h.events(id));
    }
    wait_for("/health to be ok again", T, || {
        let r = h.get("/health");
        (r.status == 200 && r.body["db_writes"]["ok"] == true).then_some(())
    });
    let ok: String = s
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

/// How many times the daemon's log says `line`.
fn log_count(d: &Daemon, line: &str) -> usize {
    d.log_text().matches(line).count()
}

/// Waiting for the database is not an attempt (issue 16, item 6): a job whose writes meet a
/// full database is handed back to the queue with its attempt refunded, each time, and the
/// run ends DONE on its first attempt once there is room — three episodes spend nothing.
#[test]
fn three_episodes_of_a_full_database_do_not_spend_a_running_jobs_attempts() {
    let s = Scratch::new();
    let config = write_config(s.dir.path(), "max_database_mb = 0\n");
    let mut cmd = s.command(&[("PROCEDUREWRITER_WORKERS", "1")]);
    cmd.arg("--config").arg(&config);
    let d = Daemon::spawn(cmd);
    let h = d.http();
    // Over 1 MiB of runs, so that a 1 MiB limit holds the database at whatever size it has.
    let ballast: Vec<String> = (0..60)
        .map(|i| {
            let r = h.post_json(
                "/api/write",
                &json!({ "procedure": format!("ballast {i}"), "context": "x".repeat(19_000) }),
            );
            assert_eq!(r.status, 202, "{r:?}");
            r.body["run_id"].as_str().unwrap().to_string()
        })
        .collect();
    for id in &ballast {
        h.wait_status(id, "DONE", T);
    }
    // A job that writes as it goes (a progress event every 10 ms), so each full database
    // meets it mid-run.
    let id = h.write(
        "through three outages",
        json!({ "duration_ms": 8000, "progress_ms": 10 }),
    );
    let limit = |mb: u32, applied: usize| {
        write_config(s.dir.path(), &format!("max_database_mb = {mb}\n"));
        d.signal(libc::SIGHUP);
        wait_for("the size limit to be applied", T, || {
            (log_count(&d, "database size limit applied") == applied).then_some(())
        });
    };
    let requeued = |h: &Http| -> Vec<Value> {
        h.events(&id)
            .into_iter()
            .filter(|e| e["kind"] == "requeued")
            .collect()
    };
    for episode in 1..=3 {
        let run = wait_for("the job to run", T, || {
            let run = h.run(&id);
            (run["status"] == "RUNNING").then_some(run)
        });
        assert_eq!(run["attempts"], 1, "episode {episode}: {run:#}");
        limit(1, 2 * episode - 1);
        wait_for("the job to meet the full database", T, || {
            (log_count(&d, "the job cannot go on while the database refuses writes") >= episode)
                .then_some(())
        });
        limit(0, 2 * episode);
        wait_for("the run to be handed back", T, || {
            (requeued(&h).len() >= episode).then_some(())
        });
    }

    let run = h.wait_status(&id, "DONE", Duration::from_secs(60));
    assert_eq!(
        run["attempts"], 1,
        "three outages spent no attempt: {run:#}"
    );
    let kinds = h.event_kinds(&id);
    assert!(!kinds.iter().any(|k| k == "attempt_failed"), "{kinds:?}");
    let deferrals = requeued(&h);
    assert!(deferrals.len() >= 3, "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| *k == "claimed").count(),
        deferrals.len() + 1,
        "{kinds:?}"
    );
    for e in &deferrals {
        assert_eq!(e["status"], "QUEUED", "{e}");
        assert_eq!(e["details"]["attempt_refunded"], 1, "{e}");
        let reason = e["details"]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("database unavailable") && reason.contains("full"),
            "the event says why: {reason}"
        );
    }
    let metrics = h.get("/metrics");
    assert!(
        metrics
            .body
            .as_str()
            .unwrap()
            .lines()
            .any(|l| l == format!("procedurewriter_deferrals_total {}", deferrals.len())),
        "{metrics:?}"
    );
}

/// Reads until the peer closes or `limit` passes; returns what arrived and whether it closed.
fn read_until_closed(s: &mut std::net::TcpStream, limit: Duration) -> (String, bool) {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let closed = match s.read_to_end(&mut out) {
        Ok(_) => true,
        Err(e) => matches!(e.kind(), std::io::ErrorKind::ConnectionReset),
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

#[test]
fn a_stalled_upload_gets_408_and_stalled_headers_are_cut_off() {
    let s = Scratch::new();
    let d = s.start(&[
        ("PROCEDUREWRITER_HEADER_READ_TIMEOUT_S", "1"),
        ("PROCEDUREWRITER_BODY_READ_TIMEOUT_S", "1"),
    ]);
    let a = d.addr();
    let h = d.http();

    // A body promised and never sent: 408 with a JSON error, and nothing enqueued.
    let mut body_stall = std::net::TcpStream::connect(&a).unwrap();
    body_stall
        .write_all(
            b"POST /api/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"procedure\": \"sl",
        )
        .unwrap();
    let started = Instant::now();
    let (answer, closed) = read_until_closed(&mut body_stall, T);
    assert!(closed, "the stalled upload's connection was closed");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let json: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(json["error"]["code"], "body_timeout", "{json}");
    assert_eq!(h.get("/api/runs").body["runs"], json!([]));

    // Headers begun and never finished: the connection is closed.
    let mut header_stall = std::net::TcpStream::connect(&a).unwrap();
    header_stall
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let (_, closed) = read_until_closed(&mut header_stall, T);
    assert!(
        closed,
        "a client that never finishes its headers is cut off"
    );
}

#[test]
fn the_connection_limit_holds_further_clients_back_until_a_slot_frees() {
    let s = Scratch::new();
    let d = s.start(&[
        ("PROCEDUREWRITER_HEADER_READ_TIMEOUT_S", "60"),
        ("PROCEDUREWRITER_MAX_CONNECTIONS", "4"),
    ]);
    let a = d.addr();
    // Four idle connections take every slot (each sends half a request and waits).
    let mut idle: Vec<std::net::TcpStream> = (0..4)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(&a).unwrap();
            c.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
            c
        })
        .collect();
    // A fifth client is accepted by the kernel but not served while they hold the slots.
    let mut fifth = std::net::TcpStream::connect(&a).unwrap();
    fifth
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (early, _) = read_until_closed(&mut fifth, Duration::from_millis(500));
    assert_eq!(
        early, "",
        "the fifth connection was served beyond the limit of four"
    );
    // One idle client leaves: the fifth is served.
    drop(idle.pop());
    let (answer, closed) = read_until_closed(&mut fifth, T);
    assert!(closed && answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Opens an event stream on a connection of its own and reads its answer's head (and, for a
/// refusal, its body): (the connection, the head and what followed it so far).
fn open_stream(addr: &str, run: &str) -> (std::net::TcpStream, String) {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(
        format!(
            "GET /api/runs/{run}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Accept: text/event-stream\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = c.read(&mut buf).expect("an answer to the stream request");
        assert!(
            n > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    (c, String::from_utf8_lossy(&got).into_owned())
}

/// Issue 16, item 8: event streams cannot take the connections short requests need. More
/// streams than `max_connections` are served side by side, one past `max_event_streams` is
/// refused with the JSON 503, `/health` and a cancel answer at once meanwhile, and the streams
/// deliver to the end; a closed stream frees its slot.
#[test]
fn event_streams_have_their_own_limit_and_leave_room_for_short_requests() {
    let s = Scratch::new();
    let d = s.start(&[
        ("PROCEDUREWRITER_MAX_CONNECTIONS", "2"),
        ("PROCEDUREWRITER_MAX_EVENT_STREAMS", "3"),
    ]);
    let a = d.addr();
    let h = d.http();
    let id = h.write("followed", json!({ "duration_ms": 60_000 }));
    h.wait_status(&id, "RUNNING", T);

    // Three streams: more than the two connections, all open at once.
    let mut streams: Vec<std::net::TcpStream> = (0..3)
        .map(|_| {
            let (c, head) = open_stream(&a, &id);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert!(head.to_lowercase().contains("text/event-stream"), "{head}");
            c
        })
        .collect();

    // A fourth is refused, saying what to do.
    let (mut refused, head) = open_stream(&a, &id);
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let length: usize = head
        .to_lowercase()
        .lines()
        .find_map(|l| l.strip_prefix("content-length: ")?.trim().parse().ok())
        .expect("a JSON body with its length");
    let mut body = head.split_once("\r\n\r\n").unwrap().1.as_bytes().to_vec();
    while body.len() < length {
        let mut buf = [0u8; 1024];
        let n = refused.read(&mut buf).unwrap();
        assert!(n > 0);
        body.extend_from_slice(&buf[..n]);
    }
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "too_many_streams", "{json}");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("max_event_streams") && message.contains("?after="),
        "the 503 says what to do: {message}"
    );
    drop(refused);

    // Short requests are answered at once while the streams are open.
    let base = d.url.clone();
    let health = within(
        "/health with every stream slot taken",
        Duration::from_secs(5),
        {
            let base = base.clone();
            move || Http::new(&base).get("/health")
        },
    );
    assert_eq!(health.status, 200, "{health:?}");
    let cancel = within(
        "a cancel with every stream slot taken",
        Duration::from_secs(5),
        {
            let (base, id) = (base.clone(), id.clone());
            move || Http::new(&base).post_empty(&format!("/api/runs/{id}/cancel"))
        },
    );
    assert_eq!(cancel.status, 202, "{cancel:?}");

    // Every stream delivers the cancel and the final event, then closes.
    for c in &mut streams {
        let (text, closed) = read_until_closed(c, T);
        assert!(closed, "the stream closed after the final event: {text}");
        assert!(
            text.contains("event: cancel_requested") && text.contains("event: cancelled"),
            "{text}"
        );
    }
    // Their slots are free again: a new stream is served (it replays and closes).
    let (mut again, head) = open_stream(&a, &id);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (text, closed) = read_until_closed(&mut again, T);
    let text = head + &text;
    assert!(closed && text.contains("event: cancelled"), "{text}");
}

/// What one load client saw.
#[derive(Default)]
struct Seen {
    accepted: Vec<String>,
    refused_shutting_down: usize,
    unexpected: Vec<String>,
}

#[test]
fn sigterm_under_heavy_load_loses_nothing_and_exits_cleanly() {
    let s = Scratch::new();
    let env = [
        ("PROCEDUREWRITER_WORKERS", "4"),
        ("PROCEDUREWRITER_SHUTDOWN_GRACE_S", "1"),
    ];
    let d = s.start(&env);
    let url = d.url.clone();
    // Two jobs that outlast the grace hold two workers; the other two churn through the load.
    let h = d.http();
    let long: Vec<String> = (0..2)
        .map(|i| h.write(&format!("long {i}"), json!({ "duration_ms": 8000 })))
        .collect();
    for id in &long {
        h.wait_status(id, "RUNNING", T);
    }
    let term_sent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..12)
        .map(|c| {
            let url = url.clone();
            let term_sent = std::sync::Arc::clone(&term_sent);
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .into();
                let mut seen = Seen::default();
                let mut rng = fastrand::Rng::with_seed(c);
                for i in 0.. {
                    let spec = json!({ "duration_ms": rng.u64(0..400) });
                    let body = json!({ "procedure": format!("load {c}-{i}"), "options": { "test": spec } });
                    let sent = agent
                        .post(format!("{url}/api/write"))
                        .header("content-type", "application/json")
                        .send(body.to_string());
                    let mut resp = match sent {
                        Ok(r) => r,
                        // The listener is gone: the daemon is shutting down or has exited.
                        Err(_) if term_sent.load(std::sync::atomic::Ordering::SeqCst) => break,
                        Err(e) => {
                            seen.unexpected.push(format!("transport error before SIGTERM: {e}"));
                            break;
                        }
                    };
                    let status = resp.status().as_u16();
                    let text = resp.body_mut().read_to_string().unwrap_or_default();
                    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    match status {
                        202 => seen.accepted.push(json["run_id"].as_str().unwrap().to_string()),
                        503 if json["error"]["code"] == "shutting_down" => {
                            seen.refused_shutting_down += 1
                        }
                        _ => seen.unexpected.push(format!("{status} {text}")),
                    }
                    // Reads go on too, until the end.
                    if let Some(id) = seen.accepted.last() {
                        if let Ok(mut r) = agent.get(format!("{url}/api/runs/{id}")).call() {
                            let status = r.status().as_u16();
                            let _ = r.body_mut().read_to_string();
                            if status != 200 {
                                seen.unexpected.push(format!("GET run: {status}"));
                            }
                        }
                    }
                }
                seen
            })
        })
        .collect();

    // Heavy load: a queue far deeper than the workers, jobs running, writes arriving.
    wait_for("a deep queue", T, || {
        (h.get("/health").body["queue_depth"].as_u64().unwrap_or(0) >= 100).then_some(())
    });
    term_sent.store(true, std::sync::atomic::Ordering::SeqCst);
    let signalled = Instant::now();
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(T);
    let exit_time = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "a clean exit under load");

    let mut accepted: BTreeSet<String> = long.iter().cloned().collect();
    let mut refused = 0;
    for c in clients {
        let seen = c.join().unwrap();
        assert!(seen.unexpected.is_empty(), "{:?}", seen.unexpected);
        accepted.extend(seen.accepted);
        refused += seen.refused_shutting_down;
    }

    // Every acknowledged run is there, no other run is, and each finishes exactly once.
    let db = s.db();
    let stored: BTreeSet<String> = db
        .prepare("SELECT id FROM runs")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        stored, accepted,
        "runs lost or made without an acknowledgement"
    );
    let running: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE status = 'RUNNING'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(running, 0, "every lease was handed back");
    for id in &long {
        let released: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM run_events WHERE run_id = ?1 AND kind = 'lease_released'",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            released, 1,
            "the job still running after the grace was handed back"
        );
    }
    drop(db);
    let d = s.start(&env);
    let h = d.http();
    for id in &accepted {
        let run = h.wait_status(id, "DONE", Duration::from_secs(120));
        assert_eq!(
            run["attempts"], 1,
            "a graceful stop spends no attempt: {run:#}"
        );
    }
    let finals: i64 = s
        .db()
        .query_row(
            "SELECT COUNT(*) FROM run_events WHERE kind = 'completed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(finals as usize, accepted.len(), "one completion per run");
    eprintln!(
        "SIGTERM under load: {} runs accepted, {} refused while draining, exit after {:?}",
        accepted.len(),
        refused,
        exit_time
    );
}
