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
use crate::state::LazyClient;
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
    /// An LDAP or Active Directory directory.
    Ldap(LdapEntry),
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

/// An LDAP or Active Directory directory, checked by search-then-bind.
#[derive(Debug)]
pub struct LdapEntry {
    /// `ldap://host[:port]` or `ldaps://host[:port]`: no path, query or credentials.
    pub url: String,
    /// Whether an `ldap://` connection upgrades with StartTLS before anything else.
    pub start_tls: bool,
    /// A PEM CA bundle trusted instead of the system roots (at least one certificate).
    pub ca_pem: Option<String>,
    /// The service account's DN, which searches for users.
    pub bind_dn: String,
    /// The service account's password.
    pub bind_password: SecretString,
    /// Where users are searched for (subtree).
    pub user_base_dn: String,
    /// The search filter, with `{email}` where the escaped address goes.
    pub user_filter: String,
    /// Which attributes hold the stable id, the address and the display name.
    pub attributes: LdapAttributes,
    /// Allows plain `ldap://` without StartTLS (local tests only).
    pub allow_insecure: bool,
    /// Failed sign-ins per account within `failure_window_seconds` before keygate stops asking the directory
    /// (1 to 10).
    pub max_failures: i64,
    /// How long failures are remembered after the last one (300 to 86,400; 900 by default). It must be at least
    /// the directory's own reset period ("reset account lockout counter after"), or failures spread over time add
    /// up there.
    pub failure_window_seconds: i64,
}

/// The attribute names an LDAP entry reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapAttributes {
    /// The stable id (`entryUUID`, `objectGUID`): what accounts are linked by.
    pub id: String,
    /// The mail address.
    pub email: String,
    /// The display name.
    pub name: String,
}

/// The placeholder of `user_filter` that the escaped address replaces.
pub const EMAIL_PLACEHOLDER: &str = "{email}";

