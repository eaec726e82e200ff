//! End-to-end tests of oauth: `POST /v1/oauth/token`'s client-credentials grant, driven by an independent OAuth
//! client library (the `oauth2` crate) and by raw requests for every refusal, and its token exchange, verified with
//! the published keys alone.

use std::time::Duration;

use keygate_e2e::jwt_claims as claims;
use keygate_e2e::{authorizer_event, unique, Answer, TestApp, PASSWORD};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse as _, TokenUrl};
use secrecy::ExposeSecret as _;
use serde_json::{json, Value};

use crate::tenancy::Account as Root;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// A client secret that needs RFC 6749 §2.3.1's encoding: a colon, a plus, a percent sign and a space.
const SECRET: &str = "correct:horse+battery %staple";

/// The root of a new tenant, signed in.
async fn register_root(app: &TestApp) -> Root {
    crate::tenancy::register_root(app, &unique("OAuth ")).await
}

async fn service_login(app: &TestApp, body: Value) -> Answer {
    app.post("/v1/auth/login/service", body).await
}

async fn patch_account(app: &TestApp, jwt: &str, id: &str, body: Value) -> Answer {
    let answer = app
        .send(
            "PATCH",
            &format!("/v1/accounts/{id}"),
            Some(jwt),
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer
}

/// A client from the test's own address, so that per-IP limits of concurrent tests do not meet.
fn http_client(app: &TestApp) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(app.ip)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn read(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let raw = response.bytes().await.unwrap().to_vec();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        raw,
    }
}

/// POSTs a raw body to the token endpoint with a content type and an optional `Authorization` header.
async fn token_raw(app: &TestApp, content_type: &str, authorization: Option<&str>, body: Vec<u8>) -> Answer {
    let mut request = http_client(app)
        .post(format!("{}/v1/oauth/token", app.base))
        .header("content-type", content_type)
        .body(body);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    read(request).await
}

/// POSTs a form to the token endpoint.
async fn token_form(app: &TestApp, authorization: Option<&str>, params: &[(&str, &str)]) -> Answer {
    let body = encode(params);
    token_raw(
        app,
        "application/x-www-form-urlencoded",
        authorization,
        body.into_bytes(),
    )
    .await
}

fn encode(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{}={}", form_escape(name), form_escape(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn form_escape(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => char::from(b).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `Authorization: Basic` as RFC 6749 §2.3.1 builds it: each part form-encoded, then base64.
fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{}:{}", form_escape(id), form_escape(secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// A client-credentials request with `client_secret_post` and extra parameters.
async fn client_credentials(app: &TestApp, id: &str, secret: &str, extra: &[(&str, &str)]) -> Answer {
    let mut params = vec![
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ];
    params.extend_from_slice(extra);
    token_form(app, None, &params).await
}

/// Asserts an RFC 6749 §5.2 error: its status, its code, a description, and no caching.
fn assert_oauth_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (status, Some(code)),
        "{}",
        String::from_utf8_lossy(&answer.raw)
    );
    assert!(answer.body["error_description"].is_string(), "{:?}", answer.body);
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert_eq!(answer.headers["pragma"], "no-cache");
    if code == "invalid_client" {
        assert_eq!(answer.headers["www-authenticate"], r#"Basic realm="keygate""#);
    }
}

fn oauth_client(
    app: &TestApp,
    id: &str,
    secret: &str,
    auth: AuthType,
) -> oauth2::basic::BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(id.to_owned()))
        .set_client_secret(ClientSecret::new(secret.to_owned()))
        .set_token_uri(TokenUrl::new(format!("{}/v1/oauth/token", app.base)).unwrap())
        .set_auth_type(auth)
}

async fn decide(app: &TestApp, token: &str) -> Value {
    authorizer::handle(&app.state, authorizer_event(&format!("Bearer {token}"))).await
}

