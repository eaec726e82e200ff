//! Changing and resetting the password.

use keygate_e2e::{unique_email, TestApp, PASSWORD};
use serde_json::json;

const NEW_PASSWORD: &str = "a brand new passphrase";

#[tokio::test]
async fn change_password_revokes_other_sessions_and_notifies() {
    let app = TestApp::spawn().await;
    let (email, current) = app.signed_up_user().await;
    let other = app.login(&email, PASSWORD).await;
    let token = current.str("access_token");

    let wrong = app.change_password(&token, "not it at all", NEW_PASSWORD).await;
    assert_eq!((wrong.status, wrong.code()), (403, "invalid_current_password"));
    let weak = app.change_password(&token, PASSWORD, "password1").await;
    assert_eq!((weak.status, weak.code()), (422, "weak_password"));

    let changed = app.change_password(&token, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status, 204);

    // This session lives on; the other one is gone.
    assert_eq!(app.me(&token).await.status, 200);
    assert_eq!(app.refresh(&current.str("refresh_token")).await.status, 200);
    assert_eq!(app.me(&other.str("access_token")).await.code(), "session_revoked");
    assert_eq!(app.refresh(&other.str("refresh_token")).await.code(), "session_revoked");

    assert_eq!(app.login(&email, PASSWORD).await.status, 401);
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status, 200);
    assert_eq!(
        app.emails_to(&email).await.last().unwrap().0,
        "Your password was changed"
    );
}

#[tokio::test]
async fn change_password_needs_a_live_session() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let token = tokens.str("access_token");
    app.post_as(&token, "/v1/auth/logout", json!({})).await;
    let answer = app.change_password(&token, PASSWORD, NEW_PASSWORD).await;
    assert_eq!((answer.status, answer.code()), (401, "session_revoked"));
    let anonymous = app
        .post(
            "/v1/auth/change-password",
            json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn reset_a_forgotten_password() {
    let app = TestApp::spawn().await;
    let (email, session) = app.signed_up_user().await;
    let requested = app
        .post("/v1/auth/password-reset-request", json!({ "email": email }))
        .await;
    assert_eq!(requested.status, 202);
    let code = app.code_sent_to(&email, "reset code").await;
    assert_eq!(
        app.emails_to(&email).await.last().unwrap().0,
        "Your password reset code"
    );

    let weak = app
        .post(
            "/v1/auth/password-reset",
            json!({ "email": email, "code": code, "new_password": "short" }),
        )
        .await;
    assert_eq!(weak.code(), "weak_password");
    let reset = app
        .post(
            "/v1/auth/password-reset",
            json!({ "email": email, "code": code, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(reset.status, 204);

    // Every session is revoked, the old password is dead, the code is spent.
    assert_eq!(app.me(&session.str("access_token")).await.code(), "session_revoked");
    assert_eq!(
        app.refresh(&session.str("refresh_token")).await.code(),
        "session_revoked"
    );
    assert_eq!(app.login(&email, PASSWORD).await.status, 401);
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status, 200);
    let again = app
        .post(
            "/v1/auth/password-reset",
            json!({ "email": email, "code": code, "new_password": "yet another passphrase" }),
        )
        .await;
    assert_eq!(again.code(), "invalid_code");
    // The reset ended every session, so the sign-in after it is from a device the account no longer trusts: the
    // new-device notice follows the reset's own notice.
    let subjects: Vec<String> = app.emails_to(&email).await.into_iter().map(|(s, _)| s).collect();
    let reset_at = subjects
        .iter()
        .rposition(|s| s == "Your password was reset")
        .expect("the reset is mailed");
    assert_eq!(
        subjects[reset_at + 1..],
        ["New sign-in to your account"],
        "{subjects:?}"
    );
}

#[tokio::test]
async fn reset_request_reveals_nothing_about_unknown_addresses() {
    let app = TestApp::spawn().await;
    let (known, _) = app.signed_up_user().await;
    let unknown = unique_email();
    let a = app
        .post("/v1/auth/password-reset-request", json!({ "email": known }))
        .await;
    let b = app
        .post("/v1/auth/password-reset-request", json!({ "email": unknown }))
        .await;
    assert_eq!((a.status, &a.raw), (b.status, &b.raw));
    assert!(app.emails_to(&unknown).await.is_empty());
    let reset = app
        .post(
            "/v1/auth/password-reset",
            json!({ "email": unknown, "code": "123456", "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(reset.code(), "invalid_code");
}

#[tokio::test]
async fn a_registration_code_cannot_reset_a_password() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let code = app.code_sent_to(&email, "verification code").await;
    let reset = app
        .post(
            "/v1/auth/password-reset",
            json!({ "email": email, "code": code, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(reset.code(), "invalid_code");
    // The registration code is untouched by that attempt.
    assert_eq!(app.verify(&email, &code).await.status, 200);
}

#[tokio::test]
async fn resetting_verifies_a_pending_account() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let reset = app.reset_password(&email, NEW_PASSWORD).await;
    assert_eq!(reset.status, 204);
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status, 200);
}
