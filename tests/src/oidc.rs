//! A local OpenID issuer for the federation tests: discovery, a JWKS, an authorization and a token endpoint.
//!
//! One [`OidcIssuer`] on 127.0.0.1 stands in for Google (point `google_jwks_url` at [`OidcIssuer::jwks_url`]) and
//! for Microsoft Entra ID with any number of tenants (`tid`s): its issuer is `<base>/{tenantid}/v2.0`, the
//! template an Entra configuration entry names (see [`OidcIssuer::entra_entry`]). It signs with RSA keys made at
//! spawn, and keeps one key it never publishes, for unknown-`kid` tests.
//!
//! The code flow is the real one over HTTP: keygate's authorization URL is fetched from `GET /authorize`, which
//! checks it and answers in place of a sign-in page; [`OidcIssuer::sign_in`] then plays the user and returns the
//! one-time code and the `state`, as the redirect would carry them; keygate redeems the code at `POST /token` with
//! the client secret and the PKCE verifier, and gets an ID token for the user.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keygate::clock::{Clock, UnixTime};
use keygate::keys::KeyMaterial;
use keygate::oauth::form::{basic_credentials, Form};
use keygate::State;
use secrecy::ExposeSecret as _;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

/// The Google client id (`aud`) of Google tokens; tests configure `google_client_ids` with it.
pub const GOOGLE_CLIENT_ID: &str = "keygate-tests.apps.googleusercontent.com";
/// The issuer of Google tokens.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// The application (client) id of the Entra entries [`OidcIssuer::entra_entry`] makes: the `aud` of Entra tokens.
pub const ENTRA_CLIENT_ID: &str = "6f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f";
/// The client secret the token endpoint expects with [`ENTRA_CLIENT_ID`].
pub const ENTRA_CLIENT_SECRET: &str = "entra-test-secret~not-a-real-one";
/// A redirect URI for entries and authorization requests.
pub const REDIRECT_URI: &str = "https://app.example.com/sso/callback";
/// How long a code is good for.
pub const CODE_LIFETIME_SECONDS: i64 = 600;

const MAX_BODY_BYTES: usize = 64 * 1024;

/// One request `GET /authorize` received.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The query parameters (empty ones dropped).
    pub params: BTreeMap<String, String>,
    /// Why it was refused, if it was.
    pub error: Option<String>,
}

impl AuthorizeRequest {
    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// One request `POST /token` received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The form parameters (empty ones dropped), the client secret included when it came in the form.
    pub params: BTreeMap<String, String>,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub client_auth: String,
    /// The OAuth error answered (`invalid_grant`, `invalid_client`, ...), or `None` when tokens were issued.
    pub error: Option<String>,
}

impl TokenRequest {
    /// A form parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

struct Key {
    material: KeyMaterial,
    encoding: EncodingKey,
}

impl Key {
    fn generate() -> Self {
        let material = KeyMaterial::generate().unwrap();
        let encoding = EncodingKey::from_rsa_pem(material.private_key_pem.expose_secret().as_bytes()).unwrap();
        Self { material, encoding }
    }

    /// The SPKI PEM of the public key: what an algorithm-confusion attack uses as an HMAC secret.
    fn public_pem(&self) -> String {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        use rsa::pkcs8::EncodePublicKey as _;
        rsa::RsaPrivateKey::from_pkcs1_pem(self.material.private_key_pem.expose_secret())
            .unwrap()
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
    }
}

struct KeyRing {
    /// Every key that can sign, with whether `/jwks` publishes it.
    keys: Vec<(Arc<Key>, bool)>,
    /// The index of the key that signs when no `kid` is asked for.
    current: usize,
}

/// A code issued by a sign-in, until redeemed.
struct Grant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    tid: String,
    claims: Value,
    issued_at: UnixTime,
    used: bool,
}

struct Inner {
    base: String,
    ring: Mutex<KeyRing>,
    unpublished_kid: String,
    own_clock: Clock,
    followed: Mutex<Option<Arc<State>>>,
    pending: Mutex<HashMap<String, BTreeMap<String, String>>>,
    grants: Mutex<HashMap<String, Grant>>,
    authorize_requests: Mutex<Vec<AuthorizeRequest>>,
    token_requests: Mutex<Vec<TokenRequest>>,
    jwks_requests: AtomicUsize,
}

/// A local OpenID issuer on 127.0.0.1, acting as Google and as Entra ID; it serves until the test's runtime ends.
#[derive(Clone)]
pub struct OidcIssuer {
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub base: String,
    inner: Arc<Inner>,
}

