//! The price table (`etc/prices.toml`): USD per million input and output tokens per model.
//!
//! A model is priced by an exact entry, else by its family: the entry whose name's words
//! (split on `-`, `.`, `:`, `/`, `_`) all occur, in order, among the model name's words, the
//! entry with the most words winning (then the longer name). So `gpt-4o-2024-08-06` is
//! priced as `gpt-4o`, `gpt-4o-mini-2024-07-18` as `gpt-4o-mini`, `claude-3-5-sonnet-20241022`
//! and `claude-sonnet-4-5` as `claude-sonnet`. A model with no entry and no family has no
//! price, and the daemon refuses to start with it.

use crate::money::PICO_PER_USD;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The shipped table.
pub const DEFAULT_PRICES: &str = include_str!("../../../etc/prices.toml");

/// A model's price in pico-USD per token (exact integers: see `crate::llm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input_pico_per_token: i64,
    pub output_pico_per_token: i64,
}

impl Price {
    /// What a call with this usage costs (pico-USD), saturating rather than wrapping.
    pub fn cost(&self, tokens_in: u64, tokens_out: u64) -> i64 {
        let i = (tokens_in.min(i64::MAX as u64) as i64).saturating_mul(self.input_pico_per_token);
        let o = (tokens_out.min(i64::MAX as u64) as i64).saturating_mul(self.output_pico_per_token);
        i.saturating_add(o)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// USD per million input tokens.
    input: f64,
    /// USD per million output tokens.
    output: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    models: BTreeMap<String, Entry>,
}

/// The parsed table.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    models: BTreeMap<String, Price>,
}

fn words(name: &str) -> Vec<String> {
    name.to_lowercase()
        .split(['-', '.', ':', '/', '_'])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// USD per million tokens → pico-USD per token; must be exact to the pico.
fn per_token(usd_per_million: f64, model: &str, which: &str) -> Result<i64, String> {
    let pico = usd_per_million * (PICO_PER_USD / 1_000_000) as f64;
    if !(0.0..1e6).contains(&usd_per_million) {
        return Err(format!(
            "model {model:?}: {which} price must be between 0 and 1000000 USD per million tokens"
        ));
    }
    if (pico - pico.round()).abs() > 1e-6 {
        return Err(format!(
            "model {model:?}: {which} price {usd_per_million} has more than 6 decimals"
        ));
    }
    Ok(pico.round() as i64)
}

impl PriceTable {
    /// Parses a table; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<PriceTable, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        let mut models = BTreeMap::new();
        for (name, e) in file.models {
            let price = Price {
                input_pico_per_token: per_token(e.input, &name, "input")
                    .map_err(|e| format!("{origin}: {e}"))?,
                output_pico_per_token: per_token(e.output, &name, "output")
                    .map_err(|e| format!("{origin}: {e}"))?,
            };
            models.insert(name.to_lowercase(), price);
        }
        Ok(PriceTable { models })
    }

    /// The shipped table.
    pub fn embedded() -> PriceTable {
        PriceTable::parse(DEFAULT_PRICES, "etc/prices.toml")
            .expect("the shipped price table parses (tested)")
    }

    /// The model's price and the entry that priced it, or None.
    pub fn lookup(&self, model: &str) -> Option<(&str, Price)> {
        let lower = model.to_lowercase();
        if let Some((k, p)) = self.models.get_key_value(&lower) {
            return Some((k.as_str(), *p));
        }
        let have = words(&lower);
        self.models
            .iter()
            .filter(|(name, _)| {
                let mut rest = have.iter();
                words(name).iter().all(|w| rest.any(|h| h == w))
            })
            .max_by_key(|(name, _)| (words(name).len(), name.len()))
            .map(|(k, p)| (k.as_str(), *p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_prices_the_known_models_exactly_and_by_family() {
        let t = PriceTable::embedded();
        let usd = |m: &str| {
            let (_, p) = t.lookup(m).unwrap_or_else(|| panic!("{m} unpriced"));
            (
                p.input_pico_per_token as f64 / 1e6,
                p.output_pico_per_token as f64 / 1e6,
            )
        };
        assert_eq!(usd("gpt-4o"), (2.5, 10.0));
        assert_eq!(usd("gpt-4o-mini"), (0.15, 0.6));
        assert_eq!(usd("gpt-4o-2024-08-06"), (2.5, 10.0));
        assert_eq!(usd("gpt-4o-mini-2024-07-18"), (0.15, 0.6));
        assert_eq!(usd("claude-3-5-sonnet-20241022"), (3.0, 15.0));
        assert_eq!(usd("claude-sonnet-4-5"), (3.0, 15.0));
        assert_eq!(usd("claude-3-5-haiku-latest"), (1.0, 5.0));
        assert!(t.lookup("gpt-4").is_none(), "gpt-4 is not gpt-4o");
        assert!(t.lookup("mystery-model").is_none());
    }

    #[test]
    fn cost_is_exact_integer_arithmetic() {
        let p = Price {
            input_pico_per_token: 150_000,
            output_pico_per_token: 600_000,
        };
        // 1M tokens in and out of gpt-4o-mini: 0.15 + 0.60 USD.
        assert_eq!(p.cost(1_000_000, 1_000_000), 750_000_000_000);
        assert_eq!(p.cost(u64::MAX, 1), i64::MAX);
    }

    #[test]
    fn bad_tables_name_the_model() {
        for (text, needle) in [
            ("[models.x]\ninput = -1\noutput = 1\n", "\"x\""),
            ("[models.x]\ninput = 0.0000001\noutput = 1\n", "6 decimals"),
            ("[models.x]\ninput = 1\n", "output"),
            ("[models.x]\ninput = 1\noutput = 1\ncolour = 2\n", "colour"),
        ] {
            let err = PriceTable::parse(text, "t.toml").unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
