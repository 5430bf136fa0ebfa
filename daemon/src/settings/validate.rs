//! Validation of loaded settings: each check names the key it refuses and what it may be, so a
//! configuration error says where to look. Split from `mod.rs`, which holds the keys themselves.

use super::{LlmProvider, Settings, SettingsError};

type Checked = Result<(), SettingsError>;

fn bad(key: &str, why: &str) -> Checked {
    Err(SettingsError(format!("key `{key}`: {why}")))
}

impl Settings {
    /// Every check, in the order the keys appear in `etc/procedurewriter.toml`.
    pub(super) fn validate(&self) -> Checked {
        self.validate_durations()?;
        self.validate_queue_and_http()?;
        self.validate_pipeline()?;
        self.validate_quality_loop()?;
        self.validate_model()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log).is_err() {
            return bad("log", &format!("{:?} is not a valid log filter", self.log));
        }
        Ok(())
    }

    /// Timeouts and intervals: positive seconds.
    fn validate_durations(&self) -> Checked {
        for (key, v) in [
            ("heartbeat_interval_s", self.heartbeat_interval_s),
            ("stale_timeout_s", self.stale_timeout_s),
            ("reaper_interval_s", self.reaper_interval_s),
            ("header_read_timeout_s", self.header_read_timeout_s),
            ("body_read_timeout_s", self.body_read_timeout_s),
            ("sse_keepalive_s", self.sse_keepalive_s),
            ("llm_timeout_s", self.llm_timeout_s),
            ("llm_idle_timeout_s", self.llm_idle_timeout_s),
            ("llm_retry_base_delay_s", self.llm_retry_base_delay_s),
            ("llm_retry_max_delay_s", self.llm_retry_max_delay_s),
            ("llm_retry_window_s", self.llm_retry_window_s),
            ("llm_requeue_delay_s", self.llm_requeue_delay_s),
            ("llm_requeue_max_delay_s", self.llm_requeue_max_delay_s),
        ] {
            if !(v.is_finite() && v > 0.0 && v < 1e9) {
                return bad(
                    key,
                    &format!("must be a positive number of seconds, got {v}"),
                );
            }
        }
        if !(self.shutdown_grace_s.is_finite()
            && self.shutdown_grace_s >= 0.0
            && self.shutdown_grace_s < 1e9)
        {
            return bad(
                "shutdown_grace_s",
                "must be zero or a positive number of seconds",
            );
        }
        Ok(())
    }

    /// The queue's and the HTTP server's limits, the API token and where it listens.
    fn validate_queue_and_http(&self) -> Checked {
        if self.workers == 0 || self.workers > 256 {
            return bad(
                "workers",
                &format!("must be between 1 and 256, got {}", self.workers),
            );
        }
        if self.max_attempts == 0 || self.max_attempts > 100 {
            return bad(
                "max_attempts",
                &format!("must be between 1 and 100, got {}", self.max_attempts),
            );
        }
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes", "must be at least 1024");
        }
        if self.max_document_mb == 0 || self.max_document_mb > 1024 {
            return bad("max_document_mb", "must be between 1 and 1024");
        }
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if self.max_event_streams == 0 || self.max_event_streams > 1_000_000 {
            return bad(
                "max_event_streams",
                &format!(
                    "must be between 1 and 1000000, got {}",
                    self.max_event_streams
                ),
            );
        }
        if self.api_token.is_set() && self.api_token.0.chars().count() < 32 {
            return bad("api_token", "must be at least 32 characters (or empty)");
        }
        if !self.listen.ip().is_loopback() && !self.api_token.is_set() {
            return bad(
                "listen",
                &format!(
                    "{} is not a loopback address: set `api_token` (PROCEDUREWRITER_API_TOKEN) \
                     so the API is not open to the network",
                    self.listen
                ),
            );
        }
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty");
        }
        Ok(())
    }

    /// The data directory, the required tiers and retrieval.
    fn validate_pipeline(&self) -> Checked {
        let rules = procedurewriter_pipeline::tiers::TierRules::embedded();
        if let Some(t) = self.required_tiers.iter().find(|t| rules.get(t).is_none()) {
            return bad(
                "required_tiers",
                &format!("{t:?} is not a tier in etc/evidence_tiers.toml"),
            );
        }
        if self.retrieval_limit == 0 || self.retrieval_limit > 200 {
            return bad("retrieval_limit", "must be between 1 and 200");
        }
        if !(0.0..=1.0).contains(&self.retrieval_min_relative_score) {
            return bad("retrieval_min_relative_score", "must be between 0 and 1");
        }
        let author = self.document_author.trim();
        if author.is_empty() || author.chars().count() > 200 || author.chars().any(char::is_control)
        {
            return bad(
                "document_author",
                "must name the department or author in 1 to 200 characters, without control \
                 characters (e.g. \"Akutafdelingen, Amager og Hvidovre Hospital\")",
            );
        }
        Ok(())
    }

    /// The quality loop's keys (also what SIGHUP applies).
    fn validate_quality_loop(&self) -> Checked {
        if !(0.0..=10.0).contains(&self.quality_loop_quality_threshold) {
            return bad("quality_loop_quality_threshold", "must be between 0 and 10");
        }
        if self.quality_loop_max_iterations == 0 || self.quality_loop_max_iterations > 100 {
            return bad("quality_loop_max_iterations", "must be between 1 and 100");
        }
        if !(self.quality_loop_max_additional_cost_usd.is_finite()
            && (0.0..=1_000_000.0).contains(&self.quality_loop_max_additional_cost_usd))
        {
            return bad(
                "quality_loop_max_additional_cost_usd",
                "must be between 0 and 1000000 (USD)",
            );
        }
        if !(self.quality_loop_min_improvement.is_finite()
            && (0.0..=10.0).contains(&self.quality_loop_min_improvement))
        {
            return bad("quality_loop_min_improvement", "must be between 0 and 10");
        }
        Ok(())
    }

    /// The model's keys: limits, and for a provider a model with a price and a URL.
    fn validate_model(&self) -> Checked {
        if self.llm_max_tokens == 0 || self.llm_max_tokens > 1_000_000 {
            return bad("llm_max_tokens", "must be between 1 and 1000000");
        }
        if self.llm_min_output_tokens == 0 || self.llm_min_output_tokens > self.llm_max_tokens {
            return bad(
                "llm_min_output_tokens",
                "must be at least 1 and at most llm_max_tokens",
            );
        }
        if self.llm_evidence_tokens < 500 || self.llm_evidence_tokens > 2_000_000 {
            return bad("llm_evidence_tokens", "must be between 500 and 2000000");
        }
        if self.llm_max_retries > 20 {
            return bad("llm_max_retries", "must be at most 20");
        }
        if self.llm_requeue_max_delay_s < self.llm_requeue_delay_s {
            return bad(
                "llm_requeue_max_delay_s",
                &format!(
                    "must be at least llm_requeue_delay_s ({} s), got {} s",
                    self.llm_requeue_delay_s, self.llm_requeue_max_delay_s
                ),
            );
        }
        if self.llm_max_concurrent_calls > 1024 {
            return bad(
                "llm_max_concurrent_calls",
                "must be between 1 and 1024 (at most the model server's parallel slots), or 0 \
                 to take the server's own slot count",
            );
        }
        if self.llm_provider != LlmProvider::Offline {
            if self.llm_model.trim().is_empty() {
                return bad(
                    "llm_model",
                    "must name a model when llm_provider is not \"offline\"",
                );
            }
            let base = self.llm_base_url();
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return bad("llm_base_url", "must start with http:// or https://");
            }
            let table = self.prices()?;
            if table.lookup(&self.llm_model).is_none() {
                return bad(
                    "llm_model",
                    &format!(
                        "{:?} has no price in {} (no exact entry and no family); add it there \
                         or name your own table with `prices_file`",
                        self.llm_model,
                        self.prices_origin()
                    ),
                );
            }
        } else if !self.prices_file.as_os_str().is_empty() {
            self.prices()?;
        }
        self.lexicon()?;
        Ok(())
    }
}
