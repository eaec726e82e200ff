//! The decision of the API Gateway HTTP API Lambda authorizer (payload 2.0, simple responses) that protects
//! other teams' APIs with keygate credentials: an access JWT, verified offline against the cached keys, or a
//! PAT, with one read. Bad input of any kind is a clean deny, never an error.

use serde_json::{json, Map, Value};

use crate::clock::UnixTime;
use crate::pat::Pat;
use crate::{api_tokens, auth, http, State};

/// The authorizer's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Whether API Gateway lets the request through.
    pub is_authorized: bool,
    /// Handed to the route as `requestContext.authorizer.lambda`: `sub`, `scopes`, `token_type`, and
    /// `sid`/`token_id`, `tenant` where present.
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

/// Decides on an `Authorization` header value. JWTs cost no DynamoDB call; PATs one read (plus, at most once an
/// hour per token, the `last_used_at` write).
pub async fn decide(state: &State, authorization: Option<&str>, now: UnixTime) -> Decision {
    let Some(token) = authorization.and_then(http::parse_bearer) else {
        return Decision::deny();
    };
    let mut context = Map::new();
    if Pat::has_prefix(token, &state.config.pat_prefix) {
        match api_tokens::verify(state, token, now).await {
            Ok(pat) => {
                context.insert("sub".into(), pat.user_id.into());
                context.insert("scopes".into(), pat.scopes.join(" ").into());
                context.insert("token_type".into(), "pat".into());
                context.insert("token_id".into(), pat.id.into());
            }
            Err(err) => return log_deny(&err),
        }
    } else {
        match auth::verify_jwt(state, token, now).await {
            Ok(claims) => {
                context.insert("sub".into(), claims.sub.into());
                context.insert("scopes".into(), claims.scope.into());
                context.insert("token_type".into(), "jwt".into());
                context.insert("sid".into(), claims.sid.into());
                if let Some(tenant) = claims.tenant {
                    context.insert("tenant".into(), tenant.into());
                }
            }
            Err(err) => return log_deny(&err),
        }
    }
    Decision {
        is_authorized: true,
        context,
    }
}

fn log_deny(err: &crate::Error) -> Decision {
    if err.status() >= 500 {
        tracing::error!(error = ?err, "authorizer dependency failed; denying");
    }
    Decision::deny()
}

/// Reads the `Authorization` header from a raw authorizer event, whatever else the event holds.
pub fn authorization_header(event: &Value) -> Option<&str> {
    event
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))?
        .1
        .as_str()
}