#[tokio::test]
async fn an_oauth_library_gets_tokens_with_either_client_authentication() {
    let app = TestApp::spawn().await;
    let root = register_root(&app).await;
    let id = app.service_account(&root.jwt(), "ops", SECRET, "manager").await;
    let http = http_client(&app);

    // client_secret_basic, every scope of the role.
    let token = oauth_client(&app, &id, SECRET, AuthType::BasicAuth)
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .unwrap();
    assert!(token.refresh_token().is_none());
    assert_eq!(*token.token_type(), oauth2::basic::BasicTokenType::Bearer);
    assert_eq!(token.expires_in(), Some(Duration::from_secs(900)));
    let jwt = token.access_token().secret().clone();
    let claimed = claims(&jwt);
    assert_eq!(
        (claimed["sub"].as_str(), claimed["client_id"].as_str()),
        (Some(id.as_str()), Some(id.as_str()))
    );
    assert_eq!(
        (claimed["acct"].as_str(), claimed["role"].as_str()),
        (Some("service"), Some("manager"))
    );
    assert_eq!(claimed["tenant"], root.tenant().as_str());
    assert!(claimed.get("sid").is_none() && claimed["epoch"].is_i64());
    assert_eq!(claimed["aud"], app.state.config.audience.as_str());
    let manager_scopes = keygate::tenancy::roles::scope_claim(&app.state.config, Some(keygate::tenancy::Role::Manager));
    assert_eq!(claimed["scope"], manager_scopes.as_str());
    let granted: Vec<String> = token.scopes().unwrap().iter().map(|s| s.as_str().to_owned()).collect();
    assert_eq!(granted.join(" "), manager_scopes);

    // client_secret_post, two scopes.
    let token = oauth_client(&app, &id, SECRET, AuthType::RequestBody)
        .exchange_client_credentials()
        .add_scope(Scope::new("accounts:read".into()))
        .add_scope(Scope::new("db:read".into()))
        .request_async(&http)
        .await
        .unwrap();
    let narrow = token.access_token().secret().clone();
    assert_eq!(claims(&narrow)["scope"], "accounts:read db:read");
    assert!(token.refresh_token().is_none());

    // The library reads a wrong secret as RFC 6749's invalid_client.
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let refused = oauth_client(&app, &id, "not the secret at all", auth)
            .exchange_client_credentials()
            .request_async(&http)
            .await;
        match refused {
            Err(RequestTokenError::ServerResponse(err)) => {
                assert_eq!(*err.error(), BasicErrorResponseType::InvalidClient);
            }
            other => panic!("expected invalid_client, got {other:?}"),
        }
    }

    // The raw answer: no-store, no refresh token.
    let raw = token_form(&app, Some(&basic(&id, SECRET)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(raw.status, 200, "{:?}", raw.body);
    assert_eq!(raw.headers["cache-control"], "no-store");
    assert_eq!(raw.headers["pragma"], "no-cache");
    assert_eq!(raw.body["token_type"], "Bearer");
    assert!(raw.body.get("refresh_token").is_none());
    let mut fields: Vec<&String> = raw.body.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["access_token", "expires_in", "scope", "token_type"]);
    // A body client_id that repeats the header's is fine.
    let both = token_form(
        &app,
        Some(&basic(&id, SECRET)),
        &[("grant_type", "client_credentials"), ("client_id", &id)],
    )
    .await;
    assert_eq!(both.status, 200);

    // keygate's own endpoints accept it as they would the account's session.
    let listed = app.get("/v1/accounts", Some(&jwt)).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(app.get("/v1/accounts", Some(&narrow)).await.status, 200);
    let create = app
        .post_as(
            &narrow,
            "/v1/accounts/service",
            json!({ "service_name": "nope", "password": SECRET, "role": "backend" }),
        )
        .await;
    assert_eq!((create.status, create.code()), (403, "insufficient_scope"));
    // Never an interactive session.
    let changed = app
        .change_password(&jwt, SECRET, "another fine service passphrase")
        .await;
    assert_eq!((changed.status, changed.code()), (403, "insufficient_scope"));

    // The authorizer goes through the same check.
    let decided = decide(&app, &jwt).await;
    assert_eq!(decided["isAuthorized"], true, "{decided}");
    let context = &decided["context"];
    assert_eq!(context["sub"], id.as_str());
    assert_eq!(
        (context["acct"].as_str(), context["role"].as_str()),
        (Some("service"), Some("manager"))
    );
    assert_eq!(context["tenant"], root.tenant().as_str());
    assert!(context.get("sid").is_none());
}

#[tokio::test]
async fn the_authorizer_names_a_client_credentials_token() {
    let app = TestApp::spawn().await;
    let root = register_root(&app).await;
    let id = app.service_account(&root.jwt(), "named", SECRET, "backend").await;
    let jwt = client_credentials(&app, &id, SECRET, &[]).await.str("access_token");
    let decided = decide(&app, &jwt).await;
    assert_eq!(decided["isAuthorized"], true, "{decided}");
    // Not `root`: a route that trusts the token type must never take a service account for a tenant's root.
    assert_eq!(decided["context"]["token_type"], "client_credentials");
    assert_eq!(decide(&app, &root.jwt()).await["context"]["token_type"], "jwt");
}

