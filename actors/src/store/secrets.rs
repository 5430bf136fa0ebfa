//! Stored secrets: rows of ciphertext in, [`SecretValue`]s out. Sealing and opening happen
//! here, on the store's threads, through the crypto module; no caller ever sees a nonce or a
//! ciphertext.

use super::Store;
use crate::crypto::{self, OpenError, Sealed, SecretKey, SecretValue};
use crate::error::{Error, Result};
use crate::model::now_ms;
use rusqlite::{params, OptionalExtension};

/// What the key check found at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// The database had no key recorded; this key is now recorded.
    Recorded,
    /// The configured key is the recorded one.
    Matches,
}

/// A stored secret's metadata (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMeta {
    pub name: String,
    pub key_id: String,
    pub updated_at: i64,
}

/// A stored secret opened with the configured key, or why it could not be.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    pub meta: SecretMeta,
    pub value: std::result::Result<SecretValue, OpenError>,
}

impl Store {
    /// The key id recorded in the database, if any.
    pub async fn recorded_key_id(&self) -> Result<Option<String>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT key_id FROM secret_key_check WHERE singleton = 1")?
                .query_row([], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    /// Checks `key_id` against the recorded key, recording it if none is.
    pub async fn check_key(&self, key_id: String) -> Result<KeyCheck> {
        self.write(move |tx| {
            let recorded: Option<String> = tx
                .conn()
                .prepare_cached("SELECT key_id FROM secret_key_check WHERE singleton = 1")?
                .query_row([], |r| r.get(0))
                .optional()?;
            match recorded {
                Some(r) if r == key_id => Ok(KeyCheck::Matches),
                Some(recorded) => Err(Error::KeyMismatch {
                    recorded,
                    configured: key_id,
                }),
                None => {
                    record_key(tx.conn(), &key_id)?;
                    Ok(KeyCheck::Recorded)
                }
            }
        })
        .await
    }

    /// Replaces the recorded key id; only for `init-secret --force` on a database that holds
    /// no secrets.
    pub async fn reset_key(&self, key_id: String) -> Result<()> {
        self.write(move |tx| {
            let n: i64 = tx
                .conn()
                .query_row("SELECT COUNT(*) FROM secrets", [], |r| r.get(0))?;
            if n > 0 {
                return Err(Error::Invalid(format!(
                    "{n} secrets are encrypted under the current key; use rotate-secret"
                )));
            }
            record_key(tx.conn(), &key_id)
        })
        .await
    }

    /// How many secrets are stored.
    pub async fn secret_count(&self) -> Result<u64> {
        self.read(|conn| {
            let n: i64 = conn.query_row("SELECT COUNT(*) FROM secrets", [], |r| r.get(0))?;
            Ok(n as u64)
        })
        .await
    }

    /// Encrypts and stores `value` under `name`, replacing any previous value.
    pub async fn put_secret(
        &self,
        name: String,
        key: SecretKey,
        value: SecretValue,
    ) -> Result<SecretMeta> {
        self.write(move |tx| {
            let sealed = crypto::seal(&key, &name, &value);
            let now = now_ms();
            tx.conn()
                .prepare_cached(
                    "INSERT INTO secrets (name, ciphertext, nonce, key_id, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET \
                     ciphertext = excluded.ciphertext, nonce = excluded.nonce, \
                     key_id = excluded.key_id, updated_at = excluded.updated_at",
                )?
                .execute(params![
                    name,
                    sealed.ciphertext,
                    sealed.nonce,
                    sealed.key_id,
                    now
                ])?;
            Ok(SecretMeta {
                name,
                key_id: sealed.key_id,
                updated_at: now,
            })
        })
        .await
    }

    /// Reads and opens one secret; `None` if it is not stored.
    pub async fn get_secret(&self, name: String, key: SecretKey) -> Result<Option<StoredSecret>> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT ciphertext, nonce, key_id, updated_at FROM secrets WHERE name = ?1",
                )?
                .query_row([&name], |r| {
                    Ok((
                        Sealed {
                            ciphertext: r.get(0)?,
                            nonce: r.get(1)?,
                            key_id: r.get(2)?,
                        },
                        r.get::<_, i64>(3)?,
                    ))
                })
                .optional()?;
            Ok(row.map(|(sealed, updated_at)| StoredSecret {
                value: crypto::open(&key, &name, &sealed),
                meta: SecretMeta {
                    name: name.clone(),
                    key_id: sealed.key_id,
                    updated_at,
                },
            }))
        })
        .await
    }

    /// Deletes a stored secret; `false` if there was none.
    pub async fn delete_secret(&self, name: String) -> Result<bool> {
        self.write(move |tx| {
            Ok(tx
                .conn()
                .prepare_cached("DELETE FROM secrets WHERE name = ?1")?
                .execute([name])?
                > 0)
        })
        .await
    }

    /// Re-encrypts every secret from `old` to `new` and records `new` as the key, in one
    /// transaction: either every secret moves or none does. Returns how many moved.
    pub async fn rotate_secrets(&self, old: SecretKey, new: SecretKey) -> Result<usize> {
        self.write(move |tx| {
            let rows: Vec<(String, Sealed)> = tx
                .conn()
                .prepare("SELECT name, ciphertext, nonce, key_id FROM secrets ORDER BY name")?
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        Sealed {
                            ciphertext: r.get(1)?,
                            nonce: r.get(2)?,
                            key_id: r.get(3)?,
                        },
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let now = now_ms();
            for (name, sealed) in &rows {
                let value = crypto::open(&old, name, sealed)?;
                let resealed = crypto::seal(&new, name, &value);
                tx.conn()
                    .prepare_cached(
                        "UPDATE secrets SET ciphertext = ?2, nonce = ?3, key_id = ?4, updated_at = ?5 \
                         WHERE name = ?1",
                    )?
                    .execute(params![name, resealed.ciphertext, resealed.nonce, resealed.key_id, now])?;
            }
            record_key(tx.conn(), &new.id())?;
            Ok(rows.len())
        })
        .await
    }
}

fn record_key(conn: &rusqlite::Connection, key_id: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO secret_key_check (singleton, key_id, updated_at) VALUES (1, ?1, ?2) \
         ON CONFLICT (singleton) DO UPDATE SET key_id = excluded.key_id, updated_at = excluded.updated_at",
    )?
    .execute(params![key_id, now_ms()])?;
    Ok(())
}
