//! Configuration reloads (SIGHUP): their history, and the `config_reloaded` event each one that
//! applied settings appends to every running run.

use super::Store;
use crate::error::Result;
use crate::model::now_ms;
use rusqlite::params;
use serde::Serialize;
use serde_json::{json, Value};

/// One configuration reload, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReloadRecord {
    pub id: i64,
    #[serde(serialize_with = "crate::model::time::req")]
    pub at: i64,
    /// Key → `[old, new]`, applied to the running daemon.
    pub applied: Value,
    /// Key → `[old, new]`, ignored until a restart.
    pub restart_required: Value,
    /// Why the file was refused (nothing applied).
    pub error: Option<String>,
}

impl Store {
    /// Records a configuration reload (applied and restart-only changes, or the refusal) and,
    /// when settings were applied, a `config_reloaded` event on every running run: its history
    /// then shows that its later iterations ran under the new values.
    pub async fn record_reload(
        &self,
        applied: Value,
        restart_required: Value,
        error: Option<String>,
    ) -> Result<ReloadRecord> {
        self.write(move |tx| {
            let at = now_ms();
            tx.conn()
                .prepare_cached(
                    "INSERT INTO config_reloads (at, applied, restart_required, error) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![at, applied.to_string(), restart_required.to_string(), error])?;
            let id = tx.conn().last_insert_rowid();
            if applied.as_object().is_some_and(|m| !m.is_empty()) {
                let running: Vec<String> = tx
                    .conn()
                    .prepare_cached("SELECT id FROM runs WHERE status = 'RUNNING'")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                for run_id in running {
                    tx.event(
                        &run_id,
                        "config_reloaded",
                        crate::RunStatus::Running,
                        "sighup",
                        json!({ "reload_id": id, "applied": applied }),
                        at,
                    )?;
                }
            }
            Ok(ReloadRecord {
                id,
                at,
                applied,
                restart_required,
                error,
            })
        })
        .await
    }

    /// The most recent configuration reloads, newest first.
    pub async fn reloads(&self, limit: usize) -> Result<Vec<ReloadRecord>> {
        self.read(move |conn| {
            let parse = |s: String| serde_json::from_str(&s).unwrap_or(Value::Null);
            Ok(conn
                .prepare_cached(
                    "SELECT id, at, applied, restart_required, error FROM config_reloads ORDER BY id DESC LIMIT ?1",
                )?
                .query_map([limit as i64], |r| {
                    Ok(ReloadRecord {
                        id: r.get(0)?,
                        at: r.get(1)?,
                        applied: parse(r.get(2)?),
                        restart_required: parse(r.get(3)?),
                        error: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}
