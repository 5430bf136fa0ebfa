//! A fake language-model provider for the tests and the benchmark: an HTTP server (hyper, on
//! its own thread) that speaks the OpenAI Chat Completions or the Anthropic Messages API and
//! answers from a script the test writes.
//!
//! Drafts are built from the prompt the daemon sent: a `Draft { sections: k, .. }` fills the
//! first `k` evidence sections of the outline with a sentence copied from one of the prompt's
//! sources and cites it, the rest say there is no evidence. More sections score higher with
//! the evaluator, so a test controls scores by choosing `k`. Usage is what the script says,
//! with output capped at the request's `max_tokens` (as real providers do).
//!
//! A request with `"stream": true` is answered as the real APIs stream (server-sent events:
//! OpenAI chunks with the usage in the last one, then `[DONE]`; Anthropic `message_start`,
//! `content_block_delta`s, `message_delta` with the stop reason and output usage,
//! `message_stop`), in chunks of about 40 bytes.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Which API the fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    OpenAi,
    Anthropic,
}

/// One scripted answer.
#[derive(Clone)]
pub enum Reply {
    /// A draft filling `sections` evidence sections. `tokens_in` None: the prompt's bytes / 4.
    Draft {
        sections: usize,
        tokens_in: Option<u64>,
        tokens_out: u64,
    },
    /// An error status with the provider's error body, and optionally `Retry-After`.
    Status {
        code: u16,
        message: String,
        retry_after: Option<String>,
    },
    /// This Markdown as the completion, word for word.
    Markdown(String),
    /// Waits until [`FakeLlm::release`] before answering with the inner reply.
    Held(Box<Reply>),
    /// Never answers (the client's timeout fires).
    Hang,
    /// Closes the connection without an answer.
    Reset,
    /// The inner reply streamed with this pause before every chunk (a slow but steady model).
    Slow { reply: Box<Reply>, gap: Duration },
    /// A draft of all sections streamed for `chunks` chunks, then nothing more (a stuck
    /// model): the connection stays open without another byte.
    Stall { chunks: usize },
    /// Chooses the reply from the request body (e.g. by procedure title).
    By(Arc<dyn Fn(&Value) -> Reply + Send + Sync>),
}

impl Reply {
    pub fn draft(sections: usize, tokens_out: u64) -> Reply {
        Reply::Draft {
            sections,
            tokens_in: None,
            tokens_out,
        }
    }

    pub fn status(code: u16, message: &str) -> Reply {
        Reply::Status {
            code,
            message: message.to_string(),
            retry_after: None,
        }
    }
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// The credential header (`authorization` or `x-api-key`), as sent.
    pub credential: Option<String>,
    pub body: Value,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    /// The request's `max_tokens`.
    pub fn max_tokens(&self) -> u64 {
        self.body["max_tokens"].as_u64().unwrap_or(0)
    }

