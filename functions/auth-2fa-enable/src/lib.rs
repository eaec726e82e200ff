//! `POST /v1/auth/2fa/enable`: `{code}` from the pending secret → 200 `{backup_codes}` (ten, shown once); sign-ins
//! need a second factor from now on, and the owner is told by email. A session JWT only. A wrong code is 400
//! `invalid_code` and spends the account's backoff; no pending setup is 409 `mfa_setup_required`.
//!
//! DynamoDB round trips: 4 in 3 round-trip times (the authenticating BatchGetItem; the backoff claim and the
//! pending secret concurrently; one transaction: the factors, the pending secret's deletion, the user's flag, the
//! cleared backoff), and one SQS call.

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
    let codes = enrolment::enable(state, &caller.user, &body.code, now).await?;
    Ok(http::json(200, &codes))
}
