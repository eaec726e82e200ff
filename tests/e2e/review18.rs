//! Found by the attacker review of issue 18 (performance round 2): login from a copy of the account on its email
//! marker, refresh tokens that name their owner.
//!
//! The tests named for a finding fail until it is fixed; the others are attacks that are refused as they should
//! be, kept so that they stay refused.

use std::time::Duration;

use keygate_e2e::{copied_hash, unique_email, Answer, Item, TestApp, PASSWORD};
use serde_json::json;

const WRONG: &str = "definitely not the password";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// The user item of `id`, as stored.
async fn user_item(app: &TestApp, id: &str) -> Option<Item> {
    app.items(&format!("USER#{id}"))
        .await
        .into_iter()
        .find(|item| item["sk"].as_s().is_ok_and(|sk| sk == "PROFILE"))
}

fn hash_of(user: &Item) -> Option<String> {
    user.get("password_hash")?.as_s().ok().cloned()
}

/// A signed-up user whose marker carries a copy made by a login, and that login's answer.
async fn copied_user(app: &TestApp) -> (String, Answer) {
    let (email, _) = app.signed_up_user().await;
    let session = app.login(&email, PASSWORD).await;
    assert_eq!(session.status, 200, "{:?}", session.body);
    assert!(
        copied_hash(&app.marker(&email).await.unwrap()).is_some(),
        "the login stored its copy"
    );
    (email, session)
}

/// A user whose password was changed to [`NEW_PASSWORD`] and whose marker still carries the copy with the old
/// hash: what a best-effort `forget_copy` that failed, or a sign-in that read the account before the change and
/// wrote after it, leaves behind.
async fn user_with_stale_copy(app: &TestApp) -> String {
    let (email, session) = copied_user(app).await;
    let stale = app.marker(&email).await.unwrap();
    let changed = app
        .change_password(&session.str("access_token"), PASSWORD, NEW_PASSWORD)
        .await;
    assert_eq!(changed.status, 204, "{:?}", changed.body);
    app.put_item(stale).await;
    email
}

async fn login_to(app: &TestApp, email: &str, password: &str, database_id: &str) -> Answer {
    app.post(
        "/v1/auth/login",
        json!({ "email": email, "password": password, "database_id": database_id }),
    )
    .await
}

/// A database id no database has.
const NO_DATABASE: &str = "00000000-0000-4000-8000-000000000000";

// ---------------------------------------------------------------------------------------------------------------
// Findings
// ---------------------------------------------------------------------------------------------------------------

/// FINDING (medium). A login that names a database decides 404 on the marker's copy alone, before the
/// transaction that checks the copy is still the account: `login` calls `databases::in_tenant` with the copy's
/// tenant and, on 404, releases the backoff claim and returns without ever comparing the copy with the account.
/// With a stale copy (a password changed while a sign-in was in flight, or a failed `forget_copy`), the OLD
/// password answers 404 `not_found` where any wrong password answers 401: an attacker holding a leaked former
/// password learns it was the account's, and the attempt is released, not counted in the backoff.
#[tokio::test]
async fn a_former_password_from_a_stale_copy_with_a_missing_database_is_401_not_404() {
    let app = TestApp::spawn().await;
    let email = user_with_stale_copy(&app).await;
    let wrong = login_to(&app, &email, WRONG, NO_DATABASE).await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    let former = login_to(&app, &email, PASSWORD, NO_DATABASE).await;
    assert_eq!(
        (former.status, former.code()),
        (401, "invalid_credentials"),
        "the former password must look like any wrong one: {:?}",
        former.body
    );
}

