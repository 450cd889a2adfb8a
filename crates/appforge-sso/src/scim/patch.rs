use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::{PATCH_OP_SCHEMA, ScimEmail, ScimName, ScimUser, USER_SCHEMA};
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
    /// The attribute (`active`, `name.givenName`, `emails[type eq "work"].value`, ...);
    /// absent: `value` is an object of attributes.
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

/// The schema URN of the enterprise User extension (RFC 7643 section 4.3). Its attributes
/// are accepted in a PATCH and not kept.
const ENTERPRISE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

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
    ///
    /// Kept: `userName`, `displayName`, `externalId`, `active` (a boolean, or the string
    /// `"true"`/`"false"` in any case, as Entra ID sends it), `name` and its `givenName`,
    /// `familyName`, `formatted`, and `emails`: the whole list (`add` appends, `replace`
    /// replaces), or the entries a value path selects (`emails[type eq "work"].value`,
    /// `emails[primary eq true].value`; an entry of that type is added when none matches).
    /// Accepted and ignored: the other attributes of the core User schema (`title`,
    /// `preferredLanguage`, `addresses[...]`, `phoneNumbers[...]`, ...) and those of the
    /// enterprise extension (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:...`,
    /// or an object under that key). Without a path, the value is an object of such
    /// attributes. Paths may carry the schema URN; attribute names are case-insensitive.
    ///
    /// # Errors
    ///
    /// [`Error::Scim`], its detail starting with the SCIM error type: `invalidPath` for a
    /// malformed path (unbalanced brackets, an empty segment) or one naming no attribute of
    /// a known schema, `invalidFilter` for an `emails[...]` selection other than an `eq` on
    /// `type`, `value` or `primary`, `invalidValue` for a value of the wrong type, a missing
    /// value or the removal of `userName` or `active`, `mutability` for `id` and `meta`
    /// (read-only), `noTarget` for `remove` without a path or a selection that matches
    /// nothing and cannot be created.
    pub fn apply(&self, user: &mut ScimUser) -> Result<()> {
        let mut patched = user.clone();
        for operation in &self.operations {
            match (&operation.path, operation.op) {
                (Some(path), PatchOpKind::Remove) => {
                    at_path(&mut patched, operation.op, path, None)?;
                }
                (Some(path), op) => at_path(&mut patched, op, path, Some(required(operation)?))?,
                (None, PatchOpKind::Remove) => {
                    return Err(Error::Scim("noTarget: remove needs a path".into()));
                }
                (None, op) => {
                    let Value::Object(attributes) = required(operation)? else {
                        return Err(Error::Scim(
                            "invalidValue: without a path the value must be an object".into(),
                        ));
                    };
                    attributes_of(&mut patched, op, attributes)?;
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

/// Applies an object of attributes (a path-less operation's value), each key a path.
fn attributes_of(
    user: &mut ScimUser,
    op: PatchOpKind,
    attributes: &Map<String, Value>,
) -> Result<()> {
    for (path, value) in attributes {
        at_path(user, op, path, Some(value))?;
    }
    Ok(())
}

/// Applies `op` at `path`; `value` is `None` for a removal.
fn at_path(user: &mut ScimUser, op: PatchOpKind, path: &str, value: Option<&Value>) -> Result<()> {
    match parse_path(path)? {
        Target::Schema(Schema::Core) => match value {
            Some(Value::Object(attributes)) => attributes_of(user, op, attributes),
            _ => Err(Error::Scim(format!(
                "invalidPath: {path:?} must name an attribute of the schema"
            ))),
        },
        Target::Schema(Schema::Enterprise) => match value {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Object(attributes)) => {
                for key in attributes.keys() {
                    parse_attribute(key, key, Schema::Enterprise)?;
                }
                Ok(())
            }
            Some(_) => Err(Error::Scim(format!(
                "invalidValue: {path} takes an object of attributes"
            ))),
        },
        Target::Attribute(attribute) => attribute.apply(user, op, value),
    }
}

/// The schemas whose attributes a path may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// `urn:ietf:params:scim:schemas:core:2.0:User`, the default.
    Core,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    Enterprise,
}

/// What a path names.
#[derive(Debug)]
enum Target<'a> {
    /// A whole schema (its URN alone), which takes an object of its attributes.
    Schema(Schema),
    /// One attribute.
    Attribute(AttributePath<'a>),
}

/// What becomes of an attribute's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    UserName,
    DisplayName,
    ExternalId,
    Active,
    Name,
    Emails,
    /// Accepted, not kept.
    Ignored,
    /// Set by the service: a PATCH may not change it.
    ReadOnly,
}

/// An attribute of a schema: its name, its sub-attributes, whether it is multi-valued
/// (only those take a `[filter]`).
#[derive(Debug)]
struct Definition {
    name: &'static str,
    handling: Handling,
    subs: &'static [&'static str],
    multi: bool,
}

