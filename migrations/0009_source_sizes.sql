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
