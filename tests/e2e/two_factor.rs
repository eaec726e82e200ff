//! Issue 11: TOTP two-factor authentication and backup codes, and the challenge every first-factor sign-in of an
//! account with it on answers. Codes are computed here with totp-rs from the secret setup returns, independently
//! of keygate's own TOTP code. Each test owns its API (and clock): a TOTP step is accepted once per account, so a
//! test moves its clock one step before each new code.

use futures::future::join_all;
use keygate_e2e::{jwt_claims, link_token, unique_email, Answer, TestApp, PASSWORD};
use serde_json::{json, Value};

/// A user with two-factor authentication on.
pub(crate) struct Enrolled {
    pub(crate) email: String,
    pub(crate) session: Answer,
    pub(crate) secret: Vec<u8>,
    base32: String,
    pub(crate) backup_codes: Vec<String>,
}

impl Enrolled {
    pub(crate) fn jwt(&self) -> String {
        self.session.str("access_token")
    }

    pub(crate) fn id(&self) -> String {
        self.session.body["user"]["id"].as_str().unwrap().to_owned()
    }
}

/// The code of the step holding `at`, computed by totp-rs from the raw secret.
fn code_at(secret: &[u8], at: i64) -> String {
    totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .build()
        .unwrap()
        .generate(u64::try_from(at).unwrap())
        .to_string()
}

/// Moves the API's clock to the next step and returns that step's code: each step is accepted once per account.
pub(crate) fn next_code(app: &TestApp, secret: &[u8]) -> String {
    app.state.clock.advance(30);
    code_at(secret, app.state.clock.now())
}

fn decode_base32(secret: &str) -> Vec<u8> {
    totp_rs::Secret::try_from_base32(secret).unwrap().as_bytes().to_vec()
}

/// Signs up a user and turns two-factor authentication on for it.
pub(crate) async fn enrolled(app: &TestApp) -> Enrolled {
    app.state.clock.freeze();
    let (email, session) = app.signed_up_user().await;
    enrol(app, email, session).await
}

/// Turns two-factor authentication on from a fresh session.
pub(crate) async fn enrol(app: &TestApp, email: String, session: Answer) -> Enrolled {
    let setup = app
        .post_as(&session.str("access_token"), "/v1/auth/2fa/setup", json!({}))
        .await;
    assert_eq!(setup.status, 200, "{:?}", setup.body);
    let base32 = setup.str("secret");
    let secret = decode_base32(&base32);
    assert_eq!(secret.len(), 20, "160 bits");
    let code = code_at(&secret, app.state.clock.now());
    let enabled = app
        .post_as(
            &session.str("access_token"),
            "/v1/auth/2fa/enable",
            json!({ "code": code }),
        )
        .await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    let backup_codes: Vec<String> = enabled.body["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    Enrolled {
        email,
        session,
        secret,
        base32,
        backup_codes,
    }
}

/// A password login that must answer a challenge: its token.
async fn challenged_login(app: &TestApp, email: &str) -> String {
    let login = app.login(email, PASSWORD).await;
    assert_challenge(&login);
    login.str("challenge_token")
}

pub(crate) fn assert_challenge(answer: &Answer) {
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["mfa_required"], json!(true), "{:?}", answer.body);
    assert_eq!(answer.body["methods"], json!(["totp", "backup_code"]));
    assert!(answer.body.get("access_token").is_none() && answer.body.get("refresh_token").is_none());
    assert_eq!(answer.str("challenge_token").len(), 43, "256 bits");
}

pub(crate) async fn verify(app: &TestApp, challenge: &str, code: &str) -> Answer {
    app.post(
        "/v1/auth/2fa/verify",
        json!({ "challenge_token": challenge, "code": code }),
    )
    .await
}

async fn status(app: &TestApp, bearer: &str) -> Value {
    let status = app.get("/v1/auth/2fa/status", Some(bearer)).await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    status.body
}

fn subjects(emails: &[(String, String)]) -> Vec<&str> {
    emails.iter().map(|(subject, _)| subject.as_str()).collect()
}

