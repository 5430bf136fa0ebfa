//! The architecture's invariants that a reading of the source can check (ARCHITECTURE.md):
//! SQL only in the store, a pipeline crate that does not depend on the actor runtime, and no
//! import cycles between the files of a crate where a one-way dependency will do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Statements only SQL has, as they appear in a string literal.
const SQL: &[&str] = &[
    "SELECT ",
    "INSERT INTO",
    "INSERT OR ",
    "DELETE FROM",
    "CREATE TABLE",
    "CREATE INDEX",
    "CREATE TRIGGER",
    "ALTER TABLE",
    "PRAGMA ",
    "BEGIN IMMEDIATE",
    "SAVEPOINT ",
];

fn sql_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let quoted = line.split('"').skip(1).step_by(2).collect::<Vec<_>>();
        let sql = quoted.iter().any(|q| SQL.iter().any(|k| q.contains(k)))
            || (code.contains("UPDATE ") && code.contains(" SET ") && line.contains('"'));
        if sql || code.contains("rusqlite::") || code.starts_with("use rusqlite") {
            found.push(format!("{}: {}", n + 1, line.trim()));
        }
    }
    found
}

#[test]
fn only_the_store_contains_sql() {
    let store = root().join("actors/src/store");
    let mut offenders = Vec::new();
    for krate in ["actors/src", "daemon/src", "pipeline/src"] {
        for file in rust_files(&root().join(krate)) {
            if file.starts_with(&store) {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for hit in sql_in(&text) {
                offenders.push(format!("{}:{hit}", file.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "SQL outside actors/src/store/:\n{}",
        offenders.join("\n")
    );
    // The check itself sees SQL where it is.
    let runs = std::fs::read_to_string(store.join("runs.rs")).unwrap();
    assert!(
        !sql_in(&runs).is_empty(),
        "the SQL check finds nothing in the store"
    );
}

#[test]
fn the_pipeline_does_not_depend_on_the_actor_runtime() {
    let manifest = std::fs::read_to_string(root().join("pipeline/Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("procedurewriter-actors"),
        "pipeline/Cargo.toml depends on procedurewriter-actors: the pipeline must reach the \
         rest of the system through its ports (pipeline/src/ports.rs)"
    );
    for file in rust_files(&root().join("pipeline")) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("procedurewriter_actors"),
            "{} names the actor crate",
            file.display()
        );
    }
}

/// The module a file belongs to, one level below `base` (`http/runs.rs` → `http`,
/// `job.rs` → `job`), or None for the crate root.
fn top_module(base: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(base).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

/// The names `prefix` is followed by in `text` (`crate::job::x` → `job`; `crate::{a, b}` → a, b).
fn referenced(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end].split(',').collect()
        } else {
            vec![rest]
        };
        for n in names {
            let n: String = n
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !n.is_empty() && n != "self" {
                out.insert(n);
            }
        }
    }
    out
}

/// A cycle in `edges`, if there is one.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        if let Some(c) = visit(n, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

/// Import edges between the modules of `dir` (its files and folders; `crate::` for a crate's
/// `src`, `super::` for a folder module's files).
fn module_edges(dir: &Path, prefix: &str) -> BTreeMap<String, BTreeSet<String>> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(dir, f)).collect();
    for file in &files {
        let Some(from) = top_module(dir, file) else {
            continue;
        };
        let sources = if file.is_dir() && prefix == "crate::" {
            rust_files(file)
        } else if file.is_file() {
            vec![file.clone()]
        } else {
            Vec::new()
        };
        for src in sources {
            let text = std::fs::read_to_string(&src).unwrap();
            // Tests inside a file may reach anywhere; comments (doc links) import nothing.
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let text = code.as_str();
            for to in referenced(text, prefix) {
                if to != from && modules.contains(&to) {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    edges
}

#[test]
fn no_import_cycles_between_the_files_of_a_crate() {
    // Actors address each other both ways, and each owns the messages it receives
    // (HOUSE_STYLE), so two actors that talk import each other's messages: that pair is the
    // protocol, not a tangle.
    let protocol: &[(&str, &str, &str)] = &[("actors/src", "queue", "worker")];
    let mut checked = 0;
    for (dir, prefix) in [
        ("actors/src", "crate::"),
        ("actors/src/store", "super::"),
        ("daemon/src", "crate::"),
        ("daemon/src/http", "super::"),
        ("pipeline/src", "crate::"),
        ("pipeline/src/llm", "super::"),
    ] {
        let mut edges = module_edges(&root().join(dir), prefix);
        for (d, a, b) in protocol {
            if *d == dir {
                if let Some(e) = edges.get_mut(*b) {
                    e.remove(*a);
                }
            }
        }
        checked += edges.values().map(BTreeSet::len).sum::<usize>();
        if let Some(c) = cycle(&edges) {
            panic!("{dir}: an import cycle: {}", c.join(" → "));
        }
    }
    assert!(checked > 20, "the check saw only {checked} imports");
    // The check finds a cycle where there is one.
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(cycle(&edges).is_some());
}
