//! Security review of issue 15 (LDAP / Active Directory sign-in): each test here demonstrates a weakness found in
//! review. They fail while the weakness is there and pass once it is fixed (see each test's doc comment).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use keygate_e2e::jwt_claims as claims;
use keygate_e2e::ldap::{self, Directory, Person};
use keygate_e2e::oidc::{OidcIssuer, GOOGLE_CLIENT_ID};
use keygate_e2e::passkey::SoftPasskey;
use keygate_e2e::{unique, Answer, TestApp};
use ldap3::{LdapConnAsync, Mod};
use serde_json::{json, Value};

/// An app with an identity-provider document of its own (read at every request), and a tenant for the directory's
/// people: (the app, the tenant's id). With `issuer`, Google ID tokens of that issuer are accepted too.
async fn app_and_tenant(issuer: Option<&OidcIssuer>) -> (TestApp, String) {
    let secret = unique("keygate-test/idp-");
    let jwks = issuer.map(OidcIssuer::jwks_url);
    let app = TestApp::spawn_with(move |c| {
        c.idp_secret_id = secret;
        c.idp_cache_ttl = 0;
        if let Some(jwks) = jwks {
            c.google_client_ids = vec![GOOGLE_CLIENT_ID.to_owned()];
            c.google_jwks_url = jwks;
        }
    })
    .await;
    if let Some(issuer) = issuer {
        issuer.follow_clock(&app.state);
    }
    let (_, root) = app.signed_up_user().await;
    let tenant = claims(&root.str("access_token"))["tenant"].as_str().unwrap().to_owned();
    (app, tenant)
}

async fn route(app: &TestApp, entry: Value) {
    app.put_idp_document(&json!({ "idps": [entry] })).await;
}

