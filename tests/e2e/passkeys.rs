//! Issue 12: passkeys over HTTP, with a software authenticator that signs what WebAuthn defines
//! ([`keygate_e2e::passkey::SoftPasskey`]): registration, sign-in with an email and usernameless, management, the
//! second factor of a challenge, and the attacks on each.

use keygate_e2e::passkey::SoftPasskey;
use keygate_e2e::{jwt_claims, Answer, TestApp, PASSWORD};
use serde_json::{json, Value};

/// A registration ceremony for the session `jwt` answered by a new key, changed by `tweak` first: the key and the
/// answer.
async fn register_with(app: &TestApp, jwt: &str, tweak: impl FnOnce(&mut SoftPasskey)) -> (SoftPasskey, Answer) {
    let options = app.post_as(jwt, "/v1/auth/passkey/register/options", json!({})).await;
    assert_eq!(options.status, 200, "{:?}", options.body);
    let mut key = SoftPasskey::new(&options.body["options"]);
    tweak(&mut key);
    let body = json!({ "ceremony_id": options.str("ceremony_id"), "credential": key.attest(&options.body["options"]) });
    (key, app.post_as(jwt, "/v1/auth/passkey/register/verify", body).await)
}

/// A registration ceremony for the session `jwt` answered by a key registered before: the answer.
async fn register_again(app: &TestApp, jwt: &str, key: &SoftPasskey) -> Answer {
    let options = app.post_as(jwt, "/v1/auth/passkey/register/options", json!({})).await;
    assert_eq!(options.status, 200, "{:?}", options.body);
    let body = json!({ "ceremony_id": options.str("ceremony_id"), "credential": key.attest(&options.body["options"]) });
    app.post_as(jwt, "/v1/auth/passkey/register/verify", body).await
}

/// Registers a new software passkey for the session `jwt`, named `name` if given: the key and the answer.
pub(crate) async fn register(app: &TestApp, jwt: &str, name: Option<&str>) -> (SoftPasskey, Answer) {
    let options = app.post_as(jwt, "/v1/auth/passkey/register/options", json!({})).await;
    assert_eq!(options.status, 200, "{:?}", options.body);
    let key = SoftPasskey::new(&options.body["options"]);
    let mut body =
        json!({ "ceremony_id": options.str("ceremony_id"), "credential": key.attest(&options.body["options"]) });
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    (key, app.post_as(jwt, "/v1/auth/passkey/register/verify", body).await)
}

async fn login_options(app: &TestApp, body: Value) -> Answer {
    let options = app.post("/v1/auth/passkey/login/options", body).await;
    assert_eq!(options.status, 200, "{:?}", options.body);
    options
}

async fn login_verify(app: &TestApp, ceremony_id: &str, credential: Value) -> Answer {
    app.post(
        "/v1/auth/passkey/login/verify",
        json!({ "ceremony_id": ceremony_id, "credential": credential }),
    )
    .await
}

/// A whole passkey sign-in: options for `email` (usernameless when `None`), the key's assertion, the answer.
async fn sign_in(app: &TestApp, key: &SoftPasskey, email: Option<&str>) -> Answer {
    let body = email.map_or_else(|| json!({}), |email| json!({ "email": email }));
    let options = login_options(app, body).await;
    login_verify(app, &options.str("ceremony_id"), key.assert(&options.body["options"])).await
}

