//! Issue 16, part 1: the scheduled cleanup. Each test has a table of its own (the suite's table holds every other
//! test's expired items), filled through the SDK, and calls the domain's `cleanup::run` with a counted client.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use keygate::metrics::CallCounter;
use keygate::store::expiry_bucket;
use keygate::State;
use keygate_e2e::{test_config, unique, TestApp};
use serde_json::json;

/// A state over a fresh table of its own, and the counter of its DynamoDB calls.
async fn isolated() -> (State, CallCounter) {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let table = unique("cleanup-");
    let template = std::fs::read_to_string(format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    keygate_local::setup::create_table(&aws_sdk_dynamodb::Client::new(&aws), &table, &template)
        .await
        .unwrap();
    let mut config = test_config();
    config.table_name = table;
    let counter = CallCounter::new();
    (State::with_dynamo_counter(config, &aws, counter.clone()), counter)
}

/// Writes `count` items of kind `prefix` expiring at `expires_at`, 25 to a call.
async fn fill(state: &State, prefix: &str, count: usize, expires_at: i64) {
    let requests: Vec<WriteRequest> = (0..count)
        .map(|i| {
            let item = [
                ("pk", AttributeValue::S(format!("{prefix}#{}", unique("i")))),
                ("sk", AttributeValue::S(format!("{prefix}{i}"))),
                ("expires_at", AttributeValue::N(expires_at.to_string())),
                (
                    "expiry_bucket",
                    AttributeValue::N(expiry_bucket(expires_at).to_string()),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build()
        })
        .collect();
    for chunk in requests.chunks(25) {
        state
            .store
            .client()
            .batch_write_item()
            .request_items(state.store.table(), chunk.to_vec())
            .send()
            .await
            .unwrap();
    }
}

async fn count_items(state: &State) -> usize {
    let mut total = 0;
    let mut start = None;
    loop {
        let page = state
            .store
            .client()
            .scan()
            .table_name(state.store.table())
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        total += page.items.unwrap_or_default().len();
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return total,
        }
    }
}

fn plenty() -> Duration {
    Duration::from_secs(600)
}

/// The calls of one run over `live` live sessions and `expired` expired ones (spread over two past hours).
async fn calls_of_a_run(live: usize, expired: usize) -> (u64, u64) {
    let (state, counter) = isolated().await;
    let now = state.clock.now();
    fill(&state, "SESSION", live, now + 86_400).await;
    fill(&state, "SESSION", expired / 2, now - 2 * 3_600).await;
    fill(&state, "SESSION", expired - expired / 2, now - 600).await;
    let before = count_items(&state).await;
    counter.reset();
    let report = keygate::cleanup::run(&state, now, plenty).await.unwrap();
    let calls = counter.total();
    assert!(report.finished);
    assert_eq!(
        report.deleted.get("sessions").copied(),
        Some(expired as u64),
        "{report:?}"
    );
    // The two checkpoint items (deletes, warnings) are the only ones added.
    assert_eq!(
        count_items(&state).await,
        before - expired + 2,
        "exactly the expired ones went"
    );
    (calls, report.total())
}

#[tokio::test]
async fn a_run_deletes_exactly_the_expired_items_and_its_calls_follow_them_not_the_table() {
    let (small_table, deleted) = calls_of_a_run(1_000, 500).await;
    let (large_table, _) = calls_of_a_run(10_000, 500).await;
    let (more_expired, _) = calls_of_a_run(1_000, 1_000).await;
    eprintln!(
        "cleanup calls: 1,000 live + 500 expired: {small_table}; 10,000 live + 500 expired: {large_table}; \
         1,000 live + 1,000 expired: {more_expired} ({deleted} deleted in the first)"
    );
    assert_eq!(small_table, large_table, "ten times the live items, not one call more");
    assert!(
        more_expired >= small_table + 500,
        "twice the expired items, about 500 calls more: {small_table} → {more_expired}"
    );
}

#[tokio::test]
async fn a_session_refreshed_during_a_run_survives() {
    let (state, _) = isolated().await;
    let now = state.clock.now();
    fill(&state, "SESSION", 3, now - 60).await;
    // The index still says it expired; its expiry moved to tomorrow (as a refresh moves it).
    let page = keygate::store::cleanup::expired_page(&state.store, expiry_bucket(now - 60), now, None, 10)
        .await
        .unwrap();
    let moved = &page.items[0];
    state
        .store
        .client()
        .update_item()
        .table_name(state.store.table())
        .key("pk", AttributeValue::S(moved.pk.clone()))
        .key("sk", AttributeValue::S(moved.sk.clone()))
        .update_expression("SET expires_at = :later")
        .expression_attribute_values(":later", AttributeValue::N((now + 86_400).to_string()))
        .send()
        .await
        .unwrap();
    let deleted = keygate::store::cleanup::delete_if_expired(&state.store, moved, now)
        .await
        .unwrap();
    assert!(!deleted, "the conditional delete leaves a session whose expiry moved");
    let report = keygate::cleanup::run(&state, now, plenty).await.unwrap();
    assert_eq!(report.deleted.get("sessions").copied(), Some(2));
    assert_eq!(
        count_items(&state).await,
        3,
        "the refreshed session and the two checkpoints"
    );
}

#[tokio::test]
async fn a_run_stopped_by_its_deadline_is_finished_by_the_next() {
    let (state, _) = isolated().await;
    let now = state.clock.now();
    for hours in 1..=5 {
        fill(&state, "EMAIL", 20, now - hours * 3_600).await;
    }
    // A previous run got to six hours ago.
    keygate::store::cleanup::advance_checkpoint(
        &state.store,
        keygate::store::cleanup::Pass::Deletes,
        expiry_bucket(now - 6 * 3_600),
        now,
    )
    .await
    .unwrap();
    let calls = std::sync::atomic::AtomicU32::new(0);
    // Time enough for three pages (six hours ago: empty; five and four hours ago), then the deadline is near.
    let stopping = || {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3 {
            plenty()
        } else {
            Duration::from_secs(1)
        }
    };
    let first = keygate::cleanup::run(&state, now, stopping).await.unwrap();
    assert!(!first.finished, "{first:?}");
    assert_eq!(first.total(), 40, "{first:?}");
    let second = keygate::cleanup::run(&state, now, plenty).await.unwrap();
    assert!(second.finished);
    assert_eq!(first.total() + second.total(), 100, "{first:?} then {second:?}");
    assert_eq!(count_items(&state).await, 2, "only the two checkpoints are left");
    let third = keygate::cleanup::run(&state, now, plenty).await.unwrap();
    assert_eq!(third.total(), 0, "idempotent");
}

#[tokio::test]
async fn tokens_are_kept_thirty_days_after_they_expire() {
    let (state, _) = isolated().await;
    let now = state.clock.now();
    // A PAT's bucket is its expiry plus thirty days (so the index lists it then).
    let expired_long_ago = now - 31 * 86_400;
    let expired_lately = now - 86_400;
    for (expires_at, bucket_at) in [
        (expired_long_ago, expired_long_ago + 30 * 86_400),
        (expired_lately, expired_lately + 30 * 86_400),
    ] {
        let item = [
            ("pk", AttributeValue::S(format!("PAT#{}", unique("t")))),
            ("sk", AttributeValue::S("PAT".to_owned())),
            ("expires_at", AttributeValue::N(expires_at.to_string())),
            ("expiry_bucket", AttributeValue::N(expiry_bucket(bucket_at).to_string())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        state
            .store
            .client()
            .put_item()
            .table_name(state.store.table())
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    let report = keygate::cleanup::run(&state, now, plenty).await.unwrap();
    assert_eq!(report.deleted.get("api_tokens").copied(), Some(1), "{report:?}");
    assert_eq!(
        count_items(&state).await,
        3,
        "the lately expired token stays, with the two checkpoints"
    );
}

/// One pass as the `token-cleanup` function makes it: the IAM check (`make test`) then sees the calls it makes.
async fn run_as_the_function(state: &State, now: i64) -> keygate::cleanup::Report {
    keygate::metrics::FUNCTION
        .scope("token_cleanup", keygate::cleanup::run(state, now, plenty))
        .await
        .unwrap()
}

/// A TestApp over a table of its own, so that runs at a future `now` touch nobody else's items.
async fn isolated_app() -> TestApp {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let table = unique("cleanup-");
    let template = std::fs::read_to_string(format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    keygate_local::setup::create_table(&aws_sdk_dynamodb::Client::new(&aws), &table, &template)
        .await
        .unwrap();
    TestApp::spawn_with(|config| config.table_name = table).await
}

#[tokio::test]
async fn owners_are_warned_once_a_week_before_a_token_expires_and_never_about_revoked_ones() {
    let app = isolated_app().await;
    let (email, session) = app.signed_up_user().await;
    let access = session.str("access_token");
    let create = |name: &'static str, days: i64| {
        let app = &app;
        let access = access.clone();
        async move {
            let created = app
                .post_as(
                    &access,
                    "/v1/api-tokens",
                    json!({ "name": name, "scopes": ["profile:read"], "expires_in_days": days }),
                )
                .await;
            assert_eq!(created.status, 201, "{:?}", created.body);
            created
        }
    };
    create("deploy-bot", 10).await;
    create("laptop", 30).await;
    let revoked = create("old-ci", 10).await;
    let deleted = app
        .send(
            "DELETE",
            &format!("/v1/api-tokens/{}", revoked.str("id")),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let now = app.state.clock.now();
    let warned = |to: &str| {
        let app = &app;
        let to = to.to_owned();
        async move {
            app.emails_to(&to)
                .await
                .into_iter()
                .filter(|(subject, _)| subject.contains("expires soon"))
                .collect::<Vec<_>>()
        }
    };
    // Eight days before: nothing is within the week yet.
    let first = run_as_the_function(&app.state, now + 2 * 86_400).await;
    assert_eq!(first.warned, 0, "{first:?}");
    assert!(warned(&email).await.is_empty());
    // Five days before the first token's expiry: its owner is told, about that token only.
    let second = run_as_the_function(&app.state, now + 5 * 86_400).await;
    assert_eq!(second.warned, 1, "{second:?}");
    let mails = warned(&email).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].1.contains("deploy-bot"), "{mails:?}");
    assert!(!mails[0].1.contains("old-ci") && !mails[0].1.contains("laptop"));
    // Later runs, even re-reading the same hours from scratch, do not warn it again: the flag is on the token.
    let third = run_as_the_function(&app.state, now + 6 * 86_400).await;
    assert_eq!(third.warned, 0, "{third:?}");
    app.state
        .store
        .client()
        .delete_item()
        .table_name(app.state.store.table())
        .key("pk", AttributeValue::S("CLEANUP".to_owned()))
        .key("sk", AttributeValue::S("WARNINGS".to_owned()))
        .send()
        .await
        .unwrap();
    let rerun = run_as_the_function(&app.state, now + 6 * 86_400).await;
    assert_eq!(rerun.warned, 0, "{rerun:?}");
    assert_eq!(warned(&email).await.len(), 1);
    // The thirty-day token's turn comes a week before its own expiry.
    let fourth = run_as_the_function(&app.state, now + 24 * 86_400).await;
    assert_eq!(fourth.warned, 1, "{fourth:?}");
    let mails = warned(&email).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails.iter().any(|(_, body)| body.contains("laptop")));
}
