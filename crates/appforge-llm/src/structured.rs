//! Structured outputs: JSON schemas from Rust types, in the subset the Messages API accepts
//! for `output_config.format`.
//!
//! ```
//! use appforge_llm::{ChangeSet, MessageRequest, OutputFormat, structured};
//!
//! let schema = structured::schema_for::<ChangeSet>();
//! assert_eq!(schema["additionalProperties"], false);
//! let request = MessageRequest::new("claude-sonnet-5-5", 4096)
//!     .user("Make the header sticky")
//!     .output_format(OutputFormat::json_schema(schema));
//! assert_eq!(
//!     serde_json::to_value(&request).unwrap()["output_config"]["format"]["type"],
//!     "json_schema"
//! );
//! ```

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// String formats the API enforces; any other is moved into the description.
const SUPPORTED_STRING_FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "uri",
    "ipv4",
    "ipv6",
    "uuid",
];

/// A type the pipelines ask for as structured output; its schema is built once.
pub trait StructuredOutput: JsonSchema {
    /// The API-ready schema of the type ([`schema_for`]), built on first use.
    fn schema() -> &'static Value;
}

macro_rules! structured_output {
    ($ty:ty) => {
        impl StructuredOutput for $ty {
            fn schema() -> &'static Value {
                static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
                SCHEMA.get_or_init(schema_for::<$ty>)
            }
        }
    };
}

structured_output!(crate::ChangeSet);
structured_output!(crate::PhasePlan);

/// The JSON schema of `T` (its serde shape, doc comments as descriptions), with subschemas
/// inlined and rewritten by [`strict_schema`].
///
/// # Panics
///
/// When `T`'s schema has a node without a type (a type whose schema is `true`, such as
/// `serde_json::Value`): such a type cannot be a structured output.
#[must_use]
pub fn schema_for<T: JsonSchema>() -> Value {
    let schema = SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>();
    strict_schema(schema.to_value()).unwrap_or_else(|detail| {
        panic!(
            "{} has no structured-output schema: {detail}",
            T::schema_name()
        )
    })
}

/// Rewrites a JSON schema into the subset the API accepts, as the official SDKs do
/// (`transformJSONSchema`): every object gets `"additionalProperties": false`, `oneOf`
/// becomes `anyOf`, and what the API does not enforce (numeric bounds, string lengths,
/// unsupported formats, `minItems` above 1) moves into the node's `description`, so the model
/// still reads it.
///
/// This is written here because no crate implements the API's subset; it follows the SDK's
/// rules one for one.
///
/// # Errors
///
/// A message naming the node when one has no `type` and no `anyOf`, `oneOf`, `allOf`,
/// `enum` or `const`.
pub fn strict_schema(schema: Value) -> Result<Value, String> {
    match schema {
        Value::Object(map) => strict_node(map).map(Value::Object),
        Value::Bool(true) => Err("a node accepts any value (`true`): give it a type".into()),
        other => Err(format!("a schema node must be an object, found {other}")),
    }
}

fn strict_node(mut node: Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut strict = Map::new();
    if let Some(Value::Object(defs)) = node.remove("$defs") {
        let mut out = Map::new();
        for (name, def) in defs {
            out.insert(name, strict_schema(def)?);
        }
        strict.insert("$defs".into(), Value::Object(out));
    }
    if let Some(reference) = node.remove("$ref") {
        strict.insert("$ref".into(), reference);
        return Ok(strict);
    }
    if let Some(Value::Array(values)) = node.get("enum")
        && !values.is_empty()
        && values.iter().all(is_primitive)
    {
        strict.insert("enum".into(), node.remove("enum").unwrap_or_default());
    }
    if node.get("const").is_some_and(is_primitive) {
        strict.insert("const".into(), node.remove("const").unwrap_or_default());
    }
    let has_literals = strict.contains_key("enum") || strict.contains_key("const");
    let declared = node.remove("type");
    let kind = if has_literals { None } else { declared };
    let any_of = node.remove("anyOf");
    let one_of = node.remove("oneOf");
    let all_of = node.remove("allOf");
    node.remove("$schema");
    if let Some(Value::Array(variants)) = any_of.or(one_of) {
        strict.insert("anyOf".into(), strict_all(variants)?);
    } else if let Some(Value::Array(entries)) = all_of {
        strict.insert("allOf".into(), strict_all(entries)?);
    } else if !has_literals {
        let kind = kind
            .clone()
            .ok_or("a node has no type and no anyOf, oneOf, allOf, enum or const")?;
        strict.insert("type".into(), kind);
    }
    for key in ["description", "title"] {
        if let Some(value) = node.remove(key) {
            strict.insert(key.into(), value);
        }
    }
    match kind.as_ref().and_then(Value::as_str) {
        Some("object") => {
            let mut properties = Map::new();
            if let Some(Value::Object(props)) = node.remove("properties") {
                for (name, prop) in props {
                    properties.insert(name, strict_schema(prop)?);
                }
            }
            strict.insert("properties".into(), Value::Object(properties));
            node.remove("additionalProperties");
            strict.insert("additionalProperties".into(), Value::Bool(false));
            if let Some(required) = node.remove("required") {
                strict.insert("required".into(), required);
            }
        }
        Some("string") => {
            if let Some(format) = node.remove("format") {
                if format
                    .as_str()
                    .is_some_and(|f| SUPPORTED_STRING_FORMATS.contains(&f))
                {
                    strict.insert("format".into(), format);
                } else {
                    node.insert("format".into(), format);
                }
            }
        }
        Some("array") => {
            if let Some(items) = node.remove("items") {
                strict.insert("items".into(), strict_schema(items)?);
            }
            if let Some(min) = node.remove("minItems") {
                if matches!(min.as_u64(), Some(0 | 1)) {
                    strict.insert("minItems".into(), min);
                } else {
                    node.insert("minItems".into(), min);
                }
            }
        }
        _ => {}
    }
    if !node.is_empty() {
        // In key order whether or not a host turns on serde_json's `preserve_order`: the
        // schema the model sees is the same in every build.
        let mut rest: Vec<(&String, &Value)> = node.iter().collect();
        rest.sort_by(|a, b| a.0.cmp(b.0));
        let rest: Vec<String> = rest
            .into_iter()
            .map(|(key, value)| format!("{key}: {value}"))
            .collect();
        let rest = format!("{{{}}}", rest.join(", "));
        let description = match strict.get("description").and_then(Value::as_str) {
            Some(existing) => format!("{existing}\n\n{rest}"),
            None => rest,
        };
        strict.insert("description".into(), Value::String(description));
    }
    Ok(strict)
}

