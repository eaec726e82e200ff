//! Issue 10: tenants, roles and databases, over HTTP. Accounts of other roles are placed in a tenant by writing
//! their user item directly, as the accounts endpoints (another issue's work) will.

use keygate_e2e::jwt_claims as claims;
use keygate_e2e::{authorizer_event, unique, unique_email, Answer, TestApp, PASSWORD};
use serde_json::{json, Value};

/// An account signed in: its address and its latest token response.
pub(crate) struct Account {
    pub(crate) email: String,
    pub(crate) tokens: Answer,
}

impl Account {
    pub(crate) fn jwt(&self) -> String {
        self.tokens.str("access_token")
    }

    pub(crate) fn id(&self) -> String {
        self.tokens.body["user"]["id"].as_str().unwrap().to_owned()
    }

    pub(crate) fn tenant(&self) -> String {
        claims(&self.jwt())["tenant"].as_str().unwrap().to_owned()
    }
}

/// Registers with `tenant_name`, verifies: the root of a new tenant.
pub(crate) async fn register_root(app: &TestApp, tenant_name: &str) -> Account {
    let email = unique_email();
    let registered = app
        .post(
            "/v1/auth/register",
            json!({ "email": email, "password": PASSWORD, "name": "Test User", "tenant_name": tenant_name }),
        )
        .await;
    assert_eq!(registered.status, 202);
    let code = app.code_sent_to(&email, "verification code").await;
    let tokens = app.verify(&email, &code).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    Account { email, tokens }
}

/// A new account placed in `root`'s tenant with `role`, signed in again so its tokens carry the role.
pub(crate) async fn member(app: &TestApp, root: &Account, role: &str) -> Account {
    let (email, first) = app.signed_up_user().await;
    let id = first.body["user"]["id"].as_str().unwrap().to_owned();
    app.update_user(
        &id,
        "SET tenant_id = :tenant, #role = :role",
        &[(":tenant", &root.tenant()), (":role", role)],
    )
    .await;
    let tokens = app.login(&email, PASSWORD).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(claims(&tokens.str("access_token"))["role"], role);
    Account { email, tokens }
}

async fn create_database(app: &TestApp, jwt: &str, name: &str) -> Answer {
    app.post_as(jwt, "/v1/databases", json!({ "name": name })).await
}

async fn send_json(app: &TestApp, method: &str, path: &str, token: &str, body: Value) -> Answer {
    app.send(method, path, Some(token), Some(body.to_string().into_bytes()))
        .await
}

#[tokio::test]
async fn a_verified_registration_creates_its_tenant_with_the_registrant_as_root() {
    let app = TestApp::spawn().await;
    let name = unique("Contoso ");
    let root = register_root(&app, &name).await;
    let jwt = root.jwt();
    let claimed = claims(&jwt);
    assert_eq!(claimed["role"], "root");
    assert_eq!(claimed["acct"], "individual");
    assert!(claimed.get("db").is_none() && claimed.get("fuid").is_none());
    for scope in [
        "tenant:admin",
        "accounts:write",
        "databases:write",
        "db:write",
        "profile:read",
    ] {
        assert!(
            claimed["scope"].as_str().unwrap().split(' ').any(|s| s == scope),
            "{scope}"
        );
    }
    assert_eq!(root.tokens.body["user"]["role"], "root");
    assert_eq!(root.tokens.body["user"]["tenant_id"], claimed["tenant"]);

    let tenant = app.get("/v1/tenant", Some(&jwt)).await;
    assert_eq!(tenant.status, 200, "{:?}", tenant.body);
    assert_eq!(tenant.body["id"], claimed["tenant"]);
    assert_eq!(tenant.body["name"], name.as_str());
    let slug = name.to_lowercase().replace(' ', "-");
    assert_eq!(tenant.body["slug"], slug.as_str());

    // The same name again: the slug is taken, so the second tenant's gets a suffix (the retry of the transaction).
    let second = register_root(&app, &name).await;
    let other = app.get("/v1/tenant", Some(&second.jwt())).await;
    assert_ne!(other.body["id"], tenant.body["id"]);
    let other_slug = other.str("slug");
    assert!(
        other_slug.starts_with(&format!("{slug}-")) && other_slug.len() == slug.len() + 5,
        "{other_slug}"
    );

    // Without tenant_name: "<name>'s organization".
    let (_, plain) = app.signed_up_user().await;
    let tenant = app.get("/v1/tenant", Some(&plain.str("access_token"))).await;
    assert_eq!(tenant.body["name"], "Test User's organization");
}

#[tokio::test]
async fn unproven_names_do_not_name_the_tenant_of_a_code_sign_in() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    // A stranger registers the address with a tenant name; the owner then signs in with an emailed code.
    app.post(
        "/v1/auth/register",
        json!({ "email": email, "password": "attacker chosen passphrase", "tenant_name": "Evil Corp" }),
    )
    .await;
    app.post("/v1/auth/otp/send", json!({ "email": email, "purpose": "login" }))
        .await;
    let code = app.code_sent_to(&email, "sign-in code").await;
    let tokens = app
        .post("/v1/auth/otp/login", json!({ "email": email, "code": code }))
        .await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(claims(&tokens.str("access_token"))["role"], "root");
    let tenant = app.get("/v1/tenant", Some(&tokens.str("access_token"))).await;
    let local = email.split('@').next().unwrap();
    assert_eq!(tenant.body["name"], format!("{local}'s organization"));
}

