//! The claim rules offline (a test RSA key, no network), then the JWKS cache, the code exchange and the URL
//! helpers against a local HTTP server on 127.0.0.1.

use std::sync::{Arc, Mutex, OnceLock};

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;
use crate::keys::KeyMaterial;

const NOW: UnixTime = 1_700_000_000;
const CLIENT: &str = "google-client.apps.googleusercontent.com";
const APP: &str = "11111111-2222-3333-4444-555555555555";
const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const ENTRA_ISSUER: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";

fn key(n: usize) -> &'static KeyMaterial {
    static KEYS: OnceLock<Vec<KeyMaterial>> = OnceLock::new();
    &KEYS.get_or_init(|| (0..2).map(|_| KeyMaterial::generate().unwrap()).collect())[n]
}

fn jwks_json(materials: &[&KeyMaterial]) -> String {
    json!({ "keys": materials.iter().map(|m| m.jwk()).collect::<Vec<_>>() }).to_string()
}

fn jwks(materials: &[&KeyMaterial]) -> Jwks {
    Jwks::from_json(jwks_json(materials).as_bytes()).unwrap()
}

fn sign_with(material: &KeyMaterial, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let encoding = EncodingKey::from_rsa_pem(material.private_key_pem.expose_secret().as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &encoding).unwrap()
}

fn sign(claims: &Value) -> String {
    sign_with(key(0), Some(&key(0).kid), claims)
}

fn google_claims() -> Value {
    json!({
        "iss": "https://accounts.google.com",
        "aud": CLIENT,
        "sub": "110169484474386276334",
        "email": "Ada@Gmail.com",
        "email_verified": true,
        "name": "Ada",
        "nonce": "n-0S6_WzA2Mj",
        "iat": NOW - 10,
        "exp": NOW + 3590,
    })
}

fn entra_claims() -> Value {
    json!({
        "iss": format!("https://login.microsoftonline.com/{TID}/v2.0"),
        "aud": APP,
        "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        "tid": TID,
        "oid": "00000000-0000-0000-66f3-3332eca7ea81",
        "preferred_username": "Grace@Contoso.com",
        "name": "Grace",
        "nonce": "abc",
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 3590,
    })
}

fn google_audiences() -> Vec<String> {
    vec!["someone-else".to_owned(), CLIENT.to_owned()]
}

fn allowed() -> Vec<String> {
    vec![TID.to_owned()]
}

fn check_google(raw: &str) -> Result<IdToken, Refusal> {
    let audiences = google_audiences();
    verify_with(&jwks(&[key(0)]), raw, &Expected::Google { audiences: &audiences }, NOW)
}

fn check_entra(raw: &str) -> Result<IdToken, Refusal> {
    let tenants = allowed();
    let expected = Expected::Entra {
        client_id: APP,
        allowed_tenants: &tenants,
        issuer: ENTRA_ISSUER,
    };
    verify_with(&jwks(&[key(0)]), raw, &expected, NOW)
}

