//! Deleting and re-tiering library sources, as a clinician relies on it: a source a run used
//! stays defendable (retired, still served for that run), one no run used is erased (its
//! passages, index rows and original file), a re-tiering changes future runs only, and every
//! change is in the source's history.

use crate::support::*;
use procedurewriter_pipeline::library::MEDIA_PDF;
use procedurewriter_pipeline::sample_pdf::{build, guideline, Style};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const PIPELINE: (&str, &str) = ("PROCEDUREWRITER_JOB_RUNNER", "pipeline");

fn delete(h: &Http, id: &str, body: &Value) -> Resp {
    h.request(
        "DELETE",
        &format!("/api/sources/{id}"),
        Some("application/json"),
        Some(body.to_string().as_bytes()),
    )
}

fn patch(h: &Http, id: &str, body: &Value) -> Resp {
    h.request(
        "PATCH",
        &format!("/api/sources/{id}"),
        Some("application/json"),
        Some(body.to_string().as_bytes()),
    )
}

fn add(h: &Http, title: &str, text: &str, tier: &str) -> String {
    let r = h.post_json(
        "/api/sources",
        &json!({ "title": title, "text": text, "tier": tier }),
    );
    assert_eq!(r.status, 201, "{r:?}");
    r.body["source"]["id"].as_str().unwrap().to_string()
}

