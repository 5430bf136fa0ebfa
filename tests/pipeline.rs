//! The procedure pipeline through the real daemon and its HTTP API, on the demo library.

use crate::support::*;
use procedurewriter_pipeline::library::sha256_hex;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const PIPELINE: (&str, &str) = ("PROCEDUREWRITER_JOB_RUNNER", "pipeline");

fn write(h: &Http, procedure: &str, options: serde_json::Value) -> String {
    let r = h.post_json(
        "/api/write",
        &json!({ "procedure": procedure, "options": options }),
    );
    assert_eq!(r.status, 202, "{r:?}");
    r.body["run_id"].as_str().unwrap().to_string()
}

#[test]
fn a_procedure_is_written_end_to_end_every_sentence_cited_and_the_manifest_matches_the_files() {
    let s = Scratch::new();
    let d = s.start(&[PIPELINE]);
    let h = d.http();
    let id = write(&h, "Anafylaksi behandling", json!({}));
    let run = h.wait_status(&id, "DONE", T);
    let result = &run["result"];
    assert!(result["score"].as_f64().unwrap() >= 8.0, "{result}");
    // The offline draft meets the shipped threshold: one draft, no spend.
    assert_eq!(result["stop_reason"], "threshold_met", "{result}");
    assert_eq!(result["iterations"], 1);
    assert_eq!(run["score"], result["score"]);
    assert_eq!(run["cost_usd"], 0.0);
    assert_eq!(run["llm_calls"], 0);
    let used: Vec<String> = result["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(used.len() >= 4, "{used:?}");

    let kinds = h.event_kinds(&id);
    for stage in [
        "retrieved",
        "evidence_gate",
        "iteration_started",
        "iteration_scored",
        "quality_loop_stopped",
        "packaged",
        "completed",
    ] {
        assert!(
            kinds.contains(&stage.to_string()),
            "{stage} missing: {kinds:?}"
        );
    }

    // Every sentence under a section heading (but the references) carries a citation that
    // resolves to a retrieved source.
    let md = h
        .get(&format!("/api/runs/{id}/procedure"))
        .body
        .as_str()
        .unwrap()
        .to_string();
    let mut section = None;
    let mut checked = 0;
    for line in md.lines() {
        if let Some(hd) = line.strip_prefix("## ") {
            section = Some(hd.to_string());
            continue;
        }
        let t = line.trim();
        if section.is_none()
            || section.as_deref() == Some("Referencer")
            || t.is_empty()
            || t.starts_with('_')
        {
            continue;
        }
        let cites: Vec<&str> = t
            .match_indices("[S:")
            .map(|(i, _)| &t[i + 3..i + 3 + t[i..].find(']').unwrap() - 3])
            .collect();
        assert!(!cites.is_empty(), "uncited line: {t}");
        for c in cites {
            assert!(
                used.iter().any(|u| u == c),
                "{c} is not a retrieved source: {t}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 15, "{checked} lines checked in\n{md}");
    assert_eq!(
        md.matches("\n## ").count(),
        14,
        "every outline section: {md}"
    );

    // The manifest's hashes are the files' hashes, and the sources' hashes the library's.
    let manifest = h.get(&format!("/api/runs/{id}/manifest")).body;
    let dir = s.data_dir().join("runs").join(&id);
    for a in manifest["artifacts"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(a["sha256"], sha256_hex(&bytes), "{name}");
    }
    for src in manifest["sources"].as_array().unwrap() {
        let stored = h
            .get(&format!("/api/sources/{}", src["id"].as_str().unwrap()))
            .body;
        assert_eq!(src["sha256"], stored["sha256"]);
    }
    assert_eq!(manifest["writer"], "offline-v1");
    assert_eq!(manifest["config_digest"].as_str().unwrap().len(), 64);

    let names: Vec<&str> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["procedure.md", "procedure.docx", "evidence_report.json"]
    );
    // The run lists the manifest too (a manifest cannot hash itself).
    let listed = result["artifacts"].as_array().unwrap();
    let m = listed
        .iter()
        .find(|a| a["name"] == "manifest.json")
        .unwrap();
    assert_eq!(
        m["sha256"],
        sha256_hex(&std::fs::read(dir.join("manifest.json")).unwrap())
    );
    let docx = std::fs::read(dir.join("procedure.docx")).unwrap();
    assert_eq!(&docx[..2], b"PK");
    let evidence = h.get(&format!("/api/runs/{id}/evidence")).body;
    assert!(evidence["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["supported"] == true));
    let sources = h.get(&format!("/api/runs/{id}/sources")).body;
    assert_eq!(sources["sources"].as_array().unwrap().len(), used.len());
    // Only sources about the topic: the pleural drain sources share generic words
    // ("behandling") with the title but are not retrieved.
    for src in sources["sources"].as_array().unwrap() {
        let title = src["title"].as_str().unwrap().to_lowercase();
        assert!(
            !title.contains("pleura") && !title.contains("chest"),
            "off-topic source {title}"
        );
    }

    // Deterministic: the same request writes the same procedure.
    let again = write(&h, "Anafylaksi behandling", json!({}));
    h.wait_status(&again, "DONE", T);
    assert_eq!(
        h.get(&format!("/api/runs/{again}/procedure"))
            .body
            .as_str()
            .unwrap(),
        md
    );
}

#[test]
fn strict_fails_a_run_missing_a_required_tier_and_says_what_was_found() {
    let s = Scratch::new();
    let path = write_config(
        s.dir.path(),
        "required_tiers = [\"danish_guideline\", \"nordic_guideline\"]\n",
    );
    let mut cmd = s.command(&[PIPELINE]);
    cmd.arg("--config").arg(&path);
    let d = Daemon::spawn(cmd);
    let h = d.http();
    let id = write(&h, "Anafylaksi behandling", json!({}));
    let run = h.wait_status(&id, "FAILED", T);
    let err = run["error"].as_str().unwrap();
    assert!(
        err.contains("missing required tiers: nordic_guideline"),
        "{err}"
    );
    assert!(
        err.contains("danish_guideline: SRC"),
        "found per tier: {err}"
    );
    assert_eq!(run["attempts"], 1, "a gate failure is not retried");
    h.get(&format!("/api/runs/{id}/procedure"))
        .assert_error(404, "artifact_not_found");
    h.post_json(
        "/api/write",
        &json!({ "procedure": "x", "options": { "missing_tier_policy": "sometimes" } }),
    )
    .assert_error(400, "invalid_request");
}

#[test]
fn allow_with_ack_waits_survives_a_restart_and_the_acknowledged_gap_shows_in_procedure_and_manifest(
) {
    let s = Scratch::new();
    let path = write_config(
        s.dir.path(),
        "required_tiers = [\"danish_guideline\", \"nordic_guideline\"]\n",
    );
    let start = || {
        let mut cmd = s.command(&[PIPELINE]);
        cmd.arg("--config").arg(&path);
        Daemon::spawn(cmd)
    };
    let d = start();
    let h = d.http();
    let id = write(
        &h,
        "Anafylaksi behandling",
        json!({ "missing_tier_policy": "allow_with_ack" }),
    );
    let run = h.wait_status(&id, "NEEDS_ACK", T);
    assert_eq!(
        run["ack_required"]["missing_tiers"],
        json!(["nordic_guideline"])
    );
    assert!(run["ack_required"]["found"]["danish_guideline"].is_array());
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(T).code(), Some(0));

    let d = start();
    let h = d.http();
    assert_eq!(h.status(&id), "NEEDS_ACK");
    let r = h.post_json(
        &format!("/api/runs/{id}/ack"),
        &json!({ "note": "Ingen nordisk retningslinje; dansk vejledning dækker", "acknowledged_by": "Overlæge Jensen", "tiers": ["nordic_guideline"] }),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let run = h.wait_status(&id, "DONE", T);
    assert_eq!(
        run["result"]["acknowledged_gaps"],
        json!(["nordic_guideline"])
    );
    let md = h
        .get(&format!("/api/runs/{id}/procedure"))
        .body
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        md.contains("Kvitterede evidenshuller")
            && md.contains("Overlæge Jensen")
            && md.contains("nordic_guideline"),
        "{md}"
    );
    let manifest = h.get(&format!("/api/runs/{id}/manifest")).body;
    assert_eq!(
        manifest["acknowledgement"]["acknowledged_by"],
        "Overlæge Jensen"
    );
    let gates = h
        .events(&id)
        .into_iter()
        .filter(|e| e["kind"] == "evidence_gate")
        .count();
    assert_eq!(gates, 2, "asked once, passed once");
}

/// One part of a DOCX package, as text.
fn docx_part(docx: &[u8], name: &str) -> String {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(docx)).unwrap();
    let mut text = String::new();
    zip.by_name(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// The DOCX a department files: its author is the configured department, its created time is
/// the run's, its header names the title, the version (run id) and the date, and each reference
/// links to its source's address and names the pages cited.
#[test]
fn the_docx_names_the_department_the_version_and_the_date_and_links_its_references() {
    let s = Scratch::new();
    let author = "Akutafdelingen, Amager & Hvidovre Hospital";
    let d = s.start(&[PIPELINE, ("PROCEDUREWRITER_DOCUMENT_AUTHOR", author)]);
    let h = d.http();
    let id = write(&h, "Anafylaksi behandling", json!({}));
    let run = h.wait_status(&id, "DONE", T);
    let docx = std::fs::read(s.data_dir().join("runs").join(&id).join("procedure.docx")).unwrap();
    let core = docx_part(&docx, "docProps/core.xml");
    assert!(
        core.contains("<dc:creator>Akutafdelingen, Amager &amp; Hvidovre Hospital</dc:creator>"),
        "{core}"
    );
    // Created when the run was packaged: the same minute as it finished (UTC).
    let finished = run["finished_at"].as_str().unwrap();
    let created = core
        .split("<dcterms:created xsi:type=\"dcterms:W3CDTF\">")
        .nth(1)
        .and_then(|c| c.split('<').next())
        .unwrap();
    assert_eq!(
        created.get(..15),
        finished.get(..15),
        "{created} vs {finished}"
    );
    let date = format!(
        "{}.{}.{}",
        &finished[8..10],
        &finished[5..7],
        &finished[..4]
    );
    let headers: String = {
        let zip = zip::ZipArchive::new(std::io::Cursor::new(&docx)).unwrap();
        let names: Vec<String> = zip
            .file_names()
            .filter(|n| n.starts_with("word/header"))
            .map(str::to_string)
            .collect();
        names.iter().map(|n| docx_part(&docx, n)).collect()
    };
    assert!(headers.contains("Anafylaksi behandling"), "{headers}");
    assert!(
        headers.contains(&format!("Version {id} · {date}")),
        "{headers}"
    );
    // References: a hyperlink to each cited source's address, the pages cited beside it.
    let doc = docx_part(&docx, "word/document.xml");
    let rels = docx_part(&docx, "word/_rels/document.xml.rels");
    let sources = h.get(&format!("/api/runs/{id}/sources")).body;
    let urls: Vec<&str> = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["url"].as_str())
        .collect();
    assert!(!urls.is_empty());
    let md = h.get(&format!("/api/runs/{id}/procedure")).body;
    let md = md.as_str().unwrap();
    let mut linked = 0;
    for url in urls.iter().filter(|u| md.contains(*u)) {
        assert!(
            rels.contains(&format!("Target=\"{url}\" TargetMode=\"External\"")),
            "{url}: {rels}"
        );
        linked += 1;
    }
    assert!(linked >= 2, "{linked} links: {rels}");
    assert!(doc.matches("<w:hyperlink ").count() >= linked, "{doc}");
    // (The pages cited are in the references of a source with pages: tests/documents.rs.)
}

#[test]
fn a_document_author_that_names_no_one_is_refused_at_start() {
    let s = Scratch::new();
    let (code, stderr) = s.start_failing(&[("PROCEDUREWRITER_DOCUMENT_AUTHOR", "  ")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("document_author"), "{stderr}");
}
