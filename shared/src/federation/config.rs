//! The identity-provider configuration: one JSON document in Secrets Manager (`{"idps": [entry, ...]}`), set by
//! whoever deploys keygate, never by tenants through the API. Parsed and validated here; read when first needed and
//! cached like the signing keys.
//!
//! The document is walked as a `serde_json::Value` rather than deserialised into structs: serde's messages quote
//! the offending value ("invalid type: string \"...\""), and a value here may be a client secret or a bind
//! password. Every message this module writes names the entry and the field, never a value of a secret field.

use std::collections::HashSet;
use std::sync::Arc;

use aws_sdk_secretsmanager::Client as SecretsClient;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::clock::UnixTime;
use crate::store::users::is_id;
use crate::tenancy::Role;
use crate::Error;

/// Microsoft's v2.0 issuer, per Entra tenant.
pub const ENTRA_ISSUER: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
/// The signing keys of the `organizations` authority.
pub const ENTRA_JWKS_URI: &str = "https://login.microsoftonline.com/organizations/discovery/v2.0/keys";
/// The authorization endpoint of the `organizations` authority.
pub const ENTRA_AUTHORIZATION_ENDPOINT: &str = "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize";
/// The token endpoint of the `organizations` authority.
pub const ENTRA_TOKEN_ENDPOINT: &str = "https://login.microsoftonline.com/organizations/oauth2/v2.0/token";

/// The placeholder of the issuer template that the token's `tid` replaces.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// After a failed reload the cached document is served this long before the next attempt, so a broken secret or
/// an outage does not cost a Secrets Manager call per request.
const RETRY_SECONDS: i64 = 30;

/// The whole configuration document.
#[derive(Debug, Default)]
pub struct IdpDocument {
    /// The entries, in the document's order.
    pub idps: Vec<IdpEntry>,
}

/// One identity provider.
#[derive(Debug)]
pub struct IdpEntry {
    /// Its id, named by `?idp=` and stored on the accounts it provisions.
    pub id: String,
    /// The keygate tenant its users join.
    pub tenant_id: String,
    /// The mail domains it is authoritative for (lowercase); a domain is in at most one entry.
    pub domains: Vec<String>,
    /// The role an account it creates gets.
    pub default_role: Role,
    /// What kind of provider, with its own settings.
    pub kind: IdpKind,
}

/// The provider kinds.
#[derive(Debug)]
pub enum IdpKind {
    /// Microsoft Entra ID (OpenID Connect).
    Entra(EntraEntry),
    /// An LDAP or Active Directory directory (the LDAP issue types its settings).
    Ldap(serde_json::Value),
}

/// An Entra ID application.
#[derive(Debug)]
pub struct EntraEntry {
    /// The application (client) id: the `aud` of its ID tokens.
    pub client_id: String,
    /// The client secret, for the code exchange.
    pub client_secret: SecretString,
    /// Entra tenant ids (`tid`) whose users may sign in.
    pub allowed_tenants: Vec<String>,
    /// The redirect URI registered for the application.
    pub redirect_uri: String,
    /// The issuer template, with `{tenantid}`.
    pub issuer: String,
    /// Where the signing keys are.
    pub jwks_uri: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
}

/// Fields every entry has.
const COMMON_FIELDS: [&str; 5] = ["id", "type", "tenant_id", "domains", "default_role"];
/// Fields an `entra` entry may add.
const ENTRA_FIELDS: [&str; 9] = [
    "client_id",
    "client_secret",
    "allowed_tenants",
    "redirect_uri",
    "issuer",
    "jwks_uri",
    "authorization_endpoint",
    "token_endpoint",
    // Not a setting: lets an operator annotate an entry.
    "description",
];

