//! Issue 9's attacks, each run over HTTP as a stranger or a thief would run it. Every test here failed against
//! the code before the hardening.

use keygate_e2e::jwt_claims as claims;
use keygate_e2e::{authorizer_event, link_token, random_loopback, unique_email, Answer, TestApp, PASSWORD};
use serde_json::{json, Value};

const ATTACKER_PASSWORD: &str = "attacker chosen passphrase";
const WRONG: &str = "definitely not the password";

async fn otp_login(app: &TestApp, email: &str) -> Answer {
    let sent = app
        .post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
        .await;
    assert_eq!(sent.status, 202, "{:?}", sent.body);
    let code = app.code_sent_to(email, "sign-in code").await;
    app.post("/v1/auth/otp/login", json!({ "email": email, "code": code }))
        .await
}

// Item 1: pre-hijacking through a pending registration.

#[tokio::test]
async fn a_pending_password_does_not_survive_a_code_login() {
    let app = TestApp::spawn().await;
    let victim = unique_email();
    // The attacker registers the victim's address and never verifies.
    assert_eq!(app.register(&victim, ATTACKER_PASSWORD).await.status, 202);
    // Later the victim signs in with an emailed code.
    let tokens = otp_login(&app, &victim).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(tokens.body["user"]["has_password"], false);
    let attacker = app.login(&victim, ATTACKER_PASSWORD).await;
    assert_eq!((attacker.status, attacker.code()), (401, "invalid_credentials"));
    // The welcome mail tells the owner there is no password yet.
    let welcome = app.emails_to(&victim).await;
    let (subject, body) = welcome.last().unwrap();
    assert_eq!(subject, "Welcome to your new account");
    assert!(body.contains("no password yet"), "{body}");
}

#[tokio::test]
async fn a_pending_password_does_not_survive_a_magic_link() {
    let app = TestApp::spawn().await;
    let victim = unique_email();
    app.register(&victim, ATTACKER_PASSWORD).await;
    app.post("/v1/auth/magic-link/send", json!({ "email": victim })).await;
    let emails = app.emails_to(&victim).await;
    // Concurrent tests' pollers may deliver the registration code after the link: find the link.
    let (_, link) = emails
        .iter()
        .rev()
        .find(|(_, body)| body.contains("magic-link?token="))
        .unwrap();
    let token = link_token(link);
    let tokens = app.post("/v1/auth/magic-link/login", json!({ "token": token })).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(tokens.body["user"]["has_password"], false);
    assert_eq!(app.login(&victim, ATTACKER_PASSWORD).await.status, 401);
}

#[tokio::test]
async fn a_second_registration_contests_the_first_and_neither_password_opens_the_account() {
    let app = TestApp::spawn().await;
    let victim = unique_email();
    assert_eq!(app.register(&victim, PASSWORD).await.status, 202);
    app.state.clock.advance(30);
    // The attacker registers the same pending address with a password of their own, twice (a contest is not undone
    // by registering again).
    let attacker = app.from_ip(random_loopback());
    assert_eq!(attacker.register(&victim, ATTACKER_PASSWORD).await.status, 202);
    assert_eq!(attacker.register(&victim, ATTACKER_PASSWORD).await.status, 202);
    // The victim enters the newest code from their inbox and is signed in.
    let code = app.code_sent_to(&victim, "verification code").await;
    let verified = app.verify(&victim, &code).await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
    assert_eq!(verified.body["user"]["has_password"], false);
    assert_eq!(attacker.login(&victim, ATTACKER_PASSWORD).await.status, 401);
    assert_eq!(app.login(&victim, PASSWORD).await.status, 401);

    // The owner sets a password from the fresh session, without a current one.
    let access = verified.str("access_token");
    let set = app
        .post_as(
            &access,
            "/v1/auth/change-password",
            json!({ "new_password": "the owner's own passphrase" }),
        )
        .await;
    assert_eq!(set.status, 204, "{:?}", set.body);
    assert_eq!(app.login(&victim, "the owner's own passphrase").await.status, 200);
    assert_eq!(attacker.login(&victim, ATTACKER_PASSWORD).await.status, 401);
}

