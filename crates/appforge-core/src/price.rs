//! Token counts and model prices, in integer micro-dollars so that sums are exact.

use serde::{Deserialize, Serialize};

/// Token counts of one or more model requests, split by how they are billed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenCounts {
    /// Input tokens at the base rate.
    pub input: u64,
    /// Output tokens (thinking included).
    pub output: u64,
    /// Input tokens written to the prompt cache, every time to live (`cache_write_1h` is the
    /// part of them written for one hour).
    pub cache_write: u64,
    /// The part of `cache_write` written with the one-hour time to live.
    #[serde(default)]
    pub cache_write_1h: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read: u64,
}

impl TokenCounts {
    /// All tokens together (`cache_write_1h` is part of `cache_write`).
    #[must_use]
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_write)
            .saturating_add(self.cache_read)
    }

    /// The prompt of the request: every input token, cached or not. Long-context price tiers
    /// are chosen by it.
    #[must_use]
    pub fn prompt(&self) -> u64 {
        self.input
            .saturating_add(self.cache_write)
            .saturating_add(self.cache_read)
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Self) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
        self.cache_write = self.cache_write.saturating_add(other.cache_write);
        self.cache_write_1h = self.cache_write_1h.saturating_add(other.cache_write_1h);
        self.cache_read = self.cache_read.saturating_add(other.cache_read);
    }
}

/// Per-token rates in **micro-dollars (USD / 1 000 000) per million tokens**: $3 per million
/// input tokens is `input: 3_000_000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "RatesRepr")]
pub struct Rates {
    /// Base input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Prompt-cache writes with the five-minute time to live.
    pub cache_write: u64,
    /// Prompt-cache writes with the one-hour time to live.
    pub cache_write_1h: u64,
    /// Prompt-cache reads.
    pub cache_read: u64,
}

impl Rates {
    /// Rates of zero: free.
    pub const FREE: Self = Self::new(0, 0, 0, 0, 0);

    /// Rates in micro-dollars per million tokens: input, output, five-minute cache write,
    /// one-hour cache write, cache read.
    #[must_use]
    pub const fn new(
        input: u64,
        output: u64,
        cache_write: u64,
        cache_write_1h: u64,
        cache_read: u64,
    ) -> Self {
        Self {
            input,
            output,
            cache_write,
            cache_write_1h,
            cache_read,
        }
    }

    /// The cost of `tokens` at these rates, in micro-dollars, rounded down.
    #[must_use]
    pub fn cost_micro_usd(&self, tokens: &TokenCounts) -> u64 {
        let part = |count: u64, rate: u64| u128::from(count) * u128::from(rate);
        let write_1h = tokens.cache_write_1h.min(tokens.cache_write);
        let total = part(tokens.input, self.input)
            + part(tokens.output, self.output)
            + part(tokens.cache_write - write_1h, self.cache_write)
            + part(write_1h, self.cache_write_1h)
            + part(tokens.cache_read, self.cache_read);
        u64::try_from(total / 1_000_000).unwrap_or(u64::MAX)
    }
}

/// Rates as written in a price file: a missing one-hour cache-write rate is the five-minute one.
#[derive(Deserialize)]
struct RatesRepr {
    input: u64,
    output: u64,
    cache_write: u64,
    #[serde(default)]
    cache_write_1h: Option<u64>,
    cache_read: u64,
}

impl From<RatesRepr> for Rates {
    fn from(repr: RatesRepr) -> Self {
        Self::new(
            repr.input,
            repr.output,
            repr.cache_write,
            repr.cache_write_1h.unwrap_or(repr.cache_write),
            repr.cache_read,
        )
    }
}

/// A long-context price tier: a request whose prompt ([`TokenCounts::prompt`]) is over
/// `above_prompt_tokens` is billed at `rates` for every token, output included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LongContextTier {
    /// The prompt size beyond which the tier applies.
    pub above_prompt_tokens: u64,
    /// The rates of the whole request then.
    pub rates: Rates,
}