#[tokio::test]
async fn enrol_then_sign_in_with_both_factors_and_a_replayed_code_is_refused() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    assert_eq!(user.backup_codes.len(), 10);
    let before = status(&app, &user.jwt()).await;
    assert_eq!(before["enabled"], json!(true));
    assert_eq!(before["backup_codes_remaining"], json!(10));
    assert_eq!(before["methods"], json!(["totp", "backup_code"]));
    assert!(before["enabled_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(app.me(&user.jwt()).await.body["mfa_enabled"], json!(true));

    let challenge = challenged_login(&app, &user.email).await;
    let code = next_code(&app, &user.secret);
    let tokens = verify(&app, &challenge, &code).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    let claims = jwt_claims(&tokens.str("access_token"));
    assert_eq!(claims["amr"], json!(["pwd", "totp", "mfa"]));
    assert_eq!(app.me(&tokens.str("access_token")).await.status, 200);
    assert_eq!(app.refresh(&tokens.str("refresh_token")).await.status, 200);
    // The session list says how it signed in.
    let sessions = app.get("/v1/auth/sessions", Some(&tokens.str("access_token"))).await;
    assert!(sessions.raw.windows(4).any(|w| w == b"totp"), "{:?}", sessions.body);

    // The same code, within its step, for a fresh challenge: a replay.
    let again = challenged_login(&app, &user.email).await;
    let replay = verify(&app, &again, &code).await;
    assert_eq!((replay.status, replay.code()), (400, "invalid_code"));
    // And the used challenge is gone.
    let reuse = verify(&app, &challenge, &next_code(&app, &user.secret)).await;
    assert_eq!((reuse.status, reuse.code()), (401, "invalid_token"));
    // The enabling code's step was spent too: its code never signs in.
    let emails = app.emails_to(&user.email).await;
    assert!(
        subjects(&emails).contains(&"Two-factor authentication is on"),
        "{:?}",
        subjects(&emails)
    );
}

#[tokio::test]
async fn the_enabling_code_cannot_be_replayed_at_the_challenge() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    let challenge = challenged_login(&app, &user.email).await;
    let enabling = code_at(&user.secret, app.state.clock.now());
    let replay = verify(&app, &challenge, &enabling).await;
    assert_eq!((replay.status, replay.code()), (400, "invalid_code"));
}

#[tokio::test]
async fn concurrent_verifies_with_one_code_let_exactly_one_through() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    let code = next_code(&app, &user.secret);
    // One challenge answered twice at once, and two challenges answered with the same code at once.
    let one = challenged_login(&app, &user.email).await;
    let two = challenged_login(&app, &user.email).await;
    let answers = join_all([
        verify(&app, &one, &code),
        verify(&app, &one, &code),
        verify(&app, &two, &code),
        verify(&app, &two, &code),
    ])
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    for answer in answers.iter().filter(|a| a.status != 200) {
        // A loser either lost the code (400) or found its challenge already used (401); never a 5xx.
        assert!(
            matches!(
                (answer.status, answer.code()),
                (400, "invalid_code") | (401, "invalid_token") | (429, "rate_limited")
            ),
            "{:?}",
            answer.body
        );
    }
}

#[tokio::test]
async fn no_first_factor_resets_the_budget_of_guesses_at_the_second() {
    let app = TestApp::spawn().await;
    app.state.clock.freeze();
    let (_, root) = app.signed_up_user().await;
    // A backend member: its right password is refused by the root login, which must not clear its backoff either.
    let (email, _, session) = crate::accounts::member(&app, &root.str("access_token"), "backend").await;
    let user = enrol(&app, email, session).await;
    let challenge = challenged_login(&app, &user.email).await;
    for wrong in ["000000", "111111", "222222", "333333", "444444"] {
        assert_eq!(verify(&app, &challenge, wrong).await.code(), "invalid_code");
        app.state.clock.advance(2);
    }
    let refused = app
        .post(
            "/v1/auth/login/root",
            json!({ "email": user.email, "password": PASSWORD }),
        )
        .await;
    assert_eq!((refused.status, refused.code()), (403, "insufficient_role"));
    app.state.clock.advance(2);
    let fresh = challenged_login(&app, &user.email).await;
    // The backoff refuses before any code is judged, so the code's step does not matter here.
    let held = verify(&app, &fresh, &code_at(&user.secret, app.state.clock.now())).await;
    assert_eq!((held.status, held.code()), (429, "rate_limited"), "{:?}", held.body);

    // An emailed code proves the mailbox and clears failed passwords, but not failed second factors.
    app.state.clock.advance(60);
    app.post("/v1/auth/otp/send", json!({ "email": user.email, "purpose": "login" }))
        .await;
    let code = app.code_sent_to(&user.email, "sign-in code").await;
    let otp = app
        .post("/v1/auth/otp/login", json!({ "email": user.email, "code": code }))
        .await;
    assert_challenge(&otp);
    let wrong = verify(&app, &otp.str("challenge_token"), "555555").await;
    assert_eq!(wrong.code(), "invalid_code");
    let held = verify(
        &app,
        &otp.str("challenge_token"),
        &code_at(&user.secret, app.state.clock.now()),
    )
    .await;
    assert_eq!((held.status, held.code()), (429, "rate_limited"), "{:?}", held.body);
    // Past the wait, the right code clears both records.
    app.state.clock.advance(60);
    let tokens = verify(&app, &otp.str("challenge_token"), &next_code(&app, &user.secret)).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    let again = challenged_login(&app, &user.email).await;
    assert_eq!(verify(&app, &again, &next_code(&app, &user.secret)).await.status, 200);
}