const fn attribute(
    name: &'static str,
    handling: Handling,
    subs: &'static [&'static str],
    multi: bool,
) -> Definition {
    Definition {
        name,
        handling,
        subs,
        multi,
    }
}

const NAME_PARTS: &[&str] = &[
    "formatted",
    "familyName",
    "givenName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
];
const MULTI: &[&str] = &["value", "display", "type", "primary"];
const ADDRESS: &[&str] = &[
    "formatted",
    "streetAddress",
    "locality",
    "region",
    "postalCode",
    "country",
    "type",
    "primary",
];
const GROUP: &[&str] = &["value", "$ref", "display", "type"];
const META: &[&str] = &[
    "resourceType",
    "created",
    "lastModified",
    "location",
    "version",
];
const MANAGER: &[&str] = &["value", "$ref", "displayName"];

/// The core User schema (RFC 7643 sections 3.1 and 4.1).
const CORE: &[Definition] = &[
    attribute("userName", Handling::UserName, &[], false),
    attribute("displayName", Handling::DisplayName, &[], false),
    attribute("externalId", Handling::ExternalId, &[], false),
    attribute("active", Handling::Active, &[], false),
    attribute("name", Handling::Name, NAME_PARTS, false),
    attribute("emails", Handling::Emails, MULTI, true),
    attribute("id", Handling::ReadOnly, &[], false),
    attribute("meta", Handling::ReadOnly, META, false),
    attribute("schemas", Handling::Ignored, &[], false),
    attribute("nickName", Handling::Ignored, &[], false),
    attribute("profileUrl", Handling::Ignored, &[], false),
    attribute("title", Handling::Ignored, &[], false),
    attribute("userType", Handling::Ignored, &[], false),
    attribute("preferredLanguage", Handling::Ignored, &[], false),
    attribute("locale", Handling::Ignored, &[], false),
    attribute("timezone", Handling::Ignored, &[], false),
    attribute("password", Handling::Ignored, &[], false),
    attribute("phoneNumbers", Handling::Ignored, MULTI, true),
    attribute("ims", Handling::Ignored, MULTI, true),
    attribute("photos", Handling::Ignored, MULTI, true),
    attribute("addresses", Handling::Ignored, ADDRESS, true),
    attribute("groups", Handling::Ignored, GROUP, true),
    attribute("entitlements", Handling::Ignored, MULTI, true),
    attribute("roles", Handling::Ignored, MULTI, true),
    attribute("x509Certificates", Handling::Ignored, MULTI, true),
];

/// The enterprise User extension (RFC 7643 section 4.3).
const ENTERPRISE: &[Definition] = &[
    attribute("employeeNumber", Handling::Ignored, &[], false),
    attribute("costCenter", Handling::Ignored, &[], false),
    attribute("organization", Handling::Ignored, &[], false),
    attribute("division", Handling::Ignored, &[], false),
    attribute("department", Handling::Ignored, &[], false),
    attribute("manager", Handling::Ignored, MANAGER, false),
];

/// A parsed `attribute[filter].sub` path (RFC 7644 section 3.5.2, `PATH`).
#[derive(Debug)]
struct AttributePath<'a> {
    /// The whole path, for messages.
    text: &'a str,
    definition: &'static Definition,
    /// The value filter, between the brackets.
    filter: Option<&'a str>,
    /// The sub-attribute.
    sub: Option<&'a str>,
}

