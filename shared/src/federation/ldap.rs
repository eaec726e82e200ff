//! The LDAP client: search-then-bind against an `ldap` entry's directory, and the refresh's re-check that an entry
//! still exists.
//!
//! Connections are pooled per configuration entry and reused while they are alive: a Lambda may freeze for hours
//! between requests and the server closes idle connections, so a reused connection that fails on its first
//! operation is replaced once by a fresh one. Binding is per-connection state, so a connection is lent to one
//! request at a time, and a reused one always binds as the service account again before it searches (its last
//! bind may have been a user's).
//!
//! TLS is always verified: against the system roots, or against the entry's `ca_pem` only. Plain `ldap://` is
//! possible only with `allow_insecure` (local tests).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, ResultEntry, Scope, SearchOptions, SearchResult};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::config::{LdapEntry, EMAIL_PLACEHOLDER};
use crate::Error;

/// How long a connection (TCP, StartTLS and the TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long each operation (bind, search) may take.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per configuration entry.
const MAX_IDLE: usize = 4;
/// The searches ask for at most this many entries: one is an answer, two is ambiguity.
const SIZE_LIMIT: i32 = 2;
/// The longest stable id `find` searches for, in bytes (a GUID is 16, an entryUUID string 36).
const MAX_ID_BYTES: usize = 256;
/// LDAP result codes (RFC 4511 appendix A).
const RC_SUCCESS: u32 = 0;
/// More entries matched than the size limit.
const RC_SIZE_LIMIT_EXCEEDED: u32 = 4;
/// A wrong password (or, for Active Directory, a locked, disabled or expired account).
const RC_INVALID_CREDENTIALS: u32 = 49;

/// What the directory said about an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The entry's DN.
    pub dn: String,
    /// The raw bytes of the id attribute's first value, as lowercase hex: stable across renames.
    pub id: String,
    /// The first value of the email attribute, when present.
    pub email: Option<String>,
    /// The first value of the name attribute, when present.
    pub name: Option<String>,
}

/// A directory entry found for an address, holding the connection that found it until its password is checked.
pub struct Candidate {
    conn: Pooled,
    user: DirectoryUser,
}

impl Candidate {
    /// What the directory said about the entry.
    pub fn user(&self) -> &DirectoryUser {
        &self.user
    }
}

/// The verdict of a password check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The directory accepted the password for this entry.
    Authenticated(DirectoryUser),
    /// No such entry, more than one, an empty password, or a wrong password: all the same to the caller.
    Rejected,
}

/// Connections to the configured directories, reused across requests.
#[derive(Default)]
pub struct Directories {
    /// Idle connections by configuration entry id.
    idle: Mutex<HashMap<String, Vec<Pooled>>>,
    /// The TLS configuration with the system roots, read once.
    system_tls: OnceLock<Arc<ClientConfig>>,
}

/// An idle connection and the settings it was made from.
struct Pooled {
    ldap: Ldap,
    fingerprint: Fingerprint,
}

/// A digest of the settings a connection depends on (url, start_tls, ca_pem, allow_insecure): a changed
/// configuration never reuses a connection made from the old one.
type Fingerprint = [u8; 32];

/// Why an exchange with the directory failed.
#[derive(Debug)]
enum Failure {
    /// No usable answer: I/O, a timeout, a closed connection, TLS. The connection is not reused.
    Transport(Box<LdapError>),
    /// The server answered, but not as the step needs (a result code, a malformed entry), or the settings cannot
    /// work.
    Answer(String),
}

impl From<LdapError> for Failure {
    fn from(err: LdapError) -> Self {
        match err {
            LdapError::LdapResult { result } => Self::Answer(result.to_string()),
            LdapError::FilterParsing => Self::Answer("the search filter does not parse".to_owned()),
            other => Self::Transport(Box::new(other)),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(err) => write!(f, "{err}"),
            Self::Answer(what) => f.write_str(what),
        }
    }
}

impl Failure {
    /// Logs the failure (the entry and the step, never a password) and gives the 503 for it.
    fn into_error(self, entry_id: &str, step: &'static str) -> Error {
        tracing::error!(idp = entry_id, step, error = %self, "the directory is unavailable");
        unavailable()
    }
}

/// The answer when a directory cannot be asked.
fn unavailable() -> Error {
    crate::telemetry::idp_error("ldap");
    Error::IdpUnavailable("The organization's directory is unavailable. Try again shortly.")
}

