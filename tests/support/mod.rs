//! Helpers: start the daemon binary in a scratch directory, talk HTTP to it, wait on
//! conditions with deadlines (never fixed sleeps).

#![allow(dead_code)]

pub mod process;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod fake_llm;

pub const BIN: &str = env!("CARGO_BIN_EXE_procedurewriter");

/// Polls `f` every 20 ms until it returns `Some`, panicking with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `f` on its own thread and returns its result, panicking with `what` if it takes longer
/// than `limit`: for "answers promptly" checks of calls that would otherwise block.
pub fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} took longer than {limit:?}"))
}

/// A scratch directory for one test's daemon(s); the data directory lives inside it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    /// The secret key this scratch's daemons get in PROCEDUREWRITER_SECRET_KEY, created
    /// explicitly here (tests never rely on a silently generated key).
    pub key: String,
}

impl Scratch {
    pub fn new() -> Scratch {
        let key = procedurewriter_actors::crypto::SecretKey::generate();
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
            key: key.to_base64().to_string(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("procedurewriter.db")
    }

    /// The daemon command with this scratch's data dir, key, an ephemeral port and `env`.
    pub fn command(&self, env: &[(&str, &str)]) -> Command {
        let mut cmd = self.command_without_key(env);
        cmd.env("PROCEDUREWRITER_SECRET_KEY", &self.key);
        cmd
    }

    /// [`Scratch::command`] with no key in the environment (key-file tests set their own).
    pub fn command_without_key(&self, env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("daemon")
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PROCEDUREWRITER_DATA_DIR", self.data_dir())
            .env("PROCEDUREWRITER_LISTEN", "127.0.0.1:0")
            .env("PROCEDUREWRITER_LOG", "info")
            // The queue's tests drive jobs with the programmable test runner; the pipeline's
            // tests ask for the pipeline explicitly.
            .env("PROCEDUREWRITER_JOB_RUNNER", "test")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts a daemon and waits until it is serving.
    pub fn start(&self, env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(self.command(env))
    }

    /// Runs the daemon expecting it to fail at start; returns (exit code, stderr).
    pub fn start_failing(&self, env: &[(&str, &str)]) -> (i32, String) {
        Self::fails(self.command(env))
    }

    /// Runs `cmd` expecting it to fail at start; returns (exit code, stderr).
    pub fn fails(mut cmd: Command) -> (i32, String) {
        cmd.stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn daemon");
        let out = child.wait_with_output().expect("wait daemon");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs an admin subcommand (`init-secret`, `rotate-secret`) on this scratch's data dir,
    /// with only `env` (no key unless given).
    pub fn admin(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PROCEDUREWRITER_DATA_DIR", self.data_dir())
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run admin command")
    }

    pub fn key_file(&self) -> PathBuf {
        self.data_dir().join("secret.key")
    }

    /// Opens the database read-only, for checks the API does not expose.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open db")
    }
}

/// A running daemon process.
pub struct Daemon {
    child: Option<Child>,
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    pub fn spawn(cmd: Command) -> Daemon {
        let started =
            process::start(cmd, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
        Daemon {
            child: Some(started.child),
            url: format!("http://{}", started.addr),
            log: started.log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        wait_for("the daemon to exit", limit, || child.try_wait().unwrap())
    }

    pub fn http(&self) -> Http {
        Http::new(&self.url)
    }

    /// `host:port`, for raw TCP.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A response: status, headers we care about, and the body as JSON (or a string).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts an error answer: the status and the JSON error code, with a message.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["error"]["code"], code, "{self:?}");
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{self:?}"
        );
    }
}

/// A small blocking HTTP client for the tests.
pub struct Http {
    agent: ureq::Agent,
    base: String,
}

impl Http {
    pub fn new(base: &str) -> Http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Http {
            agent,
            base: base.to_string(),
        }
    }

    fn finish(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
        let mut resp = resp.expect("HTTP request");
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            body,
            headers,
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        Self::finish(self.agent.get(format!("{}{path}", self.base)).call())
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        Self::finish(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .send(body.to_string()),
        )
    }

    /// POST with raw bytes and an explicit content type (or none).
    pub fn post_raw(&self, path: &str, content_type: Option<&str>, body: &[u8]) -> Resp {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        Self::finish(req.send(body))
    }

    /// Any method, any content type (or none), raw bytes (or no body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Resp {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(url);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req
            .body(body.unwrap_or_default().to_vec())
            .expect("a valid request");
        Self::finish(self.agent.run(req))
    }