#[tokio::test]
async fn a_stolen_access_token_cannot_set_a_first_password_once_the_sign_in_is_old() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, ATTACKER_PASSWORD).await;
    let tokens = otp_login(&app, &email).await;
    assert_eq!(
        claims(&tokens.str("access_token"))["auth_time"],
        claims(&tokens.str("access_token"))["iat"]
    );
    // Five minutes later, even a refreshed access token is too old a sign-in.
    app.state.clock.advance(301);
    let refreshed = app.refresh(&tokens.str("refresh_token")).await;
    assert_eq!(refreshed.status, 200);
    let late = app
        .post_as(
            &refreshed.str("access_token"),
            "/v1/auth/change-password",
            json!({ "new_password": "thief's permanent password" }),
        )
        .await;
    assert_eq!((late.status, late.code()), (403, "reauthentication_required"));
    assert_eq!(app.login(&email, "thief's permanent password").await.status, 401);
    // A fresh sign-in can.
    let fresh = otp_login(&app, &email).await;
    let set = app
        .post_as(
            &fresh.str("access_token"),
            "/v1/auth/change-password",
            json!({ "new_password": "a proper new passphrase" }),
        )
        .await;
    assert_eq!(set.status, 204, "{:?}", set.body);
    // With a password, the current one is required again.
    let fresh = app.login(&email, "a proper new passphrase").await;
    let missing = app
        .post_as(
            &fresh.str("access_token"),
            "/v1/auth/change-password",
            json!({ "new_password": "yet another passphrase" }),
        )
        .await;
    assert_eq!((missing.status, missing.code()), (400, "invalid_request"));
}

// Item 2: fast lockout.

#[tokio::test]
async fn a_burst_of_wrong_passwords_from_many_addresses_gets_a_handful_of_verdicts() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    let sprayers: Vec<TestApp> = (0..12).map(|_| app.from_ip(random_loopback())).collect();
    let guesses = sprayers
        .iter()
        .flat_map(|sprayer| (0..10).map(|_| sprayer.login(&email, WRONG)));
    let answers = futures::future::join_all(guesses).await;
    let judged = answers.iter().filter(|a| a.status == 401).count();
    let refused = answers.iter().filter(|a| a.status == 429).count();
    assert_eq!(
        judged + refused,
        120,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert!(judged <= 10, "{judged} of 120 parallel guesses were judged");
    // Far from the lockout ceiling: the owner gets in once the wait is over.
    let record = app.items(&format!("LOGINFAIL#{email}")).await;
    let failures: i64 = record[0]["failures"].as_n().unwrap().parse().unwrap();
    assert!(failures <= 10, "{failures}");
    app.state.clock.advance(900);
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn guesses_of_the_current_password_spend_the_login_backoff() {
    let app = TestApp::spawn().await;
    app.state.clock.freeze();
    let (email, tokens) = app.signed_up_user().await;
    let access = tokens.str("access_token");
    for _ in 0..5 {
        let wrong = app.change_password(&access, WRONG, "a brand new passphrase").await;
        assert_eq!(wrong.code(), "invalid_current_password");
    }
    let early = app.change_password(&access, PASSWORD, "a brand new passphrase").await;
    assert_eq!((early.status, early.code()), (429, "rate_limited"));
    // The same backoff as login: a thief with a session cannot guess through either door.
    assert_eq!(app.login(&email, PASSWORD).await.status, 429);
    app.state.clock.advance(2);
    assert_eq!(
        app.change_password(&access, PASSWORD, "a brand new passphrase")
            .await
            .status,
        204
    );
}

// Item 3: recovery starved by notices.

#[tokio::test]
async fn registrations_of_a_verified_address_never_starve_its_reset_mail() {
    let app = TestApp::spawn_with(|c| c.rate_limits = keygate_e2e::defaults().rate_limits).await;
    let now = app.state.clock.now();
    app.state.clock.advance(3_600 - now.rem_euclid(3_600) + 1);
    let (email, _) = app.signed_up_user().await;
    let stranger = app.from_ip(random_loopback());
    for _ in 0..8 {
        app.state.clock.advance(31);
        let answer = stranger.register(&email, ATTACKER_PASSWORD).await;
        assert_eq!(answer.status, 202, "the answer never tells");
    }
    let notices = app
        .emails_to(&email)
        .await
        .iter()
        .filter(|(subject, _)| subject == "You already have an account")
        .count();
    assert_eq!(notices, 2, "notices have a small budget of their own");
    let reset = app
        .post("/v1/auth/password-reset-request", json!({ "email": email }))
        .await;
    assert_eq!(reset.status, 202, "{:?}", reset.body);
    app.code_sent_to(&email, "reset code").await;
}

#[tokio::test]
async fn refused_requests_do_not_spend_the_mail_budget() {
    let app = TestApp::spawn_with(|c| c.rate_limits = keygate_e2e::defaults().rate_limits).await;
    let now = app.state.clock.now();
    app.state.clock.advance(3_600 - now.rem_euclid(3_600) + 1);
    let email = unique_email();
    let send = || app.post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }));
    for round in 0..5 {
        assert_eq!(send().await.status, 202, "round {round}");
        for _ in 0..3 {
            assert_eq!(send().await.status, 429, "too soon");
        }
        app.state.clock.advance(31);
    }
    assert_eq!(send().await.status, 429, "the hourly budget of 5 is spent");
}

