//! The decision of the API Gateway HTTP API Lambda authorizer (payload 2.0, simple responses) that protects
//! other teams' APIs with keygate credentials: an access JWT whose session is still active, or a PAT that is still
//! valid. Bad input of any kind is a clean deny, never an error.

use serde_json::{json, Map, Value};

use crate::auth::{self, Credential};
use crate::clock::UnixTime;
use crate::tenancy::databases::{self, Database, Selector};
use crate::{http, State};

/// The authorizer's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Whether API Gateway lets the request through.
    pub is_authorized: bool,
    /// Handed to the route as `requestContext.authorizer.lambda`: `sub`, `scopes`, `token_type` (`jwt`, `root` or
    /// `pat`), `acct`, and
    /// `sid`/`token_id`, `tenant`, `role`, `db`, `ns`, `fuid` where present.
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
pub async fn decide(state: &State, authorization: Option<&str>, namespace: Option<&str>, now: UnixTime) -> Decision {
    let Some(token) = authorization.and_then(http::parse_bearer) else {
        return Decision::deny();
    };
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
            context.insert("token_type".into(), "root".into());
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
