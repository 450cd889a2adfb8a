//! The Claude model table: limits, thinking and effort support, prices and lifecycle dates.
//!
//! One table serves every crate: `appforge-llm` refuses requests a model would reject before
//! any network call and takes its output and context limits from here; `appforge-analytics`
//! prices usage with it; a host checks its configured model at start with
//! [`ModelInfo::lifecycle`].
//!
//! Sources: the official TypeScript SDK 1.16 (`Model`, `DEPRECATED_MODELS`, the thinking and
//! `output_config` types) and the platform documentation's model, pricing and deprecation
//! pages, December 2026. Prices are list prices in micro-dollars per million tokens.
//!
//! ```
//! use appforge_core::models::{self, Lifecycle};
//! use chrono::NaiveDate;
//!
//! let sonnet = models::find(models::DEFAULT_MODEL).unwrap();
//! assert_eq!(sonnet.context_window, 1_000_000);
//! let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
//! assert_eq!(sonnet.lifecycle(today), Lifecycle::Active);
//!
//! let retired = models::find("claude-sonnet-4-5-20250929").unwrap();
//! assert!(matches!(retired.lifecycle(today), Lifecycle::Retired { .. }));
//! assert_eq!(retired.replacement, Some("claude-sonnet-5-5"));
//! ```

use std::fmt;

use chrono::NaiveDate;

use crate::price::{ModelPrice, Rates};

/// The model used when none is configured: the newest generally available Sonnet.
pub const DEFAULT_MODEL: &str = "claude-sonnet-5-5";

/// A model line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// The fastest, cheapest line.
    Haiku,
    /// The balanced line.
    Sonnet,
    /// The most capable generally available line.
    Opus,
    /// The frontier line above Opus.
    Fable,
    /// Limited-access frontier models.
    Mythos,
}

/// How a model thinks, in one word (see [`ThinkingTypes`] for exactly what it accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThinkingMode {
    /// The model decides when and how much to think (`thinking: {type: "adaptive"}`).
    Adaptive,
    /// Manual extended thinking with a token budget (`thinking: {type: "enabled"}`).
    Extended,
    /// No thinking.
    None,
}

/// The `thinking.type` values a model accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThinkingTypes {
    /// `adaptive`.
    pub adaptive: bool,
    /// `enabled` with `budget_tokens` (manual extended thinking).
    pub enabled: bool,
    /// `disabled`.
    pub disabled: bool,
    /// `between_tools`.
    pub between_tools: bool,
}

impl ThinkingTypes {
    /// Adaptive only: thinking is always on (`enabled` and `disabled` are refused).
    pub const ADAPTIVE_ONLY: Self = Self::new(true, false, false, false);
    /// Adaptive, or off.
    pub const ADAPTIVE_OR_OFF: Self = Self::new(true, false, true, false);
    /// Adaptive, or only between tool calls (`between_tools` replaces `disabled`).
    pub const ADAPTIVE_OR_BETWEEN_TOOLS: Self = Self::new(true, false, false, true);
    /// Adaptive recommended; manual extended thinking still accepted; or off.
    pub const ADAPTIVE_OR_MANUAL: Self = Self::new(true, true, true, false);
    /// Manual extended thinking, or off.
    pub const MANUAL: Self = Self::new(false, true, true, false);

    const fn new(adaptive: bool, enabled: bool, disabled: bool, between_tools: bool) -> Self {
        Self {
            adaptive,
            enabled,
            disabled,
            between_tools,
        }
    }

    /// Whether the model accepts `thinking.type` = `kind` (`adaptive`, `enabled`,
    /// `disabled`, `between_tools`); an unknown kind is accepted (the API decides).
    #[must_use]
    pub fn accepts(&self, kind: &str) -> bool {
        match kind {
            "adaptive" => self.adaptive,
            "enabled" => self.enabled,
            "disabled" => self.disabled,
            "between_tools" => self.between_tools,
            _ => true,
        }
    }

