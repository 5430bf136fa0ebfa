//! Retrieval through the real daemon: the concept model (a population qualifies, never
//! selects), its explanations in the `retrieved` event and `GET /api/runs/{id}/sources`, and
//! the department's lexicon (validated at start, re-read on SIGHUP), and a procedure the
//! lexicon does not name read through its vocabulary in both languages.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const PIPELINE: (&str, &str) = ("PROCEDUREWRITER_JOB_RUNNER", "pipeline");
const NO_DEMO: (&str, &str) = ("PROCEDUREWRITER_LOAD_DEMO_LIBRARY", "false");

fn add(h: &Http, title: &str, url: &str, text: &str) -> String {
    let r = h.post_json(
        "/api/sources",
        &json!({ "title": title, "url": url, "text": text }),
    );
    assert_eq!(r.status, 201, "{r:?}");
    r.body["source"]["id"].as_str().unwrap().to_string()
}

fn write(h: &Http, procedure: &str) -> String {
    let r = h.post_json(
        "/api/write",
        &json!({ "procedure": procedure, "options": { "missing_tier_policy": "allow_with_ack" } }),
    );
    assert_eq!(r.status, 202, "{r:?}");
    r.body["run_id"].as_str().unwrap().to_string()
}

/// The `retrieved` event of a run, once it exists.
fn retrieved(h: &Http, id: &str) -> Value {
    wait_for("the retrieved event", T, || {
        h.events(id)
            .into_iter()
            .find(|e| e["kind"] == "retrieved")
            .map(|e| e["details"].clone())
    })
}

