//! The evidence library's rows and its FTS5 index. The store keeps documents with a tier
//! label and ranks them with BM25; it does not know what a tier means (the pipeline does).

use super::Store;
use crate::error::{Error, Result};
use crate::model::{now_ms, time};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;
use std::collections::HashMap;

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
    /// What was uploaded (`application/pdf`, `text/markdown`, ...).
    pub media_type: String,
    /// SHA-256 of the uploaded file when it is kept as an original (PDF, DOCX).
    pub original_sha256: Option<String>,
    pub pages: Option<u32>,
    /// The title's analysed terms (space-separated), what the title index holds.
    pub title_terms: String,
    /// The source split into passages, in order.
    pub passages: Vec<NewPassage>,
}

/// A passage to store with its source.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPassage {
    pub ord: u32,
    pub heading: String,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    pub char_start: usize,
    pub char_end: usize,
    pub text: String,
    /// The heading's and the text's analysed terms (space-separated), what the index holds.
    pub heading_terms: String,
    pub text_terms: String,
    /// What retrieval asks of it beyond its words (the pipeline's features), if computed.
    pub features: Option<u32>,
}

/// A stored passage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredPassage {
    /// `SRC0001#3`: the source id and the passage's order.
    pub id: String,
    pub ord: u32,
    pub heading: String,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    pub char_start: usize,
    pub char_end: usize,
    pub text: String,
    #[serde(skip)]
    pub heading_terms: String,
    #[serde(skip)]
    pub text_terms: String,
}

/// A passage's place and features without its text: what retrieval reads of most passages
/// (from an index; see migration 0010).
#[derive(Debug, Clone, PartialEq)]
pub struct PassageLight {
    pub ord: u32,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    pub features: Option<u32>,
}

/// A passage a query matched.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedPassage {
    /// Its source, an index into [`PassageMatches::sources`].
    pub source: usize,
    pub ord: u32,
    pub features: Option<u32>,
    /// Bit `i`: it matched the `i`-th query.
    pub groups: u32,
    /// It matched the rank query too.
    pub ranked: bool,
}

/// Every passage some queries matched (unranked), each source once. Retired sources' passages
/// are left out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PassageMatches {
    pub sources: Vec<Source>,
    /// In source then passage order.
    pub passages: Vec<MatchedPassage>,
    /// A query matched more passages than the limit: passages after the limit (in rowid order,
    /// the most recently stored) were not read.
    pub truncated: bool,
    /// The sources whose title matched the title query, best first.
    pub titled: Vec<Source>,
    /// What computed the stored features (see [`Store::features_fingerprint`]).
    pub features: String,
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
    pub media_type: String,
    /// SHA-256 of the original file, served at `/api/sources/{id}/original` (PDF, DOCX).
    pub original_sha256: Option<String>,
    pub pages: Option<u32>,
    /// How many passages it was split into.
    pub passages: i64,
    #[serde(skip)]
    pub title_terms: String,
    /// When it was retired (never retrieved again, kept for the runs that used it).
    #[serde(serialize_with = "time::opt", skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
    /// Why it was retired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_reason: Option<String>,
}

/// What deleting a source did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Removal {
    /// No run had used it: it is gone with its passages and index rows. `original` is the
    /// SHA-256 of its original file when no other source shares that file (the caller removes
    /// the file; the store knows no files).
    Erased {
        source: Source,
        #[serde(skip)]
        original: Option<String>,
    },
    /// Runs had used it: it stays for them, retired. `cited_by` counts those runs.
    Retired { source: Source, cited_by: u64 },
}

/// One entry of a source's audit: a delete, a retirement or a re-tiering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub source_id: String,
    /// `erased`, `retired` or `retiered`.
    pub action: String,
    pub old_tier: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_tier: Option<String>,
    pub reason: String,
    #[serde(serialize_with = "time::req")]
    pub at: i64,
}

/// A source a run used, as the run judged it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Citation {
    pub source_id: String,
    /// The tier the run judged it by (the source's tier when the run retrieved it).
    pub tier: String,
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

/// A source's columns but its text. `sources_card` (migration 0009) is an index of exactly
/// these, so a query that names it reads them without walking the text's overflow pages (a
/// source's later columns sit after its text in the row).
pub(super) const COLUMNS: &str = "s.seq, s.id, s.title, s.url, s.tier, s.tier_reason, s.year, \
     s.publication_type, s.chars, s.sha256, s.demo, s.ingested_at, s.media_type, \
     s.original_sha256, s.pages, s.title_terms, s.passage_count, s.retired_at, s.retired_reason";
