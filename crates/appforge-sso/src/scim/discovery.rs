use serde::{Deserialize, Serialize};

use super::{RESOURCE_TYPE_SCHEMA, SERVICE_PROVIDER_CONFIG_SCHEMA, ScimMeta, USER_SCHEMA};

/// What a SCIM service supports (RFC 7643 section 5), served at
/// `GET /ServiceProviderConfig` so that a provider can see which requests it may send.
///
/// ```
/// use appforge_sso::scim::ServiceProviderConfig;
///
/// let config = ServiceProviderConfig::new(200);
/// assert!(config.patch.supported && !config.bulk.supported);
/// assert_eq!(config.filter.max_results, 200);
/// assert_eq!(config.authentication_schemes[0].kind, "oauthbearertoken");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceProviderConfig {
    /// [`SERVICE_PROVIDER_CONFIG_SCHEMA`].
    pub schemas: Vec<String>,
    /// Where a person reads about the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_uri: Option<String>,
    /// Whether `PATCH` is supported.
    pub patch: Supported,
    /// Whether bulk requests are supported, and their limits.
    pub bulk: BulkSupport,
    /// Whether `filter` is supported, and the most resources one answer holds.
    pub filter: FilterSupport,
    /// Whether the `password` attribute can be changed.
    pub change_password: Supported,
    /// Whether `sortBy` is supported.
    pub sort: Supported,
    /// Whether resources carry ETags (`If-Match`, `If-None-Match`).
    pub etag: Supported,
    /// How clients authenticate.
    pub authentication_schemes: Vec<AuthenticationScheme>,
    /// The resource's metadata (`resourceType: ServiceProviderConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<ScimMeta>,
}

impl ServiceProviderConfig {
    /// This crate's service: `PATCH` and the `eq` filter ([`ScimFilter`](super::ScimFilter))
    /// with at most `max_results` resources an answer; no bulk, password change, sorting or
    /// ETags; the org's SCIM token as an OAuth bearer token
    /// ([`AuthenticationScheme::bearer_token`]).
    #[must_use]
    pub fn new(max_results: u64) -> Self {
        Self {
            schemas: vec![SERVICE_PROVIDER_CONFIG_SCHEMA.to_owned()],
            documentation_uri: None,
            patch: Supported::yes(),
            bulk: BulkSupport::unsupported(),
            filter: FilterSupport {
                supported: true,
                max_results,
            },
            change_password: Supported::no(),
            sort: Supported::no(),
            etag: Supported::no(),
            authentication_schemes: vec![AuthenticationScheme::bearer_token()],
            meta: Some(meta("ServiceProviderConfig")),
        }
    }
}

fn meta(resource_type: &str) -> ScimMeta {
    ScimMeta {
        resource_type: resource_type.to_owned(),
        created: None,
        last_modified: None,
        location: None,
    }
}

/// Whether a feature of a [`ServiceProviderConfig`] is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supported {
    /// Whether it is.
    pub supported: bool,
}

impl Supported {
    /// Supported.
    #[must_use]
    pub const fn yes() -> Self {
        Self { supported: true }
    }

    /// Not supported.
    #[must_use]
    pub const fn no() -> Self {
        Self { supported: false }
    }
}

/// The bulk support of a [`ServiceProviderConfig`] (RFC 7644 section 3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkSupport {
    /// Whether `POST /Bulk` is supported.
    pub supported: bool,
    /// The most operations one bulk request may hold.
    pub max_operations: u64,
    /// The largest bulk request body, in bytes.
    pub max_payload_size: u64,
}

impl BulkSupport {
    /// No bulk requests (both limits `0`).
    #[must_use]
    pub const fn unsupported() -> Self {
        Self {
            supported: false,
            max_operations: 0,
            max_payload_size: 0,
        }
    }
}

/// The filter support of a [`ServiceProviderConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterSupport {
    /// Whether `filter` is supported.
    pub supported: bool,
    /// The most resources one answer holds.
    pub max_results: u64,
}

/// A way clients authenticate (RFC 7643 section 5, `authenticationSchemes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationScheme {
    /// `oauthbearertoken`, `httpbasic`, `oauth2`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Its name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// The specification that defines it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_uri: Option<String>,
    /// Where a person reads how to use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_uri: Option<String>,
    /// Whether it is the preferred scheme.
    #[serde(default)]
    pub primary: bool,
}

