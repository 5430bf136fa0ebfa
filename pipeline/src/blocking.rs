//! A bounded pool for CPU-bound and blocking work (parsing uploads, evaluating drafts, rendering
//! DOCX, writing artifacts), so none of it runs on the thread that serves HTTP and drives the
//! actors. At most one task per core runs at once; the rest wait their turn in order, so a
//! burst of large uploads cannot take more of the machine than it has, and the serving thread
//! always has a core's worth of room.

use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

fn permits() -> &'static Arc<Semaphore> {
    static POOL: OnceLock<Arc<Semaphore>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Semaphore::new(cores.max(1)))
    })
}

/// The work took longer than its limit and was given up on (it finishes in the background and
/// its result is dropped; its place in the pool is held until then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("took longer than {0:?}")]
pub struct TimedOut(pub Duration);

/// Runs `f` on tokio's blocking threads, at most one task per core at a time, and waits for
/// it. A panic inside `f` resumes on the caller, so it fails the job (or request) that asked.
pub async fn run<T, F>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match spawn(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("blocking task did not finish: {e}"),
    }
}

/// Like [`run`], but gives up waiting after `limit`. The work itself cannot be interrupted: it
/// keeps its place in the pool until it ends, so work that keeps timing out cannot pile up
/// beyond the pool's size.
pub async fn run_with_limit<T, F>(limit: Duration, f: F) -> Result<T, TimedOut>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::time::timeout(limit, spawn(f)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("blocking task did not finish: {e}"),
        Err(_) => Err(TimedOut(limit)),
    }
}

/// Takes a place in the pool (waiting for one), then starts `f` holding it.
async fn spawn<T, F>(f: F) -> Result<T, tokio::task::JoinError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // The semaphore is never closed, so acquiring cannot fail.
    let permit = Arc::clone(permits())
        .acquire_owned()
        .await
        .expect("the blocking pool's semaphore is never closed");
    tokio::task::spawn_blocking(move || {
        let _held = permit;
        f()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_off_the_calling_thread_and_a_slow_task_is_given_up_on() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let caller = std::thread::current().id();
            let worker = run(move || std::thread::current().id()).await;
            assert_ne!(worker, caller);
            let slow = run_with_limit(Duration::from_millis(20), || {
                std::thread::sleep(Duration::from_millis(300));
                1
            })
            .await;
            assert_eq!(slow, Err(TimedOut(Duration::from_millis(20))));
            assert_eq!(run_with_limit(Duration::from_secs(5), || 7).await, Ok(7));
        });
    }

    #[test]
    fn a_panic_in_the_pool_reaches_the_caller() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(run(|| -> u8 { panic!("boom") }))
        }));
        assert!(caught.is_err());
    }
}