fn parse_path(path: &str) -> Result<Target<'_>> {
    if path.is_empty() {
        return Err(Error::Scim("invalidPath: the path is empty".into()));
    }
    for (urn, schema) in [
        (USER_SCHEMA, Schema::Core),
        (ENTERPRISE_USER_SCHEMA, Schema::Enterprise),
    ] {
        if let Some(head) = path.get(..urn.len())
            && head.eq_ignore_ascii_case(urn)
        {
            let rest = &path[urn.len()..];
            if rest.is_empty() {
                return Ok(Target::Schema(schema));
            }
            if let Some(rest) = rest.strip_prefix(':') {
                return parse_attribute(path, rest, schema).map(Target::Attribute);
            }
        }
    }
    if path
        .get(..4)
        .is_some_and(|head| head.eq_ignore_ascii_case("urn:"))
    {
        return Err(Error::Scim(format!(
            "invalidPath: {path:?} names an unknown schema"
        )));
    }
    parse_attribute(path, path, Schema::Core).map(Target::Attribute)
}

/// Parses `text`, the part of `path` after its schema URN.
fn parse_attribute<'a>(path: &'a str, text: &'a str, schema: Schema) -> Result<AttributePath<'a>> {
    let invalid = |why: &str| Error::Scim(format!("invalidPath: {path:?} {why}"));
    let end = text.find(['.', '[']).unwrap_or(text.len());
    let (name, mut rest) = text.split_at(end);
    if !valid_name(name) {
        return Err(invalid("has an empty or malformed attribute name"));
    }
    let mut filter = None;
    if let Some(inner) = rest.strip_prefix('[') {
        let close = closing_bracket(inner).ok_or_else(|| invalid("has unbalanced brackets"))?;
        let expression = inner[..close].trim();
        if expression.is_empty() {
            return Err(invalid("has an empty filter"));
        }
        filter = Some(expression);
        rest = &inner[close + 1..];
    }
    let sub = match rest.strip_prefix('.') {
        None if rest.is_empty() => None,
        Some(sub) if valid_name(sub) || sub.eq_ignore_ascii_case("$ref") => Some(sub),
        _ => return Err(invalid("has an empty or malformed sub-attribute")),
    };
    let (definitions, schema_name) = match schema {
        Schema::Core => (CORE, "the User schema"),
        Schema::Enterprise => (ENTERPRISE, "the enterprise User extension"),
    };
    let definition = definitions
        .iter()
        .find(|definition| definition.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| invalid(&format!("is not an attribute of {schema_name}")))?;
    if filter.is_some() && !definition.multi {
        return Err(invalid("filters a single-valued attribute"));
    }
    if let Some(sub) = sub
        && !definition
            .subs
            .iter()
            .any(|known| known.eq_ignore_ascii_case(sub))
    {
        return Err(invalid(&format!(
            "names no sub-attribute of {}",
            definition.name
        )));
    }
    Ok(AttributePath {
        text: path,
        definition,
        filter,
        sub,
    })
}

/// `ATTRNAME` (RFC 7643 section 2.1): a letter, then letters, digits, `-` or `_`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The index in `inner` (what follows a `[`) of the `]` closing it, outside quoted strings;
/// `None` when there is none, or another `[` comes first.
fn closing_bracket(inner: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (index, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ']' if !quoted => return Some(index),
            '[' if !quoted => return None,
            _ => {}
        }
    }
    None
}

