//! Performance round 2 (issue 18): the requests that now make their calls side by side still refuse and write as
//! they did one after another.

use keygate_e2e::{copied_hash, unique_email, TestApp, PASSWORD};
use serde_json::json;

/// The refresh limit's counter runs beside the session's read: a refused refresh is 429 whatever the token, and
/// rotates nothing, so the refused token still works once the window has passed.
#[tokio::test]
async fn a_refresh_over_the_limit_is_429_and_rotates_nothing() {
    let app = TestApp::spawn_with(|c| c.rate_limits.refresh_per_minute = 2).await;
    // A minute's window must not turn over between the requests on a slow machine.
    app.state.clock.freeze();
    let (_, session) = app.signed_up_user().await;
    let mut token = session.str("refresh_token");
    for _ in 0..2 {
        let refreshed = app.post("/v1/auth/refresh", json!({ "refresh_token": token })).await;
        assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
        token = refreshed.str("refresh_token");
    }
    let refused = app.post("/v1/auth/refresh", json!({ "refresh_token": token })).await;
    assert_eq!((refused.status, refused.code()), (429, "rate_limited"));
    assert!(refused.headers.get("retry-after").is_some());
    for other in ["not a token", "AAAA.BBBB", &format!("{token}x")] {
        let refused = app.post("/v1/auth/refresh", json!({ "refresh_token": other })).await;
        assert_eq!(
            refused.status, 429,
            "{other}: the limit answers before the token is judged"
        );
    }
    app.state.clock.advance(61);
    let later = app.post("/v1/auth/refresh", json!({ "refresh_token": token })).await;
    assert_eq!(
        later.status, 200,
        "the refused request rotated the token: {:?}",
        later.body
    );
    let replayed = app.post("/v1/auth/refresh", json!({ "refresh_token": token })).await;
    assert_ne!(replayed.status, 200, "a rotated-out token is refused");
}

const WRONG: &str = "definitely not the password";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// The first password sign-in reads the marker and the user and stores a copy of the user on the marker; every
/// later one reads the marker alone, and writes once.
#[tokio::test]
async fn a_login_after_the_first_reads_one_item() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    assert_eq!(
        copied_hash(&app.marker(&email).await.unwrap()),
        None,
        "a sign-up stores no copy"
    );
    app.dynamo_calls.reset();
    let first = app.login(&email, PASSWORD).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let calls = app.dynamo_calls.snapshot();
    assert_eq!(calls.get("GetItem"), Some(&2), "{calls:?}");
    assert!(
        copied_hash(&app.marker(&email).await.unwrap()).is_some(),
        "the first login stores the copy"
    );
    for _ in 0..2 {
        app.dynamo_calls.reset();
        let later = app.login(&email, PASSWORD).await;
        assert_eq!(later.status, 200, "{:?}", later.body);
        let calls = app.dynamo_calls.snapshot();
        assert_eq!(calls.get("GetItem"), Some(&1), "only the marker: {calls:?}");
        assert_eq!(calls.get("TransactWriteItems"), Some(&1), "{calls:?}");
        assert_eq!(app.me(&later.str("access_token")).await.status, 200);
    }
}

/// A wrong password reads the account whichever way the marker is, so an address with a copy, one without and
/// one with no account make the same calls.
#[tokio::test]
async fn failed_logins_make_the_same_calls_whatever_the_marker_holds() {
    let app = TestApp::spawn().await;
    let (copied, _) = app.signed_up_user().await;
    assert_eq!(app.login(&copied, PASSWORD).await.status, 200);
    let (plain, _) = app.signed_up_user().await;
    let mut seen = Vec::new();
    for email in [copied.clone(), plain, unique_email()] {
        app.dynamo_calls.reset();
        let refused = app.login(&email, WRONG).await;
        assert_eq!((refused.status, refused.code()), (401, "invalid_credentials"));
        seen.push(app.dynamo_calls.snapshot());
    }
    assert_eq!(seen[0], seen[1], "copy vs no copy");
    assert_eq!(seen[0], seen[2], "copy vs unknown address");
    assert_eq!(seen[0].get("GetItem"), Some(&2), "{:?}", seen[0]);
    assert!(
        copied_hash(&app.marker(&copied).await.unwrap()).is_some(),
        "a failure keeps the copy"
    );
}

