//! Signing keys from Secrets Manager: one RSA key per secret version, cached in memory, published as a JWKS.

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
use crate::{secret, Error};

/// The version stages that verify, in the order they are published. AWSCURRENT also signs.
pub const STAGES: [&str; 3] = ["AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"];

/// An unknown `kid` triggers a reload at most this often, so forged kids cannot hammer Secrets Manager.
const UNKNOWN_KID_RELOAD_SECONDS: i64 = 30;

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

    /// The JSON stored as the secret string.
    pub fn to_secret_string(&self) -> Result<String, Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            kid: &'a str,
            alg: &'a str,
            private_key_pem: &'a str,
            n: &'a str,
            e: &'a str,
        }
        serde_json::to_string(&Wire {
            kid: &self.kid,
            alg: &self.alg,
            private_key_pem: self.private_key_pem.expose_secret(),
            n: &self.n,
            e: &self.e,
        })
        .map_err(|e| Error::dependency("encoding key material", e))
    }

    /// Parses a secret string; `None` when it is not keygate key material.
    pub fn from_secret_string(raw: &str) -> Option<Self> {
        serde_json::from_str::<Self>(raw).ok().filter(|k| k.alg == "RS256")
    }

    /// The public half as a JWK.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "RSA",
            key_use: "sig",
            alg: "RS256",
            kid: self.kid.clone(),
            n: self.n.clone(),
            e: self.e.clone(),
        }
    }
}

