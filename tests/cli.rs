//! The client subcommands and the demo, as a user runs them.

use crate::support::*;
use std::process::Command;

#[test]
fn write_follow_status_and_runs_work_against_a_running_daemon() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let out = Command::new(BIN)
        .args([
            "--url",
            &d.url,
            "write",
            "Anafylaksi behandling",
            "--follow",
            "--option",
            r#"test={"duration_ms":200}"#,
        ])
        .output()
        .unwrap();
    let stdout = assert_ok(&out);
    assert!(stdout.contains("completed"), "{stdout}");
    let id = d.http().get("/api/runs").body["runs"][0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();

    let out = Command::new(BIN)
        .args(["--url", &d.url, "status", &id])
        .output()
        .unwrap();
    assert!(out.status.success());
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["status"], "DONE");

    let out = Command::new(BIN)
        .args(["--url", &d.url, "runs", "--status", "DONE"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));

    let out = Command::new(BIN)
        .args(["--url", &d.url, "cancel", &id])
        .output()
        .unwrap();
    assert!(!out.status.success(), "cancelling a DONE run fails");
    assert!(String::from_utf8_lossy(&out.stderr).contains("409"));
}

#[test]
fn a_client_without_a_daemon_says_so() {
    let out = Command::new(BIN)
        .args(["--url", "http://127.0.0.1:1", "runs"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the daemon"));
}

#[test]
fn the_demo_runs_one_job_end_to_end_on_the_embedded_defaults() {
    let s = Scratch::new();
    let out = Command::new(BIN)
        .args(["demo", "--data-dir"])
        .arg(s.data_dir())
        .env_remove("PROCEDUREWRITER_DATA_DIR")
        .output()
        .unwrap();
    let stdout = assert_ok(&out);
    for needle in [
        ": DONE  score",
        "## Procedure (trin-for-trin)",
        "[S:SRC",
        "Demonstrationsmateriale",
        "artifacts: ",
        "completed",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
    assert!(s.db_path().exists());
}
