//! The secret key's life on disk: where it comes from, the key file and its permissions,
//! creating it (`init-secret`), rotating it (`rotate-secret`) and finishing a rotation a crash
//! interrupted.
//!
//! Rotation is crash-safe by ordering three durable steps, each atomic on its own:
//! 1. the new key goes to a side file `<key file>.new` (written to a temp file, fsync'd,
//!    renamed into place);
//! 2. one database transaction re-encrypts every secret and records the new key's id;
//! 3. the side file is renamed over the key file.
//!
//! At any crash point the database's recorded key id says which key is authoritative: if it is
//! the side file's, the next start completes step 3; if not, step 2 never committed and the side
//! file is removed. No crash point leaves a secret that neither key on disk can open.

use procedurewriter_actors::crypto::{KeyError, SecretKey};
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The API keys the daemon knows (stored secrets, `/api/keys/{name}`), each with the
/// environment variable used when none is stored.
pub const API_KEYS: &[(&str, &str)] = &[
    ("openai_api_key", "OPENAI_API_KEY"),
    ("anthropic_api_key", "ANTHROPIC_API_KEY"),
    ("ncbi_api_key", "NCBI_API_KEY"),
];

/// The environment variable that carries the key (base64 of 32 bytes) instead of a file.
pub const KEY_ENV: &str = "PROCEDUREWRITER_SECRET_KEY";

/// The test-only crash switch: the process aborts at the named step (see [`failpoint`]).
pub const FAILPOINT_ENV: &str = "PROCEDUREWRITER_TEST_FAILPOINT";

/// Where the key in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File(PathBuf),
}

/// Why no usable key could be loaded. Each has its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    #[error(
        "no secret key is configured: set {KEY_ENV} (base64 of 32 bytes), or create the key file \
         {} with `procedurewriter init-secret`", path.display()
    )]
    Missing { path: PathBuf },
    #[error("the secret key in {origin} is malformed: {cause}")]
    Malformed { origin: String, cause: KeyError },
    #[error(
        "the key file {} is readable by group or others (mode {mode:04o}); run `chmod 600 {}`",
        path.display(), path.display()
    )]
    LoosePermissions { path: PathBuf, mode: u32 },
    #[error(
        "the key file {} is not a regular file (it is a {kind}); point secret_key_file at the \
         key file, or move this aside and create one with `procedurewriter init-secret`",
        path.display()
    )]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("cannot read the key file {}: {cause}", path.display())]
    Unreadable {
        path: PathBuf,
        cause: std::io::Error,
    },
}

impl KeyLoadError {
    pub fn exit_code(&self) -> i32 {
        match self {
            KeyLoadError::Missing { .. } => 10,
            KeyLoadError::Malformed { .. } => 11,
            KeyLoadError::LoosePermissions { .. } => 12,
            KeyLoadError::NotAFile { .. } | KeyLoadError::Unreadable { .. } => 14,
        }
    }
}

/// Loads the key: the environment variable if set, else the key file.
pub fn load_key(key_file: &Path) -> Result<(SecretKey, KeySource), KeyLoadError> {
    if let Ok(text) = std::env::var(KEY_ENV) {
        let text = Zeroizing::new(text);
        if !text.trim().is_empty() {
            let key = SecretKey::from_base64(&text).map_err(|cause| KeyLoadError::Malformed {
                origin: KEY_ENV.to_string(),
                cause,
            })?;
            return Ok((key, KeySource::Environment));
        }
    }
    let key = read_key_file(key_file)?;
    Ok((key, KeySource::File(key_file.to_path_buf())))
}

/// Reads a key file, refusing one that group or others can read (as ssh refuses loose
/// private keys).
pub fn read_key_file(path: &Path) -> Result<SecretKey, KeyLoadError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyLoadError::Missing {
                path: path.to_path_buf(),
            })
        }
        Err(cause) => {
            return Err(KeyLoadError::Unreadable {
                path: path.to_path_buf(),
                cause,
            })
        }
    };
    // The type first: opening a FIFO blocks until someone writes to it (start-up would hang
    // without a word), and a directory's mode says nothing about a key.
    check_regular(path, &meta)?;
    check_mode(path, &meta)?;
    let unreadable = |cause| KeyLoadError::Unreadable {
        path: path.to_path_buf(),
        cause,
    };
    let mut file = fs::File::open(path).map_err(unreadable)?;
    // What was opened is what gets read: checked again in case the path changed meanwhile.
    let opened = file.metadata().map_err(unreadable)?;
    check_regular(path, &opened)?;
    check_mode(path, &opened)?;
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text).map_err(unreadable)?;
    SecretKey::from_base64(&text).map_err(|cause| KeyLoadError::Malformed {
        origin: path.display().to_string(),
        cause,
    })
}

fn check_regular(path: &Path, meta: &fs::Metadata) -> Result<(), KeyLoadError> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "named pipe (FIFO)"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() || t.is_block_device() {
        "device"
    } else {
        "special file"
    };
    Err(KeyLoadError::NotAFile {
        path: path.to_path_buf(),
        kind,
    })
}