#[tokio::test]
async fn enabling_ends_other_sessions_and_only_the_setup_session_can_enable() {
    let app = TestApp::spawn().await;
    app.state.clock.freeze();
    let (email, first) = app.signed_up_user().await;
    let second = app.login(&email, PASSWORD).await;
    let setup = app
        .post_as(&first.str("access_token"), "/v1/auth/2fa/setup", json!({}))
        .await;
    let secret = decode_base32(&setup.str("secret"));
    // Another session of the same account cannot finish the first one's setup.
    let other = app
        .post_as(
            &second.str("access_token"),
            "/v1/auth/2fa/enable",
            json!({ "code": code_at(&secret, app.state.clock.now()) }),
        )
        .await;
    assert_eq!((other.status, other.code()), (409, "mfa_setup_required"));
    let enabled = app
        .post_as(
            &first.str("access_token"),
            "/v1/auth/2fa/enable",
            json!({ "code": code_at(&secret, app.state.clock.now()) }),
        )
        .await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    // The session that signed in with one factor is over; the enrolling one goes on.
    assert_eq!(app.me(&second.str("access_token")).await.code(), "session_revoked");
    assert_eq!(app.refresh(&second.str("refresh_token")).await.status, 401);
    assert_eq!(app.me(&first.str("access_token")).await.status, 200);
    assert_eq!(app.refresh(&first.str("refresh_token")).await.status, 200);
}

#[tokio::test]
async fn a_backup_code_works_once_and_its_use_is_reported() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    let challenge = challenged_login(&app, &user.email).await;
    // Typed in capitals without the hyphen: backup codes are case-insensitive.
    let typed = user.backup_codes[0].replace('-', "").to_uppercase();
    let tokens = verify(&app, &challenge, &typed).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(
        jwt_claims(&tokens.str("access_token"))["amr"],
        json!(["pwd", "backup_code", "mfa"])
    );
    assert_eq!(status(&app, &user.jwt()).await["backup_codes_remaining"], json!(9));

    let again = challenged_login(&app, &user.email).await;
    let reused = verify(&app, &again, &user.backup_codes[0]).await;
    assert_eq!((reused.status, reused.code()), (400, "invalid_code"));
    // Another unused code still works on the same challenge.
    assert_eq!(verify(&app, &again, &user.backup_codes[1]).await.status, 200);

    let emails = app.emails_to(&user.email).await;
    let used: Vec<&String> = emails
        .iter()
        .filter(|(subject, _)| subject == "A backup code was used")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(used.len(), 2, "{:?}", subjects(&emails));
    assert!(
        used.iter().any(|body| body.contains("9 unused codes are left")),
        "{used:?}"
    );
    assert!(
        used.iter().any(|body| body.contains("8 unused codes are left")),
        "{used:?}"
    );
}

#[tokio::test]
async fn running_low_on_backup_codes_is_reported() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    for code in &user.backup_codes[..8] {
        let challenge = challenged_login(&app, &user.email).await;
        assert_eq!(verify(&app, &challenge, code).await.status, 200);
    }
    let emails = app.emails_to(&user.email).await;
    assert!(
        emails
            .iter()
            .any(|(_, body)| body.contains("2 unused codes are left") && body.contains("running out")),
        "{:?}",
        subjects(&emails)
    );
    assert_eq!(status(&app, &user.jwt()).await["backup_codes_remaining"], json!(2));
}