/// FINDING (low/medium). The same decision on the copy for an account disabled (or being deleted: the deletion
/// disables it first) since the copy was made: disabling does not drop the copy, so the right password with a
/// database that is not the tenant's answers 404 and releases the attempt, where an account without a copy
/// answers 403 `account_disabled` and counts it (DESIGN: "a right password of a disabled account counts as a
/// failure too, so neither is a faster password oracle").
#[tokio::test]
async fn a_disabled_account_with_a_copy_and_a_missing_database_is_403_not_404() {
    let app = TestApp::spawn().await;
    // Without a copy: the account as it is decides.
    let (plain, signed_up) = app.signed_up_user().await;
    app.update_user(&signed_up.user_id(), "SET #status = :s", &[(":s", "disabled")])
        .await;
    let refused = login_to(&app, &plain, PASSWORD, NO_DATABASE).await;
    assert_eq!((refused.status, refused.code()), (403, "account_disabled"));
    // With a copy made while it was active.
    let (copied, session) = copied_user(&app).await;
    app.update_user(&session.user_id(), "SET #status = :s", &[(":s", "disabled")])
        .await;
    let refused = login_to(&app, &copied, PASSWORD, NO_DATABASE).await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "account_disabled"),
        "decided on the stale copy: {:?}",
        refused.body
    );
}

/// FINDING (low), fixed by making such a copy unreachable and short-lived. With a stale copy, the former password
/// is a "right" password as far as the copy goes: the sign-in goes on to the session's transaction, which the
/// changed account refuses, then reads the account and runs argon2 a second time, so the former password could be
/// told apart from a wrong one. The API can no longer leave such a copy (a copy is written only while the account
/// is exactly as read, and every password change drops it in its own transaction: see the race test below); one
/// planted by hand is dropped by the first sign-in that meets it, after which the former password and a wrong one
/// make the same calls.
#[tokio::test]
async fn a_former_password_from_a_stale_copy_makes_the_calls_of_a_wrong_one() {
    let app = TestApp::spawn().await;
    let email = user_with_stale_copy(&app).await;
    let first = app.login(&email, WRONG).await;
    assert_eq!((first.status, first.code()), (401, "invalid_credentials"));
    app.dynamo_calls.reset();
    let wrong = app.login(&email, WRONG).await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    let wrong_calls = app.dynamo_calls.snapshot();
    app.dynamo_calls.reset();
    let former = app.login(&email, PASSWORD).await;
    assert_eq!((former.status, former.code()), (401, "invalid_credentials"));
    let former_calls = app.dynamo_calls.snapshot();
    assert_eq!(
        former_calls, wrong_calls,
        "the former password against a stale copy vs a wrong password"
    );
}

/// FINDING (medium: it is what makes the three findings above reachable without any failure). A password sign-in
/// that read the account (no copy yet) writes the copy in its transaction with no condition on the user item, so
/// a sign-in with the old password that read the account just before a password change, and writes just after
/// the change has dropped the copy, plants a copy with the old hash. An attacker who still knows the old password
/// and keeps signing in while the owner changes it gets a stale copy on the marker (the session it opens is
/// revoked by the epoch, but the copy stays).
#[tokio::test]
async fn a_login_racing_a_password_change_leaves_no_copy_of_the_old_hash() {
    let app = TestApp::spawn().await;
    for attempt in 0..52u64 {
        // A fresh address each round, so that no per-IP limit turns the racing sign-in away.
        let client = app.from_ip(keygate_e2e::random_loopback());
        let (email, signed_up) = client.signed_up_user().await;
        let id = signed_up.user_id();
        let access = signed_up.str("access_token");
        let delay = Duration::from_millis(attempt % 26 * 4);
        let (changed, login) = tokio::join!(client.change_password(&access, PASSWORD, NEW_PASSWORD), async {
            tokio::time::sleep(delay).await;
            client.login(&email, PASSWORD).await
        });
        assert_ne!(login.status, 429, "the race was not run: {:?}", login.body);
        assert_eq!(changed.status, 204, "{:?}", changed.body);
        let current = hash_of(&user_item(&app, &id).await.unwrap());
        let marker = app.marker(&email).await.unwrap();
        assert!(
            !marker.contains_key("profile") || copied_hash(&marker).is_some(),
            "a copy without the password's hash: {marker:?}"
        );
        if let Some(copied) = copied_hash(&marker) {
            assert_eq!(
                Some(copied),
                current,
                "attempt {attempt} (login {delay:?} after the change began) left a copy of the old hash"
            );
        }
    }
}

