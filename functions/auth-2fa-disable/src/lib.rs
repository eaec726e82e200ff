//! `POST /v1/auth/2fa/disable`: `{code}`, a current TOTP code or an unused backup code → 204; the secret and the
//! backup codes are deleted and the owner is told by email. A session JWT only. A wrong or used code is 400
//! `invalid_code` and spends the account's backoff; 409 `mfa_not_enabled` when it is off.
//!
//! DynamoDB round trips: 5 in 3 round-trip times (the authenticating BatchGetItem; the two backoff claims and
//! the factors concurrently; one transaction: the factors' deletion, the user's flag, the cleared backoff, the
//! `mfa_disabled` event), and one SQS call.

use keygate::auth::{self, Access};
use keygate::mfa::enrolment;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct DisableRequest {
    code: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, disable(state, &req).await)
}

async fn disable(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: DisableRequest = http::json_body(req)?;
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    let session_id = caller.interactive_session_id()?;
    enrolment::disable(state, &caller.user, session_id, &body.code, now).await?;
    Ok(http::empty(204))
}
