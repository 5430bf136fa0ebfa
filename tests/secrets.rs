//! Secrets at rest: the key's failure modes at start, persistence across restarts, no
//! plaintext on disk or in logs, tampering, rotation and crashes in the middle of it.

use crate::support::*;
use procedurewriter_actors::crypto::SecretKey;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);
const OPENAI: &str = "sk-proj-Zq9LwT4vXn2Kp8RmC5yB7dHs";
const ANTHROPIC: &str = "sk-ant-api03-Hq7Vn3Jw9Ld2Xp5Tk8Mr";

fn stop(d: Daemon) {
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(T).code(), Some(0));
}

/// Runs a daemon command that must fail at start: never serving, always saying why.
fn fails(cmd: std::process::Command) -> (i32, String) {
    let (code, err) = Scratch::fails(cmd);
    assert!(
        !err.contains("daemon ready"),
        "refused before serving: {err}"
    );
    (code, err)
}

#[test]
fn missing_malformed_loose_and_wrong_keys_each_fail_fast_with_their_own_message() {
    let s = Scratch::new();

    let (code, err) = fails(s.command_without_key(&[]));
    assert_eq!(code, 10, "{err}");
    for needle in [
        "PROCEDUREWRITER_SECRET_KEY",
        "secret.key",
        "procedurewriter init-secret",
    ] {
        assert!(
            err.contains(needle),
            "missing key message names {needle}: {err}"
        );
    }
    assert!(!s.data_dir().exists(), "nothing is created without a key");

    let (code, err) = fails(s.command_without_key(&[("PROCEDUREWRITER_SECRET_KEY", "abc")]));
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("malformed"), "{err}");

    // The data directory is private (the daemon refuses one others can read).
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(s.data_dir())
        .unwrap();
    std::fs::write(s.key_file(), "dG9vIHNob3J0\n").unwrap();
    std::fs::set_permissions(s.key_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, err) = fails(s.command_without_key(&[]));
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("32 bytes"), "{err}");

    std::fs::remove_file(s.key_file()).unwrap();
    assert_ok(&s.admin(&["init-secret"], &[]));
    std::fs::set_permissions(s.key_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = fails(s.command_without_key(&[]));
    assert_eq!(code, 12, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(s.key_file(), std::fs::Permissions::from_mode(0o600)).unwrap();

    // The first start records the key; another key is refused.
    stop(Daemon::spawn(s.command_without_key(&[])));
    let other = SecretKey::generate().to_base64().to_string();
    let (code, err) = fails(s.command_without_key(&[("PROCEDUREWRITER_SECRET_KEY", &other)]));
    assert_eq!(code, 13, "{err}");
    assert!(err.contains("not the key"), "{err}");
}

#[test]
fn a_stored_secret_survives_a_restart_and_never_reaches_the_disk_in_plaintext() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let r = h.put_json("/api/keys/openai_api_key", &json!({ "value": OPENAI }));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["masked"],
        "sk-…Hs".replace("Hs", &OPENAI[OPENAI.len() - 4..])
    );
    assert_eq!(r.body["source"], "stored");
    stop(d);

    let d = s.start(&[]);
    let h = d.http();
    let r = h.get("/api/keys/openai_api_key");
    assert_eq!(r.body["usable"], true, "{r:?}");
    assert_eq!(
        r.body["masked"],
        format!("sk-…{}", &OPENAI[OPENAI.len() - 4..])
    );
    let all = h.get("/api/keys");
    assert_eq!(all.body["keys"].as_array().unwrap().len(), 3);
    stop(d);

    for file in ["procedurewriter.db", "procedurewriter.db-wal"] {
        let path = s.data_dir().join(file);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes.windows(OPENAI.len()).any(|w| w == OPENAI.as_bytes()),
                "{file} holds the plaintext"
            );
        }
    }
}

