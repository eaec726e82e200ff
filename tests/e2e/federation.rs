//! Issue 14: federated sign-in. Google ID tokens and Entra ID single sign-on against a local OpenID issuer in the
//! harness (`keygate_e2e::oidc`), which plays Google and several Entra tenants, serves its JWKS and runs the code
//! flow with PKCE.

use keygate_e2e::jwt_claims as claims;
use keygate_e2e::oidc::{OidcIssuer, GOOGLE_CLIENT_ID, REDIRECT_URI};
use keygate_e2e::{unique, unique_email, Answer, TestApp, PASSWORD};
use serde_json::{json, Value};

const TID: &str = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9";
const OTHER_TID: &str = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";

/// An app whose Google audience and JWKS are the issuer's, with an IdP document of its own.
async fn app_with(issuer: &OidcIssuer) -> TestApp {
    let jwks = issuer.jwks_url();
    let secret = unique("keygate-test/idp-");
    let app = TestApp::spawn_with(move |c| {
        c.google_client_ids = vec![GOOGLE_CLIENT_ID.to_owned()];
        c.google_jwks_url = jwks;
        c.idp_secret_id = secret;
        c.idp_cache_ttl = 0;
    })
    .await;
    issuer.follow_clock(&app.state);
    app
}

async fn google(app: &TestApp, body: Value) -> Answer {
    app.post("/v1/auth/google", body).await
}

fn jwt(tokens: &Answer) -> String {
    tokens.str("access_token")
}

#[tokio::test]
async fn a_new_google_identity_gets_an_account_and_returns_to_it_whatever_its_address_says() {
    let issuer = OidcIssuer::spawn().await;
    let app = app_with(&issuer).await;
    let email = unique_email();
    let token = issuer.google_token(json!({ "sub": "g-1001", "email": email, "name": "Grace" }));
    let first = google(&app, json!({ "id_token": token })).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["user"]["email"], email.as_str());
    assert_eq!(first.body["user"]["has_password"], false);
    assert_eq!(claims(&jwt(&first))["amr"], json!(["google"]));
    assert!(claims(&jwt(&first))["tenant"].is_string(), "a tenant of its own");
    let replayed = google(&app, json!({ "id_token": token })).await;
    assert_eq!(
        (replayed.status, replayed.code()),
        (401, "invalid_token"),
        "an ID token signs in once"
    );

    let moved = issuer.google_token(json!({ "sub": "g-1001", "email": unique_email() }));
    let again = google(&app, json!({ "id_token": moved })).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.user_id(), first.user_id(), "the subject decides, not the address");
    let listed = app.get("/v1/auth/identities", Some(&jwt(&again))).await;
    assert_eq!(listed.body["identities"][0]["provider"], "google");
    assert_eq!(listed.body["identities"][0]["subject"], "g-1001");
}

#[tokio::test]
async fn google_attaches_to_an_existing_account_only_where_it_is_authoritative() {
    let issuer = OidcIssuer::spawn().await;
    let app = app_with(&issuer).await;
    let (email, owner) = app.signed_up_user().await;
    let domain = email.split_once('@').unwrap().1.to_owned();
    // Verified, but Google is not authoritative for example.com without an `hd` claim naming it.
    let squatter = issuer.google_token(json!({ "sub": "g-2001", "email": email }));
    let refused = google(&app, json!({ "id_token": squatter })).await;
    assert_eq!((refused.status, refused.code()), (409, "account_exists"));
    assert_eq!(
        app.login(&email, PASSWORD).await.status,
        200,
        "the account is untouched"
    );
    let other_hd = issuer.google_token(json!({ "sub": "g-2002", "email": email, "hd": "elsewhere.com" }));
    assert_eq!(google(&app, json!({ "id_token": other_hd })).await.status, 409);

    let workspace = issuer.google_token(json!({ "sub": "g-2003", "email": email, "hd": domain }));
    let linked = google(&app, json!({ "id_token": workspace })).await;
    assert_eq!(linked.status, 200, "{:?}", linked.body);
    assert_eq!(linked.user_id(), owner.user_id(), "linked to the existing account");
}

#[tokio::test]
async fn a_pending_registration_proven_by_google_keeps_no_password() {
    let issuer = OidcIssuer::spawn().await;
    let app = app_with(&issuer).await;
    let email = unique_email();
    let domain = email.split_once('@').unwrap().1.to_owned();
    assert_eq!(
        app.register(&email, PASSWORD).await.status,
        202,
        "someone registers the address"
    );
    let token = issuer.google_token(json!({ "sub": "g-3001", "email": email, "hd": domain }));
    let signed_in = google(&app, json!({ "id_token": token })).await;
    assert_eq!(signed_in.status, 200, "{:?}", signed_in.body);
    assert_eq!(
        signed_in.body["user"]["has_password"], false,
        "the unproven password is gone"
    );
    assert_eq!(app.login(&email, PASSWORD).await.status, 401);
}

