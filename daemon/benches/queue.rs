//! Queue and HTTP benchmarks. Every figure is a ratio to a limit measured first, in the same
//! run, because this machine's disk and CPU change speed from hour to hour.
//!
//!     cargo bench -p procedurewriter --bench queue            # full run (about 2 minutes)
//!     cargo bench -p procedurewriter --bench queue -- --quick # shorter phases
//!
//! Phases:
//! 1. raw: one-row SQLite transactions per second with the daemon's pragmas (WAL, NORMAL/FULL)
//! 2. lifecycle: enqueue → claim → complete with a no-op runner, in-process, jobs per second
//! 3. latency: enqueue → runner start with idle workers, one job at a time (p50/p99)
//! 4. recovery: the real binary killed with -9 holding running jobs, restarted; time from
//!    spawn until every interrupted job runs again
//! 5. http: the real binary under 64 keep-alive connections: POST /api/write, GET
//!    /api/runs/{id} and GET /health rates; RSS idle and peak

use futures_util::future::LocalBoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use procedurewriter_actors::{
    Enqueue, Job, JobContext, JobRunner, NewRun, Outcome, QueueConfig, QueueMetrics, Store,
    Supervisor, Synchronous,
};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/daemon.rs"]
mod daemon;
use daemon::{block_on, new_key, percentile, Conn, Proc};

struct Opts {
    phase: Duration,
    jobs: usize,
    latency_samples: usize,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let o = if quick {
        Opts {
            phase: Duration::from_secs(1),
            jobs: 5_000,
            latency_samples: 300,
        }
    } else {
        Opts {
            phase: Duration::from_secs(3),
            jobs: 20_000,
            latency_samples: 2_000,
        }
    };
    println!(
        "procedurewriter queue benchmark ({} mode)",
        if quick { "quick" } else { "full" }
    );
    println!(
        "reproduce: cargo bench -p procedurewriter --bench queue{}",
        if quick { " -- --quick" } else { "" }
    );
    println!();

    // `--lifecycle-only`: just phase 2 in NORMAL mode, for profiling.
    if std::env::args().any(|a| a == "--lifecycle-only") {
        println!(
            "lifecycle jobs/s NORMAL {:.0}",
            lifecycle_rate(Synchronous::Normal, o.jobs, 16)
        );
        return;
    }
    let raw_normal = raw_rate(Synchronous::Normal, o.phase);
    let raw_full = raw_rate(Synchronous::Full, o.phase);
    println!("raw one-row transactions/s   NORMAL {raw_normal:>9.0}   FULL {raw_full:>9.0}");

    let full_jobs = (o.jobs / 4).max(1000);
    let life_normal = lifecycle_rate(Synchronous::Normal, o.jobs, 16);
    let life_full = lifecycle_rate(Synchronous::Full, full_jobs, 16);
    println!(
        "lifecycle jobs/s (16 workers) NORMAL {life_normal:>9.0} = {:.2} x raw (target >= 0.5)   FULL {life_full:>9.0} = {:.2} x raw (target >= 1.0)",
        life_normal / raw_normal,
        life_full / raw_full
    );

    let (p50, p99, max) = latency(o.latency_samples);
    println!(
        "enqueue -> runner start      p50 {:.3} ms   p99 {:.3} ms   max {:.3} ms   (target p99 < 5 ms; {} samples)",
        p50 * 1e3, p99 * 1e3, max * 1e3, o.latency_samples
    );

    let (rec, n) = recovery();
    println!("restart recovery             {n} interrupted jobs running again {:.0} ms after spawn (target < 1000 ms)", rec * 1e3);

    let http = http_load(o.phase);
    println!(
        "http, 64 connections         POST /api/write {:>8.0}/s = {:.2} x raw NORMAL (target >= 0.4)",
        http.write, http.write / raw_normal
    );
    println!(
        "                             GET /api/runs/{{id}} {:>8.0}/s vs GET /health {:>8.0}/s = {:.2} (target >= 0.5)",
        http.get_run, http.health, http.get_run / http.health
    );
    println!(
        "                             5xx: {}   errors: {}   write p50 {:.2} ms p99 {:.2} ms",
        http.server_errors,
        http.client_errors,
        http.write_p50 * 1e3,
        http.write_p99 * 1e3
    );
    println!(
        "daemon RSS                   idle {:.1} MB (target < 20)   peak during write load {:.1} MB (target < 64)",
        http.rss_idle_kb as f64 / 1024.0, http.rss_peak_kb as f64 / 1024.0
    );
}

