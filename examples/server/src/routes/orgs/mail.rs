//! Invitation mail over SMTP (`APPFORGE_SMTP_URL`, `APPFORGE_SMTP_FROM`), sent after the
//! invitation is stored, on a task of its own: a slow or failing mail server never fails
//! the invitation, whose link the inviter also gets in the answer.

use std::fmt;
use std::time::Duration;

use appforge_core::ExposeSecret;
use appforge_orgs::Role;
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::OrgsConfig;
use crate::state::StartError;

/// How long one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends invitations through the configured SMTP server. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// What an invitation mail says.
#[derive(Debug, Clone)]
pub(crate) struct InvitationMail {
    pub(crate) to: String,
    pub(crate) org_name: String,
    pub(crate) role: Role,
    pub(crate) accept_url: String,
    pub(crate) expires_at: DateTime<Utc>,
}

impl Mailer {
    /// The mailer of the SMTP settings; `None` without them.
    pub(crate) fn from_config(config: &OrgsConfig) -> Result<Option<Self>, StartError> {
        let Some(smtp) = &config.smtp else {
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp.url.expose_secret())
            .map_err(|_| StartError::setup("invitation mail", "APPFORGE_SMTP_URL is not usable"))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from = smtp
            .from
            .parse()
            .map_err(|e| StartError::setup("invitation mail", e))?;
        Ok(Some(Self { transport, from }))
    }

    /// Mails the invitation on a task of its own; a failure is logged (without the link,
    /// which holds the token).
    pub(crate) fn send_later(&self, mail: InvitationMail) {
        let mailer = self.clone();
        tokio::spawn(async move {
            if let Err(error) = mailer.send(&mail).await {
                tracing::warn!(%error, "mailing an invitation failed");
            }
        });
    }

    async fn send(&self, mail: &InvitationMail) -> Result<(), String> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| format!("invalid recipient: {e}"))?;
        let text = format!(
            "You are invited to join {org} on AppForge as {article} {role}.\r\n\r\n\
             Accept the invitation (it expires on {expires}):\r\n{url}\r\n\r\n\
             If you did not expect this invitation, ignore this message.\r\n",
            org = mail.org_name,
            article = if mail.role == Role::Admin || mail.role == Role::Owner {
                "an"
            } else {
                "a"
            },
            role = mail.role,
            expires = mail.expires_at.format("%Y-%m-%d %H:%M UTC"),
            url = mail.accept_url,
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("Join {} on AppForge", mail.org_name))
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
