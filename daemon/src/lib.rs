//! procedurewriter, the daemon: configuration, the data-directory lock, the HTTP endpoint,
//! signals, and the wiring of the actor runtime (`procedurewriter-actors`) to a job runner.
//!
//! `main.rs` only parses the command line; everything testable is behind [`Daemon::run`], whose
//! listener and shutdown future are parameters so tests pass their own.

pub mod cli;
pub mod client;
pub mod http;
pub mod lock;
pub mod metrics;
pub mod runner;
pub mod settings;

use crate::http::AppState;
use crate::lock::DataDirLock;
use crate::metrics::Metrics;
use crate::settings::{RunnerKind, Settings, SqliteSynchronous};
use procedurewriter_actors::{JobRunner, QueueConfig, Shutdown, Store, Supervisor, Synchronous};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Why the daemon could not start (or stopped abnormally). Each variant has its own exit code
/// (see [`DaemonError::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error(transparent)]
    Locked(#[from] lock::LockError),
    #[error("cannot prepare the data directory {path}: {cause}")]
    DataDir {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot listen on {addr}: {cause}")]
    Listen { addr: String, cause: std::io::Error },
    #[error("{0}")]
    Store(#[from] procedurewriter_actors::Error),
}

impl DaemonError {
    /// The process exit code for this failure: 2 configuration, 3 data directory locked,
    /// 4 data directory, 5 listen address, 6 database.
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Settings(_) => 2,
            DaemonError::Locked(_) => 3,
            DaemonError::DataDir { .. } => 4,
            DaemonError::Listen { .. } => 5,
            DaemonError::Store(_) => 6,
        }
    }
}

/// A configured daemon, ready to [`run`](Daemon::run).
pub struct Daemon {
    settings: Settings,
    /// The file SIGHUP re-reads (None: defaults and environment only).
    config_path: Option<PathBuf>,
    /// Overrides the runner named by `job_runner` (benchmarks and in-process tests).
    runner: Option<Arc<dyn JobRunner>>,
}

impl Daemon {
    pub fn new(settings: Settings) -> Self {
        Daemon {
            settings,
            config_path: None,
            runner: None,
        }
    }

    /// The config file to re-read on SIGHUP.
    pub fn config_path(mut self, path: Option<PathBuf>) -> Self {
        self.config_path = path;
        self
    }

    /// Runs jobs with `runner` instead of the configured one.
    pub fn runner(mut self, runner: Arc<dyn JobRunner>) -> Self {
        self.runner = Some(runner);
        self
    }

