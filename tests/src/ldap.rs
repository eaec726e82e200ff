//! The real OpenLDAP directory `make test` starts (`scripts/slapd.sh`), as the tests see it: its addresses and CA
//! from the `KEYGATE_TEST_LDAP_*` variables, an administrator's connection that adds, changes and removes people,
//! and `ldap` configuration entries that point keygate at it.

use std::collections::HashSet;

use ldap3::{LdapConnAsync, Mod};
use serde_json::{json, Value};
use sha2::Digest;

use crate::unique;

/// A variable `scripts/slapd.sh` exports.
fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests through `make test` (slapd)"))
}

/// `ldap://127.0.0.1:<port>`: StartTLS, or plain with `allow_insecure`.
pub fn ldap_url() -> String {
    var("KEYGATE_TEST_LDAP_URL")
}

/// `ldaps://127.0.0.1:<port>`.
pub fn ldaps_url() -> String {
    var("KEYGATE_TEST_LDAPS_URL")
}

/// The PEM of the CA that signed the directory's certificate.
pub fn ca_pem() -> String {
    std::fs::read_to_string(var("KEYGATE_TEST_LDAP_CA")).unwrap()
}

/// The PEM of a CA that did not.
pub fn wrong_ca_pem() -> String {
    std::fs::read_to_string(var("KEYGATE_TEST_LDAP_WRONG_CA")).unwrap()
}

/// `ldap://127.0.0.1:<port>` where nothing listens: connections are refused at once.
pub fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("ldap://{}", listener.local_addr().unwrap())
}

/// A person in the directory.
#[derive(Debug, Clone)]
pub struct Person {
    /// Their entry's DN.
    pub dn: String,
    /// The address they sign in with.
    pub email: String,
    /// Their directory password.
    pub password: String,
}

/// An administrator's connection to the directory, and an organizational unit of its own under the people, so
/// that tests running at once never see each other's people.
pub struct Directory {
    ldap: ldap3::Ldap,
    /// The unit this test's people live in.
    pub base_dn: String,
    /// A mail domain of this test's own.
    pub domain: String,
}

impl Directory {
    /// Binds as the administrator and makes a fresh unit and domain.
    pub async fn new() -> Self {
        let (conn, mut ldap) = LdapConnAsync::new(&ldap_url()).await.unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind(
            &var("KEYGATE_TEST_LDAP_ADMIN_DN"),
            &var("KEYGATE_TEST_LDAP_ADMIN_PASSWORD"),
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        let unit = unique("unit");
        let base_dn = format!("ou={unit},{}", var("KEYGATE_TEST_LDAP_BASE_DN"));
        ldap.add(
            &base_dn,
            vec![
                ("objectClass", HashSet::from(["organizationalUnit"])),
                ("ou", HashSet::from([unit.as_str()])),
            ],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        Self {
            ldap,
            base_dn,
            domain: format!("{}.corp.test", unique("d")),
        }
    }

    /// Adds an OpenLDAP person `uid` with `mail` (an address of the test's domain when `None`) and a password.
    pub async fn add_person(&mut self, uid: &str, mail: Option<&str>) -> Person {
        let email = mail.map_or_else(|| format!("{uid}@{}", self.domain), str::to_owned);
        let password = format!("{}-Directory-9", unique("pw"));
        let dn = format!("uid={uid},{}", self.base_dn);
        let attrs: Vec<(&str, HashSet<&str>)> = vec![
            ("objectClass", HashSet::from(["inetOrgPerson"])),
            ("uid", HashSet::from([uid])),
            ("cn", HashSet::from([uid])),
            ("sn", HashSet::from(["Person"])),
            ("displayName", HashSet::from(["Directory Person"])),
            ("mail", HashSet::from([email.as_str()])),
            ("userPassword", HashSet::from([password.as_str()])),
        ];
        self.ldap.add(&dn, attrs).await.unwrap().success().unwrap();
        Person { dn, email, password }
    }

    /// Adds an Active Directory-style person (`user`, `userPrincipalName`, a binary `objectGUID`) whose `mail` may
    /// differ from the principal name they sign in with.
    pub async fn add_ad_person(&mut self, name: &str, upn: &str, mail: &str) -> Person {
        let password = format!("{}-Directory-9", unique("pw"));
        let dn = format!("cn={name},{}", self.base_dn);
        // Sixteen bytes that are rarely valid UTF-8, as real GUIDs are not.
        let mut guid = sha2::Sha256::digest(unique("guid").as_bytes())[..16].to_vec();
        guid[0] = 0xff;
        let value = |s: &str| s.as_bytes().to_vec();
        let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
            (
                value("objectClass"),
                HashSet::from([value("inetOrgPerson"), value("user")]),
            ),
            (value("cn"), HashSet::from([value(name)])),
            (value("sn"), HashSet::from([value("Person")])),
            (value("displayName"), HashSet::from([value(name)])),
            (value("userPrincipalName"), HashSet::from([value(upn)])),
            (value("mail"), HashSet::from([value(mail)])),
            (value("objectGUID"), HashSet::from([guid])),
            (value("userPassword"), HashSet::from([value(&password)])),
        ];
        self.ldap.add(&dn, attrs).await.unwrap().success().unwrap();
        Person {
            dn,
            email: upn.to_owned(),
            password,
        }
    }

    /// Sets a person's `mail`.
    pub async fn set_mail(&mut self, dn: &str, mail: &str) {
        self.ldap
            .modify(dn, vec![Mod::Replace("mail", HashSet::from([mail]))])
            .await
            .unwrap()
            .success()
            .unwrap();
    }

    /// Removes a person.
    pub async fn delete(&mut self, dn: &str) {
        self.ldap.delete(dn).await.unwrap().success().unwrap();
    }

    /// An OpenLDAP `ldap` entry for this test's domain and unit, over StartTLS verified against the test CA.
    pub fn entry(&self, id: &str, tenant_id: &str) -> Value {
        json!({
            "id": id,
            "type": "ldap",
            "tenant_id": tenant_id,
            "domains": [self.domain],
            "default_role": "backend",
            "url": ldap_url(),
            "start_tls": true,
            "ca_pem": ca_pem(),
            "bind_dn": var("KEYGATE_TEST_LDAP_BIND_DN"),
            "bind_password": var("KEYGATE_TEST_LDAP_BIND_PASSWORD"),
            "user_base_dn": self.base_dn,
        })
    }
}
