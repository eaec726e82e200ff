use std::time::Duration;

use ldap3::asn1::{StructureTag, TagClass, PL};
use tokio::net::TcpListener;

use super::*;
use crate::federation::config::LdapAttributes;

/// A self-signed test CA (P-256), valid until 2126.
const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBijCCATGgAwIBAgIUAQFwycM87ZusPcHBFmTV/xe1WvAwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPa2V5Z2F0ZSB0ZXN0IENBMCAXDTI2MTIwNjAzMjMyMFoYDzIx
MjYxMTEyMDMyMzIwWjAaMRgwFgYDVQQDDA9rZXlnYXRlIHRlc3QgQ0EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAARGrDZLfoqpS1MiInHDNdq26IpZr5u98y8G7XkW
EdxTDGg7FHwoZyEDk0VIhWs3TBE7sTp070BonhJcmwfhqnpSo1MwUTAdBgNVHQ4E
FgQU9gcvCj3kdu55otuPe5WD6keKlkMwHwYDVR0jBBgwFoAU9gcvCj3kdu55otuP
e5WD6keKlkMwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiA8yUv2
ldIgGnljQLHvDj0R2I9tilMoPhHJMPEQwfk81wIgTt/Y4zqXiw+flsHFJwZlPQbk
lqSXPfYkQN47QLVkPDQ=
-----END CERTIFICATE-----
";

fn entry(url: &str) -> LdapEntry {
    LdapEntry {
        url: url.to_owned(),
        start_tls: false,
        ca_pem: None,
        bind_dn: "cn=keygate,dc=example,dc=org".to_owned(),
        bind_password: SecretString::from("hunter2-bind"),
        user_base_dn: "ou=people,dc=example,dc=org".to_owned(),
        user_filter: "(mail={email})".to_owned(),
        attributes: LdapAttributes {
            id: "entryUUID".to_owned(),
            email: "mail".to_owned(),
            name: "displayName".to_owned(),
        },
        allow_insecure: true,
        max_failures: 3,
        failure_window_seconds: 900,
    }
}

#[test]
fn the_address_is_escaped_into_the_filter() {
    assert_eq!(user_filter("(mail={email})", "ann@corp.test"), "(mail=ann@corp.test)");
    let hostile = "*)(uid=*))(|(uid=*@corp.test";
    let filter = user_filter("(mail={email})", hostile);
    assert_eq!(filter, "(mail=\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a@corp.test)");
    // Still one equality filter: no parenthesis or wildcard of the address survives.
    assert!(ldap3::parse_filter(&filter).is_ok());
    assert_eq!(filter.matches(['(', ')', '*']).count(), 2, "{filter}");
    assert_eq!(
        user_filter("(&(objectClass=user)(userPrincipalName={email}))", "a\\b\0c@x.test"),
        "(&(objectClass=user)(userPrincipalName=a\\5cb\\00c@x.test))"
    );
    // Every occurrence of the placeholder is replaced.
    assert_eq!(
        user_filter("(|(mail={email})(uid={email}))", "a*@x.test"),
        "(|(mail=a\\2a@x.test)(uid=a\\2a@x.test))"
    );
}

#[test]
fn the_id_filter_escapes_every_byte() {
    assert_eq!(
        id_filter("objectGUID", &[0x00, 0x2a, 0x28, 0xff]),
        "(objectGUID=\\00\\2a\\28\\ff)"
    );
    let uuid = "0f1e2d3c-0000-4000-8000-00000000abcd";
    let filter = id_filter("entryUUID", uuid.as_bytes());
    assert!(filter.starts_with("(entryUUID=\\30\\66\\31\\65"), "{filter}");
    assert!(ldap3::parse_filter(&filter).is_ok());
    assert!(ldap3::parse_filter(id_filter("objectGUID", &[0, 1, 2, 255, 40, 41, 42, 92])).is_ok());
}

#[test]
fn ids_round_trip_through_hex() {
    let guid: Vec<u8> = (0..=255u8).step_by(17).collect();
    let hex = encode_hex(&guid);
    assert_eq!(hex, "00112233445566778899aabbccddeeff");
    assert_eq!(decode_hex(&hex), Some(guid));
    assert_eq!(decode_hex("00FFaA"), Some(vec![0, 255, 170]));
    assert_eq!(decode_hex(""), Some(vec![]));
    for bad in ["0", "abc", "zz", "+f", "-1", "0x00", "ff ", " ff", "é1", "00\n"] {
        assert_eq!(decode_hex(bad), None, "{bad:?}");
    }
    let uuid = "0f1e2d3c-0000-4000-8000-00000000abcd";
    assert_eq!(
        decode_hex(&encode_hex(uuid.as_bytes())).as_deref(),
        Some(uuid.as_bytes())
    );
}

