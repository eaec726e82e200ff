//! Issue 15: LDAP and Active Directory sign-in, routed by the address's domain, against the real OpenLDAP
//! directory `make test` starts (`scripts/slapd.sh`; `keygate_e2e::ldap`). Every test has its own unit of the
//! directory, mail domain and identity-provider document.

use keygate_e2e::jwt_claims as claims;
use keygate_e2e::ldap::{self, Directory};
use keygate_e2e::{unique, Answer, TestApp, PASSWORD};
use serde_json::{json, Value};

/// An app with an identity-provider document of its own (read at every request), and a tenant for the directory's
/// people: (the app, the tenant's id).
async fn app_and_tenant() -> (TestApp, String) {
    let secret = unique("keygate-test/idp-");
    let app = TestApp::spawn_with(move |c| {
        c.idp_secret_id = secret;
        c.idp_cache_ttl = 0;
    })
    .await;
    let (_, root) = app.signed_up_user().await;
    let tenant = claims(&root.str("access_token"))["tenant"].as_str().unwrap().to_owned();
    (app, tenant)
}

/// Routes the directory's domain to `entry`.
async fn route(app: &TestApp, entry: Value) {
    app.put_idp_document(&json!({ "idps": [entry] })).await;
}

#[tokio::test]
async fn a_directory_login_creates_the_account_in_the_entrys_tenant_and_returns_to_it() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("ada", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;

    let first = app.login(&person.email, &person.password).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let jwt = first.str("access_token");
    assert_eq!(claims(&jwt)["tenant"], tenant.as_str(), "the entry's tenant");
    assert_eq!(claims(&jwt)["role"], "backend", "the entry's default role");
    assert_eq!(claims(&jwt)["amr"], json!(["pwd"]));
    assert_eq!(first.body["user"]["email"], person.email.as_str());
    assert_eq!(first.body["user"]["email_verified"], true);
    assert_eq!(first.body["user"]["has_password"], false, "no local password is kept");
    assert_eq!(first.body["user"]["name"], "Directory Person");

    let again = app.login(&person.email, &person.password).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.user_id(), first.user_id(), "found again by the directory's id");
    let identities = app.get("/v1/auth/identities", Some(&jwt)).await;
    assert_eq!(
        identities.body["identities"][0]["provider"], "ldap",
        "{:?}",
        identities.body
    );

    let change = app
        .change_password(&jwt, &person.password, "A-new-local-password-1")
        .await;
    assert_eq!((change.status, change.code()), (409, "password_managed_externally"));
    let upper = app.login(&person.email.to_uppercase(), &person.password).await;
    assert_eq!(upper.status, 200, "addresses are case-insensitive: {:?}", upper.body);
    assert_eq!(upper.user_id(), first.user_id());
}

#[tokio::test]
async fn a_wrong_password_is_answered_exactly_as_a_local_failure() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("grace", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    let (local_email, _) = app.signed_up_user().await;

    let routed = app.login(&person.email, "Not-her-password-1").await;
    let local = app.login(&local_email, "Not-the-password-1").await;
    let unknown = app.login(&format!("nobody@{}", dir.domain), "Not-the-password-1").await;
    for answer in [&routed, &unknown] {
        assert_eq!(answer.status, local.status);
        assert_eq!(answer.body["error"], local.body["error"], "the same body");
        let mut keys: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["error", "request_id"]);
        let names = |a: &Answer| {
            let mut names: Vec<String> = a.headers.keys().map(|k| k.as_str().to_owned()).collect();
            names.retain(|n| n != "date" && n != "x-request-id");
            names.sort();
            names
        };
        assert_eq!(names(answer), names(&local), "the same headers");
        for name in ["content-type", "cache-control", "www-authenticate"] {
            assert_eq!(answer.headers.get(name), local.headers.get(name), "{name}");
        }
    }
    assert_eq!(local.code(), "invalid_credentials");
}

#[tokio::test]
async fn an_empty_password_never_reaches_the_directory_and_a_routed_domain_never_falls_back() {
    let (app, tenant) = app_and_tenant().await;
    let dir = Directory::new().await;
    // An account made with a local password before the domain was routed.
    let email = format!("early@{}", dir.domain);
    assert_eq!(app.register(&email, PASSWORD).await.status, 202);
    let code = app.code_sent_to(&email, "verification code").await;
    assert_eq!(app.verify(&email, &code).await.status, 200);
    assert_eq!(app.login(&email, PASSWORD).await.status, 200);

    // The directory is down.
    let mut entry = dir.entry(&unique("corp-"), &tenant);
    entry["url"] = json!(ldap::closed_url());
    entry["start_tls"] = json!(false);
    entry["allow_insecure"] = json!(true);
    route(&app, entry).await;
    let down = app.login(&email, PASSWORD).await;
    assert_eq!(
        (down.status, down.code()),
        (503, "idp_unavailable"),
        "no local fallback"
    );
    let empty = app.login(&email, "").await;
    assert_eq!(
        (empty.status, empty.code()),
        (401, "invalid_credentials"),
        "refused before any bind: a down directory would have been 503"
    );

    // Up again: the local password means nothing to it.
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    let refused = app.login(&email, PASSWORD).await;
    assert_eq!((refused.status, refused.code()), (401, "invalid_credentials"));
}

