//! Builds the pipeline's writer from the `llm_*` settings: the offline writer, or a model
//! behind an OpenAI-compatible or Anthropic API whose key is looked up at each call (the
//! encrypted secret store first, then the environment: [`provider_key`], which
//! `GET /api/keys` asks too).

use crate::settings::{LlmProvider, Settings, SettingsError};
use futures_util::future::BoxFuture;
use procedurewriter_actors::crypto::{SecretKey, SecretValue};
use procedurewriter_actors::Store;
use procedurewriter_pipeline::llm::anthropic::Anthropic;
use procedurewriter_pipeline::llm::openai::OpenAi;
use procedurewriter_pipeline::llm::{
    ApiKey, KeyLookup, KnownKeys, Llm, Provider, RetryPolicy, Slots, Timeouts,
};
use procedurewriter_pipeline::llm_writer::LlmWriter;
use procedurewriter_pipeline::offline::OfflineWriter;
use procedurewriter_pipeline::writer::Writer;
use std::sync::Arc;
use std::time::Duration;

/// How long connecting to a provider may take (part of `llm_timeout_s`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Calls in flight when `llm_max_concurrent_calls` is 0 and the server does not say how many
/// slots it has: small, since a server that queues requests keeps generating for callers that
/// gave up.
pub const DEFAULT_SLOTS: usize = 4;

/// How long asking the server for its slot count may take (start-up waits for it).
const PROPS_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the number of call slots came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotSource {
    /// `llm_max_concurrent_calls`, set.
    Setting,
    /// The server's own count (`GET /props` → `total_slots`).
    Server,
    /// [`DEFAULT_SLOTS`]: the setting is 0 and the server did not say.
    Default,
}

impl SlotSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotSource::Setting => "llm_max_concurrent_calls",
            SlotSource::Server => "the server's total_slots",
            SlotSource::Default => "the default",
        }
    }
}

/// How many calls may be in flight: `llm_max_concurrent_calls`, or when it is 0 what the server
/// reports (see [`server_slots`]), else [`DEFAULT_SLOTS`].
pub async fn call_slots(settings: &Settings) -> (usize, SlotSource) {
    if settings.llm_max_concurrent_calls > 0 {
        return (
            settings.llm_max_concurrent_calls as usize,
            SlotSource::Setting,
        );
    }
    match server_slots(settings).await {
        Some(n) => (n, SlotSource::Server),
        None => (DEFAULT_SLOTS, SlotSource::Default),
    }
}

/// The parallel slots the model server reports: llama.cpp answers `GET /props` at its root
/// (not under `/v1`) with `total_slots`. Asked only of a server named in `llm_base_url` (a
/// hosted API has no such thing), within [`PROPS_TIMEOUT`]; None when it does not answer so.
pub async fn server_slots(settings: &Settings) -> Option<usize> {
    let base = settings.llm_base_url.trim();
    if settings.llm_provider == LlmProvider::Offline || base.is_empty() {
        return None;
    }
    let root = base.trim_end_matches('/');
    let root = root.strip_suffix("/v1").unwrap_or(root);
    let url = format!("{root}/props");
    let client = reqwest::Client::builder()
        .timeout(PROPS_TIMEOUT)
        .build()
        .ok()?;
    let answer = async {
        let r = client.get(&url).send().await.ok()?;
        if !r.status().is_success() {
            return None;
        }
        let body = r.bytes().await.ok()?;
        let props: serde_json::Value = serde_json::from_slice(&body).ok()?;
        props["total_slots"]
            .as_u64()
            .filter(|n| (1..=1024).contains(n))
            .map(|n| n as usize)
    }
    .await;
    match answer {
        Some(n) => tracing::info!(url, total_slots = n, "the model server reports its slots"),
        None => tracing::info!(
            url,
            "the model server does not report its slots (llama.cpp's GET /props → total_slots)"
        ),
    }
    answer
}

/// The provider's call slots: one set per daemon, shared by every job, shown by `/metrics` and
/// resized by SIGHUP. Asks the server (see [`call_slots`]) on a runtime of its own: start-up
/// runs outside one.
pub fn slots(settings: &Settings) -> Arc<Slots> {
    let (n, source) = crate::client::block_on_io(call_slots(settings));
    tracing::info!(slots = n, from = source.as_str(), "model call slots");
    Slots::new(n)
}

