//! `GET /v1/api-tokens/{id}`: one of the caller's tokens (metadata). Someone else's is 404. Needs `tokens:read`.
//!
//! DynamoDB round trips: 2 with a JWT (the authenticating BatchGetItem, the token), 3 with a PAT.

use keygate::auth::{self, Access};
use keygate::{api_tokens, http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, get(state, &req).await)
}

async fn get(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let id = http::path_param(req, "id").to_owned();
    let owner = auth::authenticate(state, req, now, Access::Scope("tokens:read")).await?;
    let token = api_tokens::get_own(state, &owner, &id, now).await?;
    Ok(http::json(200, &token.view()))
}