#[tokio::test]
async fn regenerating_needs_a_totp_code_and_retires_the_old_codes() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    // A backup code cannot mint new ones.
    let refused = app
        .post_as(
            &user.jwt(),
            "/v1/auth/2fa/backup-codes/regenerate",
            json!({ "code": user.backup_codes[0] }),
        )
        .await;
    assert_eq!((refused.status, refused.code()), (400, "invalid_code"));
    let wrong = app
        .post_as(
            &user.jwt(),
            "/v1/auth/2fa/backup-codes/regenerate",
            json!({ "code": "000000" }),
        )
        .await;
    assert_eq!((wrong.status, wrong.code()), (400, "invalid_code"));

    let code = next_code(&app, &user.secret);
    let fresh = app
        .post_as(
            &user.jwt(),
            "/v1/auth/2fa/backup-codes/regenerate",
            json!({ "code": code }),
        )
        .await;
    assert_eq!(fresh.status, 200, "{:?}", fresh.body);
    let new_codes: Vec<String> = fresh.body["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|c| !user.backup_codes.contains(c)));

    let challenge = challenged_login(&app, &user.email).await;
    let old = verify(&app, &challenge, &user.backup_codes[1]).await;
    assert_eq!((old.status, old.code()), (400, "invalid_code"));
    assert_eq!(verify(&app, &challenge, &new_codes[0]).await.status, 200);
    // The regenerating code's step is spent.
    let challenge = challenged_login(&app, &user.email).await;
    assert_eq!(verify(&app, &challenge, &code).await.code(), "invalid_code");
    let emails = app.emails_to(&user.email).await;
    assert!(subjects(&emails).contains(&"New backup codes"));
}

#[tokio::test]
async fn disabling_needs_a_current_factor_and_then_sign_ins_need_one_factor() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    let wrong = app
        .post_as(&user.jwt(), "/v1/auth/2fa/disable", json!({ "code": "123456" }))
        .await;
    assert_eq!((wrong.status, wrong.code()), (400, "invalid_code"));
    let missing = app.post_as(&user.jwt(), "/v1/auth/2fa/disable", json!({})).await;
    assert_eq!(missing.status, 400);
    let off = app
        .post_as(
            &user.jwt(),
            "/v1/auth/2fa/disable",
            json!({ "code": next_code(&app, &user.secret) }),
        )
        .await;
    assert_eq!(off.status, 204, "{:?}", off.body);
    let after = status(&app, &user.jwt()).await;
    assert_eq!(
        after,
        json!({ "enabled": false, "enabled_at": null, "backup_codes_remaining": 0, "methods": [] })
    );
    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(login.status, 200);
    assert_eq!(jwt_claims(&login.str("access_token"))["amr"], json!(["pwd"]));
    // Off is off: the factors are gone from the table.
    let items = app.items(&format!("USER#{}", user.id())).await;
    assert!(items.iter().all(|i| i["sk"].as_s().unwrap() == "PROFILE"), "{items:?}");
    let again = app
        .post_as(
            &user.jwt(),
            "/v1/auth/2fa/disable",
            json!({ "code": next_code(&app, &user.secret) }),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "mfa_not_enabled"));
    let emails = app.emails_to(&user.email).await;
    assert!(subjects(&emails).contains(&"Two-factor authentication is off"));
}

#[tokio::test]
async fn a_backup_code_can_turn_two_factor_off() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    let off = app
        .post_as(
            &user.jwt(),
            "/v1/auth/2fa/disable",
            json!({ "code": user.backup_codes[3] }),
        )
        .await;
    assert_eq!(off.status, 204, "{:?}", off.body);
    assert_eq!(app.login(&user.email, PASSWORD).await.body["mfa_required"], Value::Null);
}

