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

/// The exit codes of the client subcommands (README, "The CLI client"). As with
/// `gh run watch --exit-status`, a run that did not succeed is a non-zero exit.
pub mod exit {
    /// The call succeeded; a followed run ended DONE.
    pub const OK: u8 = 0;
    /// The daemon could not be reached or refused the call, or a file could not be read or
    /// written.
    pub const ERROR: u8 = 1;
    /// Bad usage (clap's own code, and ours for a malformed option).
    pub const USAGE: u8 = 2;
    /// A followed run ended FAILED or CANCELLED.
    pub const RUN_FAILED: u8 = 3;
    /// A followed run waits for an acknowledgement of missing evidence (NEEDS_ACK).
    pub const NEEDS_ACK: u8 = 4;
}

/// A failed client call, printed as one line (two with a hint).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad daemon URL {0:?}: expected http://HOST:PORT")]
    Url(String),
    #[error(
        "cannot reach the daemon at {addr}: {cause} (is `procedurewriter daemon` running? \
             Another address: --url or PROCEDUREWRITER_URL)"
    )]
    Connect { addr: String, cause: std::io::Error },
    #[error("HTTP: {0}")]
    Http(String),
    #[error("{}", api_message(*status, body))]
    Api { status: StatusCode, body: Value },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(String),
    /// A followed run ended FAILED or CANCELLED (the summary is printed already).
    #[error("run {id} ended {status}")]
    RunFailed { id: String, status: String },
    /// A followed run waits for an acknowledgement (the gap is printed already).
    #[error("run {id} waits for an acknowledgement of missing evidence (see above)")]
    NeedsAck { id: String },
}

impl ClientError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) => exit::USAGE,
            ClientError::RunFailed { .. } => exit::RUN_FAILED,
            ClientError::NeedsAck { .. } => exit::NEEDS_ACK,
            _ => exit::ERROR,
        }
    }
}

/// An API error as a person reads it: status, the daemon's message and code, and what to do
/// when the status says more than the message (a missing or wrong token).
fn api_message(status: StatusCode, body: &Value) -> String {
    let message = match body["error"]["message"].as_str() {
        Some(m) => m.to_string(),
        None => match body {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        },
    };
    let mut out = format!(
        "{} {}: {message}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    if let Some(code) = body["error"]["code"].as_str() {
        out.push_str(&format!(" [{code}]"));
    }
    if status == StatusCode::UNAUTHORIZED {
        let set = std::env::var("PROCEDUREWRITER_API_TOKEN").is_ok_and(|t| !t.is_empty());
        out.push_str(if set {
            "\nhint: PROCEDUREWRITER_API_TOKEN is set but the daemon refused it; it must equal \
             the daemon's api_token"
        } else {
            "\nhint: this daemon has an api_token; set PROCEDUREWRITER_API_TOKEN to it and the \
             CLI sends it as Authorization: Bearer"
        });
    }
    out
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

    /// A GET whose answer is a file: its headers and bytes; non-2xx as [`Client::call`].
    pub async fn get_bytes(&self, path: &str) -> Result<(hyper::HeaderMap, Bytes), ClientError> {
        let resp = self.send(Method::GET, path, None, &[]).await?;
        if !resp.status().is_success() {
            return Err(Self::answer(resp).await.err().unwrap_or(ClientError::Http(
                "an error status with a success body".into(),
            )));
        }
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes();
        Ok((headers, bytes))
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
            // The stream stays open while a run waits for a person (it may go on after the
            // acknowledgement); the follower does not wait for that person.
            if last_status == "NEEDS_ACK" {
                break;
            }
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
            .ok_or_else(|| ClientError::Usage(format!("--option {o:?}: expected KEY=VALUE")))?;
        // JSON when it parses (numbers, objects, quoted strings), else the plain word:
        // `missing_tier_policy=allow_with_ack` needs no shell-quoted JSON string.
        let v: Value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        map.insert(k.to_string(), v);
    }
    Ok(Value::Object(map))
}

