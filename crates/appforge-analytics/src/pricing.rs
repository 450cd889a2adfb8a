use std::collections::BTreeMap;

use appforge_core::models::MODELS;
pub use appforge_core::{ModelPrice, Rates, TokenCounts};
use serde::{Deserialize, Serialize};

/// Prices per model, looked up by the longest matching prefix of the model id, so that
/// `claude-sonnet-4-5` also prices `claude-sonnet-4-5-20250929`.
///
/// [`PriceTable::default`] holds the list prices of every model of the
/// [model table](appforge_core::models) (ids and dated aliases; five-minute and one-hour cache
/// writes, cache reads and long-context tiers) and prices the offline demo
/// ([`OFFLINE_DEMO_MODEL`]) at zero explicitly; [`PriceTable::with`] adds or replaces an
/// entry, and the table deserialises from a map of prefix to [`ModelPrice`].
///
/// ```
/// use appforge_analytics::{ModelPrice, PriceTable, TokenCounts};
///
/// let prices = PriceTable::default().with("my-local-model", ModelPrice::FREE);
/// let sonnet = prices.price_for("claude-sonnet-5-5").unwrap();
/// let tokens = TokenCounts { input: 1_000_000, output: 100_000, ..TokenCounts::default() };
/// assert_eq!(sonnet.cost_micro_usd(&tokens), 3_000_000); // $2 + $1
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PriceTable {
    models: BTreeMap<String, ModelPrice>,
}

impl PriceTable {
    /// A table with no prices.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            models: BTreeMap::new(),
        }
    }

    /// This table with `price` for model ids starting with `prefix`.
    #[must_use]
    pub fn with(mut self, prefix: impl Into<String>, price: ModelPrice) -> Self {
        self.models.insert(prefix.into(), price);
        self
    }

    /// The price of `model`: the entry with the longest prefix of it.
    #[must_use]
    pub fn price_for(&self, model: &str) -> Option<&ModelPrice> {
        self.models
            .iter()
            .filter(|(prefix, _)| model.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, price)| price)
    }
}

/// The model name the offline demo provider reports; priced at zero by
/// [`PriceTable::default`].
pub const OFFLINE_DEMO_MODEL: &str = "offline-demo";

impl PriceTable {
    /// Whether `model` is priced at zero on purpose (the offline demo, a local model priced
    /// [`ModelPrice::FREE`]), as opposed to missing from the table.
    #[must_use]
    pub fn is_free(&self, model: &str) -> bool {
        self.price_for(model) == Some(&ModelPrice::FREE)
    }
}

impl Default for PriceTable {
    fn default() -> Self {
        let mut table = Self::empty().with(OFFLINE_DEMO_MODEL, ModelPrice::FREE);
        for model in MODELS {
            for id in std::iter::once(&model.id).chain(model.aliases) {
                table = table.with(*id, model.price);
            }
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dollars(micro: u64) -> f64 {
        micro as f64 / 1e6
    }

    #[test]
    fn longest_prefix_wins() {
        let prices = PriceTable::default();
        assert_eq!(
            prices
                .price_for("claude-opus-4-5-20251101")
                .unwrap()
                .rates
                .input,
            5_000_000
        );
        assert_eq!(
            prices
                .price_for("claude-opus-4-20250514")
                .unwrap()
                .rates
                .input,
            15_000_000
        );
        assert_eq!(
            prices.price_for("claude-sonnet-5-5").unwrap().rates.input,
            2_000_000
        );
        assert_eq!(
            prices
                .price_for("claude-sonnet-5")
                .unwrap()
                .rates
                .cache_read,
            200_000
        );
        assert!(prices.price_for("gpt-4o").is_none());
    }

    #[test]
    fn every_model_of_the_table_is_priced_under_each_of_its_names() {
        let prices = PriceTable::default();
        for model in MODELS {
            for id in std::iter::once(&model.id).chain(model.aliases) {
                assert_eq!(prices.price_for(id), Some(&model.price), "{id}");
            }
        }
    }

    #[test]
    fn known_token_counts_cost_the_published_prices() {
        let prices = PriceTable::default();
        let tokens = TokenCounts {
            input: 10_000,
            output: 2_000,
            cache_write: 50_000,
            cache_write_1h: 20_000,
            cache_read: 30_000,
        };
        let cost = |model: &str| dollars(prices.price_for(model).unwrap().cost_micro_usd(&tokens));
        // Sonnet 5.5: $2 in, $10 out, $2.50 5m write, $4 1h write, $0.10 read.
        assert!((cost("claude-sonnet-5-5") - (0.02 + 0.02 + 0.075 + 0.08 + 0.003)).abs() < 1e-9);
        // Opus 5.5: $4, $20, $5, $8, $0.20.
        assert!((cost("claude-opus-5-5") - (0.04 + 0.04 + 0.15 + 0.16 + 0.006)).abs() < 1e-9);
        // Fable 5.2: $8, $40, $10, $16, $0.20.
        assert!((cost("claude-fable-5-2") - (0.08 + 0.08 + 0.3 + 0.32 + 0.006)).abs() < 1e-9);
        // Haiku 4.5: $1, $5, $1.25, $2, $0.10.
        assert!(
            (cost("claude-haiku-4-5-20251001") - (0.01 + 0.01 + 0.0375 + 0.04 + 0.003)).abs()
                < 1e-9
        );
        // Haiku 5.5 under its 100K-token prompt tier (90K prompt): $0.10, $0.50, $0.125, $0.20,
        // $0.01.
        assert!(
            (cost("claude-haiku-5-5") - (0.001 + 0.001 + 0.00375 + 0.004 + 0.0003)).abs() < 1e-9
        );
        // Over it (110K prompt): $0.50, $2.50, $0.625, $1, $0.05 on every token of the request.
        let long = TokenCounts {
            input: 30_000,
            ..tokens
        };
        let haiku = prices.price_for("claude-haiku-5-5").unwrap();
        assert!(
            (dollars(haiku.cost_micro_usd(&long)) - (0.015 + 0.005 + 0.01875 + 0.02 + 0.0015))
                .abs()
                < 1e-9
        );
        let short = TokenCounts {
            input: 10_000,
            output: 2_000,
            ..TokenCounts::default()
        };
        assert_eq!(haiku.cost_micro_usd(&short), 1_000 + 1_000);
    }

    #[test]
    fn the_offline_demo_is_free_on_purpose() {
        let prices = PriceTable::default();
        assert_eq!(
            prices.price_for(OFFLINE_DEMO_MODEL),
            Some(&ModelPrice::FREE)
        );
        assert!(prices.is_free(OFFLINE_DEMO_MODEL));
        assert!(!prices.is_free("claude-sonnet-5-5"));
        assert!(!prices.is_free("unknown-model"));
    }

    #[test]
    fn tables_load_from_json() {
        let table: PriceTable = serde_json::from_str(
            r#"{"local": {"input": 1, "output": 2, "cache_write": 3, "cache_read": 4}}"#,
        )
        .unwrap();
        assert_eq!(
            table.price_for("local-7b"),
            Some(&ModelPrice::new(Rates::new(1, 2, 3, 3, 4)))
        );
    }
}
