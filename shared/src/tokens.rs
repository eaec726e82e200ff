//! Token formats: access JWTs (RFC 9068) and opaque refresh tokens.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::keys::KeySet;
use crate::secret;
use crate::Error;

/// The `typ` header of keygate access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Bytes of randomness in a refresh-token secret.
const REFRESH_SECRET_BYTES: usize = 32;
/// Bytes of randomness in a session id.
const SESSION_ID_BYTES: usize = 16;

/// The claims of an access token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// The session this token belongs to; empty (and absent) for a root token, which has none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sid: String,
    /// Space-separated scopes.
    pub scope: String,
    /// How the user authenticated (RFC 8176 values).
    pub amr: Vec<String>,
    /// When the user authenticated (the session's start), Unix seconds.
    #[serde(default)]
    pub auth_time: i64,
    /// Tenant id, for an account in a tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The account's role in the tenant when the token was issued (a demotion revokes the session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `individual` or `service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acct: Option<String>,
    /// The database id the token is scoped to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// That database's namespace, `<tenant slug>/<database name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns: Option<String>,
    /// The end user of the customer's app a frontend token speaks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuid: Option<String>,
    /// A sessionless token's stamp (a root token, a client-credentials token): the account's session epoch when it
    /// was issued (DESIGN §5), checked at each use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
    /// The OAuth client a client-credentials token was issued to (RFC 9068 §2.2): the service account's own id.
    /// Only those tokens carry it, so a root token can never pass for one, nor one for a root token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The party a token speaks for on someone's behalf (RFC 8693 §4.1); only exchanged tokens carry it, and
    /// keygate's own endpoints refuse any token that does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// The `act` claim (RFC 8693 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting user's id.
    pub sub: String,
}

/// The claims of a token issued by token exchange (RFC 8693): bound to one resource (`aud`), short-lived, and
/// carrying nothing of a session, so that it verifies with the public keys alone and keygate's own endpoints,
/// whose audience is not a resource, refuse it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExchangedClaims {
    /// Issuer.
    pub iss: String,
    /// The resource the token grants access to (see the issuing code for why it is not a user id).
    pub sub: String,
    /// Audience: the resource, `<type>:<id>`.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The subject's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The database the subject was scoped to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// That database's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns: Option<String>,
    /// The user whose token was exchanged.
    pub act: Actor,
}

/// Signs an access token for a session with the current key.
pub fn sign_access_token(keys: &KeySet, claims: &AccessClaims) -> Result<String, Error> {
    sign(keys, claims)
}

/// Signs an exchanged token with the current key, as an access token (`typ: at+jwt`).
pub fn sign_exchanged_token(keys: &KeySet, claims: &ExchangedClaims) -> Result<String, Error> {
    sign(keys, claims)
}

fn sign(keys: &KeySet, claims: &impl Serialize) -> Result<String, Error> {
    let signer = keys.signer()?;
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
    header.kid = Some(signer.kid.clone());
    jsonwebtoken::encode(&header, claims, &signer.encoding).map_err(|e| Error::dependency("signing an access token", e))
}

/// Verifies an access token's signature, algorithm, `typ`, `iss`, `aud` and `exp` against our own keys.
pub fn verify_access_token(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    audience: &str,
    now: UnixTime,
) -> Result<AccessClaims, Error> {
    const INVALID: Error = Error::InvalidToken("The access token is invalid or has expired.");
    // Reject oversized input before any parsing work.
    if token.len() > 4096 {
        return Err(INVALID);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| INVALID)?;
    if header.alg != Algorithm::RS256 || header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
        return Err(INVALID);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.verifier(kid))
        .ok_or(INVALID)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // We check `exp` ourselves against the injected clock, with no leeway.
    validation.validate_exp = false;
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
        .map_err(|_| INVALID)?
        .claims;
    if claims.exp <= now {
        return Err(INVALID);
    }
    Ok(claims)
}

/// A refresh token as presented: `<session_id>.<user_id>.<secret>`. The user id is not secret (it is the access
/// token's `sub`); it lets a refresh read the session and its owner in one request. It is a hint, never trusted: a
/// session owned by someone else refuses it. Tokens issued before it, `<session_id>.<secret>`, are still accepted,
/// and both forms of one token hash alike (only the session id and the secret are hashed).
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The session the token belongs to.
    pub session_id: String,
    /// The session's owner, as the token claims it (absent from tokens of the older form).
    pub user_id: Option<String>,
    secret: String,
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RefreshToken({}.***)", self.session_id)
    }
}