/// FINDING (medium): the chain, end to end, with no step outside the API. An attacker who knows the old password
/// keeps signing in with it while the owner changes it; once a racing sign-in has planted a copy of the old hash,
/// the old password with a database id that does not exist answers 404 (released, uncounted) where any wrong
/// password answers 401: a confirmed former password (reused elsewhere, often) for as long as the owner does not
/// sign in with a password again. Fixing either the race or the early 404 makes this pass.
#[tokio::test]
async fn an_attacker_racing_the_owners_password_change_cannot_confirm_the_old_password() {
    let app = TestApp::spawn().await;
    for attempt in 0..52u64 {
        let owner = app.from_ip(keygate_e2e::random_loopback());
        let (email, signed_up) = owner.signed_up_user().await;
        let id = signed_up.user_id();
        let access = signed_up.str("access_token");
        let attacker = app.from_ip(keygate_e2e::random_loopback());
        let delay = Duration::from_millis(attempt % 26 * 4);
        let (changed, login) = tokio::join!(owner.change_password(&access, PASSWORD, NEW_PASSWORD), async {
            tokio::time::sleep(delay).await;
            attacker.login(&email, PASSWORD).await
        });
        assert_ne!(login.status, 429, "the race was not run: {:?}", login.body);
        assert_eq!(changed.status, 204, "{:?}", changed.body);
        let current = hash_of(&user_item(&app, &id).await.unwrap());
        let copied = copied_hash(&app.marker(&email).await.unwrap());
        if copied.is_none() || copied == current {
            continue;
        }
        let wrong = login_to(&attacker, &email, WRONG, NO_DATABASE).await;
        let former = login_to(&attacker, &email, PASSWORD, NO_DATABASE).await;
        assert_eq!(
            (former.status, former.code()),
            (wrong.status, wrong.code()),
            "attempt {attempt}: the former password is told apart from a wrong one: {:?}",
            former.body
        );
        return;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Attacks refused as they should be
// ---------------------------------------------------------------------------------------------------------------

/// A stale copy and the former password with a database of the account's own tenant: the transaction's check
/// refuses, and the account as it is decides (401). The new password still signs in, scoped.
#[tokio::test]
async fn a_former_password_from_a_stale_copy_with_the_tenants_database_is_refused() {
    let app = TestApp::spawn().await;
    let (email, session) = copied_user(&app).await;
    let db = app
        .post_as(
            &session.str("access_token"),
            "/v1/databases",
            json!({ "name": "attack" }),
        )
        .await;
    assert_eq!(db.status, 201, "{:?}", db.body);
    let db_id = db.str("id");
    let stale = app.marker(&email).await.unwrap();
    let changed = app
        .change_password(&session.str("access_token"), PASSWORD, NEW_PASSWORD)
        .await;
    assert_eq!(changed.status, 204);
    app.put_item(stale).await;
    let former = login_to(&app, &email, PASSWORD, &db_id).await;
    assert_eq!(
        (former.status, former.code()),
        (401, "invalid_credentials"),
        "{:?}",
        former.body
    );
    let current = login_to(&app, &email, NEW_PASSWORD, &db_id).await;
    assert_eq!(current.status, 200, "{:?}", current.body);
}

/// An account with two-factor authentication signs in from its copy (the copy is made by the challenged
/// sign-in): still a challenge, never tokens, and the check beside the challenge's items is a valid transaction.
#[tokio::test]
async fn a_second_factor_account_signing_in_from_its_copy_still_gets_the_challenge() {
    let app = TestApp::spawn().await;
    let enrolled = crate::two_factor::enrolled(&app).await;
    for round in 0..3 {
        app.dynamo_calls.reset();
        let answer = app.login(&enrolled.email, PASSWORD).await;
        assert_eq!(answer.status, 200, "round {round}: {:?}", answer.body);
        assert_eq!(answer.body["mfa_required"], json!(true), "{:?}", answer.body);
        assert!(answer.body.get("access_token").is_none(), "{:?}", answer.body);
    }
    assert!(copied_hash(&app.marker(&enrolled.email).await.unwrap()).is_some());
    let calls = app.dynamo_calls.snapshot();
    assert_eq!(calls.get("GetItem"), Some(&1), "from the copy: {calls:?}");
}

/// Concurrent sign-ins of one account from its copy: each is a session, a clean 409 or the backoff's 429, never a
/// 5xx, and every session handed out works.
#[tokio::test]
async fn concurrent_logins_from_a_copy_never_fail_with_5xx() {
    let app = TestApp::spawn().await;
    let (email, _) = copied_user(&app).await;
    // Each from its own address, so the per-IP limit stays out of it.
    let clients: Vec<TestApp> = (0..6).map(|_| app.from_ip(keygate_e2e::random_loopback())).collect();
    let answers = futures::future::join_all(clients.iter().map(|c| c.login(&email, PASSWORD))).await;
    let mut ok = 0;
    for answer in &answers {
        assert!(
            answer.status == 200
                || (answer.status, answer.code()) == (409, "conflict")
                // The backoff's claim lets attempts sent at once through one at a time, by design.
                || (answer.status, answer.code()) == (429, "rate_limited"),
            "{} {:?}",
            answer.status,
            answer.body
        );
        if answer.status == 200 {
            ok += 1;
            assert_eq!(app.me(&answer.str("access_token")).await.status, 200);
        }
    }
    assert!(ok >= 1, "no sign-in succeeded");
}

/// Concurrent sign-ins with the old password while the owner changes it (attacker racing the lock-out): no
/// session that outlives the change, and afterwards the old password is refused.
#[tokio::test]
async fn logins_with_the_old_password_racing_its_change_end_with_the_old_password_refused() {
    let app = TestApp::spawn().await;
    let (email, session) = copied_user(&app).await;
    let access = session.str("access_token");
    let clients: Vec<TestApp> = (0..4).map(|_| app.from_ip(keygate_e2e::random_loopback())).collect();
    let (changed, racing) = tokio::join!(
        app.change_password(&access, PASSWORD, NEW_PASSWORD),
        futures::future::join_all(clients.iter().map(|c| c.login(&email, PASSWORD)))
    );
    assert_eq!(changed.status, 204, "{:?}", changed.body);
    for answer in racing {
        assert!(answer.status < 500, "{} {:?}", answer.status, answer.body);
        if answer.status == 200 {
            let me = app.me(&answer.str("access_token")).await;
            let refreshed = app.refresh(&answer.str("refresh_token")).await;
            // A session opened under the old epoch dies with it.
            assert!(
                me.status == 401 && refreshed.status == 401,
                "{:?} {:?}",
                me.body,
                refreshed.body
            );
        }
    }
    assert_eq!(app.login(&email, PASSWORD).await.code(), "invalid_credentials");
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status, 200);
}

/// An attempt the backoff refuses makes the same calls whatever the marker holds (a copy, none, no account).
#[tokio::test]
async fn backoff_refused_logins_make_the_same_calls_whatever_the_marker_holds() {
    let app = TestApp::spawn().await;
    app.state.clock.freeze();
    let (copied, _) = copied_user(&app).await;
    let (plain, _) = app.signed_up_user().await;
    let mut seen = Vec::new();
    for email in [copied, plain, unique_email()] {
        let mut refused = None;
        for _ in 0..8 {
            let answer = app.login(&email, WRONG).await;
            if answer.status != 401 {
                refused = Some(answer);
                break;
            }
        }
        let refused = refused.expect("the backoff never refused");
        app.dynamo_calls.reset();
        let again = app.login(&email, PASSWORD).await;
        assert_eq!(again.status, refused.status, "{:?}", again.body);
        seen.push((again.status, again.code().to_owned(), app.dynamo_calls.snapshot()));
    }
    assert_eq!(seen[0], seen[1], "copy vs no copy");
    assert_eq!(seen[0], seen[2], "copy vs unknown address");
}

/// An attempt the per-IP limit refuses makes the same calls whatever the marker holds, with the right password
/// too: the copy is never consulted before the limit's verdict.
#[tokio::test]
async fn ip_limited_logins_make_the_same_calls_whatever_the_marker_holds() {
    let app = TestApp::spawn_with(|c| c.rate_limits.verify_per_minute = 1).await;
    app.state.clock.freeze();
    // Each step from its own address: the limit of 1 a minute would refuse the set-up too.
    let fresh = || app.from_ip(keygate_e2e::random_loopback());
    let (copied, _) = copied_user(&fresh()).await;
    let (plain, _) = fresh().signed_up_user().await;
    let mut seen = Vec::new();
    for email in [copied, plain, unique_email()] {
        let client = fresh();
        assert_eq!(client.login(&email, WRONG).await.status, 401);
        app.dynamo_calls.reset();
        let refused = client.login(&email, PASSWORD).await;
        assert_eq!(
            (refused.status, refused.code()),
            (429, "rate_limited"),
            "{:?}",
            refused.body
        );
        seen.push(app.dynamo_calls.snapshot());
    }
    assert_eq!(seen[0], seen[1], "copy vs no copy");
    assert_eq!(seen[0], seen[2], "copy vs unknown address");
    assert_eq!(seen[0].get("TransactWriteItems"), None, "{:?}", seen[0]);
}

/// A deleted account's address registered again: no copy of the old account survives on the new marker, the old
/// password opens nothing, the new owner signs in.
#[tokio::test]
async fn a_deleted_then_reregistered_address_keeps_no_copy_of_the_old_account() {
    let app = TestApp::spawn().await;
    let (email, session) = copied_user(&app).await;
    let deleted = app
        .send(
            "DELETE",
            "/v1/auth/me",
            Some(&session.str("access_token")),
            Some(json!({ "password": PASSWORD }).to_string().into_bytes()),
        )
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert!(app.marker(&email).await.is_none(), "the marker went with the account");
    assert_eq!(app.login(&email, PASSWORD).await.code(), "invalid_credentials");
    let second = "another passphrase of the new owner";
    assert_eq!(app.register(&email, second).await.status, 202);
    let code = app.code_sent_to(&email, "verification code").await;
    assert_eq!(app.verify(&email, &code).await.status, 200);
    let marker = app.marker(&email).await.unwrap();
    assert!(!marker.contains_key("profile"), "no copy of any account: {marker:?}");
    assert_eq!(app.login(&email, PASSWORD).await.code(), "invalid_credentials");
    assert_eq!(app.login(&email, second).await.status, 200);
    assert_eq!(app.login(&email, PASSWORD).await.code(), "invalid_credentials");
}

/// A copy planted on another account's marker (copy of user A on B's address) is never used: the copy must be
/// the marker's owner's, at that address.
#[tokio::test]
async fn a_copy_of_another_account_on_a_marker_is_ignored() {
    let app = TestApp::spawn().await;
    let (attacker, _) = copied_user(&app).await;
    let (victim, _) = app.signed_up_user().await;
    let mine = app.marker(&attacker).await.unwrap();
    let mut theirs = app.marker(&victim).await.unwrap();
    theirs.insert("profile".into(), mine["profile"].clone());
    app.put_item(theirs).await;
    let refused = app.login(&victim, PASSWORD).await;
    // The attacker's password is PASSWORD too: only the victim's own account may decide, and it does (200 as
    // the victim, never as the attacker).
    assert_eq!(refused.status, 200, "{:?}", refused.body);
    assert_eq!(refused.body["user"]["email"], json!(victim), "{:?}", refused.body);
}

/// Refresh tokens with a malformed, oversized or hostile owner part are 401 `invalid_token`, never a 5xx.
#[tokio::test]
async fn malformed_and_oversized_refresh_tokens_are_401() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let token = session.str("refresh_token");
    let uid = session.user_id();
    let tenant = keygate_e2e::jwt_claims(&session.str("access_token"))["tid"]
        .as_str()
        .unwrap_or("00000000-0000-4000-8000-000000000001")
        .to_owned();
    let (sid, rest) = token.split_once('.').unwrap();
    let secret = rest.rsplit_once('.').unwrap().1;
    for bad in [
        format!("{sid}.{}.{secret}", "-".repeat(36)),
        format!("{sid}.{tenant}.{secret}"),
        format!("{sid}.{}.{secret}", uid.to_uppercase()),
        format!("{sid}.{uid}.{secret}.{uid}"),
        // Under the 16 KiB body limit, so the token itself is judged.
        format!("{sid}.{uid}{}.{secret}", "0".repeat(12_000)),
        format!("{sid}.{uid}.{}", "A".repeat(12_000)),
        format!("{}.{uid}.{secret}", "A".repeat(12_000)),
        format!("{sid}.{}.{secret}", "a".repeat(12_000)),
        format!("{sid}.{uid}.{secret}\u{0}"),
        format!("{sid}.{}.{secret}", "é".repeat(18)),
        format!("{sid}.{uid}.{secret}").replace('.', "\u{2024}"),
        format!("{sid}.{sid}.{secret}"),
    ] {
        let refused = app.refresh(&bad).await;
        assert_eq!(
            (refused.status, refused.code()),
            (401, "invalid_token"),
            "{}: {:?}",
            &bad[..bad.len().min(80)],
            refused.body
        );
    }
    assert_eq!(app.refresh(&token).await.status, 200, "nothing above ended the session");
}

