//! `make bench`: one report of cold start, warm latency and peak memory of the real function binaries against a
//! Node.js peer, the micro-benchmarks, DynamoDB round trips per endpoint and binary sizes. It reports; it
//! asserts nothing about time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use keygate_bench::{fixture, run_function, Measurement};
use keygate_e2e::{TestApp, PASSWORD};
use serde_json::{json, Value};

const WARM_INVOCATIONS: usize = 25;

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn with_body(mut event: Value, route: &str, body: &Value) -> Value {
    let (method, path) = route.split_once(' ').unwrap();
    event["routeKey"] = json!(route);
    event["rawPath"] = json!(path);
    event["requestContext"]["routeKey"] = json!(route);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["http"]["method"] = json!(method);
    event["body"] = json!(STANDARD.encode(body.to_string()));
    event["isBase64Encoded"] = json!(true);
    event
}

fn function_command(name: &str) -> tokio::process::Command {
    let binary = format!("{}/../target/release/{name}", env!("CARGO_MANIFEST_DIR"));
    assert!(Path::new(&binary).exists(), "{binary} is missing: make bench builds it");
    let mut command = tokio::process::Command::new(binary);
    // The harness sends every event from one address; these limits are not what is measured.
    command
        .env("KEYGATE_RATE_LIMIT_VERIFY_PER_MINUTE", "100000")
        .env("KEYGATE_RATE_LIMIT_REFRESH_PER_MINUTE", "100000")
        .env("RUST_LOG", "warn");
    command
}

fn peer_command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new("node");
    command.arg(format!("{}/peer-node/index.js", env!("CARGO_MANIFEST_DIR")));
    command
}

