//! Retrieval benchmark (issue 13): how well the real daemon finds the right evidence for a
//! procedure title, measured black-box through the HTTP API against the labelled sets in
//! `benches/retrieval_data/` (see its README).
//!
//!     cargo bench -p procedurewriter --bench retrieval                      # all five sets
//!     cargo bench -p procedurewriter --bench retrieval -- --set <set> [--quick]   (a set is a directory of benches/retrieval_data with a labels.toml)
//!
//! For each set it starts the daemon on a scratch data directory (the procedure pipeline with
//! the offline writer, no demo library, no network), ingests every document with
//! `POST /api/sources` (Markdown with TOML front matter), and writes every labelled title with
//! `POST /api/write`. Runs choose `missing_tier_policy = "allow_with_ack"`, and the bench
//! acknowledges any evidence gap through `POST /api/runs/{id}/ack`, so the evidence gate never
//! hides what retrieval found. When a run has ended it reads the retrieved sources in rank
//! order (`GET /api/runs/{id}/sources`, or the last `retrieved` event when the run has no
//! result, e.g. a procedure that was not releasable) and the procedure's text
//! (`GET /api/runs/{id}/procedure`), and maps source ids back to document ids.
//!
//! It prints per title and overall (micro and macro) precision, recall, nDCG@5 and nDCG@10,
//! the number of procedures whose text cites an off-topic source (and which), and the
//! retrieval latency. Labels: `relevant` (gain 2), `partial` (gain 1; neither for nor against
//! precision, not needed for recall), anything else off-topic. It asserts only that every run
//! ended: the targets (precision and recall ≥ 0.9, no off-topic citation) are reported, not
//! enforced. `--quick` runs the same work (the sets are small); it exists so CI can pass it.
//!
//! Only the HTTP API is used, so the benchmark does not depend on how retrieval works inside.

#[path = "support/daemon.rs"]
mod daemon;

use hyper::Method;
use procedurewriter::client::{Client, ClientError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one set's runs may take in all before the bench gives up (the offline writer
/// finishes a run in well under a second; this only bounds a stuck daemon).
const RUNS_DEADLINE: Duration = Duration::from_secs(600);
/// How often a run's status is read while waiting for it to end.
const POLL: Duration = Duration::from_millis(25);

/// One labelled title of `labels.toml`.
#[derive(Debug, Deserialize)]
struct Title {
    title: String,
    #[serde(default)]
    relevant: Vec<String>,
    #[serde(default)]
    partial: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    note: String,
}

#[derive(Debug, Deserialize)]
struct Labels {
    title: Vec<Title>,
}

/// What one run gave for one title.
struct Outcome {
    title: String,
    status: String,
    /// The error of a run that did not end DONE (first line).
    error: Option<String>,
    /// Retrieved document ids in rank order (`?SRCnnnn` for a source no document maps to).
    retrieved: Vec<String>,
    /// Document ids the procedure's text cites.
    cited: BTreeSet<String>,
    /// Retrieval latency in ms, and where the figure came from.
    latency: Option<(f64, &'static str)>,
    /// `GET /api/runs/{id}/sources` and the last `retrieved` event list different sources.
    disagree: bool,
    /// Why retrieval left a candidate out (document id → the daemon's reason), from the
    /// `retrieved` event's `dropped` list.
    dropped: HashMap<String, String>,
    /// Why retrieval kept a source (document id → the daemon's reason).
    kept: HashMap<String, String>,
}

/// Per-title figures.
struct Scores {
    hits: usize,
    judged: usize,
    relevant: usize,
    precision: Option<f64>,
    recall: Option<f64>,
    ndcg5: f64,
    ndcg10: f64,
    off_retrieved: Vec<String>,
    off_cited: Vec<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut set: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        if let Some(v) = args[i].strip_prefix("--set=") {
            set = Some(v.to_string());
        } else if args[i] == "--set" {
            set = args.get(i + 1).cloned();
            i += 1;
        }
        i += 1;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/retrieval_data");
    // Every directory with a labels.toml is a set; "all" (the default) runs them in name order.
    let mut known: Vec<String> = std::fs::read_dir(&root)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().join("labels.toml").is_file())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    known.sort();
    let sets: Vec<String> = match set.as_deref() {
        Some("both") => vec!["dev".into(), "heldout".into()],
        None | Some("all") => known.clone(),
        Some(name) if known.iter().any(|k| k == name) => vec![name.to_string()],
        Some(other) => {
            eprintln!(
                "--set must be one of {}, both (dev and heldout) or all, not {other:?}",
                known.join(", ")
            );
            std::process::exit(2);
        }
    };
    println!("procedurewriter retrieval benchmark (issue 13): the real daemon, offline writer, labelled sets in daemon/benches/retrieval_data");
    println!(
        "reproduce: cargo bench -p procedurewriter --bench retrieval --{}{}\n",
        set.as_deref()
            .map(|s| format!(" --set {s}"))
            .unwrap_or_default(),
        if quick { " --quick" } else { "" }
    );
    let mut unended = Vec::new();
    for name in &sets {
        unended.extend(measure(&root.join(name), name));
    }
    assert!(
        unended.is_empty(),
        "runs that did not end within {RUNS_DEADLINE:?}: {unended:?}"
    );
}

/// Runs one set and prints its figures; returns the titles whose runs did not end.
fn measure(dir: &Path, name: &str) -> Vec<String> {
    let labels = read_labels(&dir.join("labels.toml"));
    let docs = read_docs(&dir.join("docs"));
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let data = scratch.path().join("data");
    let key = daemon::new_key();
    let (proc, _) = daemon::Proc::start(
        &data,
        &key,
        &[
            ("PROCEDUREWRITER_JOB_RUNNER", "pipeline"),
            ("PROCEDUREWRITER_LLM_PROVIDER", "offline"),
            ("PROCEDUREWRITER_LOAD_DEMO_LIBRARY", "false"),
        ],
    );
    let client = Client::new(&format!("http://{}", proc.url_addr)).expect("the daemon's URL");
    let (outcomes, unended) = daemon::block_on(async {
        let by_source = ingest(&client, &docs).await;
        run_titles(&client, &labels, &by_source).await
    });
    drop(proc);
    report(name, &labels, &outcomes, docs.len());
    unended
}

fn read_labels(path: &Path) -> Vec<Title> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let labels: Labels = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .unwrap_or_else(|e| panic!("{} is not valid: {e}", path.display()));
    labels.title
}