// Item 4: PATs survive account recovery.

#[tokio::test]
async fn a_password_reset_revokes_the_pats_a_stolen_session_minted() {
    let app = TestApp::spawn().await;
    let (email, session) = app.signed_up_user().await;
    let stolen = app
        .post_as(
            &session.str("access_token"),
            "/v1/api-tokens",
            json!({ "name": "backdoor", "scopes": ["tokens:write", "profile:read"], "expires_in_days": 365 }),
        )
        .await;
    let backdoor = stolen.str("token");
    assert_eq!(app.me(&backdoor).await.status, 200);

    assert_eq!(
        app.reset_password(&email, "the owner's new passphrase").await.status,
        204
    );
    let after = app.me(&backdoor).await;
    assert_eq!((after.status, after.code()), (401, "invalid_token"));
    let notice = app.emails_to(&email).await;
    assert!(notice.last().unwrap().1.contains("every API token was revoked"));
    // The owner's listing no longer shows it.
    let fresh = app.login(&email, "the owner's new passphrase").await;
    let list = app.get("/v1/api-tokens", Some(&fresh.str("access_token"))).await;
    assert_eq!(list.body["tokens"], json!([]), "{:?}", list.body);
}

#[tokio::test]
async fn a_password_change_revokes_pats_only_when_asked() {
    let app = TestApp::spawn().await;
    let (session, pat) = app.user_with_pat(&["profile:read"]).await;
    let access = session.str("access_token");
    assert_eq!(
        app.change_password(&access, PASSWORD, "second passphrase here")
            .await
            .status,
        204
    );
    assert_eq!(app.me(&pat.str("token")).await.status, 200, "kept by default");
    let revoking = app
        .post_as(
            &access,
            "/v1/auth/change-password",
            json!({ "current_password": "second passphrase here", "new_password": "third passphrase here",
                    "revoke_api_tokens": true }),
        )
        .await;
    assert_eq!(revoking.status, 204, "{:?}", revoking.body);
    assert_eq!(app.me(&pat.str("token")).await.status, 401);
}

// Item 5: a grace-period secret takes the PAT over.