#[test]
fn the_fingerprint_follows_the_connection_settings_only() {
    let base = entry("ldaps://ldap.example.org");
    let print = fingerprint(&base);
    let mut same = entry("ldaps://ldap.example.org");
    same.bind_dn = "cn=other".to_owned();
    same.bind_password = SecretString::from("other");
    same.user_filter = "(uid={email})".to_owned();
    same.max_failures = 9;
    assert_eq!(fingerprint(&same), print);
    let changes: [fn(&mut LdapEntry); 5] = [
        |e| e.url = "ldaps://ldap2.example.org".to_owned(),
        |e| e.start_tls = true,
        |e| e.allow_insecure = false,
        |e| e.ca_pem = Some(TEST_CA_PEM.to_owned()),
        |e| e.ca_pem = Some(String::new()),
    ];
    let mut seen = vec![print];
    for change in changes {
        let mut changed = entry("ldaps://ldap.example.org");
        change(&mut changed);
        let other = fingerprint(&changed);
        assert!(!seen.contains(&other), "{changed:?}");
        seen.push(other);
    }
}

#[test]
fn a_ca_bundle_gives_its_roots_only() {
    assert_eq!(ca_roots(TEST_CA_PEM).unwrap().len(), 1);
    let two = format!("# corp roots\n{TEST_CA_PEM}\n{TEST_CA_PEM}");
    assert_eq!(ca_roots(&two).unwrap().len(), 2);
    assert_eq!(ca_roots("").unwrap_err(), "must hold at least one PEM certificate");
    assert!(ca_roots("-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n").is_err());
    assert!(ca_roots(&TEST_CA_PEM[..TEST_CA_PEM.len() - 30]).is_err());
    assert!(tls_config(ca_roots(TEST_CA_PEM).unwrap()).is_ok());
}

fn octets(bytes: &[u8]) -> StructureTag {
    StructureTag {
        class: TagClass::Universal,
        id: 4,
        payload: PL::P(bytes.to_vec()),
    }
}

fn constructed(class: TagClass, id: u64, inner: Vec<StructureTag>) -> StructureTag {
    StructureTag {
        class,
        id,
        payload: PL::C(inner),
    }
}

/// A SearchResultEntry as the wire carries it.
fn result_entry(dn: &[u8], attributes: &[(&str, &[&[u8]])]) -> ResultEntry {
    let attributes = attributes
        .iter()
        .map(|(name, values)| {
            let values = values.iter().map(|value| octets(value)).collect();
            constructed(
                TagClass::Universal,
                16,
                vec![octets(name.as_bytes()), constructed(TagClass::Universal, 17, values)],
            )
        })
        .collect();
    ResultEntry::new(constructed(
        TagClass::Application,
        4,
        vec![octets(dn), constructed(TagClass::Universal, 16, attributes)],
    ))
}