/// The set's documents, `(id, Markdown)`, in file-name order.
fn read_docs(dir: &Path) -> Vec<(String, String)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let id = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (id, text)
        })
        .collect()
}

/// Sends every document; returns source id → document id.
async fn ingest(client: &Client, docs: &[(String, String)]) -> HashMap<String, String> {
    let mut by_source = HashMap::new();
    for (id, text) in docs {
        let added = client
            .call_raw(
                Method::POST,
                "/api/sources",
                "text/markdown",
                bytes::Bytes::from(text.clone()),
            )
            .await
            .unwrap_or_else(|e| panic!("POST /api/sources refused {id}: {}", show(&e)));
        let source = added["source"]["id"].as_str().unwrap_or_else(|| {
            panic!("POST /api/sources for {id} answered without an id: {added}")
        });
        if let Some(prev) = by_source.insert(source.to_string(), id.clone()) {
            panic!("{id} and {prev} were stored as the same source {source}");
        }
    }
    by_source
}

fn show(e: &ClientError) -> String {
    match e {
        ClientError::Api { status, body } => format!("{status}: {body}"),
        other => other.to_string(),
    }
}

/// Writes every title (all enqueued at once; the daemon runs them on its workers), waits for
/// each run to end, acknowledging evidence gaps on the way, and reads what it retrieved and
/// cited. Returns the outcomes and the titles whose runs did not end in time.
async fn run_titles(
    client: &Client,
    labels: &[Title],
    by_source: &HashMap<String, String>,
) -> (Vec<Outcome>, Vec<String>) {
    let mut runs = Vec::new();
    for t in labels {
        let body = json!({
            "procedure": t.title,
            "options": { "missing_tier_policy": "allow_with_ack" },
        });
        let run = client
            .call(Method::POST, "/api/write", Some(&body), &[])
            .await
            .unwrap_or_else(|e| panic!("POST /api/write refused {:?}: {}", t.title, show(&e)));
        let id = run["run_id"]
            .as_str()
            .unwrap_or_else(|| panic!("POST /api/write answered without run_id: {run}"))
            .to_string();
        runs.push((t.title.clone(), id));
    }
    let deadline = Instant::now() + RUNS_DEADLINE;
    let mut ended: BTreeMap<usize, Value> = BTreeMap::new();
    let mut acked: BTreeSet<usize> = BTreeSet::new();
    while ended.len() < runs.len() && Instant::now() < deadline {
        for (i, (_, id)) in runs.iter().enumerate() {
            if ended.contains_key(&i) {
                continue;
            }
            let run = match client
                .call(Method::GET, &format!("/api/runs/{id}"), None, &[])
                .await
            {
                Ok(r) => r,
                Err(e) => panic!("GET /api/runs/{id}: {}", show(&e)),
            };
            match run["status"].as_str().unwrap_or("") {
                "DONE" | "FAILED" | "CANCELLED" => {
                    ended.insert(i, run);
                }
                "NEEDS_ACK" if !acked.contains(&i) => {
                    let tiers = run["ack_required"]["missing_tiers"].clone();
                    let body = json!({
                        "note": "retrieval benchmark: measures what retrieval finds, not the evidence gate",
                        "acknowledged_by": "retrieval benchmark",
                        "tiers": tiers,
                    });
                    client
                        .call(
                            Method::POST,
                            &format!("/api/runs/{id}/ack"),
                            Some(&body),
                            &[],
                        )
                        .await
                        .unwrap_or_else(|e| panic!("POST /api/runs/{id}/ack: {}", show(&e)));
                    acked.insert(i);
                }
                _ => {}
            }
        }
        if ended.len() < runs.len() {
            tokio::time::sleep(POLL).await;
        }
    }
    let mut outcomes = Vec::new();
    let mut unended = Vec::new();
    for (i, (title, id)) in runs.iter().enumerate() {
        let Some(run) = ended.get(&i) else {
            unended.push(title.clone());
            continue;
        };
        outcomes.push(read_outcome(client, title, id, run, by_source).await);
    }
    (outcomes, unended)
}

