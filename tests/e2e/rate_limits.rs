//! Per-IP rate limits with the default rules.

use keygate_e2e::{unique_email, Answer, TestApp, PASSWORD};

/// Sends requests until one is limited and returns how many went through before it. Windows are fixed, so a
/// run that straddles a window boundary may pass up to twice the limit before the first 429.
async fn allowed_before_limit<F, Fut>(limit: usize, mut send: F) -> (usize, Answer)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    for allowed in 0..=2 * limit {
        let answer = send().await;
        if answer.status == 429 {
            return (allowed, answer);
        }
    }
    panic!("no 429 after {} requests", 2 * limit + 1);
}

#[tokio::test]
async fn check_registration_has_the_strictest_limit_per_ip() {
    let app = TestApp::spawn_with(|c| c.rate_limits = keygate_e2e::defaults().rate_limits).await;
    let path = format!(
        "/v1/auth/check-registration?email={}",
        unique_email().replace('@', "%40")
    );
    let (allowed, limited) = allowed_before_limit(3, || app.get(&path, None)).await;
    assert!((3..=6).contains(&allowed), "{allowed}");
    assert_eq!((limited.status, limited.code()), (429, "rate_limited"));
    let retry_after: i64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));

    // Another client address has its own budget.
    let other = app.from_ip(keygate_e2e::random_loopback());
    assert_eq!(other.get(&path, None).await.status, 200);
    // And the next window starts afresh.
    app.state.clock.advance(60);
    assert_eq!(app.get(&path, None).await.status, 200);
}

#[tokio::test]
async fn login_bursts_from_one_ip_are_limited() {
    let app = TestApp::spawn_with(|c| c.rate_limits = keygate_e2e::defaults().rate_limits).await;
    // A new address each time, so the per-account backoff stays out of the way.
    let (allowed, limited) = allowed_before_limit(10, || {
        let app = &app;
        async move { app.login(&unique_email(), PASSWORD).await }
    })
    .await;
    assert!((10..=20).contains(&allowed), "{allowed}");
    assert_eq!(limited.code(), "rate_limited");
    let other = app.from_ip(keygate_e2e::random_loopback());
    assert_eq!(
        other.login(&unique_email(), PASSWORD).await.code(),
        "invalid_credentials"
    );
}
