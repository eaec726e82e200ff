//! What the API fuzzer found (scripts/fuzz.sh, schemathesis against openapi.yaml), each kept fixed by a test.

use keygate_e2e::{Answer, TestApp};
use serde_json::{json, Value};

const DAY: i64 = 86_400;

fn lifetime(answer: &Answer) -> i64 {
    let at = |field: &str| {
        let text = answer.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {}", answer.body));
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    };
    at("expires_at") - at("created_at")
}

/// JSON Schema's `integer` takes `30.0` and `3e1`, so schema-valid clients send them: every integer field of a
/// request body reads a whole number however it is written (it was 400 "a field has the wrong type"), and still
/// refuses a fraction, a string, or a number out of range.
#[tokio::test]
async fn integer_fields_take_whole_numbers_written_as_floats() {
    let app = TestApp::spawn_with(|c| {
        c.scoped_token_resources = vec!["company".into()];
        c.scoped_token_scopes = vec!["db:read".into()];
    })
    .await;
    let (_, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let pat = |expires_in_days: Value| {
        let body = json!({ "name": "ci", "scopes": ["profile:read"], "expires_in_days": expires_in_days });
        app.post_as(&jwt, "/v1/api-tokens", body)
    };

    let created = pat(json!(30.0)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(lifetime(&created), 30 * DAY);
    let created = pat(json!(3e1)).await;
    assert_eq!((created.status, lifetime(&created)), (201, 30 * DAY));
    for refused in [json!(30.5), json!("30"), json!(1e300)] {
        let answer = pat(refused.clone()).await;
        assert_eq!((answer.status, answer.code()), (400, "invalid_request"), "{refused}");
    }

    // A service account's PAT, through the same body.
    let service = app
        .post_as(
            &jwt,
            "/v1/accounts/service",
            json!({ "service_name": "etl", "password": "a long service secret", "role": "backend" }),
        )
        .await;
    assert_eq!(service.status, 201, "{:?}", service.body);
    let machine = app
        .post_as(
            &jwt,
            &format!("/v1/accounts/{}/api-tokens", service.str("id")),
            json!({ "name": "nightly", "scopes": ["db:read"], "expires_in_days": 10.0 }),
        )
        .await;
    assert_eq!(
        (machine.status, lifetime(&machine)),
        (201, 10 * DAY),
        "{:?}",
        machine.body
    );

    // A grace period of 0.0 is no grace: the old secret stops at once (the default would keep it a day).
    let old = created.str("token");
    let rotate_path = format!("/v1/api-tokens/{}/rotate", created.str("id"));
    let rotate = |grace: Value| app.post_as(&jwt, &rotate_path, json!({ "grace_period_seconds": grace }));
    assert_eq!(rotate(json!(0.5)).await.status, 400);
    let rotated = rotate(json!(0.0)).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    assert_eq!(app.me(&old).await.status, 401);
    assert_eq!(app.me(&rotated.str("token")).await.status, 200);

    let scoped = app
        .post_as(
            &jwt,
            "/v1/scoped-tokens",
            json!({ "resource": "company:acme", "scopes": ["db:read"], "expires_in_days": 7.0 }),
        )
        .await;
    assert_eq!((scoped.status, lifetime(&scoped)), (201, 7 * DAY), "{:?}", scoped.body);
    let fraction = app
        .post_as(
            &jwt,
            "/v1/scoped-tokens",
            json!({ "resource": "company:acme", "scopes": ["db:read"], "expires_in_days": 7.25 }),
        )
        .await;
    assert_eq!((fraction.status, fraction.code()), (400, "invalid_request"));
}

/// RFC 6749 §3.2: the token endpoint ignores parameters it does not know, so one given twice (a form serialiser's
/// array, say) is ignored too (it was 400 "given more than once"); a known one given twice is still refused.
#[tokio::test]
async fn the_token_endpoint_ignores_unknown_parameters_however_often_given() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let secret = "a long service secret";
    let service = app
        .post_as(
            &session.str("access_token"),
            "/v1/accounts/service",
            json!({ "service_name": "etl", "password": secret, "role": "backend" }),
        )
        .await;
    assert_eq!(service.status, 201, "{:?}", service.body);
    let client = reqwest::Client::builder()
        .local_address(app.ip)
        .no_proxy()
        .build()
        .unwrap();
    let token = |extra: &'static str| {
        let body = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}{extra}",
            service.str("id"),
            secret.replace(' ', "+")
        );
        client
            .post(format!("{}/v1/oauth/token", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let answer = token("&x=1&x=2&%C3%A9=&%C3%A9=true").await.unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert!(body["access_token"].is_string(), "{body}");
    let answer = token("&scope=db%3Aread&scope=db%3Aread").await.unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "The parameter scope is given more than once."
    );
}

/// serde reads a struct from a JSON array of its fields in order, so a body of optional members took `[null]` as
/// `{}`: logout ended the session, passkey sign-in options answered 200. Every body must be an object.
#[tokio::test]
async fn a_body_that_is_an_array_is_refused_not_read_as_its_fields() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let access = session.str("access_token");
    let logout = app.post_as(&access, "/v1/auth/logout", json!([null])).await;
    assert_eq!((logout.status, logout.code()), (400, "invalid_request"));
    assert_eq!(logout.body["error"]["message"], "The body must be a JSON object.");
    assert_eq!(
        app.get("/v1/auth/me", Some(&access)).await.status,
        200,
        "the session still stands"
    );
    let options = app.post("/v1/auth/passkey/login/options", json!([null, null])).await;
    assert_eq!((options.status, options.code()), (400, "invalid_request"));
    let switch = app
        .post_as(&access, "/v1/auth/session/database", json!([null, null]))
        .await;
    assert_eq!((switch.status, switch.code()), (400, "invalid_request"));
    // An object still works.
    assert_eq!(app.post_as(&access, "/v1/auth/logout", json!({})).await.status, 204);
}