#[tokio::test]
async fn an_account_from_before_tenancy_gets_a_tenant_at_its_next_login() {
    let app = TestApp::spawn().await;
    let (session, pat) = app.user_with_pat(&["profile:read"]).await;
    let email = session.body["user"]["email"].as_str().unwrap().to_owned();
    let id = session.body["user"]["id"].as_str().unwrap().to_owned();
    app.update_user(&id, "REMOVE tenant_id, #role, gsi1pk, gsi1sk", &[])
        .await;
    // Until then its PAT works as before, and it has no tenant to show.
    let me = app.me(&pat.str("token")).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert!(me.body.get("tenant_id").is_none());
    assert_eq!(app.get("/v1/tenant", Some(&pat.str("token"))).await.status, 404);

    let tokens = app.login(&email, PASSWORD).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    let claimed = claims(&tokens.str("access_token"));
    assert_eq!(claimed["role"], "root");
    let tenant_id = claimed["tenant"].as_str().unwrap();
    let item = &app.items(&format!("USER#{id}")).await[0];
    assert_eq!(item["tenant_id"].as_s().unwrap(), tenant_id);
    assert_eq!(item["role"].as_s().unwrap(), "root");
    assert_eq!(app.items(&format!("TENANT#{tenant_id}")).await.len(), 1);
    let tenant = app.get("/v1/tenant", Some(&tokens.str("access_token"))).await;
    assert_eq!(tenant.body["name"], "Test User's organization");
    // A second login keeps the tenant.
    let again = app.login(&email, PASSWORD).await;
    assert_eq!(claims(&again.str("access_token"))["tenant"], tenant_id);
}

/// Each role against each endpoint: the status it gets.
#[tokio::test]
async fn each_role_against_each_endpoint() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Roles ")).await;
    let manager = member(&app, &root, "manager").await;
    let backend = member(&app, &root, "backend").await;
    let frontend = member(&app, &root, "frontend").await;
    let shared = create_database(&app, &root.jwt(), "shared").await;
    assert_eq!(shared.status, 201, "{:?}", shared.body);
    let shared_id = shared.str("id");

    // (method, path, body, statuses of root, manager, backend, frontend)
    type Row = (&'static str, String, Option<Value>, [u16; 4]);
    let rows: Vec<Row> = vec![
        ("GET", "/v1/tenant".into(), None, [200, 200, 200, 200]),
        (
            "PATCH",
            "/v1/tenant".into(),
            Some(json!({ "name": "Renamed" })),
            [200, 200, 403, 403],
        ),
        ("GET", "/v1/databases".into(), None, [200, 200, 200, 403]),
        ("GET", format!("/v1/databases/{shared_id}"), None, [200, 200, 200, 403]),
        (
            "POST",
            "/v1/databases".into(),
            Some(json!({ "name": "NAME" })),
            [201, 201, 403, 403],
        ),
        ("DELETE", "/v1/databases/ID".into(), None, [204, 204, 403, 403]),
        (
            "POST",
            "/v1/tenant/transfer-root".into(),
            Some(json!({ "account_id": root.id() })),
            [422, 403, 403, 403],
        ),
        (
            "POST",
            "/v1/auth/session/database".into(),
            Some(json!({})),
            [200, 200, 200, 403],
        ),
        ("GET", "/v1/auth/me".into(), None, [200, 200, 200, 403]),
        ("GET", "/v1/auth/sessions".into(), None, [200, 200, 200, 403]),
        ("GET", "/v1/api-tokens".into(), None, [200, 200, 200, 403]),
        (
            "POST",
            "/v1/api-tokens".into(),
            Some(json!({ "name": "t", "scopes": ["db:user"] })),
            [403, 403, 403, 403],
        ),
        (
            "POST",
            "/v1/api-tokens".into(),
            Some(json!({ "name": "t", "scopes": ["profile:read"] })),
            [201, 201, 201, 403],
        ),
        (
            "POST",
            "/v1/accounts/service".into(),
            Some(json!({ "service_name": "NAME", "password": PASSWORD, "role": "frontend" })),
            [201, 201, 403, 403],
        ),
        ("DELETE", "/v1/auth/sessions".into(), None, [204, 204, 204, 403]),
    ];
    let accounts = [&root, &manager, &backend, &frontend];
    for (method, path, body, expected) in rows {
        for (account, want) in accounts.iter().zip(expected) {
            let role = claims(&account.jwt())["role"].clone();
            // Each deletion gets a database of its own, made by root.
            let path = if path.ends_with("/ID") {
                let fresh = create_database(&app, &root.jwt(), &unique("gone")).await;
                path.replace("ID", &fresh.str("id"))
            } else {
                path.clone()
            };
            let body = body
                .clone()
                .map(|b| serde_json::from_str::<Value>(&b.to_string().replace("NAME", &unique("db"))).unwrap());
            let answer = app
                .send(
                    method,
                    &path,
                    Some(&account.jwt()),
                    body.map(|b| b.to_string().into_bytes()),
                )
                .await;
            assert_eq!(answer.status, want, "{role} {method} {path}: {:?}", answer.body);
            if want == 403 {
                assert_eq!(answer.code(), "insufficient_scope", "{role} {method} {path}");
            }
        }
    }
}

