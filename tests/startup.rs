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

#[test]
fn sighup_rereads_the_config_keeps_serving_on_a_broken_file_and_says_so_in_health() {
    let t = std::time::Duration::from_secs(20);
    let s = Scratch::new();
    let path = write_config(s.dir.path(), "workers = 2\n");
    let mut cmd = s.command(&[]);
    cmd.arg("--config").arg(&path);
    let d = Daemon::spawn(cmd);
    let h = d.http();

    std::fs::write(&path, "workers = [").unwrap();
    d.signal(libc::SIGHUP);
    let err = wait_for("the reload error in /health", t, || {
        h.get("/health").body["last_reload_error"]
            .as_str()
            .map(str::to_string)
    });
    assert!(err.contains("invalid configuration"), "{err}");
    assert_eq!(
        h.get("/health").body["workers"],
        2,
        "the running settings stay"
    );
    let id = h.write("still working", serde_json::json!({}));
    h.wait_status(&id, "DONE", t);

    std::fs::write(&path, "workers = 3\n").unwrap();
    d.signal(libc::SIGHUP);
    wait_for("the reload error to clear", t, || {
        h.get("/health").body["last_reload_error"]
            .is_null()
            .then_some(())
    });
    wait_for("the restart-needed report", t, || {
        let log = d.log_text();
        (log.contains("need a restart") && log.contains("workers")).then_some(())
    });
}
