//! The operator's tools: Prometheus scrapes both exposition formats, `/health` tells a load
//! balancer to go away while the daemon drains, systemd hears READY/RELOADING/STOPPING, and
//! `check-config` and `init-secret` work the way the unit and the README use them.

use crate::support::fake_llm::{FakeLlm, Flavor, Reply};
use crate::support::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0";
/// Long enough for a loaded CI machine.
const T: Duration = Duration::from_secs(60);

/// The value of the sample `name` (with its labels exactly as written), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A lint in the spirit of `promtool check metrics`: every sample belongs to a family declared
/// by a `# TYPE` line with a `# HELP` line, and the names follow the format's rules (in the
/// Prometheus text format a counter's family is named `..._total`; in OpenMetrics it is not,
/// and the text ends with `# EOF`). Returns the declared families and their types.
fn lint(text: &str, openmetrics: bool) -> BTreeMap<String, String> {
    let mut types = BTreeMap::new();
    let mut helps = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect("a TYPE line names a type");
            assert!(
                types.insert(name.to_string(), ty.to_string()).is_none(),
                "{name} declared twice"
            );
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("a HELP line has text");
            assert!(!help.trim().is_empty(), "{name} has empty help");
            helps.push(name.to_string());
        }
    }
    for name in types.keys() {
        assert!(helps.contains(name), "{name} has no help text");
    }
    for (name, ty) in &types {
        if ty == "counter" {
            assert_eq!(
                name.ends_with("_total"),
                !openmetrics,
                "counter family {name} in {} format",
                if openmetrics {
                    "OpenMetrics"
                } else {
                    "Prometheus text"
                }
            );
        }
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = types.iter().find(|(f, ty)| {
            let f = f.as_str();
            match ty.as_str() {
                "histogram" => {
                    [f, "_bucket"].concat() == name
                        || [f, "_sum"].concat() == name
                        || [f, "_count"].concat() == name
                }
                "counter" if openmetrics => [f, "_total"].concat() == name,
                "info" => [f, "_info"].concat() == name,
                _ => f == name,
            }
        });
        assert!(family.is_some(), "sample {line:?} has no declared family");
    }
    assert_eq!(text.ends_with("# EOF\n"), openmetrics, "{text}");
    types
}

#[test]
fn metrics_speak_both_exposition_formats_with_help_types_and_operator_figures() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let done = h.write("quick", json!({}));
    h.wait_status(&done, "DONE", T);
    let long = h.write("long", json!({ "duration_ms": 60_000 }));
    h.wait_status(&long, "RUNNING", T);
    assert_eq!(
        h.post_empty(&format!("/api/runs/{long}/cancel")).status,
        202
    );
    h.wait_status(&long, "CANCELLED", T);

    // No Accept (curl) and text/plain: the Prometheus text format.
    for accept in [None, Some("text/plain;version=0.0.4")] {
        let m = match accept {
            Some(a) => h.get_with_header("/metrics", ("accept", a)),
            None => h.get("/metrics"),
        };
        assert_eq!(m.status, 200);
        assert!(
            m.header("content-type")
                .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
            "{m:?}"
        );
        let text = m.body.as_str().unwrap();
        let types = lint(text, false);
        assert_eq!(
            types
                .get("procedurewriter_claims_total")
                .map(String::as_str),
            Some("counter")
        );
        assert_eq!(sample(text, "procedurewriter_completions_total"), Some(1.0));
        assert_eq!(sample(text, "procedurewriter_cancels_total"), Some(1.0));
        assert_eq!(
            sample(text, "procedurewriter_runs{status=\"CANCELLED\"}"),
            Some(1.0)
        );
        assert_eq!(sample(text, "procedurewriter_workers"), Some(2.0));
        assert_eq!(sample(text, "procedurewriter_busy_workers"), Some(0.0));
        assert_eq!(sample(text, "procedurewriter_draining"), Some(0.0));
        assert_eq!(
            sample(text, "procedurewriter_oldest_queued_run_age_seconds"),
            Some(0.0)
        );
        assert!(sample(text, "procedurewriter_database_size_bytes").unwrap() > 0.0);
        assert!(sample(text, "process_resident_memory_bytes").unwrap() > 1e6);
        assert!(sample(text, "process_open_fds").unwrap() > 3.0);
        assert!(sample(text, "process_start_time_seconds").unwrap() > 1.6e9);
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        assert_eq!(
            sample(
                text,
                &format!(
                    "procedurewriter_build_info{{version=\"{}\"}}",
                    env!("CARGO_PKG_VERSION")
                )
            ),
            Some(1.0)
        );
        // The write above was answered, so its route has a latency.
        assert!(
            sample(
                text,
                "procedurewriter_http_request_duration_seconds_count{route=\"/api/write\"}"
            )
            .unwrap()
                >= 2.0
        );
        // This scrape is in flight while it is encoded.
        assert!(sample(text, "procedurewriter_http_requests_in_flight").unwrap() >= 1.0);
    }

    // What a Prometheus server asks for first: OpenMetrics.
    let m = h.get_with_header(
        "/metrics",
        (
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        ),
    );
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .is_some_and(|c| c.starts_with(OPENMETRICS)),
        "{m:?}"
    );
    let text = m.body.as_str().unwrap();
    let types = lint(text, true);
    assert_eq!(
        types.get("procedurewriter_claims").map(String::as_str),
        Some("counter")
    );
    assert_eq!(sample(text, "procedurewriter_cancels_total"), Some(1.0));
}

