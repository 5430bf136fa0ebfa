//! The store: the only code that knows SQL, and the only owner of the SQLite connections.
//!
//! One writer thread owns the read-write connection. Callers hand it closures over a
//! [`Tx`]; it drains whatever has queued up (up to [`MAX_BATCH`]), runs each closure inside its
//! own savepoint of a single `BEGIN IMMEDIATE` transaction, commits once and only then replies
//! to every caller and publishes their events. This is group commit: under load many
//! transitions share one fsync, and a caller never hears "done" for something that is not
//! durable. A closure that fails rolls back only its savepoint.
//!
//! A small pool of reader threads, each with its own read-only connection, serves queries; WAL
//! lets them read while the writer commits. Nothing here ever runs on an async thread: the
//! async side only awaits oneshot replies.

mod costs;
mod library;
mod reloads;
mod runs;
mod secrets;
mod sqlite_error;

pub use costs::{CallOutcome, CostQuery, CostReport, CostRow, NewLlmCall, StoredCall};
pub use library::{
    AuditEntry, Citation, MatchedPassage, NewPassage, NewSource, PassageLight, PassageMatches,
    Removal, Source, SourceHit, SourcePage, StoredPassage,
};
pub use reloads::ReloadRecord;
pub use runs::{AckCheck, Claim, ClaimedRun, Fenced};
pub use secrets::{KeyCheck, SecretMeta, StoredSecret};

use crate::error::{Error, Result};
use crate::metrics::StoreMetrics;
use crate::model::Event;
use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{Migrations, M};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

/// Most transitions committed in one transaction. Large enough to amortise an fsync across a
/// busy queue, small enough that one batch never holds the write lock for long.
pub const MAX_BATCH: usize = 512;

/// How many reader threads serve queries.
const READERS: usize = 2;

/// How long SQLite waits on a lock held by another process (the CLI's read-only tools, a
/// backup) before reporting busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// The migrations, in order. Forward-only; the schema version is SQLite's `user_version`.
static MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("../../../migrations/0001_queue.sql")),
    M::up(include_str!("../../../migrations/0002_secrets.sql")),
    M::up(include_str!("../../../migrations/0003_library.sql")),
    M::up(include_str!("../../../migrations/0004_llm_calls.sql")),
    M::up(include_str!("../../../migrations/0005_passages.sql")),
    M::up(include_str!("../../../migrations/0006_analysed_index.sql")),
    M::up(include_str!("../../../migrations/0007_requeue_delay.sql")),
    M::up(include_str!("../../../migrations/0008_source_audit.sql")),
    M::up(include_str!("../../../migrations/0009_source_sizes.sql")),
    M::up(include_str!(
        "../../../migrations/0010_passage_features.sql"
    )),
];

/// SQLite's `synchronous` setting for the writer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// WAL + NORMAL: a committed transaction survives a process crash; the last few may be
    /// lost on power loss or an OS crash.
    Normal,
    /// WAL + FULL: every commit is fsync'd before it is acknowledged; survives power loss.
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// One unit of work for the writer: runs against the open transaction and returns what to do
/// once the commit outcome is known.
type WriteJob = Box<dyn FnOnce(&Connection) -> Staged + Send>;
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// A write that has run inside the batch and waits for the commit.
struct Staged {
    events: Vec<Event>,
    reply: Box<dyn FnOnce(Result<()>) + Send>,
}

/// The transaction handle given to write closures: the connection plus the events the write
/// appends, published to subscribers only after the commit.
pub struct Tx<'c> {
    conn: &'c Connection,
    events: Vec<Event>,
}