    /// The one-word summary.
    #[must_use]
    pub fn mode(&self) -> ThinkingMode {
        if self.adaptive {
            ThinkingMode::Adaptive
        } else if self.enabled {
            ThinkingMode::Extended
        } else {
            ThinkingMode::None
        }
    }
}

/// Effort levels (`output_config.effort`) without `xhigh`.
pub const EFFORT_STANDARD: &[&str] = &["low", "medium", "high", "max"];
/// Effort levels with `xhigh` (Opus 4.7 and later, the Claude 5 generation).
pub const EFFORT_WITH_XHIGH: &[&str] = &["low", "medium", "high", "xhigh", "max"];
/// The effort levels of Claude Opus 4.5.
const EFFORT_OPUS_4_5: &[&str] = &["low", "medium", "high"];

/// One model of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelInfo {
    /// The model id, as the API takes it.
    pub id: &'static str,
    /// Other ids of the same model (dated snapshots).
    pub aliases: &'static [&'static str],
    /// The model line.
    pub family: Family,
    /// Input context window in tokens.
    pub context_window: u32,
    /// The most output tokens of one request (`max_tokens`).
    pub max_output_tokens: u32,
    /// The `thinking.type` values it accepts.
    pub thinking: ThinkingTypes,
    /// The `output_config.effort` levels it accepts (empty: no effort parameter).
    pub effort: &'static [&'static str],
    /// Whether it takes `output_config.format` (structured outputs).
    pub structured_outputs: bool,
    /// Whether it accepts `temperature`, `top_p` and `top_k` (under API versions before
    /// `2026-10-21`, which removed them for every model).
    pub sampling: bool,
    /// List prices.
    pub price: ModelPrice,
    /// When it was deprecated, if it was.
    pub deprecated: Option<NaiveDate>,
    /// When it stops (or stopped) answering, if announced.
    pub end_of_life: Option<NaiveDate>,
    /// The model to move to once it is deprecated.
    pub replacement: Option<&'static str>,
}

/// Where a model stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Current.
    Active,
    /// Still answering, but with an end-of-life date (or deprecated without one yet).
    Deprecated {
        /// When it stops answering, if announced.
        end_of_life: Option<NaiveDate>,
    },
    /// Past its end of life: requests fail.
    Retired {
        /// The day it stopped answering.
        end_of_life: NaiveDate,
    },
}

impl ModelInfo {
    /// Where this model stands on `today`.
    #[must_use]
    pub fn lifecycle(&self, today: NaiveDate) -> Lifecycle {
        match (self.end_of_life, self.deprecated) {
            (Some(end), _) if end <= today => Lifecycle::Retired { end_of_life: end },
            // An end of life announced without a deprecation date counts from now on.
            (end_of_life, Some(day)) if day <= today => Lifecycle::Deprecated { end_of_life },
            (Some(end), None) => Lifecycle::Deprecated {
                end_of_life: Some(end),
            },
            _ => Lifecycle::Active,
        }
    }

    /// Whether `id` names this model (its id or an alias).
    #[must_use]
    pub fn is(&self, id: &str) -> bool {
        self.id == id || self.aliases.contains(&id)
    }

    /// Whether it accepts `effort` as `output_config.effort`.
    #[must_use]
    pub fn accepts_effort(&self, effort: &str) -> bool {
        self.effort.contains(&effort)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Haiku => "haiku",
            Self::Sonnet => "sonnet",
            Self::Opus => "opus",
            Self::Fable => "fable",
            Self::Mythos => "mythos",
        })
    }
}

/// The model `id` names (an id or a dated alias), if the table has it.
#[must_use]
pub fn find(id: &str) -> Option<&'static ModelInfo> {
    MODELS.iter().find(|model| model.is(id))
}

const fn usd(dollars: u64, cents_hundredths: u64) -> u64 {
    // $d.cccc in micro-dollars: d * 1e6 + cccc * 100.
    dollars * 1_000_000 + cents_hundredths * 100
}

const fn rates(input: u64, output: u64, write_5m: u64, write_1h: u64, read: u64) -> Rates {
    Rates::new(input, output, write_5m, write_1h, read)
}

const fn date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

