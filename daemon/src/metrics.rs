//! The Prometheus registry behind `GET /metrics`: the queue's counters (owned by the actors
//! crate), runs by status (read from the store at scrape time), HTTP requests by route and
//! status, what the jobs did (model calls, tokens, cost and latency by provider and model; run
//! outcomes, duration, score and stop reasons), and what an operator watches at scrape time
//! (workers, event streams, database and WAL size, the last reload, the process itself).
//!
//! Every label set is bounded: routes are templates, never raw paths; provider and model come
//! from the configuration; outcomes, stop reasons and token directions are fixed words.
//!
//! The same registry is served in both exposition formats (`prometheus-client` encodes both):
//! the Prometheus text format 0.0.4 (`text/plain`, what `curl` and `promtool check metrics`
//! read) and OpenMetrics 1.0 (`application/openmetrics-text`, what a Prometheus server asks
//! for first). [`Format::negotiate`] picks one from the request's `Accept`.

use procedurewriter_actors::{QueueMetrics, StoreMetrics};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    provider: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelCallLabels {
    provider: String,
    model: String,
    /// `ok`, `error` or `cancelled`.
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: String,
    model: String,
    /// `in` (prompt) or `out` (completion).
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StopLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds, from a fast HTTP answer to a slow one.
fn http_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
    ])
}

/// Seconds, for a model call or a run stage: a second to ten minutes.
fn slow_histogram() -> Histogram {
    Histogram::new([
        0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    ])
}

/// The exposition format of one scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4: counters as `x_total` under `# TYPE x_total counter`.
    PrometheusText,
    /// OpenMetrics 1.0 text, ending in `# EOF`.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it names
    /// `application/openmetrics-text` with a quality at least that of `text/plain` (as a
    /// Prometheus server does), the Prometheus text format otherwise (no header, `*/*`,
    /// `text/plain`, anything else).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::PrometheusText;
        };
        let (mut openmetrics, mut text) = (None::<f32>, None::<f32>);
        for item in accept.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let best = |slot: &mut Option<f32>| *slot = Some(slot.map_or(q, |s| s.max(q)));
            match media.as_str() {
                "application/openmetrics-text" => best(&mut openmetrics),
                "text/plain" => best(&mut text),
                _ => {}
            }
        }
        match openmetrics {
            Some(om) if om > 0.0 && om >= text.unwrap_or(0.0) => Format::OpenMetrics,
            _ => Format::PrometheusText,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// What the jobs report: model calls and finished runs. Cloned into the job runner (every
/// field is a shared handle).
#[derive(Clone)]
pub struct JobMetrics {
    model_calls: Family<ModelCallLabels, Counter>,
    model_tokens: Family<TokenLabels, Counter>,
    model_cost: Family<ModelLabels, Counter<f64, AtomicU64>>,
    model_latency: HistogramFamily<ModelLabels>,
    run_outcomes: Family<OutcomeLabel, Counter>,
    run_duration: Histogram,
    run_stages: HistogramFamily<StageLabel>,
    run_score: Histogram,
    stop_reasons: Family<StopLabel, Counter>,
}

/// One model call, as the job recorded it.
pub struct ModelCall<'a> {
    pub provider: &'a str,
    pub model: &'a str,
    pub outcome: &'static str,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_pusd: i64,
    pub latency_ms: u64,
}

