//! Personal access tokens: create, use, list, rotate with and without grace, revoke, expiry, scopes, ownership,
//! and typos refused without a database read.

use keygate_e2e::{Answer, TestApp};
use serde_json::json;

async fn create(app: &TestApp, bearer: &str, scopes: &[&str], extra: serde_json::Value) -> Answer {
    let mut body = json!({ "name": "ci pipeline", "scopes": scopes });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    app.post_as(bearer, "/v1/api-tokens", body).await
}

#[tokio::test]
async fn create_use_list_and_rotate_with_grace() {
    let app = TestApp::spawn().await;
    let (email, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let created = create(&app, &jwt, &["profile:read", "tokens:read"], json!({})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let token = created.str("token");
    let id = created.str("id");
    assert!(token.starts_with("kg_"));
    assert_eq!(created.body["scopes"], json!(["profile:read", "tokens:read"]));
    let lifetime = time_between(&created.body["created_at"], &created.body["expires_at"]);
    assert_eq!(lifetime, 90 * 86_400, "90 days by default");

    let me = app.me(&token).await;
    assert_eq!((me.status, me.body["email"].as_str()), (200, Some(email.as_str())));

    let listed = app.get("/v1/api-tokens", Some(&token)).await;
    assert_eq!(listed.status, 200);
    let tokens = listed.body["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["id"], id.as_str());
    assert!(tokens[0]["last_used_at"].is_string(), "use is recorded");
    assert!(
        !listed.body.to_string().contains(&token[token.len() - 49..]),
        "no secret in listings"
    );
    assert!(!listed.body.to_string().contains("hash"));
    let one = app.get(&format!("/v1/api-tokens/{id}"), Some(&jwt)).await;
    assert_eq!(one.body["name"], "ci pipeline");

    let rotated = app
        .post_as(
            &jwt,
            &format!("/v1/api-tokens/{id}/rotate"),
            json!({ "grace_period_seconds": 3600 }),
        )
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new_token = rotated.str("token");
    assert_ne!(new_token, token);
    assert_eq!(rotated.str("id"), id);
    assert_eq!(rotated.body["scopes"], created.body["scopes"]);
    assert_eq!(
        app.me(&token).await.status,
        200,
        "the old secret works during the grace period"
    );
    assert_eq!(app.me(&new_token).await.status, 200);

    app.state.clock.advance(3_601);
    assert_eq!(app.me(&token).await.code(), "invalid_token", "and not after it");
    assert_eq!(app.me(&new_token).await.status, 200);
}

fn time_between(from: &serde_json::Value, to: &serde_json::Value) -> i64 {
    let parse = |v: &serde_json::Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    };
    parse(to) - parse(from)
}

#[tokio::test]
async fn zero_grace_rotation_and_revocation_take_effect_at_once() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let created = create(&app, &jwt, &["profile:read"], json!({})).await;
    let (id, token) = (created.str("id"), created.str("token"));

    // A token may rotate itself, even without tokens:write; the body is optional, the grace can be zero.
    let rotated = app
        .post_as(
            &token,
            &format!("/v1/api-tokens/{id}/rotate"),
            json!({ "grace_period_seconds": 0 }),
        )
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    assert_eq!(app.me(&token).await.status, 401);
    let token = rotated.str("token");
    assert_eq!(app.me(&token).await.status, 200);

    // And revoke itself.
    assert_eq!(
        app.send("DELETE", &format!("/v1/api-tokens/{id}"), Some(&token), None)
            .await
            .status,
        204
    );
    assert_eq!(app.me(&token).await.status, 401);
    assert_eq!(
        app.send("DELETE", &format!("/v1/api-tokens/{id}"), Some(&jwt), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn expired_tokens_are_refused_while_their_item_remains() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let created = create(
        &app,
        &session.str("access_token"),
        &["profile:read"],
        json!({ "expires_in_days": 1 }),
    )
    .await;
    assert_eq!(
        time_between(&created.body["created_at"], &created.body["expires_at"]),
        86_400
    );
    app.state.clock.advance(86_401);
    assert_eq!(
        app.items(&format!("PAT#{}", created.str("id"))).await.len(),
        1,
        "moto keeps the item"
    );
    let me = app.me(&created.str("token")).await;
    assert_eq!((me.status, me.code()), (401, "invalid_token"));
}

#[tokio::test]
async fn scopes_are_checked_and_never_escalate() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let unknown = create(&app, &jwt, &["admin:everything"], json!({})).await;
    assert_eq!((unknown.status, unknown.code()), (422, "invalid_scope"));
    for bad in [
        json!({ "expires_in_days": 0 }),
        json!({ "expires_in_days": 366 }),
        json!({ "name": "" }),
    ] {
        let answer = create(&app, &jwt, &["profile:read"], bad.clone()).await;
        assert_eq!((answer.status, answer.code()), (422, "invalid_field"), "{bad}");
    }
    assert_eq!(create(&app, &jwt, &[], json!({})).await.code(), "invalid_scope");

    let minter = create(&app, &jwt, &["tokens:write"], json!({})).await.str("token");
    let escalation = create(&app, &minter, &["tokens:write", "profile:read"], json!({})).await;
    assert_eq!((escalation.status, escalation.code()), (403, "insufficient_scope"));
    assert_eq!(create(&app, &minter, &["tokens:write"], json!({})).await.status, 201);

    // A PAT without the scope an endpoint needs.
    let me = app.me(&minter).await;
    assert_eq!((me.status, me.code()), (403, "insufficient_scope"));
    assert_eq!(me.headers["www-authenticate"], r#"Bearer error="insufficient_scope""#);
    assert_eq!(
        app.get("/v1/api-tokens", Some(&minter)).await.code(),
        "insufficient_scope"
    );

    // Interactive-only actions refuse every PAT, whatever its scopes.
    let everything = create(&app, &jwt, &keygate::scopes::KEYGATE_SCOPES, json!({}))
        .await
        .str("token");
    let change = app
        .post_as(
            &everything,
            "/v1/auth/change-password",
            json!({ "current_password": "x", "new_password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!((change.status, change.code()), (403, "insufficient_scope"));
    assert_eq!(
        app.send("DELETE", "/v1/auth/sessions", Some(&everything), None)
            .await
            .status,
        403
    );
    assert_eq!(
        app.get("/v1/auth/sessions", Some(&everything)).await.status,
        200,
        "reading sessions is fine"
    );
}

#[tokio::test]
async fn another_users_token_is_not_found() {
    let app = TestApp::spawn().await;
    let (_, mine) = app.signed_up_user().await;
    let (_, theirs) = app.signed_up_user().await;
    let their_token = create(&app, &theirs.str("access_token"), &["profile:read"], json!({})).await;
    let id = their_token.str("id");
    let jwt = mine.str("access_token");
    assert_eq!(app.get(&format!("/v1/api-tokens/{id}"), Some(&jwt)).await.status, 404);
    assert_eq!(
        app.post_as(&jwt, &format!("/v1/api-tokens/{id}/rotate"), json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        app.send("DELETE", &format!("/v1/api-tokens/{id}"), Some(&jwt), None)
            .await
            .status,
        404
    );
    assert_eq!(app.me(&their_token.str("token")).await.status, 200, "untouched");
    for bad in ["nope", "PAT%23x", &"A".repeat(300)] {
        assert_eq!(
            app.get(&format!("/v1/api-tokens/{bad}"), Some(&jwt)).await.status,
            404,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn typos_and_bad_checksums_are_refused_without_a_read() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let token = create(&app, &session.str("access_token"), &["profile:read"], json!({}))
        .await
        .str("token");
    let mut typo = token.clone().into_bytes();
    let last = typo.len() - 10;
    typo[last] = if typo[last] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let truncated = token[..token.len() - 1].to_owned();
    let other_prefix = token.replacen("kg_", "gh_", 1);
    for bad in [typo, truncated, other_prefix, "kg_".to_owned(), "kg_x.y".to_owned()] {
        app.dynamo_calls.reset();
        let answer = app.me(&bad).await;
        assert_eq!(answer.status, 401, "{bad}");
        assert_eq!(app.dynamo_calls.total(), 0, "{bad}: {:?}", app.dynamo_calls.snapshot());
    }
    // The real token costs one read of the token and one of the user (plus the hourly last-use write).
    app.me(&token).await;
    app.dynamo_calls.reset();
    assert_eq!(app.me(&token).await.status, 200);
    assert_eq!(
        app.dynamo_calls.snapshot().get("GetItem"),
        Some(&2),
        "{:?}",
        app.dynamo_calls.snapshot()
    );
    assert_eq!(app.dynamo_calls.total(), 2, "last use is written at most once an hour");
}

#[tokio::test]
async fn concurrent_rotations_do_not_both_win() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let id = create(&app, &jwt, &["profile:read"], json!({})).await.str("id");
    let path = format!("/v1/api-tokens/{id}/rotate");
    let answers =
        futures::future::join_all((0..3).map(|_| app.post_as(&jwt, &path, json!({ "grace_period_seconds": 0 })))).await;
    let winners: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert!(!winners.is_empty());
    assert!(answers.iter().all(|a| a.status == 200 || a.code() == "conflict"));
    // Only the last winner's secret works: no two secrets are live without a grace period.
    let mut live = 0;
    for winner in winners {
        live += usize::from(app.me(&winner.str("token")).await.status == 200);
    }
    assert_eq!(live, 1);
}
