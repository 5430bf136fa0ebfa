//! The evidence library over HTTP and the CLI: the demo library on a fresh data directory,
//! ingest in each format, deduplication, classification, search and bad input.

use crate::support::*;
use serde_json::json;
use std::process::Command;

#[test]
fn a_fresh_data_directory_starts_with_the_demo_library_across_tiers() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let page = h.get("/api/sources?limit=100");
    assert_eq!(page.status, 200);
    let sources = page.body["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 12);
    assert!(sources.iter().all(|s| s["demo"] == true));
    let tiers: std::collections::BTreeSet<&str> = sources
        .iter()
        .map(|s| s["tier"].as_str().unwrap())
        .collect();
    for t in [
        "danish_guideline",
        "international_guideline",
        "european_guideline",
        "systematic_review",
        "rct",
        "observational",
    ] {
        assert!(tiers.contains(t), "{t} missing from {tiers:?}");
    }
    let one = h.get("/api/sources/SRC0001");
    assert!(one.body["text"]
        .as_str()
        .unwrap()
        .contains("DEMONSTRATIONSMATERIALE"));
    assert_eq!(one.body["sha256"].as_str().unwrap().len(), 64);

    // A restart does not load it again.
    d.signal(libc::SIGTERM);
    d.wait_exit(std::time::Duration::from_secs(20));
    let d = s.start(&[]);
    assert_eq!(
        d.http().get("/api/sources?limit=100").body["sources"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
}

#[test]
fn sources_are_ingested_as_json_markdown_and_text_deduplicated_and_classified() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_LOAD_DEMO_LIBRARY", "false")]);
    let h = d.http();
    assert_eq!(
        h.get("/api/sources").body["sources"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let r = h.post_json(
        "/api/sources",
        &json!({
            "title": "Anaphylaxis guideline", "url": "https://www.nice.org.uk/guidance/x",
            "text": "Give intramuscular adrenaline first.", "year": 2021
        }),
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["source"]["id"], "SRC0001");
    assert_eq!(r.body["source"]["tier"], "international_guideline");
    assert_eq!(r.body["source"]["tier_reason"], "domain nice.org.uk");

    // The same text again, under another title: the stored source, not a new one.
    let r = h.post_json(
        "/api/sources",
        &json!({ "title": "Copy", "text": "Give intramuscular adrenaline first.\n" }),
    );
    assert_eq!(
        (
            r.status,
            r.body["created"].clone(),
            r.body["source"]["id"].clone()
        ),
        (200, json!(false), json!("SRC0001"))
    );

    let md = "+++\npublication_type = \"Randomized Controlled Trial\"\n+++\n# Drains compared\n\nSmall drains hurt less.\n";
    let r = h.post_raw(
        "/api/sources?filename=trial.md",
        Some("text/markdown"),
        md.as_bytes(),
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        (
            r.body["source"]["title"].clone(),
            r.body["source"]["tier"].clone()
        ),
        (json!("Drains compared"), json!("rct"))
    );

    let r = h.post_raw(
        "/api/sources?title=Lokal%20instruks&tier=danish_guideline",
        Some("text/plain"),
        b"Local notes on drains.",
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        (
            r.body["source"]["tier"].clone(),
            r.body["source"]["tier_reason"].clone()
        ),
        (json!("danish_guideline"), json!("explicit"))
    );

    let hits = h.get("/api/sources/search?q=adrenaline%20intramuscular");
    assert_eq!(hits.status, 200);
    assert_eq!(hits.body["hits"][0]["source"]["id"], "SRC0001");
    assert!(hits.body["hits"][0]["snippet"]
        .as_str()
        .unwrap()
        .contains("adrenaline"));
    // FTS syntax in user input is just text.
    assert_eq!(
        h.get("/api/sources/search?q=%22NEAR(%20title:x").status,
        200
    );

    h.post_json(
        "/api/sources",
        &json!({ "title": "x", "text": "y", "tier": "gold" }),
    )
    .assert_error(400, "invalid_request");
    h.post_json("/api/sources", &json!({ "title": "", "text": "y" }))
        .assert_error(400, "invalid_request");
    h.post_json("/api/sources", &json!({ "title": "x" }))
        .assert_error(400, "malformed_json");
    let r = h.post_raw(
        "/api/sources?url=https://www.ersnet.org/x",
        Some("text/html"),
        b"<html><body><h1>Pleural statement</h1><p>Drains go in the safe triangle.</p></body></html>",
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["source"]["title"], "Pleural statement");
    assert_eq!(r.body["source"]["tier"], "european_guideline");
    // A PDF cut short is unreadable (PDF is read since passages came in); an image is not a
    // type the library takes.
    h.post_raw("/api/sources", Some("application/pdf"), b"%PDF-1.4")
        .assert_error(422, "document_unreadable");
    h.post_raw("/api/sources", Some("image/png"), b"\x89PNG")
        .assert_error(415, "unsupported_media_type");
    h.post_raw("/api/sources", Some("text/plain"), b"\xff\xfe")
        .assert_error(400, "invalid_request");
    h.get("/api/sources/SRC9999")
        .assert_error(404, "source_not_found");
    h.get("/api/sources/..%2Fetc")
        .assert_error(404, "source_not_found");
    h.get("/api/sources/search?q=")
        .assert_error(400, "invalid_query");
    assert_eq!(
        h.get("/api/sources").body["sources"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn the_ingest_command_adds_files_and_reports_duplicates() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_LOAD_DEMO_LIBRARY", "false")]);
    let a = s.dir.path().join("a.md");
    let b = s.dir.path().join("b.txt");
    let c = s.dir.path().join("c.pdf");
    std::fs::write(
        &a,
        "+++\nurl = \"https://www.sst.dk/x\"\n+++\n# Vejledning om dræn\n\nTekst.\n",
    )
    .unwrap();
    std::fs::write(&b, "Plain notes.").unwrap();
    std::fs::write(&c, "%PDF").unwrap();
    let out = Command::new(BIN)
        .args(["--url", &d.url, "ingest"])
        .args([&a, &b])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("SRC0001  added") && stdout.contains("danish_guideline"),
        "{stdout}"
    );
    assert!(
        stdout.contains("SRC0002  added") && stdout.contains("library_document"),
        "{stdout}"
    );

    let out = Command::new(BIN)
        .args(["--url", &d.url, "ingest"])
        .args([&a, &c])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the .pdf is refused");
    assert!(String::from_utf8_lossy(&out.stdout).contains("SRC0001  existing"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("c.pdf"));
}
