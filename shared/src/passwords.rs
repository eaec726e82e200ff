//! argon2id password hashing (OWASP parameters) and the password policy.

use std::sync::Mutex;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret as _, SecretString};

use crate::Error;

/// OWASP's argon2id recommendation: 19 MiB, two passes, one lane.
pub const MEMORY_KIB: u32 = 19_456;
/// argon2id passes.
pub const ITERATIONS: u32 = 2;
/// argon2id lanes.
pub const PARALLELISM: u32 = 1;

/// Shortest accepted password, in characters.
pub const MIN_LENGTH: usize = 8;
/// Longest accepted password, in characters; bounds the hashing cost of hostile input.
pub const MAX_LENGTH: usize = 128;

/// A well-formed hash with the current parameters whose preimage nobody knows. Unknown users are verified
/// against it, so that they cost the same argon2 run as known ones.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$QSMhh4PGvRFn7lSDtlmvIw$0Xsf6PQ7HExMvrHLyDz7yuoQ6hDpWJ99TGTyxoLZfB8";

static COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Checks a new password against the policy: 8 to 128 characters exactly as received, and not a common one.
pub fn check_policy(password: &SecretString) -> Result<(), Error> {
    let password = password.expose_secret();
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(Error::WeakPassword("The password must be at least 8 characters long."));
    }
    if length > MAX_LENGTH {
        return Err(Error::WeakPassword("The password must be at most 128 characters long."));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::WeakPassword("The password must not contain control characters."));
    }
    let lowered = password.to_lowercase();
    if COMMON_PASSWORDS.lines().any(|common| common == lowered) {
        return Err(Error::WeakPassword("This password is too common. Choose another one."));
    }
    Ok(())
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The password does not match.
    No,
    /// It matches.
    Yes,
    /// It matches, and the stored hash uses old parameters: store a fresh hash.
    YesRehash,
}

fn argon2_error(e: impl std::fmt::Display) -> Error {
    Error::dependency("argon2", std::io::Error::other(e.to_string()))
}

fn argon2() -> Result<Argon2<'static>, Error> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(argon2_error)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// argon2's 19 MiB of working memory, kept between requests: allocating it fresh costs about 40% of each hash in
/// page faults, and a Lambda process serves one request at a time, so one buffer is nearly always enough.
static BLOCKS: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Runs argon2 into `out` with pooled working memory.
fn hash_into(argon2: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), Error> {
    let needed = argon2.params().block_count();
    let pooled = BLOCKS
        .lock()
        .ok()
        .and_then(|mut pool| pool.pop())
        .filter(|b| b.len() == needed);
    let mut blocks = pooled.unwrap_or_else(|| vec![Block::default(); needed]);
    let result = argon2
        .hash_password_into_with_memory(password, salt, out, &mut blocks)
        .map_err(argon2_error);
    if let Ok(mut pool) = BLOCKS.lock() {
        // Keep at most two buffers: one request at a time, plus some room for the local server's concurrency.
        if pool.len() < 2 && blocks.len() == MEMORY_KIB as usize {
            pool.push(blocks);
        }
    }
    result
}

fn hash_blocking(password: &SecretString) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buffer = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buffer).map_err(argon2_error)?;
    let mut out = [0u8; 32];
    hash_into(&argon2()?, password.expose_secret().as_bytes(), salt_bytes, &mut out)?;
    let output = Output::new(&out).map_err(argon2_error)?;
    Ok(format!(
        "$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}${}${output}",
        salt.as_str()
    ))
}

/// Verifies against a parsed PHC hash with pooled memory: argon2's own computation, then a constant-time
/// comparison.
fn verify_parsed(password: &SecretString, hash: &PasswordHash<'_>) -> Result<bool, Error> {
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Ok(false);
    };
    let params = Params::try_from(hash).map_err(argon2_error)?;
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(argon2_error)?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(argon2_error)?
        .unwrap_or_default();
    let mut salt_buffer = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buffer).map_err(argon2_error)?;
    let mut out = vec![0u8; expected.len()];
    hash_into(
        &Argon2::new(algorithm, version, params),
        password.expose_secret().as_bytes(),
        salt_bytes,
        &mut out,
    )?;
    Ok(subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()).into())
}

