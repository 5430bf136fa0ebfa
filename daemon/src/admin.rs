//! `procedurewriter init-secret` and `procedurewriter rotate-secret`: key administration that
//! must not run beside a daemon (both take the data-directory lock); and `procedurewriter
//! check-config`, which may (it only reads).

use crate::keys::{self, KeySource};
use crate::lock::{DataDirLock, LockError};
use crate::settings::{Settings, SqliteSynchronous};
use crate::{block_on, prepare_data_dir, DaemonError};
use procedurewriter_actors::crypto::SecretKey;
use procedurewriter_actors::{Store, Synchronous};
use std::path::Path;

/// Takes the lock (refusing while a daemon runs) and opens the database.
fn open_locked(settings: &Settings, what: &str) -> Result<(DataDirLock, Store), DaemonError> {
    prepare_data_dir(settings)?;
    let lock = DataDirLock::acquire(&settings.data_dir).map_err(|e| match e {
        LockError::Held { dir, pid } => DaemonError::Refused(format!(
            "a procedurewriter daemon (pid {pid}) is running on {}; stop it before {what}",
            dir.display()
        )),
        other => DaemonError::Locked(other),
    })?;
    crate::check_database_file(settings)?;
    // With the lock held no other rotation runs: what a killed one left behind can go.
    for path in keys::remove_stale_temp_files(&settings.key_file()) {
        tracing::warn!(path = %path.display(), "removed a temp file a killed key write left behind");
    }
    let sync = match settings.sqlite_synchronous {
        SqliteSynchronous::Normal => Synchronous::Normal,
        SqliteSynchronous::Full => Synchronous::Full,
    };
    let store = Store::open(&settings.db_path(), sync)?;
    Ok((lock, store))
}

/// Creates the key file with a new key from the OS random source. Refuses to overwrite one;
/// with `force`, replaces it only while no secret is encrypted under it.
pub fn init_secret(settings: &Settings, force: bool) -> Result<String, DaemonError> {
    let path = settings.key_file();
    let mut notes = Vec::new();
    if std::env::var(keys::KEY_ENV).is_ok_and(|v| !v.trim().is_empty()) {
        notes.push(format!(
            "note: {} is set and takes precedence over the key file",
            keys::KEY_ENV
        ));
    }
    let key = SecretKey::generate();
    if path.exists() {
        if !force {
            return Err(DaemonError::Refused(format!(
                "the key file {} already exists; refusing to overwrite it (it decrypts the stored \
                 secrets). To change the key use `procedurewriter rotate-secret`",
                path.display()
            )));
        }
        let (_lock, store) = open_locked(settings, "replacing the key")?;
        let stored = block_on(store.secret_count())?;
        if stored > 0 {
            return Err(DaemonError::Refused(format!(
                "refusing --force: {stored} secrets are encrypted under the existing key and would \
                 be lost; use `procedurewriter rotate-secret` to change the key"
            )));
        }
        block_on(store.reset_key(key.id()))?;
        keys::write_key_file(&path, &key, true).map_err(|cause| DaemonError::DataDir {
            path: path.clone(),
            cause,
        })?;
    } else {
        keys::write_key_file(&path, &key, false).map_err(|cause| DaemonError::DataDir {
            path: path.clone(),
            cause,
        })?;
    }
    notes.push(format!(
        "created secret key {} at {} (mode 0600). Back it up somewhere safe: without it the \
         stored API keys cannot be decrypted.",
        key.id(),
        absolute(&path).display()
    ));
    if path.is_relative() {
        // The first-run trap: a relative data_dir resolves against this shell's directory, a
        // service's against its WorkingDirectory.
        notes.push(format!(
            "note: the key file path {:?} is relative (data_dir {:?}): a daemon started in another \
             working directory will not find it. Set an absolute data_dir in the configuration \
             file (or PROCEDUREWRITER_DATA_DIR) and pass the same --config here",
            path.display().to_string(),
            settings.data_dir.display().to_string()
        ));
    }
    Ok(notes.join("\n"))
}