/// The client subcommands: each speaks to a running daemon over its HTTP API.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Enqueue a procedure; prints the run (with --follow, its events and a summary).
    Write {
        /// The procedure title, e.g. "Pleuradræn anlæggelse".
        procedure: String,
        /// Context that narrows the procedure (department, setting).
        #[arg(long, default_value = "")]
        context: String,
        /// Higher runs are claimed first.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i64,
        /// What a missing evidence tier does for this run: STRICT (stop) or allow_with_ack
        /// (wait for a person's acknowledgement).
        #[arg(long, value_name = "STRICT|allow_with_ack")]
        missing_tier_policy: Option<String>,
        /// Per-run option as KEY=VALUE (repeatable); VALUE is JSON if it parses, else a plain
        /// string, e.g. missing_tier_policy=allow_with_ack or test={"duration_ms":500}.
        #[arg(long = "option", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Sent as Idempotency-Key: the same key returns the same run.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Follow the run's events until it ends (or waits for an acknowledgement); exit 0
        /// DONE, 3 FAILED/CANCELLED, 4 NEEDS_ACK.
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
        /// Start after this cursor (printed when there are more runs).
        #[arg(long)]
        cursor: Option<String>,
        /// Fetch every page.
        #[arg(long)]
        all: bool,
    },
    /// Show one run (JSON).
    Status { run_id: String },
    /// Cancel a run.
    Cancel { run_id: String },
    /// Re-queue a failed or cancelled run.
    Retry { run_id: String },
    /// Acknowledge a run's missing evidence so it goes on (NEEDS_ACK); shows the gap first.
    Ack {
        run_id: String,
        /// Who accepts the gap (name, role).
        #[arg(long = "by")]
        acknowledged_by: String,
        /// Why it is acceptable.
        #[arg(long)]
        note: String,
        /// A tier acknowledged (repeatable); default: every missing tier the run shows.
        #[arg(long = "tier")]
        tiers: Vec<String>,
    },
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
    /// Show a run's events live until it ends; exit 0 DONE, 3 FAILED/CANCELLED, 4 NEEDS_ACK.
    Follow { run_id: String },
    /// Save a run's artifacts under their names (procedure-<run id>.md, .docx, ...).
    Download {
        run_id: String,
        /// Which: procedure, docx, evidence, manifest (default: all four).
        artifacts: Vec<String>,
        /// Directory to save into.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// The evidence library: list, search, show.
    #[command(subcommand)]
    Sources(SourcesCommand),
    /// Stored provider API keys (encrypted by the daemon): list, set, delete.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The daemon's health (exit 1 when it answers 503: draining or writes failing).
    Health,
    /// What the language models cost: totals, by day, by model, by run.
    Costs {
        /// First UTC day included, YYYY-MM-DD.
        #[arg(long)]
        from: Option<String>,
        /// Last UTC day included, YYYY-MM-DD.
        #[arg(long)]
        to: Option<String>,
    },
    /// What each configuration reload applied, needs a restart for, or refused.
    Reloads,
}

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// One page of sources, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Start after this cursor (printed when there are more).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Full-text search of the library.
    Search {
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One source with its passages, the runs that used it and its history (JSON).
    Show { source_id: String },
    /// Delete a source: erased if no run used it, else retired (never retrieved again, kept
    /// for the runs that used it). Recorded in its history with the reason.
    Delete {
        source_id: String,
        /// Why (kept in the source's history).
        #[arg(long)]
        reason: String,
    },
    /// Give a source another tier for future runs (past runs keep the tier they were judged
    /// with). Recorded in its history with the reason.
    Retier {
        source_id: String,
        /// The new tier (e.g. danish_guideline, systematic_review, rct).
        tier: String,
        /// Why (kept in the source's history).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// The stored keys (names and fingerprints, never values).
    List,
    /// Store a key; the value is read from standard input (never an argument, which `ps`
    /// and shell history would show).
    Set { name: String },
    /// Delete a stored key.
    Delete { name: String },
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
                missing_tier_policy,
                options,
                idempotency_key,
                follow,
            } => {
                let mut options = parse_options(&options)?;
                if let (Some(p), Value::Object(m)) = (missing_tier_policy, &mut options) {
                    m.insert("missing_tier_policy".into(), Value::String(p));
                }
                write(
                    &client,
                    json!({
                        "procedure": procedure,
                        "context": context,
                        "priority": priority,
                        "options": options,
                    }),
                    idempotency_key,
                    follow,
                )
                .await
            }
            ClientCommand::Runs {
                status,
                limit,
                cursor,
                all,
            } => runs(&client, status, limit, cursor, all).await,
            ClientCommand::Status { run_id } => {
                show(&client, Method::GET, &format!("/api/runs/{run_id}")).await
            }
            ClientCommand::Cancel { run_id } => {
                show(&client, Method::POST, &format!("/api/runs/{run_id}/cancel")).await
            }
            ClientCommand::Retry { run_id } => {
                show(&client, Method::POST, &format!("/api/runs/{run_id}/retry")).await
            }
            ClientCommand::Ack {
                run_id,
                acknowledged_by,
                note,
                tiers,
            } => ack(&client, &run_id, acknowledged_by, note, tiers).await,
            ClientCommand::Ingest { paths, tier } => ingest(&client, paths, tier).await,
            ClientCommand::Follow { run_id } => follow_to_end(&client, &run_id).await,
            ClientCommand::Download {
                run_id,
                artifacts,
                dir,
            } => download(&client, &run_id, artifacts, &dir).await,
            ClientCommand::Sources(c) => sources(&client, c).await,
            ClientCommand::Keys(c) => keys(&client, c).await,
            ClientCommand::Health => health(&client).await,
            ClientCommand::Costs { from, to } => {
                let q =
                    serde_urlencoded::to_string([("from", from), ("to", to)]).unwrap_or_default();
                show(&client, Method::GET, &format!("/api/costs?{q}")).await
            }
            ClientCommand::Reloads => show(&client, Method::GET, "/api/reloads").await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("procedurewriter: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints what one call answers.
async fn show(client: &Client, method: Method, path: &str) -> Result<(), ClientError> {
    print(&client.call(method, path, None, &[]).await?);
    Ok(())
}

/// One line (or a few) saying how a run ended: what `demo`, `follow` and `write --follow`
/// print. A run without a result (failed, cancelled, waiting) says why instead of a score.
pub fn summary(run: &Value) -> String {
    let id = run["run_id"].as_str().unwrap_or("");
    let status = run["status"].as_str().unwrap_or("");
    let r = &run["result"];
    let mut out = if r["score"].is_number() {
        let score = r["score"]
            .as_f64()
            .map_or("-".to_string(), |s| format!("{s:.1}"));
        format!(
            "run {id}: {status}  score {score}/10  iterations {} (stopped: {})  cost {} USD  sources {}  writer {}",
            r["iterations"],
            r["stop_reason"].as_str().unwrap_or("-"),
            run["cost_usd"],
            r["sources"].as_array().map_or(0, Vec::len),
            r["writer"].as_str().unwrap_or("-")
        )
    } else {
        format!("run {id}: {status}  cost {} USD", run["cost_usd"])
    };
    if let Some(e) = run["error"].as_str() {
        out.push_str(&format!("\n  why: {e}"));
    }
    if let Some(dir) = r["artifact_dir"].as_str() {
        out.push_str(&format!(
            "\n  artifacts: {dir}/{{procedure.md, procedure.docx, evidence_report.json, manifest.json}}\
             \n  download: procedurewriter download {id}"
        ));
    }
    if status == "NEEDS_ACK" {
        out.push_str(&format!("\n{}", gap(run)));
    }
    out
}

/// The evidence a waiting run lacks, and the command that acknowledges it.
fn gap(run: &Value) -> String {
    let id = run["run_id"].as_str().unwrap_or("");
    let req = &run["ack_required"];
    let missing: Vec<&str> = req["missing_tiers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let required: Vec<&str> = req["required_tiers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut out = format!(
        "  missing evidence: {} (required: {})",
        if missing.is_empty() {
            "-".to_string()
        } else {
            missing.join(", ")
        },
        required.join(", ")
    );
    if let Some(found) = req["found"].as_object() {
        for (tier, ids) in found {
            out.push_str(&format!(
                "\n  found {tier}: {}",
                ids.as_array().map_or(0, Vec::len)
            ));
        }
    }
    out.push_str(&format!(
        "\n  to go on without it: procedurewriter ack {id} --by \"NAME, ROLE\" --note \"WHY\"{}",
        missing
            .iter()
            .map(|t| format!(" --tier {t}"))
            .collect::<String>()
    ));
    out
}

/// Follows a run to its end, prints the summary, and says how it ended as the exit code.
async fn follow_to_end(client: &Client, id: &str) -> Result<(), ClientError> {
    client.follow(id).await?;
    let run = client
        .call(Method::GET, &format!("/api/runs/{id}"), None, &[])
        .await?;
    println!("{}", summary(&run));
    match run["status"].as_str().unwrap_or("") {
        "DONE" => Ok(()),
        "NEEDS_ACK" => Err(ClientError::NeedsAck { id: id.to_string() }),
        status => Err(ClientError::RunFailed {
            id: id.to_string(),
            status: status.to_string(),
        }),
    }
}

/// `write`: enqueue; without `follow` print the run (JSON, for scripts), with it one line,
/// the events and the summary.
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
    if !follow {
        print(&run);
        return Ok(());
    }
    let id = run["run_id"].as_str().unwrap_or_default().to_string();
    println!("run {id} enqueued; events:");
    follow_to_end(client, &id).await
}

/// `ack`: shows the run's gap, then acknowledges it (every missing tier unless `tiers` names
/// some).
async fn ack(
    client: &Client,
    id: &str,
    acknowledged_by: String,
    note: String,
    mut tiers: Vec<String>,
) -> Result<(), ClientError> {
    let run = client
        .call(Method::GET, &format!("/api/runs/{id}"), None, &[])
        .await?;
    if run["status"] != "NEEDS_ACK" {
        return Err(ClientError::Usage(format!(
            "run {id} is {}, not NEEDS_ACK: only a run waiting for an acknowledgement takes one",
            run["status"].as_str().unwrap_or("?")
        )));
    }
    println!("{}", gap(&run).lines().next().unwrap_or_default().trim());
    if tiers.is_empty() {
        tiers = run["ack_required"]["missing_tiers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
    }
    let run = client
        .call(
            Method::POST,
            &format!("/api/runs/{id}/ack"),
            Some(&json!({ "acknowledged_by": acknowledged_by, "note": note, "tiers": tiers })),
            &[],
        )
        .await?;
    println!(
        "acknowledged {} by {}; run {id} is {} (follow it: procedurewriter follow {id})",
        tiers.join(", "),
        acknowledged_by,
        run["status"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// `download`: each artifact to `dir`, under the name the daemon gives it.
async fn download(
    client: &Client,
    id: &str,
    mut artifacts: Vec<String>,
    dir: &std::path::Path,
) -> Result<(), ClientError> {
    if artifacts.is_empty() {
        artifacts = procedurewriter_pipeline::package::ARTIFACTS
            .iter()
            .map(|a| a.name.to_string())
            .collect();
    }
    for name in &artifacts {
        let Some(kind) = procedurewriter_pipeline::package::artifact(name) else {
            return Err(ClientError::Usage(format!(
                "no artifact {name:?}: procedure, docx, evidence or manifest"
            )));
        };
        let (headers, bytes) = client.get_bytes(&format!("/api/runs/{id}/{name}")).await?;
        // The daemon's name for it (procedure-<run id>.docx), or the file's own name.
        let file = headers
            .get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("filename=\"").nth(1))
            .and_then(|v| v.split('"').next())
            .filter(|f| !f.is_empty() && !f.contains(['/', '\\']) && !f.starts_with('.'))
            .unwrap_or(kind.file)
            .to_string();
        let path = dir.join(&file);
        std::fs::write(&path, &bytes)
            .map_err(|e| ClientError::Io(format!("cannot write {}: {e}", path.display())))?;
        println!("{}  {} bytes", path.display(), bytes.len());
    }
    Ok(())
}

/// `sources ...`.
async fn sources(client: &Client, command: SourcesCommand) -> Result<(), ClientError> {
    match command {
        SourcesCommand::List { limit, cursor } => {
            let mut q = format!("/api/sources?limit={limit}");
            if let Some(c) = cursor {
                q.push_str(&format!("&cursor={c}"));
            }
            let page = client.call(Method::GET, &q, None, &[]).await?;
            for src in page["sources"].as_array().into_iter().flatten() {
                println!("{}", source_line(src));
            }
            if let Some(c) = page["next_cursor"].as_str() {
                eprintln!("more: procedurewriter sources list --cursor {c}");
            }
        }
        SourcesCommand::Search { query, limit } => {
            let q = serde_urlencoded::to_string([("q", query), ("limit", limit.to_string())])
                .unwrap_or_default();
            let hits = client
                .call(Method::GET, &format!("/api/sources/search?{q}"), None, &[])
                .await?;
            for hit in hits["hits"].as_array().into_iter().flatten() {
                println!("{}", source_line(&hit["source"]));
                if let Some(snippet) = hit["snippet"].as_str() {
                    println!("    {}", snippet.replace('\n', " "));
                }
            }
        }
        SourcesCommand::Show { source_id } => {
            show(client, Method::GET, &format!("/api/sources/{source_id}")).await?
        }
        SourcesCommand::Delete { source_id, reason } => {
            let path = format!("/api/sources/{}", path_segment(&source_id));
            let done = client
                .call(
                    Method::DELETE,
                    &path,
                    Some(&json!({ "reason": reason })),
                    &[],
                )
                .await?;
            match done["action"].as_str() {
                Some("retired") => println!(
                    "{source_id} retired: {} runs used it, so it is kept for them and never \
                     retrieved again",
                    done["cited_by"].as_u64().unwrap_or(0)
                ),
                _ => println!("{source_id} erased: no run had used it"),
            }
        }
        SourcesCommand::Retier {
            source_id,
            tier,
            reason,
        } => {
            let path = format!("/api/sources/{}", path_segment(&source_id));
            let done = client
                .call(
                    Method::PATCH,
                    &path,
                    Some(&json!({ "tier": tier, "reason": reason })),
                    &[],
                )
                .await?;
            if done["changed"] == true {
                println!("{source_id} is now {tier} for future runs; past runs keep theirs");
            } else {
                println!("{source_id} already has tier {tier}: nothing changed");
            }
        }
    }
    Ok(())
}

/// A user's argument as one path segment: anything but letters and digits percent-encoded,
/// so it cannot reach another route (the daemon then says what a source id looks like).
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn source_line(src: &Value) -> String {
    format!(
        "{}  {:<24} {:>4}  {}{}",
        src["id"].as_str().unwrap_or(""),
        src["tier"].as_str().unwrap_or(""),
        src["year"]
            .as_i64()
            .map_or("-".to_string(), |y| y.to_string()),
        src["title"].as_str().unwrap_or(""),
        src["retired_reason"]
            .as_str()
            .map(|r| format!("  [retired: {r}]"))
            .unwrap_or_default()
    )
}

/// `keys ...`.
async fn keys(client: &Client, command: KeysCommand) -> Result<(), ClientError> {
    match command {
        KeysCommand::List => show(client, Method::GET, "/api/keys").await,
        KeysCommand::Set { name } => {
            let mut value = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut value)
                .map_err(|e| ClientError::Io(format!("cannot read the key from stdin: {e}")))?;
            let value = value.trim();
            if value.is_empty() {
                return Err(ClientError::Usage(
                    "no key on standard input: e.g. `procedurewriter keys set NAME < key.txt`"
                        .into(),
                ));
            }
            show_body(
                client,
                Method::PUT,
                &format!("/api/keys/{name}"),
                &json!({ "value": value }),
            )
            .await
        }
        KeysCommand::Delete { name } => {
            show(client, Method::DELETE, &format!("/api/keys/{name}")).await
        }
    }
}

async fn show_body(
    client: &Client,
    method: Method,
    path: &str,
    body: &Value,
) -> Result<(), ClientError> {
    print(&client.call(method, path, Some(body), &[]).await?);
    Ok(())
}

/// `health`: prints the report; a 503 (draining, writes failing) prints it too and exits 1.
async fn health(client: &Client) -> Result<(), ClientError> {
    match client.call(Method::GET, "/health", None, &[]).await {
        Ok(v) => {
            print(&v);
            Ok(())
        }
        Err(ClientError::Api { status, body }) if status == StatusCode::SERVICE_UNAVAILABLE => {
            print(&body);
            Err(ClientError::Io(format!(
                "the daemon answers 503: {}",
                body["status"].as_str().unwrap_or("unavailable")
            )))
        }
        Err(e) => Err(e),
    }
}

/// `runs`: one page of runs (from `cursor`), or with `all` every page.
async fn runs(
    client: &Client,
    status: Option<String>,
    limit: usize,
    mut cursor: Option<String>,
    all: bool,
) -> Result<(), ClientError> {
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
            let score = r["score"]
                .as_f64()
                .or_else(|| r["result"]["score"].as_f64())
                .map_or("-".to_string(), |s| format!("{s:.1}"));
            println!(
                "{}  {:<10} {}/{}  {:>4}  {}  {}",
                r["run_id"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or(""),
                r["attempts"],
                r["max_attempts"],
                score,
                r["created_at"].as_str().unwrap_or(""),
                r["procedure"].as_str().unwrap_or("")
            );
        }
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if !all || cursor.is_none() {
            if let Some(c) = &cursor {
                eprintln!("more: --all, or --cursor {c}");
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
        return Err(ClientError::Io(format!("{failed} files were not ingested")));
    }
    Ok(())
}