fn check_mode(path: &Path, meta: &fs::Metadata) -> Result<(), KeyLoadError> {
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyLoadError::LoosePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// The temp file [`write_key_file`] writes `path` through: `.<name>.tmp-<pid>` beside it.
fn temp_file(path: &Path, pid: u32) -> PathBuf {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(format!(
        ".{}.tmp-{pid}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key")
    ))
}

/// Removes the temp files a killed key write (`init-secret`, `rotate-secret`) left beside the
/// key file and its side file: those of processes that are gone. Called with the data-directory
/// lock held, so no daemon or rotation of this data directory is writing one; the pid check
/// spares a write by a process on another data directory sharing the key file's directory.
/// Returns the files removed.
pub fn remove_stale_temp_files(key_file: &Path) -> Vec<PathBuf> {
    let dir = key_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let names: Vec<String> = [key_file.to_path_buf(), side_file(key_file)]
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(|n| format!(".{n}.tmp-")))
        .collect();
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = names.iter().find_map(|p| name.strip_prefix(p.as_str())) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let alive = pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists();
        if !alive && fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// Reads a new key for `rotate-secret --new-key-file`: a file, or standard input for `-`.
pub fn read_new_key(source: &Path) -> Result<SecretKey, KeyLoadError> {
    if source == Path::new("-") {
        let mut text = Zeroizing::new(String::new());
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|cause| KeyLoadError::Unreadable {
                path: source.to_path_buf(),
                cause,
            })?;
        return SecretKey::from_base64(&text).map_err(|cause| KeyLoadError::Malformed {
            origin: "standard input".into(),
            cause,
        });
    }
    read_key_file(source)
}

/// The side file a rotation writes the new key to before committing it.
pub fn side_file(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// Writes `key` to `path` atomically with mode 0600, creating the directory (0700) if
/// needed. With `replace` false it refuses to overwrite an existing file, atomically.
pub fn write_key_file(path: &Path, key: &SecretKey, replace: bool) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = temp_file(path, std::process::id());
    let _ = fs::remove_file(&tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(key.to_base64().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    let placed = if replace {
        fs::rename(&tmp, path)
    } else {
        // link(2) fails if the target exists: a no-clobber atomic create.
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        linked
    };
    if placed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    placed?;
    fs::File::open(dir)?.sync_all()
}

/// What a start found of an interrupted rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// No rotation was in progress.
    Nothing,
    /// The database had committed the new key: the side file now replaces the key file.
    Completed,
    /// The database still uses the old key: the side file was removed.
    RolledBack,
}

/// Completes or rolls back a rotation interrupted by a crash, given the key id the database
/// records.
pub fn finish_rotation(key_file: &Path, recorded: Option<&str>) -> std::io::Result<Recovery> {
    let side = side_file(key_file);
    if !side.exists() {
        return Ok(Recovery::Nothing);
    }
    let side_id = read_key_file(&side).ok().map(|k| k.id());
    let dir = key_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let outcome = if side_id.is_some() && side_id.as_deref() == recorded {
        fs::rename(&side, key_file)?;
        Recovery::Completed
    } else {
        fs::remove_file(&side)?;
        Recovery::RolledBack
    };
    fs::File::open(dir)?.sync_all()?;
    Ok(outcome)
}

/// Test-only crash injection: if [`FAILPOINT_ENV`] names this step, abort the process as a
/// crash would (no destructors, no cleanup). Unset, it does nothing.
pub fn failpoint(step: &str) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == step) {
        eprintln!("procedurewriter: failpoint {step}: aborting");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_created_0600_and_never_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("secret.key");
        let key = SecretKey::generate();
        write_key_file(&path, &key, false).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert_eq!(read_key_file(&path).unwrap().id(), key.id());
        let other = SecretKey::generate();
        assert!(write_key_file(&path, &other, false).is_err());
        assert_eq!(
            read_key_file(&path).unwrap().id(),
            key.id(),
            "the first key stays"
        );
        write_key_file(&path, &other, true).unwrap();
        assert_eq!(read_key_file(&path).unwrap().id(), other.id());
    }

    #[test]
    fn an_interrupted_rotation_completes_or_rolls_back_by_the_recorded_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let (old, new) = (SecretKey::generate(), SecretKey::generate());
        write_key_file(&path, &old, false).unwrap();
        write_key_file(&side_file(&path), &new, true).unwrap();
        assert_eq!(
            finish_rotation(&path, Some(&old.id())).unwrap(),
            Recovery::RolledBack
        );
        assert_eq!(read_key_file(&path).unwrap().id(), old.id());
        write_key_file(&side_file(&path), &new, true).unwrap();
        assert_eq!(
            finish_rotation(&path, Some(&new.id())).unwrap(),
            Recovery::Completed
        );
        assert_eq!(read_key_file(&path).unwrap().id(), new.id());
        assert!(!side_file(&path).exists());
        assert_eq!(
            finish_rotation(&path, Some(&new.id())).unwrap(),
            Recovery::Nothing
        );
    }
}