/// A cheap, cloneable handle to the store's threads.
#[derive(Clone)]
pub struct Store {
    /// Dropped with the last handle: tells the checkpointer to stop.
    _alive: Arc<()>,
    /// Commits and the writes they carried: writes / commits is the group-commit factor.
    metrics: StoreMetrics,
    writer: mpsc::Sender<WriteJob>,
    readers: mpsc::Sender<ReadJob>,
    events: broadcast::Sender<Arc<Event>>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, applies pending migrations in one
    /// transaction, and starts the writer and reader threads.
    ///
    /// Refuses a database whose schema is newer than this binary.
    pub fn open(path: &Path, synchronous: Synchronous) -> Result<Store> {
        let mut conn = Connection::open(path)
            .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        // Pragmas go outside the migration transaction: journal_mode cannot change inside one.
        // WAL lets readers run beside the writer; foreign keys keep events tied to runs.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", synchronous.pragma())?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Savepoint sub-journals in memory: every write runs in its own savepoint, and a
        // temp file per batch would cost a pwrite per touched page.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Checkpoints copy the WAL into the database file and fsync it: milliseconds. Done
        // inline they land on whichever commit crosses the threshold and show up as latency
        // spikes, so the writer never checkpoints; a checkpointer thread does (see below).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Every distinct transition is a cached statement; the default 16 thrashes.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrate(&mut conn)?;

        let (events, _) = broadcast::channel(4096);
        let (writer, write_rx) = mpsc::channel::<WriteJob>();
        let publish = events.clone();
        let metrics = StoreMetrics::default();
        let counters = metrics.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, write_rx, publish, counters))
            .map_err(|e| Error::Internal(format!("cannot start the store writer: {e}")))?;

        let checkpointer = Connection::open(path)
            .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        checkpointer.busy_timeout(BUSY_TIMEOUT)?;
        let alive = Arc::new(());
        let watch = Arc::downgrade(&alive);
        std::thread::Builder::new()
            .name("store-checkpointer".into())
            .spawn(move || checkpoint_loop(checkpointer, watch))
            .map_err(|e| Error::Internal(format!("cannot start the checkpointer: {e}")))?;

        let (readers, read_rx) = mpsc::channel::<ReadJob>();
        let read_rx = Arc::new(Mutex::new(read_rx));
        for i in 0..READERS {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", path.display())))?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
            let rx = Arc::clone(&read_rx);
            std::thread::Builder::new()
                .name(format!("store-reader-{i}"))
                .spawn(move || reader_loop(conn, rx))
                .map_err(|e| Error::Internal(format!("cannot start a store reader: {e}")))?;
        }
        Ok(Store {
            _alive: alive,
            metrics,
            writer,
            readers,
            events,
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// The store's commit counters, for `/metrics` and the benchmarks.
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Subscribes to events as they are committed. Subscribe before reading history so that
    /// nothing falls between the two.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Runs `f` in the writer's current batch transaction and resolves after the commit.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let metrics = self.metrics.clone();
        let job: WriteJob = Box::new(move |conn: &Connection| {
            if let Err(e) = exec_cached(conn, "SAVEPOINT w") {
                let err = Error::from(e);
                return Staged {
                    events: Vec::new(),
                    reply: Box::new(move |_| {
                        let _ = tx.send(Err(err));
                    }),
                };
            }
            let mut w = Tx {
                conn,
                events: Vec::new(),
            };
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut w)))
                .unwrap_or_else(|_| Err(Error::Internal("a store write panicked".into())));
            match out {
                Ok(value) => {
                    // RELEASE only fails if the savepoint is gone; the commit reports that.
                    let _ = exec_cached(conn, "RELEASE w");
                    Staged {
                        events: w.events,
                        reply: Box::new(move |committed| {
                            let _ = tx.send(committed.map(|()| value));
                        }),
                    }
                }
                Err(err) => {
                    if let Error::Unavailable(cause) = &err {
                        metrics.write_failed(cause, 1);
                    }
                    let _ = exec_cached(conn, "ROLLBACK TO w");
                    let _ = exec_cached(conn, "RELEASE w");
                    Staged {
                        events: Vec::new(),
                        reply: Box::new(move |_| {
                            let _ = tx.send(Err(err));
                        }),
                    }
                }
            }
        });
        self.writer
            .send(job)
            .map_err(|_| Error::Unavailable("the store writer has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Unavailable("the store writer has stopped".into()))?
    }

    /// Limits how large the database may grow (`None`: no limit but the disk's). A write that
    /// would grow it past the limit fails like one on a full disk: `Unavailable`, nothing of
    /// it saved. A limit below the current size holds the database at that size. Applies to
    /// the next write; returns the limit in force, in bytes.
    pub async fn set_max_size(&self, bytes: Option<u64>) -> Result<u64> {
        let (tx, rx) = oneshot::channel::<Result<u64>>();
        // Runs on the writer thread, between the batch's writes: a connection setting, not
        // part of any transaction, so it holds whatever becomes of the batch.
        let job: WriteJob = Box::new(move |conn: &Connection| {
            let _ = tx.send(apply_max_size(conn, bytes));
            Staged {
                events: Vec::new(),
                reply: Box::new(|_| {}),
            }
        });
        self.writer
            .send(job)
            .map_err(|_| Error::Unavailable("the store writer has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Unavailable("the store writer has stopped".into()))?
    }

    /// Runs `f` on a reader thread against a read-only connection, in one read transaction:
    /// everything `f` reads is one snapshot of the database, so a write committed while it
    /// runs (say, the passages' features and then the fingerprint that vouches for them) is
    /// seen whole or not at all.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: ReadJob = Box::new(move |conn: &Connection| {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let snapshot = conn.unchecked_transaction()?;
                let out = f(conn);
                // Nothing was written: ending the transaction only lets the WAL move on.
                drop(snapshot);
                out
            }))
            .unwrap_or_else(|_| Err(Error::Internal("a store read panicked".into())));
            let _ = tx.send(out);
        });
        self.readers
            .send(job)
            .map_err(|_| Error::Unavailable("the store readers have stopped".into()))?;
        rx.await
            .map_err(|_| Error::Unavailable("the store readers have stopped".into()))?
    }
}