impl Directories {
    /// An empty pool; makes no network call.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks `password` for `email` by search-then-bind: bind as the service account, find exactly one entry
    /// with the filter (the address escaped), bind as that entry with the password. An empty password is
    /// rejected before any connection: an empty-password bind is an unauthenticated bind (RFC 4513), which some
    /// servers accept. A wrong password is `Rejected`; an unreachable or misconfigured directory is 503.
    pub async fn authenticate(
        &self,
        entry_id: &str,
        ldap: &LdapEntry,
        email: &str,
        password: &SecretString,
    ) -> Result<Verdict, Error> {
        if password.expose_secret().is_empty() {
            return Ok(Verdict::Rejected);
        }
        match self.candidate(entry_id, ldap, email).await? {
            Some(candidate) => self.check(entry_id, candidate, password).await,
            None => Ok(Verdict::Rejected),
        }
    }

    /// Search-then-bind in two steps, so that a caller can decide between them (keygate's guard counts failures
    /// per directory entry, whatever address found it): the first step binds as the service account and finds
    /// exactly one entry for `email` (the address escaped); `None` when none or several match, or the entry has no
    /// id or DN. The candidate holds its connection for [`Directories::check`] or [`Directories::set_aside`].
    pub async fn candidate(&self, entry_id: &str, ldap: &LdapEntry, email: &str) -> Result<Option<Candidate>, Error> {
        within_deadline(entry_id, async {
            let filter = user_filter(&ldap.user_filter, email);
            let mut conn = self.service_connection(entry_id, ldap).await?;
            let outcome = find_one(&mut conn.ldap, entry_id, ldap, &filter).await;
            match outcome {
                Ok(Some(user)) => Ok(Some(Candidate { conn, user })),
                other => {
                    self.give_back(entry_id, conn, &other).await;
                    other
                        .map(|_| None)
                        .map_err(|(step, failure)| failure.into_error(entry_id, step))
                }
            }
        })
        .await
    }

    /// The second step: binds as the candidate with `password` (an empty one is `Rejected` without a bind). At
    /// most one operation, so its own timeout bounds it.
    pub async fn check(&self, entry_id: &str, candidate: Candidate, password: &SecretString) -> Result<Verdict, Error> {
        let Candidate { mut conn, user } = candidate;
        if password.expose_secret().is_empty() {
            self.give_back(entry_id, conn, &Ok::<(), (&str, Failure)>(())).await;
            return Ok(Verdict::Rejected);
        }
        let outcome = user_bind(&mut conn.ldap, &user, password).await;
        self.give_back(entry_id, conn, &outcome).await;
        match outcome {
            Ok(true) => Ok(Verdict::Authenticated(user)),
            Ok(false) => Ok(Verdict::Rejected),
            Err((step, failure)) => Err(failure.into_error(entry_id, step)),
        }
    }

    /// Returns the connection of a candidate whose password was never checked (its guard refused) to the pool.
    pub async fn set_aside(&self, entry_id: &str, candidate: Candidate) {
        self.give_back(entry_id, candidate.conn, &Ok::<(), (&str, Failure)>(()))
            .await;
    }

    /// The entry whose id attribute is `id` (as [`DirectoryUser::id`] gives it) and that still matches the entry's
    /// `user_filter` for any address, for the re-check of a directory account: `None` when there is none (or more
    /// than one, or `id` is not hex). A filter that admits only some people (a group, an active flag) so removes
    /// those it no longer admits.
    pub async fn find(&self, entry_id: &str, ldap: &LdapEntry, id: &str) -> Result<Option<DirectoryUser>, Error> {
        within_deadline(entry_id, self.find_now(entry_id, ldap, id)).await
    }

    async fn find_now(&self, entry_id: &str, ldap: &LdapEntry, id: &str) -> Result<Option<DirectoryUser>, Error> {
        let Some(bytes) = decode_hex(id).filter(|bytes| !bytes.is_empty() && bytes.len() <= MAX_ID_BYTES) else {
            return Ok(None);
        };
        let filter = format!(
            "(&{}{})",
            id_filter(&ldap.attributes.id, &bytes),
            ldap.user_filter.replace(EMAIL_PLACEHOLDER, "*")
        );
        let mut conn = self.service_connection(entry_id, ldap).await?;
        let outcome = match search(&mut conn.ldap, ldap, &filter).await {
            Ok(Found::One(entry)) => Ok(directory_user(&entry, ldap)),
            Ok(Found::None) => Ok(None),
            Ok(Found::Many(count)) => {
                tracing::warn!(
                    idp = entry_id,
                    count,
                    "more than one directory entry has the same id; treating it as gone"
                );
                Ok(None)
            }
            Err(failure) => Err(("search", failure)),
        };
        self.give_back(entry_id, conn, &outcome).await;
        outcome.map_err(|(step, failure)| failure.into_error(entry_id, step))
    }