/// The writer the settings name.
pub fn build(
    settings: &Settings,
    store: &Store,
    key: &SecretKey,
    slots: Arc<Slots>,
) -> Result<Arc<dyn Writer>, SettingsError> {
    if settings.llm_provider == LlmProvider::Offline {
        return Ok(Arc::new(OfflineWriter));
    }
    // No overall timeout: answers are streamed, and `Timeouts` bounds the wait for the first
    // token and between chunks.
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(Duration::from_secs_f64(settings.llm_timeout_s)))
        .user_agent(concat!("procedurewriter/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SettingsError(format!("cannot build the HTTP client for the model: {e}")))?;
    let base = settings.llm_base_url();
    let model = settings.llm_model.trim();
    let timeouts = Timeouts {
        first_token: Duration::from_secs_f64(settings.llm_timeout_s),
        idle: Duration::from_secs_f64(settings.llm_idle_timeout_s),
    };
    let provider: Arc<dyn Provider> = match settings.llm_provider {
        LlmProvider::Anthropic => Arc::new(Anthropic::new(client, &base, model, timeouts)),
        _ => Arc::new(OpenAi::new(client, &base, model, timeouts)),
    };
    let (_, price) = settings
        .prices()?
        .lookup(model)
        .ok_or_else(|| SettingsError(format!("key `llm_model`: {model:?} has no price")))?;
    let (secret_name, env_var) = settings.llm_key_names();
    tracing::info!(provider = provider.name(), model, base_url = %base, key_secret = %secret_name, key_env = %env_var, "writing with a language model");
    Ok(Arc::new(LlmWriter {
        llm: Llm {
            provider,
            price,
            keys: key_lookup(store.clone(), key.clone(), secret_name, env_var),
            known_keys: known_keys(store.clone(), key.clone()),
            retry: RetryPolicy {
                max_retries: settings.llm_max_retries,
                base_delay: Duration::from_secs_f64(settings.llm_retry_base_delay_s),
                max_delay: Duration::from_secs_f64(settings.llm_retry_max_delay_s),
                window: Duration::from_secs_f64(settings.llm_retry_window_s),
            },
            max_tokens: settings.llm_max_tokens,
            min_output_tokens: settings.llm_min_output_tokens,
            slots,
        },
        evidence_tokens: settings.llm_evidence_tokens,
    }))
}

/// Where a provider's API key comes from.
#[derive(Debug)]
pub enum ProviderKey {
    /// Stored (encrypted) in the database; `value` is `Err` when it cannot be decrypted.
    Stored {
        value: Result<SecretValue, String>,
        updated_at: i64,
    },
    /// Not stored; taken from the environment variable.
    Environment(SecretValue),
    /// Neither.
    Absent,
}

/// The stored secret `name`, else the environment variable `env_var`: the one lookup the
/// model calls and the keys API share.
pub async fn provider_key(
    store: &Store,
    key: &SecretKey,
    name: &str,
    env_var: &str,
) -> Result<ProviderKey, procedurewriter_actors::Error> {
    Ok(
        match store.get_secret(name.to_string(), key.clone()).await? {
            Some(stored) => ProviderKey::Stored {
                value: stored.value.map_err(|e| e.to_string()),
                updated_at: stored.meta.updated_at,
            },
            None => match std::env::var(env_var).ok().filter(|v| !v.trim().is_empty()) {
                Some(v) => ProviderKey::Environment(SecretValue::new(v)),
                None => ProviderKey::Absent,
            },
        },
    )
}

/// The key lookup the model calls make: the stored secret `name`, else the environment
/// variable `env_var`, else no key.
fn key_lookup(
    store: Store,
    key: SecretKey,
    name: &'static str,
    env_var: &'static str,
) -> KeyLookup {
    Arc::new(
        move || -> BoxFuture<'static, Result<Option<ApiKey>, String>> {
            let store = store.clone();
            let key = key.clone();
            Box::pin(async move {
                match provider_key(&store, &key, name, env_var).await {
                    Ok(ProviderKey::Stored { value: Ok(v), .. })
                    | Ok(ProviderKey::Environment(v)) => {
                        Ok(Some(ApiKey::new(v.expose().to_string())))
                    }
                    Ok(ProviderKey::Stored { value: Err(e), .. }) => Err(format!(
                        "the stored API key {name:?} cannot be used: {e}; PUT it again"
                    )),
                    Ok(ProviderKey::Absent) => Ok(None),
                    Err(e) => Err(format!("cannot read the stored API key {name:?}: {e}")),
                }
            })
        },
    )
}

/// Every API key the daemon knows (each name in [`crate::keys::API_KEYS`], stored or in the
/// environment): provider messages are checked against all of them.
fn known_keys(store: Store, key: SecretKey) -> KnownKeys {
    Arc::new(move || -> BoxFuture<'static, Vec<ApiKey>> {
        let (store, key) = (store.clone(), key.clone());
        Box::pin(async move {
            let mut out = Vec::new();
            for (name, env_var) in crate::keys::API_KEYS {
                if let Ok(ProviderKey::Stored { value: Ok(v), .. } | ProviderKey::Environment(v)) =
                    provider_key(&store, &key, name, env_var).await
                {
                    out.push(ApiKey::new(v.expose().to_string()));
                }
                // The environment's value too when a stored one shadows it.
                if let Some(v) = std::env::var(env_var).ok().filter(|v| !v.trim().is_empty()) {
                    out.push(ApiKey::new(v));
                }
            }
            out
        })
    })
}
