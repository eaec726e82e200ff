//! Signing keys: the key schedule in the private key secret (two RSA keys per version), the public key set the
//! verifying functions read instead, and the in-memory caches of both.

use std::sync::Arc;

use aws_sdk_secretsmanager::Client as SecretsClient;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::rngs::OsRng;
use rsa::pkcs1::{EncodeRsaPrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use rsa::RsaPrivateKey;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::clock::UnixTime;
use crate::state::LazyClient;
use crate::{secret, Error};

/// A key set that lacks a `kid` is read again at most this often, so forged kids cannot hammer Secrets Manager;
/// after a failed read, the cached set is served for this long before the next attempt.
const RELOAD_SECONDS: i64 = 30;

/// One signing key as stored in a secret version (JSON).
#[derive(Clone, Deserialize)]
pub struct KeyMaterial {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// Always `RS256` today.
    pub alg: String,
    /// PKCS#1 PEM of the private key.
    pub private_key_pem: SecretString,
    /// Public modulus, base64url.
    pub n: String,
    /// Public exponent, base64url.
    pub e: String,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The stored form of one key; private material leaves the secrecy wrapper only here, on its way to the secret.
#[derive(Serialize)]
struct WireKey<'a> {
    kid: &'a str,
    alg: &'a str,
    private_key_pem: &'a str,
    n: &'a str,
    e: &'a str,
}

impl<'a> From<&'a KeyMaterial> for WireKey<'a> {
    fn from(key: &'a KeyMaterial) -> Self {
        Self {
            kid: &key.kid,
            alg: &key.alg,
            private_key_pem: key.private_key_pem.expose_secret(),
            n: &key.n,
            e: &key.e,
        }
    }
}

impl KeyMaterial {
    /// A new RSA-2048 key from the OS RNG.
    pub fn generate() -> Result<Self, Error> {
        let key = RsaPrivateKey::new(&mut OsRng, 2048).map_err(|e| Error::dependency("generating an RSA key", e))?;
        let pem = key
            .to_pkcs1_pem(LineEnding::LF)
            .map_err(|e| Error::dependency("encoding an RSA key", e))?;
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        let kid = thumbprint(&n, &e);
        Ok(Self {
            kid,
            alg: "RS256".to_owned(),
            private_key_pem: SecretString::from(pem.as_str()),
            n,
            e,
        })
    }

    /// The single-key JSON that versions written before the key schedule hold (see [`KeyVersion`]).
    pub fn to_secret_string(&self) -> Result<String, Error> {
        serde_json::to_string(&WireKey::from(self)).map_err(|e| Error::dependency("encoding key material", e))
    }

    /// The public half as a JWK.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "RSA".to_owned(),
            key_use: "sig".to_owned(),
            alg: "RS256".to_owned(),
            kid: self.kid.clone(),
            n: self.n.clone(),
            e: self.e.clone(),
        }
    }

    fn is_usable(&self) -> bool {
        self.alg == "RS256"
    }
}

/// The keys of one version of the private key secret. While the version is AWSCURRENT its `signing` key signs;
/// its `next` key is already published, and signs once a rotation makes it the next version's `signing` key, so
/// every key is in the public key set for a whole rotation period before any token carries it.
///
/// Versions written before this schedule hold a single key (the JSON of [`KeyMaterial::to_secret_string`]). They
/// read as `signing` with no `next`, so an existing deployment upgrades at its next rotation: that rotation keeps
/// the same key signing and publishes the first `next` key (see [`KeyVersion::successor`]).
#[derive(Debug, Clone)]
pub struct KeyVersion {
    /// Signs while this version is AWSCURRENT.
    pub signing: KeyMaterial,
    /// Signs after the next rotation; `None` only in a version written before the key schedule.
    pub next: Option<KeyMaterial>,
}

