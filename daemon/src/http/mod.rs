//! The HTTP endpoint (hyper 1.x, HTTP/1.1): the only module that knows HTTP and JSON.
//!
//! It changes state only by sending messages to the QueueActor and reads through the store's
//! query methods; it never sees SQL or a connection. Every error leaves through
//! [`ApiError`], so every 4xx/5xx has a JSON body — including requests hyper could not parse,
//! which `framing.rs` refuses before hyper reads them.

mod api_keys;
mod costs;
mod error;
mod framing;
mod guard;
mod request;
mod routes;
mod runs;
mod sources;
mod sse;

pub use error::ApiError;

use crate::metrics::Metrics;
use crate::settings::Settings;
use actix::Addr;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{header, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use procedurewriter_actors::crypto::SecretKey;
use procedurewriter_actors::{QueueActor, Store, Supervisor};
use procedurewriter_pipeline::quality::HotLoopSettings;
use procedurewriter_pipeline::tiers::TierRules;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body: a full JSON/text body or an event stream.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The running parts the HTTP layer talks to.
pub struct Services {
    pub queue: Addr<QueueActor>,
    pub supervisor: Addr<Supervisor>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
}

/// What the request handlers share.
pub struct AppState {
    pub queue: Addr<QueueActor>,
    pub supervisor: Addr<Supervisor>,
    /// For reads only; writes go through the queue.
    pub store: Store,
    /// The settings the daemon started with.
    pub settings: Settings,
    /// The settings in force: those it started with, and the reloadable keys as last reloaded.
    pub applied_settings: Mutex<Settings>,
    /// The quality loop's settings as the runner reads them (SIGHUP replaces them).
    pub loop_settings: HotLoopSettings,
    pub metrics: Arc<Metrics>,
    /// Set on SIGTERM/SIGINT: new work is refused with 503.
    shutting_down: AtomicBool,
    /// Tells open event streams to end at shutdown.
    shutdown_tx: watch::Sender<bool>,
    pub started: Instant,
    /// This daemon process's identity (also the first half of its lease owners).
    pub instance: String,
    /// The error of the last failed SIGHUP reload, shown by `/health`.
    pub last_reload_error: Mutex<Option<String>>,
    /// Whether the last SIGHUP reload succeeded and when (Unix seconds), for `/metrics`.
    pub last_reload: Mutex<Option<(bool, f64)>>,
    /// Keys whose new values (from the last reload) wait for a restart: key → [old, new].
    pub pending_restart: Mutex<serde_json::Map<String, serde_json::Value>>,
    /// Encrypts and decrypts stored API keys (`/api/keys`). Never printed.
    pub secret_key: SecretKey,
    /// Classifies ingested sources (`/api/sources`).
    pub rules: Arc<TierRules>,
    /// Open event streams, at most `max_event_streams`: apart from the connection limit, so
    /// followers cannot take the capacity short requests need.
    event_streams: Arc<Semaphore>,
    /// Held by a file upload from keeping its original to storing its source, and by a
    /// delete from erasing a source to removing its original: an upload of the same file
    /// cannot have its original removed under it.
    pub originals: tokio::sync::Mutex<()>,
    /// Held while the passages' features are recomputed after a reload: reloads in quick
    /// succession recompute one after the other (the later finds the work done), never side
    /// by side.
    pub refeature: Arc<tokio::sync::Mutex<()>>,
}

impl AppState {
    pub fn new(
        services: Services,
        settings: Settings,
        loop_settings: HotLoopSettings,
        instance: String,
        secret_key: SecretKey,
        rules: Arc<TierRules>,
    ) -> Self {
        let Services {
            queue,
            supervisor,
            store,
            metrics,
        } = services;
        let event_streams = Arc::new(Semaphore::new(settings.max_event_streams));
        AppState {
            queue,
            supervisor,
            store,
            applied_settings: Mutex::new(settings.clone()),
            settings,
            loop_settings,
            metrics,
            shutting_down: AtomicBool::new(false),
            shutdown_tx: watch::channel(false).0,
            started: Instant::now(),
            instance,
            last_reload_error: Mutex::new(None),
            last_reload: Mutex::new(None),
            pending_restart: Mutex::new(serde_json::Map::new()),
            secret_key,
            rules,
            event_streams,
            originals: tokio::sync::Mutex::new(()),
            refeature: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Refuse new work from now on and end open event streams.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let _ = self.shutdown_tx.send(true);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Event streams open now.
    pub fn event_streams_open(&self) -> usize {
        self.settings
            .max_event_streams
            .saturating_sub(self.event_streams.available_permits())
    }

    pub(crate) fn shutdown_watch(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn empty() -> Body {
    full(Bytes::new())
}

pub(crate) fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// The request line and headers together, at most (431 beyond): far above what `curl` or the
/// CLI send, far below what could tie up memory.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A connection's share of the server's capacity: one of `max_connections` while it serves
/// short requests, one of `max_event_streams` once it serves an event stream (the swap gives
/// the connection slot back). Dropped, with its permit, when the connection ends.
type Slot = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

/// Accepts connections until `stop` resolves, then lets open requests finish (bounded).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    stop: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(state.settings.max_connections));
    let header_timeout = state.settings.header_read_timeout();
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(cause = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let slot: Slot = Arc::new(Mutex::new(Some(permit)));
        let service_slot = Arc::clone(&slot);
        let service = hyper::service::service_fn(move |req| {
            let state = Arc::clone(&state);
            let slot = Arc::clone(&service_slot);
            async move { Ok::<_, std::convert::Infallible>(handle(state, slot, req).await) }
        });
        // hyper's own limit is above ours: `framing::Checked` refuses a longer head first, with
        // the JSON error hyper cannot send, so hyper only ever sees heads within the limit.
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(64 * 1024)
            .max_header_size(2 * MAX_HEADER_BYTES)
            // End-of-file while a request is being answered is not an abort: it is how a client
            // that half-closes waits for its answer, and how `framing::Checked` stops hyper at
            // a refused head while answers to earlier pipelined requests are still owed.
            .half_close(true)
            .serve_connection(
                TokioIo::new(framing::Checked::new(stream, MAX_HEADER_BYTES)),
                service,
            );
        let conn = graceful.watch(conn);
        tokio::task::spawn_local(async move {
            if let Err(e) = conn.await {
                tracing::debug!(cause = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some HTTP connections did not close within 5 s");
    }
}

/// One request: route, answer, count.
async fn handle(state: Arc<AppState>, slot: Slot, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::debug_span!("http", %method, %path);
    let started = Instant::now();
    let in_flight = InFlight::enter(&state.metrics.http_in_flight);
    let (route, resp) = match guard::refusal(&state, &req) {
        None => tracing::Instrument::instrument(routes::route(&state, req), span).await,
        Some(refused) => ("refused", refused),
    };
    drop(in_flight);
    let resp = if is_event_stream(&resp) {
        admit_stream(&state, &slot, resp)
    } else {
        resp
    };
    state
        .metrics
        .http_request(route, resp.status().as_u16(), started.elapsed());
    let mut resp = resp;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The body was refused unread, and hyper closes a connection whose body it cannot
        // drain at once: saying so keeps a client from sending its next request on a
        // connection that is about to close (it would see the peer disconnect).
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// One request in the in-flight gauge, taken out when dropped: also when hyper drops the
/// request's future because the client went away.
struct InFlight(prometheus_client::metrics::gauge::Gauge);

impl InFlight {
    fn enter(gauge: &prometheus_client::metrics::gauge::Gauge) -> InFlight {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// An answer that opens an event stream (the handler checked the run and the caller).
fn is_event_stream(resp: &Response<Body>) -> bool {
    resp.status() == StatusCode::OK
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// Gives an event stream its own slot: one of `max_event_streams`, in place of the connection
/// slot it came in on, which goes back to the short requests. The stream's connection closes
/// when the stream does (`Connection: close`), so its slot is held exactly as long as the
/// stream. With every stream slot taken, the stream is refused (dropping it ends its pump) and
/// the client is told what to do instead.
fn admit_stream(state: &AppState, slot: &Slot, mut resp: Response<Body>) -> Response<Body> {
    match Arc::clone(&state.event_streams).try_acquire_owned() {
        Ok(stream_permit) => {
            if let Ok(mut held) = slot.lock() {
                *held = Some(stream_permit);
            }
            resp.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            resp
        }
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "{} event streams are open, as many as max_event_streams allows; close one, \
                 retry later, or poll GET /api/runs/{{id}}/events?after=<last event id> for the \
                 events as JSON",
                state.settings.max_event_streams
            ),
        )
        .into_response(),
    }
}
