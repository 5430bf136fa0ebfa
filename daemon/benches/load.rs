//! Load and soak: 64 clients against the real binary, each enqueuing a job and then following
//! it to its end — by polling `GET /api/runs/{id}` or by streaming its events — while every
//! tenth round also lists runs. It fails (exit code ≠ 0) on any 5xx, any transport error or any
//! lost run, and prints latency percentiles per kind of request.
//!
//!     cargo bench -p procedurewriter --bench load              # 64 clients for 60 s
//!     cargo bench -p procedurewriter --bench load -- --quick   # 64 clients for 15 s (CI)
//!     cargo bench -p procedurewriter --bench load -- --soak    # 10 minutes, RSS every 30 s
//!
//! `--seconds N` sets any other duration. The daemon runs the test runner (jobs of 0–20 ms) on
//! 4 workers with `sqlite_synchronous = NORMAL`; the load generator runs on one thread.

use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "support/daemon.rs"]
mod daemon;
use daemon::{block_on, new_key, percentile, Conn, Proc};

const CLIENTS: usize = 64;
/// How often a polling client asks about its run.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// A stream that has not ended this long after its job could have is an error.
const STREAM_LIMIT: Duration = Duration::from_secs(60);

/// What the clients saw, shared between the tasks of the one load thread.
#[derive(Default)]
struct Tally {
    /// Latencies in seconds by kind of request.
    latency: BTreeMap<&'static str, Vec<f64>>,
    server_errors: Vec<String>,
    other_errors: Vec<String>,
    accepted: Vec<String>,
}

impl Tally {
    fn record(
        &mut self,
        kind: &'static str,
        t0: Instant,
        answer: &Result<(u16, bytes::Bytes), String>,
        want: u16,
    ) {
        self.latency
            .entry(kind)
            .or_default()
            .push(t0.elapsed().as_secs_f64());
        match answer {
            Ok((status, _)) if *status == want => {}
            Ok((status, body)) if *status >= 500 => self.server_errors.push(format!(
                "{kind}: {status} {}",
                String::from_utf8_lossy(body)
            )),
            Ok((status, body)) => self.other_errors.push(format!(
                "{kind}: {status} {}",
                String::from_utf8_lossy(body)
            )),
            Err(e) => self.other_errors.push(format!("{kind}: {e}")),
        }
    }
}

fn final_status(status: &str) -> bool {
    matches!(status, "DONE" | "FAILED" | "CANCELLED")
}

