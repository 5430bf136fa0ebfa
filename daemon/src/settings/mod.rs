//! The daemon's settings: the embedded `etc/procedurewriter.toml` defaults, then an optional
//! file, then `PROCEDUREWRITER_*` environment variables, layered with the `config` crate and
//! validated once. An invalid value is reported with the key that holds it.

mod validate;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The shipped configuration, documented key by key; also the defaults.
pub const DEFAULT_TOML: &str = include_str!("../../../etc/procedurewriter.toml");

/// Environment variables with the prefix that are not settings keys.
const NOT_SETTINGS: &[&str] = &[
    "PROCEDUREWRITER_CONFIG",
    "PROCEDUREWRITER_URL",
    "PROCEDUREWRITER_SECRET_KEY",
    "PROCEDUREWRITER_TEST_FAILPOINT",
];

/// Refuses a `PROCEDUREWRITER_*` variable that names no setting, naming the variable and the
/// nearest key (a typo in the environment would otherwise read as a typo in the file).
fn check_env_keys(env: &BTreeMap<String, String>) -> Result<(), SettingsError> {
    let known: Vec<String> = config::Config::builder()
        .add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ))
        .build()
        .and_then(|c| c.try_deserialize::<BTreeMap<String, config::Value>>())
        .map(|m| m.into_keys().collect())
        .unwrap_or_default();
    for var in env.keys() {
        let Some(key) = var.strip_prefix("PROCEDUREWRITER_") else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        if known.contains(&key) {
            continue;
        }
        let nearest = known
            .iter()
            .map(|k| (strsim::jaro_winkler(&key, k), k))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| {
                format!(
                    "; did you mean `{k}` (PROCEDUREWRITER_{})?",
                    k.to_ascii_uppercase()
                )
            })
            .unwrap_or_else(|| ".".to_string());
        return Err(SettingsError(format!(
            "the environment variable {var} names no setting `{key}`{nearest} Unset it, or see \
             etc/procedurewriter.toml for the keys"
        )));
    }
    Ok(())
}

/// A `config` error about a key from the environment, with the variable's name.
fn name_the_variable(msg: &str) -> String {
    let Some((head, rest)) = msg.split_once("for key `") else {
        return msg.to_string();
    };
    let Some((key, tail)) = rest.split_once('`') else {
        return msg.to_string();
    };
    if !tail.starts_with(" in the environment") {
        return msg.to_string();
    }
    format!(
        "{head}for key `{key}` in the environment variable PROCEDUREWRITER_{}{}",
        key.to_ascii_uppercase(),
        &tail[" in the environment".len()..]
    )
}

/// Why the settings could not be loaded; the message names the key and the source.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingsError(pub String);

/// SQLite durability mode (see the `sqlite_synchronous` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SqliteSynchronous {
    Normal,
    Full,
}

/// Which job runner the daemon uses (see the `job_runner` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerKind {
    Pipeline,
    Test,
}

/// Which writer drafts procedures (see the `llm_provider` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmProvider {
    Offline,
    Openai,
    Anthropic,
}

/// A key SIGHUP applies to the running daemon: its name and how a reload copies it into the
/// settings in force. The reload code knows no key by name but through this table (and the
/// store call `max_database_mb` also needs), so a key added here is applied, not just
/// reported.
pub struct HotKey {
    pub name: &'static str,
    pub copy: fn(into: &mut Settings, from: &Settings),
}

