//! `POST /v1/auth/change-password`: `{current_password, new_password}` → 204. Revokes every other session of the
//! user and emails a notice.
//!
//! DynamoDB round trips: 2 (the authenticating BatchGetItem, then one transaction: the password and the new
//! session epoch, with the caller's session moved to it).
//!
//! SQS: one SendMessage to the mail outbox (the notice).

use keygate::auth::{self, Access};
use keygate::{account, http, Error, State};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
struct ChangePasswordRequest {
    current_password: SecretString,
    new_password: SecretString,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, change_password(state, &req).await)
}

async fn change_password(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: ChangePasswordRequest = http::json_body(req)?;
    let principal = auth::authenticate(state, req, now, Access::Interactive).await?;
    account::change_password(
        state,
        &principal.user,
        principal.interactive_session_id()?,
        &body.current_password,
        &body.new_password,
        now,
    )
    .await?;
    Ok(http::empty(204))
}
