//! OpenID Connect: ID-token verification for Google and Entra ID against each provider's JWKS (cached, an unknown
//! `kid` refetched at most every 30 seconds), the authorization-code exchange with PKCE, and the authorization URL.
//!
//! Verification is split in two so that every rule can be tested without a network: [`verify_with`] checks a raw
//! token against a key set and the [`Expected`] claims, and [`Oidc`] fetches and caches the key sets. Keys come
//! only from the configured JWKS URL, never from the token's header (`jku`, `x5u` and `jwk` are ignored).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::config::{EntraEntry, TENANT_PLACEHOLDER};
use crate::clock::UnixTime;
pub use crate::https::{percent_encode, FetchError, MAX_BODY, TIMEOUT};
use crate::{secret, Config, Error};

/// The answer to every refused ID token; the reason goes to the debug log only.
const INVALID: Error = Error::InvalidToken("The identity token is invalid or has expired.");

/// The answer when the IdP's token endpoint refuses a code (4xx).
const INVALID_CODE: Error = Error::InvalidToken("The authorization code is invalid or has expired.");

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: i64 = 60;

/// How long a fetched JWKS is used before it is fetched again.
pub const JWKS_TTL_SECONDS: i64 = 300;

/// A token naming a `kid` the cached set lacks refetches the set at most this often (per URL), and a failed fetch
/// is retried no sooner than this: forged kids must not make keygate hammer an IdP.
pub const REFETCH_SECONDS: i64 = 30;

/// A set that cannot be refreshed is served this long past its fetch at most; after that the IdP is unavailable.
/// Long enough to ride out an outage, short enough that a key the IdP withdrew does not verify for ever.
pub const MAX_STALE_SECONDS: i64 = 24 * 3600;

/// Longer tokens are refused before any parsing. Entra tokens with many claims run to a few KiB.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Longer authorization codes are refused without asking the IdP.
pub const MAX_CODE_LEN: usize = 4096;

/// The values Google puts in `iss`.
pub const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// A verified ID token's claims that keygate uses.
#[derive(Debug, Clone)]
pub struct IdToken {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `email`, lowercase as given (unverified for Entra).
    pub email: Option<String>,
    /// `email_verified` (Google).
    pub email_verified: bool,
    /// `hd`, the Google Workspace domain.
    pub hosted_domain: Option<String>,
    /// `tid` (Entra).
    pub tenant: Option<String>,
    /// `oid` (Entra).
    pub object_id: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `exp`.
    pub expires_at: UnixTime,
}

/// Why a token was refused: for the debug log and for tests, never for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a JWT, too long, or claims of the wrong type.
    #[error("malformed")]
    Malformed,
    /// `alg` is not RS256 (`none`, HS256, anything else).
    #[error("algorithm not RS256")]
    Algorithm,
    /// The header has no `kid`.
    #[error("no kid")]
    NoKid,
    /// No key of the set has that `kid`.
    #[error("unknown kid")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// A required claim is missing.
    #[error("missing claim {0}")]
    Missing(&'static str),
    /// `exp` passed (beyond the leeway).
    #[error("expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("not yet valid")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("issued in the future")]
    IssuedInFuture,
    /// `aud` is not an accepted client id.
    #[error("wrong audience")]
    Audience,
    /// `iss` is not the expected issuer.
    #[error("wrong issuer")]
    Issuer,
    /// `tid` is not on the entry's allow-list.
    #[error("tenant not allowed")]
    Tenant,
    /// Google says the address is not verified.
    #[error("email not verified")]
    EmailNotVerified,
}

/// One IdP's signing keys, by `kid`: RSA keys only.
pub struct Jwks {
    keys: Vec<(String, DecodingKey)>,
}

/// A JWK as IdPs publish it; only what keygate reads.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [...]}`), keeping the RSA signing keys with a `kid` (and, when they say,
    /// `use: sig` and `alg: RS256`); `None` when it is not a JWKS or keeps no key.
    pub fn from_json(raw: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document = serde_json::from_slice(raw).ok()?;
        let mut keys: Vec<(String, DecodingKey)> = Vec::new();
        // A key of another shape (an EC key, say) is skipped rather than failing the whole set.
        for jwk in document
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<RawJwk>(k).ok())
        {
            let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
                continue;
            };
            let usable = jwk.kty.as_deref() == Some("RSA")
                && jwk.key_use.as_deref().is_none_or(|u| u == "sig")
                && jwk.alg.as_deref().is_none_or(|a| a == "RS256");
            if !usable || keys.iter().any(|(k, _)| *k == kid) {
                continue;
            }
            if let Ok(key) = DecodingKey::from_rsa_components(&n, &e) {
                keys.push((kid, key));
            }
        }
        (!keys.is_empty()).then_some(Self { keys })
    }

    /// The key with this `kid`.
    pub fn key(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }

    /// How many keys the set has.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no key (never, for a parsed set).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What a token must say besides a good signature and times.
