-- 0010: what retrieval asks of every passage of a document, kept beside the passage.
--
-- Retrieval picks a guideline's passages per outline section and leaves out those about the
-- other population. It read and re-analysed the text of every passage of every chosen document
-- for every run: at 200,000 passages that was most of a retrieval's 60 ms. None of it depends
-- on the request, so the pipeline computes it when a passage is stored, as one integer
-- (`features`: which sections' cue words, which populations, ages, weight-based doses; see
-- pipeline/src/features.rs). NULL until computed. `library_index.features` is the fingerprint
-- of what computed the stored features (the analysis, the section cues and the lexicon's
-- population words); retrieval uses them only when it is the one in force, and the daemon
-- recomputes them at start and after a reload that changes it.
ALTER TABLE passages ADD COLUMN features INTEGER;
ALTER TABLE library_index ADD COLUMN features TEXT NOT NULL DEFAULT '';

-- Retrieval reads passages by these two indexes alone (never their rows, whose text and terms
-- run to kilobytes of overflow pages):
-- the passages a query matched, by seq (the full-text index's rowid): their source, order and
-- features (a narrow index: at 200,000 passages a query matching 1,700 of them reads them in
-- about 2 ms);
CREATE INDEX passages_light ON passages (seq, source_seq, ord, features);
-- a chosen document's passages in order: their place and features.
CREATE INDEX passages_outline ON passages (source_seq, ord, page_start, page_end, features);