#[tokio::test]
async fn a_backend_creating_a_database_is_refused_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Backend ")).await;
    let backend = member(&app, &root, "backend").await;
    let name = unique("db");
    let refused = create_database(&app, &backend.jwt(), &name).await;
    assert_eq!((refused.status, refused.code()), (403, "insufficient_scope"));
    let listed = app.get("/v1/databases", Some(&backend.jwt())).await;
    assert!(listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["name"] != name.as_str()));
}

#[tokio::test]
async fn databases_are_created_listed_read_and_deleted_within_the_tenant() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Dbs ")).await;
    let jwt = root.jwt();
    let slug = app.get("/v1/tenant", Some(&jwt)).await.str("slug");
    let created = app
        .post_as(
            &jwt,
            "/v1/databases",
            json!({ "name": "default", "description": "  the first one " }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["namespace"], format!("{slug}/default"));
    assert_eq!(created.body["description"], "the first one");
    let again = create_database(&app, &jwt, "default").await;
    assert_eq!((again.status, again.code()), (409, "conflict"));
    for bad in ["", "Default", "a b", "a/b", &"a".repeat(65)] {
        let answer = create_database(&app, &jwt, bad).await;
        assert_eq!((answer.status, answer.code()), (422, "invalid_field"), "{bad:?}");
    }
    // Newest first, by the second: the next one is made a second later.
    app.state.clock.advance(1);
    create_database(&app, &jwt, "second").await;
    let listed = app.get("/v1/databases", Some(&jwt)).await;
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["second", "default"]);
    assert_eq!(listed.body["next_cursor"], Value::Null);
    let id = created.str("id");
    let read = app.get(&format!("/v1/databases/{id}"), Some(&jwt)).await;
    assert_eq!(read.body, created.body);
    assert_eq!(
        app.send("DELETE", &format!("/v1/databases/{id}"), Some(&jwt), None)
            .await
            .status,
        204
    );
    assert_eq!(app.get(&format!("/v1/databases/{id}"), Some(&jwt)).await.status, 404);
    assert_eq!(
        app.send("DELETE", &format!("/v1/databases/{id}"), Some(&jwt), None)
            .await
            .status,
        404
    );
    // The name is free again.
    assert_eq!(create_database(&app, &jwt, "default").await.status, 201);
}

#[tokio::test]
async fn a_tenant_probing_another_tenants_ids_gets_404_everywhere() {
    let app = TestApp::spawn().await;
    let victim = register_root(&app, &unique("Victim ")).await;
    let victim_member = member(&app, &victim, "manager").await;
    let victim_db = create_database(&app, &victim.jwt(), "secret").await;
    let (victim_db_id, victim_ns) = (victim_db.str("id"), victim_db.str("namespace"));
    let attacker = register_root(&app, &unique("Attacker ")).await;
    let jwt = attacker.jwt();

    for (method, path) in [
        ("GET", format!("/v1/databases/{victim_db_id}")),
        ("DELETE", format!("/v1/databases/{victim_db_id}")),
        ("GET", "/v1/databases/00000000-0000-4000-8000-000000000000".to_owned()),
        ("GET", format!("/v1/databases/{}", "x".repeat(3000))),
    ] {
        let answer = app.send(method, &path, Some(&jwt), None).await;
        assert_eq!(
            (answer.status, answer.code()),
            (404, "not_found"),
            "{method} {path:.60}"
        );
    }
    for body in [
        json!({ "database_id": victim_db_id }),
        json!({ "namespace": victim_ns }),
    ] {
        let switched = app.post_as(&jwt, "/v1/auth/session/database", body.clone()).await;
        assert_eq!((switched.status, switched.code()), (404, "not_found"), "{body}");
        let mut login = json!({ "email": attacker.email, "password": PASSWORD });
        login.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
        let answer = app.post("/v1/auth/login", login).await;
        assert_eq!((answer.status, answer.code()), (404, "not_found"), "{body}");
    }
    for account_id in [victim.id(), victim_member.id(), "x".repeat(3000)] {
        let answer = app
            .post_as(&jwt, "/v1/tenant/transfer-root", json!({ "account_id": account_id }))
            .await;
        assert_eq!((answer.status, answer.code()), (404, "not_found"));
    }
    // Nothing of the victim's changed, nor did its listing leak.
    assert_eq!(
        app.get(&format!("/v1/databases/{victim_db_id}"), Some(&victim.jwt()))
            .await
            .status,
        200
    );
    let listed = app.get("/v1/databases", Some(&jwt)).await;
    assert_eq!(listed.body["items"], json!([]));
    let victim_again = app.login(&victim.email, PASSWORD).await;
    assert_eq!(claims(&victim_again.str("access_token"))["role"], "root");
}

