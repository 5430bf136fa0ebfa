//! Packaging a finished run: the artifacts under `<runs_dir>/<run_id>/`, their names, media
//! types and paths (defined here once; the HTTP layer serves them by these names), the
//! manifest, and the run summary that becomes the run's `result`. Everything here is CPU and
//! file work, run on the blocking pool.

use crate::evaluate::{self, Evaluation};
use crate::evidence::{AckNotice, EvidenceSource};
use crate::gate::GateReport;
use crate::library::sha256_hex;
use crate::money::to_usd;
use crate::quality::LoopResult;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An artifact a finished run has: the name clients ask for, its file and media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactKind {
    /// `GET /api/runs/{id}/{name}`.
    pub name: &'static str,
    pub file: &'static str,
    pub content_type: &'static str,
}

pub const PROCEDURE: ArtifactKind = ArtifactKind {
    name: "procedure",
    file: "procedure.md",
    content_type: "text/markdown; charset=utf-8",
};
pub const DOCX: ArtifactKind = ArtifactKind {
    name: "docx",
    file: "procedure.docx",
    content_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
};
pub const EVIDENCE_REPORT: ArtifactKind = ArtifactKind {
    name: "evidence",
    file: "evidence_report.json",
    content_type: "application/json",
};
pub const MANIFEST: ArtifactKind = ArtifactKind {
    name: "manifest",
    file: "manifest.json",
    content_type: "application/json",
};

/// Every artifact, in the order they are written (the manifest last: it lists the others).
pub const ARTIFACTS: [ArtifactKind; 4] = [PROCEDURE, DOCX, EVIDENCE_REPORT, MANIFEST];

/// The artifact called `name`, if there is one.
pub fn artifact(name: &str) -> Option<ArtifactKind> {
    ARTIFACTS.into_iter().find(|a| a.name == name)
}

/// The directory of a run's artifacts. The run id must be one the store issued (a UUID), so
/// it cannot name a path outside `runs_dir`.
pub fn run_dir(runs_dir: &Path, run_id: &str) -> PathBuf {
    runs_dir.join(run_id)
}

/// One written artifact, as the result and the manifest list it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Artifact {
    pub name: &'static str,
    pub sha256: String,
    pub bytes: usize,
}

/// Everything a finished run is packaged from.
#[derive(Debug, Clone)]
pub struct Finished {
    pub run_id: String,
    pub procedure: String,
    pub context: String,
    pub attempt: u32,
    pub writer: String,
    pub sources: Vec<EvidenceSource>,
    pub looped: LoopResult,
    pub ack: Option<AckNotice>,
    pub gate: GateReport,
    pub config_digest: String,
    /// Stage timings before packaging (ms).
    pub timings: BTreeMap<&'static str, u64>,
    /// Who files the document (`document_author`): the DOCX author.
    pub author: String,
    /// When it was packaged: the DOCX's created and modified time and date.
    pub packaged_at: std::time::SystemTime,
}

impl Finished {
    fn eval(&self) -> &Evaluation {
        &self.looped.best.eval
    }
}

/// Where the artifacts went.
#[derive(Debug, Clone, PartialEq)]
pub struct Packaged {
    pub dir: String,
    pub artifacts: Vec<Artifact>,
}

/// Writes the artifacts of `run` under `runs_dir`, each atomically.
pub fn package(runs_dir: &Path, run: &Finished) -> std::io::Result<Packaged> {
    let dir = run_dir(runs_dir, &run.run_id);
    std::fs::create_dir_all(&dir)?;
    let eval = run.eval();
    let markdown = &released_or_marked(run);
    let evidence = serde_json::to_vec_pretty(&json!({
        "run_id": run.run_id,
        "released": eval.blocking() == 0,
        "score": eval.score,
        "score_parts": eval.parts,
        "support_threshold": evaluate::SUPPORT_THRESHOLD,
        "sentences": eval.report,
        "issues": eval.issues,
        "verification": eval.verification,
        "gate": run.gate,
    }))?;
    let docx = crate::docx::render(
        markdown,
        &crate::docx::DocumentInfo {
            author: run.author.clone(),
            version: run.run_id.clone(),
            at: run.packaged_at,
        },
    )
    .map_err(std::io::Error::other)?;
    let files: [(ArtifactKind, Vec<u8>); 3] = [
        (PROCEDURE, markdown.as_bytes().to_vec()),
        (DOCX, docx),
        (EVIDENCE_REPORT, evidence),
    ];
    let mut artifacts = Vec::new();
    for (kind, bytes) in &files {
        write_atomic(&dir.join(kind.file), bytes)?;
        artifacts.push(Artifact {
            name: kind.file,
            sha256: sha256_hex(bytes),
            bytes: bytes.len(),
        });
    }
    let manifest = serde_json::to_vec_pretty(&manifest(run, &artifacts))?;
    write_atomic(&dir.join(MANIFEST.file), &manifest)?;
    artifacts.push(Artifact {
        name: MANIFEST.file,
        sha256: sha256_hex(&manifest),
        bytes: manifest.len(),
    });
    Ok(Packaged {
        dir: dir.display().to_string(),
        artifacts,
    })
}