#[tokio::test]
async fn email_code_and_magic_link_sign_ins_are_challenged_too() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;

    app.post("/v1/auth/otp/send", json!({ "email": user.email, "purpose": "login" }))
        .await;
    let code = app.code_sent_to(&user.email, "sign-in code").await;
    let otp = app
        .post("/v1/auth/otp/login", json!({ "email": user.email, "code": code }))
        .await;
    assert_challenge(&otp);
    let tokens = verify(&app, &otp.str("challenge_token"), &next_code(&app, &user.secret)).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(
        jwt_claims(&tokens.str("access_token"))["amr"],
        json!(["otp", "totp", "mfa"])
    );

    let sent = app
        .post(
            "/v1/auth/magic-link/send",
            json!({ "email": user.email, "redirect_uri": "https://app.example.com/welcome" }),
        )
        .await;
    assert_eq!(sent.status, 202);
    let emails = app.emails_to(&user.email).await;
    let (_, body) = emails.iter().rev().find(|(s, _)| s == "Your sign-in link").unwrap();
    let link = app
        .post("/v1/auth/magic-link/login", json!({ "token": link_token(body) }))
        .await;
    assert_challenge(&link);
    assert_eq!(link.str("redirect_uri"), "https://app.example.com/welcome");
    let tokens = verify(&app, &link.str("challenge_token"), &user.backup_codes[0]).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_eq!(
        jwt_claims(&tokens.str("access_token"))["amr"],
        json!(["email_link", "backup_code", "mfa"])
    );
}

#[tokio::test]
async fn the_root_login_and_a_database_login_are_challenged_and_keep_their_shape() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    let root = app
        .post(
            "/v1/auth/login/root",
            json!({ "email": user.email, "password": PASSWORD }),
        )
        .await;
    assert_challenge(&root);
    let token = verify(&app, &root.str("challenge_token"), &next_code(&app, &user.secret)).await;
    assert_eq!(token.status, 200, "{:?}", token.body);
    assert!(token.body.get("refresh_token").is_none(), "{:?}", token.body);
    let claims = jwt_claims(&token.str("access_token"));
    assert_eq!(claims["amr"], json!(["pwd", "totp", "mfa"]));
    assert_eq!(claims["role"], json!("root"));
    assert!(claims.get("sid").is_none_or(|sid| sid == ""), "{claims}");
    assert_eq!(
        app.get("/v1/tenant", Some(&token.str("access_token"))).await.status,
        200
    );

    let database = app
        .post_as(&user.jwt(), "/v1/databases", json!({ "name": "orders" }))
        .await;
    assert_eq!(database.status, 201, "{:?}", database.body);
    let login = app
        .post(
            "/v1/auth/login",
            json!({ "email": user.email, "password": PASSWORD, "database_id": database.str("id") }),
        )
        .await;
    assert_challenge(&login);
    let tokens = verify(&app, &login.str("challenge_token"), &next_code(&app, &user.secret)).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    let claims = jwt_claims(&tokens.str("access_token"));
    assert_eq!(claims["db"], json!(database.str("id")));
    assert_eq!(claims["ns"], json!(database.str("namespace")));

    // A database deleted while the challenge waits is not scoped to.
    let login = app
        .post(
            "/v1/auth/login",
            json!({ "email": user.email, "password": PASSWORD, "database_id": database.str("id") }),
        )
        .await;
    assert_challenge(&login);
    let deleted = app
        .send(
            "DELETE",
            &format!("/v1/databases/{}", database.str("id")),
            Some(&user.jwt()),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let stale = verify(&app, &login.str("challenge_token"), &next_code(&app, &user.secret)).await;
    assert_eq!((stale.status, stale.code()), (401, "invalid_token"));
}

#[tokio::test]
async fn five_wrong_codes_kill_a_challenge_and_spend_the_backoff() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    let challenge = challenged_login(&app, &user.email).await;
    for wrong in ["000000", "111111", "222222", "333333", "zzzzz-zzzzz"] {
        let answer = verify(&app, &challenge, wrong).await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_code"),
            "{:?}",
            answer.body
        );
        // Each wrong code is judged after the backoff's claim; step past any wait it sets.
        app.state.clock.advance(2);
    }
    let right = code_at(&user.secret, app.state.clock.now() + 30);
    app.state.clock.advance(30);
    let dead = verify(&app, &challenge, &right).await;
    assert_eq!((dead.status, dead.code()), (401, "invalid_token"));

    // The password login (kept counted until its second factor) and the five wrong codes are six failures: the
    // backoff now makes the next attempt wait.
    let fresh = challenged_login(&app, &user.email).await;
    // Past the free failures every claim holds the next attempt back a moment.
    let held = verify(&app, &fresh, "444444").await;
    assert_eq!((held.status, held.code()), (429, "rate_limited"), "{:?}", held.body);
    app.state.clock.advance(2);
    let waited = verify(&app, &fresh, "444444").await;
    assert_eq!((waited.status, waited.code()), (400, "invalid_code"));
    let held = app.login(&user.email, PASSWORD).await;
    assert_eq!((held.status, held.code()), (429, "rate_limited"), "{:?}", held.body);
    assert!(held.headers.get("retry-after").is_some());
    // A right second factor clears it.
    app.state.clock.advance(60);
    let tokens = verify(&app, &fresh, &next_code(&app, &user.secret)).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    assert_challenge(&app.login(&user.email, PASSWORD).await);
}