#[tokio::test]
async fn login_with_a_database_scopes_the_session_and_checks_the_password_first() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Login ")).await;
    let db = create_database(&app, &root.jwt(), "default").await;
    let (id, ns) = (db.str("id"), db.str("namespace"));
    for body in [json!({ "database_id": id }), json!({ "namespace": ns })] {
        let mut login = json!({ "email": root.email, "password": PASSWORD });
        login.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
        let tokens = app.post("/v1/auth/login", login).await;
        assert_eq!(tokens.status, 200, "{:?}", tokens.body);
        let claimed = claims(&tokens.str("access_token"));
        assert_eq!(
            (claimed["db"].as_str(), claimed["ns"].as_str()),
            (Some(id.as_str()), Some(ns.as_str()))
        );
        // A refresh keeps the database.
        let refreshed = app.refresh(&tokens.str("refresh_token")).await;
        assert_eq!(claims(&refreshed.str("access_token"))["db"], id.as_str());
    }
    let both = app
        .post(
            "/v1/auth/login",
            json!({ "email": root.email, "password": PASSWORD, "database_id": id, "namespace": ns }),
        )
        .await;
    assert_eq!((both.status, both.code()), (422, "invalid_field"));
    let malformed = app
        .post(
            "/v1/auth/login",
            json!({ "email": root.email, "password": PASSWORD, "namespace": "no-slash" }),
        )
        .await;
    assert_eq!((malformed.status, malformed.code()), (422, "invalid_field"));
    // A wrong password says nothing about the database, real or not.
    for database_id in [id.as_str(), "00000000-0000-4000-8000-000000000000"] {
        let wrong = app
            .post(
                "/v1/auth/login",
                json!({ "email": root.email, "password": "not the password at all", "database_id": database_id }),
            )
            .await;
        assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    }
}

#[tokio::test]
async fn a_deleted_databases_sessions_fail_their_next_refresh() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Deleted ")).await;
    let db = create_database(&app, &root.jwt(), "doomed").await;
    let scoped = app
        .post(
            "/v1/auth/login",
            json!({ "email": root.email, "password": PASSWORD, "database_id": db.str("id") }),
        )
        .await;
    let refreshed = app.refresh(&scoped.str("refresh_token")).await;
    assert_eq!(refreshed.status, 200);
    let deleted = app
        .send(
            "DELETE",
            &format!("/v1/databases/{}", db.str("id")),
            Some(&root.jwt()),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let refused = app.refresh(&refreshed.str("refresh_token")).await;
    assert_eq!((refused.status, refused.code()), (401, "session_revoked"));
    // An unscoped session of the same account is untouched.
    assert_eq!(app.refresh(&root.tokens.str("refresh_token")).await.status, 200);
}

#[tokio::test]
async fn a_session_switches_database_without_a_password() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Switch ")).await;
    let db = create_database(&app, &root.jwt(), "default").await;
    let switched = app
        .post_as(
            &root.jwt(),
            "/v1/auth/session/database",
            json!({ "namespace": db.str("namespace") }),
        )
        .await;
    assert_eq!(switched.status, 200, "{:?}", switched.body);
    assert_eq!(switched.body["session_id"], root.tokens.body["session_id"]);
    assert_eq!(claims(&switched.str("access_token"))["db"], db.body["id"]);
    assert_ne!(switched.str("refresh_token"), root.tokens.str("refresh_token"));
    let refreshed = app.refresh(&switched.str("refresh_token")).await;
    assert_eq!(claims(&refreshed.str("access_token"))["ns"], db.body["namespace"]);
    let cleared = app
        .post_as(
            &refreshed.str("access_token"),
            "/v1/auth/session/database",
            json!({ "database_id": null }),
        )
        .await;
    assert_eq!(cleared.status, 200, "{:?}", cleared.body);
    assert!(claims(&cleared.str("access_token")).get("db").is_none());
    // A PAT cannot switch a session.
    let pat = app
        .post_as(
            &root.jwt(),
            "/v1/api-tokens",
            json!({ "name": "p", "scopes": ["profile:read"] }),
        )
        .await;
    let refused = app
        .post_as(
            &pat.str("token"),
            "/v1/auth/session/database",
            json!({ "database_id": db.str("id") }),
        )
        .await;
    assert_eq!((refused.status, refused.code()), (403, "insufficient_scope"));
}

#[tokio::test]
async fn a_demoted_managers_pat_loses_what_the_new_role_lacks_at_once() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Demote ")).await;
    let manager = member(&app, &root, "manager").await;
    let pat = app
        .post_as(
            &manager.jwt(),
            "/v1/api-tokens",
            json!({ "name": "ci", "scopes": ["databases:write", "databases:read", "profile:read"] }),
        )
        .await;
    assert_eq!(pat.status, 201, "{:?}", pat.body);
    let token = pat.str("token");
    assert_eq!(create_database(&app, &token, &unique("db")).await.status, 201);
    // The demotion, as PATCH /v1/accounts/{id} will write it.
    app.update_user(&manager.id(), "SET #role = :role", &[(":role", "backend")])
        .await;
    let refused = create_database(&app, &token, &unique("db")).await;
    assert_eq!((refused.status, refused.code()), (403, "insufficient_scope"));
    assert_eq!(app.get("/v1/databases", Some(&token)).await.status, 200);
    assert_eq!(app.me(&token).await.status, 200);
    let event = authorizer_event(&format!("Bearer {token}"));
    let decided = authorizer::handle(&app.state, event).await;
    assert_eq!(decided["context"]["scopes"], "databases:read profile:read");
    assert_eq!(decided["context"]["role"], "backend");
    // A token cannot even be minted with a scope the role lacks.
    let relogin = app.login(&manager.email, PASSWORD).await;
    let minted = app
        .post_as(
            &relogin.str("access_token"),
            "/v1/api-tokens",
            json!({ "name": "x", "scopes": ["databases:write"] }),
        )
        .await;
    assert_eq!((minted.status, minted.code()), (403, "insufficient_scope"));
}

