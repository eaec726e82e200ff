//! The data key that protects second-factor secrets at rest. It lives in its own Secrets Manager secret, created
//! by the stack (`SecondFactorKeySecret` in template.yaml), and is cached in memory like the signing keys. From it
//! come two keys: an AES-256-GCM key that encrypts TOTP secrets (the user id as associated data, so a ciphertext
//! copied to another account does not open), and an HMAC-SHA256 key that hashes backup codes, so a table dump
//! can neither read a secret nor test guesses offline.
//!
//! The secret is `{"version": N, "key": "<random text>", "retired": {"<version>": "<key>", ...}}`. Everything
//! sealed or hashed records the version it used; to rotate, put a new version and key and move the old one into
//! `retired`, so what it protected still opens.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::{hkdf, hmac};
use aws_sdk_secretsmanager::Client as SecretsClient;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::clock::UnixTime;
use crate::state::LazyClient;
use crate::Error;

/// After a failed reload, a cached key set is served this long before the next attempt; and a stored secret that
/// names a version the cache lacks (just rotated in) reloads at most this often.
const RETRY_SECONDS: i64 = 30;
/// Shortest accepted key text: the stack generates 64 characters.
const MIN_KEY_CHARS: usize = 32;

/// The secret's JSON form.
#[derive(Deserialize)]
struct Document {
    version: u32,
    key: SecretString,
    #[serde(default)]
    retired: HashMap<String, SecretString>,
}

/// The keys derived from one version of the data key.
struct Derived {
    aead: RandomizedNonceKey,
    mac: hmac::Key,
    fake_credentials: [u8; 32],
}

/// Every usable version of the data key, and which one new secrets use.
pub struct DataKeys {
    current: u32,
    versions: HashMap<u32, Derived>,
    loaded_at: UnixTime,
}

/// Something sealed under a version of the data key: `nonce ‖ ciphertext ‖ tag`, base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The data key version that sealed it.
    pub version: u32,
    /// The sealed bytes, base64url.
    pub ciphertext: String,
}

fn unusable(reason: &'static str) -> Error {
    Error::dependency("second-factor data key", std::io::Error::other(reason))
}

fn derive(key: &SecretString) -> Result<Derived, Error> {
    if key.expose_secret().chars().count() < MIN_KEY_CHARS {
        return Err(unusable("a key is shorter than 32 characters"));
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"keygate second factors").extract(key.expose_secret().as_bytes());
    let mut aead_key = [0u8; 32];
    let mut mac_key = [0u8; 32];
    let mut fake_credentials = [0u8; 32];
    for (info, out) in [
        (&b"totp secret encryption"[..], &mut aead_key),
        (&b"backup code hashing"[..], &mut mac_key),
        (&b"fake passkey credential ids"[..], &mut fake_credentials),
    ] {
        prk.expand(&[info], hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(out))
            .map_err(|_| unusable("deriving a key failed"))?;
    }
    Ok(Derived {
        aead: RandomizedNonceKey::new(&AES_256_GCM, &aead_key).map_err(|_| unusable("a bad AES key"))?,
        mac: hmac::Key::new(hmac::HMAC_SHA256, &mac_key),
        fake_credentials,
    })
}

impl DataKeys {
    /// Parses the secret's JSON. A malformed secret, or a key too short to be one the stack made, is an error.
    pub fn from_secret_string(raw: &str, loaded_at: UnixTime) -> Result<Self, Error> {
        let document: Document =
            serde_json::from_str(raw).map_err(|_| unusable("the secret is not {\"version\", \"key\"} JSON"))?;
        let mut versions = HashMap::new();
        for (version, key) in &document.retired {
            let version: u32 = version
                .parse()
                .map_err(|_| unusable("a retired version is not a number"))?;
            versions.insert(version, derive(key)?);
        }
        versions.insert(document.version, derive(&document.key)?);
        Ok(Self {
            current: document.version,
            versions,
            loaded_at,
        })
    }

    fn version(&self, version: u32) -> Result<&Derived, Error> {
        self.versions
            .get(&version)
            .ok_or_else(|| unusable("a stored secret names a data key version the secret no longer holds"))
    }

    /// Whether every version in `versions` is here.
    pub fn has_versions(&self, versions: &[u32]) -> bool {
        versions.iter().all(|v| self.versions.contains_key(v))
    }

    /// The version new secrets are sealed and hashed with.
    pub fn current_version(&self) -> u32 {
        self.current
    }

