//! Hostile and malformed input on every endpoint: always a clear JSON 4xx, never a 500, never half-written data.

use keygate_e2e::{unique_email, TestApp, PASSWORD};
use serde_json::json;

const POST_ENDPOINTS: &[&str] = &[
    "/v1/auth/register",
    "/v1/auth/register/verify",
    "/v1/auth/login",
    "/v1/auth/refresh",
    "/v1/auth/logout",
    "/v1/auth/change-password",
    "/v1/auth/password-reset-request",
    "/v1/auth/password-reset",
    "/v1/auth/otp/send",
    "/v1/auth/otp/login",
    "/v1/auth/magic-link/send",
    "/v1/auth/magic-link/login",
    "/v1/api-tokens",
];

fn assert_client_error(answer: &keygate_e2e::Answer, what: &str) {
    assert!(
        (400..500).contains(&answer.status),
        "{what}: status {} {:?}",
        answer.status,
        answer.body
    );
    assert!(!answer.code().is_empty(), "{what}: no error code in {:?}", answer.body);
    assert!(
        answer.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}"
    );
}

#[tokio::test]
async fn malformed_bodies_get_clear_errors_everywhere() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let token = tokens.str("access_token");
    let bodies: &[&[u8]] = &[
        b"{",
        b"not json",
        b"[]",
        b"null",
        b"42",
        b"{\"email\": }",
        b"\xff\xfe\x00garbage",
        b"{\"email\":\"a@example.com\",\"password\":",
    ];
    for path in POST_ENDPOINTS {
        for body in bodies {
            let answer = app.send("POST", path, Some(&token), Some(body.to_vec())).await;
            assert_client_error(&answer, &format!("{path} {:?}", String::from_utf8_lossy(body)));
            assert_eq!(answer.status, 400, "{path} {:?}", String::from_utf8_lossy(body));
        }
    }
}

#[tokio::test]
async fn missing_and_mistyped_fields_are_invalid_requests() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let token = tokens.str("access_token");
    for path in POST_ENDPOINTS.iter().filter(|p| **p != "/v1/auth/logout") {
        for body in [
            json!({}),
            json!({ "email": 1, "password": true, "code": 123456, "refresh_token": [], "current_password": {}, "new_password": null }),
            json!({ "email": null }),
        ] {
            let answer = app.post_as(&token, path, body.clone()).await;
            assert_client_error(&answer, &format!("{path} {body}"));
            assert_eq!(answer.code(), "invalid_request", "{path} {body}");
        }
    }
    // A mistyped value is not echoed back.
    let answer = app
        .post(
            "/v1/auth/login",
            json!({ "email": "a@example.com", "password": 123_456_789 }),
        )
        .await;
    assert!(!answer.body.to_string().contains("123456789"));
}

#[tokio::test]
async fn huge_bodies_are_refused_before_parsing() {
    let app = TestApp::spawn().await;
    let huge = format!(
        r#"{{"email":"a@example.com","password":"{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    for path in POST_ENDPOINTS {
        let answer = app.send("POST", path, None, Some(huge.clone().into_bytes())).await;
        assert_eq!((answer.status, answer.code()), (413, "payload_too_large"), "{path}");
    }
}

#[tokio::test]
async fn odd_emails_are_refused_and_leave_nothing_behind() {
    let app = TestApp::spawn().await;
    for email in [
        "",
        "no-at-sign",
        "a@b",
        "аdmin@example.com",
        "admin@exаmple.com",
        "a\u{0}@example.com",
        "a\u{202e}moc.elpmaxe@example.com",
        "\u{1F980}@example.com",
        "a@@example.com",
        "a b@example.com",
        &format!("{}@example.com", "a".repeat(300)),
    ] {
        let answer = app.register(email, PASSWORD).await;
        assert_eq!((answer.status, answer.code()), (422, "invalid_email"), "{email:?}");
        let reset = app
            .post("/v1/auth/password-reset-request", json!({ "email": email }))
            .await;
        assert_eq!(reset.status, 422, "{email:?}");
        let login = app.login(email, PASSWORD).await;
        assert_eq!((login.status, login.code()), (401, "invalid_credentials"), "{email:?}");
        assert!(
            app.items(&format!("EMAIL#{}", email.trim().to_lowercase()))
                .await
                .is_empty(),
            "{email:?}"
        );
    }
}

#[tokio::test]
async fn weak_passwords_and_bad_names_are_refused_and_leave_nothing_behind() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    for (body, code) in [
        (json!({ "email": email, "password": "short" }), "weak_password"),
        (json!({ "email": email, "password": "password123" }), "weak_password"),
        (json!({ "email": email, "password": "x".repeat(129) }), "weak_password"),
        (
            json!({ "email": email, "password": PASSWORD, "name": "n".repeat(101) }),
            "invalid_field",
        ),
        (
            json!({ "email": email, "password": PASSWORD, "name": "evil\u{202e}name" }),
            "invalid_field",
        ),
    ] {
        let answer = app.post("/v1/auth/register", body).await;
        assert_eq!((answer.status, answer.code()), (422, code));
    }
    assert!(app.items(&format!("EMAIL#{email}")).await.is_empty());
    assert!(app.emails_to(&email).await.is_empty());
}

#[tokio::test]
async fn malformed_codes_do_not_spend_tries() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let code = app.code_sent_to(&email, "verification code").await;
    for bad in ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12345\u{0}", " 123456"] {
        let answer = app.verify(&email, bad).await;
        assert_eq!((answer.status, answer.code()), (400, "invalid_code"), "{bad:?}");
    }
    assert_eq!(app.verify(&email, &code).await.status, 200);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let app = TestApp::spawn().await;
    let missing = app.get("/v1/auth/nothing-here", None).await;
    assert_eq!((missing.status, missing.code()), (404, "not_found"));
    let wrong_method = app.get("/v1/auth/login", None).await;
    assert_eq!((wrong_method.status, wrong_method.code()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn hostile_refresh_tokens_are_refused() {
    let app = TestApp::spawn().await;
    for token in [
        "".to_owned(),
        ".".to_owned(),
        "a.b".to_owned(),
        "x".repeat(5_000),
        "../../etc/passwd.x".to_owned(),
        "SESSION#x.y".to_owned(),
        format!("{}.{}", keygate::tokens::new_session_id(), "A".repeat(43)),
    ] {
        let answer = app.refresh(&token).await;
        assert_eq!((answer.status, answer.code()), (401, "invalid_token"), "{token:?}");
    }
}