fn with(mut claims: Value, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    edit(claims.as_object_mut().unwrap());
    claims
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[test]
fn a_good_google_token_verifies() {
    let token = check_google(&sign(&google_claims())).unwrap();
    assert_eq!(token.subject, "110169484474386276334");
    assert_eq!(token.email.as_deref(), Some("ada@gmail.com"), "lowercased");
    assert!(token.email_verified);
    assert_eq!(token.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(token.expires_at, NOW + 3590);
    assert!(token.tenant.is_none() && token.object_id.is_none());
    // The bare issuer Google also uses, a hosted domain, and the old string form of email_verified.
    let claims = with(google_claims(), |c| {
        c.insert("iss".into(), json!("accounts.google.com"));
        c.insert("hd".into(), json!("Example.com"));
        c.insert("email_verified".into(), json!("true"));
    });
    let token = check_google(&sign(&claims)).unwrap();
    assert_eq!(token.hosted_domain.as_deref(), Some("example.com"));
}

#[test]
fn a_good_entra_token_verifies_with_its_unverified_email() {
    let token = check_entra(&sign(&entra_claims())).unwrap();
    assert_eq!(token.tenant.as_deref(), Some(TID));
    assert_eq!(token.object_id.as_deref(), Some("00000000-0000-0000-66f3-3332eca7ea81"));
    assert_eq!(
        token.email.as_deref(),
        Some("grace@contoso.com"),
        "preferred_username when no email"
    );
    assert!(!token.email_verified, "Entra addresses are never verified");
    let claims = with(entra_claims(), |c| {
        drop(c.insert("email".into(), json!("G@Fabrikam.com")))
    });
    assert_eq!(
        check_entra(&sign(&claims)).unwrap().email.as_deref(),
        Some("g@fabrikam.com")
    );
}

#[test]
fn the_audience_must_be_ours() {
    for aud in [
        json!("someone-else-entirely"),
        json!([]),
        json!([CLIENT, "other"]),
        json!(7),
    ] {
        let claims = with(google_claims(), |c| drop(c.insert("aud".into(), aud.clone())));
        assert!(
            matches!(
                check_google(&sign(&claims)),
                Err(Refusal::Audience | Refusal::Malformed)
            ),
            "{aud}"
        );
    }
    let claims = with(google_claims(), |c| drop(c.remove("aud")));
    assert_eq!(check_google(&sign(&claims)).unwrap_err(), Refusal::Audience);
    let claims = with(google_claims(), |c| drop(c.insert("aud".into(), json!([CLIENT]))));
    assert!(check_google(&sign(&claims)).is_ok(), "a one-element array is fine");
    let claims = with(entra_claims(), |c| drop(c.insert("aud".into(), json!(CLIENT))));
    assert_eq!(check_entra(&sign(&claims)).unwrap_err(), Refusal::Audience);
}

#[test]
fn the_issuer_must_be_googles() {
    for iss in [
        "https://accounts.google.com/",
        "https://evil.example.com",
        "http://accounts.google.com",
    ] {
        let claims = with(google_claims(), |c| drop(c.insert("iss".into(), json!(iss))));
        assert_eq!(check_google(&sign(&claims)).unwrap_err(), Refusal::Issuer, "{iss}");
    }
    let claims = with(google_claims(), |c| drop(c.remove("iss")));
    assert_eq!(check_google(&sign(&claims)).unwrap_err(), Refusal::Missing("iss"));
}

#[test]
fn the_entra_issuer_is_the_template_filled_with_the_tokens_tid() {
    for iss in [
        ENTRA_ISSUER.to_owned(),
        "https://login.microsoftonline.com/common/v2.0".to_owned(),
        format!("https://login.microsoftonline.com/{OTHER_TID}/v2.0"),
        format!("https://sts.windows.net/{TID}/"),
    ] {
        let claims = with(entra_claims(), |c| drop(c.insert("iss".into(), json!(iss))));
        assert_eq!(check_entra(&sign(&claims)).unwrap_err(), Refusal::Issuer, "{iss}");
    }
}

#[test]
fn the_tid_must_be_allowed() {
    let claims = with(entra_claims(), |c| {
        c.insert("tid".into(), json!(OTHER_TID));
        c.insert(
            "iss".into(),
            json!(format!("https://login.microsoftonline.com/{OTHER_TID}/v2.0")),
        );
    });
    assert_eq!(check_entra(&sign(&claims)).unwrap_err(), Refusal::Tenant);
    let claims = with(entra_claims(), |c| drop(c.remove("tid")));
    assert_eq!(check_entra(&sign(&claims)).unwrap_err(), Refusal::Missing("tid"));
}

#[test]
fn times_allow_one_minute_of_skew_and_no_more() {
    let at = |field: &str, value: i64| with(entra_claims(), |c| drop(c.insert(field.into(), json!(value))));
    assert_eq!(check_entra(&sign(&at("exp", NOW - 60))).unwrap_err(), Refusal::Expired);
    assert!(check_entra(&sign(&at("exp", NOW - 59))).is_ok());
    assert_eq!(
        check_entra(&sign(&at("nbf", NOW + 61))).unwrap_err(),
        Refusal::NotYetValid
    );
    assert!(check_entra(&sign(&at("nbf", NOW + 60))).is_ok());
    assert_eq!(
        check_entra(&sign(&at("iat", NOW + 61))).unwrap_err(),
        Refusal::IssuedInFuture
    );
    assert!(check_entra(&sign(&at("iat", NOW + 60))).is_ok());
    let claims = with(google_claims(), |c| drop(c.remove("exp")));
    assert_eq!(check_google(&sign(&claims)).unwrap_err(), Refusal::Missing("exp"));
    let claims = with(google_claims(), |c| drop(c.remove("iat")));
    assert_eq!(check_google(&sign(&claims)).unwrap_err(), Refusal::Missing("iat"));
    let claims = with(google_claims(), |c| drop(c.insert("exp".into(), json!("tomorrow"))));
    assert_eq!(check_google(&sign(&claims)).unwrap_err(), Refusal::Malformed);
}

#[test]
fn alg_none_is_refused() {
    let header = json!({ "alg": "none", "kid": key(0).kid });
    let raw = format!("{}.{}.", b64(&header), b64(&google_claims()));
    assert_eq!(check_google(&raw).unwrap_err(), Refusal::Algorithm);
    let header = json!({ "kid": key(0).kid });
    let raw = format!("{}.{}.", b64(&header), b64(&google_claims()));
    assert_eq!(check_google(&raw).unwrap_err(), Refusal::Algorithm);
}

#[test]
fn hs256_with_the_public_key_as_secret_is_refused() {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key(0).kid.clone());
    for secret in [jwks_json(&[key(0)]), key(0).n.clone()] {
        let raw =
            jsonwebtoken::encode(&header, &google_claims(), &EncodingKey::from_secret(secret.as_bytes())).unwrap();
        assert_eq!(check_google(&raw).unwrap_err(), Refusal::Algorithm);
        assert_eq!(
            header_kid(&raw).unwrap_err(),
            Refusal::Algorithm,
            "refused before any key is fetched"
        );
    }
    for alg in [Algorithm::RS512, Algorithm::PS256] {
        let mut header = Header::new(alg);
        header.kid = Some(key(0).kid.clone());
        let encoding = EncodingKey::from_rsa_pem(key(0).private_key_pem.expose_secret().as_bytes()).unwrap();
        let raw = jsonwebtoken::encode(&header, &google_claims(), &encoding).unwrap();
        assert_eq!(check_google(&raw).unwrap_err(), Refusal::Algorithm, "{alg:?}");
    }
}

#[test]
fn an_unknown_or_missing_kid_or_a_foreign_signature_is_refused() {
    let raw = sign_with(key(1), Some(&key(1).kid), &google_claims());
    assert_eq!(check_google(&raw).unwrap_err(), Refusal::UnknownKey);
    let raw = sign_with(key(0), None, &google_claims());
    assert_eq!(check_google(&raw).unwrap_err(), Refusal::NoKid);
    // Signed by another key under our kid.
    let raw = sign_with(key(1), Some(&key(0).kid), &google_claims());
    assert_eq!(check_google(&raw).unwrap_err(), Refusal::Signature);
    // A good token whose payload was swapped.
    let good = sign(&google_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let other = with(google_claims(), |c| drop(c.insert("sub".into(), json!("victim"))));
    let forged = format!("{}.{}.{}", parts[0], b64(&other), parts[2]);
    assert_eq!(check_google(&forged).unwrap_err(), Refusal::Signature);
}

#[test]
fn garbage_and_oversized_tokens_are_malformed() {
    let long = format!("{}.{}.{}", "a".repeat(MAX_TOKEN_LEN), "b", "c");
    for raw in ["", "a.b", "a.b.c.d", "!!!.x.y", &long] {
        assert_eq!(check_google(raw).unwrap_err(), Refusal::Malformed, "{raw:.20}");
    }
}

#[test]
fn google_needs_a_verified_email_and_a_subject() {
    for verified in [json!(false), json!("false"), json!(null), json!(1)] {
        let claims = with(google_claims(), |c| {
            drop(c.insert("email_verified".into(), verified.clone()))
        });
        assert!(
            matches!(
                check_google(&sign(&claims)),
                Err(Refusal::EmailNotVerified | Refusal::Malformed)
            ),
            "{verified}"
        );
    }
    let claims = with(google_claims(), |c| drop(c.remove("email_verified")));
    assert_eq!(check_google(&sign(&claims)).unwrap_err(), Refusal::EmailNotVerified);
    let claims = with(google_claims(), |c| drop(c.remove("email")));
    assert_eq!(check_google(&sign(&claims)).unwrap_err(), Refusal::EmailNotVerified);
    for sub in [None, Some(json!(""))] {
        let claims = with(google_claims(), |c| match &sub {
            None => drop(c.remove("sub")),
            Some(v) => drop(c.insert("sub".into(), v.clone())),
        });
        assert_eq!(check_google(&sign(&claims)).unwrap_err(), Refusal::Missing("sub"));
    }
}

#[test]
fn entra_needs_an_oid() {
    let claims = with(entra_claims(), |c| drop(c.remove("oid")));
    assert_eq!(check_entra(&sign(&claims)).unwrap_err(), Refusal::Missing("oid"));
    let claims = with(entra_claims(), |c| drop(c.remove("sub")));
    assert_eq!(check_entra(&sign(&claims)).unwrap_err(), Refusal::Missing("sub"));
}

#[test]
fn a_jwks_keeps_only_rsa_signing_keys() {
    let mut good = serde_json::to_value(key(0).jwk()).unwrap();
    good.as_object_mut().unwrap().remove("alg"); // Entra publishes no alg.
    let raw = json!({ "keys": [
        { "kty": "EC", "kid": "ec", "crv": "P-256", "x": "x", "y": "y" },
        { "kty": "RSA", "kid": "enc", "use": "enc", "n": key(1).n, "e": key(1).e },
        { "kty": "RSA", "kid": "rs512", "alg": "RS512", "n": key(1).n, "e": key(1).e },
        { "kty": "RSA", "n": key(1).n, "e": key(1).e },
        "junk",
        good,
    ]});
    let set = Jwks::from_json(raw.to_string().as_bytes()).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set.key(&key(0).kid).is_some());
    for bad in [
        "",
        "{}",
        r#"{"keys": []}"#,
        r#"{"keys": [{"kty": "EC", "kid": "x"}]}"#,
        "[1]",
    ] {
        assert!(Jwks::from_json(bad.as_bytes()).is_none(), "{bad}");
    }
}

#[test]
fn pkce_matches_rfc_7636() {
    // RFC 7636 appendix B.
    assert_eq!(
        s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    let (verifier, challenge) = pkce_pair();
    assert_eq!(verifier.expose_secret().len(), 43);
    assert!(secret::is_b64_of_len(verifier.expose_secret(), 32));
    assert_eq!(challenge, s256_challenge(verifier.expose_secret()));
    assert_ne!(pkce_pair().1, challenge);
}

fn entry(base: &str) -> EntraEntry {
    EntraEntry {
        client_id: APP.to_owned(),
        client_secret: SecretString::from("the-client-secret"),
        allowed_tenants: allowed(),
        redirect_uri: "https://app.example.com/sso/callback?x=1".to_owned(),
        issuer: ENTRA_ISSUER.to_owned(),
        jwks_uri: format!("{base}/keys"),
        authorization_endpoint: format!("{base}/authorize"),
        token_endpoint: format!("{base}/token"),
    }
}

#[test]
fn the_authorization_url_encodes_every_value() {
    let url = authorization_url(
        &entry("https://idp.example"),
        "st&te",
        "n=nce",
        "chal",
        Some("a+b@c.com"),
    );
    assert_eq!(
        url,
        format!(
            "https://idp.example/authorize?client_id={APP}&response_type=code\
             &redirect_uri=https%3A%2F%2Fapp.example.com%2Fsso%2Fcallback%3Fx%3D1&response_mode=query\
             &scope=openid%20email%20profile&state=st%26te&nonce=n%3Dnce&code_challenge=chal\
             &code_challenge_method=S256&login_hint=a%2Bb%40c.com"
        )
    );
    let mut with_query = entry("https://idp.example");
    with_query.authorization_endpoint = "https://idp.example/authorize?p=b2c".to_owned();
    let url = authorization_url(&with_query, "s", "n", "c", None);
    assert!(
        url.starts_with("https://idp.example/authorize?p=b2c&client_id="),
        "{url}"
    );
    assert!(!url.contains("login_hint"));
}

/// A local HTTP server that answers every request with the current `(status, body)` and keeps each request.
#[derive(Clone)]
struct Server {
    base: String,
    answer: Arc<Mutex<(u16, String)>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(status: u16, body: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Self {
            base: format!("http://{}", listener.local_addr().unwrap()),
            answer: Arc::new(Mutex::new((status, body.to_owned()))),
            requests: Arc::default(),
        };
        let handle = server.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let handle = handle.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        request.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&request).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text[..end]
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(str::to_owned)
                                })
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if request.len() >= end + 4 + length || n == 0 {
                                break;
                            }
                        } else if n == 0 {
                            break;
                        }
                    }
                    handle
                        .requests
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&request).to_string());
                    let (status, body) = handle.answer.lock().unwrap().clone();
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        server
    }

    fn answer(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_owned());
    }

    fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn google_config(jwks_url: &str, client_ids: &[&str]) -> Config {
    let vars = [
        ("KEYGATE_TABLE", "t"),
        ("KEYGATE_KEY_SECRET_ID", "s"),
        ("KEYGATE_ISSUER", "https://auth.example.com"),
        ("KEYGATE_MAIL_FROM", "no-reply@example.com"),
        (
            "KEYGATE_MAIL_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/000000000000/mail",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut config = Config::from_vars(&vars).unwrap();
    config.google_jwks_url = jwks_url.to_owned();
    config.google_client_ids = client_ids.iter().map(|s| (*s).to_owned()).collect();
    config
}

#[tokio::test]
async fn google_off_is_not_found_and_costs_no_fetch() {
    let server = Server::start(200, &jwks_json(&[key(0)])).await;
    let oidc = Oidc::new();
    let config = google_config(&format!("{}/keys", server.base), &[]);
    let err = oidc
        .verify_google(&config, &sign(&google_claims()), NOW)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404);
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn google_tokens_verify_against_the_fetched_keys_and_refusals_are_generic() {
    let server = Server::start(200, &jwks_json(&[key(0)])).await;
    let oidc = Oidc::new();
    let config = google_config(&format!("{}/keys", server.base), &[CLIENT]);
    let token = oidc.verify_google(&config, &sign(&google_claims()), NOW).await.unwrap();
    assert_eq!(token.email.as_deref(), Some("ada@gmail.com"));
    let wrong = with(google_claims(), |c| drop(c.insert("aud".into(), json!("other"))));
    let err = oidc.verify_google(&config, &sign(&wrong), NOW).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (401, "invalid_token"));
    assert_eq!(err.to_string(), "The identity token is invalid or has expired.");
    // An HS256 token is refused before any fetch.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("whatever".to_owned());
    let hs = jsonwebtoken::encode(&header, &google_claims(), &EncodingKey::from_secret(b"k")).unwrap();
    assert_eq!(oidc.verify_google(&config, &hs, NOW).await.unwrap_err().status(), 401);
    assert_eq!(server.hits(), 1, "one fetch, then the cache");
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_every_30_seconds() {
    let server = Server::start(200, &jwks_json(&[key(0)])).await;
    let oidc = Oidc::new();
    let config = google_config(&format!("{}/keys", server.base), &[CLIENT]);
    assert!(oidc.verify_google(&config, &sign(&google_claims()), NOW).await.is_ok());
    assert_eq!(server.hits(), 1);
    let unknown = sign_with(key(1), Some(&key(1).kid), &google_claims());
    for at in [NOW, NOW + 10, NOW + 29] {
        assert_eq!(
            oidc.verify_google(&config, &unknown, at).await.unwrap_err().status(),
            401
        );
    }
    assert_eq!(server.hits(), 1, "no refetch within 30 seconds of the last fetch");
    // The IdP rotates in key 1: the first token naming it after 30 seconds refetches, once.
    server.answer(200, &jwks_json(&[key(0), key(1)]));
    assert!(oidc.verify_google(&config, &unknown, NOW + 30).await.is_ok());
    assert!(oidc.verify_google(&config, &unknown, NOW + 31).await.is_ok());
    assert_eq!(server.hits(), 2);
    // A forged kid hammering: one refetch per 30 seconds.
    let forged = sign_with(key(1), Some("forged"), &google_claims());
    for at in NOW + 61..NOW + 100 {
        let _ = oidc.verify_google(&config, &forged, at).await;
    }
    assert_eq!(server.hits(), 4, "refetched at +61 and +91 only");
}

#[tokio::test]
async fn the_key_set_expires_after_five_minutes_and_an_outage_serves_the_cached_set() {
    let server = Server::start(200, &jwks_json(&[key(0)])).await;
    let oidc = Oidc::new();
    let entry = entry(&server.base);
    let claims = |now: UnixTime| {
        with(entra_claims(), |c| {
            c.insert("iat".into(), json!(now));
            c.insert("exp".into(), json!(now + 3600));
        })
    };
    assert!(oidc.verify_entra(&entry, &sign(&claims(NOW)), NOW).await.is_ok());
    assert!(oidc.verify_entra(&entry, &sign(&claims(NOW)), NOW + 299).await.is_ok());
    assert_eq!(server.hits(), 1);
    server.answer(500, "{}");
    let later = NOW + 300;
    assert!(
        oidc.verify_entra(&entry, &sign(&claims(later)), later).await.is_ok(),
        "stale beats an outage"
    );
    assert!(oidc
        .verify_entra(&entry, &sign(&claims(later)), later + 29)
        .await
        .is_ok());
    assert_eq!(
        server.hits(),
        2,
        "the failed fetch is retried no sooner than 30 seconds"
    );
    server.answer(200, "not a jwks");
    assert!(oidc
        .verify_entra(&entry, &sign(&claims(later + 30)), later + 30)
        .await
        .is_ok());
    assert_eq!(server.hits(), 3);
    // A day without a good fetch: the IdP is unavailable.
    let day = NOW + MAX_STALE_SECONDS;
    let err = oidc.verify_entra(&entry, &sign(&claims(day)), day).await.unwrap_err();
    assert_eq!(err.status(), 503);
}

#[tokio::test]
async fn an_unreachable_jwks_is_503_when_nothing_is_cached() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = Oidc::new()
        .verify_entra(&entry(&base), &sign(&entra_claims()), NOW)
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (503, "service_unavailable"));
    let server = Server::start(404, "{}").await;
    let err = Oidc::new()
        .verify_entra(&entry(&server.base), &sign(&entra_claims()), NOW)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503);
}