#[tokio::test]
async fn a_disabled_accounts_credentials_all_fail() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Disabled ")).await;
    let backend = member(&app, &root, "backend").await;
    let pat = app
        .post_as(
            &backend.jwt(),
            "/v1/api-tokens",
            json!({ "name": "p", "scopes": ["profile:read"] }),
        )
        .await;
    app.update_user(&backend.id(), "SET #status = :s", &[(":s", "disabled")])
        .await;
    let me = app.me(&backend.jwt()).await;
    assert_eq!((me.status, me.code()), (401, "session_revoked"));
    assert_eq!(app.me(&pat.str("token")).await.status, 401);
    let refreshed = app.refresh(&backend.tokens.str("refresh_token")).await;
    assert_eq!((refreshed.status, refreshed.code()), (401, "session_revoked"));
    let login = app.login(&backend.email, PASSWORD).await;
    assert_eq!((login.status, login.code()), (403, "account_disabled"));
    // A wrong password still says only that.
    let wrong = app.login(&backend.email, "not the password at all").await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    let decided = authorizer::handle(&app.state, authorizer_event(&format!("Bearer {}", backend.jwt()))).await;
    assert_eq!(decided["isAuthorized"], false);
}

#[tokio::test]
async fn root_login_checks_the_password_first_and_then_the_role() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Rootlogin ")).await;
    let manager = member(&app, &root, "manager").await;
    let wrong = app
        .post(
            "/v1/auth/login/root",
            json!({ "email": manager.email, "password": "not the password at all" }),
        )
        .await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    let not_root = app
        .post(
            "/v1/auth/login/root",
            json!({ "email": manager.email, "password": PASSWORD }),
        )
        .await;
    assert_eq!((not_root.status, not_root.code()), (403, "insufficient_role"));

    let answer = app
        .post(
            "/v1/auth/login/root",
            json!({ "email": root.email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let keys: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access_token", "expires_in", "token_type"]);
    let token = answer.str("access_token");
    let claimed = claims(&token);
    assert!(claimed.get("sid").is_none() && claimed.get("db").is_none());
    assert_eq!(
        (claimed["role"].as_str(), claimed["epoch"].as_i64()),
        (Some("root"), Some(0))
    );
    assert_eq!(app.get("/v1/tenant", Some(&token)).await.status, 200);
    assert_eq!(create_database(&app, &token, "fromroot").await.status, 201);
    let decided = authorizer::handle(&app.state, authorizer_event(&format!("Bearer {token}"))).await;
    assert_eq!(decided["context"]["token_type"], "root");
    // No session to switch or to manage.
    let switch = app.post_as(&token, "/v1/auth/session/database", json!({})).await;
    assert_eq!((switch.status, switch.code()), (403, "insufficient_scope"));
    // The session epoch ends it: a password change.
    let changed = app
        .change_password(&root.jwt(), PASSWORD, "a completely new passphrase")
        .await;
    assert_eq!(changed.status, 204, "{:?}", changed.body);
    let after = app.get("/v1/tenant", Some(&token)).await;
    assert_eq!((after.status, after.code()), (401, "session_revoked"));
}

#[tokio::test]
async fn root_transfers_to_a_verified_individual_of_its_tenant() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Transfer ")).await;
    let manager = member(&app, &root, "manager").await;
    let to_self = app
        .post_as(
            &root.jwt(),
            "/v1/tenant/transfer-root",
            json!({ "account_id": root.id() }),
        )
        .await;
    assert_eq!((to_self.status, to_self.code()), (422, "invalid_field"));
    let by_manager = app
        .post_as(
            &manager.jwt(),
            "/v1/tenant/transfer-root",
            json!({ "account_id": manager.id() }),
        )
        .await;
    assert_eq!((by_manager.status, by_manager.code()), (403, "insufficient_scope"));

    let moved = app
        .post_as(
            &root.jwt(),
            "/v1/tenant/transfer-root",
            json!({ "account_id": manager.id() }),
        )
        .await;
    assert_eq!(moved.status, 204, "{:?}", moved.body);
    // The old root's tokens carried the root role: its sessions ended.
    let stale = app.get("/v1/tenant", Some(&root.jwt())).await;
    assert_eq!((stale.status, stale.code()), (401, "session_revoked"));
    let old_root = app.login(&root.email, PASSWORD).await;
    assert_eq!(claims(&old_root.str("access_token"))["role"], "manager");
    let new_root = app.login(&manager.email, PASSWORD).await;
    assert_eq!(claims(&new_root.str("access_token"))["role"], "root");
    // The new root's earlier session refreshes into the new role.
    let refreshed = app.refresh(&manager.tokens.str("refresh_token")).await;
    assert_eq!(claims(&refreshed.str("access_token"))["role"], "root");
    let again = app
        .post_as(
            &old_root.str("access_token"),
            "/v1/tenant/transfer-root",
            json!({ "account_id": root.id() }),
        )
        .await;
    assert_eq!(again.status, 403);
}

#[tokio::test]
async fn the_tenant_is_renamed_and_keeps_its_slug() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Rename ")).await;
    let before = app.get("/v1/tenant", Some(&root.jwt())).await;
    let renamed = send_json(
        &app,
        "PATCH",
        "/v1/tenant",
        &root.jwt(),
        json!({ "name": "  Fabrikam  " }),
    )
    .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    assert_eq!(renamed.body["name"], "Fabrikam");
    assert_eq!(renamed.body["slug"], before.body["slug"]);
    for bad in [
        json!({ "name": "   " }),
        json!({ "name": "x".repeat(101) }),
        json!({ "name": "a\u{202e}b" }),
    ] {
        let answer = send_json(&app, "PATCH", "/v1/tenant", &root.jwt(), bad).await;
        assert_eq!((answer.status, answer.code()), (422, "invalid_field"));
    }
    let missing = send_json(&app, "PATCH", "/v1/tenant", &root.jwt(), json!({})).await;
    assert_eq!((missing.status, missing.code()), (400, "invalid_request"));
}

