//! Issue 15's second review (LDAP / Active Directory sign-in), of the fixes in da3a0c7: each test is a gap the
//! review found in those fixes, written against the real directory. The doc comments say what the attacker (or
//! the unlucky configuration) does and what should stop it.

use keygate_e2e::jwt_claims as claims;
use keygate_e2e::ldap::{Directory, Person};
use keygate_e2e::{authorizer_event, unique, Answer, TestApp};
use serde_json::{json, Value};

/// An app with an identity-provider document of its own (read at every request), scoped tokens on (resource type
/// `company`, anonymous scope `db:read`), and a tenant for the directory's people: (the app, the tenant's id, its
/// root's access token).
async fn app_and_tenant() -> (TestApp, String, String) {
    let secret = unique("keygate-test/idp-");
    let app = TestApp::spawn_with(move |c| {
        c.idp_secret_id = secret;
        c.idp_cache_ttl = 0;
        c.scoped_token_resources = vec!["company".into()];
        c.scoped_token_scopes = vec!["db:read".into()];
    })
    .await;
    let (_, root) = app.signed_up_user().await;
    let jwt = root.str("access_token");
    let tenant = claims(&jwt)["tenant"].as_str().unwrap().to_owned();
    (app, tenant, jwt)
}

async fn route(app: &TestApp, entry: Value) {
    app.put_idp_document(&json!({ "idps": [entry] })).await;
}

async fn login_ok(app: &TestApp, person: &Person) -> Answer {
    let answer = app.login(&person.email, &person.password).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer
}

