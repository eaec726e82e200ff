//! Signing keys: JWKS, discovery, and rotation through Secrets Manager's four steps.

use keygate_e2e::{TestApp, PASSWORD};

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

/// A key secret of the calling test's own, holding one key, so rotating it does not disturb the other tests.
async fn own_key_secret() -> (aws_sdk_secretsmanager::Client, String) {
    let secret_id = format!("keygate-test/rotation-{}", keygate::secret::random_b64(6));
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    keygate_local::setup::ensure_signing_key(&secrets, &secret_id)
        .await
        .unwrap();
    (secrets, secret_id)
}

#[tokio::test]
async fn tokens_signed_before_a_rotation_still_verify_after_it() {
    let (secrets, secret_id) = own_key_secret().await;

    let before = TestApp::spawn_with(|c| c.key_secret_id = secret_id.clone()).await;
    let (email, tokens) = before.signed_up_user().await;
    let old_token = tokens.str("access_token");
    let old_kid = jsonwebtoken::decode_header(&old_token).unwrap().kid.unwrap();

    keygate::rotation::rotate_now(&secrets, &secret_id, &keygate::secret::random_b64(24))
        .await
        .unwrap();

    let after = TestApp::spawn_with(|c| c.key_secret_id = secret_id.clone()).await;
    assert_eq!(after.me(&old_token).await.status, 200, "AWSPREVIOUS still verifies");
    let fresh = after.login(&email, PASSWORD).await;
    let new_kid = jsonwebtoken::decode_header(fresh.str("access_token"))
        .unwrap()
        .kid
        .unwrap();
    assert_ne!(new_kid, old_kid, "AWSCURRENT signs after the rotation");
    let jwks = after.get("/.well-known/jwks.json", None).await;
    let kids: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );

    // A process that cached the old key set learns the new key when a token names it.
    before.state.clock.advance(31);
    assert_eq!(before.me(&fresh.str("access_token")).await.status, 200);
}

#[tokio::test]
async fn rotation_steps_survive_being_delivered_twice() {
    use keygate::rotation::{run_step, Step};
    let (secrets, secret_id) = own_key_secret().await;
    let before = keygate::keys::fetch_stage(&secrets, &secret_id, "AWSCURRENT", None)
        .await
        .unwrap()
        .unwrap();

    // Secrets Manager retries a step that timed out; each must tolerate running again.
    let token = keygate::secret::random_b64(24);
    for step in [
        Step::CreateSecret,
        Step::CreateSecret,
        Step::SetSecret,
        Step::TestSecret,
        Step::TestSecret,
    ] {
        run_step(&secrets, &secret_id, &token, step).await.unwrap();
    }
    let pending = keygate::keys::fetch_stage(&secrets, &secret_id, "AWSPENDING", Some(&token))
        .await
        .unwrap()
        .unwrap();
    run_step(&secrets, &secret_id, &token, Step::FinishSecret)
        .await
        .unwrap();
    run_step(&secrets, &secret_id, &token, Step::FinishSecret)
        .await
        .unwrap();

    let current = keygate::keys::fetch_stage(&secrets, &secret_id, "AWSCURRENT", None)
        .await
        .unwrap()
        .unwrap();
    let previous = keygate::keys::fetch_stage(&secrets, &secret_id, "AWSPREVIOUS", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.kid, pending.kid);
    assert_eq!(previous.kid, before.kid);
    assert!(keygate::keys::fetch_stage(&secrets, &secret_id, "AWSPENDING", None)
        .await
        .unwrap()
        .is_none());
}
