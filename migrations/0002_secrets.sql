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
