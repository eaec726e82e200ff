//! Random secrets from the OS RNG, their hashes, and constant-time comparison.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::{Rng as _, RngCore as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// `n` bytes from the OS RNG, URL-safe base64 without padding.
pub fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A 6-digit code, uniformly drawn from the OS RNG.
pub fn six_digit_code() -> String {
    format!("{:06}", OsRng.gen_range(0..1_000_000u32))
}

/// SHA-256 of the parts, each length-prefixed so that no two part lists hash alike; URL-safe base64.
pub fn sha256_b64(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// Compares two secrets (or hashes of secrets) in constant time.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether `s` is URL-safe base64 without padding that decodes to exactly `n` bytes.
pub fn is_b64_of_len(s: &str, n: usize) -> bool {
    s.len() == (n * 4).div_ceil(3) && URL_SAFE_NO_PAD.decode(s).is_ok_and(|b| b.len() == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_secrets_have_the_asked_entropy_and_differ() {
        let a = random_b64(32);
        assert!(is_b64_of_len(&a, 32));
        assert_ne!(a, random_b64(32));
    }

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..200 {
            let code = six_digit_code();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn hashing_separates_parts() {
        assert_ne!(sha256_b64(&[b"ab", b"c"]), sha256_b64(&[b"a", b"bc"]));
        assert_eq!(sha256_b64(&[b"x"]), sha256_b64(&[b"x"]));
    }

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