impl RefreshToken {
    /// A fresh token for a session of `user_id`.
    pub fn generate(session_id: &str, user_id: &str) -> Self {
        Self {
            session_id: session_id.to_owned(),
            user_id: Some(user_id.to_owned()),
            secret: secret::random_b64(REFRESH_SECRET_BYTES),
        }
    }

    /// Parses the wire form; anything else is a clean `invalid_token`.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        const INVALID: Error = Error::InvalidToken("The refresh token is malformed.");
        let mut parts = raw.split('.');
        let (session_id, user_id, secret) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(session_id), Some(secret), None, None) => (session_id, None, secret),
            (Some(session_id), Some(user_id), Some(secret), None) if is_id(user_id) => {
                (session_id, Some(user_id), secret)
            }
            _ => return Err(INVALID),
        };
        if is_session_id(session_id) && secret::is_b64_of_len(secret, REFRESH_SECRET_BYTES) {
            Ok(Self {
                session_id: session_id.to_owned(),
                user_id: user_id.map(str::to_owned),
                secret: secret.to_owned(),
            })
        } else {
            Err(INVALID)
        }
    }

    /// The hash stored in the session item; the secret itself is never stored.
    pub fn hash(&self) -> String {
        secret::sha256_b64(&[b"refresh", self.session_id.as_bytes(), self.secret.as_bytes()])
    }

    /// The wire form, handed to the client exactly once.
    pub fn expose(&self) -> String {
        match &self.user_id {
            Some(user_id) => format!("{}.{user_id}.{}", self.session_id, self.secret),
            None => format!("{}.{}", self.session_id, self.secret),
        }
    }
}

/// Whether `id` has the shape of a keygate id (UUID text: users, tenants, databases), so junk costs no read (and
/// no oversized key).
pub fn is_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// A new random session id.
pub fn new_session_id() -> String {
    secret::random_b64(SESSION_ID_BYTES)
}

/// Whether `s` has the shape of a session id.
pub fn is_session_id(s: &str) -> bool {
    secret::is_b64_of_len(s, SESSION_ID_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0b7c2a4e-93f1-4d0a-8c55-2f9e6d1b3a70";

    #[test]
    fn refresh_token_round_trips() {
        let token = RefreshToken::generate(&new_session_id(), UID);
        let parsed = RefreshToken::parse(&token.expose()).unwrap();
        assert_eq!(parsed, token);
        assert_eq!(parsed.user_id.as_deref(), Some(UID));
        assert_eq!(parsed.hash(), token.hash());
    }

    #[test]
    fn a_token_of_the_older_form_parses_and_hashes_as_the_new_one() {
        let token = RefreshToken::generate(&new_session_id(), UID);
        let older = token.expose().replace(&format!(".{UID}."), ".");
        let parsed = RefreshToken::parse(&older).unwrap();
        assert_eq!(parsed.user_id, None);
        assert_eq!(parsed.session_id, token.session_id);
        assert_eq!(parsed.hash(), token.hash(), "stored hashes stay valid");
        assert_eq!(parsed.expose(), older);
    }

    #[test]
    fn refresh_token_rejects_malformed() {
        let good = RefreshToken::generate(&new_session_id(), UID).expose();
        let (sid, rest) = good.split_once('.').unwrap();
        let (_, secret) = rest.split_once('.').unwrap();
        for bad in [
            String::new(),
            "abc".to_owned(),
            format!("{sid}{secret}"),
            format!("{sid}.{}", &secret[1..]),
            format!("{sid}.{secret}A"),
            format!("{}.{secret}", &sid[1..]),
            format!("{sid}.{}", secret.replace(|c: char| c.is_ascii_alphabetic(), "+")),
            format!("{sid}.{secret}.{secret}"),
            format!("{sid}.{UID}.{UID}.{secret}"),
            format!("{sid}.{UID}x.{secret}"),
            format!("{sid}..{secret}"),
            format!("{sid}.{UID}.{secret}."),
            format!("{sid}.{}.{secret}", &UID[1..]),
        ] {
            assert!(RefreshToken::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refresh_hash_depends_on_the_secret() {
        let sid = new_session_id();
        assert_ne!(
            RefreshToken::generate(&sid, UID).hash(),
            RefreshToken::generate(&sid, UID).hash()
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let token = RefreshToken::generate(&new_session_id(), UID);
        let shown = format!("{token:?}");
        assert!(!shown.contains(&token.secret));
    }
}