    /// Runs the daemon until `shutdown` resolves, then drains: new work gets 503, running jobs
    /// get `shutdown_grace_s`, their leases are handed back, and the call returns.
    ///
    /// Blocks the calling thread (it runs its own actix system).
    pub fn run(
        self,
        listener: std::net::TcpListener,
        shutdown: impl Future<Output = ()> + 'static,
    ) -> Result<(), DaemonError> {
        let settings = self.settings;
        prepare_data_dir(&settings)?;
        let _lock = DataDirLock::acquire(&settings.data_dir)?;
        let sync = match settings.sqlite_synchronous {
            SqliteSynchronous::Normal => Synchronous::Normal,
            SqliteSynchronous::Full => Synchronous::Full,
        };
        let runner: Arc<dyn JobRunner> = match self.runner {
            Some(r) => r,
            None => match settings.job_runner {
                RunnerKind::Test => Arc::new(runner::TestRunner),
            },
        };
        listener
            .set_nonblocking(true)
            .map_err(|cause| DaemonError::Listen {
                addr: format!("{:?}", listener.local_addr().ok()),
                cause,
            })?;
        let config_path = self.config_path;
        let system = actix_rt::System::new();
        system.block_on(async move {
            let started = Instant::now();
            let store = Store::open(&settings.db_path(), sync)?;
            let metrics = Arc::new(Metrics::new(store.metrics()));
            // Recovery before any actor exists: we hold the lock, so every RUNNING run was
            // left by a dead daemon and can go back to the queue now, not after the stale
            // timeout.
            let recovered = store.recover().await?;
            if !recovered.is_empty() {
                metrics.queue.recoveries.inc_by(recovered.len() as u64);
                tracing::info!(runs = recovered.len(), "re-queued runs interrupted by the previous daemon");
            }
            let instance = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
            let (supervisor, queue) = Supervisor::start(
                QueueConfig {
                    workers: settings.workers,
                    heartbeat_interval: settings.heartbeat_interval(),
                    reaper_interval: settings.reaper_interval(),
                    stale_timeout: settings.stale_timeout(),
                    instance: instance.clone(),
                },
                store.clone(),
                runner,
                metrics.queue.clone(),
            );
            let listener = tokio::net::TcpListener::from_std(listener).map_err(|cause| {
                DaemonError::Listen {
                    addr: settings.listen.to_string(),
                    cause,
                }
            })?;
            let addr = listener.local_addr().unwrap_or(settings.listen);
            let grace = settings.shutdown_grace();
            let state = Arc::new(AppState::new(
                queue,
                supervisor.clone(),
                store,
                settings,
                metrics,
                instance.clone(),
            ));
            let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::task::spawn_local(http::serve(listener, Arc::clone(&state), async {
                let _ = http_stopped.await;
            }));
            spawn_reload_handler(Arc::clone(&state), config_path);
            tracing::info!(
                addr = %addr, instance = %instance, startup_ms = started.elapsed().as_millis() as u64,
                "procedurewriter daemon ready"
            );

            shutdown.await;
            tracing::info!(grace_s = grace.as_secs_f64(), "shutting down: refusing new work, draining running jobs");
            state.begin_shutdown();
            if let Err(e) = supervisor.send(Shutdown { grace }).await {
                tracing::error!(cause = %e, "supervisor did not shut down cleanly");
            }
            let _ = stop_http.send(());
            let _ = server.await;
            tracing::info!("procedurewriter daemon stopped");
            Ok(())
        })
    }
}

/// Runs a daemon with `settings` on `listener` until `shutdown` resolves.
pub fn run(
    settings: Settings,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + 'static,
) -> Result<(), DaemonError> {
    Daemon::new(settings).run(listener, shutdown)
}

/// Creates the data directory (mode 0700: it holds the database and, later, the key file).
fn prepare_data_dir(settings: &Settings) -> Result<(), DaemonError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = &settings.data_dir;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|cause| DaemonError::DataDir {
                path: dir.clone(),
                cause,
            })?;
    }
    Ok(())
}

/// SIGHUP re-reads the configuration. A file that fails to load keeps the running settings
/// and is reported in `/health` (`last_reload_error`). None of the current keys can change
/// in a running daemon, so changed keys are reported as needing a restart rather than
/// half-applied.
fn spawn_reload_handler(state: Arc<AppState>, config_path: Option<PathBuf>) {
    use futures_util::StreamExt;
    let mut signals = match signal_hook_tokio::Signals::new([signal_hook::consts::SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(cause = %e, "cannot listen for SIGHUP; configuration reload is unavailable");
            return;
        }
    };
    tokio::task::spawn_local(async move {
        while signals.next().await.is_some() {
            match Settings::load(config_path.as_deref()) {
                Err(e) => {
                    tracing::error!(cause = %e, "configuration reload failed; keeping the running settings");
                    if let Ok(mut g) = state.last_reload_error.lock() {
                        *g = Some(e.to_string());
                    }
                }
                Ok(new) => {
                    if let Ok(mut g) = state.last_reload_error.lock() {
                        *g = None;
                    }
                    let old = state.settings.flatten();
                    let changed: Vec<String> = new
                        .flatten()
                        .into_iter()
                        .filter(|(k, v)| old.get(k) != Some(v))
                        .map(|(k, _)| k)
                        .collect();
                    if changed.is_empty() {
                        tracing::info!("configuration reloaded: nothing changed");
                    } else {
                        tracing::warn!(keys = ?changed, "configuration reloaded: these keys need a restart to take effect");
                    }
                }
            }
        }
    });
}
