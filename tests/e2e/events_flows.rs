//! Issue 16 §2 and §3: the events the sign-in, session, password and admin flows record, and the notices they
//! mail (refresh-token reuse, a new device). Each test drives the real endpoints and reads the history back through
//! `GET /v1/auth/events` or `GET /v1/audit-events`.

use keygate_e2e::{unique_email, Answer, TestApp, PASSWORD};
use serde_json::{json, Value};

use crate::events::{of_type, own_events};
use crate::tenancy::{member, register_root};

const FIREFOX_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0";
const CHROME_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/// A signed-up account and a fresh session of it from `agent`.
async fn signed_in_from(app: &TestApp, agent: &str) -> (String, Answer) {
    let (email, _) = app.signed_up_user().await;
    let tokens = app
        .send_with_agent(
            agent,
            "POST",
            "/v1/auth/login",
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    (email, tokens)
}

#[tokio::test]
async fn a_sign_in_records_its_method_session_address_and_device() {
    let app = TestApp::spawn().await;
    let (_, tokens) = signed_in_from(&app, FIREFOX_MAC).await;
    let events = own_events(&app, &tokens.str("access_token")).await;
    let signed_in = of_type(&events, "signed_in");
    assert_eq!(signed_in.len(), 2, "the registration's and the login's: {events:?}");
    let login = *signed_in
        .iter()
        .find(|e| e["session_id"] == tokens.str("session_id").as_str())
        .expect("the login's session is named");
    assert_eq!(login["details"]["method"], "password");
    assert_eq!(login["details"]["amr"], "pwd");
    assert_eq!(login["device"], "Firefox on macOS");
    assert_eq!(login["user_agent"], FIREFOX_MAC);
    assert_eq!(login["ip"], app.ip.to_string().as_str());
    assert_eq!(login["target_id"], tokens.body["user"]["id"]);
    assert!(login.get("actor_id").is_none(), "the account itself acted: {login}");
    assert!(
        signed_in.iter().any(|e| e["details"]["method"] == "email_code"),
        "verifying the registration: {signed_in:?}"
    );
}

#[tokio::test]
async fn a_failed_sign_in_of_an_account_is_recorded_and_a_strangers_guess_records_nothing() {
    let app = TestApp::spawn().await;
    let (email, tokens) = app.signed_up_user().await;
    let wrong = app.login(&email, "not the password at all").await;
    assert_eq!(wrong.status, 401);
    let unknown = app.login(&unique_email(), "not the password at all").await;
    assert_eq!(unknown.status, 401);
    let events = own_events(&app, &tokens.str("access_token")).await;
    let failed = of_type(&events, "sign_in_failed");
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0]["details"]["reason"], "invalid_credentials");
    assert_eq!(failed[0]["details"]["method"], "password");
    assert!(failed[0].get("session_id").is_none());
}

#[tokio::test]
async fn refresh_token_reuse_is_recorded_and_mailed_to_the_owner() {
    let app = TestApp::spawn().await;
    let (email, tokens) = signed_in_from(&app, FIREFOX_MAC).await;
    let stolen = tokens.str("refresh_token");
    let rotated = app.refresh(&stolen).await;
    assert_eq!(rotated.status, 200);
    // Past the grace window, the replay is a theft signal.
    tokio::time::sleep(std::time::Duration::from_secs(
        u64::try_from(app.state.config.refresh_reuse_grace).unwrap() + 1,
    ))
    .await;
    let replayed = app.refresh(&stolen).await;
    assert_eq!(replayed.status, 401);
    assert_eq!(replayed.code(), "session_revoked");
    // A second replay finds the session ended: nothing more is recorded or sent.
    assert_eq!(app.refresh(&stolen).await.status, 401);

    let fresh = app.login(&email, PASSWORD).await;
    let events = own_events(&app, &fresh.str("access_token")).await;
    let reuse = of_type(&events, "refresh_reuse_detected");
    assert_eq!(reuse.len(), 1, "{events:?}");
    assert_eq!(reuse[0]["session_id"], tokens.str("session_id").as_str());
    let mails: Vec<_> = app
        .emails_to(&email)
        .await
        .into_iter()
        .filter(|(subject, _)| subject == "A session of yours was signed out")
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].1.contains("Firefox on macOS"), "{mails:?}");
    assert!(!mails[0].1.contains(&stolen), "the mail carries no token");
}

