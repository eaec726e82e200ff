//! Account management and invitations: every role against every endpoint, who may act on whom, cross-tenant ids,
//! pagination, demotion and disabling, resumable deletion, and invitations that cannot be used to probe or
//! pre-hijack an address.

use keygate::http::ClientInfo;
use keygate::store::sessions::{self, Lifetime, Session};
use keygate::store::users;
use keygate::tenancy::accounts::{self as domain, Deletion};
use keygate_e2e::{unique_email, Answer, TestApp, PASSWORD};
use serde_json::{json, Value};

/// The token of the invitation link in an email body.
fn invitation_token(body: &str) -> Option<String> {
    let start = body.find("accept-invitation?token=")? + "accept-invitation?token=".len();
    Some(
        body[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect(),
    )
}

async fn invite(app: &TestApp, bearer: &str, email: &str, role: &str) -> Answer {
    app.post_as(
        bearer,
        "/v1/accounts/individual",
        json!({ "email": email, "role": role, "name": "Invited" }),
    )
    .await
}

/// The newest invitation link's token sent to `email`.
async fn token_sent_to(app: &TestApp, email: &str) -> String {
    for _ in 0..20 {
        let emails = app.emails_to(email).await;
        if let Some(token) = emails.iter().rev().find_map(|(_, body)| invitation_token(body)) {
            return token;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no invitation reached {email}");
}

async fn accept(app: &TestApp, token: &str) -> Answer {
    app.post(
        "/v1/auth/invitations/accept",
        json!({ "token": token, "password": PASSWORD, "name": "Accepted" }),
    )
    .await
}

/// An account of `role` in the tenant of `root`, made by invitation: (email, account id, its token response).
pub(crate) async fn member(app: &TestApp, root: &str, role: &str) -> (String, String, Answer) {
    let email = unique_email();
    let invited = invite(app, root, &email, role).await;
    assert_eq!(invited.status, 201, "{:?}", invited.body);
    let tokens = accept(app, &token_sent_to(app, &email).await).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    (email, invited.str("id"), tokens)
}

/// The id of a new account of `role` that is only invited (cheaper than [`member`]: no mail is read).
async fn invited(app: &TestApp, bearer: &str, role: &str) -> String {
    let answer = invite(app, bearer, &unique_email(), role).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.str("id")
}

fn jwt(tokens: &Answer) -> String {
    tokens.str("access_token")
}

async fn patch(app: &TestApp, bearer: &str, id: &str, body: Value) -> Answer {
    app.send(
        "PATCH",
        &format!("/v1/accounts/{id}"),
        Some(bearer),
        Some(body.to_string().into_bytes()),
    )
    .await
}

async fn delete(app: &TestApp, bearer: &str, id: &str) -> Answer {
    app.send("DELETE", &format!("/v1/accounts/{id}"), Some(bearer), None)
        .await
}

async fn get(app: &TestApp, bearer: &str, id: &str) -> Answer {
    app.get(&format!("/v1/accounts/{id}"), Some(bearer)).await
}

#[tokio::test]
async fn an_invitation_is_accepted_once_and_only_then_signs_in() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let email = unique_email();
    let invited = invite(&app, &root, &email, "manager").await;
    assert_eq!(invited.status, 201, "{:?}", invited.body);
    assert_eq!(invited.body["status"], "invited");
    assert_eq!(invited.body["role"], "manager");
    assert_eq!(invited.body["email"], email.as_str());
    let id = invited.str("id");
    let token = token_sent_to(&app, &email).await;
    assert_eq!(token.len(), 43, "256 bits");

    // Before accepting, no sign-in flow finds the account.
    assert_eq!(app.login(&email, PASSWORD).await.code(), "invalid_credentials");
    let otp = app
        .post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
        .await;
    assert_eq!(otp.status, 202);
    assert!(
        app.emails_to(&email)
            .await
            .iter()
            .all(|(subject, _)| !subject.contains("sign-in code")),
        "an invited account gets no sign-in code"
    );

    let tokens = accept(&app, &token).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(tokens.body["user"]["id"], id.as_str());
    assert_eq!(tokens.body["user"]["role"], "manager");
    assert_eq!(tokens.body["user"]["email_verified"], true);
    assert_eq!(tokens.body["user"]["name"], "Accepted");
    assert_eq!(tokens.body["user"]["tenant_id"], app.me(&root).await.body["tenant_id"]);
    let shown = get(&app, &root, &id).await;
    assert_eq!((shown.status, shown.body["status"].as_str()), (200, Some("active")));
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);

    let replayed = accept(&app, &token).await;
    assert_eq!((replayed.status, replayed.code()), (401, "invalid_token"));
    let forged = accept(&app, &keygate::secret::random_b64(32)).await;
    assert_eq!((forged.status, forged.code()), (401, "invalid_token"));
    let malformed = accept(&app, "short").await;
    assert_eq!((malformed.status, malformed.code()), (401, "invalid_token"));
}

#[tokio::test]
async fn an_invitation_expires_after_seven_days() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let email = unique_email();
    assert_eq!(invite(&app, &jwt(&root), &email, "backend").await.status, 201);
    let token = token_sent_to(&app, &email).await;
    app.state.clock.advance(7 * 86_400);
    let late = accept(&app, &token).await;
    assert_eq!((late.status, late.code()), (401, "invalid_token"));
}

