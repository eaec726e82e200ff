//! Sessions: refresh with rotation, reuse detection, the grace window, races, logout and revocation.

use keygate_e2e::{TestApp, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn refresh_rotates_and_the_old_token_stops_working() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let first = tokens.str("refresh_token");

    let rotated = app.refresh(&first).await;
    assert_eq!(rotated.status, 200);
    let second = rotated.str("refresh_token");
    assert_ne!(first, second);
    assert_eq!(rotated.str("session_id"), tokens.str("session_id"));
    assert_eq!(app.me(&rotated.str("access_token")).await.status, 200);

    // Well after the grace window, the old token is a replay: the whole session is revoked.
    app.state.clock.advance(60);
    let replay = app.refresh(&first).await;
    assert_eq!((replay.status, replay.code()), (401, "session_revoked"));
    assert!(replay.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(app.refresh(&second).await.code(), "session_revoked");
    assert_eq!(app.me(&rotated.str("access_token")).await.status, 401);
}

#[tokio::test]
async fn a_replay_inside_the_grace_window_is_a_conflict_not_a_revocation() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let first = tokens.str("refresh_token");
    let rotated = app.refresh(&first).await;
    let replay = app.refresh(&first).await;
    assert_eq!((replay.status, replay.code()), (409, "refresh_conflict"));
    // The session survives, and the newest token still works.
    assert_eq!(app.refresh(&rotated.str("refresh_token")).await.status, 200);
}

#[tokio::test]
async fn concurrent_refreshes_rotate_exactly_once() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let token = tokens.str("refresh_token");
    let answers = futures::future::join_all((0..4).map(|_| app.refresh(&token))).await;
    let winners: Vec<_> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert!(answers
        .iter()
        .filter(|a| a.status != 200)
        .all(|a| a.code() == "refresh_conflict"));

    // Not forked: the session has exactly one current token, the winner's.
    let winner = winners[0].str("refresh_token");
    let session = app.items(&format!("SESSION#{}", tokens.str("session_id"))).await;
    assert_eq!(session.len(), 1);
    assert_eq!(app.refresh(&winner).await.status, 200);
}

#[tokio::test]
async fn logout_with_the_refresh_token_is_idempotent() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let refresh_token = tokens.str("refresh_token");
    let body = json!({ "refresh_token": refresh_token });
    assert_eq!(app.post("/v1/auth/logout", body.clone()).await.status, 204);
    assert_eq!(app.post("/v1/auth/logout", body).await.status, 204);
    assert_eq!(app.refresh(&refresh_token).await.code(), "session_revoked");
    let me = app.me(&tokens.str("access_token")).await;
    assert_eq!((me.status, me.code()), (401, "session_revoked"));
}

#[tokio::test]
async fn logout_with_the_bearer_revokes_that_session_only() {
    let app = TestApp::spawn().await;
    let (email, first) = app.signed_up_user().await;
    let second = app.login(&email, PASSWORD).await;
    let out = app
        .send("POST", "/v1/auth/logout", Some(&first.str("access_token")), None)
        .await;
    assert_eq!(out.status, 204);
    assert_eq!(app.me(&first.str("access_token")).await.status, 401);
    assert_eq!(app.refresh(&first.str("refresh_token")).await.code(), "session_revoked");
    assert_eq!(app.me(&second.str("access_token")).await.status, 200);
}

#[tokio::test]
async fn logout_needs_some_credential() {
    let app = TestApp::spawn().await;
    let none = app.send("POST", "/v1/auth/logout", None, None).await;
    assert_eq!((none.status, none.code()), (401, "invalid_token"));
    let garbage = app.post("/v1/auth/logout", json!({ "refresh_token": "nope" })).await;
    assert_eq!((garbage.status, garbage.code()), (401, "invalid_token"));
}

#[tokio::test]
async fn refresh_tokens_expire() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    app.state.clock.advance(7 * 86_400 + 1);
    let answer = app.refresh(&tokens.str("refresh_token")).await;
    assert_eq!((answer.status, answer.code()), (401, "invalid_token"));
}

#[tokio::test]
async fn a_forged_secret_for_a_real_session_does_not_revoke_it() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let forged = format!("{}.{}", tokens.str("session_id"), keygate::secret::random_b64(32));
    assert_eq!(app.refresh(&forged).await.code(), "invalid_token");
    assert_eq!(
        app.post("/v1/auth/logout", json!({ "refresh_token": forged }))
            .await
            .status,
        204
    );
    assert_eq!(app.refresh(&tokens.str("refresh_token")).await.status, 200);
}
