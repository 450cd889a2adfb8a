//! An organization's SSO settings.

use std::fmt;

use appforge_core::{ExposeSecret, SecretString};
use appforge_orgs::Role;
use chrono::{DateTime, Utc};
use url::Url;
use uuid::Uuid;

use crate::secrets::SealedSecret;
use crate::{Error, Result};

/// An organization's OpenID Connect settings, as stored: the client secret is sealed
/// ([`SealedSecret`]) and never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoConfig {
    /// The org.
    pub org: Uuid,
    /// The provider's issuer URL (`https://login.example.com/realms/acme`); discovery reads
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret, sealed for this org.
    pub client_secret: SealedSecret,
    /// Lowercase email domains (`acme.com`) whose users may sign in.
    pub allowed_domains: Vec<String>,
    /// The role a user signing in for the first time gets.
    pub default_role: Role,
    /// Whether a login with an email outside [`allowed_domains`](Self::allowed_domains) is
    /// refused. Without it, any email the provider verified signs in.
    pub enforce_domain: bool,
    /// When the settings were last written.
    pub updated_at: DateTime<Utc>,
}

impl SsoConfig {
    /// Whether `email`'s domain is one of the allowed domains (case-insensitive, exact: a
    /// subdomain is a different domain).
    #[must_use]
    pub fn allows_email(&self, email: &str) -> bool {
        email_domain(email).is_some_and(|domain| self.allowed_domains.contains(&domain))
    }
}

/// The settings an org owner enters: [`Sso::configure`](crate::Sso::configure) validates them
/// and seals the client secret. Its `Debug` redacts the secret.
///
/// ```
/// use appforge_sso::NewSsoConfig;
/// use appforge_orgs::Role;
///
/// let config = NewSsoConfig::new("https://login.acme.com", "appforge", "s3cret")
///     .allowed_domains(["acme.com"])
///     .default_role(Role::Member)
///     .enforce_domain(true);
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct NewSsoConfig {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) allowed_domains: Vec<String>,
    pub(crate) default_role: Role,
    pub(crate) enforce_domain: bool,
}

impl NewSsoConfig {
    /// Settings for the provider at `issuer` and the client registered there; no domain
    /// restriction and the `member` role by default.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: SecretString::from(client_secret.into()),
            allowed_domains: Vec::new(),
            default_role: Role::Member,
            enforce_domain: false,
        }
    }

    /// The email domains whose users may sign in.
    #[must_use]
    pub fn allowed_domains<I, D>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = D>,
        D: Into<String>,
    {
        self.allowed_domains = domains.into_iter().map(Into::into).collect();
        self
    }

    /// The role of a user signing in for the first time (not `owner`).
    #[must_use]
    pub fn default_role(mut self, role: Role) -> Self {
        self.default_role = role;
        self
    }

    /// Whether emails outside the allowed domains are refused.
    #[must_use]
    pub fn enforce_domain(mut self, enforce: bool) -> Self {
        self.enforce_domain = enforce;
        self
    }

    /// Checks the settings and normalizes them (trimmed issuer, lowercase domains).
    pub(crate) fn validate(&self) -> Result<(String, Vec<String>)> {
        let issuer = validate_issuer(&self.issuer)?;
        if self.client_id.trim().is_empty() {
            return Err(invalid("the client id is blank"));
        }
        if self.client_secret.expose_secret().is_empty() {
            return Err(invalid("the client secret is empty"));
        }
        if self.default_role == Role::Owner {
            return Err(invalid("the default role cannot be owner"));
        }
        let mut domains = Vec::with_capacity(self.allowed_domains.len());
        for domain in &self.allowed_domains {
            let domain = domain.trim().trim_start_matches('@').to_ascii_lowercase();
            let valid = domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid {
                return Err(invalid(format!("{domain:?} is not an email domain")));
            }
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        if self.enforce_domain && domains.is_empty() {
            return Err(invalid(
                "enforcing the domain needs at least one allowed domain",
            ));
        }
        Ok((issuer, domains))
    }
}

impl fmt::Debug for NewSsoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSsoConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("allowed_domains", &self.allowed_domains)
            .field("default_role", &self.default_role)
            .field("enforce_domain", &self.enforce_domain)
            .finish()
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

/// An issuer URL: `https`, or `http` on a loopback host (a provider on the same machine, or
/// a test's); no query or fragment.
fn validate_issuer(issuer: &str) -> Result<String> {
    let url = Url::parse(issuer.trim())
        .map_err(|e| invalid(format!("the issuer {issuer:?} is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(invalid(format!(
                "the issuer {issuer:?} must use https (http only on a loopback host)"
            )));
        }
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(format!(
            "the issuer {issuer:?} must have no query, fragment or user"
        )));
    }
    // As entered: discovery compares the provider's `issuer` with it character for character
    // (some providers end theirs with a slash, most do not).
    Ok(issuer.trim().to_owned())
}

/// The lowercase domain of an email, if it has one.
pub(crate) fn email_domain(email: &str) -> Option<String> {
    let (local, domain) = email.trim().rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_must_be_https_or_loopback() {
        let ok = |issuer: &str| validate_issuer(issuer).unwrap();
        assert_eq!(ok(" https://login.acme.com/"), "https://login.acme.com/");
        assert_eq!(
            ok("https://login.acme.com/realms/acme"),
            "https://login.acme.com/realms/acme"
        );
        assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(ok("http://localhost:8080/dex"), "http://localhost:8080/dex");
        assert!(validate_issuer("http://login.acme.com").is_err());
        assert!(validate_issuer("https://login.acme.com/?x=1").is_err());
        assert!(validate_issuer("login.acme.com").is_err());
    }

    #[test]
    fn settings_are_validated_and_normalized() {
        let base = || NewSsoConfig::new("https://idp.acme.com", "client", "secret");
        let (_, domains) = base()
            .allowed_domains(["ACME.com", "@acme.io", "acme.com"])
            .validate()
            .unwrap();
        assert_eq!(domains, ["acme.com", "acme.io"]);
        assert!(base().allowed_domains(["acme"]).validate().is_err());
        assert!(base().enforce_domain(true).validate().is_err());
        assert!(base().default_role(Role::Owner).validate().is_err());
        assert!(
            NewSsoConfig::new("https://idp", " ", "s")
                .validate()
                .is_err()
        );
        assert!(
            NewSsoConfig::new("https://idp", "c", "")
                .validate()
                .is_err()
        );
    }

    #[test]
    fn email_domains_compare_exactly() {
        let config = SsoConfig {
            org: Uuid::nil(),
            issuer: "https://idp".into(),
            client_id: "c".into(),
            client_secret: SealedSecret::from_stored("v1.x"),
            allowed_domains: vec!["acme.com".into()],
            default_role: Role::Member,
            enforce_domain: true,
            updated_at: DateTime::UNIX_EPOCH,
        };
        assert!(config.allows_email("ada@ACME.com"));
        assert!(!config.allows_email("ada@evil-acme.com"));
        assert!(!config.allows_email("ada@sub.acme.com"));
        assert!(!config.allows_email("ada@acme.com@evil.com"));
        assert!(!config.allows_email("acme.com"));
    }
}
