//! The client subcommands: small HTTP/1.1 calls to a running daemon (hyper's client, one
//! connection per request), printing JSON, and `follow`, which renders a run's event stream.

use bytes::Bytes;
use clap::Subcommand;
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

/// Runs a client future on a current-thread runtime with I/O and timers.
pub fn block_on_io<F: std::future::Future>(f: F) -> F::Output {
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

/// The client subcommands: each speaks to a running daemon over its HTTP API.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Enqueue a procedure; prints the run.
    Write {
        /// The procedure title, e.g. "Pleuradræn anlæggelse".
        procedure: String,
        /// Context that narrows the procedure (department, setting).
        #[arg(long, default_value = "")]
        context: String,
        /// Higher runs are claimed first.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i64,
        /// Per-run option as KEY=JSON (repeatable), e.g. test={"duration_ms":500}.
        #[arg(long = "option", value_name = "KEY=JSON")]
        options: Vec<String>,
        /// Sent as Idempotency-Key: the same key returns the same run.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Follow the run's events until it finishes.
        #[arg(long)]
        follow: bool,
    },
    /// List runs, newest first.
    Runs {
        /// Only runs in this status (QUEUED, RUNNING, NEEDS_ACK, DONE, FAILED, CANCELLED).
        #[arg(long)]
        status: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Fetch every page.
        #[arg(long)]
        all: bool,
    },
    /// Show one run.
    Status { run_id: String },
    /// Cancel a run.
    Cancel { run_id: String },
    /// Re-queue a failed or cancelled run.
    Retry { run_id: String },
    /// Add documents (.md with optional TOML front matter, .txt, .html, .pdf, .docx) to the
    /// evidence library.
    Ingest {
        /// Files to ingest.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Give every file this tier instead of classifying it.
        #[arg(long)]
        tier: Option<String>,
    },
    /// Show a run's events live until it finishes.
    Follow { run_id: String },
}

/// Runs a client subcommand against the daemon at `url`.
pub fn run(url: &str, command: ClientCommand) -> ExitCode {
    let result = block_on_io(async {
        let client = Client::new(url)?;
        match command {
            ClientCommand::Write {
                procedure,
                context,
                priority,
                options,
                idempotency_key,
                follow,
            } => {
                write(
                    &client,
                    json!({
                        "procedure": procedure,
                        "context": context,
                        "priority": priority,
                        "options": parse_options(&options)?,
                    }),
                    idempotency_key,
                    follow,
                )
                .await
            }
            ClientCommand::Runs { status, limit, all } => runs(&client, status, limit, all).await,
            ClientCommand::Status { run_id } => {
                show(&client, Method::GET, &format!("/api/runs/{run_id}")).await
            }
            ClientCommand::Cancel { run_id } => {
                show(&client, Method::POST, &format!("/api/runs/{run_id}/cancel")).await
            }
            ClientCommand::Retry { run_id } => {
                show(&client, Method::POST, &format!("/api/runs/{run_id}/retry")).await
            }
            ClientCommand::Ingest { paths, tier } => ingest(&client, paths, tier).await,
            ClientCommand::Follow { run_id } => {
                let status = client.follow(&run_id).await?;
                println!("run {run_id}: {status}");
                Ok(())
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

/// Prints what one call answers.
async fn show(client: &Client, method: Method, path: &str) -> Result<(), ClientError> {
    print(&client.call(method, path, None, &[]).await?);
    Ok(())
}

/// `write`: enqueue, print the run, and with `follow` its events until it ends.
async fn write(
    client: &Client,
    body: Value,
    idempotency_key: Option<String>,
    follow: bool,
) -> Result<(), ClientError> {
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

/// `runs`: one page of runs, or with `all` every page.
async fn runs(
    client: &Client,
    status: Option<String>,
    limit: usize,
    all: bool,
) -> Result<(), ClientError> {
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

/// `ingest`: each file to `POST /api/sources`, one line per file.
async fn ingest(
    client: &Client,
    paths: Vec<PathBuf>,
    tier: Option<String>,
) -> Result<(), ClientError> {
    let mut failed = 0;
    for path in paths {
        let content_type = match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("md") | Some("markdown") => "text/markdown",
            Some("txt") => "text/plain",
            Some("html") | Some("htm") => "text/html",
            Some("pdf") => procedurewriter_pipeline::library::MEDIA_PDF,
            Some("docx") => procedurewriter_pipeline::library::MEDIA_DOCX,
            _ => {
                eprintln!(
                    "{}: skipped: .md, .txt, .html, .pdf and .docx are supported",
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
