use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ERROR_SCHEMA, LIST_RESPONSE_SCHEMA, USER_SCHEMA};

/// A SCIM `User` resource (RFC 7643 section 4.1), the attributes identity providers send.
/// Attributes this type does not name are ignored on input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimUser {
    /// The schema URNs; [`USER_SCHEMA`] at least.
    pub schemas: Vec<String>,
    /// The id this service gives the user (absent in a create request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The provider's id for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The unique user name, usually the email.
    pub user_name: String,
    /// The user's name parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<ScimName>,
    /// The name to show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether the user may sign in; a provider deprovisions by setting it to `false`.
    #[serde(default = "yes")]
    pub active: bool,
    /// The user's emails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<ScimEmail>,
    /// The resource's metadata (in responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<ScimMeta>,
}

fn yes() -> bool {
    true
}

impl ScimUser {
    /// An active user named `user_name`.
    pub fn new(user_name: impl Into<String>) -> Self {
        Self {
            schemas: vec![USER_SCHEMA.to_owned()],
            id: None,
            external_id: None,
            user_name: user_name.into(),
            name: None,
            display_name: None,
            active: true,
            emails: Vec::new(),
            meta: None,
        }
    }

    /// The primary email, else the first, else the user name when it looks like an email.
    #[must_use]
    pub fn email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|email| email.primary)
            .or_else(|| self.emails.first())
            .map(|email| email.value.as_str())
            .or_else(|| {
                self.user_name
                    .contains('@')
                    .then_some(self.user_name.as_str())
            })
    }
}

/// The components of a user's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimName {
    /// The full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// The given (first) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// The family (last) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
}

/// One of a user's emails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScimEmail {
    /// The address.
    pub value: String,
    /// `work`, `home`, `other`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether this is the primary email.
    #[serde(default)]
    pub primary: bool,
}

/// A resource's metadata (RFC 7643 section 3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimMeta {
    /// `User`.
    pub resource_type: String,
    /// When the resource was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<DateTime<Utc>>,
    /// Its URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// A page of resources (RFC 7644 section 3.4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    /// [`LIST_RESPONSE_SCHEMA`].
    pub schemas: Vec<String>,
    /// How many resources match in all.
    pub total_results: u64,
    /// The 1-based index of the first resource of this page.
    pub start_index: u64,
    /// How many resources this page holds.
    pub items_per_page: u64,
    /// The page.
    #[serde(rename = "Resources", default = "Vec::new")]
    pub resources: Vec<T>,
}

impl<T> ListResponse<T> {
    /// A page of `resources` starting at `start_index` (1-based) of `total_results`.
    pub fn new(resources: Vec<T>, total_results: u64, start_index: u64) -> Self {
        Self {
            schemas: vec![LIST_RESPONSE_SCHEMA.to_owned()],
            total_results,
            start_index: start_index.max(1),
            items_per_page: u64::try_from(resources.len()).unwrap_or(u64::MAX),
            resources,
        }
    }
}

/// An error response (RFC 7644 section 3.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimError {
    /// [`ERROR_SCHEMA`].
    pub schemas: Vec<String>,
    /// The HTTP status, as a string (`"400"`).
    pub status: String,
    /// The SCIM error type (`invalidFilter`, `uniqueness`, `invalidValue`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ScimError {
    /// An error with `status` (`400`, `404`, `409`), an optional SCIM type and a detail.
    pub fn new(status: u16, scim_type: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            schemas: vec![ERROR_SCHEMA.to_owned()],
            status: status.to_string(),
            scim_type: scim_type.map(str::to_owned),
            detail: Some(detail.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn users_read_what_providers_send() {
        // As Entra ID sends a new user (extra attributes ignored).
        let user: ScimUser = serde_json::from_value(json!({
            "schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7894c2bdd7e8",
            "userName": "ada@acme.com",
            "active": true,
            "displayName": "Ada Lovelace",
            "emails": [{"primary": true, "type": "work", "value": "ada@acme.com"}],
            "name": {"formatted": "Ada Lovelace", "familyName": "Lovelace", "givenName": "Ada"},
            "locale": "en-GB"
        }))
        .unwrap();
        assert_eq!(user.user_name, "ada@acme.com");
        assert_eq!(user.email(), Some("ada@acme.com"));
        assert_eq!(
            user.name.as_ref().unwrap().given_name.as_deref(),
            Some("Ada")
        );
        assert!(user.active);
        let minimal: ScimUser = serde_json::from_value(json!({
            "schemas": [USER_SCHEMA], "userName": "bob@acme.com"
        }))
        .unwrap();
        assert!(minimal.active);
        assert_eq!(minimal.email(), Some("bob@acme.com"));
    }

    #[test]
    fn responses_have_the_rfc_shapes() {
        let mut user = ScimUser::new("ada@acme.com");
        user.id = Some("u1".into());
        let page = ListResponse::new(vec![user], 1, 1);
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            json!({
                "schemas": [LIST_RESPONSE_SCHEMA],
                "totalResults": 1,
                "startIndex": 1,
                "itemsPerPage": 1,
                "Resources": [{
                    "schemas": [USER_SCHEMA],
                    "id": "u1",
                    "userName": "ada@acme.com",
                    "active": true
                }]
            })
        );
        assert_eq!(
            serde_json::to_value(ScimError::new(400, Some("invalidFilter"), "bad filter")).unwrap(),
            json!({
                "schemas": [ERROR_SCHEMA],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "bad filter"
            })
        );
    }
}