/// The first reload that put a lexicon in force, once recorded.
fn lexicon_reload(h: &Http) -> Value {
    wait_for("the reload to be recorded", T, || {
        let r = h.get("/api/reloads");
        r.body["reloads"].as_array().and_then(|a| {
            a.iter()
                .find(|x| x["applied"].get("lexicon").is_some())
                .cloned()
        })
    })
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

const ADULT: &str = "# Anafylaksi hos voksne\n\n## Behandling\n\nVoksne får adrenalin 0,5 mg intramuskulært i låret ved anafylaksi. Dosis gentages efter 5 minutter ved manglende effekt.\n\n## Observation\n\nVoksne observeres i mindst 6 timer efter anafylaksi.";
const CHILD: &str = "# Anafylaksi hos børn\n\n## Behandling\n\nBørn får adrenalin 0,01 mg/kg intramuskulært ved anafylaksi, højst 0,5 mg. Dosis gentages efter 5 minutter.\n\n## Observation\n\nBørn observeres på børneafdelingen efter anafylaksi.";
const SEIZURE: &str = "# Feberkramper hos børn\n\nBørn med feberkramper over 5 minutter får midazolam bukkalt 0,3 mg/kg. Børn observeres og forældre informeres.";
const LP: &str = "# Lumbalpunktur hos børn\n\n## Udførelse\n\nBarnet lejres i sideleje med bøjet ryg, og lumbalpunkturen udføres i interspatiet L4-L5 med en atraumatisk spinalkanyle.\n\n## Komplikationer\n\nPostpunktur hovedpine forekommer sjældnere hos børn end hos voksne.";

#[test]
fn a_population_qualifies_a_procedure_never_selects_and_every_choice_is_explained() {
    let s = Scratch::new();
    let d = s.start(&[PIPELINE, NO_DEMO]);
    let h = d.http();
    let adult = add(
        &h,
        "Anafylaksi hos voksne: instruks",
        "https://www.regionh.dk/a",
        ADULT,
    );
    let child = add(
        &h,
        "Anafylaksi hos børn: instruks",
        "https://www.regionh.dk/b",
        CHILD,
    );
    let seizure = add(
        &h,
        "Feberkramper hos børn",
        "https://www.regionh.dk/c",
        SEIZURE,
    );
    let lp = add(&h, "Lumbalpunktur hos børn", "https://www.regionh.dk/d", LP);

    // An adult procedure: the adult source; the children's source is left out because an
    // adult one exists, and says so.
    let id = write(&h, "Anafylaksi hos voksne");
    let r = retrieved(&h, &id);
    assert_eq!(ids(&r["sources"]), std::slice::from_ref(&adult), "{r}");
    assert_eq!(r["concept"]["population"][0], "adults", "{r}");
    let dropped = r["dropped"].as_array().unwrap();
    let why_child = dropped
        .iter()
        .find(|x| x["id"] == child.as_str())
        .unwrap_or_else(|| panic!("the children's source is explained: {r}"));
    assert!(
        why_child["reason"].as_str().unwrap().contains("børn"),
        "{why_child}"
    );
    let kept = &r["sources"][0];
    assert!(kept["reason"].as_str().unwrap().contains("title"), "{kept}");
    assert!(!kept["matched"].as_array().unwrap().is_empty(), "{kept}");
    assert!(!kept["passages"].as_array().unwrap().is_empty(), "{kept}");
    assert!(r["elapsed_ms"].as_u64().is_some(), "{r}");

    // "børn" alone never pulls in the children's anaphylaxis or seizure sources for a lumbar
    // puncture; a synonym (lumbar puncture, LP) finds the Danish source.
    for title in [
        "Lumbalpunktur hos børn",
        "Lumbar puncture in children",
        "LP hos børn",
    ] {
        let id = write(&h, title);
        let r = retrieved(&h, &id);
        assert_eq!(
            ids(&r["sources"]),
            std::slice::from_ref(&lp),
            "{title}: {r}"
        );
    }
    let _ = seizure;

    // An adult procedure with only a children's source for it uses that and says why.
    let id = write(&h, "Lumbalpunktur hos voksne");
    let r = retrieved(&h, &id);
    assert_eq!(ids(&r["sources"]), std::slice::from_ref(&lp), "{r}");
    let reason = r["sources"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("no source about voksne"), "{reason}");
    // Used whole: its passages (every one of them about children) are given to the writer.
    assert!(
        !r["sources"][0]["passages"].as_array().unwrap().is_empty(),
        "{r}"
    );

    // The finished run's sources carry the same explanation.
    let id = write(&h, "Anafylaksi hos voksne");
    let run = wait_for("the run to stop", T, || {
        let run = h.run(&id);
        (run["status"] != "QUEUED" && run["status"] != "RUNNING").then_some(run)
    });
    if run["status"] == "NEEDS_ACK" {
        let r = h.post_json(
            &format!("/api/runs/{id}/ack"),
            &json!({ "note": "Kun regional instruks", "acknowledged_by": "Overlæge Test",
                     "tiers": run["ack_required"]["missing_tiers"] }),
        );
        assert_eq!(r.status, 200, "{r:?}");
    }
    let run = wait_for("the run to end", T, || {
        let run = h.run(&id);
        (run["status"] == "DONE" || run["status"] == "FAILED").then_some(run)
    });
    assert_eq!(run["status"], "DONE", "{run}");
    let r = h.get(&format!("/api/runs/{id}/sources"));
    assert_eq!(r.status, 200, "{r:?}");
    let first = &r.body["sources"][0];
    assert_eq!(first["id"], adult.as_str());
    assert!(first["retrieval"]["reason"].is_string(), "{first}");
}

#[test]
fn a_department_lexicon_is_validated_at_start_and_reread_on_sighup() {
    let s = Scratch::new();
    let lexicon = s.data_dir().with_file_name("lexicon.toml");
    std::fs::create_dir_all(lexicon.parent().unwrap()).unwrap();
    // The department's file: the shipped lexicon without its vocabulary word for
    // resuscitation, so that "Genoplivning" is a word it does not know.
    let shipped: String =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/lexicon.toml"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("genoplivning = "))
            .map(|l| format!("{l}\n"))
            .collect();
    assert!(!shipped.contains("genoplivning = "));
    let path = lexicon.to_str().unwrap().to_string();

    // A broken file stops start-up and says where and what.
    std::fs::write(&lexicon, format!("{shipped}\n[procedures]\nbroken = []\n")).unwrap();
    let (code, err) = s.start_failing(&[NO_DEMO, ("PROCEDUREWRITER_LEXICON_FILE", &path)]);
    assert_ne!(code, 0);
    assert!(err.contains("lexicon_file"), "{err}");

    // A lexicon that does not know "Genoplivning": the English resuscitation guideline is
    // not found.
    std::fs::write(&lexicon, &shipped).unwrap();
    let d = s.start(&[PIPELINE, NO_DEMO, ("PROCEDUREWRITER_LEXICON_FILE", &path)]);
    let h = d.http();
    let cpr = add(
        &h,
        "Cardiopulmonary resuscitation in adults",
        "https://www.nice.org.uk/cpr",
        "# Cardiopulmonary resuscitation\n\nStart chest compressions at 100 to 120 per minute. Give adrenaline 1 mg intravenously every 3 to 5 minutes during cardiopulmonary resuscitation.",
    );
    let id = write(&h, "Genoplivning");
    assert!(ids(&retrieved(&h, &id)["sources"]).is_empty());

    // The department adds the procedure's synonym group and reloads: the next run finds it.
    let extended = shipped.replacen(
        "[procedures]\n",
        "[procedures]\ngenoplivning = [\"genoplivning\", \"hjerte-lunge-redning\", \"cardiopulmonary resuscitation\", \"cpr\"]\n",
        1,
    );
    std::fs::write(&lexicon, extended).unwrap();
    d.signal(libc::SIGHUP);
    let reload = lexicon_reload(&h);
    assert!(reload["error"].is_null(), "{reload}");
    let id = write(&h, "Genoplivning");
    assert_eq!(
        ids(&retrieved(&h, &id)["sources"]),
        [cpr],
        "after the reload"
    );

    // A broken edit is refused on reload and the lexicon in force stays.
    std::fs::write(&lexicon, "[procedures\n").unwrap();
    d.signal(libc::SIGHUP);
    wait_for("the failed reload in /health", T, || {
        let r = h.get("/health");
        r.body["last_reload_error"]
            .as_str()
            .filter(|e| e.contains("lexicon_file"))
            .map(str::to_string)
    });
    let id = write(&h, "Genoplivning");
    assert_eq!(
        ids(&retrieved(&h, &id)["sources"]).len(),
        1,
        "still in force"
    );
}

/// The passages' populations are stored with them; a department that adds a population word
/// and reloads gets retrieval by the new word for the passages already in the library.
#[test]
fn new_population_words_apply_to_stored_passages_after_a_reload() {
    let s = Scratch::new();
    let lexicon = s.data_dir().with_file_name("lexicon.toml");
    std::fs::create_dir_all(lexicon.parent().unwrap()).unwrap();
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/lexicon.toml"))
            .unwrap();
    assert!(!shipped.contains("\"seniorer\""));
    std::fs::write(&lexicon, &shipped).unwrap();
    let path = lexicon.to_str().unwrap().to_string();
    let d = s.start(&[PIPELINE, NO_DEMO, ("PROCEDUREWRITER_LEXICON_FILE", &path)]);
    let h = d.http();
    let child = add(
        &h,
        "Anafylaksi hos børn: instruks",
        "https://www.regionh.dk/b",
        CHILD,
    );
    // No population in its title; its passages speak of "seniorer", which the shipped
    // lexicon does not know.
    let seniors = add(
        &h,
        "Anafylaksi: akut behandling",
        "https://www.regionh.dk/s",
        "# Anafylaksi\n\n## Behandling\n\nSeniorer med anafylaksi får adrenalin 0,5 mg intramuskulært i låret.\n\n## Observation\n\nSeniorer observeres i mindst 6 timer efter anafylaksi.",
    );
    let id = write(&h, "Anafylaksi hos børn");
    let r = retrieved(&h, &id);
    let got = ids(&r["sources"]);
    assert!(got.contains(&child) && got.contains(&seniors), "{r}");

    // "seniorer" becomes an adults' word: the same library, reloaded, leaves the seniors'
    // guideline out of a children's procedure, and says why.
    let extended = shipped.replacen(
        "voksne = [\"voksen\", ",
        "voksne = [\"seniorer\", \"voksen\", ",
        1,
    );
    assert_ne!(extended, shipped);
    std::fs::write(&lexicon, extended).unwrap();
    d.signal(libc::SIGHUP);
    let reload = lexicon_reload(&h);
    assert!(reload["error"].is_null(), "{reload}");
    assert!(
        reload["applied"].get("passage_features").is_some(),
        "the stored features are recomputed: {reload}"
    );
    let id = write(&h, "Anafylaksi hos børn");
    let r = retrieved(&h, &id);
    assert_eq!(ids(&r["sources"]), std::slice::from_ref(&child), "{r}");
    let why = r["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == seniors.as_str())
        .unwrap_or_else(|| panic!("the seniors' guideline is explained: {r}"))
        .clone();
    assert!(why["reason"].as_str().unwrap().contains("voksne"), "{why}");
}

#[test]
fn a_procedure_the_lexicon_does_not_name_finds_its_evidence_in_the_other_language() {
    let s = Scratch::new();
    let d = s.start(&[PIPELINE, NO_DEMO]);
    let h = d.http();
    let foreign_body = add(
        &h,
        "Removal of foreign bodies from the ear canal in the emergency department",
        "https://www.nice.org.uk/ear-foreign-body",
        "# Removal of foreign bodies from the ear\n\n## Technique\n\nA foreign body in the ear canal is removed under direct vision with a hook or by suction. Live insects are drowned with oil before removal.\n\n## Complications\n\nCanal lacerations and perforation of the tympanic membrane are the main risks of removal.",
    );
    let wax = add(
        &h,
        "Ear wax: irrigation and microsuction",
        "https://www.nice.org.uk/ear-wax",
        "# Ear wax\n\nEar wax is softened with olive oil drops for a week before irrigation of the ear canal. Irrigation is avoided after ear surgery or with a perforated tympanic membrane.",
    );
    let airway = add(
        &h,
        "Choking: foreign body airway obstruction",
        "https://www.resus.org.uk/choking",
        "# Foreign body airway obstruction\n\nA conscious choking adult is given up to five back blows, then up to five abdominal thrusts. The foreign body is removed from the mouth only if it is visible.",
    );
    // A Danish title the lexicon has no procedure for: each word is read through the
    // vocabulary (fjernelse = removal, fremmedlegeme = foreign body, øre = ear).
    let id = write(&h, "Fjernelse af fremmedlegeme i øret");
    let r = retrieved(&h, &id);
    assert_eq!(
        ids(&r["sources"]),
        std::slice::from_ref(&foreign_body),
        "{r}"
    );
    let concept = &r["concept"];
    assert_eq!(concept["known_procedure"], false, "{r}");
    // The ear wax guideline carries the ear but no foreign body; the choking guideline a
    // foreign body but no ear: neither is used.
    assert!(!ids(&r["sources"]).contains(&wax), "{r}");
    assert!(!ids(&r["sources"]).contains(&airway), "{r}");
}
