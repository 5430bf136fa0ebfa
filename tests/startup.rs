//! Start-up: configuration errors, the data-directory lock and the schema check fail fast
//! with a clear message and their own exit code.

use crate::support::*;
use std::time::Duration;

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
    // The data directory is private (the daemon refuses one others can read).
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(s.data_dir())
        .unwrap();
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

/// A key file that is not a regular file fails start-up at once with a message saying what it
/// is: a FIFO used to hang start-up forever (opening it waits for a writer), a directory was
/// reported as "readable by group or others".
#[test]
fn a_key_file_that_is_a_fifo_or_a_directory_fails_start_up_at_once_saying_so() {
    use std::os::unix::fs::DirBuilderExt;
    let limit = std::time::Duration::from_secs(20);
    let s = Scratch::new();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(s.data_dir())
        .unwrap();
    let fifo = std::ffi::CString::new(s.key_file().to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let (code, stderr) = fails_within(s.command_without_key(&[]), limit);
    assert_eq!(code, 14, "{stderr}");
    assert!(
        stderr.contains("not a regular file") && stderr.contains("FIFO"),
        "{stderr}"
    );
    let out = s.admin(&["rotate-secret"], &[]);
    assert_eq!(out.status.code(), Some(14), "rotate-secret: {out:?}");

    std::fs::remove_file(s.key_file()).unwrap();
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(s.key_file())
        .unwrap();
    let (code, stderr) = fails_within(s.command_without_key(&[]), limit);
    assert_eq!(code, 14, "{stderr}");
    assert!(
        stderr.contains("not a regular file") && stderr.contains("directory"),
        "{stderr}"
    );
    assert!(!stderr.contains("readable by group"), "{stderr}");
}

/// A `rotate-secret` or `init-secret` killed mid-write leaves `.secret.key[.new].tmp-<pid>`;
/// the next start (or rotation) removes those of dead processes, and only those.
#[test]
fn temp_key_files_a_killed_key_write_left_are_removed_at_the_next_start() {
    let s = Scratch::new();
    assert_ok(&s.admin(&["init-secret"], &[]));
    let dead = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    let data = s.data_dir();
    let stale = [
        data.join(format!(".secret.key.new.tmp-{dead}")),
        data.join(format!(".secret.key.tmp-{dead}")),
    ];
    // A live process's temp file (this test's) is not touched.
    let live = data.join(format!(".secret.key.new.tmp-{}", std::process::id()));
    for path in stale.iter().chain([&live]) {
        std::fs::write(path, "half a key").unwrap();
    }
    let d = Daemon::spawn(s.command_without_key(&[]));
    for path in &stale {
        assert!(!path.exists(), "{} is still there", path.display());
    }
    assert!(live.exists());
    assert!(
        d.log_text().contains("removed a temp file"),
        "{}",
        d.log_text()
    );
    drop(d);

    // rotate-secret cleans up the same way before it writes its own.
    std::fs::write(&stale[0], "half a key").unwrap();
    assert_ok(&s.admin(&["rotate-secret"], &[]));
    assert!(!stale[0].exists());
    assert!(live.exists());
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Everything the daemon creates in its data directory is private to its user (the database,
/// its WAL and shared-memory files and the lock file used to be 0644), and a data directory
/// others can read is refused at start, naming it and the `chmod` that fixes it.
#[test]
fn the_data_directory_and_every_file_in_it_are_private_and_a_loose_directory_is_refused() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let id = h.write("private", serde_json::json!({}));
    h.wait_status(&id, "DONE", std::time::Duration::from_secs(20));
    let data = s.data_dir();
    assert_eq!(mode(&data), 0o700);
    for name in [
        "procedurewriter.db",
        "procedurewriter.db-wal",
        "procedurewriter.db-shm",
        "procedurewriter.lock",
    ] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    drop(d);

    let loose = Scratch::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o755)
        .create(loose.data_dir())
        .unwrap();
    std::fs::set_permissions(
        loose.data_dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (code, stderr) = loose.start_failing(&[]);
    assert_eq!(code, 4, "{stderr}");
    let dir = loose.data_dir().display().to_string();
    assert!(stderr.contains(&format!("chmod 700 {dir}")), "{stderr}");
    assert!(stderr.contains("group or others"), "{stderr}");
    assert!(
        !loose.db_path().exists(),
        "nothing was created in the loose directory"
    );
    std::fs::set_permissions(
        loose.data_dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    assert_eq!(loose.start(&[]).http().get("/health").status, 200);
}

/// A 0-byte `procedurewriter.db` in a data directory that was used (a key file, or a `runs/`
/// directory) is a lost database, not a new one: start-up refuses it, says what happened and
/// what to do, and leaves the file as it was. In an unused directory it is initialised.
#[test]
fn an_empty_database_file_in_a_used_data_directory_is_refused_not_silently_replaced() {
    let s = Scratch::new();
    assert_ok(&s.admin(&["init-secret"], &[]));
    let private = |path: &std::path::Path| {
        std::fs::write(path, "").unwrap();
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    };
    private(&s.db_path());
    let (code, stderr) = Scratch::fails(s.command_without_key(&[]));
    assert_eq!(code, 6, "{stderr}");
    let db = s.db_path().display().to_string();
    assert!(stderr.contains(&db) && stderr.contains("empty"), "{stderr}");
    assert!(
        stderr.contains("secret.key"),
        "names the evidence: {stderr}"
    );
    assert!(
        stderr.contains("backup") && stderr.contains("mv "),
        "{stderr}"
    );
    assert_eq!(
        std::fs::metadata(s.db_path()).unwrap().len(),
        0,
        "left as it was"
    );
    // rotate-secret would record a key in the empty file: refused the same way.
    let out = s.admin(&["rotate-secret"], &[]);
    assert_eq!(out.status.code(), Some(6), "{out:?}");

    // A runs/ directory is evidence too (the key coming from the environment).
    let t = Scratch::new();
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(t.data_dir().join("runs"))
        .unwrap();
    std::fs::set_permissions(
        t.data_dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    private(&t.db_path());
    let (code, stderr) = t.start_failing(&[]);
    assert_eq!(code, 6, "{stderr}");
    assert!(stderr.contains("runs"), "{stderr}");

    // In a directory never used, an empty file is a new database.
    let u = Scratch::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(u.data_dir())
        .unwrap();
    private(&u.db_path());
    assert_eq!(u.start(&[]).http().get("/health").status, 200);
}

/// "Ready" means the daemon already handles SIGTERM: a service manager or script that stops
/// it the moment it says so gets a clean drain and exit 0, never a kill by the signal's default
/// action. The signal is sent from the thread reading the log, on the ready line itself (the
/// shared start-up helper polls, which would give the daemon time). Before the fix, about 7
/// starts in 100 stopped this way died of the signal.
#[test]
fn a_sigterm_the_moment_the_daemon_says_ready_drains_and_exits_cleanly() {
    use std::io::{BufRead, BufReader};
    let s = Scratch::new();
    for attempt in 0..40 {
        let mut child = s.command(&[]).spawn().expect("spawn the daemon");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let mut log = Vec::new();
        for line in lines.by_ref().map_while(Result::ok) {
            let ready = line.contains("daemon ready");
            log.push(line);
            if ready {
                // SAFETY: kill(2) on our own child's pid.
                assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
                break;
            }
        }
        // Keep reading, so the daemon's shutdown lines never meet a closed pipe.
        let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
        let status = wait_for("the daemon to exit", Duration::from_secs(20), || {
            child.try_wait().unwrap()
        });
        assert_eq!(
            status.code(),
            Some(0),
            "start {attempt}: {status}\n{}\n{}",
            log.join("\n"),
            rest.join().unwrap().join("\n")
        );
    }
}
