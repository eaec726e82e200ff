//! `GET /v1/scoped-tokens`: `{"tokens": [{id, resource, scopes, label, created_at, expires_at}]}`, the caller's
//! own live scoped tokens, newest first: never a secret or a hash, and none that expired or that a token-epoch
//! bump revoked. Needs a session, or a PAT with `tokens:write`. Not paginated: a creator holds at most 100. It
//! keeps answering when the deployment turns scoped tokens off, so what was made can still be seen and revoked.
//!
//! DynamoDB round trips: 2 with a JWT (the authenticating BatchGetItem, one GSI1 query), 3 with a PAT.

use keygate::auth::{self, Access};
use keygate::{http, scoped_tokens, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, list(state, &req).await)
}

async fn list(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let creator = auth::authenticate(state, req, now, Access::Scope("tokens:write")).await?;
    let tokens: Vec<_> = scoped_tokens::list(state, &creator, now)
        .await?
        .iter()
        .map(|t| t.view())
        .collect();
    Ok(http::json(200, &serde_json::json!({ "tokens": tokens })))
}