#[tokio::test]
async fn known_and_unknown_addresses_get_identical_answers() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let (known, _) = app.signed_up_user().await;
    let unknown = unique_email();
    let mut answers = Vec::new();
    for email in [&known, &unknown] {
        app.dynamo_calls.reset();
        app.sqs_calls.reset();
        let answer = invite(&app, &root, email, "backend").await;
        answers.push((answer, app.dynamo_calls.snapshot(), app.sqs_calls.snapshot()));
    }
    type Snapshot = std::collections::BTreeMap<String, u64>;
    let shape = |(answer, dynamo, sqs): &(Answer, Snapshot, Snapshot)| {
        let mut body = answer.body.clone();
        for field in ["id", "email", "created_at"] {
            assert!(body[field].is_string());
            body[field] = Value::Null;
        }
        (answer.status, body, dynamo.clone(), sqs.clone())
    };
    assert_eq!(shape(&answers[0]), shape(&answers[1]));
    assert_eq!(answers[0].0.status, 201);

    // The owner of the known address is told, and gets nothing to accept.
    let mail = app.emails_to(&known).await;
    let (_, notice) = mail.iter().rev().find(|(s, _)| s.contains("invited")).unwrap();
    assert!(notice.contains("but your address already has an account"), "{notice}");
    assert!(invitation_token(notice).is_none());
    assert_eq!(
        token_sent_to(&app, &unknown).await.len(),
        43,
        "the unknown address gets the link"
    );
}

#[tokio::test]
async fn an_invitee_who_registers_on_their_own_keeps_their_own_tenant_and_the_invitation_dies() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let email = unique_email();
    let invited = invite(&app, &root, &email, "manager").await;
    let token = token_sent_to(&app, &email).await;

    assert_eq!(app.register(&email, PASSWORD).await.status, 202);
    let code = app.code_sent_to(&email, "verification code").await;
    let own = app.verify(&email, &code).await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    assert_eq!(own.body["user"]["role"], "root", "a tenant of their own");
    assert_ne!(own.body["user"]["tenant_id"], app.me(&root).await.body["tenant_id"]);

    let late = accept(&app, &token).await;
    assert_eq!((late.status, late.code()), (401, "invalid_token"));
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(
        login.body["user"]["id"], own.body["user"]["id"],
        "the address stays theirs"
    );
    assert_eq!(get(&app, &root, &invited.str("id")).await.body["status"], "invited");
}

#[tokio::test]
async fn accepting_takes_the_address_from_an_unproven_pending_registration() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let email = unique_email();
    let invited = invite(&app, &root, &email, "backend").await;
    let token = token_sent_to(&app, &email).await;

    // An attacker registers the address with a password of theirs, and never proves the mailbox.
    let attacker_password = "attacker chose this password";
    assert_eq!(app.register(&email, attacker_password).await.status, 202);

    let tokens = accept(&app, &token).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(tokens.body["user"]["id"], invited.body["id"]);
    assert_eq!(app.login(&email, attacker_password).await.code(), "invalid_credentials");
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status, 200);
    assert_eq!(login.body["user"]["id"], invited.body["id"]);
    // The pending registration's code leads nowhere now.
    let code = app.code_sent_to(&email, "verification code").await;
    assert_eq!(app.verify(&email, &code).await.status, 400);
}

#[tokio::test]
async fn inviting_an_address_someone_is_registering_leaves_the_registration_alone() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let email = unique_email();
    assert_eq!(app.register(&email, PASSWORD).await.status, 202);
    let invited = invite(&app, &root, &email, "manager").await;
    assert_eq!(invited.status, 201);
    let mail = app.emails_to(&email).await;
    assert!(
        mail.iter().all(|(_, body)| invitation_token(body).is_none()),
        "a notice, not a link"
    );

    let code = app.code_sent_to(&email, "verification code").await;
    let own = app.verify(&email, &code).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.body["user"]["role"], "root");
    assert_ne!(own.body["user"]["id"], invited.body["id"]);
}