/// A rotated-out token presented with a forged owner ends nothing; presented as issued (either form) it is the
/// replay that revokes the session: the forged owner is no way around reuse detection either.
#[tokio::test]
async fn a_forged_owner_does_not_get_round_reuse_detection() {
    let app = TestApp::spawn().await;
    let (_, victim) = app.signed_up_user().await;
    let (_, attacker) = app.signed_up_user().await;
    let uid = victim.user_id();
    let old = victim.str("refresh_token");
    let current = app.refresh(&old).await;
    assert_eq!(current.status, 200);
    app.state.clock.advance(3_600);
    let forged = old.replace(&uid, &attacker.user_id());
    assert_eq!(app.refresh(&forged).await.code(), "invalid_token");
    let older_form = old.replace(&format!(".{uid}."), ".");
    let replay = app.refresh(&older_form).await;
    assert_eq!(
        (replay.status, replay.code()),
        (401, "session_revoked"),
        "{:?}",
        replay.body
    );
    assert_eq!(
        app.refresh(&current.str("refresh_token")).await.code(),
        "session_revoked"
    );
    assert_eq!(
        app.refresh(&attacker.str("refresh_token")).await.status,
        200,
        "the named stranger's session is untouched"
    );
}

/// A session scoped to a database, refreshed with a forged owner: 401 `invalid_token` and no database read; with
/// its owner, 200 while the database exists and 401 `session_revoked` once it is deleted (in both forms).
#[tokio::test]
async fn a_database_scoped_session_with_a_forged_owner_is_refused() {
    let app = TestApp::spawn().await;
    let (email, session) = app.signed_up_user().await;
    let (_, stranger) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let db = app.post_as(&jwt, "/v1/databases", json!({ "name": "scoped" })).await;
    assert_eq!(db.status, 201, "{:?}", db.body);
    let db_id = db.str("id");
    let scoped = login_to(&app, &email, PASSWORD, &db_id).await;
    assert_eq!(scoped.status, 200, "{:?}", scoped.body);
    let uid = scoped.user_id();
    let token = scoped.str("refresh_token");
    let forged = token.replace(&uid, &stranger.user_id());
    app.dynamo_calls.reset();
    let refused = app.refresh(&forged).await;
    assert_eq!((refused.status, refused.code()), (401, "invalid_token"));
    let calls = app.dynamo_calls.snapshot();
    assert_eq!(
        calls.get("GetItem"),
        None,
        "no database read for a forged owner: {calls:?}"
    );
    let refreshed = app.refresh(&token).await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    let token = refreshed.str("refresh_token");
    let removed = app
        .send(
            "DELETE",
            &format!("/v1/databases/{db_id}"),
            Some(&refreshed.str("access_token")),
            None,
        )
        .await;
    assert!(removed.status < 300, "{:?}", removed.body);
    let older_form = token.replace(&format!(".{uid}."), ".");
    for presented in [&token, &older_form] {
        let refused = app.refresh(presented).await;
        assert_eq!(refused.status, 401, "{:?}", refused.body);
        assert_ne!(refused.status, 200);
    }
}

