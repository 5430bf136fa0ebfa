-- 0006: the library indexed by analysed terms.
--
-- Retrieval matches a request's concept (a procedure's synonym group) against the library's
-- words as the pipeline analyses them: stemmed in Danish and English, Danish compounds split
-- into their parts. The analysed terms are stored beside the text they come from (space-
-- separated), and the full-text indexes are built over them: passages by heading and text,
-- sources by title (a passage no longer carries its source's title, which made every passage
-- of a document on the topic match and the index rank them all).
--
-- The daemon writes the terms; rows stored before this version have none until it re-indexes
-- the library at start (it does whenever `library_index.analyzer`, the fingerprint of the
-- analysis, differs from its own).

ALTER TABLE sources  ADD COLUMN title_terms   TEXT NOT NULL DEFAULT '';
ALTER TABLE passages ADD COLUMN heading_terms TEXT NOT NULL DEFAULT '';
ALTER TABLE passages ADD COLUMN text_terms    TEXT NOT NULL DEFAULT '';

DROP TABLE passages_fts;

-- External content: the terms live in `passages`; the triggers below keep the index in step
-- with every insert, update and delete, whoever makes it.
CREATE VIRTUAL TABLE passages_fts USING fts5(
    heading_terms, text_terms,
    content = 'passages', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
-- BM25 with the heading ×2 over the text, inside the index (a query ordered by `rank` with a
-- LIMIT reads only the best rows).
INSERT INTO passages_fts (passages_fts, rank) VALUES ('rank', 'bm25(2.0, 1.0)');

CREATE TRIGGER passages_fts_insert AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts (rowid, heading_terms, text_terms)
    VALUES (new.seq, new.heading_terms, new.text_terms);
END;
CREATE TRIGGER passages_fts_delete AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts (passages_fts, rowid, heading_terms, text_terms)
    VALUES ('delete', old.seq, old.heading_terms, old.text_terms);
END;
CREATE TRIGGER passages_fts_update AFTER UPDATE OF heading_terms, text_terms ON passages BEGIN
    INSERT INTO passages_fts (passages_fts, rowid, heading_terms, text_terms)
    VALUES ('delete', old.seq, old.heading_terms, old.text_terms);
    INSERT INTO passages_fts (rowid, heading_terms, text_terms)
    VALUES (new.seq, new.heading_terms, new.text_terms);
END;

CREATE VIRTUAL TABLE titles_fts USING fts5(
    title_terms,
    content = 'sources', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER titles_fts_insert AFTER INSERT ON sources BEGIN
    INSERT INTO titles_fts (rowid, title_terms) VALUES (new.seq, new.title_terms);
END;
CREATE TRIGGER titles_fts_delete AFTER DELETE ON sources BEGIN
    INSERT INTO titles_fts (titles_fts, rowid, title_terms) VALUES ('delete', old.seq, old.title_terms);
END;
CREATE TRIGGER titles_fts_update AFTER UPDATE OF title_terms ON sources BEGIN
    INSERT INTO titles_fts (titles_fts, rowid, title_terms) VALUES ('delete', old.seq, old.title_terms);
    INSERT INTO titles_fts (rowid, title_terms) VALUES (new.seq, new.title_terms);
END;

-- Index the rows already stored (their terms are empty until the daemon re-indexes, but
-- an external-content index must hold every row it will later be told to delete).
INSERT INTO passages_fts (passages_fts) VALUES ('rebuild');
INSERT INTO titles_fts (titles_fts) VALUES ('rebuild');

-- Which analysis built the index ('' = none yet: re-index).
CREATE TABLE library_index (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    analyzer TEXT NOT NULL
);
INSERT INTO library_index (id, analyzer) VALUES (1, '');
