//! A review of issue 17's server side as an attacker would read it: whole numbers in integer fields, the token
//! endpoint ignoring unknown form parameters, and the `$default` route's `api-fallback`. Each finding is kept by a
//! test that fails until it is fixed; what was found sound is kept by tests that pass.

use base64::Engine as _;
use keygate_e2e::{unique, TestApp};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const DAY: i64 = 86_400;
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const SECRET: &str = "a long service secret";

/// An answer read off the wire.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends a request byte for byte: reqwest (the url crate) resolves `.` and `..` segments, `%2e` included, before
/// sending, and a client with no such rule does not. From the test's own address, as [`TestApp`]'s client is.
async fn raw(app: &TestApp, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Raw {
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((app.ip, 0).into()).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: serde_json::from_str(rest).unwrap_or(Value::Null),
    }
}

// Finding: the fallback judges a normalized path, not the one API Gateway routed.

/// `api-fallback` matches `req.uri().path()`, which lambda_http builds by running `rawPath` through
/// `Url::parse`: `.` and `..` segments (`%2e` spelt too) are resolved, `\` becomes `/`, and the `Host` header is
/// pasted in front of the path. A path no route has, which API Gateway (and the local server) therefore sent to
/// `$default`, can come out as a route's path: the fallback then answers 405 with an `Allow` naming methods that
/// answer 404 on that very path, which openapi.yaml's `NoRoute` contract and RFC 9110 §15.5.6 both rule out.
/// Nothing reaches a handler (a `Found` is answered 404), so this is a correctness defect, not a bypass. Fix:
/// match `req.raw_http_path()` (lambda_http's `RequestExt`), the path exactly as API Gateway routed it.
#[tokio::test]
async fn the_fallback_answers_for_the_path_it_was_sent_not_a_normalized_one() {
    let app = TestApp::spawn().await;
    let mut wrong = Vec::new();
    for target in [
        "/v1/example/./whoami",
        "/v1/auth/../example/whoami",
        "/v1/example/%2e/whoami",
        "/v1/auth/%2E%2E/auth/login",
        "/v1/x/y/../../auth/me",
    ] {
        for method in ["GET", "POST", "PUT", "DELETE"] {
            let answer = raw(&app, method, target, &[], b"").await;
            if answer.status != 404 || answer.header("allow").is_some() {
                wrong.push(format!(
                    "{method} {target} → {} allow={:?}",
                    answer.status,
                    answer.header("allow")
                ));
            }
        }
    }
    // The local server only (on AWS the Host is the API's own): the Host header reaches the path the same way.
    let answer = raw(&app, "POST", "/junk", &[("host", "x/v1/example/whoami?")], b"").await;
    if answer.status != 404 || answer.header("allow").is_some() {
        wrong.push(format!(
            "POST /junk with a path in Host → {} allow={:?}",
            answer.status,
            answer.header("allow")
        ));
    }
    assert!(
        wrong.is_empty(),
        "no route has these paths, so each is 404 without Allow:\n{}",
        wrong.join("\n")
    );
}

// Finding: the `$default` route spends the same budgets as the real routes.

/// Every request no route matches now invokes `ApiFallbackFunction` (before, API Gateway answered 404 itself).
/// It has no throttle or concurrency of its own: the stage's `DefaultRouteSettings` (10,000 rps, burst 5,000)
/// and the account's unreserved Lambda concurrency, which the auth functions draw on too. Each junk request
/// costs an invocation ($0.20 per million), ~1 ms of 128 MB ($0.002 per million), and its CloudWatch Logs lines
/// (~0.5-0.7 KB: platform start/report and "request refused", $0.25-0.35 per million): about $0.50 per million
/// junk requests on top of API Gateway's own charge, ≈ $18 an hour at the stage limit, and background scanner
/// noise is now billed, logged and counted against the account's concurrency. Fix: a route
/// throttle on `$default` (the event's `RouteSettings`, e.g. 50 rps, burst 100, answered 429 by API Gateway
/// with no invocation), or a small `ReservedConcurrentExecutions` on the function.
#[test]
fn the_default_route_has_a_budget_of_its_own() {
    let path = format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"));
    let template: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let fallback = &template["Resources"]["ApiFallbackFunction"]["Properties"];
    let stage = &template["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"];
    let route = &fallback["Events"]["Api"]["Properties"]["RouteSettings"];
    let rate = |settings: &serde_yaml::Value| settings["ThrottlingRateLimit"].as_f64();
    let throttled = matches!((rate(route), rate(stage)), (Some(own), Some(all)) if own < all);
    let reserved = fallback["ReservedConcurrentExecutions"].as_u64().is_some();
    assert!(
        throttled || reserved,
        "ApiFallbackFunction shares the stage throttle and the account's concurrency with the auth functions"
    );
}

