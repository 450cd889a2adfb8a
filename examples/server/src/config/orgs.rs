//! The settings of team workspaces: seats, invitations, audit retention, and the SMTP server
//! that mails invitations.

use std::fmt;
use std::time::Duration;

use appforge_core::{ExposeSecret, SecretString};

use super::{ConfigError, invalid};

/// Team workspaces (`/api/orgs`): see `docs/orgs.md`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OrgsConfig {
    /// `APPFORGE_ORG_SEATS`: the seats (members plus open invitations) of an org created
    /// outside the Team plan (default 5; 0 for no limit).
    pub default_seats: Option<u32>,
    /// `APPFORGE_INVITATION_TTL_HOURS`: how long an invitation can be accepted (default 168,
    /// seven days).
    pub invitation_ttl: Duration,
    /// `APPFORGE_AUDIT_RETENTION_DAYS`: audit entries older than this are purged by the
    /// periodic pass (default 365; 0 keeps them forever).
    pub audit_retention: Option<Duration>,
    /// `APPFORGE_PUBLIC_URL`: the address users reach the web interface at
    /// (`https://app.example.com`), the start of invitation links; relative links without it.
    pub public_url: Option<String>,
    /// The SMTP server invitations are mailed through; none are mailed without it.
    pub smtp: Option<SmtpConfig>,
}

impl Default for OrgsConfig {
    fn default() -> Self {
        Self::from_lookup(&|_| None).expect("the defaults are valid")
    }
}

/// How invitations are mailed: `APPFORGE_SMTP_URL` and `APPFORGE_SMTP_FROM`.
#[derive(Clone)]
#[non_exhaustive]
pub struct SmtpConfig {
    /// `APPFORGE_SMTP_URL`: `smtps://user:password@host:465` (TLS),
    /// `smtp://user:password@host:587?tls=required` (STARTTLS) or `smtp://host:25` (plain,
    /// for a local relay). Holds a password: never printed.
    pub url: SecretString,
    /// `APPFORGE_SMTP_FROM`: the sender, `AppForge <no-reply@example.com>`.
    pub from: String,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("url", &"[redacted]")
            .field("from", &self.from)
            .finish()
    }
}

impl OrgsConfig {
    /// Reads the org settings through `get` (empty values already dropped).
    pub(super) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(raw) => raw
                    .parse()
                    .map_err(|e| invalid(name, format!("{raw:?}: {e}"))),
            }
        };
        let seats = number("APPFORGE_ORG_SEATS", 5)?;
        let default_seats = match seats {
            0 => None,
            n => Some(
                u32::try_from(n)
                    .map_err(|_| invalid("APPFORGE_ORG_SEATS", format!("{n} is too large")))?,
            ),
        };
        let hours = number("APPFORGE_INVITATION_TTL_HOURS", 168)?;
        if hours == 0 || hours > 24 * 365 {
            return Err(invalid(
                "APPFORGE_INVITATION_TTL_HOURS",
                format!("{hours} is not between 1 and 8760 hours"),
            ));
        }
        let days = number("APPFORGE_AUDIT_RETENTION_DAYS", 365)?;
        let public_url = get("APPFORGE_PUBLIC_URL")
            .map(|url| {
                let trimmed = url.trim_end_matches('/').to_owned();
                if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
                    Ok(trimmed)
                } else {
                    Err(invalid(
                        "APPFORGE_PUBLIC_URL",
                        format!("{url:?} is not an http:// or https:// address"),
                    ))
                }
            })
            .transpose()?;
        let smtp = match (get("APPFORGE_SMTP_URL"), get("APPFORGE_SMTP_FROM")) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "APPFORGE_SMTP_FROM",
                    "required when APPFORGE_SMTP_URL is set (the sender of invitations)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "APPFORGE_SMTP_URL",
                    "required when APPFORGE_SMTP_FROM is set".into(),
                ));
            }
            (Some(url), Some(from)) => {
                let url = SecretString::from(url);
                check_smtp_url(&url)?;
                from.parse::<lettre::message::Mailbox>().map_err(|e| {
                    invalid(
                        "APPFORGE_SMTP_FROM",
                        format!("{from:?} is not a mailbox: {e}"),
                    )
                })?;
                Some(SmtpConfig { url, from })
            }
        };
        Ok(Self {
            default_seats,
            invitation_ttl: Duration::from_secs(hours * 3600),
            audit_retention: (days > 0).then(|| Duration::from_secs(days.saturating_mul(86_400))),
            public_url,
            smtp,
        })
    }
}

/// The SMTP URL must be one lettre can use; the error never repeats it (it holds a password).
fn check_smtp_url(url: &SecretString) -> Result<(), ConfigError> {
    use lettre::AsyncSmtpTransport;
    use lettre::Tokio1Executor;

    AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
        .map(drop)
        .map_err(|_| {
            invalid(
                "APPFORGE_SMTP_URL",
                "not an SMTP URL (smtps://user:password@host:465, smtp://host:587?tls=required)"
                    .into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<OrgsConfig, ConfigError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        OrgsConfig::from_lookup(&|name| map.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn defaults_are_five_seats_seven_days_a_year_of_audit_and_no_mail() {
        let config = read(&[]).unwrap();
        assert_eq!(config.default_seats, Some(5));
        assert_eq!(config.invitation_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(
            config.audit_retention,
            Some(Duration::from_secs(365 * 86_400))
        );
        assert!(config.smtp.is_none());
        assert!(config.public_url.is_none());
    }

    #[test]
    fn zero_means_no_limit_and_forever() {
        let config = read(&[
            ("APPFORGE_ORG_SEATS", "0"),
            ("APPFORGE_AUDIT_RETENTION_DAYS", "0"),
        ])
        .unwrap();
        assert_eq!(config.default_seats, None);
        assert_eq!(config.audit_retention, None);
    }

    #[test]
    fn smtp_needs_both_settings_and_hides_its_password() {
        let err = read(&[("APPFORGE_SMTP_URL", "smtp://127.0.0.1:2525")])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid setting APPFORGE_SMTP_FROM"),
            "{err}"
        );
        let config = read(&[
            (
                "APPFORGE_SMTP_URL",
                "smtps://mailer:hunter2@smtp.example.com:465",
            ),
            ("APPFORGE_SMTP_FROM", "AppForge <no-reply@example.com>"),
        ])
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        let err = read(&[
            ("APPFORGE_SMTP_URL", "imap://mailer:hunter2@example.com"),
            ("APPFORGE_SMTP_FROM", "no-reply@example.com"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("invalid setting APPFORGE_SMTP_URL"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (name, value) in [
            ("APPFORGE_ORG_SEATS", "many"),
            ("APPFORGE_INVITATION_TTL_HOURS", "0"),
            ("APPFORGE_PUBLIC_URL", "app.example.com"),
        ] {
            let err = read(&[(name, value)]).unwrap_err().to_string();
            assert!(err.starts_with(&format!("invalid setting {name}")), "{err}");
        }
    }
}