#[tokio::test]
async fn expired_forged_foreign_and_malformed_challenges_are_refused() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    // A second enrolled user of the same API (its own secret and challenge).
    let other = {
        let (email, session) = app.signed_up_user().await;
        enrol(&app, email, session).await
    };

    // Expired: five minutes and a second.
    let challenge = challenged_login(&app, &user.email).await;
    app.state.clock.advance(301);
    let expired = verify(&app, &challenge, &code_at(&user.secret, app.state.clock.now())).await;
    assert_eq!((expired.status, expired.code()), (401, "invalid_token"));

    // Forged: a token of the right shape that was never issued.
    let forged = verify(&app, &keygate::secret::random_b64(32), &next_code(&app, &user.secret)).await;
    assert_eq!((forged.status, forged.code()), (401, "invalid_token"));

    // Foreign: this user's challenge answered with the other user's valid code, and with its backup codes.
    let challenge = challenged_login(&app, &user.email).await;
    let foreign = verify(&app, &challenge, &next_code(&app, &other.secret)).await;
    assert_eq!((foreign.status, foreign.code()), (400, "invalid_code"));
    let theirs = challenged_login(&app, &other.email).await;
    let crossed = verify(&app, &theirs, &user.backup_codes[0]).await;
    assert_eq!((crossed.status, crossed.code()), (400, "invalid_code"));

    // Malformed, missing, oversized and hostile input: clean 4xx, never a 5xx.
    let long = "9".repeat(100_000);
    for body in [
        json!({}),
        json!({ "challenge_token": challenge }),
        json!({ "code": "123456" }),
        json!({ "challenge_token": 42, "code": "123456" }),
        json!({ "challenge_token": challenge, "code": 123456 }),
        json!({ "challenge_token": challenge, "code": "" }),
        json!({ "challenge_token": challenge, "code": "9".repeat(65) }),
        json!({ "challenge_token": "", "code": "123456" }),
        json!({ "challenge_token": "../../etc/passwd", "code": "123456" }),
        json!({ "challenge_token": "x".repeat(2_000), "code": "123456" }),
        json!({ "challenge_token": challenge, "code": "' OR 1=1 --" }),
        json!({ "challenge_token": challenge, "code": long }),
    ] {
        let answer = app.post("/v1/auth/2fa/verify", body.clone()).await;
        assert!(
            (400..500).contains(&answer.status),
            "{body}: {} {:?}",
            answer.status,
            answer.body
        );
        assert!(answer.body["error"]["code"].is_string(), "{body}: {:?}", answer.body);
    }
    let not_json = app
        .send("POST", "/v1/auth/2fa/verify", None, Some(b"{not json".to_vec()))
        .await;
    assert_eq!((not_json.status, not_json.code()), (400, "malformed_json"));
    // The challenge survived the junk that never reached a code check, and still works.
    let code = next_code(&app, &user.secret);
    assert_eq!(verify(&app, &challenge, &code).await.status, 200);
}

#[tokio::test]
async fn a_password_reset_does_not_remove_the_second_factor_and_ends_pending_challenges() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    let pending = challenged_login(&app, &user.email).await;
    assert_eq!(app.reset_password(&user.email, "a new passphrase 42").await.status, 204);
    // The reset ended the account's sessions, and the challenge with them.
    let stale = verify(&app, &pending, &next_code(&app, &user.secret)).await;
    assert_eq!((stale.status, stale.code()), (401, "invalid_token"));
    // The next sign-in still asks for the second factor (ASVS 6.4.3).
    let login = app.login(&user.email, "a new passphrase 42").await;
    assert_challenge(&login);
    let tokens = verify(&app, &login.str("challenge_token"), &user.backup_codes[0]).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
}

