-- 0005: sources as located passages.
--
-- A source is split into passages of bounded size along its headings and paragraphs (the
-- pipeline splits; the store keeps them). Each passage knows where it stands: its page range
-- (for paged formats), its heading path and its character offsets in the source's normalised
-- text. Retrieval searches passages, so a citation can point at a page, and a long guideline is
-- not reduced to its first page.

-- What was uploaded: its media type, the SHA-256 of the original file (kept under
-- <data_dir>/originals/, content-addressed) and its page count.
ALTER TABLE sources ADD COLUMN media_type      TEXT NOT NULL DEFAULT 'text/plain';
ALTER TABLE sources ADD COLUMN original_sha256 TEXT;
ALTER TABLE sources ADD COLUMN pages           INTEGER;

CREATE TABLE passages (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    source_seq  INTEGER NOT NULL REFERENCES sources (seq),
    -- Order within the source, from 0.
    ord         INTEGER NOT NULL CHECK (ord >= 0),
    -- The headings above it, outermost first, joined with " > ".
    heading     TEXT    NOT NULL DEFAULT '',
    page_start  INTEGER,
    page_end    INTEGER,
    char_start  INTEGER NOT NULL,
    char_end    INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    UNIQUE (source_seq, ord)
);

-- The passages' full-text index, with the source's title in every row so a passage of a
-- guideline about the topic matches the topic even where its own words do not name it.
-- Contentless: the text lives in `passages`; the store writes the index in the same
-- transaction as the rows.
CREATE VIRTUAL TABLE passages_fts USING fts5(
    title, heading, text,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Rank by BM25 with the title ×3 and the heading ×2 over the text, inside the index: a query
-- ordered by `rank` with a LIMIT then reads only the best rows instead of sorting every match.
INSERT INTO passages_fts (passages_fts, rank) VALUES ('rank', 'bm25(3.0, 2.0, 1.0)');
