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
        }
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
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