impl IdpDocument {
    /// Parses and validates a document; the reason names what is wrong (never a secret).
    pub fn parse(raw: &str) -> Result<Self, String> {
        // serde_json's syntax errors carry a position, never the text around it.
        let value: Value = serde_json::from_str(raw).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(top) = value else {
            return Err(r#"the document must be an object, {"idps": [...]}"#.to_owned());
        };
        if let Some(key) = top.keys().find(|k| k.as_str() != "idps") {
            return Err(format!("unknown top-level field {key:?} (only \"idps\")"));
        }
        let entries = match top.get("idps") {
            Some(Value::Array(entries)) => entries,
            _ => return Err(r#""idps" must be an array of entries"#.to_owned()),
        };
        let mut idps = Vec::with_capacity(entries.len());
        let mut ids = HashSet::new();
        let mut domains: HashSet<&str> = HashSet::new();
        for (index, value) in entries.iter().enumerate() {
            let entry = parse_entry(index, value)?;
            if !ids.insert(entry.id.clone()) {
                return Err(format!("{}: the id is used by an earlier entry", at(index, &entry.id)));
            }
            idps.push(entry);
        }
        for (index, entry) in idps.iter().enumerate() {
            for domain in &entry.domains {
                if !domains.insert(domain) {
                    return Err(format!(
                        "{}: domain {domain:?} appears in more than one entry (or twice)",
                        at(index, &entry.id)
                    ));
                }
            }
        }
        Ok(Self { idps })
    }

    /// The entry with id `id`.
    pub fn entry(&self, id: &str) -> Option<&IdpEntry> {
        self.idps.iter().find(|entry| entry.id == id)
    }

    /// The entry authoritative for the mail domain `domain` (lowercase).
    pub fn for_domain(&self, domain: &str) -> Option<&IdpEntry> {
        self.idps.iter().find(|entry| entry.domains.iter().any(|d| d == domain))
    }
}

impl IdpEntry {
    /// The Entra settings, when this is an Entra entry.
    pub fn entra(&self) -> Option<&EntraEntry> {
        match &self.kind {
            IdpKind::Entra(entra) => Some(entra),
            IdpKind::Ldap(_) => None,
        }
    }
}

/// How messages name an entry: its position, and its id once known (ids are not secret).
fn at(index: usize, id: &str) -> String {
    if id.is_empty() {
        format!("idps[{index}]")
    } else {
        format!("idps[{index}] ({id:?})")
    }
}

fn parse_entry(index: usize, value: &Value) -> Result<IdpEntry, String> {
    let Value::Object(obj) = value else {
        return Err(format!("{}: an entry must be an object", at(index, "")));
    };
    let id = match obj.get("id") {
        Some(Value::String(id)) if is_idp_id(id) => id.clone(),
        _ => {
            return Err(format!(
                "{}: id must be 1 to 64 of a-z, 0-9, '.', '_', '-'",
                at(index, "")
            ))
        }
    };
    let here = at(index, &id);
    let fields = Fields { obj, here: &here };
    let tenant_id = fields.string("tenant_id")?;
    if !is_id(&tenant_id) {
        return Err(format!("{here}: tenant_id must be a keygate tenant id (a UUID)"));
    }
    let domains = fields.domains()?;
    let role = fields.string("default_role")?;
    let default_role =
        Role::parse(&role).map_err(|_| format!("{here}: default_role must be one of manager, backend, frontend"))?;
    if default_role == Role::Root {
        return Err(format!("{here}: default_role cannot be root"));
    }
    let kind = match obj.get("type").and_then(Value::as_str) {
        Some("entra") => {
            fields.only(&ENTRA_FIELDS)?;
            IdpKind::Entra(fields.entra()?)
        }
        Some("ldap") => {
            for field in ["url", "bind_dn", "user_base_dn"] {
                fields.string(field)?;
            }
            IdpKind::Ldap(value.clone())
        }
        _ => return Err(format!("{here}: type must be \"entra\" or \"ldap\"")),
    };
    Ok(IdpEntry {
        id,
        tenant_id: tenant_id.to_ascii_lowercase(),
        domains,
        default_role,
        kind,
    })
}

/// One entry's fields, with messages that name the entry.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    here: &'a str,
}

impl Fields<'_> {
    /// A required non-empty string. The message never quotes the value: this reads secrets too.
    fn string(&self, field: &str) -> Result<String, String> {
        match self.obj.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            _ => Err(format!("{}: {field} must be a non-empty string", self.here)),
        }
    }

    /// An optional URL (absent → `default`), https or http to a loopback host.
    fn url(&self, field: &str, default: &str) -> Result<String, String> {
        let url = match self.obj.get(field) {
            None => return Ok(default.to_owned()),
            Some(_) => self.string(field)?,
        };
        if is_allowed_url(&url) {
            Ok(url)
        } else {
            Err(format!(
                "{}: {field} must be an https URL (or http to 127.0.0.1, localhost or [::1]) without a fragment",
                self.here
            ))
        }
    }

    fn only(&self, extra: &[&str]) -> Result<(), String> {
        match self
            .obj
            .keys()
            .find(|k| !COMMON_FIELDS.contains(&k.as_str()) && !extra.contains(&k.as_str()))
        {
            Some(key) => Err(format!("{}: unknown field {key:?}", self.here)),
            None => Ok(()),
        }
    }

    fn domains(&self) -> Result<Vec<String>, String> {
        let invalid = || {
            format!(
                "{}: domains must be a non-empty array of lowercase domain names",
                self.here
            )
        };
        let Some(Value::Array(values)) = self.obj.get("domains") else {
            return Err(invalid());
        };
        if values.is_empty() {
            return Err(invalid());
        }
        let mut domains = Vec::with_capacity(values.len());
        for value in values {
            match value.as_str() {
                Some(domain) if is_domain(domain) => domains.push(domain.to_owned()),
                Some(domain) => return Err(format!("{}: {domain:?} is not a lowercase domain name", self.here)),
                None => return Err(invalid()),
            }
        }
        Ok(domains)
    }

    fn entra(&self) -> Result<EntraEntry, String> {
        let client_id = self.string("client_id")?;
        let client_secret = SecretString::from(self.string("client_secret")?);
        let invalid_tenants = || {
            format!(
                "{}: allowed_tenants must be a non-empty array of Entra tenant ids (UUIDs)",
                self.here
            )
        };
        let Some(Value::Array(values)) = self.obj.get("allowed_tenants") else {
            return Err(invalid_tenants());
        };
        let allowed_tenants = values
            .iter()
            .map(|v| v.as_str().filter(|t| is_id(t)).map(str::to_ascii_lowercase))
            .collect::<Option<Vec<_>>>()
            .filter(|tenants| !tenants.is_empty())
            .ok_or_else(invalid_tenants)?;
        let redirect_uri = self.string("redirect_uri")?;
        if !is_allowed_url(&redirect_uri) {
            return Err(format!(
                "{}: redirect_uri must be an https URL (or http to 127.0.0.1, localhost or [::1]) without a fragment",
                self.here
            ));
        }
        let issuer = self.url("issuer", ENTRA_ISSUER)?;
        if !issuer.contains(TENANT_PLACEHOLDER) {
            return Err(format!("{}: issuer must contain {TENANT_PLACEHOLDER}", self.here));
        }
        Ok(EntraEntry {
            client_id,
            client_secret,
            allowed_tenants,
            redirect_uri,
            issuer,
            jwks_uri: self.url("jwks_uri", ENTRA_JWKS_URI)?,
            authorization_endpoint: self.url("authorization_endpoint", ENTRA_AUTHORIZATION_ENDPOINT)?,
            token_endpoint: self.url("token_endpoint", ENTRA_TOKEN_ENDPOINT)?,
        })
    }
}