#[tokio::test]
async fn enrolment_rules_setup_needs_a_fresh_session_and_a_pending_secret() {
    let app = TestApp::spawn().await;
    app.state.clock.freeze();
    let (email, session) = app.signed_up_user().await;
    let jwt = session.str("access_token");
    assert_eq!(status(&app, &jwt).await["enabled"], json!(false));

    // No setup yet.
    let early = app
        .post_as(&jwt, "/v1/auth/2fa/enable", json!({ "code": "123456" }))
        .await;
    assert_eq!((early.status, early.code()), (409, "mfa_setup_required"));

    // A second setup replaces the first: the first secret's codes no longer enable.
    let first = app.post_as(&jwt, "/v1/auth/2fa/setup", json!({})).await;
    assert_eq!(first.status, 200);
    let uri = first.str("otpauth_uri");
    assert!(uri.starts_with("otpauth://totp/keygate:"), "{uri}");
    assert!(uri.contains(&format!("secret={}", first.str("secret"))), "{uri}");
    assert!(uri.contains("issuer=keygate"), "{uri}");
    assert_eq!(first.body["expires_in"], json!(600));
    let second = app.post_as(&jwt, "/v1/auth/2fa/setup", json!({})).await;
    assert_ne!(second.str("secret"), first.str("secret"));
    let stale = code_at(&decode_base32(&first.str("secret")), app.state.clock.now());
    let refused = app.post_as(&jwt, "/v1/auth/2fa/enable", json!({ "code": stale })).await;
    assert_eq!((refused.status, refused.code()), (400, "invalid_code"));
    // A pending setup expires after ten minutes.
    app.state.clock.advance(601);
    let late = code_at(&decode_base32(&second.str("secret")), app.state.clock.now());
    let expired = app.post_as(&jwt, "/v1/auth/2fa/enable", json!({ "code": late })).await;
    assert_eq!((expired.status, expired.code()), (409, "mfa_setup_required"));

    // The session is now older than five minutes: setup wants a fresh sign-in, even after a refresh.
    let refreshed = app.refresh(&session.str("refresh_token")).await;
    let stale_setup = app
        .post_as(&refreshed.str("access_token"), "/v1/auth/2fa/setup", json!({}))
        .await;
    assert_eq!(
        (stale_setup.status, stale_setup.code()),
        (403, "reauthentication_required")
    );

    // A fresh sign-in enrols; then setup is 409 until disabled.
    let fresh = app.login(&email, PASSWORD).await.str("access_token");
    let setup = app.post_as(&fresh, "/v1/auth/2fa/setup", json!({})).await;
    let secret = decode_base32(&setup.str("secret"));
    let enabled = app
        .post_as(
            &fresh,
            "/v1/auth/2fa/enable",
            json!({ "code": code_at(&secret, app.state.clock.now()) }),
        )
        .await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    let twice = app.post_as(&fresh, "/v1/auth/2fa/setup", json!({})).await;
    assert_eq!((twice.status, twice.code()), (409, "mfa_already_enabled"));
    let twice = app
        .post_as(
            &fresh,
            "/v1/auth/2fa/enable",
            json!({ "code": next_code(&app, &secret) }),
        )
        .await;
    assert_eq!((twice.status, twice.code()), (409, "mfa_already_enabled"));
}

