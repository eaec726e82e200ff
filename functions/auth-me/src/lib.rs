//! `GET /v1/auth/me`: the caller's profile. A revoked session gets 401 even while its JWT has not expired.
//!
//! Accepts a PAT with `profile:read`.
//!
//! DynamoDB round trips: 1 with a JWT (a BatchGetItem of the session and the user), 2 with a PAT (token, user).

use keygate::auth::{self, Access};
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, me(state, &req).await)
}

async fn me(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let principal = auth::authenticate(state, req, now, Access::Scope("profile:read")).await?;
    Ok(http::json(200, &principal.user.view()))
}
