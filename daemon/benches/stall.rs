//! Does the daemon keep answering while it works? `/health` latency, polled every 5 ms on its
//! own connection, while the daemon (1) refuses or parses a deeply nested HTML upload, (2)
//! parses a large, ordinary HTML upload, (3) runs and packages eight procedures at once with
//! the offline writer. Before the blocking pool all of this ran on the thread that serves HTTP.
//!
//!     cargo bench -p procedurewriter --bench stall
//!     cargo bench -p procedurewriter --bench stall -- --binary OLD/target/release/procedurewriter
//!
//! `--binary` measures another build the same way (for a before/after figure); `--quick` (CI)
//! uses a smaller nested upload.

#[path = "support/daemon.rs"]
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{new_key, percentile, Proc};

/// `/health` latencies (ms), by the phase that was running when each was sent.
struct Poller {
    phase: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Vec<f64>>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Poller {
    fn start(base: String, phases: usize) -> Poller {
        let phase = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(vec![Vec::new(); phases]));
        let (p, s, out) = (phase.clone(), stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(600)))
                .build()
                .into();
            while !s.load(Ordering::Relaxed) {
                let now = p.load(Ordering::Relaxed);
                let t = Instant::now();
                let ok = agent
                    .get(format!("{base}/health"))
                    .call()
                    .map(|mut r| {
                        let _ = r.body_mut().read_to_string();
                    })
                    .is_ok();
                if ok {
                    out.lock().unwrap()[now].push(t.elapsed().as_secs_f64() * 1e3);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Poller {
            phase,
            stop,
            samples,
            thread,
        }
    }

    fn finish(self) -> Vec<Vec<f64>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        Arc::try_unwrap(self.samples).unwrap().into_inner().unwrap()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(900)))
        .build()
        .into()
}

/// POSTs an HTML document; its status and how long it took.
fn upload(base: &str, body: &[u8], title: &str) -> (u16, f64) {
    let t = Instant::now();
    let r = agent()
        .post(format!(
            "{base}/api/sources?title={title}&tier=library_document"
        ))
        .header("content-type", "text/html")
        .send(body)
        .unwrap();
    (r.status().as_u16(), t.elapsed().as_secs_f64())
}

/// An ordinary but large HTML guideline: sections of paragraphs, lists and tables.
fn large_html(target_bytes: usize) -> Vec<u8> {
    let mut h = String::from("<html><body><h1>Stor retningslinje</h1>");
    let mut i = 0;
    while h.len() < target_bytes {
        i += 1;
        h.push_str(&format!(
            "<section><h2>Afsnit {i}</h2><p>Patienten observeres efter proceduren, og \
             værdierne noteres i journalen hvert femte minut i den første time.</p>\
             <ul><li>Puls og blodtryk</li><li>Respirationsfrekvens</li></ul>\
             <table><tr><td>Dosis</td><td>0,5 mg</td></tr></table></section>"
        ));
    }
    h.push_str("</body></html>");
    h.into_bytes()
}

fn wait_done(base: &str, ids: &[String]) {
    let a = agent();
    let deadline = Instant::now() + Duration::from_secs(600);
    for id in ids {
        loop {
            let mut r = a.get(format!("{base}/api/runs/{id}")).call().unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
            let s = v["status"].as_str().unwrap_or_default().to_string();
            if matches!(s.as_str(), "DONE" | "FAILED" | "CANCELLED") {
                assert_eq!(s, "DONE", "{v}");
                break;
            }
            assert!(Instant::now() < deadline, "runs did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let binary = args
        .iter()
        .position(|a| a == "--binary")
        .and_then(|i| args.get(i + 1).cloned());
    let nested_divs = if quick { 20_000 } else { 40_000 };
    println!("procedurewriter stall benchmark: /health while the daemon parses and packages");
    println!(
        "reproduce: cargo bench -p procedurewriter --bench stall --{}{}\n",
        if quick { " --quick" } else { "" },
        binary
            .as_deref()
            .map(|b| format!(" --binary {b}"))
            .unwrap_or_default()
    );
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("PROCEDUREWRITER_JOB_RUNNER", "pipeline"),
        ("PROCEDUREWRITER_LOG", "warn,procedurewriter=info"),
        ("PROCEDUREWRITER_WORKERS", "4"),
    ];
    let key = new_key();
    let (daemon, _) = match &binary {
        Some(b) => Proc::start_binary(b, dir.path(), &key, &env),
        None => Proc::start(dir.path(), &key, &env),
    };
    let base = format!("http://{}", daemon.url_addr);
    let jobs = if quick { 8 } else { 32 };
    let phases = [
        "idle",
        "nested HTML upload",
        "large HTML upload",
        "procedures at once",
    ];
    let poller = Poller::start(base.clone(), phases.len());
    std::thread::sleep(Duration::from_secs(2));

    poller.phase.store(1, Ordering::Relaxed);
    let nested = "<div>".repeat(nested_divs);
    let (nested_status, nested_s) = upload(&base, nested.as_bytes(), "nested");

    poller.phase.store(2, Ordering::Relaxed);
    let large = large_html(900_000);
    let (large_status, large_s) = upload(&base, &large, "large");

    poller.phase.store(3, Ordering::Relaxed);
    let t = Instant::now();
    let ids: Vec<String> = (0..jobs)
        .map(|i| {
            let mut r = agent()
                .post(format!("{base}/api/write"))
                .header("content-type", "application/json")
                .send(
                    serde_json::json!({ "procedure": "Anafylaksi behandling", "context": format!("stall {i}") })
                        .to_string(),
                )
                .unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
            v["run_id"].as_str().unwrap().to_string()
        })
        .collect();
    wait_done(&base, &ids);
    let jobs_s = t.elapsed().as_secs_f64();
    let samples = poller.finish();

    println!(
        "nested HTML ({nested_divs} <div>s, {} KB): answered {nested_status} in {nested_s:.2} s",
        nested.len() / 1024
    );
    println!(
        "large HTML ({} KB): answered {large_status} in {large_s:.2} s",
        large.len() / 1024
    );
    println!("{jobs} procedures at once (offline writer, 4 workers): all DONE in {jobs_s:.2} s\n");
    println!("| while | /health polls | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, mut v) in phases.iter().zip(samples) {
        if v.is_empty() {
            println!("| {name} | 0 | - | - | - |");
            continue;
        }
        v.sort_by(f64::total_cmp);
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} |",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            v[v.len() - 1]
        );
    }
}