/// How a version is stored: the schedule's two keys, or the single key of versions written before it.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredVersion {
    Scheduled {
        signing: KeyMaterial,
        next: Option<KeyMaterial>,
    },
    Legacy(KeyMaterial),
}

impl KeyVersion {
    /// The version a rotation writes after `current`: its `signing` key is `current`'s `next` key, which has been
    /// published since `current` was promoted, and its `next` key is fresh. With no current version (the first
    /// key) both are fresh. A version written before the schedule has no `next`; its own `signing` key keeps
    /// signing for one more period rather than let an unpublished key sign.
    pub fn successor(current: Option<&Self>) -> Result<Self, Error> {
        Self::successor_with(current, KeyMaterial::generate)
    }

    fn successor_with(
        current: Option<&Self>,
        mut fresh: impl FnMut() -> Result<KeyMaterial, Error>,
    ) -> Result<Self, Error> {
        let signing = match current {
            Some(current) => current.next.as_ref().unwrap_or(&current.signing).clone(),
            None => fresh()?,
        };
        Ok(Self {
            signing,
            next: Some(fresh()?),
        })
    }

    /// Both keys, `signing` first.
    pub fn keys(&self) -> impl Iterator<Item = &KeyMaterial> {
        std::iter::once(&self.signing).chain(self.next.as_ref())
    }

    /// The JSON stored as the secret string: `{"signing": {...}, "next": {...}}`.
    pub fn to_secret_string(&self) -> Result<String, Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            signing: WireKey<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            next: Option<WireKey<'a>>,
        }
        serde_json::to_string(&Wire {
            signing: WireKey::from(&self.signing),
            next: self.next.as_ref().map(WireKey::from),
        })
        .map_err(|e| Error::dependency("encoding key material", e))
    }

    /// Parses a secret string in either format; `None` when it is not keygate key material (for example the
    /// placeholder a new secret starts with) or names an algorithm keygate does not sign with.
    pub fn from_secret_string(raw: &str) -> Option<Self> {
        let version = match serde_json::from_str::<StoredVersion>(raw).ok()? {
            StoredVersion::Scheduled { signing, next } => Self { signing, next },
            StoredVersion::Legacy(signing) => Self { signing, next: None },
        };
        let usable = version.keys().all(KeyMaterial::is_usable);
        usable.then_some(version)
    }
}

/// RFC 7638 JWK thumbprint of an RSA public key.
fn thumbprint(n: &str, e: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A public key in JWKS form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type.
    pub kty: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// Algorithm.
    pub alg: String,
    /// Key id.
    pub kid: String,
    /// Modulus.
    pub n: String,
    /// Exponent.
    pub e: String,
}

impl Jwk {
    fn is_usable(&self) -> bool {
        self.kty == "RSA" && self.key_use == "sig" && self.alg == "RS256"
    }
}

/// The public key set the rotation publishes in the public-key secret, as JWKS JSON (`{"keys": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeys {
    /// The keys, each `kid` once.
    pub keys: Vec<Jwk>,
}

impl PublicKeys {
    /// The public halves of both keys of each version, in order (AWSCURRENT first), each `kid` once.
    pub fn of_versions<'a>(versions: impl IntoIterator<Item = &'a KeyVersion>) -> Self {
        let mut keys: Vec<Jwk> = Vec::new();
        for key in versions.into_iter().flat_map(KeyVersion::keys) {
            if !keys.iter().any(|k| k.kid == key.kid) {
                keys.push(key.jwk());
            }
        }
        Self { keys }
    }

    /// The JSON stored as the public-key secret's string.
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(|e| Error::dependency("encoding the public key set", e))
    }

    /// Parses the public-key secret; `None` when it holds no usable key (the placeholder before the first
    /// rotation publishes). Keys of another type or algorithm are dropped.
    pub fn from_json(raw: &str) -> Option<Self> {
        let mut set = serde_json::from_str::<Self>(raw).ok()?;
        set.keys.retain(Jwk::is_usable);
        (!set.keys.is_empty()).then_some(set)
    }
}