/// The procedure as written when the claim checks found nothing blocking; otherwise marked as
/// not released, with every blocking finding listed (sentence, section, cited passage, what
/// differs) after the references, so the Markdown and the DOCX say it themselves.
fn released_or_marked(run: &Finished) -> String {
    let md = &with_checks(&run.looped.best.markdown, run.eval());
    let Some(v) = run.eval().verification.as_ref().filter(|v| v.blocking > 0) else {
        return md.clone();
    };
    let notice = format!(
        "> **IKKE FRIGIVET:** proceduren har {} blokerende fund og må ikke bruges klinisk; se \
         \"Blokerende fund\" sidst i dokumentet.\n>\n",
        v.blocking
    );
    let mut out = match md.find("\n> ") {
        Some(i) => format!("{}\n{notice}{}", &md[..i], &md[i + 1..]),
        None => format!("{notice}\n{md}"),
    };
    out.push_str("\n## Blokerende fund (ikke frigivet)\n\n");
    for f in v
        .findings
        .iter()
        .filter(|f| f.severity == crate::verify::Severity::Blocking)
    {
        let passage = f
            .aligned
            .as_ref()
            .map(|a| {
                let page = a.page.map(|p| format!(", s. {p}")).unwrap_or_default();
                format!(" Kilde [{}{page}]: \"{}\".", a.source_id, a.sentence)
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "- {} — {} (afsnit \"{}\"): \"{}\".{passage}\n",
            f.kind.name(),
            f.what,
            f.section,
            f.sentence
        ));
    }
    out
}

/// The procedure with its header saying what was checked and what was not, and what its score
/// is made of: a reader must know the limits of the checks, not only that they passed.
/// The notice joins the header's first blockquote (or opens the document when there is none).
fn with_checks(md: &str, eval: &Evaluation) -> String {
    let mut notice = String::new();
    if let Some(v) = &eval.verification {
        notice.push_str(&format!(
            "> **Kontrolleret:** {} sætninger mod de kilder, de citerer ({} blokerende fund, {} advarsler): {}.\n>\n",
            v.sentences.len(),
            v.blocking,
            v.warnings,
            v.checked.join("; ")
        ));
        notice.push_str(&format!(
            "> **Ikke kontrolleret:** {}.\n>\n",
            v.not_checked.join("; ")
        ));
    } else {
        notice.push_str(
            "> **Ikke kontrolleret:** sætningerne er ikke kontrolleret mod deres kilder.\n>\n",
        );
    }
    notice.push_str(&format!(
        "> **Score:** {:.1} af 10 ({}); {} af {} afsnit har evidens.\n>\n",
        eval.score,
        eval.parts.describe(),
        eval.sections_with_evidence,
        eval.sections_total
    ));
    match md.find("\n> ") {
        Some(i) => format!("{}\n{notice}{}", &md[..i], &md[i + 1..]),
        None => format!("{notice}\n{md}"),
    }
}

/// The quality loop's part of the manifest.
fn loop_summary(l: &LoopResult) -> serde_json::Value {
    json!({
        "iterations": l.iterations,
        "best_iteration": l.best.iteration,
        "scores": l.scores,
        "stop_reason": l.stop_reason.as_str(),
        "revision_cost_usd": to_usd(l.revision_pusd),
        "revision_cap_usd": to_usd(l.cap_pusd),
        "reused_calls": l.reused_calls,
    })
}