/// The ids of the sources a finished run used.
fn used(run: &Value) -> Vec<String> {
    run["result"]["sources"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The ids of the sources a run retrieved (whatever it ended as).
fn retrieved(h: &Http, run: &str) -> Vec<String> {
    h.details(run, "retrieved")
        .last()
        .map(|d| {
            d["sources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn write(h: &Http, procedure: &str) -> String {
    h.submit(procedure)
}

#[test]
fn deleting_a_source_no_run_used_erases_it_its_passages_and_its_original_file() {
    let s = Scratch::new();
    let d = s.start(&[PIPELINE, ("PROCEDUREWRITER_LOAD_DEMO_LIBRARY", "false")]);
    let h = d.http();
    let keep = add(
        &h,
        "Lumbalpunktur: instruks",
        "Lumbalpunktur udføres i sideleje. Kanylen indføres mellem L3 og L4.",
        "danish_guideline",
    );
    let pdf = build(
        &guideline(3, "Lumbalpunktur hos voksne udføres i sideleje.", 2),
        &Style::default(),
    );
    let r = h.post_raw(
        "/api/sources?tier=danish_guideline&title=Lumbalpunktur%20PDF",
        Some(MEDIA_PDF),
        &pdf,
    );
    assert_eq!(r.status, 201, "{r:?}");
    let gone = r.body["source"]["id"].as_str().unwrap().to_string();
    let originals = || {
        s.data_dir()
            .join("originals")
            .read_dir()
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(originals(), 1);
    assert!(h.get("/api/sources/search?q=sideleje").body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .any(|hit| hit["source"]["id"] == gone.as_str()));

    let r = delete(&h, &gone, &json!({ "reason": "uploaded by mistake" }));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["action"], "erased", "{r:?}");
    assert_eq!(r.body["original_removed"], true, "{r:?}");
    assert_eq!(originals(), 0, "the original file went with it");

    // Gone: a 404 that says when and why; its passages too.
    let r = h.get(&format!("/api/sources/{gone}"));
    r.assert_error(404, "source_not_found");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("erased") && msg.contains("uploaded by mistake"),
        "{msg}"
    );
    h.get(&format!("/api/sources/{gone}/original"))
        .assert_error(404, "source_not_found");
    delete(&h, &gone, &json!({ "reason": "again" })).assert_error(404, "source_not_found");
    let listed: Vec<String> = h.get("/api/sources").body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, [keep.as_str()]);

    // The full-text indexes stayed in step: searches after the erase work and find the rest.
    let hits = h.get("/api/sources/search?q=sideleje").body["hits"].clone();
    let hits: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["source"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(hits, [keep.as_str()]);
    // Never retrieved: a run on the topic retrieves only the other source.
    let run = write(&h, "Lumbalpunktur");
    h.wait_finished(&run, T);
    assert_eq!(retrieved(&h, &run), [keep.as_str()]);
    // A new source gets a new id, never the erased one's.
    let next = add(&h, "Another", "Another text about something.", "rct");
    assert_ne!(next, gone);
}

#[test]
fn deleting_a_source_a_run_used_retires_it_and_the_run_still_serves_it() {
    let s = Scratch::new();
    let d = s.start(&[PIPELINE]);
    let h = d.http();
    let first = write(&h, "Pleuradræn anlæggelse");
    let run = h.wait_status(&first, "DONE", T);
    let sources = used(&run);
    // A source the run used that the gate does not need (not the only one of a required tier).
    let case = h.get(&format!("/api/runs/{first}/sources")).body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| !["danish_guideline", "systematic_review"].contains(&s["tier"].as_str().unwrap()))
        .map(|s| s["id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no optional source among {sources:?}"));

    let r = delete(&h, &case, &json!({ "reason": "retracted by the journal" }));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["action"], "retired", "{r:?}");
    assert_eq!(r.body["cited_by"], 1, "{r:?}");

    // Still there, marked retired with when and why, with its passages and history.
    let src = h.get(&format!("/api/sources/{case}"));
    assert_eq!(src.status, 200, "{src:?}");
    assert_eq!(src.body["retired"], true);
    assert_eq!(src.body["retired_reason"], "retracted by the journal");
    assert!(src.body["retired_at"].as_str().unwrap().starts_with("20"));
    assert_eq!(src.body["cited_by_runs"], 1);
    assert!(!src.body["passages"].as_array().unwrap().is_empty());
    let history = src.body["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["action"], "retired");
    assert_eq!(history[0]["old_tier"], src.body["tier"]);
    assert_eq!(history[0]["reason"], "retracted by the journal");

    // The run that used it still serves it, marked retired; its artifacts are untouched.
    let served = h.get(&format!("/api/runs/{first}/sources"));
    assert_eq!(served.status, 200, "{served:?}");
    let mine = served.body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == case.as_str())
        .cloned()
        .expect("the retired source is still served for the run");
    assert_eq!(mine["retired"], true);
    assert_eq!(h.get(&format!("/api/runs/{first}/procedure")).status, 200);

    // A new run never retrieves it.
    let second = write(&h, "Pleuradræn anlæggelse");
    let run = h.wait_status(&second, "DONE", T);
    assert!(!used(&run).contains(&case), "{:?}", used(&run));
    assert!(!retrieved(&h, &second).contains(&case));
    // Nor does the library search.
    let title = src.body["title"].as_str().unwrap();
    let q = serde_urlencoded::to_string([("q", title)]).unwrap();
    assert!(h.get(&format!("/api/sources/search?{q}")).body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(|hit| hit["source"]["id"] != case.as_str()));
    // The CLI's listing marks it.
    let out = Command::new(BIN)
        .args(["--url", &d.url, "sources", "list"])
        .output()
        .unwrap();
    let listing = assert_ok(&out);
    let line = listing
        .lines()
        .find(|l| l.starts_with(case.as_str()))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        line.ends_with("[retired: retracted by the journal]"),
        "{line}"
    );
    // It is not changed again.
    delete(&h, &case, &json!({ "reason": "again" })).assert_error(409, "source_retired");
    patch(&h, &case, &json!({ "tier": "rct", "reason": "x" })).assert_error(409, "source_retired");
    // Re-ingesting its text says it was retired rather than quietly returning it.
    let text = src.body["text"].as_str().unwrap();
    let r = h.post_json("/api/sources", &json!({ "title": "again", "text": text }));
    r.assert_error(409, "source_retired");
}

#[test]
fn a_re_tiered_source_counts_for_new_runs_only_and_the_gate_reacts() {
    let s = Scratch::new();
    let d = s.start(&[PIPELINE]);
    let h = d.http();
    let first = write(&h, "Pleuradræn anlæggelse");
    h.wait_status(&first, "DONE", T);
    // The only systematic review on pleural drains: the gate requires that tier.
    let served = h.get(&format!("/api/runs/{first}/sources")).body;
    let review = served["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tier"] == "systematic_review")
        .map(|s| s["id"].as_str().unwrap().to_string())
        .expect("a systematic review");

    let r = patch(
        &h,
        &review,
        &json!({ "tier": "observational", "reason": "no protocol registered: not systematic" }),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["changed"], true);
    assert_eq!(r.body["source"]["tier"], "observational");
    assert_eq!(r.body["source"]["tier_reason"], "explicit");
    // The same tier again changes nothing and records nothing.
    let r = patch(
        &h,
        &review,
        &json!({ "tier": "observational", "reason": "again" }),
    );
    assert_eq!((r.status, &r.body["changed"]), (200, &json!(false)));

    // A new run sees the new tier: the STRICT gate now misses a systematic review.
    let second = write(&h, "Pleuradræn anlæggelse");
    let run = h.wait_status(&second, "FAILED", T);
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("systematic_review"), "{error}");

    // The first run keeps the tier it was judged with, and says what it is now.
    let served = h.get(&format!("/api/runs/{first}/sources")).body;
    let mine = served["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == review.as_str())
        .cloned()
        .unwrap();
    assert_eq!(mine["tier"], "systematic_review");
    assert_eq!(mine["current_tier"], "observational");

    // Back again: new runs pass the gate; the history has both changes, in order.
    let r = patch(
        &h,
        &review,
        &json!({ "tier": "systematic_review", "reason": "protocol found (PROSPERO)" }),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let third = write(&h, "Pleuradræn anlæggelse");
    h.wait_status(&third, "DONE", T);
    let history = h.get(&format!("/api/sources/{review}")).body["history"].clone();
    let changes: Vec<(&str, &str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["old_tier"].as_str().unwrap(),
                e["new_tier"].as_str().unwrap(),
                e["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "systematic_review",
                "observational",
                "no protocol registered: not systematic"
            ),
            (
                "observational",
                "systematic_review",
                "protocol found (PROSPERO)"
            ),
        ]
    );
}