/// The key that signs new tokens.
pub struct Signer {
    /// Its key id, put in every JWT header.
    pub kid: String,
    /// The private key.
    pub encoding: EncodingKey,
}

/// The keys loaded from one read of a secret: a signing key (from the private secret) or verifying keys (from
/// the public key set).
pub struct KeySet {
    signer: Option<Signer>,
    verifiers: Vec<(String, DecodingKey)>,
    jwks: Vec<Jwk>,
    loaded_at: UnixTime,
}

impl KeySet {
    /// A key set that signs with `signing` and verifies with it and `others`.
    pub fn from_materials(signing: Option<&KeyMaterial>, others: &[KeyMaterial], loaded_at: UnixTime) -> Self {
        let signer = signing.and_then(|m| {
            EncodingKey::from_rsa_pem(m.private_key_pem.expose_secret().as_bytes())
                .map_err(|e| tracing::error!(kid = %m.kid, error = %e, "the signing key does not parse"))
                .ok()
                .map(|encoding| Signer {
                    kid: m.kid.clone(),
                    encoding,
                })
        });
        let jwks: Vec<Jwk> = signing.into_iter().chain(others).map(KeyMaterial::jwk).collect();
        Self {
            signer,
            ..Self::from_jwks(&jwks, loaded_at)
        }
    }

    /// A key set that only verifies, from public keys; each `kid` once, unusable keys skipped.
    pub fn from_jwks(keys: &[Jwk], loaded_at: UnixTime) -> Self {
        let mut verifiers = Vec::new();
        let mut jwks = Vec::new();
        for jwk in keys.iter().filter(|k| k.is_usable()) {
            if verifiers.iter().any(|(kid, _)| kid == &jwk.kid) {
                continue;
            }
            if let Ok(key) = DecodingKey::from_rsa_components(&jwk.n, &jwk.e) {
                verifiers.push((jwk.kid.clone(), key));
                jwks.push(jwk.clone());
            }
        }
        Self {
            signer: None,
            verifiers,
            jwks,
            loaded_at,
        }
    }

    /// The signing key, or 503 when the private secret has no usable AWSCURRENT.
    pub fn signer(&self) -> Result<&Signer, Error> {
        self.signer
            .as_ref()
            .ok_or_else(|| Error::dependency("signing key", std::io::Error::other("no usable AWSCURRENT signing key")))
    }

    /// The verifying key with this id, if it is one of ours.
    pub fn verifier(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifiers
            .iter()
            .find(|(k, _)| secret::ct_eq(k, kid))
            .map(|(_, key)| key)
    }

    /// The public keys, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &[Jwk] {
        &self.jwks
    }
}

/// A cached key set and when it may next be read again.
struct Cached {
    keys: Arc<KeySet>,
    /// After a failed read, the stale set is served until then instead of calling Secrets Manager per request.
    retry_at: UnixTime,
}

/// Reads the keys and caches them, so a warm request makes no Secrets Manager call. Signing reads only the
/// private secret's AWSCURRENT signing key; verification and the JWKS read only the public key set, so a function
/// that never signs needs no access to a private key.
pub struct KeyStore {
    client: Arc<LazyClient<SecretsClient>>,
    private_secret_id: String,
    public_secret_id: String,
    ttl: i64,
    signing: Mutex<Option<Cached>>,
    public: Mutex<Option<Cached>>,
}

impl KeyStore {
    /// A store that reads `private_secret_id` (to sign) and `public_secret_id` (to verify) lazily, on the first
    /// request that needs each.
    pub fn new(
        client: Arc<LazyClient<SecretsClient>>,
        private_secret_id: String,
        public_secret_id: String,
        ttl: i64,
    ) -> Self {
        Self {
            client,
            private_secret_id,
            public_secret_id,
            ttl,
            signing: Mutex::new(None),
            public: Mutex::new(None),
        }
    }