fn raw_rate(sync: Synchronous, phase: Duration) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        },
    )
    .unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .unwrap();
    let mut stmt = conn.prepare("INSERT INTO t (v) VALUES (?1)").unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < phase {
        stmt.execute(["a row of about the size of a run event"])
            .unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Does nothing and finishes at once; reports when it started, if asked.
struct NoopRunner {
    started: Option<tokio::sync::mpsc::UnboundedSender<Instant>>,
}

impl JobRunner for NoopRunner {
    fn run(&self, _job: Job, _ctx: JobContext) -> LocalBoxFuture<'static, Outcome> {
        if let Some(tx) = &self.started {
            let _ = tx.send(Instant::now());
        }
        Box::pin(async { Outcome::Done { result: json!({}) } })
    }
}

fn new_run(i: usize) -> NewRun {
    NewRun {
        procedure: format!("bench {i}"),
        context: String::new(),
        params: json!({}),
        priority: 0,
        idempotency_key: None,
        max_attempts: 3,
    }
}

fn queue_config(workers: usize) -> QueueConfig {
    QueueConfig {
        workers,
        heartbeat_interval: Duration::from_secs(30),
        reaper_interval: Duration::from_secs(30),
        stale_timeout: Duration::from_secs(1800),
        instance: "bench".into(),
    }
}

fn lifecycle_rate(sync: Synchronous, jobs: usize, workers: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    actix_rt::System::new().block_on(async move {
        let store = Store::open(&dir.path().join("q.db"), sync).unwrap();
        let mut events = store.subscribe();
        let (_sup, queue) = Supervisor::start(
            queue_config(workers),
            store.clone(),
            Arc::new(NoopRunner { started: None }),
            QueueMetrics::default(),
        );
        let start = Instant::now();
        let waiter = tokio::task::spawn_local(async move {
            let mut done = 0;
            while done < jobs {
                match events.recv().await {
                    Ok(ev) if ev.kind == "completed" => done += 1,
                    Ok(_) => {}
                    Err(e) => panic!("event feed: {e}"),
                }
            }
        });
        // Clients enqueue with up to 256 requests in flight, as many HTTP clients would.
        let mut inflight: FuturesUnordered<actix::dev::Request<_, Enqueue>> =
            FuturesUnordered::new();
        for i in 0..jobs {
            if inflight.len() >= 256 {
                inflight.next().await.unwrap().unwrap().unwrap();
            }
            inflight.push(queue.send(Enqueue(new_run(i))));
        }
        while let Some(r) = inflight.next().await {
            r.unwrap().unwrap();
        }
        waiter.await.unwrap();
        let rate = jobs as f64 / start.elapsed().as_secs_f64();
        let m = store.metrics();
        println!(
            "  ({jobs} jobs, {} commits, {:.1} writes per commit)",
            m.commits.get(),
            m.writes.get() as f64 / m.commits.get().max(1) as f64
        );
        rate
    })
}

fn latency(samples: usize) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    actix_rt::System::new().block_on(async move {
        let store = Store::open(&dir.path().join("q.db"), Synchronous::Normal).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (_sup, queue) = Supervisor::start(
            queue_config(2),
            store.clone(),
            Arc::new(NoopRunner { started: Some(tx) }),
            QueueMetrics::default(),
        );
        let mut lat = Vec::with_capacity(samples);
        for i in 0..samples {
            let t0 = Instant::now();
            queue.send(Enqueue(new_run(i))).await.unwrap().unwrap();
            let started = rx.recv().await.unwrap();
            lat.push((started - t0).as_secs_f64());
            // Let the completion commit so the next sample starts with idle workers.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lat.sort_by(f64::total_cmp);
        (
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            *lat.last().unwrap(),
        )
    })
}

