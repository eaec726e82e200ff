//! The Lambda authorizer: real authorizer event JSON into the function, and the example route behind it.

use keygate_e2e::{authorizer_event, TestApp};
use serde_json::{json, Value};

async fn decide(app: &TestApp, event: Value) -> Value {
    authorizer::handle(&app.state, event).await
}

#[tokio::test]
async fn jwts_are_allowed_with_one_batch_read_and_pats_with_two() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    app.dynamo_calls.reset();
    let allowed = decide(&app, authorizer_event(&format!("Bearer {jwt}"))).await;
    assert_eq!(allowed["isAuthorized"], true);
    assert_eq!(allowed["context"]["sub"], session.body["user"]["id"]);
    assert_eq!(allowed["context"]["token_type"], "jwt");
    assert_eq!(allowed["context"]["sid"], session.body["session_id"]);
    assert!(allowed["context"]["scopes"].as_str().unwrap().contains("profile:read"));
    // The session and the user, in one strongly consistent BatchGetItem, so a revoked session is denied at once.
    assert_eq!(
        app.dynamo_calls.snapshot(),
        [("BatchGetItem".to_owned(), 1)].into_iter().collect()
    );

    let pat = app
        .post_as(
            &jwt,
            "/v1/api-tokens",
            json!({ "name": "orders", "scopes": ["profile:read"] }),
        )
        .await;
    decide(&app, authorizer_event(&format!("Bearer {}", pat.str("token")))).await;
    app.dynamo_calls.reset();
    let allowed = decide(&app, authorizer_event(&format!("bearer {}", pat.str("token")))).await;
    assert_eq!(allowed["isAuthorized"], true);
    assert_eq!(allowed["context"]["token_type"], "pat");
    assert_eq!(allowed["context"]["token_id"], pat.body["id"]);
    assert_eq!(allowed["context"]["scopes"], "profile:read");
    // The token, then its owner's token epoch.
    assert_eq!(
        app.dynamo_calls.snapshot(),
        [("GetItem".to_owned(), 2)].into_iter().collect()
    );
}

#[tokio::test]
async fn forged_expired_revoked_and_garbage_are_denied() {
    let app = TestApp::spawn().await;
    let (session, pat) = app.user_with_pat(&["profile:read"]).await;
    let jwt = session.str("access_token");
    app.send("DELETE", &format!("/v1/api-tokens/{}", pat.str("id")), Some(&jwt), None)
        .await;

    let mut forged = jwt.clone();
    forged.replace_range(forged.len() - 5.., "AAAAA");
    let deny = json!({ "isAuthorized": false, "context": {} });
    for authorization in [
        format!("Bearer {forged}"),
        format!("Bearer {}", pat.str("token")),
        "Bearer ".to_owned(),
        "Basic dXNlcjpwYXNz".to_owned(),
        "Bearer kg_abc.def".to_owned(),
        "Bearer eyJhbGciOiJub25lIn0.e30.".to_owned(),
        "x".repeat(20_000),
    ] {
        assert_eq!(
            decide(&app, authorizer_event(&authorization)).await,
            deny,
            "{authorization:.40}"
        );
    }
    for event in [
        json!({}),
        json!(null),
        json!([]),
        json!({ "headers": "nope" }),
        json!({ "headers": { "authorization": 7 } }),
    ] {
        assert_eq!(decide(&app, event.clone()).await, deny, "{event}");
    }
    app.state.clock.advance(901);
    assert_eq!(
        decide(&app, authorizer_event(&format!("Bearer {jwt}"))).await,
        deny,
        "expired"
    );
}

#[tokio::test]
async fn the_example_route_sits_behind_the_authorizer() {
    let app = TestApp::spawn().await;
    let (session, pat) = app.user_with_pat(&["profile:read"]).await;
    let jwt = session.str("access_token");

    let as_pat = app.get("/v1/example/whoami", Some(&pat.str("token"))).await;
    assert_eq!(as_pat.status, 200, "{:?}", as_pat.body);
    assert_eq!(as_pat.body["caller"]["sub"], session.body["user"]["id"]);
    assert_eq!(as_pat.body["caller"]["token_type"], "pat");
    let as_jwt = app.get("/v1/example/whoami", Some(&jwt)).await;
    assert_eq!(as_jwt.body["caller"]["token_type"], "jwt");

    assert_eq!(app.get("/v1/example/whoami", None).await.status, 401);
    assert_eq!(app.get("/v1/example/whoami", Some("garbage")).await.status, 403);
}