/// The tests' own administrator connection to the directory, for changes the harness has no helper for.
async fn admin() -> ldap3::Ldap {
    let (conn, mut ldap) = LdapConnAsync::new(&ldap::ldap_url()).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(
        &std::env::var("KEYGATE_TEST_LDAP_ADMIN_DN").unwrap(),
        &std::env::var("KEYGATE_TEST_LDAP_ADMIN_PASSWORD").unwrap(),
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    ldap
}

async fn modify(dn: &str, change: Mod<&str>) {
    admin().await.modify(dn, vec![change]).await.unwrap().success().unwrap();
}

async fn login_ok(app: &TestApp, person: &Person) -> Answer {
    let answer = app.login(&person.email, &person.password).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer
}

/// FINDING 1 (high). A person removed from the directory keeps a personal access token working for as long as
/// they never call refresh: only `/v1/auth/refresh` re-asks the directory, and the token's holder decides
/// whether that ever happens. Fails now (the PAT still answers 200 a day later); passes once PAT use (or a
/// periodic sweep) re-checks directory accounts.
#[tokio::test]
async fn a_removed_person_keeps_a_personal_access_token_that_is_never_refreshed() {
    let (app, tenant) = app_and_tenant(None).await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("pat", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    app.state.clock.freeze();
    let tokens = login_ok(&app, &person).await;
    let pat = app
        .post_as(
            &tokens.str("access_token"),
            "/v1/api-tokens",
            json!({ "name": "ci", "scopes": ["profile:read"] }),
        )
        .await;
    assert_eq!(pat.status, 201, "{:?}", pat.body);
    let pat = pat.str("token");

    dir.delete(&person.dn).await;
    app.state.clock.advance(24 * 3600);
    assert_eq!(
        app.login(&person.email, &person.password).await.status,
        401,
        "the directory refuses them"
    );
    let me = app.me(&pat).await;
    assert_eq!(
        me.status, 401,
        "a day after removal from the directory the PAT still works: {:?}",
        me.body
    );
}

/// FINDING 1 (high), second way in. A passkey registered while employed signs a removed person in: passkey
/// sign-in never asks the directory, and each sign-in yields a 15-minute access token (the session's first
/// refresh is the only check, and the thief never refreshes). Fails now; passes once a sign-in that is not the
/// directory's (passkey, Google/Entra link, magic link) re-checks a directory account first (or is refused).
#[tokio::test]
async fn a_removed_person_signs_in_again_with_a_passkey() {
    let (app, tenant) = app_and_tenant(None).await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("key", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    let tokens = login_ok(&app, &person).await;
    let jwt = tokens.str("access_token");
    let options = app.post_as(&jwt, "/v1/auth/passkey/register/options", json!({})).await;
    assert_eq!(options.status, 200, "{:?}", options.body);
    let key = SoftPasskey::new(&options.body["options"]);
    let body = json!({ "ceremony_id": options.str("ceremony_id"), "credential": key.attest(&options.body["options"]) });
    let created = app.post_as(&jwt, "/v1/auth/passkey/register/verify", body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);

    dir.delete(&person.dn).await;
    assert_eq!(app.login(&person.email, &person.password).await.status, 401);
    let options = app
        .post("/v1/auth/passkey/login/options", json!({ "email": person.email }))
        .await;
    assert_eq!(options.status, 200, "{:?}", options.body);
    let signed_in = app
        .post(
            "/v1/auth/passkey/login/verify",
            json!({ "ceremony_id": options.str("ceremony_id"), "credential": key.assert(&options.body["options"]) }),
        )
        .await;
    assert_ne!(
        signed_in.status, 200,
        "a person removed from the directory signed in with a passkey: {:?}",
        signed_in.body
    );
}

/// FINDING 2 (high for Active Directory). The refresh re-check asks only whether an entry with the id exists, not
/// whether the entry's `user_filter` still admits it. Active Directory offboards by disabling an account
/// (userAccountControl), not deleting it, and operators restrict sign-in with the filter (a group, a status); such
/// a person can no longer sign in but keeps every session and PAT. Here the filter admits
/// `employeeType=active` and the person becomes `former`. Fails now (the refresh is 200); passes once the
/// re-check applies the entry's filter (or an `active_filter`, defaulting to the disabled bit for AD).
#[tokio::test]
async fn a_person_the_filter_no_longer_admits_loses_sessions_at_refresh() {
    let (app, tenant) = app_and_tenant(None).await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("leaver", None).await;
    modify(&person.dn, Mod::Add("employeeType", HashSet::from(["active"]))).await;
    let mut entry = dir.entry(&unique("corp-"), &tenant);
    entry["user_filter"] = json!("(&(mail={email})(employeeType=active))");
    route(&app, entry).await;
    app.state.clock.freeze();
    let tokens = login_ok(&app, &person).await;

    modify(&person.dn, Mod::Replace("employeeType", HashSet::from(["former"]))).await;
    assert_eq!(
        app.login(&person.email, &person.password).await.status,
        401,
        "the directory's filter no longer admits them"
    );
    app.state.clock.advance(16 * 60);
    let refreshed = app.refresh(&tokens.str("refresh_token")).await;
    assert_eq!(
        (refreshed.status, refreshed.code()),
        (401, "session_revoked"),
        "a disabled person's session survives the re-check: {:?}",
        refreshed.body
    );
}

/// FINDING 3 (medium-high). The directory guard is keyed by the typed address, but the directory counts failures
/// per entry: a person with two addresses (a second `mail` value, a `proxyAddresses` alias, a filter that matches
/// UPN or mail) gets `max_failures` wrong binds per address. Fails now (six wrong binds reach one entry at once);
/// passes once the guard is claimed per directory entry (after the service-bound search, keyed by the entry's
/// id or DN, before the user's bind).
#[tokio::test]
async fn the_guard_counts_per_directory_entry_not_per_address() {
    let (app, tenant) = app_and_tenant(None).await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("alias", None).await;
    let alias = format!("a.lias@{}", dir.domain);
    modify(&person.dn, Mod::Add("mail", HashSet::from([alias.as_str()]))).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    app.state.clock.freeze();
    for _ in 0..3 {
        let wrong = app.login(&person.email, "Wrong-password-1").await;
        assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    }
    let held = app.login(&person.email, "Wrong-password-1").await;
    assert_eq!(held.status, 429, "the guard holds the first address");
    let via_alias = app.login(&alias, "Wrong-password-1").await;
    assert_eq!(
        via_alias.status, 429,
        "a fourth wrong bind reached the same directory entry through its second address: {:?}",
        via_alias.body
    );
}

/// FINDING 4 (medium-high). The guard forgets failures 900 s after the last *claim*, which is the same as (or
/// shorter than) the observation window of a typical Active Directory lockout policy ("reset account lockout
/// counter after" 15 min in Microsoft's baseline, 30 min in many domains), and the directory's clock starts at
/// the bind, after the claim. So an attacker sends three wrong passwords every 15 minutes and the directory's
/// counter never resets: 3, 6, 9, 12 — locked at 5 or 10. Fails now (a fourth wrong bind within 900 s of the
/// first three); passes once the window is configurable with a margin above the directory's (or counted from
/// the verdict plus a margin), e.g. `failure_window_seconds`, default 1800 + 60.
#[tokio::test]
async fn the_guard_window_outlasts_a_directorys_lockout_observation_window() {
    let (app, tenant) = app_and_tenant(None).await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("window", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    app.state.clock.freeze();
    for _ in 0..3 {
        assert_eq!(app.login(&person.email, "Wrong-password-1").await.status, 401);
    }
    // Exactly fifteen minutes after the three: an AD counting over fifteen minutes (or more) still holds all three.
    app.state.clock.advance(900);
    let fourth = app.login(&person.email, "Wrong-password-1").await;
    assert_eq!(
        fourth.status, 429,
        "a fourth wrong bind reached the directory inside its lockout window: {:?}",
        fourth.body
    );
}

/// FINDING 5 (medium; high for AD rooted at the domain). A search that returns a continuation reference (a
/// referral object in the subtree; Active Directory returns them for DomainDnsZones, ForestDnsZones and
/// Configuration when `user_base_dn` is the domain's root) is counted as a second entry: every sign-in is refused
/// as "more than one entry matches", and the refresh re-check treats every account as gone and ends all its
/// sessions and PATs. Fails now (401); passes once references (`ResultEntry::is_ref`) are skipped.
#[tokio::test]
async fn a_referral_in_the_subtree_does_not_refuse_everyone() {
    let (app, tenant) = app_and_tenant(None).await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("refd", None).await;
    let referral = format!("cn=elsewhere,{}", dir.base_dn);
    admin()
        .await
        .add(
            &referral,
            vec![
                ("objectClass", HashSet::from(["referral", "extensibleObject"])),
                ("cn", HashSet::from(["elsewhere"])),
                (
                    "ref",
                    HashSet::from(["ldap://dc2.corp.example/ou=people,dc=corp,dc=example"]),
                ),
            ],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    let answer = app.login(&person.email, &person.password).await;
    assert_eq!(
        answer.status, 200,
        "a referral elsewhere in the base refuses the one person who matches: {:?}",
        answer.body
    );
}

/// FINDING 6 (medium). Google sign-in makes an account for an address of a routed domain, outside the entry's
/// tenant and without the directory: anyone with a (consumer) Google account on a work address (a former employee,
/// say) takes the address, and the person's first directory sign-in is then 409 `account_exists` for good. Fails
/// now; passes once federated sign-in refuses new accounts for addresses an `ldap` entry is authoritative for.
#[tokio::test]
async fn google_cannot_take_an_address_the_directory_is_authoritative_for() {
    let issuer = OidcIssuer::spawn().await;
    let (app, tenant) = app_and_tenant(Some(&issuer)).await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("newhire", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    let token = issuer.google_token(json!({ "sub": unique("g-"), "email": person.email }));
    let google = app.post("/v1/auth/google", json!({ "id_token": token })).await;
    let directory = app.login(&person.email, &person.password).await;
    assert_eq!(
        directory.status, 200,
        "Google made {:?}; the directory's person then gets {:?}",
        google.body, directory.body
    );
}

/// A TCP proxy in front of the test directory that holds every answer of the directory back by `delay`: a slow
/// domain controller (an overloaded DC, a VPN hop, a PDC chained for a bad password).
async fn slow_directory(delay: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = ldap::ldap_url().trim_start_matches("ldap://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
                let mut buffer = vec![0_u8; 65536];
                while let Ok(n) = server_read.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

/// FINDING 7 (medium). No overall deadline: a directory that answers each operation just inside the 5 s
/// operation timeout makes one login take 3 operations x ~4 s (up to 5 + 3 + 5 + 5x(messages) + 5 s with a stale
/// pooled connection), while auth-login, auth-login-root and auth-refresh run with the template's global Lambda
/// `Timeout: 10`. Lambda kills the request: API Gateway answers a bare 5xx (not keygate's JSON), the guard's claim
/// is never settled, and a right password counts as a failure. Fails now (≈12 s); passes once the whole directory
/// exchange has one deadline below the function's timeout (answering 503 `idp_unavailable`).
#[tokio::test]
async fn a_slow_directory_answers_within_the_functions_timeout() {
    let (app, tenant) = app_and_tenant(None).await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("slow", None).await;
    let mut entry = dir.entry(&unique("corp-"), &tenant);
    entry["url"] = json!(slow_directory(Duration::from_millis(4000)).await);
    entry["start_tls"] = json!(false);
    entry["allow_insecure"] = json!(true);
    entry.as_object_mut().unwrap().remove("ca_pem");
    route(&app, entry).await;
    let started = Instant::now();
    let answer = app.login(&person.email, &person.password).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(9),
        "a login took {took:?} (Lambda's Timeout is 10 s) and answered {} {:?}",
        answer.status,
        answer.body
    );
}
