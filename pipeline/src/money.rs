//! Money as integer pico-USD, so that a cost cap compares exactly. The pipeline prices model
//! calls and holds them under the cap; the queue keeps its own copy of the same unit for a
//! run's totals (it cannot depend on this crate).

/// Pico-USD in one USD.
pub const PICO_PER_USD: i64 = 1_000_000_000_000;

/// Pico-USD as USD, for display.
pub fn to_usd(pico: i64) -> f64 {
    pico as f64 / PICO_PER_USD as f64
}
