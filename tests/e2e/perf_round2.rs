//! Performance round 2 (issue 18): the requests that now make their calls side by side still refuse and write as
//! they did one after another.

use keygate_e2e::TestApp;
use serde_json::json;

/// The refresh limit's counter runs beside the session's read: a refused refresh is 429 whatever the token, and
/// rotates nothing, so the refused token still works once the window has passed.
#[tokio::test]
async fn a_refresh_over_the_limit_is_429_and_rotates_nothing() {
    let app = TestApp::spawn_with(|c| c.rate_limits.refresh_per_minute = 2).await;
    let (_, session) = app.signed_up_user().await;
    let mut token = session.str("refresh_token");
    for _ in 0..2 {
        let refreshed = app.post("/v1/auth/refresh", json!({ "refresh_token": token })).await;
        assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
        token = refreshed.str("refresh_token");
    }
    let refused = app.post("/v1/auth/refresh", json!({ "refresh_token": token })).await;
    assert_eq!((refused.status, refused.code()), (429, "rate_limited"));
    assert!(refused.headers.get("retry-after").is_some());
    for other in ["not a token", "AAAA.BBBB", &format!("{token}x")] {
        let refused = app.post("/v1/auth/refresh", json!({ "refresh_token": other })).await;
        assert_eq!(
            refused.status, 429,
            "{other}: the limit answers before the token is judged"
        );
    }
    app.state.clock.advance(61);
    let later = app.post("/v1/auth/refresh", json!({ "refresh_token": token })).await;
    assert_eq!(
        later.status, 200,
        "the refused request rotated the token: {:?}",
        later.body
    );
    let replayed = app.post("/v1/auth/refresh", json!({ "refresh_token": token })).await;
    assert_ne!(replayed.status, 200, "a rotated-out token is refused");
}