fn verify_blocking(password: &SecretString, stored: Option<&str>) -> Result<Verified, Error> {
    let parsed = match PasswordHash::new(stored.unwrap_or(DUMMY_HASH)) {
        Ok(parsed) => parsed,
        Err(_) => {
            // A corrupt stored hash must not let the attempt return faster than a real check.
            tracing::error!("a stored password hash does not parse");
            verify_parsed(password, &PasswordHash::new(DUMMY_HASH).map_err(argon2_error)?)?;
            return Ok(Verified::No);
        }
    };
    let matches = verify_parsed(password, &parsed)?;
    Ok(match (matches && stored.is_some(), needs_rehash(&parsed)) {
        (false, _) => Verified::No,
        (true, false) => Verified::Yes,
        (true, true) => Verified::YesRehash,
    })
}

fn needs_rehash(hash: &PasswordHash<'_>) -> bool {
    let current = |name: &str, want: u32| hash.params.get_decimal(name) == Some(want);
    hash.algorithm.as_str() != "argon2id"
        || hash.version != Some(Version::V0x13.into())
        || !current("m", MEMORY_KIB)
        || !current("t", ITERATIONS)
        || !current("p", PARALLELISM)
}

/// Hashes a password as a PHC string, on a blocking thread.
pub async fn hash(password: &SecretString) -> Result<String, Error> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| Error::dependency("argon2 worker", e))?
}

/// Verifies a password against a stored PHC hash, or against a dummy hash when there is no user, on a blocking
/// thread. Either way it costs one argon2 run.
pub async fn verify(password: &SecretString, stored: Option<&str>) -> Result<Verified, Error> {
    let password = password.clone();
    let stored = stored.map(str::to_owned);
    tokio::task::spawn_blocking(move || verify_blocking(&password, stored.as_deref()))
        .await
        .map_err(|e| Error::dependency("argon2 worker", e))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s)
    }

    #[test]
    fn policy_bounds_length_in_characters() {
        assert!(check_policy(&secret("short12")).is_err());
        assert!(check_policy(&secret("eight ch")).is_ok());
        assert!(check_policy(&secret(&"é".repeat(8))).is_ok());
        assert!(check_policy(&secret(&"x".repeat(128))).is_ok());
        assert!(check_policy(&secret(&"x".repeat(129))).is_err());
    }

    #[test]
    fn policy_does_not_trim() {
        // Seven characters plus a space is eight characters as received.
        assert!(check_policy(&secret(" abcdefg")).is_ok());
    }

    #[test]
    fn policy_rejects_common_and_control() {
        assert!(check_policy(&secret("Password1")).is_err());
        assert!(check_policy(&secret("qwertyuiop")).is_err());
        assert!(check_policy(&secret("correct\u{0}horse")).is_err());
        assert!(check_policy(&secret("correct horse battery staple")).is_ok());
    }

    #[test]
    fn hash_then_verify() {
        let hash = hash_blocking(&secret("correct horse battery")).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            verify_blocking(&secret("correct horse battery"), Some(&hash)).unwrap(),
            Verified::Yes
        );
        assert_eq!(
            verify_blocking(&secret("wrong horse battery"), Some(&hash)).unwrap(),
            Verified::No
        );
    }

    #[test]
    fn unknown_user_never_verifies() {
        assert_eq!(verify_blocking(&secret("anything at all"), None).unwrap(), Verified::No);
    }

    #[test]
    fn dummy_hash_uses_the_current_parameters() {
        // Otherwise unknown users would cost a different amount of work than real ones.
        assert!(!needs_rehash(&PasswordHash::new(DUMMY_HASH).unwrap()));
    }

    #[test]
    fn our_hashes_verify_with_argon2s_own_verifier_and_back() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash_blocking(&secret("correct horse battery")).unwrap();
        argon2()
            .unwrap()
            .verify_password(b"correct horse battery", &PasswordHash::new(&ours).unwrap())
            .unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2()
            .unwrap()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            verify_blocking(&secret("correct horse battery"), Some(&theirs)).unwrap(),
            Verified::Yes
        );
    }

    #[test]
    fn old_parameters_ask_for_a_rehash() {
        use argon2::password_hash::PasswordHasher as _;
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let hash = weak.hash_password(b"correct horse battery", &salt).unwrap().to_string();
        assert_eq!(
            verify_blocking(&secret("correct horse battery"), Some(&hash)).unwrap(),
            Verified::YesRehash
        );
    }

    #[test]
    fn corrupt_hash_is_a_mismatch() {
        assert_eq!(
            verify_blocking(&secret("correct horse battery"), Some("not-a-phc")).unwrap(),
            Verified::No
        );
    }
}
