//! procedurewriter, the daemon: configuration, the data-directory lock, the HTTP endpoint,
//! signals, and the wiring of the actor runtime (`procedurewriter-actors`) to a job runner.
//!
//! `main.rs` only parses the command line; everything testable is behind [`Daemon::run`], whose
//! listener and shutdown future are parameters so tests pass their own.

pub mod admin;
pub mod cli;
pub mod client;
pub mod demo;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod job;
pub mod keys;
pub mod library;
pub mod lock;
pub mod metrics;
pub mod model_client;
pub mod reload;
pub mod runner;
pub mod service;
pub mod settings;

use crate::http::AppState;
use crate::lock::DataDirLock;
use crate::metrics::Metrics;
use crate::settings::{RunnerKind, Settings, SqliteSynchronous};
use procedurewriter_actors::crypto::SecretKey;
use procedurewriter_actors::store::KeyCheck;
use procedurewriter_actors::{JobRunner, QueueConfig, Shutdown, Store, Supervisor, Synchronous};
use procedurewriter_pipeline::quality::HotLoopSettings;
use procedurewriter_pipeline::tiers::TierRules;
use procedurewriter_pipeline::Pipeline;
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
    #[error(transparent)]
    Key(#[from] keys::KeyLoadError),
    #[error("cannot finish an interrupted key rotation: {0}")]
    Rotation(std::io::Error),
    #[error("{0}")]
    Refused(String),
    /// An existing database file start-up will not initialise (it would start a new history
    /// over an old one).
    #[error("{0}")]
    Database(String),
}

impl DaemonError {
    /// The process exit code for this failure: 1 refused, 2 configuration, 3 data directory
    /// locked, 4 data directory, 5 listen address, 6 database, 10 no secret key, 11 malformed
    /// key, 12 key file readable by others, 13 wrong key, 14 key file unreadable, 15 rotation.
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Refused(_) => 1,
            DaemonError::Settings(_) => 2,
            DaemonError::Locked(_) => 3,
            DaemonError::DataDir { .. } => 4,
            DaemonError::Listen { .. } => 5,
            DaemonError::Store(procedurewriter_actors::Error::KeyMismatch { .. }) => 13,
            DaemonError::Store(_) | DaemonError::Database(_) => 6,
            DaemonError::Key(e) => e.exit_code(),
            DaemonError::Rotation(_) => 15,
        }
    }
}

/// A configured daemon, ready to [`run`](Daemon::run).
pub struct Daemon {
    settings: Settings,
    /// The secret key, when the caller has it already (else it is loaded in `prepare`).
    key: Option<SecretKey>,
    /// The file SIGHUP re-reads (None: defaults and environment only).
    config_path: Option<PathBuf>,
    /// Overrides the runner named by `job_runner` (benchmarks and in-process tests).
    runner: Option<Arc<dyn JobRunner>>,
}

impl Daemon {
    pub fn new(settings: Settings) -> Self {
        Daemon {
            settings,
            key: None,
            config_path: None,
            runner: None,
        }
    }

