//! The client subcommands: small HTTP/1.1 calls to a running daemon (hyper's client, one
//! connection per request), printing JSON, and `follow`, which renders a run's event stream.

use crate::cli::Command;
use crate::settings::Settings;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::{header, Method, Request, StatusCode, Uri};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// A failed client call, printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad daemon URL {0:?}: expected http://HOST:PORT")]
    Url(String),
    #[error("cannot reach the daemon at {addr}: {cause} (is `procedurewriter daemon` running?)")]
    Connect { addr: String, cause: std::io::Error },
    #[error("HTTP: {0}")]
    Http(String),
    #[error("{status}: {body}")]
    Api { status: StatusCode, body: Value },
    #[error("{0}")]
    Usage(String),
}

/// One base URL to talk to.
#[derive(Debug, Clone)]
pub struct Client {
    authority: String,
}

impl Client {
    pub fn new(base: &str) -> Result<Client, ClientError> {
        let uri: Uri = base
            .parse()
            .map_err(|_| ClientError::Url(base.to_string()))?;
        if uri.scheme_str() != Some("http") {
            return Err(ClientError::Url(base.to_string()));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| ClientError::Url(base.to_string()))?
            .to_string();
        Ok(Client { authority })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let body = body.map(|v| {
            (
                "application/json",
                Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            )
        });
        self.send_raw(method, path, body, headers).await
    }

    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
        headers: &[(&str, String)],
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|cause| ClientError::Connect {
                addr: self.authority.clone(),
                cause,
            })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority);
        // A daemon with an API token (on a non-loopback address) wants it on every call.
        if let Some(token) = std::env::var("PROCEDUREWRITER_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
        {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let bytes = match body {
            Some((content_type, bytes)) => {
                req = req.header(header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(bytes))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))
    }

    /// A JSON call; non-2xx answers become [`ClientError::Api`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<Value, ClientError> {
        let resp = self.send(method, path, body, headers).await?;
        Self::answer(resp).await
    }

    /// Sends a document body of `content_type`; answers as [`Client::call`].
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<Value, ClientError> {
        let resp = self
            .send_raw(method, path, Some((content_type, body)), &[])
            .await?;
        Self::answer(resp).await
    }

    async fn answer(resp: hyper::Response<hyper::body::Incoming>) -> Result<Value, ClientError> {
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if status.is_success() {
            Ok(value)
        } else {
            Err(ClientError::Api {
                status,
                body: value,
            })
        }
    }

    /// Prints a run's events as they happen; returns the run's final status.
    pub async fn follow(&self, run_id: &str) -> Result<String, ClientError> {
        let resp = self
            .send(
                Method::GET,
                &format!("/api/runs/{run_id}/events"),
                None,
                &[("accept", "text/event-stream".to_string())],
            )
            .await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(ClientError::Api { status, body });
        }
        let mut stream = sse_stream::SseStream::new(resp.into_body());
        let mut last_status = String::new();
        while let Some(item) = stream.next().await {
            let sse = item.map_err(|e| ClientError::Http(e.to_string()))?;
            let Some(data) = sse.data else { continue };
            let ev: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            last_status = ev["status"].as_str().unwrap_or("").to_string();
            let details = match &ev["details"] {
                Value::Object(m) if m.is_empty() => String::new(),
                Value::Null => String::new(),
                d => d.to_string(),
            };
            println!(
                "{}  {:<10} {:<20} {}",
                ev["at"].as_str().unwrap_or(""),
                last_status,
                ev["kind"].as_str().unwrap_or(""),
                details
            );
        }
        Ok(last_status)
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime");
    tokio::task::LocalSet::new().block_on(&rt, f)
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn parse_options(options: &[String]) -> Result<Value, ClientError> {
    let mut map = serde_json::Map::new();
    for o in options {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| ClientError::Usage(format!("--option {o:?}: expected KEY=JSON")))?;
        let v: Value = serde_json::from_str(v)
            .map_err(|e| ClientError::Usage(format!("--option {k}: value is not JSON: {e}")))?;
        map.insert(k.to_string(), v);
    }
    Ok(Value::Object(map))
}