fn manifest(run: &Finished, artifacts: &[Artifact]) -> serde_json::Value {
    let eval = run.eval();
    json!({
        "run_id": run.run_id,
        "procedure": run.procedure,
        "context": run.context,
        "attempt": run.attempt,
        "writer": run.writer,
        "score": eval.score,
        "issues": eval.issues.len(),
        "released": eval.blocking() == 0,
        "blocking_findings": eval.blocking(),
        "quality_loop": loop_summary(&run.looped),
        "cost_usd": to_usd(run.looped.total_pusd),
        "config_digest": run.config_digest,
        "packaged_at": humantime::format_rfc3339_seconds(run.packaged_at).to_string(),
        "author": run.author,
        "sources": run.sources.iter().map(|s| json!({
            "id": s.id, "title": s.title, "tier": s.tier, "sha256": s.sha256,
            "original_sha256": s.original_sha256, "demo": s.demo,
            "passages": s.passages.iter().map(|p| json!({ "id": p.id, "pages": p.pages_label(), "heading": p.heading, "sha256": sha256_hex(p.text.as_bytes()) })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "artifacts": artifacts,
        "timings_ms": run.timings,
        "acknowledgement": run.ack.as_ref().map(|a| json!({ "acknowledged_by": a.acknowledged_by, "note": a.note, "missing_tiers": a.missing_tiers })),
    })
}

/// Stage timings of a finished run (ms), as its result reports them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timings {
    pub retrieve: u64,
    pub write_and_evaluate: u64,
    pub package: u64,
    pub total: u64,
}

/// A finished run's `result`: what it produced, how the loop got there, what it cost and where
/// the artifacts are. Made from the same [`Finished`] as the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub writer: String,
    pub score: f64,
    /// The points behind `score`, part by part.
    pub score_parts: crate::evaluate::ScoreParts,
    pub issues: Vec<String>,
    pub iterations: u32,
    pub best_iteration: u32,
    pub scores: Vec<f64>,
    pub stop_reason: &'static str,
    pub cost_usd: f64,
    pub revision_cost_usd: f64,
    pub revision_cap_usd: f64,
    pub reused_calls: u32,
    pub sources: Vec<String>,
    pub artifacts: Vec<Artifact>,
    pub artifact_dir: String,
    pub acknowledged_gaps: Option<Vec<String>>,
    pub timings_ms: Timings,
    /// No blocking finding: the procedure may be used.
    pub released: bool,
    pub blocking_findings: usize,
    pub warnings: usize,
    /// What the claim checks covered, and what they did not (the reader must know both).
    pub checked: Vec<&'static str>,
    pub not_checked: Vec<&'static str>,
    /// Why each source was retrieved (see [`crate::retrieve::SourceWhy`]), set by the run.
    pub retrieval: serde_json::Value,
}

impl RunSummary {
    pub fn new(run: &Finished, packaged: Packaged, timings: Timings) -> RunSummary {
        let l = &run.looped;
        RunSummary {
            writer: run.writer.clone(),
            score: l.best.eval.score,
            score_parts: l.best.eval.parts,
            issues: l.best.eval.issues.clone(),
            iterations: l.iterations,
            best_iteration: l.best.iteration,
            scores: l.scores.clone(),
            stop_reason: l.stop_reason.as_str(),
            cost_usd: to_usd(l.total_pusd),
            revision_cost_usd: to_usd(l.revision_pusd),
            revision_cap_usd: to_usd(l.cap_pusd),
            reused_calls: l.reused_calls,
            sources: run.sources.iter().map(|s| s.id.clone()).collect(),
            artifacts: packaged.artifacts,
            artifact_dir: packaged.dir,
            acknowledged_gaps: run.ack.as_ref().map(|a| a.missing_tiers.clone()),
            timings_ms: timings,
            released: l.best.eval.blocking() == 0,
            blocking_findings: l.best.eval.blocking(),
            warnings: l.best.eval.verification.as_ref().map_or(0, |v| v.warnings),
            checked: l
                .best
                .eval
                .verification
                .as_ref()
                .map(|v| v.checked.clone())
                .unwrap_or_default(),
            not_checked: l
                .best
                .eval
                .verification
                .as_ref()
                .map(|v| v.not_checked.clone())
                .unwrap_or_default(),
            retrieval: serde_json::Value::Null,
        }
    }
}

/// Writes through a temp file and a rename, so a reader never sees half an artifact.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_says_what_was_checked_what_was_not_and_what_the_score_is_made_of() {
        let sources = [EvidenceSource::whole(
            "SRC0001",
            "t",
            "danish_guideline",
            1000,
            "Voksne får 0,5 mg adrenalin intramuskulært.",
        )];
        let md = "# Anafylaksi\n\n> Skrevet til en test.\n\n## Procedure (trin-for-trin)\n\n1. Voksne får 0,5 mg adrenalin intramuskulært. [S:SRC0001]\n";
        let eval = evaluate::evaluate_and_verify(md, &sources);
        let out = with_checks(md, &eval);
        let header: &str = out.split("\n## ").next().unwrap_or("");
        assert!(header.contains("**Kontrolleret:** 1 sætninger"), "{out}");
        assert!(header.contains("**Ikke kontrolleret:**"), "{out}");
        assert!(
            header.contains("whether the source itself is right"),
            "{out}"
        );
        assert!(header.contains("afsnit med evidens 0.2/2"), "{out}");
        assert!(header.contains("**Score:** 0.8 af 10"), "{out}");
        let sections = format!("1 af {} afsnit har evidens", eval.sections_total);
        assert!(header.contains(&sections), "{out}");
        assert!(out.starts_with("# Anafylaksi\n"), "{out}");
    }
}
