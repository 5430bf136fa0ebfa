//! SIGHUP: re-read the configuration file and apply what can change in a running daemon.
//!
//! The model call slots (`llm_max_concurrent_calls`; with 0 the server's count, asked again)
//! are resized for calls that start afterwards, reported as `llm_call_slots` (old → new).
//!
//! The medical lexicon (`lexicon_file`) is re-read and put in force for runs that start
//! afterwards (the words compounds split into for the index wait for a restart, which
//! re-indexes). The quality loop's keys ([`HOT_KEYS`]) are applied at once: every loop iteration that starts
//! afterwards, in running jobs too, reads them. So is the database size limit, from the next
//! write on. Every other changed key is reported as needing
//! a restart and left as it was, never half-applied. A file that fails to load changes
//! nothing; its error is logged, recorded and shown by `/health` until a reload succeeds.
//! Each reload that changed something (or failed) is recorded in `config_reloads`, and running
//! runs get a `config_reloaded` event naming the applied keys (old → new). The record is
//! written first and the change put in force right after (nothing awaited between), so what
//! `/health` or a run shows of a reload is always in `/api/reloads` already.

use crate::http::AppState;
use crate::settings::{hot_key, Settings};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// What one reload did.
#[derive(Debug, Clone, PartialEq)]
pub enum Reloaded {
    Applied {
        applied: Map<String, Value>,
        restart_required: Map<String, Value>,
    },
    Refused(String),
}

