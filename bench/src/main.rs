//! `make bench`: one report of cold start, warm latency and peak memory of the real function binaries against a
//! Node.js peer, the micro-benchmarks, DynamoDB round trips per endpoint and binary sizes. It reports; it
//! asserts nothing about time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use keygate_bench::{fixture, measure, measure_pair, median, median_f64, Measurement};
use keygate_e2e::passkey::SoftPasskey;
use keygate_e2e::{TestApp, PASSWORD};
use serde_json::{json, Value};

/// Fresh processes per function: init and first response are the median of these. One spawn is noise.
const COLD_PROCESSES: usize = 10;
/// Warm invocations per function, answered by the last fresh process.
const WARM_INVOCATIONS: usize = 50;
/// Events one function's run needs.
const EVENTS: usize = COLD_PROCESSES + WARM_INVOCATIONS;
/// argon2id verifies per variant in the floor comparison.
const ARGON2_SAMPLES: usize = 40;
/// The scoped-token configuration the bench deploys, for the API and the authorizer binary alike.
const SCOPED_RESOURCES: &str = "company";
const SCOPED_SCOPES: &str = "db:read,accounts:read";

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Where cargo put the release binaries: `CARGO_TARGET_DIR` when set (as for the build), else the workspace's.
fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn with_body(mut event: Value, route: &str, body: &Value) -> Value {
    with_raw_body(event.take(), route, "application/json", &body.to_string())
}

fn with_raw_body(mut event: Value, route: &str, content_type: &str, body: &str) -> Value {
    let (method, path) = route.split_once(' ').unwrap();
    event["routeKey"] = json!(route);
    event["rawPath"] = json!(path);
    event["requestContext"]["routeKey"] = json!(route);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["http"]["method"] = json!(method);
    event["headers"]["content-type"] = json!(content_type);
    event["headers"]["content-length"] = json!(body.len().to_string());
    event["body"] = json!(STANDARD.encode(body));
    event["isBase64Encoded"] = json!(true);
    event
}

/// An API Gateway event for `route` with a JSON body.
fn api_event(route: &str, body: &Value) -> Value {
    with_body(fixture("apigw_v2_login.json"), route, body)
}

fn authorizer_event(token: &str) -> Value {
    let mut event = fixture("apigw_v2_authorizer.json");
    event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    event["identitySource"] = json!([format!("Bearer {token}")]);
    event
}

fn function_command(name: &str) -> tokio::process::Command {
    let binary = target_dir().join("release").join(name);
    assert!(binary.exists(), "{} is missing: make bench builds it", binary.display());
    let mut command = tokio::process::Command::new(binary);
    // The harness sends every event from one address; these limits are not what is measured.
    command
        .env("KEYGATE_RATE_LIMIT_VERIFY_PER_MINUTE", "100000")
        .env("KEYGATE_RATE_LIMIT_REFRESH_PER_MINUTE", "100000")
        .env("KEYGATE_RATE_LIMIT_SEND_PER_MINUTE", "100000")
        .env("KEYGATE_SCOPED_TOKEN_RESOURCES", SCOPED_RESOURCES)
        .env("KEYGATE_SCOPED_TOKEN_SCOPES", SCOPED_SCOPES)
        .env("RUST_LOG", "warn");
    command
}

/// `function` measured with the same `event` for every invocation: cold spawns, then warm ones.
async fn measure_with(function: &str, event: &Value) -> Measurement {
    measure(
        || function_command(function),
        COLD_PROCESSES,
        WARM_INVOCATIONS,
        |_| event.clone(),
    )
    .await
}

fn peer_command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new("node");
    command.arg(format!("{}/peer-node/index.js", env!("CARGO_MANIFEST_DIR")));
    command
}

/// RFC 4648 base32 without padding, as 2FA setup returns the TOTP secret.
fn base32_decode(text: &str) -> Vec<u8> {
    let (mut bits, mut value, mut out) = (0u32, 0u64, Vec::new());
    for c in text.trim_end_matches('=').bytes() {
        let digit = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {text}"),
        };
        value = (value << 5) | u64::from(digit);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
        }
    }
    out
}