#[derive(Debug, Clone, Copy)]
pub enum Expected<'a> {
    /// Google: `aud` one of these client ids, `iss` one of [`GOOGLE_ISSUERS`], `email_verified` true.
    Google {
        /// The accepted client ids.
        audiences: &'a [String],
    },
    /// Entra: `aud` the client id, `tid` on the allow-list, `iss` the template with `{tenantid}` replaced by `tid`.
    Entra {
        /// The application (client) id.
        client_id: &'a str,
        /// The allowed `tid`s.
        allowed_tenants: &'a [String],
        /// The issuer template.
        issuer: &'a str,
    },
}

impl<'a> Expected<'a> {
    /// The expectations of `entry`'s tokens.
    pub fn entra(entry: &'a EntraEntry) -> Self {
        Self::Entra {
            client_id: &entry.client_id,
            allowed_tenants: &entry.allowed_tenants,
            issuer: &entry.issuer,
        }
    }
}

/// `aud`: one string or an array.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Audience {
    #[default]
    Absent,
    One(String),
    Many(Vec<String>),
}

/// `email_verified`: a boolean, or (in some older Google tokens) the string `"true"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default)]
    aud: Audience,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    email: Option<String>,
    email_verified: Option<Flag>,
    hd: Option<String>,
    tid: Option<String>,
    oid: Option<String>,
    nonce: Option<String>,
    name: Option<String>,
    preferred_username: Option<String>,
}

/// The header's `kid`, after checking that `alg` is RS256: refuses `none`, HS256 and the rest before any key is
/// looked up or fetched.
pub fn header_kid(raw: &str) -> Result<String, Refusal> {
    #[derive(Deserialize)]
    struct Header {
        alg: Option<String>,
        kid: Option<String>,
    }
    if raw.len() > MAX_TOKEN_LEN {
        return Err(Refusal::Malformed);
    }
    let mut parts = raw.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Refusal::Malformed);
    };
    let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| Refusal::Malformed)?;
    let header: Header = serde_json::from_slice(&header).map_err(|_| Refusal::Malformed)?;
    if header.alg.as_deref() != Some("RS256") {
        return Err(Refusal::Algorithm);
    }
    header.kid.filter(|kid| !kid.is_empty()).ok_or(Refusal::NoKid)
}

/// Verifies `raw` against `keys` and `expected` at `now`: RS256 only, the key by `kid`, `exp`/`nbf`/`iat` within
/// [`LEEWAY_SECONDS`], then the audience, the issuer and the provider's own rules. No I/O.
pub fn verify_with(keys: &Jwks, raw: &str, expected: &Expected<'_>, now: UnixTime) -> Result<IdToken, Refusal> {
    let kid = header_kid(raw)?;
    let key = keys.key(&kid).ok_or(Refusal::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256];
    // Times, audience and issuer are checked below, against the injected clock and with our own rules.
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Claims>(raw, key, &validation)
        .map_err(|err| match err.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => Refusal::Signature,
            _ => Refusal::Malformed,
        })?
        .claims;

    let exp = claims.exp.ok_or(Refusal::Missing("exp"))?;
    let iat = claims.iat.ok_or(Refusal::Missing("iat"))?;
    if exp.saturating_add(LEEWAY_SECONDS) <= now {
        return Err(Refusal::Expired);
    }
    if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECONDS)) {
        return Err(Refusal::NotYetValid);
    }
    if iat > now.saturating_add(LEEWAY_SECONDS) {
        return Err(Refusal::IssuedInFuture);
    }
    let issuer = claims.iss.ok_or(Refusal::Missing("iss"))?;
    let subject = claims.sub.filter(|s| !s.is_empty()).ok_or(Refusal::Missing("sub"))?;
    let audience_is = |accepted: &dyn Fn(&str) -> bool| match &claims.aud {
        Audience::Absent => false,
        Audience::One(aud) => accepted(aud),
        // Several audiences: every one must be ours, or the token was meant for someone else too.
        Audience::Many(auds) => !auds.is_empty() && auds.iter().all(|aud| accepted(aud)),
    };
    let lowercase = |s: Option<String>| s.map(|s| s.to_lowercase());

    match *expected {
        Expected::Google { audiences } => {
            if !audience_is(&|aud| audiences.iter().any(|a| a == aud)) {
                return Err(Refusal::Audience);
            }
            if !GOOGLE_ISSUERS.contains(&issuer.as_str()) {
                return Err(Refusal::Issuer);
            }
            let verified = matches!(claims.email_verified, Some(Flag::Bool(true)))
                || matches!(&claims.email_verified, Some(Flag::Text(t)) if t == "true");
            let email = lowercase(claims.email);
            if !verified || email.is_none() {
                return Err(Refusal::EmailNotVerified);
            }
            Ok(IdToken {
                issuer,
                subject,
                email,
                email_verified: true,
                hosted_domain: lowercase(claims.hd),
                tenant: None,
                object_id: None,
                nonce: claims.nonce,
                name: claims.name,
                expires_at: exp,
            })
        }
        Expected::Entra {
            client_id,
            allowed_tenants,
            issuer: template,
        } => {
            if !audience_is(&|aud| aud == client_id) {
                return Err(Refusal::Audience);
            }
            let tid = claims.tid.ok_or(Refusal::Missing("tid"))?;
            if !allowed_tenants.contains(&tid) {
                return Err(Refusal::Tenant);
            }
            // The template filled with this token's own (allowed) tid, never the template itself: a multi-tenant
            // app's metadata names `{tenantid}` literally.
            if issuer != template.replace(TENANT_PLACEHOLDER, &tid) {
                return Err(Refusal::Issuer);
            }
            let oid = claims.oid.filter(|o| !o.is_empty()).ok_or(Refusal::Missing("oid"))?;
            Ok(IdToken {
                issuer,
                subject,
                // Neither is a verified claim ("nOAuth"): for display and for the account's address only.
                email: lowercase(claims.email.or(claims.preferred_username)),
                email_verified: false,
                hosted_domain: None,
                tenant: Some(tid),
                object_id: Some(oid),
                nonce: claims.nonce,
                name: claims.name,
                expires_at: exp,
            })
        }
    }
}

