//! `DELETE /v1/api-tokens/{id}`: revokes a token at once → 204. Someone else's is 404. Needs `tokens:write`, or
//! the token itself.
//!
//! DynamoDB round trips: 2 with a JWT (authentication, one transaction: the conditional delete and the
//! `api_token_deleted` event), 3 with a PAT.

use keygate::auth::{self, Access};
use keygate::{api_tokens, http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, delete(state, &req).await)
}

async fn delete(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let id = http::path_param(req, "id").to_owned();
    let owner = auth::authenticate(state, req, now, Access::Authenticated).await?;
    api_tokens::revoke(state, &owner, &id, now).await?;
    Ok(http::empty(204))
}
