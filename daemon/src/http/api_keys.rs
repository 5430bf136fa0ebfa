//! Stored API keys: `GET /api/keys`, `GET|PUT|DELETE /api/keys/{name}`. Values go in, masks
//! come out; a value is never returned, logged or echoed in an error.

use super::request::{json_body, truncate, Handled};
use super::{json_response, ApiError, AppState};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::keys::API_KEYS as KNOWN_KEYS;

/// Longest secret value accepted, in bytes.
const MAX_SECRET_BYTES: usize = 4096;

fn known_key(name: &str) -> Result<(&'static str, &'static str), ApiError> {
    KNOWN_KEYS
        .iter()
        .find(|(n, _)| *n == name)
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = KNOWN_KEYS.iter().map(|(n, _)| *n).collect();
            ApiError::new(
                StatusCode::NOT_FOUND,
                "key_not_found",
                format!(
                    "unknown key name {:?}; known: {}",
                    truncate(name, 60),
                    names.join(", ")
                ),
            )
        })
}

/// What a client may know of a secret: whether it is set, where from, and a mask. Never the
/// value.
async fn key_view(
    state: &Arc<AppState>,
    name: &'static str,
    env_var: &'static str,
) -> Result<Value, ApiError> {
    use crate::model_client::{provider_key, ProviderKey};
    Ok(
        match provider_key(&state.store, &state.secret_key, name, env_var).await? {
            ProviderKey::Stored {
                value: Ok(v),
                updated_at,
            } => json!({
                "name": name, "present": true, "source": "stored", "usable": true,
                "masked": v.masked(), "updated_at": rfc3339(updated_at),
            }),
            ProviderKey::Stored {
                value: Err(e),
                updated_at,
            } => json!({
                "name": name, "present": true, "source": "stored", "usable": false,
                "masked": null, "updated_at": rfc3339(updated_at), "error": e,
            }),
            ProviderKey::Environment(v) => json!({
                "name": name, "present": true, "source": "environment", "usable": true,
                "environment_variable": env_var, "masked": v.masked(), "updated_at": null,
            }),
            ProviderKey::Absent => json!({
                "name": name, "present": false, "source": "none", "usable": false,
                "environment_variable": env_var, "masked": null, "updated_at": null,
            }),
        },
    )
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

pub(super) async fn list_keys(state: &Arc<AppState>) -> Handled {
    let mut keys = Vec::new();
    for (name, env_var) in KNOWN_KEYS {
        keys.push(key_view(state, name, env_var).await?);
    }
    Ok(json_response(StatusCode::OK, &json!({ "keys": keys })))
}

pub(super) async fn get_key(state: &Arc<AppState>, name: String) -> Handled {
    let (name, env_var) = known_key(&name)?;
    Ok(json_response(
        StatusCode::OK,
        &key_view(state, name, env_var).await?,
    ))
}

/// `{"value": "..."}`; the value is moved into a zeroizing [`SecretValue`] at once.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutKey {
    value: String,
}

pub(super) async fn put_key(
    state: &Arc<AppState>,
    name: String,
    req: Request<Incoming>,
) -> Handled {
    let (name, env_var) = known_key(&name)?;
    // Parse errors are reported without serde's text, which can quote the body.
    let body: PutKey = json_body(state, req, false).await.map_err(|e| {
        if e.code == "malformed_json" {
            ApiError::bad_request(
                "malformed_json",
                "the body must be {\"value\": \"<the key>\"}",
            )
        } else {
            e
        }
    })?;
    let value = procedurewriter_actors::crypto::SecretValue::new(body.value);
    if value.expose().trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`value` must not be empty",
        ));
    }
    if value.len() > MAX_SECRET_BYTES {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("`value` is longer than {MAX_SECRET_BYTES} bytes"),
        ));
    }
    if value.expose().chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`value` must not contain control characters (newlines included)",
        ));
    }
    state
        .store
        .put_secret(name.to_string(), state.secret_key.clone(), value)
        .await?;
    tracing::info!(key = name, "secret stored");
    Ok(json_response(
        StatusCode::OK,
        &key_view(state, name, env_var).await?,
    ))
}

pub(super) async fn delete_key(state: &Arc<AppState>, name: String) -> Handled {
    let (name, env_var) = known_key(&name)?;
    let deleted = state.store.delete_secret(name.to_string()).await?;
    if !deleted {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_stored",
            format!("no stored value for {name}"),
        ));
    }
    tracing::info!(key = name, "secret deleted");
    Ok(json_response(
        StatusCode::OK,
        &key_view(state, name, env_var).await?,
    ))
}
