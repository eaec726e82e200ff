//! The personal access token format: `<prefix>_<token_id>.<secret><checksum>`.
//!
//! The secret is 256 bits from the OS RNG (43 URL-safe characters); the last 6 characters are a CRC-32 of
//! everything before them, so a mistyped or truncated token is refused without a database read, and secret
//! scanners can recognise a keygate token by its shape.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::{secret, Error};

const ID_BYTES: usize = 16;
const SECRET_BYTES: usize = 32;
const SECRET_CHARS: usize = 43;
const CHECKSUM_CHARS: usize = 6;

/// A parsed (or new) personal access token.
#[derive(Clone, PartialEq, Eq)]
pub struct Pat {
    /// The token id, public: it names the token in the API.
    pub id: String,
    secret: String,
}

impl std::fmt::Debug for Pat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pat({}.***)", self.id)
    }
}

fn checksum(body: &str) -> String {
    URL_SAFE_NO_PAD.encode(crc32fast::hash(body.as_bytes()).to_be_bytes())
}

/// A new random token id.
pub fn new_id() -> String {
    secret::random_b64(ID_BYTES)
}

impl Pat {
    /// A new secret for token `id`.
    pub fn generate(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            secret: secret::random_b64(SECRET_BYTES),
        }
    }

    /// Whether a bearer token looks like one of ours (so it is not a JWT).
    pub fn has_prefix(raw: &str, prefix: &str) -> bool {
        raw.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('_'))
    }

    /// Parses and checks the wire form; the checksum makes a typo fail here, with no database read.
    pub fn parse(raw: &str, prefix: &str) -> Result<Self, Error> {
        const INVALID: Error = Error::InvalidToken("The access token is invalid or has expired.");
        let rest = raw
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('_'))
            .ok_or(INVALID)?;
        let (id, tail) = rest.split_once('.').ok_or(INVALID)?;
        if tail.len() != SECRET_CHARS + CHECKSUM_CHARS || !tail.is_ascii() {
            return Err(INVALID);
        }
        let (secret_part, sum) = tail.split_at(SECRET_CHARS);
        let body = &raw[..raw.len() - CHECKSUM_CHARS];
        if !secret::is_b64_of_len(id, ID_BYTES)
            || !secret::is_b64_of_len(secret_part, SECRET_BYTES)
            || !secret::ct_eq(&checksum(body), sum)
        {
            return Err(INVALID);
        }
        Ok(Self {
            id: id.to_owned(),
            secret: secret_part.to_owned(),
        })
    }

    /// The wire form, shown to its owner exactly once.
    pub fn expose(&self, prefix: &str) -> String {
        let body = format!("{prefix}_{}.{}", self.id, self.secret);
        let sum = checksum(&body);
        body + &sum
    }

    /// The hash stored in place of the secret.
    pub fn hash(&self) -> String {
        secret::sha256_b64(&[b"pat", self.id.as_bytes(), self.secret.as_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let pat = Pat::generate(&new_id());
        let wire = pat.expose("kg");
        assert!(wire.starts_with("kg_"));
        assert_eq!(wire.len(), 3 + 22 + 1 + 43 + 6);
        assert_eq!(Pat::parse(&wire, "kg").unwrap(), pat);
        assert!(Pat::has_prefix(&wire, "kg"));
        assert!(!format!("{pat:?}").contains(&pat.secret));
    }

    #[test]
    fn any_single_typo_is_caught_by_the_checksum_or_the_shape() {
        let wire = Pat::generate(&new_id()).expose("kg");
        for position in 3..wire.len() {
            let mut bytes = wire.clone().into_bytes();
            bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
            let typo = String::from_utf8(bytes).unwrap();
            assert!(Pat::parse(&typo, "kg").is_err(), "typo at {position} passed");
        }
    }

    #[test]
    fn refuses_other_prefixes_and_shapes() {
        let wire = Pat::generate(&new_id()).expose("kg");
        assert!(Pat::parse(&wire, "acme").is_err());
        assert!(Pat::parse(&wire[..wire.len() - 1], "kg").is_err());
        assert!(Pat::parse(&format!("{wire}x"), "kg").is_err());
        assert!(Pat::parse("kg_", "kg").is_err());
        assert!(Pat::parse("kg_.", "kg").is_err());
        assert!(Pat::parse("eyJhbGciOi.x.y", "kg").is_err());
        assert!(!Pat::has_prefix("kgx_abc", "kg"));
    }
}