/// The keys SIGHUP applies (the quality loop's, the database size limit, the lexicon and the
/// model call slots); every other key needs a restart.
pub const HOT_KEYS: &[HotKey] = &[
    HotKey {
        name: "llm_max_concurrent_calls",
        copy: |i, f| i.llm_max_concurrent_calls = f.llm_max_concurrent_calls,
    },
    HotKey {
        name: "max_database_mb",
        copy: |i, f| i.max_database_mb = f.max_database_mb,
    },
    HotKey {
        name: "lexicon_file",
        copy: |i, f| i.lexicon_file = f.lexicon_file.clone(),
    },
    HotKey {
        name: "quality_loop_policy",
        copy: |i, f| i.quality_loop_policy = f.quality_loop_policy,
    },
    HotKey {
        name: "quality_loop_quality_threshold",
        copy: |i, f| i.quality_loop_quality_threshold = f.quality_loop_quality_threshold,
    },
    HotKey {
        name: "quality_loop_max_iterations",
        copy: |i, f| i.quality_loop_max_iterations = f.quality_loop_max_iterations,
    },
    HotKey {
        name: "quality_loop_max_additional_cost_usd",
        copy: |i, f| {
            i.quality_loop_max_additional_cost_usd = f.quality_loop_max_additional_cost_usd
        },
    },
    HotKey {
        name: "quality_loop_min_improvement",
        copy: |i, f| i.quality_loop_min_improvement = f.quality_loop_min_improvement,
    },
];

/// The hot key called `name`, if it is one.
pub fn hot_key(name: &str) -> Option<&'static HotKey> {
    HOT_KEYS.iter().find(|k| k.name == name)
}

/// The API token (`api_token`): compared in constant time, never printed. `Debug` shows `***`
/// and serialisation (what reload diffs and records) a short fingerprint, so a changed token is
/// reported as changed without showing either value.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.is_set() && bool::from(self.0.as_bytes().ct_eq(presented))
    }

    fn fingerprint(&self) -> String {
        if !self.is_set() {
            return String::new();
        }
        let hex = procedurewriter_pipeline::library::sha256_hex(self.0.as_bytes());
        format!("sha256:{}…", &hex[..8])
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() { "***" } else { "\"\"" })
    }
}

impl Serialize for ApiToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.fingerprint())
    }
}

/// Every setting of the daemon; see `etc/procedurewriter.toml` for what each key does.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub secret_key_file: PathBuf,
    pub listen: SocketAddr,
    pub api_token: ApiToken,
    pub workers: usize,
    pub heartbeat_interval_s: f64,
    pub stale_timeout_s: f64,
    pub reaper_interval_s: f64,
    pub max_attempts: u32,
    pub shutdown_grace_s: f64,
    pub sqlite_synchronous: SqliteSynchronous,
    pub max_body_bytes: usize,
    pub max_document_mb: u64,
    pub max_connections: usize,
    pub max_event_streams: usize,
    pub header_read_timeout_s: f64,
    pub body_read_timeout_s: f64,
    pub max_database_mb: u64,
    pub sse_keepalive_s: f64,
    pub log: String,
    pub load_demo_library: bool,
    pub job_runner: RunnerKind,
    pub required_tiers: Vec<String>,
    pub missing_tier_policy: procedurewriter_pipeline::gate::Policy,
    pub retrieval_limit: usize,
    pub retrieval_min_relative_score: f64,
    /// The department or author every document names as its author.
    pub document_author: String,
    pub generic_words: Vec<String>,
    pub synonyms: BTreeMap<String, Vec<String>>,
    pub llm_provider: LlmProvider,
    pub llm_model: String,
    pub llm_base_url: String,
    pub llm_timeout_s: f64,
    pub llm_idle_timeout_s: f64,
    pub llm_max_concurrent_calls: u32,
    pub llm_max_retries: u32,
    pub llm_retry_base_delay_s: f64,
    pub llm_retry_max_delay_s: f64,
    pub llm_retry_window_s: f64,
    pub llm_requeue_delay_s: f64,
    pub llm_requeue_max_delay_s: f64,
    pub llm_max_tokens: u32,
    pub llm_min_output_tokens: u32,
    pub llm_evidence_tokens: usize,
    pub prices_file: PathBuf,
    pub lexicon_file: PathBuf,
    pub quality_loop_policy: procedurewriter_pipeline::quality::LoopPolicy,
    pub quality_loop_quality_threshold: f64,
    pub quality_loop_max_iterations: u32,
    pub quality_loop_max_additional_cost_usd: f64,
    pub quality_loop_min_improvement: f64,
}