impl OidcIssuer {
    /// Makes a published signing key and an unpublished one, and serves on a free port.
    pub async fn spawn() -> Self {
        let (signing, unpublished) = tokio::task::spawn_blocking(|| (Key::generate(), Key::generate()))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let unpublished_kid = unpublished.material.kid.clone();
        let inner = Arc::new(Inner {
            base: base.clone(),
            ring: Mutex::new(KeyRing {
                keys: vec![(Arc::new(signing), true), (Arc::new(unpublished), false)],
                current: 0,
            }),
            unpublished_kid,
            own_clock: Clock::system(),
            followed: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            grants: Mutex::new(HashMap::new()),
            authorize_requests: Mutex::new(Vec::new()),
            token_requests: Mutex::new(Vec::new()),
            jwks_requests: AtomicUsize::new(0),
        });
        tokio::spawn(serve(listener, Arc::clone(&inner)));
        Self { base, inner }
    }

    /// `<base>/jwks`: the JWKS URL, for `google_jwks_url` and the Entra entries.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base)
    }

    /// `<base>/{tenantid}/v2.0`: the Entra issuer template.
    pub fn issuer_template(&self) -> String {
        format!("{}/{{tenantid}}/v2.0", self.base)
    }

    /// `<base>/<tid>/v2.0`: the issuer of tenant `tid`'s tokens.
    pub fn entra_issuer(&self, tid: &str) -> String {
        format!("{}/{tid}/v2.0", self.base)
    }

    /// `<base>/authorize`.
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/authorize", self.base)
    }

    /// `<base>/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.base)
    }

    /// Tokens are stamped with this app's clock from now on (tests that move `app.state.clock`), not the wall
    /// clock.
    pub fn follow_clock(&self, state: &Arc<State>) {
        *self.inner.followed.lock().unwrap() = Some(Arc::clone(state));
    }

    /// The issuer's idea of now: the followed app's clock, or the wall clock.
    pub fn now(&self) -> UnixTime {
        self.inner.now()
    }

    /// The `kid` of the key that signs by default.
    pub fn kid(&self) -> String {
        let ring = self.inner.ring.lock().unwrap();
        ring.keys[ring.current].0.material.kid.clone()
    }

    /// The `kid` of a key that signs (with [`OidcIssuer::sign`]) but is never in the JWKS.
    pub fn unpublished_kid(&self) -> String {
        self.inner.unpublished_kid.clone()
    }

    /// The `kid`s `/jwks` publishes now.
    pub fn published_kids(&self) -> Vec<String> {
        let ring = self.inner.ring.lock().unwrap();
        ring.keys
            .iter()
            .filter(|(_, published)| *published)
            .map(|(key, _)| key.material.kid.clone())
            .collect()
    }

    /// Makes a new key, publishes it next to the others, and signs with it from now on: its `kid`.
    pub async fn rotate(&self) -> String {
        let key = tokio::task::spawn_blocking(Key::generate).await.unwrap();
        let kid = key.material.kid.clone();
        let mut ring = self.inner.ring.lock().unwrap();
        ring.keys.push((Arc::new(key), true));
        ring.current = ring.keys.len() - 1;
        kid
    }

    /// Stops publishing the key `kid` (it still signs when asked for by `kid`).
    pub fn unpublish(&self, kid: &str) {
        let mut ring = self.inner.ring.lock().unwrap();
        for (key, published) in &mut ring.keys {
            if key.material.kid == kid {
                *published = false;
            }
        }
    }

    /// How many times `/jwks` was fetched.
    pub fn jwks_requests(&self) -> usize {
        self.inner.jwks_requests.load(Ordering::SeqCst)
    }

    /// The SPKI PEM of the default key's public half: the secret of an HS256 algorithm-confusion forgery.
    pub fn public_key_pem(&self) -> String {
        self.inner.current_key().public_pem()
    }

    /// Google's claims: `iss` [`GOOGLE_ISSUER`], `aud` and `azp` [`GOOGLE_CLIENT_ID`], a random numeric `sub`, a
    /// fresh `email` with `email_verified: true`, `iat` now and `exp` an hour later; `overrides` replace or add
    /// claims, and a claim set to `null` is removed.
    pub fn google_claims(&self, overrides: Value) -> Value {
        self.inner.google_claims(overrides)
    }

    /// A Google ID token with [`OidcIssuer::google_claims`], signed by the default key.
    pub fn google_token(&self, claims: Value) -> String {
        self.inner.sign_default(&self.inner.google_claims(claims))
    }

    /// Entra's claims for a user of tenant `tid`: `ver` 2.0, `iss` `<base>/<tid>/v2.0`, `aud` [`ENTRA_CLIENT_ID`],
    /// `tid`, a random `oid` (a UUID) and `sub`, a fresh `email` and the same `preferred_username`, `iat` and
    /// `nbf` now, `exp` an hour later; `overrides` replace or add claims (an `email` alone sets
    /// `preferred_username` too), and a claim set to `null` is removed. Pass the same `oid` to be the same user.
    pub fn entra_claims(&self, tid: &str, overrides: Value) -> Value {
        self.inner.entra_claims(tid, overrides)
    }

    /// An Entra ID token of tenant `tid` with [`OidcIssuer::entra_claims`], signed by the default key.
    pub fn entra_token(&self, tid: &str, claims: Value) -> String {
        self.inner.sign_default(&self.inner.entra_claims(tid, claims))
    }

    /// Signs `claims` exactly as given (no defaults) under `header`. RS256 (and the other RSA algorithms) sign
    /// with the key whose `kid` the header names: a published one, [`OidcIssuer::unpublished_kid`], or, for any
    /// other `kid`, the default key (a valid signature under a `kid` nobody publishes); without a `kid`, the
    /// default key and its `kid`. HS256/384/512 use [`OidcIssuer::public_key_pem`] as the HMAC secret.
    pub fn sign(&self, header: Header, claims: &Value) -> String {
        self.inner.sign(header, claims)
    }

    /// `claims` under an RS256 header whose `kid` is the unpublished key's, signed by that key.
    pub fn sign_unpublished(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.unpublished_kid());
        self.sign(header, claims)
    }

    /// `claims` as HS256 with the default key's `kid`, keyed with the public key's PEM (algorithm confusion).
    pub fn sign_hs256(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid());
        self.sign(header, claims)
    }

    /// An unsecured JWT: `{"alg":"none","typ":"JWT","kid":<default kid>}`, the claims, and an empty signature.
    pub fn unsigned(&self, claims: &Value) -> String {
        let header = json!({ "alg": "none", "typ": "JWT", "kid": self.kid() });
        format!("{}.{}.", B64.encode(header.to_string()), B64.encode(claims.to_string()))
    }

    /// An `entra` configuration entry pointing at this issuer, with [`ENTRA_CLIENT_ID`], [`ENTRA_CLIENT_SECRET`]
    /// and `default_role: "backend"`.
    pub fn entra_entry(
        &self,
        id: &str,
        tenant_id: &str,
        domains: &[&str],
        allowed_tenants: &[&str],
        redirect_uri: &str,
    ) -> Value {
        json!({
            "id": id,
            "type": "entra",
            "tenant_id": tenant_id,
            "domains": domains,
            "default_role": "backend",
            "client_id": ENTRA_CLIENT_ID,
            "client_secret": ENTRA_CLIENT_SECRET,
            "allowed_tenants": allowed_tenants,
            "redirect_uri": redirect_uri,
            "issuer": self.issuer_template(),
            "jwks_uri": self.jwks_url(),
            "authorization_endpoint": self.authorization_endpoint(),
            "token_endpoint": self.token_endpoint(),
        })
    }

    /// Signs a user of tenant `tid` in at keygate's `authorization_url`: fetches it from `GET /authorize` (which
    /// checks it), then issues a one-time code bound to its client id, redirect URI, code challenge and nonce and
    /// to the user. Returns `(code, state)`, as the redirect to keygate would carry them. At `POST /token` the
    /// code gets an ID token of [`OidcIssuer::entra_claims`] for `tid`, with the request's `nonce` and
    /// `client_id` as `aud`, then `user_claims` (which may override those too, to make the IdP misbehave).
    /// Panics when `/authorize` refuses the URL.
    pub async fn sign_in(&self, authorization_url: &str, tid: &str, user_claims: Value) -> (String, String) {
        self.try_sign_in(authorization_url, tid, user_claims)
            .await
            .unwrap_or_else(|error| panic!("the IdP refused {authorization_url}: {error}"))
    }

    /// [`OidcIssuer::sign_in`], with `/authorize`'s refusal (`error: description`) as the error.
    pub async fn try_sign_in(
        &self,
        authorization_url: &str,
        tid: &str,
        user_claims: Value,
    ) -> Result<(String, String), String> {
        let endpoint = format!("{}?", self.authorization_endpoint());
        if !authorization_url.starts_with(&endpoint) {
            return Err(format!("not this issuer's authorization endpoint ({endpoint})"));
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = client.get(authorization_url).send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != 200 {
            return Err(format!(
                "{}: {}",
                body["error"].as_str().unwrap_or("?"),
                body["error_description"].as_str().unwrap_or("?")
            ));
        }
        let login = body["login"].as_str().ok_or("no login id")?;
        let params = self
            .inner
            .pending
            .lock()
            .unwrap()
            .remove(login)
            .ok_or("the login was not pending")?;
        let get = |name: &str| params.get(name).cloned().unwrap_or_default();
        let code = keygate::secret::random_b64(32);
        let grant = Grant {
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            code_challenge: get("code_challenge"),
            nonce: params.get("nonce").cloned(),
            tid: tid.to_owned(),
            claims: user_claims,
            issued_at: self.now(),
            used: false,
        };
        self.inner.grants.lock().unwrap().insert(code.clone(), grant);
        Ok((code, get("state")))
    }

    /// Every request `GET /authorize` received, oldest first.
    pub fn authorize_requests(&self) -> Vec<AuthorizeRequest> {
        self.inner.authorize_requests.lock().unwrap().clone()
    }

    /// Every request `POST /token` received, oldest first.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.inner.token_requests.lock().unwrap().clone()
    }

    /// How many requests `POST /token` received.
    pub fn token_request_count(&self) -> usize {
        self.inner.token_requests.lock().unwrap().len()
    }
}

