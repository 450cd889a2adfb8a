//! Preview slugs: unguessable, URL-safe.

/// 128 random bits from a cryptographically secure generator seeded by the operating system,
/// as 32 lowercase hex digits.
pub(crate) fn new_slug() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `slug` could be one of ours (checked before touching the store).
pub(crate) fn is_well_formed(slug: &str) -> bool {
    slug.len() == 32 && slug.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_long_random_and_url_safe() {
        let (a, b) = (new_slug(), new_slug());
        assert_ne!(a, b);
        assert!(is_well_formed(&a), "{a}");
        assert!(!is_well_formed("../../etc"));
    }
}