/// A removed person holding a live access token never refreshes: `POST /v1/auth/session/database` rotates the
/// refresh token and mints a fresh access token from the access token alone, without asking the directory. Every
/// call before the access token expires gives another fifteen minutes, up to the session's absolute end (30 days
/// by default). A switch that is due a re-check must ask the directory, as a refresh does.
#[tokio::test]
async fn a_removed_person_keeps_minting_tokens_by_switching_database() {
    let (app, tenant, _) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("switcher", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    app.state.clock.freeze();
    let mut jwt = login_ok(&app, &person).await.str("access_token");

    dir.delete(&person.dn).await;
    // Every 14 minutes, each access token is used just before it expires to get the next one.
    for round in 1..=4 {
        app.state.clock.advance(14 * 60);
        let switched = app.post_as(&jwt, "/v1/auth/session/database", json!({})).await;
        if round == 1 {
            // Not yet due: the sign-in asked the directory 14 minutes ago.
            assert_eq!(switched.status, 200, "{:?}", switched.body);
            jwt = switched.str("access_token");
            continue;
        }
        assert_eq!(
            (switched.status, switched.code()),
            (401, "session_revoked"),
            "{} minutes after their removal, a person the directory no longer has got new tokens: {:?}",
            14 * round,
            switched.body
        );
        return;
    }
}

/// A scoped token (`kgs_`, up to 365 days) is the PAT's twin: it works while its creator's token epoch stands,
/// and only a refresh or a sign-in asks the directory (and so moves the epoch). A removed person who never signs
/// in again keeps every scoped token they made. A directory account must not hold one that outlives its removal.
#[tokio::test]
async fn a_scoped_token_of_a_removed_person_outlives_the_removal() {
    let (app, tenant, _) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("sharer", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    app.state.clock.freeze();
    let jwt = login_ok(&app, &person).await.str("access_token");
    let made = app
        .post_as(
            &jwt,
            "/v1/scoped-tokens",
            json!({ "resource": "company:acme", "scopes": ["db:read"], "expires_in_days": 365 }),
        )
        .await;
    if made.status != 201 {
        // Refused for a directory account, as a PAT is: nothing outlives the removal.
        assert!(matches!(made.status, 403 | 422), "{:?}", made.body);
        return;
    }
    dir.delete(&person.dn).await;
    app.state.clock.advance(2 * 86_400);
    let event = authorizer_event(&format!("Bearer {}", made.str("token")));
    let decided = authorizer::handle(&app.state, event).await;
    assert_eq!(
        decided["isAuthorized"], false,
        "two days after their removal from the directory, a person's scoped token still opens company:acme"
    );
}

/// A manager of the directory's own tenant invites a routed address (or anyone invites it into a tenant of
/// their own). The invitee accepts with a local password: an account on an address the directory is
/// authoritative for that the directory has no say over (no `idp`: passkeys and PATs outlive a removal), and the
/// person's own directory sign-in is 409 `account_exists` for good. Google was refused exactly this in da3a0c7;
/// an invitation must be too (or the accepted account must be the directory's).
#[tokio::test]
async fn an_invitation_cannot_make_a_local_account_at_a_routed_address() {
    let (app, tenant, root) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("invitee", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    let invited = app
        .post_as(
            &root,
            "/v1/accounts/individual",
            json!({ "email": person.email, "role": "manager", "name": "Invited" }),
        )
        .await;
    assert_eq!(
        (invited.status, invited.code()),
        (422, "invalid_field"),
        "{:?}",
        invited.body
    );
    let directory = app.login(&person.email, &person.password).await;
    assert_eq!(
        directory.status, 200,
        "an invitation made a local account at a routed address; the person's directory sign-in is {:?}",
        directory.body
    );
}

/// A right password with a database the tenant does not have (a stale client setting) is 404, but the two
/// directory guards it claimed are neither cleared nor given back (their clearing items are dropped with the
/// transaction that never runs): after `max_failures` such sign-ins the person is held out with 429 for the
/// guard's window although they never typed a wrong password.
#[tokio::test]
async fn a_right_password_with_a_wrong_database_does_not_count_against_the_directory_guard() {
    let (app, tenant, _) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("stale", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    app.state.clock.freeze();
    for _ in 0..3 {
        let answer = app
            .post(
                "/v1/auth/login",
                json!({
                    "email": person.email,
                    "password": person.password,
                    "database_id": "00000000-0000-4000-8000-000000000000",
                }),
            )
            .await;
        assert_eq!(answer.status, 404, "{:?}", answer.body);
    }
    let answer = app.login(&person.email, &person.password).await;
    assert_eq!(
        answer.status, 200,
        "three right passwords held the person out of the directory: {:?}",
        answer.body
    );
}

/// A TCP proxy in front of the test directory that holds back, by `delay`, every answer on a connection after the
/// client sent a request naming `marker` (the person's DN: only their own bind names it). A domain controller
/// that chains a wrong password to the PDC emulator over a slow link answers binds like that.
async fn slow_binds_for(marker: String, delay: std::time::Duration) -> String {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = keygate_e2e::ldap::ldap_url().trim_start_matches("ldap://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let marker = marker.clone();
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let binding = Arc::new(AtomicBool::new(false));
                let seen = binding.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0_u8; 65536];
                    while let Ok(n) = client_read.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        if buffer[..n].windows(marker.len()).any(|w| w == marker.as_bytes()) {
                            seen.store(true, Ordering::SeqCst);
                        }
                        if server_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let mut buffer = vec![0_u8; 65536];
                while let Ok(n) = server_read.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    if binding.load(Ordering::SeqCst) {
                        tokio::time::sleep(delay).await;
                    }
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

/// The guard exists so that nobody can lock a person's directory account through keygate. But a user bind that
/// does not answer within the 5 s operation timeout releases both guards (503, counted nowhere), although the bind
/// reached the directory, which counts it. Where wrong passwords are slow (AD chains them to the PDC emulator), an
/// attacker sends wrong passwords without end and the directory locks the person. A bind with no verdict must
/// count as a failure.
#[tokio::test]
async fn a_user_bind_without_an_answer_still_counts_in_the_guard() {
    let (app, tenant, _) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("pdcslow", None).await;
    let mut entry = dir.entry(&unique("corp-"), &tenant);
    entry["url"] = json!(slow_binds_for(person.dn.clone(), std::time::Duration::from_millis(6000)).await);
    entry["start_tls"] = json!(false);
    entry["allow_insecure"] = json!(true);
    entry.as_object_mut().unwrap().remove("ca_pem");
    route(&app, entry).await;
    app.state.clock.freeze();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.login(&person.email, "Wrong-password-1").await.status);
    }
    assert_eq!(
        statuses.last(),
        Some(&429),
        "every wrong bind reached the directory, none counted in keygate's guard: {statuses:?}"
    );
}
