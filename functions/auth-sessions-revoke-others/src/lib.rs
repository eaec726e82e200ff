//! `DELETE /v1/auth/sessions`: revokes every session of the caller except the current one → 204.
//!
//! DynamoDB round trips: 2 (the authenticating BatchGetItem, one transaction that moves the user and the current
//! session to a new session epoch).

use keygate::auth::{self, Access};
use keygate::{http, session, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, revoke_others(state, &req).await)
}

async fn revoke_others(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let principal = auth::authenticate(state, req, now, Access::Interactive).await?;
    session::revoke_all_but(state, &principal.user, principal.interactive_session_id()?, now).await?;
    Ok(http::empty(204))
}