impl AuthenticationScheme {
    /// The org's SCIM token ([`ScimToken`](super::ScimToken)) sent as
    /// `Authorization: Bearer <token>` (RFC 6750); the primary scheme.
    #[must_use]
    pub fn bearer_token() -> Self {
        Self {
            kind: "oauthbearertoken".to_owned(),
            name: "OAuth Bearer Token".to_owned(),
            description: "The organization's SCIM token, sent as `Authorization: Bearer <token>`"
                .to_owned(),
            spec_uri: Some("https://www.rfc-editor.org/info/rfc6750".to_owned()),
            documentation_uri: None,
            primary: true,
        }
    }
}

/// A kind of resource the service provisions and where (RFC 7643 section 6), served in
/// `GET /ResourceTypes`.
///
/// ```
/// use appforge_sso::scim::{ResourceType, USER_SCHEMA};
///
/// let user = ResourceType::user();
/// assert_eq!((user.id.as_str(), user.endpoint.as_str()), ("User", "/Users"));
/// assert_eq!(user.schema, USER_SCHEMA);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    /// [`RESOURCE_TYPE_SCHEMA`].
    pub schemas: Vec<String>,
    /// Its id (`User`).
    pub id: String,
    /// Its name (`User`).
    pub name: String,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its endpoint, relative to the service's base URL (`/Users`).
    pub endpoint: String,
    /// The URN of its core schema ([`USER_SCHEMA`]).
    pub schema: String,
    /// The resource's metadata (`resourceType: ResourceType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<ScimMeta>,
}

impl ResourceType {
    /// The `User` resource type: endpoint `/Users`, schema [`USER_SCHEMA`], no extension.
    #[must_use]
    pub fn user() -> Self {
        Self {
            schemas: vec![RESOURCE_TYPE_SCHEMA.to_owned()],
            id: "User".to_owned(),
            name: "User".to_owned(),
            description: Some("A user of the organization".to_owned()),
            endpoint: "/Users".to_owned(),
            schema: USER_SCHEMA.to_owned(),
            meta: Some(meta("ResourceType")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::{LIST_RESPONSE_SCHEMA, ListResponse};

    #[test]
    fn the_service_provider_config_has_the_rfc_shape() {
        assert_eq!(
            serde_json::to_value(ServiceProviderConfig::new(200)).unwrap(),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "patch": { "supported": true },
                "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
                "filter": { "supported": true, "maxResults": 200 },
                "changePassword": { "supported": false },
                "sort": { "supported": false },
                "etag": { "supported": false },
                "authenticationSchemes": [{
                    "type": "oauthbearertoken",
                    "name": "OAuth Bearer Token",
                    "description": "The organization's SCIM token, sent as `Authorization: Bearer <token>`",
                    "specUri": "https://www.rfc-editor.org/info/rfc6750",
                    "primary": true
                }],
                "meta": { "resourceType": "ServiceProviderConfig" }
            })
        );
    }

    #[test]
    fn the_service_provider_config_reads_back() {
        let mut config = ServiceProviderConfig::new(50);
        config.documentation_uri = Some("https://app.example.com/docs/sso".into());
        let value = serde_json::to_value(&config).unwrap();
        assert_eq!(
            value["documentationUri"],
            "https://app.example.com/docs/sso"
        );
        let read: ServiceProviderConfig = serde_json::from_value(value).unwrap();
        assert_eq!(read, config);
    }

    #[test]
    fn the_user_resource_type_has_the_rfc_shape() {
        let page = ListResponse::new(vec![ResourceType::user()], 1, 1);
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            json!({
                "schemas": [LIST_RESPONSE_SCHEMA],
                "totalResults": 1,
                "startIndex": 1,
                "itemsPerPage": 1,
                "Resources": [{
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                    "id": "User",
                    "name": "User",
                    "description": "A user of the organization",
                    "endpoint": "/Users",
                    "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
                    "meta": { "resourceType": "ResourceType" }
                }]
            })
        );
        let read: ListResponse<ResourceType> =
            serde_json::from_value(serde_json::to_value(&page).unwrap()).unwrap();
        assert_eq!(read, page);
    }
}