impl AttributePath<'_> {
    fn apply(&self, user: &mut ScimUser, op: PatchOpKind, value: Option<&Value>) -> Result<()> {
        let path = self.text;
        match self.definition.handling {
            Handling::UserName => {
                let Some(value) = value else {
                    return Err(Error::Scim(
                        "invalidValue: userName is required and cannot be removed".into(),
                    ));
                };
                user.user_name = text(path, Some(value))?
                    .ok_or_else(|| Error::Scim("invalidValue: userName is required".into()))?;
            }
            Handling::DisplayName => user.display_name = text(path, value)?,
            Handling::ExternalId => user.external_id = text(path, value)?,
            Handling::Active => {
                let Some(value) = value else {
                    return Err(Error::Scim("invalidValue: active cannot be removed".into()));
                };
                user.active = boolean(value)
                    .ok_or_else(|| Error::Scim("invalidValue: active takes a boolean".into()))?;
            }
            Handling::Name => self.name(user, value)?,
            Handling::Emails => self.emails(user, op, value)?,
            Handling::Ignored => {}
            Handling::ReadOnly => {
                return Err(Error::Scim(format!("mutability: {path} is read-only")));
            }
        }
        Ok(())
    }

    /// `name` (add and replace both set the sub-attributes given, RFC 7644 section 3.5.2)
    /// and `name.<part>`.
    fn name(&self, user: &mut ScimUser, value: Option<&Value>) -> Result<()> {
        let path = self.text;
        match (self.sub, value) {
            (None, None | Some(Value::Null)) => user.name = None,
            (None, Some(Value::Object(parts))) => {
                let name = user.name.get_or_insert_with(ScimName::default);
                for (part, value) in parts {
                    name_part(name, path, part, Some(value))?;
                }
            }
            (None, Some(_)) => {
                return Err(Error::Scim(format!("invalidValue: {path} takes an object")));
            }
            (Some(part), value) => {
                name_part(
                    user.name.get_or_insert_with(ScimName::default),
                    path,
                    part,
                    value,
                )?;
            }
        }
        if user.name.as_ref() == Some(&ScimName::default()) {
            user.name = None;
        }
        Ok(())
    }

    /// `emails`, `emails.<sub>`, `emails[filter]` and `emails[filter].<sub>`.
    fn emails(&self, user: &mut ScimUser, op: PatchOpKind, value: Option<&Value>) -> Result<()> {
        let path = self.text;
        let filter = self
            .filter
            .map(|expression| EmailFilter::parse(path, expression))
            .transpose()?;
        let sub = self.sub.map(str::to_ascii_lowercase);
        let emails = &mut user.emails;
        if filter.is_none() && sub.is_none() {
            match value {
                None | Some(Value::Null) => emails.clear(),
                Some(value) => {
                    let added = email_list(path, value)?;
                    if op == PatchOpKind::Replace {
                        emails.clear();
                    }
                    for email in added {
                        let index = match emails
                            .iter()
                            .position(|e| e.value.eq_ignore_ascii_case(&email.value))
                        {
                            Some(index) => {
                                emails[index] = email;
                                index
                            }
                            None => {
                                emails.push(email);
                                emails.len() - 1
                            }
                        };
                        one_primary(emails, &[index]);
                    }
                }
            }
            return Ok(());
        }
        let mut targets: Vec<usize> = (0..emails.len())
            .filter(|&index| filter.as_ref().is_none_or(|f| f.matches(&emails[index])))
            .collect();
        let Some(value) = value else {
            match sub.as_deref() {
                None | Some("value") => {
                    let mut index = 0;
                    emails.retain(|_| {
                        index += 1;
                        !targets.contains(&(index - 1))
                    });
                }
                Some("type") => targets.iter().for_each(|&i| emails[i].kind = None),
                Some("primary") => targets.iter().for_each(|&i| emails[i].primary = false),
                Some(_) => {}
            }
            return Ok(());
        };
        let created = targets.is_empty();
        if created {
            emails.push(
                filter
                    .as_ref()
                    .map_or_else(EmailFilter::blank, EmailFilter::entry),
            );
            targets.push(emails.len() - 1);
        }
        for &index in &targets {
            match (sub.as_deref(), value) {
                (None, Value::Object(fields)) => {
                    for (field, value) in fields {
                        email_field(&mut emails[index], path, field, value)?;
                    }
                }
                (None, _) => {
                    return Err(Error::Scim(format!("invalidValue: {path} takes an object")));
                }
                (Some(field), value) => email_field(&mut emails[index], path, field, value)?,
            }
        }
        one_primary(emails, &targets);
        if created && emails.last().is_some_and(|email| email.value.is_empty()) {
            emails.pop();
            // Clearing the value of an email there is not is no change; anything else
            // would make an email without an address.
            if sub.as_deref() != Some("value") {
                return Err(Error::Scim(format!("noTarget: no email matches {path:?}")));
            }
        }
        emails.retain(|email| !email.value.is_empty());
        Ok(())
    }
}