/// A password change drops the copy; and should a copy with the old hash survive anyway, the old password
/// still fails, because a sign-in from a copy only writes while the account is exactly the copy.
#[tokio::test]
async fn a_stale_copy_never_lets_an_old_password_in() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    let session = app.login(&email, PASSWORD).await;
    let stale = app.marker(&email).await.unwrap();
    let old_hash = copied_hash(&stale).unwrap();
    let changed = app
        .change_password(&session.str("access_token"), PASSWORD, NEW_PASSWORD)
        .await;
    assert_eq!(changed.status, 204, "{:?}", changed.body);
    assert_eq!(
        copied_hash(&app.marker(&email).await.unwrap()),
        None,
        "the change drops the copy"
    );
    app.put_item(stale).await;
    let refused = app.login(&email, PASSWORD).await;
    assert_eq!(
        (refused.status, refused.code()),
        (401, "invalid_credentials"),
        "the old password from a stale copy: {:?}",
        refused.body
    );
    let signed_in = app.login(&email, NEW_PASSWORD).await;
    assert_eq!(signed_in.status, 200, "{:?}", signed_in.body);
    let healed = copied_hash(&app.marker(&email).await.unwrap()).unwrap();
    assert_ne!(healed, old_hash, "the sign-in rewrote the copy");
    assert_eq!(app.login(&email, PASSWORD).await.status, 401);
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status, 200);
}

/// The same after a reset by emailed code and after an administrator's new password.
#[tokio::test]
async fn a_reset_drops_the_copy_too() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);
    let stale = app.marker(&email).await.unwrap();
    let reset = app.reset_password(&email, NEW_PASSWORD).await;
    assert_eq!(reset.status, 204, "{:?}", reset.body);
    assert_eq!(
        copied_hash(&app.marker(&email).await.unwrap()),
        None,
        "the reset drops the copy"
    );
    app.put_item(stale).await;
    assert_eq!(app.login(&email, PASSWORD).await.code(), "invalid_credentials");
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status, 200);
}

/// Two-factor authentication turned on after the copy was made: a right password from the stale copy still
/// gets the challenge, never tokens.
#[tokio::test]
async fn a_stale_copy_never_skips_the_second_factor() {
    let app = TestApp::spawn().await;
    app.state.clock.freeze();
    let (email, _) = app.signed_up_user().await;
    let session = app.login(&email, PASSWORD).await;
    let stale = app.marker(&email).await.unwrap();
    crate::two_factor::enrol(&app, email.clone(), session).await;
    app.put_item(stale).await;
    let answer = app.login(&email, PASSWORD).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["mfa_required"], json!(true), "{:?}", answer.body);
    assert!(answer.body.get("access_token").is_none(), "{:?}", answer.body);
}

/// An account disabled, demoted or signed out everywhere since its copy was made: the sign-in decides on the
/// account as it is now.
#[tokio::test]
async fn a_stale_copy_is_decided_again_on_the_account_as_it_is() {
    let app = TestApp::spawn().await;
    let (email, signed_up) = app.signed_up_user().await;
    let id = signed_up.user_id();
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);

    app.update_user(&id, "SET #role = :r", &[(":r", "manager")]).await;
    let demoted = app.login(&email, PASSWORD).await;
    assert_eq!(demoted.status, 200, "{:?}", demoted.body);
    assert_eq!(demoted.body["user"]["role"], "manager", "{:?}", demoted.body);
    assert_eq!(keygate_e2e::jwt_claims(&demoted.str("access_token"))["role"], "manager");

    let before = app.login(&email, PASSWORD).await;
    let revoked = app
        .send("DELETE", "/v1/auth/sessions", Some(&before.str("access_token")), None)
        .await;
    assert!(revoked.status < 300, "{:?}", revoked.body);
    let after = app.login(&email, PASSWORD).await;
    assert_eq!(
        after.status, 200,
        "a new session epoch is read, not refused: {:?}",
        after.body
    );
    assert_eq!(
        app.me(&after.str("access_token")).await.status,
        200,
        "the session is live"
    );

    app.update_user(&id, "SET #status = :s", &[(":s", "disabled")]).await;
    let disabled = app.login(&email, PASSWORD).await;
    assert_eq!((disabled.status, disabled.code()), (403, "account_disabled"));
    assert_eq!(app.login(&email, WRONG).await.code(), "invalid_credentials");
}

