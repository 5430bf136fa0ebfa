//! The evidence library's rows and its FTS5 index. The store keeps documents with a tier
//! label and ranks them with BM25; it does not know what a tier means (the pipeline does).

use super::Store;
use crate::error::{Error, Result};
use crate::model::{now_ms, time};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

/// A source to add.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSource {
    pub title: String,
    pub url: Option<String>,
    pub tier: String,
    pub tier_reason: String,
    pub year: Option<i32>,
    pub publication_type: Option<String>,
    pub text: String,
    /// SHA-256 of `text`, hex: the deduplication key.
    pub sha256: String,
    pub demo: bool,
}

/// A stored source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    pub id: String,
    #[serde(skip)]
    pub seq: i64,
    pub title: String,
    pub url: Option<String>,
    pub tier: String,
    pub tier_reason: String,
    pub year: Option<i32>,
    pub publication_type: Option<String>,
    /// Omitted from listings; present when one source is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub chars: i64,
    pub sha256: String,
    pub demo: bool,
    #[serde(serialize_with = "time::req")]
    pub ingested_at: i64,
}

/// A search hit: the source, its BM25 rank (lower is better, as SQLite reports it) and a
/// snippet around the match.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceHit {
    pub source: Source,
    pub rank: f64,
    pub snippet: String,
}

/// A page of sources in ingest order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourcePage {
    pub sources: Vec<Source>,
    pub next_cursor: Option<String>,
}

const COLUMNS: &str = "s.seq, s.id, s.title, s.url, s.tier, s.tier_reason, s.year, \
     s.publication_type, length(s.text), s.sha256, s.demo, s.ingested_at";

fn source_from_row(row: &Row<'_>) -> rusqlite::Result<Source> {
    Ok(Source {
        seq: row.get(0)?,
        id: row.get(1)?,
        title: row.get(2)?,
        url: row.get(3)?,
        tier: row.get(4)?,
        tier_reason: row.get(5)?,
        year: row.get(6)?,
        publication_type: row.get(7)?,
        text: None,
        chars: row.get(8)?,
        sha256: row.get(9)?,
        demo: row.get::<_, i64>(10)? != 0,
        ingested_at: row.get(11)?,
    })
}

/// Turns free text into an FTS5 query: every word a quoted term, OR-ed, so user input can never
/// be FTS syntax (no `NEAR`, no column filters, no unbalanced quotes).
pub fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" OR "))
}

impl Store {
    /// Adds a source, or returns the one already stored with the same text (`false`).
    pub async fn add_source(&self, new: NewSource) -> Result<(Source, bool)> {
        self.write(move |tx| {
            let conn = tx.conn();
            let existing = conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM sources s WHERE s.sha256 = ?1"))?
                .query_row([&new.sha256], source_from_row)
                .optional()?;
            if let Some(s) = existing {
                return Ok((s, false));
            }
            let next: i64 = conn
                .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'sources'", [], |r| r.get(0))
                .optional()?
                .unwrap_or(0)
                + 1;
            let id = format!("SRC{next:04}");
            conn.prepare_cached(
                "INSERT INTO sources (seq, id, title, url, tier, tier_reason, year, publication_type, \
                 text, sha256, demo, ingested_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                next,
                id,
                new.title,
                new.url,
                new.tier,
                new.tier_reason,
                new.year,
                new.publication_type,
                new.text,
                new.sha256,
                new.demo as i64,
                now_ms()
            ])?;
            let s = conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM sources s WHERE s.id = ?1"))?
                .query_row([&id], source_from_row)?;
            Ok((s, true))
        })
        .await
    }

    /// One source with its text.
    pub async fn get_source(&self, id: String) -> Result<Source> {
        self.read(move |conn| {
            let found = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS}, s.text FROM sources s WHERE s.id = ?1"
                ))?
                .query_row([&id], |r| {
                    let mut s = source_from_row(r)?;
                    s.text = Some(r.get(12)?);
                    Ok(s)
                })
                .optional()?;
            found.ok_or(Error::SourceNotFound(id))
        })
        .await
    }

    /// Sources in ingest order, after `cursor`.
    pub async fn list_sources(&self, cursor: Option<i64>, limit: usize) -> Result<SourcePage> {
        self.read(move |conn| {
            let mut sources: Vec<Source> = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM sources s WHERE s.seq > ?1 ORDER BY s.seq LIMIT ?2"
                ))?
                .query_map(
                    params![cursor.unwrap_or(0), limit as i64 + 1],
                    source_from_row,
                )?
                .collect::<rusqlite::Result<_>>()?;
            let next_cursor = if sources.len() > limit {
                sources.truncate(limit);
                sources.last().map(|s| s.seq.to_string())
            } else {
                None
            };
            Ok(SourcePage {
                sources,
                next_cursor,
            })
        })
        .await
    }

    /// How many sources the library holds.
    pub async fn source_count(&self) -> Result<u64> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT COUNT(*) FROM sources", [], |r| r.get::<_, i64>(0))? as u64)
        })
        .await
    }

    /// Sources matching at least one `anchor` word, ranked by BM25 over the anchor and the
    /// `context` words together, with their text: one query, one round trip. The pipeline's
    /// retrieval (a source must be about the title's topic; the context only reorders).
    pub async fn search_anchored(
        &self,
        anchor: String,
        context: String,
        limit: usize,
    ) -> Result<Vec<SourceHit>> {
        let Some(anchor) = fts_query(&anchor) else {
            return Ok(Vec::new());
        };
        let fts = match fts_query(&context) {
            Some(ctx) => format!("({anchor}) AND ({anchor} OR {ctx})"),
            None => anchor,
        };
        self.read(move |conn| {
            let hits = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS}, bm25(sources_fts, 3.0, 1.0) AS rank, s.text \
                     FROM sources_fts JOIN sources s ON s.seq = sources_fts.rowid \
                     WHERE sources_fts MATCH ?1 ORDER BY rank LIMIT ?2"
                ))?
                .query_map(params![fts, limit as i64], |r| {
                    let mut source = source_from_row(r)?;
                    source.text = Some(r.get(13)?);
                    Ok(SourceHit {
                        source,
                        rank: r.get(12)?,
                        snippet: String::new(),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(hits)
        })
        .await
    }

    /// The best `limit` sources for `query` by BM25 (title weighted 3× over text), each with
    /// a snippet. Free text only: see [`fts_query`].
    pub async fn search_sources(&self, query: String, limit: usize) -> Result<Vec<SourceHit>> {
        let Some(fts) = fts_query(&query) else {
            return Ok(Vec::new());
        };
        self.read(move |conn| {
            let hits = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS}, bm25(sources_fts, 3.0, 1.0) AS rank, \
                     snippet(sources_fts, 1, '', '', ' … ', 24) \
                     FROM sources_fts JOIN sources s ON s.seq = sources_fts.rowid \
                     WHERE sources_fts MATCH ?1 ORDER BY rank LIMIT ?2"
                ))?
                .query_map(params![fts, limit as i64], |r| {
                    Ok(SourceHit {
                        source: source_from_row(r)?,
                        rank: r.get(12)?,
                        snippet: r.get(13)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(hits)
        })
        .await
    }
}
