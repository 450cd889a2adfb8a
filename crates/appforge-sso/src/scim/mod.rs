//! SCIM 2.0 (RFC 7643, RFC 7644) for user provisioning: the `User` resource, the
//! `ListResponse`, `PatchOp` and `Error` messages, the `filter` a provider sends to find a
//! user, the org's bearer token, and the discovery resources (`ServiceProviderConfig`,
//! `ResourceType`). A host mounts the routes (`/scim/v2/Users`, ...).

mod discovery;
mod filter;
mod patch;
mod token;
mod user;

pub use discovery::{
    AuthenticationScheme, BulkSupport, FilterSupport, ResourceType, ServiceProviderConfig,
    Supported,
};
pub use filter::ScimFilter;
pub use patch::{PatchOp, PatchOpKind, PatchOperation};
pub use token::{SCIM_TOKEN_PREFIX, ScimToken, ScimTokenHash};
pub use user::{ListResponse, ScimEmail, ScimError, ScimMeta, ScimName, ScimUser};

/// The schema URN of the core `User` resource.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The schema URN of a list of resources.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The schema URN of a PATCH request body.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The schema URN of an error response.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The schema URN of the `ServiceProviderConfig` resource.
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// The schema URN of a `ResourceType` resource.
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