    /// A key set that can sign: AWSCURRENT's `signing` key, one GetSecretValue when the cache is cold.
    pub async fn signing(&self, now: UnixTime) -> Result<Arc<KeySet>, Error> {
        let mut cache = self.signing.lock().await;
        if let Some(cached) = cache.as_ref() {
            if !self.wants_reload(cached, None, now) {
                return Ok(Arc::clone(&cached.keys));
            }
        }
        let loaded = self.load_signing(now).await;
        serve(&mut cache, loaded, now)
    }

    /// The public key set (both keys of AWSCURRENT and of AWSPREVIOUS), for the JWKS: one GetSecretValue when
    /// the cache is cold.
    pub async fn get(&self, now: UnixTime) -> Result<Arc<KeySet>, Error> {
        self.public(None, now).await
    }

    /// The public key set, to verify a token naming `kid`. A `kid` the cached set lacks reloads it at most every
    /// 30 seconds: the schedule publishes keys a rotation period before they sign, so a real token's key is
    /// normally cached already, and a forged one must not cost a Secrets Manager call per request.
    pub async fn get_for_kid(&self, kid: Option<&str>, now: UnixTime) -> Result<Arc<KeySet>, Error> {
        self.public(kid, now).await
    }

    async fn public(&self, kid: Option<&str>, now: UnixTime) -> Result<Arc<KeySet>, Error> {
        let mut cache = self.public.lock().await;
        if let Some(cached) = cache.as_ref() {
            if !self.wants_reload(cached, kid, now) {
                return Ok(Arc::clone(&cached.keys));
            }
        }
        let loaded = self.load_public(now).await;
        serve(&mut cache, loaded, now)
    }

    fn wants_reload(&self, cached: &Cached, kid: Option<&str>, now: UnixTime) -> bool {
        let age = now - cached.keys.loaded_at;
        now >= cached.retry_at
            && (age >= self.ttl || kid.is_some_and(|kid| cached.keys.verifier(kid).is_none() && age >= RELOAD_SECONDS))
    }

    async fn load_signing(&self, now: UnixTime) -> Result<KeySet, Error> {
        let version = fetch_stage(self.client.get(), &self.private_secret_id, "AWSCURRENT", None).await?;
        let keys = KeySet::from_materials(version.as_ref().map(|v| &v.signing), &[], now);
        keys.signer()?;
        Ok(keys)
    }

    async fn load_public(&self, now: UnixTime) -> Result<KeySet, Error> {
        let raw = secret_string(self.client.get(), &self.public_secret_id, "AWSCURRENT", None).await?;
        let published = raw
            .and_then(|raw| PublicKeys::from_json(raw.expose_secret()))
            .ok_or_else(|| {
                Error::dependency(
                    "public signing keys",
                    std::io::Error::other("the public-key secret holds no key set; run the key rotation"),
                )
            })?;
        Ok(KeySet::from_jwks(&published.keys, now))
    }
}

/// Caches a freshly loaded set, or on failure serves the cached one: a stale key set beats an outage, since keys
/// rotate rarely and old ones keep verifying.
fn serve(cache: &mut Option<Cached>, loaded: Result<KeySet, Error>, now: UnixTime) -> Result<Arc<KeySet>, Error> {
    match loaded {
        Ok(keys) => {
            let keys = Arc::new(keys);
            *cache = Some(Cached {
                keys: Arc::clone(&keys),
                retry_at: now,
            });
            Ok(keys)
        }
        Err(err) => match cache {
            Some(stale) => {
                tracing::warn!(error = ?err, "reloading keys failed; serving the cached set");
                stale.retry_at = now + RELOAD_SECONDS;
                Ok(Arc::clone(&stale.keys))
            }
            None => Err(err),
        },
    }
}