#[tokio::test]
async fn google_tokens_that_fail_any_check_are_refused() {
    let issuer = OidcIssuer::spawn().await;
    let app = app_with(&issuer).await;
    let now = issuer.now();
    let email = unique_email();
    let base = json!({ "sub": "g-4001", "email": email });
    let with = |extra: Value| {
        let mut claims = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };
    let cases = [
        (
            "wrong aud",
            issuer.google_token(with(json!({ "aud": "someone-else.apps.googleusercontent.com" }))),
        ),
        (
            "wrong iss",
            issuer.google_token(with(json!({ "iss": "https://evil.example.com" }))),
        ),
        (
            "expired",
            issuer.google_token(with(json!({ "exp": now - 120, "iat": now - 4000 }))),
        ),
        ("not yet valid", issuer.google_token(with(json!({ "nbf": now + 600 })))),
        (
            "issued in the future",
            issuer.google_token(with(json!({ "iat": now + 600 }))),
        ),
        (
            "unverified email",
            issuer.google_token(with(json!({ "email_verified": false }))),
        ),
        (
            "unknown kid",
            issuer.sign_unpublished(&issuer.google_claims(base.clone())),
        ),
        ("HS256", issuer.sign_hs256(&issuer.google_claims(base.clone()))),
        ("alg none", issuer.unsigned(&issuer.google_claims(base.clone()))),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (why, token) in cases {
        let refused = google(&app, json!({ "id_token": token })).await;
        assert_eq!(refused.status, 401, "{why}: {:?}", refused.body);
    }
    let nonce = issuer.google_token(with(json!({ "nonce": "expected-nonce" })));
    let wrong = google(&app, json!({ "id_token": nonce, "nonce": "another" })).await;
    assert_eq!(wrong.status, 401, "a nonce that differs");
    let right = issuer.google_token(with(json!({ "nonce": "expected-nonce", "sub": "g-4002" })));
    let ok = google(&app, json!({ "id_token": right, "nonce": "expected-nonce" })).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    for bad in [json!({}), json!({ "id_token": 42 })] {
        assert_eq!(google(&app, bad).await.status, 400);
    }
    assert_eq!(
        app.send("POST", "/v1/auth/google", None, Some(b"{".to_vec()))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn google_is_off_without_client_ids() {
    let issuer = OidcIssuer::spawn().await;
    let app = TestApp::spawn().await;
    let token = issuer.google_token(json!({ "sub": "g-5001", "email": unique_email() }));
    let off = google(&app, json!({ "id_token": token })).await;
    assert_eq!(off.status, 404, "{:?}", off.body);
}

/// A tenant with an Entra entry for a fresh domain: (root's tokens, the domain, the entry id).
async fn entra_tenant(app: &TestApp, issuer: &OidcIssuer) -> (Answer, String, String) {
    let (_, root) = app.signed_up_user().await;
    let tenant = claims(&jwt(&root))["tenant"].as_str().unwrap().to_owned();
    let domain = format!("{}.example.org", unique("corp"));
    let id = unique("contoso-");
    let entry = issuer.entra_entry(&id, &tenant, &[&domain], &[TID], REDIRECT_URI);
    app.put_idp_document(&json!({ "idps": [entry] })).await;
    (root, domain, id)
}

async fn sso_start(app: &TestApp, query: &str) -> Answer {
    app.get(&format!("/v1/auth/sso/start?{query}"), None).await
}

async fn sso(app: &TestApp, body: Value) -> Answer {
    app.post("/v1/auth/sso", body).await
}

#[tokio::test]
async fn entra_single_sign_on_creates_a_directory_account_in_the_entrys_tenant() {
    let issuer = OidcIssuer::spawn().await;
    let app = app_with(&issuer).await;
    let (root, domain, _) = entra_tenant(&app, &issuer).await;
    let email = format!("alice@{domain}");
    let started = sso_start(&app, &format!("email={email}")).await;
    assert_eq!(started.status, 200, "{:?}", started.body);
    let url = started.str("authorization_url");
    assert!(
        url.contains("code_challenge_method=S256") && url.contains("nonce="),
        "{url}"
    );
    let (code, state) = issuer
        .sign_in(
            &url,
            TID,
            json!({ "oid": "5e0a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b", "email": email }),
        )
        .await;
    assert_eq!(state, started.str("state"));
    let signed_in = sso(&app, json!({ "code": code, "state": state })).await;
    assert_eq!(signed_in.status, 200, "{:?}", signed_in.body);
    let access = claims(&jwt(&signed_in));
    assert_eq!(access["tenant"], claims(&jwt(&root))["tenant"]);
    assert_eq!(access["role"], "backend");
    assert_eq!(access["amr"], json!(["entra"]));
    let replayed = sso(&app, json!({ "code": code, "state": state })).await;
    assert_eq!(
        (replayed.status, replayed.code()),
        (401, "invalid_token"),
        "a state is used once"
    );

    // The directory decides the password.
    let change = app
        .post_as(
            &jwt(&signed_in),
            "/v1/auth/change-password",
            json!({ "new_password": "a local password 99" }),
        )
        .await;
    assert_eq!((change.status, change.code()), (409, "password_managed_externally"));

    // Returning, under another address, signs in to the same account.
    let again = sso_start(&app, &format!("email={email}")).await;
    let (code, state) = issuer
        .sign_in(
            &again.str("authorization_url"),
            TID,
            json!({ "oid": "5e0a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b", "email": format!("alice.renamed@{domain}") }),
        )
        .await;
    let returning = sso(&app, json!({ "code": code, "state": state })).await;
    assert_eq!(returning.status, 200, "{:?}", returning.body);
    assert_eq!(returning.user_id(), signed_in.user_id());
}

#[tokio::test]
async fn an_entra_address_never_takes_over_a_local_account() {
    let issuer = OidcIssuer::spawn().await;
    let app = app_with(&issuer).await;
    let (_, domain, _) = entra_tenant(&app, &issuer).await;
    let victim = format!("victim@{domain}");
    assert_eq!(app.register(&victim, PASSWORD).await.status, 202);
    let code = app.code_sent_to(&victim, "verification code").await;
    assert_eq!(app.verify(&victim, &code).await.status, 200);

    let started = sso_start(&app, &format!("email={victim}")).await;
    let (code, state) = issuer
        .sign_in(
            &started.str("authorization_url"),
            TID,
            json!({ "oid": "0a0b0c0d-1e1f-4a2b-8c3d-4e5f6a7b8c9d", "email": victim, "preferred_username": victim }),
        )
        .await;
    let refused = sso(&app, json!({ "code": code, "state": state })).await;
    assert_eq!((refused.status, refused.code()), (409, "account_exists"), "nOAuth");
    let own = app.login(&victim, PASSWORD).await;
    assert_eq!(own.status, 200, "the account is untouched");
    let identities = app.get("/v1/auth/identities", Some(&jwt(&own))).await;
    assert_eq!(identities.body["identities"], json!([]));
}

#[tokio::test]
async fn entra_tokens_and_states_that_fail_any_check_are_refused() {
    let issuer = OidcIssuer::spawn().await;
    let app = app_with(&issuer).await;
    let (_, domain, id) = entra_tenant(&app, &issuer).await;
    let email = format!("bob@{domain}");
    let by_id = format!("idp={id}");
    let start = || sso_start(&app, &by_id);

    // A tenant that is not on the entry's allow-list.
    let started = start().await;
    let (code, state) = issuer
        .sign_in(&started.str("authorization_url"), OTHER_TID, json!({ "email": email }))
        .await;
    assert_eq!(sso(&app, json!({ "code": code, "state": state })).await.status, 401);
    // An ID token whose nonce is not the state's.
    let started = start().await;
    let (code, state) = issuer
        .sign_in(
            &started.str("authorization_url"),
            TID,
            json!({ "email": email, "nonce": "forged" }),
        )
        .await;
    assert_eq!(sso(&app, json!({ "code": code, "state": state })).await.status, 401);
    // An expired state.
    let started = start().await;
    let (code, state) = issuer
        .sign_in(&started.str("authorization_url"), TID, json!({ "email": email }))
        .await;
    app.state.clock.advance(601);
    assert_eq!(sso(&app, json!({ "code": code, "state": state })).await.status, 401);
    // A state nobody issued, and bad bodies.
    let forged = sso(&app, json!({ "code": "x", "state": keygate::secret::random_b64(32) })).await;
    assert_eq!(forged.status, 401);
    for bad in [
        json!({}),
        json!({ "code": "x" }),
        json!({ "code": "x", "state": "y", "idp": id }),
    ] {
        assert_eq!(sso(&app, bad).await.status, 422);
    }
    assert_eq!(
        sso_start(&app, "email=someone@unknown-domain.example").await.status,
        404
    );
    assert_eq!(sso_start(&app, "").await.status, 422);
    assert_eq!(sso_start(&app, &format!("idp={id}&email={email}")).await.status, 422);

    // The MSAL path: an ID token the app got itself, accepted once.
    let token = issuer.entra_token(
        TID,
        json!({ "email": email, "oid": "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d" }),
    );
    let first = sso(&app, json!({ "id_token": token, "idp": id })).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(
        sso(&app, json!({ "id_token": token, "idp": id })).await.status,
        401,
        "replayed"
    );
    // An address outside the entry's domains creates nothing.
    let outside = issuer.entra_token(TID, json!({ "email": unique_email() }));
    let refused = sso(&app, json!({ "id_token": outside, "idp": id })).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
}

#[tokio::test]
async fn identities_link_and_unlink_under_their_rules() {
    let issuer = OidcIssuer::spawn().await;
    let app = app_with(&issuer).await;
    let (_, domain, id) = entra_tenant(&app, &issuer).await;
    let (email, tokens) = app.signed_up_user().await;
    let session = jwt(&tokens);

    // Google, with its ID token.
    let token = issuer.google_token(json!({ "sub": "g-6001", "email": unique_email() }));
    let linked = app
        .post_as(
            &session,
            "/v1/auth/identities/link",
            json!({ "provider": "google", "id_token": token }),
        )
        .await;
    assert_eq!(linked.status, 201, "{:?}", linked.body);
    let via_google = google(
        &app,
        json!({ "id_token": issuer.google_token(json!({ "sub": "g-6001" })) }),
    )
    .await;
    assert_eq!(
        via_google.user_id(),
        tokens.user_id(),
        "the linked identity signs in to the account"
    );

    // Entra: the state names this user and session; a sign-in state is refused here, a link state at /sso.
    let sign_in_state = sso_start(&app, &format!("idp={id}")).await;
    let (code, state) = issuer
        .sign_in(
            &sign_in_state.str("authorization_url"),
            TID,
            json!({ "email": format!("c@{domain}") }),
        )
        .await;
    let crossed = app
        .post_as(
            &session,
            "/v1/auth/identities/link",
            json!({ "provider": "entra", "code": code, "state": state }),
        )
        .await;
    assert_eq!(crossed.status, 401, "{:?}", crossed.body);
    let started = app
        .get(
            &format!("/v1/auth/identities/link/start?provider=entra&idp={id}"),
            Some(&session),
        )
        .await;
    assert_eq!(started.status, 200, "{:?}", started.body);
    let (code, state) = issuer
        .sign_in(
            &started.str("authorization_url"),
            TID,
            json!({ "oid": "1f2e3d4c-5b6a-4789-8a9b-0c1d2e3f4a5b" }),
        )
        .await;
    let at_sso = sso(&app, json!({ "code": code, "state": state })).await;
    assert_eq!(at_sso.status, 401, "a link state never signs anyone in");
    let started = app
        .get(
            &format!("/v1/auth/identities/link/start?provider=entra&idp={id}"),
            Some(&session),
        )
        .await;
    let (stranger_email, stranger) = app.signed_up_user().await;
    let (code, state) = issuer
        .sign_in(
            &started.str("authorization_url"),
            TID,
            json!({ "oid": "2a3b4c5d-6e7f-4081-9a2b-3c4d5e6f7a8b" }),
        )
        .await;
    let stolen = app
        .post_as(
            &jwt(&stranger),
            "/v1/auth/identities/link",
            json!({ "provider": "entra", "code": code, "state": state }),
        )
        .await;
    assert_eq!(stolen.status, 401, "another user's link state");
    let started = app
        .get(
            &format!("/v1/auth/identities/link/start?provider=entra&idp={id}"),
            Some(&session),
        )
        .await;
    let (code, state) = issuer
        .sign_in(
            &started.str("authorization_url"),
            TID,
            json!({ "oid": "3b4c5d6e-7f80-4192-8b3c-4d5e6f7a8b9c" }),
        )
        .await;
    let entra = app
        .post_as(
            &session,
            "/v1/auth/identities/link",
            json!({ "provider": "entra", "code": code, "state": state }),
        )
        .await;
    assert_eq!(entra.status, 201, "{:?}", entra.body);
    let listed = app.get("/v1/auth/identities", Some(&session)).await;
    assert_eq!(listed.body["identities"].as_array().map(Vec::len), Some(2));

    // One identity belongs to one account.
    let again = issuer.google_token(json!({ "sub": "g-6001" }));
    let taken = app
        .post_as(
            &jwt(&stranger),
            "/v1/auth/identities/link",
            json!({ "provider": "google", "id_token": again }),
        )
        .await;
    assert_eq!(taken.status, 409);
    // Someone else's id is 404.
    let google_id = linked.str("id");
    let path = format!("/v1/auth/identities/{google_id}");
    assert_eq!(app.send("DELETE", &path, Some(&jwt(&stranger)), None).await.status, 404);
    assert_eq!(app.send("DELETE", &path, Some(&session), None).await.status, 204);
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);
    let _ = stranger_email;
}

#[tokio::test]
async fn the_last_way_in_cannot_be_unlinked() {
    let issuer = OidcIssuer::spawn().await;
    let app = app_with(&issuer).await;
    let token = issuer.google_token(json!({ "sub": "g-7001", "email": unique_email() }));
    let signed_in = google(&app, json!({ "id_token": token })).await;
    let listed = app.get("/v1/auth/identities", Some(&jwt(&signed_in))).await;
    let id = listed.body["identities"][0]["id"].as_str().unwrap().to_owned();
    let refused = app
        .send(
            "DELETE",
            &format!("/v1/auth/identities/{id}"),
            Some(&jwt(&signed_in)),
            None,
        )
        .await;
    assert_eq!((refused.status, refused.code()), (409, "conflict"));
    // With a password set, it can go.
    let set = app
        .post_as(
            &jwt(&signed_in),
            "/v1/auth/change-password",
            json!({ "new_password": "now a local one 77" }),
        )
        .await;
    assert_eq!(set.status, 204, "{:?}", set.body);
    let relogin = google(
        &app,
        json!({ "id_token": issuer.google_token(json!({ "sub": "g-7001" })) }),
    )
    .await;
    let gone = app
        .send(
            "DELETE",
            &format!("/v1/auth/identities/{id}"),
            Some(&jwt(&relogin)),
            None,
        )
        .await;
    assert_eq!(gone.status, 204, "{:?}", gone.body);
}

#[tokio::test]
async fn a_federated_sign_in_meets_the_second_factor() {
    let issuer = OidcIssuer::spawn().await;
    let app = app_with(&issuer).await;
    let enrolled = crate::two_factor::enrolled(&app).await;
    let token = issuer.google_token(json!({ "sub": "g-8001", "email": unique_email() }));
    let linked = app
        .post_as(
            &enrolled.jwt(),
            "/v1/auth/identities/link",
            json!({ "provider": "google", "id_token": token }),
        )
        .await;
    assert_eq!(linked.status, 201, "{:?}", linked.body);
    let challenged = google(
        &app,
        json!({ "id_token": issuer.google_token(json!({ "sub": "g-8001" })) }),
    )
    .await;
    assert_eq!(challenged.status, 200);
    crate::two_factor::assert_challenge(&challenged);
}

#[tokio::test]
async fn linking_needs_a_fresh_sign_in_tells_the_owner_and_never_adds_a_second_google_identity_by_address() {
    let issuer = OidcIssuer::spawn().await;
    let app = app_with(&issuer).await;
    app.state.clock.freeze();
    let (email, tokens) = app.signed_up_user().await;
    let domain = email.split_once('@').unwrap().1.to_owned();
    app.state.clock.advance(301);
    let token = issuer.google_token(json!({ "sub": "g-9001", "email": unique_email() }));
    let stale = app
        .post_as(
            &jwt(&tokens),
            "/v1/auth/identities/link",
            json!({ "provider": "google", "id_token": token }),
        )
        .await;
    assert_eq!((stale.status, stale.code()), (403, "reauthentication_required"));
    let start = app
        .get("/v1/auth/identities/link/start?provider=entra", Some(&jwt(&tokens)))
        .await;
    assert_eq!(start.status, 403);

    let fresh = app.login(&email, PASSWORD).await;
    let token = issuer.google_token(json!({ "sub": "g-9001", "email": unique_email() }));
    let linked = app
        .post_as(
            &jwt(&fresh),
            "/v1/auth/identities/link",
            json!({ "provider": "google", "id_token": token }),
        )
        .await;
    assert_eq!(linked.status, 201, "{:?}", linked.body);
    let subjects: Vec<String> = app.emails_to(&email).await.into_iter().map(|(s, _)| s).collect();
    assert!(
        subjects.iter().any(|s| s == "A new way to sign in was added"),
        "{subjects:?}"
    );

    // A different Google subject claiming the same (Workspace) address is not attached: the account has one.
    let recycled = issuer.google_token(json!({ "sub": "g-9002", "email": email, "hd": domain }));
    let refused = google(&app, json!({ "id_token": recycled })).await;
    assert_eq!((refused.status, refused.code()), (409, "account_exists"));
}