    /// Seals `plaintext` with the current version, bound to `context` (the owner's user id).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Sealed, Error> {
        let key = self.version(self.current)?;
        let mut in_out = plaintext.to_vec();
        let nonce = key
            .aead
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| unusable("sealing failed"))?;
        let mut sealed = nonce.as_ref().to_vec();
        sealed.extend_from_slice(&in_out);
        Ok(Sealed {
            version: self.current,
            ciphertext: URL_SAFE_NO_PAD.encode(sealed),
        })
    }

    /// Opens what [`DataKeys::seal`] sealed for the same `context`. Anything else (another context, a changed
    /// byte, a retired-and-dropped version) is an error, never a wrong plaintext.
    pub fn open(&self, sealed: &Sealed, context: &str) -> Result<Vec<u8>, Error> {
        let key = self.version(sealed.version)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(&sealed.ciphertext)
            .map_err(|_| unusable("a sealed secret is not base64url"))?;
        if bytes.len() < NONCE_LEN {
            return Err(unusable("a sealed secret is too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unusable("a bad nonce"))?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = key
            .aead
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| unusable("a sealed secret does not open"))?;
        Ok(plaintext.to_vec())
    }

    /// The key that derives believable credential ids for an address with no passkey (current version).
    pub fn fake_credential_key(&self) -> Result<[u8; 32], Error> {
        Ok(self.version(self.current)?.fake_credentials)
    }

    /// The keyed hash of `data` under `version`, base64url.
    pub fn mac(&self, version: u32, data: &[u8]) -> Result<String, Error> {
        let key = self.version(version)?;
        Ok(URL_SAFE_NO_PAD.encode(hmac::sign(&key.mac, data).as_ref()))
    }
}

struct Cached {
    keys: Arc<DataKeys>,
    retry_at: UnixTime,
}

/// Reads the data key lazily and caches it, so a warm request makes no Secrets Manager call.
pub struct DataKeyStore {
    client: Arc<LazyClient<SecretsClient>>,
    secret_id: String,
    ttl: i64,
    cache: Mutex<Option<Cached>>,
}

impl DataKeyStore {
    /// A store that reads `secret_id` when first needed and again after `ttl` seconds.
    pub fn new(client: Arc<LazyClient<SecretsClient>>, secret_id: String, ttl: i64) -> Self {
        Self {
            client,
            secret_id,
            ttl,
            cache: Mutex::new(None),
        }
    }

    /// The data keys: one GetSecretValue when the cache is cold or old. A failed reload serves the cached keys
    /// (they change rarely, and retired versions stay in the secret).
    pub async fn get(&self, now: UnixTime) -> Result<Arc<DataKeys>, Error> {
        self.get_with(&[], now).await
    }

    /// The data keys, holding every version in `versions` if the secret does: a version the cache lacks (a key
    /// rotated in since the cache was filled) reloads the secret, at most every 30 seconds, so that a rotation
    /// never strands a warm function.
    pub async fn get_with(&self, versions: &[u32], now: UnixTime) -> Result<Arc<DataKeys>, Error> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref() {
            let fresh = now - cached.keys.loaded_at < self.ttl;
            let complete = cached.keys.has_versions(versions) || now - cached.keys.loaded_at < RETRY_SECONDS;
            if (fresh && complete) || now < cached.retry_at {
                return Ok(Arc::clone(&cached.keys));
            }
        }
        let loaded = crate::keys::secret_string(self.client.get(), &self.secret_id, "AWSCURRENT", None)
            .await
            .and_then(|raw| {
                let raw = raw.ok_or_else(|| unusable("the second-factor key secret does not exist"))?;
                DataKeys::from_secret_string(raw.expose_secret(), now)
            });
        match (loaded, cache.as_mut()) {
            (Ok(keys), _) => {
                let keys = Arc::new(keys);
                *cache = Some(Cached {
                    keys: Arc::clone(&keys),
                    retry_at: now,
                });
                Ok(keys)
            }
            (Err(err), Some(stale)) => {
                tracing::warn!(error = ?err, "reloading the second-factor data key failed; serving the cached one");
                stale.retry_at = now + RETRY_SECONDS;
                Ok(Arc::clone(&stale.keys))
            }
            (Err(err), None) => Err(err),
        }
    }
}

/// A new secret document for `keygate-local setup` (the stack generates its own in AWS).
pub fn new_secret_string() -> String {
    serde_json::json!({ "version": 1, "key": crate::secret::random_b64(48) }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_1: &str = "k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1";
    const KEY_2: &str = "k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2";

    fn keys(raw: &str) -> DataKeys {
        DataKeys::from_secret_string(raw, 0).unwrap()
    }

    #[test]
    fn seals_and_opens_only_for_the_same_owner() {
        let keys = keys(&format!(r#"{{"version":1,"key":"{KEY_1}"}}"#));
        let sealed = keys.seal(b"twenty bytes secret!", "user-a").unwrap();
        assert_eq!(sealed.version, 1);
        assert!(!sealed.ciphertext.contains("twenty"));
        assert_eq!(keys.open(&sealed, "user-a").unwrap(), b"twenty bytes secret!");
        assert!(keys.open(&sealed, "user-b").is_err());
        let again = keys.seal(b"twenty bytes secret!", "user-a").unwrap();
        assert_ne!(again.ciphertext, sealed.ciphertext, "each seal has a fresh nonce");
        let mut tampered = sealed.clone();
        tampered
            .ciphertext
            .replace_range(20..21, if &sealed.ciphertext[20..21] == "A" { "B" } else { "A" });
        assert!(keys.open(&tampered, "user-a").is_err());
    }

    #[test]
    fn a_rotated_key_still_opens_and_hashes_what_the_old_one_protected() {
        let old = keys(&format!(r#"{{"version":1,"key":"{KEY_1}"}}"#));
        let sealed = old.seal(b"secret", "u").unwrap();
        let hash = old.mac(1, b"code").unwrap();
        let rotated = keys(&format!(
            r#"{{"version":2,"key":"{KEY_2}","retired":{{"1":"{KEY_1}"}}}}"#
        ));
        assert_eq!(rotated.current_version(), 2);
        assert_eq!(rotated.open(&sealed, "u").unwrap(), b"secret");
        assert_eq!(rotated.mac(1, b"code").unwrap(), hash);
        assert_ne!(rotated.mac(2, b"code").unwrap(), hash);
        let dropped = keys(&format!(r#"{{"version":2,"key":"{KEY_2}"}}"#));
        assert!(dropped.open(&sealed, "u").is_err());
    }

    #[test]
    fn refuses_malformed_or_weak_secrets() {
        for raw in ["", "{}", r#"{"version":1}"#, r#"{"version":1,"key":"short"}"#, "[]"] {
            assert!(DataKeys::from_secret_string(raw, 0).is_err(), "{raw}");
        }
        assert!(DataKeys::from_secret_string(&new_secret_string(), 0).is_ok());
    }
}
