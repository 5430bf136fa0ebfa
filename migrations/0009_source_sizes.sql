-- A source's size in characters and its number of passages, stored when it is added.
--
-- Both were computed per row: `length(text)` reads the whole document (tens to hundreds of
-- kilobytes of overflow pages) and a COUNT over its passages, for every passage a retrieval
-- query returned. At 20,000 passages that was 90 % of the index query's 30 ms; at 200,000 it
-- grew with the library. A source's text and passages never change after it is added (a
-- re-index rewrites only their analysed terms), so the figures are fixed at insert.
ALTER TABLE sources ADD COLUMN chars INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN passage_count INTEGER NOT NULL DEFAULT 0;
UPDATE sources SET
    chars = length(text),
    passage_count = (SELECT COUNT(*) FROM passages p WHERE p.source_seq = sources.seq);

-- A source's card: every column but its text, as an index. Columns added by later migrations
-- sit after the text in the row, so reading them walked the text's overflow pages (a 60-page
-- guideline is tens of them) for every source a query returned; a query that names this index
-- (`INDEXED BY sources_card`) reads the card alone. At 200,000 passages: 50 sources by seq
-- 1.25 ms -> 0.14 ms; the title query 1.6 -> 0.5 ms. It must list exactly the columns of
-- `COLUMNS` in actors/src/store/library.rs.
CREATE INDEX sources_card ON sources (
    seq, id, title, url, tier, tier_reason, year, publication_type, chars, sha256, demo,
    ingested_at, media_type, original_sha256, pages, title_terms, passage_count, retired_at,
    retired_reason
);
