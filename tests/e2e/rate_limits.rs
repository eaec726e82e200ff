//! Per-IP rate limits with the default rules.

use keygate_e2e::{unique_email, TestApp, PASSWORD};

#[tokio::test]
async fn check_registration_has_the_strictest_limit_per_ip() {
    let app = TestApp::spawn_with(|c| c.rate_limits = keygate_e2e::defaults().rate_limits).await;
    let path = format!(
        "/v1/auth/check-registration?email={}",
        unique_email().replace('@', "%40")
    );
    let statuses: Vec<u16> = futures::future::join_all((0..4).map(|_| app.get(&path, None)))
        .await
        .iter()
        .map(|a| a.status)
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    let limited = app.get(&path, None).await;
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
    let email = unique_email();
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(app.login(&email, PASSWORD).await.status);
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(statuses[10], 429);
}
