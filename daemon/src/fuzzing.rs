//! The fuzz harness: one real daemon per process, started in a thread on a scratch data
//! directory, fed raw bytes as HTTP requests over loopback TCP. Shared by the libFuzzer target
//! (`fuzz/fuzz_targets/http_request.rs`, nightly) and the corpus replay that runs on stable
//! with the tests (`tests/fuzz_corpus.rs`).
//!
//! An input is a finding when the daemon panics anywhere (libFuzzer's hook aborts the process;
//! the replay counts panics), answers a 5xx, answers a 4xx/5xx whose body is not the API's
//! JSON error, or gives no complete answer within [`ANSWER_LIMIT`].
//!
//! Jobs run a runner that finishes at once: what is fuzzed is the HTTP layer, the request
//! types and the store calls they make, not the pipeline.

use crate::settings::Settings;
use futures_util::future::LocalBoxFuture;
use procedurewriter_actors::crypto::SecretKey;
use procedurewriter_actors::{Job, JobContext, JobRunner, Outcome};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the daemon gets to answer one input completely.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(10);

static TARGET: OnceLock<SocketAddr> = OnceLock::new();
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Ends every job at once, successfully.
struct DoneAtOnce;

impl JobRunner for DoneAtOnce {
    fn run(&self, _job: Job, _ctx: JobContext) -> LocalBoxFuture<'static, Outcome> {
        Box::pin(async {
            Outcome::Done {
                result: serde_json::json!({ "runner": "fuzz" }),
            }
        })
    }
}

/// Panics anywhere in this process since the harness started (the replay asserts none).
pub fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}

/// The daemon's address, starting it on first use.
pub fn target() -> SocketAddr {
    *TARGET.get_or_init(start)
}

fn start() -> SocketAddr {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    let data = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    remove_dirs_of_dead_processes();
    let env = [
        ("PROCEDUREWRITER_DATA_DIR", data.display().to_string()),
        ("PROCEDUREWRITER_WORKERS", "2".to_string()),
        ("PROCEDUREWRITER_SHUTDOWN_GRACE_S", "0".to_string()),
    ];
    let settings = Settings::load_from(
        None,
        env.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
    .expect("the fuzz daemon's settings");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("the port's address");
    std::thread::Builder::new()
        .name("fuzz-daemon".into())
        .spawn(move || {
            let daemon = crate::Daemon::new(settings)
                .key(SecretKey::generate())
                .runner(std::sync::Arc::new(DoneAtOnce));
            if let Err(e) = daemon.run(listener, std::future::pending()) {
                panic!("the fuzz daemon stopped: {e}");
            }
        })
        .expect("a thread for the daemon");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ask(addr, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").is_none() {
        assert!(Instant::now() < deadline, "the fuzz daemon never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
    addr
}

/// The scratch data directories: `<temp>/procedurewriter-fuzz-<pid>`.
const DIR_PREFIX: &str = "procedurewriter-fuzz-";

/// A process cannot remove its own directory when it ends (libFuzzer exits from C), so each
/// start removes those of processes that are gone.
fn remove_dirs_of_dead_processes() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Sends `data` and half-closes; returns everything the daemon sent before closing, or `None`
/// if it did not close within [`ANSWER_LIMIT`] (or refused the connection).
fn ask(addr: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(ANSWER_LIMIT)).ok()?;
    // The daemon may answer and close before reading everything (a 413, a 431): not an error.
    let _ = s.write_all(data);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(out),
        Err(_) => None,
    }
}

/// Feeds one input to the daemon and checks its answer; panics on a finding.
pub fn http_request(data: &[u8]) {
    let addr = target();
    let answer = ask(addr, data).unwrap_or_else(|| {
        panic!(
            "no complete answer within {ANSWER_LIMIT:?} to {:?}",
            String::from_utf8_lossy(data)
        )
    });
    check_answer(&answer, data);
}

/// The first response of `answer` (later pipelined ones are not parsed): never a 5xx, and every
/// error has the API's JSON error body (an empty body is a finding).
fn check_answer(answer: &[u8], input: &[u8]) {
    if answer.is_empty() {
        // Closed without a word: hyper does that to bytes that are not HTTP at all.
        return;
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(answer) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "an answer that is not HTTP ({other:?}): {:?} to {:?}",
            String::from_utf8_lossy(answer),
            String::from_utf8_lossy(input)
        ),
    };
    let status = resp.code.unwrap_or(0);
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    assert!(
        status < 500,
        "a {status} answer to {:?}: {:?}",
        String::from_utf8_lossy(input),
        String::from_utf8_lossy(answer)
    );
    if status < 400 {
        return;
    }
    // Every error carries the API's JSON error, however malformed the request was. An answer
    // to HEAD has no body by definition: its headers must still announce the JSON.
    let content_type = header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "a {status} without a JSON content type ({content_type:?}): {:?} to {:?}",
        String::from_utf8_lossy(answer),
        String::from_utf8_lossy(input)
    );
    let mut req_headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut req_headers);
    let _ = req.parse(input);
    if req.method.is_some_and(|m| m.eq_ignore_ascii_case("HEAD")) {
        return;
    }
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "a {status} without a Content-Length: {:?} to {:?}",
                String::from_utf8_lossy(answer),
                String::from_utf8_lossy(input)
            )
        });
    let body = &answer[head_len..(head_len + length).min(answer.len())];
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "a {status} whose body is not JSON ({e}): {:?} to {:?}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(input)
        )
    });
    assert!(
        json["error"]["code"].is_string() && json["error"]["message"].is_string(),
        "a {status} without the API's error shape: {json} to {:?}",
        String::from_utf8_lossy(input)
    );
}
