//! Real documents in: PDFs and Word files uploaded over HTTP become located passages, a
//! recommendation deep inside a long guideline is retrieved, shown to the model, cited, and
//! the reference names its page.

use crate::support::fake_llm::{FakeLlm, Flavor, Reply};
use crate::support::*;
use procedurewriter_pipeline::library::{MEDIA_DOCX, MEDIA_PDF};
use procedurewriter_pipeline::sample_pdf::{build, guideline, Style};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MARKER: &str = "Ved anafylaksi hos voksne gives adrenalin 0,5 mg intramuskulært i låret, og dosis gentages efter fem minutter.";

fn upload(h: &Http, media: &str, bytes: &[u8], query: &str) -> Resp {
    h.post_raw(&format!("/api/sources?{query}"), Some(media), bytes)
}

#[test]
fn a_recommendation_on_page_40_is_retrieved_shown_to_the_model_cited_and_referenced_by_page() {
    let s = Scratch::new();
    let config = write_config(
        s.dir.path(),
        "required_tiers = [\"danish_guideline\"]\nload_demo_library = false\n",
    );
    // The fake model answers with the recommendation it was shown, and an indication drawn from
    // it, each cited to its source (a sentence the source does not say would block the run); it
    // records whether the prompt carried the recommendation.
    let seen = Arc::new(Mutex::new(Vec::<bool>::new()));
    let record = Arc::clone(&seen);
    let fake = FakeLlm::start(
        Flavor::OpenAi,
        Reply::By(Arc::new(move |body: &Value| {
            let user = body["messages"][1]["content"].as_str().unwrap_or_default();
            record.lock().unwrap().push(user.contains(MARKER));
            let id = user
                .split("<source id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("SRC9999")
                .to_string();
            Reply::Markdown(format!(
                "## Indikationer\n\nAnafylaksi hos voksne behandles med adrenalin intramuskulært i låret. [S:{id}]\n\n## Procedure (trin-for-trin)\n\n1. {MARKER} [S:{id}]\n"
            ))
        })),
    );
    let env = fake.env("gpt-4o-mini");
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.push(("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "off"));
    let mut cmd = s.command(&pairs);
    cmd.arg("--config").arg(&config);
    let d = Daemon::spawn(cmd);
    let h = d.http();

    let pdf = build(&guideline(60, MARKER, 40), &Style::default());
    let r = upload(&h, MEDIA_PDF, &pdf, "tier=danish_guideline");
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["source"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["source"]["pages"], 60);
    assert_eq!(r.body["source"]["media_type"], MEDIA_PDF);
    assert_eq!(r.body["source"]["title"], "Anafylaksi – vejledning");

    // The source lists its passages with their pages; the recommendation is on page 40.
    let src = h.get(&format!("/api/sources/{id}")).body;
    let passages = src["passages"].as_array().unwrap();
    // Passages of bounded size across all 60 pages, not the first page.
    assert!(passages.len() >= 20, "{} passages", passages.len());
    assert!(passages
        .iter()
        .all(|p| p["text"].as_str().unwrap().chars().count() <= 2_000));
    assert_eq!(passages.last().unwrap()["page_end"], 60);
    let marker: Vec<&Value> = passages
        .iter()
        .filter(|p| p["text"].as_str().unwrap().contains(MARKER))
        .collect();
    assert_eq!(marker.len(), 1);
    assert_eq!(marker[0]["page_start"], 40);
    // The original is kept and served back, byte for byte.
    let original = h.get(&format!("/api/sources/{id}/original"));
    assert_eq!(original.status, 200);
    assert_eq!(original.header("content-type"), Some(MEDIA_PDF));
    assert!(original
        .header("content-disposition")
        .is_some_and(|v| v.contains(&format!("{id}.pdf"))));

    let run = h.post_json(
        "/api/write",
        &json!({ "procedure": "Anafylaksi hos voksne" }),
    );
    assert_eq!(run.status, 202, "{run:?}");
    let run_id = run.body["run_id"].as_str().unwrap().to_string();
    let done = h.wait_status(&run_id, "DONE", Duration::from_secs(60));
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[true],
        "the prompt carried page 40's text"
    );
    let md = h.get(&format!("/api/runs/{run_id}/procedure")).body;
    let md = md.as_str().unwrap();
    assert!(md.contains(MARKER), "{md}");
    let reference = md
        .lines()
        .find(|l| l.starts_with(&format!("- [S:{id}]")))
        .unwrap_or_else(|| panic!("no reference to {id}:\n{md}"));
    assert!(reference.contains("Citeret: s. 40"), "{reference}");
    // So does the DOCX's reference list, read back by the library's own Word reader.
    let docx = std::fs::read(
        s.data_dir()
            .join("runs")
            .join(&run_id)
            .join("procedure.docx"),
    )
    .unwrap();
    let blocks = procedurewriter_pipeline::docx_read::read(&docx).unwrap();
    assert!(
        blocks
            .iter()
            .any(|b| b.text.starts_with(&format!("[S:{id}]")) && b.text.contains("Citeret: s. 40")),
        "{blocks:?}"
    );
    // The evidence report binds the sentence to the passage on page 40.
    let report = h.get(&format!("/api/runs/{run_id}/evidence")).body;
    let sentence = report["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["text"].as_str().unwrap_or_default().contains("0,5 mg"))
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(sentence["passages"][0]["pages"], "s. 40", "{sentence:#}");
    // The manifest names the original's hash.
    let manifest = h.get(&format!("/api/runs/{run_id}/manifest")).body;
    let entry = &manifest["sources"][0];
    assert_eq!(entry["original_sha256"], src["original_sha256"]);
    assert!(done["result"]["sources"]
        .as_array()
        .unwrap()
        .contains(&json!(id)));
}

#[test]
fn word_files_become_passages_and_bad_documents_are_refused_with_what_to_do() {
    use docx_rs::{Docx, Paragraph, Run, Style as DocxStyle, StyleType};
    let s = Scratch::new();
    let d = s.start(&[
        ("PROCEDUREWRITER_LOAD_DEMO_LIBRARY", "false"),
        ("PROCEDUREWRITER_MAX_DOCUMENT_MB", "1"),
    ]);
    let h = d.http();
    let doc = Docx::new()
        .add_style(DocxStyle::new("Heading1", StyleType::Paragraph).name("heading 1"))
        .add_paragraph(
            Paragraph::new()
                .add_run(Run::new().add_text("Pleuradræn – lokal instruks"))
                .style("Heading1"),
        )
        .add_paragraph(Paragraph::new().add_run(
            Run::new().add_text("Drænet anlægges i den sikre trekant under ultralydsvejledning."),
        ))
        // A citation's superscript after a dose, and a footnote that states a dose: Word keeps
        // the one as a run property and the other in a part of its own.
        .add_paragraph({
            let mut mark = Run::new().add_text("3");
            mark.run_property = mark
                .run_property
                .vert_align(docx_rs::VertAlignType::SuperScript);
            Paragraph::new()
                .add_run(Run::new().add_text("Lokalbedøvelse: lidocain 10 mg/ml, højst 20"))
                .add_run(mark)
                .add_run(Run::new().add_text(" ml."))
                .add_run(Run::new().add_footnote_reference(
                    docx_rs::Footnote::new().add_content(Paragraph::new().add_run(
                        Run::new().add_text("Over 65 år eller under 50 kg: højst 10 ml."),
                    )),
                ))
        });
    let mut bytes = std::io::Cursor::new(Vec::new());
    doc.build().pack(&mut bytes).unwrap();
    let r = upload(&h, MEDIA_DOCX, &bytes.into_inner(), "tier=danish_guideline");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["source"]["title"], "Pleuradræn – lokal instruks");
    let id = r.body["source"]["id"].as_str().unwrap();
    let src = h.get(&format!("/api/sources/{id}")).body;
    assert_eq!(src["passages"][0]["heading"], "Pleuradræn – lokal instruks");
    let text = src["passages"][0]["text"].as_str().unwrap();
    assert!(text.contains("sikre trekant"), "{text}");
    // The mark is set apart from the dose (not "203 ml"), and the note follows its paragraph.
    assert!(
        text.contains("højst 20 ³ ml.\n¹ Over 65 år eller under 50 kg: højst 10 ml."),
        "{text}"
    );

    // Each refusal says what to do, and stores nothing.
    let pages = guideline(2, MARKER, 1);
    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        (
            MEDIA_PDF,
            build(
                &pages,
                &Style {
                    encrypted: true,
                    ..Style::default()
                },
            ),
            422,
            "document_unreadable",
            "password",
        ),
        (
            MEDIA_PDF,
            build(
                &pages,
                &Style {
                    no_text: true,
                    ..Style::default()
                },
            ),
            422,
            "document_unreadable",
            "run OCR on it first",
        ),
        (
            MEDIA_PDF,
            build(&pages, &Style::default())[..400].to_vec(),
            422,
            "document_unreadable",
            "damaged or cut short",
        ),
        (
            MEDIA_PDF,
            b"PK\x03\x04 a zip sent as a PDF".to_vec(),
            415,
            "media_type_mismatch",
            "not a PDF",
        ),
        (
            MEDIA_DOCX,
            build(&pages, &Style::default()),
            415,
            "media_type_mismatch",
            "not a Word document",
        ),
    ];
    for (media, body, status, code, says) in cases {
        let r = upload(&h, media, &body, "");
        r.assert_error(status, code);
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{media} {code}: {msg}");
    }
    // Over max_document_mb (1 here): refused from its Content-Length, before the body is read.
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(d.addr()).unwrap();
    write!(
        tcp,
        "POST /api/sources HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {MEDIA_PDF}\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    )
    .unwrap();
    let mut answer = String::new();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = tcp.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("max_document_mb"), "{answer}");
    assert_eq!(
        h.get("/api/sources").body["sources"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing of the refused files was stored"
    );
    assert!(
        !s.data_dir().join("originals").read_dir().unwrap().any(|e| {
            let p = e.unwrap().path();
            p.extension().is_some_and(|x| x == "pdf")
        })
    );
}