/// 1 to 64 of `a-z0-9._-`.
fn is_idp_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

/// A lowercase DNS name of at least two labels, each 1 to 63 of `a-z0-9-` not starting or ending with `-`.
fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Whether keygate may send a request to (or redirect a browser to) `url`: https with a host, or plain http to a
/// loopback host (a test harness or `make dev`); no credentials in the authority and no fragment. The
/// `{tenantid}` placeholder of an issuer template counts as a path segment.
pub fn is_allowed_url(url: &str) -> bool {
    let url = url.replace(TENANT_PLACEHOLDER, "tenant");
    if url.contains('#') || url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return false;
    }
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        return false;
    };
    let Some(authority) = uri.authority() else {
        return false;
    };
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return false;
    }
    match uri.scheme_str() {
        Some("https") => true,
        Some("http") => is_loopback(authority.host()),
        _ => false,
    }
}

/// 127.0.0.1, localhost or ::1 (with or without brackets).
pub fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1")
}

/// A cached document and when it may next be read again.
struct Cached {
    document: Arc<IdpDocument>,
    loaded_at: UnixTime,
    /// After a failed reload, the cached document is served until then.
    retry_at: UnixTime,
}

/// The configuration document from Secrets Manager, cached for `ttl` seconds.
pub struct IdpStore {
    client: SecretsClient,
    secret_id: String,
    ttl: i64,
    cache: Mutex<Option<Cached>>,
}