#[tokio::test]
async fn the_claims_and_the_authorizer_context_of_each_token_kind() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Context ")).await;
    let db = create_database(&app, &root.jwt(), "default").await;
    let scoped = app
        .post(
            "/v1/auth/login",
            json!({ "email": root.email, "password": PASSWORD, "namespace": db.str("namespace") }),
        )
        .await;
    let decide = |token: String| {
        let state = std::sync::Arc::clone(&app.state);
        async move { authorizer::handle(&state, authorizer_event(&format!("Bearer {token}"))).await }
    };
    let tenant = root.tenant();

    let jwt = decide(scoped.str("access_token")).await;
    assert_eq!(jwt["isAuthorized"], true);
    let context = &jwt["context"];
    assert_eq!(context["token_type"], "jwt");
    assert_eq!(context["tenant"], tenant.as_str());
    assert_eq!(context["role"], "root");
    assert_eq!(context["acct"], "individual");
    assert_eq!(context["db"], db.body["id"]);
    assert_eq!(context["ns"], db.body["namespace"]);
    assert!(context.get("fuid").is_none());

    let plain = decide(root.jwt()).await;
    assert!(plain["context"].get("db").is_none() && plain["context"].get("ns").is_none());

    let pat = app
        .post_as(
            &root.jwt(),
            "/v1/api-tokens",
            json!({ "name": "p", "scopes": ["db:read"] }),
        )
        .await;
    let by_pat = decide(pat.str("token")).await;
    assert_eq!(by_pat["context"]["token_type"], "pat");
    assert_eq!(by_pat["context"]["tenant"], tenant.as_str());
    assert_eq!(by_pat["context"]["role"], "root");
    assert_eq!(by_pat["context"]["acct"], "individual");
    assert_eq!(by_pat["context"]["scopes"], "db:read");

    let frontend = member(&app, &root, "frontend").await;
    let claimed = claims(&frontend.jwt());
    assert_eq!(claimed["scope"], "db:user");
    let by_frontend = decide(frontend.jwt()).await;
    assert_eq!(by_frontend["context"]["role"], "frontend");
    assert_eq!(by_frontend["context"]["scopes"], "db:user");
}

async fn create_service(app: &TestApp, jwt: &str, name: &str, role: &str) -> Answer {
    app.post_as(
        jwt,
        "/v1/accounts/service",
        json!({ "service_name": name, "password": PASSWORD, "role": role }),
    )
    .await
}

async fn service_login(app: &TestApp, body: Value) -> Answer {
    app.post("/v1/auth/login/service", body).await
}

