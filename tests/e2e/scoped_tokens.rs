//! End-to-end tests of scoped tokens: create, list and revoke over HTTP; the token against the Lambda authorizer
//! (allowed with its resource, denied once revoked, expired, forged, or once its creator loses access) and
//! against keygate's own endpoints (refused); every refusal of create.

use keygate::pat::{self, Pat};
use keygate_e2e::jwt_claims as claims;
use keygate_e2e::{authorizer_event, unique_email, Answer, TestApp, PASSWORD};
use serde_json::{json, Value};

const DAY: i64 = 86_400;

/// The API with scoped tokens on: resource type `company`, anonymous scopes `db:read` and `accounts:read`.
async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| {
        c.scoped_token_resources = vec!["company".into()];
        c.scoped_token_scopes = vec!["db:read".into(), "accounts:read".into()];
    })
    .await
}

async fn create(app: &TestApp, bearer: &str, body: Value) -> Answer {
    app.post_as(bearer, "/v1/scoped-tokens", body).await
}

/// A `db:read` token on `company:acme`, which must be made.
async fn made(app: &TestApp, bearer: &str) -> Answer {
    let answer = create(
        app,
        bearer,
        json!({ "resource": "company:acme", "scopes": ["db:read"] }),
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer
}

async fn list(app: &TestApp, bearer: &str) -> Answer {
    app.get("/v1/scoped-tokens", Some(bearer)).await
}

fn listed_ids(answer: &Answer) -> Vec<String> {
    answer.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn revoke(app: &TestApp, bearer: &str, id: &str) -> Answer {
    app.send("DELETE", &format!("/v1/scoped-tokens/{id}"), Some(bearer), None)
        .await
}

/// The authorizer's answer to `token`, with an `X-Namespace` header when given.
async fn decide_with(app: &TestApp, token: &str, namespace: Option<&str>) -> Value {
    let mut event = authorizer_event(&format!("Bearer {token}"));
    if let Some(namespace) = namespace {
        event["headers"]["x-namespace"] = namespace.into();
    }
    authorizer::handle(&app.state, event).await
}

async fn decide(app: &TestApp, token: &str) -> Value {
    decide_with(app, token, None).await
}

async fn allowed(app: &TestApp, token: &str) -> bool {
    let decided = decide(app, token).await;
    let allowed = decided["isAuthorized"] == true;
    if !allowed {
        assert_eq!(decided, json!({ "isAuthorized": false, "context": {} }));
    }
    allowed
}

fn jwt(tokens: &Answer) -> String {
    tokens.str("access_token")
}

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

/// An account of `role` in the tenant of `root`, invited and accepted: (email, id, its token response).
async fn member(app: &TestApp, root: &str, role: &str) -> (String, String, Answer) {
    let email = unique_email();
    let invited = app
        .post_as(
            root,
            "/v1/accounts/individual",
            json!({ "email": email, "role": role, "name": "Member" }),
        )
        .await;
    assert_eq!(invited.status, 201, "{:?}", invited.body);
    let mut token = None;
    for _ in 0..20 {
        token = app
            .emails_to(&email)
            .await
            .iter()
            .rev()
            .find_map(|(_, body)| invitation_token(body));
        if token.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let accepted = app
        .post(
            "/v1/auth/invitations/accept",
            json!({ "token": token.expect("an invitation"), "password": PASSWORD, "name": "Member" }),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    (email, invited.str("id"), accepted)
}

async fn patch_account(app: &TestApp, root: &str, id: &str, body: Value) -> Answer {
    let answer = app
        .send(
            "PATCH",
            &format!("/v1/accounts/{id}"),
            Some(root),
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer
}

/// A PAT of `session`'s user with `scopes`.
async fn pat(app: &TestApp, session: &str, scopes: &[&str]) -> String {
    let answer = app
        .post_as(session, "/v1/api-tokens", json!({ "name": "p", "scopes": scopes }))
        .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.str("token")
}

#[tokio::test]
async fn a_token_is_created_listed_and_revoked_by_its_creator() {
    let app = spawn().await;
    let (_, session) = app.signed_up_user().await;
    let bearer = jwt(&session);

    app.dynamo_calls.reset();
    let created = create(
        &app,
        &bearer,
        json!({ "resource": "company:acme-42", "scopes": ["db:read", "accounts:read"], "label": "  Q1 board  " }),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    // The authenticating BatchGetItem, the creator's ledger, one transaction.
    assert_eq!(
        app.dynamo_calls.snapshot(),
        [
            ("BatchGetItem".to_owned(), 1),
            ("GetItem".to_owned(), 1),
            ("TransactWriteItems".to_owned(), 1)
        ]
        .into_iter()
        .collect()
    );
    let token = created.str("token");
    let id = created.str("id");
    assert!(token.starts_with(&format!("kgs_{id}.")), "{token}");
    assert_eq!(token.len(), 4 + 22 + 1 + 43 + 6);
    assert_eq!(created.body["resource"], "company:acme-42");
    assert_eq!(created.body["scopes"], json!(["accounts:read", "db:read"]));
    assert_eq!(created.body["label"], "Q1 board");
    let created_at = time::OffsetDateTime::parse(
        &created.str("created_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires_at = time::OffsetDateTime::parse(
        &created.str("expires_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        (expires_at - created_at).whole_seconds(),
        30 * DAY,
        "30 days by default"
    );
    // Only the hash is stored, never the secret.
    let item = &app.items(&format!("SCOPED#{id}")).await[0];
    let secret = &token[token.find('.').unwrap() + 1..];
    assert!(!format!("{item:?}").contains(&secret[..43]));
    assert_eq!(item["creator_id"].as_s().unwrap(), &session.user_id());
    assert_eq!(
        item["tenant_id"].as_s().unwrap(),
        claims(&bearer)["tenant"].as_str().unwrap()
    );

    let second = create(
        &app,
        &bearer,
        json!({ "resource": "company:globex", "scopes": ["db:read"], "expires_in_days": 365 }),
    )
    .await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert!(second.body["label"].is_null());
    app.state.clock.advance(1);
    let third = made(&app, &bearer).await;

    let listed = list(&app, &bearer).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let ids = listed_ids(&listed);
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], third.str("id"), "newest first");
    assert!(ids.contains(&id) && ids.contains(&second.str("id")));
    let raw = String::from_utf8(listed.raw.clone()).unwrap();
    assert!(!raw.contains(&secret[..43]) && !raw.contains("secret_hash") && !raw.contains("\"token\""));
    let first = listed.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap();
    assert_eq!(first["label"], "Q1 board");
    assert_eq!(first["resource"], "company:acme-42");

    assert!(allowed(&app, &token).await);
    let revoked = revoke(&app, &bearer, &id).await;
    assert_eq!(revoked.status, 204, "{:?}", revoked.body);
    assert!(!allowed(&app, &token).await, "revoked at once");
    assert_eq!(listed_ids(&list(&app, &bearer).await).len(), 2);
    assert!(app.items(&format!("SCOPED#{id}")).await.is_empty());
    let again = revoke(&app, &bearer, &id).await;
    assert_eq!((again.status, again.code()), (404, "not_found"));
    for bad in ["nope", "..", "%2e%2e", &"A".repeat(23), &pat::new_id()] {
        let answer = revoke(&app, &bearer, bad).await;
        assert_eq!((answer.status, answer.code()), (404, "not_found"), "{bad}");
    }
    // The others still work, and a PAT with tokens:write manages them too.
    assert!(allowed(&app, &second.str("token")).await);
    let manager_pat = pat(&app, &bearer, &["tokens:write", "db:read"]).await;
    assert_eq!(listed_ids(&list(&app, &manager_pat).await).len(), 2);
    made(&app, &manager_pat).await;
    assert_eq!(revoke(&app, &manager_pat, &second.str("id")).await.status, 204);
    assert!(!allowed(&app, &second.str("token")).await);
}

#[tokio::test]
async fn the_authorizer_passes_the_resource_the_scopes_and_the_creator() {
    let app = spawn().await;
    let (_, session) = app.signed_up_user().await;
    let created = made(&app, &jwt(&session)).await;
    let token = created.str("token");

    app.dynamo_calls.reset();
    let decided = decide(&app, &token).await;
    assert_eq!(
        decided,
        json!({ "isAuthorized": true, "context": {
            "token_type": "scoped",
            "token_id": created.str("id"),
            "resource": "company:acme",
            "scopes": "db:read",
            "act": session.user_id(),
            "tenant": claims(&jwt(&session))["tenant"],
        } }),
        "no sub: the caller is anonymous, never the creator"
    );
    // The token, then its creator, both strongly consistent.
    assert_eq!(
        app.dynamo_calls.snapshot(),
        [("GetItem".to_owned(), 2)].into_iter().collect()
    );
    // Bound to its resource, not to a database: an X-Namespace header is a deny, with no read.
    app.dynamo_calls.reset();
    assert_eq!(
        decide_with(&app, &token, Some("acme/default")).await["isAuthorized"],
        false
    );
    assert_eq!(decide_with(&app, &token, Some("")).await["isAuthorized"], false);
    assert!(app.dynamo_calls.snapshot().is_empty());
}

#[tokio::test]
async fn forged_tampered_and_misprefixed_tokens_are_denied_without_a_read_for_a_typo() {
    let app = spawn().await;
    let (_, session) = app.signed_up_user().await;
    let created = made(&app, &jwt(&session)).await;
    let token = created.str("token");
    let id = created.str("id");
    assert!(allowed(&app, &token).await);

    // A typo anywhere, a wrong checksum, another prefix: refused by the shape or the checksum, no read.
    let mut typo = token.clone().into_bytes();
    let at = token.len() - 10;
    typo[at] = if typo[at] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).unwrap();
    let mut wrong_sum = token[..token.len() - 6].to_owned();
    wrong_sum.push_str(if token.ends_with("AAAAAA") { "BBBBBB" } else { "AAAAAA" });
    let as_pat = format!("kg_{}", &token[4..]);
    // The same id under the PAT prefix with a valid checksum: a PAT lookup that finds nothing.
    let as_pat_rechecked = Pat::generate(&id).expose("kg");
    app.dynamo_calls.reset();
    for bad in [
        typo.as_str(),
        wrong_sum.as_str(),
        as_pat.as_str(),
        &token[..token.len() - 1],
        &format!("{token}A"),
        "kgs_",
        "kgs_abc.def",
        "KGS_abc",
    ] {
        assert!(!allowed(&app, bad).await, "{bad}");
    }
    assert!(
        app.dynamo_calls.snapshot().is_empty(),
        "{:?}",
        app.dynamo_calls.snapshot()
    );
    // Well-formed with a valid checksum, but a secret nobody issued: the real id, or an id that does not exist;
    // and a real PAT-shaped token for that id: denied.
    for forged in [
        Pat::generate(&id).expose("kgs"),
        Pat::generate(&pat::new_id()).expose("kgs"),
        as_pat_rechecked,
    ] {
        assert!(!allowed(&app, &forged).await, "{forged}");
    }
    // A PAT is still a PAT, and a scoped token is not one.
    let real_pat = pat(&app, &jwt(&session), &["profile:read"]).await;
    assert_eq!(decide(&app, &real_pat).await["context"]["token_type"], "pat");
    assert!(allowed(&app, &token).await, "the real one still works");
}

#[tokio::test]
async fn keygates_own_endpoints_refuse_a_scoped_token() {
    let app = spawn().await;
    let (_, session) = app.signed_up_user().await;
    let token = made(&app, &jwt(&session)).await.str("token");
    for (method, path) in [
        ("GET", "/v1/auth/me"),
        ("GET", "/v1/auth/sessions"),
        ("GET", "/v1/api-tokens"),
        ("GET", "/v1/scoped-tokens"),
        ("GET", "/v1/databases"),
    ] {
        let answer = app.send(method, path, Some(&token), None).await;
        assert_eq!((answer.status, answer.code()), (401, "invalid_token"), "{path}");
        assert!(answer.headers.contains_key("www-authenticate"), "{path}");
    }
    let minted = create(
        &app,
        &token,
        json!({ "resource": "company:acme", "scopes": ["db:read"] }),
    )
    .await;
    assert_eq!((minted.status, minted.code()), (401, "invalid_token"));
}

#[tokio::test]
async fn an_expired_token_is_denied_and_no_longer_listed() {
    let app = spawn().await;
    let (_, session) = app.signed_up_user().await;
    let bearer = jwt(&session);
    // Frozen, so the second before the expiry is exactly that.
    app.state.clock.freeze();
    let short = create(
        &app,
        &bearer,
        json!({ "resource": "company:acme", "scopes": ["db:read"], "expires_in_days": 1 }),
    )
    .await;
    assert_eq!(short.status, 201, "{:?}", short.body);
    let long = made(&app, &bearer).await;
    app.state.clock.advance(DAY - 1);
    assert!(allowed(&app, &short.str("token")).await);
    // Expiry is checked in code: moto, like TTL, leaves the item in place.
    app.state.clock.advance(1);
    assert!(!allowed(&app, &short.str("token")).await);
    assert_eq!(app.items(&format!("SCOPED#{}", short.str("id"))).await.len(), 1);
    assert!(allowed(&app, &long.str("token")).await);
    // A fresh session to list with: the first one's JWT has expired meanwhile.
    let email = session.body["user"]["email"].as_str().unwrap().to_owned();
    let bearer = jwt(&app.login(&email, PASSWORD).await);
    assert_eq!(listed_ids(&list(&app, &bearer).await), vec![long.str("id")]);
}

#[tokio::test]
async fn a_disabled_creators_tokens_stop_at_once_and_stay_dead() {
    let app = spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let (_, id, manager) = member(&app, &root, "manager").await;
    let token = made(&app, &jwt(&manager)).await.str("token");
    assert!(allowed(&app, &token).await);
    patch_account(&app, &root, &id, json!({ "status": "disabled" })).await;
    assert!(!allowed(&app, &token).await);
    // Enabled again: the disable bumped the token epoch, so the old token stays revoked.
    patch_account(&app, &root, &id, json!({ "status": "active" })).await;
    assert!(!allowed(&app, &token).await);
}

#[tokio::test]
async fn a_demoted_creators_tokens_stop_when_the_new_role_lacks_a_scope() {
    let app = spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root = jwt(&root);
    let (email, id, manager) = member(&app, &root, "manager").await;
    // accounts:read is a manager's and not a backend's; db:read is both's.
    let beyond = create(
        &app,
        &jwt(&manager),
        json!({ "resource": "company:acme", "scopes": ["accounts:read", "db:read"] }),
    )
    .await;
    assert_eq!(beyond.status, 201, "{:?}", beyond.body);
    let within = made(&app, &jwt(&manager)).await;
    assert!(allowed(&app, &beyond.str("token")).await);
    patch_account(&app, &root, &id, json!({ "role": "backend" })).await;
    assert!(!allowed(&app, &beyond.str("token")).await, "denied, not narrowed");
    assert!(allowed(&app, &within.str("token")).await);
    // Nor can the backend mint one with what it lost.
    let relogin = app.login(&email, PASSWORD).await;
    let refused = create(
        &app,
        &jwt(&relogin),
        json!({ "resource": "company:acme", "scopes": ["accounts:read"] }),
    )
    .await;
    assert_eq!((refused.status, refused.code()), (403, "insufficient_scope"));
    // Promoted back, the token works again: it was never revoked, only out of the creator's reach.
    patch_account(&app, &root, &id, json!({ "role": "manager" })).await;
    assert!(allowed(&app, &beyond.str("token")).await);
}

#[tokio::test]
async fn a_token_epoch_bump_revokes_every_scoped_token() {
    let app = spawn().await;
    let (email, session) = app.signed_up_user().await;
    let one = made(&app, &jwt(&session)).await;
    let two = made(&app, &jwt(&session)).await;
    assert!(allowed(&app, &one.str("token")).await);
    assert_eq!(app.reset_password(&email, "a brand new passphrase").await.status, 204);
    assert!(!allowed(&app, &one.str("token")).await);
    assert!(!allowed(&app, &two.str("token")).await);
    let fresh = app.login(&email, "a brand new passphrase").await;
    assert!(listed_ids(&list(&app, &jwt(&fresh)).await).is_empty());
    // A token made after the bump works.
    assert!(allowed(&app, &made(&app, &jwt(&fresh)).await.str("token")).await);
}

#[tokio::test]
async fn another_users_token_cannot_be_revoked_and_keeps_working() {
    let app = spawn().await;
    let (_, alice) = app.signed_up_user().await;
    let (_, mallory) = app.signed_up_user().await;
    let token = made(&app, &jwt(&alice)).await;
    let answer = revoke(&app, &jwt(&mallory), &token.str("id")).await;
    assert_eq!((answer.status, answer.code()), (404, "not_found"));
    assert!(listed_ids(&list(&app, &jwt(&mallory)).await).is_empty());
    assert!(allowed(&app, &token.str("token")).await);
    assert_eq!(listed_ids(&list(&app, &jwt(&alice)).await), vec![token.str("id")]);
}

#[tokio::test]
async fn create_refuses_what_it_must() {
    let app = spawn().await;
    let (_, session) = app.signed_up_user().await;
    let bearer = jwt(&session);
    let ok = json!({ "resource": "company:acme", "scopes": ["db:read"] });
    let with = |field: &str, value: Value| {
        let mut body = ok.clone();
        body[field] = value;
        body
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (with("resource", json!("invoice:1")), 422, "invalid_field"),
        (with("resource", json!("Company:acme")), 422, "invalid_field"),
        (with("resource", json!("company")), 422, "invalid_field"),
        (with("resource", json!("company:")), 422, "invalid_field"),
        (with("resource", json!(":acme")), 422, "invalid_field"),
        (with("resource", json!("company:a b")), 422, "invalid_field"),
        (with("resource", json!("company:a/../b")), 422, "invalid_field"),
        (with("resource", json!("company:a:b")), 422, "invalid_field"),
        (with("resource", json!("company:\u{202e}x")), 422, "invalid_field"),
        (
            with("resource", json!(format!("company:{}", "a".repeat(129)))),
            422,
            "invalid_field",
        ),
        (with("resource", json!(7)), 400, "invalid_request"),
        (with("resource", Value::Null), 400, "invalid_request"),
        (with("scopes", json!([])), 422, "invalid_scope"),
        (with("scopes", json!(["db:read", "db:read"])), 422, "invalid_scope"),
        (with("scopes", json!(["profile:read"])), 422, "invalid_scope"),
        (with("scopes", json!(["db:write"])), 422, "invalid_scope"),
        (with("scopes", json!(["no:such"])), 422, "invalid_scope"),
        (with("scopes", json!("db:read")), 400, "invalid_request"),
        (with("expires_in_days", json!(0)), 422, "invalid_field"),
        (with("expires_in_days", json!(366)), 422, "invalid_field"),
        (with("expires_in_days", json!(-1)), 422, "invalid_field"),
        (with("expires_in_days", Value::Null), 422, "invalid_field"),
        (with("expires_in_days", json!("30")), 400, "invalid_request"),
        (with("expires_in_days", json!(1.5)), 400, "invalid_request"),
        (with("label", json!("x".repeat(101))), 422, "invalid_field"),
        (with("label", json!("")), 422, "invalid_field"),
        (with("label", json!("bell\u{7}")), 422, "invalid_field"),
        (with("label", json!(["x"])), 400, "invalid_request"),
        (json!({ "scopes": ["db:read"] }), 400, "invalid_request"),
        (json!({ "resource": "company:acme" }), 400, "invalid_request"),
        (json!([]), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let answer = create(&app, &bearer, body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{body}");
    }
    for raw in [
        "{",
        "not json",
        "{\"resource\": \"company:acme\", \"scopes\": [\"db:read\"]",
    ] {
        let answer = app
            .send(
                "POST",
                "/v1/scoped-tokens",
                Some(&bearer),
                Some(raw.as_bytes().to_vec()),
            )
            .await;
        assert_eq!((answer.status, answer.code()), (400, "malformed_json"), "{raw}");
    }
    let huge = json!({ "resource": "company:acme", "scopes": ["db:read"], "label": "x".repeat(20_000) });
    assert_eq!(create(&app, &bearer, huge).await.status, 413);
    // The edges that are fine.
    for body in [
        with("expires_in_days", json!(1)),
        with("expires_in_days", json!(365)),
        with("label", json!("é".repeat(100))),
        with("label", Value::Null),
        with("resource", json!(format!("company:{}", "a".repeat(128)))),
        with("resource", json!("company:A-z_0.9~")),
    ] {
        let answer = create(&app, &bearer, body.clone()).await;
        assert_eq!(answer.status, 201, "{body}: {:?}", answer.body);
    }
    // Nothing was stored by the refusals.
    assert_eq!(listed_ids(&list(&app, &bearer).await).len(), 6);
    let anonymous = app.post("/v1/scoped-tokens", ok.clone()).await;
    assert_eq!((anonymous.status, anonymous.code()), (401, "invalid_token"));
    assert_eq!(app.get("/v1/scoped-tokens", None).await.status, 401);
    assert_eq!(revoke_anonymously(&app).await, 401);
}

async fn revoke_anonymously(app: &TestApp) -> u16 {
    app.send("DELETE", &format!("/v1/scoped-tokens/{}", pat::new_id()), None, None)
        .await
        .status
}

#[tokio::test]
async fn only_a_credential_with_tokens_write_and_the_scopes_may_create() {
    let app = spawn().await;
    let (_, session) = app.signed_up_user().await;
    let bearer = jwt(&session);
    let body = json!({ "resource": "company:acme", "scopes": ["db:read"] });

    // A PAT without tokens:write: refused on every scoped-token endpoint.
    let reader = pat(&app, &bearer, &["db:read", "profile:read"]).await;
    for answer in [
        create(&app, &reader, body.clone()).await,
        list(&app, &reader).await,
        revoke(&app, &reader, &pat::new_id()).await,
    ] {
        assert_eq!((answer.status, answer.code()), (403, "insufficient_scope"));
    }
    // A PAT with tokens:write but not the scope asked for.
    let writer = pat(&app, &bearer, &["tokens:write"]).await;
    let lacking = create(&app, &writer, body.clone()).await;
    assert_eq!((lacking.status, lacking.code()), (403, "insufficient_scope"));
    assert_eq!(
        create(
            &app,
            &pat(&app, &bearer, &["tokens:write", "db:read"]).await,
            body.clone()
        )
        .await
        .status,
        201
    );

    // A frontend token carries no tokens:write.
    let tenant = claims(&bearer)["tenant"].as_str().unwrap().to_owned();
    let service = app
        .post_as(
            &bearer,
            "/v1/accounts/service",
            json!({ "service_name": "web", "password": PASSWORD, "role": "frontend" }),
        )
        .await;
    assert_eq!(service.status, 201, "{:?}", service.body);
    let frontend = app
        .post(
            "/v1/auth/login/service",
            json!({ "service_name": "web", "password": PASSWORD, "tenant_id": tenant,
                    "frontend_user_id": "end-user-1" }),
        )
        .await;
    assert_eq!(frontend.status, 200, "{:?}", frontend.body);
    let frontend = jwt(&frontend);
    for answer in [
        create(&app, &frontend, body.clone()).await,
        list(&app, &frontend).await,
        revoke(&app, &frontend, &pat::new_id()).await,
    ] {
        assert_eq!((answer.status, answer.code()), (403, "insufficient_scope"));
    }
    // A machine with tokens:write may: a backend service account's session.
    let worker = app
        .post_as(
            &bearer,
            "/v1/accounts/service",
            json!({ "service_name": "worker", "password": PASSWORD, "role": "backend" }),
        )
        .await;
    assert_eq!(worker.status, 201, "{:?}", worker.body);
    let worker = app
        .post(
            "/v1/auth/login/service",
            json!({ "service_name": "worker", "password": PASSWORD, "tenant_id": tenant }),
        )
        .await;
    let created = made(&app, &jwt(&worker)).await;
    let decided = decide(&app, &created.str("token")).await;
    assert_eq!(decided["context"]["act"], worker.body["user"]["id"]);
}

#[tokio::test]
async fn a_creator_holds_at_most_a_hundred_live_tokens() {
    let app = spawn().await;
    let (_, session) = app.signed_up_user().await;
    let bearer = jwt(&session);
    let mut first = None;
    for day in 1..=100 {
        let answer = create(
            &app,
            &bearer,
            json!({ "resource": "company:acme", "scopes": ["db:read"], "expires_in_days": day.min(2) }),
        )
        .await;
        assert_eq!(answer.status, 201, "{day}: {:?}", answer.body);
        first.get_or_insert(answer);
    }
    let body = json!({ "resource": "company:acme", "scopes": ["db:read"] });
    let over = create(&app, &bearer, body.clone()).await;
    assert_eq!((over.status, over.code()), (409, "limit_reached"));
    // Revoking one frees a place.
    let first = first.unwrap();
    assert_eq!(revoke(&app, &bearer, &first.str("id")).await.status, 204);
    made(&app, &bearer).await;
    assert_eq!(create(&app, &bearer, body.clone()).await.code(), "limit_reached");
    // Expired ones do not count: 99 of them lived two days.
    app.state.clock.advance(2 * DAY);
    let email = session.body["user"]["email"].as_str().unwrap().to_owned();
    let bearer = jwt(&app.login(&email, PASSWORD).await);
    made(&app, &bearer).await;
    assert_eq!(listed_ids(&list(&app, &bearer).await).len(), 2);
}

#[tokio::test]
async fn concurrent_creations_of_one_creator_are_all_counted() {
    let app = spawn().await;
    let (_, session) = app.signed_up_user().await;
    let bearer = jwt(&session);
    let body = json!({ "resource": "company:acme", "scopes": ["db:read"] });
    let answers = futures::future::join_all((0..6).map(|_| create(&app, &bearer, body.clone()))).await;
    assert!(
        answers
            .iter()
            .all(|a| a.status == 201 || (a.status, a.code()) == (409, "conflict")),
        "{:?}",
        answers
            .iter()
            .map(|a| (a.status, a.code().to_owned()))
            .collect::<Vec<_>>()
    );
    let made = answers.iter().filter(|a| a.status == 201).count();
    assert!(made >= 1);
    let ledger = &app.items(&format!("USER#{}", session.user_id())).await;
    let ledger = ledger.iter().find(|i| i["sk"].as_s().unwrap() == "SCOPED").unwrap();
    assert_eq!(
        ledger["tokens"].as_m().unwrap().len(),
        made,
        "every token made is in the ledger"
    );
    assert_eq!(listed_ids(&list(&app, &bearer).await).len(), made);
}

#[tokio::test]
async fn with_no_resource_type_declared_the_feature_is_off() {
    let app = TestApp::spawn_with(|c| {
        c.scoped_token_resources = Vec::new();
        c.scoped_token_scopes = vec!["db:read".into()];
    })
    .await;
    let (_, session) = app.signed_up_user().await;
    let answer = create(
        &app,
        &jwt(&session),
        json!({ "resource": "company:acme", "scopes": ["db:read"] }),
    )
    .await;
    assert_eq!((answer.status, answer.code()), (404, "not_found"));
    // Listing and revoking still answer, so what was made before can be seen and removed.
    let listed = list(&app, &jwt(&session)).await;
    assert_eq!((listed.status, listed.body.clone()), (200, json!({ "tokens": [] })));
    // And the authorizer accepts none.
    let wellformed = Pat::generate(&pat::new_id()).expose("kgs");
    app.dynamo_calls.reset();
    assert!(!allowed(&app, &wellformed).await);
    assert!(app.dynamo_calls.snapshot().is_empty());
}
