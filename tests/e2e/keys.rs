//! Signing keys: JWKS, discovery, the key schedule and its rotation through Secrets Manager's four steps, and the
//! public key set that lets the verifying functions work without the private keys.

use keygate::keys::{KeyVersion, PublicKeys};
use keygate::rotation::{self, run_step, Secrets, Step};
use keygate_e2e::{TestApp, PASSWORD};
use secrecy::ExposeSecret as _;

#[tokio::test]
async fn jwks_publishes_the_key_that_signs() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let jwks = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.headers["cache-control"], "public, max-age=300");
    let kid = jsonwebtoken::decode_header(tokens.str("access_token"))
        .unwrap()
        .kid
        .unwrap();
    let keys = jwks.body["keys"].as_array().unwrap();
    let key = keys
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("signing key published");
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str(), key["use"].as_str()),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    assert!(key.get("d").is_none(), "no private parts");
    // The published key verifies the token, as a third party would check it.
    let decoding =
        jsonwebtoken::DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["keygate"]);
    validation.set_issuer(&[app.state.config.issuer.as_str()]);
    jsonwebtoken::decode::<serde_json::Value>(&tokens.str("access_token"), &decoding, &validation).unwrap();
}

#[tokio::test]
async fn discovery_names_the_issuer_and_its_keys() {
    let app = TestApp::spawn().await;
    let doc = app.get("/.well-known/openid-configuration", None).await;
    assert_eq!(doc.status, 200);
    let issuer = app.state.config.issuer.clone();
    assert_eq!(doc.body["issuer"], issuer.as_str());
    assert_eq!(doc.body["jwks_uri"], format!("{issuer}/.well-known/jwks.json").as_str());
    assert_eq!(doc.body["id_token_signing_alg_values_supported"][0], "RS256");
    assert_eq!(
        doc.body["keygate_endpoints"]["login"],
        format!("{issuer}/v1/auth/login").as_str()
    );
}

/// A private key secret and a public-key secret of the calling test's own, so rotating them does not disturb the
/// other tests on the shared stack.
struct OwnKeys {
    client: aws_sdk_secretsmanager::Client,
    private: String,
    public: String,
}

impl OwnKeys {
    /// Both secrets, created empty: no keys yet.
    async fn empty() -> Self {
        let name = format!("keygate-test/rotation-{}", keygate::secret::random_b64(6));
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let keys = Self {
            client: aws_sdk_secretsmanager::Client::new(&aws),
            private: format!("{name}/signing-keys"),
            public: format!("{name}/public-keys"),
        };
        for id in [&keys.private, &keys.public] {
            keys.client.create_secret().name(id).send().await.unwrap();
        }
        keys
    }

    /// Both secrets with the first keys stored and published, as `keygate-local setup` leaves them.
    async fn set_up() -> Self {
        let keys = Self::empty().await;
        keygate_local::setup::ensure_signing_key(&keys.client, keys.secrets())
            .await
            .unwrap();
        keys
    }