/// The column after [`COLUMNS`].
const AFTER_COLUMNS: usize = 19;

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
        media_type: row.get(12)?,
        original_sha256: row.get(13)?,
        pages: row.get(14)?,
        title_terms: row.get(15)?,
        passages: row.get(16)?,
        retired_at: row.get(17)?,
        retired_reason: row.get(18)?,
    })
}

const PASSAGE_COLUMNS: &str = "p.ord, p.heading, p.page_start, p.page_end, p.char_start, \
     p.char_end, p.text, p.heading_terms, p.text_terms";

/// A passage from [`PASSAGE_COLUMNS`] starting at `at`, of the source `source_id`.
fn passage_from_row(row: &Row<'_>, at: usize, source_id: &str) -> rusqlite::Result<StoredPassage> {
    let ord: u32 = row.get(at)?;
    Ok(StoredPassage {
        id: format!("{source_id}#{ord}"),
        ord,
        heading: row.get(at + 1)?,
        page_start: row.get(at + 2)?,
        page_end: row.get(at + 3)?,
        char_start: row.get::<_, i64>(at + 4)? as usize,
        char_end: row.get::<_, i64>(at + 5)? as usize,
        text: row.get(at + 6)?,
        heading_terms: row.get(at + 7)?,
        text_terms: row.get(at + 8)?,
    })
}