async fn measure_all(app: &TestApp) -> Vec<(String, Measurement)> {
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
    let login_event = with_body(
        fixture("apigw_v2_login.json"),
        "POST /v1/auth/login",
        &json!({ "email": email, "password": PASSWORD }),
    );
    let mut me_event = fixture("apigw_v2_me.json");
    me_event["headers"]["authorization"] = json!(format!("Bearer {access}"));
    let authorizer_event = |token: &str| {
        let mut event = fixture("apigw_v2_authorizer.json");
        event["headers"]["authorization"] = json!(format!("Bearer {token}"));
        event["identitySource"] = json!([format!("Bearer {token}")]);
        event
    };

    let mut results = Vec::new();
    eprintln!("  auth-login (keygate)");
    let login = login_event.clone();
    results.push((
        "auth-login".to_owned(),
        run_function(function_command("auth-login"), WARM_INVOCATIONS, move |_| login.clone()).await,
    ));
    eprintln!("  auth-login (Node.js 20 peer)");
    let login = login_event.clone();
    results.push((
        "peer: Node.js login".to_owned(),
        run_function(peer_command(), WARM_INVOCATIONS, move |_| login.clone()).await,
    ));

    eprintln!("  auth-refresh");
    let first_refresh = tokens.str("refresh_token");
    let base = fixture("apigw_v2_login.json");
    let refresh = run_function(function_command("auth-refresh"), WARM_INVOCATIONS, move |previous| {
        // Each refresh rotates the token: present the one the previous call returned.
        let token = previous
            .and_then(|p| p["body"].as_str())
            .and_then(|b| serde_json::from_str::<Value>(b).ok())
            .and_then(|b| b["refresh_token"].as_str().map(str::to_owned))
            .unwrap_or_else(|| first_refresh.clone());
        with_body(
            base.clone(),
            "POST /v1/auth/refresh",
            &json!({ "refresh_token": token }),
        )
    })
    .await;
    results.push(("auth-refresh".to_owned(), refresh));

    eprintln!("  auth-me");
    results.push((
        "auth-me".to_owned(),
        run_function(function_command("auth-me"), WARM_INVOCATIONS, move |_| me_event.clone()).await,
    ));
    eprintln!("  authorizer (JWT, PAT)");
    let jwt_event = authorizer_event(&access);
    results.push((
        "authorizer (JWT)".to_owned(),
        run_function(function_command("authorizer"), WARM_INVOCATIONS, move |_| {
            jwt_event.clone()
        })
        .await,
    ));
    let pat_event = authorizer_event(&pat);
    results.push((
        "authorizer (PAT)".to_owned(),
        run_function(function_command("authorizer"), WARM_INVOCATIONS, move |_| {
            pat_event.clone()
        })
        .await,
    ));
    results
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
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
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release");
    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let mut rows: Vec<(String, u64)> = std::fs::read_dir(functions)
        .unwrap()
        .flatten()
        .filter_map(|f| {
            let name = f.file_name().to_string_lossy().into_owned();
            std::fs::metadata(release.join(&name)).ok().map(|m| (name, m.len()))
        })
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
    let app = TestApp::spawn().await;
    eprintln!("==> cold start, warm latency and peak RSS ({WARM_INVOCATIONS} warm invocations each)");
    let measurements = measure_all(&app).await;
    eprintln!("==> DynamoDB round trips per endpoint");
    let trips = round_trips(&app).await;
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
    let date = keygate::clock::rfc3339(keygate::Clock::system().now());
    let mut out = String::new();
    writeln!(
        out,
        "# keygate benchmark\n\n{date}, {cores} cores, {machine}, x86_64 release build; local AWS services (moto).\n"
    )
    .unwrap();
    writeln!(
        out,
        "## Cold start, warm latency, memory (real binaries through a Lambda Runtime API harness)\n"
    )
    .unwrap();
    writeln!(
        out,
        "| function | init ms | first response ms | warm median ms | peak RSS MiB | statuses |"
    )
    .unwrap();
    writeln!(out, "|---|---:|---:|---:|---:|---|").unwrap();
    for (name, m) in &measurements {
        let mut statuses = m.statuses.clone();
        statuses.dedup();
        writeln!(
            out,
            "| {name} | {} | {} | {} | {:.1} | {statuses:?} |",
            ms(m.init),
            ms(m.first_response),
            ms(m.warm_median()),
            m.peak_rss_kib as f64 / 1024.0
        )
        .unwrap();
    }
    let find = |name: &str| measurements.iter().find(|(n, _)| n == name).map(|(_, m)| m.clone());
    if let (Some(ours), Some(peer)) = (find("auth-login"), find("peer: Node.js login")) {
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        writeln!(out, "\n**auth-login / Node.js peer** (same run): init {:.2}×, first response {:.2}×, warm {:.2}×, peak RSS {:.2}×\n",
            ratio(ours.init, peer.init),
            ratio(ours.first_response, peer.first_response),
            ratio(ours.warm_median(), peer.warm_median()),
            ours.peak_rss_kib as f64 / (peer.peak_rss_kib as f64).max(1.0)).unwrap();
    }
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
    print!("{out}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("results.md");
    std::fs::write(&path, &out).unwrap();
    eprintln!("==> written to {}", path.display());
}

/// The AWS bill section: per million requests of each measured function, and per 10,000 monthly active users.
fn costs(out: &mut String, measurements: &[(String, Measurement)], trips: &[Trip]) {
    use keygate_bench::cost::{self, Function, PRICES};
    // Which counted request each measured function serves, and its memory in template.yaml.
    let serves = [
        ("auth-login", "POST /v1/auth/login", 1024, true),
        ("auth-refresh", "POST /v1/auth/refresh", 256, true),
        ("auth-me", "GET /v1/auth/me (JWT)", 256, true),
        ("authorizer (JWT)", "GET /v1/auth/me (JWT)", 256, false),
        ("authorizer (PAT)", "GET /v1/auth/me (PAT)", 256, false),
    ];
    const COLD_SHARE: f64 = 0.01;
    let mut rows = Vec::new();
    for (name, request, memory_mb, through_api) in serves {
        let Some((_, m)) = measurements.iter().find(|(n, _)| n == name) else {
            continue;
        };
        // The authorizer reads what GET /v1/auth/me reads with the same credential: the session and the account
        // for a JWT (so that a revoked session is refused at once), the token and its owner for a PAT.
        let calls = trips
            .iter()
            .find(|t| t.0 == request)
            .map(|t| t.3.clone())
            .unwrap_or_default();
        let function = Function {
            name: name.to_owned(),
            memory_mb,
            warm_ms: m.warm_median().as_secs_f64() * 1000.0,
            cold_extra_ms: (m.first_response.saturating_sub(m.warm_median())).as_secs_f64() * 1000.0,
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