#[tokio::test]
async fn a_leaked_grace_secret_cannot_rotate_or_delete_its_token() {
    let app = TestApp::spawn().await;
    let (_, pat) = app.user_with_pat(&["profile:read", "tokens:write"]).await;
    let old = pat.str("token");
    let id = pat.str("id");
    let rotated = app
        .post_as(&old, &format!("/v1/api-tokens/{id}/rotate"), json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new = rotated.str("token");

    // During the grace the old secret still works for the token's scopes...
    assert_eq!(app.me(&old).await.status, 200);
    // ...but cannot take the token from its owner.
    let takeover = app
        .post_as(
            &old,
            &format!("/v1/api-tokens/{id}/rotate"),
            json!({ "grace_period_seconds": 0 }),
        )
        .await;
    assert_eq!((takeover.status, takeover.code()), (403, "insufficient_scope"));
    let delete = app
        .send("DELETE", &format!("/v1/api-tokens/{id}"), Some(&old), None)
        .await;
    assert_eq!((delete.status, delete.code()), (403, "insufficient_scope"));
    assert_eq!(app.me(&new).await.status, 200);
    // The current secret still can.
    let again = app
        .post_as(
            &new,
            &format!("/v1/api-tokens/{id}/rotate"),
            json!({ "grace_period_seconds": 0 }),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(app.me(&old).await.status, 401);
}

// Item 6: the authorizer lets revoked sessions through.

async fn authorized(app: &TestApp, token: &str) -> bool {
    authorizer::handle(&app.state, authorizer_event(&format!("Bearer {token}"))).await["isAuthorized"] == json!(true)
}

#[tokio::test]
async fn the_authorizer_denies_revoked_sessions_and_tokens_at_once() {
    let app = TestApp::spawn().await;
    // Logout.
    let (_, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    assert!(authorized(&app, &jwt).await);
    app.post_as(&jwt, "/v1/auth/logout", json!({})).await;
    assert!(!authorized(&app, &jwt).await, "after logout");

    // Reuse detection.
    let (_, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let first = session.str("refresh_token");
    app.refresh(&first).await;
    app.state.clock.advance(11);
    assert_eq!(app.refresh(&first).await.code(), "session_revoked");
    assert!(!authorized(&app, &jwt).await, "after reuse detection");

    // A password reset, for the session and for a PAT.
    let (email, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let pat = app
        .post_as(
            &jwt,
            "/v1/api-tokens",
            json!({ "name": "ci", "scopes": ["profile:read"] }),
        )
        .await
        .str("token");
    assert!(authorized(&app, &pat).await);
    app.reset_password(&email, "the owner's new passphrase").await;
    assert!(!authorized(&app, &jwt).await, "session after reset");
    assert!(!authorized(&app, &pat).await, "PAT after reset");
}

// Item 7: guessing codes across re-sends.

#[tokio::test]
async fn wrong_code_guesses_are_capped_per_address_and_purpose_across_resends() {
    let app = TestApp::spawn_with(|c| c.rate_limits.code_guesses_per_day = 10).await;
    let (email, _) = app.signed_up_user().await;
    let mut last_code = String::new();
    for _ in 0..3 {
        app.post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
            .await;
        last_code = app.code_sent_to(&email, "sign-in code").await;
        let wrong = if last_code == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            app.post("/v1/auth/otp/login", json!({ "email": email, "code": wrong }))
                .await;
        }
    }
    // Ten wrong guesses spent the day's budget: even the right code of a fresh mail is refused for login.
    app.post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
        .await;
    let fresh = app.code_sent_to(&email, "sign-in code").await;
    let refused = app
        .post("/v1/auth/otp/login", json!({ "email": email, "code": fresh }))
        .await;
    assert_eq!((refused.status, refused.code()), (429, "rate_limited"));
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(last_code.len(), 6);
    // The owner can still recover through the other purpose.
    assert_eq!(app.reset_password(&email, "recovered passphrase").await.status, 204);
    assert_eq!(app.login(&email, "recovered passphrase").await.status, 200);
}

#[tokio::test]
async fn right_codes_do_not_spend_the_guess_budget() {
    let app = TestApp::spawn_with(|c| c.rate_limits.code_guesses_per_day = 2).await;
    let (email, _) = app.signed_up_user().await;
    for _ in 0..4 {
        assert_eq!(otp_login(&app, &email).await.status, 200);
    }
}

// Item 9: the smaller ones.

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_often_it_is_refreshed() {
    let app = TestApp::spawn_with(|c| {
        c.refresh_token_ttl = 3_000;
        c.session_max_lifetime = 7_200;
    })
    .await;
    // Frozen before the session starts: under load, seconds can pass between the sign-up and the first refresh.
    app.state.clock.freeze();
    let (_, tokens) = app.signed_up_user().await;
    let mut refresh = tokens.str("refresh_token");
    for round in 1..=3 {
        app.state.clock.advance(2_000);
        let rotated = app.refresh(&refresh).await;
        assert_eq!(rotated.status, 200, "{:?}", rotated.body);
        let left = 7_200 - 2_000 * round;
        let expected = 3_000.min(left);
        let expires_in = rotated.body["refresh_expires_in"].as_i64().unwrap();
        assert!(
            (expected - 1..=expected).contains(&expires_in),
            "{expires_in} vs {expected}"
        );
        refresh = rotated.str("refresh_token");
    }
    app.state.clock.advance(1_201);
    let ended = app.refresh(&refresh).await;
    assert_eq!((ended.status, ended.code()), (401, "invalid_token"));
}

#[tokio::test]
async fn an_old_stolen_refresh_token_still_revokes_the_session() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let stolen = tokens.str("refresh_token");
    let mut current = stolen.clone();
    for _ in 0..12 {
        app.state.clock.advance(60);
        current = app.refresh(&current).await.str("refresh_token");
    }
    let replay = app.refresh(&stolen).await;
    assert_eq!((replay.status, replay.code()), (401, "session_revoked"));
    assert_eq!(app.refresh(&current).await.code(), "session_revoked");
}

#[tokio::test]
async fn every_item_that_expires_carries_its_expiry_bucket() {
    let app = TestApp::spawn().await;
    let (session, pat) = app.user_with_pat(&["profile:read"]).await;
    let email = session.body["user"]["email"].as_str().unwrap().to_owned();
    app.login(&email, WRONG).await;
    app.post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
        .await;
    app.post("/v1/auth/magic-link/send", json!({ "email": email })).await;
    let rotated = app.refresh(&session.str("refresh_token")).await;
    assert_eq!(rotated.status, 200);
    let mut kinds = std::collections::BTreeSet::new();
    for pk in [
        format!("SESSION#{}", session.str("session_id")),
        format!("LOGINFAIL#{email}"),
        format!("EMAIL#{email}"),
        format!("PAT#{}", pat.str("id")),
    ] {
        for item in app.items(&pk).await {
            let Some(expires_at) = item.get("expires_at") else {
                continue;
            };
            let expires_at: i64 = expires_at.as_n().unwrap().parse().unwrap();
            let bucket: i64 = item["expiry_bucket"].as_n().unwrap().parse().unwrap();
            assert_eq!(bucket % 3_600, 0, "{pk}");
            // The hour it expires in (a PAT's: the hour it may be cleaned up, 30 days on).
            assert!(
                bucket <= expires_at + 30 * 86_400 && bucket + 3_600 > expires_at,
                "{pk}"
            );
            let sk = item["sk"].as_s().unwrap();
            kinds.insert(sk.split('#').next().unwrap().to_owned());
        }
    }
    for kind in ["SESSION", "PREV", "LOGINFAIL", "CODE", "PAT"] {
        assert!(kinds.contains(kind), "no {kind} item checked: {kinds:?}");
    }
}

// Item 8: the send endpoints make the same calls for known and unknown addresses.

#[tokio::test]
async fn known_and_unknown_addresses_cause_the_same_dynamodb_and_sqs_calls() {
    let app = TestApp::spawn().await;
    let (known, _) = app.signed_up_user().await;
    let pending = unique_email();
    app.register(&pending, PASSWORD).await;
    type Body = fn(&str) -> Value;
    let requests: [(&str, Body); 5] = [
        ("/v1/auth/otp/send", |e| json!({ "email": e, "purpose": "login" })),
        ("/v1/auth/otp/send", |e| json!({ "email": e, "purpose": "reset" })),
        ("/v1/auth/password-reset-request", |e| json!({ "email": e })),
        ("/v1/auth/magic-link/send", |e| json!({ "email": e })),
        ("/v1/auth/register", |e| json!({ "email": e, "password": PASSWORD })),
    ];
    for (path, body) in requests {
        let mut seen = Vec::new();
        for email in [known.clone(), unique_email(), pending.clone()] {
            app.dynamo_calls.reset();
            app.sqs_calls.reset();
            let answer = app.post(path, body(&email)).await;
            assert_eq!(answer.status, 202, "{path}: {:?}", answer.body);
            seen.push((app.dynamo_calls.snapshot(), app.sqs_calls.snapshot()));
        }
        assert_eq!(seen[0], seen[1], "{path}: known vs unknown");
        assert_eq!(seen[0], seen[2], "{path}: known vs pending");
        assert_eq!(
            seen[0].1.get("SendMessage"),
            Some(&1),
            "{path}: one message in the outbox"
        );
    }
    // And the same answers, on the same calls, in about the same time: a login for an unknown address.
    app.dynamo_calls.reset();
    app.login(&unique_email(), WRONG).await;
    let unknown = app.dynamo_calls.snapshot();
    app.dynamo_calls.reset();
    app.login(&known, WRONG).await;
    assert_eq!(unknown, app.dynamo_calls.snapshot(), "login: unknown vs known");
}

// Found by the attacker review of this change.

#[tokio::test]
async fn logins_refused_by_the_ip_limit_do_not_walk_the_account_to_the_ceiling() {
    let app = TestApp::spawn_with(|c| c.rate_limits.verify_per_minute = 2).await;
    app.state.clock.freeze();
    let (email, _) = app.signed_up_user().await;
    let attacker = app.from_ip(random_loopback());
    for _ in 0..12 {
        attacker.login(&email, WRONG).await;
    }
    let record = app.items(&format!("LOGINFAIL#{email}")).await;
    let failures: i64 = record[0]["failures"].as_n().unwrap().parse().unwrap();
    assert_eq!(failures, 2, "only the two judged attempts count");
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn a_grace_secret_cannot_mint_a_token_or_manage_another() {
    let app = TestApp::spawn().await;
    let (session, pat) = app
        .user_with_pat(&["profile:read", "tokens:write", "tokens:read"])
        .await;
    let other = app
        .post_as(
            &session.str("access_token"),
            "/v1/api-tokens",
            json!({ "name": "other", "scopes": ["profile:read"] }),
        )
        .await;
    let old = pat.str("token");
    app.post_as(&old, &format!("/v1/api-tokens/{}/rotate", pat.str("id")), json!({}))
        .await;
    let minted = app
        .post_as(
            &old,
            "/v1/api-tokens",
            json!({ "name": "mine now", "scopes": ["profile:read"] }),
        )
        .await;
    assert_eq!((minted.status, minted.code()), (403, "insufficient_scope"));
    let rotated = app
        .post_as(
            &old,
            &format!("/v1/api-tokens/{}/rotate", other.str("id")),
            json!({ "grace_period_seconds": 0 }),
        )
        .await;
    assert_eq!((rotated.status, rotated.code()), (403, "insufficient_scope"));
    assert_eq!(app.me(&other.str("token")).await.status, 200);
}

#[tokio::test]
async fn guesses_without_a_live_code_do_not_spend_the_daily_budget() {
    let app = TestApp::spawn_with(|c| c.rate_limits.code_guesses_per_day = 2).await;
    let (email, _) = app.signed_up_user().await;
    for _ in 0..6 {
        let guess = app
            .post("/v1/auth/otp/login", json!({ "email": email, "code": "123456" }))
            .await;
        assert_eq!((guess.status, guess.code()), (400, "invalid_code"));
    }
    assert_eq!(otp_login(&app, &email).await.status, 200);
}

#[tokio::test]
async fn registering_does_not_reveal_accounts_through_the_code_budget() {
    let app = TestApp::spawn_with(|c| c.rate_limits = keygate_e2e::defaults().rate_limits).await;
    let (known, _) = app.signed_up_user().await;
    app.state.clock.advance(3_600);
    let unknown = unique_email();
    for email in [&known, &unknown] {
        assert_eq!(app.register(email, ATTACKER_PASSWORD).await.status, 202);
        let sent = app
            .post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
            .await;
        assert_eq!(sent.status, 202, "{email}: {:?}", sent.body);
    }
}

#[tokio::test]
async fn a_registration_over_its_budget_does_not_replace_the_owners_code() {
    let app = TestApp::spawn_with(|c| c.rate_limits = keygate_e2e::defaults().rate_limits).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let code = app.code_sent_to(&email, "verification code").await;
    // Within the 30 s spacing: answered as always, but nothing new is sent and the code stays.
    let stranger = app.from_ip(random_loopback());
    assert_eq!(stranger.register(&email, PASSWORD).await.status, 202);
    assert_eq!(app.verify(&email, &code).await.status, 200);
}

#[tokio::test]
async fn concurrent_first_registrations_contest_each_other() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let attacker = app.from_ip(random_loopback());
    let (a, b) = tokio::join!(
        app.register(&email, PASSWORD),
        attacker.register(&email, ATTACKER_PASSWORD)
    );
    assert_eq!((a.status, b.status), (202, 202));
    let code = app.code_sent_to(&email, "verification code").await;
    let verified = app.verify(&email, &code).await;
    assert_eq!(
        verified.body["user"]["has_password"], false,
        "whichever came first, neither password survives"
    );
    assert_eq!(attacker.login(&email, ATTACKER_PASSWORD).await.status, 401);
}

#[tokio::test]
async fn a_code_login_also_drops_the_names_an_unproven_registration_set() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.post(
        "/v1/auth/register",
        json!({ "email": email, "password": ATTACKER_PASSWORD, "name": "Attacker's choice", "tenant_name": "Evil" }),
    )
    .await;
    let tokens = otp_login(&app, &email).await;
    assert_eq!(tokens.body["user"]["name"], Value::Null);
}