impl JobMetrics {
    fn new() -> Self {
        JobMetrics {
            model_calls: Family::default(),
            model_tokens: Family::default(),
            model_cost: Family::default(),
            model_latency: Family::new_with_constructor(slow_histogram),
            run_outcomes: Family::default(),
            run_duration: slow_histogram(),
            run_stages: Family::new_with_constructor(slow_histogram),
            run_score: Histogram::new((1..=10).map(f64::from)),
            stop_reasons: Family::default(),
        }
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "model_calls",
            "Language-model calls by provider, model and outcome",
            self.model_calls.clone(),
        );
        r.register(
            "model_tokens",
            "Language-model tokens by provider, model and direction (in: prompt, out: completion)",
            self.model_tokens.clone(),
        );
        r.register(
            "model_cost_usd",
            "What the language-model calls cost, in USD, by provider and model",
            self.model_cost.clone(),
        );
        r.register_with_unit(
            "model_call_duration",
            "Language-model call latency by provider and model",
            Unit::Seconds,
            self.model_latency.clone(),
        );
        r.register(
            "run_outcomes",
            "Pipeline runs ended, by outcome (done, not_releasable, needs_ack, failed, cancelled, deferred)",
            self.run_outcomes.clone(),
        );
        r.register_with_unit(
            "run_duration",
            "Wall time of a pipeline run that produced a procedure",
            Unit::Seconds,
            self.run_duration.clone(),
        );
        r.register_with_unit(
            "run_stage_duration",
            "Wall time of a pipeline run's stages (retrieve, write_and_evaluate, package)",
            Unit::Seconds,
            self.run_stages.clone(),
        );
        r.register(
            "run_score",
            "Quality score (0-10) of the procedures the runs produced",
            self.run_score.clone(),
        );
        r.register(
            "run_stop_reasons",
            "Why the quality loop stopped, by reason",
            self.stop_reasons.clone(),
        );
    }

    /// Counts one model call.
    pub fn model_call(&self, call: &ModelCall<'_>) {
        let model = ModelLabels {
            provider: call.provider.to_string(),
            model: call.model.to_string(),
        };
        self.model_calls
            .get_or_create(&ModelCallLabels {
                provider: model.provider.clone(),
                model: model.model.clone(),
                outcome: call.outcome.to_string(),
            })
            .inc();
        for (direction, n) in [("in", call.tokens_in), ("out", call.tokens_out)] {
            self.model_tokens
                .get_or_create(&TokenLabels {
                    provider: model.provider.clone(),
                    model: model.model.clone(),
                    direction: direction.to_string(),
                })
                .inc_by(n);
        }
        // pico-USD to USD: exact enough for a dashboard; /api/costs keeps the exact sums.
        self.model_cost
            .get_or_create(&model)
            .inc_by(call.cost_pusd.max(0) as f64 / 1e12);
        self.model_latency
            .get_or_create(&model)
            .observe(call.latency_ms as f64 / 1000.0);
    }

    /// Counts one ended run by `outcome`.
    pub fn run_ended(&self, outcome: &'static str) {
        self.run_outcomes
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Records a run that produced a procedure (released or not): its timings, score and why
    /// its loop stopped.
    pub fn run_produced(
        &self,
        timings: &procedurewriter_pipeline::package::Timings,
        score: f64,
        stop_reason: &'static str,
    ) {
        self.run_duration.observe(timings.total as f64 / 1000.0);
        for (stage, ms) in [
            ("retrieve", timings.retrieve),
            ("write_and_evaluate", timings.write_and_evaluate),
            ("package", timings.package),
        ] {
            self.run_stages
                .get_or_create(&StageLabel {
                    stage: stage.to_string(),
                })
                .observe(ms as f64 / 1000.0);
        }
        self.run_score.observe(score);
        self.stop_reasons
            .get_or_create(&StopLabel {
                reason: stop_reason.to_string(),
            })
            .inc();
    }
}

/// What the HTTP layer reads at scrape time, passed to [`Metrics::encode`].
#[derive(Debug, Default)]
pub struct Scrape {
    /// Runs by status.
    pub counts: BTreeMap<&'static str, u64>,
    pub workers: Option<usize>,
    pub busy_workers: Option<usize>,
    pub event_streams_open: usize,
    /// Seconds the oldest QUEUED run has waited (0 with none queued).
    pub oldest_queued_age_s: f64,
    pub draining: bool,
    /// Whether the last SIGHUP reload succeeded, and when it happened (Unix seconds; None
    /// before the first).
    pub last_reload: Option<(bool, f64)>,
    /// From [`Files::read`], taken on a blocking thread.
    pub files: Files,
}

/// Sizes and process figures read from the file system (`/proc` on Linux): blocking reads,
/// taken off the serving thread.
#[derive(Debug, Default)]
pub struct Files {
    pub database_bytes: u64,
    pub wal_bytes: u64,
    pub resident_memory_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

impl Files {
    /// Reads the database's and its WAL's sizes and this process's figures.
    pub fn read(db: &Path) -> Files {
        let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let resident_memory_bytes = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024);
        // utime and stime, fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux). The
        // command name (field 2) may hold spaces, so count from its closing parenthesis.
        let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1;
                let f: Vec<&str> = rest.split_whitespace().collect();
                let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
                Some(ticks as f64 / 100.0)
            });
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("Max open files"))?;
                line.split_whitespace().nth(3)?.parse::<u64>().ok()
            });
        Files {
            database_bytes: size(db.to_path_buf()),
            wal_bytes: size(PathBuf::from(wal)),
            resident_memory_bytes,
            cpu_seconds,
            open_fds,
            max_fds,
        }
    }
}