#[tokio::test]
async fn service_accounts_are_created_only_below_the_creators_rank() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Services ")).await;
    let manager = member(&app, &root, "manager").await;
    let backend = member(&app, &root, "backend").await;

    let created = create_service(&app, &root.jwt(), "ops-manager", "manager").await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["kind"], "service");
    assert_eq!(created.body["service_name"], "ops-manager");
    assert_eq!(
        (created.body["role"].as_str(), created.body["status"].as_str()),
        (Some("manager"), Some("active"))
    );
    assert!(created.body.get("email").is_none());
    for (creator, role, want) in [
        (&manager, "backend", 201),
        (&manager, "frontend", 201),
        (&manager, "manager", 403),
        (&manager, "root", 403),
        (&root, "root", 403),
        (&backend, "frontend", 403),
    ] {
        let answer = create_service(&app, &creator.jwt(), &unique("svc-"), role).await;
        assert_eq!(answer.status, want, "{role}: {:?}", answer.body);
        if want == 403 {
            assert_eq!(answer.code(), "insufficient_scope");
        }
    }
    let taken = create_service(&app, &manager.jwt(), "ops-manager", "backend").await;
    assert_eq!((taken.status, taken.code()), (409, "conflict"));
    for (name, role, password, code) in [
        ("ab", "backend", PASSWORD, "invalid_field"),
        ("Ops", "backend", PASSWORD, "invalid_field"),
        ("fine-name", "admin", PASSWORD, "invalid_field"),
        ("fine-name", "backend", "password", "weak_password"),
    ] {
        let answer = app
            .post_as(
                &manager.jwt(),
                "/v1/accounts/service",
                json!({ "service_name": name, "password": password, "role": role }),
            )
            .await;
        assert_eq!((answer.status, answer.code()), (422, code), "{name} {role}");
    }
    // Names are unique within a tenant, not across tenants.
    let other = register_root(&app, &unique("Elsewhere ")).await;
    assert_eq!(
        create_service(&app, &other.jwt(), "ops-manager", "backend")
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn a_service_account_signs_in_by_tenant_database_or_namespace() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Svclogin ")).await;
    let tenant = root.tenant();
    let db = create_database(&app, &root.jwt(), "default").await;
    assert_eq!(create_service(&app, &root.jwt(), "worker", "backend").await.status, 201);
    let base = json!({ "service_name": "worker", "password": PASSWORD });
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };

    let by_tenant = service_login(&app, with(json!({ "tenant_id": tenant }))).await;
    assert_eq!(by_tenant.status, 200, "{:?}", by_tenant.body);
    let claimed = claims(&by_tenant.str("access_token"));
    assert_eq!(
        (claimed["acct"].as_str(), claimed["role"].as_str()),
        (Some("service"), Some("backend"))
    );
    assert_eq!(claimed["tenant"], tenant.as_str());
    assert!(claimed.get("db").is_none() && claimed.get("fuid").is_none());
    assert_eq!(by_tenant.body["user"]["service_name"], "worker");
    assert!(by_tenant.body["user"].get("email").is_none());

    for extra in [
        json!({ "database_id": db.str("id") }),
        json!({ "namespace": db.str("namespace") }),
    ] {
        let scoped = service_login(&app, with(extra.clone())).await;
        assert_eq!(scoped.status, 200, "{extra}: {:?}", scoped.body);
        assert_eq!(claims(&scoped.str("access_token"))["db"], db.body["id"]);
    }
    for extra in [
        json!({}),
        json!({ "tenant_id": tenant, "database_id": db.str("id") }),
        json!({ "tenant_id": "not-a-tenant" }),
        json!({ "tenant_id": tenant, "frontend_user_id": "" }),
    ] {
        let answer = service_login(&app, with(extra.clone())).await;
        assert_eq!((answer.status, answer.code()), (422, "invalid_field"), "{extra}");
    }
    // A backend names no end user, but only a right password learns that.
    let vouching = service_login(&app, with(json!({ "tenant_id": tenant, "frontend_user_id": "u-1" }))).await;
    assert_eq!((vouching.status, vouching.code()), (422, "invalid_field"));
    let other = register_root(&app, &unique("Othersvc ")).await;
    for body in [
        json!({ "service_name": "worker", "password": "not the password at all", "tenant_id": tenant }),
        json!({ "service_name": "worker", "password": "not the password at all", "tenant_id": tenant,
                "frontend_user_id": "u-1" }),
        json!({ "service_name": "nobody", "password": PASSWORD, "tenant_id": tenant }),
        json!({ "service_name": "worker", "password": PASSWORD, "tenant_id": other.tenant() }),
        json!({ "service_name": "worker", "password": PASSWORD, "database_id": "00000000-0000-4000-8000-000000000000" }),
        json!({ "service_name": "worker", "password": PASSWORD, "namespace": "nope/default" }),
    ] {
        let answer = service_login(&app, body.clone()).await;
        assert_eq!((answer.status, answer.code()), (401, "invalid_credentials"), "{body}");
    }
    // Its password changes without any mail, and the account cannot use email flows.
    let changed = app
        .change_password(&by_tenant.str("access_token"), PASSWORD, "a fresh service passphrase")
        .await;
    assert_eq!(changed.status, 204, "{:?}", changed.body);
    let again = service_login(
        &app,
        json!({ "service_name": "worker", "password": "a fresh service passphrase", "tenant_id": tenant }),
    )
    .await;
    assert_eq!(again.status, 200);
}

#[tokio::test]
async fn a_frontend_service_vouches_for_one_end_user() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Frontend ")).await;
    let tenant = root.tenant();
    let db = create_database(&app, &root.jwt(), "default").await;
    assert_eq!(create_service(&app, &root.jwt(), "web", "frontend").await.status, 201);
    let missing = service_login(
        &app,
        json!({ "service_name": "web", "password": PASSWORD, "namespace": db.str("namespace") }),
    )
    .await;
    assert_eq!((missing.status, missing.code()), (422, "invalid_field"));
    let tokens = service_login(
        &app,
        json!({ "service_name": "web", "password": PASSWORD, "namespace": db.str("namespace"),
                "frontend_user_id": "end-user-42" }),
    )
    .await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    let jwt = tokens.str("access_token");
    let claimed = claims(&jwt);
    assert_eq!(claimed["scope"], "db:user");
    assert_eq!(claimed["fuid"], "end-user-42");
    assert_eq!(claimed["role"], "frontend");
    let refreshed = app.refresh(&tokens.str("refresh_token")).await;
    assert_eq!(claims(&refreshed.str("access_token"))["fuid"], "end-user-42");
    let decided = authorizer::handle(&app.state, authorizer_event(&format!("Bearer {jwt}"))).await;
    let context = &decided["context"];
    assert_eq!(
        (context["fuid"].as_str(), context["acct"].as_str()),
        (Some("end-user-42"), Some("service"))
    );
    assert_eq!(context["tenant"], tenant.as_str());
    assert_eq!(context["ns"], db.body["namespace"]);
    // Nothing of its own to read or mint.
    for (method, path) in [
        ("GET", "/v1/auth/me"),
        ("GET", "/v1/auth/sessions"),
        ("GET", "/v1/api-tokens"),
    ] {
        assert_eq!(app.send(method, path, Some(&jwt), None).await.status, 403, "{path}");
    }
    let minted = app
        .post_as(&jwt, "/v1/api-tokens", json!({ "name": "x", "scopes": ["db:user"] }))
        .await;
    assert_eq!((minted.status, minted.code()), (403, "insufficient_scope"));
    let changed = app.change_password(&jwt, PASSWORD, "a brand new passphrase").await;
    assert_eq!((changed.status, changed.code()), (403, "insufficient_scope"));
}