#[tokio::test]
async fn filter_injection_matches_nothing() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    // The only person of the unit: an unescaped wildcard would match them.
    let person = dir.add_person("only", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    for email in [
        format!("*@{}", dir.domain),
        format!("o*@{}", dir.domain),
        format!("*)(uid=*))(|(uid=*@{}", dir.domain),
        format!("only@{})(mail=*", dir.domain),
    ] {
        let answer = app.login(&email, &person.password).await;
        assert_eq!(
            (answer.status, answer.code()),
            (401, "invalid_credentials"),
            "{email}: {:?}",
            answer.body
        );
    }
    assert_eq!(app.login(&person.email, &person.password).await.status, 200);
}

#[tokio::test]
async fn two_entries_with_one_address_are_refused() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let first = dir.add_person("twin1", None).await;
    let second = dir.add_person("twin2", Some(&first.email)).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    for person in [&first, &second] {
        let answer = app.login(&person.email, &person.password).await;
        assert_eq!((answer.status, answer.code()), (401, "invalid_credentials"));
    }
}

#[tokio::test]
async fn active_directory_defaults_and_a_changed_address_move_the_account() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let domain = dir.domain.clone();
    // Signs in by principal name; the directory's mail is outside the entry's domains, so it is not used.
    let person = dir
        .add_ad_person("Bob Builder", &format!("bob@{domain}"), "bob@elsewhere.example")
        .await;
    let id = unique("ad-");
    let mut entry = dir.entry(&id, &tenant);
    entry["directory"] = json!("active_directory");
    route(&app, entry).await;

    let first = app.login(&person.email, &person.password).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(
        first.body["user"]["email"],
        person.email.as_str(),
        "the typed address, not the foreign mail"
    );
    assert_eq!(first.body["user"]["name"], "Bob Builder");
    let identities = app.get("/v1/auth/identities", Some(&first.str("access_token"))).await;
    let subject = identities.body["identities"][0]["subject"].as_str().unwrap().to_owned();
    let (entry_id, guid) = subject.split_once(':').unwrap();
    assert_eq!(entry_id, id);
    assert!(
        guid.len() == 32 && guid.starts_with("ff"),
        "the binary objectGUID, as hex: {subject}"
    );

    // The directory's mail moves into the entry's domains: the account follows it.
    let moved = format!("robert@{domain}");
    dir.set_mail(&person.dn, &moved).await;
    let second = app.login(&person.email, &person.password).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(second.user_id(), first.user_id(), "the same account");
    assert_eq!(second.body["user"]["email"], moved.as_str());
    let me = app.me(&second.str("access_token")).await;
    assert_eq!(me.body["email"], moved.as_str(), "{:?}", me.body);
}

#[tokio::test]
async fn a_renamed_openldap_address_moves_the_account_and_the_old_one_stops() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("carol", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    let first = app.login(&person.email, &person.password).await;
    assert_eq!(first.status, 200, "{:?}", first.body);

    let renamed = format!("carol.new@{}", dir.domain);
    dir.set_mail(&person.dn, &renamed).await;
    let old = app.login(&person.email, &person.password).await;
    assert_eq!(
        (old.status, old.code()),
        (401, "invalid_credentials"),
        "the directory no longer has it"
    );
    let new = app.login(&renamed, &person.password).await;
    assert_eq!(new.status, 200, "{:?}", new.body);
    assert_eq!(new.user_id(), first.user_id());
    assert_eq!(new.body["user"]["email"], renamed.as_str());
}