async fn client(addr: String, c: usize, deadline: Instant, tally: Rc<RefCell<Tally>>) {
    let mut conn = Conn::open(&addr).await;
    let mut rng = fastrand::Rng::with_seed(c as u64);
    let streams = c.is_multiple_of(4);
    let mut round = 0usize;
    while Instant::now() < deadline {
        round += 1;
        let body = json!({
            "procedure": format!("load {c}-{round}"),
            "options": { "test": { "duration_ms": rng.u64(0..=20) } },
        })
        .to_string();
        let t0 = Instant::now();
        let answer = conn.request("POST", "/api/write", Some(&body)).await;
        tally.borrow_mut().record("enqueue", t0, &answer, 202);
        let Ok((202, bytes)) = answer else {
            conn = Conn::open(&addr).await;
            continue;
        };
        let run: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let Some(id) = run["run_id"].as_str().map(str::to_string) else {
            tally
                .borrow_mut()
                .other_errors
                .push(format!("enqueue answered without a run id: {run}"));
            continue;
        };
        tally.borrow_mut().accepted.push(id.clone());
        if streams {
            let t0 = Instant::now();
            let path = format!("/api/runs/{id}/events");
            let answer = tokio::time::timeout(
                STREAM_LIMIT,
                conn.request_accepting("GET", &path, None, "text/event-stream"),
            )
            .await
            .unwrap_or_else(|_| Err("the event stream did not end".into()));
            let ended = matches!(&answer, Ok((200, b)) if String::from_utf8_lossy(b).contains("event: completed"));
            tally
                .borrow_mut()
                .record("stream to the final event", t0, &answer, 200);
            if answer.is_ok() && !ended {
                tally
                    .borrow_mut()
                    .other_errors
                    .push(format!("stream of {id} ended without its completion"));
            }
            // An event stream ends its connection (`Connection: close`: a stream holds a stream
            // slot, apart from the connections, for exactly as long as it runs), so the next
            // request goes on a new one.
            conn = Conn::open(&addr).await;
        } else {
            loop {
                let t0 = Instant::now();
                let answer = conn.request("GET", &format!("/api/runs/{id}"), None).await;
                tally.borrow_mut().record("poll", t0, &answer, 200);
                match answer {
                    Ok((200, b)) => {
                        let run: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                        if final_status(run["status"].as_str().unwrap_or("")) {
                            break;
                        }
                    }
                    Ok(_) => break,
                    Err(_) => {
                        conn = Conn::open(&addr).await;
                        break;
                    }
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
        }
        if round.is_multiple_of(10) {
            let t0 = Instant::now();
            let answer = conn.request("GET", "/api/runs?limit=20", None).await;
            tally.borrow_mut().record("list", t0, &answer, 200);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let soak = args.iter().any(|a| a == "--soak");
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(if soak {
            600
        } else if quick {
            15
        } else {
            60
        });
    let mode = if soak {
        " -- --soak"
    } else if quick {
        " -- --quick"
    } else {
        ""
    };
    println!("procedurewriter load benchmark: {CLIENTS} clients for {seconds} s");
    println!("reproduce: cargo bench -p procedurewriter --bench load{mode}");
    println!();

    let dir = tempfile::tempdir().unwrap();
    let (p, _) = Proc::start(
        &dir.path().join("data"),
        &new_key(),
        &[
            ("PROCEDUREWRITER_WORKERS", "4"),
            ("PROCEDUREWRITER_MAX_CONNECTIONS", "256"),
        ],
    );
    let addr = p.url_addr.clone();
    let rss_start = p.rss_kb("VmRSS:");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tally = Rc::new(RefCell::new(Tally::default()));
    // RSS samples while the load runs: (seconds since start, kB).
    let samples: Rc<RefCell<Vec<(u64, u64)>>> = Rc::default();
    let sample_every = Duration::from_secs(if seconds >= 300 { 30 } else { 5 });
    block_on({
        let tally = Rc::clone(&tally);
        let samples = Rc::clone(&samples);
        let pid = p.child.id();
        async move {
            let mut tasks = Vec::new();
            for c in 0..CLIENTS {
                tasks.push(tokio::task::spawn_local(client(
                    addr.clone(),
                    c,
                    deadline,
                    Rc::clone(&tally),
                )));
            }
            let sampler = tokio::task::spawn_local(async move {
                while Instant::now() < deadline {
                    tokio::time::sleep(sample_every).await;
                    samples.borrow_mut().push((
                        started.elapsed().as_secs(),
                        daemon::rss_kb_of(pid, "VmRSS:"),
                    ));
                }
            });
            for t in tasks {
                t.await.unwrap();
            }
            sampler.await.unwrap();
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end = p.rss_kb("VmRSS:");
    let rss_peak = p.rss_kb("VmHWM:");

    // No lost runs: every acknowledged run is there and ends; the daemon has no other run.
    let tally = Rc::try_unwrap(tally).ok().unwrap().into_inner();
    let (lost, listed, settle) = block_on(check_runs(p.url_addr.clone(), tally.accepted.clone()));

    let total: usize = tally.latency.values().map(Vec::len).sum();
    println!(
        "requests: {total} in {elapsed:.1} s = {:.0}/s; 5xx: {}; other errors: {}",
        total as f64 / elapsed,
        tally.server_errors.len(),
        tally.other_errors.len()
    );
    println!(
        "{:<28} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "latency (ms)", "count", "p50", "p90", "p99", "max"
    );
    for (kind, mut v) in tally.latency {
        v.sort_by(f64::total_cmp);
        println!(
            "{kind:<28} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            v.len(),
            percentile(&v, 0.5) * 1e3,
            percentile(&v, 0.9) * 1e3,
            percentile(&v, 0.99) * 1e3,
            v.last().unwrap() * 1e3
        );
    }
    println!(
        "runs: {} accepted ({:.0}/s), {listed} listed by the daemon, {lost} lost, every one final (checked one by one in {:.1} s)",
        tally.accepted.len(),
        tally.accepted.len() as f64 / elapsed,
        settle.as_secs_f64()
    );
    println!(
        "RSS: start {:.1} MB, end {:.1} MB (heap and other anonymous {:.1}, files {:.1}, shared memory {:.1}), peak {:.1} MB",
        rss_start as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        p.rss_kb("RssAnon:") as f64 / 1024.0,
        p.rss_kb("RssFile:") as f64 / 1024.0,
        p.rss_kb("RssShmem:") as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );
    let size_mb = |name: &str| {
        std::fs::metadata(dir.path().join("data").join(name))
            .map_or(0.0, |m| m.len() as f64 / 1048576.0)
    };
    println!(
        "disk: database {:.1} MB, write-ahead log {:.1} MB",
        size_mb("procedurewriter.db"),
        size_mb("procedurewriter.db-wal")
    );
    let samples = samples.borrow();
    if soak || seconds >= 120 {
        let line: Vec<String> = samples
            .iter()
            .map(|(s, kb)| format!("{s}s {:.1}", *kb as f64 / 1024.0))
            .collect();
        println!("RSS samples (MB): {}", line.join(", "));
        // Growth after warm-up: from the first sample past one minute to the end.
        if let Some((at, base)) = samples.iter().find(|(s, _)| *s >= 60) {
            println!(
                "RSS growth from {at} s to the end: {:+.1} MB ({:+.1} %)",
                (rss_end as f64 - *base as f64) / 1024.0,
                (rss_end as f64 / *base as f64 - 1.0) * 100.0
            );
        }
    }
    for e in tally
        .server_errors
        .iter()
        .chain(&tally.other_errors)
        .take(10)
    {
        println!("error: {e}");
    }
    // The log starts over at 16 MiB and is cut back to 64 MiB (store::checkpoint_loop); one
    // that kept growing filled 1.6 GB in a minute of this load.
    assert!(
        size_mb("procedurewriter.db-wal") < 128.0,
        "the write-ahead log grows without bound"
    );
    assert!(tally.server_errors.is_empty(), "5xx answers under load");
    assert!(tally.other_errors.is_empty(), "errors under load");
    assert_eq!(lost, 0, "runs lost under load");
    assert_eq!(
        listed,
        tally.accepted.len(),
        "runs the clients never asked for"
    );
}

/// Waits for every accepted run to be final; returns (lost runs, runs the daemon lists, how long
/// the check took).
async fn check_runs(addr: String, accepted: Vec<String>) -> (usize, usize, Duration) {
    let t0 = Instant::now();
    let mut conn = Conn::open(&addr).await;
    let mut lost = 0;
    for id in &accepted {
        loop {
            let (status, body) = conn
                .request("GET", &format!("/api/runs/{id}"), None)
                .await
                .unwrap();
            if status == 404 {
                lost += 1;
                break;
            }
            let run: Value = serde_json::from_slice(&body).unwrap();
            if final_status(run["status"].as_str().unwrap_or("")) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "runs still not final: {run}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let settle = t0.elapsed();
    let mut listed = 0;
    let mut path = "/api/runs?limit=1000".to_string();
    loop {
        let (_, body) = conn.request("GET", &path, None).await.unwrap();
        let page: Value = serde_json::from_slice(&body).unwrap();
        listed += page["runs"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/runs?limit=1000&cursor={c}"),
            None => return (lost, listed, settle),
        }
    }
}
