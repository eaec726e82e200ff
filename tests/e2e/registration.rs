//! Registration: code by email, verification, re-registration, wrong tries, expiry, and what is revealed.

use keygate_e2e::{unique_email, TestApp, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn register_verify_and_use_the_account() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let registered = app.register(&email, PASSWORD).await;
    assert_eq!(registered.status, 202);

    let emails = app.emails_to(&email).await;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].0, "Your keygate verification code");
    let code = app.code_sent_to(&email, "verification code").await;

    let tokens = app.verify(&email, &code).await;
    assert_eq!(tokens.status, 200);
    assert_eq!(tokens.str("token_type"), "Bearer");
    assert_eq!(tokens.body["expires_in"], 900);
    assert_eq!(tokens.body["refresh_expires_in"], 7 * 86_400);
    assert_eq!(tokens.body["user"]["email"], email.as_str());
    assert_eq!(tokens.body["user"]["email_verified"], true);
    assert_eq!(tokens.headers["cache-control"], "no-store");

    let me = app.me(&tokens.str("access_token")).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["email"], email.as_str());
    assert_eq!(me.body["name"], "Test User");
    assert_eq!(me.body["id"], tokens.body["user"]["id"]);
    assert!(me.body["created_at"].as_str().unwrap().ends_with('Z'));

    // The code is single use.
    assert_eq!(app.verify(&email, &code).await.code(), "invalid_code");
    // And the account logs in with its password.
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn login_before_verification_is_refused_with_the_right_password_only() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let unverified = app.login(&email, PASSWORD).await;
    assert_eq!((unverified.status, unverified.code()), (403, "email_not_verified"));
    let wrong = app.login(&email, "not the password at all").await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
}

#[tokio::test]
async fn registering_a_verified_address_answers_the_same_and_sends_a_notice() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    let fresh = unique_email();

    let again = app.register(&email, "another password here").await;
    let new = app.register(&fresh, PASSWORD).await;
    assert_eq!(again.status, new.status);
    assert_eq!(again.body, new.body);

    let emails = app.emails_to(&email).await;
    assert_eq!(emails.last().unwrap().0, "You already have an account");
    // The existing account keeps its password.
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);
    assert_eq!(app.login(&email, "another password here").await.status, 401);
}

#[tokio::test]
async fn re_registering_a_pending_address_with_another_password_contests_it() {
    // Once asserted that the second password replaced the first: the pre-hijacking of issue 9, item 1. Now neither
    // password survives; whoever holds the newest code signs in to an account with no usable password.
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, "first password here").await;
    let first = app.code_sent_to(&email, "verification code").await;
    assert_eq!(app.register(&email, "second password here").await.status, 202);
    let emails = app.emails_to(&email).await;
    assert_eq!(emails.len(), 2);
    let second = app.code_sent_to(&email, "verification code").await;

    if first != second {
        assert_eq!(app.verify(&email, &first).await.code(), "invalid_code");
    }
    let verified = app.verify(&email, &second).await;
    assert_eq!(verified.status, 200);
    assert_eq!(verified.body["user"]["has_password"], false);
    assert_eq!(app.login(&email, "second password here").await.status, 401);
    assert_eq!(app.login(&email, "first password here").await.status, 401);
    // Still one account for the address.
    let markers = app.items(&format!("EMAIL#{email}")).await;
    assert_eq!(markers.iter().filter(|i| i["sk"].as_s().unwrap() == "USER").count(), 1);
}

#[tokio::test]
async fn registering_twice_with_the_same_password_keeps_it() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    app.register(&email, PASSWORD).await;
    let code = app.code_sent_to(&email, "verification code").await;
    let verified = app.verify(&email, &code).await;
    assert_eq!(verified.body["user"]["has_password"], true);
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn five_wrong_codes_kill_the_code() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let code = app.code_sent_to(&email, "verification code").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let answer = app.verify(&email, wrong).await;
        assert_eq!((answer.status, answer.code()), (400, "invalid_code"));
    }
    assert_eq!(app.verify(&email, &code).await.code(), "invalid_code");
    assert_eq!(app.login(&email, PASSWORD).await.code(), "email_not_verified");
}

#[tokio::test]
async fn concurrent_guesses_never_exceed_five_comparisons() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let code = app.code_sent_to(&email, "verification code").await;
    let wrong: Vec<String> = (0..12)
        .map(|i| format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000))
        .collect();
    let answers = futures::future::join_all(wrong.iter().map(|w| app.verify(&email, w))).await;
    assert!(answers.iter().all(|a| a.code() == "invalid_code"));
    // The right code now finds no tries left.
    assert_eq!(app.verify(&email, &code).await.code(), "invalid_code");
}

#[tokio::test]
async fn codes_expire_after_ten_minutes() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let code = app.code_sent_to(&email, "verification code").await;
    app.state.clock.advance(601);
    assert_eq!(app.verify(&email, &code).await.code(), "invalid_code");
}

#[tokio::test]
async fn a_code_for_another_address_does_not_verify() {
    let app = TestApp::spawn().await;
    let (a, b) = (unique_email(), unique_email());
    app.register(&a, PASSWORD).await;
    app.register(&b, PASSWORD).await;
    let code_a = app.code_sent_to(&a, "verification code").await;
    let code_b = app.code_sent_to(&b, "verification code").await;
    if code_a != code_b {
        assert_eq!(app.verify(&b, &code_a).await.code(), "invalid_code");
    }
    assert_eq!(app.verify(&b, &code_b).await.status, 200);
}

#[tokio::test]
async fn check_registration_answers_for_verified_accounts_only() {
    let app = TestApp::spawn().await;
    let (verified, _) = app.signed_up_user().await;
    let pending = unique_email();
    app.register(&pending, PASSWORD).await;
    let ask = |email: String| {
        let app = &app;
        async move {
            app.get(
                &format!("/v1/auth/check-registration?email={}", email.replace('@', "%40")),
                None,
            )
            .await
        }
    };
    assert_eq!(ask(verified.clone()).await.body, json!({ "registered": true }));
    assert_eq!(ask(verified.to_uppercase()).await.body, json!({ "registered": true }));
    assert_eq!(ask(pending).await.body, json!({ "registered": false }));
    assert_eq!(ask(unique_email()).await.body, json!({ "registered": false }));
    assert_eq!(
        app.get("/v1/auth/check-registration", None).await.code(),
        "invalid_request"
    );
}

#[tokio::test]
async fn check_registration_can_be_turned_off() {
    let app = TestApp::spawn_with(|config| config.check_registration_enabled = false).await;
    let answer = app.get("/v1/auth/check-registration?email=a%40example.com", None).await;
    assert_eq!((answer.status, answer.code()), (404, "not_found"));
}
