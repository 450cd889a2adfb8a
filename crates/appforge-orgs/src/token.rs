//! Secrets shown once: invitation tokens and API keys, stored only as SHA-256 hashes.

use std::fmt;

use rand::RngCore;
use subtle::ConstantTimeEq;

/// The start of an invitation token.
pub(crate) const INVITATION_PREFIX: &str = "afi_";
/// The start of an org API key.
pub(crate) const API_KEY_PREFIX: &str = "afk_";
/// The hex characters of an API key's lookup prefix.
pub(crate) const LOOKUP_CHARS: usize = 12;

/// A secret shown once (an invitation token or an API key): its `Debug` and `Display` print
/// `[redacted]`; [`expose`](Self::expose) gives the text to hand to the user.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's text.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A SHA-256 digest.
pub(crate) type Hash = [u8; 32];

/// SHA-256 of `parts`, one after the other.
pub(crate) fn sha256(parts: &[&[u8]]) -> Hash {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in parts {
        context.update(part);
    }
    let mut out = [0; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// Whether two hashes are equal, in time independent of where they differ.
pub(crate) fn same_hash(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// Unpadded base64url (RFC 4648 section 5).
pub(crate) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for sextet in sextets.iter().take(chunk.len() + 1) {
            out.push(char::from(ALPHABET[*sextet as usize]));
        }
    }
    out
}

/// A new invitation token (`afi_` and 32 random bytes in base64url) and its hash.
pub(crate) fn new_invitation_token() -> (Secret, Hash) {
    let token = format!("{INVITATION_PREFIX}{}", base64url(&random_bytes::<32>()));
    let hash = sha256(&[token.as_bytes()]);
    (Secret(token), hash)
}

/// The hash an invitation token is stored under.
pub(crate) fn invitation_hash(token: &str) -> Hash {
    sha256(&[token.trim().as_bytes()])
}

/// A new API key `afk_<prefix>_<secret>` (a 12 hex character lookup prefix, 32 random bytes
/// in base64url), its prefix and its hash.
pub(crate) fn new_api_key() -> (Secret, String, Hash) {
    let prefix = hex::encode(random_bytes::<6>());
    let token = format!(
        "{API_KEY_PREFIX}{prefix}_{}",
        base64url(&random_bytes::<32>())
    );
    let hash = sha256(&[token.as_bytes()]);
    (Secret(token), prefix, hash)
}

/// The lookup prefix of a well-formed API key, and the hash to compare.
pub(crate) fn parse_api_key(token: &str) -> Option<(&str, Hash)> {
    let rest = token.strip_prefix(API_KEY_PREFIX)?;
    let prefix = rest.get(..LOOKUP_CHARS)?;
    let secret = rest.get(LOOKUP_CHARS..)?.strip_prefix('_')?;
    let well_formed = prefix
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| (prefix, sha256(&[token.as_bytes()])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_the_rfc_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            hex::encode(sha256(&[b"a", b"bc"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn api_keys_parse_back_to_their_prefix_and_hash() {
        let (key, prefix, hash) = new_api_key();
        assert!(key.expose().starts_with("afk_"));
        let (parsed, parsed_hash) = parse_api_key(key.expose()).unwrap();
        assert_eq!(parsed, prefix);
        assert!(same_hash(&parsed_hash, &hash));
        assert!(parse_api_key("afk_short").is_none());
        assert!(parse_api_key(&key.expose().replace("afk_", "afi_")).is_none());
        assert_eq!(format!("{key:?} {key}"), "[redacted] [redacted]");
    }

    #[test]
    fn invitation_tokens_are_distinct_and_hash_as_stored() {
        let (a, hash) = new_invitation_token();
        let (b, _) = new_invitation_token();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 4 + 43);
        assert_eq!(invitation_hash(a.expose()), hash);
    }
}
