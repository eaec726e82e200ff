//! The breached-password check against a local stand-in for the Pwned Passwords range API.

use std::time::{Duration, Instant};

use keygate::breach::{Breach, TIMEOUT};
use keygate::config::BreachedPasswordCheck;
use keygate::State;
use keygate_e2e::{
    closed_port_url, sha1_hex, spawn_range_server, spawn_range_server_answering, state_with, RangeAnswer, PASSWORD,
};
use secrecy::SecretString;

const BREACHED: &str = "P@ssw0rd-from-a-dump";
const ALSO_BREACHED: &str = "another leaked passphrase";

async fn checking_against(url: &str) -> State {
    let url = url.to_owned();
    state_with(|config| {
        config.breached_password_check = BreachedPasswordCheck::Hibp;
        config.hibp_url = url;
    })
    .await
}

async fn check(state: &State, password: &str) -> Breach {
    state.breach.check(&SecretString::from(password)).await
}

#[tokio::test]
async fn breached_password_is_found() {
    let server = spawn_range_server(&[ALSO_BREACHED, BREACHED]).await;
    let state = checking_against(&server.url).await;
    assert_eq!(check(&state, BREACHED).await, Breach::Found(2_000));
    assert_eq!(check(&state, ALSO_BREACHED).await, Breach::Found(1_000));
}