#[test]
fn tampered_and_moved_ciphertexts_are_refused_per_secret_while_the_daemon_serves() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    h.put_json("/api/keys/openai_api_key", &json!({ "value": OPENAI }));
    h.put_json(
        "/api/keys/anthropic_api_key",
        &json!({ "value": ANTHROPIC }),
    );
    stop(d);
    {
        let db = rusqlite::Connection::open(s.db_path()).unwrap();
        let mut ct: Vec<u8> = db
            .query_row(
                "SELECT ciphertext FROM secrets WHERE name = 'openai_api_key'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        ct[0] ^= 1;
        db.execute(
            "UPDATE secrets SET ciphertext = ?1 WHERE name = 'openai_api_key'",
            [ct],
        )
        .unwrap();
        db.execute(
            "INSERT INTO secrets (name, ciphertext, nonce, key_id, updated_at) \
             SELECT 'ncbi_api_key', ciphertext, nonce, key_id, updated_at FROM secrets WHERE name = 'anthropic_api_key'",
            [],
        )
        .unwrap();
    }
    let d = s.start(&[]);
    let h = d.http();
    for name in ["openai_api_key", "ncbi_api_key"] {
        let r = h.get(&format!("/api/keys/{name}"));
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["usable"], false, "{r:?}");
        assert!(
            r.body["error"]
                .as_str()
                .unwrap()
                .contains("does not decrypt"),
            "{r:?}"
        );
    }
    assert_eq!(h.get("/api/keys/anthropic_api_key").body["usable"], true);
    assert_eq!(h.get("/health").status, 200);
}

