//! JSON for snapshots, the same whatever serde_json features the build turns on.

use serde::Serialize;
use serde_json::{Map, Value};

/// `value` as pretty JSON with every object's keys sorted.
///
/// The text is the same whether or not the build turns on serde_json's `preserve_order`
/// (objects keep insertion order) or `arbitrary_precision` (numbers are kept as text, and
/// reach a serializer other than serde_json's as a private struct): a workspace that also
/// builds rolldown turns both on. Snapshot this string (`insta::assert_snapshot!`) rather
/// than the value.
///
/// # Panics
///
/// When `value` cannot be represented as JSON (a map with non-string keys).
#[must_use]
pub fn sorted_json(value: &impl Serialize) -> String {
    let value = serde_json::to_value(value).expect("the value is JSON");
    serde_json::to_string_pretty(&sorted(value)).expect("a Value prints")
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_at_every_depth_and_numbers_print_as_numbers() {
        let value = serde_json::json!({"b": 1, "a": {"d": [ {"z": 2.5, "y": null} ], "c": 40}});
        assert_eq!(
            sorted_json(&value),
            "{\n  \"a\": {\n    \"c\": 40,\n    \"d\": [\n      {\n        \"y\": null,\n        \"z\": 2.5\n      }\n    ]\n  },\n  \"b\": 1\n}"
        );
    }
}
