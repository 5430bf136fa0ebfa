-- The database as schema version 10 left it, with data: FROZEN. Never edit this file;
-- when a migration is added, add the next version's snapshot beside it.
-- `store::tests::every_older_schema_migrates_with_its_data` opens each snapshot with the
-- current binary and checks that the data survives and the queue works on it.

-- ===== migrations/0001_queue.sql =====
-- 0001: the durable job queue.
--
-- `runs` holds one row per job and is the only authority on a job's state: nothing about a
-- run lives only in memory. `run_events` is its append-only history: every transition of a
-- run updates the row and appends an event in the same transaction.

CREATE TABLE runs (
    -- Insertion order: the FIFO order of the queue and the cursor of `GET /api/runs`.
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Public identifier (UUID v7, text), what clients and the event log use.
    id               TEXT    NOT NULL UNIQUE,
    procedure        TEXT    NOT NULL,
    context          TEXT    NOT NULL DEFAULT '',
    -- Per-run options as a JSON object; the job runner interprets them, the queue does not.
    params           TEXT    NOT NULL DEFAULT '{}',
    -- Higher first; FIFO (seq) within one priority.
    priority         INTEGER NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL
        CHECK (status IN ('QUEUED', 'RUNNING', 'NEEDS_ACK', 'DONE', 'FAILED', 'CANCELLED')),
    -- Claims made in the current attempt budget; a retry resets it.
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    -- "<daemon instance>/<worker>" while RUNNING, else NULL.
    lease_owner      TEXT,
    -- Fencing token: incremented by every claim; heartbeat, complete, fail and needs-ack
    -- are applied only when they carry the current value.
    lease_token      INTEGER NOT NULL DEFAULT 0,
    locked_at        INTEGER,
    heartbeat_at     INTEGER,
    -- Set by a cancel of a RUNNING job; the worker stops at its next await.
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    -- JSON written by the job runner on success.
    result           TEXT,
    -- Evidence-gap acknowledgement (the pipeline fills these): what was missing (JSON) and
    -- who acknowledged it, when, with which note, for which tiers (JSON).
    ack_required     TEXT,
    ack_by           TEXT,
    ack_note         TEXT,
    ack_tiers        TEXT,
    ack_at           INTEGER,
    idempotency_key  TEXT,
    -- Unix milliseconds.
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);