fn recovery() -> (f64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let jobs = 8;
    let env = [("PROCEDUREWRITER_WORKERS", "8")];
    let key = new_key();
    let (p, _) = Proc::start(&data, &key, &env);
    let addr = p.url_addr.clone();
    block_on(async {
        let mut c = Conn::open(&addr).await;
        for i in 0..jobs {
            let body = json!({ "procedure": format!("r{i}"), "options": { "test": { "duration_ms": 600_000 } } }).to_string();
            let (s, _) = c.request("POST", "/api/write", Some(&body)).await.unwrap();
            assert_eq!(s, 202);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, b) = c.request("GET", "/health", None).await.unwrap();
            let h: serde_json::Value = serde_json::from_slice(&b).unwrap();
            if h["running"] == jobs {
                break;
            }
            assert!(Instant::now() < deadline, "the jobs never all ran: {h}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    drop(p); // SIGKILL
    let (p, spawned) = Proc::start(&data, &key, &env);
    let addr = p.url_addr.clone();
    block_on(async {
        let mut c = Conn::open(&addr).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, b) = c.request("GET", "/health", None).await.unwrap();
            let h: serde_json::Value = serde_json::from_slice(&b).unwrap();
            if h["running"] == jobs && h["busy_workers"] == jobs {
                return (spawned.elapsed().as_secs_f64(), jobs);
            }
            assert!(
                Instant::now() < deadline,
                "the interrupted jobs never ran again: {h}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

struct HttpFigures {
    write: f64,
    get_run: f64,
    health: f64,
    server_errors: u64,
    client_errors: u64,
    write_p50: f64,
    write_p99: f64,
    rss_idle_kb: u64,
    rss_peak_kb: u64,
}

/// Runs `conns` connections issuing `next(i)` requests for `phase`; returns (requests/s,
/// 5xx count, other errors, sorted latencies).
async fn load(
    addr: &str,
    conns: usize,
    phase: Duration,
    make: impl Fn(usize) -> (&'static str, String, Option<String>) + Clone + 'static,
) -> (f64, u64, u64, Vec<f64>) {
    let stats = Arc::new(Mutex::new((0u64, 0u64, 0u64, Vec::new())));
    let start = Instant::now();
    let deadline = start + phase;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let addr = addr.to_string();
        let stats = Arc::clone(&stats);
        let make = make.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut conn = Conn::open(&addr).await;
            let mut i = c;
            while Instant::now() < deadline {
                let (method, path, body) = make(i);
                let t0 = Instant::now();
                let r = conn.request(method, &path, body.as_deref()).await;
                let dt = t0.elapsed().as_secs_f64();
                let reconnect = {
                    let mut s = stats.lock().unwrap();
                    match r {
                        Ok((st, _)) if st < 500 => {
                            s.0 += 1;
                            s.3.push(dt);
                            false
                        }
                        Ok(_) => {
                            s.1 += 1;
                            false
                        }
                        Err(_) => {
                            s.2 += 1;
                            true
                        }
                    }
                };
                if reconnect {
                    conn = Conn::open(&addr).await;
                }
                i += conns;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (ok, e5, err, mut lat) = std::mem::take(&mut *stats.lock().unwrap());
    lat.sort_by(f64::total_cmp);
    (ok as f64 / elapsed, e5, err, lat)
}

fn http_load(phase: Duration) -> HttpFigures {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = Proc::start(
        &dir.path().join("data"),
        &new_key(),
        &[("PROCEDUREWRITER_MAX_CONNECTIONS", "256")],
    );
    let addr = p.url_addr.clone();
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle_kb = p.rss_kb("VmRSS:");
    let body = json!({ "procedure": "Anafylaksi behandling", "context": "load" }).to_string();
    let (write, e5w, errw, lat) = block_on(load(&addr, 64, phase, move |_| {
        ("POST", "/api/write".into(), Some(body.clone()))
    }));
    let rss_peak_kb = p.rss_kb("VmHWM:");
    let run_id = block_on(async {
        let mut c = Conn::open(&addr).await;
        let (_, b) = c.request("GET", "/api/runs?limit=1", None).await.unwrap();
        let page: serde_json::Value = serde_json::from_slice(&b).unwrap();
        page["runs"][0]["run_id"].as_str().unwrap().to_string()
    });
    let path = format!("/api/runs/{run_id}");
    let (get_run, e5g, errg, _) =
        block_on(load(&addr, 64, phase, move |_| ("GET", path.clone(), None)));
    let (health, e5h, errh, _) =
        block_on(load(&addr, 64, phase, |_| ("GET", "/health".into(), None)));
    HttpFigures {
        write,
        get_run,
        health,
        server_errors: e5w + e5g + e5h,
        client_errors: errw + errg + errh,
        write_p50: percentile(&lat, 0.5),
        write_p99: percentile(&lat, 0.99),
        rss_idle_kb,
        rss_peak_kb,
    }
}