/// Reads one stage (and optionally one version) of the private key secret. `None` when it does not exist or is
/// not keygate key material (for example the placeholder a new secret starts with).
pub async fn fetch_stage(
    client: &SecretsClient,
    secret_id: &str,
    stage: &str,
    version_id: Option<&str>,
) -> Result<Option<KeyVersion>, Error> {
    Ok(secret_string(client, secret_id, stage, version_id)
        .await?
        .and_then(|raw| KeyVersion::from_secret_string(raw.expose_secret())))
}

/// The string of one stage (and optionally one version) of a secret; `None` when it does not exist. The stage is
/// always named, since moto answers a stage-less read with a stale AWSCURRENT (DESIGN §3).
pub async fn secret_string(
    client: &SecretsClient,
    secret_id: &str,
    stage: &str,
    version_id: Option<&str>,
) -> Result<Option<SecretString>, Error> {
    let result = client
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage(stage)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await;
    match result {
        Ok(output) => Ok(output.secret_string().map(SecretString::from)),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(err) => Err(Error::dependency("secretsmanager GetSecretValue", err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in key for the schedule logic, which only moves keys around: no RSA work.
    fn stub(kid: &str) -> KeyMaterial {
        KeyMaterial {
            kid: kid.to_owned(),
            alg: "RS256".to_owned(),
            private_key_pem: SecretString::from("-----BEGIN RSA PRIVATE KEY-----"),
            n: format!("n-{kid}"),
            e: "AQAB".to_owned(),
        }
    }

    fn counter() -> impl FnMut() -> Result<KeyMaterial, Error> {
        let mut issued = 0;
        move || {
            issued += 1;
            Ok(stub(&format!("k{issued}")))
        }
    }

    #[test]
    fn the_first_version_has_two_fresh_keys() {
        let first = KeyVersion::successor_with(None, counter()).unwrap();
        assert_eq!(first.signing.kid, "k1");
        assert_eq!(first.next.map(|k| k.kid).as_deref(), Some("k2"));
    }

    #[test]
    fn a_rotation_promotes_next_and_adds_a_fresh_key() {
        let mut fresh = counter();
        let first = KeyVersion::successor_with(None, &mut fresh).unwrap();
        let second = KeyVersion::successor_with(Some(&first), &mut fresh).unwrap();
        assert_eq!(second.signing.kid, "k2", "the old next key signs");
        assert_eq!(second.next.map(|k| k.kid).as_deref(), Some("k3"));
    }

    #[test]
    fn every_signing_key_was_published_a_whole_period_before() {
        let mut fresh = counter();
        let mut previous: Option<KeyVersion> = None;
        let mut current = KeyVersion::successor_with(None, &mut fresh).unwrap();
        for _ in 0..5 {
            let published = PublicKeys::of_versions([Some(&current), previous.as_ref()].into_iter().flatten());
            let next = KeyVersion::successor_with(Some(&current), &mut fresh).unwrap();
            assert!(
                published.keys.iter().any(|k| k.kid == next.signing.kid),
                "{} signs without having been published",
                next.signing.kid
            );
            // And the key that signed until now stays published after the rotation, so its tokens verify.
            let after = PublicKeys::of_versions([&next, &current]);
            assert!(after.keys.iter().any(|k| k.kid == current.signing.kid));
            previous = Some(std::mem::replace(&mut current, next));
        }
    }

    #[test]
    fn a_legacy_version_keeps_signing_until_its_successor_is_published() {
        let legacy = KeyVersion::from_secret_string(&stub("old").to_secret_string().unwrap()).unwrap();
        assert_eq!(legacy.signing.kid, "old");
        assert!(legacy.next.is_none());
        let upgraded = KeyVersion::successor_with(Some(&legacy), counter()).unwrap();
        assert_eq!(upgraded.signing.kid, "old", "no unpublished key signs at the upgrade");
        assert_eq!(upgraded.next.map(|k| k.kid).as_deref(), Some("k1"));
    }

    #[test]
    fn versions_round_trip_with_both_keys() {
        let version = KeyVersion::successor(None).unwrap();
        let raw = version.to_secret_string().unwrap();
        let parsed = KeyVersion::from_secret_string(&raw).unwrap();
        let next = version.next.as_ref().unwrap();
        assert_eq!(parsed.signing.kid, version.signing.kid);
        assert_eq!(parsed.next.as_ref().map(|k| k.kid.as_str()), Some(next.kid.as_str()));
        assert_eq!(parsed.signing.kid, thumbprint(&parsed.signing.n, &parsed.signing.e));
        assert_eq!(
            parsed.signing.private_key_pem.expose_secret(),
            version.signing.private_key_pem.expose_secret()
        );
        assert_ne!(version.signing.kid, next.kid);
        assert!(!format!("{version:?}").contains("PRIVATE"));
    }

    #[test]
    fn placeholders_and_foreign_algorithms_are_not_key_material() {
        assert!(KeyVersion::from_secret_string("hunter2-random-password").is_none());
        assert!(KeyVersion::from_secret_string("{}").is_none());
        let mut es = stub("es");
        es.alg = "ES256".to_owned();
        let version = KeyVersion {
            signing: stub("a"),
            next: Some(es),
        };
        assert!(KeyVersion::from_secret_string(&version.to_secret_string().unwrap()).is_none());
    }

    #[test]
    fn the_public_set_has_each_kid_once_and_no_private_material() {
        let current = KeyVersion {
            signing: stub("b"),
            next: Some(stub("c")),
        };
        let previous = KeyVersion {
            signing: stub("a"),
            next: Some(stub("b")),
        };
        let published = PublicKeys::of_versions([&current, &previous]);
        let kids: Vec<&str> = published.keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["b", "c", "a"]);
        let json = published.to_json().unwrap();
        assert!(!json.contains("PRIVATE") && !json.contains("\"d\""), "{json}");
        assert_eq!(PublicKeys::from_json(&json), Some(published));
    }

    #[test]
    fn an_empty_or_foreign_public_set_is_no_key_set() {
        assert!(PublicKeys::from_json(r#"{"keys":[]}"#).is_none());
        assert!(PublicKeys::from_json("placeholder").is_none());
        let foreign = r#"{"keys":[{"kty":"oct","use":"sig","alg":"HS256","kid":"x","n":"","e":""}]}"#;
        assert!(PublicKeys::from_json(foreign).is_none());
    }

    #[test]
    fn a_public_key_set_verifies_but_cannot_sign() {
        let version = KeyVersion::successor(None).unwrap();
        let signer = KeySet::from_materials(Some(&version.signing), &[], 0);
        assert_eq!(signer.signer().unwrap().kid, version.signing.kid);
        let public = KeySet::from_jwks(&PublicKeys::of_versions([&version]).keys, 0);
        assert_eq!(public.signer().err().map(|e| e.status()), Some(503));
        assert!(public.verifier(&version.signing.kid).is_some());
        assert!(public.verifier(&version.next.unwrap().kid).is_some());
        assert!(public.verifier("unknown").is_none());
        assert_eq!(public.jwks().len(), 2);
    }

    #[test]
    fn key_set_signs_with_current_and_publishes_all_once() {
        let current = KeyMaterial::generate().unwrap();
        let previous = KeyMaterial::generate().unwrap();
        let set = KeySet::from_materials(Some(&current), &[previous.clone(), current.clone()], 0);
        assert_eq!(set.signer().unwrap().kid, current.kid);
        assert_eq!(set.jwks().len(), 2);
        assert!(set.verifier(&previous.kid).is_some());
        assert!(set.verifier("unknown").is_none());
    }

    #[test]
    fn key_set_without_current_cannot_sign() {
        let set = KeySet::from_materials(None, &[], 0);
        assert_eq!(set.signer().err().map(|e| e.status()), Some(503));
    }
}