/// RFC 6749 §2.3.1 / HTML form encoding of one value.
fn form_escape(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => char::from(b).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// POSTs a form to the local API over plain HTTP/1.1 (the test client speaks JSON only): the status line's code.
async fn post_form(base: &str, path: &str, form: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.split_whitespace().nth(1).unwrap_or("none").to_owned()
}

/// Counts the DynamoDB calls `call` makes through the local API and records them as `label`.
async fn counted<F: std::future::Future<Output = String>>(
    app: &TestApp,
    trips: &mut Vec<Trip>,
    label: &str,
    call: F,
) -> String {
    app.dynamo_calls.reset();
    let status = call.await;
    let calls = app.dynamo_calls.snapshot();
    let detail = calls
        .iter()
        .map(|(op, n)| format!("{op}×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    trips.push((
        label.to_owned(),
        app.dynamo_calls.total(),
        format!("{status} ({detail})"),
        calls,
    ));
    status
}

/// What the cold/warm table shows for each function, and which counted request gives its round trips.
struct Row {
    name: String,
    trips: Option<&'static str>,
    measurement: Measurement,
}

/// The login comparison with the Node.js peer: both measurements and the ratio of each warm pair.
struct Peer {
    ratios: Vec<f64>,
}

/// A new tenant's root, signed in: (email, token response).
async fn register_root(app: &TestApp) -> (String, keygate_e2e::Answer) {
    let email = keygate_e2e::unique_email();
    let registered = app
        .post(
            "/v1/auth/register",
            json!({ "email": email, "password": PASSWORD, "name": "Bench Root",
                    "tenant_name": keygate_e2e::unique("Bench ") }),
        )
        .await;
    assert_eq!(registered.status, 202, "{:?}", registered.body);
    let code = app.code_sent_to(&email, "verification code").await;
    let tokens = app.verify(&email, &code).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    (email, tokens)
}

/// `n` accounts with TOTP on, each signed in with its password up to the challenge: (challenge token, secret).
/// A TOTP step is accepted once per account and the binaries run on the real clock, so each event needs an account.
async fn totp_challenges(app: &TestApp, n: usize) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (email, session) = app.signed_up_user().await;
        let jwt = session.str("access_token");
        let setup = app.post_as(&jwt, "/v1/auth/2fa/setup", json!({})).await;
        assert_eq!(setup.status, 200, "{:?}", setup.body);
        let secret = base32_decode(&setup.str("secret"));
        let code = keygate::mfa::totp::code_at(&secret, app.state.clock.now()).unwrap();
        let enabled = app.post_as(&jwt, "/v1/auth/2fa/enable", json!({ "code": code })).await;
        assert_eq!(enabled.status, 200, "{:?}", enabled.body);
        let login = app.login(&email, PASSWORD).await;
        assert_eq!(login.body["mfa_required"], json!(true), "{:?}", login.body);
        out.push((login.str("challenge_token"), secret));
    }
    out
}

/// The TOTP code one step ahead of the real clock: accepted (one step of skew) and later than the step the
/// enabling code spent.
fn totp_code(secret: &[u8]) -> String {
    let now = keygate::Clock::system().now();
    keygate::mfa::totp::code_at(secret, now + keygate::mfa::totp::STEP_SECONDS).unwrap()
}

