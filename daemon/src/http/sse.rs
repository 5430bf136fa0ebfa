//! `GET /api/runs/{id}/events` as Server-Sent Events: replay from `Last-Event-ID`, then live
//! events as they commit, with keep-alives, closing after the run's final event — also when
//! the client's `Last-Event-ID` is past it (the stream then closes with nothing sent).
//!
//! The pump subscribes to committed events *before* reading history, so nothing falls between
//! the replay and the live feed; ids already sent are skipped. If it falls behind the live feed
//! (broadcast lag), it re-reads the gap from the database, so a slow client misses nothing.
//!
//! How many streams may be open is decided in `mod.rs` (`admit_stream`), on the answer this
//! module builds: a stream takes one of `max_event_streams`, not a connection slot.

use super::Body;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::{header, Response, StatusCode};
use procedurewriter_actors::{Event, Store};
use sse_stream::{KeepAlive, Sse, SseBody, Timer};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// A keep-alive timer for `sse-stream` on tokio's clock.
pub struct TokioTimer(Pin<Box<tokio::time::Sleep>>);

impl std::future::Future for TokioTimer {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl Timer for TokioTimer {
    fn reset(mut self: Pin<&mut Self>, instant: std::time::Instant) {
        self.0
            .as_mut()
            .reset(tokio::time::Instant::from_std(instant));
    }
    fn from_duration(duration: Duration) -> Self {
        TokioTimer(Box::pin(tokio::time::sleep(duration)))
    }
}

fn to_sse(ev: &Event) -> Sse {
    Sse::default()
        .id(ev.id.to_string())
        .event(ev.kind.clone())
        .data(serde_json::to_string(ev).unwrap_or_else(|_| "{}".into()))
}

/// Starts the stream for `run_id` (which the caller checked exists), resuming after
/// `last_id`. The stream also ends when `shutdown` flips to true.
pub fn stream(
    store: Store,
    run_id: String,
    last_id: i64,
    keepalive: Duration,
    shutdown: watch::Receiver<bool>,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Sse>(64);
    tokio::task::spawn_local(pump(store, run_id, last_id, tx, shutdown));
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|sse| (Ok::<_, Infallible>(sse), rx))
    });
    let body = SseBody::<_, TokioTimer>::new_keep_alive(
        events.boxed(),
        KeepAlive::new().interval(keepalive),
    )
    .map_err(|e| -> super::BoxError { Box::new(e) })
    .boxed_unsync();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(body)
        .unwrap_or_else(|_| Response::new(super::empty()))
}

/// Sends replayed then live events for one run into `tx` until the run is final, the client
/// goes away or the daemon shuts down.
async fn pump(
    store: Store,
    run_id: String,
    mut last: i64,
    tx: mpsc::Sender<Sse>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut live = store.subscribe();
    // Replay what is stored after `last`.
    match replay(&store, &run_id, &mut last, &tx).await {
        Some(true) | None => return,
        Some(false) => {}
    }
    // A run that is already final closes the stream once its history is out; read the run
    // after the replay, then replay once more so a final event committed in between is sent.
    match store.get_run(run_id.clone()).await {
        Ok(run) if run.status.is_final() => {
            let _ = replay(&store, &run_id, &mut last, &tx).await;
            return;
        }
        Ok(_) => {}
        Err(_) => return,
    }
    loop {
        tokio::select! {
            got = live.recv() => match got {
                Ok(ev) => {
                    if ev.run_id != run_id {
                        continue;
                    }
                    if ev.id > last {
                        last = ev.id;
                        if tx.send(to_sse(&ev)).await.is_err() {
                            return;
                        }
                    }
                    // The run's final event ends the stream even when it is not sent: a client
                    // resuming from a Last-Event-ID past it has nothing more to wait for.
                    if ev.status.is_final() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // The replay sends nothing when the client is past every stored event, so
                    // whether the run ended is read from the run, not from what was sent.
                    match replay(&store, &run_id, &mut last, &tx).await {
                        Some(false) => match store.get_run(run_id.clone()).await {
                            Ok(run) if !run.status.is_final() => {}
                            _ => return,
                        },
                        _ => return,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tx.closed() => return,
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Sends stored events after `last`. `Some(true)`: a final event was sent; `Some(false)`:
/// not yet final; `None`: the client left or the store failed.
async fn replay(
    store: &Store,
    run_id: &str,
    last: &mut i64,
    tx: &mpsc::Sender<Sse>,
) -> Option<bool> {
    let events = store.events(run_id.to_string(), *last).await.ok()?;
    let mut finished = false;
    for ev in events {
        *last = ev.id;
        finished = ev.status.is_final();
        tx.send(to_sse(&ev)).await.ok()?;
    }
    Some(finished)
}