-- The claim path: the next QUEUED run by priority, then FIFO, read straight off the index
-- (no sort). Partial, so finished runs cost it nothing; the claim query names it with
-- INDEXED BY because the planner would otherwise pick runs_status_seq and sort every queued
-- run on every claim.
CREATE INDEX runs_queued ON runs (priority DESC, seq) WHERE status = 'QUEUED';
-- Idempotent enqueue; partial so the runs without a key cost nothing.
CREATE UNIQUE INDEX runs_idempotency_key ON runs (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Listing by status with the seq cursor.
CREATE INDEX runs_status_seq ON runs (status, seq);
-- The reaper's scan of live leases.
CREATE INDEX runs_running_heartbeat ON runs (heartbeat_at) WHERE status = 'RUNNING';

CREATE TABLE run_events (
    -- Monotonic: the SSE `id:` and the `Last-Event-ID` replay point.
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id   TEXT    NOT NULL REFERENCES runs (id),
    at       INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    -- The run's status after this event.
    status   TEXT    NOT NULL,
    -- Which actor caused it: "http", "queue", "worker:<owner>", "reaper", "recovery", ...
    actor    TEXT    NOT NULL,
    details  TEXT    NOT NULL DEFAULT '{}'
);

CREATE INDEX run_events_by_run ON run_events (run_id, id);

CREATE TRIGGER run_events_no_update BEFORE UPDATE ON run_events
BEGIN
    SELECT RAISE(ABORT, 'run_events is append-only');
END;

CREATE TRIGGER run_events_no_delete BEFORE DELETE ON run_events
BEGIN
    SELECT RAISE(ABORT, 'run_events is append-only');
END;

-- Runs per status, kept by triggers in the same transaction as every insert and status
-- change, so `/health` and `/metrics` read six rows instead of counting the whole table.
CREATE TABLE run_counts (
    status TEXT PRIMARY KEY,
    n      INTEGER NOT NULL CHECK (n >= 0)
) WITHOUT ROWID;

INSERT INTO run_counts (status, n)
VALUES ('QUEUED', 0), ('RUNNING', 0), ('NEEDS_ACK', 0), ('DONE', 0), ('FAILED', 0), ('CANCELLED', 0);

CREATE TRIGGER run_counts_insert AFTER INSERT ON runs
BEGIN
    UPDATE run_counts SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER run_counts_update AFTER UPDATE OF status ON runs
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE run_counts SET n = n - 1 WHERE status = OLD.status;
    UPDATE run_counts SET n = n + 1 WHERE status = NEW.status;
END;

-- ===== migrations/0002_secrets.sql =====
-- 0002: stored secrets (LLM and NCBI API keys), encrypted at rest, and the key check.
--
-- Only the crypto module can read `ciphertext`/`nonce`: XChaCha20-Poly1305 under the
-- daemon's secret key, with the secret's name as associated data.

CREATE TABLE secrets (
    name        TEXT    PRIMARY KEY,
    ciphertext  BLOB    NOT NULL,
    nonce       BLOB    NOT NULL,
    -- The public id of the key that sealed it (crypto::SecretKey::id).
    key_id      TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- The key the secrets are encrypted with, recorded at the first start with a key and moved
-- by rotation: a daemon started with another key is refused before it serves anything.
CREATE TABLE secret_key_check (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    key_id      TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- ===== migrations/0003_library.sql =====
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

-- ===== migrations/0004_llm_calls.sql =====
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

-- Seed: runs in three states, with their events (run_counts follows by its triggers).
INSERT INTO runs (id, procedure, context, params, priority, status, attempts, max_attempts,
    lease_token, result, created_at, updated_at, started_at, finished_at)
VALUES ('01900000-0000-7000-8000-000000000001', 'Anafylaksi behandling', 'akutmodtagelse',
    '{"missing_tier_policy":"STRICT"}', 0, 'DONE', 1, 3, 1,
    '{"score":9.5,"writer":"offline-v1","sources":["SRC0001"]}', 1700000000000, 1700000005000,
    1700000001000, 1700000005000);
INSERT INTO runs (id, procedure, context, params, priority, status, attempts, max_attempts,
    lease_token, ack_required, created_at, updated_at)
VALUES ('01900000-0000-7000-8000-000000000002', 'Pleuradræn anlæggelse', '', '{}', 5,
    'NEEDS_ACK', 1, 3, 1, '{"missing_tiers":["danish_guideline"],"found":{}}',
    1700000010000, 1700000012000);
INSERT INTO runs (id, procedure, context, params, priority, status, attempts, max_attempts,
    idempotency_key, created_at, updated_at)
VALUES ('01900000-0000-7000-8000-000000000003', 'Lumbalpunktur', '', '{}', 0, 'QUEUED', 0, 3,
    'client-key-1', 1700000020000, 1700000020000);
INSERT INTO run_events (run_id, at, kind, status, actor, details) VALUES
    ('01900000-0000-7000-8000-000000000001', 1700000000000, 'enqueued', 'QUEUED', 'http', '{}'),
    ('01900000-0000-7000-8000-000000000001', 1700000001000, 'claimed', 'RUNNING', 'queue', '{}'),
    ('01900000-0000-7000-8000-000000000001', 1700000005000, 'completed', 'DONE', 'worker:t/w0', '{}'),
    ('01900000-0000-7000-8000-000000000002', 1700000010000, 'enqueued', 'QUEUED', 'http', '{}'),
    ('01900000-0000-7000-8000-000000000002', 1700000012000, 'needs_ack', 'NEEDS_ACK', 'worker:t/w0', '{}'),
    ('01900000-0000-7000-8000-000000000003', 1700000020000, 'enqueued', 'QUEUED', 'http', '{}');

-- Seed: a stored secret (opaque bytes: the test checks it is kept, not that it opens) and the
-- recorded key id.
INSERT INTO secrets (name, ciphertext, nonce, key_id, updated_at)
VALUES ('openai_api_key', X'00112233445566778899', X'000102030405060708090a0b0c0d0e0f1011121314151617',
    'k-frozen', 1700000030000);
INSERT INTO secret_key_check (singleton, key_id, updated_at) VALUES (1, 'k-frozen', 1700000030000);

-- Seed: two library sources (the FTS index follows by its triggers).
INSERT INTO sources (id, title, url, tier, tier_reason, year, publication_type, text, sha256,
    demo, ingested_at)
VALUES ('SRC0001', 'Anafylaksi: national vejledning', 'https://sst.dk/anafylaksi',
    'danish_guideline', 'domain sst.dk', 2024, NULL,
    'Adrenalin 0,5 mg gives intramuskulært i låret ved anafylaksi hos voksne.',
    'a1', 0, 1700000040000),
    ('SRC0002', 'Pleural drains: a statement', NULL, 'european_guideline', 'explicit', 2021,
    'practice guideline', 'Ultrasound guidance is recommended for every pleural drain insertion.',
    'a2', 0, 1700000041000);

-- Seed: the DONE run's model calls and their totals on the run, and one reload.
INSERT INTO llm_calls (run_id, attempt, lease_token, stage, iteration, provider, model, step_key,
    tokens_in, tokens_out, cost_pusd, latency_ms, outcome, error, response, at)
VALUES ('01900000-0000-7000-8000-000000000001', 1, 1, 'draft', 1, 'openai', 'gpt-4o', 'sk1',
    1000, 500, 7500000000, 1200, 'ok', NULL, '## Indikationer', 1700000002000),
    ('01900000-0000-7000-8000-000000000001', 1, 1, 'revision', 2, 'openai', 'gpt-4o', 'sk2',
    1500, 0, 3750000000, 900, 'error', 'openai answered 503', NULL, 1700000003000);
UPDATE runs SET cost_pusd = 11250000000, llm_calls = 2, tokens_in = 2500, tokens_out = 500
    WHERE id = '01900000-0000-7000-8000-000000000001';
INSERT INTO config_reloads (at, applied, restart_required, error)
VALUES (1700000050000, '{"quality_loop_max_iterations":[3,4]}', '{}', NULL);

-- ===== migrations/0005_passages.sql =====
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

-- Seed: an uploaded PDF source with two located passages (and their index rows), next to the
-- text sources of earlier versions, which have none yet (the daemon splits those at start).
INSERT INTO sources (id, title, url, tier, tier_reason, year, publication_type, text, sha256,
    demo, ingested_at, media_type, original_sha256, pages)
VALUES ('SRC0003', 'Lumbalpunktur: regional instruks', NULL, 'danish_guideline', 'explicit',
    2023, NULL, 'Lumbalpunktur udføres i sideleje.

Kanylen indføres mellem L3 og L4.', 'a3', 0, 1700000060000, 'application/pdf', 'f00d', 12);
INSERT INTO passages (source_seq, ord, heading, page_start, page_end, char_start, char_end, text)
VALUES ((SELECT seq FROM sources WHERE id = 'SRC0003'), 0, 'Procedure', 3, 3, 0, 32,
    'Lumbalpunktur udføres i sideleje.'),
    ((SELECT seq FROM sources WHERE id = 'SRC0003'), 1, 'Procedure > Teknik', 4, 5, 34, 67,
    'Kanylen indføres mellem L3 og L4.');
INSERT INTO passages_fts (rowid, title, heading, text)
SELECT seq, 'Lumbalpunktur: regional instruks', heading, text FROM passages;

-- ===== migrations/0006_analysed_index.sql =====
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

-- Seed: the PDF source's title and passages with analysed terms (as the daemon writes them),
-- and the index marked as built by an analysis named 'frozen'.
UPDATE sources SET title_terms = 'lumbalpunktur lumbal punktur regional instruks' WHERE id = 'SRC0003';
UPDATE passages SET heading_terms = 'procedur', text_terms = 'lumbalpunktur lumbal punktur udfør sidelej side lej'
WHERE ord = 0;
UPDATE passages SET heading_terms = 'procedur teknik', text_terms = 'kanyl indfør l3 l4'
WHERE ord = 1;
UPDATE library_index SET analyzer = 'frozen';

-- ===== migrations/0007_requeue_delay.sql =====
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

-- Seed: a run waiting for its provider (not claimed before 2100), and a cut call of it,
-- estimated, and a truncated one.
INSERT INTO runs (id, procedure, context, params, priority, status, attempts, max_attempts,
    error, not_before, created_at, updated_at)
VALUES ('01900000-0000-7000-8000-000000000004', 'Thoraxdræn', '', '{}', 9, 'QUEUED', 1, 3,
    'openai is unavailable', 4102444800000, 1700000060000, 1700000062000);
INSERT INTO run_events (run_id, at, kind, status, actor, details) VALUES
    ('01900000-0000-7000-8000-000000000004', 1700000060000, 'enqueued', 'QUEUED', 'http', '{}'),
    ('01900000-0000-7000-8000-000000000004', 1700000061000, 'claimed', 'RUNNING', 'queue', '{}'),
    ('01900000-0000-7000-8000-000000000004', 1700000062000, 'requeued', 'QUEUED', 'worker:t/w0',
     '{"not_before":"2100-01-01T00:00:00.000Z"}');
INSERT INTO llm_calls (run_id, attempt, lease_token, stage, iteration, provider, model, step_key,
    tokens_in, tokens_out, cost_pusd, latency_ms, outcome, error, response, at, estimated, truncated)
VALUES ('01900000-0000-7000-8000-000000000004', 1, 1, 'draft', 1, 'openai', 'gpt-4o', 'sk4',
    1000, 4096, 50000000000, 30000, 'error', 'timed out', NULL, 1700000061500, 1, 0),
    ('01900000-0000-7000-8000-000000000004', 1, 1, 'draft', 1, 'openai', 'gpt-4o', 'sk4',
    1000, 4096, 50000000000, 30000, 'ok', NULL, '## Indikationer', 1700000061600, 0, 1);
UPDATE runs SET cost_pusd = 100000000000, llm_calls = 2, tokens_in = 2000, tokens_out = 8192
    WHERE id = '01900000-0000-7000-8000-000000000004';

-- ===== migrations/0008_source_audit.sql =====
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

-- Seed: SRC0002 re-tiered (its audit entry) and used by the run waiting for an
-- acknowledgement, judged by its tier then.
UPDATE sources SET tier = 'international_guideline', tier_reason = 'explicit' WHERE id = 'SRC0002';
INSERT INTO source_audit (source_id, action, old_tier, new_tier, reason, at)
VALUES ('SRC0002', 'retiered', 'european_guideline', 'international_guideline',
    'an ERS statement, read as international', 1700000070000);
INSERT INTO source_citations (source_seq, run_id, tier, at)
SELECT seq, '01900000-0000-7000-8000-000000000002', 'european_guideline', 1700000011000
FROM sources WHERE id = 'SRC0002';

-- ===== migrations/0009_source_sizes.sql =====
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

-- ===== migrations/0010_passage_features.sql =====
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

-- Seed: the features of the passages stored then (as this version computed them).
UPDATE passages SET features = 0;
UPDATE library_index SET features = 'frozen-features';

PRAGMA user_version = 10;