/// Every role against every endpoint: (role, list, get, patch, invite, delete).
#[tokio::test]
async fn each_role_against_each_endpoint() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let (_, _, manager) = member(&app, &root, "manager").await;
    let (_, _, backend) = member(&app, &root, "backend").await;
    let (_, _, frontend) = member(&app, &root, "frontend").await;
    let target = invited(&app, &root, "frontend").await;
    let table = [
        ("root", root.clone(), [200, 200, 200, 201, 204]),
        ("manager", jwt(&manager), [200, 200, 200, 201, 204]),
        ("backend", jwt(&backend), [403, 403, 403, 403, 403]),
        ("frontend", jwt(&frontend), [403, 403, 403, 403, 403]),
    ];
    for (role, bearer, expected) in table {
        let victim = invited(&app, &root, "frontend").await;
        let got = [
            app.get("/v1/accounts", Some(&bearer)).await,
            get(&app, &bearer, &target).await,
            patch(&app, &bearer, &target, json!({ "name": format!("renamed by {role}") })).await,
            invite(&app, &bearer, &unique_email(), "frontend").await,
            delete(&app, &bearer, &victim).await,
        ];
        for (answer, want) in got.iter().zip(expected) {
            assert_eq!(answer.status, want, "{role}: {:?}", answer.body);
            if want == 403 {
                assert_eq!(answer.code(), "insufficient_scope");
            }
        }
    }
    // Without a token at all.
    assert_eq!(app.get("/v1/accounts", None).await.status, 401);
}

#[tokio::test]
async fn nobody_acts_on_root_or_on_a_peer() {
    let app = TestApp::spawn().await;
    let (_, root_tokens) = app.signed_up_user().await;
    let root = jwt(&root_tokens);
    let root_id = root_tokens.body["user"]["id"].as_str().unwrap().to_owned();
    let (_, _, manager) = member(&app, &root, "manager").await;
    let manager = jwt(&manager);
    let other_manager = invited(&app, &root, "manager").await;
    let backend = invited(&app, &root, "backend").await;
    let refused = [
        patch(&app, &manager, &root_id, json!({ "name": "x" })).await,
        patch(&app, &manager, &other_manager, json!({ "name": "x" })).await,
        patch(&app, &manager, &backend, json!({ "role": "manager" })).await,
        patch(&app, &root, &backend, json!({ "role": "root" })).await,
        patch(&app, &root, &root_id, json!({ "status": "disabled" })).await,
        invite(&app, &manager, &unique_email(), "manager").await,
        invite(&app, &manager, &unique_email(), "root").await,
        invite(&app, &root, &unique_email(), "root").await,
        delete(&app, &manager, &root_id).await,
        delete(&app, &root, &root_id).await,
        delete(&app, &manager, &other_manager).await,
    ];
    for answer in refused {
        assert_eq!(
            (answer.status, answer.code()),
            (403, "insufficient_scope"),
            "{:?}",
            answer.body
        );
    }
    // What the rule allows.
    let demoted = patch(&app, &root, &other_manager, json!({ "role": "backend" })).await;
    assert_eq!((demoted.status, demoted.body["role"].as_str()), (200, Some("backend")));
    assert_eq!(
        patch(&app, &manager, &other_manager, json!({ "name": "" }))
            .await
            .status,
        200
    );
    let bad = [
        patch(&app, &root, &backend, json!({ "status": "invited" })).await,
        patch(&app, &root, &backend, json!({ "role": "admin" })).await,
        invite(&app, &root, "not an address", "backend").await,
        app.get("/v1/accounts?limit=0", Some(&root)).await,
        app.get("/v1/accounts?cursor=garbage", Some(&root)).await,
    ];
    for answer in bad {
        assert_eq!(answer.status, 422, "{:?}", answer.body);
    }
    let invited = invite(&app, &root, &unique_email(), "backend").await;
    let refused = patch(&app, &root, &invited.str("id"), json!({ "status": "active" })).await;
    assert_eq!(
        refused.code(),
        "invalid_field",
        "an invitation is accepted, not switched on"
    );
}

