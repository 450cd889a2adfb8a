//! Client secrets sealed at rest: AES-256-GCM under a key from the host, a random nonce per
//! sealing, the org id as associated data.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key};
use appforge_core::SecretString;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use uuid::Uuid;

use crate::{Error, Result};

/// The environment variable a server reads its [`SecretsKey`] from.
pub const SECRETS_KEY_ENV: &str = "APPFORGE_SECRETS_KEY";

/// The version tag that starts every [`SealedSecret`].
const VERSION: &str = "v1.";
/// AES-GCM's nonce length.
const NONCE_LEN: usize = 12;

/// The 32-byte key that seals client secrets (AES-256-GCM). Its `Debug` prints `[redacted]`.
///
/// A server reads it from [`SECRETS_KEY_ENV`] (`APPFORGE_SECRETS_KEY`): 32 random bytes in
/// standard base64, for example from `openssl rand -base64 32`.
#[derive(Clone)]
pub struct SecretsKey(Key<Aes256Gcm>);

impl SecretsKey {
    /// The key from its 32 bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Key::<Aes256Gcm>::from(bytes))
    }

    /// The key from 32 bytes in standard base64 (surrounding whitespace ignored).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] when the text is not base64 or not 32 bytes long.
    pub fn from_base64(text: &str) -> Result<Self> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| Error::InvalidKey(format!("not standard base64: {e}")))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            Error::InvalidKey(format!("{} bytes, expected 32", bytes.len()))
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key in [`SECRETS_KEY_ENV`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] when the variable is missing or malformed.
    pub fn from_env() -> Result<Self> {
        let text = std::env::var(SECRETS_KEY_ENV)
            .map_err(|_| Error::InvalidKey(format!("{SECRETS_KEY_ENV} is not set")))?;
        Self::from_base64(&text)
    }

    /// A new random key (for tests and `appforge`'s key generation).
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Seals `plaintext` for `org`: a fresh random nonce each time, `org` as associated data
    /// (a sealed secret copied to another org's row does not open).
    #[must_use]
    pub fn seal(&self, org: Uuid, plaintext: &str) -> SealedSecret {
        let mut nonce = [0; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = Aes256Gcm::new(&self.0)
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: org.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut bytes = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        SealedSecret(format!("{VERSION}{}", STANDARD.encode(bytes)))
    }

    /// Opens a secret sealed for `org`.
    ///
    /// # Errors
    ///
    /// [`Error::Decrypt`] when the key or the org differ from the sealing ones or the value
    /// was altered.
    pub fn open(&self, org: Uuid, sealed: &SealedSecret) -> Result<SecretString> {
        let failed = || Error::Decrypt { org };
        let bytes = sealed
            .0
            .strip_prefix(VERSION)
            .and_then(|text| STANDARD.decode(text).ok())
            .filter(|bytes| bytes.len() > NONCE_LEN)
            .ok_or_else(failed)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| failed())?;
        let plaintext = Aes256Gcm::new(&self.0)
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: org.as_bytes(),
                },
            )
            .map_err(|_| failed())?;
        let plaintext = String::from_utf8(plaintext).map_err(|_| failed())?;
        Ok(SecretString::from(plaintext))
    }
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey([redacted])")
    }
}

/// A client secret as stored: `v1.` then base64 of the nonce and the AES-256-GCM ciphertext.
/// Opening it needs the [`SecretsKey`]; its `Debug` prints `[sealed]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(String);

impl SealedSecret {
    /// A stored value, as read back from a database.
    #[must_use]
    pub fn from_stored(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The value to store.
    #[must_use]
    pub fn as_stored(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedSecret([sealed])")
    }
}

#[cfg(test)]
mod tests {
    use appforge_core::ExposeSecret;

    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_org() {
        let key = SecretsKey::generate();
        let org = Uuid::new_v4();
        let sealed = key.seal(org, "hunter2");
        assert!(sealed.as_stored().starts_with("v1."));
        assert!(!sealed.as_stored().contains("hunter2"));
        assert_eq!(key.open(org, &sealed).unwrap().expose_secret(), "hunter2");
        // A fresh nonce each time.
        assert_ne!(key.seal(org, "hunter2"), sealed);

        let other_org = Uuid::new_v4();
        assert!(
            matches!(key.open(other_org, &sealed), Err(Error::Decrypt { org }) if org == other_org)
        );
        let err = SecretsKey::generate().open(org, &sealed).unwrap_err();
        assert!(err.to_string().contains("wrong secrets key"), "{err}");

        let mut altered = sealed.as_stored().to_owned();
        altered.replace_range(10..11, if &altered[10..11] == "A" { "B" } else { "A" });
        assert!(key.open(org, &SealedSecret::from_stored(altered)).is_err());
        assert!(
            key.open(org, &SealedSecret::from_stored("hunter2"))
                .is_err()
        );
    }

    #[test]
    fn keys_parse_from_base64_and_stay_redacted() {
        let key = SecretsKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        assert_eq!(format!("{key:?}"), "SecretsKey([redacted])");
        let err = SecretsKey::from_base64(&STANDARD.encode([7u8; 16])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid secrets key: 16 bytes, expected 32"
        );
        assert!(SecretsKey::from_base64("not base64!").is_err());
        let sealed = key.seal(Uuid::nil(), "x");
        assert_eq!(format!("{sealed:?}"), "SealedSecret([sealed])");
    }
}