#[test]
fn model_calls_and_run_outcomes_are_counted_by_provider_and_model() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::draft(12, 800));
    let env = fake.env("gpt-4o-mini");
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.push(("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "off"));
    let d = Daemon::spawn(s.command(&pairs));
    let h = d.http();
    let key = "sk-test-0123456789abcdefghijklmnop";
    assert_eq!(
        h.put_json("/api/keys/openai_api_key", &json!({ "value": key }))
            .status,
        200
    );
    let r = h.post_json(
        "/api/write",
        &json!({ "procedure": "Anafylaksi behandling" }),
    );
    assert_eq!(r.status, 202, "{r:?}");
    let id = r.body["run_id"].as_str().unwrap().to_string();
    let run = wait_for("the run to end", T, || {
        let r = h.run(&id);
        ["DONE", "FAILED"]
            .contains(&r["status"].as_str().unwrap_or_default())
            .then_some(r)
    });
    let text = h.get("/metrics").body.as_str().unwrap().to_string();
    lint(&text, false);
    let labels = "provider=\"openai\",model=\"gpt-4o-mini\"";
    let calls = sample(
        &text,
        &format!("procedurewriter_model_calls_total{{{labels},outcome=\"ok\"}}"),
    );
    assert_eq!(calls, Some(fake.count() as f64), "{text}");
    assert!(
        sample(
            &text,
            &format!("procedurewriter_model_tokens_total{{{labels},direction=\"out\"}}")
        )
        .unwrap()
            > 0.0
    );
    assert!(
        sample(
            &text,
            &format!("procedurewriter_model_cost_usd_total{{{labels}}}")
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("procedurewriter_model_call_duration_seconds_count{{{labels}}}")
        ),
        calls
    );
    let outcome = if run["status"] == "DONE" {
        "done"
    } else {
        "not_releasable"
    };
    assert_eq!(
        sample(
            &text,
            &format!("procedurewriter_run_outcomes_total{{outcome=\"{outcome}\"}}")
        ),
        Some(1.0),
        "{run:#}\n{text}"
    );
    assert_eq!(sample(&text, "procedurewriter_run_score_count"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            "procedurewriter_run_stage_duration_seconds_count{stage=\"retrieve\"}"
        ),
        Some(1.0)
    );
    // /health names what the runs are written with.
    let health = h.get("/health").body;
    assert_eq!(health["llm"]["provider"], "openai", "{health}");
    assert_eq!(health["llm"]["model"], "gpt-4o-mini", "{health}");
}

#[test]
fn health_answers_503_while_draining() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_SHUTDOWN_GRACE_S", "10")]);
    let h = d.http();
    assert_eq!(h.get("/health").status, 200);
    let long = h.write("long", json!({ "duration_ms": 60_000 }));
    h.wait_status(&long, "RUNNING", T);
    d.signal(libc::SIGTERM);
    let health = wait_for("health to say shutting_down", T, || {
        let r = h.get("/health");
        (r.body["status"] == "shutting_down").then_some(r)
    });
    assert_eq!(health.status, 503, "{health:?}");
    let m = h.get("/metrics").body.as_str().unwrap().to_string();
    assert_eq!(sample(&m, "procedurewriter_draining"), Some(1.0));
    assert_eq!(d.wait_exit(Duration::from_secs(30)).code(), Some(0));
}

/// The notifications a service manager would have received on `socket`, read until one
/// satisfies `until` (or the deadline passes).
fn notifications(socket: &UnixDatagram, until: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + T;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = until(&msg);
            got.push(msg);
            if done {
                return got;
            }
        }
    }
    panic!("no awaited notification within {T:?}; got {got:?}");
}

