-- 0007: a run that waits before it is claimed again, and what is known about a model call.
--
-- `not_before` (Unix ms): a run re-queued because its model provider stayed down through the
-- retry window is not claimed before this time. NULL for every other queued run, and cleared
-- when the run is claimed or a person retries or acknowledges it. The daemon reads it at every
-- claim (so a restart keeps the wait) and sets a timer to the earliest one.
ALTER TABLE runs ADD COLUMN not_before INTEGER;

-- The earliest waiting run, read without a scan of the queue. Partial: only waiting runs.
CREATE INDEX runs_waiting ON runs (not_before) WHERE status = 'QUEUED' AND not_before IS NOT NULL;

-- `estimated`: the call was cut after it was sent (a timeout, a broken stream, a
-- cancellation), so its usage is the reserved worst case, not the provider's report.
-- `truncated`: the answer stopped at `max_tokens`. Until this version both were said only in
-- the events; older calls are marked from them (the call's `llm_call` event is written in the
-- same transaction as its row, with the same `at`; a truncated answer is the finished call of
-- an iteration whose `iteration_scored` event says `truncated`).
ALTER TABLE llm_calls ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0 CHECK (estimated IN (0, 1));
ALTER TABLE llm_calls ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0 CHECK (truncated IN (0, 1));

-- The rows are append-only; the guard steps aside for this one backfill.
DROP TRIGGER llm_calls_no_update;
UPDATE llm_calls SET estimated = 1 WHERE EXISTS (
    SELECT 1 FROM run_events e
    WHERE e.run_id = llm_calls.run_id AND e.kind = 'llm_call' AND e.at = llm_calls.at
      AND json_extract(e.details, '$.iteration') = llm_calls.iteration
      AND json_extract(e.details, '$.estimated') = 1
);
UPDATE llm_calls SET truncated = 1 WHERE outcome = 'ok' AND EXISTS (
    SELECT 1 FROM run_events e
    WHERE e.run_id = llm_calls.run_id AND e.kind = 'iteration_scored'
      AND json_extract(e.details, '$.iteration') = llm_calls.iteration
      AND json_extract(e.details, '$.truncated') = 1
);
CREATE TRIGGER llm_calls_no_update BEFORE UPDATE ON llm_calls
BEGIN
    SELECT RAISE(ABORT, 'llm_calls is append-only');
END;
