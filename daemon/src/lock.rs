//! The data-directory lock: one daemon per data directory. An exclusive advisory lock on
//! `<data_dir>/procedurewriter.lock`, held for the life of the process and released by the
//! kernel when it dies, however it dies — which is what makes start-up recovery safe: whoever
//! holds the lock knows every RUNNING lease belongs to a dead process.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another procedurewriter daemon is already running on data directory {dir} (pid {pid}); \
         stop it first or use a different data_dir"
    )]
    Held { dir: PathBuf, pid: String },
    #[error("cannot lock the data directory {dir}: {cause}")]
    Io { dir: PathBuf, cause: std::io::Error },
}

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock without waiting and records our pid in the lock file.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let io = |cause| LockError::Io {
            dir: dir.to_path_buf(),
            cause,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            // Private like everything in the data directory (the umask does it for the binary;
            // this holds for in-process daemons too).
            .mode(0o600)
            .open(dir.join("procedurewriter.lock"))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(DataDirLock { _file: file })
    }
}