// Sound: the fallback never serves the route the authorizer guards.

/// API Gateway sends every spelling of `/v1/example/whoami` that its route does not match to `$default`: none
/// of them may reach `example-whoami` (the authorizer would not have run), whatever the caller presents.
#[tokio::test]
async fn no_spelling_of_the_guarded_route_is_served_without_the_authorizer() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let bearer = format!("Bearer {}", session.str("access_token"));
    let mut forged = bearer.clone();
    forged.replace_range(forged.len() - 5.., "AAAAA");
    // The route itself, for contrast: the authorizer runs.
    assert_eq!(raw(&app, "GET", "/v1/example/whoami", &[], b"").await.status, 401);
    assert_eq!(
        raw(&app, "GET", "/v1/example/whoami", &[("authorization", &forged)], b"")
            .await
            .status,
        403
    );
    assert_eq!(
        raw(&app, "GET", "/v1/example/whoami", &[("authorization", &bearer)], b"")
            .await
            .status,
        200
    );
    for authorization in [None, Some(bearer.as_str()), Some(forged.as_str())] {
        let headers: Vec<(&str, &str)> = authorization.map(|a| ("authorization", a)).into_iter().collect();
        for method in ["HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            let answer = raw(&app, method, "/v1/example/whoami", &headers, b"").await;
            assert_eq!((answer.status, answer.header("allow")), (405, Some("GET")), "{method}");
        }
        for target in [
            "/v1/example/whoami/",
            "/V1/example/whoami",
            "/v1/example/WHOAMI",
            "/v1/example/%77hoami",
            "/v1/example/whoami%2F",
            "/v1//example/whoami",
            "/v1/example/whoami;x",
            "/v1/example/./whoami",
            "/v1/auth/../example/whoami",
            "//v1/example/whoami",
        ] {
            let answer = raw(&app, "GET", target, &headers, b"").await;
            assert_eq!(
                (answer.status, answer.body["error"]["code"].as_str()),
                (404, Some("not_found")),
                "GET {target} with {authorization:?}"
            );
        }
    }
}

// Sound: the token endpoint's form cannot be used to smuggle a second credential or value.

async fn token(app: &TestApp, authorization: Option<&str>, body: &str) -> Raw {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(value) = authorization {
        headers.push(("authorization", value));
    }
    raw(app, "POST", "/v1/oauth/token", &headers, body.as_bytes()).await
}