/// An IdP configuration document: `{"idps": entries}`.
pub fn document(entries: &[Value]) -> Value {
    json!({ "idps": entries })
}

/// A random UUID (version 4), like an Entra `oid` or `tid`.
pub fn new_oid() -> String {
    let mut bytes = B64.decode(keygate::secret::random_b64(16)).unwrap();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A random PKCE verifier: 32 random bytes, base64url (43 characters).
pub fn pkce_verifier() -> String {
    keygate::secret::random_b64(32)
}

/// The S256 code challenge of `verifier`: base64url(SHA-256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

/// A Google-like numeric `sub`.
fn google_sub() -> String {
    B64.decode(keygate::secret::random_b64(10))
        .unwrap()
        .iter()
        .map(|b| format!("{:02}", b % 100))
        .collect::<String>()
        .trim_start_matches('0')
        .to_owned()
        + "1"
}

/// `defaults` with each claim of `overrides` replacing or adding one; a `null` removes it.
fn merge(defaults: Value, overrides: Value) -> Value {
    let mut claims: Map<String, Value> = match defaults {
        Value::Object(map) => map,
        other => panic!("claims must be an object, not {other}"),
    };
    match overrides {
        Value::Object(map) => {
            for (name, value) in map {
                if value.is_null() {
                    claims.remove(&name);
                } else {
                    claims.insert(name, value);
                }
            }
        }
        Value::Null => {}
        other => panic!("claim overrides must be an object, not {other}"),
    }
    Value::Object(claims)
}

impl Inner {
    fn google_claims(&self, overrides: Value) -> Value {
        let now = self.now();
        let defaults = json!({
            "iss": GOOGLE_ISSUER,
            "azp": GOOGLE_CLIENT_ID,
            "aud": GOOGLE_CLIENT_ID,
            "sub": google_sub(),
            "email": crate::unique_email(),
            "email_verified": true,
            "name": "Google User",
            "iat": now,
            "exp": now + 3600,
        });
        merge(defaults, overrides)
    }

    fn entra_claims(&self, tid: &str, overrides: Value) -> Value {
        let now = self.now();
        let email = overrides
            .get("email")
            .and_then(Value::as_str)
            .map_or_else(crate::unique_email, str::to_owned);
        let defaults = json!({
            "ver": "2.0",
            "iss": format!("{}/{tid}/v2.0", self.base),
            "aud": ENTRA_CLIENT_ID,
            "tid": tid,
            "oid": new_oid(),
            "sub": keygate::secret::random_b64(32),
            "email": email,
            "preferred_username": email,
            "name": "Entra User",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        });
        merge(defaults, overrides)
    }

    fn sign_default(&self, claims: &Value) -> String {
        self.sign(Header::new(Algorithm::RS256), claims)
    }

    fn sign(&self, mut header: Header, claims: &Value) -> String {
        match header.alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let secret = self.current_key().public_pem();
                jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => {
                let key = match header.kid.as_deref() {
                    Some(kid) => self.key(kid).unwrap_or_else(|| self.current_key()),
                    None => {
                        let key = self.current_key();
                        header.kid = Some(key.material.kid.clone());
                        key
                    }
                };
                jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
            }
            other => panic!("the issuer has no key for {other:?}"),
        }
    }

    fn now(&self) -> UnixTime {
        match self.followed.lock().unwrap().as_ref() {
            Some(state) => state.clock.now(),
            None => self.own_clock.now(),
        }
    }

    fn current_key(&self) -> Arc<Key> {
        let ring = self.ring.lock().unwrap();
        Arc::clone(&ring.keys[ring.current].0)
    }

    fn key(&self, kid: &str) -> Option<Arc<Key>> {
        let ring = self.ring.lock().unwrap();
        ring.keys
            .iter()
            .find(|(key, _)| key.material.kid == kid)
            .map(|(key, _)| Arc::clone(key))
    }

    fn jwks(&self) -> Value {
        let ring = self.ring.lock().unwrap();
        let keys: Vec<Value> = ring
            .keys
            .iter()
            .filter(|(_, published)| *published)
            .map(|(key, _)| {
                let jwk = key.material.jwk();
                json!({ "kty": jwk.kty, "use": jwk.key_use, "alg": jwk.alg, "kid": jwk.kid, "n": jwk.n, "e": jwk.e })
            })
            .collect();
        json!({ "keys": keys })
    }

    fn discovery(&self, issuer: &str) -> Value {
        json!({
            "issuer": issuer,
            "jwks_uri": format!("{}/jwks", self.base),
            "authorization_endpoint": format!("{}/authorize", self.base),
            "token_endpoint": format!("{}/token", self.base),
            "response_types_supported": ["code", "id_token", "code id_token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "tid", "oid", "email",
                "preferred_username", "name"],
        })
    }

    /// `GET /authorize`: checks an authorization-code request with PKCE and keeps it pending for `sign_in`.
    fn authorize(&self, query: &str) -> (u16, Value) {
        let (params, outcome) = match Form::parse(query.as_bytes()) {
            Ok(form) => {
                let params = form_params(query);
                let outcome = check_authorize(&form).map(|()| {
                    let login = keygate::secret::random_b64(16);
                    self.pending.lock().unwrap().insert(login.clone(), params.clone());
                    login
                });
                (params, outcome)
            }
            Err(_) => (BTreeMap::new(), Err("the query does not decode".to_owned())),
        };
        self.authorize_requests.lock().unwrap().push(AuthorizeRequest {
            params,
            error: outcome.as_ref().err().cloned(),
        });
        match outcome {
            // In place of a sign-in page: `sign_in` finishes the login by this id.
            Ok(login) => (200, json!({ "login": login })),
            Err(description) => (
                400,
                json!({ "error": "invalid_request", "error_description": description }),
            ),
        }
    }

    /// `POST /token`: redeems a code once, for the client that asked for it, with the verifier of its challenge.
    fn token(&self, content_type: Option<&str>, authorization: Option<&str>, body: &[u8]) -> (u16, Value) {
        let params = String::from_utf8(body.to_vec())
            .map(|body| form_params(&body))
            .unwrap_or_default();
        let client_auth = match (authorization, params.contains_key("client_secret")) {
            (Some(_), _) => "client_secret_basic",
            (None, true) => "client_secret_post",
            (None, false) => "none",
        };
        let outcome = self.redeem(content_type, authorization, body);
        self.token_requests.lock().unwrap().push(TokenRequest {
            params,
            client_auth: client_auth.to_owned(),
            error: outcome.as_ref().err().map(|(_, error, _)| (*error).to_owned()),
        });
        match outcome {
            Ok(id_token) => (
                200,
                json!({
                    "token_type": "Bearer",
                    "scope": "openid profile email",
                    "expires_in": 3600,
                    "access_token": "opaque",
                    "id_token": id_token,
                }),
            ),
            Err((status, error, description)) => (status, json!({ "error": error, "error_description": description })),
        }
    }

    fn redeem(
        &self,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<String, (u16, &'static str, String)> {
        let invalid_request = |description: &str| (400, "invalid_request", description.to_owned());
        let invalid_grant = |description: &str| (400, "invalid_grant", description.to_owned());
        if !content_type.is_some_and(keygate::oauth::form::is_form_content_type) {
            return Err(invalid_request("the body must be a form"));
        }
        let form = Form::parse(body).map_err(|_| invalid_request("the form does not decode"))?;
        let (client_id, client_secret) = match authorization.and_then(basic_credentials) {
            Some(Ok((id, secret))) => {
                if form.get("client_secret").is_some() {
                    return Err(invalid_request("more than one client authentication method"));
                }
                if form.get("client_id").is_some_and(|form_id| form_id != id) {
                    return Err(invalid_request("client_id differs from the Basic credentials"));
                }
                (id, secret.expose_secret().to_owned())
            }
            Some(Err(_)) => return Err((401, "invalid_client", "bad Basic credentials".to_owned())),
            None => (
                form.get("client_id").unwrap_or_default().to_owned(),
                form.get("client_secret").unwrap_or_default().to_owned(),
            ),
        };
        if client_id != ENTRA_CLIENT_ID || !keygate::secret::ct_eq(&client_secret, ENTRA_CLIENT_SECRET) {
            return Err((401, "invalid_client", "unknown client or wrong secret".to_owned()));
        }
        if form.get("grant_type") != Some("authorization_code") {
            return Err((400, "unsupported_grant_type", "only authorization_code".to_owned()));
        }
        let code = form.require("code").map_err(|_| invalid_request("code is required"))?;
        let verifier = form
            .require("code_verifier")
            .map_err(|_| invalid_request("code_verifier is required"))?;
        let mut grants = self.grants.lock().unwrap();
        let grant = grants.get_mut(code).ok_or_else(|| invalid_grant("unknown code"))?;
        // A code is spent by its first presentation, whatever comes of it.
        if std::mem::replace(&mut grant.used, true) {
            return Err(invalid_grant("the code was already redeemed"));
        }
        if self.now() > grant.issued_at + CODE_LIFETIME_SECONDS {
            return Err(invalid_grant("the code expired"));
        }
        if grant.client_id != client_id {
            return Err(invalid_grant("the code was issued to another client"));
        }
        if form.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
            return Err(invalid_grant("redirect_uri differs from the authorization request's"));
        }
        if !valid_verifier(verifier) || pkce_challenge(verifier) != grant.code_challenge {
            return Err(invalid_grant("code_verifier does not match the code_challenge"));
        }
        let mut claims = json!({ "aud": grant.client_id });
        if let Some(nonce) = &grant.nonce {
            claims["nonce"] = json!(nonce);
        }
        let (tid, user) = (grant.tid.clone(), grant.claims.clone());
        drop(grants);
        Ok(self.sign_default(&self.entra_claims(&tid, merge(claims, user))))
    }
}