impl IdpStore {
    /// Makes no network call.
    pub fn new(client: SecretsClient, secret_id: String, ttl: i64) -> Self {
        Self {
            client,
            secret_id,
            ttl,
            cache: Mutex::new(None),
        }
    }

    /// The current document: cached, or read (one Secrets Manager call). A missing or empty secret is an empty
    /// document; an invalid one is 503 (and logged), never a half-read configuration. A reload that fails (an
    /// outage, or an edit that does not validate) keeps serving the last good document, retrying every 30
    /// seconds: a broken edit must not sign everyone out of SSO, and it changes nothing until it is fixed.
    pub async fn get(&self, now: UnixTime) -> Result<Arc<IdpDocument>, Error> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref() {
            if now < cached.retry_at || now - cached.loaded_at < self.ttl {
                return Ok(Arc::clone(&cached.document));
            }
        }
        let loaded = crate::keys::secret_string(&self.client, &self.secret_id, "AWSCURRENT", None)
            .await
            .and_then(|raw| document_of(raw.as_ref()));
        serve(&mut cache, loaded, now)
    }
}

/// The document a secret string holds: none or blank is an empty document.
fn document_of(raw: Option<&SecretString>) -> Result<IdpDocument, Error> {
    let Some(raw) = raw.map(ExposeSecret::expose_secret).filter(|r| !r.trim().is_empty()) else {
        return Ok(IdpDocument::default());
    };
    IdpDocument::parse(raw).map_err(|reason| {
        // The reason names an entry and a field, never a secret's value.
        tracing::warn!(%reason, "the identity-provider configuration is invalid");
        Error::dependency(
            "identity-provider configuration",
            std::io::Error::other(format!("invalid document: {reason}")),
        )
    })
}

