-- 0008: deleting and re-tiering library sources, with an audit.
--
-- A run's evidence must stay defendable, so a source a run has used is never erased: deleting
-- it *retires* it (never retrieved again, still served for the runs that used it, with when
-- and why). A source no run has used is erased with its passages and index rows. Re-tiering
-- changes the tier future runs see; each run keeps the tier it was judged with, recorded when
-- it retrieved the source.

-- When and why a source was retired (NULL: in use).
ALTER TABLE sources ADD COLUMN retired_at     INTEGER;
ALTER TABLE sources ADD COLUMN retired_reason TEXT;

-- Which sources each run used (retrieved as its evidence), with the tier it judged them by.
-- Written with the run's `retrieved` event, in the same transaction.
CREATE TABLE source_citations (
    source_seq INTEGER NOT NULL REFERENCES sources (seq),
    run_id     TEXT    NOT NULL REFERENCES runs (id),
    tier       TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (source_seq, run_id)
) WITHOUT ROWID;
CREATE INDEX source_citations_by_run ON source_citations (run_id);

-- Every delete, retirement and re-tiering. Not tied to `sources` by a foreign key: the record
-- of an erased source outlives it.
CREATE TABLE source_audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id TEXT    NOT NULL,
    action    TEXT    NOT NULL CHECK (action IN ('erased', 'retired', 'retiered')),
    old_tier  TEXT    NOT NULL,
    -- The tier after a re-tiering; NULL otherwise.
    new_tier  TEXT,
    reason    TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX source_audit_by_source ON source_audit (source_id, seq);

CREATE TRIGGER source_audit_no_update BEFORE UPDATE ON source_audit
BEGIN
    SELECT RAISE(ABORT, 'source_audit is append-only');
END;
CREATE TRIGGER source_audit_no_delete BEFORE DELETE ON source_audit
BEGIN
    SELECT RAISE(ABORT, 'source_audit is append-only');
END;

-- The runs before this version: what their `retrieved` events name (with the tier each was
-- judged by), then what their results list (the tier as it is now: the best there is). A one-off
-- scan of the event log.
INSERT OR IGNORE INTO source_citations (source_seq, run_id, tier, at)
SELECT s.seq, e.run_id, COALESCE(json_extract(j.value, '$.tier'), s.tier), e.at
FROM run_events e, json_each(e.details, '$.sources') j
JOIN sources s ON s.id = json_extract(j.value, '$.id')
WHERE e.kind = 'retrieved' AND json_valid(e.details) AND j.type = 'object';

INSERT OR IGNORE INTO source_citations (source_seq, run_id, tier, at)
SELECT s.seq, r.id, s.tier, COALESCE(r.finished_at, r.created_at)
FROM runs r, json_each(r.result, '$.sources') j
JOIN sources s ON s.id = j.value
WHERE r.result IS NOT NULL AND json_valid(r.result) AND j.type = 'text';