/// The checks of an authorization request: the code flow with PKCE S256, for the known client.
fn check_authorize(form: &Form) -> Result<(), String> {
    if form.get("response_type") != Some("code") {
        return Err("response_type must be code".to_owned());
    }
    if form.get("client_id") != Some(ENTRA_CLIENT_ID) {
        return Err("unknown client_id".to_owned());
    }
    if form.get("redirect_uri").is_none() {
        return Err("redirect_uri is required".to_owned());
    }
    if !form
        .get("scope")
        .is_some_and(|scope| scope.split(' ').any(|s| s == "openid"))
    {
        return Err("scope must include openid".to_owned());
    }
    if form.get("code_challenge_method") != Some("S256") {
        return Err("code_challenge_method must be S256".to_owned());
    }
    if !form
        .get("code_challenge")
        .is_some_and(|c| keygate::secret::is_b64_of_len(c, 32))
    {
        return Err("code_challenge must be a base64url SHA-256".to_owned());
    }
    if form.get("state").is_none() {
        return Err("state is required".to_owned());
    }
    if form.get("nonce").is_none() {
        return Err("nonce is required".to_owned());
    }
    Ok(())
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The parameters of a query or form, for the record (undecodable ones skipped).
fn form_params(raw: &str) -> BTreeMap<String, String> {
    raw.split('&')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = keygate::oauth::form::decode(name.as_bytes()).ok()?;
            let value = keygate::oauth::form::decode(value.as_bytes()).ok()?;
            (!value.is_empty()).then_some((name, value))
        })
        .collect()
}