#[tokio::test]
async fn register_then_sign_in_with_an_email_and_without_one() {
    let app = TestApp::spawn().await;
    let (email, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let options = app.post_as(&jwt, "/v1/auth/passkey/register/options", json!({})).await;
    let public_key = &options.body["options"]["publicKey"];
    assert_eq!(public_key["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(public_key["authenticatorSelection"]["residentKey"], "preferred");
    assert_eq!(public_key["rp"]["id"], "localhost");
    assert_eq!(options.str("ceremony_id").len(), 43);

    let (key, created) = register(&app, &jwt, Some("Laptop")).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["name"], "Laptop");
    assert_eq!(created.body["backup_eligible"], true);
    assert_eq!(created.body["last_used_at"], Value::Null);

    let by_email = sign_in(&app, &key, Some(&email)).await;
    assert_eq!(by_email.status, 200, "{:?}", by_email.body);
    assert_eq!(jwt_claims(&by_email.str("access_token"))["amr"], json!(["swk", "mfa"]));
    assert_eq!(by_email.body["user"]["email"], json!(email));
    let usernameless = sign_in(&app, &key, None).await;
    assert_eq!(usernameless.status, 200, "{:?}", usernameless.body);
    assert_eq!(usernameless.body["user"]["id"], session.body["user"]["id"]);
    assert_eq!(app.me(&usernameless.str("access_token")).await.status, 200);

    let list = app.get("/v1/auth/passkey/list", Some(&jwt)).await;
    assert_eq!(list.status, 200);
    let passkeys = list.body["passkeys"].as_array().unwrap();
    assert_eq!(passkeys.len(), 1);
    assert!(passkeys[0]["last_used_at"].is_string());
    // The email-bound options allow exactly the account's credential.
    let options = login_options(&app, json!({ "email": email })).await;
    assert_eq!(
        options.body["options"]["publicKey"]["allowCredentials"],
        json!([{ "type": "public-key", "id": key.id() }])
    );
    let emails = app.emails_to(&email).await;
    assert!(emails
        .iter()
        .any(|(s, b)| s == "A passkey was added" && b.contains("Laptop")));
}

#[tokio::test]
async fn a_device_bound_key_signs_in_as_hwk_and_its_counter_must_move_forward() {
    let app = TestApp::spawn().await;
    let (email, session) = app.signed_up_user().await;
    let (mut key, created) = register_with(&app, &session.str("access_token"), |key| {
        key.synced = false;
        key.counter = 1;
    })
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["backup_eligible"], false);
    key.counter = 5;
    let signed_in = sign_in(&app, &key, Some(&email)).await;
    assert_eq!(signed_in.status, 200, "{:?}", signed_in.body);
    assert_eq!(jwt_claims(&signed_in.str("access_token"))["amr"], json!(["hwk", "mfa"]));
    // A clone of the key replays an older counter: refused, and the owner is told.
    key.counter = 3;
    let cloned = sign_in(&app, &key, Some(&email)).await;
    assert_eq!(
        (cloned.status, cloned.code()),
        (401, "invalid_credentials"),
        "{:?}",
        cloned.body
    );
    let emails = app.emails_to(&email).await;
    assert!(emails
        .iter()
        .any(|(s, _)| s == "A sign-in with your passkey was refused"));
    // A clone answering a ceremony started before the owner's last sign-in: the ceremony remembers counter 5,
    // the owner has since signed in with 7, and the clone's 7 must not pass.
    let early = login_options(&app, json!({ "email": email })).await;
    key.counter = 7;
    assert_eq!(sign_in(&app, &key, None).await.status, 200);
    let late = login_verify(&app, &early.str("ceremony_id"), key.assert(&early.body["options"])).await;
    assert_eq!(
        (late.status, late.code()),
        (401, "invalid_credentials"),
        "{:?}",
        late.body
    );
    key.counter = 8;
    assert_eq!(sign_in(&app, &key, None).await.status, 200);
}

#[tokio::test]
async fn ceremonies_are_single_use_bound_to_their_kind_and_expire() {
    let app = TestApp::spawn().await;
    let (email, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let options = app.post_as(&jwt, "/v1/auth/passkey/register/options", json!({})).await;
    let key = SoftPasskey::new(&options.body["options"]);
    let body = json!({ "ceremony_id": options.str("ceremony_id"), "credential": key.attest(&options.body["options"]) });
    assert_eq!(
        app.post_as(&jwt, "/v1/auth/passkey/register/verify", body.clone())
            .await
            .status,
        201
    );
    let twice = app.post_as(&jwt, "/v1/auth/passkey/register/verify", body).await;
    assert_eq!((twice.status, twice.code()), (401, "invalid_token"));

    // A replayed assertion: its ceremony is used up.
    let options = login_options(&app, json!({ "email": email })).await;
    let assertion = key.assert(&options.body["options"]);
    assert_eq!(
        login_verify(&app, &options.str("ceremony_id"), assertion.clone())
            .await
            .status,
        200
    );
    let replay = login_verify(&app, &options.str("ceremony_id"), assertion.clone()).await;
    assert_eq!((replay.status, replay.code()), (401, "invalid_token"));
    // The same assertion against a fresh ceremony answers the wrong challenge.
    let fresh = login_options(&app, json!({ "email": email })).await;
    let stale = login_verify(&app, &fresh.str("ceremony_id"), assertion).await;
    assert_eq!((stale.status, stale.code()), (401, "invalid_credentials"));

    // A sign-in ceremony cannot finish a registration.
    let options = login_options(&app, json!({})).await;
    let crossed = app
        .post_as(
            &jwt,
            "/v1/auth/passkey/register/verify",
            json!({ "ceremony_id": options.str("ceremony_id"), "credential": key.attest(&options.body["options"]) }),
        )
        .await;
    assert_eq!((crossed.status, crossed.code()), (401, "invalid_token"));

    // Five minutes and a second later, a ceremony is gone.
    app.state.clock.freeze();
    let options = login_options(&app, json!({})).await;
    app.state.clock.advance(301);
    let expired = login_verify(&app, &options.str("ceremony_id"), key.assert(&options.body["options"])).await;
    assert_eq!((expired.status, expired.code()), (401, "invalid_token"));
    let forged = login_verify(
        &app,
        &keygate::secret::random_b64(32),
        key.assert(&options.body["options"]),
    )
    .await;
    assert_eq!((forged.status, forged.code()), (401, "invalid_token"));
}

#[tokio::test]
async fn wrong_origin_wrong_rp_and_no_user_verification_are_refused() {
    let app = TestApp::spawn().await;
    let (email, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    for (tamper, what) in [("origin", "origin"), ("rp", "relying party"), ("uv", "verify")] {
        let (_, refused) = register_with(&app, &jwt, |key| match tamper {
            "origin" => key.origin = "https://evil.example".to_owned(),
            "rp" => key.rp_id = "evil.example".to_owned(),
            _ => key.user_verified = false,
        })
        .await;
        assert_eq!(
            (refused.status, refused.code()),
            (400, "invalid_passkey"),
            "{tamper}: {:?}",
            refused.body
        );
        assert!(
            refused.body["error"]["message"].as_str().unwrap().contains(what),
            "{:?}",
            refused.body
        );
    }
    let (mut key, created) = register(&app, &jwt, None).await;
    assert_eq!(created.status, 201);
    for tamper in ["origin", "rp", "uv"] {
        let (origin, rp_id, uv) = (key.origin.clone(), key.rp_id.clone(), key.user_verified);
        match tamper {
            "origin" => key.origin = "https://evil.example".to_owned(),
            "rp" => key.rp_id = "evil.example".to_owned(),
            _ => key.user_verified = false,
        }
        let refused = sign_in(&app, &key, Some(&email)).await;
        assert_eq!(
            (refused.status, refused.code()),
            (401, "invalid_credentials"),
            "{tamper}"
        );
        (key.origin, key.rp_id, key.user_verified) = (origin, rp_id, uv);
    }
    assert_eq!(sign_in(&app, &key, Some(&email)).await.status, 200);
}

#[tokio::test]
async fn a_credential_registers_once_across_accounts() {
    let app = TestApp::spawn().await;
    let (_, first) = app.signed_up_user().await;
    let (_, second) = app.signed_up_user().await;
    let (key, created) = register(&app, &first.str("access_token"), None).await;
    assert_eq!(created.status, 201);
    // The same credential again, for the same account (excluded) and for another account.
    for session in [&first, &second] {
        let jwt = session.str("access_token");
        let again = register_again(&app, &jwt, &key).await;
        assert_eq!(
            (again.status, again.code()),
            (409, "passkey_already_registered"),
            "{:?}",
            again.body
        );
    }
    // The first account's options exclude its credential.
    let options = app
        .post_as(
            &first.str("access_token"),
            "/v1/auth/passkey/register/options",
            json!({}),
        )
        .await;
    assert_eq!(
        options.body["options"]["publicKey"]["excludeCredentials"],
        json!([{ "type": "public-key", "id": key.id() }])
    );
}

#[tokio::test]
async fn another_account_can_neither_see_nor_use_nor_change_a_passkey() {
    let app = TestApp::spawn().await;
    let (email, owner) = app.signed_up_user().await;
    let (other_email, other) = app.signed_up_user().await;
    let (key, created) = register(&app, &owner.str("access_token"), Some("Mine")).await;
    let id = created.str("id");
    let theirs = other.str("access_token");
    let list = app.get("/v1/auth/passkey/list", Some(&theirs)).await;
    assert_eq!(list.body["passkeys"], json!([]));
    let rename = app
        .send(
            "PATCH",
            &format!("/v1/auth/passkey/{id}"),
            Some(&theirs),
            Some(json!({ "name": "Stolen" }).to_string().into_bytes()),
        )
        .await;
    assert_eq!((rename.status, rename.code()), (404, "not_found"));
    let delete = app
        .send("DELETE", &format!("/v1/auth/passkey/{id}"), Some(&theirs), None)
        .await;
    assert_eq!((delete.status, delete.code()), (404, "not_found"));
    // The owner's passkey answering a ceremony for the other account's address.
    let crossed = sign_in(&app, &key, Some(&other_email)).await;
    assert_eq!((crossed.status, crossed.code()), (401, "invalid_credentials"));
    // A user handle naming the other account does not make the credential theirs.
    let mut impostor = key;
    let own_handle = std::mem::replace(
        &mut impostor.user_handle,
        uuid_bytes(other.body["user"]["id"].as_str().unwrap()),
    );
    let lied = sign_in(&app, &impostor, None).await;
    assert_eq!((lied.status, lied.code()), (401, "invalid_credentials"));
    impostor.user_handle = own_handle;
    assert_eq!(sign_in(&app, &impostor, Some(&email)).await.status, 200);
    // Still the owner's, unchanged.
    let list = app.get("/v1/auth/passkey/list", Some(&owner.str("access_token"))).await;
    assert_eq!(list.body["passkeys"][0]["name"], "Mine");
}

fn uuid_bytes(id: &str) -> Vec<u8> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn rename_and_delete_manage_a_passkey_and_deleting_frees_its_credential() {
    let app = TestApp::spawn().await;
    let (email, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let (key, created) = register(&app, &jwt, None).await;
    assert_eq!(created.body["name"], "Unknown device");
    let id = created.str("id");
    let path = format!("/v1/auth/passkey/{id}");
    let patch = |name: Value| {
        app.send(
            "PATCH",
            &path,
            Some(&jwt),
            Some(json!({ "name": name }).to_string().into_bytes()),
        )
    };
    let renamed = patch(json!("Phone")).await;
    assert_eq!((renamed.status, renamed.body["name"].as_str()), (200, Some("Phone")));
    for bad in [
        json!(""),
        json!("   "),
        json!("x".repeat(65)),
        json!("a\u{202e}b"),
        json!(42),
        Value::Null,
    ] {
        let refused = patch(bad.clone()).await;
        assert!(matches!(refused.status, 400 | 422), "{bad}: {:?}", refused.body);
    }
    let unknown = app.send("DELETE", "/v1/auth/passkey/not-an-id", Some(&jwt), None).await;
    assert_eq!(unknown.status, 404);
    let deleted = app
        .send("DELETE", &format!("/v1/auth/passkey/{id}"), Some(&jwt), None)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        app.send("DELETE", &format!("/v1/auth/passkey/{id}"), Some(&jwt), None)
            .await
            .status,
        404
    );
    let gone = sign_in(&app, &key, Some(&email)).await;
    assert_eq!(gone.status, 401);
    assert_eq!(sign_in(&app, &key, None).await.status, 401);
    // The credential can be registered again.
    let again = register_again(&app, &jwt, &key).await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    let emails = app.emails_to(&email).await;
    assert!(emails
        .iter()
        .any(|(s, b)| s == "A passkey was removed" && b.contains("Phone")));
}

#[tokio::test]
async fn an_unknown_address_gets_options_of_the_same_shape_stable_per_address() {
    let app = TestApp::spawn().await;
    let (email, session) = app.signed_up_user().await;
    let (_, created) = register(&app, &session.str("access_token"), None).await;
    assert_eq!(created.status, 201);
    let (no_passkey, _) = app.signed_up_user().await;
    let unknown = keygate_e2e::unique_email();
    let shape = |answer: &Answer| {
        let public_key = &answer.body["options"]["publicKey"];
        let mut keys: Vec<String> = public_key.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        // Like a real account's, a fake list may be empty (webauthn-rs's distribution mimics accounts without one).
        let allowed = public_key["allowCredentials"].as_array().unwrap();
        assert!(allowed
            .iter()
            .all(|c| c["type"] == "public-key" && c["id"].as_str().unwrap().len() >= 16));
        (keys, answer.body.as_object().unwrap().len())
    };
    let known = login_options(&app, json!({ "email": email })).await;
    let without = login_options(&app, json!({ "email": no_passkey })).await;
    let stranger = login_options(&app, json!({ "email": unknown })).await;
    assert_eq!(shape(&known), shape(&stranger));
    assert_eq!(shape(&known), shape(&without));
    let again = login_options(&app, json!({ "email": unknown })).await;
    assert_eq!(
        stranger.body["options"]["publicKey"]["allowCredentials"],
        again.body["options"]["publicKey"]["allowCredentials"]
    );
    assert_ne!(
        stranger.body["options"]["publicKey"]["challenge"],
        again.body["options"]["publicKey"]["challenge"]
    );
    let bad = app
        .post("/v1/auth/passkey/login/options", json!({ "email": "not an address" }))
        .await;
    assert_eq!(bad.status, 422);
    let both = app
        .post(
            "/v1/auth/passkey/login/options",
            json!({ "email": email, "challenge_token": "x" }),
        )
        .await;
    assert_eq!(both.status, 422);
}

#[tokio::test]
async fn a_passkey_answers_a_second_factor_challenge_and_a_passkey_sign_in_needs_none() {
    let app = TestApp::spawn().await;
    let user = crate::two_factor::enrolled(&app).await;
    let (key, created) = register(&app, &user.session.str("access_token"), None).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(login.body["methods"], json!(["totp", "backup_code", "passkey"]));
    let token = login.str("challenge_token");
    let options = login_options(&app, json!({ "challenge_token": token })).await;
    // The ceremony belongs to this challenge: another challenge cannot use it.
    let other = app.login(&user.email, PASSWORD).await.str("challenge_token");
    let assertion = key.assert(&options.body["options"]);
    let crossed = app
        .post(
            "/v1/auth/2fa/verify",
            json!({ "challenge_token": other, "ceremony_id": options.str("ceremony_id"), "credential": assertion }),
        )
        .await;
    assert_eq!((crossed.status, crossed.code()), (401, "invalid_token"));
    let options = login_options(&app, json!({ "challenge_token": token })).await;
    let tokens = app
        .post(
            "/v1/auth/2fa/verify",
            json!({
                "challenge_token": token,
                "ceremony_id": options.str("ceremony_id"),
                "credential": key.assert(&options.body["options"]),
            }),
        )
        .await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(
        jwt_claims(&tokens.str("access_token"))["amr"],
        json!(["pwd", "swk", "mfa"])
    );
    // A passkey sign-in is already two factors: no challenge.
    let direct = sign_in(&app, &key, Some(&user.email)).await;
    assert_eq!(direct.status, 200, "{:?}", direct.body);
    assert!(direct.body.get("mfa_required").is_none());
    // Both a code and a passkey, or neither: 400.
    let neither = app
        .post("/v1/auth/2fa/verify", json!({ "challenge_token": token }))
        .await;
    assert_eq!(neither.status, 400);
}

#[tokio::test]
async fn only_a_fresh_sign_in_adds_a_passkey_and_a_deleted_account_frees_its_credentials() {
    let app = TestApp::spawn().await;
    app.state.clock.freeze();
    let (email, session) = app.signed_up_user().await;
    app.state.clock.advance(301);
    // A session five minutes old (a stolen one, say), even freshly refreshed, cannot add a passkey.
    let refreshed = app.refresh(&session.str("refresh_token")).await;
    let stale = app
        .post_as(
            &refreshed.str("access_token"),
            "/v1/auth/passkey/register/options",
            json!({}),
        )
        .await;
    assert_eq!((stale.status, stale.code()), (403, "reauthentication_required"));
    let fresh = app.login(&email, PASSWORD).await;
    let (key, created) = register(&app, &fresh.str("access_token"), None).await;
    assert_eq!(created.status, 201, "{:?}", created.body);

    // An invited member registers the key, the root deletes the member: the credential is free again.
    let (_, root) = app.signed_up_user().await;
    let (member_email, member_id, member) = crate::accounts::member(&app, &root.str("access_token"), "backend").await;
    let (member_key, registered) = register_with(&app, &member.str("access_token"), |_| {}).await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    assert_eq!(sign_in(&app, &member_key, Some(&member_email)).await.status, 200);
    let deleted = app
        .send(
            "DELETE",
            &format!("/v1/accounts/{member_id}"),
            Some(&root.str("access_token")),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_eq!(sign_in(&app, &member_key, None).await.status, 401);
    let root_jwt = root.str("access_token");
    let again = register_again(&app, &root_jwt, &member_key).await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    // The first account's passkey was never touched.
    assert_eq!(sign_in(&app, &key, Some(&email)).await.status, 200);
}

#[tokio::test]
async fn tokens_other_than_a_session_cannot_register_and_hostile_input_is_a_clean_4xx() {
    let app = TestApp::spawn().await;
    let (session, pat) = app.user_with_pat(&["profile:read", "sessions:write"]).await;
    let pat = pat.str("token");
    let refused = app.post_as(&pat, "/v1/auth/passkey/register/options", json!({})).await;
    assert_eq!((refused.status, refused.code()), (403, "insufficient_scope"));
    assert_eq!(app.get("/v1/auth/passkey/list", Some(&pat)).await.status, 200);
    let anonymous = app.post("/v1/auth/passkey/register/options", json!({})).await;
    assert_eq!(anonymous.status, 401);
    let jwt = session.str("access_token");
    let options = app.post_as(&jwt, "/v1/auth/passkey/register/options", json!({})).await;
    let ceremony = options.str("ceremony_id");
    for body in [
        json!({}),
        json!({ "ceremony_id": ceremony }),
        json!({ "ceremony_id": ceremony, "credential": {} }),
        json!({ "ceremony_id": ceremony, "credential": "junk" }),
        json!({ "ceremony_id": ceremony, "credential": { "id": "x", "rawId": "!!", "type": "public-key", "response": {} } }),
        json!({ "ceremony_id": 5, "credential": null }),
    ] {
        let answer = app
            .post_as(&jwt, "/v1/auth/passkey/register/verify", body.clone())
            .await;
        assert!((400..500).contains(&answer.status), "{body}: {:?}", answer.body);
    }
    let garbage = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": { "attestationObject": "AAAA", "clientDataJSON": "AAAA" },
    });
    let answer = app
        .post_as(
            &jwt,
            "/v1/auth/passkey/register/verify",
            json!({ "ceremony_id": ceremony, "credential": garbage }),
        )
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (400, "invalid_passkey"),
        "{:?}",
        answer.body
    );
    let options = login_options(&app, json!({})).await;
    let junk = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": { "authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA", "userHandle": "AAAA" },
    });
    let answer = login_verify(&app, &options.str("ceremony_id"), junk).await;
    assert_eq!(
        (answer.status, answer.code()),
        (401, "invalid_credentials"),
        "{:?}",
        answer.body
    );
    let huge = app
        .send("POST", "/v1/auth/passkey/login/verify", None, Some(vec![b'a'; 100_000]))
        .await;
    assert_eq!(huge.status, 413);
}