#[tokio::test]
async fn logouts_and_revocations_are_recorded_once_and_never_for_anothers_session() {
    let app = TestApp::spawn().await;
    let (email, first) = app.signed_up_user().await;
    let second = app.login(&email, PASSWORD).await;
    let third = app.login(&email, PASSWORD).await;
    let keeper = app.login(&email, PASSWORD).await;
    let jwt = keeper.str("access_token");

    // Logout with the refresh token, twice: one event.
    for _ in 0..2 {
        let out = app
            .post(
                "/v1/auth/logout",
                json!({ "refresh_token": first.str("refresh_token") }),
            )
            .await;
        assert_eq!(out.status, 204);
    }
    // Logout with the bearer, twice: one event.
    for _ in 0..2 {
        let out = app
            .send("POST", "/v1/auth/logout", Some(&second.str("access_token")), None)
            .await;
        assert_eq!(out.status, 204);
    }
    // Revoking one's own session by id.
    let revoked = app
        .send(
            "DELETE",
            &format!("/v1/auth/sessions/{}", third.str("session_id")),
            Some(&jwt),
            None,
        )
        .await;
    assert_eq!(revoked.status, 204);
    // A stranger naming that account's live session gets 404 and records nothing anywhere.
    let (_, stranger) = app.signed_up_user().await;
    let probe = app
        .send(
            "DELETE",
            &format!("/v1/auth/sessions/{}", keeper.str("session_id")),
            Some(&stranger.str("access_token")),
            None,
        )
        .await;
    assert_eq!(probe.status, 404);
    assert_eq!(app.me(&jwt).await.status, 200, "the probed session lives");

    let events = own_events(&app, &jwt).await;
    let mut ended: Vec<(String, String)> = of_type(&events, "session_revoked")
        .iter()
        .map(|e| {
            (
                e["session_id"].as_str().unwrap().to_owned(),
                e["details"]["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Events of the same second come in no particular order.
    ended.sort();
    let mut expected = vec![
        (third.str("session_id"), "revoked".to_owned()),
        (second.str("session_id"), "logout".to_owned()),
        (first.str("session_id"), "logout".to_owned()),
    ];
    expected.sort();
    assert_eq!(ended, expected, "{events:?}");
    let strangers = own_events(&app, &stranger.str("access_token")).await;
    assert!(of_type(&strangers, "session_revoked").is_empty(), "{strangers:?}");

    // Signing out every other session is one event, from the kept session.
    let others = app.send("DELETE", "/v1/auth/sessions", Some(&jwt), None).await;
    assert_eq!(others.status, 204);
    let events = own_events(&app, &jwt).await;
    let all_others = events
        .iter()
        .find(|e| e["details"]["reason"] == "other_sessions_revoked")
        .expect("recorded");
    assert_eq!(all_others["session_id"], keeper.str("session_id").as_str());
}

#[tokio::test]
async fn password_changes_and_resets_are_recorded_without_the_passwords() {
    let app = TestApp::spawn().await;
    let (email, tokens) = app.signed_up_user().await;
    let new_password = "a brand new passphrase for events";
    let changed = app
        .change_password(&tokens.str("access_token"), PASSWORD, new_password)
        .await;
    assert_eq!(changed.status, 204, "{:?}", changed.body);
    let reset_to = "yet another passphrase for the reset";
    assert_eq!(app.reset_password(&email, reset_to).await.status, 204);
    let fresh = app.login(&email, reset_to).await;
    assert_eq!(fresh.status, 200);
    let events = own_events(&app, &fresh.str("access_token")).await;
    let change = of_type(&events, "password_changed");
    assert_eq!(change.len(), 1, "{events:?}");
    assert_eq!(change[0]["session_id"], tokens.str("session_id").as_str());
    assert_eq!(of_type(&events, "password_reset").len(), 1, "{events:?}");
    let text = serde_json::to_string(&events).unwrap();
    for secret in [PASSWORD, new_password, reset_to] {
        assert!(!text.contains(secret), "an event holds a password");
    }
    for token in [tokens.str("refresh_token"), tokens.str("access_token")] {
        assert!(!text.contains(&token), "an event holds a token");
    }
}

/// The new-device notices `to` got, oldest first.
async fn new_device_notices(app: &TestApp, to: &str) -> Vec<(String, String)> {
    app.emails_to(to)
        .await
        .into_iter()
        .filter(|(subject, _)| subject == "New sign-in to your account")
        .collect()
}

#[tokio::test]
async fn a_sign_in_from_a_new_device_or_network_is_mailed_and_a_known_one_is_not() {
    let app = TestApp::spawn().await;
    let (email, _) = signed_in_from(&app, FIREFOX_MAC).await;
    // The registration's session had no User-Agent; the Firefox login is a new device.
    assert_eq!(new_device_notices(&app, &email).await.len(), 1);
    // The same browser from the same network again: known.
    let again = app
        .send_with_agent(
            FIREFOX_MAC,
            "POST",
            "/v1/auth/login",
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(
        new_device_notices(&app, &email).await.len(),
        1,
        "a known device is not mailed"
    );
    // Another browser: new.
    let chrome = app
        .send_with_agent(
            CHROME_WINDOWS,
            "POST",
            "/v1/auth/login",
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(chrome.status, 200);
    let mails = new_device_notices(&app, &email).await;
    assert_eq!(mails.len(), 2);
    assert!(mails[1].1.contains("Chrome on Windows"), "{mails:?}");
    // The same browser from another network: new.
    // Another /24 of the loopback network (the client must bind it).
    let std::net::IpAddr::V4(v4) = app.ip else {
        panic!("IPv4 loopback expected")
    };
    let [a, b, c, d] = v4.octets();
    let other = std::net::Ipv4Addr::new(a, b ^ 1, c, d);
    let elsewhere = app.from_ip(std::net::IpAddr::V4(other));
    let moved = elsewhere
        .send_with_agent(
            FIREFOX_MAC,
            "POST",
            "/v1/auth/login",
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(moved.status, 200);
    let mails = new_device_notices(&app, &email).await;
    assert_eq!(mails.len(), 3);
    assert!(mails[2].1.contains(&other.to_string()), "{mails:?}");
}

#[tokio::test]
async fn the_new_device_notice_can_be_turned_off_and_a_first_sign_in_is_never_one() {
    let app = TestApp::spawn_with(|config| config.notify_new_device = false).await;
    let (email, _) = signed_in_from(&app, CHROME_WINDOWS).await;
    let mails = app.emails_to(&email).await;
    assert!(
        mails
            .iter()
            .all(|(subject, _)| subject != "New sign-in to your account"),
        "{mails:?}"
    );
    let on = TestApp::spawn().await;
    let (fresh, _) = on.signed_up_user().await;
    let mails = on.emails_to(&fresh).await;
    assert!(
        mails
            .iter()
            .all(|(subject, _)| subject != "New sign-in to your account"),
        "verifying a registration is the account's first sign-in: {mails:?}"
    );
}

#[tokio::test]
async fn admin_actions_are_in_the_tenant_feed_with_their_actor() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, "Events Inc").await;
    let manager = member(&app, &root, "manager").await;
    let backend = member(&app, &root, "backend").await;
    let patch = |id: String, body: Value| {
        let app = &app;
        let jwt = manager.jwt();
        async move {
            app.send(
                "PATCH",
                &format!("/v1/accounts/{id}"),
                Some(&jwt),
                Some(body.to_string().into_bytes()),
            )
            .await
        }
    };
    assert_eq!(patch(backend.id(), json!({ "role": "frontend" })).await.status, 200);
    assert_eq!(patch(backend.id(), json!({ "status": "disabled" })).await.status, 200);
    assert_eq!(patch(backend.id(), json!({ "status": "active" })).await.status, 200);
    // Refused (a manager cannot make a root): nothing recorded.
    assert_eq!(patch(backend.id(), json!({ "role": "root" })).await.status, 403);

    let feed = app
        .get(
            &format!("/v1/audit-events?account_id={}", backend.id()),
            Some(&root.jwt()),
        )
        .await;
    assert_eq!(feed.status, 200, "{:?}", feed.body);
    let events = feed.body["events"].as_array().unwrap();
    let mut admin: Vec<&str> = events
        .iter()
        .filter(|e| e["actor_id"].is_string())
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    admin.sort_unstable();
    assert_eq!(
        admin,
        vec!["account_disabled", "account_enabled", "role_changed"],
        "{events:?}"
    );
    for event in events.iter().filter(|e| e["actor_id"].is_string()) {
        assert_eq!(event["actor_id"], manager.id().as_str());
        assert_eq!(event["tenant_id"], root.tenant().as_str());
        assert_eq!(event["session_id"], manager.tokens.str("session_id").as_str());
    }
    let role = events.iter().find(|e| e["type"] == "role_changed").unwrap();
    assert_eq!(
        (role["details"]["from"].as_str(), role["details"]["to"].as_str()),
        (Some("backend"), Some("frontend"))
    );

    // A root transfer records both role changes.
    let transfer = app
        .post_as(
            &root.jwt(),
            "/v1/tenant/transfer-root",
            json!({ "account_id": manager.id() }),
        )
        .await;
    assert_eq!(transfer.status, 204, "{:?}", transfer.body);
    let feed = app
        .get("/v1/audit-events?type=role_changed&limit=100", Some(&manager.jwt()))
        .await;
    let transfers: Vec<(&str, &str)> = feed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["reason"] == "root_transferred")
        .map(|e| (e["target_id"].as_str().unwrap(), e["details"]["to"].as_str().unwrap()))
        .collect();
    assert_eq!(transfers.len(), 2, "{:?}", feed.body);
    assert!(transfers.contains(&(manager.id().as_str(), "root")));
    assert!(transfers.contains(&(root.id().as_str(), "manager")));

    // The tenant feed is not the backend's to read, nor another tenant's.
    let (_, outsider) = app.signed_up_user().await;
    let theirs = app
        .get(
            &format!("/v1/audit-events?account_id={}", backend.id()),
            Some(&outsider.str("access_token")),
        )
        .await;
    assert_eq!(theirs.status, 200);
    assert_eq!(theirs.body["events"], json!([]), "another tenant sees none of it");
}

#[tokio::test]
async fn a_root_sign_in_is_recorded_as_one() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, "Root Events").await;
    let signed = app
        .post(
            "/v1/auth/login/root",
            json!({ "email": root.email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(signed.status, 200, "{:?}", signed.body);
    let events = own_events(&app, &root.jwt()).await;
    let root_sign_ins: Vec<_> = of_type(&events, "signed_in")
        .into_iter()
        .filter(|e| e["details"]["token"] == "root")
        .collect();
    assert_eq!(root_sign_ins.len(), 1, "{events:?}");
    assert!(root_sign_ins[0].get("session_id").is_none());
}