async fn serve(listener: tokio::net::TcpListener, inner: Arc<Inner>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let inner = Arc::clone(&inner);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let inner = Arc::clone(&inner);
                async move { Ok::<_, Infallible>(route(&inner, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(inner: &Arc<Inner>, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let path = parts.uri.path();
    let (status, body) = match (parts.method.as_str(), path) {
        ("GET", "/jwks") => {
            inner.jwks_requests.fetch_add(1, Ordering::SeqCst);
            (200, inner.jwks())
        }
        ("GET", "/.well-known/openid-configuration") => {
            (200, inner.discovery(&format!("{}/{{tenantid}}/v2.0", inner.base)))
        }
        ("GET", "/authorize") => inner.authorize(parts.uri.query().unwrap_or("")),
        ("POST", "/token") => match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(body) => inner.token(
                header("content-type").as_deref(),
                header("authorization").as_deref(),
                &body.to_bytes(),
            ),
            Err(_) => (413, json!({ "error": "invalid_request" })),
        },
        ("GET", _) => match path
            .strip_prefix('/')
            .and_then(|p| p.strip_suffix("/v2.0/.well-known/openid-configuration"))
        {
            Some(tid) if !tid.is_empty() && !tid.contains('/') => {
                (200, inner.discovery(&format!("{}/{tid}/v2.0", inner.base)))
            }
            _ => (404, json!({ "error": "not_found" })),
        },
        _ => (404, json!({ "error": "not_found" })),
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    headers.insert("cache-control", hyper::header::HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization_url(issuer: &OidcIssuer, challenge: &str, method: &str) -> String {
        format!(
            "{}?client_id={ENTRA_CLIENT_ID}&response_type=code&redirect_uri={}&scope=openid%20email%20profile\
             &state=the-state&nonce=the-nonce&code_challenge={challenge}&code_challenge_method={method}\
             &login_hint=ada%40contoso.example",
            issuer.authorization_endpoint(),
            "https%3A%2F%2Fapp.example.com%2Fsso%2Fcallback",
        )
    }

    async fn redeem(issuer: &OidcIssuer, code: &str, verifier: &str, secret: &str) -> (u16, Value) {
        let form = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&client_id={ENTRA_CLIENT_ID}\
             &client_secret={}&code_verifier={verifier}",
            "https%3A%2F%2Fapp.example.com%2Fsso%2Fcallback",
            secret.replace('~', "%7E"),
        );
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(issuer.token_endpoint())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn jwks(issuer: &OidcIssuer) -> Value {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(issuer.jwks_url())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    fn verify(token: &str, jwks: &Value, issuer: &str, audience: &str) -> jsonwebtoken::errors::Result<Value> {
        let kid = jsonwebtoken::decode_header(token)?.kid.unwrap_or_default();
        let Some(jwk) = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
        else {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into());
        };
        let key =
            jsonwebtoken::DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode::<Value>(token, &key, &validation).map(|data| data.claims)
    }

    #[tokio::test]
    async fn tokens_verify_against_the_published_keys_and_forgeries_do_not() {
        let issuer = OidcIssuer::spawn().await;
        let set = jwks(&issuer).await;
        assert_eq!(set["keys"].as_array().unwrap().len(), 1);
        assert_eq!(set["keys"][0]["alg"], "RS256");
        assert_eq!(set["keys"][0]["use"], "sig");
        assert_eq!(issuer.jwks_requests(), 1);

        let google = issuer.google_token(json!({ "email": "ada@gmail.com", "hd": null }));
        let claims = verify(&google, &set, GOOGLE_ISSUER, GOOGLE_CLIENT_ID).unwrap();
        assert_eq!(claims["email"], "ada@gmail.com");
        assert_eq!(claims["email_verified"], true);
        assert!(claims["sub"].as_str().unwrap().bytes().all(|b| b.is_ascii_digit()));

        let tid = new_oid();
        let entra = issuer.entra_token(&tid, json!({ "email": "ada@contoso.example", "name": null }));
        let claims = verify(&entra, &set, &issuer.entra_issuer(&tid), ENTRA_CLIENT_ID).unwrap();
        assert_eq!(claims["tid"], tid.as_str());
        assert_eq!(claims["preferred_username"], "ada@contoso.example");
        assert!(claims.get("name").is_none());
        assert_eq!(claims["oid"].as_str().unwrap().len(), 36);

        let claims = issuer.google_claims(json!({}));
        let unknown = issuer.sign_unpublished(&claims);
        assert!(verify(&unknown, &set, GOOGLE_ISSUER, GOOGLE_CLIENT_ID).is_err());
        assert!(!issuer.published_kids().contains(&issuer.unpublished_kid()));
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("nobody-publishes-this".to_owned());
        let other_kid = issuer.sign(header, &claims);
        assert!(verify(&other_kid, &set, GOOGLE_ISSUER, GOOGLE_CLIENT_ID).is_err());

        let hs256 = issuer.sign_hs256(&claims);
        assert_eq!(jsonwebtoken::decode_header(&hs256).unwrap().alg, Algorithm::HS256);
        let confused = jsonwebtoken::DecodingKey::from_secret(issuer.public_key_pem().as_bytes());
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.set_audience(&[GOOGLE_CLIENT_ID]);
        assert!(jsonwebtoken::decode::<Value>(&hs256, &confused, &validation).is_ok());
        assert!(verify(&hs256, &set, GOOGLE_ISSUER, GOOGLE_CLIENT_ID).is_err());

        let none = issuer.unsigned(&claims);
        assert!(none.ends_with('.'));
        let header: Value = serde_json::from_slice(&B64.decode(none.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["alg"], "none");
        assert!(verify(&none, &set, GOOGLE_ISSUER, GOOGLE_CLIENT_ID).is_err());

        let old = issuer.kid();
        let new = issuer.rotate().await;
        assert_ne!(old, new);
        let set = jwks(&issuer).await;
        assert_eq!(set["keys"].as_array().unwrap().len(), 2);
        let rotated = issuer.google_token(json!({}));
        assert_eq!(
            jsonwebtoken::decode_header(&rotated).unwrap().kid.as_deref(),
            Some(new.as_str())
        );
        assert!(verify(&rotated, &set, GOOGLE_ISSUER, GOOGLE_CLIENT_ID).is_ok());
        issuer.unpublish(&old);
        assert_eq!(issuer.published_kids(), vec![new]);
    }

    #[tokio::test]
    async fn the_code_flow_checks_pkce_the_client_and_single_use() {
        let issuer = OidcIssuer::spawn().await;
        let verifier = pkce_verifier();
        let challenge = pkce_challenge(&verifier);
        let tid = new_oid();
        let oid = new_oid();

        // The authorization request itself: PKCE S256 only.
        let refused = issuer
            .try_sign_in(&authorization_url(&issuer, &challenge, "plain"), &tid, json!({}))
            .await;
        assert!(refused.unwrap_err().contains("S256"));
        let elsewhere = issuer
            .try_sign_in("https://login.example.com/authorize?x=1", &tid, json!({}))
            .await;
        assert!(elsewhere.is_err());

        let url = authorization_url(&issuer, &challenge, "S256");
        let (code, state) = issuer.sign_in(&url, &tid, json!({ "oid": oid })).await;
        assert_eq!(state, "the-state");
        let recorded = issuer.authorize_requests();
        assert_eq!(recorded.len(), 2);
        assert_eq!(recorded[1].param("login_hint"), Some("ada@contoso.example"));
        assert!(recorded[1].error.is_none());

        // A wrong client secret is refused before the code is looked at.
        let (status, body) = redeem(&issuer, &code, &verifier, "wrong").await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
        // A wrong verifier spends the code.
        let (status, body) = redeem(&issuer, &code, &pkce_verifier(), ENTRA_CLIENT_SECRET).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
        let (status, _) = redeem(&issuer, &code, &verifier, ENTRA_CLIENT_SECRET).await;
        assert_eq!(status, 400);

        let (code, _) = issuer.sign_in(&url, &tid, json!({ "oid": oid })).await;
        let (status, body) = redeem(&issuer, &code, &verifier, ENTRA_CLIENT_SECRET).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        let claims = verify(
            body["id_token"].as_str().unwrap(),
            &jwks(&issuer).await,
            &issuer.entra_issuer(&tid),
            ENTRA_CLIENT_ID,
        )
        .unwrap();
        assert_eq!(claims["nonce"], "the-nonce");
        assert_eq!(claims["oid"], oid.as_str());
        assert_eq!(claims["tid"], tid.as_str());

        // Replayed: refused, and counted.
        let (status, body) = redeem(&issuer, &code, &verifier, ENTRA_CLIENT_SECRET).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
        assert_eq!(issuer.token_request_count(), 5);
        let requests = issuer.token_requests();
        assert_eq!(requests[3].error, None);
        assert_eq!(requests[3].client_auth, "client_secret_post");
        assert_eq!(requests[4].error.as_deref(), Some("invalid_grant"));
    }

    #[test]
    fn merging_overrides_adds_replaces_and_removes() {
        let merged = merge(json!({ "a": 1, "b": 2 }), json!({ "b": 3, "c": 4, "a": null }));
        assert_eq!(merged, json!({ "b": 3, "c": 4 }));
        // RFC 7636, Appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(!valid_verifier("short"));
        let oid = new_oid();
        assert_eq!(oid.len(), 36);
        assert_eq!(&oid[14..15], "4");
    }
}
