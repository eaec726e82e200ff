//! Issue 16, part 2 (started): an account's own security events, `GET /v1/auth/events`.

use keygate::store::events::{self, Event};
use keygate_e2e::{Answer, TestApp};
use serde_json::json;

fn id(tokens: &Answer) -> String {
    tokens.body["user"]["id"].as_str().unwrap().to_owned()
}

/// Records `count` events for `user_id`, one second apart, the newest last.
async fn record(app: &TestApp, user_id: &str, count: i64) {
    let now = app.state.clock.now();
    for i in 0..count {
        let event = Event::new("password_changed", None, user_id, None, None, now - 100 + i).with("n", i.to_string());
        events::put(&app.state.store, &event).await.unwrap();
    }
}

#[tokio::test]
async fn an_account_pages_through_its_own_events_newest_first() {
    let app = TestApp::spawn().await;
    let (_, owner) = app.signed_up_user().await;
    let (_, other) = app.signed_up_user().await;
    record(&app, &id(&owner), 7).await;
    record(&app, &id(&other), 2).await;
    let jwt = owner.str("access_token");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for expected in [3, 3, 1] {
        let path = match &cursor {
            Some(c) => format!("/v1/auth/events?limit=3&cursor={c}"),
            None => "/v1/auth/events?limit=3".to_owned(),
        };
        let page = app.get(&path, Some(&jwt)).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let events = page.body["events"].as_array().unwrap().clone();
        assert_eq!(events.len(), expected, "{:?}", page.body);
        for event in &events {
            assert_eq!(event["target_id"], id(&owner).as_str(), "only the caller's own");
            assert_eq!(event["type"], "password_changed");
            seen.push(event["details"]["n"].as_str().unwrap().parse::<i64>().unwrap());
        }
        cursor = page.body["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, vec![6, 5, 4, 3, 2, 1, 0], "newest first, each once");
    assert!(cursor.is_none(), "the last page says so");
}

#[tokio::test]
async fn cursors_limits_and_credentials_are_checked() {
    let app = TestApp::spawn().await;
    let (_, owner) = app.signed_up_user().await;
    let (_, other) = app.signed_up_user().await;
    record(&app, &id(&owner), 3).await;
    record(&app, &id(&other), 3).await;
    let first = app
        .get("/v1/auth/events?limit=1", Some(&other.str("access_token")))
        .await;
    let foreign = first.str("next_cursor");
    let jwt = owner.str("access_token");
    for path in [
        format!("/v1/auth/events?cursor={foreign}"),
        "/v1/auth/events?cursor=bm90LWEtY3Vyc29y".to_owned(),
        "/v1/auth/events?cursor=%00%ff".to_owned(),
        "/v1/auth/events?limit=0".to_owned(),
        "/v1/auth/events?limit=101".to_owned(),
        "/v1/auth/events?limit=ten".to_owned(),
    ] {
        let refused = app.get(&path, Some(&jwt)).await;
        assert_eq!(
            (refused.status, refused.code()),
            (422, "invalid_field"),
            "{path}: {:?}",
            refused.body
        );
    }
    assert_eq!(app.get("/v1/auth/events", None).await.status, 401);
    assert_eq!(app.get("/v1/auth/events", Some("not-a-token")).await.status, 401);
    for (scopes, status) in [(json!(["profile:read"]), 200), (json!(["tokens:write"]), 403)] {
        let pat = app
            .post_as(&jwt, "/v1/api-tokens", json!({ "name": "feed", "scopes": scopes }))
            .await;
        assert_eq!(pat.status, 201, "{:?}", pat.body);
        let listed = app.get("/v1/auth/events", Some(&pat.str("token"))).await;
        assert_eq!(listed.status, status, "{scopes}: {:?}", listed.body);
    }
}
