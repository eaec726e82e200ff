//! `DELETE /v1/scoped-tokens/{id}`: revokes one of the caller's scoped tokens at once → 204; the authorizer denies
//! it from the next request. Someone else's, a malformed id or a missing one is 404. Needs a session, or a PAT
//! with `tokens:write`.
//!
//! DynamoDB round trips: 2 with a JWT (the authenticating BatchGetItem, one TransactWriteItems deleting the token
//! and its ledger entry and recording the `scoped_token_revoked` event), 3 with a PAT; a malformed id costs only the
//! authentication.

use keygate::auth::{self, Access};
use keygate::{http, scoped_tokens, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, delete(state, &req).await)
}

async fn delete(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let id = http::path_param(req, "id").to_owned();
    let creator = auth::authenticate(state, req, now, Access::Scope("tokens:write")).await?;
    scoped_tokens::revoke(state, &creator, &id, now).await?;
    Ok(http::empty(204))
}
