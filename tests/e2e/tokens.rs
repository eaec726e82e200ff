//! Access tokens: forged, expired, tampered and misdirected tokens are refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keygate_e2e::TestApp;
use serde_json::{json, Value};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(kid: &str, key: &EncodingKey, typ: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

async fn assert_refused(app: &TestApp, token: &str, why: &str) {
    let answer = app.me(token).await;
    assert_eq!(answer.status, 401, "{why}: {:?}", answer.body);
    assert_eq!(answer.code(), "invalid_token", "{why}");
    assert_eq!(answer.headers["www-authenticate"], r#"Bearer error="invalid_token""#);
}

#[tokio::test]
async fn the_real_token_has_the_documented_shape() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let token = tokens.str("access_token");
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let claims = claims_of(&token);
    assert_eq!(claims["iss"], app.state.config.issuer.as_str());
    assert_eq!(claims["aud"], "keygate");
    assert_eq!(claims["sid"], tokens.body["session_id"]);
    assert_eq!(claims["sub"], tokens.body["user"]["id"]);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
    assert_eq!(claims["amr"], json!(["otp"]));
    assert!(claims["scope"].as_str().unwrap().contains("profile:read"));
}

#[tokio::test]
async fn forged_and_misdirected_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let real = tokens.str("access_token");
    let claims = claims_of(&real);
    let (kid, key) = app.signing_key().await;
    // Sanity: our forging setup can make a token the API accepts.
    assert_eq!(app.me(&sign(&kid, &key, "at+jwt", &claims)).await.status, 200);

    let with = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        c
    };
    assert_refused(
        &app,
        &sign(&kid, &key, "at+jwt", &with("aud", json!("someone-else"))),
        "wrong aud",
    )
    .await;
    assert_refused(
        &app,
        &sign(&kid, &key, "at+jwt", &with("iss", json!("https://evil.example"))),
        "wrong iss",
    )
    .await;
    let now = app.state.clock.now();
    assert_refused(
        &app,
        &sign(&kid, &key, "at+jwt", &with("exp", json!(now - 1))),
        "expired",
    )
    .await;
    assert_refused(&app, &sign(&kid, &key, "JWT", &claims), "wrong typ").await;

    // A key of the attacker's own, under our kid.
    let theirs = keygate::keys::KeyMaterial::generate().unwrap();
    let their_key =
        EncodingKey::from_rsa_pem(secrecy::ExposeSecret::expose_secret(&theirs.private_key_pem).as_bytes()).unwrap();
    assert_refused(&app, &sign(&kid, &their_key, "at+jwt", &claims), "wrong key").await;
    assert_refused(&app, &sign(&theirs.kid, &their_key, "at+jwt", &claims), "unknown kid").await;

    // alg: none, and HS256 keyed with our public key (algorithm confusion).
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let payload = encode(&claims);
    let none = format!(
        "{}.{payload}.",
        encode(&json!({ "alg": "none", "typ": "at+jwt", "kid": kid }))
    );
    assert_refused(&app, &none, "alg none").await;
    let jwks = app.get("/.well-known/jwks.json", None).await;
    let n = jwks.body["keys"][0]["n"].as_str().unwrap().to_owned();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    hs.typ = Some("at+jwt".into());
    let confused = jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(n.as_bytes())).unwrap();
    assert_refused(&app, &confused, "HS256 confusion").await;

    // Tampering with a real token's payload breaks its signature.
    let parts: Vec<&str> = real.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        encode(&with("sub", json!("someone-else"))),
        parts[2]
    );
    assert_refused(&app, &tampered, "tampered payload").await;

    for garbage in [
        "",
        "x",
        "a.b.c",
        "Bearer",
        &"A".repeat(10_000),
        "\u{1F980}.\u{1F980}.\u{1F980}",
    ] {
        let answer = app.me(garbage).await;
        assert_eq!(answer.status, 401, "{garbage:?}");
    }
    let missing = app.get("/v1/auth/me", None).await;
    assert_eq!((missing.status, missing.code()), (401, "invalid_token"));
}

#[tokio::test]
async fn access_tokens_expire_on_the_clock() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    app.state.clock.advance(901);
    assert_refused(&app, &tokens.str("access_token"), "expired by time").await;
}

#[tokio::test]
async fn access_token_lifetime_is_configurable() {
    let app = TestApp::spawn_with(|config| config.access_token_ttl = 86_400).await;
    let (_, tokens) = app.signed_up_user().await;
    assert_eq!(tokens.body["expires_in"], 86_400);
    app.state.clock.advance(3_600);
    assert_eq!(app.me(&tokens.str("access_token")).await.status, 200);
}