impl Settings {
    /// Loads the layered settings: defaults, then `file` (required if given), then the
    /// environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| {
                k.starts_with("PROCEDUREWRITER_") && !NOT_SETTINGS.contains(&k.as_str())
            })
            .collect();
        Self::load_from(file, env)
    }

    /// [`Settings::load`] with an explicit environment (tests).
    pub fn load_from(
        file: Option<&Path>,
        env: BTreeMap<String, String>,
    ) -> Result<Settings, SettingsError> {
        use config::{Config, Environment, File, FileFormat};
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(SettingsError(format!(
                    "config file {} does not exist or is not a file",
                    path.display()
                )));
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        check_env_keys(&env)?;
        let env_map = env.into_iter().collect();
        builder = builder.add_source(
            Environment::with_prefix("PROCEDUREWRITER")
                .try_parsing(true)
                .source(Some(env_map)),
        );
        let settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| SettingsError(name_the_variable(&e.to_string())))?;
        settings.validate()?;
        Ok(settings)
    }

    fn prices_origin(&self) -> String {
        if self.prices_file.as_os_str().is_empty() {
            "etc/prices.toml (embedded)".to_string()
        } else {
            self.prices_file.display().to_string()
        }
    }

    /// The price table: `prices_file`, or the shipped one.
    pub fn prices(
        &self,
    ) -> Result<procedurewriter_pipeline::llm::prices::PriceTable, SettingsError> {
        use procedurewriter_pipeline::llm::prices::PriceTable;
        if self.prices_file.as_os_str().is_empty() {
            return Ok(PriceTable::embedded());
        }
        let text = std::fs::read_to_string(&self.prices_file).map_err(|e| {
            SettingsError(format!(
                "key `prices_file`: cannot read {}: {e}",
                self.prices_file.display()
            ))
        })?;
        PriceTable::parse(&text, &self.prices_file.display().to_string())
            .map_err(|e| SettingsError(format!("key `prices_file`: {e}")))
    }

    /// The medical lexicon: `lexicon_file`, or the shipped one (validated: a file that does
    /// not parse names the key, the file and what is wrong).
    pub fn lexicon(&self) -> Result<procedurewriter_pipeline::verify::Lexicon, SettingsError> {
        use procedurewriter_pipeline::verify::Lexicon;
        if self.lexicon_file.as_os_str().is_empty() {
            // The shipped lexicon is checked too: a build whose lexicon does not parse would
            // otherwise run with an empty one and read every title word by word, silently.
            return Lexicon::parse(procedurewriter_pipeline::verify::lexicon::EMBEDDED).map_err(
                |e| {
                    SettingsError(format!(
                        "the shipped lexicon (etc/lexicon.toml) does not parse: {e}"
                    ))
                },
            );
        }
        let text = std::fs::read_to_string(&self.lexicon_file).map_err(|e| {
            SettingsError(format!(
                "key `lexicon_file`: cannot read {}: {e}",
                self.lexicon_file.display()
            ))
        })?;
        Lexicon::parse(&text).map_err(|e| {
            SettingsError(format!(
                "key `lexicon_file`: {}: {e}",
                self.lexicon_file.display()
            ))
        })
    }

    /// `llm_base_url`, or the provider's public endpoint.
    pub fn llm_base_url(&self) -> String {
        match (self.llm_base_url.trim(), self.llm_provider) {
            ("", LlmProvider::Anthropic) => "https://api.anthropic.com".into(),
            ("", _) => "https://api.openai.com/v1".into(),
            (url, _) => url.to_string(),
        }
    }

    /// The stored secret's name and the environment variable that hold the API key.
    pub fn llm_key_names(&self) -> (&'static str, &'static str) {
        let name = match self.llm_provider {
            LlmProvider::Anthropic => "anthropic_api_key",
            _ => "openai_api_key",
        };
        crate::keys::API_KEYS
            .iter()
            .copied()
            .find(|(n, _)| *n == name)
            .unwrap_or((name, ""))
    }

    /// The quality loop's settings.
    pub fn loop_settings(&self) -> procedurewriter_pipeline::quality::LoopSettings {
        use procedurewriter_pipeline::quality::LoopSettings;
        LoopSettings {
            policy: self.quality_loop_policy,
            threshold: self.quality_loop_quality_threshold,
            max_iterations: self.quality_loop_max_iterations,
            max_additional_cost_pusd: procedurewriter_actors::model::money::from_usd(
                self.quality_loop_max_additional_cost_usd,
            )
            .unwrap_or(0),
            min_improvement: self.quality_loop_min_improvement,
        }
    }

    /// The settings as flat `key → value` strings, for diffing on reload.
    pub fn flatten(&self) -> BTreeMap<String, String> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => {
                m.into_iter().map(|(k, v)| (k, v.to_string())).collect()
            }
            _ => BTreeMap::new(),
        }
    }

    /// The key file: `secret_key_file`, or `<data_dir>/secret.key` when that is empty.
    pub fn key_file(&self) -> PathBuf {
        if self.secret_key_file.as_os_str().is_empty() {
            self.data_dir.join("secret.key")
        } else {
            self.secret_key_file.clone()
        }
    }

    /// How long a run waits in the queue after its provider stayed down (see
    /// [`crate::job::RequeueDelay`]).
    pub fn requeue_delay(&self) -> crate::job::RequeueDelay {
        crate::job::RequeueDelay {
            base: std::time::Duration::from_secs_f64(self.llm_requeue_delay_s),
            max: std::time::Duration::from_secs_f64(self.llm_requeue_max_delay_s),
        }
    }

    /// The pipeline's settings.
    pub fn pipeline(&self) -> procedurewriter_pipeline::PipelineConfig {
        use procedurewriter_pipeline::retrieve::RetrievalConfig;
        let digest_input = serde_json::json!({
            "required_tiers": self.required_tiers,
            "missing_tier_policy": self.missing_tier_policy,
            "retrieval_limit": self.retrieval_limit,
            "retrieval_min_relative_score": self.retrieval_min_relative_score,
            "generic_words": self.generic_words,
            "synonyms": self.synonyms,
        });
        procedurewriter_pipeline::PipelineConfig {
            required_tiers: self.required_tiers.clone(),
            missing_tier_policy: self.missing_tier_policy,
            retrieval: RetrievalConfig {
                synonyms: self
                    .synonyms
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_lowercase(),
                            v.iter().map(|x| x.to_lowercase()).collect(),
                        )
                    })
                    .collect(),
                limit: self.retrieval_limit,
                min_relative_score: self.retrieval_min_relative_score,
                generic_words: self
                    .generic_words
                    .iter()
                    .map(|w| w.to_lowercase())
                    .collect(),
            },
            runs_dir: self.runs_dir(),
            document_author: self.document_author.trim().to_string(),
            digest: procedurewriter_pipeline::library::sha256_hex(
                digest_input.to_string().as_bytes(),
            ),
        }
    }

    /// The largest PDF or DOCX upload, in bytes.
    pub fn max_document_bytes(&self) -> usize {
        (self.max_document_mb as usize).saturating_mul(1024 * 1024)
    }

    /// Where run artifacts go: `<data_dir>/runs`.
    pub fn runs_dir(&self) -> PathBuf {
        self.data_dir.join("runs")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("procedurewriter.db")
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_interval_s)
    }
    pub fn stale_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.stale_timeout_s)
    }
    pub fn reaper_interval(&self) -> Duration {
        Duration::from_secs_f64(self.reaper_interval_s)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_grace_s)
    }
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.header_read_timeout_s)
    }
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.body_read_timeout_s)
    }
    /// The database size limit in bytes; `None`: no limit but the disk's.
    pub fn max_database_bytes(&self) -> Option<u64> {
        (self.max_database_mb > 0).then(|| self.max_database_mb.saturating_mul(1024 * 1024))
    }
    pub fn sse_keepalive(&self) -> Duration {
        Duration::from_secs_f64(self.sse_keepalive_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn embedded_defaults_parse_and_validate() {
        let s = Settings::load_from(None, BTreeMap::new()).unwrap();
        assert_eq!(s.workers, 2);
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.heartbeat_interval_s, 30.0);
        assert_eq!(s.stale_timeout_s, 1800.0);
        assert_eq!(s.sqlite_synchronous, SqliteSynchronous::Normal);
        assert!(s.listen.ip().is_loopback());
        assert!(
            s.max_event_streams < s.max_connections / 2,
            "streams leave the connections to short requests"
        );
        assert_eq!(s.llm_provider, LlmProvider::Offline);
        let l = s.loop_settings();
        assert_eq!(l.threshold, 8.0);
        assert_eq!(l.max_iterations, 3);
        assert_eq!(l.max_additional_cost_pusd, 2_000_000_000_000);
        assert_eq!(l.min_improvement, 0.5);
        for k in HOT_KEYS {
            assert!(
                s.flatten().contains_key(k.name),
                "{} is not a settings key",
                k.name
            );
        }
    }

    #[test]
    fn every_hot_key_is_copied_by_a_reload_and_nothing_else_is() {
        let before = Settings::load_from(None, env(&[])).unwrap();
        let after = Settings::load_from(
            None,
            env(&[
                ("PROCEDUREWRITER_MAX_DATABASE_MB", "77"),
                ("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "manual"),
                ("PROCEDUREWRITER_QUALITY_LOOP_QUALITY_THRESHOLD", "6.5"),
                ("PROCEDUREWRITER_QUALITY_LOOP_MAX_ITERATIONS", "7"),
                (
                    "PROCEDUREWRITER_QUALITY_LOOP_MAX_ADDITIONAL_COST_USD",
                    "0.25",
                ),
                ("PROCEDUREWRITER_QUALITY_LOOP_MIN_IMPROVEMENT", "0.125"),
                (
                    "PROCEDUREWRITER_LEXICON_FILE",
                    concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/lexicon.toml"),
                ),
                ("PROCEDUREWRITER_WORKERS", "5"),
                ("PROCEDUREWRITER_LLM_MAX_CONCURRENT_CALLS", "2"),
            ]),
        )
        .unwrap();
        let (old, new) = (before.flatten(), after.flatten());
        for k in HOT_KEYS {
            assert_ne!(old[k.name], new[k.name], "the test changes {}", k.name);
            let mut in_force = before.clone();
            (k.copy)(&mut in_force, &after);
            let got = in_force.flatten();
            for (name, value) in &got {
                let want = if name == k.name {
                    &new[name]
                } else {
                    &old[name]
                };
                assert_eq!(value, want, "copying {} changed {name}", k.name);
            }
        }
    }

    #[test]
    fn a_model_without_a_price_is_refused_and_a_priced_family_is_accepted() {
        let err = Settings::load_from(
            None,
            env(&[
                ("PROCEDUREWRITER_LLM_PROVIDER", "openai"),
                ("PROCEDUREWRITER_LLM_MODEL", "mystery-9"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("llm_model") && err.contains("mystery-9") && err.contains("no price"),
            "{err}"
        );
        let s = Settings::load_from(
            None,
            env(&[
                ("PROCEDUREWRITER_LLM_PROVIDER", "anthropic"),
                ("PROCEDUREWRITER_LLM_MODEL", "claude-3-5-haiku-latest"),
            ]),
        )
        .unwrap();
        assert_eq!(s.llm_base_url(), "https://api.anthropic.com");
        assert_eq!(
            s.llm_key_names(),
            ("anthropic_api_key", "ANTHROPIC_API_KEY")
        );
        let err = Settings::load_from(None, env(&[("PROCEDUREWRITER_LLM_PROVIDER", "openai")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("llm_model"), "{err}");
    }

    #[test]
    fn environment_overrides_the_defaults() {
        let s = Settings::load_from(
            None,
            env(&[
                ("PROCEDUREWRITER_WORKERS", "5"),
                ("PROCEDUREWRITER_SQLITE_SYNCHRONOUS", "FULL"),
            ]),
        )
        .unwrap();
        assert_eq!(s.workers, 5);
        assert_eq!(s.sqlite_synchronous, SqliteSynchronous::Full);
    }

    #[test]
    fn a_file_overrides_the_defaults_and_the_environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "workers = 7\nmax_attempts = 9\n").unwrap();
        let s = Settings::load_from(Some(&path), env(&[("PROCEDUREWRITER_MAX_ATTEMPTS", "4")]))
            .unwrap();
        assert_eq!(s.workers, 7);
        assert_eq!(s.max_attempts, 4);
    }

    #[test]
    fn invalid_values_name_their_key() {
        for (k, v, key) in [
            ("PROCEDUREWRITER_WORKERS", "0", "workers"),
            ("PROCEDUREWRITER_WORKERS", "many", "workers"),
            (
                "PROCEDUREWRITER_HEARTBEAT_INTERVAL_S",
                "-1",
                "heartbeat_interval_s",
            ),
            (
                "PROCEDUREWRITER_SQLITE_SYNCHRONOUS",
                "SOMETIMES",
                "sqlite_synchronous",
            ),
            ("PROCEDUREWRITER_LISTEN", "not an address", "listen"),
            (
                "PROCEDUREWRITER_QUALITY_LOOP_POLICY",
                "sometimes",
                "quality_loop_policy",
            ),
            (
                "PROCEDUREWRITER_QUALITY_LOOP_MAX_ADDITIONAL_COST_USD",
                "-1",
                "quality_loop_max_additional_cost_usd",
            ),
            (
                "PROCEDUREWRITER_QUALITY_LOOP_MAX_ITERATIONS",
                "0",
                "quality_loop_max_iterations",
            ),
            ("PROCEDUREWRITER_LLM_PROVIDER", "gemini", "llm_provider"),
            (
                "PROCEDUREWRITER_MAX_EVENT_STREAMS",
                "0",
                "max_event_streams",
            ),
        ] {
            let err = Settings::load_from(None, env(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{k}={v}: {err}");
        }
    }

    #[test]
    fn the_api_token_never_prints_and_a_public_address_needs_one() {
        let token = "t0k3n-abcdefghijklmnopqrstuvwxyz-0123";
        let err = Settings::load_from(None, env(&[("PROCEDUREWRITER_LISTEN", "0.0.0.0:8077")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen") && err.contains("api_token"), "{err}");
        let s = Settings::load_from(
            None,
            env(&[
                ("PROCEDUREWRITER_LISTEN", "0.0.0.0:8077"),
                ("PROCEDUREWRITER_API_TOKEN", token),
            ]),
        )
        .unwrap();
        assert!(s.api_token.matches(token.as_bytes()));
        assert!(!s.api_token.matches(b"t0k3n"));
        let shown = format!("{s:?} {:?}", s.flatten());
        assert!(!shown.contains("abcdefgh"), "{shown}");
        assert!(s.flatten()["api_token"].contains("sha256:"));
        let err = Settings::load_from(None, env(&[("PROCEDUREWRITER_API_TOKEN", "short")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("api_token") && !err.contains("short"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Settings::load_from(None, env(&[("PROCEDUREWRITER_WORKRES", "3")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("workres"), "{err}");
        // The variable is named, with the nearest key and its variable.
        assert!(err.contains("PROCEDUREWRITER_WORKRES"), "{err}");
        assert!(
            err.contains("did you mean `workers` (PROCEDUREWRITER_WORKERS)"),
            "{err}"
        );
        let err = Settings::load_from(None, env(&[("PROCEDUREWRITER_ZZZQQQ", "3")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PROCEDUREWRITER_ZZZQQQ") && !err.contains("did you mean"),
            "{err}"
        );
        // A bad value from the environment names its variable.
        let err = Settings::load_from(None, env(&[("PROCEDUREWRITER_WORKERS", "many")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PROCEDUREWRITER_WORKERS"), "{err}");
    }
}