/// The gauges set at scrape time.
#[derive(Default)]
struct ScrapeGauges {
    runs: Family<StatusLabel, Gauge>,
    workers: Gauge,
    busy_workers: Gauge,
    event_streams: Gauge,
    oldest_queued_age: Gauge<f64, AtomicU64>,
    draining: Gauge,
    reload_success: Gauge,
    reload_time: Gauge<f64, AtomicU64>,
    database_bytes: Gauge,
    wal_bytes: Gauge,
    resident_memory: Gauge,
    cpu: Counter<f64, AtomicU64>,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: Gauge<f64, AtomicU64>,
}

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    /// Shared with the actors, which update it.
    pub queue: QueueMetrics,
    /// Shared with the job runner, which updates it.
    pub jobs: JobMetrics,
    http: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabel>,
    /// Requests being answered now (event streams included while they are open).
    pub http_in_flight: Gauge,
    acks: Counter,
    cancels: Counter,
    gauges: ScrapeGauges,
    /// The model provider's call slots, read at scrape time.
    llm: Option<LlmSlotMetrics>,
}

/// `llm_max_concurrent_calls` as metrics: calls holding a slot and waiting for one (gauges),
/// calls that waited and the seconds they waited (counters).
struct LlmSlotMetrics {
    slots: std::sync::Arc<procedurewriter_pipeline::llm::Slots>,
    in_use: Gauge,
    waiting: Gauge,
    waits: Counter,
    wait_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
}

impl Metrics {
    /// The registry, with the store's commit counters registered too.
    pub fn new(store: &StoreMetrics) -> Self {
        let mut registry = Registry::default();
        let gauges = ScrapeGauges::default();
        // The process's own figures carry the conventional `process_` names dashboards expect.
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory size",
            Unit::Bytes,
            gauges.resident_memory.clone(),
        );
        registry.register_with_unit(
            "process_cpu",
            "User and system CPU time spent",
            Unit::Seconds,
            gauges.cpu.clone(),
        );
        registry.register(
            "process_open_fds",
            "Open file descriptors",
            gauges.open_fds.clone(),
        );
        registry.register(
            "process_max_fds",
            "Most file descriptors the process may open",
            gauges.max_fds.clone(),
        );
        registry.register_with_unit(
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Unit::Seconds,
            gauges.start_time.clone(),
        );
        gauges.start_time.set(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        );