/// The default `max_failures`.
const DEFAULT_MAX_FAILURES: i64 = 3;
/// The default `failure_window_seconds`.
const DEFAULT_FAILURE_WINDOW_SECONDS: i64 = 900;

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
/// Fields an `ldap` entry may add.
const LDAP_FIELDS: [&str; 13] = [
    "url",
    "start_tls",
    "ca_pem",
    "bind_dn",
    "bind_password",
    "user_base_dn",
    "user_filter",
    "attributes",
    "directory",
    "allow_insecure",
    "max_failures",
    "failure_window_seconds",
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

    /// The directory settings, when this is an LDAP entry.
    pub fn ldap(&self) -> Option<&LdapEntry> {
        match &self.kind {
            IdpKind::Ldap(ldap) => Some(ldap),
            IdpKind::Entra(_) => None,
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
            fields.only(&LDAP_FIELDS)?;
            IdpKind::Ldap(fields.ldap()?)
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

    /// An optional boolean (absent → `default`).
    fn flag(&self, field: &str, default: bool) -> Result<bool, String> {
        match self.obj.get(field) {
            None => Ok(default),
            Some(Value::Bool(value)) => Ok(*value),
            Some(_) => Err(format!("{}: {field} must be true or false", self.here)),
        }
    }

    /// An optional non-empty string (absent → `None`).
    fn optional_string(&self, field: &str) -> Result<Option<String>, String> {
        match self.obj.get(field) {
            None => Ok(None),
            Some(_) => self.string(field).map(Some),
        }
    }

    fn ldap(&self) -> Result<LdapEntry, String> {
        let here = self.here;
        let url = self.string("url")?;
        let start_tls = self.flag("start_tls", false)?;
        let allow_insecure = self.flag("allow_insecure", false)?;
        let target = ldap_target(&url).ok_or_else(|| {
            format!("{here}: url must be ldap://host[:port] or ldaps://host[:port], without credentials, path or query")
        })?;
        if target.tls && start_tls {
            return Err(format!(
                "{here}: start_tls cannot be used with an ldaps:// url (that connection is TLS already)"
            ));
        }
        if !target.tls && !start_tls && !allow_insecure {
            return Err(format!(
                "{here}: an ldap:// url needs start_tls: true (or allow_insecure: true, for local tests only)"
            ));
        }
        if target.ipv6 && (target.tls || start_tls) {
            return Err(format!(
                "{here}: url: TLS cannot verify a certificate for an IPv6 address; use a host name"
            ));
        }
        let ca_pem = self.optional_string("ca_pem")?;
        if let Some(pem) = &ca_pem {
            super::ldap::ca_roots(pem).map_err(|reason| format!("{here}: ca_pem {reason}"))?;
        }
        let bind_dn = self.string("bind_dn")?;
        let bind_password = SecretString::from(self.string("bind_password")?);
        let user_base_dn = self.string("user_base_dn")?;
        let kind = match self.obj.get("directory") {
            None => "openldap",
            Some(value) => value.as_str().unwrap_or_default(),
        };
        let Some((default_filter, [id, email, name])) = directory_defaults(kind) else {
            return Err(format!(
                "{here}: directory must be \"openldap\" or \"active_directory\""
            ));
        };
        let user_filter = self
            .optional_string("user_filter")?
            .unwrap_or_else(|| default_filter.to_owned());
        // A bare `attr=value` is a filter too; parenthesised, it can be combined with others (the re-check does).
        let user_filter = if user_filter.starts_with('(') {
            user_filter
        } else {
            format!("({user_filter})")
        };
        if !user_filter.contains(EMAIL_PLACEHOLDER) {
            return Err(format!("{here}: user_filter must contain {EMAIL_PLACEHOLDER}"));
        }
        if !parentheses_balance(&user_filter)
            || ldap3::parse_filter(super::ldap::user_filter(&user_filter, "user@example.com")).is_err()
        {
            return Err(format!(
                "{here}: user_filter must be an LDAP filter (RFC 4515) with balanced parentheses"
            ));
        }
        // The re-check of a directory account puts `*` where the address goes (any address, this entry's id): that
        // must stay a presence test, so the address must be the whole value of an equality match.
        if !placeholder_is_whole_value(&user_filter)
            || ldap3::parse_filter(user_filter.replace(EMAIL_PLACEHOLDER, "*")).is_err()
        {
            return Err(format!(
                "{here}: user_filter must use {EMAIL_PLACEHOLDER} only as the whole value of an equality match, \
                 as in (mail={EMAIL_PLACEHOLDER})"
            ));
        }
        let attributes = self.attributes(LdapAttributes {
            id: id.to_owned(),
            email: email.to_owned(),
            name: name.to_owned(),
        })?;
        let max_failures = match self.obj.get("max_failures") {
            None => DEFAULT_MAX_FAILURES,
            Some(value) => value
                .as_i64()
                .filter(|n| (1..=10).contains(n))
                .ok_or_else(|| format!("{here}: max_failures must be an integer from 1 to 10"))?,
        };
        let failure_window_seconds = match self.obj.get("failure_window_seconds") {
            None => DEFAULT_FAILURE_WINDOW_SECONDS,
            Some(value) => value
                .as_i64()
                .filter(|n| (300..=86_400).contains(n))
                .ok_or_else(|| format!("{here}: failure_window_seconds must be an integer from 300 to 86400"))?,
        };
        Ok(LdapEntry {
            url,
            start_tls,
            ca_pem,
            bind_dn,
            bind_password,
            user_base_dn,
            user_filter,
            attributes,
            allow_insecure,
            max_failures,
            failure_window_seconds,
        })
    }

    /// `attributes`: any of `id`, `email`, `name`; the others keep the directory's defaults.
    fn attributes(&self, mut attributes: LdapAttributes) -> Result<LdapAttributes, String> {
        let here = self.here;
        let Some(value) = self.obj.get("attributes") else {
            return Ok(attributes);
        };
        let Value::Object(map) = value else {
            return Err(format!(
                "{here}: attributes must be an object with any of id, email, name"
            ));
        };
        for (key, value) in map {
            let slot = match key.as_str() {
                "id" => &mut attributes.id,
                "email" => &mut attributes.email,
                "name" => &mut attributes.name,
                _ => return Err(format!("{here}: unknown field {key:?} in attributes")),
            };
            match value.as_str() {
                Some(name) if is_attribute_name(name) => *slot = name.to_owned(),
                _ => {
                    return Err(format!(
                        "{here}: attributes.{key} must be an LDAP attribute name (a letter, then letters, digits or '-'; at most 64)"
                    ))
                }
            }
        }
        Ok(attributes)
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

/// Whether every `{email}` in `filter` is the whole value of an equality match: `attr={email})`, with `attr` an
/// attribute description (not `~=`, `<=`, `>=` or an extensible match's `:=`).
fn placeholder_is_whole_value(filter: &str) -> bool {
    filter.match_indices(EMAIL_PLACEHOLDER).all(|(at, _)| {
        let before = &filter.as_bytes()[..at];
        let after = &filter[at + EMAIL_PLACEHOLDER.len()..];
        matches!(before, [.., b, b'='] if b.is_ascii_alphanumeric() || matches!(b, b'-' | b';' | b'.'))
            && after.starts_with(')')
    })
}

/// The `user_filter` and attributes a `directory` kind implies.
fn directory_defaults(kind: &str) -> Option<(&'static str, [&'static str; 3])> {
    match kind {
        "openldap" => Some(("(mail={email})", ["entryUUID", "mail", "displayName"])),
        "active_directory" => Some((
            "(&(objectClass=user)(userPrincipalName={email}))",
            ["objectGUID", "mail", "displayName"],
        )),
        _ => None,
    }
}

/// What an LDAP url says about the connection, once it is known to be well-formed.
struct LdapTarget {
    /// `ldaps://`.
    tls: bool,
    /// The host is an IPv6 literal (which ldap3 cannot verify a certificate for).
    ipv6: bool,
}

/// `ldap://host[:port]` or `ldaps://host[:port]`, with an optional trailing `/` and nothing else: no
/// credentials, path, query or fragment. The host is a DNS name, an IPv4 address or a bracketed IPv6 address.
fn ldap_target(url: &str) -> Option<LdapTarget> {
    let (tls, rest) = match (url.strip_prefix("ldaps://"), url.strip_prefix("ldap://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return None,
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let (host_ok, ipv6, port) = match authority.strip_prefix('[') {
        Some(inner) => {
            let (address, after) = inner.split_once(']')?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':')?),
            };
            (address.parse::<std::net::Ipv6Addr>().is_ok(), true, port)
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            (is_host_name(host), false, port)
        }
    };
    let port_ok = port.is_none_or(|port| {
        (1..=5).contains(&port.len())
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|port| port > 0)
    });
    (host_ok && port_ok).then_some(LdapTarget { tls, ipv6 })
}

/// A DNS name (either case) or an IPv4 address: labels of 1 to 63 of `A-Za-z0-9-`, not starting or ending
/// with `-`.
fn is_host_name(host: &str) -> bool {
    (1..=253).contains(&host.len())
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// An LDAP attribute description as keygate accepts it: a letter, then letters, digits or `-`; at most 64.
fn is_attribute_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether a filter's parentheses balance (none closes before it opens).
fn parentheses_balance(filter: &str) -> bool {
    let mut depth: usize = 0;
    for b in filter.bytes() {
        match b {
            b'(' => depth += 1,
            b')' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
    }
    depth == 0
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
    client: Arc<LazyClient<SecretsClient>>,
    secret_id: String,
    ttl: i64,
    cache: Mutex<Option<Cached>>,
}

impl IdpStore {
    /// Makes no network call.
    pub fn new(client: Arc<LazyClient<SecretsClient>>, secret_id: String, ttl: i64) -> Self {
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
        let loaded = crate::keys::secret_string(self.client.get(), &self.secret_id, "AWSCURRENT", None)
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
    let document = IdpDocument::parse(raw).map_err(|reason| {
        // The reason names an entry and a field, never a secret's value.
        tracing::warn!(%reason, "the identity-provider configuration is invalid");
        Error::dependency(
            "identity-provider configuration",
            std::io::Error::other(format!("invalid document: {reason}")),
        )
    })?;
    // Loaded at a cold start and at each reload: an operator sees this in every fresh instance's log.
    for entry in &document.idps {
        if entry.ldap().is_some_and(|ldap| ldap.allow_insecure) {
            tracing::warn!(idp = %entry.id, "allow_insecure is set: passwords go to this directory without TLS (local tests only)");
        }
    }
    Ok(document)
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
    fn ldap_needs_its_url_dns_and_passwords() {
        for field in ["url", "bind_dn", "bind_password", "user_base_dn"] {
            refused(ldap("x", "a.com"), |o| drop(o.remove(field)), field);
            refused(ldap("x", "a.com"), |o| drop(o.insert(field.into(), json!(""))), field);
            refused(ldap("x", "a.com"), |o| drop(o.insert(field.into(), json!(7))), field);
        }
        let parsed = IdpDocument::parse(&doc(vec![ldap("x", "a.com")])).unwrap();
        let entry = parsed.idps[0].ldap().unwrap();
        assert_eq!(entry.bind_password.expose_secret(), "hunter2-bind");
        assert_eq!(entry.bind_dn, "cn=keygate,dc=example,dc=org");
        assert_eq!(entry.user_base_dn, "ou=people,dc=example,dc=org");
        assert!(parsed.idps[0].entra().is_none());
        assert!(IdpDocument::parse(&doc(vec![entra("y", "b.com")])).unwrap().idps[0]
            .ldap()
            .is_none());
    }

    #[test]
    fn ldap_defaults_are_openldaps() {
        let parsed = IdpDocument::parse(&doc(vec![ldap("x", "a.com")])).unwrap();
        let entry = parsed.idps[0].ldap().unwrap();
        assert_eq!(entry.url, "ldaps://ldap.example.org");
        assert!(!entry.start_tls && !entry.allow_insecure);
        assert!(entry.ca_pem.is_none());
        assert_eq!(entry.user_filter, "(mail={email})");
        assert_eq!(
            entry.attributes,
            LdapAttributes {
                id: "entryUUID".into(),
                email: "mail".into(),
                name: "displayName".into()
            }
        );
        assert_eq!(entry.max_failures, 3);
        let mut explicit = ldap("x", "a.com");
        explicit["directory"] = json!("openldap");
        let parsed = IdpDocument::parse(&doc(vec![explicit])).unwrap();
        assert_eq!(parsed.idps[0].ldap().unwrap().user_filter, "(mail={email})");
    }

    #[test]
    fn active_directory_has_its_own_defaults_and_any_may_be_overridden() {
        let mut entry = ldap("x", "a.com");
        entry["directory"] = json!("active_directory");
        let parsed = IdpDocument::parse(&doc(vec![entry.clone()])).unwrap();
        let ad = parsed.idps[0].ldap().unwrap();
        assert_eq!(ad.user_filter, "(&(objectClass=user)(userPrincipalName={email}))");
        assert_eq!(
            ad.attributes,
            LdapAttributes {
                id: "objectGUID".into(),
                email: "mail".into(),
                name: "displayName".into()
            }
        );
        entry["user_filter"] = json!("(&(objectClass=person)(sAMAccountName={email}))");
        entry["attributes"] = json!({ "email": "userPrincipalName" });
        entry["max_failures"] = json!(10);
        let parsed = IdpDocument::parse(&doc(vec![entry])).unwrap();
        let ad = parsed.idps[0].ldap().unwrap();
        assert_eq!(ad.user_filter, "(&(objectClass=person)(sAMAccountName={email}))");
        assert_eq!(
            ad.attributes,
            LdapAttributes {
                id: "objectGUID".into(),
                email: "userPrincipalName".into(),
                name: "displayName".into()
            }
        );
        assert_eq!(ad.max_failures, 10);
        for bad in [json!("AD"), json!("ActiveDirectory"), json!(""), json!(1), Value::Null] {
            refused(
                ldap("x", "a.com"),
                |o| drop(o.insert("directory".into(), bad)),
                "directory must be",
            );
        }
    }

    #[test]
    fn ldap_urls_are_ldap_or_ldaps_to_a_host() {
        for good in [
            "ldaps://ldap.example.org",
            "ldaps://ldap.example.org/",
            "ldaps://ldap.example.org:1636",
            "ldaps://127.0.0.1:636",
            "ldaps://LDAP.Example.org",
            "ldaps://dc01",
        ] {
            let mut entry = ldap("x", "a.com");
            entry["url"] = json!(good);
            let parsed = IdpDocument::parse(&doc(vec![entry]));
            assert!(parsed.is_ok(), "{good}: {parsed:?}");
        }
        for bad in [
            "https://ldap.example.org",
            "LDAPS://ldap.example.org",
            "ldapi:///var/run/slapd.sock",
            "ldaps://",
            "ldaps:///",
            "ldaps://:636",
            "ldaps://ldap.example.org:",
            "ldaps://ldap.example.org:0",
            "ldaps://ldap.example.org:65536",
            "ldaps://ldap.example.org:+636",
            "ldaps://ldap.example.org:636:1",
            "ldaps://user:pw@ldap.example.org",
            "ldaps://ldap.example.org/dc=example,dc=org",
            "ldaps://ldap.example.org/??sub",
            "ldaps://ldap.example.org?x",
            "ldaps://ldap.example.org#x",
            "ldaps://ldap example.org",
            "ldaps://ldap.example.org\n",
            "ldaps://-ldap.example.org",
            "ldaps://ldap..example.org",
            "ldaps://ldap_1.example.org",
            "ldaps://[::1",
            "ldaps://[not-ip]:636",
            "ldaps://%6cdap.example.org",
            " ldaps://ldap.example.org",
        ] {
            refused(ldap("x", "a.com"), |o| drop(o.insert("url".into(), json!(bad))), "url");
        }
    }

    #[test]
    fn ldap_needs_tls_unless_insecure_is_allowed() {
        // ldaps with StartTLS on top makes no sense.
        refused(
            ldap("x", "a.com"),
            |o| drop(o.insert("start_tls".into(), json!(true))),
            "start_tls cannot be used with an ldaps://",
        );
        let plain = |o: &mut Map<String, Value>| drop(o.insert("url".into(), json!("ldap://ldap.example.org:389")));
        refused(ldap("x", "a.com"), plain, "needs start_tls");
        refused(
            ldap("x", "a.com"),
            |o| {
                plain(o);
                o.insert("start_tls".into(), json!(false));
                o.insert("allow_insecure".into(), json!(false));
            },
            "needs start_tls",
        );
        let mut starttls = ldap("x", "a.com");
        starttls["url"] = json!("ldap://ldap.example.org");
        starttls["start_tls"] = json!(true);
        let parsed = IdpDocument::parse(&doc(vec![starttls])).unwrap();
        let entry = parsed.idps[0].ldap().unwrap();
        assert!(entry.start_tls && !entry.allow_insecure);
        let mut insecure = ldap("x", "a.com");
        insecure["url"] = json!("ldap://127.0.0.1:3890");
        insecure["allow_insecure"] = json!(true);
        let parsed = IdpDocument::parse(&doc(vec![insecure])).unwrap();
        let entry = parsed.idps[0].ldap().unwrap();
        assert!(!entry.start_tls && entry.allow_insecure);
        // An IPv6 literal works in plain text only: ldap3 cannot name it for certificate verification.
        let mut v6 = ldap("x", "a.com");
        v6["url"] = json!("ldap://[::1]:3890");
        v6["allow_insecure"] = json!(true);
        assert!(IdpDocument::parse(&doc(vec![v6.clone()])).is_ok());
        v6["start_tls"] = json!(true);
        let err = IdpDocument::parse(&doc(vec![v6])).unwrap_err();
        assert!(err.contains("IPv6"), "{err}");
        refused(
            ldap("x", "a.com"),
            |o| drop(o.insert("url".into(), json!("ldaps://[::1]:636"))),
            "IPv6",
        );
        for field in ["start_tls", "allow_insecure"] {
            for bad in [json!("true"), json!(1), Value::Null] {
                refused(
                    ldap("x", "a.com"),
                    |o| drop(o.insert(field.into(), bad)),
                    &format!("{field} must be true or false"),
                );
            }
        }
    }

    #[test]
    fn ca_pem_must_hold_a_certificate() {
        let mut entry = ldap("x", "a.com");
        entry["ca_pem"] = json!(TEST_CA_PEM);
        let parsed = IdpDocument::parse(&doc(vec![entry])).unwrap();
        assert_eq!(parsed.idps[0].ldap().unwrap().ca_pem.as_deref(), Some(TEST_CA_PEM));
        let key_only = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHqXaV2q4Bn0qgq+Z3dDxj6Dv2c+vC0QkhJG6c4Qbq2E\n-----END PRIVATE KEY-----\n";
        let not_der = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let truncated = &TEST_CA_PEM[..TEST_CA_PEM.len() - 30];
        for bad in [
            json!(""),
            json!("not a certificate"),
            json!(key_only),
            json!(not_der),
            json!(truncated),
            json!(7),
        ] {
            refused(ldap("x", "a.com"), |o| drop(o.insert("ca_pem".into(), bad)), "ca_pem");
        }
    }

    #[test]
    fn the_user_filter_holds_the_placeholder_and_parses() {
        for good in [
            "(uid={email})",
            "mail={email}",
            "(&(objectClass=inetOrgPerson)(|(mail={email})(mailAlternateAddress={email})))",
            "(&(objectCategory=person)(!(userAccountControl:1.2.840.113556.1.4.803:=2))(userPrincipalName={email}))",
        ] {
            let mut entry = ldap("x", "a.com");
            entry["user_filter"] = json!(good);
            let parsed = IdpDocument::parse(&doc(vec![entry]));
            assert!(parsed.is_ok(), "{good}: {parsed:?}");
        }
        for bad in [json!("(mail=*)"), json!("(mail={mail})"), json!("")] {
            refused(
                ldap("x", "a.com"),
                |o| drop(o.insert("user_filter".into(), bad)),
                "user_filter",
            );
        }
        for bad in [
            "(mail={email}",
            "mail={email})",
            "(mail={email}))(",
            ")(mail={email}(",
            "(&(mail={email})",
            "({email}=x)",
            "(mail={email})(uid=x)",
            "(mail=*{email}**)",
        ] {
            refused(
                ldap("x", "a.com"),
                |o| drop(o.insert("user_filter".into(), json!(bad))),
                "user_filter must be an LDAP filter",
            );
        }
        // The re-check puts `*` in its place: anything but a whole equality value would stop being a presence test.
        for bad in [
            "(mail=*{email})",
            "(mail={email}*)",
            "(mail~={email})",
            "(mail>={email})",
            "(mail:caseIgnoreIA5Match:={email})",
            "(proxyAddresses=smtp:{email})",
        ] {
            refused(
                ldap("x", "a.com"),
                |o| drop(o.insert("user_filter".into(), json!(bad))),
                "only as the whole value of an equality match",
            );
        }
        let mut bare = ldap("x", "a.com");
        bare["user_filter"] = json!("mail={email}");
        let parsed = IdpDocument::parse(&doc(vec![bare])).unwrap();
        assert_eq!(
            parsed.idps[0].ldap().unwrap().user_filter,
            "(mail={email})",
            "parenthesised"
        );
    }

    #[test]
    fn attributes_are_attribute_names_and_nothing_else() {
        let mut entry = ldap("x", "a.com");
        entry["attributes"] = json!({ "id": "uid", "name": "cn" });
        let parsed = IdpDocument::parse(&doc(vec![entry])).unwrap();
        assert_eq!(
            parsed.idps[0].ldap().unwrap().attributes,
            LdapAttributes {
                id: "uid".into(),
                email: "mail".into(),
                name: "cn".into()
            }
        );
        let mut empty = ldap("x", "a.com");
        empty["attributes"] = json!({});
        assert_eq!(
            IdpDocument::parse(&doc(vec![empty])).unwrap().idps[0]
                .ldap()
                .unwrap()
                .attributes
                .id,
            "entryUUID"
        );
        let long = "a".repeat(65);
        for key in ["id", "email", "name"] {
            for bad in [
                json!(""),
                json!("1mail"),
                json!("-mail"),
                json!("mail;binary"),
                json!("ma il"),
                json!("*"),
                json!("+"),
                json!("mail)(uid=*"),
                json!("2.5.4.3"),
                json!(long),
                json!(1),
                Value::Null,
            ] {
                refused(
                    ldap("x", "a.com"),
                    |o| drop(o.insert("attributes".into(), json!({ key: bad }))),
                    &format!("attributes.{key} must be an LDAP attribute name"),
                );
            }
        }
        refused(
            ldap("x", "a.com"),
            |o| drop(o.insert("attributes".into(), json!({ "uid": "uid" }))),
            "unknown field \"uid\" in attributes",
        );
        for bad in [json!(["id"]), json!("entryUUID"), Value::Null] {
            refused(
                ldap("x", "a.com"),
                |o| drop(o.insert("attributes".into(), bad)),
                "attributes must be an object",
            );
        }
    }

    #[test]
    fn the_failure_window_is_five_minutes_to_a_day() {
        let parsed = IdpDocument::parse(&doc(vec![ldap("x", "a.com")])).unwrap();
        assert_eq!(parsed.idps[0].ldap().unwrap().failure_window_seconds, 900);
        let mut entry = ldap("x", "a.com");
        entry["failure_window_seconds"] = json!(1800);
        let parsed = IdpDocument::parse(&doc(vec![entry])).unwrap();
        assert_eq!(parsed.idps[0].ldap().unwrap().failure_window_seconds, 1800);
        for bad in [json!(299), json!(86_401), json!("900"), json!(900.5)] {
            refused(
                ldap("x", "a.com"),
                |o| drop(o.insert("failure_window_seconds".into(), bad)),
                "failure_window_seconds must be an integer from 300 to 86400",
            );
        }
    }

    #[test]
    fn max_failures_is_one_to_ten() {
        for (value, expected) in [(json!(1), 1), (json!(10), 10), (json!(5), 5)] {
            let mut entry = ldap("x", "a.com");
            entry["max_failures"] = value;
            let parsed = IdpDocument::parse(&doc(vec![entry])).unwrap();
            assert_eq!(parsed.idps[0].ldap().unwrap().max_failures, expected);
        }
        for bad in [
            json!(0),
            json!(11),
            json!(-1),
            json!(3.5),
            json!(3.0),
            json!("3"),
            Value::Null,
        ] {
            refused(
                ldap("x", "a.com"),
                |o| drop(o.insert("max_failures".into(), bad)),
                "max_failures must be an integer from 1 to 10",
            );
        }
    }

    #[test]
    fn ldap_refuses_unknown_fields_but_takes_a_description() {
        let mut entry = ldap("x", "a.com");
        entry["description"] = json!("the corporate directory");
        assert!(IdpDocument::parse(&doc(vec![entry])).is_ok());
        for unknown in ["client_id", "bind_pw", "tls_verify", "search_base"] {
            refused(
                ldap("x", "a.com"),
                |o| drop(o.insert(unknown.into(), json!("x"))),
                &format!("unknown field {unknown:?}"),
            );
        }
        // And an entra entry does not take ldap's fields.
        refused(
            entra("x", "a.com"),
            |o| drop(o.insert("bind_dn".into(), json!("cn=x"))),
            "unknown field \"bind_dn\"",
        );
    }

    #[test]
    fn an_ldap_entrys_debug_hides_the_bind_password() {
        let parsed = IdpDocument::parse(&doc(vec![ldap("x", "a.com")])).unwrap();
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("hunter2-bind"), "{debug}");
        assert!(debug.contains("cn=keygate,dc=example,dc=org"), "{debug}");
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
        let mut entry = ldap("x", "a.com");
        entry["bind_password"] = json!(["hunter2-bind"]);
        let err = IdpDocument::parse(&doc(vec![entry])).unwrap_err();
        assert!(err.contains("bind_password") && !err.contains("hunter2"), "{err}");
        // A malformed url never echoes what it held (it could carry credentials).
        let mut entry = ldap("x", "a.com");
        entry["url"] = json!("ldaps://admin:hunter2-bind@ldap.example.org");
        let err = IdpDocument::parse(&doc(vec![entry])).unwrap_err();
        assert!(err.contains("url") && !err.contains("hunter2"), "{err}");
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