#[test]
fn bad_deletes_and_re_tierings_are_refused_with_what_to_do() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_LOAD_DEMO_LIBRARY", "false")]);
    let h = d.http();
    let id = add(&h, "Note", "A note about drains.", "rct");
    let hint = |r: &Resp| r.body["error"]["message"].as_str().unwrap().to_string();

    let r = patch(&h, &id, &json!({ "tier": "gold", "reason": "x" }));
    r.assert_error(400, "unknown_tier");
    assert!(hint(&r).contains("danish_guideline"), "{}", hint(&r));
    let r = patch(&h, &id, &json!({ "tier": "rct" }));
    r.assert_error(400, "invalid_request");
    assert!(hint(&r).contains("reason"), "{}", hint(&r));
    patch(&h, &id, &json!({ "tier": "rct", "reason": "   " })).assert_error(400, "invalid_request");
    patch(&h, &id, &json!({ "reason": "x" })).assert_error(400, "invalid_request");
    patch(
        &h,
        &id,
        &json!({ "tier": "rct", "reason": "x", "by": "me" }),
    )
    .assert_error(400, "malformed_json");
    patch(
        &h,
        &id,
        &json!({ "tier": "rct", "reason": "x".repeat(1001) }),
    )
    .assert_error(400, "invalid_request");
    patch(&h, "SRC9999", &json!({ "tier": "rct", "reason": "x" }))
        .assert_error(404, "source_not_found");
    patch(&h, "SRC12x", &json!({ "tier": "rct", "reason": "x" }))
        .assert_error(404, "source_not_found");
    h.request("PATCH", &format!("/api/sources/{id}"), None, None)
        .assert_error(415, "unsupported_media_type");

    let r = delete(&h, &id, &json!({}));
    r.assert_error(400, "invalid_request");
    assert!(hint(&r).contains("reason"), "{}", hint(&r));
    h.delete(&format!("/api/sources/{id}"))
        .assert_error(415, "unsupported_media_type");
    delete(&h, "SRC9999", &json!({ "reason": "x" })).assert_error(404, "source_not_found");
    delete(&h, "nope", &json!({ "reason": "x" })).assert_error(404, "source_not_found");
    h.request("PUT", &format!("/api/sources/{id}"), None, None)
        .assert_error(405, "method_not_allowed");
    // Nothing was changed by any of it.
    let src = h.get(&format!("/api/sources/{id}")).body;
    assert_eq!(src["tier"], "rct");
    assert_eq!(src["history"], json!([]));

    // Re-ingesting the same document with another tier is a conflict that says to re-tier;
    // with its own tier, or none, it is the existing source.
    let r = h.post_json(
        "/api/sources",
        &json!({ "title": "Note", "text": "A note about drains.", "tier": "danish_guideline" }),
    );
    r.assert_error(409, "tier_conflict");
    assert!(
        hint(&r).contains(&format!("PATCH /api/sources/{id}")) && hint(&r).contains("retier"),
        "{}",
        hint(&r)
    );
    for tier in [json!("rct"), Value::Null] {
        let r = h.post_json(
            "/api/sources",
            &json!({ "title": "Note", "text": "A note about drains.", "tier": tier }),
        );
        assert_eq!(
            (r.status, &r.body["created"]),
            (200, &json!(false)),
            "{r:?}"
        );
    }
}