#[tokio::test]
async fn unbreached_password_is_not_found() {
    let server = spawn_range_server(&[BREACHED]).await;
    let state = checking_against(&server.url).await;
    assert_eq!(check(&state, PASSWORD).await, Breach::NotFound);
    // A near miss is not a hit.
    assert_eq!(check(&state, &format!("{BREACHED} ")).await, Breach::NotFound);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn range_server_sees_only_a_five_character_prefix_and_the_padding_header() {
    let server = spawn_range_server(&[BREACHED]).await;
    let state = checking_against(&server.url).await;
    check(&state, BREACHED).await;
    check(&state, PASSWORD).await;

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for (request, password) in requests.iter().zip([BREACHED, PASSWORD]) {
        let hash = sha1_hex(password);
        assert_eq!(request.method, "GET");
        assert_eq!(request.target, format!("/range/{}", &hash[..5]));
        let prefix = request.target.trim_start_matches("/range/");
        assert!(prefix.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        assert_eq!(request.header("add-padding"), Some("true"));
        assert!(request.body.is_empty());
        // Nothing else of the password or its hash, in any case, anywhere in the request.
        let mut sent = format!("{} {}\n", request.method, request.target);
        for (name, value) in &request.headers {
            sent.push_str(&format!("{name}: {value}\n"));
        }
        sent.push_str(&String::from_utf8_lossy(&request.body));
        let sent = sent.to_ascii_uppercase();
        for leak in [password, &hash, &hash[5..], &hash[5..12], &hash[33..]] {
            assert!(!sent.contains(&leak.to_ascii_uppercase()), "{leak} in {sent}");
        }
    }
}

#[tokio::test]
async fn padding_that_carries_the_suffix_with_count_zero_is_not_a_hit() {
    let suffix = &sha1_hex(PASSWORD)[5..];
    let body = format!("0018A45C4D1DEF81644B54AB7F969B88D65:0\r\n{suffix}:0\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0");
    let server = spawn_range_server_answering(RangeAnswer::Body(body)).await;
    let state = checking_against(&server.url).await;
    assert_eq!(check(&state, PASSWORD).await, Breach::NotFound);
}

#[tokio::test]
async fn dead_range_server_gives_unknown_quickly() {
    let state = checking_against(&closed_port_url()).await;
    let started = Instant::now();
    assert_eq!(check(&state, BREACHED).await, Breach::Unknown);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}

#[tokio::test]
async fn hanging_range_server_gives_unknown_after_the_timeout() {
    let server = spawn_range_server_answering(RangeAnswer::Hang).await;
    let state = checking_against(&server.url).await;
    let started = Instant::now();
    assert_eq!(check(&state, BREACHED).await, Breach::Unknown);
    let took = started.elapsed();
    assert!(took >= TIMEOUT && took < TIMEOUT + Duration::from_secs(2), "{took:?}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn range_server_errors_and_garbage_give_unknown() {
    let oversized = format!("{}:1\r\n", &sha1_hex("x")[5..]).repeat(10_000);
    for answer in [
        RangeAnswer::Status(500),
        RangeAnswer::Status(503),
        RangeAnswer::Status(429),
        RangeAnswer::Status(404),
        RangeAnswer::Body("<html><body>Service Unavailable</body></html>".to_owned()),
        RangeAnswer::Body(String::new()),
        RangeAnswer::Body(format!("{}:lots", &sha1_hex(BREACHED)[5..])),
        RangeAnswer::Body(oversized),
    ] {
        let server = spawn_range_server_answering(answer.clone()).await;
        let state = checking_against(&server.url).await;
        assert_eq!(check(&state, BREACHED).await, Breach::Unknown, "{answer:?}");
        assert_eq!(server.requests().len(), 1, "{answer:?}");
    }
}

#[tokio::test]
async fn check_off_never_calls_the_range_server() {
    let server = spawn_range_server(&[BREACHED]).await;
    let url = server.url.clone();
    let state = state_with(|config| {
        config.breached_password_check = BreachedPasswordCheck::Off;
        config.hibp_url = url;
    })
    .await;
    assert!(!state.breach.is_enabled());
    assert_eq!(check(&state, BREACHED).await, Breach::Unknown);
    assert_eq!(check(&state, PASSWORD).await, Breach::Unknown);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn the_default_configuration_has_the_check_off() {
    let state = state_with(|_| {}).await;
    assert!(!state.breach.is_enabled());
    assert_eq!(check(&state, BREACHED).await, Breach::Unknown);
}

#[tokio::test]
async fn one_client_serves_many_checks() {
    let server = spawn_range_server(&[BREACHED]).await;
    let state = checking_against(&server.url).await;
    let checks = (0..20).map(|i| {
        let state = &state;
        async move {
            if i % 2 == 0 {
                check(state, BREACHED).await
            } else {
                check(state, PASSWORD).await
            }
        }
    });
    let answers = futures::future::join_all(checks).await;
    for (i, answer) in answers.into_iter().enumerate() {
        let expected = if i % 2 == 0 {
            Breach::Found(1_000)
        } else {
            Breach::NotFound
        };
        assert_eq!(answer, expected, "{i}");
    }
    assert_eq!(server.requests().len(), 20);
}

// The check in the flows: new passwords are refused, a login is told.

async fn app_checking_against(url: &str) -> keygate_e2e::TestApp {
    let url = url.to_owned();
    keygate_e2e::TestApp::spawn_with(|config| {
        config.breached_password_check = BreachedPasswordCheck::Hibp;
        config.hibp_url = url;
    })
    .await
}

#[tokio::test]
async fn registration_reset_and_change_refuse_a_breached_password() {
    let server = spawn_range_server(&[BREACHED]).await;
    let app = app_checking_against(&server.url).await;
    let email = keygate_e2e::unique_email();
    let refused = app.register(&email, BREACHED).await;
    assert_eq!((refused.status, refused.code()), (422, "breached_password"));
    assert!(app.items(&format!("EMAIL#{email}")).await.is_empty(), "nothing written");

    let (email, tokens) = app.signed_up_user().await;
    let change = app
        .change_password(&tokens.str("access_token"), PASSWORD, BREACHED)
        .await;
    assert_eq!((change.status, change.code()), (422, "breached_password"));

    app.post("/v1/auth/password-reset-request", serde_json::json!({ "email": email }))
        .await;
    let code = app.code_sent_to(&email, "reset code").await;
    let body = |password: &str| serde_json::json!({ "email": email, "code": code, "new_password": password });
    let reset = app.post("/v1/auth/password-reset", body(BREACHED)).await;
    assert_eq!((reset.status, reset.code()), (422, "breached_password"));
    // The refusal spent nothing: the same code still resets to a good password.
    assert_eq!(
        app.post("/v1/auth/password-reset", body("a fresh unbreached passphrase"))
            .await
            .status,
        204
    );
    assert_eq!(app.login(&email, BREACHED).await.status, 401);
}

#[tokio::test]
async fn a_login_with_a_breached_password_succeeds_and_says_so() {
    let server = spawn_range_server(&[PASSWORD]).await;
    // Registered while the check was off.
    let unchecked = keygate_e2e::TestApp::spawn().await;
    let (email, _) = unchecked.signed_up_user().await;
    assert!(unchecked
        .login(&email, PASSWORD)
        .await
        .body
        .get("password_breached")
        .is_none());

    let app = app_checking_against(&server.url).await;
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert_eq!(login.body["password_breached"], true);
    // A wrong password is never checked: the range API learns nothing from failed guesses.
    let before = server.requests().len();
    assert_eq!(app.login(&email, "not the password at all").await.status, 401);
    assert_eq!(server.requests().len(), before);
}

#[tokio::test]
async fn a_breached_password_is_reported_once_the_second_factor_is_in() {
    let server = spawn_range_server(&[PASSWORD]).await;
    let unchecked = keygate_e2e::TestApp::spawn().await;
    let user = crate::two_factor::enrolled(&unchecked).await;
    let app = app_checking_against(&server.url).await;
    let login = app.login(&user.email, PASSWORD).await;
    crate::two_factor::assert_challenge(&login);
    // Nothing about the password before the second factor.
    assert!(login.body.get("password_breached").is_none(), "{:?}", login.body);
    let tokens = crate::two_factor::verify(&app, &login.str("challenge_token"), &user.backup_codes[0]).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(tokens.body["password_breached"], true);
}

#[tokio::test]
async fn a_dead_range_api_lets_registration_and_login_through() {
    let app = app_checking_against(&closed_port_url()).await;
    let (email, verified) = app.signed_up_user().await;
    assert_eq!(verified.status, 200);
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status, 200);
    assert!(login.body.get("password_breached").is_none());
}