/// RFC 7638 JWK thumbprint of an RSA public key.
fn thumbprint(n: &str, e: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A public key in JWKS form.
#[derive(Debug, Clone, Serialize)]
pub struct Jwk {
    /// Key type.
    pub kty: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub key_use: &'static str,
    /// Algorithm.
    pub alg: &'static str,
    /// Key id.
    pub kid: String,
    /// Modulus.
    pub n: String,
    /// Exponent.
    pub e: String,
}

/// The key that signs new tokens.
pub struct Signer {
    /// Its key id, put in every JWT header.
    pub kid: String,
    /// The private key.
    pub encoding: EncodingKey,
}

/// The keys loaded from one read of the secret.
pub struct KeySet {
    signer: Option<Signer>,
    verifiers: Vec<(String, DecodingKey)>,
    jwks: Vec<Jwk>,
    loaded_at: UnixTime,
    /// Whether every stage was read, or AWSCURRENT alone.
    complete: bool,
}

impl KeySet {
    /// Builds a key set from the materials of the stages that exist, AWSCURRENT first.
    pub fn from_materials(current: Option<&KeyMaterial>, others: &[KeyMaterial], loaded_at: UnixTime) -> Self {
        let signer = current.and_then(|m| {
            EncodingKey::from_rsa_pem(m.private_key_pem.expose_secret().as_bytes())
                .map_err(|e| tracing::error!(kid = %m.kid, error = %e, "AWSCURRENT key does not parse"))
                .ok()
                .map(|encoding| Signer {
                    kid: m.kid.clone(),
                    encoding,
                })
        });
        let mut verifiers = Vec::new();
        let mut jwks = Vec::new();
        for material in current.into_iter().chain(others) {
            if verifiers.iter().any(|(kid, _)| kid == &material.kid) {
                continue;
            }
            if let Ok(key) = DecodingKey::from_rsa_components(&material.n, &material.e) {
                verifiers.push((material.kid.clone(), key));
                jwks.push(material.jwk());
            }
        }
        Self {
            signer,
            verifiers,
            jwks,
            loaded_at,
            complete: true,
        }
    }

    fn partial(self) -> Self {
        Self {
            complete: false,
            ..self
        }
    }

    /// The signing key, or 503 when the secret has no usable AWSCURRENT.
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

/// Reads the key secret and caches it, so a warm request makes no Secrets Manager call.
pub struct KeyStore {
    client: SecretsClient,
    secret_id: String,
    ttl: i64,
    cache: Mutex<Option<Arc<KeySet>>>,
}

impl KeyStore {
    /// A store that reads `secret_id` lazily, on the first request that needs keys.
    pub fn new(client: SecretsClient, secret_id: String, ttl: i64) -> Self {
        Self {
            client,
            secret_id,
            ttl,
            cache: Mutex::new(None),
        }
    }

    /// A key set that can sign. A cold process reads only AWSCURRENT: one Secrets Manager call, not three.
    pub async fn signing(&self, now: UnixTime) -> Result<Arc<KeySet>, Error> {
        self.fetch(now, Need::Signing).await
    }

    /// Every published key (AWSCURRENT, AWSPREVIOUS, AWSPENDING), for the JWKS.
    pub async fn get(&self, now: UnixTime) -> Result<Arc<KeySet>, Error> {
        self.fetch(now, Need::All).await
    }

    /// A key set that can verify a token naming `kid`. Tokens signed by AWSCURRENT need only it; any other kid
    /// loads every stage, and an unknown kid reloads them at most every 30 seconds, since after a rotation
    /// another function may sign with a key this process has not seen yet.
    pub async fn get_for_kid(&self, kid: Option<&str>, now: UnixTime) -> Result<Arc<KeySet>, Error> {
        match kid {
            Some(kid) => self.fetch(now, Need::Kid(kid)).await,
            None => self.fetch(now, Need::Signing).await,
        }
    }

    async fn fetch(&self, now: UnixTime, need: Need<'_>) -> Result<Arc<KeySet>, Error> {
        let mut cache = self.cache.lock().await;
        let cached = cache.as_ref().filter(|k| now - k.loaded_at < self.ttl).cloned();
        if let Some(keys) = &cached {
            let satisfied = match need {
                Need::Signing => true,
                Need::All => keys.complete,
                Need::Kid(kid) => {
                    keys.verifier(kid).is_some() || (keys.complete && now - keys.loaded_at < UNKNOWN_KID_RELOAD_SECONDS)
                }
            };
            if satisfied {
                return Ok(Arc::clone(keys));
            }
        }
        // A cold process starts with AWSCURRENT alone unless it already knows it needs more.
        let mut complete = cached.is_some() || matches!(need, Need::All);
        loop {
            let loaded = match self.load(now, complete).await {
                Ok(keys) => Arc::new(keys),
                // A stale key set beats an outage: keys rotate rarely and old ones keep verifying.
                Err(err) => match cache.as_ref() {
                    Some(stale) => {
                        tracing::warn!(error = ?err, "reloading signing keys failed; serving the cached set");
                        return Ok(Arc::clone(stale));
                    }
                    None => return Err(err),
                },
            };
            *cache = Some(Arc::clone(&loaded));
            let missing_kid = matches!(need, Need::Kid(kid) if loaded.verifier(kid).is_none());
            if complete || !missing_kid {
                return Ok(loaded);
            }
            complete = true;
        }
    }

    async fn load(&self, now: UnixTime, complete: bool) -> Result<KeySet, Error> {
        if !complete {
            let current = fetch_stage(&self.client, &self.secret_id, "AWSCURRENT", None).await?;
            return Ok(KeySet::from_materials(current.as_ref(), &[], now).partial());
        }
        let (current, previous, pending) = tokio::join!(
            fetch_stage(&self.client, &self.secret_id, "AWSCURRENT", None),
            fetch_stage(&self.client, &self.secret_id, "AWSPREVIOUS", None),
            fetch_stage(&self.client, &self.secret_id, "AWSPENDING", None),
        );
        let others: Vec<KeyMaterial> = [previous?, pending?].into_iter().flatten().collect();
        Ok(KeySet::from_materials(current?.as_ref(), &others, now))
    }
}

/// What a caller needs from the key set.
#[derive(Clone, Copy)]
enum Need<'a> {
    Signing,
    All,
    Kid(&'a str),
}

/// Reads one stage (and optionally one version) of the key secret. `None` when it does not exist or is not
/// keygate key material (for example the placeholder a new secret starts with).
pub async fn fetch_stage(
    client: &SecretsClient,
    secret_id: &str,
    stage: &str,
    version_id: Option<&str>,
) -> Result<Option<KeyMaterial>, Error> {
    let result = client
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage(stage)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await;
    match result {
        Ok(output) => Ok(output.secret_string().and_then(KeyMaterial::from_secret_string)),
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

    #[test]
    fn material_round_trips_and_has_a_thumbprint_kid() {
        let material = KeyMaterial::generate().unwrap();
        let parsed = KeyMaterial::from_secret_string(&material.to_secret_string().unwrap()).unwrap();
        assert_eq!(parsed.kid, material.kid);
        assert_eq!(parsed.kid, thumbprint(&parsed.n, &parsed.e));
        assert_eq!(
            parsed.private_key_pem.expose_secret(),
            material.private_key_pem.expose_secret()
        );
        assert!(!format!("{material:?}").contains("PRIVATE"));
    }

    #[test]
    fn placeholder_secrets_are_not_key_material() {
        assert!(KeyMaterial::from_secret_string("hunter2-random-password").is_none());
        assert!(KeyMaterial::from_secret_string("{}").is_none());
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