#[tokio::test]
async fn a_service_account_gets_the_backoff_but_never_the_lock() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Nolock ")).await;
    let tenant = root.tenant();
    create_service(&app, &root.jwt(), "batch", "backend").await;
    app.state.clock.freeze();
    let wrong = json!({ "service_name": "batch", "password": "not the password at all", "tenant_id": tenant });
    let mut held = 0;
    for _ in 0..105 {
        app.state.clock.advance(901);
        let answer = service_login(&app, wrong.clone()).await;
        assert_eq!(answer.status, 401, "{:?}", answer.body);
        held += 1;
    }
    assert_eq!(held, 105);
    // Right after a failure past the free ones, the backoff holds.
    let waiting = service_login(
        &app,
        json!({ "service_name": "batch", "password": PASSWORD, "tenant_id": tenant }),
    )
    .await;
    assert_eq!(waiting.status, 429);
    app.state.clock.advance(901);
    let right = service_login(
        &app,
        json!({ "service_name": "batch", "password": PASSWORD, "tenant_id": tenant }),
    )
    .await;
    assert_eq!(right.status, 200, "{:?}", right.body);
}

fn with_namespace(authorization: &str, namespace: &str) -> Value {
    let mut event = authorizer_event(authorization);
    event["headers"]["x-namespace"] = json!(namespace);
    event
}

#[tokio::test]
async fn the_authorizer_accepts_x_namespace_only_for_the_tokens_own_tenant() {
    let app = TestApp::spawn().await;
    let root = register_root(&app, &unique("Xns ")).await;
    let db = create_database(&app, &root.jwt(), "default").await;
    let other_db = create_database(&app, &root.jwt(), "other").await;
    let stranger = register_root(&app, &unique("Xnsstranger ")).await;
    let foreign = create_database(&app, &stranger.jwt(), "default").await;
    let ns = db.str("namespace");
    let bearer = format!("Bearer {}", root.jwt());

    app.dynamo_calls.reset();
    let allowed = authorizer::handle(&app.state, with_namespace(&bearer, &ns)).await;
    assert_eq!(allowed["isAuthorized"], true, "{allowed}");
    assert_eq!(allowed["context"]["db"], db.body["id"]);
    assert_eq!(allowed["context"]["ns"], ns.as_str());
    let first = app.dynamo_calls.snapshot();
    assert_eq!(first.get("GetItem"), Some(&1), "{first:?}");
    // Cached: the next request with the namespace makes no read for it.
    app.dynamo_calls.reset();
    authorizer::handle(&app.state, with_namespace(&bearer, &ns)).await;
    assert_eq!(app.dynamo_calls.snapshot().get("GetItem"), None);

    let deny = json!({ "isAuthorized": false, "context": {} });
    for namespace in [
        foreign.str("namespace"),
        format!("{ns}x"),
        "no-slash".to_owned(),
        "x".repeat(5000),
    ] {
        let decided = authorizer::handle(&app.state, with_namespace(&bearer, &namespace)).await;
        assert_eq!(decided, deny, "{namespace:.60}");
    }
    // A PAT may name one too.
    let pat = app
        .post_as(
            &root.jwt(),
            "/v1/api-tokens",
            json!({ "name": "p", "scopes": ["db:read"] }),
        )
        .await;
    let by_pat = authorizer::handle(&app.state, with_namespace(&format!("Bearer {}", pat.str("token")), &ns)).await;
    assert_eq!(by_pat["context"]["db"], db.body["id"]);
    // A token scoped to a database may repeat it, never name another.
    let scoped = app
        .post(
            "/v1/auth/login",
            json!({ "email": root.email, "password": PASSWORD, "database_id": db.str("id") }),
        )
        .await;
    let scoped_bearer = format!("Bearer {}", scoped.str("access_token"));
    let same = authorizer::handle(&app.state, with_namespace(&scoped_bearer, &ns)).await;
    assert_eq!(same["isAuthorized"], true);
    let mismatched = authorizer::handle(&app.state, with_namespace(&scoped_bearer, &other_db.str("namespace"))).await;
    assert_eq!(mismatched, deny);
}
