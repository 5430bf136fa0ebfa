//! What the benchmarks that drive the real binary share: start it on a scratch data directory,
//! read its RSS, talk HTTP/1.1 over keep-alive connections. Included by `#[path]`.

#![allow(dead_code)]

#[path = "../../../tests/support/process.rs"]
mod process;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_procedurewriter");

/// The `p` quantile (0..=1) of `sorted`, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The daemon binary on a scratch data dir; stderr is collected to find the address.
pub struct Proc {
    pub child: Child,
    pub url_addr: String,
}

impl Proc {
    /// Starts the daemon on `data` with `key` (the same key for every start on one data dir).
    pub fn start(data: &std::path::Path, key: &str, env: &[(&str, &str)]) -> (Proc, Instant) {
        Proc::start_binary(BIN, data, key, env)
    }

    /// [`Proc::start`] with another build of the daemon (a before/after comparison).
    pub fn start_binary(
        bin: &str,
        data: &std::path::Path,
        key: &str,
        env: &[(&str, &str)],
    ) -> (Proc, Instant) {
        // The daemon refuses a data directory others can read (a temp dir is 0755).
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(data).unwrap();
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg("daemon")
            .env("PROCEDUREWRITER_DATA_DIR", data)
            .env("PROCEDUREWRITER_LISTEN", "127.0.0.1:0")
            .env("PROCEDUREWRITER_LOG", "info")
            // The queue is measured, not the pipeline: jobs run the test runner (no-op unless
            // a run's options say otherwise).
            .env("PROCEDUREWRITER_JOB_RUNNER", "test")
            .env("PROCEDUREWRITER_SECRET_KEY", key)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let spawned = Instant::now();
        let started =
            process::start(cmd, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
        (
            Proc {
                child: started.child,
                url_addr: started.addr,
            },
            spawned,
        )
    }

    pub fn rss_kb(&self, field: &str) -> u64 {
        rss_kb_of(self.child.id(), field)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keep-alive HTTP/1.1 connection for the load generator.
pub struct Conn {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
}

impl Conn {
    /// [`Conn::open`], or None when nothing accepts the connection (yet).
    pub async fn open_checked(addr: &str) -> Option<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .ok()?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Some(Conn { sender })
    }

    pub async fn open(addr: &str) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Conn { sender }
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, bytes::Bytes), String> {
        self.request_accepting(method, path, body, "application/json")
            .await
    }

    /// [`Conn::request`] with an `Accept` header (`text/event-stream` reads an event stream
    /// to its end).
    pub async fn request_accepting(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
        accept: &str,
    ) -> Result<(u16, bytes::Bytes), String> {
        use http_body_util::BodyExt;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("accept", accept);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.unwrap_or("").to_string(),
            )))
            .unwrap();
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, bytes))
    }
}

pub fn new_key() -> String {
    procedurewriter_actors::crypto::SecretKey::generate()
        .to_base64()
        .to_string()
}

/// A current-thread runtime with I/O and timers, and a `LocalSet` for `spawn_local`: the
/// client's own.
#[allow(unused_imports)]
pub use procedurewriter::client::block_on_io as block_on;

/// A memory figure of process `pid` from /proc (`VmRSS:` now, `VmHWM:` peak), in kB.
pub fn rss_kb_of(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
