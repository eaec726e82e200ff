//! `POST /v1/auth/2fa/backup-codes/regenerate`: `{code}`, a current TOTP code (a backup code cannot mint new ones)
//! → 200 `{backup_codes}`; the old codes stop working and the owner is told by email. A session JWT only. A wrong
//! or used code is 400 `invalid_code` and spends the account's backoff; 409 `mfa_not_enabled` when it is off.
//!
//! DynamoDB round trips: 5 in 3 round-trip times (the authenticating BatchGetItem; the two backoff claims and
//! the factors concurrently; one transaction: the new hashes with the code's step, the cleared backoff, the
//! `backup_codes_regenerated` event), and one SQS call.

use keygate::auth::{self, Access};
use keygate::mfa::enrolment;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct RegenerateRequest {
    code: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, regenerate(state, &req).await)
}

async fn regenerate(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: RegenerateRequest = http::json_body(req)?;
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    let session_id = caller.interactive_session_id()?;
    let codes = enrolment::regenerate_backup_codes(state, &caller.user, session_id, &body.code, now).await?;
    Ok(http::json(200, &codes))
}
