//! The decision of the API Gateway HTTP API Lambda authorizer (payload 2.0, simple responses) that protects
//! other teams' APIs with keygate credentials: an access JWT whose session is still active, a PAT that is still
//! valid, or a resource-scoped anonymous token whose creator can still grant it. Bad input of any kind is a clean
//! deny, never an error.

use serde_json::{json, Map, Value};

use crate::auth::{self, Credential};
use crate::clock::UnixTime;
use crate::tenancy::databases::{self, Database, Selector};
use crate::{http, scoped_tokens, State};

/// The authorizer's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Whether API Gateway lets the request through.
    pub is_authorized: bool,
    /// Handed to the route as `requestContext.authorizer.lambda`: `sub`, `scopes`, `token_type` (`jwt`, `root` or
    /// `pat`), `acct`, and `sid`/`token_id`, `tenant`, `role`, `db`, `ns`, `fuid` where present. A scoped token
    /// gets `token_type: "scoped"`, `token_id`, `resource`, `scopes`, `act` (its creator) and `tenant`, and no
    /// `sub`: the caller is an anonymous visitor, and a route that keys on `sub` must not take it for the creator.
    pub context: Map<String, Value>,
}

impl Decision {
    fn deny() -> Self {
        Self {
            is_authorized: false,
            context: Map::new(),
        }
    }

    /// The simple-response JSON API Gateway expects.
    pub fn to_response(&self) -> Value {
        json!({ "isAuthorized": self.is_authorized, "context": self.context })
    }
}

/// Decides on an `Authorization` header value with the same check as keygate's own endpoints
/// ([`auth::principal`]): a JWT whose session was revoked (logout, reuse detection, a password reset) or a PAT
/// revoked by a token-epoch bump is denied at once. JWTs cost one strongly consistent BatchGetItem (session and
/// user); PATs two reads (plus, at most once an hour per token, the `last_used_at` write).
/// `namespace` is the request's `X-Namespace` header: a token without a database may name one of its tenant's
/// (`<slug>/<database>`), whose `db` and `ns` then go in the context (one read, cached for
/// [`crate::tenancy::databases::NAMESPACE_CACHE_SECONDS`]); another tenant's, a missing or a malformed one is a
/// deny, and so is a token scoped to a database that names another.
///
/// A scoped token (the scoped prefix, `kgs_` by default) costs two strongly consistent reads, the token and its
/// creator ([`scoped_tokens::verify`]), and none when its checksum fails. It is bound to its resource, not to a
/// database, so an `X-Namespace` header with it is a deny (no read): the request asks for a database scope the
/// token cannot have, and a route that trusted the header instead of the context would widen it.
pub async fn decide(state: &State, authorization: Option<&str>, namespace: Option<&str>, now: UnixTime) -> Decision {
    let Some(token) = authorization.and_then(http::parse_bearer) else {
        return Decision::deny();
    };
    if scoped_tokens::has_prefix(&state.config, token) {
        if namespace.is_some() {
            return Decision::deny();
        }
        return Box::pin(decide_scoped(state, token, now)).await;
    }
    // Boxed: the whole check is a deep future, and the runtime's own nesting on top of it exceeds the compiler's
    // layout depth.
    let principal = match Box::pin(auth::principal(state, token, now)).await {
        Ok(principal) => principal,
        Err(err) => return log_deny(&err),
    };
    let scoped = match (&principal.db, namespace) {
        (Some((_, ns)), Some(asked)) if ns != asked => return Decision::deny(),
        (Some(_), _) | (None, None) => principal.db.clone(),
        (None, Some(asked)) => match Box::pin(header_database(state, asked, principal.tenant.as_deref(), now)).await {
            Ok(database) => Some((database.id, database.namespace)),
            Err(err) => return log_deny(&err),
        },
    };
    let mut context = Map::new();
    context.insert("sub".into(), principal.user.id.clone().into());
    context.insert("scopes".into(), principal.scopes.join(" ").into());
    match &principal.credential {
        Credential::Session(session) => {
            context.insert("token_type".into(), "jwt".into());
            context.insert("sid".into(), session.id.clone().into());
        }
        Credential::Root => {
            // A root token or a client-credentials token: both sessionless, told apart by the account's kind.
            context.insert("token_type".into(), principal.token_type().into());
        }
        Credential::Pat { token, .. } => {
            context.insert("token_type".into(), "pat".into());
            context.insert("token_id".into(), token.id.clone().into());
        }
    }
    context.insert("acct".into(), principal.kind().as_str().into());
    let (db, ns) = scoped.unzip();
    let optional = [
        ("tenant", principal.tenant),
        ("role", principal.role.map(|role| role.as_str().to_owned())),
        ("db", db),
        ("ns", ns),
        ("fuid", principal.fuid),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            context.insert(name.into(), value.into());
        }
    }
    Decision {
        is_authorized: true,
        context,
    }
}

/// The decision on a scoped token: its resource, scopes and creator (`act`), never a `sub`.
async fn decide_scoped(state: &State, token: &str, now: UnixTime) -> Decision {
    let (token, creator) = match scoped_tokens::verify(state, token, now).await {
        Ok(verified) => verified,
        Err(err) => return log_deny(&err),
    };
    let mut context = Map::new();
    context.insert("token_type".into(), "scoped".into());
    context.insert("token_id".into(), token.id.into());
    context.insert("resource".into(), token.resource.into());
    context.insert("scopes".into(), token.scopes.join(" ").into());
    context.insert("act".into(), creator.id.into());
    if let Some(tenant) = token.tenant_id {
        context.insert("tenant".into(), tenant.into());
    }
    Decision {
        is_authorized: true,
        context,
    }
}

/// The database an `X-Namespace` header names, when it is one of `tenant`'s.
async fn header_database(
    state: &State,
    namespace: &str,
    tenant: Option<&str>,
    now: UnixTime,
) -> Result<Database, crate::Error> {
    // The shape first, so junk costs no read.
    Selector::from_fields(None, Some(namespace.to_owned()))?;
    let found = state.namespaces.lookup(&state.store, namespace, now).await?;
    databases::in_tenant(found, tenant)
}

fn log_deny(err: &crate::Error) -> Decision {
    if err.status() >= 500 {
        tracing::error!(error = ?err, "authorizer dependency failed; denying");
    }
    Decision::deny()
}

/// Reads the `Authorization` header from a raw authorizer event, whatever else the event holds.
pub fn authorization_header(event: &Value) -> Option<&str> {
    header(event, "authorization")
}

/// Reads the `X-Namespace` header from a raw authorizer event.
pub fn namespace_header(event: &Value) -> Option<&str> {
    header(event, "x-namespace")
}

fn header<'a>(event: &'a Value, wanted: &str) -> Option<&'a str> {
    event
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(wanted))?
        .1
        .as_str()
}
