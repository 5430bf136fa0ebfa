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

/// Runs the CLI against `url` with `args`; (exit code, stdout, stderr).
fn cli(url: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("--url")
        .arg(url)
        .args(args)
        .env_remove("PROCEDUREWRITER_API_TOKEN")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn newest_run(d: &Daemon) -> String {
    d.http().get("/api/runs").body["runs"][0]["run_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn follow_exits_like_gh_run_watch_stops_at_a_gap_shows_it_and_ack_lets_the_run_go_on() {
    let s = Scratch::new();
    let d = s.start(&[]);
    // A gated run: write --follow stops at the gap instead of waiting forever, shows what is
    // missing and the command that acknowledges it, and exits 4.
    let (code, out, err) = cli(
        &d.url,
        &[
            "write",
            "Lumbalpunktur",
            "--follow",
            "--option",
            r#"test={"outcome":"needs_ack"}"#,
        ],
        &[],
    );
    assert_eq!(code, 4, "{out}{err}");
    assert!(out.contains("missing evidence: danish_guideline"), "{out}");
    assert!(out.contains("procedurewriter ack "), "{out}");
    assert!(
        !out.trim_start().starts_with('{'),
        "no JSON dump first: {out}"
    );
    let id = newest_run(&d);
    // follow says the same of the same run.
    let (code, out, _) = cli(&d.url, &["follow", &id], &[]);
    assert_eq!(code, 4, "{out}");

    let (code, out, err) = cli(
        &d.url,
        &[
            "ack",
            &id,
            "--by",
            "Dr. A, overlæge",
            "--note",
            "no Danish guideline exists",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("missing evidence: danish_guideline"), "{out}");
    assert!(out.contains("acknowledged danish_guideline"), "{out}");
    let (code, out, _) = cli(&d.url, &["follow", &id], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("run {id}: DONE")), "{out}");
    // Acknowledging a run that is not waiting is a usage error that says why.
    let (code, _, err) = cli(&d.url, &["ack", &id, "--by", "x", "--note", "y"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not NEEDS_ACK"), "{err}");

    // A failed run: write --follow and follow both exit 3, with the reason in the summary.
    let (code, out, _) = cli(
        &d.url,
        &[
            "write",
            "x",
            "--follow",
            "--option",
            r#"test={"outcome":"fail"}"#,
        ],
        &[],
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("why: test failure"), "{out}");
    let failed = newest_run(&d);
    let (code, out, _) = cli(&d.url, &["follow", &failed], &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains(&format!("run {failed}: FAILED")), "{out}");

    // Plain option values; the policy flag.
    let (code, out, err) = cli(
        &d.url,
        &[
            "write",
            "y",
            "--option",
            "missing_tier_policy=allow_with_ack",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        run["params"]["missing_tier_policy"], "allow_with_ack",
        "{run}"
    );
    let (code, out, err) = cli(
        &d.url,
        &["write", "y", "--missing-tier-policy", "STRICT"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["params"]["missing_tier_policy"], "STRICT", "{run}");

    // An API refusal reads as a sentence, not JSON.
    let (code, _, err) = cli(&d.url, &["cancel", &id], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("409 Conflict: "), "{err}");
    assert!(!err.contains("{\""), "{err}");
}

#[test]
fn a_401_tells_the_user_about_procedurewriter_api_token() {
    let s = Scratch::new();
    let token = "t0k3n-for-the-cli-test-0123456789abcdef";
    let d = s.start(&[("PROCEDUREWRITER_API_TOKEN", token)]);
    let (code, _, err) = cli(&d.url, &["runs"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("set PROCEDUREWRITER_API_TOKEN"), "{err}");
    let (code, _, err) = cli(
        &d.url,
        &["runs"],
        &[(
            "PROCEDUREWRITER_API_TOKEN",
            "wrong-wrong-wrong-wrong-wrong-wrong-1",
        )],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is set but the daemon refused it"), "{err}");
    assert!(
        !err.contains("wrong-wrong"),
        "the token is never echoed: {err}"
    );
    let (code, _, err) = cli(&d.url, &["runs"], &[("PROCEDUREWRITER_API_TOKEN", token)]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn the_cli_covers_downloads_sources_keys_health_and_costs() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_JOB_RUNNER", "pipeline")]);
    let (code, out, err) = cli(&d.url, &["write", "Anafylaksi behandling", "--follow"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let id = newest_run(&d);
    // The same summary as the demo prints.
    assert!(out.contains(&format!("run {id}: DONE  score ")), "{out}");
    assert!(
        out.contains(&format!("download: procedurewriter download {id}")),
        "{out}"
    );

    let dir = s.dir.path().join("downloads");
    std::fs::create_dir(&dir).unwrap();
    let (code, out, err) = cli(
        &d.url,
        &["download", &id, "--dir", dir.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    for name in [
        format!("procedure-{id}.md"),
        format!("procedure-{id}.docx"),
        format!("evidence_report-{id}.json"),
        format!("manifest-{id}.json"),
    ] {
        let len = std::fs::metadata(dir.join(&name))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{out}"))
            .len();
        assert!(len > 0, "{name}");
    }
    let docx = d.http().get(&format!("/api/runs/{id}/docx"));
    assert_eq!(
        docx.header("content-disposition"),
        Some(format!("attachment; filename=\"procedure-{id}.docx\"").as_str())
    );

    let (code, out, _) = cli(&d.url, &["sources", "list", "--limit", "3"], &[]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 3, "{out}");
    let (code, out, _) = cli(&d.url, &["sources", "search", "adrenalin"], &[]);
    assert_eq!(code, 0);
    let first = out.split_whitespace().next().unwrap().to_string();
    assert!(first.starts_with("SRC"), "{out}");
    let (code, out, _) = cli(&d.url, &["sources", "show", &first], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("\"passages\""), "{out}");

    let key = "sk-cli-0123456789abcdefghijklmnop";
    let mut set = Command::new(BIN)
        .args(["--url", &d.url, "keys", "set", "openai_api_key"])
        .env_remove("PROCEDUREWRITER_API_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(set.stdin.as_mut().unwrap(), key.as_bytes()).unwrap();
    drop(set.stdin.take());
    let out = set.wait_with_output().unwrap();
    let stdout = assert_ok(&out);
    assert!(!stdout.contains(key), "{stdout}");
    let (code, out, _) = cli(&d.url, &["keys", "list"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("openai_api_key") && !out.contains(key),
        "{out}"
    );
    let (code, _, _) = cli(&d.url, &["keys", "delete", "openai_api_key"], &[]);
    assert_eq!(code, 0);

    let (code, out, _) = cli(&d.url, &["health"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("\"status\": \"ok\""), "{out}");
    let (code, out, _) = cli(&d.url, &["costs", "--from", "2020-01-01"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("by_model"), "{out}");
    let (code, _, err) = cli(&d.url, &["costs", "--from", "yesterday"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("400 Bad Request: from must be"), "{err}");
}

#[test]
fn a_failed_demo_says_why_and_no_demo_leaves_its_temporary_directory_behind() {
    let s = Scratch::new();
    let tmp = s.dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = Command::new(BIN)
        .args(["demo", "Lumbalpunktur"])
        .env("TMPDIR", &tmp)
        .env_remove("PROCEDUREWRITER_DATA_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(": FAILED"), "{stdout}");
    assert!(stdout.contains("why: evidence gate (STRICT)"), "{stdout}");
    assert!(!stdout.contains("null"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
