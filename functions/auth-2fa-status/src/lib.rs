//! `GET /v1/auth/2fa/status`: `{enabled, enabled_at, backup_codes_remaining, methods}` for the caller. Any session
//! JWT, or a PAT with `profile:read`.
//!
//! DynamoDB round trips: 1 with a JWT (the authenticating BatchGetItem) when two-factor authentication is off, 2
//! when it is on (the factors); one more with a PAT.

use keygate::auth::{self, Access};
use keygate::mfa::enrolment;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, status(state, &req).await)
}

async fn status(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope("profile:read")).await?;
    let status = enrolment::status(state, &caller.user).await?;
    Ok(http::json(200, &status))
}