        let app = registry.sub_registry_with_prefix("procedurewriter");
        app.register(
            "build",
            "The running build",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            }),
        );
        let queue = QueueMetrics::default();
        queue.register(app);
        store.register(app);
        app.register("runs", "Runs by status", gauges.runs.clone());
        let http = Family::<HttpLabels, Counter>::default();
        app.register(
            "http_requests",
            "HTTP requests by route and status",
            http.clone(),
        );
        let http_duration: HistogramFamily<RouteLabel> =
            Family::new_with_constructor(http_histogram);
        app.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request (to its response head), by route",
            Unit::Seconds,
            http_duration.clone(),
        );
        let http_in_flight = Gauge::default();
        app.register(
            "http_requests_in_flight",
            "HTTP requests being answered",
            http_in_flight.clone(),
        );
        let jobs = JobMetrics::new();
        jobs.register(app);
        let acks = Counter::default();
        app.register(
            "acks",
            "Acknowledgements of missing evidence accepted",
            acks.clone(),
        );
        let cancels = Counter::default();
        app.register("cancels", "Runs cancelled through the API", cancels.clone());
        app.register(
            "workers",
            "Workers (jobs that can run at once)",
            gauges.workers.clone(),
        );
        app.register(
            "busy_workers",
            "Workers running a job",
            gauges.busy_workers.clone(),
        );
        app.register(
            "event_streams_open",
            "Open event streams (GET /api/runs/{id}/events)",
            gauges.event_streams.clone(),
        );
        app.register_with_unit(
            "oldest_queued_run_age",
            "How long the oldest queued run has waited (0 with none queued)",
            Unit::Seconds,
            gauges.oldest_queued_age.clone(),
        );
        app.register(
            "draining",
            "1 while the daemon drains for shutdown and refuses new work",
            gauges.draining.clone(),
        );
        app.register(
            "config_last_reload_success",
            "0 if the last configuration reload (SIGHUP) failed, 1 if it succeeded or none happened yet",
            gauges.reload_success.clone(),
        );
        app.register_with_unit(
            "config_last_reload_timestamp",
            "When the last configuration reload happened (Unix time; 0 before the first)",
            Unit::Seconds,
            gauges.reload_time.clone(),
        );
        app.register_with_unit(
            "database_size",
            "Size of the database file",
            Unit::Bytes,
            gauges.database_bytes.clone(),
        );
        app.register_with_unit(
            "database_wal_size",
            "Size of the database's write-ahead log",
            Unit::Bytes,
            gauges.wal_bytes.clone(),
        );
        Metrics {
            registry,
            queue,
            jobs,
            http,
            http_duration,
            http_in_flight,
            acks,
            cancels,
            gauges,
            llm: None,
        }
    }

    /// The model provider's call slots, if registered (SIGHUP resizes them).
    pub fn llm_slots(&self) -> Option<std::sync::Arc<procedurewriter_pipeline::llm::Slots>> {
        self.llm.as_ref().map(|m| std::sync::Arc::clone(&m.slots))
    }

    /// Registers the model provider's call slots.
    pub fn with_llm_slots(
        mut self,
        slots: std::sync::Arc<procedurewriter_pipeline::llm::Slots>,
    ) -> Self {
        let m = LlmSlotMetrics {
            slots,
            in_use: Gauge::default(),
            waiting: Gauge::default(),
            waits: Counter::default(),
            wait_seconds: Counter::default(),
        };
        let r = &mut self.registry;
        r.register(
            "procedurewriter_llm_slots_in_use",
            "Model calls holding one of the llm_max_concurrent_calls slots",
            m.in_use.clone(),
        );
        r.register(
            "procedurewriter_llm_slot_waiting",
            "Model calls waiting for a slot now",
            m.waiting.clone(),
        );
        r.register(
            "procedurewriter_llm_slot_waits",
            "Model calls that had to wait for a slot",
            m.waits.clone(),
        );
        r.register(
            "procedurewriter_llm_slot_wait_seconds",
            "Seconds model calls spent waiting for a slot",
            m.wait_seconds.clone(),
        );
        self.llm = Some(m);
        self
    }

    /// Counts one answered request. `route` is the route template, never the raw path, so
    /// the label set stays small.
    pub fn http_request(&self, route: &'static str, status: u16, took: std::time::Duration) {
        self.http
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabel {
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts an accepted acknowledgement.
    pub fn ack(&self) {
        self.acks.inc();
    }

    /// Counts a cancellation accepted through the API.
    pub fn cancel(&self) {
        self.cancels.inc();
    }

    /// The exposition text in `format`, with the scrape-time gauges set from `scrape`.
    pub fn encode(&self, scrape: &Scrape, format: Format) -> String {
        let g = &self.gauges;
        for (status, n) in &scrape.counts {
            g.runs
                .get_or_create(&StatusLabel {
                    status: status.to_string(),
                })
                .set(*n as i64);
        }
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        if let Some(w) = scrape.workers {
            g.workers.set(w as i64);
        }
        if let Some(b) = scrape.busy_workers {
            g.busy_workers.set(b as i64);
        }
        g.event_streams.set(scrape.event_streams_open as i64);
        g.oldest_queued_age.set(scrape.oldest_queued_age_s);
        g.draining.set(i64::from(scrape.draining));
        if let Some((ok, at)) = scrape.last_reload {
            g.reload_success.set(i64::from(ok));
            g.reload_time.set(at);
        } else {
            g.reload_success.set(1);
        }
        let f = &scrape.files;
        g.database_bytes.set(as_i64(f.database_bytes));
        g.wal_bytes.set(as_i64(f.wal_bytes));
        if let Some(rss) = f.resident_memory_bytes {
            g.resident_memory.set(as_i64(rss));
        }
        if let Some(cpu) = f.cpu_seconds {
            // A counter only goes up: add what was spent since the last scrape.
            let delta = cpu - g.cpu.get();
            if delta > 0.0 {
                g.cpu.inc_by(delta);
            }
        }
        if let Some(n) = f.open_fds {
            g.open_fds.set(as_i64(n));
        }
        if let Some(n) = f.max_fds {
            g.max_fds.set(as_i64(n));
        }
        if let Some(m) = &self.llm {
            use std::sync::atomic::Ordering::Relaxed;
            m.in_use.set(m.slots.in_use() as i64);
            m.waiting.set(m.slots.waiting.load(Relaxed));
            let waits = m.slots.waits_total.load(Relaxed);
            m.waits.inc_by(waits.saturating_sub(m.waits.get()));
            let secs = m.slots.wait_ms_total.load(Relaxed) as f64 / 1000.0;
            let grown = secs - m.wait_seconds.get();
            if grown > 0.0 {
                m.wait_seconds.inc_by(grown);
            }
        }
        let mut out = String::new();
        let encoded = match format {
            Format::PrometheusText => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
        };
        if encoded.is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn negotiation_follows_accept() {
        assert_eq!(Format::negotiate(None), Format::PrometheusText);
        assert_eq!(Format::negotiate(Some("*/*")), Format::PrometheusText);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::PrometheusText
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; version=1.0.0")),
            Format::OpenMetrics
        );
        // What Prometheus 2.x sends.
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                 version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some(
                "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"
            )),
            Format::PrometheusText
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::PrometheusText
        );
    }
}