    /// Uses `key` instead of loading it from the environment or the key file.
    pub fn key(mut self, key: SecretKey) -> Self {
        self.key = Some(key);
        self
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

    /// Everything that can fail before the daemon serves: the secret key, the data directory,
    /// its lock, the database and its migrations, an interrupted key rotation, the key check,
    /// and recovery of runs a dead daemon left RUNNING. Nothing here opens a port.
    pub fn prepare(self) -> Result<Prepared, DaemonError> {
        let settings = self.settings;
        // The lexicon in force before anything analyses text (the index's analysis is built
        // from it once, here at start).
        match settings.lexicon() {
            Ok(l) => procedurewriter_pipeline::verify::lexicon::install(l),
            Err(e) => return Err(DaemonError::Refused(e.to_string())),
        }
        let key_file = settings.key_file();
        let rotation_pending = keys::side_file(&key_file).exists();
        // Without a rotation to finish, a missing or bad key fails before anything is touched.
        let mut key = self.key;
        if key.is_none() && !rotation_pending {
            key = Some(keys::load_key(&key_file)?.0);
        }
        prepare_data_dir(&settings)?;
        let lock = DataDirLock::acquire(&settings.data_dir)?;
        check_database_file(&settings)?;
        // With the lock held no rotation of this data directory runs: what a killed one left
        // behind can go.
        for path in keys::remove_stale_temp_files(&key_file) {
            tracing::warn!(path = %path.display(), "removed a temp file a killed key write left behind");
        }
        let sync = match settings.sqlite_synchronous {
            SqliteSynchronous::Normal => Synchronous::Normal,
            SqliteSynchronous::Full => Synchronous::Full,
        };
        let store = Store::open(&settings.db_path(), sync)?;
        block_on(store.set_max_size(settings.max_database_bytes()))?;
        if rotation_pending {
            let recorded = block_on(store.recorded_key_id())?;
            let outcome = keys::finish_rotation(&key_file, recorded.as_deref())
                .map_err(DaemonError::Rotation)?;
            tracing::warn!(?outcome, "found an interrupted key rotation");
        }
        let key = match key {
            Some(k) => k,
            None => keys::load_key(&key_file)?.0,
        };
        if block_on(store.check_key(key.id()))? == KeyCheck::Recorded {
            tracing::info!(key_id = %key.id(), "recorded the secret key's id in the database");
        }
        // We hold the lock, so every RUNNING run was left by a dead daemon: back to the queue
        // now, not after the stale timeout.
        let recovered = block_on(store.recover())?.len();
        let rules = Arc::new(TierRules::embedded());
        if settings.load_demo_library {
            match block_on(library::load_demo_library(&store, &rules)) {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    sources = n,
                    "loaded the demonstration library into the empty evidence library"
                ),
                Err(library::StoreIngestError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    return Err(DaemonError::Refused(format!(
                        "the bundled demo library is invalid: {e}"
                    )))
                }
            }
        }
        // A library from before passages existed is split now, before anything retrieves.
        match block_on(library::backfill_passages(&store)) {
            Ok(0) => {}
            Ok(n) => tracing::info!(sources = n, "split the existing library into passages"),
            Err(library::StoreIngestError::Store(e)) => return Err(e.into()),
            Err(e) => {
                return Err(DaemonError::Refused(format!(
                    "cannot split the library: {e}"
                )))
            }
        }
        // A library indexed by another analysis (or none) is re-indexed now, before anything
        // retrieves: retrieval and the index must analyse words the same way.
        prepare_library(
            library::reindex(&store),
            "re-indexed the library with this build's analysis",
            "cannot re-index the library",
        )?;
        // Passage features computed by another lexicon or analysis (or none: a library from
        // before they existed) are computed now; retrieval would otherwise analyse every
        // passage it reads itself.
        prepare_library(
            library::refeature(&store),
            "computed the library's passage features",
            "cannot compute the library's passage features",
        )?;
        let loop_settings = Arc::new(std::sync::RwLock::new(settings.loop_settings()));
        let llm_slots = model_client::slots(&settings);
        let metrics = Arc::new(Metrics::new(store.metrics()).with_llm_slots(llm_slots.clone()));
        let runner: Arc<dyn JobRunner> = match self.runner {
            Some(r) => r,
            None => match settings.job_runner {
                RunnerKind::Pipeline => Arc::new(job::PipelineJob {
                    pipeline: Pipeline::new(
                        Arc::new(library::StoreLibrary(store.clone())),
                        Arc::clone(&rules),
                        settings.pipeline(),
                        model_client::build(&settings, &store, &key, Arc::clone(&llm_slots))?,
                        Arc::clone(&loop_settings),
                    ),
                    store: store.clone(),
                    metrics: Some(metrics.jobs.clone()),
                    requeue: settings.requeue_delay(),
                }),
                RunnerKind::Test => Arc::new(runner::TestRunner),
            },
        };
        Ok(Prepared {
            settings,
            loop_settings,
            key,
            rules,
            store,
            recovered,
            runner,
            metrics,
            config_path: self.config_path,
            _lock: lock,
        })
    }

    /// [`prepare`](Daemon::prepare), then [`Prepared::run`].
    pub fn run(
        self,
        listener: std::net::TcpListener,
        shutdown: impl Future<Output = ()> + 'static,
    ) -> Result<(), DaemonError> {
        self.prepare()?.run(listener, shutdown)
    }
}

/// A daemon whose start-up checks passed, holding its data directory, ready to serve.
pub struct Prepared {
    settings: Settings,
    /// The quality loop's settings, shared by the runner and the SIGHUP handler.
    loop_settings: HotLoopSettings,
    key: SecretKey,
    /// Evidence tier rules, for classifying ingested sources.
    rules: Arc<TierRules>,
    store: Store,
    /// Runs re-queued at start (a metric).
    recovered: usize,
    runner: Arc<dyn JobRunner>,
    /// Made before the runner, which counts into it.
    metrics: Arc<Metrics>,
    config_path: Option<PathBuf>,
    /// Held until the daemon stops.
    _lock: DataDirLock,
}

