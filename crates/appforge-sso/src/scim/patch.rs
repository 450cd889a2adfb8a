use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{PATCH_OP_SCHEMA, ScimEmail, ScimName, ScimUser};
use crate::{Error, Result};

/// A PATCH request body (RFC 7644 section 3.5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchOp {
    /// [`PATCH_OP_SCHEMA`].
    pub schemas: Vec<String>,
    /// The operations, applied in order.
    #[serde(rename = "Operations")]
    pub operations: Vec<PatchOperation>,
}

/// One operation of a [`PatchOp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchOperation {
    /// `add`, `replace` or `remove`.
    pub op: PatchOpKind,
    /// The attribute (`active`, `name.givenName`, ...); absent: `value` is an object of
    /// attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The new value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// What a [`PatchOperation`] does. Read case-insensitively: Entra ID sends `Replace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchOpKind {
    /// Adds a value (sets a single-valued attribute).
    Add,
    /// Replaces a value.
    Replace,
    /// Removes a value.
    Remove,
}

impl<'de> Deserialize<'de> for PatchOpKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let op = String::deserialize(deserializer)?;
        match op.to_ascii_lowercase().as_str() {
            "add" => Ok(Self::Add),
            "replace" => Ok(Self::Replace),
            "remove" => Ok(Self::Remove),
            _ => Err(serde::de::Error::unknown_variant(
                &op,
                &["add", "replace", "remove"],
            )),
        }
    }
}

impl PatchOp {
    /// A request of `operations`.
    #[must_use]
    pub fn new(operations: Vec<PatchOperation>) -> Self {
        Self {
            schemas: vec![PATCH_OP_SCHEMA.to_owned()],
            operations,
        }
    }

    /// Applies the operations to `user`, all or none: on an error `user` is unchanged.
    /// Paths: `active`, `userName`, `displayName`, `externalId`, `name.givenName`,
    /// `name.familyName`, `name.formatted`, `emails`; without a path, an object of those.
    ///
    /// # Errors
    ///
    /// [`Error::Scim`] for an unsupported path or a value of the wrong type
    /// (`invalidPath`, `invalidValue`, `noTarget`).
    pub fn apply(&self, user: &mut ScimUser) -> Result<()> {
        let mut patched = user.clone();
        for operation in &self.operations {
            match (&operation.path, operation.op) {
                (Some(path), PatchOpKind::Remove) => set(&mut patched, path, None)?,
                (Some(path), _) => set(&mut patched, path, Some(required(operation)?))?,
                (None, PatchOpKind::Remove) => {
                    return Err(Error::Scim("noTarget: remove needs a path".into()));
                }
                (None, _) => {
                    let Value::Object(attributes) = required(operation)? else {
                        return Err(Error::Scim(
                            "invalidValue: without a path the value must be an object".into(),
                        ));
                    };
                    for (path, value) in attributes {
                        set(&mut patched, path, Some(value))?;
                    }
                }
            }
        }
        *user = patched;
        Ok(())
    }
}

fn required(operation: &PatchOperation) -> Result<&Value> {
    operation
        .value
        .as_ref()
        .ok_or_else(|| Error::Scim("invalidValue: the operation has no value".into()))
}

fn set(user: &mut ScimUser, path: &str, value: Option<&Value>) -> Result<()> {
    let text = |value: Option<&Value>| -> Result<Option<String>> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(Error::Scim(format!("invalidValue: {path} takes a string"))),
        }
    };
    let path = path
        .strip_prefix(super::USER_SCHEMA)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or(path);
    match path.to_ascii_lowercase().as_str() {
        "active" => {
            user.active = match value {
                Some(Value::Bool(active)) => *active,
                // Entra ID has sent booleans as strings.
                Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => true,
                Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => false,
                _ => return Err(Error::Scim("invalidValue: active takes a boolean".into())),
            };
        }
        "username" => {
            user.user_name = text(value)?
                .filter(|name| !name.is_empty())
                .ok_or_else(|| Error::Scim("invalidValue: userName is required".into()))?;
        }
        "displayname" => user.display_name = text(value)?,
        "externalid" => user.external_id = text(value)?,
        "name" => {
            user.name = match value {
                None | Some(Value::Null) => None,
                Some(value) => Some(
                    serde_json::from_value::<ScimName>(value.clone())
                        .map_err(|e| Error::Scim(format!("invalidValue: name: {e}")))?,
                ),
            };
        }
        "name.givenname" => {
            user.name.get_or_insert_with(ScimName::default).given_name = text(value)?;
        }
        "name.familyname" => {
            user.name.get_or_insert_with(ScimName::default).family_name = text(value)?;
        }
        "name.formatted" => {
            user.name.get_or_insert_with(ScimName::default).formatted = text(value)?;
        }
        "emails" => {
            user.emails = match value {
                None | Some(Value::Null) => Vec::new(),
                Some(value) => serde_json::from_value::<Vec<ScimEmail>>(value.clone())
                    .map_err(|e| Error::Scim(format!("invalidValue: emails: {e}")))?,
            };
        }
        _ => {
            return Err(Error::Scim(format!(
                "invalidPath: {path:?} is not supported"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patch(body: Value) -> PatchOp {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn deactivation_as_providers_send_it() {
        let mut user = ScimUser::new("ada@acme.com");
        // Okta.
        patch(json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "replace", "value": {"active": false}}]
        }))
        .apply(&mut user)
        .unwrap();
        assert!(!user.active);
        // Entra ID.
        patch(json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "Replace", "path": "active", "value": "True"}]
        }))
        .apply(&mut user)
        .unwrap();
        assert!(user.active);
    }

    #[test]
    fn attributes_are_replaced_and_removed() {
        let mut user = ScimUser::new("ada@acme.com");
        PatchOp::new(vec![
            PatchOperation {
                op: PatchOpKind::Add,
                path: Some("name.givenName".into()),
                value: Some(json!("Ada")),
            },
            PatchOperation {
                op: PatchOpKind::Replace,
                path: Some("emails".into()),
                value: Some(json!([{"value": "ada@acme.io", "primary": true}])),
            },
            PatchOperation {
                op: PatchOpKind::Replace,
                path: Some("displayName".into()),
                value: Some(json!("Ada L.")),
            },
            PatchOperation {
                op: PatchOpKind::Remove,
                path: Some("displayName".into()),
                value: None,
            },
        ])
        .apply(&mut user)
        .unwrap();
        assert_eq!(user.name.unwrap().given_name.as_deref(), Some("Ada"));
        assert_eq!(user.emails[0].value, "ada@acme.io");
        assert_eq!(user.display_name, None);
    }

    #[test]
    fn a_failing_operation_changes_nothing() {
        let mut user = ScimUser::new("ada@acme.com");
        let err = patch(json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [
                {"op": "replace", "path": "displayName", "value": "Ada"},
                {"op": "replace", "path": "title", "value": "Countess"}
            ]
        }))
        .apply(&mut user)
        .unwrap_err();
        assert!(err.to_string().contains("invalidPath"), "{err}");
        assert_eq!(user, ScimUser::new("ada@acme.com"));
        let err = patch(json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "replace", "path": "active", "value": 1}]
        }))
        .apply(&mut user)
        .unwrap_err();
        assert!(err.to_string().contains("invalidValue"), "{err}");
        assert!(
            serde_json::from_value::<PatchOp>(json!({
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": [{"op": "move", "path": "active"}]
            }))
            .is_err()
        );
    }
}