#[tokio::test]
async fn another_tenants_accounts_are_always_404() {
    let app = TestApp::spawn().await;
    let (_, a) = app.signed_up_user().await;
    let (_, b) = app.signed_up_user().await;
    let (a, b_root_id, b) = (jwt(&a), b.body["user"]["id"].as_str().unwrap().to_owned(), jwt(&b));
    let b_backend = invited(&app, &b, "backend").await;
    for id in [&b_root_id, &b_backend, &"not-an-id".to_owned(), &users::new_user_id()] {
        assert_eq!(get(&app, &a, id).await.status, 404);
        assert_eq!(patch(&app, &a, id, json!({ "name": "x" })).await.status, 404);
        assert_eq!(delete(&app, &a, id).await.status, 404);
    }
    assert_eq!(get(&app, &b, &b_backend).await.status, 200, "still there");
    let listed = app.get("/v1/accounts", Some(&a)).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert!(!listed.body.to_string().contains(&b_backend));

    // A cursor made for tenant B is refused in tenant A.
    invited(&app, &b, "frontend").await;
    let page = app.get("/v1/accounts?limit=1", Some(&b)).await;
    let cursor = page.str("next_cursor");
    let foreign = app.get(&format!("/v1/accounts?cursor={cursor}"), Some(&a)).await;
    assert_eq!((foreign.status, foreign.code()), (422, "invalid_field"));
}

#[tokio::test]
async fn listings_page_through_every_account_once() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let mut expected = vec![app.me(&root).await.str("id")];
    for _ in 0..4 {
        expected.push(invite(&app, &root, &unique_email(), "backend").await.str("id"));
    }
    let mut seen = Vec::new();
    let mut path = "/v1/accounts?limit=2".to_owned();
    for _ in 0..10 {
        let page = app.get(&path, Some(&root)).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        for item in items {
            seen.push(item["id"].as_str().unwrap().to_owned());
            for field in ["id", "kind", "email", "role", "status", "created_at"] {
                assert!(item[field].is_string(), "{field} in {item}");
            }
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/accounts?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no account twice");
    expected.sort();
    assert_eq!(sorted, expected);
}

#[tokio::test]
async fn a_demoted_managers_pat_loses_accounts_write_at_once() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let (_, manager_id, manager) = member(&app, &root, "manager").await;
    let pat = app
        .post_as(
            &jwt(&manager),
            "/v1/api-tokens",
            json!({ "name": "ops", "scopes": ["accounts:read", "accounts:write", "profile:read"] }),
        )
        .await;
    assert_eq!(pat.status, 201, "{:?}", pat.body);
    let pat = pat.str("token");
    assert_eq!(invite(&app, &pat, &unique_email(), "backend").await.status, 201);

    assert_eq!(
        patch(&app, &root, &manager_id, json!({ "role": "backend" }))
            .await
            .status,
        200
    );
    let refused = invite(&app, &pat, &unique_email(), "frontend").await;
    assert_eq!((refused.status, refused.code()), (403, "insufficient_scope"));
    assert_eq!(app.get("/v1/accounts", Some(&pat)).await.status, 403);
    assert_eq!(app.me(&pat).await.status, 200, "the PAT keeps what the new role allows");
    assert_eq!(
        app.me(&jwt(&manager)).await.code(),
        "session_revoked",
        "its JWTs carried the old role"
    );
    assert_eq!(
        app.refresh(&manager.str("refresh_token")).await.code(),
        "session_revoked"
    );
}

#[tokio::test]
async fn a_disabled_account_can_neither_log_in_nor_refresh_until_enabled() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let (email, id, tokens) = member(&app, &root, "backend").await;
    let pat = app
        .post_as(
            &jwt(&tokens),
            "/v1/api-tokens",
            json!({ "name": "ci", "scopes": ["profile:read"] }),
        )
        .await
        .str("token");

    let disabled = patch(&app, &root, &id, json!({ "status": "disabled" })).await;
    assert_eq!(
        (disabled.status, disabled.body["status"].as_str()),
        (200, Some("disabled"))
    );
    assert_eq!(app.login(&email, PASSWORD).await.code(), "account_disabled");
    assert_eq!(
        app.refresh(&tokens.str("refresh_token")).await.code(),
        "session_revoked"
    );
    assert_eq!(app.me(&jwt(&tokens)).await.status, 401);
    assert_eq!(app.me(&pat).await.code(), "invalid_token");

    assert_eq!(patch(&app, &root, &id, json!({ "status": "active" })).await.status, 200);
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);
    assert_eq!(
        app.me(&pat).await.code(),
        "invalid_token",
        "a disable ended its PATs for good"
    );
}

