//! `POST /v1/auth/2fa/setup` (no body) → 200 `{secret, otpauth_uri, expires_in}`: a new TOTP secret, pending for
//! ten minutes until `/v1/auth/2fa/enable` proves the authenticator has it; a second setup replaces it. A session
//! JWT only, signed in at most five minutes ago (403 `reauthentication_required`); 409 `mfa_already_enabled` when
//! two-factor authentication is on.
//!
//! DynamoDB round trips: 2 (the authenticating BatchGetItem, the pending secret), plus one Secrets Manager read on
//! a cold data key.

use keygate::auth::{self, Access};
use keygate::mfa::enrolment;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, setup(state, &req).await)
}

async fn setup(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    let session = caller.session().ok_or(Error::SessionRevoked)?;
    let setup = enrolment::setup(state, &caller.user, session, now).await?;
    Ok(http::json(200, &setup))
}
