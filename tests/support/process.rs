//! Starting the real binary and waiting for its ready line, shared by the tests
//! (`support/mod.rs`) and the benchmarks (`daemon/benches/support/daemon.rs`, by `#[path]`).
//! The daemon logs `daemon ready … addr=HOST:PORT` once it serves; that line is the contract.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A started daemon: the process, every line it wrote to stderr so far, and where it listens.
pub struct Started {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
    /// `host:port`.
    pub addr: String,
}

/// The address in a `daemon ready` log line.
pub fn ready_addr(line: &str) -> Option<String> {
    if !line.contains("daemon ready") {
        return None;
    }
    let at = line.find("addr=")? + 5;
    line[at..].split_whitespace().next().map(str::to_string)
}

/// Spawns `cmd` (its stderr must be piped) and waits up to `limit` for the ready line. On an
/// early exit or a timeout the error carries what the daemon logged.
pub fn start(mut cmd: Command, limit: Duration) -> Result<Started, String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot spawn the daemon: {e}"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or("the daemon's stderr is not piped")?;
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let deadline = Instant::now() + limit;
    loop {
        let ready = log.lock().unwrap().iter().find_map(|l| ready_addr(l));
        if let Some(addr) = ready {
            return Ok(Started { child, log, addr });
        }
        let text = || log.lock().unwrap().join("\n");
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("daemon exited early ({status}):\n{}", text()));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "the daemon was not ready within {limit:?}:\n{}",
                text()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
