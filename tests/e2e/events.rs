//! Issue 16, part 2 (started): an account's own security events, `GET /v1/auth/events`.

use keygate::store::events::{self, Event, Kind};
use keygate_e2e::{Answer, TestApp};
use serde_json::json;

/// Every event of the account `jwt` signs in as, newest first (all pages).
pub(crate) async fn own_events(app: &TestApp, jwt: &str) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/auth/events?limit=100&cursor={c}"),
            None => "/v1/auth/events?limit=100".to_owned(),
        };
        let page = app.get(&path, Some(jwt)).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        all.extend(page.body["events"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

/// The events of type `kind` among `events`.
pub(crate) fn of_type<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn id(tokens: &Answer) -> String {
    tokens.body["user"]["id"].as_str().unwrap().to_owned()
}

/// Records `count` events for `user_id`, one second apart, the newest last.
async fn record(app: &TestApp, user_id: &str, count: i64) {
    let now = app.state.clock.now();
    for i in 0..count {
        let event = Event::about(Kind::PasswordChanged, user_id, None, now - 100 + i, 86_400).with("n", i.to_string());
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
    // The seven recorded, after the sign-in that verifying the registration recorded (the newest).
    for expected in [3, 3, 2] {
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
            match event["type"].as_str() {
                Some("signed_in") => assert!(seen.is_empty(), "the sign-in is the newest"),
                _ => {
                    assert_eq!(event["type"], "password_changed");
                    seen.push(event["details"]["n"].as_str().unwrap().parse::<i64>().unwrap());
                }
            }
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

/// Records `count` events of `kind` for `user_id` of `tenant`, one second apart.
async fn record_in(app: &TestApp, tenant: &str, user_id: &str, kind: Kind, count: i64) {
    let now = app.state.clock.now();
    for i in 0..count {
        let event = Event::about(kind, user_id, Some(tenant), now - 50 + i, 86_400).by("someone");
        events::put(&app.state.store, &event).await.unwrap();
    }
}

fn tenant_of(tokens: &Answer) -> String {
    keygate_e2e::jwt_claims(&tokens.str("access_token"))["tenant"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_tenant_feed_shows_only_the_tenants_events_and_narrows_by_account_and_type() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let (_, stranger) = app.signed_up_user().await;
    let tenant = tenant_of(&root);
    let member = "0b7d3f2e-8c1a-4e5b-9f60-1a2b3c4d5e6f";
    record_in(&app, &tenant, &id(&root), Kind::RoleChanged, 2).await;
    record_in(&app, &tenant, member, Kind::AccountDisabled, 3).await;
    record_in(&app, &tenant_of(&stranger), &id(&stranger), Kind::RoleChanged, 4).await;
    let jwt = root.str("access_token");

    let all = app.get("/v1/audit-events?limit=100", Some(&jwt)).await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    let events = all.body["events"].as_array().unwrap();
    // The five recorded and the root's own sign-in.
    assert_eq!(events.len(), 6, "{:?}", all.body);
    assert!(events.iter().all(|e| e["tenant_id"] == tenant.as_str()));
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    let by_type = app.get("/v1/audit-events?type=account_disabled", Some(&jwt)).await;
    assert_eq!(by_type.body["events"].as_array().unwrap().len(), 3);
    let by_account = app
        .get(&format!("/v1/audit-events?account_id={}", id(&root)), Some(&jwt))
        .await;
    assert_eq!(by_account.body["events"].as_array().unwrap().len(), 3);
    let foreign = app
        .get(&format!("/v1/audit-events?account_id={}", id(&stranger)), Some(&jwt))
        .await;
    assert_eq!(foreign.status, 200);
    assert_eq!(
        foreign.body["events"],
        json!([]),
        "another tenant's account matches nothing"
    );

    // Two at a time, the pages add up to the whole feed.
    let mut cursor: Option<String> = None;
    let mut total = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/audit-events?limit=2&cursor={c}"),
            None => "/v1/audit-events?limit=2".to_owned(),
        };
        let page = app.get(&path, Some(&jwt)).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        total += page.body["events"].as_array().unwrap().len();
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(total, 6);
}

#[tokio::test]
async fn the_tenant_feed_refuses_foreign_cursors_bad_filters_and_narrow_credentials() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let (_, stranger) = app.signed_up_user().await;
    record_in(&app, &tenant_of(&stranger), &id(&stranger), Kind::RoleChanged, 3).await;
    let theirs = app
        .get("/v1/audit-events?limit=1", Some(&stranger.str("access_token")))
        .await;
    let foreign = theirs.str("next_cursor");
    let jwt = root.str("access_token");
    for path in [
        format!("/v1/audit-events?cursor={foreign}"),
        "/v1/audit-events?account_id=not-an-id".to_owned(),
        "/v1/audit-events?type=Role-Changed".to_owned(),
        "/v1/audit-events?type=".to_owned(),
        "/v1/audit-events?limit=500".to_owned(),
    ] {
        let refused = app.get(&path, Some(&jwt)).await;
        assert_eq!(
            (refused.status, refused.code()),
            (422, "invalid_field"),
            "{path}: {:?}",
            refused.body
        );
    }
    assert_eq!(app.get("/v1/audit-events", None).await.status, 401);
    let narrow = app
        .post_as(
            &jwt,
            "/v1/api-tokens",
            json!({ "name": "feed", "scopes": ["profile:read"] }),
        )
        .await;
    let refused = app.get("/v1/audit-events", Some(&narrow.str("token"))).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
}
