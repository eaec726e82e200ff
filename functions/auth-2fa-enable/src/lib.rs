//! `POST /v1/auth/2fa/enable`: `{code}` from the pending secret → 200 `{backup_codes}` (ten, shown once); sign-ins
//! need a second factor from now on, every other session of the account ends, and the owner is told by email. A
//! session JWT only, the one that ran setup. A wrong code is 400 `invalid_code` and spends the account's backoff;
//! no pending setup (or one another session started) is 409 `mfa_setup_required`.
//!
//! DynamoDB round trips: 5 in 3 round-trip times (the authenticating BatchGetItem; the two backoff claims and the
//! pending secret concurrently; one transaction: the factors, the pending secret's deletion, the user's flag and
//! new session epoch, the caller's session moved to it, the cleared backoff, the `mfa_enabled` event), and one SQS
//! call.

use keygate::auth::{self, Access};
use keygate::mfa::enrolment;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct EnableRequest {
    code: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, enable(state, &req).await)
}

async fn enable(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: EnableRequest = http::json_body(req)?;
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    let session = caller.session().ok_or(Error::SessionRevoked)?;
    let codes = enrolment::enable(state, &caller.user, session, &body.code, now).await?;
    Ok(http::json(200, &codes))
}