    /// The user prompt.
    pub fn user_prompt(&self) -> String {
        let msgs = self.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        msgs.iter()
            .filter(|m| m["role"] == "user")
            .filter_map(|m| m["content"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

struct State {
    script: VecDeque<Reply>,
    default: Reply,
    received: Vec<Received>,
    /// What `GET /props` reports as `total_slots`, as llama.cpp does (None: 404).
    total_slots: Option<u64>,
    /// How often `GET /props` was asked (not in `received`).
    props_asked: usize,
}

/// A running fake provider; stops when dropped.
pub struct FakeLlm {
    pub addr: SocketAddr,
    pub flavor: Flavor,
    state: Arc<Mutex<State>>,
    release: watch::Sender<u64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeLlm {
    /// Starts a fake on an ephemeral loopback port; unscripted requests get `default`.
    pub fn start(flavor: Flavor, default: Reply) -> FakeLlm {
        let state = Arc::new(Mutex::new(State {
            script: VecDeque::new(),
            default,
            received: Vec::new(),
            total_slots: None,
            props_asked: 0,
        }));
        let (release, release_rx) = watch::channel(0u64);
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake");
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let st = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(serve(std_listener, flavor, st, release_rx, stop_rx));
        });
        FakeLlm {
            addr,
            flavor,
            state,
            release,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The `llm_base_url` that reaches this fake.
    pub fn base_url(&self) -> String {
        match self.flavor {
            Flavor::OpenAi => format!("http://{}/v1", self.addr),
            Flavor::Anthropic => format!("http://{}", self.addr),
        }
    }

    /// The daemon settings that point the pipeline at this fake with `model`.
    pub fn env(&self, model: &str) -> Vec<(String, String)> {
        vec![
            ("PROCEDUREWRITER_JOB_RUNNER".into(), "pipeline".into()),
            (
                "PROCEDUREWRITER_LLM_PROVIDER".into(),
                match self.flavor {
                    Flavor::OpenAi => "openai",
                    Flavor::Anthropic => "anthropic",
                }
                .into(),
            ),
            ("PROCEDUREWRITER_LLM_MODEL".into(), model.into()),
            ("PROCEDUREWRITER_LLM_BASE_URL".into(), self.base_url()),
            (
                "PROCEDUREWRITER_LLM_RETRY_BASE_DELAY_S".into(),
                "0.02".into(),
            ),
            ("PROCEDUREWRITER_LLM_RETRY_MAX_DELAY_S".into(), "0.2".into()),
        ]
    }

    /// Appends replies to the script (answered in order, before the default).
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        self.state.lock().unwrap().default = reply;
    }

    /// Lets every held request answer.
    pub fn release(&self) {
        self.release.send_modify(|n| *n += 1);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }

    /// Answers `GET /props` with this `total_slots` (llama.cpp's parallel slots); None: 404.
    pub fn set_total_slots(&self, slots: Option<u64>) {
        self.state.lock().unwrap().total_slots = slots;
    }

    /// How often the daemon asked `GET /props`.
    pub fn props_asked(&self) -> usize {
        self.state.lock().unwrap().props_asked
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    flavor: Flavor,
    state: Arc<Mutex<State>>,
    release: watch::Receiver<u64>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = &mut stop => break,
        };
        let state = Arc::clone(&state);
        let release = release.clone();
        tasks.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                handle(flavor, Arc::clone(&state), release.clone(), req)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
    tasks.abort_all();
}

type Body = BoxBody<Bytes, std::io::Error>;
type Answer = Result<Response<Body>, std::io::Error>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

async fn handle(
    flavor: Flavor,
    state: Arc<Mutex<State>>,
    mut release: watch::Receiver<u64>,
    req: Request<Incoming>,
) -> Answer {
    let path = req.uri().path().to_string();
    let credential = req
        .headers()
        .get("authorization")
        .or_else(|| req.headers().get("x-api-key"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if path == "/props" {
        let slots = {
            let mut st = state.lock().unwrap();
            st.props_asked += 1;
            st.total_slots
        };
        return Ok(match slots {
            Some(n) => Response::builder()
                .header("content-type", "application/json")
                .body(full(serde_json::json!({ "total_slots": n }).to_string()))
                .unwrap(),
            None => Response::builder()
                .status(404)
                .body(full("File Not Found"))
                .unwrap(),
        });
    }
    let mut reply = {
        let mut st = state.lock().unwrap();
        st.received.push(Received {
            path: path.clone(),
            credential,
            body: body.clone(),
            at: std::time::Instant::now(),
        });
        st.script.pop_front().unwrap_or_else(|| st.default.clone())
    };
    let seen = *release.borrow();
    loop {
        reply = match reply {
            Reply::By(f) => f(&body),
            Reply::Held(inner) => {
                let _ = release.wait_for(|n| *n > seen).await;
                *inner
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Reply::Reset
            }
            Reply::Slow { reply, gap } => break answer(flavor, &body, *reply, gap, None),
            Reply::Stall { chunks } => {
                break answer(
                    flavor,
                    &body,
                    Reply::draft(12, 4000),
                    Duration::ZERO,
                    Some(chunks),
                )
            }
            other => break answer(flavor, &body, other, Duration::ZERO, None),
        };
    }
}

/// `reply` as the API answers it: streamed when the request asked, with `gap` before every
/// chunk; `stall_after`: the stream stops (and stays open) after that many text chunks.
fn answer(
    flavor: Flavor,
    body: &Value,
    reply: Reply,
    gap: Duration,
    stall_after: Option<usize>,
) -> Answer {
    let json_response = |status: u16, v: Value, retry_after: Option<String>| {
        let mut r = Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("content-type", "application/json");
        if let Some(ra) = retry_after {
            r = r.header("retry-after", ra);
        }
        Ok(r.body(full(v.to_string())).unwrap())
    };
    match reply {
        Reply::Reset => Err(std::io::Error::other("reset by the fake")),
        Reply::Status {
            code,
            message,
            retry_after,
        } => {
            let v = match flavor {
                Flavor::OpenAi => {
                    json!({ "error": { "message": message, "type": "fake_error", "code": code } })
                }
                Flavor::Anthropic => {
                    json!({ "type": "error", "error": { "type": "fake_error", "message": message } })
                }
            };
            json_response(code, v, retry_after)
        }
        reply @ (Reply::Draft { .. } | Reply::Markdown(_)) => {
            let prompt = prompt_text(body);
            let (text, tokens_in, tokens_out) = match reply {
                Reply::Draft {
                    sections,
                    tokens_in,
                    tokens_out,
                } => (draft_from_prompt(&prompt, sections), tokens_in, tokens_out),
                Reply::Markdown(text) => {
                    let out = text.len() as u64 / 4 + 1;
                    (text, None, out)
                }
                _ => unreachable!("only drafts and Markdown reach here"),
            };
            let max = body["max_tokens"].as_u64().unwrap_or(u64::MAX);
            let tokens_out = tokens_out.min(max);
            let tokens_in = tokens_in.unwrap_or(prompt.len() as u64 / 4);
            let truncated = tokens_out == max;
            if body["stream"] == true {
                let events = stream_events(flavor, body, &text, tokens_in, tokens_out, truncated);
                return Ok(sse(events, gap, stall_after));
            }
            let v = match flavor {
                Flavor::OpenAi => json!({
                    "id": "chatcmpl-fake", "object": "chat.completion",
                    "model": body["model"],
                    "choices": [{ "index": 0, "message": { "role": "assistant", "content": text },
                                  "finish_reason": if truncated { "length" } else { "stop" } }],
                    "usage": { "prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                               "total_tokens": tokens_in + tokens_out },
                }),
                Flavor::Anthropic => json!({
                    "id": "msg_fake", "type": "message", "role": "assistant", "model": body["model"],
                    "content": [{ "type": "text", "text": text }],
                    "stop_reason": if truncated { "max_tokens" } else { "end_turn" },
                    "usage": { "input_tokens": tokens_in, "output_tokens": tokens_out },
                }),
            };
            json_response(200, v, None)
        }
        Reply::By(_) | Reply::Held(_) | Reply::Hang | Reply::Slow { .. } | Reply::Stall { .. } => {
            unreachable!("resolved by handle")
        }
    }
}

/// The server-sent events of a streamed answer: `(is_text_chunk, event block)`.
fn stream_events(
    flavor: Flavor,
    body: &Value,
    text: &str,
    tokens_in: u64,
    tokens_out: u64,
    truncated: bool,
) -> Vec<(bool, String)> {
    let mut pieces = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if cur.len() >= 40 {
            pieces.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        pieces.push(cur);
    }
    let data = |v: Value| format!("data: {v}\n\n");
    let named = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
    let mut out = Vec::new();
    match flavor {
        Flavor::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                json!({ "id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": body["model"],
                        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
            };
            out.push((
                false,
                data(chunk(
                    json!({ "role": "assistant", "content": "" }),
                    Value::Null,
                )),
            ));
            for p in pieces {
                out.push((true, data(chunk(json!({ "content": p }), Value::Null))));
            }
            let finish = if truncated { "length" } else { "stop" };
            out.push((false, data(chunk(json!({}), json!(finish)))));
            if body["stream_options"]["include_usage"] == true {
                out.push((false, data(json!({ "id": "chatcmpl-fake", "object": "chat.completion.chunk",
                    "choices": [], "usage": { "prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                    "total_tokens": tokens_in + tokens_out } }))));
            }
            out.push((false, "data: [DONE]\n\n".to_string()));
        }
        Flavor::Anthropic => {
            out.push((
                false,
                named(
                    "message_start",
                    json!({ "type": "message_start", "message": {
                "id": "msg_fake", "type": "message", "role": "assistant", "model": body["model"],
                "content": [], "stop_reason": null,
                "usage": { "input_tokens": tokens_in, "output_tokens": 1 } } }),
                ),
            ));
            out.push((
                false,
                named(
                    "content_block_start",
                    json!({ "type": "content_block_start",
                "index": 0, "content_block": { "type": "text", "text": "" } }),
                ),
            ));
            out.push((false, named("ping", json!({ "type": "ping" }))));
            for p in pieces {
                out.push((
                    true,
                    named(
                        "content_block_delta",
                        json!({ "type": "content_block_delta",
                    "index": 0, "delta": { "type": "text_delta", "text": p } }),
                    ),
                ));
            }
            out.push((
                false,
                named(
                    "content_block_stop",
                    json!({ "type": "content_block_stop", "index": 0 }),
                ),
            ));
            let stop = if truncated { "max_tokens" } else { "end_turn" };
            out.push((
                false,
                named(
                    "message_delta",
                    json!({ "type": "message_delta",
                "delta": { "stop_reason": stop, "stop_sequence": null },
                "usage": { "output_tokens": tokens_out } }),
                ),
            ));
            out.push((
                false,
                named("message_stop", json!({ "type": "message_stop" })),
            ));
        }
    }
    out
}

/// An event-stream response that sends `events` with `gap` before each, stopping for good
/// (the connection kept open) after `stall_after` text chunks.
fn sse(events: Vec<(bool, String)>, gap: Duration, stall_after: Option<usize>) -> Response<Body> {
    let stream = futures_util::stream::unfold(
        (events.into_iter(), 0usize),
        move |(mut events, mut texts)| async move {
            let (is_text, block) = events.next()?;
            if is_text {
                if stall_after.is_some_and(|n| texts >= n) {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return None;
                }
                texts += 1;
            }
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            Some((
                Ok::<_, std::io::Error>(Frame::data(Bytes::from(block))),
                (events, texts),
            ))
        },
    );
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(StreamBody::new(stream).boxed())
        .unwrap()
}

/// The system and user text of a request, in either API's shape.
fn prompt_text(body: &Value) -> String {
    let mut p = body["system"].as_str().unwrap_or_default().to_string();
    for m in body["messages"].as_array().cloned().unwrap_or_default() {
        p.push('\n');
        p.push_str(m["content"].as_str().unwrap_or_default());
    }
    p
}

/// `(id, text)` of each `<source id="...">` block in the prompt.
pub fn prompt_sources(prompt: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = prompt;
    while let Some(start) = rest.find("<source id=\"") {
        let after = &rest[start + 12..];
        let Some(q) = after.find('"') else { break };
        let id = after[..q].to_string();
        let Some(body_start) = after.find('\n') else {
            break;
        };
        let Some(end) = after.find("</source>") else {
            break;
        };
        out.push((id, after[body_start + 1..end].to_string()));
        rest = &after[end..];
    }
    out
}

/// A draft that fills the first `sections` evidence sections with a cited source sentence.
pub fn draft_from_prompt(prompt: &str, sections: usize) -> String {
    use procedurewriter_pipeline::evidence::sentences;
    use procedurewriter_pipeline::outline::{evidence_sections, CHECKLIST};
    let sources: Vec<(String, Vec<String>)> = prompt_sources(prompt)
        .into_iter()
        .map(|(id, text)| {
            // The title line, then passages; their tags are not text.
            let body: String = text
                .lines()
                .skip(1)
                .filter(|l| !l.starts_with("<passage") && !l.starts_with("</passage"))
                .collect::<Vec<_>>()
                .join(" ");
            (id, sentences(&body))
        })
        .filter(|(_, s)| !s.is_empty())
        .collect();
    let mut md = String::new();
    for (i, s) in evidence_sections().enumerate() {
        md.push_str(&format!("## {}\n\n", s.heading));
        if i < sections && !sources.is_empty() {
            let (id, sents) = &sources[i % sources.len()];
            let start = (i / sources.len()) % sents.len();
            // A model that follows the outline does not put an indication under
            // Kontraindikationer: take the next sentence that is not one.
            let fits = |t: &String| {
                let l = t.to_lowercase();
                s.heading != "Kontraindikationer"
                    || !["suspect", "mistanke", "indikation", "indication"]
                        .iter()
                        .any(|c| l.contains(c))
            };
            let sent = (0..sents.len())
                .map(|k| &sents[(start + k) % sents.len()])
                .find(|t| fits(t))
                .unwrap_or(&sents[start]);
            md.push_str(&format!("{sent} [S:{id}]\n\n"));
        } else {
            md.push_str("_Kilderne siger intet om dette afsnit._\n\n");
        }
    }
    md.push_str(&format!("## {CHECKLIST}\n\n_Ingen trin._\n"));
    md
}