/// A cached key set of one URL.
struct CachedJwks {
    keys: Arc<Jwks>,
    loaded_at: UnixTime,
    /// After a failed fetch the cached set is served until then.
    retry_at: UnixTime,
}

/// One URL's cache; its own lock, so a slow IdP does not hold up the others.
type Slot = Arc<tokio::sync::Mutex<Option<CachedJwks>>>;

/// The HTTPS client and the JWKS caches, built once per process.
#[derive(Default)]
pub struct Oidc {
    fetcher: crate::https::Fetcher,
    /// Keyed by JWKS URL: the configured ones only (Google's and each Entra entry's), so it stays small.
    jwks: std::sync::Mutex<HashMap<String, Slot>>,
}

impl Oidc {
    /// Makes no network call.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies a Google ID token: RS256 against `config.google_jwks_url`, `aud` one of
    /// `config.google_client_ids`, Google's issuer, `email_verified` true. 404 when Google sign-in is off (no
    /// client id configured); 401 `invalid_token` for any refusal; 503 when the keys cannot be fetched.
    pub async fn verify_google(&self, config: &Config, raw: &str, now: UnixTime) -> Result<IdToken, Error> {
        if config.google_client_ids.is_empty() {
            return Err(Error::NotFound);
        }
        let expected = Expected::Google {
            audiences: &config.google_client_ids,
        };
        self.verify(&config.google_jwks_url, raw, &expected, now).await
    }

    /// Verifies an Entra ID token of `entry`'s application: RS256 against `entry.jwks_uri`, `aud` the client id,
    /// `tid` allowed, `iss` the entry's issuer for that `tid`, `oid` present. 401 `invalid_token` for any refusal;
    /// 503 when the keys cannot be fetched.
    pub async fn verify_entra(&self, entry: &EntraEntry, raw: &str, now: UnixTime) -> Result<IdToken, Error> {
        self.verify(&entry.jwks_uri, raw, &Expected::entra(entry), now).await
    }

    async fn verify(
        &self,
        jwks_url: &str,
        raw: &str,
        expected: &Expected<'_>,
        now: UnixTime,
    ) -> Result<IdToken, Error> {
        // The algorithm and the kid first: a token keygate would refuse anyway costs no fetch.
        let kid = header_kid(raw).map_err(refused)?;
        let keys = self.keys_for(jwks_url, &kid, now).await?;
        verify_with(&keys, raw, expected, now).map_err(refused)
    }

