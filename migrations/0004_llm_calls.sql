-- 0004: what the language models cost, call by call, and configuration reloads.
--
-- Money is stored as integer pico-USD (1e-12 USD): a price per million tokens with up to six
-- decimals is an exact integer per token, so sums and the cost cap compare exactly.

CREATE TABLE llm_calls (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT    NOT NULL REFERENCES runs (id),
    -- The run's attempt and the lease token it held when the call finished.
    attempt      INTEGER NOT NULL,
    lease_token  INTEGER NOT NULL,
    -- 'draft' (the first version) or 'revision' (the quality loop).
    stage        TEXT    NOT NULL CHECK (stage IN ('draft', 'revision')),
    -- 1 for the first draft, 2.. for revisions.
    iteration    INTEGER NOT NULL CHECK (iteration >= 1),
    provider     TEXT    NOT NULL,
    model        TEXT    NOT NULL,
    -- SHA-256 over provider, model, stage, iteration and the prompt: the step's identity for
    -- replay (a retried run reuses a finished call with the same key instead of paying again).
    step_key     TEXT    NOT NULL,
    tokens_in    INTEGER NOT NULL DEFAULT 0 CHECK (tokens_in >= 0),
    tokens_out   INTEGER NOT NULL DEFAULT 0 CHECK (tokens_out >= 0),
    cost_pusd    INTEGER NOT NULL DEFAULT 0 CHECK (cost_pusd >= 0),
    latency_ms   INTEGER NOT NULL,
    -- 'ok' (a completion), 'error' (the provider refused or failed; usage if it reported any),
    -- 'cancelled' (the run was cancelled while the call was in flight).
    outcome      TEXT    NOT NULL CHECK (outcome IN ('ok', 'error', 'cancelled')),
    error        TEXT,
    -- The completion text of an 'ok' call, for replay.
    response     TEXT,
    at           INTEGER NOT NULL
);

CREATE INDEX llm_calls_by_run ON llm_calls (run_id, id);
CREATE INDEX llm_calls_replay ON llm_calls (run_id, step_key) WHERE outcome = 'ok';
CREATE INDEX llm_calls_by_at ON llm_calls (at);

CREATE TRIGGER llm_calls_no_update BEFORE UPDATE ON llm_calls
BEGIN
    SELECT RAISE(ABORT, 'llm_calls is append-only');
END;
CREATE TRIGGER llm_calls_no_delete BEFORE DELETE ON llm_calls
BEGIN
    SELECT RAISE(ABORT, 'llm_calls is append-only');
END;

-- Run totals, kept by the same write that inserts the call.
ALTER TABLE runs ADD COLUMN cost_pusd  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN llm_calls  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN tokens_in  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN tokens_out INTEGER NOT NULL DEFAULT 0;

-- Every SIGHUP: what changed (key → [old, new]) and applied, what needs a restart, or why the
-- file was refused.
CREATE TABLE config_reloads (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    at               INTEGER NOT NULL,
    applied          TEXT    NOT NULL DEFAULT '{}',
    restart_required TEXT    NOT NULL DEFAULT '{}',
    error            TEXT
);