/// A string attribute: `None` for a removal, `null` or `""`.
fn text(path: &str, value: Option<&Value>) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(Error::Scim(format!("invalidValue: {path} takes a string"))),
    }
}

/// A boolean, or the string `true`/`false` in any case (Entra ID sends `"False"`).
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(value) => Some(*value),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn name_part(name: &mut ScimName, path: &str, part: &str, value: Option<&Value>) -> Result<()> {
    let slot = match part.to_ascii_lowercase().as_str() {
        "givenname" => &mut name.given_name,
        "familyname" => &mut name.family_name,
        "formatted" => &mut name.formatted,
        // Not kept.
        "middlename" | "honorificprefix" | "honorificsuffix" => return Ok(()),
        _ => {
            return Err(Error::Scim(format!(
                "invalidValue: {path}: name has no part {part:?}"
            )));
        }
    };
    *slot = text(path, value)?;
    Ok(())
}

/// A list of emails, or one.
fn email_list(path: &str, value: &Value) -> Result<Vec<ScimEmail>> {
    let value = match value {
        Value::Object(_) => Value::Array(vec![value.clone()]),
        value => value.clone(),
    };
    let emails: Vec<ScimEmail> = serde_json::from_value(value)
        .map_err(|e| Error::Scim(format!("invalidValue: {path}: {e}")))?;
    if emails.iter().any(|email| email.value.is_empty()) {
        return Err(Error::Scim(format!(
            "invalidValue: {path}: an email needs a value"
        )));
    }
    Ok(emails)
}

/// Sets one sub-attribute of an email; an empty `value` marks it for removal.
fn email_field(email: &mut ScimEmail, path: &str, field: &str, value: &Value) -> Result<()> {
    match field.to_ascii_lowercase().as_str() {
        "value" => email.value = text(path, Some(value))?.unwrap_or_default(),
        "type" => email.kind = text(path, Some(value))?,
        "primary" => {
            email.primary = match value {
                Value::Null => false,
                value => boolean(value).ok_or_else(|| {
                    Error::Scim(format!("invalidValue: {path}: primary takes a boolean"))
                })?,
            };
        }
        // Not kept.
        "display" => {}
        _ => {
            return Err(Error::Scim(format!(
                "invalidValue: {path}: an email has no {field:?}"
            )));
        }
    }
    Ok(())
}

/// Leaves at most one primary email: the first of `preferred` that is, else the first.
fn one_primary(emails: &mut [ScimEmail], preferred: &[usize]) {
    let keep = preferred
        .iter()
        .copied()
        .find(|&index| emails[index].primary)
        .or_else(|| emails.iter().position(|email| email.primary));
    for (index, email) in emails.iter_mut().enumerate() {
        email.primary &= Some(index) == keep;
    }
}

/// The selection of an `emails[...]` path: one `eq` on `type`, `value` or `primary`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EmailFilter {
    /// `type eq "work"` (case-insensitive).
    Type(String),
    /// `value eq "ada@acme.com"` (case-insensitive).
    Value(String),
    /// `primary eq true`.
    Primary(bool),
}