/// A model's prices: base rates and an optional long-context tier.
///
/// ```
/// use appforge_core::{ModelPrice, Rates, TokenCounts};
///
/// // $3 in, $15 out per million tokens.
/// let price = ModelPrice::new(Rates::new(3_000_000, 15_000_000, 3_750_000, 6_000_000, 300_000));
/// let tokens = TokenCounts { input: 1_000_000, output: 100_000, ..TokenCounts::default() };
/// assert_eq!(price.cost_micro_usd(&tokens), 4_500_000); // $3 + $1.50
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelPrice {
    /// The base rates.
    #[serde(flatten)]
    pub rates: Rates,
    /// The long-context tier, when the model has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_context: Option<LongContextTier>,
}

impl ModelPrice {
    /// Free: the offline demo and local models.
    pub const FREE: Self = Self::new(Rates::FREE);

    /// A price with base rates only.
    #[must_use]
    pub const fn new(rates: Rates) -> Self {
        Self {
            rates,
            long_context: None,
        }
    }

    /// This price with a long-context tier.
    #[must_use]
    pub const fn with_long_context(mut self, above_prompt_tokens: u64, rates: Rates) -> Self {
        self.long_context = Some(LongContextTier {
            above_prompt_tokens,
            rates,
        });
        self
    }

    /// The rates that apply to a request whose prompt is `prompt_tokens` long.
    #[must_use]
    pub fn rates_for(&self, prompt_tokens: u64) -> &Rates {
        match &self.long_context {
            Some(tier) if prompt_tokens > tier.above_prompt_tokens => &tier.rates,
            _ => &self.rates,
        }
    }

    /// The cost of one request's `tokens` in micro-dollars, rounded down; the tier is chosen
    /// by the request's prompt.
    #[must_use]
    pub fn cost_micro_usd(&self, tokens: &TokenCounts) -> u64 {
        self.rates_for(tokens.prompt()).cost_micro_usd(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_class_is_priced_and_the_cost_rounds_down() {
        let rates = Rates::new(3_000_000, 15_000_000, 3_750_000, 6_000_000, 300_000);
        let tokens = TokenCounts {
            input: 1000,
            output: 500,
            cache_write: 2000,
            cache_write_1h: 500,
            cache_read: 10_000,
        };
        // 3000 + 7500 + 1500 * 3.75 + 500 * 6 + 10000 * 0.3 micro-dollars.
        assert_eq!(
            rates.cost_micro_usd(&tokens),
            3000 + 7500 + 5625 + 3000 + 3000
        );
        let one = TokenCounts {
            cache_read: 1,
            ..TokenCounts::default()
        };
        assert_eq!(rates.cost_micro_usd(&one), 0);
    }

    #[test]
    fn the_long_context_tier_applies_to_the_whole_request_above_its_threshold() {
        let base = Rates::new(100_000, 500_000, 125_000, 200_000, 10_000);
        let long = Rates::new(500_000, 2_500_000, 625_000, 1_000_000, 50_000);
        let price = ModelPrice::new(base).with_long_context(100_000, long);
        let at = TokenCounts {
            input: 60_000,
            cache_read: 40_000,
            output: 1_000,
            ..TokenCounts::default()
        };
        assert_eq!(price.cost_micro_usd(&at), 6_000 + 400 + 500);
        let over = TokenCounts {
            input: 60_001,
            ..at
        };
        assert_eq!(price.cost_micro_usd(&over), 30_000 + 2_000 + 2_500);
    }

    #[test]
    fn prices_load_from_flat_json() {
        let price: ModelPrice = serde_json::from_str(
            r#"{"input": 1, "output": 2, "cache_write": 3, "cache_write_1h": 4, "cache_read": 5}"#,
        )
        .unwrap();
        assert_eq!(price, ModelPrice::new(Rates::new(1, 2, 3, 4, 5)));
        let without_1h: ModelPrice =
            serde_json::from_str(r#"{"input": 1, "output": 2, "cache_write": 3, "cache_read": 5}"#)
                .unwrap();
        assert_eq!(without_1h.rates.cache_write_1h, 3);
    }
}