/// Inserts a source's passages (in the caller's transaction; triggers index them).
fn insert_passages(
    conn: &rusqlite::Connection,
    source_seq: i64,
    passages: &[NewPassage],
) -> rusqlite::Result<()> {
    let mut row = conn.prepare_cached(
        "INSERT INTO passages (source_seq, ord, heading, page_start, page_end, char_start, \
         char_end, text, heading_terms, text_terms, features) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for p in passages {
        row.execute(params![
            source_seq,
            p.ord,
            p.heading,
            p.page_start,
            p.page_end,
            p.char_start as i64,
            p.char_end as i64,
            p.text,
            p.heading_terms,
            p.text_terms,
            p.features
        ])?;
    }
    Ok(())
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

/// Sources whose analysed title matches `fts`, best first, at most `limit`; not retired.
fn titles_matching(conn: &rusqlite::Connection, fts: &str, limit: usize) -> Result<Vec<Source>> {
    Ok(conn
        .prepare_cached(&format!(
            "WITH top AS (SELECT rowid AS seq, rank FROM titles_fts \
             WHERE titles_fts MATCH ?1 ORDER BY rank LIMIT ?2) \
             SELECT {COLUMNS} FROM top JOIN sources s INDEXED BY sources_card \
             ON s.seq = top.seq WHERE s.retired_at IS NULL ORDER BY top.rank"
        ))?
        .query_map(params![fts, limit as i64], source_from_row)?
        .collect::<rusqlite::Result<_>>()?)
}

/// The fingerprint of what computed the stored passage features ('' when none).
pub(super) fn features_by(conn: &rusqlite::Connection) -> Result<String> {
    Ok(conn
        .prepare_cached("SELECT features FROM library_index WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or_default())
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
                 text, sha256, demo, ingested_at, media_type, original_sha256, pages, title_terms, \
                 chars, passage_count) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
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
                now_ms(),
                new.media_type,
                new.original_sha256,
                new.pages,
                new.title_terms,
                new.text.chars().count() as i64,
                new.passages.len() as i64
            ])?;
            insert_passages(conn, next, &new.passages)?;
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
                    s.text = Some(r.get(AFTER_COLUMNS)?);
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
                     WHERE sources_fts MATCH ?1 AND s.retired_at IS NULL ORDER BY rank LIMIT ?2"
                ))?
                .query_map(params![fts, limit as i64], |r| {
                    let mut source = source_from_row(r)?;
                    source.text = Some(r.get(AFTER_COLUMNS + 1)?);
                    Ok(SourceHit {
                        source,
                        rank: r.get(AFTER_COLUMNS)?,
                        snippet: String::new(),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(hits)
        })
        .await
    }

    /// The best `limit` sources for `query` by BM25 (title weighted 3× over text), each with
    /// a snippet; retired sources are left out (the listing shows them, marked). Free text
    /// only: see [`fts_query`].
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
                     WHERE sources_fts MATCH ?1 AND s.retired_at IS NULL ORDER BY rank LIMIT ?2"
                ))?
                .query_map(params![fts, limit as i64], |r| {
                    Ok(SourceHit {
                        source: source_from_row(r)?,
                        rank: r.get(AFTER_COLUMNS)?,
                        snippet: r.get(AFTER_COLUMNS + 1)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(hits)
        })
        .await
    }

    /// Sources whose analysed title matches `fts`, best first, at most `limit`.
    pub async fn search_titles(&self, fts: String, limit: usize) -> Result<Vec<Source>> {
        self.read(move |conn| titles_matching(conn, &fts, limit))
            .await
    }

    /// The passages that match any of `groups` (FTS5 queries over analysed terms, at most 32;
    /// `None` matches nothing), unranked, with which groups each matched and whether it
    /// matches `rank` too; at most `limit` passages a query; and the sources whose title
    /// matches `titles` (a query, a limit). Reads the full-text indexes and `passages_light`,
    /// never a passage's row. One read, so one round trip to a reader.
    pub async fn match_passages(
        &self,
        groups: Vec<Option<String>>,
        rank: Option<String>,
        titles: Option<(String, usize)>,
        limit: usize,
    ) -> Result<PassageMatches> {
        self.read(move |conn| {
            // Each query joins its matches to `passages_light` in the index's rowid order
            // (neighbouring passages share the index's pages).
            let mut query = conn.prepare_cached(
                "SELECT f.rowid, p.source_seq, p.ord, p.features FROM passages_fts f \
                 JOIN passages p INDEXED BY passages_light ON p.seq = f.rowid \
                 WHERE passages_fts MATCH ?1 LIMIT ?2",
            )?;
            let mut found: HashMap<i64, (i64, MatchedPassage)> = HashMap::new();
            let mut truncated = false;
            for (i, g) in groups.iter().take(32).enumerate() {
                let Some(g) = g else {
                    continue;
                };
                let mut n = 0;
                let mut rows = query.query(params![g, limit as i64 + 1])?;
                while let Some(r) = rows.next()? {
                    n += 1;
                    if n > limit {
                        truncated = true;
                        break;
                    }
                    let seq: i64 = r.get(0)?;
                    if let Some((_, m)) = found.get_mut(&seq) {
                        m.groups |= 1 << i;
                        continue;
                    }
                    let m = MatchedPassage {
                        source: 0,
                        ord: r.get(2)?,
                        features: r.get(3)?,
                        groups: 1 << i,
                        ranked: false,
                    };
                    found.insert(seq, (r.get(1)?, m));
                }
            }
            if let Some(rank) = &rank {
                let mut ranked = conn.prepare_cached(
                    "SELECT rowid FROM passages_fts WHERE passages_fts MATCH ?1 LIMIT ?2",
                )?;
                let mut rows = ranked.query(params![rank, limit as i64])?;
                while let Some(r) = rows.next()? {
                    if let Some((_, m)) = found.get_mut(&r.get::<_, i64>(0)?) {
                        m.ranked = true;
                    }
                }
            }
            let mut card = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM sources s INDEXED BY sources_card WHERE s.seq = ?1"
            ))?;
            let mut out = PassageMatches {
                truncated,
                ..Default::default()
            };
            // Source seq -> index in out.sources, or None when retired or gone.
            let mut slot: HashMap<i64, Option<usize>> = HashMap::new();
            let mut kept: Vec<MatchedPassage> = Vec::with_capacity(found.len());
            for (_, (source_seq, mut m)) in found {
                let at = match slot.get(&source_seq) {
                    Some(at) => *at,
                    None => {
                        let s = card
                            .query_row([source_seq], source_from_row)
                            .optional()?
                            .filter(|s| s.retired_at.is_none());
                        let at = s.map(|s| {
                            out.sources.push(s);
                            out.sources.len() - 1
                        });
                        slot.insert(source_seq, at);
                        at
                    }
                };
                let Some(at) = at else {
                    continue;
                };
                m.source = at;
                kept.push(m);
            }
            kept.sort_by_key(|m| (out.sources[m.source].seq, m.ord));
            out.passages = kept;
            if let Some((fts, limit)) = &titles {
                out.titled = titles_matching(conn, fts, *limit)?;
            }
            out.features = features_by(conn)?;
            Ok(out)
        })
        .await
    }

    /// Every passage's place and features of these sources, in passage order (from
    /// `passages_outline`, never the rows), and what computed the features; a source not found
    /// has none.
    pub async fn passage_outlines(
        &self,
        ids: Vec<String>,
    ) -> Result<(Vec<(String, Vec<PassageLight>)>, String)> {
        self.read(move |conn| {
            let mut seq_of = conn.prepare_cached("SELECT seq FROM sources WHERE id = ?1")?;
            let mut stmt = conn.prepare_cached(
                "SELECT ord, page_start, page_end, features FROM passages \
                 INDEXED BY passages_outline WHERE source_seq = ?1 ORDER BY ord",
            )?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let Some(seq) = seq_of.query_row([&id], |r| r.get::<_, i64>(0)).optional()? else {
                    out.push((id, Vec::new()));
                    continue;
                };
                let rows = stmt
                    .query_map([seq], |r| {
                        Ok(PassageLight {
                            ord: r.get(0)?,
                            page_start: r.get(1)?,
                            page_end: r.get(2)?,
                            features: r.get(3)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                out.push((id, rows));
            }
            Ok((out, features_by(conn)?))
        })
        .await
    }

    /// These passages (source id, their orders), in the order asked, with their analysed terms
    /// when `terms` (else empty); a passage not found is left out.
    pub async fn passages_at(
        &self,
        wanted: Vec<(String, Vec<u32>)>,
        terms: bool,
    ) -> Result<Vec<(String, StoredPassage)>> {
        self.read(move |conn| {
            let mut seq_of = conn.prepare_cached("SELECT seq FROM sources WHERE id = ?1")?;
            // Without their terms, passages are read at about half the bytes.
            let columns = if terms {
                PASSAGE_COLUMNS
            } else {
                "p.ord, p.heading, p.page_start, p.page_end, p.char_start, p.char_end, p.text, \
                 '', ''"
            };
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {columns} FROM passages p WHERE p.source_seq = ?1 AND p.ord = ?2"
            ))?;
            let mut out = Vec::new();
            for (id, ords) in wanted {
                let Some(seq) = seq_of.query_row([&id], |r| r.get::<_, i64>(0)).optional()? else {
                    continue;
                };
                for ord in ords {
                    if let Some(p) = stmt
                        .query_row(params![seq, ord], |r| passage_from_row(r, 0, &id))
                        .optional()?
                    {
                        out.push((id.clone(), p));
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// The fingerprint of what computed the stored passage features ('' when none).
    pub async fn features_fingerprint(&self) -> Result<String> {
        self.read(features_by).await
    }

    /// Passages after `after` (by seq) whose features to compute: seq, heading terms and text
    /// terms; at most `limit`.
    pub async fn passages_to_feature(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String, String)>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT seq, heading_terms, text_terms FROM passages \
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map(params![after, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Writes passages' features (seq, features); with `fingerprint`, records that every
    /// stored passage's features are now computed by it. One transaction.
    pub async fn set_features(
        &self,
        features: Vec<(i64, u32)>,
        fingerprint: Option<String>,
    ) -> Result<()> {
        self.write(move |tx| {
            let conn = tx.conn();
            let mut p = conn.prepare_cached("UPDATE passages SET features = ?2 WHERE seq = ?1")?;
            for (seq, f) in &features {
                p.execute(params![seq, f])?;
            }
            if let Some(f) = &fingerprint {
                conn.prepare_cached("UPDATE library_index SET features = ?1 WHERE id = 1")?
                    .execute([f])?;
            }
            Ok(())
        })
        .await
    }

    /// The fingerprint of the analysis the index was built with ('' when none).
    pub async fn index_analyzer(&self) -> Result<String> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT analyzer FROM library_index WHERE id = 1")?
                .query_row([], |r| r.get(0))
                .optional()?
                .unwrap_or_default())
        })
        .await
    }

    /// Passages after `after` (by seq) to re-index: seq, heading and text; at most `limit`.
    pub async fn passages_to_index(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String, String)>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT p.seq, p.heading, p.text FROM passages p \
                     JOIN sources s ON s.seq = p.source_seq \
                     WHERE p.seq > ?1 AND s.retired_at IS NULL ORDER BY p.seq LIMIT ?2",
                )?
                .query_map(params![after, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Every source's seq and title, to re-index titles.
    pub async fn titles_to_index(&self) -> Result<Vec<(i64, String)>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT seq, title FROM sources WHERE retired_at IS NULL ORDER BY seq",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Writes analysed terms (the triggers re-index the rows): passages as (seq, heading
    /// terms, text terms, features), sources as (seq, title terms); with `analyzer`, records that the
    /// whole index is now built by it. One transaction.
    pub async fn set_index_terms(
        &self,
        passages: Vec<(i64, String, String, Option<u32>)>,
        titles: Vec<(i64, String)>,
        analyzer: Option<String>,
    ) -> Result<()> {
        self.write(move |tx| {
            let conn = tx.conn();
            let mut p = conn.prepare_cached(
                "UPDATE passages SET heading_terms = ?2, text_terms = ?3, features = ?4 \
                 WHERE seq = ?1",
            )?;
            for (seq, h, t, f) in &passages {
                p.execute(params![seq, h, t, f])?;
            }
            let mut s =
                conn.prepare_cached("UPDATE sources SET title_terms = ?2 WHERE seq = ?1")?;
            for (seq, t) in &titles {
                s.execute(params![seq, t])?;
            }
            if let Some(a) = &analyzer {
                conn.prepare_cached("UPDATE library_index SET analyzer = ?1 WHERE id = 1")?
                    .execute([a])?;
            }
            Ok(())
        })
        .await
    }

    /// A source's passages, in order.
    pub async fn passages(&self, source_id: String) -> Result<Vec<StoredPassage>> {
        self.read(move |conn| {
            let seq: i64 = conn
                .prepare_cached("SELECT seq FROM sources WHERE id = ?1")?
                .query_row([&source_id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| Error::SourceNotFound(source_id.clone()))?;
            let passages = conn
                .prepare_cached(&format!(
                    "SELECT {PASSAGE_COLUMNS} FROM passages p WHERE p.source_seq = ?1 ORDER BY p.ord"
                ))?
                .query_map([seq], |r| passage_from_row(r, 0, &source_id))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(passages)
        })
        .await
    }

    /// Sources stored before passages existed (or without any): id, title and text, for the
    /// caller to split. At most `limit`.
    pub async fn sources_without_passages(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, String, String)>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT s.id, s.title, s.text FROM sources s WHERE NOT EXISTS \
                     (SELECT 1 FROM passages p WHERE p.source_seq = s.seq) ORDER BY s.seq LIMIT ?1",
                )?
                .query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Stores the passages of a source that has none (one write; a source that has passages
    /// by then is left as it is).
    pub async fn add_passages(&self, source_id: String, passages: Vec<NewPassage>) -> Result<bool> {
        self.write(move |tx| {
            let conn = tx.conn();
            let seq: i64 = conn
                .prepare_cached("SELECT seq FROM sources WHERE id = ?1")?
                .query_row([&source_id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| Error::SourceNotFound(source_id.clone()))?;
            let has: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM passages WHERE source_seq = ?1)")?
                .query_row([seq], |r| r.get(0))?;
            if has {
                return Ok(false);
            }
            insert_passages(conn, seq, &passages)?;
            conn.prepare_cached("UPDATE sources SET passage_count = ?2 WHERE seq = ?1")?
                .execute(params![seq, passages.len() as i64])?;
            Ok(true)
        })
        .await
    }
    /// Deletes a source, in one transaction with its audit entry. A source a run used is
    /// retired (never retrieved again: its index terms are emptied, so the triggers take it
    /// out of `passages_fts` and `titles_fts`; kept for those runs); one no run used is erased
    /// with its passages (the triggers keep every full-text index in step). An already retired
    /// source is refused.
    pub async fn remove_source(&self, id: String, reason: String) -> Result<Removal> {
        self.write(move |tx| {
            let conn = tx.conn();
            let source = conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM sources s WHERE s.id = ?1"))?
                .query_row([&id], source_from_row)
                .optional()?
                .ok_or_else(|| Error::SourceNotFound(id.clone()))?;
            if let Some(r) = &source.retired_reason {
                return Err(Error::SourceRetired {
                    id,
                    reason: r.clone(),
                });
            }
            let now = now_ms();
            let cited_by: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM source_citations WHERE source_seq = ?1")?
                .query_row([source.seq], |r| r.get(0))?;
            let audit = |action: &str| {
                conn.prepare_cached(
                    "INSERT INTO source_audit (source_id, action, old_tier, new_tier, reason, at) \
                     VALUES (?1, ?2, ?3, NULL, ?4, ?5)",
                )?
                .execute(params![id, action, source.tier, reason, now])
            };
            if cited_by > 0 {
                conn.prepare_cached(
                    "UPDATE sources SET retired_at = ?2, retired_reason = ?3, title_terms = '' \
                     WHERE seq = ?1",
                )?
                .execute(params![source.seq, now, reason])?;
                conn.prepare_cached(
                    "UPDATE passages SET heading_terms = '', text_terms = '' WHERE source_seq = ?1",
                )?
                .execute([source.seq])?;
                audit("retired")?;
                let source = conn
                    .prepare_cached(&format!("SELECT {COLUMNS} FROM sources s WHERE s.seq = ?1"))?
                    .query_row([source.seq], source_from_row)?;
                return Ok(Removal::Retired {
                    source,
                    cited_by: cited_by as u64,
                });
            }
            conn.prepare_cached("DELETE FROM passages WHERE source_seq = ?1")?
                .execute([source.seq])?;
            conn.prepare_cached("DELETE FROM sources WHERE seq = ?1")?
                .execute([source.seq])?;
            audit("erased")?;
            let original = match &source.original_sha256 {
                Some(sha) => {
                    let shared: bool = conn
                        .prepare_cached(
                            "SELECT EXISTS (SELECT 1 FROM sources WHERE original_sha256 = ?1)",
                        )?
                        .query_row([sha], |r| r.get(0))?;
                    (!shared).then(|| sha.clone())
                }
                None => None,
            };
            Ok(Removal::Erased { source, original })
        })
        .await
    }

    /// Gives a source another tier, for future runs (each run keeps the tier it judged the
    /// source by), in one transaction with its audit entry. `false` (and no entry) when it
    /// has that tier already; a retired source is refused.
    pub async fn retier_source(
        &self,
        id: String,
        tier: String,
        reason: String,
    ) -> Result<(Source, bool)> {
        self.write(move |tx| {
            let conn = tx.conn();
            let read = |conn: &rusqlite::Connection| {
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM sources s WHERE s.id = ?1"))?
                    .query_row([&id], source_from_row)
                    .optional()
            };
            let source = read(conn)?.ok_or_else(|| Error::SourceNotFound(id.clone()))?;
            if let Some(r) = &source.retired_reason {
                return Err(Error::SourceRetired {
                    id,
                    reason: r.clone(),
                });
            }
            if source.tier == tier {
                return Ok((source, false));
            }
            let now = now_ms();
            conn.prepare_cached(
                "UPDATE sources SET tier = ?2, tier_reason = 'explicit' WHERE seq = ?1",
            )?
            .execute(params![source.seq, tier])?;
            conn.prepare_cached(
                "INSERT INTO source_audit (source_id, action, old_tier, new_tier, reason, at) \
                 VALUES (?1, 'retiered', ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, source.tier, tier, reason, now])?;
            let source = read(conn)?.ok_or_else(|| Error::SourceNotFound(id.clone()))?;
            Ok((source, true))
        })
        .await
    }

    /// A source's audit, oldest first (kept after the source is erased).
    pub async fn source_history(&self, id: String) -> Result<Vec<AuditEntry>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT source_id, action, old_tier, new_tier, reason, at FROM source_audit \
                     WHERE source_id = ?1 ORDER BY seq",
                )?
                .query_map([&id], |r| {
                    Ok(AuditEntry {
                        source_id: r.get(0)?,
                        action: r.get(1)?,
                        old_tier: r.get(2)?,
                        new_tier: r.get(3)?,
                        reason: r.get(4)?,
                        at: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// How many runs used a source.
    pub async fn citing_runs(&self, id: String) -> Result<u64> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM source_citations c JOIN sources s \
                     ON s.seq = c.source_seq WHERE s.id = ?1",
                )?
                .query_row([&id], |r| r.get::<_, i64>(0))? as u64)
        })
        .await
    }

    /// The sources a run used, with the tier it judged each by.
    pub async fn run_citations(&self, run_id: String) -> Result<Vec<Citation>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT s.id, c.tier FROM source_citations c JOIN sources s \
                     ON s.seq = c.source_seq WHERE c.run_id = ?1 ORDER BY s.seq",
                )?
                .query_map([&run_id], |r| {
                    Ok(Citation {
                        source_id: r.get(0)?,
                        tier: r.get(1)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}