/// Runs one client subcommand against `url`.
pub fn run(url: &str, command: Command) -> ExitCode {
    let result = block_on(async {
        let client = Client::new(url)?;
        match command {
            Command::Write {
                procedure,
                context,
                priority,
                options,
                idempotency_key,
                follow,
            } => {
                let body = json!({
                    "procedure": procedure,
                    "context": context,
                    "priority": priority,
                    "options": parse_options(&options)?,
                });
                let headers: Vec<(&str, String)> = idempotency_key
                    .map(|k| vec![("idempotency-key", k)])
                    .unwrap_or_default();
                let run = client
                    .call(Method::POST, "/api/write", Some(&body), &headers)
                    .await?;
                print(&run);
                if follow {
                    let id = run["run_id"].as_str().unwrap_or_default().to_string();
                    let status = client.follow(&id).await?;
                    if status != "DONE" {
                        return Err(ClientError::Usage(format!("run {id} ended {status}")));
                    }
                }
                Ok(())
            }
            Command::Runs { status, limit, all } => {
                let mut cursor: Option<String> = None;
                loop {
                    let mut q = format!("/api/runs?limit={limit}");
                    if let Some(s) = &status {
                        q.push_str(&format!("&status={s}"));
                    }
                    if let Some(c) = &cursor {
                        q.push_str(&format!("&cursor={c}"));
                    }
                    let page = client.call(Method::GET, &q, None, &[]).await?;
                    for r in page["runs"].as_array().into_iter().flatten() {
                        println!(
                            "{}  {:<10} {}/{}  {}",
                            r["run_id"].as_str().unwrap_or(""),
                            r["status"].as_str().unwrap_or(""),
                            r["attempts"],
                            r["max_attempts"],
                            r["procedure"].as_str().unwrap_or("")
                        );
                    }
                    cursor = page["next_cursor"].as_str().map(str::to_string);
                    if !all || cursor.is_none() {
                        if let Some(c) = &cursor {
                            eprintln!("more: --all, or the API with cursor={c}");
                        }
                        break;
                    }
                }
                Ok(())
            }
            Command::Status { run_id } => {
                print(
                    &client
                        .call(Method::GET, &format!("/api/runs/{run_id}"), None, &[])
                        .await?,
                );
                Ok(())
            }
            Command::Cancel { run_id } => {
                print(
                    &client
                        .call(
                            Method::POST,
                            &format!("/api/runs/{run_id}/cancel"),
                            None,
                            &[],
                        )
                        .await?,
                );
                Ok(())
            }
            Command::Retry { run_id } => {
                print(
                    &client
                        .call(
                            Method::POST,
                            &format!("/api/runs/{run_id}/retry"),
                            None,
                            &[],
                        )
                        .await?,
                );
                Ok(())
            }
            Command::Ingest { paths, tier } => {
                let mut failed = 0;
                for path in paths {
                    let content_type = match path.extension().and_then(|e| e.to_str()) {
                        Some("md") | Some("markdown") => "text/markdown",
                        Some("txt") => "text/plain",
                        Some("html") | Some("htm") => "text/html",
                        _ => {
                            eprintln!(
                                "{}: skipped: .md, .txt and .html are supported (PDF is not yet)",
                                path.display()
                            );
                            failed += 1;
                            continue;
                        }
                    };
                    let bytes = match std::fs::read(&path) {
                        Ok(b) => Bytes::from(b),
                        Err(e) => {
                            eprintln!("{}: {e}", path.display());
                            failed += 1;
                            continue;
                        }
                    };
                    let name = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("document");
                    let mut query = vec![("filename", name.to_string())];
                    if let Some(t) = &tier {
                        query.push(("tier", t.clone()));
                    }
                    let q = serde_urlencoded::to_string(&query).unwrap_or_default();
                    match client
                        .call_raw(
                            Method::POST,
                            &format!("/api/sources?{q}"),
                            content_type,
                            bytes,
                        )
                        .await
                    {
                        Ok(v) => {
                            let s = &v["source"];
                            println!(
                                "{}  {:<8} {:<24} {}",
                                s["id"].as_str().unwrap_or(""),
                                if v["created"] == true {
                                    "added"
                                } else {
                                    "existing"
                                },
                                s["tier"].as_str().unwrap_or(""),
                                s["title"].as_str().unwrap_or("")
                            );
                        }
                        Err(e) => {
                            eprintln!("{}: {e}", path.display());
                            failed += 1;
                        }
                    }
                }
                if failed > 0 {
                    return Err(ClientError::Usage(format!(
                        "{failed} files were not ingested"
                    )));
                }
                Ok(())
            }
            Command::Follow { run_id } => {
                let status = client.follow(&run_id).await?;
                println!("run {run_id}: {status}");
                Ok(())
            }
            Command::Daemon { .. }
            | Command::Demo { .. }
            | Command::InitSecret { .. }
            | Command::RotateSecret { .. } => {
                Err(ClientError::Usage("not a client subcommand".into()))
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("procedurewriter: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `procedurewriter demo`: a daemon on a fresh data directory and an ephemeral loopback port,
/// one run written end to end with its events shown live, then a graceful stop.
pub fn demo(procedure: &str, data_dir: Option<PathBuf>) -> ExitCode {
    let mut settings = match Settings::load(None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("procedurewriter: {e}");
            return ExitCode::from(2);
        }
    };
    settings.data_dir = data_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "procedurewriter-demo-{}",
            uuid::Uuid::new_v4().simple()
        ))
    });
    settings.log = "warn".into();
    // A fresh data directory needs its own secret key (it encrypts stored API keys); the
    // demo creates one the way `procedurewriter init-secret` does, unless the environment
    // supplies one.
    if std::env::var(crate::keys::KEY_ENV).map_or(true, |v| v.trim().is_empty())
        && !settings.key_file().exists()
    {
        match crate::admin::init_secret(&settings, false) {
            Ok(msg) => println!("{msg}"),
            Err(e) => {
                eprintln!("procedurewriter: {e}");
                return ExitCode::from(e.exit_code() as u8);
            }
        }
    }
    let listener = match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("procedurewriter: cannot listen on loopback: {e}");
            return ExitCode::from(5);
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let data_dir = settings.data_dir.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = std::thread::spawn(move || {
        crate::Daemon::new(settings).run(listener, async {
            let _ = stopped.await;
        })
    });
    println!("daemon on http://{addr}, data in {}", data_dir.display());
    let outcome = run_demo_job(&format!("http://{addr}"), procedure);
    let _ = stop.send(());
    let stopped = daemon.join();
    match (outcome, stopped) {
        (Ok((run, procedure)), Ok(Ok(()))) => {
            println!("\n{procedure}");
            let r = &run["result"];
            println!(
                "run {}: {}  score {}/10  iterations {} (stopped: {})  cost {} USD  sources {}  writer {}",
                run["run_id"].as_str().unwrap_or(""),
                run["status"].as_str().unwrap_or(""),
                r["score"],
                r["iterations"],
                r["stop_reason"].as_str().unwrap_or(""),
                run["cost_usd"],
                r["sources"].as_array().map_or(0, Vec::len),
                r["writer"].as_str().unwrap_or("")
            );
            if let Some(dir) = r["artifact_dir"].as_str() {
                println!(
                    "artifacts: {dir}/{{procedure.md, procedure.docx, evidence_report.json, manifest.json}}"
                );
            }
            println!(
                "next: `procedurewriter daemon` serves the same over HTTP; see README for curl examples"
            );
            if run["status"] == "DONE" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        (Err(e), _) => {
            eprintln!("procedurewriter: demo failed: {e}");
            ExitCode::FAILURE
        }
        (_, Ok(Err(e))) => {
            eprintln!("procedurewriter: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
        (_, Err(_)) => {
            eprintln!("procedurewriter: the daemon thread panicked");
            ExitCode::FAILURE
        }
    }
}

fn run_demo_job(url: &str, procedure: &str) -> Result<(Value, String), ClientError> {
    block_on(async {
        let client = Client::new(url)?;
        // The daemon thread may still be starting: the listener is bound, so connections
        // queue in the backlog until it serves them.
        let run = client
            .call(
                Method::POST,
                "/api/write",
                Some(&json!({ "procedure": procedure, "context": "akutmodtagelse, voksne" })),
                &[],
            )
            .await?;
        let id = run["run_id"].as_str().unwrap_or_default().to_string();
        println!("run {id} enqueued; events:");
        client.follow(&id).await?;
        let run = client
            .call(Method::GET, &format!("/api/runs/{id}"), None, &[])
            .await?;
        let procedure = if run["status"] == "DONE" {
            match client
                .call(Method::GET, &format!("/api/runs/{id}/procedure"), None, &[])
                .await?
            {
                Value::String(s) => s,
                other => other.to_string(),
            }
        } else {
            format!(
                "(no procedure: the run ended {}: {})",
                run["status"], run["error"]
            )
        };
        Ok((run, procedure))
    })
}