impl EmailFilter {
    fn parse(path: &str, expression: &str) -> Result<Self> {
        let invalid = || {
            Error::Scim(format!(
                "invalidFilter: {path:?}: emails are selected by `type`, `value` or `primary` \
                 with eq"
            ))
        };
        let (attribute, rest) = expression
            .split_once(char::is_whitespace)
            .ok_or_else(invalid)?;
        let (operator, literal) = rest
            .trim_start()
            .split_once(char::is_whitespace)
            .ok_or_else(invalid)?;
        if !operator.eq_ignore_ascii_case("eq") {
            return Err(invalid());
        }
        let literal: Value = serde_json::from_str(literal.trim()).map_err(|_| invalid())?;
        match (attribute.to_ascii_lowercase().as_str(), literal) {
            ("type", Value::String(kind)) => Ok(Self::Type(kind)),
            ("value", Value::String(value)) => Ok(Self::Value(value)),
            ("primary", Value::Bool(primary)) => Ok(Self::Primary(primary)),
            _ => Err(invalid()),
        }
    }

    fn matches(&self, email: &ScimEmail) -> bool {
        match self {
            Self::Type(kind) => email
                .kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(kind)),
            Self::Value(value) => email.value.eq_ignore_ascii_case(value),
            Self::Primary(primary) => email.primary == *primary,
        }
    }

    /// The email to add when none matches: one of that type, primary or value.
    fn entry(&self) -> ScimEmail {
        let mut email = Self::blank();
        match self {
            Self::Type(kind) => email.kind = Some(kind.clone()),
            Self::Value(value) => email.value.clone_from(value),
            Self::Primary(primary) => email.primary = *primary,
        }
        email
    }

    fn blank() -> ScimEmail {
        ScimEmail {
            value: String::new(),
            kind: None,
            primary: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patch(operations: Value) -> PatchOp {
        let mut body = json!({"schemas": [PATCH_OP_SCHEMA]});
        body["Operations"] = operations;
        serde_json::from_value(body).unwrap()
    }

    fn refusal(user: &ScimUser, operations: Value) -> String {
        let mut patched = user.clone();
        let err = patch(operations).apply(&mut patched).unwrap_err();
        assert_eq!(&patched, user, "a refused patch changes nothing");
        err.to_string()
    }

    fn email(value: &str, kind: Option<&str>, primary: bool) -> ScimEmail {
        ScimEmail {
            value: value.into(),
            kind: kind.map(str::to_owned),
            primary,
        }
    }

    /// What Entra ID's provisioning service sends with its default attribute mappings.
    fn entra_id_update() -> PatchOp {
        patch(json!([
            {"op": "Replace", "path": "title", "value": "Engineer"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ada@acme.com"},
            {"op": "Replace", "path": "name.givenName", "value": "Ada"},
            {"op": "Replace", "path": "name.familyName", "value": "Lovelace"},
            {"op": "Replace", "path": "preferredLanguage", "value": "en"},
            {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "London"},
            {"op": "Replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+44"},
            {
                "op": "Replace",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "value": "R&D"
            },
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "value": {"displayName": "Ada L", "externalId": "x-1"}}
        ]))
    }

    #[test]
    fn entra_id_updates_apply_what_is_kept_and_ignore_the_rest() {
        let mut user = ScimUser::new("ada@acme.com");
        entra_id_update().apply(&mut user).unwrap();
        assert_eq!(user.user_name, "ada@acme.com");
        let name = user.name.as_ref().unwrap();
        assert_eq!(name.given_name.as_deref(), Some("Ada"));
        assert_eq!(name.family_name.as_deref(), Some("Lovelace"));
        assert_eq!(user.emails, [email("ada@acme.com", Some("work"), false)]);
        assert_eq!(user.display_name.as_deref(), Some("Ada L"));
        assert_eq!(user.external_id.as_deref(), Some("x-1"));
        assert!(!user.active);
        // Nothing else is kept.
        let stored = serde_json::to_value(&user).unwrap();
        let mut keys: Vec<_> = stored.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "active",
                "displayName",
                "emails",
                "externalId",
                "name",
                "schemas",
                "userName"
            ]
        );

        // An existing work email is changed in place; the others are left alone.
        let mut user = ScimUser::new("ada@acme.com");
        user.emails = vec![
            email("ada@home.net", Some("home"), true),
            email("old@acme.com", Some("Work"), false),
        ];
        entra_id_update().apply(&mut user).unwrap();
        assert_eq!(
            user.emails,
            [
                email("ada@home.net", Some("home"), true),
                email("ada@acme.com", Some("Work"), false)
            ]
        );
    }

    #[test]
    fn ignored_attributes_are_accepted_in_every_form() {
        let mut user = ScimUser::new("ada@acme.com");
        let before = user.clone();
        patch(json!([
            {"op": "replace", "value": {
                "title": "Engineer",
                "nickName": "Ada",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "department": "R&D", "manager": {"value": "m-1"}
                },
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "7",
                "addresses": [{"type": "work", "locality": "London"}]
            }},
            {"op": "remove", "path": "phoneNumbers[type eq \"mobile\"]"},
            {"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:User:locale", "value": "en-GB"},
            {"op": "replace", "path": "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:manager.value", "value": "m-2"},
            {"op": "remove", "path": "x509Certificates"},
            {"op": "add", "path": "roles", "value": [{"value": "admin"}]},
            {"op": "replace", "path": "groups[value eq \"g\"].display", "value": "G"}
        ]))
        .apply(&mut user)
        .unwrap();
        assert_eq!(user, before);
    }

    #[test]
    fn okta_deactivation_and_reactivation() {
        let mut user = ScimUser::new("ada@acme.com");
        patch(json!([{"op": "replace", "value": {"active": false}}]))
            .apply(&mut user)
            .unwrap();
        assert!(!user.active);
        patch(json!([{"op": "replace", "value": {"active": true, "password": "hunter2"}}]))
            .apply(&mut user)
            .unwrap();
        assert!(user.active);
        // As Entra ID sends booleans, in any case.
        for (value, active) in [("False", false), ("TRUE", true), ("false", false)] {
            patch(json!([{"op": "Replace", "path": "active", "value": value}]))
                .apply(&mut user)
                .unwrap();
            assert_eq!(user.active, active, "{value}");
        }
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
        assert_eq!(
            user.name.as_ref().unwrap().given_name.as_deref(),
            Some("Ada")
        );
        assert_eq!(user.emails, [email("ada@acme.io", None, true)]);
        assert_eq!(user.display_name, None);

        // A whole name sets the parts it gives.
        patch(json!([{"op": "replace", "path": "name", "value": {"familyName": "Lovelace", "middleName": "K"}}]))
            .apply(&mut user)
            .unwrap();
        let name = user.name.clone().unwrap();
        assert_eq!(name.given_name.as_deref(), Some("Ada"));
        assert_eq!(name.family_name.as_deref(), Some("Lovelace"));

        // `add` appends to the list, `replace` replaces it; one primary at most.
        patch(json!([{"op": "add", "path": "emails", "value": [{"value": "ada@acme.com", "type": "work", "primary": true}]}]))
            .apply(&mut user)
            .unwrap();
        assert_eq!(
            user.emails,
            [
                email("ada@acme.io", None, false),
                email("ada@acme.com", Some("work"), true)
            ]
        );
        patch(json!([{"op": "replace", "path": "emails[primary eq true].value", "value": "lovelace@acme.com"}]))
            .apply(&mut user)
            .unwrap();
        assert_eq!(user.email(), Some("lovelace@acme.com"));
        patch(json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]))
            .apply(&mut user)
            .unwrap();
        assert_eq!(user.emails, [email("ada@acme.io", None, false)]);

        user.display_name = Some("Ada".into());
        user.external_id = Some("x-1".into());
        patch(json!([
            {"op": "remove", "path": "displayName"},
            {"op": "Remove", "path": "name"},
            {"op": "remove", "path": "externalId"},
            {"op": "remove", "path": "emails"}
        ]))
        .apply(&mut user)
        .unwrap();
        assert_eq!(user, ScimUser::new("ada@acme.com"));
    }

    #[test]
    fn a_primary_email_is_added_when_there_is_none() {
        let mut user = ScimUser::new("ada");
        patch(json!([{"op": "add", "path": "emails[primary eq true].value", "value": "ada@acme.com"}]))
            .apply(&mut user)
            .unwrap();
        assert_eq!(user.emails, [email("ada@acme.com", None, true)]);
        // Clearing an email that is not there changes nothing.
        patch(json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": ""}]))
            .apply(&mut user)
            .unwrap();
        assert_eq!(user.emails, [email("ada@acme.com", None, true)]);
        let err = refusal(
            &user,
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
        );
        assert!(err.contains("noTarget"), "{err}");
    }

    #[test]
    fn required_and_read_only_attributes_are_protected() {
        let user = ScimUser::new("ada@acme.com");
        for operations in [
            json!([{"op": "remove", "path": "userName"}]),
            json!([{"op": "replace", "path": "userName", "value": ""}]),
            json!([{"op": "replace", "value": {"userName": null}}]),
            json!([{"op": "remove", "path": "active"}]),
        ] {
            let err = refusal(&user, operations.clone());
            assert!(err.contains("invalidValue"), "{operations}: {err}");
        }
        for path in ["id", "meta.created"] {
            let err = refusal(
                &user,
                json!([{"op": "replace", "path": path, "value": "x"}]),
            );
            assert!(err.contains("mutability"), "{path}: {err}");
        }
    }

    #[test]
    fn malformed_and_unknown_paths_are_refused() {
        let user = ScimUser::new("ada@acme.com");
        for path in [
            "",
            "emails[type eq \"work\"",
            "emails[type eq \"work\"].value]",
            "emails]",
            "emails[]",
            "emails[[type eq \"work\"]]",
            "name.",
            ".name",
            "name..givenName",
            "name.givenName.first",
            "emails[type eq \"work\"].",
            "urn:ietf:params:scim:schemas:core:2.0:User:",
            "urn:example:foo:bar",
            "urn:ietf:params:scim:schemas:extension:acme:2.0:User:badge",
            "favouriteColour",
            "name.nickName",
            "title.value",
            "title[value eq \"x\"]",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:shoeSize",
        ] {
            let err = refusal(
                &user,
                json!([{"op": "replace", "path": path, "value": "x"}]),
            );
            assert!(err.contains("invalidPath"), "{path:?}: {err}");
        }
        for value in [
            json!({"favouriteColour": "green"}),
            json!({"urn:example:foo:bar": "x"}),
            json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"shoeSize": 9}}),
        ] {
            let err = refusal(&user, json!([{"op": "add", "value": value}]));
            assert!(err.contains("invalidPath"), "{value}: {err}");
        }
        let err = refusal(
            &user,
            json!([{"op": "replace", "path": "emails[value co \"ada\"].value", "value": "x"}]),
        );
        assert!(err.contains("invalidFilter"), "{err}");
    }

    #[test]
    fn a_failing_operation_changes_nothing() {
        let user = ScimUser::new("ada@acme.com");
        let err = refusal(
            &user,
            json!([
                {"op": "replace", "path": "displayName", "value": "Ada"},
                {"op": "replace", "path": "urn:example:foo:bar", "value": "Countess"}
            ]),
        );
        assert!(err.contains("invalidPath"), "{err}");
        for value in [json!(1), json!("yes")] {
            let err = refusal(
                &user,
                json!([{"op": "replace", "path": "active", "value": value}]),
            );
            assert!(err.contains("invalidValue"), "{err}");
        }
        let err = refusal(&user, json!([{"op": "replace", "path": "displayName"}]));
        assert!(err.contains("invalidValue"), "{err}");
        let err = refusal(&user, json!([{"op": "remove"}]));
        assert!(err.contains("noTarget"), "{err}");
    }

    #[test]
    fn only_add_replace_and_remove_are_ops() {
        for op in ["move", "copy", "test", "", "Add "] {
            let parsed = serde_json::from_value::<PatchOp>(json!({
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": [{"op": op, "path": "active", "value": false}]
            }));
            assert!(parsed.is_err(), "{op:?}");
        }
        for (op, kind) in [
            ("ADD", PatchOpKind::Add),
            ("Replace", PatchOpKind::Replace),
            ("remove", PatchOpKind::Remove),
        ] {
            assert_eq!(
                serde_json::from_value::<PatchOpKind>(json!(op)).unwrap(),
                kind
            );
        }
    }
}