    /// A connection bound as the service account: a pooled one when one is alive, else a fresh one. A pooled
    /// connection that fails the bind without an answer (the server dropped it while idle) is replaced once.
    async fn service_connection(&self, entry_id: &str, ldap: &LdapEntry) -> Result<Pooled, Error> {
        let fingerprint = fingerprint(ldap);
        if let Some(mut conn) = self.take(entry_id, &fingerprint).await {
            match service_bind(&mut conn.ldap, ldap).await {
                Ok(()) => return Ok(conn),
                Err(Failure::Transport(err)) => {
                    tracing::info!(idp = entry_id, error = %err, "a pooled directory connection failed; reconnecting");
                }
                Err(failure) => return Err(failure.into_error(entry_id, "service bind")),
            }
        }
        let mut conn = Pooled {
            ldap: self
                .connect(ldap)
                .await
                .map_err(|failure| failure.into_error(entry_id, "connect"))?,
            fingerprint,
        };
        service_bind(&mut conn.ldap, ldap)
            .await
            .map_err(|failure| failure.into_error(entry_id, "service bind"))?;
        Ok(conn)
    }

    /// An idle connection for `entry_id` made from the same settings and still open; stale ones are dropped
    /// (dropping the last handle closes a connection).
    async fn take(&self, entry_id: &str, fingerprint: &Fingerprint) -> Option<Pooled> {
        let mut idle = self.idle.lock().await;
        let pool = idle.get_mut(entry_id)?;
        while let Some(mut conn) = pool.pop() {
            if conn.fingerprint == *fingerprint && !conn.ldap.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection to the pool unless its exchange failed without an answer, or the pool is full.
    async fn give_back<T>(&self, entry_id: &str, mut conn: Pooled, outcome: &Result<T, (&'static str, Failure)>) {
        if matches!(outcome, Err((_, Failure::Transport(_)))) || conn.ldap.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().await;
        let pool = idle.entry(entry_id.to_owned()).or_default();
        // Connections made from older settings go now rather than on their next use.
        pool.retain(|pooled| pooled.fingerprint == conn.fingerprint);
        if pool.len() < MAX_IDLE {
            pool.push(conn);
        }
    }

    /// A fresh connection, its driver spawned on the runtime.
    async fn connect(&self, ldap: &LdapEntry) -> Result<Ldap, Failure> {
        let tls = ldap.url.starts_with("ldaps://") || ldap.start_tls;
        if !tls && !ldap.allow_insecure {
            return Err(Failure::Answer(
                "plain ldap:// needs start_tls (or allow_insecure)".to_owned(),
            ));
        }
        let mut settings = LdapConnSettings::new().set_conn_timeout(CONNECT_TIMEOUT);
        if tls {
            // Always our own configuration: ldap3's default builds one from the process-wide crypto provider,
            // which is ambiguous (and panics) when more than one is linked.
            let config = match &ldap.ca_pem {
                Some(pem) => tls_config(ca_roots(pem).map_err(|reason| Failure::Answer(format!("ca_pem {reason}")))?)?,
                None => self.system_tls()?,
            };
            settings = settings.set_config(config).set_starttls(ldap.start_tls);
        }
        let (conn, handle) = LdapConnAsync::with_settings(settings, &ldap.url).await?;
        ldap3::drive!(conn);
        Ok(handle)
    }

    /// The TLS configuration that trusts the system roots, built on first use.
    fn system_tls(&self) -> Result<Arc<ClientConfig>, Failure> {
        if let Some(config) = self.system_tls.get() {
            return Ok(Arc::clone(config));
        }
        let loaded = rustls_native_certs::load_native_certs();
        if !loaded.errors.is_empty() {
            tracing::warn!(errors = ?loaded.errors, "some system trust roots could not be read");
        }
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
        if added == 0 {
            tracing::warn!("no system trust roots; TLS to directories without ca_pem will fail");
        }
        let config = tls_config(roots)?;
        Ok(Arc::clone(self.system_tls.get_or_init(|| config)))
    }
}

/// The one entry `filter` matches, with an id and a DN; `None` for none, several, or one without either.
async fn find_one(
    conn: &mut Ldap,
    entry_id: &str,
    ldap: &LdapEntry,
    filter: &str,
) -> Result<Option<DirectoryUser>, (&'static str, Failure)> {
    let entry = match search(conn, ldap, filter)
        .await
        .map_err(|failure| ("search", failure))?
    {
        Found::One(entry) => entry,
        Found::None => return Ok(None),
        Found::Many(count) => {
            tracing::warn!(
                idp = entry_id,
                count,
                "more than one directory entry matches a sign-in; refused (check user_filter)"
            );
            return Ok(None);
        }
    };
    let Some(user) = directory_user(&entry, ldap) else {
        tracing::warn!(
            idp = entry_id,
            attribute = %ldap.attributes.id,
            "a directory entry has no id attribute; refused"
        );
        return Ok(None);
    };
    // An empty DN would make the bind anonymous, which succeeds whatever the password.
    if user.dn.is_empty() {
        return Ok(None);
    }
    Ok(Some(user))
}

/// Binds as `user` with `password`: `true` accepted, `false` rejected (result 49).
async fn user_bind(
    conn: &mut Ldap,
    user: &DirectoryUser,
    password: &SecretString,
) -> Result<bool, (&'static str, Failure)> {
    let result = conn
        .with_timeout(OPERATION_TIMEOUT)
        .simple_bind(&user.dn, password.expose_secret())
        .await
        .map_err(|err| ("user bind", Failure::from(err)))?;
    match result.rc {
        RC_SUCCESS => Ok(true),
        RC_INVALID_CREDENTIALS => Ok(false),
        _ => Err(("user bind", Failure::Answer(result.to_string()))),
    }
}

/// Binds as the configured service account; anything but success is a failure.
async fn service_bind(conn: &mut Ldap, ldap: &LdapEntry) -> Result<(), Failure> {
    let result = conn
        .with_timeout(OPERATION_TIMEOUT)
        .simple_bind(&ldap.bind_dn, ldap.bind_password.expose_secret())
        .await?;
    if result.rc == RC_SUCCESS {
        Ok(())
    } else {
        Err(Failure::Answer(result.to_string()))
    }
}

/// What a search found.
#[derive(Debug)]
enum Found {
    None,
    One(Entry),
    /// More than one: how many came back (the size limit caps it at two).
    Many(usize),
}

/// Searches `user_base_dn` (subtree) with `filter` for the three configured attributes, at most two entries.
async fn search(conn: &mut Ldap, ldap: &LdapEntry, filter: &str) -> Result<Found, Failure> {
    let attributes = vec![
        ldap.attributes.id.clone(),
        ldap.attributes.email.clone(),
        ldap.attributes.name.clone(),
    ];
    let SearchResult(entries, result) = conn
        .with_search_options(SearchOptions::new().sizelimit(SIZE_LIMIT))
        .with_timeout(OPERATION_TIMEOUT)
        .search(&ldap.user_base_dn, Scope::Subtree, filter, attributes)
        .await?;
    match result.rc {
        RC_SIZE_LIMIT_EXCEEDED => return Ok(Found::Many(entries.len())),
        RC_SUCCESS => {}
        _ => return Err(Failure::Answer(result.to_string())),
    }
    if entries.len() > 1 {
        return Ok(Found::Many(entries.len()));
    }
    match entries.into_iter().next() {
        None => Ok(Found::None),
        Some(entry) => Entry::parse(entry)
            .map(Found::One)
            .ok_or_else(|| Failure::Answer("a search returned a malformed entry".to_owned())),
    }
}

/// A search result entry: its DN and each attribute's values as bytes.
#[derive(Debug)]
struct Entry {
    dn: String,
    attributes: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    /// Reads the entry's structure; `None` when it is malformed. (`ldap3::SearchEntry::construct` panics on a
    /// malformed entry, and splits values between `attrs` and `bin_attrs` by whether they are UTF-8; the raw
    /// bytes are what the id needs.)
    fn parse(entry: ResultEntry) -> Option<Self> {
        let mut parts = entry.0.match_id(4)?.expect_constructed()?.into_iter();
        let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
        let mut attributes = Vec::new();
        for attribute in parts.next()?.expect_constructed()? {
            let mut attribute = attribute.expect_constructed()?.into_iter();
            let name = String::from_utf8(attribute.next()?.expect_primitive()?).ok()?;
            let values = attribute
                .next()?
                .expect_constructed()?
                .into_iter()
                .map(|value| value.expect_primitive())
                .collect::<Option<Vec<_>>>()?;
            attributes.push((name, values));
        }
        Some(Self { dn, attributes })
    }

    /// The first value of attribute `name`; attribute names are case-insensitive (a server answers with its own
    /// spelling, `entryUUID` for `entryuuid`).
    fn first(&self, name: &str) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|(attribute, _)| attribute.eq_ignore_ascii_case(name))
            .and_then(|(_, values)| values.first())
            .map(Vec::as_slice)
    }
}

/// The user an entry describes; `None` without an id.
fn directory_user(entry: &Entry, ldap: &LdapEntry) -> Option<DirectoryUser> {
    let id = entry.first(&ldap.attributes.id).filter(|id| !id.is_empty())?;
    let text = |name: &str| {
        entry
            .first(name)
            .and_then(|value| std::str::from_utf8(value).ok())
            .map(str::to_owned)
    };
    Some(DirectoryUser {
        dn: entry.dn.clone(),
        id: encode_hex(id),
        email: text(&ldap.attributes.email),
        name: text(&ldap.attributes.name),
    })
}

/// The search filter for `email`: `template` with `{email}` replaced by the address, escaped (RFC 4515), so that
/// an address cannot change the filter's structure.
pub(crate) fn user_filter(template: &str, email: &str) -> String {
    template.replace(EMAIL_PLACEHOLDER, &ldap3::ldap_escape(email))
}

/// An equality filter on `attribute` for the value `bytes`, every byte escaped (RFC 4515): works for binary
/// values such as `objectGUID` as well as strings.
pub(crate) fn id_filter(attribute: &str, bytes: &[u8]) -> String {
    let mut filter = String::with_capacity(attribute.len() + 3 * bytes.len() + 3);
    filter.push('(');
    filter.push_str(attribute);
    filter.push('=');
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(filter, "\\{byte:02x}");
    }
    filter.push(')');
    filter
}

