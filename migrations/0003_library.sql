-- 0003: the evidence library. Sources are documents with a tier label; the store keeps and
-- searches them, the pipeline decides what the tiers mean.

CREATE TABLE sources (
    -- Insertion order; `id` is derived from it (SRC0001, ...).
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    title            TEXT    NOT NULL,
    url              TEXT,
    tier             TEXT    NOT NULL,
    -- Why the source has its tier: "explicit", or the rule that matched.
    tier_reason      TEXT    NOT NULL,
    year             INTEGER,
    publication_type TEXT,
    text             TEXT    NOT NULL,
    -- SHA-256 of the text: the same content is stored once.
    sha256           TEXT    NOT NULL UNIQUE,
    -- 1 for the bundled demonstration library.
    demo             INTEGER NOT NULL DEFAULT 0,
    ingested_at      INTEGER NOT NULL
);

-- BM25 full-text index over title and text, kept in step by triggers (external content).
CREATE VIRTUAL TABLE sources_fts USING fts5(
    title, text,
    content = 'sources', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER sources_fts_insert AFTER INSERT ON sources BEGIN
    INSERT INTO sources_fts (rowid, title, text) VALUES (new.seq, new.title, new.text);
END;

CREATE TRIGGER sources_fts_delete AFTER DELETE ON sources BEGIN
    INSERT INTO sources_fts (sources_fts, rowid, title, text) VALUES ('delete', old.seq, old.title, old.text);
END;

CREATE TRIGGER sources_fts_update AFTER UPDATE OF title, text ON sources BEGIN
    INSERT INTO sources_fts (sources_fts, rowid, title, text) VALUES ('delete', old.seq, old.title, old.text);
    INSERT INTO sources_fts (rowid, title, text) VALUES (new.seq, new.title, new.text);
END;
