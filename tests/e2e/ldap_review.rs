//! Issue 15's attacker review (LDAP / Active Directory sign-in): each test here is an attack the review found,
//! written against the real directory; every one failed before its fix. The doc comments say what the attacker
//! tried and what stops it now.

use std::collections::HashSet;
use std::time::Duration;

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

/// A person removed from the directory would keep a personal access token working for as long as they never
/// refresh (only a refresh or a sign-in asks the directory). A directory account cannot hold one.
#[tokio::test]
async fn a_directory_account_cannot_mint_a_token_that_would_outlive_its_removal() {
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
    assert_eq!((pat.status, pat.code()), (422, "invalid_field"), "{:?}", pat.body);
    let listed = app.get("/v1/api-tokens", Some(&tokens.str("access_token"))).await;
    assert_eq!(listed.body["tokens"], json!([]), "{:?}", listed.body);
}

/// A passkey registered while employed would sign a removed person in (each sign-in a fresh 15-minute access
/// token, never refreshed). Every sign-in the directory does not judge asks it first.
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
    assert_eq!(
        (signed_in.status, signed_in.code()),
        (401, "invalid_credentials"),
        "a person removed from the directory signed in with a passkey: {:?}",
        signed_in.body
    );
}

/// Directories offboard by disabling (Active Directory's userAccountControl) or by a filter (a group, a status)
/// long before they delete: the re-check asks for the entry by its id AND the entry's `user_filter`. Here the
/// filter admits `employeeType=active` and the person becomes `former`.
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

/// The directory counts failures per entry: a person with two addresses (a second `mail`, a principal name) would
/// give `max_failures` wrong binds per address. The guard also counts per entry, claimed between the search and
/// the bind.
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

/// A directory whose lockout counter resets only after 30 minutes would count three wrong passwords sent every 15
/// minutes up to its threshold: `failure_window_seconds` makes the guard remember as long as the directory does.
#[tokio::test]
async fn the_guard_window_outlasts_a_directorys_lockout_observation_window() {
    let (app, tenant) = app_and_tenant(None).await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("window", None).await;
    let mut entry = dir.entry(&unique("corp-"), &tenant);
    entry["failure_window_seconds"] = json!(1800);
    route(&app, entry).await;
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
    app.state.clock.advance(901);
    assert_eq!(login_ok(&app, &person).await.status, 200, "forgotten after the window");
}

/// A regression guard. Active Directory answers a subtree search from the domain's
/// root with continuation references (DomainDnsZones, ForestDnsZones, Configuration); were they counted as
/// entries, every sign-in would be "more than one entry" and every re-check "gone". ldap3's `search` drops them
/// (its `EntriesOnly` adapter), so a referral object beside the person changes nothing.
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

/// Google sign-in would make an account for an address of a routed domain, outside the entry's tenant and without
/// the directory: anyone with a (consumer) Google account on a work address (a former employee, say) would take
/// the address, and the person's first directory sign-in would be 409 `account_exists` for good. Refused (422).
#[tokio::test]
async fn google_cannot_take_an_address_the_directory_is_authoritative_for() {
    let issuer = OidcIssuer::spawn().await;
    let (app, tenant) = app_and_tenant(Some(&issuer)).await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("newhire", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    let token = issuer.google_token(json!({ "sub": unique("g-"), "email": person.email }));
    let google = app.post("/v1/auth/google", json!({ "id_token": token })).await;
    assert_eq!(
        (google.status, google.code()),
        (422, "invalid_field"),
        "{:?}",
        google.body
    );
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

/// A directory that answers each operation just inside its own timeout would keep a sign-in past the function's
/// timeout (a bare 5xx, an unsettled attempt). The search has one deadline (8 s): here every answer is held back 4
/// seconds, the service bind and the search together miss it, and the answer is keygate's 503.
#[tokio::test]
async fn a_slow_directory_answers_a_clear_503_before_the_functions_timeout() {
    let (app, tenant) = app_and_tenant(None).await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("slow", None).await;
    let mut entry = dir.entry(&unique("corp-"), &tenant);
    entry["url"] = json!(slow_directory(Duration::from_millis(4000)).await);
    entry["start_tls"] = json!(false);
    entry["allow_insecure"] = json!(true);
    entry.as_object_mut().unwrap().remove("ca_pem");
    route(&app, entry).await;
    let answer = app.login(&person.email, &person.password).await;
    assert_eq!(
        (answer.status, answer.code()),
        (503, "idp_unavailable"),
        "{:?}",
        answer.body
    );
    // The attempt was not counted: the person signs in once the directory is quick again.
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    assert_eq!(login_ok(&app, &person).await.status, 200);
}
