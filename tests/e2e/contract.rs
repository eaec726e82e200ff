//! The contract check itself: undeclared methods answer 405 with `Allow`, every answer is checked, and a drifted
//! answer fails (the check can fail).

use std::collections::BTreeSet;

use keygate_e2e::contract::contract;
use keygate_e2e::TestApp;
use serde_json::{json, Value};

fn spec() -> Value {
    let path = format!("{}/../openapi.yaml", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The methods of every spec path that `path` matches, uppercase: what `Allow` must list.
fn declared_methods(spec: &Value, path: &str) -> BTreeSet<String> {
    let parts: Vec<&str> = path.split('/').collect();
    let mut methods = BTreeSet::new();
    for (template, item) in spec["paths"].as_object().unwrap() {
        let segments: Vec<&str> = template.split('/').collect();
        let matches = segments.len() == parts.len()
            && segments
                .iter()
                .zip(&parts)
                .all(|(s, p)| s == p || (s.starts_with('{') && !p.is_empty()));
        if matches {
            methods.extend(
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "parameters")
                    .map(|k| k.to_uppercase()),
            );
        }
    }
    methods
}

fn allow(answer: &keygate_e2e::Answer) -> BTreeSet<String> {
    answer
        .headers
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(',')
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

#[tokio::test]
async fn every_undeclared_method_on_a_known_path_answers_405_with_allow() {
    let app = TestApp::spawn().await;
    let spec = spec();
    let mut paths: Vec<String> = spec["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|template| {
            template
                .split('/')
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    // A literal path that a template matches too: Allow names the methods of both.
    paths.push("/v1/accounts/service".to_owned());
    let mut refused = 0;
    for path in &paths {
        let declared = declared_methods(&spec, path);
        assert!(!declared.is_empty(), "{path}");
        for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"] {
            if declared.contains(method) {
                continue;
            }
            let answer = app.send(method, path, None, None).await;
            assert_eq!(answer.status, 405, "{method} {path}: {:?}", answer.body);
            assert_eq!(allow(&answer), declared, "{method} {path}");
            if method != "HEAD" {
                assert_eq!(answer.code(), "method_not_allowed", "{method} {path}");
                assert!(answer.body["request_id"].is_string(), "{method} {path}");
            }
            refused += 1;
        }
    }
    assert!(refused > 300, "{refused}");
    let accounts = app.send("PUT", "/v1/accounts/service", None, None).await;
    assert_eq!(
        allow(&accounts),
        ["DELETE", "GET", "PATCH", "POST"].map(str::to_owned).into()
    );
    // A path nobody routes is 404, not 405, whatever the method.
    let nowhere = app.send("PUT", "/v1/nowhere", None, None).await;
    assert_eq!((nowhere.status, nowhere.code()), (404, "not_found"));
    assert!(nowhere.headers.get("allow").is_none());
}

#[tokio::test]
async fn every_answer_is_checked_against_the_spec() {
    let app = TestApp::spawn().await;
    let before = app.contract.checked();
    let (_, tokens) = app.signed_up_user().await;
    let checked = app.contract.checked();
    // register, verify: the checks happened before the client had the answers.
    assert!(checked >= before + 2, "{before} → {checked}");
    app.me(&tokens.str("access_token")).await;
    app.get("/v1/auth/me", None).await;
    app.send("PATCH", "/v1/auth/me", None, None).await;
    assert_eq!(app.contract.checked(), checked + 3);
    // A second client address shares the app's log.
    let other = app.from_ip(keygate_e2e::random_loopback());
    other.get("/.well-known/jwks.json", None).await;
    assert_eq!(app.contract.checked(), checked + 4);
}

/// A real answer, then the same answer drifted in each way the check must catch.
#[tokio::test]
async fn drifted_answers_fail_the_contract() {
    let contract = contract().as_ref().unwrap();
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up_user().await;
    let me = app.me(&tokens.str("access_token")).await;
    assert_eq!(me.status, 200);
    let check = |method: &str, path: &str, status: u16, headers: &hyper::HeaderMap, body: &Value| {
        let raw = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        contract.check(method, path, status, headers, &raw)
    };
    check("GET", "/v1/auth/me", 200, &me.headers, &me.body).unwrap();

    let mut drifted = Vec::new();
    let mut without_id = me.body.clone();
    without_id.as_object_mut().unwrap().remove("id");
    drifted.push(("a required member is missing", 200, without_id, "\"id\""));
    let mut bad_date = me.body.clone();
    bad_date["created_at"] = json!("yesterday");
    drifted.push(("a date-time is not one", 200, bad_date, "date-time"));
    let mut wrong_type = me.body.clone();
    wrong_type["email_verified"] = json!("yes");
    drifted.push(("a boolean became a string", 200, wrong_type, "boolean"));
    let mut extra = me.body.clone();
    extra["password_hash"] = json!("$argon2id$...");
    drifted.push(("an undeclared member", 200, extra, "/password_hash"));
    drifted.push(("an undeclared status", 418, me.body.clone(), "not a declared status"));
    let wrong_code = json!({ "error": { "code": "not_found", "message": "x" }, "request_id": "r" });
    drifted.push(("a code that does not go with the status", 401, wrong_code, "not_found"));
    let shapeless = json!({ "message": "Unauthorized" });
    drifted.push(("not keygate's error shape", 401, shapeless, "request_id"));
    for (what, status, body, expected) in drifted {
        let err = check("GET", "/v1/auth/me", status, &me.headers, &body).expect_err(what);
        assert!(err.contains(expected), "{what}: {err}");
        assert!(err.contains("GET /v1/auth/me"), "{what}: {err}");
    }

    let json_headers = {
        let mut h = hyper::HeaderMap::new();
        h.insert("content-type", "application/json".parse().unwrap());
        h
    };
    let limited = json!({ "error": { "code": "rate_limited", "message": "x" }, "request_id": "r" });
    let err = check("POST", "/v1/auth/login", 429, &json_headers, &limited).unwrap_err();
    assert!(err.contains("no Retry-After header"), "{err}");
    let mut retry = json_headers.clone();
    retry.insert("retry-after", "soon".parse().unwrap());
    let err = check("POST", "/v1/auth/login", 429, &retry, &limited).unwrap_err();
    assert!(err.contains("header Retry-After"), "{err}");
    retry.insert("retry-after", "3".parse().unwrap());
    check("POST", "/v1/auth/login", 429, &retry, &limited).unwrap();

    // A body where the spec declares none, and none where it declares one.
    let err = check("DELETE", "/v1/auth/sessions", 204, &json_headers, &json!({})).unwrap_err();
    assert!(err.contains("a body where the spec declares none"), "{err}");
    let err = check("DELETE", "/v1/auth/me", 202, &json_headers, &Value::Null).unwrap_err();
    assert!(err.contains("an empty body"), "{err}");
    let err = check("GET", "/v1/auth/me", 200, &hyper::HeaderMap::new(), &me.body).unwrap_err();
    assert!(err.contains("Content-Type"), "{err}");

    // The router's answers: 405 needs the exact Allow, an unknown path must be 404.
    let not_allowed = json!({ "error": { "code": "method_not_allowed", "message": "x" }, "request_id": "r" });
    let err = check("PUT", "/v1/auth/me", 405, &json_headers, &not_allowed).unwrap_err();
    assert!(err.contains("Allow"), "{err}");
    let mut allow = json_headers.clone();
    allow.insert("allow", "GET".parse().unwrap());
    let err = check("PUT", "/v1/auth/me", 405, &allow, &not_allowed).unwrap_err();
    assert!(err.contains("DELETE"), "{err}");
    allow.insert("allow", "GET, DELETE".parse().unwrap());
    check("PUT", "/v1/auth/me", 405, &allow, &not_allowed).unwrap();
    let err = check("PUT", "/v1/auth/me", 404, &allow, &not_allowed).unwrap_err();
    assert!(err.contains("405"), "{err}");
    let err = check("GET", "/v1/nowhere", 200, &json_headers, &json!({})).unwrap_err();
    assert!(err.contains("404"), "{err}");
    check(
        "GET",
        "/v1/nowhere",
        404,
        &json_headers,
        &json!({ "message": "Not Found" }),
    )
    .unwrap();
}

/// A drift the server sent fails the test that saw it, when its app is dropped.
#[tokio::test]
#[should_panic(expected = "1 answer(s) drifted from openapi.yaml")]
async fn a_drift_fails_the_test_that_saw_it() {
    let app = TestApp::spawn().await;
    let headers = hyper::HeaderMap::new();
    app.contract.observe(&keygate_local::Exchange {
        method: "GET",
        path: "/v1/auth/me",
        status: 418,
        headers: &headers,
        body: b"",
    });
    drop(app);
}
