//! `GET /v1/auth/identities` → `{identities: [{id, provider, subject, email, linked_at}]}`: the caller's linked
//! external identities, oldest first. Needs `profile:read`.
//!
//! DynamoDB round trips: 2 with a JWT (the authenticating BatchGetItem, one query of the account's partition), 3
//! with a PAT.

use keygate::auth::{self, Access};
use keygate::federation::linking;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, list(state, &req).await)
}

async fn list(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope("profile:read")).await?;
    let identities = linking::list(state, &caller.user).await?;
    Ok(http::json(200, &serde_json::json!({ "identities": identities })))
}
