//! TOTP (RFC 6238) as authenticator apps speak it: a 160-bit secret, HMAC-SHA1, 6 digits, 30-second steps, and
//! the current step accepted with one step either side. totp-rs computes and matches the codes; it does not stop a
//! code from being used twice, which is why a match returns its step and the caller records it with a conditional
//! write (see [`crate::store::second_factors`]).

use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::clock::UnixTime;

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Digits per code.
pub const DIGITS: u8 = 6;

/// A new random 160-bit secret from the OS RNG.
pub fn new_secret() -> Vec<u8> {
    Secret::generate().as_bytes().to_vec()
}

/// The secret as authenticator apps take it typed in: base32 without padding.
pub fn base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec())
        .to_base32()
        .trim_end_matches('=')
        .to_owned()
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Option<Totp> {
    // `:` separates issuer and account in the otpauth label, so neither may hold one.
    let clean = |text: &str| text.replace(':', " ");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .with_issuer(Some(clean(issuer)))
        .with_account_name(clean(account))
        .build()
        .ok()
}

/// The `otpauth://totp/...` URI that a QR code carries, `None` only for a secret shorter than 128 bits.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> Option<String> {
    totp(secret, issuer, account)?.to_url().ok()
}

/// The step `code` belongs to when it is the code of the step of `now` or of one step either side, else `None`.
/// The comparison is constant-time (totp-rs's `Token`).
pub fn matching_step(secret: &[u8], code: &str, now: UnixTime) -> Option<i64> {
    let now = u64::try_from(now).ok()?;
    let step = totp(secret, "keygate", "check")?.check(code.trim(), now)?;
    i64::try_from(step).ok()
}

/// The code of the step holding `at` (for tests and the local tools).
pub fn code_at(secret: &[u8], at: UnixTime) -> Option<String> {
    Some(
        totp(secret, "keygate", "code")?
            .generate(u64::try_from(at).ok()?)
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA1 seed.
    const RFC_SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_sha1_vectors() {
        // Appendix B lists 8-digit codes; a 6-digit code is the same value modulo 10^6, its last six digits.
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        let eight = Builder::new()
            .with_digits(8)
            .with_secret(RFC_SEED.to_vec())
            .build()
            .unwrap();
        for (time, expected) in vectors {
            assert_eq!(eight.generate(time).to_string(), expected, "8 digits at {time}");
            assert_eq!(
                code_at(RFC_SEED, time as i64).unwrap(),
                expected[2..],
                "6 digits at {time}"
            );
        }
    }

    #[test]
    fn accepts_one_step_either_side_and_no_further() {
        let secret = new_secret();
        assert_eq!(secret.len(), 20);
        let now = 1_700_000_015;
        let step = now / STEP_SECONDS;
        for offset in -1..=1 {
            let code = code_at(&secret, now + offset * STEP_SECONDS).unwrap();
            assert_eq!(
                matching_step(&secret, &code, now),
                Some(step + offset),
                "offset {offset}"
            );
        }
        for offset in [-3, -2, 2, 3] {
            let code = code_at(&secret, now + offset * STEP_SECONDS).unwrap();
            // A far step's code can collide with a near one's by chance (one in 10^6 per pair); then it is that
            // step's code, and a match would name the near step, never the far one.
            assert_ne!(
                matching_step(&secret, &code, now),
                Some(step + offset),
                "offset {offset}"
            );
        }
        for junk in ["", "12345", "1234567", "abcdef", "+12345", " 12345", "12 345"] {
            assert_eq!(matching_step(&secret, junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn the_otpauth_uri_names_issuer_account_and_secret() {
        let secret = new_secret();
        let uri = otpauth_uri(&secret, "Acme: Prod", "ada@example.com").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains(&format!("secret={}", base32(&secret))), "{uri}");
        assert!(uri.contains("issuer=Acme"), "{uri}");
        assert!(uri.contains("ada%40example.com"), "{uri}");
        assert_eq!(base32(&secret).len(), 32);
    }
}
