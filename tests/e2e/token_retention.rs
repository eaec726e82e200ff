//! PATs and scoped tokens are kept 30 days after they expire: the table's TTL attribute `expires_at` is when the
//! item may be deleted, and the validity end is `valid_until`. Items written before that (`expires_at` the validity
//! end, no `valid_until`) still verify until their expiry, are refused after it, and are deleted by the cleanup 30
//! days later; expiry warnings reach both shapes once. Each test has a table of its own, so cleanup runs at a
//! future `now` touch nobody else's items.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use keygate::cleanup::Report;
use keygate::store::api_tokens::deletion_time;
use keygate::store::expiry_bucket;
use keygate::{Config, State};
use keygate_e2e::{authorizer_event, test_config, unique, Answer, TestApp, PASSWORD};
use serde_json::{json, Value};

const DAY: i64 = 86_400;
const KEPT: i64 = 30 * DAY;

type Item = HashMap<String, AttributeValue>;

async fn fresh_table() -> String {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let table = unique("retention-");
    let template = std::fs::read_to_string(format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    keygate_local::setup::create_table(&aws_sdk_dynamodb::Client::new(&aws), &table, &template)
        .await
        .unwrap();
    table
}

/// The API over a table of its own, with scoped tokens on (resource type `company`, anonymous scope `db:read`), and
/// its clock frozen so that tokens made together expire together.
async fn isolated_app() -> TestApp {
    let table = fresh_table().await;
    let app = TestApp::spawn_with(|config: &mut Config| {
        config.table_name = table;
        config.scoped_token_resources = vec!["company".into()];
        config.scoped_token_scopes = vec!["db:read".into()];
    })
    .await;
    app.state.clock.freeze();
    app
}

/// One cleanup pass at `now`, as the `token-cleanup` function makes it (so the IAM check sees its calls).
async fn cleanup_at(app: &TestApp, now: i64) -> Report {
    keygate::metrics::FUNCTION
        .scope(
            "token_cleanup",
            keygate::cleanup::run(&app.state, now, || Duration::from_secs(600)),
        )
        .await
        .unwrap()
}

fn unix(value: &Value) -> i64 {
    time::OffsetDateTime::parse(value.as_str().unwrap(), &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name).map(|value| value.as_n().unwrap().parse().unwrap())
}

async fn item(app: &TestApp, pk: &str) -> Option<Item> {
    let mut items = app.items(pk).await;
    assert!(items.len() <= 1, "{items:?}");
    items.pop()
}

/// Rewrites a token's item as it was stored before `valid_until`: `expires_at` its validity end, its bucket that of
/// thirty days later. Returns the validity end.
async fn to_old_shape(app: &TestApp, pk: &str, sk: &str) -> i64 {
    let stored = item(app, pk).await.unwrap();
    let valid_until = number(&stored, "valid_until").unwrap();
    app.state
        .store
        .client()
        .update_item()
        .table_name(app.state.store.table())
        .key("pk", AttributeValue::S(pk.to_owned()))
        .key("sk", AttributeValue::S(sk.to_owned()))
        .update_expression("REMOVE valid_until SET expires_at = :valid, expiry_bucket = :bucket")
        .condition_expression("attribute_exists(valid_until)")
        .expression_attribute_values(":valid", AttributeValue::N(valid_until.to_string()))
        .expression_attribute_values(
            ":bucket",
            AttributeValue::N(expiry_bucket(valid_until + KEPT).to_string()),
        )
        .send()
        .await
        .unwrap();
    valid_until
}

/// Checks the new shape: `valid_until` the validity end, `expires_at` (and the bucket) the hour at or after thirty
/// days past it.
fn assert_new_shape(stored: &Item, valid_until: i64) {
    assert_eq!(number(stored, "valid_until"), Some(valid_until), "{stored:?}");
    let ttl = number(stored, "expires_at").unwrap();
    assert_eq!(ttl, deletion_time(valid_until));
    assert!(
        (valid_until + KEPT..valid_until + KEPT + 3_600).contains(&ttl),
        "TTL {} s after the expiry",
        ttl - valid_until
    );
    assert_eq!(ttl % 3_600, 0, "on the hour");
    assert_eq!(number(stored, "expiry_bucket"), Some(ttl));
}

async fn new_pat(app: &TestApp, jwt: &str, name: &str, days: i64) -> Answer {
    let created = app
        .post_as(
            jwt,
            "/v1/api-tokens",
            json!({ "name": name, "scopes": ["profile:read"], "expires_in_days": days }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created
}

async fn authorized(app: &TestApp, token: &str) -> bool {
    authorizer::handle(&app.state, authorizer_event(&format!("Bearer {token}"))).await["isAuthorized"] == true
}

/// The ids and expiries a listing shows.
fn listed(answer: &Answer) -> Vec<(String, i64)> {
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap().to_owned(), unix(&t["expires_at"])))
        .collect()
}

#[tokio::test]
async fn a_new_pat_is_refused_after_its_validity_end_and_deleted_a_month_later() {
    let app = isolated_app().await;
    let (email, session) = app.signed_up_user().await;
    let created = new_pat(&app, &session.str("access_token"), "ci", 1).await;
    let (id, token) = (created.str("id"), created.str("token"));
    let valid_until = unix(&created.body["expires_at"]);
    let pk = format!("PAT#{id}");
    assert_new_shape(&item(&app, &pk).await.unwrap(), valid_until);

    app.state.clock.advance(valid_until - app.state.clock.now() - 1);
    assert_eq!(app.me(&token).await.status, 200);
    assert!(authorized(&app, &token).await);
    app.state.clock.advance(1);
    let me = app.me(&token).await;
    assert_eq!((me.status, me.code()), (401, "invalid_token"));
    assert!(!authorized(&app, &token).await);
    let jwt = app.login(&email, PASSWORD).await.str("access_token");
    assert_eq!(listed(&app.get("/v1/api-tokens", Some(&jwt)).await), vec![]);
    assert_eq!(app.get(&format!("/v1/api-tokens/{id}"), Some(&jwt)).await.status, 404);
    let rotated = app
        .post_as(&jwt, &format!("/v1/api-tokens/{id}/rotate"), json!({}))
        .await;
    assert_eq!(rotated.status, 404, "{:?}", rotated.body);

    let deletion = deletion_time(valid_until);
    let early = cleanup_at(&app, valid_until + KEPT - 1).await;
    assert_eq!(early.deleted.get("api_tokens"), None, "{early:?}");
    let almost = cleanup_at(&app, deletion - 1).await;
    assert_eq!(almost.deleted.get("api_tokens"), None, "{almost:?}");
    assert!(item(&app, &pk).await.is_some(), "kept thirty days after its expiry");
    let due = cleanup_at(&app, deletion).await;
    assert_eq!(due.deleted.get("api_tokens").copied(), Some(1), "{due:?}");
    assert!(item(&app, &pk).await.is_none());
}

#[tokio::test]
async fn a_pat_stored_before_valid_until_works_until_its_expiry_and_is_kept_a_month_after() {
    let app = isolated_app().await;
    let (email, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let created = new_pat(&app, &jwt, "old", 1).await;
    let id = created.str("id");
    let pk = format!("PAT#{id}");
    let valid_until = to_old_shape(&app, &pk, "PAT").await;
    assert_eq!(valid_until, unix(&created.body["expires_at"]));

    // Valid: it verifies, is listed and shown with its expiry, and rotates (the rotation's condition reads it).
    assert_eq!(app.me(&created.str("token")).await.status, 200);
    assert_eq!(
        listed(&app.get("/v1/api-tokens", Some(&jwt)).await),
        vec![(id.clone(), valid_until)]
    );
    let one = app.get(&format!("/v1/api-tokens/{id}"), Some(&jwt)).await;
    assert_eq!((one.status, unix(&one.body["expires_at"])), (200, valid_until));
    let rotated = app
        .post_as(
            &jwt,
            &format!("/v1/api-tokens/{id}/rotate"),
            json!({ "grace_period_seconds": 0 }),
        )
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    assert_eq!(unix(&rotated.body["expires_at"]), valid_until);
    let token = rotated.str("token");
    assert_eq!(app.me(&token).await.status, 200);
    assert!(authorized(&app, &token).await);
    let stored = item(&app, &pk).await.unwrap();
    assert!(!stored.contains_key("valid_until"), "a rotation leaves the shape alone");
    assert_eq!(number(&stored, "expires_at"), Some(valid_until));

    // Expired: refused everywhere, never taken for a permanent token.
    app.state.clock.advance(valid_until - app.state.clock.now());
    let me = app.me(&token).await;
    assert_eq!((me.status, me.code()), (401, "invalid_token"));
    assert!(!authorized(&app, &token).await);
    let jwt = app.login(&email, PASSWORD).await.str("access_token");
    assert_eq!(listed(&app.get("/v1/api-tokens", Some(&jwt)).await), vec![]);
    assert_eq!(app.get(&format!("/v1/api-tokens/{id}"), Some(&jwt)).await.status, 404);

    // Deleted thirty days after its expiry, not a second sooner.
    let early = cleanup_at(&app, valid_until + KEPT - 1).await;
    assert_eq!(early.deleted.get("api_tokens"), None, "{early:?}");
    assert!(item(&app, &pk).await.is_some());
    let due = cleanup_at(&app, valid_until + KEPT).await;
    assert_eq!(due.deleted.get("api_tokens").copied(), Some(1), "{due:?}");
    assert!(item(&app, &pk).await.is_none());
}

#[tokio::test]
async fn owners_are_warned_once_a_week_before_expiry_about_tokens_of_both_shapes() {
    let app = isolated_app().await;
    let (email, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let fresh = new_pat(&app, &jwt, "new-shape-bot", 10).await;
    let old = new_pat(&app, &jwt, "old-shape-bot", 10).await;
    new_pat(&app, &jwt, "day-later-bot", 11).await;
    let valid_until = unix(&fresh.body["expires_at"]);
    assert_eq!(
        to_old_shape(&app, &format!("PAT#{}", old.str("id")), "PAT").await,
        valid_until
    );
    let warnings = || async {
        app.emails_to(&email)
            .await
            .into_iter()
            .filter(|(subject, _)| subject.contains("expires soon"))
            .map(|(_, body)| body)
            .collect::<Vec<_>>()
    };
    // A second before the week: none; at the week: both shapes, once each.
    let before = cleanup_at(&app, valid_until - 7 * DAY - 1).await;
    assert_eq!(before.warned, 0, "{before:?}");
    let at = cleanup_at(&app, valid_until - 7 * DAY).await;
    assert_eq!(at.warned, 2, "{at:?}");
    let mails = warnings().await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails.iter().any(|body| body.contains("new-shape-bot")), "{mails:?}");
    assert!(mails.iter().any(|body| body.contains("old-shape-bot")), "{mails:?}");
    assert!(!mails.iter().any(|body| body.contains("day-later-bot")), "{mails:?}");
    let hour_later = cleanup_at(&app, valid_until - 7 * DAY + 3_600).await;
    assert_eq!(hour_later.warned, 0, "{hour_later:?}");
    // The next day's token, at its own week; then nothing again, even re-reading every hour from scratch.
    let next_day = cleanup_at(&app, valid_until - 6 * DAY).await;
    assert_eq!(next_day.warned, 1, "{next_day:?}");
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
    let rerun = cleanup_at(&app, valid_until - 6 * DAY).await;
    assert_eq!(rerun.warned, 0, "{rerun:?}");
    let mails = warnings().await;
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert!(mails[2].contains("day-later-bot"), "{mails:?}");
}

#[tokio::test]
async fn scoped_tokens_of_both_shapes_work_until_their_expiry_and_are_kept_a_month_after() {
    let app = isolated_app().await;
    let (email, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let make = || async {
        let created = app
            .post_as(
                &jwt,
                "/v1/scoped-tokens",
                json!({ "resource": "company:acme", "scopes": ["db:read"], "expires_in_days": 1 }),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        created
    };
    let fresh = make().await;
    let old = make().await;
    let valid_until = unix(&fresh.body["expires_at"]);
    let (fresh_pk, old_pk) = (
        format!("SCOPED#{}", fresh.str("id")),
        format!("SCOPED#{}", old.str("id")),
    );
    assert_new_shape(&item(&app, &fresh_pk).await.unwrap(), valid_until);
    assert_eq!(to_old_shape(&app, &old_pk, "SCOPED").await, valid_until);

    app.state.clock.advance(valid_until - app.state.clock.now() - 1);
    let jwt = app.login(&email, PASSWORD).await.str("access_token");
    let mut shown = listed(&app.get("/v1/scoped-tokens", Some(&jwt)).await);
    shown.sort();
    let mut both = vec![(fresh.str("id"), valid_until), (old.str("id"), valid_until)];
    both.sort();
    assert_eq!(shown, both);
    assert!(authorized(&app, &fresh.str("token")).await);
    assert!(authorized(&app, &old.str("token")).await);

    app.state.clock.advance(1);
    assert!(!authorized(&app, &fresh.str("token")).await);
    assert!(!authorized(&app, &old.str("token")).await);
    assert_eq!(listed(&app.get("/v1/scoped-tokens", Some(&jwt)).await), vec![]);

    let early = cleanup_at(&app, valid_until + KEPT - 1).await;
    assert_eq!(early.deleted.get("scoped_tokens"), None, "{early:?}");
    let old_due = cleanup_at(&app, valid_until + KEPT).await;
    assert!(item(&app, &old_pk).await.is_none(), "{old_due:?}");
    let on_the_hour = deletion_time(valid_until) == valid_until + KEPT;
    assert_eq!(item(&app, &fresh_pk).await.is_some(), !on_the_hour, "{old_due:?}");
    let fresh_due = cleanup_at(&app, deletion_time(valid_until)).await;
    assert!(item(&app, &fresh_pk).await.is_none(), "{fresh_due:?}");
    assert_eq!(
        old_due.deleted.get("scoped_tokens").copied().unwrap_or(0)
            + fresh_due.deleted.get("scoped_tokens").copied().unwrap_or(0),
        2
    );
}

/// Writes `items` (pk, expires_at, expiry_bucket), 25 to a call.
async fn put_index_entries(state: &State, items: &[(String, i64, i64)]) {
    let requests: Vec<WriteRequest> = items
        .iter()
        .map(|(pk, expires_at, bucket)| {
            let item = [
                ("pk", AttributeValue::S(pk.clone())),
                ("sk", AttributeValue::S(pk.split('#').next().unwrap().to_owned())),
                ("expires_at", AttributeValue::N(expires_at.to_string())),
                ("expiry_bucket", AttributeValue::N(bucket.to_string())),
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

#[tokio::test]
async fn the_warnings_read_a_buckets_tokens_of_both_shapes_and_not_the_rest_of_its_hour() {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mut config = test_config();
    config.table_name = fresh_table().await;
    let state = State::new(config, &aws);
    let now = state.clock.now();
    let bucket = deletion_time(now + 5 * DAY);
    let new_shape = (format!("PAT#{}", unique("n")), bucket, bucket);
    let old_shape = (format!("PAT#{}", unique("o")), bucket - KEPT + 17, bucket);
    // 600 events of the same hour: more than a page, were they read.
    let mut entries: Vec<_> = (0..600)
        .map(|i| (format!("EVENTS#{}", unique("e")), bucket + 1 + i, bucket))
        .collect();
    entries.push(new_shape.clone());
    entries.push(old_shape.clone());
    put_index_entries(&state, &entries).await;
    let page = keygate::store::cleanup::expiring_tokens_page(&state.store, bucket, now, None, 500)
        .await
        .unwrap();
    let mut found: Vec<_> = page.items.iter().map(|item| item.pk.clone()).collect();
    found.sort();
    let mut expected = vec![new_shape.0, old_shape.0];
    expected.sort();
    assert_eq!(found, expected);
    assert!(page.next.is_none(), "one query for the bucket");
    // A bucket whose tokens all expired by `from` is no query at all (BETWEEN refuses an empty range).
    let none = keygate::store::cleanup::expiring_tokens_page(&state.store, bucket, bucket, None, 500)
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next.is_none());
}