/// Caches a freshly loaded document, or on failure serves the cached one until the next retry.
fn serve(
    cache: &mut Option<Cached>,
    loaded: Result<IdpDocument, Error>,
    now: UnixTime,
) -> Result<Arc<IdpDocument>, Error> {
    match loaded {
        Ok(document) => {
            let document = Arc::new(document);
            *cache = Some(Cached {
                document: Arc::clone(&document),
                loaded_at: now,
                retry_at: now,
            });
            Ok(document)
        }
        Err(err) => match cache {
            Some(stale) => {
                tracing::warn!(error = ?err, "reloading the identity-provider configuration failed; serving the cached one");
                stale.retry_at = now + RETRY_SECONDS;
                Ok(Arc::clone(&stale.document))
            }
            None => Err(err),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TENANT: &str = "0b3c8c8e-5d7a-4f2b-9a51-3c1c0f7a2e11";
    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn entra(id: &str, domain: &str) -> Value {
        json!({
            "id": id,
            "type": "entra",
            "tenant_id": TENANT,
            "domains": [domain],
            "default_role": "backend",
            "client_id": "11111111-2222-3333-4444-555555555555",
            "client_secret": "s3cr3t-value",
            "allowed_tenants": [TID],
            "redirect_uri": "https://app.example.com/sso/callback",
        })
    }

    fn ldap(id: &str, domain: &str) -> Value {
        json!({
            "id": id,
            "type": "ldap",
            "tenant_id": TENANT,
            "domains": [domain],
            "default_role": "frontend",
            "url": "ldaps://ldap.example.org",
            "bind_dn": "cn=keygate,dc=example,dc=org",
            "bind_password": "hunter2-bind",
            "user_base_dn": "ou=people,dc=example,dc=org",
        })
    }

    fn doc(entries: Vec<Value>) -> String {
        json!({ "idps": entries }).to_string()
    }

    /// Parses a document with one entry changed by `edit`, expecting a refusal that mentions `needle`.
    fn refused(mut entry: Value, edit: impl FnOnce(&mut Map<String, Value>), needle: &str) -> String {
        edit(entry.as_object_mut().unwrap());
        let err = IdpDocument::parse(&doc(vec![entry])).unwrap_err();
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
        assert!(!err.contains("s3cr3t-value") && !err.contains("hunter2-bind"), "{err}");
        err
    }

    #[test]
    fn a_valid_document_gets_microsofts_endpoints_by_default() {
        let parsed = IdpDocument::parse(&doc(vec![
            entra("contoso", "contoso.com"),
            ldap("corp", "corp.example.org"),
        ]))
        .unwrap();
        assert_eq!(parsed.idps.len(), 2);
        let contoso = parsed.entry("contoso").unwrap();
        assert_eq!(contoso.default_role, Role::Backend);
        let entra = contoso.entra().unwrap();
        assert_eq!(entra.issuer, "https://login.microsoftonline.com/{tenantid}/v2.0");
        assert_eq!(entra.jwks_uri, ENTRA_JWKS_URI);
        assert_eq!(entra.authorization_endpoint, ENTRA_AUTHORIZATION_ENDPOINT);
        assert_eq!(entra.token_endpoint, ENTRA_TOKEN_ENDPOINT);
        assert_eq!(entra.client_secret.expose_secret(), "s3cr3t-value");
        assert_eq!(entra.allowed_tenants, vec![TID.to_owned()]);
        assert_eq!(parsed.for_domain("corp.example.org").unwrap().id, "corp");
        assert!(matches!(parsed.entry("corp").unwrap().kind, IdpKind::Ldap(_)));
        assert!(parsed.for_domain("example.org").is_none());
        assert!(parsed.entry("nope").is_none());
    }

    #[test]
    fn overrides_may_point_at_a_loopback_issuer() {
        let mut entry = entra("local", "local.test");
        let obj = entry.as_object_mut().unwrap();
        obj.insert("issuer".into(), json!("http://127.0.0.1:4444/{tenantid}/v2.0"));
        obj.insert("jwks_uri".into(), json!("http://127.0.0.1:4444/keys"));
        obj.insert(
            "authorization_endpoint".into(),
            json!("http://localhost:4444/authorize"),
        );
        obj.insert("token_endpoint".into(), json!("http://[::1]:4444/token"));
        obj.insert("redirect_uri".into(), json!("http://127.0.0.1:3000/cb"));
        let parsed = IdpDocument::parse(&doc(vec![entry])).unwrap();
        let entra = parsed.idps[0].entra().unwrap();
        assert_eq!(entra.issuer, "http://127.0.0.1:4444/{tenantid}/v2.0");
        assert_eq!(entra.token_endpoint, "http://[::1]:4444/token");
    }

    #[test]
    fn the_document_shape_is_checked() {
        for raw in [
            "",
            "not json",
            "[]",
            r#"{"idps": {}}"#,
            r#"{"idps": [], "extra": 1}"#,
            r#"{"idps": [1]}"#,
        ] {
            assert!(IdpDocument::parse(raw).is_err(), "{raw}");
        }
        assert!(IdpDocument::parse(r#"{"idps": []}"#).unwrap().idps.is_empty());
    }

    #[test]
    fn ids_are_short_lowercase_and_unique() {
        for bad in [
            json!(""),
            json!("Contoso"),
            json!("a b"),
            json!("x".repeat(65)),
            json!(7),
            Value::Null,
        ] {
            refused(entra("x", "a.com"), |o| drop(o.insert("id".into(), bad)), "id must be");
        }
        let ok = IdpDocument::parse(&doc(vec![entra(&"a".repeat(64), "a.com"), entra("a.b_c-9", "b.com")]));
        assert!(ok.is_ok(), "{ok:?}");
        let err = IdpDocument::parse(&doc(vec![entra("same", "a.com"), entra("same", "b.com")])).unwrap_err();
        assert!(
            err.contains("idps[1] (\"same\")") && err.contains("earlier entry"),
            "{err}"
        );
    }

    #[test]
    fn the_tenant_id_is_a_uuid() {
        for bad in [json!("tenant"), json!(""), json!(1)] {
            refused(
                entra("x", "a.com"),
                |o| drop(o.insert("tenant_id".into(), bad)),
                "tenant_id",
            );
        }
        refused(entra("x", "a.com"), |o| drop(o.remove("tenant_id")), "tenant_id");
    }

    #[test]
    fn domains_are_lowercase_names_in_one_entry_only() {
        for bad in [
            json!([]),
            json!("a.com"),
            json!(["A.com"]),
            json!(["com"]),
            json!(["a..com"]),
            json!(["-a.com"]),
            json!(["a.com."]),
            json!(["a_b.com"]),
            json!([1]),
            json!(["user@a.com"]),
        ] {
            refused(entra("x", "a.com"), |o| drop(o.insert("domains".into(), bad)), "domain");
        }
        let err = IdpDocument::parse(&doc(vec![entra("one", "a.com"), ldap("two", "a.com")])).unwrap_err();
        assert!(err.contains("\"two\"") && err.contains("a.com"), "{err}");
        refused(
            entra("x", "a.com"),
            |o| drop(o.insert("domains".into(), json!(["a.com", "a.com"]))),
            "a.com",
        );
    }

    #[test]
    fn the_default_role_is_a_role_but_never_root() {
        refused(
            entra("x", "a.com"),
            |o| drop(o.insert("default_role".into(), json!("root"))),
            "cannot be root",
        );
        for bad in [json!("admin"), json!(""), json!(3)] {
            refused(
                entra("x", "a.com"),
                |o| drop(o.insert("default_role".into(), bad)),
                "default_role",
            );
        }
        for role in ["manager", "backend", "frontend"] {
            let mut entry = entra("x", "a.com");
            entry["default_role"] = json!(role);
            assert!(IdpDocument::parse(&doc(vec![entry])).is_ok(), "{role}");
        }
    }

    #[test]
    fn an_unknown_type_is_refused() {
        for bad in [json!("saml"), json!("Entra"), Value::Null] {
            refused(
                entra("x", "a.com"),
                |o| drop(o.insert("type".into(), bad)),
                "type must be",
            );
        }
    }

    #[test]
    fn entra_needs_its_client_and_tenants() {
        for field in ["client_id", "client_secret", "allowed_tenants", "redirect_uri"] {
            refused(entra("x", "a.com"), |o| drop(o.remove(field)), field);
            refused(entra("x", "a.com"), |o| drop(o.insert(field.into(), json!(""))), field);
        }
        for bad in [json!([]), json!(["common"]), json!([TID, "organizations"]), json!(TID)] {
            refused(
                entra("x", "a.com"),
                |o| drop(o.insert("allowed_tenants".into(), bad)),
                "allowed_tenants",
            );
        }
        refused(
            entra("x", "a.com"),
            |o| drop(o.insert("jwks_url".into(), json!("https://x"))),
            "unknown field \"jwks_url\"",
        );
    }

    #[test]
    fn every_entra_url_is_https_or_loopback_http() {
        for field in [
            "redirect_uri",
            "issuer",
            "jwks_uri",
            "authorization_endpoint",
            "token_endpoint",
        ] {
            for bad in [
                "http://login.example.com/{tenantid}/x",
                "ftp://127.0.0.1/{tenantid}",
                "https:///{tenantid}",
                "https://user:pw@example.com/{tenantid}",
                "https://example.com/{tenantid}#frag",
                "/relative/{tenantid}",
                "http://127.0.0.2/{tenantid}",
                "http://localhost.evil.com/{tenantid}",
            ] {
                refused(entra("x", "a.com"), |o| drop(o.insert(field.into(), json!(bad))), field);
            }
        }
        refused(
            entra("x", "a.com"),
            |o| drop(o.insert("issuer".into(), json!("https://login.microsoftonline.com/common/v2.0"))),
            "{tenantid}",
        );
    }

    #[test]
    fn ldap_needs_its_url_and_dns_and_keeps_the_rest() {
        for field in ["url", "bind_dn", "user_base_dn"] {
            refused(ldap("x", "a.com"), |o| drop(o.remove(field)), field);
        }
        let parsed = IdpDocument::parse(&doc(vec![ldap("x", "a.com")])).unwrap();
        let IdpKind::Ldap(raw) = &parsed.idps[0].kind else {
            panic!("not ldap")
        };
        assert_eq!(raw["bind_password"], "hunter2-bind");
        assert!(parsed.idps[0].entra().is_none());
    }

    #[test]
    fn no_message_quotes_a_secret() {
        // Wrong types in secret fields: serde would have quoted these values.
        let mut entry = entra("x", "a.com");
        entry["client_secret"] = json!(["s3cr3t-value"]);
        let err = IdpDocument::parse(&doc(vec![entry])).unwrap_err();
        assert!(err.contains("client_secret") && !err.contains("s3cr3t"), "{err}");
        let mut entry = ldap("x", "a.com");
        entry["url"] = json!({ "hunter2-bind": 1 });
        let err = IdpDocument::parse(&doc(vec![entry])).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(!format!("{:?}", IdpDocument::parse(&doc(vec![entra("x", "a.com")]))).contains("s3cr3t-value"));
    }

    #[test]
    fn a_missing_or_blank_secret_is_an_empty_document() {
        assert!(document_of(None).unwrap().idps.is_empty());
        assert!(document_of(Some(&SecretString::from("  "))).unwrap().idps.is_empty());
        let err = document_of(Some(&SecretString::from("{\"idps\": 3}"))).unwrap_err();
        assert_eq!(err.status(), 503);
    }

    #[test]
    fn a_failed_reload_serves_the_last_good_document_and_retries_later() {
        let mut cache = None;
        let bad = || Error::dependency("x", std::io::Error::other("down"));
        assert_eq!(
            serve(&mut cache, Err(bad()), 100).unwrap_err().status(),
            503,
            "cold: 503"
        );
        let good = IdpDocument::parse(&doc(vec![entra("x", "a.com")])).unwrap();
        assert_eq!(serve(&mut cache, Ok(good), 100).unwrap().idps.len(), 1);
        let stale = serve(&mut cache, Err(bad()), 500).unwrap();
        assert_eq!(stale.idps.len(), 1);
        let cached = cache.as_ref().unwrap();
        assert_eq!((cached.loaded_at, cached.retry_at), (100, 500 + RETRY_SECONDS));
    }
}
