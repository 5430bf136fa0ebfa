//! `procedurewriter demo`: the README's first command. A daemon on a fresh data directory and
//! an ephemeral loopback port, one run written end to end with its events shown live through
//! the client, then a graceful stop.

use crate::client::{block_on_io, Client, ClientError};
use crate::settings::Settings;
use hyper::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// `procedurewriter demo`: a daemon on a fresh data directory and an ephemeral loopback port,
/// one run written end to end with its events shown live, then a graceful stop.
pub fn demo(procedure: &str, data_dir: Option<PathBuf>) -> ExitCode {
    let mut settings = match Settings::load(None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("procedurewriter: {e}");
            return ExitCode::from(2);
        }
    };
    // A directory of our own making is removed at the end; one the caller named is kept.
    let scratch = data_dir.is_none();
    settings.data_dir = data_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "procedurewriter-demo-{}",
            uuid::Uuid::new_v4().simple()
        ))
    });
    settings.log = "warn".into();
    // A fresh data directory needs its own secret key (it encrypts stored API keys); the
    // demo creates one the way `procedurewriter init-secret` does, unless the environment
    // supplies one.
    if std::env::var(crate::keys::KEY_ENV).map_or(true, |v| v.trim().is_empty())
        && !settings.key_file().exists()
    {
        match crate::admin::init_secret(&settings, false) {
            Ok(msg) => println!("{msg}"),
            Err(e) => {
                eprintln!("procedurewriter: {e}");
                return ExitCode::from(e.exit_code() as u8);
            }
        }
    }
    let listener = match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("procedurewriter: cannot listen on loopback: {e}");
            return ExitCode::from(5);
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let data_dir = settings.data_dir.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = std::thread::spawn(move || {
        crate::Daemon::new(settings).run(listener, async {
            let _ = stopped.await;
        })
    });
    println!("daemon on http://{addr}, data in {}", data_dir.display());
    let outcome = run_demo_job(&format!("http://{addr}"), procedure);
    let _ = stop.send(());
    let stopped = daemon.join();
    if scratch {
        if let Err(e) = std::fs::remove_dir_all(&data_dir) {
            eprintln!(
                "procedurewriter: cannot remove the demo's data directory {}: {e}",
                data_dir.display()
            );
        }
    }
    match (outcome, stopped) {
        (Ok((run, procedure)), Ok(Ok(()))) => {
            println!("\n{procedure}");
            let summary = crate::client::summary(&run);
            if scratch && run["result"]["artifact_dir"].is_string() {
                // Its artifacts went with the temporary directory: say how to keep them.
                for line in summary
                    .lines()
                    .filter(|l| !l.starts_with("  artifacts:") && !l.starts_with("  download:"))
                {
                    println!("{line}");
                }
                println!(
                    "  the demo's temporary data directory is removed; `demo --data-dir DIR` keeps \
                     it with the artifacts (procedure.md, procedure.docx, evidence_report.json, \
                     manifest.json)"
                );
            } else {
                println!("{summary}");
            }
            println!(
                "next: `procedurewriter daemon` serves the same over HTTP; see README for curl examples"
            );
            if run["status"] == "DONE" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        (Err(e), _) => {
            eprintln!("procedurewriter: demo failed: {e}");
            ExitCode::FAILURE
        }
        (_, Ok(Err(e))) => {
            eprintln!("procedurewriter: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
        (_, Err(_)) => {
            eprintln!("procedurewriter: the daemon thread panicked");
            ExitCode::FAILURE
        }
    }
}

fn run_demo_job(url: &str, procedure: &str) -> Result<(Value, String), ClientError> {
    block_on_io(async {
        let client = Client::new(url)?;
        // The daemon thread may still be starting: the listener is bound, so connections
        // queue in the backlog until it serves them.
        let run = client
            .call(
                Method::POST,
                "/api/write",
                Some(&json!({ "procedure": procedure, "context": "akutmodtagelse, voksne" })),
                &[],
            )
            .await?;
        let id = run["run_id"].as_str().unwrap_or_default().to_string();
        println!("run {id} enqueued; events:");
        client.follow(&id).await?;
        let run = client
            .call(Method::GET, &format!("/api/runs/{id}"), None, &[])
            .await?;
        let procedure = if run["status"] == "DONE" {
            match client
                .call(Method::GET, &format!("/api/runs/{id}/procedure"), None, &[])
                .await?
            {
                Value::String(s) => s,
                other => other.to_string(),
            }
        } else {
            format!(
                "(no procedure: the run ended {}: {})",
                run["status"], run["error"]
            )
        };
        Ok((run, procedure))
    })
}
