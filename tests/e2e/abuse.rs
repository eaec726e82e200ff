//! Abuse protection: login backoff per account, password spraying, lockout at the ceiling, and answers that do
//! not tell known addresses from unknown ones.

use std::time::Instant;

use keygate_e2e::{random_loopback, unique_email, Answer, TestApp, PASSWORD};
use serde_json::json;

const WRONG: &str = "definitely not the password";

fn retry_after(answer: &Answer) -> i64 {
    answer.headers["retry-after"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn backoff_grows_and_resets_on_success() {
    let app = TestApp::spawn().await;
    app.state.clock.freeze();
    let (email, _) = app.signed_up_user().await;
    for _ in 0..5 {
        assert_eq!(app.login(&email, WRONG).await.code(), "invalid_credentials");
    }
    // Sixth try at once: refused before any password check, so even the right password waits.
    let early = app.login(&email, PASSWORD).await;
    assert_eq!((early.status, early.code()), (429, "rate_limited"));
    // The wall clock may tick between two requests, so each wait is checked to within a second.
    assert!((0..=1).contains(&retry_after(&early)));

    app.state.clock.advance(1);
    assert_eq!(app.login(&email, WRONG).await.status, 401);
    let early = app.login(&email, WRONG).await;
    assert!((1..=2).contains(&retry_after(&early)), "the wait doubles");
    app.state.clock.advance(2);
    assert_eq!(app.login(&email, WRONG).await.status, 401);
    assert!((3..=4).contains(&retry_after(&app.login(&email, WRONG).await)));

    app.state.clock.advance(4);
    assert_eq!(
        app.login(&email, PASSWORD).await.status,
        200,
        "a due attempt with the right password succeeds"
    );
    // The count is reset: four more failures cost no wait.
    for _ in 0..4 {
        assert_eq!(app.login(&email, WRONG).await.status, 401);
    }
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn spraying_from_many_ips_hits_the_per_account_backoff() {
    let app = TestApp::spawn().await;
    app.state.clock.freeze();
    let (email, _) = app.signed_up_user().await;
    for _ in 0..5 {
        let sprayer = app.from_ip(random_loopback());
        assert_eq!(sprayer.login(&email, WRONG).await.status, 401);
    }
    let fresh_ip = app.from_ip(random_loopback());
    let answer = fresh_ip.login(&email, WRONG).await;
    assert_eq!((answer.status, answer.code()), (429, "rate_limited"));
}

#[tokio::test]
async fn parallel_guesses_in_backoff_get_one_try() {
    let app = TestApp::spawn().await;
    app.state.clock.freeze();
    let (email, _) = app.signed_up_user().await;
    for _ in 0..5 {
        app.login(&email, WRONG).await;
    }
    app.state.clock.advance(1);
    let answers = futures::future::join_all((0..6).map(|_| app.login(&email, WRONG))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5, "{statuses:?}");
}

#[tokio::test]
async fn the_ceiling_locks_password_login_until_the_owner_proves_the_address() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    for _ in 0..100 {
        app.state.clock.advance(900);
        assert_eq!(app.login(&email, WRONG).await.status, 401);
    }
    app.state.clock.advance(900);
    let locked = app.login(&email, PASSWORD).await;
    assert_eq!((locked.status, locked.code()), (403, "account_locked"));

    // An emailed code still signs the owner in, and clears the count.
    app.post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
        .await;
    let code = app.code_sent_to(&email, "sign-in code").await;
    assert_eq!(
        app.post("/v1/auth/otp/login", json!({ "email": email, "code": code }))
            .await
            .status,
        200
    );
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn a_password_reset_unlocks_a_backed_off_account() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    for _ in 0..12 {
        app.state.clock.advance(900);
        app.login(&email, WRONG).await;
    }
    let reset = app.reset_password(&email, "a brand new passphrase").await;
    assert_eq!(reset.status, 204);
    assert_eq!(
        app.login(&email, "a brand new passphrase").await.status,
        200,
        "no wait after the reset"
    );
}

/// Everything but the request id and the date must match.
fn assert_same(a: &Answer, b: &Answer, what: &str) {
    assert_eq!(a.status, b.status, "{what}");
    let strip = |answer: &Answer| {
        let mut body = answer.body.clone();
        if let Some(object) = body.as_object_mut() {
            object.remove("request_id");
        }
        body
    };
    assert_eq!(strip(a), strip(b), "{what}");
    let headers = |answer: &Answer| {
        let mut pairs: Vec<(String, String)> = answer
            .headers
            .iter()
            .filter(|(name, _)| *name != "date")
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        pairs.sort();
        pairs
    };
    assert_eq!(headers(a), headers(b), "{what}");
}

#[tokio::test]
async fn known_and_unknown_addresses_get_identical_answers() {
    let app = TestApp::spawn().await;
    let (known, _) = app.signed_up_user().await;
    let unknown = unique_email();
    type Request = (&'static str, fn(&str) -> serde_json::Value);
    let requests: [Request; 6] = [
        ("/v1/auth/register", |e| json!({ "email": e, "password": PASSWORD })),
        ("/v1/auth/login", |e| json!({ "email": e, "password": WRONG })),
        ("/v1/auth/password-reset-request", |e| json!({ "email": e })),
        ("/v1/auth/otp/send", |e| json!({ "email": e, "purpose": "login" })),
        ("/v1/auth/otp/send", |e| json!({ "email": e, "purpose": "reset" })),
        ("/v1/auth/magic-link/send", |e| json!({ "email": e })),
    ];
    for (path, body) in requests {
        let a = app.post(path, body(&known)).await;
        let b = app.post(path, body(&unknown)).await;
        assert_same(&a, &b, path);
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// A coarse guard against telling accounts apart by timing, not a performance test: an unknown address must
/// cost about what a known one with a wrong password costs (both run argon2 once).
#[tokio::test]
async fn unknown_and_known_logins_take_about_as_long() {
    let app = TestApp::spawn().await;
    let (known, _) = app.signed_up_user().await;
    let (mut unknown_ms, mut known_ms) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        // Stay clear of the backoff, which would answer early for both alike.
        app.state.clock.advance(1_000);
        let started = Instant::now();
        assert_eq!(app.login(&unique_email(), WRONG).await.status, 401);
        unknown_ms.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        assert_eq!(app.login(&known, WRONG).await.status, 401);
        known_ms.push(started.elapsed().as_secs_f64());
    }
    let ratio = median(unknown_ms) / median(known_ms);
    assert!(
        (0.5..=2.0).contains(&ratio),
        "unknown/known median latency ratio {ratio:.2}"
    );
}
