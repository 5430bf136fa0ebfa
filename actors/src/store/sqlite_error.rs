//! What a SQLite error means to a caller: a full or read-only database, a busy or failing
//! disk (the database is unavailable, try later) or a bug. Here, inside the store, because only
//! the store knows SQLite.

use crate::error::Error;

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match &err {
            rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::DiskFull => {
                Error::Unavailable(format!(
                    "the database is full ({err}): free disk space or raise max_database_mb; \
                     reads still work and writes resume once there is room"
                ))
            }
            rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ReadOnly => {
                Error::Unavailable(format!(
                    "the database cannot be written ({err}): check the file's permissions and \
                     the filesystem; reads still work"
                ))
            }
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(
                    e.code,
                    ErrorCode::DatabaseBusy
                        | ErrorCode::DatabaseLocked
                        | ErrorCode::SystemIoFailure
                        | ErrorCode::CannotOpen
                        | ErrorCode::OutOfMemory
                ) =>
            {
                Error::Unavailable(err.to_string())
            }
            _ => Error::Internal(format!("sqlite: {err}")),
        }
    }
}