fn basic(id: &str, secret: &str) -> String {
    let secret: String = secret.replace(' ', "+");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

#[tokio::test]
async fn the_token_endpoint_ignores_unknown_parameters_and_refuses_a_known_one_twice() {
    let app = TestApp::spawn().await;
    let root = crate::tenancy::register_root(&app, &unique("Review17 ")).await;
    let created = app
        .post_as(
            &root.jwt(),
            "/v1/accounts/service",
            json!({ "service_name": "etl", "password": SECRET, "role": "backend" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.str("id");
    let right = SECRET.replace(' ', "+");
    let header = basic(&id, SECRET);
    let cc = "grant_type=client_credentials";

    // Unknown names are dropped, repeated or not: a case variant of client_secret is not a second method.
    for body in [
        format!("{cc}&Client_Secret=wrong&CLIENT_SECRET=wrong"),
        format!("{cc}&x=1&x=2&client_secret%00=wrong"),
        // An empty value is an absent parameter (RFC 6749 §3.1), not a second method.
        format!("{cc}&client_secret="),
    ] {
        let answer = token(&app, Some(&header), &body).await;
        assert_eq!(answer.status, 200, "{body}: {:?}", answer.body);
    }
    // A known name twice, however spelt, is refused before the client is authenticated: no second guess at the
    // secret, no choice of which scope or grant counts.
    for (authorization, body) in [
        (
            None,
            format!("{cc}&client_id={id}&client_secret=wrong&client_secret={right}"),
        ),
        (
            None,
            format!("{cc}&client_id={id}&client_%73ecret={right}&client_secret=wrong"),
        ),
        (
            None,
            format!("{cc}&client_id={id}&client_id=other&client_secret={right}"),
        ),
        (Some(header.as_str()), format!("{cc}&scope=db:read&sc%6Fpe=admin")),
        (Some(header.as_str()), format!("{cc}&grant_type={EXCHANGE}")),
        (Some(header.as_str()), format!("{cc}&database_id=a&database_id=b")),
    ] {
        let answer = token(&app, authorization, &body).await;
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
    }
    // Both methods at once stays refused, and a secret outside the body is not read.
    let both = token(
        &app,
        Some(&header),
        &format!("{cc}&client_id={id}&client_secret={right}"),
    )
    .await;
    assert_eq!(both.status, 400);
    let answer = raw(
        &app,
        "POST",
        &format!("/v1/oauth/token?client_secret={right}"),
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("{cc}&client_id={id}").as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 401);

    // A token exchange names one resource: a second is refused, not picked from.
    let exchange = format!(
        "grant_type={EXCHANGE}&subject_token={}&subject_token_type={ACCESS_TOKEN_TYPE}&scope=db:read",
        root.jwt()
    );
    for extra in [
        "&resource=company:a&resource=company:b",
        "&resource=company:a&audience=x",
    ] {
        let answer = token(&app, None, &format!("{exchange}{extra}")).await;
        assert_eq!(answer.status, 400, "{extra}: {:?}", answer.body);
    }
}

// Sound: whole numbers cannot leave the bounds.

fn lifetime(body: &Value) -> i64 {
    let at = |field: &str| {
        time::OffsetDateTime::parse(
            body[field].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
        .unix_timestamp()
    };
    at("expires_at") - at("created_at")
}

/// A float is rounded by the JSON parser before the bounds are checked on the integer, so no spelling gets past
/// them: 365.99999999999999 is 366.0 (refused), -0.0 is 0 (refused), 1e-400 is 0 (refused), and a permanent
/// token still needs `null`, a service account and the deployment's consent.
#[tokio::test]
async fn whole_numbers_stay_inside_the_bounds() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let create = |days: &'static str| {
        let body = format!(r#"{{"name":"ci","scopes":["profile:read"],"expires_in_days":{days}}}"#);
        app.send("POST", "/v1/api-tokens", Some(&jwt), Some(body.into_bytes()))
    };
    for days in [
        "-0.0",
        "0.0",
        "1e-400",
        "-1e-400",
        "365.99999999999999",
        "366.0",
        "1e18",
        "-1e18",
        "9.2e18",
        "-9.3e18",
        "null",
        "1e400",
    ] {
        let answer = create(days).await;
        assert!(
            answer.status == 422 || answer.status == 400,
            "{days}: {} {:?}",
            answer.status,
            answer.body
        );
    }
    let rounded = create("0.99999999999999999").await;
    assert_eq!((rounded.status, lifetime(&rounded.body)), (201, DAY));
    let longest = create("3.65e2").await;
    assert_eq!((longest.status, lifetime(&longest.body)), (201, 365 * DAY));

    let rotate = format!("/v1/api-tokens/{}/rotate", longest.str("id"));
    for grace in ["2592000.5", "2592001.0", "1e18", "-1.0", "\"60\""] {
        let body = format!(r#"{{"grace_period_seconds":{grace}}}"#);
        let answer = app.send("POST", &rotate, Some(&jwt), Some(body.into_bytes())).await;
        assert!(
            answer.status == 422 || answer.status == 400,
            "{grace}: {}",
            answer.status
        );
    }
    let body = br#"{"grace_period_seconds":2.592e6}"#.to_vec();
    let answer = app.send("POST", &rotate, Some(&jwt), Some(body)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}