/// A session whose owner's user item is gone: 401 in both forms, never 200 or a 5xx.
#[tokio::test]
async fn a_session_whose_owner_is_gone_does_not_refresh() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_up_user().await;
    let uid = session.user_id();
    let token = session.str("refresh_token");
    app.state
        .store
        .client()
        .delete_item()
        .table_name(&app.state.config.table_name)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{uid}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("PROFILE".into()))
        .send()
        .await
        .unwrap();
    let older_form = token.replace(&format!(".{uid}."), ".");
    for presented in [&token, &older_form] {
        let refused = app.refresh(presented).await;
        assert_eq!(
            (refused.status, refused.code()),
            (401, "session_revoked"),
            "{:?}",
            refused.body
        );
    }
}

/// A copy on the marker of an account that changed address: the old address has no marker, the new one no copy;
/// neither signs in with a stale decision.
#[tokio::test]
async fn a_stale_copy_with_another_address_is_never_used() {
    let app = TestApp::spawn().await;
    let (email, session) = copied_user(&app).await;
    let id = session.user_id();
    let other = unique_email();
    // The account moves to `other` outside the API; its old marker is planted at the new address.
    let mut moved = app.marker(&email).await.unwrap();
    app.update_user(&id, "SET email = :e", &[(":e", &other)]).await;
    moved.insert(
        "pk".into(),
        aws_sdk_dynamodb::types::AttributeValue::S(format!("EMAIL#{other}")),
    );
    app.put_item(moved).await;
    app.dynamo_calls.reset();
    let answer = app.login(&other, PASSWORD).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["user"]["email"], json!(other));
    let calls = app.dynamo_calls.snapshot();
    assert_eq!(
        calls.get("GetItem"),
        Some(&2),
        "the copy of the old address is not used: {calls:?}"
    );
}

