use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Token counts of one or more generations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    /// Input tokens at the base rate.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read: u64,
}

impl TokenCounts {
    /// All tokens together.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_write)
            .saturating_add(self.cache_read)
    }

    pub(crate) fn add(&mut self, other: &Self) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
        self.cache_write = self.cache_write.saturating_add(other.cache_write);
        self.cache_read = self.cache_read.saturating_add(other.cache_read);
    }
}

/// A model's prices in **micro-dollars (USD / 1 000 000) per million tokens**: $3 per million
/// input tokens is `input: 3_000_000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// Base input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Prompt-cache writes.
    pub cache_write: u64,
    /// Prompt-cache reads.
    pub cache_read: u64,
}

impl ModelPrice {
    /// Prices in micro-dollars per million tokens: input, output, cache write, cache read.
    #[must_use]
    pub const fn new(input: u64, output: u64, cache_write: u64, cache_read: u64) -> Self {
        Self {
            input,
            output,
            cache_write,
            cache_read,
        }
    }

    /// The cost of `tokens` in micro-dollars, rounded down.
    #[must_use]
    pub fn cost_micro_usd(&self, tokens: &TokenCounts) -> u64 {
        let part = |count: u64, price: u64| u128::from(count) * u128::from(price);
        let total = part(tokens.input, self.input)
            + part(tokens.output, self.output)
            + part(tokens.cache_write, self.cache_write)
            + part(tokens.cache_read, self.cache_read);
        u64::try_from(total / 1_000_000).unwrap_or(u64::MAX)
    }
}

/// Prices per model, looked up by the longest matching prefix of the model id, so that
/// `claude-sonnet-4-5` also prices `claude-sonnet-4-5-20250929`.
///
/// [`PriceTable::default`] holds the public list prices of current Claude models (cache
/// writes at the 5-minute rate); [`PriceTable::with`] adds or replaces an entry, and the
/// table deserialises from a map of prefix to [`ModelPrice`].
///
/// ```
/// use appforge_analytics::{ModelPrice, PriceTable, TokenCounts};
///
/// let prices = PriceTable::default().with("my-local-model", ModelPrice::new(0, 0, 0, 0));
/// let sonnet = prices.price_for("claude-sonnet-4-5-20250929").unwrap();
/// let tokens = TokenCounts { input: 1_000_000, output: 100_000, ..TokenCounts::default() };
/// assert_eq!(sonnet.cost_micro_usd(&tokens), 4_500_000); // $3 + $1.50
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

impl Default for PriceTable {
    fn default() -> Self {
        const OPUS_4_5: ModelPrice = ModelPrice::new(5_000_000, 25_000_000, 6_250_000, 500_000);
        const OPUS_4: ModelPrice = ModelPrice::new(15_000_000, 75_000_000, 18_750_000, 1_500_000);
        const SONNET: ModelPrice = ModelPrice::new(3_000_000, 15_000_000, 3_750_000, 300_000);
        const HAIKU_4_5: ModelPrice = ModelPrice::new(1_000_000, 5_000_000, 1_250_000, 100_000);
        const HAIKU_3_5: ModelPrice = ModelPrice::new(800_000, 4_000_000, 1_000_000, 80_000);
        const HAIKU_3: ModelPrice = ModelPrice::new(250_000, 1_250_000, 300_000, 30_000);
        Self::empty()
            .with("claude-opus-4-5", OPUS_4_5)
            .with("claude-opus-4-1", OPUS_4)
            .with("claude-opus-4", OPUS_4)
            .with("claude-sonnet-4-5", SONNET)
            .with("claude-sonnet-4", SONNET)
            .with("claude-3-7-sonnet", SONNET)
            .with("claude-haiku-4-5", HAIKU_4_5)
            .with("claude-3-5-haiku", HAIKU_3_5)
            .with("claude-3-haiku", HAIKU_3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let prices = PriceTable::default();
        assert_eq!(
            prices.price_for("claude-opus-4-5-20251101").unwrap().input,
            5_000_000
        );
        assert_eq!(
            prices.price_for("claude-opus-4-20250514").unwrap().input,
            15_000_000
        );
        assert!(prices.price_for("gpt-4o").is_none());
    }

    #[test]
    fn cost_adds_every_token_class_and_rounds_down() {
        let price = ModelPrice::new(3_000_000, 15_000_000, 3_750_000, 300_000);
        let tokens = TokenCounts {
            input: 1000,
            output: 500,
            cache_write: 2000,
            cache_read: 10_000,
        };
        // 3000 + 7500 + 7500 + 3000 micro-dollars.
        assert_eq!(price.cost_micro_usd(&tokens), 21_000);
        let one = TokenCounts {
            cache_read: 1,
            ..TokenCounts::default()
        };
        assert_eq!(price.cost_micro_usd(&one), 0);
    }

    #[test]
    fn tables_load_from_json() {
        let table: PriceTable = serde_json::from_str(
            r#"{"local": {"input": 1, "output": 2, "cache_write": 3, "cache_read": 4}}"#,
        )
        .unwrap();
        assert_eq!(
            table.price_for("local-7b"),
            Some(&ModelPrice::new(1, 2, 3, 4))
        );
    }
}
