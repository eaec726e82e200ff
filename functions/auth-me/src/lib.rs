//! `GET /v1/auth/me`: the caller's profile. A revoked session gets 401 even while its JWT has not expired.
//!
//! DynamoDB round trips: 1 (a BatchGetItem of the session and the user).

use keygate::{auth, http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, me(state, &req).await)
}

async fn me(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let principal = auth::authenticate(state, req, now).await?;
    Ok(http::json(200, &principal.user.view()))
}