#[test]
fn rotation_moves_every_secret_to_a_new_key_and_the_old_key_is_refused() {
    let s = Scratch::new();
    assert_ok(&s.admin(&["init-secret"], &[]));
    let old = std::fs::read_to_string(s.key_file()).unwrap();
    let d = Daemon::spawn(s.command_without_key(&[]));
    d.http()
        .put_json("/api/keys/openai_api_key", &json!({ "value": OPENAI }));

    // Not while the daemon runs.
    let out = s.admin(&["rotate-secret"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop it"));
    stop(d);

    let msg = assert_ok(&s.admin(&["rotate-secret"], &[]));
    assert!(msg.contains("re-encrypted 1 secrets"), "{msg}");
    let new = std::fs::read_to_string(s.key_file()).unwrap();
    assert_ne!(old, new);
    let d = Daemon::spawn(s.command_without_key(&[]));
    assert_eq!(
        d.http().get("/api/keys/openai_api_key").body["usable"],
        true
    );
    stop(d);

    let (code, err) = fails(s.command_without_key(&[("PROCEDUREWRITER_SECRET_KEY", old.trim())]));
    assert_eq!(code, 13, "{err}");
}

#[test]
fn rotation_with_the_key_in_the_environment_takes_the_new_key_from_a_file() {
    let s = Scratch::new();
    let d = s.start(&[]);
    d.http()
        .put_json("/api/keys/ncbi_api_key", &json!({ "value": ANTHROPIC }));
    stop(d);
    let env = [("PROCEDUREWRITER_SECRET_KEY", s.key.as_str())];
    let out = s.admin(&["rotate-secret"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--new-key-file"));

    let new = SecretKey::generate();
    let new_file = s.dir.path().join("new.key");
    std::fs::write(&new_file, format!("{}\n", new.to_base64().as_str())).unwrap();
    std::fs::set_permissions(&new_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let msg = assert_ok(&s.admin(
        &[
            "rotate-secret",
            "--new-key-file",
            new_file.to_str().unwrap(),
        ],
        &env,
    ));
    assert!(msg.contains("set PROCEDUREWRITER_SECRET_KEY"), "{msg}");
    let new_b64 = new.to_base64().to_string();
    let d = Daemon::spawn({
        let mut c = s.command_without_key(&[]);
        c.env("PROCEDUREWRITER_SECRET_KEY", &new_b64);
        c
    });
    assert_eq!(d.http().get("/api/keys/ncbi_api_key").body["usable"], true);
}

#[test]
fn a_crash_at_any_step_of_rotation_leaves_every_secret_readable() {
    for step in [
        "rotate-after-side-file",
        "rotate-after-database",
        "rotate-after-rename",
    ] {
        let s = Scratch::new();
        assert_ok(&s.admin(&["init-secret"], &[]));
        let d = Daemon::spawn(s.command_without_key(&[]));
        let h = d.http();
        h.put_json("/api/keys/openai_api_key", &json!({ "value": OPENAI }));
        h.put_json(
            "/api/keys/anthropic_api_key",
            &json!({ "value": ANTHROPIC }),
        );
        stop(d);

        let out = s.admin(
            &["rotate-secret"],
            &[("PROCEDUREWRITER_TEST_FAILPOINT", step)],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{step}: the failpoint aborts");
        assert!(err.contains(step), "{step}: {err}");

        let d = Daemon::spawn(s.command_without_key(&[]));
        let h = d.http();
        for (name, value) in [("openai_api_key", OPENAI), ("anthropic_api_key", ANTHROPIC)] {
            let r = h.get(&format!("/api/keys/{name}"));
            assert_eq!(r.body["usable"], true, "{step}: {r:?}");
            assert_eq!(
                r.body["masked"],
                format!("sk-…{}", &value[value.len() - 4..]),
                "{step}"
            );
        }
        assert!(
            !s.data_dir().join("secret.key.new").exists(),
            "{step}: side file resolved"
        );
        stop(d);
        // And the key can be rotated again afterwards.
        assert_ok(&s.admin(&["rotate-secret"], &[]));
    }
}

#[test]
fn init_secret_creates_a_private_key_file_and_refuses_to_clobber_one_in_use() {
    let s = Scratch::new();
    let msg = assert_ok(&s.admin(&["init-secret"], &[]));
    assert!(msg.contains("Back it up"), "{msg}");
    let mode = std::fs::metadata(s.key_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(s.data_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);

    let out = s.admin(&["init-secret"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to overwrite"));

    // --force is fine while nothing is stored under the key...
    let before = std::fs::read_to_string(s.key_file()).unwrap();
    assert_ok(&s.admin(&["init-secret", "--force"], &[]));
    assert_ne!(before, std::fs::read_to_string(s.key_file()).unwrap());
    let d = Daemon::spawn(s.command_without_key(&[]));
    d.http()
        .put_json("/api/keys/openai_api_key", &json!({ "value": OPENAI }));
    stop(d);
    // ... and refused once a secret is.
    let out = s.admin(&["init-secret", "--force"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rotate-secret"));
}

#[test]
fn the_value_never_appears_in_responses_or_trace_logs() {
    let s = Scratch::new();
    let d = s.start(&[
        ("PROCEDUREWRITER_LOG", "trace"),
        ("OPENAI_API_KEY", ANTHROPIC),
    ]);
    let h = d.http();
    let mut bodies = Vec::new();
    // The environment fallback is shown masked.
    let r = h.get("/api/keys/openai_api_key");
    assert_eq!(r.body["source"], "environment");
    bodies.push(r.body.to_string());
    bodies.push(
        h.put_json("/api/keys/openai_api_key", &json!({ "value": OPENAI }))
            .body
            .to_string(),
    );
    bodies.push(h.get("/api/keys/openai_api_key").body.to_string());
    bodies.push(h.get("/api/keys").body.to_string());
    bodies.push(
        h.put_json(
            "/api/keys/openai_api_key",
            &json!({ "value": OPENAI, "extra": OPENAI }),
        )
        .body
        .to_string(),
    );
    bodies.push(
        h.put_json("/api/keys/openai_api_key", &json!({ "value": [OPENAI] }))
            .body
            .to_string(),
    );
    bodies.push(h.delete("/api/keys/openai_api_key").body.to_string());
    bodies.push(h.get("/metrics").body.to_string());
    let log = d.log_text();
    stop(d);
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "trace logging was on"
    );
    for (what, text) in bodies
        .iter()
        .map(|b| ("response", b))
        .chain([("log", &log)])
    {
        assert!(
            !text.contains(OPENAI),
            "{what} leaks the stored value: {text}"
        );
        assert!(
            !text.contains(ANTHROPIC),
            "{what} leaks the environment value: {text}"
        );
    }
}

#[test]
fn the_keys_api_refuses_unknown_names_and_bad_values() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    h.get("/api/keys/aws_secret")
        .assert_error(404, "key_not_found");
    h.put_json("/api/keys/aws_secret", &json!({ "value": "x" }))
        .assert_error(404, "key_not_found");
    h.put_json("/api/keys/openai_api_key", &json!({ "value": "  " }))
        .assert_error(400, "invalid_request");
    h.put_json(
        "/api/keys/openai_api_key",
        &json!({ "value": "x".repeat(5000) }),
    )
    .assert_error(400, "invalid_request");
    h.put_json("/api/keys/openai_api_key", &json!({ "value": "a\nb" }))
        .assert_error(400, "invalid_request");
    h.delete("/api/keys/openai_api_key")
        .assert_error(404, "key_not_stored");
    let r = h.get("/api/keys/openai_api_key");
    assert_eq!(
        (r.body["present"].clone(), r.body["source"].clone()),
        (json!(false), json!("none"))
    );
}
