//! `DELETE /v1/auth/sessions/{session_id}`: revokes one of the caller's own sessions → 204. Someone else's
//! session, or none, is 404.
//!
//! DynamoDB round trips: 2 (the authenticating BatchGetItem, one conditional update).

use keygate::auth::{self, Access};
use keygate::{http, session, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, revoke(state, &req).await)
}

async fn revoke(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let session_id = http::path_param(req, "session_id").to_owned();
    let principal = auth::authenticate(state, req, now, Access::Interactive).await?;
    session::revoke_own(state, &principal.user, &session_id, now).await?;
    Ok(http::empty(204))
}