/// Re-reads `config_path` and applies its hot keys to `state`.
pub async fn reload(state: &AppState, config_path: Option<&std::path::Path>) -> Reloaded {
    let new = match Settings::load(config_path) {
        Ok(s) => s,
        Err(e) => {
            let msg = e.to_string();
            tracing::error!(cause = %msg, "configuration reload failed; keeping the running settings");
            // Recorded before `/health` shows it: whoever sees the error there finds it in
            // `/api/reloads` too.
            if let Err(e) = state
                .store
                .record_reload(json!({}), json!({}), Some(msg.clone()))
                .await
            {
                tracing::error!(cause = %e, "cannot record the failed reload");
            }
            if let Ok(mut g) = state.last_reload_error.lock() {
                *g = Some(msg.clone());
            }
            if let Ok(mut g) = state.last_reload.lock() {
                *g = Some((false, unix_seconds()));
            }
            return Reloaded::Refused(msg);
        }
    };
    let mut in_force = match state.applied_settings.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let old = in_force.flatten();
    let mut applied = Map::new();
    let mut restart_required = Map::new();
    for (k, v) in new.flatten() {
        let before = old.get(&k).cloned().unwrap_or_default();
        if before == v {
            continue;
        }
        let change = json!([parse(&before), parse(&v)]);
        if hot_key(&k).is_some() {
            applied.insert(k, change);
        } else {
            restart_required.insert(k, change);
        }
    }
    if applied.contains_key("max_database_mb") {
        // Lifting the limit is how writes come back after it filled; lowering it holds the
        // database where it is.
        match state.store.set_max_size(new.max_database_bytes()).await {
            Ok(bytes) => tracing::info!(limit_bytes = bytes, "database size limit applied"),
            Err(e) => {
                tracing::error!(cause = %e, "cannot apply the database size limit");
                if let Some(change) = applied.remove("max_database_mb") {
                    restart_required.insert("max_database_mb".into(), change);
                }
            }
        }
    }
    // The call slots: a new `llm_max_concurrent_calls` applies to calls that start from now on
    // (those in flight keep their slot); with 0 the server is asked again, since it may have
    // been restarted with another `-np`, and a server that does not answer changes nothing.
    let mut resize = None;
    if let Some(slots) = state.metrics.llm_slots() {
        let changed = applied.contains_key("llm_max_concurrent_calls");
        let target = if new.llm_max_concurrent_calls > 0 {
            changed.then_some(new.llm_max_concurrent_calls as usize)
        } else {
            match crate::model_client::server_slots(&new).await {
                Some(n) => Some(n),
                None if changed => Some(crate::model_client::DEFAULT_SLOTS),
                None => None,
            }
        };
        if let Some(n) = target.map(|n| n.max(1)) {
            let before = slots.limit();
            if before != n {
                applied.insert("llm_call_slots".into(), json!([before, n]));
                resize = Some((slots, n));
            }
        }
    }
    // The lexicon is re-read whether or not its path changed (its content may have). The
    // settings above parsed it already, so this cannot fail but for a race with an edit.
    let mut lexicon_change = None;
    match new.lexicon() {
        Ok(lexicon) => {
            use procedurewriter_pipeline::analyze::{analyzer, Analyzer};
            use procedurewriter_pipeline::features;
            let before = procedurewriter_pipeline::verify::lexicon::shared();
            if before.fingerprint() != lexicon.fingerprint() {
                applied.insert(
                    "lexicon".into(),
                    json!([before.fingerprint(), lexicon.fingerprint()]),
                );
                let index = Analyzer::new(&lexicon).fingerprint().to_string();
                if index != analyzer().fingerprint() {
                    // The words compounds split into shape the index: they need a re-index.
                    restart_required.insert(
                        "lexicon_compound_parts".into(),
                        json!([analyzer().fingerprint(), index]),
                    );
                }
                let features_before = features::current_fingerprint();
                let features = features::fingerprint(&lexicon, analyzer());
                let refeature = features != features_before;
                if refeature {
                    applied.insert(
                        "passage_features".into(),
                        json!([features_before, features]),
                    );
                }
                lexicon_change = Some((lexicon, refeature));
            }
        }
        Err(e) => {
            tracing::error!(cause = %e, "cannot re-read the lexicon; keeping the one in force")
        }
    }
    // Recorded before any of it is in force: whoever sees a change (in `/health`, in a run)
    // finds it in `/api/reloads`.
    if applied.is_empty() && restart_required.is_empty() {
        tracing::info!("configuration reloaded: nothing changed");
    } else if let Err(e) = state
        .store
        .record_reload(
            Value::Object(applied.clone()),
            Value::Object(restart_required.clone()),
            None,
        )
        .await
    {
        tracing::error!(cause = %e, "cannot record the reload (the settings are applied)");
    }
    if let Some((slots, n)) = resize {
        let before = slots.resize(n);
        tracing::info!(from = before, to = n, "model call slots resized");
    }
    if let Some((lexicon, refeature)) = lexicon_change {
        procedurewriter_pipeline::verify::lexicon::install(lexicon);
        if refeature {
            // Other population words: the passages' stored features are recomputed in the
            // background; until then retrieval analyses what it reads itself.
            let store = state.store.clone();
            let one_at_a_time = state.refeature.clone();
            tokio::spawn(async move {
                let _turn = one_at_a_time.lock().await;
                let t = std::time::Instant::now();
                match crate::library::refeature(&store).await {
                    Ok(n) => tracing::info!(
                        passages = n,
                        elapsed_ms = t.elapsed().as_millis() as u64,
                        "recomputed the library's passage features for the new lexicon"
                    ),
                    Err(e) => tracing::error!(
                        cause = %e,
                        "cannot recompute the passage features; retrieval analyses passages itself until a restart"
                    ),
                }
            });
        }
    }
    if !applied.is_empty() {
        for k in applied.keys().filter_map(|k| hot_key(k)) {
            (k.copy)(&mut in_force, &new);
        }
        match state.loop_settings.write() {
            Ok(mut g) => *g = in_force.loop_settings(),
            Err(p) => *p.into_inner() = in_force.loop_settings(),
        }
        if let Ok(mut g) = state.applied_settings.lock() {
            *g = in_force;
        }
        tracing::info!(keys = ?applied.keys().collect::<Vec<_>>(), "configuration reloaded: applied");
    }
    if !restart_required.is_empty() {
        tracing::warn!(keys = ?restart_required.keys().collect::<Vec<_>>(), "configuration reloaded: these keys need a restart to take effect");
    }
    if let Ok(mut g) = state.last_reload_error.lock() {
        *g = None;
    }
    if let Ok(mut g) = state.last_reload.lock() {
        *g = Some((true, unix_seconds()));
    }
    // Compared with the settings in force, whose restart-only keys are those the process
    // started with: this is the whole set still waiting for a restart.
    if let Ok(mut g) = state.pending_restart.lock() {
        *g = restart_required.clone();
    }
    Reloaded::Applied {
        applied,
        restart_required,
    }
}

fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A flattened value back as JSON (they were rendered with `to_string`).
fn parse(v: &str) -> Value {
    serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()))
}

/// Reloads on every SIGHUP (signal-hook's tokio stream; signals arriving during a reload are
/// coalesced into the next one).
pub fn spawn_handler(state: Arc<AppState>, config_path: Option<PathBuf>) {
    use futures_util::StreamExt;
    let mut signals = match signal_hook_tokio::Signals::new([signal_hook::consts::SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(cause = %e, "cannot listen for SIGHUP; configuration reload is unavailable");
            return;
        }
    };
    tokio::task::spawn_local(async move {
        while signals.next().await.is_some() {
            crate::service::reloading();
            let status = match reload(&state, config_path.as_deref()).await {
                Reloaded::Refused(msg) => {
                    format!("reload failed, still running the previous settings: {msg}")
                }
                Reloaded::Applied {
                    restart_required, ..
                } if !restart_required.is_empty() => format!(
                    "reloaded; a restart is needed for: {}",
                    restart_required
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Reloaded::Applied { .. } => "reloaded".to_string(),
            };
            crate::service::ready(&status);
        }
    });
}
