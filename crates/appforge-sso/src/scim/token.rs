use std::fmt;

use appforge_core::SecretString;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, Result};

/// The start of an org's SCIM token.
pub const SCIM_TOKEN_PREFIX: &str = "afs_";

/// A new SCIM bearer token for an org: shown once ([`secret`](Self::secret), for the
/// identity provider's provisioning settings), stored only as its [`hash`](Self::hash).
#[derive(Debug)]
pub struct ScimToken {
    /// `afs_` and 32 random bytes in base64url. Its `Debug` prints `[REDACTED]`.
    pub secret: SecretString,
    /// What to store.
    pub hash: ScimTokenHash,
}

impl ScimToken {
    /// A new random token.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = format!("{SCIM_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let hash = ScimTokenHash::of(&token);
        Self {
            secret: SecretString::from(token),
            hash,
        }
    }
}

/// The SHA-256 of a SCIM token: what a host stores, and checks presented tokens against in
/// constant time.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ScimTokenHash([u8; 32]);

impl ScimTokenHash {
    /// The hash of `token`.
    #[must_use]
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` (the `Authorization: Bearer` value) is the token, compared in
    /// time independent of where they differ.
    #[must_use]
    pub fn verify(&self, presented: &str) -> bool {
        let presented = Self::of(presented.trim());
        self.0.ct_eq(&presented.0).into()
    }

    /// The hash in lowercase hex, to store.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A stored hash.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] when `text` is not 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|e| Error::Corrupt(format!("SCIM token hash: {e}")))?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for ScimTokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScimTokenHash({})", &self.to_hex()[..12])
    }
}

#[cfg(test)]
mod tests {
    use appforge_core::ExposeSecret;

    use super::*;

    #[test]
    fn tokens_verify_against_their_stored_hash_only() {
        let token = ScimToken::generate();
        let secret = token.secret.expose_secret();
        assert!(secret.starts_with("afs_") && secret.len() == 4 + 43);
        let stored = ScimTokenHash::from_hex(&token.hash.to_hex()).unwrap();
        assert!(stored.verify(secret));
        assert!(!stored.verify(&secret.replace("afs_", "afk_")));
        assert!(!stored.verify(ScimToken::generate().secret.expose_secret()));
        assert!(!format!("{token:?}").contains(secret));
        assert!(ScimTokenHash::from_hex("zz").is_err());
    }
}