#[test]
fn an_entry_gives_its_id_as_hex_of_the_raw_bytes() {
    let mut ad = entry("ldaps://dc.example.org");
    ad.attributes.id = "objectGUID".to_owned();
    // Not UTF-8: ldap3's SearchEntry would have put it in bin_attrs.
    let guid: &[u8] = &[0x9f, 0x00, 0xff, 0x41, 0xc3, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let found = Entry::parse(result_entry(
        b"CN=Ann,OU=People,DC=example,DC=org",
        &[
            ("objectGUID", &[guid]),
            ("mail", &[b"ann@example.org", b"ann.other@example.org"]),
            ("displayName", &["Ann Ö".as_bytes()]),
        ],
    ))
    .unwrap();
    let user = directory_user(&found, &ad).unwrap();
    assert_eq!(
        user,
        DirectoryUser {
            dn: "CN=Ann,OU=People,DC=example,DC=org".to_owned(),
            id: "9f00ff41c32800000000000000000001".to_owned(),
            email: Some("ann@example.org".to_owned()),
            name: Some("Ann Ö".to_owned()),
        }
    );
    assert_eq!(decode_hex(&user.id).as_deref(), Some(guid));
    // A text id (entryUUID) is the hex of its UTF-8 bytes; the server's spelling of a name does not matter.
    let uuid = "0f1e2d3c-0000-4000-8000-00000000abcd";
    let found = Entry::parse(result_entry(
        b"uid=ann,dc=example,dc=org",
        &[("ENTRYUUID", &[uuid.as_bytes()])],
    ))
    .unwrap();
    let user = directory_user(&found, &entry("ldaps://x.example.org")).unwrap();
    assert_eq!(user.id, encode_hex(uuid.as_bytes()));
    assert_eq!((user.email, user.name), (None, None));
}

#[test]
fn an_entry_without_an_id_or_with_a_binary_address_gives_what_it_can() {
    let ldap = entry("ldaps://x.example.org");
    let found = Entry::parse(result_entry(b"uid=ann", &[("mail", &[b"ann@example.org"])])).unwrap();
    assert_eq!(directory_user(&found, &ldap), None);
    let found = Entry::parse(result_entry(b"uid=ann", &[("entryUUID", &[b""])])).unwrap();
    assert_eq!(directory_user(&found, &ldap), None, "an empty id is no id");
    let found = Entry::parse(result_entry(b"uid=ann", &[("entryUUID", &[])])).unwrap();
    assert_eq!(directory_user(&found, &ldap), None);
    let found = Entry::parse(result_entry(
        b"uid=ann",
        &[
            ("entryUUID", &[b"1"]),
            ("mail", &[&[0xff, 0xfe]]),
            ("displayName", &[b"Ann"]),
        ],
    ))
    .unwrap();
    let user = directory_user(&found, &ldap).unwrap();
    assert_eq!(
        (user.id.as_str(), user.email, user.name.as_deref()),
        ("31", None, Some("Ann"))
    );
}

#[test]
fn a_malformed_entry_is_refused_rather_than_panicking() {
    let tag = |class, id, payload| StructureTag { class, id, payload };
    for malformed in [
        // Not a SearchResultEntry.
        tag(TagClass::Application, 5, PL::C(vec![])),
        // Primitive where constructed is expected.
        tag(TagClass::Application, 4, PL::P(vec![1, 2])),
        // No DN.
        tag(TagClass::Application, 4, PL::C(vec![])),
        // A DN that is not UTF-8.
        constructed(
            TagClass::Application,
            4,
            vec![octets(&[0xff]), constructed(TagClass::Universal, 16, vec![])],
        ),
        // No attribute list.
        constructed(TagClass::Application, 4, vec![octets(b"uid=a")]),
        // An attribute without values.
        constructed(
            TagClass::Application,
            4,
            vec![
                octets(b"uid=a"),
                constructed(
                    TagClass::Universal,
                    16,
                    vec![constructed(TagClass::Universal, 16, vec![octets(b"mail")])],
                ),
            ],
        ),
        // A value that is constructed.
        constructed(
            TagClass::Application,
            4,
            vec![
                octets(b"uid=a"),
                constructed(
                    TagClass::Universal,
                    16,
                    vec![constructed(
                        TagClass::Universal,
                        16,
                        vec![
                            octets(b"mail"),
                            constructed(
                                TagClass::Universal,
                                17,
                                vec![constructed(TagClass::Universal, 16, vec![])],
                            ),
                        ],
                    )],
                ),
            ],
        ),
    ] {
        assert!(Entry::parse(ResultEntry::new(malformed)).is_none());
    }
}

/// A TCP listener that takes connections and never answers: enough for plain connections to exist.
async fn silent_server() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    (listener, url)
}

#[tokio::test]
async fn an_empty_password_is_rejected_before_any_connection() {
    let (listener, url) = silent_server().await;
    let directories = Directories::new();
    let verdict = directories
        .authenticate("corp", &entry(&url), "ann@corp.test", &SecretString::from(""))
        .await
        .unwrap();
    assert_eq!(verdict, Verdict::Rejected);
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "a connection was made");
}

#[tokio::test]
async fn a_malformed_id_is_not_found_without_asking() {
    let (listener, url) = silent_server().await;
    let directories = Directories::new();
    for id in ["", "abc", "zz", "+f", &"00".repeat(MAX_ID_BYTES + 1)] {
        assert_eq!(directories.find("corp", &entry(&url), id).await.unwrap(), None, "{id}");
    }
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "a connection was made");
}