/// Everything one question to a directory may take: its steps each have their own timeouts, but a stale pooled
/// connection, a reconnect and three operations could add up past the function's own timeout, which would leave
/// a bare 5xx and an unsettled attempt instead of a 503.
const DEADLINE: Duration = Duration::from_secs(8);

/// `question`, or 503 `idp_unavailable` when it has not finished within [`DEADLINE`]. The connection it held is
/// dropped with it, never pooled.
async fn within_deadline<T>(
    entry_id: &str,
    question: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(DEADLINE, question).await {
        Ok(answer) => answer,
        Err(_) => {
            tracing::warn!(idp = entry_id, "the directory did not answer within the deadline");
            Err(unavailable())
        }
    }
}

/// Lowercase hex.
pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The bytes of an even-length hex string (either case); `None` for anything else.
pub(crate) fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            // from_str_radix alone would accept a sign ("+f").
            pair.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| u8::from_str_radix(pair, 16).ok())
                .flatten()
        })
        .collect()
}

/// The digest of the settings a connection is made from.
fn fingerprint(ldap: &LdapEntry) -> Fingerprint {
    let mut hash = Sha256::new();
    let ca = ldap.ca_pem.as_deref().map(str::as_bytes);
    let flags = [
        u8::from(ldap.start_tls),
        u8::from(ldap.allow_insecure),
        u8::from(ca.is_some()),
    ];
    // Length-prefixed, so that no two different settings hash the same input.
    for part in [ldap.url.as_bytes(), &flags, ca.unwrap_or_default()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// The trust roots of a PEM CA bundle; the reason completes "ca_pem ...".
pub(crate) fn ca_roots(pem: &str) -> Result<RootCertStore, &'static str> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|_| "is not valid PEM")?;
        roots
            .add(cert)
            .map_err(|_| "holds a certificate that is not a valid trust anchor")?;
    }
    if roots.is_empty() {
        return Err("must hold at least one PEM certificate");
    }
    Ok(roots)
}

/// A verifying TLS client configuration over `roots`, with the aws-lc-rs provider named explicitly.
fn tls_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, Failure> {
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|err| Failure::Transport(Box::new(LdapError::from(err))))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests;