impl Tx<'_> {
    /// The connection inside the current savepoint.
    pub(crate) fn conn(&self) -> &Connection {
        self.conn
    }
}

/// A non-negative count column (SQLite integers are i64).
pub(super) fn count(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    Ok(r.get::<_, i64>(idx)?.max(0) as u64)
}

/// Runs a parameterless statement through the statement cache (savepoints run once per
/// write: parsing them each time is measurable).
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Applies pending migrations in one transaction; refuses a database from a newer binary.
fn migrate(conn: &mut Connection) -> Result<()> {
    let migrations = Migrations::from_slice(MIGRATIONS);
    migrations.to_latest(conn).map_err(|e| match e {
        rusqlite_migration::Error::MigrationDefinition(
            rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
        ) => Error::Schema(format!(
            "the database was written by a newer procedurewriter (schema version above {}); \
             run that version or restore a backup",
            MIGRATIONS.len()
        )),
        rusqlite_migration::Error::RusqliteError { err, .. } => Error::from(err),
        other => Error::Schema(other.to_string()),
    })
}

/// The schema version this binary writes.
pub fn schema_version() -> usize {
    MIGRATIONS.len()
}

fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<WriteJob>,
    publish: broadcast::Sender<Arc<Event>>,
    metrics: StoreMetrics,
) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        drain(&rx, &mut batch);
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let msg = Error::from(e).to_string();
            tracing::error!(cause = %msg, "store: cannot begin a write transaction");
            metrics.write_failed(&msg, batch.len());
            for job in batch.drain(..) {
                // Run nothing: a job that cannot start replies with the failure at once.
                let staged = fail_unstarted(job, &conn);
                (staged.reply)(Err(Error::Unavailable(msg.clone())));
            }
            continue;
        }
        let mut staged: Vec<Staged> = Vec::with_capacity(batch.len());
        let mut lost = false;
        for job in batch.drain(..) {
            if lost {
                staged.push(fail_unstarted(job, &conn));
                continue;
            }
            staged.push(job(&conn));
            // SQLite may roll the whole transaction back on its own after SQLITE_FULL, an
            // I/O error or out-of-memory. Writes staged before that are gone, and a later
            // job's SAVEPOINT would open a fresh transaction whose COMMIT would succeed: the
            // whole batch fails instead, so nobody hears "done" for a lost write.
            lost = conn.is_autocommit();
        }
        let committed = if lost {
            Err(Error::Unavailable(
                "a write failed and SQLite rolled back its transaction (is the disk or the \
                 database size limit full?); nothing in it was saved"
                    .into(),
            ))
        } else {
            conn.execute_batch("COMMIT").map_err(|e| {
                let err = Error::from(e);
                let _ = conn.execute_batch("ROLLBACK");
                err
            })
        };
        match committed {
            Ok(()) => {
                metrics.commits.inc();
                metrics.writes.inc_by(staged.len() as u64);
                for s in staged {
                    for ev in s.events {
                        // No subscriber is not an error.
                        let _ = publish.send(Arc::new(ev));
                    }
                    (s.reply)(Ok(()));
                }
            }
            Err(err) => {
                let msg = match err {
                    Error::Unavailable(m) => m,
                    other => other.to_string(),
                };
                tracing::error!(cause = %msg, "store: commit failed, batch rolled back");
                metrics.write_failed(&msg, staged.len());
                for s in staged {
                    (s.reply)(Err(Error::Unavailable(msg.clone())));
                }
            }
        }
    }
    tracing::debug!("store writer stopped");
}