#[tokio::test]
async fn tokens_other_than_a_session_cannot_manage_second_factors() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    let pat = app
        .post_as(
            &user.jwt(),
            "/v1/api-tokens",
            json!({ "name": "reader", "scopes": ["profile:read", "sessions:write", "tokens:write"] }),
        )
        .await;
    assert_eq!(pat.status, 201, "{:?}", pat.body);
    let pat = pat.str("token");
    // Status is readable with profile:read.
    assert_eq!(status(&app, &pat).await["enabled"], json!(true));
    let code = next_code(&app, &user.secret);
    for (path, body) in [
        ("/v1/auth/2fa/setup", json!({})),
        ("/v1/auth/2fa/enable", json!({ "code": code })),
        ("/v1/auth/2fa/disable", json!({ "code": code })),
        ("/v1/auth/2fa/backup-codes/regenerate", json!({ "code": code })),
    ] {
        let answer = app.post_as(&pat, path, body).await;
        assert_eq!((answer.status, answer.code()), (403, "insufficient_scope"), "{path}");
    }
    let no_scope = app
        .post_as(
            &user.jwt(),
            "/v1/api-tokens",
            json!({ "name": "none", "scopes": ["tokens:write"] }),
        )
        .await
        .str("token");
    let refused = app.get("/v1/auth/2fa/status", Some(&no_scope)).await;
    assert_eq!((refused.status, refused.code()), (403, "insufficient_scope"));
    for path in ["/v1/auth/2fa/setup", "/v1/auth/2fa/disable"] {
        let anonymous = app.post(path, json!({ "code": code })).await;
        assert_eq!((anonymous.status, anonymous.code()), (401, "invalid_token"), "{path}");
    }
    // The PAT refused above did not spend the code: the session still disables with it.
    let off = app
        .post_as(&user.jwt(), "/v1/auth/2fa/disable", json!({ "code": code }))
        .await;
    assert_eq!(off.status, 204, "{:?}", off.body);
}

#[tokio::test]
async fn the_table_holds_no_totp_secret_or_backup_code_in_plaintext() {
    let app = TestApp::spawn().await;
    let user = enrolled(&app).await;
    // A pending setup too, beside the enabled factors: its secret is sealed as well.
    let other = {
        let (_, session) = app.signed_up_user().await;
        let setup = app
            .post_as(&session.str("access_token"), "/v1/auth/2fa/setup", json!({}))
            .await;
        setup.str("secret")
    };
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let mut dump = String::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(&app.state.config.table_name)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            dump.push_str(&format!("{item:?}\n"));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    assert!(dump.contains(&format!("USER#{}", user.id())), "the scan saw the user");
    let raw_b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &user.secret);
    let raw_b64url = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &user.secret);
    let raw_hex: String = user.secret.iter().map(|b| format!("{b:02x}")).collect();
    for needle in [user.base32.clone(), other, raw_b64, raw_b64url, raw_hex] {
        assert!(!dump.contains(&needle), "a TOTP secret is readable in the table");
    }
    for code in &user.backup_codes {
        assert!(
            !dump.contains(code.as_str()) && !dump.contains(&code.replace('-', "")),
            "a backup code is readable"
        );
    }
}

#[tokio::test]
async fn service_accounts_have_no_second_factor_to_enrol() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let created = app
        .post_as(
            &root.str("access_token"),
            "/v1/accounts/service",
            json!({ "service_name": "billing", "password": PASSWORD, "role": "backend" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let login = app
        .post(
            "/v1/auth/login/service",
            json!({
                "tenant_id": root.body["user"]["tenant_id"],
                "service_name": "billing",
                "password": PASSWORD,
            }),
        )
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let setup = app
        .post_as(&login.str("access_token"), "/v1/auth/2fa/setup", json!({}))
        .await;
    assert_eq!(setup.status, 403, "{:?}", setup.body);
}

#[tokio::test]
async fn deleting_an_account_deletes_its_second_factors() {
    let app = TestApp::spawn().await;
    let (_, root) = app.signed_up_user().await;
    let root_jwt = root.str("access_token");
    let invited_email = unique_email();
    let invited = app
        .post_as(
            &root_jwt,
            "/v1/accounts/individual",
            json!({ "email": invited_email, "role": "backend" }),
        )
        .await;
    assert_eq!(invited.status, 201, "{:?}", invited.body);
    let id = invited.str("id");
    // Put factors in the invited account's partition as enrolment would, then delete the account.
    let user = enrolled(&app).await;
    let factors = app.items(&format!("USER#{}", user.id())).await;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    for mut item in factors.into_iter().filter(|i| i["sk"].as_s().unwrap() != "PROFILE") {
        item.insert(
            "pk".into(),
            aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{id}")),
        );
        client
            .put_item()
            .table_name(&app.state.config.table_name)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(app.items(&format!("USER#{id}")).await.len(), 2);
    let deleted = app
        .send("DELETE", &format!("/v1/accounts/{id}"), Some(&root_jwt), None)
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert!(app.items(&format!("USER#{id}")).await.is_empty());
}
