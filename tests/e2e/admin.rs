//! Issue 13, part 1 and the machine tokens of part 2: admin operations for back-office services, self-service
//! deletion, and PATs that root and managers mint for service accounts.

use aws_sdk_dynamodb::types::AttributeValue;
use keygate::http::ClientInfo;
use keygate::store::sessions::{self, Lifetime, Session};
use keygate::store::users;
use keygate_e2e::{unique, Answer, TestApp, PASSWORD};
use serde_json::{json, Value};

use crate::accounts::member;

const NEW_PASSWORD: &str = "a brand new passphrase 42";

fn jwt(tokens: &Answer) -> String {
    tokens.str("access_token")
}

async fn send(app: &TestApp, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
    app.send(method, path, token, body.map(|b| b.to_string().into_bytes()))
        .await
}

/// A tenant: its root's tokens, and a manager service account's JWT (a back-office service).
struct Tenant {
    root: Answer,
    service: String,
}

impl Tenant {
    async fn new(app: &TestApp) -> Self {
        let (_, root) = app.signed_up_user().await;
        let service = service_jwt(app, &root, &unique("ops-"), "manager").await;
        Self { root, service }
    }

    fn root_jwt(&self) -> String {
        jwt(&self.root)
    }

    fn tenant_id(&self) -> String {
        keygate_e2e::jwt_claims(&self.root_jwt())["tenant"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Creates a service account of `role` in root's tenant and signs it in: its JWT.
async fn service_jwt(app: &TestApp, root: &Answer, name: &str, role: &str) -> String {
    let tenant = keygate_e2e::jwt_claims(&jwt(root))["tenant"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = app
        .post_as(
            &jwt(root),
            "/v1/accounts/service",
            json!({ "service_name": name, "password": PASSWORD, "role": role }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let tokens = app
        .post(
            "/v1/auth/login/service",
            json!({ "service_name": name, "password": PASSWORD, "tenant_id": tenant }),
        )
        .await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    jwt(&tokens)
}

async fn set_password(app: &TestApp, bearer: &str, user_id: &str, password: &str) -> Answer {
    app.post_as(
        bearer,
        "/v1/auth/admin/set-password",
        json!({ "user_id": user_id, "new_password": password }),
    )
    .await
}

async fn reset(app: &TestApp, bearer: &str, user_id: &str) -> Answer {
    send(
        app,
        "POST",
        &format!("/v1/auth/admin/users/{user_id}/reset-second-factors"),
        Some(bearer),
        None,
    )
    .await
}

async fn delete_user(app: &TestApp, bearer: &str, user_id: &str) -> Answer {
    send(app, "DELETE", &format!("/v1/auth/users/{user_id}"), Some(bearer), None).await
}

async fn events_of(app: &TestApp, user_id: &str) -> Vec<String> {
    app.items(&format!("EVENTS#{user_id}"))
        .await
        .iter()
        .map(|item| item["type"].as_s().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn only_back_office_services_with_admin_users_reach_the_admin_endpoints() {
    let app = TestApp::spawn().await;
    let tenant = Tenant::new(&app).await;
    let (_, target, _) = member(&app, &tenant.root_jwt(), "backend").await;
    let (_, _, manager) = member(&app, &tenant.root_jwt(), "manager").await;
    let backend_service = service_jwt(&app, &tenant.root, &unique("worker-"), "backend").await;
    let root_pat = app
        .post_as(
            &tenant.root_jwt(),
            "/v1/api-tokens",
            json!({ "name": "back office", "scopes": ["admin:users"] }),
        )
        .await
        .str("token");
    let narrow_pat = app
        .post_as(
            &tenant.root_jwt(),
            "/v1/api-tokens",
            json!({ "name": "narrow", "scopes": ["accounts:write"] }),
        )
        .await
        .str("token");

    // People's own sessions are refused even when their role has admin:users.
    for person in [tenant.root_jwt(), jwt(&manager)] {
        let refused = set_password(&app, &person, &target, NEW_PASSWORD).await;
        assert_eq!((refused.status, refused.code()), (403, "insufficient_scope"));
        assert_eq!(reset(&app, &person, &target).await.status, 403);
        assert_eq!(delete_user(&app, &person, &target).await.status, 403);
    }
    for lacking in [&backend_service, &narrow_pat] {
        assert_eq!(set_password(&app, lacking, &target, NEW_PASSWORD).await.status, 403);
    }
    let anonymous = send(&app, "POST", "/v1/auth/admin/set-password", None, Some(json!({}))).await;
    assert_eq!(anonymous.status, 400, "the body is checked first: {:?}", anonymous.body);
    let anonymous = send(
        &app,
        "POST",
        "/v1/auth/admin/set-password",
        None,
        Some(json!({ "user_id": target, "new_password": NEW_PASSWORD })),
    )
    .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        set_password(&app, "kg_forged.token", &target, NEW_PASSWORD)
            .await
            .status,
        401
    );

    assert_eq!(set_password(&app, &root_pat, &target, NEW_PASSWORD).await.status, 204);
    assert_eq!(set_password(&app, &tenant.service, &target, PASSWORD).await.status, 204);
}

#[tokio::test]
async fn set_password_ends_every_credential_of_the_target_and_tells_them() {
    let app = TestApp::spawn().await;
    let tenant = Tenant::new(&app).await;
    let (email, target, tokens) = member(&app, &tenant.root_jwt(), "backend").await;
    let pat = app
        .post_as(
            &jwt(&tokens),
            "/v1/api-tokens",
            json!({ "name": "ci", "scopes": ["profile:read"] }),
        )
        .await
        .str("token");
    assert_eq!(app.me(&pat).await.status, 200);

    for (weak, code) in [("short", "weak_password"), ("password", "weak_password")] {
        let refused = set_password(&app, &tenant.service, &target, weak).await;
        assert_eq!((refused.status, refused.code()), (422, code), "{weak}");
    }
    assert_eq!(
        app.me(&jwt(&tokens)).await.status,
        200,
        "a refused request changes nothing"
    );

    assert_eq!(
        set_password(&app, &tenant.service, &target, NEW_PASSWORD).await.status,
        204
    );
    assert_eq!(app.me(&jwt(&tokens)).await.status, 401, "sessions end at once");
    assert_eq!(app.me(&pat).await.status, 401, "PATs too");
    assert_eq!(app.refresh(&tokens.str("refresh_token")).await.status, 401);
    assert_eq!(app.login(&email, PASSWORD).await.status, 401);
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status, 200);
    let subjects: Vec<String> = app.emails_to(&email).await.into_iter().map(|(s, _)| s).collect();
    assert!(
        subjects.iter().any(|s| s == "An administrator set your password"),
        "{subjects:?}"
    );

    let events = app.items(&format!("EVENTS#{target}")).await;
    let event = events
        .iter()
        .find(|e| e["type"].as_s().unwrap() == "password_set_by_admin")
        .expect("the admin event");
    let service_id = keygate_e2e::jwt_claims(&tenant.service)["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(event["actor_id"].as_s().unwrap(), &service_id);
    assert_eq!(event["tenant_id"].as_s().unwrap(), &tenant.tenant_id());
    assert!(event.contains_key("ip") && event.contains_key("expires_at"));
    assert!(
        !event.values().any(|v| v.as_s().is_ok_and(|s| s.contains(NEW_PASSWORD))),
        "no secret in an event"
    );
}

#[tokio::test]
async fn nobody_acts_on_root_or_a_peer_and_other_tenants_ids_are_404() {
    let app = TestApp::spawn().await;
    let tenant = Tenant::new(&app).await;
    let other = Tenant::new(&app).await;
    let root_id = tenant.root.body["user"]["id"].as_str().unwrap().to_owned();
    let (_, peer, _) = member(&app, &tenant.root_jwt(), "manager").await;
    let (_, stranger, stranger_tokens) = member(&app, &other.root_jwt(), "backend").await;

    for target in [&root_id, &peer] {
        assert_eq!(
            set_password(&app, &tenant.service, target, NEW_PASSWORD).await.status,
            403
        );
        assert_eq!(reset(&app, &tenant.service, target).await.status, 403);
        assert_eq!(delete_user(&app, &tenant.service, target).await.status, 403);
    }
    let missing = users::new_user_id();
    for target in [stranger.as_str(), missing.as_str(), "not-an-id", "%2e%2e"] {
        let refused = set_password(&app, &tenant.service, target, NEW_PASSWORD).await;
        assert_eq!((refused.status, refused.code()), (404, "not_found"), "{target}");
        assert_eq!(reset(&app, &tenant.service, target).await.status, 404, "{target}");
        assert_eq!(delete_user(&app, &tenant.service, target).await.status, 404, "{target}");
    }
    assert_eq!(
        app.me(&jwt(&stranger_tokens)).await.status,
        200,
        "the stranger is untouched"
    );
}

#[tokio::test]
async fn an_account_provisioned_by_an_identity_provider_keeps_its_password_there() {
    let app = TestApp::spawn().await;
    let tenant = Tenant::new(&app).await;
    let (email, target, _) = member(&app, &tenant.root_jwt(), "backend").await;
    app.update_user(&target, "SET idp = :idp", &[(":idp", "contoso-entra")])
        .await;
    let refused = set_password(&app, &tenant.service, &target, NEW_PASSWORD).await;
    assert_eq!((refused.status, refused.code()), (409, "password_managed_externally"));
    assert_eq!(
        app.login(&email, PASSWORD).await.status,
        200,
        "the password did not change"
    );
}

#[tokio::test]
async fn resetting_second_factors_removes_totp_backup_codes_and_passkeys() {
    let app = TestApp::spawn().await;
    let tenant = Tenant::new(&app).await;
    let enrolled = crate::two_factor::enrolled(&app).await;
    let (_key, registered) = crate::passkeys::register(&app, &enrolled.jwt(), Some("Phone")).await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    let target = enrolled.id();
    // The enrolled user joins the tenant as a backend (as an accepted invitation would place it).
    app.update_user(
        &target,
        "SET tenant_id = :tenant, #role = :role",
        &[(":tenant", &tenant.tenant_id()), (":role", "backend")],
    )
    .await;
    let challenged = app.login(&enrolled.email, PASSWORD).await;
    assert_eq!(challenged.body["mfa_required"], true);

    assert_eq!(reset(&app, &tenant.service, &target).await.status, 204);
    assert_eq!(app.me(&enrolled.jwt()).await.status, 401, "sessions end");
    let signed_in = app.login(&enrolled.email, PASSWORD).await;
    assert_eq!(signed_in.status, 200);
    assert!(
        signed_in.body.get("access_token").is_some(),
        "no challenge: {:?}",
        signed_in.body
    );
    let status = app.get("/v1/auth/2fa/status", Some(&jwt(&signed_in))).await;
    assert_eq!(status.body["enabled"], false, "{:?}", status.body);
    let passkeys = app.get("/v1/auth/passkey/list", Some(&jwt(&signed_in))).await;
    assert_eq!(
        passkeys.body["passkeys"].as_array().map(Vec::len),
        Some(0),
        "{:?}",
        passkeys.body
    );
    let left: Vec<_> = app
        .items(&format!("USER#{target}"))
        .await
        .into_iter()
        .map(|item| item["sk"].as_s().unwrap().clone())
        .collect();
    assert_eq!(left, ["PROFILE"], "no factor, backup code or passkey left");
    let subjects: Vec<String> = app
        .emails_to(&enrolled.email)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert!(
        subjects.iter().any(|s| s == "Your second factors were removed"),
        "{subjects:?}"
    );
    assert!(events_of(&app, &target)
        .await
        .contains(&"second_factors_reset".to_owned()));
}

/// Every item of the table that names `id` in any string attribute.
async fn items_naming(app: &TestApp, id: &str) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let client = app.state.store.client();
    let mut found = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(&app.state.config.table_name)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items.unwrap_or_default() {
            if item.values().any(|v| v.as_s().is_ok_and(|s| s.contains(id))) {
                found.push(item);
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return found;
        }
    }
}

#[tokio::test]
async fn deleting_a_user_with_300_sessions_and_50_pats_leaves_only_its_deletion_event() {
    let app = TestApp::spawn_with(|config| {
        config.account_delete_batches = 4;
        config.scoped_token_resources = vec!["company".into()];
        config.scoped_token_scopes = vec!["db:read".into()];
    })
    .await;
    let tenant = Tenant::new(&app).await;
    let (email, target, tokens) = member(&app, &tenant.root_jwt(), "backend").await;
    let user = users::get(&app.state.store, &target).await.unwrap().unwrap();
    let lifetime = Lifetime::from_config(&app.state.config);
    for _ in 0..300 {
        let (session, _) = Session::start(&user, &["pwd"], &ClientInfo::default(), lifetime, app.state.clock.now());
        sessions::create(&app.state.store, &session).await.unwrap();
    }
    for n in 0..50 {
        let pat = app
            .post_as(
                &jwt(&tokens),
                "/v1/api-tokens",
                json!({ "name": format!("pat {n}"), "scopes": ["profile:read"] }),
            )
            .await;
        assert_eq!(pat.status, 201);
    }
    for n in 0..3 {
        let scoped = app
            .post_as(
                &jwt(&tokens),
                "/v1/scoped-tokens",
                json!({ "resource": format!("company:c{n}"), "scopes": ["db:read"] }),
            )
            .await;
        assert_eq!(scoped.status, 201, "{:?}", scoped.body);
    }
    assert_eq!(
        set_password(&app, &tenant.service, &target, NEW_PASSWORD).await.status,
        204
    );
    assert!(items_naming(&app, &target).await.len() > 350);

    let first = delete_user(&app, &tenant.service, &target).await;
    assert_eq!(
        (first.status, first.body["status"].as_str()),
        (202, Some("deleting")),
        "interrupted"
    );
    assert_eq!(
        app.login(&email, NEW_PASSWORD).await.status,
        403,
        "disabled at the first call"
    );
    let mut calls = 1;
    loop {
        let next = delete_user(&app, &tenant.service, &target).await;
        calls += 1;
        if next.status == 204 {
            break;
        }
        assert_eq!(next.status, 202, "{:?}", next.body);
        assert!(calls < 20);
    }
    assert!(calls > 2, "a budget of 4 batches needs several calls");
    let left = items_naming(&app, &target).await;
    assert_eq!(left.len(), 1, "only the deletion event: {left:?}");
    let event = &left[0];
    assert_eq!(event["type"].as_s().unwrap(), "account_deleted");
    assert!(!event.contains_key("ip") && !event.contains_key("user_agent"));
    assert!(!event.values().any(|v| v.as_s().is_ok_and(|s| s.contains(&email))));
    assert_eq!(delete_user(&app, &tenant.service, &target).await.status, 404, "gone");
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status, 401);
}

async fn delete_me(app: &TestApp, bearer: &str, body: Option<Value>) -> Answer {
    send(app, "DELETE", "/v1/auth/me", Some(bearer), body).await
}

#[tokio::test]
async fn deleting_oneself_needs_the_password_and_the_last_root_takes_the_tenant_along() {
    let app = TestApp::spawn().await;
    let (email, tokens) = app.signed_up_user().await;
    let tenant_id = keygate_e2e::jwt_claims(&jwt(&tokens))["tenant"]
        .as_str()
        .unwrap()
        .to_owned();
    let database = app
        .post_as(&jwt(&tokens), "/v1/databases", json!({ "name": "main" }))
        .await;
    assert_eq!(database.status, 201, "{:?}", database.body);

    let wrong = delete_me(&app, &jwt(&tokens), Some(json!({ "password": "not my password" }))).await;
    assert_eq!((wrong.status, wrong.code()), (403, "invalid_current_password"));
    let missing = delete_me(&app, &jwt(&tokens), None).await;
    assert_eq!(missing.status, 400);
    let malformed = app
        .send(
            "DELETE",
            "/v1/auth/me",
            Some(&jwt(&tokens)),
            Some(b"{\"password\":".to_vec()),
        )
        .await;
    assert_eq!(malformed.status, 400);
    let pat = app
        .post_as(
            &jwt(&tokens),
            "/v1/api-tokens",
            json!({ "name": "ci", "scopes": ["profile:read", "sessions:write"] }),
        )
        .await
        .str("token");
    assert_eq!(
        delete_me(&app, &pat, Some(json!({ "password": PASSWORD })))
            .await
            .status,
        403,
        "a PAT cannot delete its owner"
    );

    assert_eq!(
        delete_me(&app, &jwt(&tokens), Some(json!({ "password": PASSWORD })))
            .await
            .status,
        204
    );
    assert_eq!(app.login(&email, PASSWORD).await.status, 401);
    assert_eq!(app.me(&pat).await.status, 401);
    assert!(
        app.items(&format!("TENANT#{tenant_id}")).await.is_empty(),
        "the tenant went along"
    );
    let database_id = database.str("id");
    assert!(
        app.items(&format!("DATABASE#{database_id}")).await.is_empty(),
        "and its databases"
    );
    assert_eq!(
        items_naming(&app, &tenant_id).await.len(),
        1,
        "only the deletion event names the tenant"
    );
    let subjects: Vec<String> = app.emails_to(&email).await.into_iter().map(|(s, _)| s).collect();
    assert!(subjects.iter().any(|s| s == "Your account was deleted"), "{subjects:?}");
    // The address is free again.
    assert_eq!(app.register(&email, PASSWORD).await.status, 202);
}

#[tokio::test]
async fn root_with_other_accounts_must_transfer_first_and_members_delete_themselves() {
    let app = TestApp::spawn().await;
    let tenant = Tenant::new(&app).await;
    let refused = delete_me(&app, &tenant.root_jwt(), Some(json!({ "password": PASSWORD }))).await;
    assert_eq!((refused.status, refused.code()), (409, "transfer_root_first"));
    assert_eq!(app.me(&tenant.root_jwt()).await.status, 200, "nothing happened");

    let (email, id, tokens) = member(&app, &tenant.root_jwt(), "backend").await;
    assert_eq!(
        delete_me(&app, &jwt(&tokens), Some(json!({ "password": PASSWORD })))
            .await
            .status,
        204
    );
    assert_eq!(app.login(&email, PASSWORD).await.status, 401);
    assert_eq!(events_of(&app, &id).await, ["account_deleted"]);
    assert_eq!(app.me(&tenant.root_jwt()).await.status, 200, "the tenant stays");
}

#[tokio::test]
async fn an_account_without_a_password_deletes_itself_only_from_a_fresh_sign_in() {
    let app = TestApp::spawn().await;
    app.state.clock.freeze();
    let (email, tokens) = app.signed_up_user().await;
    let user_id = tokens.body["user"]["id"].as_str().unwrap().to_owned();
    app.update_user(&user_id, "REMOVE password_hash", &[]).await;
    app.state.clock.advance(301);
    let stale = delete_me(&app, &jwt(&tokens), None).await;
    assert_eq!((stale.status, stale.code()), (403, "reauthentication_required"));
    let code_sent = app
        .post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
        .await;
    assert_eq!(code_sent.status, 202);
    let code = app.code_sent_to(&email, "sign-in code").await;
    let fresh = app
        .post("/v1/auth/otp/login", json!({ "email": email, "code": code }))
        .await;
    assert_eq!(fresh.status, 200, "{:?}", fresh.body);
    assert_eq!(delete_me(&app, &jwt(&fresh), None).await.status, 204);
}

async fn mint(app: &TestApp, bearer: &str, account: &str, body: Value) -> Answer {
    app.post_as(bearer, &format!("/v1/accounts/{account}/api-tokens"), body)
        .await
}

async fn service_id(app: &TestApp, root: &str, role: &str) -> String {
    let created = app
        .post_as(
            root,
            "/v1/accounts/service",
            json!({ "service_name": unique("svc-"), "password": PASSWORD, "role": role }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.str("id")
}

#[tokio::test]
async fn root_and_managers_mint_list_and_revoke_a_service_accounts_pats() {
    let app = TestApp::spawn().await;
    let tenant = Tenant::new(&app).await;
    let other = Tenant::new(&app).await;
    let root = tenant.root_jwt();
    let worker = service_id(&app, &root, "backend").await;
    let frontend = service_id(&app, &root, "frontend").await;
    let (_, person, person_tokens) = member(&app, &root, "backend").await;

    let minted = mint(
        &app,
        &root,
        &worker,
        json!({ "name": "etl", "scopes": ["db:read", "db:write"] }),
    )
    .await;
    assert_eq!(minted.status, 201, "{:?}", minted.body);
    let token = minted.str("token");
    assert!(minted.body["expires_at"].is_string(), "90 days by default");
    let listed = app.get(&format!("/v1/accounts/{worker}/api-tokens"), Some(&root)).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["tokens"][0]["id"], minted.body["id"]);
    assert!(
        !listed.raw.windows(token.len()).any(|w| w == token.as_bytes()),
        "no secret listed"
    );
    let used = app.get("/v1/databases", Some(&token)).await;
    assert_eq!(used.status, 403, "db scopes only, no databases:read: {:?}", used.body);
    assert_eq!(app.me(&token).await.status, 403, "no profile:read");
    let whoami = app.get("/v1/api-tokens", Some(&token)).await;
    assert_eq!(whoami.status, 403);

    // The scopes: within the account's role and the caller's credential.
    let beyond = mint(
        &app,
        &root,
        &worker,
        json!({ "name": "x", "scopes": ["accounts:write"] }),
    )
    .await;
    assert_eq!((beyond.status, beyond.code()), (403, "insufficient_scope"));
    let unknown = mint(&app, &root, &worker, json!({ "name": "x", "scopes": ["nope:nope"] })).await;
    assert_eq!(unknown.status, 422);
    // Only service accounts, never a frontend one.
    for (account, why) in [(&person, "an individual"), (&frontend, "a frontend account")] {
        let refused = mint(&app, &root, account, json!({ "name": "x", "scopes": ["db:read"] })).await;
        assert_eq!((refused.status, refused.code()), (422, "invalid_field"), "{why}");
    }
    // A permanent token needs the deployment's consent.
    let permanent = mint(
        &app,
        &root,
        &worker,
        json!({ "name": "x", "scopes": ["db:read"], "expires_in_days": null }),
    )
    .await;
    assert_eq!((permanent.status, permanent.code()), (422, "invalid_field"));
    for days in [json!(0), json!(366), json!("30"), json!(1.5)] {
        let refused = mint(
            &app,
            &root,
            &worker,
            json!({ "name": "x", "scopes": ["db:read"], "expires_in_days": days }),
        )
        .await;
        assert!(matches!(refused.status, 400 | 422), "{days}: {:?}", refused.body);
    }
    // Who may: a manager's service account yes, a backend person no; another tenant's root sees 404.
    let by_manager = mint(
        &app,
        &tenant.service,
        &worker,
        json!({ "name": "m", "scopes": ["db:read"] }),
    )
    .await;
    assert_eq!(by_manager.status, 201, "{:?}", by_manager.body);
    let by_person = mint(
        &app,
        &jwt(&person_tokens),
        &worker,
        json!({ "name": "p", "scopes": ["db:read"] }),
    )
    .await;
    assert_eq!(by_person.status, 403);
    let foreign = mint(
        &app,
        &other.root_jwt(),
        &worker,
        json!({ "name": "f", "scopes": ["db:read"] }),
    )
    .await;
    assert_eq!(foreign.status, 404);
    assert_eq!(
        app.get(&format!("/v1/accounts/{worker}/api-tokens"), Some(&other.root_jwt()))
            .await
            .status,
        404
    );
    let id = minted.str("id");
    let path = format!("/v1/accounts/{worker}/api-tokens/{id}");
    assert_eq!(
        send(&app, "DELETE", &path, Some(&other.root_jwt()), None).await.status,
        404
    );
    let other_worker = service_id(&app, &root, "backend").await;
    let crossed = format!("/v1/accounts/{other_worker}/api-tokens/{id}");
    assert_eq!(
        send(&app, "DELETE", &crossed, Some(&root), None).await.status,
        404,
        "another account's token"
    );
    assert_eq!(
        app.get("/v1/auth/sessions", Some(&token)).await.status,
        403,
        "still alive, still narrow"
    );

    assert_eq!(send(&app, "DELETE", &path, Some(&root), None).await.status, 204);
    assert_eq!(
        app.get("/v1/auth/sessions", Some(&token)).await.status,
        401,
        "revoked at once"
    );
    assert_eq!(send(&app, "DELETE", &path, Some(&root), None).await.status, 404, "once");
    let events = events_of(&app, &worker).await;
    assert!(events.contains(&"api_token_created".to_owned()) && events.contains(&"api_token_deleted".to_owned()));
}

#[tokio::test]
async fn permanent_machine_tokens_exist_only_for_service_accounts_where_allowed() {
    let app = TestApp::spawn_with(|config| config.m2m_permanent_tokens = true).await;
    let tenant = Tenant::new(&app).await;
    let root = tenant.root_jwt();
    let worker = service_id(&app, &root, "backend").await;
    let permanent = mint(
        &app,
        &root,
        &worker,
        json!({ "name": "forever", "scopes": ["db:read"], "expires_in_days": null }),
    )
    .await;
    assert_eq!(permanent.status, 201, "{:?}", permanent.body);
    assert!(permanent.body["expires_at"].is_null());
    let stored = app.items(&format!("PAT#{}", permanent.str("id"))).await;
    assert!(!stored[0].contains_key("expires_at"), "no TTL on a permanent token");
    app.state.clock.advance(3 * 365 * 86_400);
    let listed = app
        .get(
            &format!("/v1/accounts/{worker}/api-tokens"),
            Some(&permanent.str("token")),
        )
        .await;
    assert_eq!(listed.status, 403, "still valid years later, and still narrow");

    // A person's own token is never permanent, whatever the deployment says.
    let (_, person) = app.signed_up_user().await;
    let own = app
        .post_as(
            &jwt(&person),
            "/v1/api-tokens",
            json!({ "name": "x", "scopes": ["profile:read"], "expires_in_days": null }),
        )
        .await;
    assert_eq!((own.status, own.code()), (422, "invalid_field"));
    let absent = app
        .post_as(
            &jwt(&person),
            "/v1/api-tokens",
            json!({ "name": "x", "scopes": ["profile:read"] }),
        )
        .await;
    assert_eq!(absent.status, 201, "absent still means 90 days");
    assert!(absent.body["expires_at"].is_string());
}

#[tokio::test]
async fn a_pats_previous_secret_never_makes_a_credential() {
    let app = TestApp::spawn().await;
    let tenant = Tenant::new(&app).await;
    let root = tenant.root_jwt();
    let (_, target, _) = member(&app, &root, "backend").await;
    let worker = service_id(&app, &root, "backend").await;
    let created = app
        .post_as(
            &root,
            "/v1/api-tokens",
            json!({ "name": "back office", "scopes": ["admin:users", "accounts:write", "tokens:write", "accounts:read"] }),
        )
        .await;
    let leaked = created.str("token");
    let rotated = app
        .post_as(
            &root,
            &format!("/v1/api-tokens/{}/rotate", created.str("id")),
            json!({ "grace_period_seconds": 3600 }),
        )
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    assert_eq!(
        app.get("/v1/accounts", Some(&leaked)).await.status,
        200,
        "still in its grace period"
    );
    let refused = set_password(&app, &leaked, &target, NEW_PASSWORD).await;
    assert_eq!((refused.status, refused.code()), (403, "insufficient_scope"));
    assert_eq!(reset(&app, &leaked, &target).await.status, 403);
    let minted = mint(&app, &leaked, &worker, json!({ "name": "x", "scopes": ["db:read"] })).await;
    assert_eq!(minted.status, 403);
    let fresh = rotated.str("token");
    assert_eq!(
        set_password(&app, &fresh, &target, NEW_PASSWORD).await.status,
        204,
        "the current secret may"
    );
}

#[tokio::test]
async fn minting_needs_tokens_write_and_a_frontend_owner_holds_no_working_pat() {
    let app = TestApp::spawn().await;
    let tenant = Tenant::new(&app).await;
    let root = tenant.root_jwt();
    let worker = service_id(&app, &root, "backend").await;
    let narrow = app
        .post_as(
            &root,
            "/v1/api-tokens",
            json!({ "name": "n", "scopes": ["accounts:write"] }),
        )
        .await
        .str("token");
    let refused = mint(
        &app,
        &narrow,
        &worker,
        json!({ "name": "x", "scopes": ["profile:read"] }),
    )
    .await;
    assert_eq!((refused.status, refused.code()), (403, "insufficient_scope"));

    let minted = mint(
        &app,
        &root,
        &worker,
        json!({ "name": "etl", "scopes": ["profile:read"] }),
    )
    .await;
    assert_eq!(minted.status, 201, "{:?}", minted.body);
    let token = minted.str("token");
    let root_id = tenant.root.body["user"]["id"].as_str().unwrap().to_owned();
    let listed = app.get(&format!("/v1/accounts/{worker}/api-tokens"), Some(&root)).await;
    assert_eq!(listed.body["tokens"][0]["created_by"], root_id.as_str());
    let event = app
        .items(&format!("EVENTS#{worker}"))
        .await
        .into_iter()
        .find(|e| e["type"].as_s().unwrap() == "api_token_created")
        .unwrap();
    let details = event["details"].as_m().unwrap();
    assert_eq!(details["token_id"].as_s().unwrap(), &minted.str("id"));
    assert_eq!(details["permanent"].as_s().unwrap(), "false");
    assert_eq!(app.me(&token).await.status, 200);

    let demoted = send(
        &app,
        "PATCH",
        &format!("/v1/accounts/{worker}"),
        Some(&root),
        Some(json!({ "role": "frontend" })),
    )
    .await;
    assert_eq!(demoted.status, 200, "{:?}", demoted.body);
    assert_eq!(
        app.me(&token).await.status,
        401,
        "a frontend account's PAT speaks for nobody"
    );
    let listed = app.get(&format!("/v1/accounts/{worker}/api-tokens"), Some(&root)).await;
    assert_eq!(listed.status, 200, "its manager still sees it ...");
    let path = format!("/v1/accounts/{worker}/api-tokens/{}", minted.str("id"));
    assert_eq!(
        send(&app, "DELETE", &path, Some(&root), None).await.status,
        204,
        "... and revokes it"
    );
}

#[tokio::test]
async fn an_invited_account_gets_its_password_from_its_invitation_only() {
    let app = TestApp::spawn().await;
    let tenant = Tenant::new(&app).await;
    let invited = app
        .post_as(
            &tenant.root_jwt(),
            "/v1/accounts/individual",
            json!({ "email": keygate_e2e::unique_email(), "role": "backend" }),
        )
        .await;
    assert_eq!(invited.status, 201, "{:?}", invited.body);
    let refused = set_password(&app, &tenant.service, &invited.str("id"), NEW_PASSWORD).await;
    assert_eq!((refused.status, refused.code()), (422, "invalid_field"));
    assert_eq!(reset(&app, &tenant.service, &invited.str("id")).await.status, 422);
}
