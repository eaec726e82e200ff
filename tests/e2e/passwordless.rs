//! Passwordless login: email OTP and magic links, purposes, redirects and mail throttling.

use keygate_e2e::{link_token, unique_email, TestApp, PASSWORD};
use serde_json::json;

async fn latest_link(app: &TestApp, email: &str) -> String {
    let emails = app.emails_to(email).await;
    let (subject, body) = emails.last().expect("an email");
    assert_eq!(subject, "Your sign-in link");
    link_token(body)
}

#[tokio::test]
async fn otp_login_from_send_to_tokens() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    let sent = app
        .post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
        .await;
    assert_eq!(sent.status, 202);
    assert_eq!(app.emails_to(&email).await.last().unwrap().0, "Your sign-in code");
    let code = app.code_sent_to(&email, "sign-in code").await;
    let tokens = app
        .post("/v1/auth/otp/login", json!({ "email": email, "code": code }))
        .await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(app.me(&tokens.str("access_token")).await.status, 200);
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(tokens.str("access_token"))
        .unwrap()
        .claims;
    assert_eq!(claims["amr"], json!(["otp"]));
    // Single use.
    let again = app
        .post("/v1/auth/otp/login", json!({ "email": email, "code": code }))
        .await;
    assert_eq!((again.status, again.code()), (400, "invalid_code"));
}

#[tokio::test]
async fn otp_login_verifies_a_pending_account_without_its_password() {
    // Once asserted that the pending password then logged in: the pre-hijacking of issue 9, item 1. A password
    // set by a request that proved nothing must not survive the first proof of the mailbox.
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    app.post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
        .await;
    let code = app.code_sent_to(&email, "sign-in code").await;
    let tokens = app
        .post("/v1/auth/otp/login", json!({ "email": email, "code": code }))
        .await;
    assert_eq!(tokens.body["user"]["email_verified"], true);
    assert_eq!(tokens.body["user"]["has_password"], false);
    assert_eq!(app.login(&email, PASSWORD).await.status, 401);
}