fn strict_all(schemas: Vec<Value>) -> Result<Value, String> {
    schemas
        .into_iter()
        .map(strict_schema)
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn is_primitive(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_are_closed_one_of_becomes_any_of_and_the_rest_is_described() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Plan",
            "type": "object",
            "properties": {
                "count": {"type": "integer", "format": "uint32", "minimum": 0},
                "when": {"type": "string", "format": "date-time"},
                "slug": {"type": "string", "format": "slug", "maxLength": 8},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                "step": {"oneOf": [
                    {"type": "object", "properties": {"op": {"type": "string", "const": "a"}}, "required": ["op"]},
                    {"type": "object", "properties": {"op": {"type": "string", "enum": ["b", "c"]}}}
                ]}
            },
            "required": ["count"]
        });
        assert_eq!(
            strict_schema(schema).unwrap(),
            json!({
                "type": "object",
                "title": "Plan",
                "properties": {
                    "count": {"type": "integer", "description": "{format: \"uint32\", minimum: 0}"},
                    "when": {"type": "string", "format": "date-time"},
                    "slug": {"type": "string", "description": "{format: \"slug\", maxLength: 8}"},
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "{minItems: 2}"},
                    "step": {"anyOf": [
                        {"type": "object", "properties": {"op": {"const": "a"}}, "additionalProperties": false, "required": ["op"]},
                        {"type": "object", "properties": {"op": {"enum": ["b", "c"]}}, "additionalProperties": false}
                    ]}
                },
                "additionalProperties": false,
                "required": ["count"]
            })
        );
    }

    #[test]
    fn the_pipelines_schemas_are_closed_and_have_no_one_of() {
        fn walk(node: &Value, at: &str) {
            match node {
                Value::Object(map) => {
                    assert!(!map.contains_key("oneOf"), "oneOf at {at}");
                    assert!(!map.contains_key("$ref"), "$ref at {at}");
                    if map.get("type") == Some(&json!("object")) {
                        assert_eq!(map.get("additionalProperties"), Some(&json!(false)), "{at}");
                    }
                    for (key, value) in map {
                        walk(value, &format!("{at}/{key}"));
                    }
                }
                Value::Array(items) => items.iter().for_each(|item| walk(item, at)),
                _ => {}
            }
        }
        let change_set = <crate::ChangeSet as StructuredOutput>::schema();
        let plan = <crate::PhasePlan as StructuredOutput>::schema();
        walk(change_set, "ChangeSet");
        walk(plan, "PhasePlan");
        // Maps sorted: the same snapshot whether or not serde_json keeps insertion order.
        insta::assert_snapshot!(
            "change_set_schema",
            appforge_testing::sorted_json(&change_set)
        );
        insta::assert_snapshot!("phase_plan_schema", appforge_testing::sorted_json(&plan));
    }

    #[test]
    fn a_node_without_a_type_is_refused_by_name() {
        assert!(strict_schema(json!({"description": "anything"})).is_err());
        assert!(strict_schema(json!(true)).is_err());
    }
}