    /// The key set at `url`: cached for [`JWKS_TTL_SECONDS`]; refetched early when it lacks `kid`, at most every
    /// [`REFETCH_SECONDS`]. A failed fetch serves the cached set (up to [`MAX_STALE_SECONDS`] old) and is retried
    /// no sooner than [`REFETCH_SECONDS`]; with nothing cached it is 503.
    async fn keys_for(&self, url: &str, kid: &str, now: UnixTime) -> Result<Arc<Jwks>, Error> {
        let slot = {
            let mut slots = self.jwks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(slots.entry(url.to_owned()).or_default())
        };
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref() {
            let age = now - c.loaded_at;
            let fresh = age < JWKS_TTL_SECONDS && (c.keys.key(kid).is_some() || age < REFETCH_SECONDS);
            if fresh || (now < c.retry_at && age < MAX_STALE_SECONDS) {
                return Ok(Arc::clone(&c.keys));
            }
        }
        let fetched = match self.fetcher.get(url).await {
            Ok(body) => Jwks::from_json(&body).ok_or(FetchError::Body),
            Err(err) => Err(err),
        };
        if fetched.is_err() {
            crate::telemetry::idp_error("oidc_keys");
        }
        match fetched {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *cached = Some(CachedJwks {
                    keys: Arc::clone(&keys),
                    loaded_at: now,
                    retry_at: now,
                });
                Ok(keys)
            }
            Err(err) => match cached.as_mut() {
                Some(stale) if now - stale.loaded_at < MAX_STALE_SECONDS => {
                    tracing::warn!(url, error = %err, "fetching an identity provider's keys failed; using the cached set");
                    stale.retry_at = now + REFETCH_SECONDS;
                    Ok(Arc::clone(&stale.keys))
                }
                _ => Err(Error::dependency("fetching an identity provider's signing keys", err)),
            },
        }
    }

    /// Redeems an authorization code at `entry`'s token endpoint, with the client secret and the PKCE verifier:
    /// the raw ID token. A code the IdP refuses (4xx) is 401 `invalid_token`; an IdP that fails or is slow is 503.
    /// Neither the code, the verifier nor the secret is logged.
    pub async fn redeem_code(
        &self,
        entry: &EntraEntry,
        code: &str,
        verifier: &SecretString,
        _now: UnixTime,
    ) -> Result<String, Error> {
        if code.is_empty() || code.len() > MAX_CODE_LEN {
            return Err(INVALID_CODE);
        }
        let fields = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", entry.redirect_uri.as_str()),
            ("client_id", entry.client_id.as_str()),
            ("client_secret", entry.client_secret.expose_secret()),
            ("code_verifier", verifier.expose_secret()),
        ];
        let body = match self.fetcher.post_form(&entry.token_endpoint, &fields).await {
            Ok(body) => body,
            Err(FetchError::Status(status)) if (400..500).contains(&status) => {
                tracing::debug!(status, "the identity provider refused an authorization code");
                return Err(INVALID_CODE);
            }
            Err(err) => {
                crate::telemetry::idp_error("entra");
                return Err(Error::dependency("redeeming an authorization code", err));
            }
        };
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: Option<String>,
        }
        serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(|r| r.id_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::dependency(
                    "redeeming an authorization code",
                    std::io::Error::other("the token response has no id_token"),
                )
            })
    }
}

/// Logs why a token was refused (the reason only, nothing of the token) and answers the one generic 401.
fn refused(reason: Refusal) -> Error {
    tracing::debug!(%reason, "an identity token was refused");
    INVALID
}

/// The authorization-code request URL of `entry`, with PKCE (S256), `state`, `nonce` and an optional login hint.
pub fn authorization_url(
    entry: &EntraEntry,
    state: &str,
    nonce: &str,
    code_challenge: &str,
    login_hint: Option<&str>,
) -> String {
    let mut params = vec![
        ("client_id", entry.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", entry.redirect_uri.as_str()),
        ("response_mode", "query"),
        ("scope", "openid email profile"),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", code_challenge),
        ("code_challenge_method", "S256"),
    ];
    if let Some(hint) = login_hint {
        params.push(("login_hint", hint));
    }
    let query = params
        .iter()
        .map(|(name, value)| format!("{name}={}", percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    // An endpoint may carry a query of its own (a B2C policy, say).
    let separator = if entry.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{}{separator}{query}", entry.authorization_endpoint)
}

/// A PKCE verifier (kept server-side) and its S256 challenge.
pub fn pkce_pair() -> (SecretString, String) {
    // 32 random bytes: 43 characters of base64url, the shortest verifier RFC 7636 allows.
    let verifier = secret::random_b64(32);
    let challenge = s256_challenge(&verifier);
    (SecretString::from(verifier), challenge)
}

/// RFC 7636's S256: base64url (no padding) of SHA-256 of the verifier.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests;
