//! Secrets at rest: the only code that sees keys, nonces and ciphertext.
//!
//! XChaCha20-Poly1305 with a fresh random 192-bit nonce per write (random nonces of that size
//! never collide in practice) and the secret's *name* as associated data, so a ciphertext
//! copied onto another name fails to open. Key material and plaintext live in zeroizing
//! buffers and print as `***`.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the secret key is not valid base64")]
    NotBase64,
    #[error(
        "the secret key must be 32 bytes (base64 of 32 bytes, 44 characters); it is {0} bytes"
    )]
    WrongLength(usize),
}

/// Why a stored secret could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(
        "secret {name} was encrypted under key {stored_key_id}, not the configured key {key_id}"
    )]
    OtherKey {
        name: String,
        stored_key_id: String,
        key_id: String,
    },
    #[error(
        "secret {name} does not decrypt: its ciphertext was altered or stored under another name; \
         store it again with PUT /api/keys/{name}"
    )]
    Tampered { name: String },
}

/// A 256-bit key. Zeroized on drop; never printed.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; 32]>);

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> SecretKey {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&key);
        SecretKey(bytes)
    }

    /// Parses the base64 text of a key (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<SecretKey, KeyError> {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| KeyError::NotBase64)?,
        );
        if decoded.len() != 32 {
            return Err(KeyError::WrongLength(decoded.len()));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&decoded);
        Ok(SecretKey(bytes))
    }

    /// The key as base64 text, for writing the key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(*self.0))
    }

    /// A public identifier of the key: the first 16 hex digits of a domain-separated SHA-256.
    /// It names the key in the database (the start-up key check) without revealing it.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"procedurewriter key id v1\0");
        h.update(*self.0);
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.as_slice().into())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// A secret value (an API key). Zeroized on drop; `Debug` and `Display` print `***`; the
/// value is reachable only through [`SecretValue::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    pub fn new(value: String) -> SecretValue {
        SecretValue(Zeroizing::new(value))
    }

    /// The plaintext. Call only where the value is used (an HTTP header to a provider).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// First 3 and last 4 characters, for showing which key is set. Values under 12
    /// characters show nothing of themselves.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() < 12 {
            return "…".to_string();
        }
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A secret as stored: what the database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub key_id: String,
}

/// Encrypts `value` under `key`, bound to `name`.
pub fn seal(key: &SecretKey, name: &str, value: &SecretValue) -> Sealed {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = key
        .cipher()
        .encrypt(
            &nonce,
            Payload {
                msg: value.expose().as_bytes(),
                aad: name.as_bytes(),
            },
        )
        // Encryption fails only for messages beyond 256 GiB.
        .expect("XChaCha20-Poly1305 encrypts any realistic message");
    Sealed {
        nonce: nonce.to_vec(),
        ciphertext,
        key_id: key.id(),
    }
}

/// Decrypts a stored secret; fails if it was sealed under another key, for another name, or
/// altered.
pub fn open(key: &SecretKey, name: &str, sealed: &Sealed) -> Result<SecretValue, OpenError> {
    if sealed.key_id != key.id() {
        return Err(OpenError::OtherKey {
            name: name.to_string(),
            stored_key_id: sealed.key_id.clone(),
            key_id: key.id(),
        });
    }
    let tampered = || OpenError::Tampered {
        name: name.to_string(),
    };
    if sealed.nonce.len() != 24 {
        return Err(tampered());
    }
    let nonce = chacha20poly1305::XNonce::from_slice(&sealed.nonce);
    let plain = Zeroizing::new(
        key.cipher()
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed.ciphertext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| tampered())?,
    );
    let text = std::str::from_utf8(&plain).map_err(|_| tampered())?;
    Ok(SecretValue::new(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_under_its_key_and_name_only() {
        let key = SecretKey::generate();
        let v = SecretValue::new("sk-test-1234567890abcdef".into());
        let sealed = seal(&key, "openai_api_key", &v);
        assert_eq!(open(&key, "openai_api_key", &sealed).unwrap(), v);
        assert!(matches!(
            open(&key, "anthropic_api_key", &sealed),
            Err(OpenError::Tampered { .. })
        ));
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert!(matches!(
            open(&key, "openai_api_key", &altered),
            Err(OpenError::Tampered { .. })
        ));
        let other = SecretKey::generate();
        assert!(matches!(
            open(&other, "openai_api_key", &sealed),
            Err(OpenError::OtherKey { .. })
        ));
        assert_ne!(
            seal(&key, "openai_api_key", &v).nonce,
            sealed.nonce,
            "a fresh nonce per write"
        );
    }

    #[test]
    fn keys_round_trip_through_base64_and_bad_text_is_refused() {
        let key = SecretKey::generate();
        let again = SecretKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(key.id(), again.id());
        assert_eq!(
            SecretKey::from_base64("not base64!").unwrap_err(),
            KeyError::NotBase64
        );
        assert_eq!(
            SecretKey::from_base64("c2hvcnQ=").unwrap_err(),
            KeyError::WrongLength(5)
        );
    }

    #[test]
    fn nothing_secret_prints() {
        let key = SecretKey::generate();
        let v = SecretValue::new("sk-live-abcdefghijklmnop".into());
        assert_eq!(format!("{v} {v:?}"), "*** ***");
        assert!(!format!("{key:?}").contains(key.to_base64().as_str()));
        assert_eq!(v.masked(), "sk-…mnop");
        assert_eq!(SecretValue::new("short".into()).masked(), "…");
    }
}