/// A refresh token names its session's owner, so a refresh reads both in one request, then rotates.
#[tokio::test]
async fn a_refresh_reads_the_session_and_its_owner_in_one_request() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let token = session.str("refresh_token");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    assert_eq!(parts[0], session.str("session_id"));
    assert_eq!(parts[1], session.user_id());
    app.dynamo_calls.reset();
    let refreshed = app.refresh(&token).await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    let calls = app.dynamo_calls.snapshot();
    assert_eq!(calls.get("BatchGetItem"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("GetItem"), None, "{calls:?}");
    assert_eq!(calls.get("TransactWriteItems"), Some(&1), "{calls:?}");
    assert_eq!(refreshed.str("refresh_token").split('.').nth(1), Some(parts[1]));
}

/// A token issued before the owner was named in it still refreshes, into a token of the new form; and both
/// forms of one rotated-out token are the same token to reuse detection.
#[tokio::test]
async fn a_token_of_the_older_form_refreshes_into_the_new_form() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let uid = session.user_id();
    let token = session.str("refresh_token");
    let older = token.replace(&format!(".{uid}."), ".");
    assert_eq!(older.split('.').count(), 2);
    let refreshed = app.refresh(&older).await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    assert_eq!(refreshed.str("refresh_token").split('.').nth(1), Some(uid.as_str()));
    app.state.clock.advance(3_600);
    let replayed = app.refresh(&token).await;
    assert_eq!(
        (replayed.status, replayed.code()),
        (401, "session_revoked"),
        "the new form of the rotated-out token is a replay: {:?}",
        replayed.body
    );
    assert_eq!(
        app.refresh(&refreshed.str("refresh_token")).await.code(),
        "session_revoked"
    );
}

/// The owner a token names is a hint, never trusted: naming anyone else is an unknown token, which ends nothing.
#[tokio::test]
async fn a_token_naming_another_owner_is_refused_and_ends_nothing() {
    let app = TestApp::spawn().await;
    let (_, victim) = app.signed_up_user().await;
    let (_, other) = app.signed_up_user().await;
    let token = victim.str("refresh_token");
    let uid = victim.user_id();
    for stranger in [other.user_id(), keygate::store::users::new_user_id()] {
        let forged = token.replace(&uid, &stranger);
        let refused = app.refresh(&forged).await;
        assert_eq!(
            (refused.status, refused.code()),
            (401, "invalid_token"),
            "{:?}",
            refused.body
        );
    }
    for malformed in [
        token.replace(&uid, &uid.to_uppercase().replace('-', "")),
        token.replace(&uid, &format!("{uid}.{uid}")),
        token.replace(&uid, ""),
    ] {
        let refused = app.refresh(&malformed).await;
        assert_eq!((refused.status, refused.code()), (401, "invalid_token"), "{malformed}");
    }
    let still = app.refresh(&token).await;
    assert_eq!(still.status, 200, "the victim's session survived: {:?}", still.body);
}

/// A service login's IP counter runs beside its backoff claim: a request the counter refuses gives its claim
/// back, so a flood from one address spends none of the account's attempts.
#[tokio::test]
async fn a_service_login_over_the_ip_limit_spends_no_attempt() {
    let app = TestApp::spawn_with(|c| c.rate_limits.verify_per_minute = 4).await;
    app.state.clock.freeze();
    let (root, _) = app.signed_up_user().await;
    let root = app.login(&root, PASSWORD).await;
    let tenant = root.body["user"]["tenant_id"].as_str().unwrap().to_owned();
    let created = app
        .post_as(
            &root.str("access_token"),
            "/v1/accounts/service",
            json!({ "service_name": "worker", "role": "backend", "password": "a service passphrase 1" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let attempt =
        |password: &'static str| json!({ "service_name": "worker", "password": password, "tenant_id": tenant });
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(app.post("/v1/auth/login/service", attempt(WRONG)).await.status);
    }
    assert!(statuses.iter().filter(|s| **s == 401).count() == 4, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    app.state.clock.advance(61);
    // The fifth failure waits a second; had the refused requests kept their claims, it would wait 15 minutes.
    let judged = app.post("/v1/auth/login/service", attempt(WRONG)).await;
    assert_eq!((judged.status, judged.code()), (401, "invalid_credentials"));
    app.state.clock.advance(2);
    let signed_in = app
        .post("/v1/auth/login/service", attempt("a service passphrase 1"))
        .await;
    assert_eq!(
        signed_in.status, 200,
        "the refused requests counted as failures: {:?}",
        signed_in.body
    );
}
