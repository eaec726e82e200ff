//! The identity-provider configuration: one JSON document in Secrets Manager (`{"idps": [entry, ...]}`), set by
//! whoever deploys keygate, never by tenants through the API. Parsed and validated here; read when first needed and
//! cached like the signing keys.

use std::sync::Arc;

use secrecy::SecretString;

use crate::clock::UnixTime;
use crate::tenancy::Role;
use crate::Error;

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

impl IdpDocument {
    /// Parses and validates a document; the reason names what is wrong (never a secret).
    pub fn parse(_raw: &str) -> Result<Self, String> {
        Err("not built yet".to_owned())
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

/// The configuration document from Secrets Manager, cached for `ttl` seconds.
pub struct IdpStore {
    _client: aws_sdk_secretsmanager::Client,
    _secret_id: String,
    _ttl: i64,
}

impl IdpStore {
    /// Makes no network call.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: String, ttl: i64) -> Self {
        Self {
            _client: client,
            _secret_id: secret_id,
            _ttl: ttl,
        }
    }

    /// The current document: cached, or read (one Secrets Manager call). A missing or empty secret is an empty
    /// document; an invalid one is 503 (and logged), never a half-read configuration.
    pub async fn get(&self, _now: UnixTime) -> Result<Arc<IdpDocument>, Error> {
        Ok(Arc::new(IdpDocument::default()))
    }
}