/// Deleting sources while runs retrieve them breaks no run: each ends as it would have, and
/// serves its sources (an erased one marked so) afterwards.
#[test]
fn deleting_sources_while_runs_retrieve_them_breaks_no_run() {
    let s = Scratch::new();
    let d = s.start(&[PIPELINE, ("PROCEDUREWRITER_WORKERS", "4")]);
    let h = d.http();
    // Extra anaphylaxis sources the runs may pick up, deleted while they run.
    let extra: Vec<String> = (0..12)
        .map(|i| {
            add(
                &h,
                &format!("Anafylaksi: kohorte {i}"),
                &format!(
                    "Anafylaksi hos voksne i kohorte {i}. Patienter med anafylaksi blev \
                     observeret i seks timer efter behandling med adrenalin."
                ),
                "observational",
            )
        })
        .collect();
    let runs: Vec<String> = (0..8).map(|_| write(&h, "Anafylaksi behandling")).collect();
    let mut actions = Vec::new();
    for (i, id) in extra.iter().enumerate() {
        let r = delete(&h, id, &json!({ "reason": format!("cleanup {i}") }));
        actions.push(r.body["action"].clone());
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            ["erased", "retired"].contains(&r.body["action"].as_str().unwrap()),
            "{r:?}"
        );
    }
    eprintln!("deletes while the runs ran: {actions:?}");
    for id in &runs {
        let run = h.wait_finished(id, T);
        assert_eq!(run["status"], "DONE", "{run}");
        let served = h.get(&format!("/api/runs/{id}/sources"));
        assert_eq!(served.status, 200, "{served:?}");
        for src in served.body["sources"].as_array().unwrap() {
            assert!(src["title"].is_string() || src["erased"] == true, "{src}");
        }
    }
    // Whatever was used is retired (kept), whatever was not is erased.
    for id in &extra {
        let r = h.get(&format!("/api/sources/{id}"));
        match r.status {
            200 => {
                assert_eq!(r.body["retired"], true, "{r:?}");
                assert!(r.body["cited_by_runs"].as_u64().unwrap() >= 1);
            }
            404 => {}
            _ => panic!("{r:?}"),
        }
    }
}

#[test]
fn the_cli_deletes_and_re_tiers_sources_with_a_reason() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_LOAD_DEMO_LIBRARY", "false")]);
    let h = d.http();
    let id = add(&h, "Note", "A note about drains.", "rct");
    let cli = |args: &[&str]| {
        Command::new(BIN)
            .args(["--url", &d.url, "sources"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&[
        "retier",
        &id,
        "observational",
        "--reason",
        "a cohort, not a trial",
    ]);
    let stdout = assert_ok(&out);
    assert!(stdout.contains("now observational"), "{stdout}");
    let out = cli(&["retier", &id, "gold", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown tier") && stderr.contains("danish_guideline"),
        "{stderr}"
    );
    // The reason is required by the command itself.
    let out = cli(&["delete", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reason"));
    let out = cli(&["delete", &id, "--reason", "duplicate"]);
    let stdout = assert_ok(&out);
    assert!(stdout.contains("erased"), "{stdout}");
    let out = cli(&["show", &id]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("erased") && stderr.contains("duplicate"),
        "{stderr}"
    );
}