const K: u32 = 1_000;
const M: u32 = 1_000_000;

/// A model with the defaults of its generation; the table below adjusts each.
const fn model(id: &'static str, family: Family, price: Rates) -> ModelInfo {
    ModelInfo {
        id,
        aliases: &[],
        family,
        context_window: M,
        max_output_tokens: 128 * K,
        thinking: ThinkingTypes::ADAPTIVE_ONLY,
        effort: EFFORT_WITH_XHIGH,
        structured_outputs: true,
        sampling: false,
        price: ModelPrice::new(price),
        deprecated: None,
        end_of_life: None,
        replacement: None,
    }
}

/// A model of the Claude 4 generation and earlier: 200K context, 64K output, manual extended
/// thinking, sampling parameters accepted, no effort, no structured outputs (the 4.5 models
/// have them: see [`with_structured_outputs`]).
const fn legacy(
    id: &'static str,
    aliases: &'static [&'static str],
    family: Family,
    price: Rates,
) -> ModelInfo {
    ModelInfo {
        aliases,
        context_window: 200 * K,
        max_output_tokens: 64 * K,
        thinking: ThinkingTypes::MANUAL,
        effort: &[],
        structured_outputs: false,
        sampling: true,
        ..model(id, family, price)
    }
}

/// The 4.5 models take structured outputs.
const fn with_structured_outputs(info: ModelInfo) -> ModelInfo {
    ModelInfo {
        structured_outputs: true,
        ..info
    }
}

const fn retired(
    info: ModelInfo,
    end_of_life: Option<NaiveDate>,
    replacement: &'static str,
) -> ModelInfo {
    ModelInfo {
        end_of_life,
        replacement: Some(replacement),
        ..info
    }
}

const FABLE_5_2: Rates = rates(usd(8, 0), usd(40, 0), usd(10, 0), usd(16, 0), usd(0, 2000));
const FABLE_5_1: Rates = rates(
    usd(10, 0),
    usd(50, 0),
    usd(12, 5000),
    usd(20, 0),
    usd(0, 2500),
);
const FABLE_5: Rates = rates(usd(10, 0), usd(50, 0), usd(12, 5000), usd(20, 0), usd(1, 0));
const OPUS_5_5: Rates = rates(usd(4, 0), usd(20, 0), usd(5, 0), usd(8, 0), usd(0, 2000));
const OPUS_5: Rates = rates(
    usd(5, 0),
    usd(25, 0),
    usd(6, 2500),
    usd(10, 0),
    usd(0, 5000),
);
const SONNET_5_5: Rates = rates(usd(2, 0), usd(10, 0), usd(2, 5000), usd(4, 0), usd(0, 1000));
const SONNET_5: Rates = rates(usd(2, 0), usd(10, 0), usd(2, 5000), usd(4, 0), usd(0, 2000));
const SONNET_4: Rates = rates(usd(3, 0), usd(15, 0), usd(3, 7500), usd(6, 0), usd(0, 3000));
const SONNET_4_LONG: Rates = rates(
    usd(6, 0),
    usd(22, 5000),
    usd(7, 5000),
    usd(12, 0),
    usd(0, 6000),
);
const HAIKU_5_5: Rates = rates(
    usd(0, 1000),
    usd(0, 5000),
    usd(0, 1250),
    usd(0, 2000),
    usd(0, 100),
);
const HAIKU_5_5_LONG: Rates = rates(
    usd(0, 5000),
    usd(2, 5000),
    usd(0, 6250),
    usd(1, 0),
    usd(0, 500),
);
const HAIKU_4_5: Rates = rates(usd(1, 0), usd(5, 0), usd(1, 2500), usd(2, 0), usd(0, 1000));
const HAIKU_3_5: Rates = rates(
    usd(0, 8000),
    usd(4, 0),
    usd(1, 0),
    usd(1, 6000),
    usd(0, 800),
);
const OPUS_4: Rates = rates(
    usd(15, 0),
    usd(75, 0),
    usd(18, 7500),
    usd(30, 0),
    usd(1, 5000),
);
const MYTHOS_PREVIEW: Rates = rates(
    usd(25, 0),
    usd(125, 0),
    usd(31, 2500),
    usd(50, 0),
    usd(2, 5000),
);

