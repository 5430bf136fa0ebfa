//! Start-up: configuration errors, the data-directory lock and the schema check fail fast
//! with a clear message and their own exit code.

use crate::support::*;

#[test]
fn a_second_daemon_on_the_same_data_directory_exits_with_a_clear_message() {
    let s = Scratch::new();
    let first = s.start(&[]);
    let (code, stderr) = s.start_failing(&[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("already running on data directory"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&first.pid().to_string()),
        "names the holder's pid: {stderr}"
    );
    assert_eq!(
        first.http().get("/health").status,
        200,
        "the first keeps serving"
    );
}

#[test]
fn an_invalid_setting_stops_start_up_naming_the_key() {
    let s = Scratch::new();
    for (key, value, needle) in [
        ("PROCEDUREWRITER_WORKERS", "0", "workers"),
        ("PROCEDUREWRITER_STALE_TIMEOUT_S", "soon", "stale_timeout_s"),
        (
            "PROCEDUREWRITER_SQLITE_SYNCHRONOUS",
            "OFF",
            "sqlite_synchronous",
        ),
        ("PROCEDUREWRITER_NO_SUCH_KEY", "1", "no_such_key"),
    ] {
        let (code, stderr) = s.start_failing(&[(key, value)]);
        assert_eq!(code, 2, "{key}={value}: {stderr}");
        assert!(stderr.contains(needle), "{key}={value}: {stderr}");
    }
    assert!(
        !s.data_dir().exists(),
        "nothing was created before the settings were valid"
    );
}

#[test]
fn a_config_file_is_layered_over_the_defaults() {
    let s = Scratch::new();
    let path = write_config(s.dir.path(), "workers = 3\n");
    let mut cmd = s.command(&[]);
    cmd.arg("--config").arg(&path);
    let d = Daemon::spawn(cmd);
    assert_eq!(d.http().get("/health").body["workers"], 3);
}

#[test]
fn a_database_from_a_newer_binary_is_refused() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.data_dir()).unwrap();
    {
        let db = rusqlite::Connection::open(s.db_path()).unwrap();
        db.pragma_update(None, "user_version", 99).unwrap();
    }
    let (code, stderr) = s.start_failing(&[]);
    assert_eq!(code, 6, "{stderr}");
    assert!(stderr.contains("newer procedurewriter"), "{stderr}");
}