/// Re-encrypts every stored secret under a new key (see `keys.rs` for the crash-safety
/// argument). With the key in the environment, the new key comes from `new_key` (a file, or
/// `-` for standard input) and the operator updates the environment afterwards.
pub fn rotate_secret(settings: &Settings, new_key: Option<&Path>) -> Result<String, DaemonError> {
    let key_file = settings.key_file();
    let (_lock, store) = open_locked(settings, "rotating the key")?;
    let recorded = block_on(store.recorded_key_id())?;
    let recovery =
        keys::finish_rotation(&key_file, recorded.as_deref()).map_err(DaemonError::Rotation)?;
    let (old, source) = keys::load_key(&key_file)?;
    block_on(store.check_key(old.id()))?;
    let new = match (&source, new_key) {
        (_, Some(p)) => keys::read_new_key(p)?,
        (KeySource::File(_), None) => SecretKey::generate(),
        (KeySource::Environment, None) => {
            return Err(DaemonError::Refused(format!(
                "the key comes from {}: pass the new key with --new-key-file PATH (or - to read \
                 it from standard input)",
                keys::KEY_ENV
            )))
        }
    };
    if new.id() == old.id() {
        return Err(DaemonError::Refused(
            "the new key is the current key".into(),
        ));
    }
    let mut out = Vec::new();
    if recovery != keys::Recovery::Nothing {
        out.push(format!(
            "finished an interrupted rotation first: {recovery:?}"
        ));
    }
    match source {
        KeySource::File(path) => {
            let side = keys::side_file(&path);
            keys::write_key_file(&side, &new, true).map_err(|cause| DaemonError::DataDir {
                path: side.clone(),
                cause,
            })?;
            keys::failpoint("rotate-after-side-file");
            let n = block_on(store.rotate_secrets(old, new.clone()))?;
            keys::failpoint("rotate-after-database");
            keys::finish_rotation(&path, Some(&new.id())).map_err(DaemonError::Rotation)?;
            keys::failpoint("rotate-after-rename");
            out.push(format!(
                "re-encrypted {n} secrets under the new key {}; {} now holds it. Back up the new \
                 key file: the old key no longer opens anything.",
                new.id(),
                path.display()
            ));
        }
        KeySource::Environment => {
            let n = block_on(store.rotate_secrets(old, new.clone()))?;
            out.push(format!(
                "re-encrypted {n} secrets under the new key {}. Now set {} to the new key and \
                 restart the daemon: it refuses the old key from here on.",
                new.id(),
                keys::KEY_ENV
            ));
        }
    }
    Ok(out.join("\n"))
}

/// `procedurewriter check-config` (as `nginx -t`): loads the configuration as the daemon
/// would, then checks what start-up would refuse without touching anything: the price table,
/// the data directory (if it exists) and the secret key. Takes no lock and opens no database,
/// so it runs beside a live daemon (the unit's `ExecReload=` runs it before the SIGHUP).
pub fn check_config(settings: &Settings, config: Option<&Path>) -> Result<String, DaemonError> {
    settings.prices()?;
    let dir = &settings.data_dir;
    let dir_note = if dir.exists() {
        crate::check_data_dir(dir)?;
        "exists".to_string()
    } else {
        "does not exist yet; the daemon creates it (mode 0700)".to_string()
    };
    let (key, source) = keys::load_key(&settings.key_file())?;
    let key_note = match source {
        KeySource::Environment => format!("{} (from {})", key.id(), keys::KEY_ENV),
        KeySource::File(path) => format!("{} (from {})", key.id(), absolute(&path).display()),
    };
    let file = match config {
        Some(p) => absolute(p).display().to_string(),
        None => "none (embedded defaults and environment)".to_string(),
    };
    let mut lines = vec![
        format!("configuration ok: {file}"),
        format!("  data_dir   {} ({dir_note})", absolute(dir).display()),
        format!("  secret key {key_note}"),
        format!("  listen     {}", settings.listen),
        format!(
            "  model      {} {}",
            serde_json::to_value(settings.llm_provider)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            settings.llm_model
        ),
    ];
    if dir.is_relative() {
        lines.push(format!(
            "  note: data_dir {:?} is relative: it is resolved against the working directory \
             (here {}); a service resolves it against its WorkingDirectory",
            dir.display().to_string(),
            absolute(dir).display()
        ));
    }
    Ok(lines.join("\n"))
}

/// `path` made absolute against the working directory, for messages.
pub fn absolute(path: &Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