#[tokio::test]
async fn every_failed_client_authentication_looks_the_same() {
    let app = TestApp::spawn().await;
    let root = register_root(&app).await;
    let id = app.service_account(&root.jwt(), "quiet", SECRET, "backend").await;
    let unknown = "00000000-0000-4000-8000-000000000000".to_owned();
    let cases = [
        (id.clone(), "not the secret at all".to_owned()),
        (unknown.clone(), SECRET.to_owned()),
        ("not-an-id".to_owned(), SECRET.to_owned()),
        ("x".repeat(5_000), SECRET.to_owned()),
        (id.to_uppercase(), SECRET.to_owned()),
        // An individual's id and password are no client.
        (root.id(), PASSWORD.to_owned()),
    ];
    let mut descriptions = Vec::new();
    for (client_id, secret) in &cases {
        for answer in [
            client_credentials(&app, client_id, secret, &[]).await,
            token_form(
                &app,
                Some(&basic(client_id, secret)),
                &[("grant_type", "client_credentials")],
            )
            .await,
        ] {
            assert_oauth_error(&answer, 401, "invalid_client");
            descriptions.push(answer.body.clone());
        }
    }
    descriptions.dedup();
    assert_eq!(
        descriptions.len(),
        1,
        "every refusal has the same body: {descriptions:?}"
    );

    // Disabled by root: the right secret is refused in the same words.
    patch_account(&app, &root.jwt(), &id, json!({ "status": "disabled" })).await;
    let disabled = client_credentials(&app, &id, SECRET, &[]).await;
    assert_oauth_error(&disabled, 401, "invalid_client");
    assert_eq!(disabled.body, descriptions[0]);
    patch_account(&app, &root.jwt(), &id, json!({ "status": "active" })).await;
    assert_eq!(client_credentials(&app, &id, SECRET, &[]).await.status, 200);

    // No client authentication, or an unusable one.
    for (authorization, params) in [
        (None, vec![("grant_type", "client_credentials")]),
        (
            None,
            vec![("grant_type", "client_credentials"), ("client_id", id.as_str())],
        ),
        (
            None,
            vec![("grant_type", "client_credentials"), ("client_secret", SECRET)],
        ),
        (Some("Bearer abc"), vec![("grant_type", "client_credentials")]),
        (Some("Basic !!!"), vec![("grant_type", "client_credentials")]),
        (Some("Basic bm9jb2xvbg=="), vec![("grant_type", "client_credentials")]),
    ] {
        let answer = token_form(&app, authorization, &params).await;
        assert_oauth_error(&answer, 401, "invalid_client");
    }
}

#[tokio::test]
async fn scopes_roles_and_databases_are_checked_once_the_secret_is_right() {
    let app = TestApp::spawn().await;
    let root = register_root(&app).await;
    let backend = app.service_account(&root.jwt(), "worker", SECRET, "backend").await;
    let frontend = app.service_account(&root.jwt(), "web", SECRET, "frontend").await;
    let db = app
        .post_as(&root.jwt(), "/v1/databases", json!({ "name": "default" }))
        .await;
    assert_eq!(db.status, 201, "{:?}", db.body);

    let beyond = client_credentials(&app, &backend, SECRET, &[("scope", "db:read accounts:read")]).await;
    assert_oauth_error(&beyond, 400, "invalid_scope");
    for scope in ["DB:READ", "nonsense:scope", "tenant:admin"] {
        let answer = client_credentials(&app, &backend, SECRET, &[("scope", scope)]).await;
        assert_oauth_error(&answer, 400, "invalid_scope");
    }
    // Only a right secret learns about scopes.
    let wrong = client_credentials(&app, &backend, "not the secret", &[("scope", "accounts:read")]).await;
    assert_oauth_error(&wrong, 401, "invalid_client");

    let frontend_answer = client_credentials(&app, &frontend, SECRET, &[]).await;
    assert_oauth_error(&frontend_answer, 400, "unauthorized_client");
    let frontend_wrong = client_credentials(&app, &frontend, "not the secret", &[]).await;
    assert_oauth_error(&frontend_wrong, 401, "invalid_client");

    for extra in [("database_id", db.str("id")), ("namespace", db.str("namespace"))] {
        let scoped = client_credentials(&app, &backend, SECRET, &[(extra.0, &extra.1)]).await;
        assert_eq!(scoped.status, 200, "{:?}", scoped.body);
        let jwt = scoped.str("access_token");
        assert_eq!(claims(&jwt)["db"], db.body["id"]);
        let decided = decide(&app, &jwt).await;
        assert_eq!(decided["context"]["ns"], db.body["namespace"]);
    }
    let other = register_root(&app).await;
    let foreign = app
        .post_as(&other.jwt(), "/v1/databases", json!({ "name": "default" }))
        .await;
    for (name, value) in [
        ("database_id", foreign.str("id")),
        ("namespace", foreign.str("namespace")),
        ("database_id", "00000000-0000-4000-8000-000000000000".to_owned()),
        ("database_id", "junk".to_owned()),
    ] {
        let answer = client_credentials(&app, &backend, SECRET, &[(name, &value)]).await;
        assert_eq!(answer.status, 400, "{name}={value}");
        assert_oauth_error(&answer, 400, "invalid_request");
    }
    let both = client_credentials(
        &app,
        &backend,
        SECRET,
        &[("database_id", &db.str("id")), ("namespace", &db.str("namespace"))],
    )
    .await;
    assert_oauth_error(&both, 400, "invalid_request");
}