    pub fn put_json(&self, path: &str, body: &Value) -> Resp {
        Self::finish(
            self.agent
                .put(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .send(body.to_string()),
        )
    }

    pub fn delete(&self, path: &str) -> Resp {
        Self::finish(self.agent.delete(format!("{}{path}", self.base)).call())
    }

    pub fn post_empty(&self, path: &str) -> Resp {
        Self::finish(self.agent.post(format!("{}{path}", self.base)).send_empty())
    }

    pub fn get_with_header(&self, path: &str, header: (&str, &str)) -> Resp {
        Self::finish(
            self.agent
                .get(format!("{}{path}", self.base))
                .header(header.0, header.1)
                .call(),
        )
    }

    pub fn post_with_header(&self, path: &str, header: (&str, &str), body: &Value) -> Resp {
        Self::finish(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .header(header.0, header.1)
                .send(body.to_string()),
        )
    }

    /// Reads an SSE stream to its end (the daemon closes it after the run's final event).
    pub fn sse(&self, path: &str, last_event_id: Option<i64>) -> Vec<(i64, String, Value)> {
        let mut req = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.call().expect("SSE request");
        assert_eq!(resp.status().as_u16(), 200);
        let reader = BufReader::new(resp.into_body().into_reader());
        let mut out = Vec::new();
        let (mut id, mut event, mut data): (Option<i64>, Option<String>, Option<String>) =
            (None, None, None);
        for line in reader.lines() {
            let line = line.expect("SSE line");
            if line.is_empty() {
                if let (Some(i), Some(e), Some(d)) = (id.take(), event.take(), data.take()) {
                    out.push((i, e, serde_json::from_str(&d).expect("SSE data is JSON")));
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.parse::<i64>().expect("numeric id"));
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(v.to_string());
            }
        }
        out
    }

    // ---- API conveniences ----

    /// Enqueues a test job with the given `options.test` spec; returns its run id.
    pub fn write(&self, procedure: &str, test: Value) -> String {
        let r = self.post_json(
            "/api/write",
            &serde_json::json!({ "procedure": procedure, "options": { "test": test } }),
        );
        assert_eq!(r.status, 202, "{r:?}");
        r.body["run_id"].as_str().unwrap().to_string()
    }

    pub fn run(&self, id: &str) -> Value {
        let r = self.get(&format!("/api/runs/{id}"));
        assert_eq!(r.status, 200, "{r:?}");
        r.body
    }

    /// Writes `procedure` (`POST /api/write`, no options) and returns the run's id.
    pub fn submit(&self, procedure: &str) -> String {
        let r = self.post_json("/api/write", &serde_json::json!({ "procedure": procedure }));
        assert_eq!(r.status, 202, "{r:?}");
        r.body["run_id"].as_str().unwrap().to_string()
    }

    /// Waits until the run has ended (DONE, FAILED or CANCELLED).
    pub fn wait_finished(&self, id: &str, limit: Duration) -> Value {
        wait_for(&format!("run {id} to finish"), limit, || {
            let r = self.run(id);
            ["DONE", "FAILED", "CANCELLED"]
                .contains(&r["status"].as_str().unwrap_or_default())
                .then_some(r)
        })
    }

    /// The details of the run's events of `kind`, in order.
    pub fn details(&self, id: &str, kind: &str) -> Vec<Value> {
        self.events(id)
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| e["details"].clone())
            .collect()
    }

    pub fn status(&self, id: &str) -> String {
        self.run(id)["status"].as_str().unwrap().to_string()
    }

    pub fn events(&self, id: &str) -> Vec<Value> {
        let r = self.get(&format!("/api/runs/{id}/events"));
        assert_eq!(r.status, 200, "{r:?}");
        r.body["events"].as_array().unwrap().clone()
    }

    pub fn event_kinds(&self, id: &str) -> Vec<String> {
        self.events(id)
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    }

    /// Waits until the run reaches `status`.
    pub fn wait_status(&self, id: &str, status: &str, limit: Duration) -> Value {
        wait_for(&format!("run {id} to be {status}"), limit, || {
            let run = self.run(id);
            (run["status"] == status).then_some(run)
        })
    }
}

/// Asserts a command succeeded (showing both streams if not) and returns its stdout.
pub fn assert_ok(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("custom.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Sends `bytes` as they are on one connection, half-closes it, and returns every response the
/// daemon sent before closing: (status, headers with lower-case names, body as JSON or a
/// string). For requests no HTTP client would send.
pub fn raw_exchange(addr: &str, bytes: &[u8]) -> Vec<(u16, String, Value)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let mut rest = &out[..];
    let mut responses = Vec::new();
    while !rest.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(n)) = resp.parse(rest) else {
            panic!("not an HTTP response: {:?}", String::from_utf8_lossy(rest));
        };
        let length: usize = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
            .unwrap_or(0);
        let head = String::from_utf8_lossy(&rest[..n]).to_lowercase();
        let body = &rest[n..(n + length).min(rest.len())];
        let body = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        responses.push((resp.code.unwrap_or(0), head, body));
        rest = &rest[(n + length).min(rest.len())..];
    }
    responses
}

/// Runs `cmd` expecting it to exit within `limit` (killing it and failing the test if it does
/// not); returns (exit code, stderr).
pub fn fails_within(mut cmd: Command, limit: Duration) -> (i32, String) {
    use std::io::Read;
    cmd.stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?}: {}",
                reader.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        reader.join().unwrap_or_default(),
    )
}