impl Prepared {
    /// Serves on `listener` until `shutdown` resolves, then drains: new work gets 503, running
    /// jobs get `shutdown_grace_s`, their leases are handed back, and the call returns.
    ///
    /// Blocks the calling thread (it runs its own actix system).
    pub fn run(
        self,
        listener: std::net::TcpListener,
        shutdown: impl Future<Output = ()> + 'static,
    ) -> Result<(), DaemonError> {
        let Prepared {
            settings,
            loop_settings,
            key,
            rules,
            store,
            recovered,
            runner,
            metrics,
            config_path,
            _lock,
        } = self;
        listener
            .set_nonblocking(true)
            .map_err(|cause| DaemonError::Listen {
                addr: format!("{:?}", listener.local_addr().ok()),
                cause,
            })?;
        let system = actix_rt::System::new();
        system.block_on(async move {
            let started = Instant::now();
            if recovered > 0 {
                metrics.queue.recoveries.inc_by(recovered as u64);
                tracing::info!(runs = recovered, "re-queued runs interrupted by the previous daemon");
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
            let services = http::Services {
                queue,
                supervisor: supervisor.clone(),
                store,
                metrics,
            };
            let state = Arc::new(AppState::new(services, settings, loop_settings, instance.clone(), key, rules));
            let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::task::spawn_local(http::serve(listener, Arc::clone(&state), async {
                let _ = http_stopped.await;
            }));
            reload::spawn_handler(Arc::clone(&state), config_path);
            // The first poll of `shutdown` installs the SIGTERM/SIGINT handlers (see
            // `cli::termination`). Until then a SIGTERM kills the process with the default
            // action, so it happens before the daemon says it is ready, not after.
            let mut shutdown = std::pin::pin!(shutdown);
            let stop_requested = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(shutdown.as_mut().poll(cx).is_ready())
            })
            .await;
            tracing::info!(
                addr = %addr, instance = %instance, startup_ms = started.elapsed().as_millis() as u64,
                "procedurewriter daemon ready"
            );
            service::ready(&format!("serving on {addr}"));

            if !stop_requested {
                shutdown.await;
            }
            tracing::info!(grace_s = grace.as_secs_f64(), "shutting down: refusing new work, draining running jobs");
            service::stopping();
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

/// Waits for a store call from outside the actor system (start-up, admin commands): the
/// store replies from its own threads, so no runtime is needed.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime needs no resources that can fail")
        .block_on(f)
}

/// Runs a daemon with `settings` on `listener` until `shutdown` resolves.
pub fn run(
    settings: Settings,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + 'static,
) -> Result<(), DaemonError> {
    Daemon::new(settings).run(listener, shutdown)
}

/// Refuses an existing, empty database file in a data directory that was used before (a key
/// file or a `runs/` directory): SQLite would take it for a new database and the daemon would
/// start with no runs, silently. A truncated or replaced file is a loss to report, not a fresh
/// start. An empty file in an unused directory (a first start interrupted) is initialised.
pub(crate) fn check_database_file(settings: &Settings) -> Result<(), DaemonError> {
    let db = settings.db_path();
    let empty = std::fs::metadata(&db).is_ok_and(|m| m.is_file() && m.len() == 0);
    if !empty {
        return Ok(());
    }
    let key_file = settings.key_file();
    let runs = settings.data_dir.join("runs");
    let evidence: Vec<String> = [&key_file, &runs]
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if evidence.is_empty() {
        return Ok(());
    }
    Err(DaemonError::Database(format!(
        "the database {db} is empty (0 bytes), but this data directory was used before ({}): \
         its runs are not in this file. Restore procedurewriter.db from a backup; to start \
         afresh instead, move the empty file aside (e.g. `mv {db} {db}.empty`) and start again",
        evidence.join(", "),
        db = db.display(),
    )))
}

/// Creates the data directory (mode 0700: it holds the database and, later, the key file), or
/// checks an existing one is a directory only its owner can read.
pub(crate) fn prepare_data_dir(settings: &Settings) -> Result<(), DaemonError> {
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
    check_data_dir(dir)
}

/// An existing data directory must be a directory only its owner can read (start-up and
/// `check-config` alike).
pub(crate) fn check_data_dir(dir: &std::path::Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    let refused = |cause| DaemonError::DataDir {
        path: dir.to_path_buf(),
        cause,
    };
    let meta = std::fs::metadata(dir).map_err(refused)?;
    if !meta.is_dir() {
        return Err(refused(std::io::Error::other(
            "it is not a directory; point data_dir at a directory",
        )));
    }
    // The database holds every run and the (encrypted) secrets: other users may not even list
    // it. A directory the daemon creates is 0700; one made by hand may not be.
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refused(std::io::Error::other(format!(
            "it is open to group or others (mode {mode:04o}); run `chmod 700 {}`",
            dir.display()
        ))));
    }
    Ok(())
}

/// Runs one start-up pass over the library (re-index, features), logging how many passages it
/// did and how long it took; a store error stops start-up as one, anything else as refused.
fn prepare_library(
    pass: impl std::future::Future<Output = Result<usize, library::StoreIngestError>>,
    done: &str,
    failed: &str,
) -> Result<(), DaemonError> {
    let t = std::time::Instant::now();
    match block_on(pass) {
        Ok(0) => Ok(()),
        Ok(n) => {
            tracing::info!(
                passages = n,
                elapsed_ms = t.elapsed().as_millis() as u64,
                "{done}"
            );
            Ok(())
        }
        Err(library::StoreIngestError::Store(e)) => Err(e.into()),
        Err(e) => Err(DaemonError::Refused(format!("{failed}: {e}"))),
    }
}