#[tokio::test]
async fn purposes_do_not_mix() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    app.post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
        .await;
    let login_code = app.code_sent_to(&email, "sign-in code").await;
    let reset = app
        .post(
            "/v1/auth/password-reset",
            json!({ "email": email, "code": login_code, "new_password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(reset.code(), "invalid_code", "a login code cannot reset a password");

    app.post("/v1/auth/otp/send", json!({ "email": email, "purpose": "reset" }))
        .await;
    let reset_code = app.code_sent_to(&email, "reset code").await;
    let login = app
        .post("/v1/auth/otp/login", json!({ "email": email, "code": reset_code }))
        .await;
    assert_eq!(login.code(), "invalid_code", "a reset code cannot log in");

    // Each still works for its own purpose.
    assert_eq!(
        app.post("/v1/auth/otp/login", json!({ "email": email, "code": login_code }))
            .await
            .status,
        200
    );
    let reset = app
        .post(
            "/v1/auth/password-reset",
            json!({ "email": email, "code": reset_code, "new_password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(reset.status, 204);
}

#[tokio::test]
async fn unknown_purposes_and_addresses() {
    let app = TestApp::spawn().await;
    let bad = app
        .post(
            "/v1/auth/otp/send",
            json!({ "email": unique_email(), "purpose": "admin" }),
        )
        .await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_request"));
    let known = app.signed_up_user().await.0;
    let unknown = unique_email();
    let a = app
        .post("/v1/auth/otp/send", json!({ "email": known, "purpose": "login" }))
        .await;
    let b = app
        .post("/v1/auth/otp/send", json!({ "email": unknown, "purpose": "login" }))
        .await;
    assert_eq!((a.status, &a.raw), (b.status, &b.raw));
    assert!(app.emails_to(&unknown).await.is_empty());
    let c = app.post("/v1/auth/magic-link/send", json!({ "email": known })).await;
    let d = app.post("/v1/auth/magic-link/send", json!({ "email": unknown })).await;
    assert_eq!((c.status, &c.raw), (d.status, &d.raw));
    assert!(app.emails_to(&unknown).await.is_empty());
}

#[tokio::test]
async fn magic_link_from_send_to_tokens_then_the_replay_is_refused() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    let sent = app
        .post(
            "/v1/auth/magic-link/send",
            json!({ "email": email, "redirect_uri": "https://app.example.com/welcome" }),
        )
        .await;
    assert_eq!(sent.status, 202);
    let emails = app.emails_to(&email).await;
    assert!(
        emails
            .last()
            .unwrap()
            .1
            .contains("http://localhost:5173/magic-link?token="),
        "{:?}",
        emails.last()
    );
    let token = latest_link(&app, &email).await;
    assert_eq!(token.len(), 43, "256 bits");

    let first = app.post("/v1/auth/magic-link/login", json!({ "token": token })).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.str("redirect_uri"), "https://app.example.com/welcome");
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(first.str("access_token"))
        .unwrap()
        .claims;
    assert_eq!(claims["amr"], json!(["email_link"]));

    let replay = app.post("/v1/auth/magic-link/login", json!({ "token": token })).await;
    assert_eq!((replay.status, replay.code()), (401, "invalid_token"));
    // The first use's tokens stay valid.
    assert_eq!(app.me(&first.str("access_token")).await.status, 200);
    assert_eq!(app.refresh(&first.str("refresh_token")).await.status, 200);
}

#[tokio::test]
async fn magic_links_expire_and_forged_ones_fail() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    app.post("/v1/auth/magic-link/send", json!({ "email": email })).await;
    let token = latest_link(&app, &email).await;
    for forged in [
        String::new(),
        "x".repeat(43),
        keygate::secret::random_b64(32),
        "a".repeat(5000),
        format!("{token}x"),
    ] {
        let answer = app.post("/v1/auth/magic-link/login", json!({ "token": forged })).await;
        assert_eq!((answer.status, answer.code()), (401, "invalid_token"));
    }
    app.state.clock.advance(901);
    let late = app.post("/v1/auth/magic-link/login", json!({ "token": token })).await;
    assert_eq!((late.status, late.code()), (401, "invalid_token"));
}

#[tokio::test]
async fn open_redirects_are_refused() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    for evil in [
        "https://evil.example/welcome",
        "https://app.example.com/welcome.evil.example",
        "https://app.example.com.evil.example/welcome",
        "https://app.example.com/welcome/../../steal",
        "//evil.example",
        "javascript:alert(1)",
    ] {
        let answer = app
            .post(
                "/v1/auth/magic-link/send",
                json!({ "email": email, "redirect_uri": evil }),
            )
            .await;
        assert_eq!((answer.status, answer.code()), (422, "invalid_field"), "{evil}");
    }
    assert!(app
        .emails_to(&email)
        .await
        .iter()
        .all(|(subject, _)| subject != "Your sign-in link"));
}

#[tokio::test]
async fn mail_to_one_address_is_throttled() {
    let app = TestApp::spawn_with(|c| c.rate_limits = keygate_e2e::defaults().rate_limits).await;
    // Windows are fixed: start just after an hour boundary so the test stays inside one hourly window.
    let now = app.state.clock.now();
    app.state.clock.advance(3_600 - now.rem_euclid(3_600) + 1);
    let email = unique_email();
    let first = app
        .post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
        .await;
    assert_eq!(first.status, 202);
    let second = app.post("/v1/auth/magic-link/send", json!({ "email": email })).await;
    assert_eq!((second.status, second.code()), (429, "rate_limited"));
    let retry: i64 = second.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    // From another IP too: the limit is per address.
    let other = app.from_ip(keygate_e2e::random_loopback());
    assert_eq!(
        other
            .post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
            .await
            .status,
        429
    );
    // Spaced out, a few more go through, then the hourly cap holds.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        app.state.clock.advance(31);
        statuses.push(
            app.post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
                .await
                .status,
        );
    }
    assert!(statuses.contains(&202) && statuses.ends_with(&[429]), "{statuses:?}");
}
