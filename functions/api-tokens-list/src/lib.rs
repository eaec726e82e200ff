//! `GET /v1/api-tokens`: the caller's tokens, newest first: metadata only, with `last_used_at` (to the hour).
//! Needs `tokens:read`.
//!
//! DynamoDB round trips: 2 with a JWT (the authenticating BatchGetItem, one GSI query), 3 with a PAT.

use keygate::auth::{self, Access};
use keygate::{api_tokens, http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, list(state, &req).await)
}

async fn list(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let owner = auth::authenticate(state, req, now, Access::Scope("tokens:read")).await?;
    let tokens: Vec<_> = api_tokens::list(state, &owner, now)
        .await?
        .iter()
        .map(|t| t.view())
        .collect();
    Ok(http::json(200, &serde_json::json!({ "tokens": tokens })))
}