#[tokio::test]
async fn a_code_is_redeemed_with_the_secret_and_the_verifier() {
    let server = Server::start(
        200,
        r#"{"id_token": "the.id.token", "access_token": "x", "token_type": "Bearer"}"#,
    )
    .await;
    let oidc = Oidc::new();
    let verifier = SecretString::from("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    let raw = oidc
        .redeem_code(&entry(&server.base), "the/code+1", &verifier, NOW)
        .await
        .unwrap();
    assert_eq!(raw, "the.id.token");
    let request = server.requests.lock().unwrap()[0].clone();
    assert!(request.starts_with("POST /token HTTP/1.1\r\n"), "{request}");
    assert!(request
        .to_ascii_lowercase()
        .contains("content-type: application/x-www-form-urlencoded"));
    let body = request.split("\r\n\r\n").nth(1).unwrap();
    let mut fields: Vec<&str> = body.split('&').collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        vec![
            format!("client_id={APP}").as_str(),
            "client_secret=the-client-secret",
            "code=the%2Fcode%2B1",
            "code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "grant_type=authorization_code",
            "redirect_uri=https%3A%2F%2Fapp.example.com%2Fsso%2Fcallback%3Fx%3D1",
        ]
    );
}

#[tokio::test]
async fn a_refused_code_is_401_and_a_failing_idp_503() {
    let server = Server::start(400, r#"{"error": "invalid_grant"}"#).await;
    let oidc = Oidc::new();
    let verifier = SecretString::from("v".repeat(43));
    let e = entry(&server.base);
    let err = oidc.redeem_code(&e, "code", &verifier, NOW).await.unwrap_err();
    assert_eq!(
        (err.status(), err.to_string().as_str()),
        (401, "The authorization code is invalid or has expired.")
    );
    for (status, body) in [(500, "{}"), (503, "{}"), (200, "{}"), (200, "not json"), (302, "")] {
        server.answer(status, body);
        let err = oidc.redeem_code(&e, "code", &verifier, NOW).await.unwrap_err();
        assert_eq!(err.status(), 503, "{status} {body}");
    }
    let hits = server.hits();
    for code in [String::new(), "c".repeat(MAX_CODE_LEN + 1)] {
        assert_eq!(
            oidc.redeem_code(&e, &code, &verifier, NOW).await.unwrap_err().status(),
            401
        );
    }
    assert_eq!(server.hits(), hits, "refused without asking the IdP");
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_never_fetched() {
    let mut e = entry("http://127.0.0.1:9");
    e.token_endpoint = "http://idp.example.com/token".to_owned();
    e.jwks_uri = "http://idp.example.com/keys".to_owned();
    let oidc = Oidc::new();
    let verifier = SecretString::from("v".repeat(43));
    assert_eq!(
        oidc.redeem_code(&e, "code", &verifier, NOW).await.unwrap_err().status(),
        503
    );
    assert_eq!(
        oidc.verify_entra(&e, &sign(&entra_claims()), NOW)
            .await
            .unwrap_err()
            .status(),
        503
    );
}
