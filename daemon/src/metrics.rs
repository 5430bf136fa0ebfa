//! The Prometheus registry behind `GET /metrics`: the queue's counters (owned by the actors
//! crate), runs by status (read from the store at scrape time) and HTTP requests by route and
//! status.

use procedurewriter_actors::{QueueMetrics, StoreMetrics};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: String,
}

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    /// Shared with the actors, which update it.
    pub queue: QueueMetrics,
    runs: Family<StatusLabel, Gauge>,
    http: Family<HttpLabels, Counter>,
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
        let mut registry = Registry::with_prefix("procedurewriter");
        let queue = QueueMetrics::default();
        queue.register(&mut registry);
        store.register(&mut registry);
        let runs = Family::<StatusLabel, Gauge>::default();
        registry.register("runs", "Runs by status", runs.clone());
        let http = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http.clone(),
        );
        Metrics {
            registry,
            queue,
            runs,
            http,
            llm: None,
        }
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
            "llm_slots_in_use",
            "Model calls holding one of the llm_max_concurrent_calls slots",
            m.in_use.clone(),
        );
        r.register(
            "llm_slot_waiting",
            "Model calls waiting for a slot now",
            m.waiting.clone(),
        );
        r.register(
            "llm_slot_waits",
            "Model calls that had to wait for a slot",
            m.waits.clone(),
        );
        r.register(
            "llm_slot_wait_seconds",
            "Seconds model calls spent waiting for a slot",
            m.wait_seconds.clone(),
        );
        self.llm = Some(m);
        self
    }

    /// Counts one answered request. `route` is the route template, never the raw path, so
    /// the label set stays small.
    pub fn http_request(&self, route: &'static str, status: u16) {
        self.http
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    /// The exposition text, with the runs gauge set from `counts` (status → runs).
    pub fn encode(&self, counts: &BTreeMap<&'static str, u64>) -> String {
        for (status, n) in counts {
            self.runs
                .get_or_create(&StatusLabel {
                    status: status.to_string(),
                })
                .set(*n as i64);
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
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