/// Re-read finding: a copy that still says two-factor authentication is on, after the owner turned it off, makes
/// the sign-in's first pass a challenge (no new-device read) and its second, on the account as it is, a session.
/// The session must still be announced when it comes from a new device.
#[tokio::test]
async fn a_copy_outdated_by_turning_two_factor_off_still_announces_a_new_device() {
    use crate::events_review::{mails_with_subject, other_network, CHROME_WINDOWS, NEW_DEVICE};
    let app = TestApp::spawn().await;
    let enrolled = crate::two_factor::enrolled(&app).await;
    let challenged = app.login(&enrolled.email, PASSWORD).await;
    assert_eq!(challenged.body["mfa_required"], json!(true), "{:?}", challenged.body);
    assert!(copied_hash(&app.marker(&enrolled.email).await.unwrap()).is_some());
    let code = crate::two_factor::next_code(&app, &enrolled.secret);
    let off = app
        .post_as(
            &enrolled.session.str("access_token"),
            "/v1/auth/2fa/disable",
            json!({ "code": code }),
        )
        .await;
    assert_eq!(off.status, 204, "{:?}", off.body);
    let before = mails_with_subject(&app, &enrolled.email, NEW_DEVICE).await.len();

    let elsewhere = app.from_ip(other_network(app.ip));
    let signed_in = elsewhere
        .send_with_agent(
            CHROME_WINDOWS,
            "POST",
            "/v1/auth/login",
            json!({ "email": enrolled.email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(signed_in.status, 200, "{:?}", signed_in.body);
    assert!(signed_in.body.get("access_token").is_some(), "{:?}", signed_in.body);
    assert_eq!(
        mails_with_subject(&app, &enrolled.email, NEW_DEVICE).await.len(),
        before + 1,
        "a sign-in from a new device is announced, whatever the copy said"
    );
}