#[tokio::test]
async fn malformed_requests_get_rfc_errors_never_a_500() {
    let app = TestApp::spawn().await;
    let root = register_root(&app).await;
    let id = app.service_account(&root.jwt(), "strict", SECRET, "backend").await;
    let auth = basic(&id, SECRET);
    let form = "application/x-www-form-urlencoded";
    let grant = "grant_type=client_credentials";
    for (content_type, body, status, code) in [
        (
            form,
            "grant_type=password&username=a&password=b".to_owned(),
            400,
            "unsupported_grant_type",
        ),
        (
            form,
            "grant_type=authorization_code&code=x".to_owned(),
            400,
            "unsupported_grant_type",
        ),
        (form, String::new(), 400, "invalid_request"),
        (form, "scope=db:read".to_owned(), 400, "invalid_request"),
        (form, format!("{grant}&{grant}"), 400, "invalid_request"),
        (
            form,
            format!("{grant}&scope=db:read&scope=db:write"),
            400,
            "invalid_request",
        ),
        (form, format!("{grant}&scope=%ZZ"), 400, "invalid_request"),
        (
            form,
            format!("{grant}&client_secret={}", form_escape(SECRET)),
            400,
            "invalid_request",
        ),
        (
            "application/json",
            json!({ "grant_type": "client_credentials" }).to_string(),
            400,
            "invalid_request",
        ),
        ("text/plain", grant.to_owned(), 400, "invalid_request"),
        (
            form,
            format!("{grant}&pad={}", "a".repeat(17 * 1024)),
            400,
            "invalid_request",
        ),
    ] {
        let answer = token_raw(&app, content_type, Some(&auth), body.clone().into_bytes()).await;
        assert_oauth_error(&answer, status, code);
    }
    // Bad UTF-8, raw and percent-encoded; a NUL; no content type at all.
    for body in [
        b"grant_type=client_credentials&scope=\xff\xfe".to_vec(),
        b"grant_type=client_credentials&scope=%C3%28".to_vec(),
    ] {
        let answer = token_raw(&app, form, Some(&auth), body).await;
        assert_oauth_error(&answer, 400, "invalid_request");
    }
    let nul = token_raw(
        &app,
        form,
        Some(&auth),
        b"grant_type=client_credentials&scope=db%00read".to_vec(),
    )
    .await;
    assert_oauth_error(&nul, 400, "invalid_scope");
    let untyped = read(
        http_client(&app)
            .post(format!("{}/v1/oauth/token", app.base))
            .header("authorization", &auth)
            .body(grant),
    )
    .await;
    assert_oauth_error(&untyped, 400, "invalid_request");
    // Still fine afterwards.
    assert_eq!(
        token_raw(&app, form, Some(&auth), grant.as_bytes().to_vec())
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_client_token_stops_at_once_when_its_account_is_demoted_disabled_or_deleted() {
    let app = TestApp::spawn().await;
    let root = register_root(&app).await;
    let id = app.service_account(&root.jwt(), "fleeting", SECRET, "manager").await;
    let jwt = client_credentials(&app, &id, SECRET, &[]).await.str("access_token");
    assert_eq!(app.get("/v1/accounts", Some(&jwt)).await.status, 200);

    patch_account(&app, &root.jwt(), &id, json!({ "role": "backend" })).await;
    let demoted = app.get("/v1/accounts", Some(&jwt)).await;
    assert_eq!((demoted.status, demoted.code()), (401, "session_revoked"));
    assert_eq!(app.get("/v1/databases", Some(&jwt)).await.status, 401);
    assert_eq!(decide(&app, &jwt).await["isAuthorized"], false);

    let backend = client_credentials(&app, &id, SECRET, &[]).await.str("access_token");
    assert_eq!(claims(&backend)["role"], "backend");
    assert_eq!(app.get("/v1/databases", Some(&backend)).await.status, 200);
    patch_account(&app, &root.jwt(), &id, json!({ "status": "disabled" })).await;
    assert_eq!(app.get("/v1/databases", Some(&backend)).await.status, 401);
    assert_eq!(decide(&app, &backend).await["isAuthorized"], false);
    // Enabled again, the old token stays dead: the disable moved the epoch on.
    patch_account(&app, &root.jwt(), &id, json!({ "status": "active" })).await;
    assert_eq!(app.get("/v1/databases", Some(&backend)).await.status, 401);

    let last = client_credentials(&app, &id, SECRET, &[]).await.str("access_token");
    assert_eq!(app.get("/v1/databases", Some(&last)).await.status, 200);
    let deleted = app
        .send("DELETE", &format!("/v1/accounts/{id}"), Some(&root.jwt()), None)
        .await;
    assert!([202, 204].contains(&deleted.status), "{:?}", deleted.body);
    assert_eq!(app.get("/v1/databases", Some(&last)).await.status, 401);
    assert_eq!(decide(&app, &last).await["isAuthorized"], false);
    assert_oauth_error(&client_credentials(&app, &id, SECRET, &[]).await, 401, "invalid_client");
}

/// Signs `claims` with keygate's current key, as an insider could: every check but the claims themselves passes.
async fn forge(app: &TestApp, claims: &Value) -> String {
    let (kid, key) = app.signing_key().await;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[tokio::test]
async fn a_root_token_and_a_client_token_never_pass_for_each_other() {
    let app = TestApp::spawn().await;
    let root = register_root(&app).await;
    let id = app.service_account(&root.jwt(), "kinds", SECRET, "manager").await;
    let client_jwt = client_credentials(&app, &id, SECRET, &[]).await.str("access_token");
    let root_jwt = app
        .post(
            "/v1/auth/login/root",
            json!({ "email": root.email, "password": PASSWORD }),
        )
        .await
        .str("access_token");
    assert_eq!(app.get("/v1/accounts", Some(&root_jwt)).await.status, 200);
    let client_claims = claims(&client_jwt);
    let root_claims = claims(&root_jwt);

    let mut edits: Vec<Value> = Vec::new();
    // A client token without its client_id reads as a root token: the service account is no root.
    let mut c = client_claims.clone();
    c.as_object_mut().unwrap().remove("client_id");
    edits.push(c);
    // A client token naming another client.
    let mut c = client_claims.clone();
    c["client_id"] = json!(root.id());
    edits.push(c);
    // A client token that says it is an individual's.
    let mut c = client_claims.clone();
    c["acct"] = json!("individual");
    edits.push(c);
    // A client token vouching for an end user.
    let mut c = client_claims.clone();
    c["fuid"] = json!("end-user");
    edits.push(c);
    // A client token acting for someone.
    let mut c = client_claims.clone();
    c["act"] = json!({ "sub": root.id() });
    edits.push(c);
    // A client token with no epoch.
    let mut c = client_claims.clone();
    c.as_object_mut().unwrap().remove("epoch");
    edits.push(c);
    // A root token made a client token.
    let mut r = root_claims.clone();
    r["client_id"] = json!(root.id());
    r["acct"] = json!("service");
    edits.push(r);
    let mut r = root_claims.clone();
    r["client_id"] = json!(root.id());
    edits.push(r);
    // A root token for the service account.
    let mut r = root_claims.clone();
    r["sub"] = json!(id);
    edits.push(r);
    for edited in edits {
        let token = forge(&app, &edited).await;
        let answer = app.get("/v1/accounts", Some(&token)).await;
        assert_eq!(answer.status, 401, "{edited}");
        assert_eq!(decide(&app, &token).await["isAuthorized"], false, "{edited}");
    }
    // The same claims re-signed unchanged still pass: the forger's path is sound, the edits are what failed.
    for unchanged in [&client_claims, &root_claims] {
        let token = forge(&app, unchanged).await;
        assert_eq!(app.get("/v1/accounts", Some(&token)).await.status, 200);
    }
}

#[tokio::test]
async fn the_backoff_is_the_service_logins_and_the_ip_limit_applies() {
    let app = TestApp::spawn().await;
    let root = register_root(&app).await;
    let tenant = root.tenant();
    let id = app.service_account(&root.jwt(), "guarded", SECRET, "backend").await;
    app.state.clock.freeze();
    // Five free failures, shared between the two ways in.
    for i in 0..5 {
        let answer = if i % 2 == 0 {
            client_credentials(&app, &id, "not the secret at all", &[]).await
        } else {
            service_login(
                &app,
                json!({ "service_name": "guarded", "password": "not the secret at all", "tenant_id": tenant }),
            )
            .await
        };
        assert_eq!(answer.status, 401, "{:?}", answer.body);
    }
    // The fifth failure set a wait: the right secret inside it is refused without a verdict.
    let held = client_credentials(&app, &id, SECRET, &[]).await;
    assert_oauth_error(&held, 429, "rate_limited");
    assert!(held.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let login = service_login(
        &app,
        json!({ "service_name": "guarded", "password": SECRET, "tenant_id": tenant }),
    )
    .await;
    assert_eq!(login.status, 429, "the service login waits as well: {:?}", login.body);
    app.state.clock.advance(901);
    let right = client_credentials(&app, &id, SECRET, &[]).await;
    assert_eq!(right.status, 200, "{:?}", right.body);
    // The success cleared the record for both.
    let login = service_login(
        &app,
        json!({ "service_name": "guarded", "password": SECRET, "tenant_id": tenant }),
    )
    .await;
    assert_eq!(login.status, 200);

    // Unknown clients are held back the same way.
    let unknown = "00000000-0000-4000-8000-00000000abcd";
    for _ in 0..5 {
        assert_oauth_error(
            &client_credentials(&app, unknown, SECRET, &[]).await,
            401,
            "invalid_client",
        );
    }
    assert_oauth_error(
        &client_credentials(&app, unknown, SECRET, &[]).await,
        429,
        "rate_limited",
    );

    // The per-IP limit.
    let limited = TestApp::spawn_with(|c| c.rate_limits.verify_per_minute = 3).await;
    let mut last = None;
    for _ in 0..4 {
        last = Some(client_credentials(&limited, &id, "not the secret at all", &[]).await);
    }
    let last = last.unwrap();
    assert_oauth_error(&last, 429, "rate_limited");
    assert!(last.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn discovery_names_the_token_endpoint() {
    let app = TestApp::spawn().await;
    let doc = app.get("/.well-known/openid-configuration", None).await;
    let issuer = &app.state.config.issuer;
    assert_eq!(doc.body["token_endpoint"], format!("{issuer}/v1/oauth/token"));
    assert_eq!(
        doc.body["grant_types_supported"],
        json!(["client_credentials", EXCHANGE])
    );
    assert_eq!(
        doc.body["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
}

// Token exchange.

fn exchange_config(config: &mut keygate::Config) {
    config.scoped_token_resources = vec!["company".to_owned(), "report".to_owned()];
    config.scoped_token_scopes = vec![
        "db:read".to_owned(),
        "databases:read".to_owned(),
        "accounts:read".to_owned(),
    ];
}

async fn exchange(app: &TestApp, subject: &str, resource: &str, scope: &str) -> Answer {
    token_form(
        app,
        None,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("resource", resource),
            ("scope", scope),
        ],
    )
    .await
}

/// Verifies `token` with nothing but the published JWKS, as API Gateway's JWT authorizer would.
async fn verify_with_jwks(app: &TestApp, token: &str, audience: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(app.get("/.well-known/jwks.json", None).await.body).unwrap();
    let header = jsonwebtoken::decode_header(token)?;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the token's key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[&app.state.config.issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|data| data.claims)
}

#[tokio::test]
async fn a_session_token_is_exchanged_for_a_resource_token_that_verifies_with_the_jwks_alone() {
    let app = TestApp::spawn_with(exchange_config).await;
    let (_, session) = app.signed_up_user().await;
    let subject = session.str("access_token");
    let user_id = session.body["user"]["id"].as_str().unwrap().to_owned();

    let exchanged = exchange(&app, &subject, "company:acme-42", "db:read").await;
    assert_eq!(exchanged.status, 200, "{:?}", exchanged.body);
    assert_eq!(exchanged.headers["cache-control"], "no-store");
    assert_eq!(exchanged.headers["pragma"], "no-cache");
    assert_eq!(exchanged.body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(exchanged.body["token_type"], "Bearer");
    assert_eq!(exchanged.body["scope"], "db:read");
    assert!(exchanged.body.get("refresh_token").is_none());
    let expires_in = exchanged.body["expires_in"].as_i64().unwrap();
    assert!((1..=900).contains(&expires_in), "{expires_in}");
    let token = exchanged.str("access_token");

    let claimed = verify_with_jwks(&app, &token, "company:acme-42").await.unwrap();
    assert_eq!(claimed["aud"], "company:acme-42");
    assert_eq!(claimed["iss"], app.state.config.issuer.as_str());
    assert_eq!(claimed["act"], json!({ "sub": user_id }));
    assert_eq!(claimed["tenant"], claims(&subject)["tenant"]);
    assert_eq!(claimed["scope"], "db:read");
    assert_ne!(claimed["sub"], user_id.as_str(), "the visitor is not the user");
    assert!(claimed.get("sid").is_none() && claimed.get("epoch").is_none());
    assert!(claimed["exp"].as_i64().unwrap() - claimed["iat"].as_i64().unwrap() <= 900);
    assert_ne!(claimed["jti"], claims(&subject)["jti"]);
    // Another audience does not verify, and neither does keygate's own.
    assert!(verify_with_jwks(&app, &token, "company:other").await.is_err());
    assert!(verify_with_jwks(&app, &token, &app.state.config.audience)
        .await
        .is_err());

    // keygate's own endpoints and the authorizer refuse it.
    let me = app.me(&token).await;
    assert_eq!((me.status, me.code()), (401, "invalid_token"));
    assert_eq!(app.get("/v1/databases", Some(&token)).await.status, 401);
    assert_eq!(decide(&app, &token).await["isAuthorized"], false);

    // A client-credentials token is a subject too, and the scope may be several.
    let root = register_root(&app).await;
    let id = app.service_account(&root.jwt(), "reporter", SECRET, "backend").await;
    let client_jwt = client_credentials(&app, &id, SECRET, &[]).await.str("access_token");
    let by_client = exchange(&app, &client_jwt, "report:q3", "db:read databases:read").await;
    assert_eq!(by_client.status, 200, "{:?}", by_client.body);
    let claimed = verify_with_jwks(&app, &by_client.str("access_token"), "report:q3")
        .await
        .unwrap();
    assert_eq!(claimed["act"]["sub"], id.as_str());
    assert_eq!(claimed["scope"], "db:read databases:read");
}

#[tokio::test]
async fn an_exchanged_token_never_outlives_its_subject() {
    let app = TestApp::spawn_with(exchange_config).await;
    let (_, session) = app.signed_up_user().await;
    let subject = session.str("access_token");
    let subject_exp = claims(&subject)["exp"].as_i64().unwrap();
    app.state.clock.freeze();
    app.state.clock.advance(600);
    let exchanged = exchange(&app, &subject, "company:1", "db:read").await;
    assert_eq!(exchanged.status, 200, "{:?}", exchanged.body);
    let claimed = claims(&exchanged.str("access_token"));
    assert!(claimed["exp"].as_i64().unwrap() <= subject_exp);
    assert!(exchanged.body["expires_in"].as_i64().unwrap() <= 300);
    // An expired subject is refused.
    app.state.clock.advance(400);
    assert_oauth_error(
        &exchange(&app, &subject, "company:1", "db:read").await,
        400,
        "invalid_request",
    );
}

#[tokio::test]
async fn only_a_live_session_or_client_token_may_be_exchanged() {
    let app = TestApp::spawn_with(exchange_config).await;
    let root = register_root(&app).await;
    let db = app
        .post_as(&root.jwt(), "/v1/databases", json!({ "name": "default" }))
        .await;
    app.service_account(&root.jwt(), "web", SECRET, "frontend").await;

    let mut refused: Vec<(&str, String)> = Vec::new();
    let pat = app
        .post_as(
            &root.jwt(),
            "/v1/api-tokens",
            json!({ "name": "p", "scopes": ["db:read"] }),
        )
        .await;
    refused.push(("a PAT", pat.str("token")));
    let root_token = app
        .post(
            "/v1/auth/login/root",
            json!({ "email": root.email, "password": PASSWORD }),
        )
        .await;
    refused.push(("a root token", root_token.str("access_token")));
    let frontend = service_login(
        &app,
        json!({ "service_name": "web", "password": SECRET, "namespace": db.str("namespace"),
                "frontend_user_id": "end-user-1" }),
    )
    .await;
    assert_eq!(frontend.status, 200, "{:?}", frontend.body);
    refused.push(("a frontend token", frontend.str("access_token")));
    let exchanged = exchange(&app, &root.jwt(), "company:1", "db:read").await;
    assert_eq!(exchanged.status, 200, "{:?}", exchanged.body);
    refused.push(("an exchanged token", exchanged.str("access_token")));
    let scoped = app
        .post_as(
            &root.jwt(),
            "/v1/scoped-tokens",
            json!({ "resource": "company:1", "scopes": ["db:read"] }),
        )
        .await;
    assert_eq!(scoped.status, 201, "{:?}", scoped.body);
    refused.push(("a scoped token", scoped.str("token")));
    // Forged: a session token's claims under a key that is not keygate's.
    let stranger = jsonwebtoken::EncodingKey::from_rsa_pem(
        keygate::keys::KeyMaterial::generate()
            .unwrap()
            .private_key_pem
            .expose_secret()
            .as_bytes(),
    )
    .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = jsonwebtoken::decode_header(root.jwt()).unwrap().kid;
    refused.push((
        "a forged token",
        jsonwebtoken::encode(&header, &claims(&root.jwt()), &stranger).unwrap(),
    ));
    // A token exchanged by an insider for keygate's own audience still acts for someone.
    let mut acting = claims(&root.jwt());
    acting["act"] = json!({ "sub": root.id() });
    refused.push(("a token with act", forge(&app, &acting).await));
    refused.push(("garbage", "not.a.jwt".to_owned()));
    refused.push(("oversized", "a".repeat(8_000)));
    // A session after its logout.
    let (_, gone) = app.signed_up_user().await;
    let logged_out = app
        .post("/v1/auth/logout", json!({ "refresh_token": gone.str("refresh_token") }))
        .await;
    assert_eq!(logged_out.status, 204);
    refused.push(("a logged-out session", gone.str("access_token")));

    for (what, subject) in &refused {
        let answer = exchange(&app, subject, "company:1", "db:read").await;
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (400, Some("invalid_request")),
            "{what}"
        );
        assert_oauth_error(&answer, 400, "invalid_request");
    }
}

#[tokio::test]
async fn the_resource_and_the_scope_of_an_exchange_are_bounded() {
    let app = TestApp::spawn_with(exchange_config).await;
    let root = register_root(&app).await;
    let subject = root.jwt();
    for resource in [
        "invoice:1",
        "company",
        "company:",
        "company:a/b",
        "company:a b",
        "company:a:b",
        &format!("company:{}", "x".repeat(129)),
    ] {
        let answer = exchange(&app, &subject, resource, "db:read").await;
        assert_oauth_error(&answer, 400, "invalid_target");
    }
    // Outside the deployment's anonymous scopes, even though the subject has it.
    assert_oauth_error(
        &exchange(&app, &subject, "company:1", "db:write").await,
        400,
        "invalid_scope",
    );
    assert_oauth_error(
        &exchange(&app, &subject, "company:1", "db:read db:write").await,
        400,
        "invalid_scope",
    );
    // Allowed for anonymous use, but beyond the subject's own scopes.
    let backend = app.service_account(&root.jwt(), "narrow", SECRET, "backend").await;
    let backend_jwt = client_credentials(&app, &backend, SECRET, &[])
        .await
        .str("access_token");
    assert_oauth_error(
        &exchange(&app, &backend_jwt, "company:1", "accounts:read").await,
        400,
        "invalid_scope",
    );
    let narrowed = client_credentials(&app, &backend, SECRET, &[("scope", "databases:read")])
        .await
        .str("access_token");
    assert_oauth_error(
        &exchange(&app, &narrowed, "company:1", "db:read").await,
        400,
        "invalid_scope",
    );
    // A wrong subject_token_type, and none declared at all.
    let wrong_type = token_form(
        &app,
        None,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &subject),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
            ("resource", "company:1"),
            ("scope", "db:read"),
        ],
    )
    .await;
    assert_oauth_error(&wrong_type, 400, "invalid_request");
    let off = TestApp::spawn().await;
    let (_, session) = off.signed_up_user().await;
    let answer = exchange(&off, &session.str("access_token"), "company:1", "db:read").await;
    assert_oauth_error(&answer, 400, "invalid_target");
}

#[tokio::test]
async fn each_grant_makes_the_round_trips_its_doc_comment_says() {
    let app = TestApp::spawn_with(exchange_config).await;
    let root = register_root(&app).await;
    let db = app
        .post_as(&root.jwt(), "/v1/databases", json!({ "name": "default" }))
        .await;
    let id = app.service_account(&root.jwt(), "counted", SECRET, "backend").await;
    let calls = |pairs: &[(&str, u64)]| -> std::collections::BTreeMap<String, u64> {
        pairs.iter().map(|(name, n)| ((*name).to_owned(), *n)).collect()
    };

    app.dynamo_calls.reset();
    let token = client_credentials(&app, &id, SECRET, &[]).await;
    assert_eq!(token.status, 200);
    // The IP counter and the user; the backoff claim; the transaction clearing it.
    assert_eq!(
        app.dynamo_calls.snapshot(),
        calls(&[("GetItem", 1), ("UpdateItem", 2), ("TransactWriteItems", 1)])
    );
    app.dynamo_calls.reset();
    let scoped = client_credentials(&app, &id, SECRET, &[("namespace", &db.str("namespace"))]).await;
    assert_eq!(scoped.status, 200);
    assert_eq!(
        app.dynamo_calls.snapshot(),
        calls(&[("GetItem", 2), ("UpdateItem", 2), ("TransactWriteItems", 1)])
    );
    // A free failure: no clear.
    app.dynamo_calls.reset();
    assert_eq!(client_credentials(&app, &id, "not the secret", &[]).await.status, 401);
    assert_eq!(app.dynamo_calls.snapshot(), calls(&[("GetItem", 1), ("UpdateItem", 2)]));

    // Exchange: one read of the subject's session and user, or of a client token's user.
    app.dynamo_calls.reset();
    assert_eq!(exchange(&app, &root.jwt(), "company:1", "db:read").await.status, 200);
    assert_eq!(app.dynamo_calls.snapshot(), calls(&[("BatchGetItem", 1)]));
    app.dynamo_calls.reset();
    let client_jwt = token.str("access_token");
    assert_eq!(exchange(&app, &client_jwt, "company:1", "db:read").await.status, 200);
    assert_eq!(app.dynamo_calls.snapshot(), calls(&[("GetItem", 1)]));
    // Refused before the subject is read.
    app.dynamo_calls.reset();
    assert_eq!(exchange(&app, &root.jwt(), "invoice:1", "db:read").await.status, 400);
    assert!(app.dynamo_calls.snapshot().is_empty());
}