/// SQLite's own ceiling for `max_page_count`: what "no limit" sets back.
const NO_PAGE_LIMIT: u64 = 4_294_967_294;

fn apply_max_size(conn: &Connection, bytes: Option<u64>) -> Result<u64> {
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let page_size = page_size.max(1) as u64;
    let pages = bytes.map_or(NO_PAGE_LIMIT, |b| (b / page_size).clamp(1, NO_PAGE_LIMIT));
    // SQLite answers with the limit it kept (never below the current size).
    let kept: i64 = conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
        r.get(0)
    })?;
    Ok((kept.max(0) as u64).saturating_mul(page_size))
}

/// Moves whatever is queued into `batch`, up to [`MAX_BATCH`].
fn drain(rx: &mpsc::Receiver<WriteJob>, batch: &mut Vec<WriteJob>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Outside a transaction a write job's SAVEPOINT would start an implicit transaction of its
/// own; run it inside one we roll back so it replies without changing anything.
fn fail_unstarted(job: WriteJob, conn: &Connection) -> Staged {
    let _ = conn.execute_batch("SAVEPOINT unstarted");
    let staged = job(conn);
    let _ = conn.execute_batch("ROLLBACK TO unstarted; RELEASE unstarted");
    Staged {
        events: Vec::new(),
        reply: staged.reply,
    }
}

/// Each reader's page cache, in KiB (SQLite's default is 2 MiB). A retrieval at 200,000
/// passages touches some thousand pages of the index and of `passages_light`; with 2 MiB the
/// readers read most of them from the file again on every run once the library had been grown
/// through the store (the documents benchmark: 6.1 ms p50 / 9.5 ms p99 against 3.0 / 4.8 with
/// 16 MiB; a store opened afresh on the grown file was fast even with 2 MiB, which SQLite's
/// page pool shared between connections would explain). Pages are allocated as they are read,
/// so a small library costs what it uses.
const READER_CACHE_KIB: i64 = 16 * 1024;

/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// A log longer than this many frames (16 MiB of 4 KiB pages) is made to start over.
const RESTART_AFTER_FRAMES: i64 = 4096;

/// The size the write-ahead log file is cut back to when it starts over, in bytes.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// PASSIVE checkpoints never block the writer or readers; they copy what they can. Under
/// continuous writes that is never everything — the writer appends while they copy — and a
/// log that is never wholly copied never starts over: it grows without bound (SQLite's
/// "checkpoint starvation"; the load benchmark found 1.6 GB after a minute). So once the log
/// passes [`RESTART_AFTER_FRAMES`] a RESTART checkpoint holds new writes back (a few ms)
/// until every frame is copied, and the next commit starts the log from the beginning, cut
/// back to [`WAL_SIZE_LIMIT`]. The loop ends when the last handle to the store is dropped.
fn checkpoint_loop(conn: Connection, alive: std::sync::Weak<()>) {
    let checkpoint = |mode: &str| {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            r.get::<_, i64>(1)
        })
    };
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        if alive.upgrade().is_none() {
            return;
        }
        match checkpoint("PASSIVE") {
            Ok(frames) if frames > RESTART_AFTER_FRAMES => {
                if let Err(e) = checkpoint("RESTART") {
                    tracing::warn!(cause = %e, frames, "cannot restart the write-ahead log; will retry");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(cause = %e, "WAL checkpoint failed; will retry"),
        }
    }
}

fn reader_loop(conn: Connection, rx: Arc<Mutex<mpsc::Receiver<ReadJob>>>) {
    loop {
        let job = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        job(&conn);
    }
}

#[cfg(test)]
mod tests;