    fn secrets(&self) -> Secrets<'_> {
        Secrets {
            private: &self.private,
            public: &self.public,
        }
    }

    /// A whole rotation through the real four steps.
    async fn rotate(&self) {
        rotation::rotate_now(&self.client, self.secrets(), &keygate::secret::random_b64(24))
            .await
            .unwrap();
    }

    /// The API over these keys.
    async fn app(&self) -> TestApp {
        TestApp::spawn_with(|c| {
            c.key_secret_id = self.private.clone();
            c.public_keys_secret_id = self.public.clone();
        })
        .await
    }

    /// The private secret's version at `stage`.
    async fn version(&self, stage: &str) -> Option<KeyVersion> {
        keygate::keys::fetch_stage(&self.client, &self.private, stage, None)
            .await
            .unwrap()
    }

    /// The public-key secret's AWSCURRENT string, checked to hold no private key material.
    async fn published_raw(&self) -> String {
        let raw = keygate::keys::secret_string(&self.client, &self.public, "AWSCURRENT", None)
            .await
            .unwrap()
            .expect("a published key set")
            .expose_secret()
            .to_owned();
        assert!(
            !raw.contains("PRIVATE") && !raw.contains("\"d\"") && !raw.contains("private_key"),
            "private material in the public-key secret: {raw}"
        );
        raw
    }

    /// The kids of the published key set.
    async fn published_kids(&self) -> Vec<String> {
        PublicKeys::from_json(&self.published_raw().await)
            .expect("a usable key set")
            .keys
            .into_iter()
            .map(|k| k.kid)
            .collect()
    }

    /// The id of the private secret's AWSCURRENT version.
    async fn current_version_id(&self) -> String {
        self.client
            .get_secret_value()
            .secret_id(&self.private)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap()
            .version_id()
            .unwrap()
            .to_owned()
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn jwks_kids(jwks: &keygate_e2e::Answer) -> Vec<String> {
    jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_key_that_signs_after_a_rotation_was_published_a_rotation_before() {
    let keys = OwnKeys::empty().await;
    keys.rotate().await;
    let first = keys.version("AWSCURRENT").await.unwrap();
    let published_after_first = keys.published_kids().await;
    assert_eq!(
        published_after_first,
        first.keys().map(|k| k.kid.clone()).collect::<Vec<_>>(),
        "the first rotation publishes both of its keys"
    );

    keys.rotate().await;
    let app = keys.app().await;
    let (_, tokens) = app.signed_up_user().await;
    let signing = kid_of(&tokens.str("access_token"));
    assert_ne!(
        signing, first.signing.kid,
        "the second rotation changed the signing key"
    );
    assert!(
        published_after_first.contains(&signing),
        "{signing} signs but was not published a rotation before: {published_after_first:?}"
    );
    // The published set now holds AWSCURRENT's two keys and AWSPREVIOUS's, each once.
    let second = keys.version("AWSCURRENT").await.unwrap();
    let expected = [signing.clone(), second.next.unwrap().kid, first.signing.kid.clone()];
    assert_eq!(keys.published_kids().await, expected);
    assert_eq!(jwks_kids(&app.get("/.well-known/jwks.json", None).await), expected);
}

#[tokio::test]
async fn tokens_signed_before_a_rotation_still_verify_after_it() {
    let keys = OwnKeys::set_up().await;

    let before = keys.app().await;
    let (email, tokens) = before.signed_up_user().await;
    let old_token = tokens.str("access_token");
    assert_eq!(before.me(&old_token).await.status, 200, "loads the public key set");

    keys.rotate().await;

    let after = keys.app().await;
    assert_eq!(after.me(&old_token).await.status, 200, "AWSPREVIOUS still verifies");
    let fresh = after.login(&email, PASSWORD).await.str("access_token");
    assert_ne!(
        kid_of(&fresh),
        kid_of(&old_token),
        "the next key signs after the rotation"
    );
    let kids = jwks_kids(&after.get("/.well-known/jwks.json", None).await);
    assert!(
        kids.contains(&kid_of(&old_token)) && kids.contains(&kid_of(&fresh)),
        "{kids:?}"
    );

    // A process that cached the key set before the rotation already knows the new signing key: without moving its
    // clock, an unknown kid would not even be looked up again (at most every 30 seconds).
    assert_eq!(before.me(&fresh).await.status, 200);
}

#[tokio::test]
async fn a_function_without_the_private_keys_verifies_tokens_and_serves_the_jwks() {
    let keys = OwnKeys::set_up().await;
    let signer = keys.app().await;
    let (email, tokens) = signer.signed_up_user().await;
    let token = tokens.str("access_token");

    let verifier = TestApp::spawn_with(|c| {
        c.key_secret_id = format!("keygate-test/no-such-secret-{}", keygate::secret::random_b64(6));
        c.public_keys_secret_id = keys.public.clone();
    })
    .await;
    assert_eq!(verifier.me(&token).await.status, 200);
    let jwks = verifier.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, 200);
    assert!(jwks_kids(&jwks).contains(&kid_of(&token)));
    assert!(!String::from_utf8_lossy(&jwks.raw).contains("PRIVATE"));
    // It really has no private key: it cannot sign.
    assert_eq!(verifier.login(&email, PASSWORD).await.status, 503);
}

#[tokio::test]
async fn an_unknown_kid_is_looked_up_at_most_every_30_seconds_and_an_outage_serves_the_cached_set() {
    let keys = OwnKeys::set_up().await;
    let app = keys.app().await;
    let (_, tokens) = app.signed_up_user().await;
    let token = tokens.str("access_token");
    assert_eq!(app.me(&token).await.status, 200);

    // A key published after this process cached the set (as only the rotation can) is not looked up at once...
    let extra = KeyVersion::successor(None).unwrap();
    let current = keys.version("AWSCURRENT").await.unwrap();
    keys.client
        .put_secret_value()
        .secret_id(&keys.public)
        .secret_string(PublicKeys::of_versions([&current, &extra]).to_json().unwrap())
        .send()
        .await
        .unwrap();
    let claims: serde_json::Value = {
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine as _;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(extra.signing.kid.clone());
    header.typ = Some("at+jwt".into());
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(extra.signing.private_key_pem.expose_secret().as_bytes()).unwrap();
    let signed_by_extra = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_eq!(
        app.me(&signed_by_extra).await.status,
        401,
        "no reload within 30 seconds"
    );
    // ...but is, once 30 seconds have passed.
    app.state.clock.advance(31);
    assert_eq!(app.me(&signed_by_extra).await.status, 200);

    // The public-key secret disappears: the cached set keeps verifying past its time to live.
    keys.client
        .delete_secret()
        .secret_id(&keys.public)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    app.state.clock.advance(app.state.config.key_cache_ttl + 1);
    assert_eq!(app.me(&token).await.status, 200);
}

#[tokio::test]
async fn rotation_steps_survive_being_delivered_twice() {
    let keys = OwnKeys::set_up().await;
    let before = keys.version("AWSCURRENT").await.unwrap();

    // Secrets Manager retries a step that timed out; each must tolerate running again.
    let token = keygate::secret::random_b64(24);
    let pending = || async {
        keygate::keys::fetch_stage(&keys.client, &keys.private, "AWSPENDING", Some(&token))
            .await
            .unwrap()
            .unwrap()
    };
    run_step(&keys.client, keys.secrets(), &token, Step::CreateSecret)
        .await
        .unwrap();
    let created = pending().await;
    run_step(&keys.client, keys.secrets(), &token, Step::CreateSecret)
        .await
        .unwrap();
    let again = pending().await;
    let kids = |v: &KeyVersion| v.keys().map(|k| k.kid.clone()).collect::<Vec<_>>();
    assert_eq!(
        kids(&again),
        kids(&created),
        "a second createSecret keeps the first one's keys"
    );
    assert_eq!(
        Some(&created.signing.kid),
        before.next.as_ref().map(|k| &k.kid),
        "the pending signing key is AWSCURRENT's next key"
    );
    for step in [Step::SetSecret, Step::TestSecret, Step::TestSecret] {
        run_step(&keys.client, keys.secrets(), &token, step).await.unwrap();
    }
    let published_before = keys.published_raw().await;
    for _ in 0..2 {
        run_step(&keys.client, keys.secrets(), &token, Step::FinishSecret)
            .await
            .unwrap();
    }

    let current = keys.version("AWSCURRENT").await.unwrap();
    let previous = keys.version("AWSPREVIOUS").await.unwrap();
    assert_eq!(kids(&current), kids(&created));
    assert_eq!(kids(&previous), kids(&before));
    assert!(keys.version("AWSPENDING").await.is_none());
    let expected = [
        created.signing.kid.clone(),
        created.next.unwrap().kid,
        before.signing.kid.clone(),
    ];
    assert_eq!(
        keys.published_kids().await,
        expected,
        "correct after a retried finishSecret"
    );
    assert_ne!(keys.published_raw().await, published_before);
}

#[tokio::test]
async fn a_legacy_single_key_version_is_read_published_and_rotated() {
    let keys = OwnKeys::empty().await;
    let legacy = keygate::keys::KeyMaterial::generate().unwrap();
    keys.client
        .put_secret_value()
        .secret_id(&keys.private)
        .secret_string(legacy.to_secret_string().unwrap())
        .send()
        .await
        .unwrap();
    let read = keys.version("AWSCURRENT").await.unwrap();
    assert_eq!(read.signing.kid, legacy.kid);
    assert!(read.next.is_none());

    // An existing deployment publishes its key set by running finishSecret for the version already current.
    run_step(
        &keys.client,
        keys.secrets(),
        &keys.current_version_id().await,
        Step::FinishSecret,
    )
    .await
    .unwrap();
    assert_eq!(keys.published_kids().await, std::slice::from_ref(&legacy.kid));
    let app = keys.app().await;
    let (email, tokens) = app.signed_up_user().await;
    let old_token = tokens.str("access_token");
    assert_eq!(kid_of(&old_token), legacy.kid, "the legacy key signs");
    assert_eq!(app.me(&old_token).await.status, 200);

    // The upgrade rotation keeps the legacy key signing and publishes the first next key.
    keys.rotate().await;
    let upgraded = keys.version("AWSCURRENT").await.unwrap();
    assert_eq!(upgraded.signing.kid, legacy.kid);
    let next = upgraded.next.clone().expect("a next key after the upgrade");
    assert_eq!(keys.published_kids().await, [legacy.kid.clone(), next.kid.clone()]);

    // From then on, the schedule as usual: the published next key signs after the following rotation.
    keys.rotate().await;
    let app = keys.app().await;
    let fresh = app.login(&email, PASSWORD).await.str("access_token");
    assert_eq!(kid_of(&fresh), next.kid);
    assert_eq!(
        app.me(&old_token).await.status,
        200,
        "the legacy key still verifies as AWSPREVIOUS"
    );
    assert_eq!(app.me(&fresh).await.status, 200);
}
