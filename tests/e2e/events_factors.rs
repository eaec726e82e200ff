//! Issue 16 §2: the security events of second factors, passkeys, PATs and scoped tokens, read back from
//! `GET /v1/auth/events`: each action records its event (with the caller's address, User-Agent, device and session),
//! a refused action records none, and no event holds a secret.

use crate::events::own_events;
use keygate_e2e::passkey::SoftPasskey;
use keygate_e2e::{jwt_claims, Answer, TestApp, PASSWORD};
use serde_json::{json, Value};

const FIREFOX: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0";
const FIREFOX_DEVICE: &str = "Firefox on macOS";

/// A browser on the test app's client address, with a User-Agent, so that events have one to record.
struct Browser {
    base: String,
    client: reqwest::Client,
}

impl Browser {
    fn of(app: &TestApp) -> Self {
        Self {
            base: app.base.clone(),
            client: reqwest::Client::builder()
                .local_address(app.ip)
                .no_proxy()
                .user_agent(FIREFOX)
                .build()
                .unwrap(),
        }
    }

    async fn send(&self, method: &str, path: &str, bearer: Option<&str>, body: Option<Value>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
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

    async fn post(&self, bearer: &str, path: &str, body: Value) -> Answer {
        self.send("POST", path, Some(bearer), Some(body)).await
    }

    async fn delete(&self, bearer: &str, path: &str) -> Answer {
        self.send("DELETE", path, Some(bearer), None).await
    }
}

fn tenant_of(tokens: &Answer) -> String {
    jwt_claims(&tokens.str("access_token"))["tenant"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The caller's events of type `kind`, newest first.
async fn events_of(app: &TestApp, bearer: &str, kind: &str) -> Vec<Value> {
    own_events(app, bearer)
        .await
        .into_iter()
        .filter(|event| event["type"] == kind)
        .collect()
}

/// The only event of type `kind`, which must exist.
async fn the_event(app: &TestApp, bearer: &str, kind: &str) -> Value {
    let found = events_of(app, bearer, kind).await;
    assert_eq!(found.len(), 1, "one {kind}: {found:?}");
    found.into_iter().next().unwrap()
}

/// Checks what every event of a browser's own action carries: the account, its tenant, the session, the client.
fn assert_from_browser(app: &TestApp, event: &Value, owner: &Answer, session_id: Option<&str>) {
    assert_eq!(event["target_id"], owner.user_id().as_str(), "{event}");
    assert_eq!(event["tenant_id"], tenant_of(owner).as_str(), "{event}");
    assert!(event.get("actor_id").is_none(), "the account acted itself: {event}");
    match session_id {
        Some(id) => assert_eq!(event["session_id"], id, "{event}"),
        None => assert!(event.get("session_id").is_none(), "{event}"),
    }
    assert_eq!(event["ip"], app.ip.to_string().as_str(), "{event}");
    assert_eq!(event["user_agent"], FIREFOX, "{event}");
    assert_eq!(event["device"], FIREFOX_DEVICE, "{event}");
    assert!(event["at"].as_str().unwrap().ends_with('Z'), "{event}");
    assert_eq!(event["id"].as_str().unwrap().len(), 16, "{event}");
}

/// The code of the step holding `at`.
fn code_at(secret: &[u8], at: i64) -> String {
    totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .build()
        .unwrap()
        .generate(u64::try_from(at).unwrap())
        .to_string()
}

/// Moves the clock one step on (each step is accepted once per account) and gives that step's code.
fn next_code(app: &TestApp, secret: &[u8]) -> String {
    app.state.clock.advance(30);
    code_at(secret, app.state.clock.now())
}

/// A signed-up user with two-factor authentication turned on from `browser`.
struct Enrolled {
    email: String,
    session: Answer,
    base32: String,
    secret: Vec<u8>,
    backup_codes: Vec<String>,
}

impl Enrolled {
    fn jwt(&self) -> String {
        self.session.str("access_token")
    }

    fn session_id(&self) -> String {
        self.session.str("session_id")
    }
}

fn codes_of(answer: &Answer) -> Vec<String> {
    answer.body["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

async fn enrolled(app: &TestApp, browser: &Browser) -> Enrolled {
    app.state.clock.freeze();
    let (email, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    let setup = browser.post(&jwt, "/v1/auth/2fa/setup", json!({})).await;
    assert_eq!(setup.status, 200, "{:?}", setup.body);
    let base32 = setup.str("secret");
    let secret = totp_rs::Secret::try_from_base32(&base32).unwrap().as_bytes().to_vec();
    let code = code_at(&secret, app.state.clock.now());
    let enabled = browser.post(&jwt, "/v1/auth/2fa/enable", json!({ "code": code })).await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    Enrolled {
        email,
        backup_codes: codes_of(&enabled),
        session,
        base32,
        secret,
    }
}

#[tokio::test]
async fn turning_two_factor_on_regenerating_and_off_are_recorded_and_wrong_codes_record_nothing() {
    let app = TestApp::spawn().await;
    let browser = Browser::of(&app);
    let user = enrolled(&app, &browser).await;
    let jwt = user.jwt();

    let enabled = the_event(&app, &jwt, "mfa_enabled").await;
    assert_from_browser(&app, &enabled, &user.session, Some(&user.session_id()));
    assert_eq!(enabled["details"], json!({}), "{enabled}");

    // Wrong codes change nothing, so they record nothing.
    let before = own_events(&app, &jwt).await;
    let wrong = browser
        .post(
            &jwt,
            "/v1/auth/2fa/backup-codes/regenerate",
            json!({ "code": "000000" }),
        )
        .await;
    assert_eq!((wrong.status, wrong.code()), (400, "invalid_code"));
    let backup_for_regenerate = browser
        .post(
            &jwt,
            "/v1/auth/2fa/backup-codes/regenerate",
            json!({ "code": user.backup_codes[0] }),
        )
        .await;
    assert_eq!(
        (backup_for_regenerate.status, backup_for_regenerate.code()),
        (400, "invalid_code")
    );
    let wrong = browser
        .post(&jwt, "/v1/auth/2fa/disable", json!({ "code": "000000" }))
        .await;
    assert_eq!((wrong.status, wrong.code()), (400, "invalid_code"));
    let reused = browser
        .post(
            &jwt,
            "/v1/auth/2fa/enable",
            json!({ "code": next_code(&app, &user.secret) }),
        )
        .await;
    assert_eq!((reused.status, reused.code()), (409, "mfa_already_enabled"));
    assert_eq!(own_events(&app, &jwt).await, before, "no event for a refusal");

    app.dynamo_calls.reset();
    let regenerated = browser
        .post(
            &jwt,
            "/v1/auth/2fa/backup-codes/regenerate",
            json!({ "code": next_code(&app, &user.secret) }),
        )
        .await;
    assert_eq!(regenerated.status, 200, "{:?}", regenerated.body);
    assert_eq!(
        app.dynamo_calls.snapshot().get("TransactWriteItems"),
        Some(&1),
        "the event rides in the one transaction: {:?}",
        app.dynamo_calls.snapshot()
    );
    assert_eq!(app.dynamo_calls.snapshot().get("PutItem"), None);
    let event = the_event(&app, &jwt, "backup_codes_regenerated").await;
    assert_from_browser(&app, &event, &user.session, Some(&user.session_id()));
    assert_eq!(event["details"], json!({ "count": "10" }));

    // Off with one of the new backup codes: the event says which factor proved it.
    let new_codes = codes_of(&regenerated);
    let off = browser
        .post(&jwt, "/v1/auth/2fa/disable", json!({ "code": new_codes[4] }))
        .await;
    assert_eq!(off.status, 204, "{:?}", off.body);
    let disabled = the_event(&app, &jwt, "mfa_disabled").await;
    assert_from_browser(&app, &disabled, &user.session, Some(&user.session_id()));
    assert_eq!(disabled["details"], json!({ "method": "backup_code" }));
    assert!(
        events_of(&app, &jwt, "backup_code_used").await.is_empty(),
        "turning it off is not a sign-in"
    );

    // Off again: 409, and still one `mfa_disabled`.
    let again = browser
        .post(
            &jwt,
            "/v1/auth/2fa/disable",
            json!({ "code": next_code(&app, &user.secret) }),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "mfa_not_enabled"));
    the_event(&app, &jwt, "mfa_disabled").await;
}

#[tokio::test]
async fn turning_two_factor_off_with_a_totp_code_names_it() {
    let app = TestApp::spawn().await;
    let browser = Browser::of(&app);
    let user = enrolled(&app, &browser).await;
    let off = browser
        .post(
            &user.jwt(),
            "/v1/auth/2fa/disable",
            json!({ "code": next_code(&app, &user.secret) }),
        )
        .await;
    assert_eq!(off.status, 204, "{:?}", off.body);
    let disabled = the_event(&app, &user.jwt(), "mfa_disabled").await;
    assert_eq!(disabled["details"], json!({ "method": "totp" }));
}

async fn challenge_of(browser: &Browser, email: &str) -> String {
    let login = browser
        .send(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({ "email": email, "password": PASSWORD })),
        )
        .await;
    assert_eq!(login.body["mfa_required"], true, "{:?}", login.body);
    login.str("challenge_token")
}

async fn answer(browser: &Browser, challenge: &str, code: &str) -> Answer {
    browser
        .send(
            "POST",
            "/v1/auth/2fa/verify",
            None,
            Some(json!({ "challenge_token": challenge, "code": code })),
        )
        .await
}

#[tokio::test]
async fn a_backup_code_spent_at_a_challenge_is_recorded_in_the_session_it_opens() {
    let app = TestApp::spawn().await;
    let browser = Browser::of(&app);
    let user = enrolled(&app, &browser).await;
    let jwt = user.jwt();

    // A TOTP code spends no backup code: no `backup_code_used`.
    let challenge = challenge_of(&browser, &user.email).await;
    let with_totp = answer(&browser, &challenge, &next_code(&app, &user.secret)).await;
    assert_eq!(with_totp.status, 200, "{:?}", with_totp.body);
    assert!(events_of(&app, &jwt, "backup_code_used").await.is_empty());

    // Wrong and unknown codes at a challenge record no `backup_code_used` and open no session.
    let challenge = challenge_of(&browser, &user.email).await;
    let signed_in_before = events_of(&app, &jwt, "signed_in").await.len();
    for wrong in ["000000", "abcd-efgh", "zzzzzzzz"] {
        let refused = answer(&browser, &challenge, wrong).await;
        assert_eq!((refused.status, refused.code()), (400, "invalid_code"), "{wrong}");
    }
    assert!(events_of(&app, &jwt, "backup_code_used").await.is_empty());
    assert_eq!(events_of(&app, &jwt, "signed_in").await.len(), signed_in_before);

    app.dynamo_calls.reset();
    let tokens = answer(&browser, &challenge, &user.backup_codes[2]).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(
        app.dynamo_calls.snapshot().get("TransactWriteItems"),
        Some(&1),
        "{:?}",
        app.dynamo_calls.snapshot()
    );
    assert_eq!(app.dynamo_calls.snapshot().get("PutItem"), None);
    let used = the_event(&app, &jwt, "backup_code_used").await;
    assert_from_browser(&app, &used, &user.session, Some(&tokens.str("session_id")));
    assert_eq!(used["details"], json!({ "remaining": "9" }));
    let session_id = tokens.str("session_id");
    assert!(
        events_of(&app, &jwt, "signed_in")
            .await
            .iter()
            .any(|event| event["session_id"] == session_id.as_str()),
        "the session the backup code opened signed in"
    );

    // The same code again is refused, and records nothing more.
    let challenge = challenge_of(&browser, &user.email).await;
    let reused = answer(&browser, &challenge, &user.backup_codes[2]).await;
    assert_eq!((reused.status, reused.code()), (400, "invalid_code"));
    the_event(&app, &jwt, "backup_code_used").await;
}

/// Registers a new passkey from `browser` for the session `jwt`, named `name`.
async fn register(browser: &Browser, jwt: &str, name: &str) -> (SoftPasskey, Answer) {
    let options = browser.post(jwt, "/v1/auth/passkey/register/options", json!({})).await;
    assert_eq!(options.status, 200, "{:?}", options.body);
    let key = SoftPasskey::new(&options.body["options"]);
    let body = json!({
        "ceremony_id": options.str("ceremony_id"),
        "credential": key.attest(&options.body["options"]),
        "name": name,
    });
    (key, browser.post(jwt, "/v1/auth/passkey/register/verify", body).await)
}

#[tokio::test]
async fn adding_and_removing_a_passkey_is_recorded_and_refusals_are_not() {
    let app = TestApp::spawn().await;
    let browser = Browser::of(&app);
    let (_, owner) = app.signed_up_user().await;
    let (_, stranger) = app.signed_up_user().await;
    let jwt = owner.str("access_token");

    app.dynamo_calls.reset();
    let (key, created) = register(&browser, &jwt, "Work laptop").await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    // The authenticating BatchGetItem, the ceremony, one transaction.
    assert_eq!(
        app.dynamo_calls.snapshot().get("TransactWriteItems"),
        Some(&1),
        "{:?}",
        app.dynamo_calls.snapshot()
    );
    let passkey_id = created.str("id");
    let added = the_event(&app, &jwt, "passkey_added").await;
    assert_from_browser(&app, &added, &owner, Some(&owner.str("session_id")));
    assert_eq!(
        added["details"],
        json!({ "passkey_id": passkey_id, "name": "Work laptop" })
    );

    // The same credential again: 409 on the marker's condition, and no second event.
    let options = browser.post(&jwt, "/v1/auth/passkey/register/options", json!({})).await;
    let again = browser
        .post(
            &jwt,
            "/v1/auth/passkey/register/verify",
            json!({ "ceremony_id": options.str("ceremony_id"), "credential": key.attest(&options.body["options"]) }),
        )
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    the_event(&app, &jwt, "passkey_added").await;

    // Another account cannot remove it (404), and that records nothing for either account.
    let path = format!("/v1/auth/passkey/{passkey_id}");
    let foreign = browser.delete(&stranger.str("access_token"), &path).await;
    assert_eq!(foreign.status, 404);
    assert!(events_of(&app, &jwt, "passkey_removed").await.is_empty());
    assert!(events_of(&app, &stranger.str("access_token"), "passkey_removed")
        .await
        .is_empty());

    app.dynamo_calls.reset();
    let removed = browser.delete(&jwt, &path).await;
    assert_eq!(removed.status, 204, "{:?}", removed.body);
    assert_eq!(
        app.dynamo_calls.snapshot(),
        [
            ("BatchGetItem".to_owned(), 1),
            ("GetItem".to_owned(), 1),
            ("TransactWriteItems".to_owned(), 1)
        ]
        .into_iter()
        .collect(),
        "the event adds no round trip"
    );
    let event = the_event(&app, &jwt, "passkey_removed").await;
    assert_from_browser(&app, &event, &owner, Some(&owner.str("session_id")));
    assert_eq!(
        event["details"],
        json!({ "passkey_id": passkey_id, "name": "Work laptop" })
    );
    assert_eq!(browser.delete(&jwt, &path).await.status, 404);
    the_event(&app, &jwt, "passkey_removed").await;
}

fn calls(pairs: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
    pairs.iter().map(|(name, count)| ((*name).to_owned(), *count)).collect()
}

#[tokio::test]
async fn own_pats_created_rotated_and_deleted_are_recorded_in_one_write_each() {
    let app = TestApp::spawn().await;
    let browser = Browser::of(&app);
    let (_, owner) = app.signed_up_user().await;
    let (_, stranger) = app.signed_up_user().await;
    let jwt = owner.str("access_token");

    app.dynamo_calls.reset();
    let created = browser
        .post(
            &jwt,
            "/v1/api-tokens",
            json!({ "name": "ci", "scopes": ["tokens:write", "profile:read"] }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        app.dynamo_calls.snapshot(),
        calls(&[("BatchGetItem", 1), ("TransactWriteItems", 1)])
    );
    let id = created.str("id");
    let event = the_event(&app, &jwt, "api_token_created").await;
    assert_from_browser(&app, &event, &owner, Some(&owner.str("session_id")));
    assert_eq!(
        event["details"],
        json!({ "token_id": id, "scopes": "profile:read tokens:write" })
    );

    // Refused before any write: a bad grace period, someone else's token.
    let path = format!("/v1/api-tokens/{id}");
    let bad = browser
        .post(&jwt, &format!("{path}/rotate"), json!({ "grace_period_seconds": -1 }))
        .await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    let foreign = browser
        .post(&stranger.str("access_token"), &format!("{path}/rotate"), json!({}))
        .await;
    assert_eq!(foreign.status, 404, "{:?}", foreign.body);
    assert!(events_of(&app, &jwt, "api_token_rotated").await.is_empty());

    app.dynamo_calls.reset();
    let rotated = browser
        .post(&jwt, &format!("{path}/rotate"), json!({ "grace_period_seconds": 0 }))
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    assert_eq!(
        app.dynamo_calls.snapshot(),
        calls(&[("BatchGetItem", 1), ("GetItem", 1), ("TransactWriteItems", 1)])
    );
    assert_eq!(rotated.str("id"), id);
    assert!(rotated.body["rotated_at"].as_str().unwrap().ends_with('Z'));
    assert_ne!(rotated.str("token"), created.str("token"));
    assert_eq!(app.me(&rotated.str("token")).await.status, 200, "the new secret works");
    assert_eq!(app.me(&created.str("token")).await.status, 401, "no grace asked for");
    let event = the_event(&app, &jwt, "api_token_rotated").await;
    assert_from_browser(&app, &event, &owner, Some(&owner.str("session_id")));
    assert_eq!(event["details"], json!({ "token_id": id, "grace_period_seconds": "0" }));

    // A PAT acting on itself: the event has no session.
    let pat = rotated.str("token");
    let by_pat = browser
        .post(&pat, &format!("{path}/rotate"), json!({ "grace_period_seconds": 60 }))
        .await;
    assert_eq!(by_pat.status, 200, "{:?}", by_pat.body);
    let rotations = events_of(&app, &jwt, "api_token_rotated").await;
    assert_eq!(rotations.len(), 2);
    // Both in the same second, maybe: find the PAT's by its grace period.
    let by_itself = rotations
        .iter()
        .find(|event| event["details"]["grace_period_seconds"] == "60")
        .expect("the PAT's rotation");
    assert_from_browser(&app, by_itself, &owner, None);

    // Deleting someone else's fails the delete's condition: 404, and no event anywhere.
    let foreign = browser.delete(&stranger.str("access_token"), &path).await;
    assert_eq!(foreign.status, 404);
    assert!(events_of(&app, &jwt, "api_token_deleted").await.is_empty());
    assert!(events_of(&app, &stranger.str("access_token"), "api_token_deleted")
        .await
        .is_empty());

    app.dynamo_calls.reset();
    let deleted = browser.delete(&jwt, &path).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_eq!(
        app.dynamo_calls.snapshot(),
        calls(&[("BatchGetItem", 1), ("TransactWriteItems", 1)])
    );
    let event = the_event(&app, &jwt, "api_token_deleted").await;
    assert_from_browser(&app, &event, &owner, Some(&owner.str("session_id")));
    assert_eq!(event["details"], json!({ "token_id": id }));
    let again = browser.delete(&jwt, &path).await;
    assert_eq!(again.status, 404);
    the_event(&app, &jwt, "api_token_deleted").await;
    let malformed = browser.delete(&jwt, "/v1/api-tokens/not-an-id").await;
    assert_eq!(malformed.status, 404);
    the_event(&app, &jwt, "api_token_deleted").await;
}

#[tokio::test]
async fn a_pat_made_with_a_pat_is_recorded_without_a_session() {
    let app = TestApp::spawn().await;
    let browser = Browser::of(&app);
    let (owner, pat) = app.user_with_pat(&["tokens:write", "profile:read"]).await;
    let created = browser
        .post(
            &pat.str("token"),
            "/v1/api-tokens",
            json!({ "name": "child", "scopes": ["profile:read"] }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    // Both tokens were made in the same second: find the child's by its id.
    let made = events_of(&app, &owner.str("access_token"), "api_token_created").await;
    let child = made
        .iter()
        .find(|event| event["details"]["token_id"] == created.str("id").as_str())
        .expect("the child's event");
    assert_from_browser(&app, child, &owner, None);
    assert_eq!(
        child["details"],
        json!({ "token_id": created.str("id"), "scopes": "profile:read" })
    );
    // A scope the creating PAT lacks: 403, and no event.
    let refused = browser
        .post(
            &pat.str("token"),
            "/v1/api-tokens",
            json!({ "name": "wider", "scopes": ["accounts:read"] }),
        )
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert_eq!(
        events_of(&app, &owner.str("access_token"), "api_token_created")
            .await
            .len(),
        2,
        "the harness's PAT and the child"
    );
}

/// The API with scoped tokens on.
async fn spawn_scoped() -> TestApp {
    TestApp::spawn_with(|c| {
        c.scoped_token_resources = vec!["company".into()];
        c.scoped_token_scopes = vec!["db:read".into(), "accounts:read".into()];
    })
    .await
}

#[tokio::test]
async fn scoped_tokens_created_and_revoked_are_recorded_for_their_creator() {
    let app = spawn_scoped().await;
    let browser = Browser::of(&app);
    let (_, creator) = app.signed_up_user().await;
    let (_, stranger) = app.signed_up_user().await;
    let jwt = creator.str("access_token");

    app.dynamo_calls.reset();
    let created = browser
        .post(
            &jwt,
            "/v1/scoped-tokens",
            json!({ "resource": "company:acme-42", "scopes": ["db:read", "accounts:read"] }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        app.dynamo_calls.snapshot(),
        calls(&[("BatchGetItem", 1), ("GetItem", 1), ("TransactWriteItems", 1)])
    );
    let id = created.str("id");
    let event = the_event(&app, &jwt, "scoped_token_created").await;
    assert_from_browser(&app, &event, &creator, Some(&creator.str("session_id")));
    assert_eq!(
        event["details"],
        json!({ "token_id": id, "resource": "company:acme-42", "scopes": "accounts:read db:read" })
    );

    // Refused creations record nothing.
    for body in [
        json!({ "resource": "invoice:1", "scopes": ["db:read"] }),
        json!({ "resource": "company:acme", "scopes": ["tokens:write"] }),
        json!({ "resource": "company:acme", "scopes": ["db:read"], "expires_in_days": 0 }),
    ] {
        let refused = browser.post(&jwt, "/v1/scoped-tokens", body.clone()).await;
        assert_eq!(refused.status, 422, "{body}: {:?}", refused.body);
    }
    the_event(&app, &jwt, "scoped_token_created").await;

    // Someone else's: the delete's condition fails, 404, no event for either account.
    let path = format!("/v1/scoped-tokens/{id}");
    let foreign = browser.delete(&stranger.str("access_token"), &path).await;
    assert_eq!(foreign.status, 404);
    assert!(events_of(&app, &jwt, "scoped_token_revoked").await.is_empty());
    assert!(events_of(&app, &stranger.str("access_token"), "scoped_token_revoked")
        .await
        .is_empty());

    app.dynamo_calls.reset();
    let revoked = browser.delete(&jwt, &path).await;
    assert_eq!(revoked.status, 204, "{:?}", revoked.body);
    assert_eq!(
        app.dynamo_calls.snapshot(),
        calls(&[("BatchGetItem", 1), ("TransactWriteItems", 1)])
    );
    let event = the_event(&app, &jwt, "scoped_token_revoked").await;
    assert_from_browser(&app, &event, &creator, Some(&creator.str("session_id")));
    assert_eq!(event["details"], json!({ "token_id": id }));
    assert_eq!(browser.delete(&jwt, &path).await.status, 404);
    the_event(&app, &jwt, "scoped_token_revoked").await;
}

/// The stored values of attributes `names` of the item `pk` / `sk_prefix` (a prefix when it ends with `#`):
/// hashes, sealed secrets, stored credentials, each of which must be there.
async fn stored(app: &TestApp, pk: &str, sk_prefix: &str, names: &[&str]) -> Vec<String> {
    let items = app.items(pk).await;
    let item = items
        .iter()
        .find(|item| {
            let sk = item["sk"].as_s().unwrap();
            sk == sk_prefix || (sk_prefix.ends_with('#') && sk.starts_with(sk_prefix))
        })
        .unwrap_or_else(|| panic!("no {pk} / {sk_prefix}"));
    let mut found = Vec::new();
    for name in names {
        let value = item
            .get(*name)
            .unwrap_or_else(|| panic!("no {name} in {pk} / {sk_prefix}"));
        if let Ok(text) = value.as_s() {
            found.push(text.clone());
        } else if let Ok(set) = value.as_ss() {
            found.extend(set.iter().cloned());
        } else {
            panic!("{name} is neither a string nor a string set: {value:?}");
        }
    }
    found
}

#[tokio::test]
async fn no_event_holds_a_secret() {
    let app = spawn_scoped().await;
    let browser = Browser::of(&app);
    let user = enrolled(&app, &browser).await;
    let jwt = user.jwt();
    let id = user.session.user_id();
    let mut secrets: Vec<String> = vec![PASSWORD.to_owned(), user.base32.clone(), jwt.clone()];
    secrets.push(user.session.str("refresh_token"));
    secrets.extend(user.backup_codes.iter().cloned());

    // What the password and the second factors are stored as: a hash, the sealed secret, the codes' hashes.
    let pk = format!("USER#{id}");
    secrets.extend(stored(&app, &pk, "PROFILE", &["password_hash"]).await);
    secrets.extend(stored(&app, &pk, "MFA", &["totp_secret", "backup_codes"]).await);

    let regenerated = browser
        .post(
            &jwt,
            "/v1/auth/2fa/backup-codes/regenerate",
            json!({ "code": next_code(&app, &user.secret) }),
        )
        .await;
    assert_eq!(regenerated.status, 200, "{:?}", regenerated.body);
    let new_codes = codes_of(&regenerated);
    secrets.extend(new_codes.iter().cloned());

    let challenge = challenge_of(&browser, &user.email).await;
    secrets.push(challenge.clone());
    let wrong = answer(&browser, &challenge, "123456").await;
    assert_eq!(wrong.status, 400);
    let signed_in = answer(&browser, &challenge, &new_codes[0]).await;
    assert_eq!(signed_in.status, 200, "{:?}", signed_in.body);
    secrets.push(signed_in.str("access_token"));
    secrets.push(signed_in.str("refresh_token"));

    let (_, passkey) = register(&browser, &jwt, "Phone").await;
    assert_eq!(passkey.status, 201, "{:?}", passkey.body);

    let pat = browser
        .post(
            &jwt,
            "/v1/api-tokens",
            json!({ "name": "ci", "scopes": ["profile:read"] }),
        )
        .await;
    assert_eq!(pat.status, 201, "{:?}", pat.body);
    let pat_id = pat.str("id");
    secrets.push(pat.str("token"));
    let rotated = browser
        .post(&jwt, &format!("/v1/api-tokens/{pat_id}/rotate"), json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    secrets.push(rotated.str("token"));
    secrets.extend(stored(&app, &format!("PAT#{pat_id}"), "PAT", &["secret_hash", "previous_hash"]).await);

    let scoped = browser
        .post(
            &jwt,
            "/v1/scoped-tokens",
            json!({ "resource": "company:acme", "scopes": ["db:read"] }),
        )
        .await;
    assert_eq!(scoped.status, 201, "{:?}", scoped.body);
    secrets.push(scoped.str("token"));
    secrets.extend(
        stored(
            &app,
            &format!("SCOPED#{}", scoped.str("id")),
            "SCOPED",
            &["secret_hash"],
        )
        .await,
    );
    // The stored passkey's credential: webauthn-rs's JSON with the public key.
    let credential = stored(&app, &pk, "PASSKEY#", &["credential"]).await;
    let parsed: Value = serde_json::from_str(&credential[0]).unwrap();
    secrets.push(parsed["cred"]["cred"]["key"].to_string());
    secrets.extend(credential);

    assert_eq!(
        browser
            .delete(&jwt, &format!("/v1/scoped-tokens/{}", scoped.str("id")))
            .await
            .status,
        204
    );
    assert_eq!(
        browser.delete(&jwt, &format!("/v1/api-tokens/{pat_id}")).await.status,
        204
    );
    assert_eq!(
        browser
            .delete(&jwt, &format!("/v1/auth/passkey/{}", passkey.str("id")))
            .await
            .status,
        204
    );
    let off = browser
        .post(&jwt, "/v1/auth/2fa/disable", json!({ "code": new_codes[1] }))
        .await;
    assert_eq!(off.status, 204, "{:?}", off.body);

    let events = own_events(&app, &jwt).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for kind in [
        "mfa_enabled",
        "backup_codes_regenerated",
        "backup_code_used",
        "passkey_added",
        "api_token_created",
        "api_token_rotated",
        "scoped_token_created",
        "scoped_token_revoked",
        "api_token_deleted",
        "passkey_removed",
        "mfa_disabled",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    // The tenant's feed shows the same events: scan both.
    let feed = app.get("/v1/audit-events?limit=100", Some(&jwt)).await;
    assert_eq!(feed.status, 200, "{:?}", feed.body);
    let serialized = format!("{}{}", Value::Array(events), feed.body);
    let mut checked = 0;
    for secret in &secrets {
        assert!(secret.len() >= 8, "a secret too short to look for: {secret}");
        for form in [
            secret.clone(),
            secret.replace('-', ""),
            secret.replace('-', "").to_uppercase(),
        ] {
            assert!(
                !serialized.contains(&form),
                "an event holds a secret ({form}): {serialized}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 30, "{checked} secrets looked for");
}