/// What an ended run retrieved and cited.
async fn read_outcome(
    client: &Client,
    title: &str,
    id: &str,
    run: &Value,
    by_source: &HashMap<String, String>,
) -> Outcome {
    let doc = |sid: &str| {
        by_source
            .get(sid)
            .cloned()
            .unwrap_or_else(|| format!("?{sid}"))
    };
    let events = client
        .call(Method::GET, &format!("/api/runs/{id}/events"), None, &[])
        .await
        .map(|v| v["events"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    // The last retrieval of the run (an acknowledged run retrieves again when it resumes).
    let retrieved_event = events
        .iter()
        .rev()
        .find(|e| e["kind"] == "retrieved")
        .map(|e| e["details"].clone());
    // The sources the run used, in rank order: the API's list when the run has a result, the
    // `retrieved` event's otherwise.
    let listed = client
        .call(Method::GET, &format!("/api/runs/{id}/sources"), None, &[])
        .await
        .ok()
        .and_then(|v| v["sources"].as_array().cloned());
    let from_event: Vec<String> = retrieved_event
        .as_ref()
        .and_then(|d| d["sources"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| {
            s["id"]
                .as_str()
                .or_else(|| s["source_id"].as_str())
                .or_else(|| s.as_str())
                .map(str::to_string)
        })
        .collect();
    let listed: Option<Vec<String>> = listed.map(|list| {
        list.iter()
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect()
    });
    // Both should name the same sources in the same order; a difference is worth a look.
    let disagree = listed.as_ref().is_some_and(|l| *l != from_event);
    let source_ids = listed.unwrap_or(from_event);
    let procedure = client
        .call(Method::GET, &format!("/api/runs/{id}/procedure"), None, &[])
        .await
        .ok()
        .map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .unwrap_or_default();
    let cited = citations(&procedure).iter().map(|s| doc(s)).collect();
    let latency = retrieved_event
        .as_ref()
        .and_then(event_latency)
        .or_else(|| {
            run["result"]["timings_ms"]["retrieve"]
                .as_f64()
                .map(|ms| (ms, "result.timings_ms.retrieve (whole ms)"))
        });
    let dropped = retrieved_event
        .as_ref()
        .and_then(|d| d["dropped"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|x| {
            Some((
                doc(x["id"].as_str()?),
                x["reason"].as_str().unwrap_or("").to_string(),
            ))
        })
        .collect();
    // Why retrieval kept each source (document id → the daemon's reason and population).
    let kept = retrieved_event
        .as_ref()
        .and_then(|d| d["sources"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|x| {
            let mut why = x["reason"].as_str().unwrap_or("").to_string();
            if let Some(p) = x["population"].as_str() {
                why.push_str(&format!("; population {p}"));
            }
            Some((doc(x["id"].as_str()?), why))
        })
        .collect();
    Outcome {
        dropped,
        kept,
        title: title.to_string(),
        status: run["status"].as_str().unwrap_or("?").to_string(),
        error: run["error"].as_str().map(|e| {
            // The first clause is what the table needs ("not_releasable: … 2 blocking
            // finding(s)"); the rest explains it to an operator.
            let line = e.lines().next().unwrap_or("");
            let clause = line.split(" (").next().unwrap_or(line);
            clause.chars().take(120).collect()
        }),
        retrieved: source_ids.iter().map(|s| doc(s)).collect(),
        cited,
        latency,
        disagree,
    }
}

/// A retrieval latency the `retrieved` event carries, if it carries one (in ms).
fn event_latency(details: &Value) -> Option<(f64, &'static str)> {
    const MS: [&str; 6] = [
        "latency_ms",
        "elapsed_ms",
        "took_ms",
        "retrieval_ms",
        "duration_ms",
        "retrieve_ms",
    ];
    const US: [&str; 4] = ["latency_us", "elapsed_us", "took_us", "duration_us"];
    for k in MS {
        if let Some(v) = details[k].as_f64() {
            return Some((v, "retrieved event"));
        }
    }
    for k in US {
        if let Some(v) = details[k].as_f64() {
            return Some((v / 1000.0, "retrieved event"));
        }
    }
    None
}

/// The source ids a procedure's text cites (`[S:SRC0001]`), before its reference list.
fn citations(md: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for line in md.lines() {
        let heading = line.trim().trim_start_matches('#').trim().to_lowercase();
        if line.starts_with("## ") && (heading == "referencer" || heading == "references") {
            break;
        }
        // The notice block under the title explains the citation format (`[S:SRC….]`).
        if line.starts_with('>') {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("[S:") {
            let after = &rest[start + 3..];
            let Some(end) = after.find(']') else { break };
            for id in after[..end].split([',', ';']) {
                let id = id.trim().trim_start_matches("S:").trim();
                let is_id = id
                    .strip_prefix("SRC")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if is_id {
                    ids.insert(id.to_string());
                }
            }
            rest = &after[end + 1..];
        }
    }
    ids
}

fn gain(t: &Title, doc: &str) -> f64 {
    if t.relevant.iter().any(|d| d == doc) {
        2.0
    } else if t.partial.iter().any(|d| d == doc) {
        1.0
    } else {
        0.0
    }
}

/// nDCG@k with gains 2 (relevant) and 1 (partial); 1 when the title has nothing to find.
fn ndcg(t: &Title, ranked: &[String], k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| gain(t, d) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<f64> = t
        .relevant
        .iter()
        .map(|_| 2.0)
        .chain(t.partial.iter().map(|_| 1.0))
        .collect();
    ideal.truncate(k);
    let idcg: f64 = ideal
        .iter()
        .enumerate()
        .map(|(i, g)| g / (i as f64 + 2.0).log2())
        .sum();
    if idcg == 0.0 {
        1.0
    } else {
        // `+ 0.0`: an empty sum of f64 is -0.0, which would print as "-0.00".
        dcg / idcg + 0.0
    }
}

fn score(t: &Title, o: &Outcome) -> Scores {
    let rel: BTreeSet<&str> = t.relevant.iter().map(String::as_str).collect();
    let part: BTreeSet<&str> = t.partial.iter().map(String::as_str).collect();
    let mut seen = BTreeSet::new();
    let unique: Vec<&String> = o.retrieved.iter().filter(|d| seen.insert(*d)).collect();
    let hits = unique.iter().filter(|d| rel.contains(d.as_str())).count();
    let judged = unique.iter().filter(|d| !part.contains(d.as_str())).count();
    let off_retrieved = unique
        .iter()
        .filter(|d| !rel.contains(d.as_str()) && !part.contains(d.as_str()))
        .map(|d| d.to_string())
        .collect();
    let off_cited = o
        .cited
        .iter()
        .filter(|d| !rel.contains(d.as_str()) && !part.contains(d.as_str()))
        .cloned()
        .collect();
    Scores {
        hits,
        judged,
        relevant: rel.len(),
        precision: (judged > 0).then(|| hits as f64 / judged as f64),
        recall: (!rel.is_empty()).then(|| hits as f64 / rel.len() as f64),
        ndcg5: ndcg(t, &o.retrieved, 5),
        ndcg10: ndcg(t, &o.retrieved, 10),
        off_retrieved,
        off_cited,
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}"))
        .unwrap_or_else(|| "  - ".into())
}

fn mean(vs: impl Iterator<Item = f64>) -> Option<f64> {
    let vs: Vec<f64> = vs.collect();
    (!vs.is_empty()).then(|| vs.iter().sum::<f64>() / vs.len() as f64)
}

fn report(name: &str, labels: &[Title], outcomes: &[Outcome], docs: usize) {
    println!(
        "== set {name}: {docs} documents, {} titles ==",
        labels.len()
    );
    println!(
        "{:<40} {:>9} {:>4} {:>5} {:>5} {:>5} {:>6} {:>6}",
        "title", "status", "got", "P", "R", "found", "nDCG5", "nDCG10"
    );
    let mut all = Vec::new();
    for o in outcomes {
        let Some(t) = labels.iter().find(|t| t.title == o.title) else {
            continue;
        };
        let s = score(t, o);
        println!(
            "{:<40} {:>9} {:>4} {:>5} {:>5} {:>2}/{:<2} {:>6.2} {:>6.2}",
            o.title.chars().take(40).collect::<String>(),
            o.status,
            o.retrieved.len(),
            fmt(s.precision),
            fmt(s.recall),
            s.hits,
            s.relevant,
            s.ndcg5,
            s.ndcg10,
        );
        if let Some(e) = o.error.as_ref().filter(|_| o.status != "DONE") {
            println!("    error: {e}");
        }
        for d in &s.off_retrieved {
            let why = o.kept.get(d).map(String::as_str).unwrap_or("?");
            println!("    off-topic retrieved: {d} (kept: {why})");
        }
        if !s.off_cited.is_empty() {
            println!("    off-topic cited:     {}", s.off_cited.join(", "));
        }
        for m in t.relevant.iter().filter(|d| !o.retrieved.contains(d)) {
            let why = o
                .dropped
                .get(m)
                .map(String::as_str)
                .unwrap_or("not a candidate: no passage or title carries the request's terms");
            println!("    missed: {m} ({why})");
        }
        all.push((o, s));
    }
    let hits: usize = all.iter().map(|(_, s)| s.hits).sum();
    let judged: usize = all.iter().map(|(_, s)| s.judged).sum();
    let relevant: usize = all.iter().map(|(_, s)| s.relevant).sum();
    let micro_p = (judged > 0).then(|| hits as f64 / judged as f64);
    let micro_r = (relevant > 0).then(|| hits as f64 / relevant as f64);
    let macro_p = mean(all.iter().filter_map(|(_, s)| s.precision));
    let no_p = all.iter().filter(|(_, s)| s.precision.is_none()).count();
    let macro_r = mean(all.iter().filter_map(|(_, s)| s.recall));
    let n5 = mean(all.iter().map(|(_, s)| s.ndcg5));
    let n10 = mean(all.iter().map(|(_, s)| s.ndcg10));
    let citing: Vec<&(&Outcome, Scores)> = all
        .iter()
        .filter(|(_, s)| !s.off_cited.is_empty())
        .collect();
    let done = all.iter().filter(|(o, _)| o.status == "DONE").count();
    println!(
        "overall {name}: micro precision {} recall {} ({hits} relevant found of {relevant}; {judged} judged retrieved) | macro precision {}{} recall {} | nDCG@5 {} nDCG@10 {} (targets: precision >= 0.9, recall >= 0.9)",
        fmt(micro_p),
        fmt(micro_r),
        fmt(macro_p),
        if no_p > 0 {
            format!(" (over {} titles; {no_p} retrieved nothing judged)", all.len() - no_p)
        } else {
            String::new()
        },
        fmt(macro_r),
        fmt(n5),
        fmt(n10),
    );
    println!(
        "procedures citing an off-topic source: {} of {} (target 0){}",
        citing.len(),
        all.len(),
        if citing.is_empty() { "" } else { ":" }
    );
    for (o, s) in &citing {
        println!("  {:<40} cites {}", o.title, s.off_cited.join(", "));
    }
    let disagree: Vec<&str> = all
        .iter()
        .filter(|(o, _)| o.disagree)
        .map(|(o, _)| o.title.as_str())
        .collect();
    if !disagree.is_empty() {
        println!(
            "note: GET /api/runs/{{id}}/sources and the retrieved event differ for {} title(s) (scored from /sources): {}",
            disagree.len(),
            disagree.join("; ")
        );
    }
    println!("runs DONE: {done} of {} (the rest ended FAILED or CANCELLED; their retrieval is still scored)", all.len());
    let mut lat: Vec<f64> = all
        .iter()
        .filter_map(|(o, _)| o.latency.map(|l| l.0))
        .collect();
    lat.sort_by(f64::total_cmp);
    let from = all.iter().find_map(|(o, _)| o.latency.map(|l| l.1));
    match from {
        Some(from) if !lat.is_empty() => println!(
            "retrieval latency ({} runs, from {from}): p50 {:.2} ms p99 {:.2} ms max {:.2} ms at {docs} documents",
            lat.len(),
            daemon::percentile(&lat, 0.5),
            daemon::percentile(&lat, 0.99),
            lat[lat.len() - 1],
        ),
        _ => println!("retrieval latency: not reported by the API (no timing in the retrieved event or the run's result)"),
    }
    println!();
}
