//! `POST /v1/auth/change-password`: `{current_password?, new_password, revoke_api_tokens?}` → 204. Revokes every
//! other session of the user (and, with `revoke_api_tokens: true`, every personal access token) and emails a
//! notice. An account without a password sets its first one by leaving out `current_password`, from a sign-in at
//! most five minutes old (403 `reauthentication_required` otherwise).
//!
//! DynamoDB round trips: 3 (the authenticating BatchGetItem, the backoff claim, then one transaction: the password
//! and the new epochs, with the caller's session moved to it, the cleared failures, and the login copy dropped
//! from the email marker); a wrong current password writes its backoff wait instead of the transaction; no claim
//! when setting a first password. One SQS call.

use keygate::account::{self, PasswordChange};
use keygate::auth::{self, Access};
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
struct ChangePasswordRequest {
    current_password: Option<SecretString>,
    new_password: SecretString,
    #[serde(default)]
    revoke_api_tokens: bool,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, change_password(state, &req).await)
}

async fn change_password(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: ChangePasswordRequest = http::json_body(req)?;
    let principal = auth::authenticate(state, req, now, Access::Interactive).await?;
    let session = principal.session().ok_or(Error::SessionRevoked)?;
    let change = PasswordChange {
        current: body.current_password,
        new: body.new_password,
        revoke_api_tokens: body.revoke_api_tokens,
    };
    account::change_password(state, &principal.user, session, change, now).await?;
    Ok(http::empty(204))
}
