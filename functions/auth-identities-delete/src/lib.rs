//! `DELETE /v1/auth/identities/{id}` → 204: unlinks one of the caller's external identities (someone else's is
//! 404), unless it is the account's last way to sign in, or the directory identity that provisioned the account
//! (409 `conflict`). Needs an interactive session.
//!
//! DynamoDB round trips: 3 (the authenticating BatchGetItem, the account's identities, one transaction).

use keygate::auth::{self, Access};
use keygate::federation::linking;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, unlink(state, &req).await)
}

async fn unlink(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    linking::unlink(state, &caller.user, http::path_param(req, "id")).await?;
    Ok(http::empty(204))
}