/// Gives the account `id` `count` sessions (written as login does), a few rotated-out refresh tokens and a PAT.
async fn many_items(app: &TestApp, id: &str, tokens: &Answer, count: usize) {
    let user = users::get(&app.state.store, id).await.unwrap().unwrap();
    let lifetime = Lifetime::from_config(&app.state.config);
    for _ in 0..count {
        let (session, _) = Session::start(&user, &["pwd"], &ClientInfo::default(), lifetime, app.state.clock.now());
        sessions::create(&app.state.store, &session).await.unwrap();
    }
    let mut refresh = tokens.str("refresh_token");
    for _ in 0..3 {
        refresh = app.refresh(&refresh).await.str("refresh_token");
    }
    let pat = app
        .post_as(
            &jwt(tokens),
            "/v1/api-tokens",
            json!({ "name": "ci", "scopes": ["profile:read"] }),
        )
        .await;
    assert_eq!(pat.status, 201);
}

async fn everything_is_gone(app: &TestApp, id: &str, email: &str, session_id: &str) {
    assert!(users::get(&app.state.store, id).await.unwrap().is_none());
    assert!(
        app.items(&format!("EMAIL#{email}")).await.is_empty(),
        "marker and codes"
    );
    assert!(
        app.items(&format!("SESSION#{session_id}")).await.is_empty(),
        "the session and its history"
    );
    assert!(app.items(&format!("LOGINFAIL#{email}")).await.is_empty());
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    for partition in ["SESSIONS", "PATS"] {
        let left = client
            .query()
            .table_name(&app.state.config.table_name)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(
                ":p",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{id}#{partition}")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(left.count, 0, "{partition} left");
    }
}

#[tokio::test]
async fn deleting_many_items_takes_several_calls_and_ends_every_credential_at_the_first() {
    let app = TestApp::spawn_with(|config| config.account_delete_batches = 1).await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let (email, id, tokens) = member(&app, &root, "backend").await;
    many_items(&app, &id, &tokens, 60).await;
    assert_eq!(app.login(&email, "wrong password, counted").await.status, 401);

    let first = delete(&app, &root, &id).await;
    assert_eq!((first.status, first.body["status"].as_str()), (202, Some("deleting")));
    assert_eq!(app.login(&email, PASSWORD).await.status, 403, "already disabled");
    assert_eq!(app.me(&jwt(&tokens)).await.status, 401);
    let shown = get(&app, &root, &id).await;
    assert_eq!(
        (shown.body["status"].as_str(), shown.body["deleting"].as_bool()),
        (Some("disabled"), Some(true))
    );
    assert_eq!(
        patch(&app, &root, &id, json!({ "status": "active" })).await.status,
        404,
        "no way back"
    );

    let mut calls = 1;
    loop {
        let next = delete(&app, &root, &id).await;
        calls += 1;
        match next.status {
            202 => assert!(calls < 20, "no progress"),
            204 => break,
            other => panic!("{other}: {:?}", next.body),
        }
    }
    assert!(calls >= 3, "60 sessions do not fit in one batch: {calls}");
    everything_is_gone(&app, &id, &email, &tokens.str("session_id")).await;
    assert_eq!(delete(&app, &root, &id).await.status, 404);
    assert_eq!(app.login(&email, PASSWORD).await.code(), "invalid_credentials");
    // The address is free again.
    assert_eq!(app.register(&email, PASSWORD).await.status, 202);
}

#[tokio::test]
async fn a_deletion_that_stops_midway_is_continued_by_the_next_call() {
    let app = TestApp::spawn().await;
    let (_, root_tokens) = app.signed_up_user().await;
    let root = jwt(&root_tokens);
    let (email, id, tokens) = member(&app, &root, "backend").await;
    many_items(&app, &id, &tokens, 30).await;
    let caller = users::get(&app.state.store, root_tokens.body["user"]["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    // As if the function died after its first batch.
    let now = app.state.clock.now();
    assert_eq!(
        domain::delete(&app.state, &caller, &id, 1, now).await.unwrap(),
        Deletion::Ongoing
    );
    assert_eq!(app.refresh(&tokens.str("refresh_token")).await.status, 401);
    assert!(users::get(&app.state.store, &id).await.unwrap().is_some());

    assert_eq!(
        delete(&app, &root, &id).await.status,
        204,
        "the default budget finishes it"
    );
    everything_is_gone(&app, &id, &email, &tokens.str("session_id")).await;
}

#[tokio::test]
async fn invitations_are_rate_limited_per_ip_and_bad_bodies_refused() {
    let app = TestApp::spawn_with(|config| config.rate_limits.verify_per_minute = 2).await;
    app.state.clock.freeze();
    let forged = keygate::secret::random_b64(32);
    assert_eq!(accept(&app, &forged).await.status, 401);
    assert_eq!(accept(&app, &forged).await.status, 401);
    let limited = accept(&app, &forged).await;
    assert_eq!(limited.status, 429);
    assert!(limited.headers.contains_key("retry-after"));
    let malformed = app
        .send("POST", "/v1/auth/invitations/accept", None, Some(b"{not json".to_vec()))
        .await;
    assert_eq!(malformed.status, 400);
}

/// Service accounts are made by another endpoint; this test turns an invited account into one directly in the
/// table, as that endpoint will store it.
#[tokio::test]
async fn activating_a_service_account_clears_its_failed_logins() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let tenant = app.me(&root).await.str("tenant_id");
    let id = invite(&app, &root, &unique_email(), "backend").await.str("id");
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let table = &app.state.config.table_name;
    client
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("USER#{id}")))
        .key("sk", AttributeValue::S("PROFILE".into()))
        .update_expression("SET kind = :service, service_name = :name, email = :none, #status = :active")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":service", AttributeValue::S("service".into()))
        .expression_attribute_values(":name", AttributeValue::S("billing-bot".into()))
        .expression_attribute_values(":none", AttributeValue::S(String::new()))
        .expression_attribute_values(":active", AttributeValue::S("active".into()))
        .send()
        .await
        .unwrap();
    let failures = format!(
        "LOGINFAIL#{}",
        keygate::store::users::service_backoff_key(&tenant, "billing-bot")
    );
    client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(failures.clone()))
        .item("sk", AttributeValue::S("LOGINFAIL".into()))
        .item("failures", AttributeValue::N("42".into()))
        .send()
        .await
        .unwrap();
    let shown = get(&app, &root, &id).await;
    assert_eq!(shown.body["kind"], "service");
    assert_eq!(shown.body["service_name"], "billing-bot");
    assert!(shown.body.get("email").is_none());

    assert_eq!(patch(&app, &root, &id, json!({ "name": "Billing" })).await.status, 200);
    assert_eq!(app.items(&failures).await.len(), 1, "only `active` clears them");
    let cleared = patch(&app, &root, &id, json!({ "status": "active" })).await;
    assert_eq!(cleared.status, 200, "{:?}", cleared.body);
    assert!(app.items(&failures).await.is_empty());

    client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(failures.clone()))
        .item("sk", AttributeValue::S("LOGINFAIL".into()))
        .item("failures", AttributeValue::N("3".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(delete(&app, &root, &id).await.status, 204);
    assert!(app.items(&failures).await.is_empty(), "deleted with the account");
    assert_eq!(get(&app, &root, &id).await.status, 404);
}

/// Found by the attacker review: a tenant inviting an address that has an account elsewhere, then deleting the
/// invited account, must not touch that account's codes or login backoff.
#[tokio::test]
async fn deleting_an_invitation_of_another_tenants_address_leaves_that_account_alone() {
    let app = TestApp::spawn().await;
    let (victim, _) = app.signed_up_user().await;
    // The victim's account has failed logins and a pending sign-in code.
    for _ in 0..3 {
        assert_eq!(app.login(&victim, "not the password at all").await.status, 401);
    }
    app.post("/v1/auth/otp/send", json!({ "email": victim, "purpose": "login" }))
        .await;
    let code = app.code_sent_to(&victim, "sign-in code").await;

    let (_, attacker) = app.signed_up_user().await;
    let answer = invite(&app, &jwt(&attacker), &victim, "backend").await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let deleted = delete(&app, &jwt(&attacker), &answer.str("id")).await;
    assert!(matches!(deleted.status, 202 | 204), "{:?}", deleted.body);
    while delete(&app, &jwt(&attacker), &answer.str("id")).await.status == 202 {}

    let failures = app.items(&format!("LOGINFAIL#{victim}")).await;
    assert_eq!(failures.len(), 1, "the victim's backoff record survives");
    assert_eq!(failures[0]["failures"].as_n().unwrap(), "3");
    let login = app
        .post("/v1/auth/otp/login", json!({ "email": victim, "code": code }))
        .await;
    assert_eq!(
        login.status, 200,
        "the victim's pending code survives: {:?}",
        login.body
    );
}