#[tokio::test]
async fn a_person_removed_from_the_directory_loses_every_session_at_refresh() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("dave", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    app.state.clock.freeze();
    let tokens = app.login(&person.email, &person.password).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    app.state.clock.advance(10 * 60);
    let other = app.login(&person.email, &person.password).await;
    assert_eq!(other.status, 200, "{:?}", other.body);

    dir.delete(&person.dn).await;
    // Not asked again within fifteen minutes of the sign-in.
    app.state.clock.advance(60);
    let soon = app.refresh(&tokens.str("refresh_token")).await;
    assert_eq!(soon.status, 200, "{:?}", soon.body);
    app.state.clock.advance(15 * 60);
    let late = app.refresh(&soon.str("refresh_token")).await;
    assert_eq!((late.status, late.code()), (401, "session_revoked"), "{:?}", late.body);
    let newer = app.refresh(&other.str("refresh_token")).await;
    assert_eq!(
        (newer.status, newer.code()),
        (401, "session_revoked"),
        "every session of the account ended, not only the one that asked: {:?}",
        newer.body
    );
    let login = app.login(&person.email, &person.password).await;
    assert_eq!((login.status, login.code()), (401, "invalid_credentials"));
}

#[tokio::test]
async fn a_present_person_keeps_refreshing_and_an_unreachable_directory_is_503() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("erin", None).await;
    let id = unique("corp-");
    route(&app, dir.entry(&id, &tenant)).await;
    app.state.clock.freeze();
    let tokens = app.login(&person.email, &person.password).await;
    app.state.clock.advance(16 * 60);
    let asked = app.refresh(&tokens.str("refresh_token")).await;
    assert_eq!(asked.status, 200, "{:?}", asked.body);

    let mut down = dir.entry(&id, &tenant);
    down["url"] = json!(ldap::closed_url());
    down["start_tls"] = json!(false);
    down["allow_insecure"] = json!(true);
    route(&app, down).await;
    // Checked a moment ago: not asked.
    let recent = app.refresh(&asked.str("refresh_token")).await;
    assert_eq!(recent.status, 200, "{:?}", recent.body);
    app.state.clock.advance(16 * 60);
    let unreachable = app.refresh(&recent.str("refresh_token")).await;
    assert_eq!((unreachable.status, unreachable.code()), (503, "idp_unavailable"));
    route(&app, dir.entry(&id, &tenant)).await;
    let back = app.refresh(&recent.str("refresh_token")).await;
    assert_eq!(back.status, 200, "the session survived the outage: {:?}", back.body);
}

#[tokio::test]
async fn codes_links_registration_and_resets_of_a_routed_domain_mail_a_notice() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("frank", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    assert_eq!(app.login(&person.email, &person.password).await.status, 200);
    app.deliver_mail().await;

    let reset = app
        .post("/v1/auth/password-reset-request", json!({ "email": person.email }))
        .await;
    assert_eq!(reset.status, 202, "{:?}", reset.body);
    let (subject, _) = app.emails_to(&person.email).await.pop().unwrap();
    assert_eq!(subject, "Your password is managed by your organization");

    for (path, body) in [
        (
            "/v1/auth/otp/send",
            json!({ "email": person.email, "purpose": "login" }),
        ),
        ("/v1/auth/magic-link/send", json!({ "email": person.email })),
    ] {
        let sent = app.post(path, body).await;
        assert_eq!(sent.status, 202, "{path}: {:?}", sent.body);
        let (subject, _) = app.emails_to(&person.email).await.pop().unwrap();
        assert_eq!(subject, "Sign in with your organization's account", "{path}");
    }

    let newcomer = format!("newcomer@{}", dir.domain);
    let registered = app.register(&newcomer, PASSWORD).await;
    assert_eq!(registered.status, 202, "{:?}", registered.body);
    let mails = app.emails_to(&newcomer).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].0, "Sign in with your organization's account", "no code");
    let login = app.login(&newcomer, PASSWORD).await;
    assert_eq!(
        (login.status, login.code()),
        (401, "invalid_credentials"),
        "no local account was made"
    );
}

#[tokio::test]
async fn the_guard_stops_before_the_directory_would_lock_the_account() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("gina", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    app.state.clock.freeze();
    for _ in 0..3 {
        let wrong = app.login(&person.email, "Wrong-password-1").await;
        assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
        app.state.clock.advance(1);
    }
    let held = app.login(&person.email, &person.password).await;
    assert_eq!(
        (held.status, held.code()),
        (429, "rate_limited"),
        "refused before any bind"
    );
    let wait: i64 = held.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((890..=900).contains(&wait), "{wait}");
    // Another address of the same directory is not held.
    let other = dir.add_person("hank", None).await;
    assert_eq!(app.login(&other.email, &other.password).await.status, 200);

    app.state.clock.advance(wait);
    let later = app.login(&person.email, &person.password).await;
    assert_eq!(later.status, 200, "{:?}", later.body);
    // A success forgets the failures.
    for _ in 0..2 {
        assert_eq!(app.login(&person.email, "Wrong-password-1").await.status, 401);
        app.state.clock.advance(1);
    }
    assert_eq!(app.login(&person.email, &person.password).await.status, 200);
}