#[tokio::test]
async fn an_unreachable_directory_is_503() {
    // Bound then dropped: nothing listens there.
    let (listener, url) = silent_server().await;
    drop(listener);
    let directories = Directories::new();
    let err = directories
        .authenticate("corp", &entry(&url), "ann@corp.test", &SecretString::from("pw"))
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (503, "idp_unavailable"));
    let err = directories.find("corp", &entry(&url), "00ff").await.unwrap_err();
    assert_eq!(err.status(), 503);
}

#[tokio::test]
async fn a_silent_directory_times_out_as_503() {
    let (_listener, url) = silent_server().await;
    let directories = Directories::new();
    let started = std::time::Instant::now();
    let err = directories
        .authenticate("corp", &entry(&url), "ann@corp.test", &SecretString::from("pw"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= OPERATION_TIMEOUT && elapsed < OPERATION_TIMEOUT + Duration::from_secs(2),
        "{elapsed:?}"
    );
    // The timed-out connection was not kept.
    assert!(directories.idle.lock().await.values().all(Vec::is_empty));
}

#[tokio::test]
async fn plain_ldap_without_allow_insecure_never_connects() {
    let (listener, url) = silent_server().await;
    let mut ldap = entry(&url);
    ldap.allow_insecure = false;
    let err = Directories::new()
        .authenticate("corp", &ldap, "ann@corp.test", &SecretString::from("pw"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503);
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "a connection was made");
}

#[tokio::test]
async fn tls_to_a_server_that_is_not_one_fails_as_503() {
    // StartTLS against a server that never answers the extended operation: the 3 s connect timeout.
    let (_listener, url) = silent_server().await;
    let mut ldap = entry(&url);
    ldap.start_tls = true;
    ldap.allow_insecure = false;
    ldap.ca_pem = Some(TEST_CA_PEM.to_owned());
    let started = std::time::Instant::now();
    let err = Directories::new()
        .authenticate("corp", &ldap, "ann@corp.test", &SecretString::from("pw"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503);
    assert!(started.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(1));
}

fn ok() -> Result<(), (&'static str, Failure)> {
    Ok(())
}

#[tokio::test]
async fn the_pool_lends_live_connections_made_from_the_same_settings() {
    let (listener, url) = silent_server().await;
    let ldap = entry(&url);
    let print = fingerprint(&ldap);
    let directories = Directories::new();
    let fresh = || async { directories.connect(&ldap).await.unwrap() };
    // Back after success (or an answer that is not success), and lent again.
    let conn = Pooled {
        ldap: fresh().await,
        fingerprint: print,
    };
    directories.give_back("corp", conn, &ok()).await;
    let conn = directories.take("corp", &print).await.expect("pooled");
    let answered: Result<(), _> = Err(("search", Failure::Answer("rc=32".to_owned())));
    directories.give_back("corp", conn, &answered).await;
    assert!(directories.take("other", &print).await.is_none(), "pools are per entry");
    let conn = directories.take("corp", &print).await.expect("pooled");
    // Not back after a transport failure.
    let broken: Result<(), _> = Err(("search", Failure::Transport(Box::new(LdapError::EndOfStream))));
    directories.give_back("corp", conn, &broken).await;
    assert!(directories.take("corp", &print).await.is_none());
    // At most four idle.
    for _ in 0..6 {
        let conn = Pooled {
            ldap: fresh().await,
            fingerprint: print,
        };
        directories.give_back("corp", conn, &ok()).await;
    }
    assert_eq!(directories.idle.lock().await["corp"].len(), MAX_IDLE);
    // A changed configuration reuses none of them, and drops them.
    let mut changed = entry(&url);
    changed.start_tls = true;
    assert!(directories.take("corp", &fingerprint(&changed)).await.is_none());
    assert!(directories.idle.lock().await["corp"].is_empty());
    // Giving one back under new settings drops the old ones too.
    for _ in 0..2 {
        let conn = Pooled {
            ldap: fresh().await,
            fingerprint: print,
        };
        directories.give_back("corp", conn, &ok()).await;
    }
    let conn = Pooled {
        ldap: fresh().await,
        fingerprint: fingerprint(&changed),
    };
    directories.give_back("corp", conn, &ok()).await;
    assert_eq!(directories.idle.lock().await["corp"].len(), 1);
    drop(listener);
}

#[tokio::test]
async fn a_connection_the_server_closed_is_not_lent() {
    let (listener, url) = silent_server().await;
    let ldap = entry(&url);
    let print = fingerprint(&ldap);
    let directories = Directories::new();
    let conn = Pooled {
        ldap: directories.connect(&ldap).await.unwrap(),
        fingerprint: print,
    };
    directories.give_back("corp", conn, &ok()).await;
    let (server_side, _) = listener.accept().await.unwrap();
    drop(server_side);
    // The driver notices the close and ends, which closes the handle's channel.
    let mut waited = Duration::ZERO;
    loop {
        let closed = directories
            .idle
            .lock()
            .await
            .get_mut("corp")
            .unwrap()
            .iter_mut()
            .all(|c| c.ldap.is_closed());
        if closed {
            break;
        }
        assert!(waited < Duration::from_secs(2), "the driver never noticed the close");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    assert!(directories.take("corp", &print).await.is_none());
}

/// The real OpenLDAP of scripts/slapd.sh (local/ldap/*.ldif). Run it with
/// `bash -c 'source scripts/slapd.sh && start_slapd $(free_port) $(free_port) .local/slapd/unit &&
/// cargo test -p keygate --lib federation::ldap -- --ignored; stop_slapd'`.
#[tokio::test]
#[ignore = "needs the slapd of scripts/slapd.sh (KEYGATE_TEST_LDAP_*)"]
async fn against_slapd() {
    use tokio::io::AsyncReadExt;

    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is unset: start scripts/slapd.sh"));
    let ca = std::fs::read_to_string(var("KEYGATE_TEST_LDAP_CA")).unwrap();
    let wrong_ca = std::fs::read_to_string(var("KEYGATE_TEST_LDAP_WRONG_CA")).unwrap();
    let directory = |url: String, start_tls: bool, ca_pem: Option<&str>| LdapEntry {
        url,
        start_tls,
        ca_pem: ca_pem.map(str::to_owned),
        bind_dn: var("KEYGATE_TEST_LDAP_BIND_DN"),
        bind_password: SecretString::from(var("KEYGATE_TEST_LDAP_BIND_PASSWORD")),
        user_base_dn: var("KEYGATE_TEST_LDAP_BASE_DN"),
        allow_insecure: false,
        ..entry("ldap://unused")
    };
    let starttls = directory(var("KEYGATE_TEST_LDAP_URL"), true, Some(&ca));
    let alice_password = SecretString::from("alice-directory-password");
    let idle = |directories: &Directories, id: &str| {
        let idle = directories.idle.try_lock().unwrap();
        idle.get(id).map_or(0, Vec::len)
    };

    let directories = Directories::new();
    let Verdict::Authenticated(alice) = directories
        .authenticate("corp", &starttls, "alice@corp.test", &alice_password)
        .await
        .unwrap()
    else {
        panic!("alice was rejected")
    };
    assert_eq!(alice.dn, "uid=alice,ou=people,dc=corp,dc=test");
    assert_eq!(alice.email.as_deref(), Some("alice@corp.test"));
    assert_eq!(alice.name.as_deref(), Some("Alice Example"));
    let uuid = String::from_utf8(decode_hex(&alice.id).unwrap()).unwrap();
    assert!(uuid.len() == 36 && uuid.matches('-').count() == 4, "{uuid}");
    assert_eq!(idle(&directories, "corp"), 1);

    // The pooled connection is bound as alice, who may read only her own entry: finding bob proves the rebind.
    let Verdict::Authenticated(bob) = directories
        .authenticate(
            "corp",
            &starttls,
            "bob@ad.corp.test",
            &SecretString::from("bob-directory-password"),
        )
        .await
        .unwrap()
    else {
        panic!("bob was rejected")
    };
    assert_eq!(bob.dn, "cn=Bob AD,ou=people,dc=corp,dc=test");
    assert_eq!(idle(&directories, "corp"), 1, "the connection was reused");

    for (email, password) in [
        ("alice@corp.test", "wrong"),
        ("alice@corp.test", "alice-directory-password "),
        ("alice@corp.test", ""),
        ("nobody@corp.test", "alice-directory-password"),
        ("*", "alice-directory-password"),
        ("*)(uid=*))(|(uid=*@corp.test", "alice-directory-password"),
        ("alice@corp.test)(uid=alice", "alice-directory-password"),
    ] {
        let verdict = directories
            .authenticate("corp", &starttls, email, &SecretString::from(password))
            .await
            .unwrap();
        assert_eq!(verdict, Verdict::Rejected, "{email} / {password}");
    }
    assert_eq!(idle(&directories, "corp"), 1);

    // The refresh's re-check.
    assert_eq!(
        directories.find("corp", &starttls, &alice.id).await.unwrap(),
        Some(alice.clone())
    );
    let nobody = encode_hex(b"00000000-0000-4000-8000-000000000000");
    assert_eq!(directories.find("corp", &starttls, &nobody).await.unwrap(), None);

    // Two entries match: refused.
    let mut ambiguous = directory(var("KEYGATE_TEST_LDAP_URL"), true, Some(&ca));
    ambiguous.user_filter = "(|(mail={email})(objectClass=inetOrgPerson))".to_owned();
    let verdict = directories
        .authenticate("corp", &ambiguous, "alice@corp.test", &alice_password)
        .await
        .unwrap();
    assert_eq!(verdict, Verdict::Rejected);

    // Active Directory's defaults: the binary objectGUID, raw bytes in hex.
    let mut ad = directory(var("KEYGATE_TEST_LDAP_URL"), true, Some(&ca));
    ad.user_filter = "(&(objectClass=user)(userPrincipalName={email}))".to_owned();
    ad.attributes.id = "objectGUID".to_owned();
    let Verdict::Authenticated(bob) = directories
        .authenticate(
            "ad",
            &ad,
            "bob@ad.corp.test",
            &SecretString::from("bob-directory-password"),
        )
        .await
        .unwrap()
    else {
        panic!("bob was rejected")
    };
    assert_eq!(bob.id, "e004253f894fd3419a0c0305e82c3301");
    assert_eq!(bob.name.as_deref(), Some("Bob AD"));
    assert_eq!(
        directories.find("ad", &ad, &bob.id).await.unwrap().map(|u| u.dn),
        Some(bob.dn.clone())
    );
    let verdict = directories
        .authenticate("ad", &ad, "alice@corp.test", &alice_password)
        .await
        .unwrap();
    assert_eq!(verdict, Verdict::Rejected, "alice is no AD user");

    // ldaps with the CA.
    let ldaps = directory(var("KEYGATE_TEST_LDAPS_URL"), false, Some(&ca));
    let verdict = directories
        .authenticate("ldaps", &ldaps, "alice@corp.test", &alice_password)
        .await
        .unwrap();
    assert!(matches!(verdict, Verdict::Authenticated(_)));

    // The wrong CA, or the system roots: refused, both ways.
    for entry in [
        directory(var("KEYGATE_TEST_LDAPS_URL"), false, Some(&wrong_ca)),
        directory(var("KEYGATE_TEST_LDAP_URL"), true, Some(&wrong_ca)),
        directory(var("KEYGATE_TEST_LDAPS_URL"), false, None),
        directory(var("KEYGATE_TEST_LDAP_URL"), true, None),
    ] {
        let err = Directories::new()
            .authenticate("tls", &entry, "alice@corp.test", &alice_password)
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "idp_unavailable"), "{entry:?}");
    }

    // A wrong service password is the operator's problem: 503, never a rejection.
    let mut misconfigured = directory(var("KEYGATE_TEST_LDAP_URL"), true, Some(&ca));
    misconfigured.bind_password = SecretString::from("not-the-service-password");
    let err = Directories::new()
        .authenticate("corp", &misconfigured, "alice@corp.test", &alice_password)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "idp_unavailable");
    let err = Directories::new()
        .find("corp", &misconfigured, &alice.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "idp_unavailable");

    // A pooled connection the server dropped while idle: the bind fails at once and a fresh connection answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("ldap://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 256];
        let _ = socket.read(&mut request).await;
    });
    let stale = directories.connect(&entry(&dead_url)).await.unwrap();
    let pooled = Pooled {
        ldap: stale,
        fingerprint: fingerprint(&starttls),
    };
    directories.give_back("stale", pooled, &ok()).await;
    assert_eq!(idle(&directories, "stale"), 1);
    let started = std::time::Instant::now();
    let verdict = directories
        .authenticate("stale", &starttls, "alice@corp.test", &alice_password)
        .await
        .unwrap();
    assert_eq!(verdict, Verdict::Authenticated(alice));
    assert!(started.elapsed() < OPERATION_TIMEOUT, "{:?}", started.elapsed());
    server.await.unwrap();
}