#[test]
fn systemd_hears_ready_reloading_and_stopping_and_a_failed_reload_says_so() {
    let s = Scratch::new();
    let path = s.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let config = write_config(s.dir.path(), "workers = 2\n");
    let mut cmd = s.command(&[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    cmd.arg("--config").arg(&config);
    let d = Daemon::spawn(cmd);
    let ready = notifications(&socket, |m| m.lines().any(|l| l == "READY=1"));
    assert!(
        ready.concat().contains("STATUS=serving on 127.0.0.1:"),
        "{ready:?}"
    );

    // A broken file: the reload is refused, systemd hears it start and end, and why.
    std::fs::write(&config, "workers = \"many\"\n").unwrap();
    d.signal(libc::SIGHUP);
    let failed = notifications(&socket, |m| m.lines().any(|l| l == "READY=1"));
    let all = failed.join("\n");
    assert!(all.contains("RELOADING=1"), "{failed:?}");
    assert!(all.contains("MONOTONIC_USEC="), "{failed:?}");
    assert!(
        all.contains("STATUS=reload failed, still running the previous settings")
            && all.contains("workers"),
        "{failed:?}"
    );
    let m = d.http().get("/metrics").body.as_str().unwrap().to_string();
    assert_eq!(
        sample(&m, "procedurewriter_config_last_reload_success"),
        Some(0.0)
    );

    // A restart-only change: applied nowhere, named in the status and in /health.
    std::fs::write(&config, "workers = 3\n").unwrap();
    d.signal(libc::SIGHUP);
    let reloaded = notifications(&socket, |m| m.lines().any(|l| l == "READY=1"));
    assert!(
        reloaded
            .concat()
            .contains("STATUS=reloaded; a restart is needed for: workers"),
        "{reloaded:?}"
    );
    let h = d.http();
    let health = h.get("/health").body;
    assert_eq!(
        health["pending_restart"]["workers"],
        json!([2, 3]),
        "{health}"
    );
    let m = h.get("/metrics").body.as_str().unwrap().to_string();
    assert_eq!(
        sample(&m, "procedurewriter_config_last_reload_success"),
        Some(1.0)
    );
    assert!(sample(&m, "procedurewriter_config_last_reload_timestamp_seconds").unwrap() > 1.6e9);

    d.signal(libc::SIGTERM);
    notifications(&socket, |m| m.lines().any(|l| l == "STOPPING=1"));
    assert_eq!(d.wait_exit(T).code(), Some(0));
}

/// An admin subcommand run as an operator would: in `cwd`, with only `env`.
fn admin_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
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

#[test]
fn the_first_run_works_as_the_unit_says_and_check_config_tells_what_start_up_would() {
    let s = Scratch::new();
    let state = s.dir.path().join("var-lib-procedurewriter");
    let config = write_config(
        s.dir.path(),
        &format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\njob_runner = \"test\"\n",
            state
        ),
    );
    let config = config.to_str().unwrap();
    let home = s.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();

    // Before the key: check-config fails as start-up would, with the key's exit code.
    let (code, _, err) = admin_in(&home, &["check-config", "--config", config], &[]);
    assert_eq!(code, 10, "{err}");
    assert!(err.contains("init-secret"), "{err}");

    // init-secret from the operator's home directory puts the key where the config says.
    let (code, out, err) = admin_in(&home, &["init-secret", "--config", config], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(state.join("secret.key").is_file(), "{out}");
    assert!(!home.join("data").exists());
    assert!(
        out.contains(&state.join("secret.key").display().to_string()),
        "{out}"
    );

    let (code, out, err) = admin_in(&home, &["check-config", "--config", config], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("configuration ok"), "{out}");
    assert!(out.contains(&state.display().to_string()), "{out}");

    // The service starts elsewhere (its own working directory) and finds the key.
    let mut cmd = Command::new(BIN);
    cmd.args(["daemon", "--config", config])
        .current_dir(s.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let d = Daemon::spawn(cmd);
    assert_eq!(d.http().get("/health").status, 200);
    // check-config runs beside the live daemon (it takes no lock): the unit's ExecReload.
    let (code, _, err) = admin_in(&home, &["check-config", "--config", config], &[]);
    assert_eq!(code, 0, "{err}");
    drop(d);

    // A broken file: exit 2, naming the key.
    let broken = write_config(s.dir.path(), "workers = \"many\"\n");
    let (code, _, err) = admin_in(
        &home,
        &["check-config", "--config", broken.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("workers"), "{err}");

    // A relative data_dir: init-secret says where the key went and why a service may miss it.
    let (code, out, err) = admin_in(&home, &["init-secret"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("is relative"), "{out}");
}