#[tokio::test]
async fn tls_is_verified_against_the_configured_ca() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("ivan", None).await;
    let id = unique("corp-");

    let mut ldaps = dir.entry(&id, &tenant);
    ldaps["url"] = json!(ldap::ldaps_url());
    ldaps["start_tls"] = json!(false);
    route(&app, ldaps.clone()).await;
    let over_ldaps = app.login(&person.email, &person.password).await;
    assert_eq!(over_ldaps.status, 200, "{:?}", over_ldaps.body);

    ldaps["ca_pem"] = json!(ldap::wrong_ca_pem());
    route(&app, ldaps).await;
    let wrong = app.login(&person.email, &person.password).await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (503, "idp_unavailable"),
        "ldaps with the wrong CA"
    );

    let mut starttls = dir.entry(&id, &tenant);
    starttls["ca_pem"] = json!(ldap::wrong_ca_pem());
    route(&app, starttls).await;
    let wrong = app.login(&person.email, &person.password).await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (503, "idp_unavailable"),
        "StartTLS with the wrong CA"
    );

    let mut system_roots = dir.entry(&id, &tenant);
    system_roots.as_object_mut().unwrap().remove("ca_pem");
    route(&app, system_roots).await;
    let untrusted = app.login(&person.email, &person.password).await;
    assert_eq!(
        (untrusted.status, untrusted.code()),
        (503, "idp_unavailable"),
        "a test CA is not among the system roots"
    );
}

#[tokio::test]
async fn an_existing_account_at_the_address_is_never_taken_over() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("judy", None).await;
    // Someone registered the address locally before the domain was routed.
    assert_eq!(app.register(&person.email, PASSWORD).await.status, 202);
    let code = app.code_sent_to(&person.email, "verification code").await;
    let local = app.verify(&person.email, &code).await;
    assert_eq!(local.status, 200);
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    let refused = app.login(&person.email, &person.password).await;
    assert_eq!(
        (refused.status, refused.code()),
        (409, "account_exists"),
        "{:?}",
        refused.body
    );
    let me = app.me(&local.str("access_token")).await;
    assert_eq!(me.status, 200, "the local account is untouched");
}

#[tokio::test]
async fn a_directory_account_with_two_factor_authentication_gets_a_challenge() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("kim", None).await;
    route(&app, dir.entry(&unique("corp-"), &tenant)).await;
    app.state.clock.freeze();
    let session = app.login(&person.email, &person.password).await;
    assert_eq!(session.status, 200, "{:?}", session.body);
    let enrolled = crate::two_factor::enrol(&app, person.email.clone(), session).await;

    let login = app.login(&person.email, &person.password).await;
    crate::two_factor::assert_challenge(&login);
    let wrong = app.login(&person.email, "Wrong-password-1").await;
    assert_eq!(wrong.status, 401, "the directory still judges the password");
    let answered = crate::two_factor::verify(&app, &login.str("challenge_token"), &enrolled.backup_codes[0]).await;
    assert_eq!(answered.status, 200, "{:?}", answered.body);
    assert_eq!(
        claims(&answered.str("access_token"))["amr"],
        json!(["pwd", "backup_code", "mfa"])
    );
    // The session the challenge started was not the directory's: its first refresh asks the directory.
    dir.delete(&person.dn).await;
    let refreshed = app.refresh(&answered.str("refresh_token")).await;
    assert_eq!(
        (refreshed.status, refreshed.code()),
        (401, "session_revoked"),
        "{:?}",
        refreshed.body
    );
}

#[tokio::test]
async fn a_directory_no_longer_configured_vouches_for_nobody() {
    let (app, tenant) = app_and_tenant().await;
    let mut dir = Directory::new().await;
    let person = dir.add_person("lee", None).await;
    let id = unique("corp-");
    route(&app, dir.entry(&id, &tenant)).await;
    app.state.clock.freeze();
    let tokens = app.login(&person.email, &person.password).await;
    assert_eq!(tokens.status, 200, "{:?}", tokens.body);
    app.put_idp_document(&json!({ "idps": [] })).await;
    app.state.clock.advance(16 * 60);
    let refused = app.refresh(&tokens.str("refresh_token")).await;
    assert_eq!((refused.status, refused.code()), (401, "session_revoked"));
    let login = app.login(&person.email, &person.password).await;
    assert_eq!(
        (login.status, login.code()),
        (401, "invalid_credentials"),
        "no local password either"
    );
    // Configured again (a mistake undone): the same session refreshes, as its epochs did not move.
    route(&app, dir.entry(&id, &tenant)).await;
    let again = app.refresh(&tokens.str("refresh_token")).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
}
