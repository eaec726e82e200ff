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

    // Not forked: the session has exactly one current token, the winner's, and one rotation in its history.
    let winner = winners[0].str("refresh_token");
    let items = app.items(&format!("SESSION#{}", tokens.str("session_id"))).await;
    let sort_keys: Vec<&str> = items.iter().map(|i| i["sk"].as_s().unwrap().as_str()).collect();
    assert_eq!(
        sort_keys.iter().filter(|sk| **sk == "SESSION").count(),
        1,
        "{sort_keys:?}"
    );
    assert_eq!(
        sort_keys.iter().filter(|sk| sk.starts_with("PREV#")).count(),
        1,
        "{sort_keys:?}"
    );
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

#[tokio::test]
async fn sessions_are_listed_with_devices_and_revoked() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    let firefox = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0";
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    let login_with = |ua: &'static str| {
        let app = &app;
        let email = email.clone();
        async move {
            app.send_with_agent(
                ua,
                "POST",
                "/v1/auth/login",
                json!({ "email": email, "password": PASSWORD }),
            )
            .await
        }
    };
    app.state.clock.advance(1);
    let on_mac = login_with(firefox).await;
    app.state.clock.advance(1);
    let on_windows = login_with(chrome).await;
    let token = on_windows.str("access_token");

    let listed = app.get("/v1/auth/sessions", Some(&token)).await;
    assert_eq!(listed.status, 200);
    let sessions = listed.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3, "the signup session and two logins");
    assert_eq!(sessions[0]["id"], on_windows.body["session_id"], "newest first");
    assert_eq!(sessions[0]["device"], "Chrome on Windows 10");
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[1]["device"], "Firefox on macOS");
    assert_eq!(sessions[1]["current"], false);
    assert_eq!(sessions[1]["amr"], json!(["pwd"]));
    assert!(!listed.body.to_string().contains("hash"), "no token material");

    // Revoke the Mac session: its refresh token and access token stop working at once.
    let mac_id = on_mac.str("session_id");
    let revoked = app
        .send("DELETE", &format!("/v1/auth/sessions/{mac_id}"), Some(&token), None)
        .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(
        app.refresh(&on_mac.str("refresh_token")).await.code(),
        "session_revoked"
    );
    assert_eq!(app.me(&on_mac.str("access_token")).await.status, 401);
    let listed = app.get("/v1/auth/sessions", Some(&token)).await;
    assert_eq!(listed.body["sessions"].as_array().unwrap().len(), 2);

    // Then every other one.
    assert_eq!(
        app.send("DELETE", "/v1/auth/sessions", Some(&token), None).await.status,
        204
    );
    let listed = app.get("/v1/auth/sessions", Some(&token)).await;
    let remaining = listed.body["sessions"].as_array().unwrap();
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0]["current"], true);
    assert_eq!(app.me(&token).await.status, 200);
    assert_eq!(app.refresh(&on_windows.str("refresh_token")).await.status, 200);
}

#[tokio::test]
async fn someone_elses_session_is_not_found() {
    let app = TestApp::spawn().await;
    let (_, mine) = app.signed_up_user().await;
    let (_, theirs) = app.signed_up_user().await;
    let path = format!("/v1/auth/sessions/{}", theirs.str("session_id"));
    let answer = app.send("DELETE", &path, Some(&mine.str("access_token")), None).await;
    assert_eq!((answer.status, answer.code()), (404, "not_found"));
    assert_eq!(app.me(&theirs.str("access_token")).await.status, 200);
    for bad in ["nope", "..%2F..%2Fx", &"A".repeat(500), "SESSION%23x"] {
        let answer = app
            .send(
                "DELETE",
                &format!("/v1/auth/sessions/{bad}"),
                Some(&mine.str("access_token")),
                None,
            )
            .await;
        assert_eq!(answer.status, 404, "{bad}");
    }
    let anonymous = app.send("DELETE", &path, None, None).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(app.get("/v1/auth/sessions", None).await.status, 401);
}

#[tokio::test]
async fn expired_sessions_are_not_listed() {
    let app = TestApp::spawn_with(|c| c.refresh_token_ttl = 3_600).await;
    let (email, first) = app.signed_up_user().await;
    app.state.clock.advance(3_000);
    let second = app.login(&email, PASSWORD).await;
    app.state.clock.advance(700);
    // The first session's item is still in the table (moto never expires items), but it is past its expiry.
    assert_eq!(
        app.items(&format!("SESSION#{}", first.str("session_id"))).await.len(),
        1
    );
    let listed = app.get("/v1/auth/sessions", Some(&second.str("access_token"))).await;
    let ids: Vec<&str> = listed.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![second.str("session_id").as_str()]);
}