/// Every model the table knows, newest first within each line.
pub static MODELS: &[ModelInfo] = &[
    model("claude-fable-5-2", Family::Fable, FABLE_5_2),
    model("claude-mythos-5-2", Family::Mythos, FABLE_5_2),
    model("claude-opus-5-5", Family::Opus, OPUS_5_5),
    ModelInfo {
        thinking: ThinkingTypes::ADAPTIVE_OR_BETWEEN_TOOLS,
        ..model("claude-sonnet-5-5", Family::Sonnet, SONNET_5_5)
    },
    ModelInfo {
        thinking: ThinkingTypes::ADAPTIVE_OR_OFF,
        effort: EFFORT_STANDARD,
        price: ModelPrice::new(HAIKU_5_5).with_long_context(100_000, HAIKU_5_5_LONG),
        ..model("claude-haiku-5-5", Family::Haiku, HAIKU_5_5)
    },
    model("claude-fable-5-1", Family::Fable, FABLE_5_1),
    model("claude-mythos-5-1", Family::Mythos, FABLE_5_1),
    ModelInfo {
        thinking: ThinkingTypes::ADAPTIVE_OR_OFF,
        ..model("claude-opus-5", Family::Opus, OPUS_5)
    },
    ModelInfo {
        thinking: ThinkingTypes::ADAPTIVE_OR_OFF,
        ..model("claude-sonnet-5", Family::Sonnet, SONNET_5)
    },
    model("claude-fable-5", Family::Fable, FABLE_5),
    model("claude-mythos-5", Family::Mythos, FABLE_5),
    ModelInfo {
        thinking: ThinkingTypes::ADAPTIVE_OR_OFF,
        ..model("claude-opus-4-8", Family::Opus, OPUS_5)
    },
    ModelInfo {
        thinking: ThinkingTypes::ADAPTIVE_OR_OFF,
        ..model("claude-opus-4-7", Family::Opus, OPUS_5)
    },
    ModelInfo {
        end_of_life: date(2026, 6, 30),
        replacement: Some("claude-mythos-5-2"),
        ..model("claude-mythos-preview", Family::Mythos, MYTHOS_PREVIEW)
    },
    ModelInfo {
        thinking: ThinkingTypes::ADAPTIVE_OR_MANUAL,
        effort: EFFORT_STANDARD,
        sampling: true,
        ..model("claude-opus-4-6", Family::Opus, OPUS_5)
    },
    ModelInfo {
        thinking: ThinkingTypes::ADAPTIVE_OR_MANUAL,
        effort: EFFORT_STANDARD,
        sampling: true,
        ..model("claude-sonnet-4-6", Family::Sonnet, SONNET_4)
    },
    with_structured_outputs(legacy(
        "claude-haiku-4-5",
        &["claude-haiku-4-5-20251001"],
        Family::Haiku,
        HAIKU_4_5,
    )),
    ModelInfo {
        effort: EFFORT_OPUS_4_5,
        deprecated: date(2026, 11, 23),
        end_of_life: date(2027, 1, 22),
        replacement: Some("claude-opus-5-5"),
        ..with_structured_outputs(legacy(
            "claude-opus-4-5",
            &["claude-opus-4-5-20251101"],
            Family::Opus,
            OPUS_5,
        ))
    },
    retired(
        ModelInfo {
            price: ModelPrice::new(SONNET_4).with_long_context(200_000, SONNET_4_LONG),
            ..with_structured_outputs(legacy(
                "claude-sonnet-4-5",
                &["claude-sonnet-4-5-20250929"],
                Family::Sonnet,
                SONNET_4,
            ))
        },
        date(2026, 11, 30),
        "claude-sonnet-5-5",
    ),
    retired(
        legacy(
            "claude-opus-4-1",
            &["claude-opus-4-1-20250805"],
            Family::Opus,
            OPUS_4,
        ),
        date(2026, 6, 15),
        "claude-opus-5-5",
    ),
    retired(
        legacy(
            "claude-opus-4-0",
            &["claude-opus-4-20250514"],
            Family::Opus,
            OPUS_4,
        ),
        date(2026, 6, 15),
        "claude-opus-5-5",
    ),
    retired(
        ModelInfo {
            price: ModelPrice::new(SONNET_4).with_long_context(200_000, SONNET_4_LONG),
            ..legacy(
                "claude-sonnet-4-0",
                &["claude-sonnet-4-20250514"],
                Family::Sonnet,
                SONNET_4,
            )
        },
        date(2026, 6, 15),
        "claude-sonnet-5-5",
    ),
    retired(
        legacy(
            "claude-3-7-sonnet-latest",
            &["claude-3-7-sonnet-20250219"],
            Family::Sonnet,
            SONNET_4,
        ),
        date(2026, 2, 19),
        "claude-sonnet-5-5",
    ),
    retired(
        legacy(
            "claude-3-5-haiku-latest",
            &["claude-3-5-haiku-20241022"],
            Family::Haiku,
            HAIKU_3_5,
        ),
        date(2026, 2, 19),
        "claude-haiku-5-5",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        chrono::Utc::now().date_naive()
    }

    #[test]
    fn the_default_model_is_in_the_table_and_not_deprecated_today() {
        let model = find(DEFAULT_MODEL).expect("the default model is in the table");
        assert_eq!(
            model.lifecycle(today()),
            Lifecycle::Active,
            "{DEFAULT_MODEL} is deprecated: move the default to its replacement"
        );
        assert_eq!(model.family, Family::Sonnet);
        let newer_sonnet = MODELS
            .iter()
            .find(|m| m.family == Family::Sonnet && m.lifecycle(today()) == Lifecycle::Active);
        assert_eq!(
            newer_sonnet.map(|m| m.id),
            Some(DEFAULT_MODEL),
            "the newest Sonnet comes first"
        );
    }

    #[test]
    fn ids_and_aliases_are_unique_and_replacements_are_current() {
        let mut seen = std::collections::HashSet::new();
        for model in MODELS {
            for id in std::iter::once(&model.id).chain(model.aliases) {
                assert!(seen.insert(*id), "{id} appears twice");
            }
            if let Some(replacement) = model.replacement {
                let next = find(replacement).expect("replacements are in the table");
                assert_eq!(
                    next.end_of_life, None,
                    "{} is replaced by a model that ends too",
                    model.id
                );
            }
            assert!(
                model.deprecated.is_some()
                    || model.end_of_life.is_some()
                    || model.replacement.is_none()
            );
            assert!(model.max_output_tokens <= model.context_window);
        }
    }

    #[test]
    fn lifecycle_follows_the_dates() {
        let opus = find("claude-opus-4-5-20251101").unwrap();
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(opus.lifecycle(day(2026, 11, 1)), Lifecycle::Active);
        assert_eq!(
            opus.lifecycle(day(2026, 12, 2)),
            Lifecycle::Deprecated {
                end_of_life: Some(day(2027, 1, 22))
            }
        );
        assert_eq!(
            opus.lifecycle(day(2027, 1, 22)),
            Lifecycle::Retired {
                end_of_life: day(2027, 1, 22)
            }
        );
    }

    #[test]
    fn thinking_types_summarise_as_the_three_modes() {
        assert_eq!(
            find("claude-opus-5-5").unwrap().thinking.mode(),
            ThinkingMode::Adaptive
        );
        assert_eq!(
            find("claude-haiku-4-5").unwrap().thinking.mode(),
            ThinkingMode::Extended
        );
        assert!(
            !find("claude-sonnet-5-5")
                .unwrap()
                .thinking
                .accepts("enabled")
        );
        assert!(
            find("claude-sonnet-4-6")
                .unwrap()
                .thinking
                .accepts("enabled")
        );
        assert!(
            find("claude-sonnet-5-5")
                .unwrap()
                .thinking
                .accepts("between_tools")
        );
    }
}