/// A passkey of a new account and `n` sign-in ceremonies it has answered: (email, key, bodies for verify).
async fn passkey_ceremonies(app: &TestApp, n: usize) -> (String, SoftPasskey, Vec<Value>) {
    let (email, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let options = app.post_as(&jwt, "/v1/auth/passkey/register/options", json!({})).await;
    assert_eq!(options.status, 200, "{:?}", options.body);
    let key = SoftPasskey::new(&options.body["options"]);
    let created = app
        .post_as(
            &jwt,
            "/v1/auth/passkey/register/verify",
            json!({ "ceremony_id": options.str("ceremony_id"), "credential": key.attest(&options.body["options"]) }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let mut bodies = Vec::new();
    for _ in 0..n {
        let options = app
            .post("/v1/auth/passkey/login/options", json!({ "email": email }))
            .await;
        assert_eq!(options.status, 200, "{:?}", options.body);
        bodies.push(json!({ "ceremony_id": options.str("ceremony_id"),
                            "credential": key.assert(&options.body["options"]) }));
    }
    (email, key, bodies)
}

/// `n` real emails on the outbox queue (sign-in codes to one account), each as the one-record SQS event Lambda
/// would hand the mailer.
async fn mail_events(app: &TestApp, n: usize) -> Vec<Value> {
    let (email, _) = app.signed_up_user().await;
    app.deliver_mail().await;
    for _ in 0..n {
        let sent = app
            .post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
            .await;
        assert_eq!(sent.status, 202, "{:?}", sent.body);
    }
    let mut events = Vec::new();
    for _ in 0..200 {
        if events.len() >= n {
            break;
        }
        let messages = app.outbox.receive().await.unwrap();
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for message in &messages {
            events.push(serde_json::to_value(app.outbox.event(std::slice::from_ref(message)).unwrap()).unwrap());
        }
    }
    assert!(events.len() >= n, "only {} queued emails came back", events.len());
    events
}

/// Takes the events of a run in order.
fn from_list(events: Vec<Value>) -> impl FnMut(Option<&Value>) -> Value {
    let mut events = events.into_iter();
    move |_| events.next().expect("an event for each invocation")
}

async fn measure_all(app: &TestApp, trips: &mut Vec<Trip>) -> (Vec<Row>, Peer) {
    let (email, tokens) = app.signed_up_user().await;
    let access = tokens.str("access_token");
    let pat = app
        .post_as(
            &access,
            "/v1/api-tokens",
            json!({ "name": "bench", "scopes": ["profile:read"] }),
        )
        .await
        .str("token");
    let scoped = app
        .post_as(
            &access,
            "/v1/scoped-tokens",
            json!({ "resource": "company:bench", "scopes": ["db:read"] }),
        )
        .await;
    assert_eq!(scoped.status, 201, "{:?}", scoped.body);
    let scoped = scoped.str("token");
    let login_event = api_event("POST /v1/auth/login", &json!({ "email": email, "password": PASSWORD }));
    let mut me_event = fixture("apigw_v2_me.json");
    me_event["headers"]["authorization"] = json!(format!("Bearer {access}"));

    let mut rows = Vec::new();
    let mut row = |name: &str, trips: Option<&'static str>, measurement: Measurement| {
        let mut statuses = measurement.statuses.clone();
        statuses.sort_unstable();
        statuses.dedup();
        let (early, late) = measurement.warm_drift();
        eprintln!(
            "    init {} ms, first {} ms, warm {} / p95 {} ms (first 10 {}, last 10 {}), {:.1} MiB, {statuses:?}",
            ms(measurement.init()),
            ms(measurement.first_response()),
            ms(measurement.warm_median()),
            ms(measurement.warm_p95()),
            ms(early),
            ms(late),
            measurement.peak_rss_kib as f64 / 1024.0
        );
        rows.push(Row {
            name: name.to_owned(),
            trips,
            measurement,
        });
    };

    eprintln!("  auth-login and the Node.js 20 peer, alternately");
    let (ours, theirs, ratios) = measure_pair(
        || function_command("auth-login"),
        peer_command,
        COLD_PROCESSES,
        WARM_INVOCATIONS,
        &login_event,
    )
    .await;
    row("auth-login", Some("POST /v1/auth/login"), ours);
    row("peer: Node.js login", None, theirs);

    eprintln!("  auth-refresh");
    let mut latest = tokens.str("refresh_token");
    let refresh = measure(
        || function_command("auth-refresh"),
        COLD_PROCESSES,
        WARM_INVOCATIONS,
        move |previous| {
            // Each refresh rotates the token: present the one the last call returned, in whichever process.
            if let Some(token) = previous
                .and_then(|p| p["body"].as_str())
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                .and_then(|b| b["refresh_token"].as_str().map(str::to_owned))
            {
                latest = token;
            }
            api_event("POST /v1/auth/refresh", &json!({ "refresh_token": latest }))
        },
    )
    .await;
    row("auth-refresh", Some("POST /v1/auth/refresh"), refresh);

    eprintln!("  auth-me");
    let me = measure_with("auth-me", &me_event).await;
    row("auth-me", Some("GET /v1/auth/me (JWT)"), me);

    for (name, label, token) in [
        ("authorizer (JWT)", "authorizer (JWT)", &access),
        ("authorizer (PAT)", "authorizer (PAT)", &pat),
        ("authorizer (scoped token)", "authorizer (scoped token)", &scoped),
    ] {
        eprintln!("  {name}");
        let event = authorizer_event(token);
        let decided = measure_with("authorizer", &event).await;
        // The authorizer's calls, counted in-process with the same code (the second decision: a PAT's first
        // use also writes its hourly `last_used_at`).
        let now = app.state.clock.now();
        let header = format!("Bearer {token}");
        keygate::authorizer::decide(&app.state, Some(&header), None, now).await;
        counted(app, trips, label, async {
            let decision = keygate::authorizer::decide(&app.state, Some(&header), None, now).await;
            if decision.to_response()["isAuthorized"] == true {
                "allow"
            } else {
                "deny"
            }
            .to_owned()
        })
        .await;
        row(name, Some(label), decided);
    }

    eprintln!("  oauth-token (client credentials)");
    let (_, root) = register_root(app).await;
    let root_jwt = root.str("access_token");
    let tenant = keygate_e2e::jwt_claims(&root_jwt)["tenant"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = app.service_account(&root_jwt, "bench-oauth", PASSWORD, "backend").await;
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        form_escape(&client),
        form_escape(PASSWORD)
    );
    let token_event = with_raw_body(
        fixture("apigw_v2_login.json"),
        "POST /v1/oauth/token",
        "application/x-www-form-urlencoded",
        &form,
    );
    let oauth = measure_with("oauth-token", &token_event).await;
    counted(app, trips, "POST /v1/oauth/token (client credentials)", async {
        post_form(&app.base, "/v1/oauth/token", &form).await
    })
    .await;
    row(
        "oauth-token (client credentials)",
        Some("POST /v1/oauth/token (client credentials)"),
        oauth,
    );

    eprintln!("  auth-login-service");
    app.service_account(&root_jwt, "bench-service", PASSWORD, "backend")
        .await;
    let service_body = json!({ "service_name": "bench-service", "password": PASSWORD, "tenant_id": tenant });
    let service_event = api_event("POST /v1/auth/login/service", &service_body);
    let service = measure_with("auth-login-service", &service_event).await;
    counted(app, trips, "POST /v1/auth/login/service", async {
        app.post("/v1/auth/login/service", service_body.clone())
            .await
            .status
            .to_string()
    })
    .await;
    row("auth-login-service", Some("POST /v1/auth/login/service"), service);

    eprintln!("  auth-2fa-verify (TOTP): enrolling {} accounts", EVENTS + 1);
    let mut challenges = totp_challenges(app, EVENTS + 1).await;
    let (counted_challenge, counted_secret) = challenges.pop().unwrap();
    let mut challenges = challenges.into_iter();
    let verify = measure(
        || function_command("auth-2fa-verify"),
        COLD_PROCESSES,
        WARM_INVOCATIONS,
        move |_| {
            let (challenge, secret) = challenges.next().expect("a challenge per invocation");
            api_event(
                "POST /v1/auth/2fa/verify",
                &json!({ "challenge_token": challenge, "code": totp_code(&secret) }),
            )
        },
    )
    .await;
    counted(app, trips, "POST /v1/auth/2fa/verify (TOTP)", async {
        app.post(
            "/v1/auth/2fa/verify",
            json!({ "challenge_token": counted_challenge, "code": totp_code(&counted_secret) }),
        )
        .await
        .status
        .to_string()
    })
    .await;
    row(
        "auth-2fa-verify (TOTP)",
        Some("POST /v1/auth/2fa/verify (TOTP)"),
        verify,
    );

    eprintln!("  auth-passkey-login-verify: {} ceremonies", EVENTS + 1);
    let (_, _key, mut bodies) = passkey_ceremonies(app, EVENTS + 1).await;
    let counted_body = bodies.pop().unwrap();
    let events = bodies
        .iter()
        .map(|body| api_event("POST /v1/auth/passkey/login/verify", body))
        .collect();
    let passkey = measure(
        || function_command("auth-passkey-login-verify"),
        COLD_PROCESSES,
        WARM_INVOCATIONS,
        from_list(events),
    )
    .await;
    counted(app, trips, "POST /v1/auth/passkey/login/verify", async {
        app.post("/v1/auth/passkey/login/verify", counted_body)
            .await
            .status
            .to_string()
    })
    .await;
    row(
        "auth-passkey-login-verify",
        Some("POST /v1/auth/passkey/login/verify"),
        passkey,
    );

    eprintln!("  mailer: {} queued emails", EVENTS + 1);
    let mut events = mail_events(app, EVENTS + 1).await;
    let counted_event = events.pop().unwrap();
    let mailer = measure(
        || function_command("mailer"),
        COLD_PROCESSES,
        WARM_INVOCATIONS,
        from_list(events),
    )
    .await;
    let delivery = keygate::mail::Delivery::new(
        aws_sdk_sesv2::Client::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await),
        app.state.store.clone(),
        app.state.config.mail_from.clone(),
        app.state.config.app_url.clone(),
    );
    counted(app, trips, "mailer: one email (SQS record)", async {
        let record = &counted_event["Records"][0];
        let outcome = delivery
            .deliver_one(
                record["messageId"].as_str().unwrap(),
                record["body"].as_str().unwrap(),
                app.state.clock.now(),
            )
            .await;
        format!("{outcome:?}")
    })
    .await;
    row(
        "mailer (one SQS record)",
        Some("mailer: one email (SQS record)"),
        mailer,
    );

    (rows, Peer { ratios })
}

/// One run of each flow, counting the DynamoDB calls of each request.
/// Requests per address and endpoint in [`known_versus_unknown`].
const ENUMERATION_SAMPLES: usize = 21;

/// The median latency of each send endpoint for an address with an account and one without, alternating so that
/// drift hits both alike: with the outbox both make the same calls, so the ratio should sit near 1.
async fn known_versus_unknown(app: &TestApp) -> Vec<(String, Duration, Duration)> {
    let (known, _) = app.signed_up_user().await;
    let mut rows = Vec::new();
    type Body = fn(&str) -> Value;
    let endpoints: [(&str, &str, Body); 3] = [
        (
            "POST /v1/auth/otp/send",
            "/v1/auth/otp/send",
            |e| json!({ "email": e, "purpose": "login" }),
        ),
        (
            "POST /v1/auth/password-reset-request",
            "/v1/auth/password-reset-request",
            |e| json!({ "email": e }),
        ),
        (
            "POST /v1/auth/magic-link/send",
            "/v1/auth/magic-link/send",
            |e| json!({ "email": e }),
        ),
    ];
    for (label, path, body) in endpoints {
        let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
        for _ in 0..ENUMERATION_SAMPLES {
            for (email, times) in [
                (known.clone(), &mut known_times),
                (keygate_e2e::unique_email(), &mut unknown_times),
            ] {
                let started = Instant::now();
                let answer = app.post(path, body(&email)).await;
                times.push(started.elapsed());
                assert_eq!(answer.status, 202, "{label}");
            }
        }
        known_times.sort();
        unknown_times.sort();
        rows.push((
            label.to_owned(),
            known_times[ENUMERATION_SAMPLES / 2],
            unknown_times[ENUMERATION_SAMPLES / 2],
        ));
    }
    rows
}

/// One counted request: its label, its DynamoDB calls, its status and calls in words, and the calls by operation.
type Trip = (String, u64, String, std::collections::BTreeMap<String, u64>);

async fn round_trips(app: &TestApp) -> Vec<Trip> {
    let mut rows = Vec::new();
    macro_rules! count {
        ($label:expr, $call:expr) => {{
            app.dynamo_calls.reset();
            let answer = $call;
            let calls = app.dynamo_calls.snapshot();
            let detail = calls
                .iter()
                .map(|(op, n)| format!("{op}×{n}"))
                .collect::<Vec<_>>()
                .join(", ");
            rows.push((
                $label.to_owned(),
                app.dynamo_calls.total(),
                format!("{} ({detail})", answer.status),
                calls.clone(),
            ));
            answer
        }};
    }
    let email = keygate_e2e::unique_email();
    count!(
        "POST /v1/auth/register (new address)",
        app.register(&email, PASSWORD).await
    );
    let code = app.code_sent_to(&email, "verification code").await;
    let verified = count!("POST /v1/auth/register/verify", app.verify(&email, &code).await);
    let access = verified.str("access_token");
    count!(
        "POST /v1/auth/register (verified address)",
        app.register(&email, PASSWORD).await
    );
    count!(
        "GET /v1/auth/check-registration",
        app.get(
            &format!("/v1/auth/check-registration?email={}", email.replace('@', "%40")),
            None
        )
        .await
    );
    let login = count!("POST /v1/auth/login", app.login(&email, PASSWORD).await);
    // Every later sign-in reads the account from the copy the first one stored on the address's marker.
    count!(
        "POST /v1/auth/login (again, from the marker's copy)",
        app.login(&email, PASSWORD).await
    );
    count!(
        "POST /v1/auth/login (wrong password)",
        app.login(&email, "wrong password here").await
    );
    let refreshed = count!("POST /v1/auth/refresh", app.refresh(&login.str("refresh_token")).await);
    count!("GET /v1/auth/me (JWT)", app.me(&access).await);
    count!(
        "GET /v1/auth/sessions",
        app.get("/v1/auth/sessions", Some(&access)).await
    );
    count!(
        "DELETE /v1/auth/sessions/{id}",
        app.send(
            "DELETE",
            &format!("/v1/auth/sessions/{}", login.str("session_id")),
            Some(&access),
            None
        )
        .await
    );
    count!(
        "DELETE /v1/auth/sessions",
        app.send("DELETE", "/v1/auth/sessions", Some(&access), None).await
    );
    count!(
        "POST /v1/auth/logout",
        app.post(
            "/v1/auth/logout",
            json!({ "refresh_token": refreshed.str("refresh_token") })
        )
        .await
    );
    count!(
        "POST /v1/auth/otp/send",
        app.post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
            .await
    );
    let code = app.code_sent_to(&email, "sign-in code").await;
    count!(
        "POST /v1/auth/otp/login",
        app.post("/v1/auth/otp/login", json!({ "email": email, "code": code }))
            .await
    );
    count!(
        "POST /v1/auth/magic-link/send",
        app.post("/v1/auth/magic-link/send", json!({ "email": email })).await
    );
    let body = app.emails_to(&email).await.last().unwrap().1.clone();
    let token: String = body.split("token=").nth(1).unwrap().chars().take(43).collect();
    count!(
        "POST /v1/auth/magic-link/login",
        app.post("/v1/auth/magic-link/login", json!({ "token": token })).await
    );
    let pat = count!(
        "POST /v1/api-tokens",
        app.post_as(
            &access,
            "/v1/api-tokens",
            json!({ "name": "rt", "scopes": ["profile:read", "tokens:read"] })
        )
        .await
    );
    let (id, secret) = (pat.str("id"), pat.str("token"));
    count!(
        "GET /v1/api-tokens (PAT)",
        app.get("/v1/api-tokens", Some(&secret)).await
    );
    count!(
        "GET /v1/api-tokens/{id}",
        app.get(&format!("/v1/api-tokens/{id}"), Some(&access)).await
    );
    count!("GET /v1/auth/me (PAT)", app.me(&secret).await);
    count!(
        "POST /v1/api-tokens/{id}/rotate",
        app.post_as(&access, &format!("/v1/api-tokens/{id}/rotate"), json!({}))
            .await
    );
    count!(
        "DELETE /v1/api-tokens/{id}",
        app.send("DELETE", &format!("/v1/api-tokens/{id}"), Some(&access), None)
            .await
    );
    count!(
        "POST /v1/auth/password-reset-request",
        app.post("/v1/auth/password-reset-request", json!({ "email": email }))
            .await
    );
    let code = app.code_sent_to(&email, "reset code").await;
    let new_password = "a brand new passphrase";
    count!(
        "POST /v1/auth/password-reset",
        app.post(
            "/v1/auth/password-reset",
            json!({ "email": email, "code": code, "new_password": new_password })
        )
        .await
    );
    let fresh = app.login(&email, new_password).await.str("access_token");
    count!(
        "POST /v1/auth/change-password",
        app.post_as(
            &fresh,
            "/v1/auth/change-password",
            json!({ "current_password": new_password, "new_password": "yet another passphrase" })
        )
        .await
    );
    count!(
        "GET /.well-known/jwks.json",
        app.get("/.well-known/jwks.json", None).await
    );
    count!(
        "GET /.well-known/openid-configuration",
        app.get("/.well-known/openid-configuration", None).await
    );
    rows
}

/// Median estimates criterion left in target/criterion.
fn criterion_rows() -> Vec<(String, f64)> {
    let root = target_dir().join("criterion");
    let mut rows = Vec::new();
    let Ok(groups) = std::fs::read_dir(&root) else {
        return rows;
    };
    for group in groups.flatten() {
        let Ok(benches) = std::fs::read_dir(group.path()) else {
            continue;
        };
        for bench in benches.flatten() {
            let estimates = bench.path().join("new/estimates.json");
            let benchmark = bench.path().join("new/benchmark.json");
            let (Ok(estimates), Ok(meta)) = (std::fs::read_to_string(estimates), std::fs::read_to_string(benchmark))
            else {
                continue;
            };
            let estimates: Value = serde_json::from_str(&estimates).unwrap_or_default();
            let meta: Value = serde_json::from_str(&meta).unwrap_or_default();
            let name = meta["full_id"].as_str().unwrap_or_default().to_owned();
            if let Some(ns) = estimates["median"]["point_estimate"].as_f64() {
                rows.push((name, ns / 1000.0));
            }
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

fn binary_sizes() -> Vec<(String, u64)> {
    let release = target_dir().join("release");
    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    // Only the functions `make bench` has just built: a binary left in the target directory by an older build
    // would report an older size.
    let built = std::env::var("KEYGATE_BENCH_FUNCTIONS").unwrap_or_default();
    let built: Vec<&str> = built.split_whitespace().collect();
    let mut rows: Vec<(String, u64)> = std::fs::read_dir(functions)
        .unwrap()
        .flatten()
        .map(|f| f.file_name().to_string_lossy().into_owned())
        .filter(|name| built.is_empty() || built.contains(&name.as_str()))
        .filter_map(|name| std::fs::metadata(release.join(&name)).ok().map(|m| (name, m.len())))
        .collect();
    rows.sort();
    rows
}

/// Creates the table, the signing key, the sender identity and the mail queue, as `keygate-local setup` does.
async fn setup() {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let config = keygate_e2e::defaults();
    let template = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")).unwrap();
    keygate_local::setup::create_table(&aws_sdk_dynamodb::Client::new(&aws), &config.table_name, &template)
        .await
        .unwrap();
    let secrets = keygate::rotation::Secrets {
        private: &config.key_secret_id,
        public: &config.public_keys_secret_id,
    };
    keygate_local::setup::ensure_signing_key(&aws_sdk_secretsmanager::Client::new(&aws), secrets)
        .await
        .unwrap();
    keygate_local::setup::ensure_mfa_key(&aws_sdk_secretsmanager::Client::new(&aws), &config.mfa_key_secret_id)
        .await
        .unwrap();
    keygate_local::setup::verify_sender(&aws_sdk_sesv2::Client::new(&aws), &config.mail_from)
        .await
        .unwrap();
    keygate_local::setup::create_mail_queue(&aws_sdk_sqs::Client::new(&aws), &config.mail_queue_url)
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    setup().await;
    let app = TestApp::spawn_with(|c| {
        c.scoped_token_resources = vec![SCOPED_RESOURCES.to_owned()];
        c.scoped_token_scopes = SCOPED_SCOPES.split(',').map(str::to_owned).collect();
    })
    .await;
    let started = Instant::now();
    eprintln!("==> argon2id: the floor against keygate's verify ({ARGON2_SAMPLES} of each, alternated)");
    let argon2 = keygate_bench::floor::measure(ARGON2_SAMPLES).await;
    eprintln!(
        "    floor {} ms, keygate {} ms (first {} ms), allocating {} ms",
        ms(median(&argon2.floor)),
        ms(median(&argon2.keygate)),
        ms(argon2.first),
        ms(median(&argon2.allocating))
    );
    eprintln!(
        "==> cold start ({COLD_PROCESSES} fresh processes each), warm latency ({WARM_INVOCATIONS} invocations) and peak RSS"
    );
    let mut trips = Vec::new();
    let (measurements, peer) = measure_all(&app, &mut trips).await;
    eprintln!("==> DynamoDB round trips per endpoint");
    trips.extend(round_trips(&app).await);
    eprintln!("==> send endpoints: known versus unknown addresses");
    let enumeration = known_versus_unknown(&app).await;

    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let date = keygate::clock::rfc3339(keygate::Clock::system().now());
    let mut out = String::new();
    writeln!(
        out,
        "# keygate benchmark\n\n{date}, {cores} cores, {machine}, x86_64 release build; local AWS services (moto). Load average at the end of the run: {} (the cores may be shared: read the figures as noisy).\n",
        load.join(" ")
    )
    .unwrap();
    writeln!(
        out,
        "## Cold start, warm latency, memory (real binaries through a Lambda Runtime API harness)\n\nInit (spawn to the first `GET /next`) and first response (spawn to the first answer) are the median of {COLD_PROCESSES} fresh processes, with the lowest and highest init beside; warm is the median and 95th percentile of {WARM_INVOCATIONS} invocations of the last process, with the medians of its first and last 10 beside (moto answers a `gsi1` Query by scanning the whole table, so a function that queries slows down as the run writes items: compare those rows with care); peak RSS is VmHWM after them. DynamoDB calls: one request of the same kind through the local API, counted by an SDK interceptor (details in the round-trip table below).\n"
    )
    .unwrap();
    writeln!(
        out,
        "| function | init ms | init min–max ms | first response ms | warm median ms | warm p95 ms | warm first → last 10 ms | peak RSS MiB | DynamoDB calls | statuses |"
    )
    .unwrap();
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|").unwrap();
    for row in &measurements {
        let m = &row.measurement;
        let mut statuses = m.statuses.clone();
        statuses.sort_unstable();
        statuses.dedup();
        let calls = row
            .trips
            .and_then(|label| trips.iter().find(|t| t.0 == label))
            .map_or_else(|| "–".to_owned(), |t| t.1.to_string());
        let (low, high) = m.init_range();
        let (early, late) = m.warm_drift();
        writeln!(
            out,
            "| {} | {} | {}–{} | {} | {} | {} | {} → {} | {:.1} | {calls} | {statuses:?} |",
            row.name,
            ms(m.init()),
            ms(low),
            ms(high),
            ms(m.first_response()),
            ms(m.warm_median()),
            ms(m.warm_p95()),
            ms(early),
            ms(late),
            m.peak_rss_kib as f64 / 1024.0
        )
        .unwrap();
    }
    let find = |name: &str| {
        measurements
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.measurement.clone())
    };
    if let (Some(ours), Some(theirs)) = (find("auth-login"), find("peer: Node.js login")) {
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        writeln!(out, "\n**auth-login / Node.js peer** (same run, spawned and invoked alternately in one process tree): warm **{:.2}×** as the median of the {} pairwise ratios (each keygate invocation over the peer's next to it; {:.2}× as the ratio of the two medians); init {:.2}×, first response {:.2}×, peak RSS {:.2}×.\n",
            median_f64(&peer.ratios),
            peer.ratios.len(),
            ratio(ours.warm_median(), theirs.warm_median()),
            ratio(ours.init(), theirs.init()),
            ratio(ours.first_response(), theirs.first_response()),
            ours.peak_rss_kib as f64 / (theirs.peak_rss_kib as f64).max(1.0)).unwrap();
    }
    writeln!(
        out,
        "## argon2id verify (m={}, t={}, p={}): the floor and the login binary's verify\n\nMedians of {ARGON2_SAMPLES}, alternated, in this harness's release build. The floor is argon2 0.5's `hash_password_into_with_memory` into one block buffer allocated and paged in once, plus the comparison: the fastest verify this machine does. keygate is `keygate::passwords::verify`, as auth-login calls it (PHC parse, the pooled buffer, a blocking-pool thread). Allocating is argon2's own `hash_password_into`, a fresh 19 MiB buffer each time: what the pool saves.\n\n| verify | median ms | / floor |\n|---|---:|---:|\n| floor (buffer reused) | {} | 1.00 |\n| keygate::passwords::verify | {} | {:.3} |\n| argon2 allocating | {} | {:.3} |\n| keygate, the first verify of the process (its pool empty: one sample) | {} | {:.3} |\n\nkeygate / floor as the median of the {} pairwise ratios: **{:.3}×** (target ≤ 1.15×).\n",
        keygate::passwords::MEMORY_KIB,
        keygate::passwords::ITERATIONS,
        keygate::passwords::PARALLELISM,
        ms(median(&argon2.floor)),
        ms(median(&argon2.keygate)),
        median(&argon2.keygate).as_secs_f64() / median(&argon2.floor).as_secs_f64().max(1e-9),
        ms(median(&argon2.allocating)),
        median(&argon2.allocating).as_secs_f64() / median(&argon2.floor).as_secs_f64().max(1e-9),
        ms(argon2.first),
        argon2.first.as_secs_f64() / median(&argon2.floor).as_secs_f64().max(1e-9),
        argon2.ratios.len(),
        median_f64(&argon2.ratios),
    )
    .unwrap();
    writeln!(
        out,
        "## Micro-benchmarks (criterion, median)\n\n| benchmark | µs |\n|---|---:|"
    )
    .unwrap();
    for (name, us) in criterion_rows() {
        writeln!(out, "| {name} | {us:.1} |").unwrap();
    }
    writeln!(out, "\n## DynamoDB round trips per request (one run of each flow, counted by an SDK interceptor)\n\n| request | calls | status (operations) |\n|---|---:|---|").unwrap();
    for (label, calls, detail, _) in &trips {
        writeln!(out, "| {label} | {calls} | {detail} |").unwrap();
    }
    writeln!(out, "\n## Send endpoints: a known versus an unknown address (median of {ENUMERATION_SAMPLES}, through the local API)\n\n| request | known ms | unknown ms | unknown / known |\n|---|---:|---:|---:|").unwrap();
    for (label, known, unknown) in &enumeration {
        writeln!(
            out,
            "| {label} | {} | {} | {:.2} |",
            ms(*known),
            ms(*unknown),
            unknown.as_secs_f64() / known.as_secs_f64().max(1e-9)
        )
        .unwrap();
    }
    costs(&mut out, &measurements, &trips);
    writeln!(
        out,
        "\n## Binary sizes (stripped release, x86_64)\n\n| function | MB |\n|---|---:|"
    )
    .unwrap();
    for (name, bytes) in binary_sizes() {
        writeln!(out, "| {name} | {:.2} |", bytes as f64 / 1_000_000.0).unwrap();
    }
    writeln!(
        out,
        "\nThe harness ran for {:.1} min{}.",
        started.elapsed().as_secs_f64() / 60.0,
        std::env::var("KEYGATE_BENCH_STARTED")
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .map(|t| format!(
                "; `make bench` as a whole, from the release build on, {:.1} min",
                (keygate::Clock::system().now() - t) as f64 / 60.0
            ))
            .unwrap_or_default()
    )
    .unwrap();
    print!("{out}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("results.md");
    std::fs::write(&path, &out).unwrap();
    eprintln!("==> written to {}", path.display());
}

/// The AWS bill section: per million requests of each measured function, and per 10,000 monthly active users.
fn costs(out: &mut String, measurements: &[Row], trips: &[Trip]) {
    use keygate_bench::cost::{self, Function, PRICES};
    // Which counted request each measured function serves, and its memory in template.yaml.
    let serves = [
        ("auth-login", "POST /v1/auth/login", 1024, true),
        ("auth-refresh", "POST /v1/auth/refresh", 256, true),
        ("auth-me", "GET /v1/auth/me (JWT)", 256, true),
        ("authorizer (JWT)", "authorizer (JWT)", 256, false),
        ("authorizer (PAT)", "authorizer (PAT)", 256, false),
        ("authorizer (scoped token)", "authorizer (scoped token)", 256, false),
        (
            "oauth-token (client credentials)",
            "POST /v1/oauth/token (client credentials)",
            1024,
            true,
        ),
        ("auth-login-service", "POST /v1/auth/login/service", 1024, true),
        ("auth-2fa-verify (TOTP)", "POST /v1/auth/2fa/verify (TOTP)", 256, true),
        (
            "auth-passkey-login-verify",
            "POST /v1/auth/passkey/login/verify",
            256,
            true,
        ),
    ];
    const COLD_SHARE: f64 = 0.01;
    let mut rows = Vec::new();
    for (name, request, memory_mb, through_api) in serves {
        let Some(m) = measurements.iter().find(|r| r.name == name).map(|r| &r.measurement) else {
            continue;
        };
        let calls = trips
            .iter()
            .find(|t| t.0 == request)
            .map(|t| t.3.clone())
            .unwrap_or_default();
        let function = Function {
            name: name.to_owned(),
            memory_mb,
            warm_ms: m.warm_median().as_secs_f64() * 1000.0,
            cold_extra_ms: (m.first_response().saturating_sub(m.warm_median())).as_secs_f64() * 1000.0,
            calls,
            mails: 0.0,
            through_api,
        };
        let bill = function.per_million(&PRICES, COLD_SHARE);
        rows.push((function, bill));
    }
    writeln!(
        out,
        "\n## What it would cost on AWS (estimate, list prices of {}, us-east-1)\n\nLambda on arm64 at ${:.10} per GB-s and ${:.2} per million requests, billed in whole ms, with {:.0} % cold starts whose extra time is billed (warm and cold times measured here on x86_64 against moto); DynamoDB on-demand at ${:.3} per million read units and ${:.3} per million write units (every item on these paths under 1 KB: a read 1 unit, a write 1 plus 1 for the `expiry` index, a transaction twice, a BatchGetItem 2 items, a TransactWriteItems 3); API Gateway HTTP API ${:.2} per million. Free tiers left out.\n\n| function | memory MB | billed ms (warm) | Lambda $ | DynamoDB $ | API Gateway $ | per million requests $ |\n|---|---:|---:|---:|---:|---:|---:|",
        PRICES.as_of,
        PRICES.lambda_gb_second,
        PRICES.lambda_request * 1e6,
        COLD_SHARE * 100.0,
        PRICES.read_unit * 1e6,
        PRICES.write_unit * 1e6,
        PRICES.http_api_request * 1e6
    )
    .unwrap();
    for (function, bill) in &rows {
        writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            function.name,
            function.memory_mb,
            function.warm_ms.ceil(),
            bill.lambda,
            bill.dynamodb,
            bill.api,
            bill.total()
        )
        .unwrap();
    }
    let users = 10_000.0;
    writeln!(out, "\n**Per 10,000 monthly active users**, each making in a month:\n").unwrap();
    for (name, per_user, what) in cost::PROFILE {
        writeln!(out, "- {per_user} × {name}: {what}").unwrap();
    }
    writeln!(
        out,
        "\nkeygate: **${:.2} a month** for these requests (mail, storage, logs, Secrets Manager's $0.40 a secret a month and API Gateway for your own routes not included).",
        cost::per_users(&rows, users)
    )
    .unwrap();
    let tiers = cost::cognito(&PRICES, 10_000)
        .iter()
        .zip(cost::cognito(&PRICES, 20_000))
        .map(|((tier, at_10k), (_, at_20k))| {
            format!(
                "{tier} ${at_10k:.0} for the first 10,000 and ${:.0} for each 10,000 after",
                at_20k - at_10k
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    writeln!(
        out,
        "Amazon Cognito user pools, per MAU (November 2024 tiers): {tiers}."
    )
    .unwrap();
}
